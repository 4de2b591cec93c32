//! What is refused before anything runs: an unreadable environment, no tokio runtime, a
//! graph built wrong, a constant that cannot be hashed, a missing or doubled resource, a
//! loop node where loops cannot run yet.

use super::Runner;
use crate::error::{Error, GraphError, ResourceError};
use crate::graph::{NodeSpec, Source};

impl Runner {
    /// What makes a graph unfit to run or to explain: an unreadable environment, or a
    /// problem found while the graph was built.
    pub(super) fn check_graph(&self, built: Option<&GraphError>) -> Result<(), Error> {
        if let Some(e) = &self.env_error {
            return Err(Error::Env(e.clone()));
        }
        if let Some(e) = built {
            return Err(e.clone().into());
        }
        Ok(())
    }

    /// What makes a run impossible before any task starts: no tokio runtime to run on, a
    /// resource missing or given twice, a constant input that cannot be hashed.
    pub(super) fn check_run(&self, nodes: &[NodeSpec], graph: &str) -> Result<(), Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        self.check_resources(nodes)?;
        self.check_loops(nodes, graph)?;
        Self::check_constants(nodes, graph)
    }

    /// A loop node the run cannot take: mapped over a list, or in a distributed run; and a
    /// `max` on a node whose task is not a loop.
    fn check_loops(&self, nodes: &[NodeSpec], graph: &str) -> Result<(), Error> {
        for spec in nodes {
            let why = match spec.meta.looping {
                None if spec.options.max_iterations.is_some() => {
                    "`max` bounds the iterations of a loop task, and this task does not return `Loop<S, T>`: remove the setting"
                }
                None => continue,
                Some(_) if spec.map => {
                    "a loop task cannot be mapped over a list with `each` yet: loop inside the task instead, or add a node per item with the builder"
                }
                Some(_) if self.shared_run.is_some() => {
                    "a loop node cannot run in a distributed run yet: run this graph in one process (without `Runner::distributed` or `TYPEDAG_RUN`)"
                }
                Some(_) => continue,
            };
            return Err(GraphError::Loop {
                graph: graph.to_owned(),
                node: spec.id.to_string(),
                task: spec.meta.task,
                why,
            }
            .into());
        }
        Ok(())
    }

    /// Every resource a node of the graph takes and the runner lacks, before anything runs.
    fn check_resources(&self, nodes: &[NodeSpec]) -> Result<(), Error> {
        if let Some(name) = self.duplicate_resource {
            return Err(ResourceError::Duplicate {
                type_name: name.to_owned(),
            }
            .into());
        }
        let mut missing: Vec<(String, String)> = Vec::new();
        for node in nodes {
            for need in &node.meta.resources {
                let entry = (node.meta.task.to_owned(), need.name.to_owned());
                if !self.resources.has(need) && !missing.contains(&entry) {
                    missing.push(entry);
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ResourceError::Missing { missing }.into())
        }
    }

    /// A constant input that could not be serialized, so cannot be hashed into its node's
    /// fingerprint.
    fn check_constants(nodes: &[NodeSpec], graph: &str) -> Result<(), Error> {
        for spec in nodes {
            for (param, source) in spec.sources.iter().enumerate() {
                if let Source::Const(c) = source
                    && let Err(message) = &c.digest
                {
                    return Err(GraphError::Constant {
                        graph: graph.to_owned(),
                        node: spec.id.to_string(),
                        param,
                        message: message.clone(),
                    }
                    .into());
                }
            }
        }
        Ok(())
    }
}

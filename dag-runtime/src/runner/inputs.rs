//! A node's inputs: from the outputs in memory, or loaded from the store for cached nodes.

use std::sync::Arc;

use super::state::Run;
use crate::failure::Failure;
use crate::graph::{NodeSpec, Source};
use crate::task::Shared;

/// One parameter's value, ready for an attempt.
#[derive(Clone)]
pub(super) enum Prepared {
    /// An upstream output or a constant, shared.
    Shared(Shared),
    /// A list of upstream outputs, collected into the parameter's `Vec` per attempt.
    List(Vec<Shared>, fn(&[Shared]) -> Box<dyn std::any::Any + Send>),
    /// Nothing: the `Option` parameter's node did not run, or the node's condition (which
    /// the task does not read).
    Absent,
    /// Item `i` of a map node's list.
    /// Item `i` of a map node's list; boxed, so that other inputs stay small.
    Item(Box<crate::task::ItemOf>),
}

/// An upstream node's output as a job finds it.
pub(super) enum Held {
    /// In memory.
    Value(Shared),
    /// In the store, to load.
    Stored,
    /// Not needed: the node did not run, or it is only the job's condition.
    Unneeded,
}

/// Loads the stored outputs a job needs, then its inputs.
pub(super) async fn load_inputs(run: &Arc<Run>, index: usize) -> Result<Vec<Prepared>, Failure> {
    let spec = &run.nodes[index];
    let needed: Vec<Option<usize>> = {
        let state = run.lock();
        spec.upstream()
            .map(|(param, j)| state.needs(spec, param, j).then_some(j))
            .collect()
    };
    let mut held = Vec::with_capacity(needed.len());
    for j in needed {
        // Held until the inputs are prepared, so a concurrent release cannot free it.
        held.push(match j {
            Some(j) => Held::Value(run.load_output(j).await.map_err(Failure::fatal)?),
            None => Held::Unneeded,
        });
    }
    // Built from what is held, not from the shared table: readers that finished meanwhile
    // may have freed an output there.
    assemble(spec, held.into_iter())
        .ok_or_else(|| Failure::fatal("typedag: an input went missing while loading".into()))
}

/// A node's inputs, from its upstream outputs given in [`NodeSpec::upstream`] order; `None` if
/// one is missing.
pub(super) fn assemble(
    spec: &NodeSpec,
    mut upstream: impl Iterator<Item = Held>,
) -> Option<Vec<Prepared>> {
    // A plain loop rather than collecting into `Option<Vec<_>>`: it runs for every node,
    // and the adapters of that collect cost several times the work itself.
    let mut inputs = Vec::with_capacity(spec.sources.len());
    for source in &spec.sources {
        inputs.push(match source {
            Source::Node(_) | Source::Each(..) => match upstream.next()? {
                Held::Value(v) => Prepared::Shared(v),
                Held::Unneeded => Prepared::Absent,
                Held::Stored => return None,
            },
            Source::Condition(..) => {
                upstream.next()?;
                Prepared::Absent
            }
            Source::Const(c) => Prepared::Shared(c.value.clone()),
            Source::List(list, collect) => {
                let values = list
                    .iter()
                    .map(|_| match upstream.next()? {
                        Held::Value(v) => Some(v),
                        Held::Stored | Held::Unneeded => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                Prepared::List(values, *collect)
            }
        });
    }
    Some(inputs)
}

impl Run {
    /// Loads a cached node's output from the store into memory. On failure its record is
    /// dropped, so that the next run computes it afresh.
    pub(super) async fn load_output(self: &Arc<Self>, j: usize) -> Result<Shared, String> {
        let node = &self.nodes[j];
        let digest = {
            let state = self.lock();
            if let Some(v) = &state.outputs[j] {
                return Ok(v.clone());
            }
            state.digests[j]
        };
        let (Some(store), Some(decode), Some(digest)) = (&self.store, node.decoder(), digest)
        else {
            return Err(format!("the output of node `{}` is not at hand", node.id));
        };
        let loaded = match store.output(&self.graph, &node.id, &digest).await {
            Ok(Some(bytes)) => decode(&bytes).map_err(|e| format!("cannot be decoded: {e}")),
            Ok(None) => Err("is missing or does not match its digest".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        match loaded {
            Ok(value) => {
                let mut state = self.lock();
                state.stored[j] = false;
                Ok(state.outputs[j].get_or_insert(value).clone())
            }
            Err(why) => {
                self.forget(j);
                Err(format!(
                    "the stored output of node `{}` {why}; its record is dropped",
                    node.id
                ))
            }
        }
    }
}

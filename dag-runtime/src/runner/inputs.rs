//! A node's inputs: from the outputs in memory, or loaded from the store for cached nodes.

use std::sync::Arc;

use super::state::Run;
use crate::failure::Failure;
use crate::graph::{NodeSpec, Source};
use crate::task::Shared;

/// One parameter's value, ready for an attempt.
pub(super) enum Prepared {
    /// An upstream output or a constant, shared.
    Shared(Shared),
    /// A list of upstream outputs, collected into the parameter's `Vec` per attempt.
    List(Vec<Shared>, fn(&[Shared]) -> Box<dyn std::any::Any + Send>),
}

/// Loads the stored outputs a job needs, then its inputs.
pub(super) async fn load_inputs(run: &Arc<Run>, index: usize) -> Result<Vec<Prepared>, Failure> {
    let upstream: Vec<usize> = run.nodes[index].upstream().map(|(_, j)| j).collect();
    let mut held = Vec::with_capacity(upstream.len());
    for j in upstream {
        // Held until the inputs are prepared, so a concurrent release cannot free it.
        held.push(run.load_output(j).await.map_err(Failure::fatal)?);
    }
    // Built from what is held, not from the shared table: readers that finished meanwhile
    // may have freed an output there.
    assemble(&run.nodes[index], held.into_iter().map(Some))
        .ok_or_else(|| Failure::fatal("typedag: an input went missing while loading".into()))
}

/// A node's inputs, from its upstream outputs given in [`NodeSpec::upstream`] order; `None` if
/// one is missing.
pub(super) fn assemble(
    spec: &NodeSpec,
    mut upstream: impl Iterator<Item = Option<Shared>>,
) -> Option<Vec<Prepared>> {
    spec.sources
        .iter()
        .map(|source| match source {
            Source::Node(_) => upstream.next().flatten().map(Prepared::Shared),
            Source::Const(c) => Some(Prepared::Shared(c.value.clone())),
            Source::List(list, collect) => list
                .iter()
                .map(|_| upstream.next().flatten())
                .collect::<Option<Vec<_>>>()
                .map(|values| Prepared::List(values, *collect)),
        })
        .collect()
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
        let (Some(store), Some(codec), Some(digest)) = (&self.store, &node.meta.codec, digest)
        else {
            return Err(format!("the output of node `{}` is not at hand", node.id));
        };
        let loaded = match store.output(&self.graph, &node.id, &digest).await {
            Ok(Some(bytes)) => {
                (codec.decode)(&bytes).map_err(|e| format!("cannot be decoded: {e}"))
            }
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

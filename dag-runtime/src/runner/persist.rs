//! What a run writes to the store: each node's record as it ends, the graph's shape, and
//! the acknowledgement that makes a `Completed` event mean "durable". The only part of the
//! runner that names the store's record types.

use std::sync::Arc;
use std::time::Duration;

use super::attempt::Success;
use super::state::Run;
use crate::cache::{Digest, Fingerprint, Reason};
use crate::event::Event;
use crate::failure::Failure;
use crate::graph::NodeSpec;
use crate::store::{Ack, Manifest, ManifestNode, Record, RecordState, Write};
use crate::task::Shared;

/// Encodes a completed node's output for the store and builds the write that records it,
/// or the failure. An output that cannot be encoded fails the node: it could not be cached.
pub(super) fn record(
    run: &Run,
    node: &NodeSpec,
    fingerprint: Option<&Fingerprint>,
    reason: Reason,
    result: Option<Result<Success, Vec<Failure>>>,
) -> (Option<Result<Success, Vec<Failure>>>, Option<Write>) {
    // By reference: most runs have none, and moving an empty one still copies its bytes.
    let (Some(&fingerprint), Some(codec)) = (fingerprint, &node.meta.codec) else {
        return (result, None);
    };
    if !node.meta.task_options.cache {
        // Runs every time: its digest lets dependents be cached; nothing is stored. An
        // output that does not encode has no digest, and its dependents run every time.
        let result = result.map(|r| {
            r.map(|mut done| {
                done.digest = (codec.encode)(&done.value)
                    .ok()
                    .map(|bytes| *blake3::hash(&bytes).as_bytes());
                done
            })
        });
        return (result, None);
    }
    let save = |record: Record, output: Option<Vec<u8>>| Write::Save {
        graph: run.graph.clone(),
        node: node.id.to_string(),
        record,
        output,
    };
    match result {
        Some(Ok(mut done)) => match encode_output(node, &done.value) {
            Ok((bytes, digest)) => {
                done.digest = Some(digest);
                let record = completed_record(node, fingerprint, reason, digest, &bytes, &done);
                (Some(Ok(done)), Some(save(record, Some(bytes))))
            }
            Err(failure) => {
                let record = failed_record(
                    node,
                    fingerprint,
                    reason,
                    std::slice::from_ref(&failure),
                    done.duration,
                );
                (Some(Err(vec![failure])), Some(save(record, None)))
            }
        },
        Some(Err(failures)) => {
            let record = failed_record(node, fingerprint, reason, &failures, Duration::ZERO);
            (Some(Err(failures)), Some(save(record, None)))
        }
        None => (None, None),
    }
}

/// A completed node's output as the store keeps it: its bytes and their digest. An output
/// that cannot be encoded fails the node, for good: it could not be cached.
pub(super) fn encode_output(node: &NodeSpec, value: &Shared) -> Result<(Vec<u8>, Digest), Failure> {
    let codec = node.meta.codec.as_ref().ok_or_else(|| {
        Failure::fatal("its output has no serde impls, so it cannot be stored".to_owned())
    })?;
    let bytes = (codec.encode)(value).map_err(|e| {
        Failure::fatal(format!(
            "its output could not be serialized for the store: {e}; fix its `Serialize` impl, or mark the task `#[task(cache = false)]`"
        ))
    })?;
    let digest = *blake3::hash(&bytes).as_bytes();
    Ok((bytes, digest))
}

/// The record of a node that completed with `output`, finished now.
pub(super) fn completed_record(
    node: &NodeSpec,
    fingerprint: Fingerprint,
    reason: Reason,
    digest: Digest,
    output: &[u8],
    done: &Success,
) -> Record {
    done_record(
        node,
        fingerprint,
        reason,
        digest,
        output.len(),
        done.duration,
        done.attempts,
    )
}

/// The record of a value of `size` bytes with this digest, stored for `node`, finished now.
pub(super) fn done_record(
    node: &NodeSpec,
    fingerprint: Fingerprint,
    reason: Reason,
    digest: Digest,
    size: usize,
    duration: Duration,
    attempts: u32,
) -> Record {
    let state = RecordState::Done {
        digest,
        size: size as u64,
    };
    new_record(node, fingerprint, reason, state, duration, attempts)
}

/// The record of a node that failed for good after `failures`, finished now.
pub(super) fn failed_record(
    node: &NodeSpec,
    fingerprint: Fingerprint,
    reason: Reason,
    failures: &[Failure],
    duration: Duration,
) -> Record {
    let error = failures
        .last()
        .map(|f| f.message().to_owned())
        .unwrap_or_default();
    let attempts = u32::try_from(failures.len()).unwrap_or(u32::MAX);
    new_record(
        node,
        fingerprint,
        reason,
        RecordState::Failed { error },
        duration,
        attempts,
    )
}

/// A record another graph made for the same fingerprint, taken over by `node`.
#[cfg(feature = "postgres")]
pub(super) fn adopted_record(
    node: &NodeSpec,
    fingerprint: Fingerprint,
    reason: Reason,
    found: Record,
) -> Record {
    Record {
        task: node.meta.task.to_owned(),
        fingerprint,
        reason,
        ..found
    }
}

fn new_record(
    node: &NodeSpec,
    fingerprint: Fingerprint,
    reason: Reason,
    state: RecordState,
    duration: Duration,
    attempts: u32,
) -> Record {
    Record {
        task: node.meta.task.to_owned(),
        fingerprint,
        state,
        finished_ms: Record::now_ms(),
        duration_us: u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
        attempts,
        reason,
    }
}

impl Run {
    /// Saves the graph's shape, unless the store's copy (`stored`) is the same.
    pub(super) fn save_shape(self: &Arc<Self>, stored: Option<Digest>) {
        if self.shape.is_some() && self.shape != stored {
            let manifest = self.manifest();
            self.send(
                Write::Graph {
                    graph: self.graph.clone(),
                    manifest,
                },
                None,
            );
        }
    }

    /// Drops node `j`'s record, whose output could not be loaded, so that the next run
    /// computes it afresh.
    pub(super) fn forget(self: &Arc<Self>, j: usize) {
        let nodes = Some(vec![self.nodes[j].id.to_string()]);
        let graph = self.graph.clone();
        self.send(Write::Forget { graph, nodes }, None);
    }

    /// Hands `write` to the store; the run ends only once it is acknowledged, and a node's
    /// `Completed` event (for `completed`: node, duration, attempts) waits for it too.
    fn send(self: &Arc<Self>, write: Write, completed: Option<(usize, Duration, u32)>) {
        if self.store.is_some() {
            self.lock().pending += 1;
            self.send_counted(write, completed);
        }
    }

    /// Hands `write` to the store, counted as pending until it is acknowledged, and calls
    /// `durable` once it is.
    pub(super) fn send_then(
        self: &Arc<Self>,
        write: Write,
        durable: impl FnOnce(&Run) + Send + 'static,
    ) {
        let Some(store) = &self.store else { return };
        self.lock().pending += 1;
        store.write(write, self.ack_then(durable));
    }

    /// Holds `write` until map, loop or signal node `index`'s record is sent (it forgets what
    /// the record makes useless), counting it now so that the run cannot end before it is
    /// sent.
    pub(super) fn send_after_record(&self, index: usize, write: Write) {
        let mut state = self.lock();
        state.pending += 1;
        state.after.push((index, write));
    }

    /// Sends the write held for node `index` by
    /// [`send_after_record`](Run::send_after_record), once that node's record is sent.
    pub(super) fn send_after(self: &Arc<Self>, index: usize) {
        let after = {
            let mut state = self.lock();
            let at = state.after.iter().position(|(i, _)| *i == index);
            at.map(|at| state.after.swap_remove(at).1)
        };
        if let Some(write) = after {
            self.send_counted(write, None);
        }
    }

    /// [`send`](Run::send) for a write already counted in `State::pending`.
    pub(super) fn send_counted(
        self: &Arc<Self>,
        write: Write,
        completed: Option<(usize, Duration, u32)>,
    ) {
        if let Some(store) = &self.store {
            store.write(write, self.ack(completed));
        }
    }

    /// The graph's shape, for the store.
    fn manifest(&self) -> Manifest {
        Manifest {
            nodes: self
                .nodes
                .iter()
                .map(|node| ManifestNode {
                    id: node.id.to_string(),
                    task: node.meta.task.to_owned(),
                    inputs: node
                        .upstream()
                        .map(|(_, j)| u32::try_from(j).unwrap_or(u32::MAX))
                        .collect(),
                })
                .collect(),
        }
    }

    /// What the store calls once a write is durable: the node's `Completed` event, and the
    /// run may end once nothing is left unacknowledged.
    fn ack(self: &Arc<Self>, completed: Option<(usize, Duration, u32)>) -> Ack {
        self.ack_then(move |run: &Run| {
            if let Some((i, duration, attempts)) = completed {
                run.events.emit(&Event::Completed {
                    node: &run.nodes[i].id,
                    task: run.nodes[i].meta.task,
                    duration,
                    attempts,
                });
            }
        })
    }

    /// What the store calls once a write is done: `durable` if it is, then one write less
    /// pending (a failed write stops the run), and the run may end.
    fn ack_then(self: &Arc<Self>, durable: impl FnOnce(&Run) + Send + 'static) -> Ack {
        let run = self.clone();
        Box::new(move |result| {
            if result.is_ok() {
                durable(&run);
            }
            let done = {
                let mut state = run.lock();
                state.pending -= 1;
                if let Err(e) = result {
                    state.store_error.get_or_insert(e);
                    state.stopping = true;
                }
                state.ended()
            };
            // Let go of the run before waking whoever waits for it: the last reference to
            // the store must not be dropped on the store's own writer thread.
            drop(run);
            done.send();
        })
    }
}

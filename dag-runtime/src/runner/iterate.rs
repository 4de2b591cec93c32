//! A loop node's run: its task called again on its own next state until it returns
//! `Loop::Done`, each iteration with its own attempts (retries and timeout per iteration),
//! up to the node's bound.
//!
//! Each iteration's state is stored as it completes, in one record overwritten each time
//! (`node#loop`: how many iterations, and the last state's bytes) under the node's
//! fingerprint, so that a run stopped mid-loop resumes after the last stored iteration when
//! the inputs and code are the same, and starts again from the first otherwise. Once the
//! node's output is stored, that record is forgotten.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::attempt::{Call, FOR_ITERATION, Success, attempt_unless_cancelled};
use super::inputs::Prepared;
use super::persist::{done_record, record};
use super::state::Run;
use crate::cache::{Digest, Fingerprint, Reason, Stamp};
use crate::event::Event;
use crate::failure::Failure;
use crate::graph::NodeSpec;
use crate::ids::NodeIds;
use crate::looping::{Looping, StateCodec, Turn};
use crate::policy::Effective;
use crate::report::Iterations;
use crate::store::{Store, Write};
use crate::task::Shared;

/// A loop node's end: its result and the write of its record. The write that must follow
/// that one (forgetting its stored iterations) waits in `State::after`, as a map node's
/// cleanup does.
pub(super) type LoopEnd = (Option<Result<Success, Vec<Failure>>>, Option<Write>);

/// What a loop node's iteration record holds.
#[derive(Serialize, Deserialize)]
struct Progress {
    /// Iterations finished.
    iterations: u32,
    /// The shape of the state's type.
    shape: Digest,
    /// The state the last of them returned, in its codec's bytes.
    state: Vec<u8>,
}

/// The record id of loop node `node`'s last stored iteration.
pub(super) fn loop_id(node: &str) -> String {
    format!("{node}#loop")
}

/// Runs loop node `index` on its inputs, resuming after the iterations the store holds for
/// the same fingerprint.
pub(super) async fn run_loop(
    run: &Arc<Run>,
    index: usize,
    mut prepared: Vec<Prepared>,
    reason: Reason,
    fingerprint: Option<Fingerprint>,
) -> LoopEnd {
    let start = Instant::now();
    let spec = &run.nodes[index];
    let Some(looping) = spec.meta.looping else {
        let failure = Failure::fatal("typedag: not a loop node".into());
        return record(
            run,
            spec,
            fingerprint.as_ref(),
            reason,
            Some(Err(vec![failure])),
        );
    };
    let max = Effective::max_iterations(&spec.options, &spec.meta.task_options);
    let kept = kept(run, index, &looping, fingerprint);

    let mut iterations = 0;
    if let Some((fp, codec)) = &kept
        && let Some((done, state)) = resume(run, index, fp, codec).await
    {
        iterations = done;
        prepared[looping.state] = Prepared::Shared(state);
    }
    let resumed = iterations;
    // Whether `node#loop` may hold a record to forget once the node's output is stored.
    let mut stored = resumed > 0;
    // Retries over every iteration run here: the node's attempts are one more.
    let mut retries = 0u32;
    let end = loop {
        if iterations >= max {
            break Some(Err(vec![Failure::fatal(bound_message(&spec.id, max))]));
        }
        let call = Call {
            call: looping.step,
            starts: iterations == resumed,
            item: None,
        };
        let attempted = attempt_unless_cancelled::<FOR_ITERATION>(
            run,
            index,
            &spec.id,
            prepared.clone(),
            reason,
            call,
        )
        .await;
        let Some(attempted) = attempted else {
            break None;
        };
        let done = match attempted {
            Ok(done) => done,
            Err(failures) => break Some(Err(failures)),
        };
        retries = retries.saturating_add(done.attempts.saturating_sub(1));
        iterations += 1;
        let Some(turn) = done.value.downcast_ref::<Turn>() else {
            break Some(Err(vec![Failure::fatal(
                "typedag: a loop iteration of another type".into(),
            )]));
        };
        match turn {
            Turn::Done(output) => {
                break Some(Ok(Success {
                    value: output.clone(),
                    attempts: retries.saturating_add(1),
                    duration: start.elapsed(),
                    digest: None,
                }));
            }
            Turn::Again(next) => {
                let finished = (done.duration, done.attempts);
                let saved = match &kept {
                    Some(kept) => save(run, index, kept, reason, iterations, next, finished),
                    None => {
                        emit_iterated(run, index, iterations, finished);
                        Ok(())
                    }
                };
                if let Err(message) = saved {
                    break Some(Err(vec![Failure::fatal(message)]));
                }
                stored |= kept.is_some();
                prepared[looping.state] = Prepared::Shared(next.clone());
            }
        }
    };
    run.lock().iterations.insert(
        index,
        Iterations {
            total: iterations,
            resumed,
        },
    );
    let (result, write) = record(run, spec, fingerprint.as_ref(), reason, end);
    // Once the output is stored, the iterations are not needed.
    let completed = matches!(result, Some(Ok(_))) && write.is_some();
    if completed && stored {
        run.send_after_record(
            index,
            Write::Forget {
                graph: run.graph.clone(),
                nodes: Some(vec![loop_id(&spec.id)]),
            },
        );
    }
    (result, write)
}

/// The fingerprint and state codec a loop node's iterations are stored under, when they
/// are: with a store, caching on, and a fingerprint to compare with on the next run.
fn kept(
    run: &Run,
    index: usize,
    looping: &Looping,
    fingerprint: Option<Fingerprint>,
) -> Option<(Fingerprint, StateCodec)> {
    let spec = &run.nodes[index];
    run.store.as_ref()?;
    if !spec.meta.task_options.cache {
        return None;
    }
    Some((fingerprint?, looping.codec?))
}

/// The error of a loop node that reached its bound.
fn bound_message(node: &str, max: u32) -> String {
    format!(
        "loop node `{node}` reached its bound of {max} iterations without returning `Loop::Done`: raise it with `with max = ...` on the node (or `#[task(max = ...)]`) if the loop needs more; its iterations are stored, so the next run goes on from there"
    )
}

/// Stores iteration `iterations`'s state `next` as node `index`'s last, under the
/// fingerprint and with the codec it is `kept` with, and sends its `Iterated` event once
/// durable; an error if the state cannot be serialized.
fn save(
    run: &Arc<Run>,
    index: usize,
    (fingerprint, codec): &(Fingerprint, StateCodec),
    reason: Reason,
    iterations: u32,
    next: &Shared,
    (duration, attempts): (Duration, u32),
) -> Result<(), String> {
    let spec = &run.nodes[index];
    let state = (codec.encode)(next).map_err(|e| {
        format!(
            "the state returned by iteration {iterations} could not be serialized for the store: {e}; fix its `Serialize` impl, or mark the task `#[task(cache = false)]`"
        )
    })?;
    let shape = (codec.shape)();
    let bytes = postcard::to_allocvec(&Progress {
        iterations,
        shape,
        state,
    })
    .map_err(|e| format!("typedag: a loop's progress did not encode: {e}"))?;
    let digest = *blake3::hash(&bytes).as_bytes();
    let record = done_record(
        spec,
        *fingerprint,
        reason,
        digest,
        bytes.len(),
        duration,
        attempts,
    );
    let write = Write::Save {
        graph: run.graph.clone(),
        node: loop_id(&spec.id),
        record,
        output: Some(bytes),
    };
    run.send_then(write, move |run: &Run| {
        emit_iterated(run, index, iterations, (duration, attempts));
    });
    Ok(())
}

/// Sends node `index`'s `Iterated` event for its iteration `iteration`.
fn emit_iterated(run: &Run, index: usize, iteration: u32, (duration, attempts): (Duration, u32)) {
    let spec = &run.nodes[index];
    run.events.emit(&Event::Iterated {
        node: &spec.id,
        task: spec.meta.task,
        iteration,
        duration,
        attempts,
    });
}

/// How many iterations of loop node `index` the store holds for `fingerprint`, and the state
/// the last returned; `None` if none, or if it cannot be read (the loop then starts over).
async fn resume(
    run: &Run,
    index: usize,
    fingerprint: &Fingerprint,
    codec: &StateCodec,
) -> Option<(u32, Shared)> {
    let store = run.store.as_ref()?;
    let progress =
        stored_progress(store.as_ref(), &run.graph, &run.nodes[index], fingerprint).await?;
    let state = (codec.decode)(&progress.state).ok()?;
    Some((progress.iterations, state))
}

/// How many iterations of loop node `spec` of `graph` the store holds, computed from
/// `fingerprint`, with the state the last returned; `None` if the state was stored with
/// another shape of its type.
async fn stored_progress(
    store: &dyn Store,
    graph: &str,
    spec: &NodeSpec,
    fingerprint: &Fingerprint,
) -> Option<Progress> {
    let codec = spec.meta.looping?.codec?;
    let id = loop_id(&spec.id);
    let mut ids = NodeIds::default();
    ids.map_mut().insert(Arc::from(id.as_str()), 0);
    let stamps = store.stamps(graph, Arc::new(ids)).await.ok()?.stamps;
    let Some(Some(Stamp::Done {
        fingerprint: stored,
        digest,
    })) = stamps.into_iter().next()
    else {
        return None;
    };
    if stored != *fingerprint {
        return None;
    }
    let bytes = store.output(graph, &id, &digest).await.ok()??;
    let progress: Progress = postcard::from_bytes(&bytes).ok()?;
    (progress.shape == (codec.shape)()).then_some(progress)
}

/// How many iterations of loop node `spec` of `graph` the store holds, computed from
/// `fingerprint`: what a run would resume after (for `explain`).
pub(super) async fn stored_iterations(
    store: &dyn Store,
    graph: &str,
    spec: &NodeSpec,
    fingerprint: &Fingerprint,
) -> Option<u32> {
    let progress = stored_progress(store, graph, spec, fingerprint).await?;
    Some(progress.iterations)
}

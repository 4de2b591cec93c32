//! One node's attempts: until one succeeds or the policy gives up, each raced against its
//! timeout, a panic caught as a failed attempt, a retry after the backoff's delay.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;

use super::inputs::Prepared;
use super::state::Run;
use crate::cache::{Digest, Reason};
use crate::event::Event;
use crate::failure::Failure;
use crate::policy::Effective;
use crate::task::{Inputs, Shared, Value};

/// A node that completed: its output, how many attempts it took and how long.
pub(super) struct Success {
    pub(super) value: Shared,
    pub(super) attempts: u32,
    pub(super) duration: Duration,
    /// Its output's digest, once encoded; `None` if it has none (`cache = false` without
    /// serde, or no store).
    pub(super) digest: Option<Digest>,
}

/// What an attempt calls: the node's task, or one iteration of a loop task.
#[derive(Clone, Copy)]
pub(super) struct Call {
    pub(super) call: crate::looping::Step,
    /// Whether its first attempt starts the node (counted as running), rather than going on
    /// with a node already running (a loop's next iteration).
    pub(super) starts: bool,
    /// For an item of a map node, its position in the list (the attempt's span says it).
    pub(super) item: Option<usize>,
}

impl Call {
    /// Node `index`'s task.
    pub(super) fn task(run: &Run, index: usize) -> Self {
        Self {
            call: run.nodes[index].meta.call,
            starts: true,
            item: None,
        }
    }

    /// Node `index`'s task, on the item at `position` of its list.
    pub(super) fn item(run: &Run, index: usize, position: usize) -> Self {
        Self {
            item: Some(position),
            ..Self::task(run, index)
        }
    }
}

/// Which caller an [`attempt_unless_cancelled`] is for: each gets a copy of its own, which
/// the compiler then builds into that caller (one call site each), as every node's attempt
/// is the runner's hottest path.
pub(super) const FOR_NODE: u8 = 0;
/// See [`FOR_NODE`].
pub(super) const FOR_ITEM: u8 = 1;
/// See [`FOR_NODE`].
pub(super) const FOR_ITERATION: u8 = 2;
/// See [`FOR_NODE`]: a node or an item in a distributed run.
#[cfg(feature = "postgres")]
pub(super) const FOR_SHARED: u8 = 3;

/// [`attempt`] of `call`, raced against the run's cancellation when something can cancel
/// it: `None` if the run was cancelled before or during it, the node then no longer counted
/// as running in the events' totals. `CALLER`: see [`FOR_NODE`].
pub(super) async fn attempt_unless_cancelled<const CALLER: u8>(
    run: &Run,
    index: usize,
    label: &str,
    prepared: Vec<Prepared>,
    reason: Reason,
    call: Call,
) -> Option<Result<Success, Vec<Failure>>> {
    if !run.cancellable {
        return Some(attempt::<CALLER>(run, index, label, prepared, reason, call).await);
    }
    // A node counted as running (its first attempt started, here or in an earlier
    // iteration) stops counting when cancelled; one that never started was never counted.
    if run.cancel.is_cancelled() {
        if !call.starts {
            run.events.stopped_running();
        }
        return None;
    }
    let attempt = std::pin::pin!(attempt::<CALLER>(run, index, label, prepared, reason, call));
    let cancelled = std::pin::pin!(run.cancel.cancelled());
    match futures::future::select(attempt, cancelled).await {
        futures::future::Either::Left((result, _)) => Some(result),
        // The attempt was polled first, so it had started.
        futures::future::Either::Right(_) => {
            run.events.stopped_running();
            None
        }
    }
}

/// Runs one node's attempts of `call` until one succeeds or the policy gives up. `CALLER`:
/// see [`FOR_NODE`].
pub(super) async fn attempt<const CALLER: u8>(
    run: &Run,
    index: usize,
    label: &str,
    prepared: Vec<Prepared>,
    reason: Reason,
    call: Call,
) -> Result<Success, Vec<Failure>> {
    let events = &run.events;
    let start = Instant::now();
    let node = &run.nodes[index];
    let policy = &Effective::merge(&node.options, &node.meta.task_options, &run.defaults);
    let mut failures = Vec::new();
    let (id, task) = (label, node.meta.task);
    loop {
        let number = u32::try_from(failures.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let started = Event::Started {
            node: id,
            task,
            attempt: number,
            reason,
        };
        if call.starts {
            events.emit(&started);
        } else {
            events.emit_uncounted(&started);
        }
        // A plain loop: collecting through the iterator adapters costs more than the
        // copying itself, on every node.
        let mut values = Vec::with_capacity(prepared.len());
        for p in &prepared {
            values.push(match p {
                Prepared::Shared(v) => Value::Shared(v.clone()),
                Prepared::List(values, collect) => Value::Owned(Some(collect(values))),
                Prepared::Absent => Value::Absent,
                Prepared::Item(item) => Value::Item(Box::new(crate::task::ItemOf {
                    list: item.list.clone(),
                    index: item.index,
                    get: item.get,
                })),
            });
        }
        let inputs = Inputs::new(values, run.resources.clone());
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| (call.call)(inputs))) {
            Err(panic) => Err(Failure::panic(&*panic)),
            Ok(fut) => {
                let fut = tracing::Instrument::instrument(
                    fut,
                    crate::event::attempt_span(&node.id, call.item, task, number),
                );
                let guarded = AssertUnwindSafe(fut).catch_unwind();
                let caught = match policy.timeout {
                    Some(limit) => match tokio::time::timeout(limit, guarded).await {
                        Ok(caught) => caught,
                        Err(_) => Ok(Err(Failure::timeout(limit))),
                    },
                    None => guarded.await,
                };
                caught.unwrap_or_else(|panic| Err(Failure::panic(&*panic)))
            }
        };
        match outcome {
            Ok(value) => {
                return Ok(Success {
                    value,
                    attempts: u32::try_from(failures.len())
                        .unwrap_or(u32::MAX)
                        .saturating_add(1),
                    duration: start.elapsed(),
                    digest: None,
                });
            }
            Err(failure) => {
                let retryable = failure.is_retryable();
                failures.push(failure);
                let failed = u32::try_from(failures.len()).unwrap_or(u32::MAX);
                if !retryable || failed > policy.retries {
                    return Err(failures);
                }
                let delay = policy.backoff.delay_with_jitter(failed);
                if let Some(error) = failures.last() {
                    events.emit(&Event::Retrying {
                        node: id,
                        task,
                        attempt: failed,
                        delay,
                        error,
                    });
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

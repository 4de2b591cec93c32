//! The tasks that carry a run: the first takes the best ready node, and whoever finishes a
//! node carries on with the next, spawning helpers only when more nodes are ready than are
//! running. A chain therefore runs without a single spawn, and a fan-out spawns about as
//! many tokio tasks as the concurrency limit, not one per node.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::attempt::{Call, FOR_NODE, attempt_unless_cancelled};
#[cfg(feature = "postgres")]
use super::distributed;
use super::inputs::load_inputs;
use super::persist::record;
use super::schedule::Job;
use super::state::Run;
use super::{Runner, iterate, map, signal};
use crate::error::Error;
use crate::event::Event;
use crate::graph::Untyped;
use crate::store::{Stamps, StoreError};

impl Runner {
    /// Runs the nodes until every one has finished or the run stopped.
    pub(super) async fn execute(&self, graph: Untyped) -> Result<Arc<Run>, Error> {
        let Untyped {
            name,
            nodes,
            ids,
            error,
            ..
        } = graph;
        let name = &name;
        self.check_graph(error.as_ref())?;
        self.check_run(&nodes, name)?;
        let store = self.open_store().await?;
        let coordinator = match &self.shared_run {
            Some(_) => Some(
                store
                    .as_ref()
                    .and_then(|s| s.coordinator())
                    .ok_or_else(|| Error::NotShared {
                        store: store
                            .as_ref()
                            .map_or_else(|| "no store".to_owned(), |s| s.location()),
                    })?,
            ),
            None => None,
        };
        // Read the store on another worker while the run's tables are built here.
        let loading = store.clone().map(|s| {
            let name = name.to_owned();
            let ids = Arc::new(ids);
            tokio::spawn(async move { s.stamps(&name, ids).await })
        });
        let (mut run, done) = Run::new(nodes, self, name, store);
        let stamps = match loading {
            Some(handle) => handle
                .await
                .map_err(|e| Error::Internal(format!("reading the store failed: {e}")))??,
            None => Stamps::default(),
        };
        run.stamps = stamps.stamps;
        let run = Arc::new(run);
        run.save_shape(stamps.manifest);
        run.read_deliveries().await?;
        let ctrl_c = self.ctrl_c.then(|| {
            let cancel = run.cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    cancel.cancel();
                }
            })
        });
        // Only a store processes share has a coordinator, and the one there is is
        // PostgreSQL's: without it, a program has no distributed runner to carry.
        #[cfg(feature = "postgres")]
        let driven = match (&self.shared_run, coordinator) {
            (Some(name), Some(coordinator)) => {
                distributed::drive(&run, coordinator, name, self.lease, done).await
            }
            _ => Self::drive_local(&run, done).await,
        };
        #[cfg(not(feature = "postgres"))]
        let driven = {
            let _ = coordinator;
            Self::drive_local(&run, done).await
        };
        if let Some(listener) = ctrl_c {
            listener.abort();
        }
        driven?;

        let unloaded: Vec<usize> = {
            let state = run.lock();
            if run.events.on() {
                for (node, outcome) in run.nodes.iter().zip(&state.outcomes) {
                    if outcome.is_none() {
                        run.events.emit(&Event::Cancelled {
                            node: &node.id,
                            task: node.meta.task,
                        });
                    }
                }
            }
            (0..run.nodes.len())
                .filter(|&i| run.nodes[i].keep && state.outputs[i].is_none() && state.stored[i])
                .collect()
        };
        for i in unloaded {
            if let Err(message) = run.load_output(i).await {
                return Err(StoreError::Corrupt {
                    path: run
                        .store
                        .as_ref()
                        .map(|s| s.location())
                        .unwrap_or_default()
                        .into(),
                    detail: format!("{message}; run again to compute it afresh"),
                }
                .into());
            }
        }
        Ok(run)
    }

    /// Drives a run in this process alone, until every node has finished or it stopped.
    pub(super) async fn drive_local(
        run: &Arc<Run>,
        done: oneshot::Receiver<()>,
    ) -> Result<(), Error> {
        let watcher = run.cancellable.then(|| {
            // Wakes the run when cancelled while nothing is in flight to notice. Holds the
            // run weakly: nothing of a run outlives `run` returning.
            let cancel = run.cancel.clone();
            let weak = Arc::downgrade(run);
            tokio::spawn(async move {
                cancel.cancelled().await;
                let Some(run) = weak.upgrade() else { return };
                let done = {
                    let mut state = run.lock();
                    state.cancelled = true;
                    state.stopping = true;
                    state.ended()
                };
                drop(run);
                done.send();
            })
        });

        // Each driver holds a sender; the channel closes when the last one is gone.
        let (alive, mut drivers) = tokio::sync::mpsc::channel::<()>(1);
        let first = {
            let mut state = run.lock();
            let mut cached = Vec::new();
            let roots: Vec<usize> = (0..run.nodes.len())
                .filter(|&i| state.waiting[i] == 0)
                .collect();
            for i in roots {
                state.become_ready(run, i, &mut cached);
            }
            let mut first = None;
            let mut extra = Vec::new();
            while state.running < run.limit {
                let Some(job) = state.pop_ready(run) else {
                    break;
                };
                state.running += 1;
                if first.is_none() {
                    first = Some(job);
                } else {
                    extra.push(job);
                }
            }
            let ended = state.ended();
            let not_run = std::mem::take(&mut state.not_run);
            drop(state);
            ended.send();
            run.emit_cached(&cached);
            run.emit_not_run(&not_run);
            for job in extra {
                tokio::spawn(drive(run.clone(), job, alive.clone()));
            }
            first
        };
        if let Some(job) = first {
            drive(run.clone(), job, alive.clone()).await;
        }
        let finished = done.await;
        // Wait for every driver to let go of the run, so that nothing of it (the store
        // included) outlives this call.
        drop(alive);
        while drivers.recv().await.is_some() {}
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        finished
            .map_err(|_| Error::Internal("the run ended without signalling completion".into()))?;
        Ok(())
    }
}

/// Runs `job`, then keeps running whatever is ready next until nothing is.
/// Boxed because it spawns itself: the future's type must be named to be `Send`.
pub(super) fn drive(run: Arc<Run>, job: Job, alive: Alive) -> crate::task::BoxFuture<()> {
    Box::pin(drive_loop(run, job, alive))
}

/// Held by each driver until it has let go of the run.
pub(super) type Alive = tokio::sync::mpsc::Sender<()>;

pub(super) async fn drive_loop(run: Arc<Run>, mut job: Job, alive: Alive) {
    loop {
        let index = job.index;
        let inputs = match job.inputs.take() {
            Some(inputs) => Ok(inputs),
            None => load_inputs(&run, index).await,
        };
        let node = &run.nodes[index];
        let (result, write) = match inputs {
            // Boxed as trait objects: map, loop and signal nodes are rare, and none of their
            // code is compiled into this loop every node goes through.
            Ok(inputs) if node.map => {
                let reason = job.reason;
                let fingerprint = job.fingerprint.take();
                boxed(map::run_map(
                    &run,
                    index,
                    inputs,
                    reason,
                    fingerprint,
                    &alive,
                ))
                .await
            }
            Ok(inputs) if node.meta.looping.is_some() => {
                let reason = job.reason;
                let fingerprint = job.fingerprint.take();
                boxed(iterate::run_loop(&run, index, inputs, reason, fingerprint)).await
            }
            // `None`: the run ended while the signal waited, and there is nothing to record.
            Ok(_) if node.meta.signal.is_some() => {
                let Some(result) = boxed(signal::receive(&run, index, job.reason, &alive)).await
                else {
                    return;
                };
                record(&run, node, job.fingerprint.as_ref(), job.reason, result)
            }
            Err(failure) => record(
                &run,
                node,
                job.fingerprint.as_ref(),
                job.reason,
                Some(Err(vec![failure])),
            ),
            Ok(inputs) => {
                let result = attempt_unless_cancelled::<FOR_NODE>(
                    &run,
                    index,
                    &node.id,
                    inputs,
                    job.reason,
                    Call::task(&run, index),
                )
                .await;
                record(&run, node, job.fingerprint.as_ref(), job.reason, result)
            }
        };
        let (id, task) = (&*node.id, node.meta.task);

        match &result {
            Some(Ok(done)) if write.is_none() => run.events.emit(&Event::Completed {
                node: id,
                task,
                duration: done.duration,
                attempts: done.attempts,
            }),
            Some(Ok(_)) => {}
            Some(Err(failures)) => {
                if let Some(error) = failures.last() {
                    run.events.emit(&Event::Failed {
                        node: id,
                        task,
                        error,
                        attempts: u32::try_from(failures.len()).unwrap_or(u32::MAX),
                    });
                }
            }
            // Cancelled: `attempt_unless_cancelled` has stopped counting it as running.
            None => {}
        }
        let completed = match &result {
            Some(Ok(done)) => Some((index, done.duration, done.attempts)),
            _ => None,
        };
        let (goes_on, extra, skipped, cached, not_run, done) = {
            let mut state = run.lock();
            if write.is_some() {
                state.pending += 1;
            }
            let (skipped, cached) = state.finish(&run, index, result, job.reason);
            // The next job goes straight where this one was: a job is large, and each move
            // of it is a copy.
            let goes_on = match state.pop_ready(&run) {
                Some(next) => {
                    job = next;
                    true
                }
                None => {
                    state.running -= 1;
                    false
                }
            };
            let mut extra = Vec::new();
            // Most often nothing more is ready, and the cancellation was checked just above.
            while state.running < run.limit && !state.ready.is_empty() {
                let Some(more) = state.pop_ready(&run) else {
                    break;
                };
                state.running += 1;
                extra.push(more);
            }
            if !state.growing.is_empty() {
                state.grow_maps(&run);
            }
            let not_run = std::mem::take(&mut state.not_run);
            (goes_on, extra, skipped, cached, not_run, state.ended())
        };
        if let Some(write) = write {
            // Counted as pending above, under the same lock as the node's end.
            run.send_counted(write, completed);
        }
        if node.map || node.meta.looping.is_some() || node.meta.signal.is_some() {
            // What must follow a map, loop or signal node's record: the cleanup of its items
            // or iterations, or of the delivery it took from the store.
            run.send_after(index);
        }
        for s in skipped {
            run.events.emit(&Event::Skipped {
                node: &run.nodes[s].id,
                task: run.nodes[s].meta.task,
                because: id,
            });
        }
        run.emit_cached(&cached);
        run.emit_not_run(&not_run);
        for more in extra {
            tokio::spawn(drive(run.clone(), more, alive.clone()));
        }
        // The run ends once this is sent: every event is out by then, and a driver that
        // stops lets go of the run first, so nothing of it outlives `run` returning.
        if !goes_on {
            drop(run);
            done.send();
            drop(alive);
            return;
        }
        done.send();
        // A long chain of tasks that never wait must still let tokio run others.
        tokio::task::consume_budget().await;
    }
}

/// A future as a boxed trait object: polled through a pointer, so that its code stays out
/// of the caller's.
fn boxed<'a, T>(
    future: impl Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>> {
    Box::pin(future)
}

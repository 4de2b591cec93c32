//! A signal node in a run: it takes the value delivered for it (into the store before the
//! run, or by the program through [`Signals`](crate::Signals)), or waits for one without
//! holding a slot of the run's concurrency, for at most its timeout. The value is decoded
//! into the signal's type when taken, and recorded as the node's output like any other; a
//! delivery taken from the store is dropped from it once the record is written.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::attempt::Success;
use super::driver::{Alive, drive};
use super::state::{Run, State};
use crate::cache::{Digest, Reason, Stamp, Verdict};
use crate::event::Event;
use crate::failure::Failure;
use crate::signal::{Payload, SignalFns};
use crate::store::{StoreError, Write};

/// How often a wait looks in a store that other processes deliver into.
pub(super) const LOOK_EVERY: Duration = Duration::from_millis(500);

/// What a signal node ends with. The write that drops a delivery it took from the store
/// waits in `State::after`, to follow its record.
pub(super) type Received = Option<Result<Success, Vec<Failure>>>;

/// A delivery a signal node has taken: its value, and its digest if it came from the store.
pub(super) struct Taken {
    pub(super) payload: Payload,
    pub(super) stored: Option<Digest>,
}

/// How a wait ended, when the run did not end first.
enum Waited {
    Took(Taken),
    TimedOut(Duration),
}

impl Run {
    /// Reads the values the store holds for the graph's signal nodes, before the run starts.
    pub(super) async fn read_deliveries(&self) -> Result<(), StoreError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        if !self.nodes.iter().any(|n| n.meta.signal.is_some()) {
            return Ok(());
        }
        let deliveries = store.deliveries(&self.graph).await?;
        let mut state = self.lock();
        for delivery in deliveries {
            if let Some(i) = self.signal_named(&delivery.signal) {
                state.deliveries.insert(i, delivery);
            }
        }
        Ok(())
    }

    /// The signal node whose id is `name`.
    fn signal_named(&self, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.meta.signal.is_some() && *n.id == *name)
    }
}

/// The verdict of node `i`, unless it is a signal node whose stored value would answer while
/// a new value waits for it (in the store, or sent by the program): it then runs, to take it.
pub(super) fn redeliver(run: &Run, state: &State, i: usize, verdict: Verdict) -> Verdict {
    rerun_for_new_value(run, i, verdict, || {
        state.deliveries.contains_key(&i) || run.signals.has(&run.nodes[i].id)
    })
}

/// The verdict of node `i`, unless it is a signal node whose stored value would answer while
/// `waiting()` says a new value waits for it: it then runs, to take it. The one rule of local
/// and distributed runs.
pub(super) fn rerun_for_new_value(
    run: &Run,
    i: usize,
    verdict: Verdict,
    waiting: impl FnOnce() -> bool,
) -> Verdict {
    match (verdict, run.stamp(i)) {
        (Verdict::Cached(_), Some(Stamp::Done { fingerprint, .. }))
            if run.nodes[i].meta.signal.is_some() && waiting() =>
        {
            Verdict::Run(Reason::InputChanged, Some(*fingerprint))
        }
        (verdict, _) => verdict,
    }
}

/// Signal node `index`'s value: taken at once if one was delivered, else waited for.
/// `None` if the run ended while it waited: nothing is recorded, and the driver lets go.
pub(super) async fn receive(
    run: &Arc<Run>,
    index: usize,
    reason: Reason,
    alive: &Alive,
) -> Option<Received> {
    let node = &run.nodes[index];
    let start = std::time::Instant::now();
    run.events.emit(&Event::Started {
        node: &node.id,
        task: node.meta.task,
        attempt: 1,
        reason,
    });
    let at_hand = {
        let mut state = run.lock();
        at_hand(run, &mut state, index)
    };
    let waited = match at_hand {
        Some(taken) => Waited::Took(taken),
        None => wait(run, index, alive).await?,
    };
    let Some(signal) = node.meta.signal else {
        unreachable!("typedag: only signal nodes receive")
    };
    Some(match waited {
        Waited::Took(Taken { payload, stored }) => {
            if let Some(digest) = stored {
                // Taken from the store: dropped from it once the node's record is written.
                run.send_after_record(
                    index,
                    Write::Taken {
                        graph: run.graph.clone(),
                        signal: node.id.to_string(),
                        digest,
                    },
                );
            }
            Some(decoded(&node.id, signal, payload, start))
        }
        Waited::TimedOut(limit) => Some(Err(vec![timed_out(run, index, limit)])),
    })
}

/// A value taken by signal `id` as the node's output, or the failure that names the type it
/// expected.
pub(super) fn decoded(
    id: &str,
    signal: SignalFns,
    payload: Payload,
    start: std::time::Instant,
) -> Result<Success, Vec<Failure>> {
    (signal.decode)(id, payload)
        .map(|value| Success {
            value,
            attempts: 1,
            duration: start.elapsed(),
            digest: None,
        })
        .map_err(|message| vec![Failure::fatal(message)])
}

/// The failure of signal node `index` when no value arrived within `limit`: what to do.
pub(super) fn timed_out(run: &Run, index: usize, limit: Duration) -> Failure {
    let node = &run.nodes[index];
    // A shared store takes a delivery at any time; the embedded one while no program holds it.
    let when = match run
        .store
        .as_ref()
        .is_some_and(|s| s.coordinator().is_some())
    {
        true => "at any time",
        false => "while the program is not running",
    };
    let message = format!(
        "no value for signal `{id}` arrived within {limit:?}; send one (`Runner::signals().send(\"{id}\", value)`, or `typedag signal {graph} {id} JSON` {when}) and run again",
        id = node.id,
        graph = run.graph,
    );
    Failure::timed_out(message)
}

/// The value delivered for signal node `index`, if one waits: in the store first (it was
/// there before the run started), else sent by the program.
fn at_hand(run: &Run, state: &mut State, index: usize) -> Option<Taken> {
    if let Some(delivery) = state.deliveries.remove(&index) {
        return Some(Taken {
            stored: Some(delivery.digest()),
            payload: Payload::Json(delivery.json),
        });
    }
    run.signals.take(&run.nodes[index].id).map(|payload| Taken {
        payload,
        stored: None,
    })
}

/// Waits for a value for signal node `index`, having given back its slot; takes a slot again
/// before it returns a value or a timeout. `None` if the run ended first.
async fn wait(run: &Arc<Run>, index: usize, alive: &Alive) -> Option<Waited> {
    let node = &run.nodes[index];
    let timeout = node.options.timeout;
    run.events.emit(&Event::Waiting {
        node: &node.id,
        task: node.meta.task,
        timeout,
    });
    give_back_slot(run, index, alive);
    let deadline = timeout.map(|t| Instant::now() + t);
    // Another process may deliver into a shared store while this one runs: look now and then.
    let shared = run
        .store
        .as_ref()
        .filter(|s| s.coordinator().is_some())
        .cloned();
    loop {
        let sent = run.signals.sent();
        let mut sent = std::pin::pin!(sent);
        sent.as_mut().enable();
        {
            let mut state = run.lock();
            if state.stopping || run.over.is_cancelled() {
                drop(state);
                run.events.stopped_running();
                return None;
            }
            let waited = match at_hand(run, &mut state, index) {
                Some(taken) => Some(Waited::Took(taken)),
                None => deadline
                    .zip(timeout)
                    .filter(|(d, _)| Instant::now() >= *d)
                    .map(|(_, limit)| Waited::TimedOut(limit)),
            };
            if waited.is_some() {
                state.running += 1;
                return waited;
            }
        }
        if let Some(store) = &shared
            && let Ok(deliveries) = store.deliveries(&run.graph).await
            && let Some(delivery) = deliveries.into_iter().find(|d| *d.signal == *node.id)
        {
            run.lock().deliveries.insert(index, delivery);
            continue;
        }
        let look = shared.as_ref().map(|_| Instant::now() + LOOK_EVERY);
        let until = match (deadline, look) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            () = &mut sent => {}
            () = run.over.cancelled() => {}
            () = sleep_until(until) => {}
        }
    }
}

/// Sleeps until `until`, or forever.
async fn sleep_until(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// A waiting signal node holds no slot: the nodes that were ready for one start now, and a
/// run that was stopping may end.
fn give_back_slot(run: &Arc<Run>, index: usize, alive: &Alive) {
    let (jobs, done) = {
        let mut state = run.lock();
        let jobs = state.give_slot(run, index);
        (jobs, state.ended())
    };
    done.send();
    for job in jobs {
        tokio::spawn(drive(run.clone(), job, alive.clone()));
    }
}

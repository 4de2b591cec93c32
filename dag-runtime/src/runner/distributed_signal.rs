//! A signal node in a distributed run: the process that claims it waits for its value (a
//! delivery in the shared store, or a value sent through this process's `Signals`) under its
//! lease, without counting against the claims it may hold, for at most its timeout; then
//! records it through the normal completion. Values sent through a process's `Signals` are
//! passed on to the store, for whichever process holds the wait. A delivery taken from the store is dropped from
//! it only once that completion holds, so each value is taken once, by one process, and a
//! process that dies while it waits leaves both the node and the value to another.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::distributed::{Participant, SharedOutcome, UNFINGERPRINTED};
use super::distributed_end::{Settling, complete, end, settle_cached, settle_failed, settle_ran};
use super::persist::encode_output;
use super::signal::{LOOK_EVERY, Taken, decoded, rerun_for_new_value, timed_out};
use crate::cache::{Digest, Verdict};
use crate::error::Error;
use crate::event::Event;
use crate::signal::Payload;
use crate::store::shared::{Claim, RowState};
use crate::store::{Delivery, StoreError, Write};

/// How a wait ended.
enum Waited {
    Took(Taken),
    TimedOut(Duration),
    /// The run stops (a failure, with `fail_fast`): nothing more starts, nor waits.
    Stopped,
}

/// Settles claimed signal node `i`, whose verdict is `verdict`: cached if its stored value
/// answers and no new value waits, else with the value it waits for, or its timeout.
pub(super) async fn run_signal(
    ctx: &Participant,
    claim: &Claim,
    i: usize,
    verdict: Verdict,
) -> Result<(), Error> {
    let run = &ctx.run;
    let node = &run.nodes[i];
    let mut stored = stored_delivery(ctx, i).await?;
    let verdict = rerun_for_new_value(run, i, verdict, || {
        stored.is_some() || run.signals.has(&node.id)
    });
    let (reason, fingerprint) = match verdict {
        Verdict::Cached(digest) => return settle_cached(ctx, claim, i, Some(digest), None).await,
        Verdict::Run(reason, fingerprint) => (reason, fingerprint.unwrap_or(UNFINGERPRINTED)),
        Verdict::Waits(_) => unreachable!("a signal node has no inputs to wait for"),
    };
    let Some(signal) = node.meta.signal else {
        unreachable!("typedag: only signal nodes receive")
    };
    let start = Instant::now();
    run.events.emit(&Event::Started {
        node: &node.id,
        task: node.meta.task,
        attempt: 1,
        reason,
    });
    // No fingerprint is shared with other runs: every signal of a type has the same one,
    // and another graph's value is not this one's.
    let settling = Settling {
        claim,
        index: i,
        reason,
        fingerprint,
        key: None,
    };
    let (result, taken) = match wait(ctx, i, &mut stored).await? {
        Waited::Took(Taken { payload, stored }) => {
            (decoded(&node.id, signal, payload, start), stored)
        }
        Waited::TimedOut(limit) => (Err(vec![timed_out(run, i, limit)]), None),
        Waited::Stopped => return let_go(ctx, claim).await,
    };
    let encoded = result.and_then(|done| match encode_output(node, &done.value) {
        Ok((bytes, digest)) => Ok((done, bytes, digest)),
        Err(failure) => Err(vec![failure]),
    });
    let held = match encoded {
        Ok((done, bytes, digest)) => settle_ran(ctx, &settling, &done, bytes, digest, None).await?,
        Err(failures) => settle_failed(ctx, &settling, failures, None).await?,
    };
    // A value taken and recorded (or refused as not of the signal's type) is dropped from
    // the store; a claim lost meanwhile leaves it to the process that holds the node now.
    if let Some(digest) = taken.filter(|_| held) {
        drop_delivery(ctx, i, digest).await?;
    }
    Ok(())
}

/// The delivery the shared store holds for signal node `i`, if any.
async fn stored_delivery(ctx: &Participant, i: usize) -> Result<Option<Delivery>, StoreError> {
    let run = &ctx.run;
    let Some(store) = &run.store else {
        return Ok(None);
    };
    let id = &*run.nodes[i].id;
    Ok(store
        .deliveries(&run.graph)
        .await?
        .into_iter()
        .find(|d| d.signal == id))
}

/// Waits for a value for signal node `i`: `stored` if the store held one, else one sent
/// through this process's `Signals` or delivered into the store meanwhile (looked for every
/// half second), unless it times out or the run stops first.
async fn wait(ctx: &Participant, i: usize, stored: &mut Option<Delivery>) -> Result<Waited, Error> {
    let run = &ctx.run;
    let node = &run.nodes[i];
    let timeout = node.options.timeout;
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut waiting: Option<Waiting<'_>> = None;
    loop {
        let sent = run.signals.sent();
        let mut sent = std::pin::pin!(sent);
        sent.as_mut().enable();
        if let Some(delivery) = stored.take() {
            return Ok(Waited::Took(Taken {
                stored: Some(delivery.digest()),
                payload: Payload::Json(delivery.json),
            }));
        }
        if let Some(payload) = run.signals.take(&node.id) {
            return Ok(Waited::Took(Taken {
                payload,
                stored: None,
            }));
        }
        if let (Some(d), Some(limit)) = (deadline, timeout)
            && tokio::time::Instant::now() >= d
        {
            return Ok(Waited::TimedOut(limit));
        }
        if waiting.is_none() {
            run.events.emit(&Event::Waiting {
                node: &node.id,
                task: node.meta.task,
                timeout,
            });
            waiting = Some(Waiting::start(ctx));
        }
        let look = tokio::time::Instant::now() + LOOK_EVERY;
        let until = deadline.map_or(look, |d| d.min(look));
        tokio::select! {
            () = &mut sent => {}
            () = tokio::time::sleep_until(until) => {}
        }
        // The run may have stopped (in this process or another): then this wait ends too.
        if ctx.coordinator.progress(ctx.name.clone()).await?.stopping {
            return Ok(Waited::Stopped);
        }
        *stored = stored_delivery(ctx, i).await?;
    }
}

/// Lets go of claimed signal node `claim` in a run that stops: its row is ready again, with
/// nothing recorded, so that no process waits for it and every report has it unfinished.
async fn let_go(ctx: &Participant, claim: &Claim) -> Result<(), Error> {
    let mut e = end(claim, RowState::Ready, None, &SharedOutcome::Cached);
    // No outcome: an empty one, which every process reads as none.
    e.outcome = Vec::new();
    complete(ctx, e).await?;
    ctx.run.events.stopped_running();
    Ok(())
}

/// Drops the delivery of signal node `i` whose JSON has `digest` from the store, once its
/// node's completion has held; a value delivered since stays, for the next run.
async fn drop_delivery(ctx: &Participant, i: usize, digest: Digest) -> Result<(), StoreError> {
    let run = &ctx.run;
    write(
        ctx,
        Write::Taken {
            graph: run.graph.clone(),
            signal: run.nodes[i].id.to_string(),
            digest,
        },
    )
    .await
}

/// Writes `write` to the run's store, and waits until it is durable.
async fn write(ctx: &Participant, write: Write) -> Result<(), StoreError> {
    let Some(store) = &ctx.run.store else {
        return Ok(());
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.write(
        write,
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    rx.await.unwrap_or_else(|_| {
        Err(StoreError::Other {
            location: store.location(),
            message: "the store stopped before a signal's delivery was written".into(),
        })
    })
}

/// Passes the values sent through this process's `Signals` to the graph's signal nodes on
/// to the shared store, as they come, so that whichever process holds a wait takes them;
/// runs until the run ends, and returns only if the store fails.
pub(super) async fn forward_sent(ctx: &Participant) -> StoreError {
    loop {
        let sent = ctx.run.signals.sent();
        let mut sent = std::pin::pin!(sent);
        sent.as_mut().enable();
        if let Err(e) = forward(ctx).await {
            return e;
        }
        sent.await;
    }
}

/// Delivers into the shared store each value this process's `Signals` holds for one of the
/// graph's signal nodes, by node. A value not of the signal's type stays in the handle: the
/// node fails with it if this process holds the node.
pub(super) async fn forward(ctx: &Participant) -> Result<Vec<(usize, Delivery)>, StoreError> {
    let run = &ctx.run;
    let mut forwarded = Vec::new();
    for (i, node) in run.nodes.iter().enumerate() {
        let Some(signal) = node.meta.signal else {
            continue;
        };
        let Some(payload) = run.signals.take(&node.id) else {
            continue;
        };
        let json = match &payload {
            Payload::Json(json) => Some(json.clone()),
            Payload::Value(value, _) => (signal.json)(value.as_ref()),
        };
        let Some(json) = json else {
            run.signals.restore(&node.id, payload);
            continue;
        };
        let delivery = Delivery::new(node.id.to_string(), json);
        let graph = run.graph.clone();
        write(
            ctx,
            Write::Deliver {
                graph,
                delivery: delivery.clone(),
            },
        )
        .await?;
        forwarded.push((i, delivery));
    }
    Ok(forwarded)
}

/// A signal node of this process that waits: not counted against the claims this process
/// may hold, from its start until it is dropped (the wait ended or was aborted).
struct Waiting<'a>(&'a Participant);

impl<'a> Waiting<'a> {
    fn start(ctx: &'a Participant) -> Self {
        ctx.waiting.fetch_add(1, Ordering::SeqCst);
        ctx.room_changed.notify_one();
        Self(ctx)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

//! A run shared by several processes: this process claims ready nodes from the store's
//! coordinator, runs them with the same attempts, retries and timeouts as a local run,
//! and records each end in a transaction fenced by its claim. The run ends, in every
//! process, when no node is left to run. Map nodes and their items: `distributed_map.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;

use super::attempt::{Call, FOR_SHARED, attempt};
use super::condition::{self, not_run_digest};
use super::distributed_end::{
    Adopted, Finished, Settling, complete, end, finished, settle_cached, settle_failed, settle_ran,
};
use super::distributed_map::{self, Maps};
use super::distributed_signal::{forward, forward_sent, run_signal};
use super::distributed_tally::SharedItems;
use super::inputs::{Held, Prepared, assemble};
use super::persist::{adopted_record, encode_output};
use super::plan::upstream_of;
use super::signal::redeliver;
use super::state::Run;
use crate::cache::{Digest, Fingerprint, Reason};
use crate::cache::{InputDigest, Upstream, Verdict, verdict};
use crate::error::{Error, GraphError};
use crate::failure::Failure;
use crate::report::Outcome;
use crate::store::shared::{Begin, Claim, ClaimKind, Coordinator, Join, JoinNode, RowState};
use crate::task::Shared;

/// A node's outcome as every process of the run reads it.
#[derive(Serialize, Deserialize)]
pub(super) enum SharedOutcome {
    Ran {
        attempts: u32,
        duration_us: u64,
        reason: Reason,
    },
    Cached,
    Failed {
        attempts: Vec<Failure>,
    },
    Skipped {
        because: String,
    },
    /// Its condition did not hold, or it reads a node that did not run: said why.
    NotRun {
        condition: String,
    },
    /// A map node's end, and what became of its items.
    Mapped {
        end: Box<SharedOutcome>,
        items: SharedItems,
    },
}

impl SharedOutcome {
    pub(super) fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("an outcome is strings and numbers, which always encode")
    }

    /// This outcome, with a map node's items when it has them.
    pub(super) fn with_items(self, items: Option<SharedItems>) -> Self {
        match items {
            Some(items) => SharedOutcome::Mapped {
                end: Box::new(self),
                items,
            },
            None => self,
        }
    }

    /// The outcome of the node itself, and what became of its items if it is a map node.
    fn split(self) -> (SharedOutcome, Option<SharedItems>) {
        match self {
            SharedOutcome::Mapped { end, items } => (end.split().0, Some(items)),
            other => (other, None),
        }
    }

    fn outcome(self) -> Outcome {
        match self {
            SharedOutcome::Ran {
                attempts,
                duration_us,
                reason,
            } => Outcome::Ran {
                attempts,
                duration: Duration::from_micros(duration_us),
                reason,
            },
            SharedOutcome::Cached => Outcome::Cached,
            SharedOutcome::Failed { attempts } => Outcome::Failed { attempts },
            SharedOutcome::Skipped { because } => Outcome::Skipped { because },
            SharedOutcome::NotRun { condition } => Outcome::NotRun { condition },
            SharedOutcome::Mapped { end, .. } => end.outcome(),
        }
    }
}

/// The fingerprint recorded for what has none (a node without fixed parts).
pub(super) const UNFINGERPRINTED: Fingerprint = Fingerprint {
    code: [0; 32],
    output_type: [0; 32],
    inputs: [0; 32],
    upstream: [0; 32],
};

/// What every claim of this process shares.
pub(super) struct Participant {
    pub(super) run: Arc<Run>,
    pub(super) coordinator: Arc<dyn Coordinator>,
    pub(super) name: String,
    me: String,
    lease: Duration,
    /// Each node's distinct upstream nodes.
    pub(super) upstream: Vec<Vec<u32>>,
    /// Each node's distinct dependents.
    pub(super) dependents: Vec<Vec<u32>>,
    /// The inputs of the map nodes whose items this process runs, read once.
    pub(super) maps: Maps,
    /// How many of this process's claims are signal nodes waiting for a value: they hold
    /// no room for claims.
    pub(super) waiting: AtomicUsize,
    /// Wakes the claiming loop when a signal node starts waiting, to claim in its room.
    pub(super) room_changed: Notify,
}

/// Takes part in shared run `name` until it has ended, then fills the run's state with
/// every node's outcome, as a local run would have.
pub(super) async fn drive(
    run: &Arc<Run>,
    coordinator: Arc<dyn Coordinator>,
    name: &str,
    lease: Duration,
    done: oneshot::Receiver<()>,
) -> Result<(), Error> {
    for node in &run.nodes {
        if node.meta.codec.is_none() {
            return Err(GraphError::NotShareable {
                graph: run.graph.clone(),
                node: node.id.to_string(),
                task: node.meta.task,
            }
            .into());
        }
    }
    let n = run.nodes.len();
    let mut upstream = vec![Vec::new(); n];
    let mut dependents = vec![Vec::new(); n];
    for (i, node) in run.nodes.iter().enumerate() {
        let mut seen = HashSet::new();
        for (_, j) in node.upstream() {
            if seen.insert(j) {
                upstream[i].push(u32::try_from(j).unwrap_or(u32::MAX));
                dependents[j].push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
    }
    let ctx = Arc::new(Participant {
        run: run.clone(),
        coordinator,
        name: name.to_owned(),
        me: identity(),
        lease,
        upstream,
        dependents,
        maps: Maps::default(),
        waiting: AtomicUsize::new(0),
        room_changed: Notify::new(),
    });
    // Values sent before the run are in the store before it is planned, as if delivered.
    for (i, delivery) in forward(&ctx).await? {
        run.lock().deliveries.insert(i, delivery);
    }
    ctx.coordinator.join(plan(&ctx)).await?;
    let cancelled = tokio::select! {
        cancelled = claim_and_run(&ctx) => cancelled,
        failed = forward_sent(&ctx) => Err(failed.into()),
    };
    let ends = ctx.coordinator.nodes(ctx.name.clone()).await?;
    let finished = {
        let mut state = run.lock();
        for end in ends {
            let i = end.index as usize;
            if i >= n {
                continue;
            }
            let (ended, items) = end
                .outcome
                .as_deref()
                .and_then(|b| postcard::from_bytes::<SharedOutcome>(b).ok())
                .map_or((None, None), |o| {
                    let (ended, items) = o.split();
                    (Some(ended), items)
                });
            if let Some(items) = items {
                state.items.insert(i, items.into());
            }
            // A node that did not run is done, with a digest that stands for it and no
            // output in the store.
            let not_run = matches!(ended, Some(SharedOutcome::NotRun { .. }));
            if let Some(ended) = ended {
                state.failed |= matches!(ended, SharedOutcome::Failed { .. });
                state.outcomes[i] = Some(ended.outcome());
            }
            if end.state == Some(RowState::Done) {
                state.digests[i] = end.digest;
                state.stored[i] = end.digest.is_some() && !not_run;
            }
        }
        state.cancelled |= cancelled?;
        state.unfinished = 0;
        state.stopping = true;
        state.ended()
    };
    finished.send();
    done.await
        .map_err(|_| Error::Internal("the run ended without signalling completion".into()))
}

/// Who this process is, in the store's rows: host, process id, and a random part.
fn identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let nonce = crate::store::shared::nonce();
    format!("{host}:{}:{}", std::process::id(), &nonce[..8])
}

/// The run's rows, for whichever process creates it: nodes whose record answers for them
/// from inputs that are all cached too are done before anything runs. A node that may not
/// run is left to the process that claims it, which decides its condition first, as a
/// local run does.
fn plan(ctx: &Participant) -> Join {
    let run = &ctx.run;
    let mut digests: Vec<Option<Digest>> = vec![None; run.nodes.len()];
    let mut scratch = Vec::new();
    let cached = SharedOutcome::Cached.encode();
    let nodes = run
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let upstream = upstream_of(
                node,
                |j| match &digests[j] {
                    Some(d) => InputDigest::Known(d),
                    None => InputDigest::Pending(""),
                },
                &mut scratch,
            );
            let known = matches!(upstream, Upstream::Known(_)) && !node.maybe;
            let found = verdict(run.plan[i].parts.as_ref(), run.stamp(i), upstream);
            let found = redeliver(run, &run.lock(), i, found);
            let done = match found {
                Verdict::Cached(d) if known => {
                    digests[i] = Some(d);
                    Some((d, cached.clone()))
                }
                _ => None,
            };
            let waiting = ctx.upstream[i]
                .iter()
                .filter(|&&j| digests[j as usize].is_none())
                .count();
            JoinNode {
                id: node.id.to_string(),
                inputs: ctx.upstream[i].clone(),
                priority: run.plan[i].priority,
                waiting: if done.is_some() {
                    0
                } else {
                    u32::try_from(waiting).unwrap_or(u32::MAX)
                },
                done,
            }
        })
        .collect();
    Join {
        run: ctx.name.clone(),
        graph: run.graph.clone(),
        shape: run.shape.unwrap_or_default(),
        nodes,
    }
}

/// Claims and runs nodes until the run has ended (or stopped); `Ok(true)` if this process
/// was cancelled.
async fn claim_and_run(ctx: &Arc<Participant>) -> Result<bool, Error> {
    let run = &ctx.run;
    let mut tasks: JoinSet<Result<(), Error>> = JoinSet::new();
    let mut renew = tokio::time::interval(ctx.lease / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renew.tick().await;
    // Idle processes look again this often even without a notification, for leases that
    // ran out.
    let idle = (ctx.lease / 4).min(Duration::from_secs(2));
    // Searching for ready nodes is worth it when another process has done something since
    // the last search; the nodes this process readies come back to it directly.
    let mut searched: Option<u64> = None;
    loop {
        if run.cancel.is_cancelled() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            ctx.coordinator
                .release(ctx.name.clone(), ctx.me.clone())
                .await?;
            return Ok(true);
        }
        let seen = ctx.coordinator.wakes();
        let busy = tasks
            .len()
            .saturating_sub(ctx.waiting.load(Ordering::SeqCst));
        let room = run.limit.saturating_sub(busy);
        let mut claimed = 0;
        if room > 0 {
            let search = tasks.is_empty() || searched != Some(seen);
            let claims = ctx
                .coordinator
                .claim(ctx.name.clone(), ctx.me.clone(), room, ctx.lease, search)
                .await?;
            if search {
                searched = Some(seen);
            }
            claimed = claims.len();
            for claim in claims {
                let ctx = ctx.clone();
                tasks.spawn(async move { work(&ctx, claim).await });
            }
        }
        if tasks.is_empty() {
            let progress = ctx.coordinator.progress(ctx.name.clone()).await?;
            if progress.ended {
                return Ok(false);
            }
            if progress.stopping && progress.open_maps > 0 {
                // Nothing starts any more; a map node the stop caught between its items
                // still ends, failed as a local one would, before the run does. Another
                // process may be claiming it: then its end wakes this one.
                let stopped = ctx
                    .coordinator
                    .claim_stopped(ctx.name.clone(), ctx.me.clone(), run.limit, ctx.lease)
                    .await?;
                claimed = stopped.len();
                for claim in stopped {
                    let ctx = ctx.clone();
                    tasks.spawn(async move { work(&ctx, claim).await });
                }
            }
            if claimed == 0 {
                tokio::select! {
                    _ = ctx.coordinator.wait(seen, idle) => {}
                    () = run.cancel.cancelled(), if run.cancellable => {}
                }
            }
            continue;
        }
        tokio::select! {
            joined = tasks.join_next() => {
                if let Some(joined) = joined {
                    joined.map_err(|e| Error::Internal(format!("a claimed node's task stopped: {e}")))??;
                }
            }
            _ = renew.tick() => {
                ctx.coordinator.renew(ctx.name.clone(), ctx.me.clone(), ctx.lease).await?;
            }
            _ = ctx.coordinator.wait(seen, idle), if room > claimed => {}
            // A signal that starts to wait leaves room that ready nodes may fill: search.
            () = ctx.room_changed.notified() => searched = None,
            () = run.cancel.cancelled(), if run.cancellable => {}
        }
    }
}

/// Runs one claimed node (or finds it cached) and records its end; an item of a map node
/// goes to `distributed_map.rs`, as does a map node once its verdict says it runs.
async fn work(ctx: &Participant, claim: Claim) -> Result<(), Error> {
    let run = &ctx.run;
    if let ClaimKind::Item {
        parent,
        position,
        key,
    } = claim.kind
    {
        return distributed_map::run_item(ctx, &claim, parent as usize, position as usize, key)
            .await;
    }
    let i = claim.index as usize;
    let node = run
        .nodes
        .get(i)
        .ok_or_else(|| Error::Internal(format!("claimed node {i} is not in the graph")))?;
    let digests = finished(ctx, i, &claim);
    let mut scratch = Vec::new();
    let upstream = upstream_of(
        node,
        |j| match digests.digest(j) {
            Some(d) => InputDigest::Known(d),
            None => InputDigest::Missing,
        },
        &mut scratch,
    );
    if let Some(why) = condition::unmet(&run.nodes, i, |j| digests.not_run(j), |j| digests.value(j))
    {
        let ended = SharedOutcome::NotRun {
            condition: why.clone(),
        };
        let mut e = end(&claim, RowState::Done, Some(not_run_digest()), &ended);
        e.dependents.clone_from(&ctx.dependents[i]);
        if complete(ctx, e).await? {
            run.emit_not_run(&[(i, why)]);
        }
        return Ok(());
    }
    let found = verdict(run.plan[i].parts.as_ref(), run.stamp(i), upstream);
    if node.meta.signal.is_some() {
        return run_signal(ctx, &claim, i, found).await;
    }
    let (reason, fingerprint) = match found {
        Verdict::Cached(digest) => return settle_cached(ctx, &claim, i, Some(digest), None).await,
        Verdict::Run(reason, fingerprint) => (reason, fingerprint),
        Verdict::Waits(_) => unreachable!("every upstream digest is known when claimed"),
    };
    let fingerprint = fingerprint.unwrap_or(UNFINGERPRINTED);
    if node.map {
        // A map node is not computed whole, so no other claim computes its fingerprint:
        // its items are claimed one by one instead.
        let settling = Settling {
            claim: &claim,
            index: i,
            reason,
            fingerprint,
            key: None,
        };
        return distributed_map::run_map(ctx, &settling, &digests).await;
    }
    // One computation per fingerprint at a time, over every run: if another claim is
    // computing the same thing, wait for it and take its output. The inputs are read
    // meanwhile.
    let key = node.meta.task_options.cache.then(|| fingerprint.key());
    let mut prepared = None;
    if let Some(key) = key {
        let mut first = true;
        loop {
            let seen = ctx.coordinator.wakes();
            let begin = ctx
                .coordinator
                .begin(key, claim.token, ctx.me.clone(), ctx.lease);
            let begun = if first {
                first = false;
                let (begun, read) = tokio::join!(begin, inputs(ctx, i, &digests));
                prepared = Some(read);
                begun?
            } else {
                begin.await?
            };
            match begun {
                Begin::Go => break,
                Begin::Busy => {
                    ctx.coordinator
                        .wait(seen, Duration::from_millis(200))
                        .await?;
                }
                Begin::Found(found) => {
                    let digest = found.digest().copied();
                    let record = adopted_record(node, fingerprint, reason, *found);
                    let adopted = Adopted { key, record };
                    return settle_cached(ctx, &claim, i, digest, Some(adopted)).await;
                }
            }
        }
    }
    let prepared = match prepared {
        Some(read) => read,
        None => inputs(ctx, i, &digests).await,
    };
    let result = match prepared {
        Ok(prepared) => {
            let call = Call::task(run, i);
            attempt::<FOR_SHARED>(run, i, &run.nodes[i].id, prepared, reason, call).await
        }
        Err(failure) => Err(vec![failure]),
    };
    let encoded = result.and_then(|done| match encode_output(node, &done.value) {
        Ok((bytes, digest)) => Ok((done, bytes, digest)),
        Err(failure) => Err(vec![failure]),
    });
    let settling = Settling {
        claim: &claim,
        index: i,
        reason,
        fingerprint,
        key,
    };
    match encoded {
        Ok((done, bytes, digest)) => {
            settle_ran(ctx, &settling, &done, bytes, digest, None).await?;
        }
        Err(failures) => {
            settle_failed(ctx, &settling, failures, None).await?;
        }
    }
    Ok(())
}

/// A claimed node's inputs: the upstream outputs it reads (not its condition, nor a node
/// that did not run), read from the store and decoded.
pub(super) async fn inputs(
    ctx: &Participant,
    i: usize,
    digests: &Finished,
) -> Result<Vec<Prepared>, Failure> {
    let run = &ctx.run;
    let spec = &run.nodes[i];
    let needed: Vec<Option<usize>> = spec
        .upstream()
        .map(|(param, j)| condition::needs(spec, param, digests.not_run(j)).then_some(j))
        .collect();
    let mut ups: Vec<usize> = needed.iter().flatten().copied().collect();
    ups.sort_unstable();
    ups.dedup();
    let wanted: Vec<Digest> = ups
        .iter()
        .map(|&j| digests.digest(j).copied().unwrap_or_default())
        .collect();
    let bytes = ctx
        .coordinator
        .outputs(wanted)
        .await
        .map_err(|e| Failure::fatal(e.to_string()))?;
    let mut values: HashMap<usize, Shared> = HashMap::with_capacity(ups.len());
    for (&j, b) in ups.iter().zip(bytes) {
        let input = &run.nodes[j];
        let Some(b) = b else {
            return Err(Failure::fatal(format!(
                "the output of node `{}` is missing from the store",
                input.id
            )));
        };
        let decode = input.decoder().expect("checked before the run");
        let value = decode(&b).map_err(|e| {
            Failure::fatal(format!(
                "the output of node `{}` cannot be decoded: {e}",
                input.id
            ))
        })?;
        values.insert(j, value);
    }
    assemble(
        spec,
        needed.into_iter().map(|j| match j.map(|j| values.get(&j)) {
            Some(Some(v)) => Held::Value(v.clone()),
            Some(None) => Held::Stored,
            None => Held::Unneeded,
        }),
    )
    .ok_or_else(|| Failure::fatal("typedag: an input went missing while loading".into()))
}

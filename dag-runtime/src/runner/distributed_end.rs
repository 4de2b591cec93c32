//! How a claimed node ends in a run shared by several processes: its record written and
//! its row completed in one transaction fenced by its claim (cached, ran, failed), which
//! readies its dependents or skips them, and the upstream digests a claim saw.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::attempt::Success;
use super::condition::{bool_of_digest, not_run_digest};
use super::distributed::{Participant, SharedOutcome};
use super::distributed_tally::SharedItems;
use super::persist::{completed_record, failed_record};
use crate::cache::{Digest, Fingerprint, Reason};
use crate::error::Error;
use crate::event::Event;
use crate::failure::Failure;
use crate::store::StoreError;
use crate::store::shared::{Claim, Completion, RowState};

/// What a claimed node takes from another claim that computed its fingerprint: the
/// fingerprint to let go of, and the record to keep.
pub(super) struct Adopted {
    pub(super) key: Digest,
    pub(super) record: crate::store::Record,
}

/// Records claimed node `i` as cached, with output `digest` (an output of its own record,
/// or `adopted` from another claim's), and readies its dependents; then sends `Cached`.
pub(super) async fn settle_cached(
    ctx: &Participant,
    claim: &Claim,
    i: usize,
    digest: Option<Digest>,
    adopted: Option<Adopted>,
) -> Result<(), Error> {
    let mut e = end(claim, RowState::Done, digest, &SharedOutcome::Cached);
    e.dependents.clone_from(&ctx.dependents[i]);
    if let Some(Adopted { key, record }) = adopted {
        e.fingerprint = Some(key);
        e.save = Some((ctx.run.nodes[i].id.to_string(), record, None));
    }
    if complete(ctx, e).await? {
        ctx.run.emit_cached(&[i]);
    }
    Ok(())
}

/// A claimed node of the graph that ran (or tried to), about to be recorded.
pub(super) struct Settling<'a> {
    pub(super) claim: &'a Claim,
    /// The node's position.
    pub(super) index: usize,
    pub(super) reason: Reason,
    pub(super) fingerprint: Fingerprint,
    /// The fingerprint it took to compute, to let go of.
    pub(super) key: Option<Digest>,
}

/// Records a claimed node that completed with `bytes`: its output, record and outcome
/// (with its items', for a map node), and readies its dependents; then sends its
/// `Completed` event, or `Lost` if its claim was lost. Whether the claim held.
pub(super) async fn settle_ran(
    ctx: &Participant,
    s: &Settling<'_>,
    done: &Success,
    bytes: Vec<u8>,
    digest: Digest,
    items: Option<SharedItems>,
) -> Result<bool, Error> {
    let run = &ctx.run;
    let node = &run.nodes[s.index];
    let (id, task) = (&*node.id, node.meta.task);
    let ended = SharedOutcome::Ran {
        attempts: done.attempts,
        duration_us: u64::try_from(done.duration.as_micros()).unwrap_or(u64::MAX),
        reason: s.reason,
    }
    .with_items(items);
    let mut e = end(s.claim, RowState::Done, Some(digest), &ended);
    e.dependents.clone_from(&ctx.dependents[s.index]);
    e.fingerprint = s.key;
    let record = completed_record(node, s.fingerprint, s.reason, digest, &bytes, done);
    e.save = Some((id.to_owned(), record, Some(bytes)));
    let held = complete(ctx, e).await?;
    if held {
        run.events.emit(&Event::Completed {
            node: id,
            task,
            duration: done.duration,
            attempts: done.attempts,
        });
    } else {
        run.events.emit(&Event::Lost { node: id, task });
    }
    Ok(held)
}

/// Records a claimed node that failed for good after `failures`: its record and outcome
/// (with its items', for a map node), every node below skipped, the run stopped if it
/// stops at the first failure; then sends the events, or `Lost` if its claim was lost.
/// Whether the claim held.
pub(super) async fn settle_failed(
    ctx: &Participant,
    s: &Settling<'_>,
    failures: Vec<Failure>,
    items: Option<SharedItems>,
) -> Result<bool, Error> {
    let run = &ctx.run;
    let node = &run.nodes[s.index];
    let (id, task) = (&*node.id, node.meta.task);
    let attempts = u32::try_from(failures.len()).unwrap_or(u32::MAX);
    let ended = SharedOutcome::Failed {
        attempts: failures.clone(),
    }
    .with_items(items);
    let mut e = end(s.claim, RowState::Failed, None, &ended);
    e.fingerprint = s.key;
    e.stop = run.fail_fast;
    e.skip = descendants(ctx, s.index);
    e.skip_outcome = SharedOutcome::Skipped {
        because: id.to_owned(),
    }
    .encode();
    let record = failed_record(node, s.fingerprint, s.reason, &failures, Duration::ZERO);
    e.save = Some((id.to_owned(), record, None));
    let skipped = e.skip.clone();
    let held = complete(ctx, e).await?;
    if held {
        if let Some(error) = failures.last() {
            run.events.emit(&Event::Failed {
                node: id,
                task,
                error,
                attempts,
            });
        }
        for s in skipped {
            let s = &run.nodes[s as usize];
            run.events.emit(&Event::Skipped {
                node: &s.id,
                task: s.meta.task,
                because: id,
            });
        }
    } else {
        run.events.emit(&Event::Lost { node: id, task });
    }
    Ok(held)
}

/// The end of claimed row `claim`, with nothing else to do yet: no record, no dependents.
pub(super) fn end(
    claim: &Claim,
    state: RowState,
    digest: Option<Digest>,
    ended: &SharedOutcome,
) -> Completion {
    Completion {
        index: claim.index,
        token: claim.token,
        state,
        digest,
        outcome: ended.encode(),
        save: None,
        dependents: Vec::new(),
        skip: Vec::new(),
        skip_outcome: Vec::new(),
        stop: false,
        fingerprint: None,
    }
}

/// The digests of node `i`'s finished upstream nodes, as `claim` brought them (a claim of
/// node `i`, or of one of its items).
pub(super) fn finished(ctx: &Participant, i: usize, claim: &Claim) -> Finished {
    Finished(
        ctx.upstream[i]
            .iter()
            .zip(&claim.digests)
            .filter_map(|(&j, d)| d.map(|d| (j as usize, d)))
            .collect(),
    )
}

pub(super) async fn complete(ctx: &Participant, end: Completion) -> Result<bool, StoreError> {
    ctx.coordinator
        .complete(ctx.name.clone(), ctx.run.graph.clone(), end)
        .await
}

/// Every node downstream of `i`.
fn descendants(ctx: &Participant, i: usize) -> Vec<u32> {
    let mut seen = HashSet::new();
    let mut stack = ctx.dependents[i].clone();
    while let Some(d) = stack.pop() {
        if seen.insert(d) {
            stack.extend_from_slice(&ctx.dependents[d as usize]);
        }
    }
    let mut all: Vec<u32> = seen.into_iter().collect();
    all.sort_unstable();
    all
}

/// The output digests of a claimed node's finished upstream nodes, by node, as its claim
/// brought them: what the node's condition, fingerprint and inputs are worked out from.
pub(super) struct Finished(HashMap<usize, Digest>);

impl Finished {
    pub(super) fn digest(&self, j: usize) -> Option<&Digest> {
        self.0.get(&j)
    }

    /// Whether upstream node `j` did not run: its row carries the digest that stands for it.
    pub(super) fn not_run(&self, j: usize) -> bool {
        self.digest(j) == Some(&not_run_digest())
    }

    /// The `bool` output of upstream node `j`, told by its digest.
    pub(super) fn value(&self, j: usize) -> Option<bool> {
        self.digest(j).and_then(bool_of_digest)
    }
}

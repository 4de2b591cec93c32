//! The scheduler's bookkeeping, all under the run's lock: which nodes are ready (highest
//! priority first, then declaration order), task limits, cached nodes readying their
//! dependents, the skip cascade after a failure, and freeing outputs nobody reads any more.
//!
//! There is no central scheduler task. Whoever finishes a node does the bookkeeping, then
//! carries on with the best ready node itself (see [`driver`](super::driver)).

use super::attempt::Success;
use super::condition::{self, bool_of_digest, not_run_digest};
use super::inputs::{Held, Prepared, assemble};
use super::plan::upstream_of;
use super::state::{Completion, Run, State};
use crate::cache::{Fingerprint, InputDigest, Reason, Verdict, verdict};
use crate::failure::Failure;
use crate::graph::NodeSpec;
use crate::report::Outcome;

/// Nodes of one task with a `limit`: how many run, and which ready ones wait for a slot.
pub(super) struct Limited {
    limit: usize,
    running: usize,
    parked: Vec<Ready>,
}

impl Limited {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            running: 0,
            parked: Vec::new(),
        }
    }
}

/// A node in the ready heap.
#[derive(PartialEq, Eq)]
pub(super) struct Ready {
    pub(super) priority: i32,
    pub(super) index: usize,
}

impl Ord for Ready {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Max-heap: higher priority first, then earlier declaration first.
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.index.cmp(&self.index))
    }
}
impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A node about to run, with its inputs in hand (or the stored ones still to load).
pub(super) struct Job {
    pub(super) index: usize,
    pub(super) inputs: Option<Vec<Prepared>>,
    pub(super) reason: Reason,
    pub(super) fingerprint: Option<Fingerprint>,
}

impl State {
    /// A node whose inputs have all completed: loaded from the store if its record still
    /// answers for it (and then its dependents in turn), queued to run otherwise.
    pub(super) fn become_ready(&mut self, run: &Run, start: usize, cached: &mut Vec<usize>) {
        // Allocates only when a cached node, or one that does not run, readies others.
        let mut stack = Vec::new();
        let mut next = Some(start);
        while let Some(i) = next.take().or_else(|| stack.pop()) {
            let node = &run.nodes[i];
            if let Some(why) = self.unmet(run, i) {
                self.outcomes[i] = Some(Outcome::NotRun {
                    condition: why.clone(),
                });
                self.digests[i] = Some(not_run_digest());
                self.unfinished -= 1;
                self.release_inputs(run, i);
                self.not_run.push((i, why));
                for &d in run.dependents.of(i) {
                    self.waiting[d] -= 1;
                    if self.waiting[d] == 0 && self.outcomes[d].is_none() {
                        stack.push(d);
                    }
                }
                continue;
            }
            if run.store.is_none() {
                self.ready.push(Ready {
                    priority: run.plan[i].priority,
                    index: i,
                });
                continue;
            }
            let verdict = if run.store.is_none() {
                Verdict::Run(Reason::NoStore, None)
            } else {
                let digests = &self.digests;
                let upstream = upstream_of(
                    node,
                    |j| match &digests[j] {
                        Some(d) => InputDigest::Known(d),
                        None => InputDigest::Missing,
                    },
                    &mut self.scratch,
                );
                let verdict = verdict(run.plan[i].parts.as_ref(), run.stamp(i), upstream);
                super::signal::redeliver(run, self, i, verdict)
            };
            match verdict {
                Verdict::Cached(digest) => {
                    self.outcomes[i] = Some(Outcome::Cached);
                    self.digests[i] = Some(digest);
                    self.stored[i] = true;
                    self.unfinished -= 1;
                    self.release_inputs(run, i);
                    cached.push(i);
                    for &d in run.dependents.of(i) {
                        self.waiting[d] -= 1;
                        if self.waiting[d] == 0 && self.outcomes[d].is_none() {
                            stack.push(d);
                        }
                    }
                }
                Verdict::Run(reason, fp) => {
                    self.to_run.insert(i, (reason, fp));
                    self.ready.push(Ready {
                        priority: run.plan[i].priority,
                        index: i,
                    });
                }
                Verdict::Waits(_) => unreachable!("every upstream digest is known during a run"),
            }
        }
    }

    pub(super) fn pop_ready(&mut self, run: &Run) -> Option<Job> {
        if run.cancel.is_cancelled() {
            self.cancelled = true;
            self.stopping = true;
        }
        if self.stopping {
            return None;
        }
        let index = loop {
            let next = self.ready.pop()?;
            match run.plan[next.index].limit_group {
                Some(g) if self.limited[g].running >= self.limited[g].limit => {
                    self.limited[g].parked.push(next)
                }
                Some(g) => {
                    self.limited[g].running += 1;
                    break next.index;
                }
                None => break next.index,
            }
        };
        // Without a store the table is empty, and a lookup in it still hashes and probes.
        let (reason, fingerprint) = match self.to_run.is_empty() {
            true => (Reason::NoStore, None),
            false => self
                .to_run
                .remove(&index)
                .unwrap_or((Reason::NoStore, None)),
        };
        Some(Job {
            index,
            inputs: self.prepare(run, index),
            reason,
            fingerprint,
        })
    }

    /// Slots for up to `wanted` more workers of map node `index`, each counted as a running
    /// node of the run and of its task's limit group: how many it got.
    pub(super) fn take_slots(&mut self, run: &Run, index: usize, wanted: usize) -> usize {
        let mut got = wanted.min(run.limit.saturating_sub(self.running));
        if let Some(g) = run.plan[index].limit_group {
            let group = &mut self.limited[g];
            got = got.min(group.limit.saturating_sub(group.running));
            group.running += got;
        }
        self.running += got;
        got
    }

    /// Gives the slots free in the run to the running map nodes that have items left, as
    /// their task's limit allows: a worker starts on each.
    pub(super) fn grow_maps(&mut self, run: &Run) {
        for at in 0..self.growing.len() {
            if self.running >= run.limit {
                return;
            }
            let (index, work) = &self.growing[at];
            let (index, Some(work)) = (*index, work.upgrade()) else {
                continue;
            };
            let wanted = work.wants();
            let got = if wanted > 0 {
                self.take_slots(run, index, wanted)
            } else {
                0
            };
            for _ in 0..got {
                if !work.clone().start_worker() {
                    // No item left after all: the slot goes back (nothing is parked on it
                    // that the next node to end will not see).
                    self.untake_slot(run, index);
                }
            }
        }
    }

    /// Undoes one slot of [`take_slots`](Self::take_slots).
    fn untake_slot(&mut self, run: &Run, index: usize) {
        self.running -= 1;
        if let Some(g) = run.plan[index].limit_group {
            self.limited[g].running -= 1;
        }
    }

    /// Gives back a slot of map node `index`'s worker: the nodes its task's limit parked are
    /// ready again, and the jobs that may now start (each counted as running) are returned to
    /// be driven.
    pub(super) fn give_slot(&mut self, run: &Run, index: usize) -> Vec<Job> {
        self.running -= 1;
        if let Some(g) = run.plan[index].limit_group {
            let group = &mut self.limited[g];
            group.running -= 1;
            self.ready.extend(group.parked.drain(..));
        }
        let mut jobs = Vec::new();
        while self.running < run.limit {
            let Some(job) = self.pop_ready(run) else {
                break;
            };
            self.running += 1;
            jobs.push(job);
        }
        jobs
    }

    /// The node's inputs, or `None` if some are in the store and must be loaded first.
    pub(super) fn prepare(&self, run: &Run, index: usize) -> Option<Vec<Prepared>> {
        let spec = &run.nodes[index];
        assemble(
            spec,
            spec.upstream().map(|(param, j)| {
                if run.conditional && !self.needs(spec, param, j) {
                    Held::Unneeded
                } else {
                    match &self.outputs[j] {
                        Some(v) => Held::Value(v.clone()),
                        None => Held::Stored,
                    }
                }
            }),
        )
    }

    /// Whether a job of `spec` reads upstream node `j` through source `param` (see
    /// [`condition::needs`]).
    pub(super) fn needs(&self, spec: &NodeSpec, param: usize, j: usize) -> bool {
        condition::needs(spec, param, self.did_not_run(j))
    }

    /// Whether node `j` finished without running.
    fn did_not_run(&self, j: usize) -> bool {
        matches!(self.outcomes[j], Some(Outcome::NotRun { .. }))
    }

    /// Why node `i`, whose inputs have all finished, does not run, if it does not (see
    /// [`condition::unmet`]).
    fn unmet(&self, run: &Run, i: usize) -> Option<String> {
        // Most nodes run under no condition and read no node that may not run.
        if !run.nodes[i].maybe {
            return None;
        }
        condition::unmet(
            &run.nodes,
            i,
            |j| self.did_not_run(j),
            |j| self.condition_value(j),
        )
    }

    /// The `bool` output of condition node `j`: in memory, or told by its digest when it
    /// is in the store.
    fn condition_value(&self, j: usize) -> Option<bool> {
        if let Some(v) = &self.outputs[j] {
            return v.downcast_ref::<bool>().copied();
        }
        self.digests[j].as_ref().and_then(bool_of_digest)
    }

    /// Records a node's end. Returns the nodes skipped and the nodes cached because of it.
    pub(super) fn finish(
        &mut self,
        run: &Run,
        index: usize,
        result: Option<Result<Success, Vec<Failure>>>,
        reason: Reason,
    ) -> (Vec<usize>, Vec<usize>) {
        let Some(result) = result else {
            // Cancelled in flight: nothing is recorded, the report says cancelled.
            self.cancelled = true;
            self.stopping = true;
            self.release_inputs(run, index);
            return (Vec::new(), Vec::new());
        };
        self.unfinished -= 1;
        if let Some(g) = run.plan[index].limit_group {
            let group = &mut self.limited[g];
            group.running -= 1;
            self.ready.extend(group.parked.drain(..));
        }
        self.release_inputs(run, index);
        let node = &run.nodes[index];
        match result {
            Ok(done) => {
                if self.readers[index] > 0 || node.keep {
                    self.outputs[index] = Some(done.value);
                }
                self.digests[index] = done.digest;
                self.outcomes[index] = Some(Outcome::Ran {
                    attempts: done.attempts,
                    duration: done.duration,
                    reason,
                });
                let mut cached = Vec::new();
                for &d in run.dependents.of(index) {
                    self.waiting[d] -= 1;
                    if self.waiting[d] == 0 && self.outcomes[d].is_none() {
                        self.become_ready(run, d, &mut cached);
                    }
                }
                (Vec::new(), cached)
            }
            Err(attempts) => {
                self.failed = true;
                self.outcomes[index] = Some(Outcome::Failed { attempts });
                if run.fail_fast {
                    self.stopping = true;
                }
                (self.skip_dependents(run, index), Vec::new())
            }
        }
    }

    /// Marks every transitive dependent of a failed node as skipped because of it.
    pub(super) fn skip_dependents(&mut self, run: &Run, failed: usize) -> Vec<usize> {
        let because = run.nodes[failed].id.to_string();
        let mut skipped = Vec::new();
        let mut stack: Vec<usize> = run.dependents.of(failed).to_vec();
        while let Some(d) = stack.pop() {
            if self.outcomes[d].is_some() {
                continue;
            }
            self.outcomes[d] = Some(Outcome::Skipped {
                because: because.clone(),
            });
            self.unfinished -= 1;
            self.release_inputs(run, d);
            skipped.push(d);
            stack.extend_from_slice(run.dependents.of(d));
        }
        skipped
    }

    /// A finished node no longer reads its inputs: free outputs nobody else needs.
    pub(super) fn release_inputs(&mut self, run: &Run, index: usize) {
        for (_, j) in run.nodes[index].upstream() {
            self.readers[j] -= 1;
            if self.readers[j] == 0 && !run.nodes[j].keep {
                self.outputs[j] = None;
            }
        }
    }

    /// The completion signal if the run has ended: every node has finished (or the run
    /// stopped and nothing is in flight) and every store write is acknowledged.
    pub(super) fn ended(&mut self) -> Completion {
        let stopped = self.stopping && self.running == 0;
        if (self.unfinished == 0 || stopped) && self.pending == 0 {
            self.completion.take()
        } else {
            Completion::none()
        }
    }
}

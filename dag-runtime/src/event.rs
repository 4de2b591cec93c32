//! Progress: an event for every change in a node's state, with the run's running totals.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::cache::Reason;
use crate::failure::Failure;

/// A change in one node's state, delivered to the callbacks given to
/// [`Runner::on_event`](crate::Runner::on_event).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An attempt starts (`attempt` is 1 for the first).
    Started {
        /// Node id.
        node: &'a str,
        /// Task name.
        task: &'static str,
        /// Which attempt, from 1.
        attempt: u32,
        /// Why the node runs rather than being loaded from the store.
        reason: Reason,
    },
    /// The store holds the node's output for exactly these inputs and code: it does not run.
    Cached {
        /// Node id.
        node: &'a str,
        /// Task name.
        task: &'static str,
    },
    /// An attempt failed and another follows after `delay`.
    Retrying {
        /// Node id.
        node: &'a str,
        /// Task name.
        task: &'static str,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// The wait before the next attempt.
        delay: Duration,
        /// Why it failed.
        error: &'a Failure,
    },
    /// The node's task completed, and its output is durable in the store (if the runner has
    /// one). A dependent may start before this event: it reads the value in memory, and the
    /// store commits in order, so it never holds a dependent's output without its inputs'.
    Completed {
        /// Node id.
        node: &'a str,
        /// Task name.
        task: &'static str,
        /// From the first attempt's start, retry delays included.
        duration: Duration,
        /// Attempts it took.
        attempts: u32,
    },
    /// An iteration of a loop node ended with `Loop::Again`, and the state it returned is
    /// durable in the store (when the node's iterations are stored): a run stopped from now
    /// on resumes after it. The last iteration, which returns `Loop::Done`, ends with the
    /// node's `Completed`. Each iteration's attempts send `Started` and `Retrying` as a
    /// node's do; the node counts as running once, from its first iteration to its last.
    Iterated {
        /// Node id.
        node: &'a str,
        /// Task name.
        task: &'static str,
        /// How many iterations the loop has finished, earlier runs' included.
        iteration: u32,
        /// This iteration's time, from its first attempt's start, retry delays included.
        duration: Duration,
        /// Attempts this iteration took.
        attempts: u32,
    },
    /// The node failed for good.
    Failed {
        /// Node id.
        node: &'a str,
        /// Task name.
        task: &'static str,
        /// The last attempt's failure.
        error: &'a Failure,
        /// Attempts made.
        attempts: u32,
    },
    /// The node will not run because an upstream node failed.
    Skipped {
        /// Node id.
        node: &'a str,
        /// Task name.
        task: &'static str,
        /// The failed node.
        because: &'a str,
    },
    /// A map node has its list: `items` children, each reported with events of its own
    /// under the name `node[i]`, count as work from now on.
    Mapped {
        /// Node id.
        node: &'a str,
        /// Task name.
        task: &'static str,
        /// Items in the list.
        items: usize,
    },
    /// The node will not run: its condition does not hold, or it reads a node that did not
    /// run. Not a failure.
    NotRun {
        /// Node id.
        node: &'a str,
        /// Task name.
        task: &'static str,
        /// Why: "`big` is false", or "it reads `alert`, which did not run".
        condition: &'a str,
    },
    /// In a distributed run: this process's claim on the node ran out before its result
    /// was recorded (the process was too slow, or cut off from the database), and another
    /// process took the node over. The result computed here was dropped.
    Lost {
        /// Node id.
        node: &'a str,
        /// Task name.
        task: &'static str,
    },
    /// A signal node has no value yet: it waits for one (at most `timeout`, if it has one),
    /// without holding a slot of the run's concurrency.
    Waiting {
        /// Node id: the signal's name.
        node: &'a str,
        /// Task name.
        task: &'static str,
        /// How long it waits at most; `None`: as long as the run lasts.
        timeout: Option<Duration>,
    },
    /// The node did not finish because the run was cancelled or stopped.
    Cancelled {
        /// Node id.
        node: &'a str,
        /// Task name.
        task: &'static str,
    },
}

impl Event<'_> {
    /// The node the event is about.
    pub fn node(&self) -> &str {
        match self {
            Event::Started { node, .. }
            | Event::Cached { node, .. }
            | Event::Retrying { node, .. }
            | Event::Completed { node, .. }
            | Event::Iterated { node, .. }
            | Event::Failed { node, .. }
            | Event::Skipped { node, .. }
            | Event::NotRun { node, .. }
            | Event::Mapped { node, .. }
            | Event::Lost { node, .. }
            | Event::Waiting { node, .. }
            | Event::Cancelled { node, .. } => node,
        }
    }
}

/// How many nodes of the run are in each state, right after the event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Totals {
    /// Nodes in the graph.
    pub total: usize,
    /// Nodes with an attempt in flight or waiting to retry.
    pub running: usize,
    /// Nodes completed.
    pub completed: usize,
    /// Nodes loaded from the store instead of running.
    pub cached: usize,
    /// Nodes failed for good.
    pub failed: usize,
    /// Nodes skipped because of a failure.
    pub skipped: usize,
    /// Nodes cancelled.
    pub cancelled: usize,
    /// Nodes that did not run because their condition did not hold.
    pub not_run: usize,
}

impl Totals {
    /// Nodes that reached a final state.
    pub fn finished(&self) -> usize {
        self.completed + self.cached + self.failed + self.skipped + self.cancelled + self.not_run
    }
}

pub(crate) type Callback = Arc<dyn Fn(&Event<'_>, &Totals) + Send + Sync>;

/// The callbacks of a run and its counters; does nothing when there are no callbacks.
pub(crate) struct Events {
    callbacks: Vec<Callback>,
    total: usize,
    running: AtomicUsize,
    completed: AtomicUsize,
    cached: AtomicUsize,
    failed: AtomicUsize,
    skipped: AtomicUsize,
    cancelled: AtomicUsize,
    not_run: AtomicUsize,
    /// Items of map nodes, which count as work once their node has its list.
    items: AtomicUsize,
}

impl Events {
    pub(crate) fn new(callbacks: Vec<Callback>, total: usize) -> Self {
        Self {
            callbacks,
            total,
            running: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            cached: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            skipped: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
            not_run: AtomicUsize::new(0),
            items: AtomicUsize::new(0),
        }
    }

    pub(crate) fn on(&self) -> bool {
        !self.callbacks.is_empty()
    }

    /// Counts the event and hands it to every callback.
    pub(crate) fn emit(&self, event: &Event<'_>) {
        if !self.on() {
            return;
        }
        self.count(event);
        self.deliver(event);
    }

    /// Hands the event to every callback without counting it: the first attempt of a loop's
    /// next iteration starts no node, the node is running already.
    pub(crate) fn emit_uncounted(&self, event: &Event<'_>) {
        if self.on() {
            self.deliver(event);
        }
    }

    /// The event's change to the running totals.
    fn count(&self, event: &Event<'_>) {
        let add = |c: &AtomicUsize| c.fetch_add(1, Ordering::Relaxed);
        let sub = |c: &AtomicUsize| c.fetch_sub(1, Ordering::Relaxed);
        match event {
            Event::Started { attempt: 1, .. } => {
                add(&self.running);
            }
            Event::Started { .. }
            | Event::Retrying { .. }
            | Event::Iterated { .. }
            | Event::Waiting { .. } => {}
            Event::Completed { .. } => {
                sub(&self.running);
                add(&self.completed);
            }
            Event::Failed { .. } => {
                sub(&self.running);
                add(&self.failed);
            }
            Event::Lost { .. } => {
                sub(&self.running);
            }
            Event::Cached { .. } => {
                add(&self.cached);
            }
            Event::Skipped { .. } => {
                add(&self.skipped);
            }
            Event::NotRun { .. } => {
                add(&self.not_run);
            }
            Event::Mapped { items, .. } => {
                self.items.fetch_add(*items, Ordering::Relaxed);
            }
            Event::Cancelled { .. } => {
                add(&self.cancelled);
            }
        }
    }

    /// Hands the event to every callback, with the totals as they are now.
    fn deliver(&self, event: &Event<'_>) {
        let load = |c: &AtomicUsize| c.load(Ordering::Relaxed);
        let totals = Totals {
            total: self.total + load(&self.items),
            running: load(&self.running),
            completed: load(&self.completed),
            cached: load(&self.cached),
            failed: load(&self.failed),
            skipped: load(&self.skipped),
            cancelled: load(&self.cancelled),
            not_run: load(&self.not_run),
        };
        for callback in &self.callbacks {
            // A callback that panics (its message printed by the panic hook) must not take
            // down the thread it runs on: the store's writer, a worker, the run would hang.
            let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                callback(event, &totals);
            }));
            drop(delivered);
        }
    }

    /// A node cancelled while in flight stops counting as running.
    pub(crate) fn stopped_running(&self) {
        if self.on() {
            self.running.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The `tracing` span of one attempt: `typedag.attempt` with the node id, task and attempt,
/// and for an item of a map node its position in the list, as `item`.
pub(crate) fn attempt_span(
    node: &str,
    item: Option<usize>,
    task: &'static str,
    attempt: u32,
) -> tracing::Span {
    match item {
        Some(item) => tracing::info_span!("typedag.attempt", node, item, task, attempt),
        None => tracing::info_span!("typedag.attempt", node, task, attempt),
    }
}

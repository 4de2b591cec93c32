//! What happened to each node of a run.

use std::fmt;
use std::time::Duration;

use crate::cache::Reason;
use crate::failure::Failure;

/// The outcome of every node of one run, in declaration order.
#[derive(Clone, Debug)]
pub struct Report {
    pub(crate) graph: String,
    pub(crate) nodes: Vec<NodeReport>,
}

/// What [`Runner::run_partial`](crate::Runner::run_partial) hands back whether or not every
/// node completed: the outputs of the nodes that did, and the report of all of them.
#[derive(Debug)]
#[non_exhaustive]
pub struct Partial<P> {
    /// For a `dag!` graph, a struct with an `Option` field per node (`None` if the node did
    /// not complete); for a built graph, the [`Outputs`](crate::Outputs) of the kept nodes
    /// that completed.
    pub outputs: P,
    /// What happened to every node.
    pub report: Report,
}

/// One node's outcome.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NodeReport {
    /// The node's id.
    pub id: String,
    /// The task it runs.
    pub task: &'static str,
    /// What happened.
    pub outcome: Outcome,
    /// For a map node that got as far as its items: how many there were, and what became
    /// of them.
    pub items: Option<Items>,
    /// For a loop node that ran: how many iterations it got to, and how many of them were
    /// stored by earlier runs.
    pub iterations: Option<Iterations>,
}

/// How far a loop node got in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Iterations {
    /// Iterations finished, those stored by earlier runs included: for a node that
    /// completed, how many it took.
    pub total: u32,
    /// Iterations loaded from the store (an earlier run stopped after them), not run.
    pub resumed: u32,
}

impl fmt::Display for Iterations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.total == 1 { "" } else { "s" };
        write!(f, "{} iteration{s}", self.total)?;
        if self.resumed > 0 {
            write!(f, ", resumed after {}", self.resumed)?;
        }
        Ok(())
    }
}

/// What became of a map node's items in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Items {
    /// Items in the list.
    pub total: usize,
    /// Items that ran (failed ones included).
    pub ran: usize,
    /// Items loaded from the store.
    pub cached: usize,
    /// Items that failed for good.
    pub failed: usize,
}

impl fmt::Display for Items {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.total == 1 { "" } else { "s" };
        write!(
            f,
            "{} item{s}: {} ran, {} cached, {} failed",
            self.total, self.ran, self.cached, self.failed
        )
    }
}

/// What happened to one node.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// The task ran and completed.
    Ran {
        /// Attempts it took, 1 if it succeeded first time.
        attempts: u32,
        /// Wall time from its first attempt's start to completion, delays included. For a
        /// map node, the wall time of its items: in a local run, from the node's start to
        /// its `Vec`; in a distributed run, from its first item's start (claimed, by the
        /// store's clock) to its last item's end, whichever processes ran them side by
        /// side (zero if every item was found in the store).
        duration: Duration,
        /// Why it ran rather than being loaded from the store.
        reason: Reason,
    },
    /// The store held its output for exactly these inputs and code; it did not run.
    Cached,
    /// The task failed for good. The last failure is the one that counted.
    Failed {
        /// Every failed attempt, in order.
        attempts: Vec<Failure>,
    },
    /// Not run because an upstream node failed.
    Skipped {
        /// The failed node that caused it.
        because: String,
    },
    /// Not run, or stopped, because the run was cancelled or stopped early.
    Cancelled,
    /// Not run because its condition did not hold (`if big` when `big` is false), or because
    /// it reads the output of a node that did not run. Not a failure.
    NotRun {
        /// Why: "`big` is false", or "it reads `alert`, which did not run".
        condition: String,
    },
}

impl Outcome {
    /// The error that failed the node, if it failed.
    pub fn error(&self) -> Option<&Failure> {
        match self {
            Outcome::Failed { attempts } => attempts.last(),
            _ => None,
        }
    }
}

impl Report {
    /// The graph's name.
    pub fn graph(&self) -> &str {
        &self.graph
    }

    /// Every node, in declaration order.
    pub fn nodes(&self) -> &[NodeReport] {
        &self.nodes
    }

    /// One node by id.
    pub fn node(&self, id: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The nodes that failed.
    pub fn failed(&self) -> impl Iterator<Item = &NodeReport> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.outcome, Outcome::Failed { .. }))
    }

    /// Whether every node completed, was cached, or did not have to run (its condition did
    /// not hold).
    pub fn is_success(&self) -> bool {
        self.nodes.iter().all(|n| {
            matches!(
                n.outcome,
                Outcome::Ran { .. } | Outcome::Cached | Outcome::NotRun { .. }
            )
        })
    }

    /// How many nodes did not run because their condition did not hold.
    pub fn not_run(&self) -> usize {
        self.count(|o| matches!(o, Outcome::NotRun { .. }))
    }

    /// How many nodes ran.
    pub fn ran(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Ran { .. }))
    }

    /// How many nodes were loaded from the store.
    pub fn cached(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Cached))
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.nodes.iter().filter(|n| f(&n.outcome)).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.count(|o| matches!(o, Outcome::Failed { .. }));
        let skipped = self.count(|o| matches!(o, Outcome::Skipped { .. }));
        let cancelled = self.count(|o| matches!(o, Outcome::Cancelled));
        let ran = self.ran();
        let cached = self.cached();
        write!(
            f,
            "graph `{}`: {failed} failed, {skipped} skipped, {cancelled} cancelled, {ran} ran and {cached} cached of {}",
            self.graph,
            self.nodes.len()
        )?;
        let not_run = self.not_run();
        if not_run > 0 {
            write!(f, "; {not_run} not run, their condition not holding")?;
        }
        for node in &self.nodes {
            if let Some(items) = &node.items {
                write!(
                    f,
                    "\n  map node `{}` (task `{}`): {items}",
                    node.id, node.task
                )?;
            }
            if let Some(iterations) = &node.iterations {
                write!(
                    f,
                    "\n  loop node `{}` (task `{}`): {iterations}",
                    node.id, node.task
                )?;
            }
        }
        for node in self.failed() {
            if let Outcome::Failed { attempts } = &node.outcome {
                let last = attempts
                    .last()
                    .map(Failure::message)
                    .unwrap_or("no attempt recorded");
                let tries = attempts.len();
                let s = if tries == 1 { "" } else { "s" };
                write!(
                    f,
                    "\n  node `{}` (task `{}`) failed after {tries} attempt{s}: {last}",
                    node.id, node.task
                )?;
            }
        }
        Ok(())
    }
}

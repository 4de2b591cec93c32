//! The protocol of runs shared by several processes: nodes as rows in a [`RowState`],
//! claimed under a lease, completed in transactions that ready their dependents. A map
//! node, once claimed, is expanded into rows of its own items ([`Coordinator::expand`]),
//! claimed and completed like nodes; the map node waits for them, and is claimed again
//! to gather their outputs once the last has ended. A store
//! that several processes share offers it as a [`Coordinator`] (the PostgreSQL store does);
//! [`Runner::distributed`](crate::Runner::distributed) drives it.

use std::time::Duration;

use super::contract::StoreFuture;
use super::record::Record;
use crate::cache::Digest;

/// A random hex string (from the clock, the thread and the process), to tell processes
/// and stores apart in a shared database.
#[cfg(feature = "postgres")]
pub(crate) fn nonce() -> String {
    blake3::hash(
        format!(
            "{:?}{:?}{}",
            std::time::SystemTime::now(),
            std::thread::current().id(),
            std::process::id()
        )
        .as_bytes(),
    )
    .to_hex()
    .to_string()
}

/// A node's state in a shared run, as its row keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum RowState {
    /// Some inputs have not completed; or, for an expanded map node, some items have not
    /// ended.
    Waiting = 0,
    /// Every input completed: a process may claim it.
    Ready = 1,
    /// A process holds it under a lease.
    Claimed = 2,
    /// Completed (ran, or cached), or settled as not run for want of a condition; its
    /// digest then stands for a node that did not run.
    Done = 3,
    /// Failed for good.
    Failed = 4,
    /// Not run: an upstream node failed.
    Skipped = 5,
}

impl RowState {
    /// Every state, in the order of their numbers.
    pub const ALL: [RowState; 6] = [
        RowState::Waiting,
        RowState::Ready,
        RowState::Claimed,
        RowState::Done,
        RowState::Failed,
        RowState::Skipped,
    ];

    /// The number a database keeps for it; the numbers are part of the stored format.
    pub const fn number(self) -> i16 {
        self as i16
    }

    /// The state a database's number stands for; `None` for a number no typedag writes.
    pub fn from_number(number: i16) -> Option<RowState> {
        Self::ALL.into_iter().find(|s| s.number() == number)
    }
}

/// Joins a run, creating it if it is new.
#[derive(Debug)]
pub struct Join {
    /// The run's name, shared by every process that takes part.
    pub run: String,
    /// The graph's name.
    pub graph: String,
    /// The digest of the graph's shape: every process must run the same graph.
    pub shape: Digest,
    /// Every node, in graph order.
    pub nodes: Vec<JoinNode>,
}

/// One node of a run being created.
#[derive(Debug)]
pub struct JoinNode {
    /// The node id.
    pub id: String,
    /// Its priority.
    pub priority: i32,
    /// Its distinct upstream nodes, by position.
    pub inputs: Vec<u32>,
    /// How many of them it waits for (the others are done already).
    pub waiting: u32,
    /// Its outcome, already known when the run is created (cached nodes).
    pub done: Option<(Digest, Vec<u8>)>,
}

/// A node claimed by this process.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The node's position in the graph; for an item, its row's position after them.
    pub index: u32,
    /// The lease token: a completion must carry it.
    pub token: i64,
    /// The output digests of its upstream nodes, in [`JoinNode::inputs`] order (an item's
    /// are its map node's).
    pub digests: Vec<Option<Digest>>,
    /// What the claimed row is: a node, an item, or a map node to gather.
    pub kind: ClaimKind,
}

/// What a claimed row stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimKind {
    /// A node of the graph, to run (or, for a map node, to expand into items).
    Node,
    /// A map node expanded into this many items, every one of which has ended (or the
    /// rest of which the run stopped before): to gather.
    Expanded(u32),
    /// An item of a map node.
    Item {
        /// The map node's position in the graph.
        parent: u32,
        /// The item's position in its list.
        position: u32,
        /// The digest of the item's bytes.
        key: [u8; 16],
    },
}

/// A claimed map node's items, to add to the run: [`Coordinator::expand`] takes it.
#[derive(Debug)]
pub struct Expansion {
    /// The map node's position.
    pub index: u32,
    /// The token of its claim.
    pub token: i64,
    /// Each item, in list order.
    pub items: Vec<NewItem>,
}

/// One item of an [`Expansion`].
#[derive(Debug)]
pub struct NewItem {
    /// How events and reports name it (`pages[3]`).
    pub label: String,
    /// The digest of its bytes.
    pub key: [u8; 16],
    /// Its output's digest and encoded outcome, when the store holds it already: it is
    /// done without running.
    pub done: Option<(Digest, Vec<u8>)>,
    /// That output's bytes, when the store holds them elsewhere than by digest.
    pub bytes: Option<Vec<u8>>,
}

/// An item's row, as the map node's gathering reads it.
#[derive(Debug)]
pub struct ItemRow {
    /// Its position in the list.
    pub position: u32,
    /// The digest of its bytes.
    pub key: [u8; 16],
    /// Its state; `None` for a number this typedag does not know.
    pub state: Option<RowState>,
    /// Its output's digest, if it completed.
    pub digest: Option<Digest>,
    /// Its encoded outcome, if it ended.
    pub outcome: Option<Vec<u8>>,
    /// When it was last claimed, in microseconds since the Unix epoch by the store's clock
    /// (one clock for every process): about when the run that counted started.
    pub claimed_us: Option<u64>,
}

/// How a claimed node ended, to record: what [`Coordinator::complete`] takes.
#[derive(Debug)]
pub struct Completion {
    /// The node's position.
    pub index: u32,
    /// The token of the claim.
    pub token: i64,
    /// [`RowState::Done`] or [`RowState::Failed`].
    pub state: RowState,
    /// Its output's digest, when it completed.
    pub digest: Option<Digest>,
    /// The encoded outcome, for every process's report.
    pub outcome: Vec<u8>,
    /// The record to keep under (graph, node id), with the output bytes.
    pub save: Option<(String, Record, Option<Vec<u8>>)>,
    /// The nodes that read it, once per distinct edge.
    pub dependents: Vec<u32>,
    /// Nodes skipped because it failed, with their encoded outcome.
    pub skip: Vec<u32>,
    /// The outcome of each skipped node.
    pub skip_outcome: Vec<u8>,
    /// Stop the run (fail fast).
    pub stop: bool,
    /// The fingerprint this claim computed, to let others waiting for it go on.
    pub fingerprint: Option<Digest>,
}

/// What a claimed node may do about the fingerprint it is to compute.
#[derive(Debug)]
pub enum Begin {
    /// Compute it: no one else is.
    Go,
    /// Another claim is computing it now: wait and ask again.
    Busy,
    /// It was computed already (in another graph, another run): reuse this record.
    Found(Box<Record>),
}

/// How far a run is.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Nodes waiting, ready or claimed.
    pub unfinished: u64,
    /// Nodes claimed now.
    pub claimed: u64,
    /// Whether the run was stopped (fail fast).
    pub stopping: bool,
    /// Whether the run has ended, by the rule [`Coordinator::forget_runs`] keeps runs by:
    /// no row of it is claimed, and none that has not ended may still start or end.
    pub ended: bool,
    /// Map nodes expanded into items and not ended: in a stopping run, still to gather
    /// ([`Coordinator::claim_stopped`]) before the run ends.
    pub open_maps: u64,
}

/// A node's row as a run ends: what [`Coordinator::nodes`] reads back.
#[derive(Debug)]
pub struct NodeRow {
    /// The node's position.
    pub index: u32,
    /// Its state; `None` for a number this typedag does not know.
    pub state: Option<RowState>,
    /// Its output digest, if it completed.
    pub digest: Option<Digest>,
    /// Its encoded outcome, if it finished.
    pub outcome: Option<Vec<u8>>,
}

/// A shared run as `typedag status` shows it.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run's name.
    pub run: String,
    /// Its graph.
    pub graph: String,
    /// When it was created, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// Its nodes.
    pub nodes: u64,
    /// Nodes completed (ran or cached).
    pub done: u64,
    /// Nodes failed.
    pub failed: u64,
    /// Nodes skipped.
    pub skipped: u64,
    /// Nodes claimed now.
    pub claimed: u64,
    /// The processes holding claims now.
    pub workers: Vec<String>,
    /// Whether it was stopped (fail fast).
    pub stopping: bool,
    /// Whether it has ended, as [`Coordinator::forget_runs`] tells: no row of it is claimed,
    /// and none that has not ended may still start or end (in a stopping run, only a map
    /// node to gather may).
    pub ended: bool,
}

/// The operations of a shared run. Every method retries lost connections itself.
pub trait Coordinator: Send + Sync {
    /// Creates the run, or joins it if it exists with the same shape.
    fn join(&self, join: Join) -> StoreFuture<'_, ()>;
    /// Claims up to `n` ready nodes: first those this process's completions readied,
    /// then, if `search`, any ready node, best priority first.
    fn claim(
        &self,
        run: String,
        me: String,
        n: usize,
        lease: Duration,
        search: bool,
    ) -> StoreFuture<'_, Vec<Claim>>;
    /// In a run that stopped (fail fast), claims up to `n` map nodes the stop caught
    /// expanded but not ended, none of whose items is claimed: to gather what their items
    /// came to, the rest not started.
    fn claim_stopped(
        &self,
        run: String,
        me: String,
        n: usize,
        lease: Duration,
    ) -> StoreFuture<'_, Vec<Claim>>;
    /// Adds a claimed map node's items to the run, if the claim still holds: `None` if it
    /// was lost (nothing was written), else the rows of the items left to run, which this
    /// process claims first. With none left the map node stays claimed, to gather at once;
    /// otherwise it waits for them, and is claimed again once the last has ended.
    fn expand(&self, run: String, expansion: Expansion) -> StoreFuture<'_, Option<Vec<u32>>>;
    /// The rows of map node `parent`'s items, in list order.
    fn items(&self, run: String, parent: u32) -> StoreFuture<'_, Vec<ItemRow>>;
    /// Output bytes by digest, checked.
    fn outputs(&self, digests: Vec<Digest>) -> StoreFuture<'_, Vec<Option<Vec<u8>>>>;
    /// Asks to compute `fingerprint` under `claim`.
    fn begin(
        &self,
        fingerprint: Digest,
        token: i64,
        me: String,
        lease: Duration,
    ) -> StoreFuture<'_, Begin>;
    /// Records how a claimed node ended; `false` if the claim was lost (its lease ran out
    /// and another process took the node): nothing was written.
    fn complete(&self, run: String, graph: String, completion: Completion)
    -> StoreFuture<'_, bool>;
    /// Extends the leases of every claim this process holds.
    fn renew(&self, run: String, me: String, lease: Duration) -> StoreFuture<'_, ()>;
    /// Gives back every claim this process holds (it is stopping).
    fn release(&self, run: String, me: String) -> StoreFuture<'_, ()>;
    /// How far the run is.
    fn progress(&self, run: String) -> StoreFuture<'_, Progress>;
    /// Every node's row, in graph order (not the items').
    fn nodes(&self, run: String) -> StoreFuture<'_, Vec<NodeRow>>;
    /// Every run the store knows, oldest first.
    fn runs(&self) -> StoreFuture<'_, Vec<RunSummary>>;
    /// Drops these runs (their nodes' rows; outputs no record uses any more go too),
    /// keeping each one still going: with a row claimed; or, if it is not stopping, with a
    /// row waiting or ready (its processes may come back under its name and go on); or, if
    /// it is stopping (where nothing new starts, so rows that never started stay waiting or
    /// ready for good), with an expanded map node not yet gathered
    /// ([`claim_stopped`](Self::claim_stopped)). A run stopped at a failure thus goes once
    /// its processes have gathered what was in flight, as they do before they end.
    fn forget_runs(&self, runs: Vec<String>) -> StoreFuture<'_, ()>;
    /// How many wake-ups from other processes have arrived so far.
    fn wakes(&self) -> u64;
    /// Returns after a wake-up later than `seen` (a node completed in another process,
    /// a lease ran out), or after `timeout`.
    fn wait(&self, seen: u64, timeout: Duration) -> StoreFuture<'_, ()>;
}

//! Where finished outputs live between runs: the [`Store`] trait, the in-memory
//! [`MemoryStore`] and the embedded, crash-safe [`EmbeddedStore`] (the default, in
//! `./.typedag`).

mod embedded;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use crate::cache::Stamp;
use crate::cache::{Digest, Fingerprint, Reason};
pub use crate::ids::NodeIds;

pub use embedded::EmbeddedStore;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;

/// A store operation in flight.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Called once a write is durable (`Ok`) or can never be (`Err`).
pub type Ack = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A place that keeps node records and outputs between runs, keyed by (graph, node).
///
/// Writes are queued with [`write`](Store::write) and acknowledged when durable, so that a
/// store can commit the writes that arrive together in one transaction. Writes are applied
/// in the order they are queued. Reads are async so that a store can be a remote database.
pub trait Store: Send + Sync + 'static {
    /// Where the store is, for messages: a path or an address.
    fn location(&self) -> String;

    /// Every record of `graph`, and the digest of the graph's last saved shape.
    fn load(&self, graph: &str) -> StoreFuture<'_, Snapshot>;

    /// What a run needs of the records of `graph`'s nodes: a [`Stamp`] for each node of
    /// `nodes`, by position, and the digest of the graph's last saved shape. Read at the
    /// start of every run, so a store should make it cheap; the default reads everything
    /// with [`load`](Store::load).
    fn stamps(&self, graph: &str, nodes: Arc<NodeIds>) -> StoreFuture<'_, Stamps> {
        let loading = self.load(graph);
        Box::pin(async move {
            let snapshot = loading.await?;
            let mut stamps = vec![None; nodes.len()];
            for (id, position) in nodes.iter() {
                if let Some(loaded) = snapshot.records.get(id) {
                    stamps[position] = Some(loaded.stamp());
                }
            }
            Ok(Stamps {
                stamps,
                manifest: snapshot.manifest,
            })
        })
    }

    /// The output bytes of a node, checked against `digest`: `Ok(None)` if they are missing
    /// or do not match.
    fn output<'a>(
        &'a self,
        graph: &'a str,
        node: &'a str,
        digest: &'a Digest,
    ) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Queues a write; `ack` is called once it is durable.
    fn write(&self, write: Write, ack: Ack);

    /// The graphs the store knows, with the shape each was last run with.
    fn graphs(&self) -> StoreFuture<'_, Vec<(String, Option<Manifest>)>>;

    /// Runs shared by several processes, if the store can coordinate them.
    #[doc(hidden)]
    fn coordinator(&self) -> Option<Arc<dyn shared::Coordinator>> {
        None
    }
}

/// What a store that several processes share offers so that they can run one graph
/// together: nodes as rows, claimed under a lease, completed in transactions that ready
/// their dependents. Implemented by [`PostgresStore`](crate::store); used by
/// [`Runner::distributed`](crate::Runner::distributed).
#[doc(hidden)]
pub mod shared {
    use std::time::Duration;

    use super::{Record, StoreFuture};
    use crate::cache::Digest;

    /// A random hex string (from the clock, the thread and the process), to tell processes
    /// and stores apart in a shared database.
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

    /// A node's state in a shared run.
    pub mod state {
        /// Some inputs have not completed.
        pub const WAITING: i16 = 0;
        /// Every input completed: a process may claim it.
        pub const READY: i16 = 1;
        /// A process holds it under a lease.
        pub const CLAIMED: i16 = 2;
        /// Completed (ran, or cached).
        pub const DONE: i16 = 3;
        /// Failed for good.
        pub const FAILED: i16 = 4;
        /// Not run: an upstream node failed.
        pub const SKIPPED: i16 = 5;
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
        /// The node's position in the graph.
        pub index: u32,
        /// The lease token: a completion must carry it.
        pub token: i64,
        /// The output digests of its upstream nodes, in [`JoinNode::inputs`] order.
        pub digests: Vec<Option<Digest>>,
    }

    /// A claimed node's end, to record.
    #[derive(Debug)]
    pub struct End {
        /// The node's position.
        pub index: u32,
        /// The token of the claim.
        pub token: i64,
        /// [`state::DONE`] or [`state::FAILED`].
        pub state: i16,
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
    }

    /// A node's state at the end of a run.
    #[derive(Debug)]
    pub struct NodeEnd {
        /// The node's position.
        pub index: u32,
        /// Its state.
        pub state: i16,
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
        /// Records a claimed node's end; `false` if the claim was lost (its lease ran out and
        /// another process took the node): nothing was written.
        fn complete(&self, run: String, graph: String, end: End) -> StoreFuture<'_, bool>;
        /// Extends the leases of every claim this process holds.
        fn renew(&self, run: String, me: String, lease: Duration) -> StoreFuture<'_, ()>;
        /// Gives back every claim this process holds (it is stopping).
        fn release(&self, run: String, me: String) -> StoreFuture<'_, ()>;
        /// How far the run is.
        fn progress(&self, run: String) -> StoreFuture<'_, Progress>;
        /// Every node's state.
        fn ends(&self, run: String) -> StoreFuture<'_, Vec<NodeEnd>>;
        /// Every run the store knows, oldest first.
        fn runs(&self) -> StoreFuture<'_, Vec<RunSummary>>;
        /// Drops these runs (their nodes' rows; outputs no record uses any more go too),
        /// unless one is still going.
        fn forget_runs(&self, runs: Vec<String>) -> StoreFuture<'_, ()>;
        /// How many wake-ups from other processes have arrived so far.
        fn wakes(&self) -> u64;
        /// Returns after a wake-up later than `seen` (a node completed in another process,
        /// a lease ran out), or after `timeout`.
        fn wait(&self, seen: u64, timeout: Duration) -> StoreFuture<'_, ()>;
    }
}

/// What a store holds about one graph when a run starts.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Records by node id.
    pub records: HashMap<String, Loaded>,
    /// Digest of the graph's shape as last saved.
    pub manifest: Option<Digest>,
}

/// One record as read back: whole, or damaged (its checksum or format did not match).
#[derive(Clone, Debug)]
pub enum Loaded {
    /// The record, verified.
    Record(Record),
    /// The record could not be read; the node is computed again.
    Damaged(String),
}

impl Loaded {
    /// What a run needs of it.
    pub fn stamp(&self) -> Stamp {
        match self {
            Loaded::Record(r) => r.stamp(),
            Loaded::Damaged(_) => Stamp::Damaged,
        }
    }
}

/// The [`Stamp`]s of a graph's nodes, by position, as a run starts.
#[derive(Clone, Debug, Default)]
pub struct Stamps {
    /// One per node of the graph: `None` where the store has no record.
    pub stamps: Vec<Option<Stamp>>,
    /// Digest of the graph's shape as last saved.
    pub manifest: Option<Digest>,
}

/// A queued change to a store.
#[derive(Debug)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "moved once, into the store's queue"
)]
pub enum Write {
    /// A node's record, with its output bytes when it completed.
    Save {
        /// The graph.
        graph: String,
        /// The node id.
        node: String,
        /// What the run recorded.
        record: Record,
        /// The output's postcard bytes; `None` for a failure.
        output: Option<Vec<u8>>,
    },
    /// The graph's shape, for tools that read the store without the program.
    Graph {
        /// The graph.
        graph: String,
        /// Its nodes.
        manifest: Manifest,
    },
    /// Drops records: the named nodes of a graph, or the whole graph when `nodes` is `None`.
    Forget {
        /// The graph.
        graph: String,
        /// The nodes, or all.
        nodes: Option<Vec<String>>,
    },
}

/// What a store keeps about one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The task's name.
    pub task: String,
    /// What the output was computed from.
    pub fingerprint: Fingerprint,
    /// The output's digest and size, or the failure.
    pub state: RecordState,
    /// When it finished, in milliseconds since the Unix epoch.
    pub finished_ms: u64,
    /// How long it took, in microseconds, retries included.
    pub duration_us: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Why it ran.
    pub reason: Reason,
}

/// How a node's last run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordState {
    /// It completed: its output is stored.
    Done {
        /// BLAKE3 of the output's postcard bytes.
        digest: Digest,
        /// Their length.
        size: u64,
    },
    /// It failed for good.
    Failed {
        /// The last attempt's error.
        error: String,
    },
}

impl Record {
    pub(crate) fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// How long ago it finished.
    pub fn age(&self) -> Duration {
        Duration::from_millis(Self::now_ms().saturating_sub(self.finished_ms))
    }

    /// What a run needs of it.
    pub fn stamp(&self) -> Stamp {
        match &self.state {
            RecordState::Done { digest, .. } => Stamp::Done {
                fingerprint: self.fingerprint,
                digest: *digest,
            },
            RecordState::Failed { .. } => Stamp::Failed {
                fingerprint: self.fingerprint,
            },
        }
    }

    /// The output digest, if it completed.
    pub fn digest(&self) -> Option<&Digest> {
        match &self.state {
            RecordState::Done { digest, .. } => Some(digest),
            RecordState::Failed { .. } => None,
        }
    }
}

/// A graph's shape as the store keeps it: its nodes in order, with their tasks and inputs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Every node, in declaration order.
    pub nodes: Vec<ManifestNode>,
}

/// One node of a [`Manifest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestNode {
    /// The node id.
    pub id: String,
    /// Its task.
    pub task: String,
    /// The nodes it reads, by position in [`Manifest::nodes`].
    pub inputs: Vec<u32>,
}

impl Manifest {
    /// A digest of the shape, to tell whether it changed since it was saved.
    pub fn digest(&self) -> Digest {
        shape_digest(self.nodes.iter().map(|n| {
            (
                n.id.as_str(),
                n.task.as_str(),
                n.inputs.iter().map(|&i| i as usize),
            )
        }))
    }
}

/// The digest of a graph's shape: each node's id, task and inputs. Computed by the runner
/// from the graph itself, so that an unchanged graph costs no [`Manifest`] at all.
pub(crate) fn shape_digest<'a, I: Iterator<Item = usize>>(
    nodes: impl Iterator<Item = (&'a str, &'a str, I)>,
) -> Digest {
    let mut buf = Vec::with_capacity(4096);
    for (id, task, inputs) in nodes {
        buf.extend_from_slice(id.as_bytes());
        buf.push(0);
        buf.extend_from_slice(task.as_bytes());
        buf.push(0);
        for i in inputs {
            buf.extend_from_slice(&u32::try_from(i).unwrap_or(u32::MAX).to_le_bytes());
        }
        buf.push(0xff);
    }
    *blake3::hash(&buf).as_bytes()
}

/// Why a store cannot be used, with what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process has the store open.
    #[error(
        "the store {path} is in use by another process (is another run of this program going?); wait for it to finish, or give this run its own store with `Runner::store` or TYPEDAG_STORE=<dir>"
    )]
    Locked {
        /// The store.
        path: PathBuf,
    },

    /// The file is not a typedag store.
    #[error(
        "{path} is not a typedag store ({detail}); move it away, or point TYPEDAG_STORE at another directory"
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },

    /// The store was written by an incompatible version of typedag.
    #[error(
        "the store {path} has format {found}, and this typedag reads format {expected}; use the typedag version that wrote it, or move it away to start afresh (every node then runs again)"
    )]
    Version {
        /// The store.
        path: PathBuf,
        /// Its format.
        found: String,
        /// Ours.
        expected: String,
    },

    /// The store is damaged beyond what it can repair on its own.
    #[error(
        "the store {path} is damaged ({detail}); move it away to start afresh (every node then runs again)"
    )]
    Corrupt {
        /// The store.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },

    /// The file system refused.
    #[error("cannot {action} {path}: {message}; {advice}")]
    Io {
        /// What was tried.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The system's words.
        message: String,
        /// What to do.
        advice: &'static str,
    },

    /// A write failed earlier; the store stopped writing so as not to trust a retried sync.
    #[error(
        "the store {path} stopped taking writes after an earlier write failed ({cause}); nothing more is recorded in this process: fix the cause (disk full?) and run again"
    )]
    ReadOnly {
        /// The store.
        path: PathBuf,
        /// The first failure.
        cause: String,
    },

    /// The database server could not be reached, or went away and did not come back in
    /// time.
    #[error(
        "cannot reach the store {location}: {message}; check that the server is running and the address is right (TYPEDAG_STORE or the program's store)"
    )]
    Unreachable {
        /// The server and database.
        location: String,
        /// Why.
        message: String,
    },

    /// A shared run of this name exists with another graph.
    #[error(
        "the run `{run}` in {location} is not this graph's: {detail}; every process of a run must run the same graph: give this one another run name"
    )]
    RunMismatch {
        /// The store.
        location: String,
        /// The run's name.
        run: String,
        /// How they differ.
        detail: String,
    },

    /// The database server refused: no such database, a bad password, no permission.
    #[error(
        "the store {location} refused: {message}; check the user, password and database name in the address, and that the user may create tables in it"
    )]
    Refused {
        /// The server and database.
        location: String,
        /// The server's words.
        message: String,
    },

    /// A newer typedag has upgraded the database's tables.
    #[error(
        "the store {location} has typedag schema version {found}, and this typedag knows versions up to {known}: a newer typedag upgraded it; run this program with that newer typedag (every process sharing a store must)"
    )]
    NewerSchema {
        /// The server and database.
        location: String,
        /// The database's version.
        found: i32,
        /// The newest this typedag knows.
        known: i32,
    },

    /// A store that is not on the local disk failed.
    #[error("store {location}: {message}")]
    Other {
        /// Where.
        location: String,
        /// What.
        message: String,
    },
}

/// Our own envelope around every stored value: a format tag, the body, and a checksum, so
/// that a damaged or foreign value is detected on every read.
pub(crate) mod envelope {
    const TAG: &[u8; 4] = b"TDv1";
    /// The tag of a record that carries its output ([`seal_record_with`]).
    const INLINE: &[u8; 4] = b"TDr1";
    /// CRC-32 of the body: catches damage cheaply; outputs are also checked against their
    /// BLAKE3 digest.
    const SUM: usize = 4;

    pub(crate) fn seal(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(TAG.len() + body.len() + SUM);
        out.extend_from_slice(TAG);
        out.extend_from_slice(body);
        out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        out
    }

    pub(crate) fn open(value: &[u8]) -> Result<&[u8], String> {
        if value.len() < TAG.len() + SUM {
            return Err(format!("value too short ({} bytes)", value.len()));
        }
        if &value[..TAG.len()] != TAG {
            return Err("unknown value format".to_owned());
        }
        checked(&value[TAG.len()..])
    }

    /// A body followed by its CRC-32: the body, if the sum matches.
    fn checked(summed: &[u8]) -> Result<&[u8], String> {
        let (body, sum) = summed.split_at(summed.len() - SUM);
        if crc32fast::hash(body).to_le_bytes() != sum {
            return Err("checksum mismatch".to_owned());
        }
        Ok(body)
    }

    pub(crate) fn seal_record(record: &super::Record) -> Vec<u8> {
        seal(&super::layout::encode(record))
    }

    /// A record followed by its output's bytes, in one value: small outputs live with their
    /// record, one write instead of two. The output is checked against the record's digest
    /// when read, so the checksum covers only the record.
    pub(crate) fn seal_record_with(record: &super::Record, output: &[u8]) -> Vec<u8> {
        let body = super::layout::encode(record);
        let mut out = Vec::with_capacity(TAG.len() + 4 + body.len() + SUM + output.len());
        out.extend_from_slice(INLINE);
        out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(output);
        out
    }

    /// Splits a value into its sealed record and the output bytes after it, if it holds
    /// them ([`seal_record_with`]); a plain sealed record has none.
    pub(crate) fn split_record(value: &[u8]) -> (&[u8], Option<&[u8]>) {
        if value.len() >= TAG.len() + 4 && &value[..TAG.len()] == INLINE {
            let len = u32::from_le_bytes(value[4..8].try_into().unwrap_or([0; 4])) as usize;
            let end = (8 + len + SUM).min(value.len());
            return (&value[..end], Some(&value[end..]));
        }
        (value, None)
    }

    /// The checked record bytes of a value written by [`seal_record`] or
    /// [`seal_record_with`].
    fn record_body(value: &[u8]) -> Result<&[u8], String> {
        match split_record(value) {
            (sealed, Some(_)) if sealed.len() < 8 + SUM => {
                Err(format!("value too short ({} bytes)", value.len()))
            }
            (sealed, Some(_)) => checked(&sealed[8..]),
            (sealed, None) => open(sealed),
        }
    }

    /// The stamp of a value written by [`seal_record`] or [`seal_record_with`], checked
    /// like [`open_any_record`] but without building the whole record.
    pub(crate) fn open_stamp(value: &[u8]) -> super::Stamp {
        record_body(value)
            .ok()
            .and_then(super::layout::decode_stamp)
            .unwrap_or(super::Stamp::Damaged)
    }

    /// Opens a value written by [`seal_record`] or [`seal_record_with`].
    pub(crate) fn open_any_record(value: &[u8]) -> Result<super::Record, String> {
        super::layout::decode(record_body(value)?).ok_or_else(|| "record unreadable".to_owned())
    }
}

/// A record's bytes: fixed-width fields first, so that reading ten thousand of them at the
/// start of a run costs little.
mod layout {
    use super::{Record, RecordState};
    use crate::cache::{Digest, Fingerprint, Reason};

    const REASONS: [Reason; 10] = [
        Reason::NeverRan,
        Reason::InputChanged,
        Reason::CodeChanged,
        Reason::UpstreamChanged,
        Reason::OutputTypeChanged,
        Reason::CachingOff,
        Reason::UpstreamNotCached,
        Reason::FailedBefore,
        Reason::RecordDamaged,
        Reason::NoStore,
    ];

    pub(super) fn encode(r: &Record) -> Vec<u8> {
        let mut out = Vec::with_capacity(224 + r.task.len());
        for part in [
            &r.fingerprint.code,
            &r.fingerprint.output_type,
            &r.fingerprint.inputs,
            &r.fingerprint.upstream,
        ] {
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&r.finished_ms.to_le_bytes());
        out.extend_from_slice(&r.duration_us.to_le_bytes());
        out.extend_from_slice(&r.attempts.to_le_bytes());
        let reason = REASONS.iter().position(|x| *x == r.reason).unwrap_or(0);
        out.push(u8::try_from(reason).unwrap_or(0));
        put_str(&mut out, &r.task);
        match &r.state {
            RecordState::Done { digest, size } => {
                out.push(0);
                out.extend_from_slice(digest);
                out.extend_from_slice(&size.to_le_bytes());
            }
            RecordState::Failed { error } => {
                out.push(1);
                put_str(&mut out, error);
            }
        }
        out
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            let (head, rest) = self.0.split_at_checked(n)?;
            self.0 = rest;
            Some(head)
        }
        fn digest(&mut self) -> Option<Digest> {
            self.take(32)?.try_into().ok()
        }
        fn u64(&mut self) -> Option<u64> {
            Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
        }
        fn u32(&mut self) -> Option<u32> {
            Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
        }
        fn string(&mut self) -> Option<String> {
            String::from_utf8(self.str_bytes()?.to_vec()).ok()
        }
        fn str_bytes(&mut self) -> Option<&'a [u8]> {
            let len = usize::try_from(self.u32()?).ok()?;
            self.take(len)
        }
        fn fingerprint(&mut self) -> Option<Fingerprint> {
            Some(Fingerprint {
                code: self.digest()?,
                output_type: self.digest()?,
                inputs: self.digest()?,
                upstream: self.digest()?,
            })
        }
    }

    /// The stamp of a record's bytes, without allocating.
    pub(super) fn decode_stamp(bytes: &[u8]) -> Option<super::Stamp> {
        let mut r = Reader(bytes);
        let fingerprint = r.fingerprint()?;
        // finished_ms, duration_us, attempts, reason, task
        r.take(8 + 8 + 4 + 1)?;
        r.str_bytes()?;
        match r.take(1)?[0] {
            0 => {
                let digest = r.digest()?;
                r.u64()?;
                r.0.is_empty().then_some(super::Stamp::Done {
                    fingerprint,
                    digest,
                })
            }
            1 => {
                r.str_bytes()?;
                r.0.is_empty()
                    .then_some(super::Stamp::Failed { fingerprint })
            }
            _ => None,
        }
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<Record> {
        let mut r = Reader(bytes);
        let fingerprint = r.fingerprint()?;
        let finished_ms = r.u64()?;
        let duration_us = r.u64()?;
        let attempts = r.u32()?;
        let reason = *REASONS.get(usize::from(r.take(1)?[0]))?;
        let task = r.string()?;
        let state = match r.take(1)?[0] {
            0 => RecordState::Done {
                digest: r.digest()?,
                size: r.u64()?,
            },
            1 => RecordState::Failed { error: r.string()? },
            _ => return None,
        };
        r.0.is_empty().then_some(Record {
            task,
            fingerprint,
            state,
            finished_ms,
            duration_us,
            attempts,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::envelope;

    /// A record of a completed node.
    fn sample() -> super::Record {
        use crate::cache::{Fingerprint, Reason};
        super::Record {
            task: "parse".into(),
            fingerprint: Fingerprint {
                code: [1; 32],
                output_type: [2; 32],
                inputs: [3; 32],
                upstream: [4; 32],
            },
            state: super::RecordState::Done {
                digest: [5; 32],
                size: 1024,
            },
            finished_ms: 1_700_000_000_000,
            duration_us: 1234,
            attempts: 2,
            reason: Reason::UpstreamChanged,
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        use crate::cache::Reason;
        let mut record = sample();
        let back = envelope::open_any_record(&envelope::seal_record(&record)).unwrap();
        assert_eq!(back, record);
        record.state = super::RecordState::Failed {
            error: "the disk is full".into(),
        };
        record.reason = Reason::NoStore;
        let back = envelope::open_any_record(&envelope::seal_record(&record)).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn a_stamp_reads_what_the_record_says_and_damage_is_caught() {
        let mut record = sample();
        for _ in 0..2 {
            for value in [
                envelope::seal_record(&record),
                envelope::seal_record_with(&record, b"abc"),
            ] {
                assert_eq!(envelope::open_stamp(&value), record.stamp());
                let record_part = envelope::split_record(&value).0.len();
                for i in 0..record_part {
                    let mut bad = value.clone();
                    bad[i] ^= 0x10;
                    assert_eq!(
                        envelope::open_stamp(&bad),
                        super::Stamp::Damaged,
                        "flip at {i}"
                    );
                }
            }
            record.state = super::RecordState::Failed {
                error: "no space".into(),
            };
        }
    }

    #[test]
    fn a_record_with_its_output_reads_back_and_damage_is_caught() {
        let record = sample();
        let value = envelope::seal_record_with(&record, b"abc");
        assert_eq!(envelope::open_any_record(&value).unwrap(), record);
        assert_eq!(envelope::split_record(&value).1, Some(&b"abc"[..]));
        let plain = envelope::seal_record(&record);
        assert_eq!(envelope::open_any_record(&plain).unwrap(), record);
        assert_eq!(envelope::split_record(&plain).1, None);
        // Damage in the record is caught by its checksum; in the output, the caller's
        // digest check catches it.
        for i in 0..value.len() - 3 {
            let mut bad = value.clone();
            bad[i] ^= 0x10;
            assert!(envelope::open_any_record(&bad).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn a_flipped_bit_is_caught() {
        let sealed = envelope::seal(b"hello");
        assert_eq!(envelope::open(&sealed).unwrap(), b"hello");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x10;
            assert!(envelope::open(&bad).is_err(), "flip at {i}");
        }
        assert!(envelope::open(b"TDv1").is_err());
    }
}

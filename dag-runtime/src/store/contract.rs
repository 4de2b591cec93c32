//! The contract between a run and a store: the [`Store`] trait, and what passes through it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::error::StoreError;
use super::manifest::Manifest;
use super::record::{Loaded, Record, Stamp};
use super::shared::Coordinator;
use crate::cache::Digest;
use crate::ids::NodeIds;

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

    /// The values delivered to signal nodes of `graph` ([`Write::Deliver`]) that no run has
    /// taken yet. The default keeps none: a store of your own that does not implement it
    /// takes signals from the running program only.
    fn deliveries(&self, graph: &str) -> StoreFuture<'_, Vec<Delivery>> {
        let _ = graph;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Runs shared by several processes, if the store can coordinate them.
    #[doc(hidden)]
    fn coordinator(&self) -> Option<Arc<dyn Coordinator>> {
        None
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

/// The [`Stamp`]s of a graph's nodes, by position, as a run starts.
#[derive(Clone, Debug, Default)]
pub struct Stamps {
    /// One per node of the graph: `None` where the store has no record.
    pub stamps: Vec<Option<Stamp>>,
    /// Digest of the graph's shape as last saved.
    pub manifest: Option<Digest>,
}

/// A value delivered to a signal node, waiting in the store for a run to take it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    /// The signal node's id.
    pub signal: String,
    /// The value, as JSON: the program decodes it into the signal's type when it takes it.
    pub json: String,
    /// When it was delivered, in milliseconds since the Unix epoch.
    pub sent_ms: u64,
}

impl Delivery {
    /// A delivery of `json` to `signal`, now.
    pub fn new(signal: impl Into<String>, json: impl Into<String>) -> Self {
        Self {
            signal: signal.into(),
            json: json.into(),
            sent_ms: super::record::Record::now_ms(),
        }
    }

    /// The digest of its JSON, which tells it from a later delivery to the same signal.
    pub fn digest(&self) -> Digest {
        *blake3::hash(self.json.as_bytes()).as_bytes()
    }
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
    /// A value for a signal node of a graph, for the run that waits for it or the next one
    /// to reach it; it replaces one not yet taken. Dropped with the graph's records when the
    /// whole graph is forgotten.
    Deliver {
        /// The graph.
        graph: String,
        /// The value, and the signal it is for.
        delivery: Delivery,
    },
    /// Drops the delivery a run has taken (the one whose JSON has this digest); one delivered
    /// since stays, for the next run.
    Taken {
        /// The graph.
        graph: String,
        /// The signal node's id.
        signal: String,
        /// The digest of the JSON taken ([`Delivery::digest`]).
        digest: Digest,
    },
    /// Drops records: the named nodes of a graph, or the whole graph when `nodes` is `None`.
    Forget {
        /// The graph.
        graph: String,
        /// The nodes, or all.
        nodes: Option<Vec<String>>,
    },
}

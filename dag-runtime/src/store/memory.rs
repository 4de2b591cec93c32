//! A store in memory: for tests, and for programs that want caching within one process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::contract::{Ack, Delivery, Snapshot, Store, StoreFuture, Write};
use super::manifest::Manifest;
use super::record::{Loaded, Record};
use crate::cache::Digest;

/// Keeps records in memory, shared between clones: run a graph twice with clones of one
/// `MemoryStore` and the second run is cached. Nothing survives the process.
///
/// ```
/// use typedag::prelude::*;
///
/// #[task]
/// async fn answer() -> u32 { 42 }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typedag::Error> {
/// let store = MemoryStore::new();
/// let runner = Runner::new().store(store.clone());
/// let first = runner.run_partial(dag! { a = answer(); }).await?;
/// let second = runner.run_partial(dag! { a = answer(); }).await?;
/// assert_eq!(first.report.ran(), 1);
/// assert_eq!(second.report.cached(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    graphs: Arc<Mutex<HashMap<String, GraphData>>>,
}

#[derive(Debug, Default)]
struct GraphData {
    records: HashMap<String, Record>,
    outputs: HashMap<String, Vec<u8>>,
    manifest: Option<Manifest>,
    /// Values delivered to signal nodes and not yet taken, by signal.
    deliveries: HashMap<String, Delivery>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, GraphData>> {
        self.graphs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many records it holds, over all graphs.
    pub fn len(&self) -> usize {
        self.lock().values().map(|g| g.records.len()).sum()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store for MemoryStore {
    fn location(&self) -> String {
        "memory".to_owned()
    }

    fn load(&self, graph: &str) -> StoreFuture<'_, Snapshot> {
        let snapshot = self
            .lock()
            .get(graph)
            .map_or_else(Snapshot::default, |g| Snapshot {
                records: g
                    .records
                    .iter()
                    .map(|(k, r)| (k.clone(), Loaded::Record(r.clone())))
                    .collect(),
                manifest: g.manifest.as_ref().map(Manifest::digest),
            });
        Box::pin(async move { Ok(snapshot) })
    }

    fn output<'a>(
        &'a self,
        graph: &'a str,
        node: &'a str,
        digest: &'a Digest,
    ) -> StoreFuture<'a, Option<Vec<u8>>> {
        let bytes = self
            .lock()
            .get(graph)
            .and_then(|g| g.outputs.get(node))
            .filter(|b| blake3::hash(b).as_bytes() == digest)
            .cloned();
        Box::pin(async move { Ok(bytes) })
    }

    fn write(&self, write: Write, ack: Ack) {
        let mut graphs = self.lock();
        match write {
            Write::Save {
                graph,
                node,
                record,
                output,
            } => {
                let g = graphs.entry(graph).or_default();
                match output {
                    Some(bytes) => {
                        g.outputs.insert(node.clone(), bytes);
                    }
                    None => {
                        g.outputs.remove(&node);
                    }
                }
                g.records.insert(node, record);
            }
            Write::Graph { graph, manifest } => {
                graphs.entry(graph).or_default().manifest = Some(manifest);
            }
            Write::Deliver { graph, delivery } => {
                let g = graphs.entry(graph).or_default();
                g.deliveries.insert(delivery.signal.clone(), delivery);
            }
            Write::Taken {
                graph,
                signal,
                digest,
            } => {
                if let Some(g) = graphs.get_mut(&graph)
                    && g.deliveries
                        .get(&signal)
                        .is_some_and(|d| d.digest() == digest)
                {
                    g.deliveries.remove(&signal);
                }
            }
            Write::Forget { graph, nodes } => match nodes {
                None => {
                    graphs.remove(&graph);
                }
                Some(nodes) => {
                    if let Some(g) = graphs.get_mut(&graph) {
                        for n in nodes {
                            g.records.remove(&n);
                            g.outputs.remove(&n);
                        }
                    }
                }
            },
        }
        drop(graphs);
        ack(Ok(()));
    }

    fn graphs(&self) -> StoreFuture<'_, Vec<(String, Option<Manifest>)>> {
        let mut list: Vec<_> = self
            .lock()
            .iter()
            .map(|(k, g)| (k.clone(), g.manifest.clone()))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        Box::pin(async move { Ok(list) })
    }

    fn deliveries(&self, graph: &str) -> StoreFuture<'_, Vec<Delivery>> {
        let list = self
            .lock()
            .get(graph)
            .map(|g| g.deliveries.values().cloned().collect())
            .unwrap_or_default();
        Box::pin(async move { Ok(list) })
    }
}

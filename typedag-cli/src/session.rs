//! An open store and the runtime that drives its futures, for the length of one command.

use std::sync::{Arc, mpsc};

use dag_runtime::EmbeddedStore;
use dag_runtime::store::shared::RunSummary;
use dag_runtime::store::{Address, Delivery, Manifest, Store, Write};

use crate::error::Error;
use crate::view::GraphView;

/// A store opened by this process (an embedded store's lock is held until dropped).
pub struct Session {
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Runtime,
}

impl Session {
    /// Opens the store at `address`. A directory without a store is refused:
    /// [`EmbeddedStore::open`] would create one, and a typo in `--store` should not leave
    /// an empty store behind.
    pub fn open(address: &Address) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        if let Address::Dir(dir) = address
            && !EmbeddedStore::file_in(dir).is_file()
        {
            return Err(Error::NoStore {
                dir: dir.clone(),
                dir_exists: dir.is_dir(),
            });
        }
        let store = runtime.block_on(address.open())?;
        Ok(Self { store, runtime })
    }

    /// The store's shared runs, oldest first (none for an embedded store).
    pub fn runs(&self) -> Result<Vec<RunSummary>, Error> {
        match self.store.coordinator() {
            Some(c) => Ok(self.runtime.block_on(c.runs())?),
            None => Ok(Vec::new()),
        }
    }

    /// Drops shared runs that have ended.
    pub fn forget_runs(&self, runs: Vec<String>) -> Result<(), Error> {
        if let Some(c) = self.store.coordinator() {
            self.runtime.block_on(c.forget_runs(runs))?;
        }
        Ok(())
    }

    /// Where the store is, for messages.
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// Every graph the store knows, by name, with its saved shape if it has one.
    pub fn graphs(&self) -> Result<Vec<(String, Option<Manifest>)>, Error> {
        Ok(self.runtime.block_on(self.store.graphs())?)
    }

    /// One graph's shape and records.
    ///
    /// # Errors
    /// [`Error::UnknownGraph`] when the store has neither records nor a shape for it.
    pub fn graph(&self, name: &str) -> Result<GraphView, Error> {
        let mut graphs = self.graphs()?;
        let Some(at) = graphs.iter().position(|(g, _)| g == name) else {
            return Err(Error::UnknownGraph {
                graph: name.to_owned(),
                known: graphs.into_iter().map(|(g, _)| g).collect(),
            });
        };
        let (name, manifest) = graphs.swap_remove(at);
        self.load(name, manifest)
    }

    /// The view of a graph whose name and shape came from [`graphs`](Self::graphs).
    pub fn load(&self, name: String, manifest: Option<Manifest>) -> Result<GraphView, Error> {
        let snapshot = self.runtime.block_on(self.store.load(&name))?;
        Ok(GraphView::new(name, manifest, snapshot))
    }

    /// Whether other processes share the store, so that a program may be running on it.
    pub fn is_shared(&self) -> bool {
        self.store.coordinator().is_some()
    }

    /// The values delivered to the signals of `graph` that no run has taken yet.
    pub fn deliveries(&self, graph: &str) -> Result<Vec<Delivery>, Error> {
        Ok(self.runtime.block_on(self.store.deliveries(graph))?)
    }

    /// Delivers a value to a signal of `graph`, and returns once the store says it is kept.
    pub fn deliver(&self, graph: &str, delivery: Delivery) -> Result<(), Error> {
        let graph = graph.to_owned();
        self.write_all(vec![(graph.clone(), Write::Deliver { graph, delivery })])
    }

    /// Drops records, each `(graph, nodes)` as in [`Write::Forget`], and returns once the
    /// store says they are gone for good.
    pub fn forget(&self, drops: Vec<(String, Option<Vec<String>>)>) -> Result<(), Error> {
        let writes = drops
            .into_iter()
            .map(|(graph, nodes)| (graph.clone(), Write::Forget { graph, nodes }))
            .collect();
        self.write_all(writes)
    }

    /// Queues `writes`, each with the graph it changes, together so that the store can
    /// commit them in one transaction, and returns once the store says they are durable.
    fn write_all(&self, writes: Vec<(String, Write)>) -> Result<(), Error> {
        let (tx, rx) = mpsc::channel();
        let mut graphs = Vec::with_capacity(writes.len());
        for (graph, write) in writes {
            let tx = tx.clone();
            graphs.push(graph);
            self.store.write(
                write,
                Box::new(move |result| {
                    // The receiver only goes away once we stopped waiting.
                    let _ = tx.send(result);
                }),
            );
        }
        drop(tx);
        for graph in graphs {
            // A store that drops an ack without calling it closes the channel early.
            rx.recv().map_err(|_| Error::Unacknowledged { graph })??;
        }
        Ok(())
    }
}

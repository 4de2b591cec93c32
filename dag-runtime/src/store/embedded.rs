//! The default store: one redb file in a directory (`./.typedag/store.redb`), written by one
//! thread that commits whatever has queued up in one durable transaction.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::contract::{Ack, Delivery, Snapshot, Stamps, Store, StoreFuture, Write};
use super::envelope;
use super::error::StoreError;
use super::manifest::Manifest;
use super::queue::{BATCH, Queued};
use super::record::Loaded;
use super::registry::Registry;
use crate::cache::Digest;
use crate::ids::NodeIds;

const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records");
const OUTPUTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("outputs");
const GRAPHS: TableDefinition<&str, &[u8]> = TableDefinition::new("graphs");
const INFO: TableDefinition<&str, &str> = TableDefinition::new("typedag");
/// Values delivered to signal nodes and not yet taken, by (graph, signal). Made by the first
/// delivery: a store without it has none.
const SIGNALS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("signals");

/// The store format this version reads and writes.
const FORMAT: &str = "typedag-store-1";
/// Outputs up to this size are kept in their record's value (one write instead of two);
/// larger ones in a table of their own, so that reading the records stays cheap.
const INLINE_MAX: usize = 4096;

/// How long a transaction takes in more writes while they keep coming, at most: about what
/// committing a big burst costs, so that a burst of fast tasks shares one sync while a
/// `Completed` event never waits much longer than a commit.
const LINGER_MAX: std::time::Duration = std::time::Duration::from_millis(25);
/// The gap between writes that ends the wait.
const LINGER_GAP: std::time::Duration = std::time::Duration::from_micros(200);

/// The embedded store: crash-safe, one directory, no server. The default of
/// [`Runner::new`](crate::Runner::new), in `./.typedag`.
///
/// Every finished output is committed (fsync'd) before its `Completed` event; outputs that
/// finish together share one transaction. Each value carries a format tag and a checksum
/// that every read checks. One process at a time may open a store directory; within a
/// process, opening it again hands back the same store.
///
/// ```no_run
/// use typedag::{EmbeddedStore, Runner};
///
/// # fn main() -> Result<(), typedag::StoreError> {
/// let runner = Runner::new().store(EmbeddedStore::open("/var/cache/my-pipeline")?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    file: PathBuf,
    dir: PathBuf,
    /// `None` only while closing.
    db: Option<Arc<Database>>,
    writer: Option<mpsc::Sender<Queued>>,
    thread: Option<JoinHandle<()>>,
    /// The first write failure; after it the store takes no more writes.
    broken: Arc<Mutex<Option<String>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Let the writer drain its queue, so every acknowledged write is on disk, and close
        // the file before saying so: an `open` of the same directory waits for this.
        self.writer.take();
        if let Some(thread) = self.thread.take() {
            // Never join from the writer itself (an acknowledgement that dropped the last
            // handle): it finishes on its own once the queue is closed.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
        self.db.take();
        OPEN.release(&self.dir);
    }
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("file", &self.inner.file)
            .finish_non_exhaustive()
    }
}

/// The stores open in this process, by canonical directory.
static OPEN: Registry<PathBuf, Inner> = Registry::new();

impl EmbeddedStore {
    /// The store's file inside its directory.
    pub const FILE_NAME: &str = "store.redb";

    /// Where the store in directory `dir` keeps its file: a store is there if the file is.
    pub fn file_in(dir: impl AsRef<Path>) -> PathBuf {
        dir.as_ref().join(Self::FILE_NAME)
    }

    /// Opens the store in directory `dir`, creating both if needed.
    ///
    /// # Errors
    /// A clear [`StoreError`] naming the path when the directory cannot be created or
    /// written, the file is not a typedag store or is damaged beyond repair, was written by
    /// an incompatible typedag, or another process has it open.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| io("create the store directory", dir, &e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| io("open the store directory", dir, &e))?;
        let mut open = OPEN.lock();
        // A handle of this process is closing the file: wait until it has.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while let Some(weak) = open.get(&dir) {
            if let Some(inner) = weak.upgrade() {
                return Ok(Self { inner });
            }
            if std::time::Instant::now() > deadline {
                break;
            }
            drop(open);
            std::thread::sleep(std::time::Duration::from_millis(1));
            open = OPEN.lock();
        }
        let file = Self::file_in(&dir);
        let db = open_database(&file)?;
        check_format(&db, &file)?;
        let db = Arc::new(db);
        let broken = Arc::new(Mutex::new(None));
        let (tx, rx) = mpsc::channel();
        let thread = {
            let (db, path, broken) = (db.clone(), file.clone(), broken.clone());
            std::thread::Builder::new()
                .name("typedag-store".into())
                .spawn(move || write_loop(&db, &path, &broken, &rx))
                .map_err(|e| io("start the store's writer thread for", &file, &e))?
        };
        let inner = Arc::new(Inner {
            file,
            dir: dir.clone(),
            db: Some(db),
            writer: Some(tx),
            thread: Some(thread),
            broken,
        });
        open.insert(dir, Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.inner.file
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            path: self.inner.file.clone(),
            detail: e.to_string(),
        }
    }

    /// Runs a read, turning redb's errors, and its panics on damaged pages, into ours.
    fn read<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let Some(db) = &self.inner.db else {
            return Err(self.corrupt("the store is closing"));
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| f(db))) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.corrupt(e)),
            Err(_) => Err(self.corrupt("a read hit a damaged page")),
        }
    }
}

fn io(action: &'static str, path: &Path, e: &std::io::Error) -> StoreError {
    let advice = match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            "make it writable for this user, or choose another directory with `Runner::store` or TYPEDAG_STORE=<dir>"
        }
        std::io::ErrorKind::StorageFull => "free some disk space and run again",
        _ => {
            "check the path, or choose another directory with `Runner::store` or TYPEDAG_STORE=<dir>"
        }
    };
    StoreError::Io {
        action,
        path: path.to_owned(),
        message: e.to_string(),
        advice,
    }
}

fn open_database(file: &Path) -> Result<Database, StoreError> {
    let opened = std::panic::catch_unwind(|| {
        redb::Builder::new()
            .set_check_integrity_on_open(true)
            .set_cache_size(64 << 20)
            .create(file)
    });
    let err = match opened {
        Ok(Ok(db)) => return Ok(db),
        Ok(Err(e)) => e,
        Err(_) => {
            return Err(StoreError::Corrupt {
                path: file.to_owned(),
                detail: "opening it hit a damaged page".into(),
            });
        }
    };
    Err(match err {
        redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => {
            StoreError::Locked {
                path: file.to_owned(),
            }
        }
        redb::DatabaseError::UpgradeRequired(v) => StoreError::Version {
            path: file.to_owned(),
            found: format!("redb file format {v}"),
            expected: FORMAT.to_owned(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            StoreError::NotAStore {
                path: file.to_owned(),
                detail: e.to_string(),
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(e)) => io("open the store", file, &e),
        other => StoreError::Corrupt {
            path: file.to_owned(),
            detail: other.to_string(),
        },
    })
}

/// A new file gets our tables and format tag; an existing one must carry our format tag.
fn check_format(db: &Database, file: &Path) -> Result<(), StoreError> {
    let corrupt = |e: redb::Error| StoreError::Corrupt {
        path: file.to_owned(),
        detail: e.to_string(),
    };
    let found: Option<String> = (|| -> Result<Option<String>, redb::Error> {
        let read = db.begin_read()?;
        let info = match read.open_table(INFO) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                if read.list_tables()?.next().is_some() {
                    return Ok(Some(String::new()));
                }
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Some(
            info.get("format")?
                .map(|v| v.value().to_owned())
                .unwrap_or_default(),
        ))
    })()
    .map_err(corrupt)?;
    match found {
        None => {
            let init = || -> Result<(), redb::Error> {
                let tx = db.begin_write()?;
                tx.open_table(INFO)?.insert("format", FORMAT)?;
                tx.open_table(RECORDS)?;
                tx.open_table(OUTPUTS)?;
                tx.open_table(GRAPHS)?;
                tx.commit()?;
                Ok(())
            };
            init().map_err(corrupt)
        }
        Some(f) if f == FORMAT => Ok(()),
        Some(f) if f.is_empty() => Err(StoreError::NotAStore {
            path: file.to_owned(),
            detail: "a redb database without typedag's tables".into(),
        }),
        Some(f) => Err(StoreError::Version {
            path: file.to_owned(),
            found: f,
            expected: FORMAT.to_owned(),
        }),
    }
}

fn write_loop(
    db: &Database,
    file: &Path,
    broken: &Mutex<Option<String>>,
    rx: &mpsc::Receiver<Queued>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let already = broken.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let result = match already {
            Some(cause) => {
                batch.push(first);
                Err(cause)
            }
            None => {
                let committed = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    stream(db, first, rx, &mut batch)
                }));
                let outcome = match committed {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("a write hit a damaged page".to_owned()),
                };
                if let Err(cause) = &outcome {
                    // A failed sync may have dropped data that a retry would report as
                    // written: stop writing instead.
                    broken
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert_with(|| cause.clone());
                }
                outcome
            }
        };
        for op in batch {
            (op.ack)(result.clone().map_err(|cause| StoreError::ReadOnly {
                path: file.to_owned(),
                cause,
            }));
        }
    }
}

/// The tables a write transaction changes.
struct Tables<'t> {
    /// For the tables few writes touch, opened when one does.
    tx: &'t redb::WriteTransaction,
    records: redb::Table<'t, (&'static str, &'static str), &'static [u8]>,
    outputs: redb::Table<'t, (&'static str, &'static str), &'static [u8]>,
    graphs: redb::Table<'t, &'static str, &'static [u8]>,
}

/// One durable transaction: applies `first` and every write that follows while they keep
/// coming (a commit costs about as much for one record as for a hundred), each as it arrives,
/// so that the B-tree work overlaps the tasks still running and only the sync is left when
/// the burst ends. Every write taken is in `batch`, to acknowledge.
fn stream(
    db: &Database,
    first: Queued,
    rx: &mpsc::Receiver<Queued>,
    batch: &mut Vec<Queued>,
) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut tables = Tables {
            tx: &tx,
            records: tx.open_table(RECORDS)?,
            outputs: tx.open_table(OUTPUTS)?,
            graphs: tx.open_table(GRAPHS)?,
        };
        let mut next = Some(first);
        let deadline = std::time::Instant::now() + LINGER_MAX;
        while let Some(op) = next.take() {
            batch.push(op);
            apply(&mut tables, &batch[batch.len() - 1].write)?;
            if batch.len() >= BATCH || std::time::Instant::now() >= deadline {
                break;
            }
            next = match rx.try_recv() {
                Ok(op) => Some(op),
                Err(_) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    rx.recv_timeout(left.min(LINGER_GAP)).ok()
                }
            };
        }
    }
    tx.commit()?;
    Ok(())
}

fn apply(tables: &mut Tables<'_>, write: &Write) -> Result<(), redb::Error> {
    let Tables {
        tx,
        records,
        outputs,
        graphs,
    } = tables;
    match write {
        Write::Save {
            graph,
            node,
            record,
            output,
        } => {
            let key = (graph.as_str(), node.as_str());
            match output {
                Some(bytes) if bytes.len() <= INLINE_MAX => {
                    records.insert(key, envelope::seal_record_with(record, bytes).as_slice())?;
                    outputs.remove(key)?;
                }
                Some(bytes) => {
                    records.insert(key, envelope::seal_record(record).as_slice())?;
                    outputs.insert(key, bytes.as_slice())?;
                }
                None => {
                    records.insert(key, envelope::seal_record(record).as_slice())?;
                    outputs.remove(key)?;
                }
            }
        }
        Write::Graph { graph, manifest } => {
            graphs.insert(graph.as_str(), manifest.seal().1.as_slice())?;
        }
        Write::Deliver { graph, delivery } => {
            let value = postcard::to_allocvec(delivery)
                // Two strings and a number: postcard encodes them into a growing buffer.
                .expect("a delivery always encodes");
            tx.open_table(SIGNALS)?.insert(
                (graph.as_str(), delivery.signal.as_str()),
                envelope::seal(&value).as_slice(),
            )?;
        }
        Write::Taken {
            graph,
            signal,
            digest,
        } => {
            let mut signals = tx.open_table(SIGNALS)?;
            let key = (graph.as_str(), signal.as_str());
            let taken = signals
                .get(key)?
                .and_then(|v| open_delivery(v.value()).ok())
                .is_some_and(|d| d.digest() == *digest);
            if taken {
                signals.remove(key)?;
            }
        }
        Write::Forget { graph, nodes } => {
            let doomed: Vec<String> = match nodes {
                Some(nodes) => nodes.clone(),
                None => {
                    graphs.remove(graph.as_str())?;
                    drop_deliveries(tx, graph)?;
                    let mut all = Vec::new();
                    each_record(records, graph, |n, _| all.push(n.to_owned()))?;
                    all
                }
            };
            for node in &doomed {
                records.remove((graph.as_str(), node.as_str()))?;
                outputs.remove((graph.as_str(), node.as_str()))?;
            }
        }
    }
    Ok(())
}

/// Calls `f` with the node id and value of each record of `graph`, in id order.
/// Up to this many ids, `stamps` looks each up rather than reading the graph's records.
const POINT_LOOKUPS: usize = 4096;

fn each_record(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    graph: &str,
    mut f: impl FnMut(&str, &[u8]),
) -> Result<(), redb::Error> {
    for entry in table.range((graph, "")..)? {
        let (k, v) = entry?;
        let (g, n) = k.value();
        if g != graph {
            break;
        }
        f(n, v.value());
    }
    Ok(())
}

/// Drops the values delivered to `graph`'s signals that no run has taken.
fn drop_deliveries(tx: &redb::WriteTransaction, graph: &str) -> Result<(), redb::Error> {
    let mut signals = tx.open_table(SIGNALS)?;
    let mut delivered = Vec::new();
    each_record(&signals, graph, |s, _| delivered.push(s.to_owned()))?;
    for signal in &delivered {
        signals.remove((graph, signal.as_str()))?;
    }
    Ok(())
}

/// A delivery read back from its stored value.
fn open_delivery(value: &[u8]) -> Result<Delivery, String> {
    postcard::from_bytes(envelope::open(value)?).map_err(|e| e.to_string())
}

/// The digest of `graph`'s saved shape, if any.
fn manifest_digest(
    read: &redb::ReadTransaction,
    graph: &str,
) -> Result<Option<Digest>, redb::Error> {
    Ok(read
        .open_table(GRAPHS)?
        .get(graph)?
        .and_then(|v| Manifest::open_shape(v.value())))
}

impl Store for EmbeddedStore {
    fn location(&self) -> String {
        self.inner.file.display().to_string()
    }

    fn load(&self, graph: &str) -> StoreFuture<'_, Snapshot> {
        let snapshot = self.read(|db| {
            let read = db.begin_read()?;
            let table = read.open_table(RECORDS)?;
            // The whole table's length bounds this graph's: enough to never rehash.
            let hint = usize::try_from(table.len()?).unwrap_or(0).min(1 << 20);
            let mut records = HashMap::with_capacity(hint);
            each_record(&table, graph, |n, v| {
                let loaded = match envelope::open_any_record(v) {
                    Ok(r) => Loaded::Record(r),
                    Err(e) => Loaded::Damaged(e),
                };
                records.insert(n.to_owned(), loaded);
            })?;
            Ok(Snapshot {
                records,
                manifest: manifest_digest(&read, graph)?,
            })
        });
        Box::pin(async move { snapshot })
    }

    fn stamps(&self, graph: &str, nodes: Arc<NodeIds>) -> StoreFuture<'_, Stamps> {
        let stamps = self.read(|db| {
            let read = db.begin_read()?;
            let table = read.open_table(RECORDS)?;
            let mut stamps = vec![None; nodes.len()];
            if nodes.len() <= POINT_LOOKUPS {
                // A few ids: looked up one by one, however many records the graph has (a
                // map node's items can be many more than the graph's nodes).
                for (id, position) in nodes.iter() {
                    if let Some(v) = table.get((graph, id))? {
                        stamps[position] = Some(envelope::open_stamp(v.value()));
                    }
                }
            } else {
                each_record(&table, graph, |n, v| {
                    if let Some(position) = nodes.position(n) {
                        stamps[position] = Some(envelope::open_stamp(v));
                    }
                })?;
            }
            Ok(Stamps {
                stamps,
                manifest: manifest_digest(&read, graph)?,
            })
        });
        Box::pin(async move { stamps })
    }

    fn output<'a>(
        &'a self,
        graph: &'a str,
        node: &'a str,
        digest: &'a Digest,
    ) -> StoreFuture<'a, Option<Vec<u8>>> {
        let bytes = self.read(|db| {
            let read = db.begin_read()?;
            let inline = read
                .open_table(RECORDS)?
                .get((graph, node))?
                .and_then(|v| envelope::split_record(v.value()).1.map(<[u8]>::to_vec));
            let bytes = match inline {
                Some(bytes) => Some(bytes),
                None => read
                    .open_table(OUTPUTS)?
                    .get((graph, node))?
                    .map(|v| v.value().to_vec()),
            };
            Ok(bytes.filter(|b| blake3::hash(b).as_bytes() == digest))
        });
        Box::pin(async move { bytes })
    }

    fn write(&self, write: Write, ack: Ack) {
        let broken = self
            .inner
            .broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(cause) = broken {
            ack(Err(StoreError::ReadOnly {
                path: self.inner.file.clone(),
                cause,
            }));
            return;
        }
        let Some(writer) = &self.inner.writer else {
            return;
        };
        if let Err(mpsc::SendError(op)) = writer.send(Queued { write, ack }) {
            (op.ack)(Err(StoreError::ReadOnly {
                path: self.inner.file.clone(),
                cause: "the writer thread stopped".into(),
            }));
        }
    }

    fn graphs(&self) -> StoreFuture<'_, Vec<(String, Option<Manifest>)>> {
        let graphs = self.read(|db| {
            let read = db.begin_read()?;
            let mut names: Vec<(String, Option<Manifest>)> = Vec::new();
            for entry in read.open_table(GRAPHS)?.iter()? {
                let (k, v) = entry?;
                names.push((k.value().to_owned(), Manifest::open(v.value()).ok()));
            }
            // Graphs with records but no saved shape still count.
            let mut last: Option<String> = None;
            for entry in read.open_table(RECORDS)?.iter()? {
                let (k, _) = entry?;
                let g = k.value().0;
                if last.as_deref() != Some(g) {
                    if !names.iter().any(|(n, _)| n == g) {
                        names.push((g.to_owned(), None));
                    }
                    last = Some(g.to_owned());
                }
            }
            names.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(names)
        });
        Box::pin(async move { graphs })
    }

    fn deliveries(&self, graph: &str) -> StoreFuture<'_, Vec<Delivery>> {
        let deliveries = self.read(|db| {
            let read = db.begin_read()?;
            let table = match read.open_table(SIGNALS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut list = Vec::new();
            // A damaged delivery is left out: it cannot be taken, and the next one replaces it.
            each_record(&table, graph, |_, v| list.extend(open_delivery(v).ok()))?;
            Ok(list)
        });
        Box::pin(async move { deliveries })
    }
}

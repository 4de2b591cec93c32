//! A store in a PostgreSQL database, shared by every process that points at it (feature
//! `postgres`).
//!
//! The store talks to the server from a runtime of its own (one thread), so that it works
//! from any runtime its caller uses and outlives none of them. Reads share one connection;
//! writes go through another, owned by a writer task that commits whatever has queued up in
//! one transaction. A lost connection (a server restart, a network blip) is reconnected
//! and the operation retried, for up to the store's retry window; every write is an
//! idempotent upsert or delete, so a retried batch cannot apply twice.
//!
//! Outputs are kept by digest (`typedag_outputs`), so that a record overwritten by another
//! run of the same graph never takes away bytes that a run in flight still reads.

mod complete;
mod link;
mod listen;
mod runs;
mod schema;
mod shared;
mod sql;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio_postgres::Config;

use self::link::{Conn, Link, PgError};
use self::listen::Wakes;
use self::sql::{sql, still_going};
use super::address::hide_password;
use super::contract::{Ack, Delivery, Snapshot, Stamps, Store, StoreFuture, Write};
use super::envelope;
use super::error::StoreError;
use super::manifest::Manifest;
use super::queue::{BATCH, Queued};
use super::record::{Loaded, Record};
use super::registry::Registry;
use super::shared::Coordinator;
use crate::cache::Digest;
use crate::ids::NodeIds;

/// How long an operation keeps retrying a lost connection by default.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// A store in PostgreSQL: the cache of every process that uses the same database, and
/// the place where processes that share a run ([`Runner::distributed`]) meet.
///
/// Same semantics as the embedded store (fingerprints, early cutoff, failure records,
/// [`Runner::explain`](crate::Runner::explain)); completions that finish together are
/// committed in one transaction, before their `Completed` events. The store creates its
/// tables (`typedag_*`) and records their version in `typedag_migrations`; a database that
/// a newer typedag has upgraded is refused with a clear error. A lost connection (a server
/// restart) is retried for a minute before an operation fails.
///
/// Choose it with [`Runner::store`](crate::Runner::store), or with
/// `TYPEDAG_STORE=postgres://user@host/db`. Within a process, connecting to the same URL
/// again hands back the same store.
///
/// ```no_run
/// use typedag::{PostgresStore, Runner};
///
/// # async fn main_() -> Result<(), typedag::Error> {
/// let store = PostgresStore::connect("postgres://pipeline@db.internal/pipeline").await?;
/// let runner = Runner::new().store(store);
/// # Ok(())
/// # }
/// ```
///
/// [`Runner::distributed`]: crate::Runner::distributed
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    key: String,
    link: Arc<Link>,
    /// The store's own runtime; shut down without blocking when the last handle goes.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    writer: mpsc::UnboundedSender<Queued>,
    /// Completions of shared runs, committed in batches.
    completer: mpsc::UnboundedSender<complete::Pending>,
    /// Notifications that something changed in a shared run.
    wakes: Arc<Wakes>,
    /// Nodes that this process's completions made ready, by run: claimed first, without
    /// searching.
    hints: Arc<Hints>,
}

/// Nodes readied by this process's completions, by run.
pub(super) type Hints = Mutex<HashMap<String, Vec<i32>>>;

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        OPEN.release(&self.key);
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.inner.link.location)
            .finish_non_exhaustive()
    }
}

/// The stores open in this process, by address and retry window.
static OPEN: Registry<String, Inner> = Registry::new();

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, or the
    /// `key=value` form), creating or upgrading typedag's tables in it.
    ///
    /// # Errors
    /// [`StoreError::Unreachable`] when the server cannot be reached within 10 seconds (the
    /// message says why: refused, unknown host), [`StoreError::Refused`] when the server
    /// says no (no such database, a bad password, no permission to create the tables),
    /// [`StoreError::NewerSchema`] when a newer typedag has upgraded the database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, RETRY_FOR).await
    }

    /// Like [`connect`](Self::connect), retrying a lost connection for `retry_for` before an
    /// operation fails (one minute by default: long enough for a server restart). The first
    /// connection is tried for at most 10 seconds of it.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(url: &str, retry_for: Duration) -> Result<Self, StoreError> {
        let config: Config = url.parse().map_err(|e| StoreError::Other {
            location: "PostgreSQL".to_owned(),
            message: format!(
                "`{}` is not a PostgreSQL address ({e}); write it as postgres://user@host:port/database",
                hide_password(url)
            ),
        })?;
        let key = format!("{url}\u{0}{}", retry_for.as_millis());
        if let Some(inner) = OPEN.get(&key) {
            return Ok(Self { inner });
        }
        let link = Arc::new(Link::new(config, retry_for));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("typedag-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Other {
                location: link.location.clone(),
                message: format!("cannot start the store's runtime: {e}"),
            })?;
        let handle = runtime.handle().clone();
        let migrated = {
            let link = link.clone();
            handle.spawn(async move { schema::migrate(&link).await })
        };
        let joined = migrated.await.map_err(|e| StoreError::Other {
            location: link.location.clone(),
            message: format!("setting up the tables stopped: {e}"),
        });
        if let Err(e) = joined.and_then(|r| r) {
            runtime.shutdown_background();
            return Err(e);
        }
        let (writer, rx) = mpsc::unbounded_channel();
        handle.spawn(write_loop(link.clone(), rx));
        let wakes = Arc::new(Wakes {
            count: AtomicU64::new(0),
            notify: Notify::new(),
            origin: listen::origin(),
        });
        let hints: Arc<Hints> = Arc::default();
        let (completer, rx) = mpsc::unbounded_channel();
        handle.spawn(complete::complete_loop(
            link.clone(),
            rx,
            hints.clone(),
            wakes.origin.clone(),
        ));
        handle.spawn(listen::listen(link.clone(), Arc::downgrade(&wakes)));
        let inner = Arc::new(Inner {
            key: key.clone(),
            link,
            runtime: Some(runtime),
            handle,
            writer,
            completer,
            wakes,
            hints,
        });
        OPEN.insert(key, &inner);
        Ok(Self { inner })
    }
}

impl Inner {
    /// Runs `f` on the store's runtime with the shared connection, retrying lost ones.
    fn read<T, F, Fut>(&self, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: Fn(Arc<Conn>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, PgError>> + Send,
    {
        let link = self.link.clone();
        self.spawn(async move { link.read(f).await })
    }

    /// Runs `fut` on the store's runtime.
    fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let task = self.handle.spawn(fut);
        let location = self.link.location.clone();
        Box::pin(async move {
            task.await.map_err(|e| StoreError::Other {
                location,
                message: format!("an operation stopped: {e}"),
            })?
        })
    }
}

/// Commits whatever has queued up in one transaction, then acknowledges it; a lost
/// connection is reconnected and the whole batch applied again.
async fn write_loop(link: Arc<Link>, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let mut conn: Option<Conn> = None;
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // The acks stay out of the transaction's future: they are not `Sync`.
        let (writes, acks): (Vec<Write>, Vec<Ack>) =
            batch.drain(..).map(|op| (op.write, op.ack)).unzip();
        let deadline = Instant::now() + link.retry_for;
        let result = link
            .transact(&mut conn, deadline, &writes, |c, w| Box::pin(commit(c, w)))
            .await;
        for ack in acks {
            ack(result.clone());
        }
    }
}

async fn commit(conn: &Conn, batch: &[Write]) -> Result<(), PgError> {
    let client = &conn.client;
    let mut saves = Vec::new();
    for write in batch {
        if let Write::Save {
            graph,
            node,
            record,
            output,
        } = write
        {
            saves.push(Save {
                graph,
                node,
                record,
                output: output.as_deref(),
            });
            continue;
        }
        save(conn, &std::mem::take(&mut saves)).await?;
        match write {
            Write::Graph { graph, manifest } => {
                let (shape, value) = manifest.seal();
                client
                    .execute(
                        "INSERT INTO typedag_graphs (graph, shape, manifest) VALUES ($1, $2, $3)
                         ON CONFLICT (graph) DO UPDATE
                         SET shape = EXCLUDED.shape, manifest = EXCLUDED.manifest",
                        &[graph, &shape.as_slice(), &value],
                    )
                    .await?;
            }
            Write::Deliver { graph, delivery } => {
                let sent_ms = i64::try_from(delivery.sent_ms).unwrap_or(i64::MAX);
                client
                    .execute(
                        "INSERT INTO typedag_signals (graph, signal, json, digest, sent_ms)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (graph, signal) DO UPDATE
                         SET json = EXCLUDED.json, digest = EXCLUDED.digest,
                             sent_ms = EXCLUDED.sent_ms",
                        &[
                            graph,
                            &delivery.signal,
                            &delivery.json,
                            &delivery.digest().as_slice(),
                            &sent_ms,
                        ],
                    )
                    .await?;
            }
            Write::Taken {
                graph,
                signal,
                digest,
            } => {
                client
                    .execute(
                        "DELETE FROM typedag_signals WHERE graph = $1 AND signal = $2 AND digest = $3",
                        &[graph, signal, &digest.as_slice()],
                    )
                    .await?;
            }
            Write::Forget {
                graph,
                nodes: Some(nodes),
            } => {
                client
                    .execute(
                        "DELETE FROM typedag_records WHERE graph = $1 AND node = ANY($2)",
                        &[graph, nodes],
                    )
                    .await?;
                sweep(conn).await?;
            }
            Write::Forget { graph, nodes: None } => {
                client
                    .execute("DELETE FROM typedag_records WHERE graph = $1", &[graph])
                    .await?;
                client
                    .execute("DELETE FROM typedag_graphs WHERE graph = $1", &[graph])
                    .await?;
                client
                    .execute("DELETE FROM typedag_signals WHERE graph = $1", &[graph])
                    .await?;
                // Its shared runs that ended go too; a run still going stays.
                client
                    .execute(
                        sql!(concat!(
                            "DELETE FROM typedag_runs r WHERE graph = $1 AND NOT ",
                            still_going!()
                        )),
                        &[graph],
                    )
                    .await?;
                sweep(conn).await?;
            }
            Write::Save { .. } => unreachable!("saves are gathered above"),
        }
    }
    save(conn, &saves).await
}

/// Drops outputs that no record and no node of a run refers to any more.
async fn sweep(conn: &Conn) -> Result<(), PgError> {
    conn.client
        .execute(
            "DELETE FROM typedag_outputs o
             WHERE NOT EXISTS (SELECT 1 FROM typedag_records r WHERE r.digest = o.digest)
               AND NOT EXISTS (SELECT 1 FROM typedag_nodes n WHERE n.digest = o.digest)",
            &[],
        )
        .await?;
    Ok(())
}

/// One record to keep, with its output bytes.
struct Save<'a> {
    pub graph: &'a str,
    pub node: &'a str,
    pub record: &'a Record,
    pub output: Option<&'a [u8]>,
}

/// Upserts saves in two statements; of two saves of one node, the later wins.
async fn save(conn: &Conn, saves: &[Save<'_>]) -> Result<(), PgError> {
    if saves.is_empty() {
        return Ok(());
    }
    let mut at: HashMap<(&str, &str), usize> = HashMap::with_capacity(saves.len());
    let (mut graphs, mut nodes, mut records, mut keys, mut digests) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut outputs: HashMap<Digest, &[u8]> = HashMap::new();
    for s in saves {
        let sealed = envelope::seal_record(s.record);
        let key = s.record.fingerprint.key().to_vec();
        let digest = s.record.digest().map(|d| d.to_vec());
        if let (Some(d), Some(bytes)) = (s.record.digest(), s.output) {
            outputs.insert(*d, bytes);
        }
        match at.get(&(s.graph, s.node)) {
            Some(&i) => {
                records[i] = sealed;
                keys[i] = key;
                digests[i] = digest;
            }
            None => {
                at.insert((s.graph, s.node), graphs.len());
                graphs.push(s.graph);
                nodes.push(s.node);
                records.push(sealed);
                keys.push(key);
                digests.push(digest);
            }
        }
    }
    let client = &conn.client;
    if !outputs.is_empty() {
        let (d, b): (Vec<&[u8]>, Vec<&[u8]>) =
            outputs.iter().map(|(d, b)| (d.as_slice(), *b)).unzip();
        let insert = conn
            .prepare(
                "INSERT INTO typedag_outputs (digest, bytes)
                 SELECT * FROM UNNEST($1::bytea[], $2::bytea[])
                 ON CONFLICT (digest) DO NOTHING",
            )
            .await?;
        client.execute(&insert, &[&d, &b]).await?;
    }
    let upsert = conn
        .prepare(
            "INSERT INTO typedag_records (graph, node, record, fingerprint, digest)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::bytea[])
             ON CONFLICT (graph, node) DO UPDATE
             SET record = EXCLUDED.record, fingerprint = EXCLUDED.fingerprint,
                 digest = EXCLUDED.digest",
        )
        .await?;
    client
        .execute(&upsert, &[&graphs, &nodes, &records, &keys, &digests])
        .await?;
    Ok(())
}

/// The digest of `graph`'s shape as last saved.
async fn shape(conn: &Conn, graph: &str) -> Result<Option<Digest>, PgError> {
    let select = conn
        .prepare("SELECT shape FROM typedag_graphs WHERE graph = $1")
        .await?;
    Ok(conn
        .client
        .query_opt(&select, &[&graph])
        .await?
        .and_then(|row| <Digest>::try_from(row.get::<_, &[u8]>(0)).ok()))
}

/// Output bytes by digest, each checked against it.
async fn outputs(conn: &Conn, digests: &[Digest]) -> Result<Vec<Option<Vec<u8>>>, PgError> {
    let select = conn
        .prepare("SELECT digest, bytes FROM typedag_outputs WHERE digest = ANY($1)")
        .await?;
    let keys: Vec<&[u8]> = digests.iter().map(<[u8; 32]>::as_slice).collect();
    let mut found: HashMap<Vec<u8>, Vec<u8>> = conn
        .client
        .query(&select, &[&keys])
        .await?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    // A digest asked for more than once (equal items of a map) gets its bytes each time:
    // copied for all but the last.
    let mut asked: HashMap<&[u8], usize> = HashMap::with_capacity(digests.len());
    for d in digests {
        *asked.entry(d.as_slice()).or_default() += 1;
    }
    Ok(digests
        .iter()
        .map(|d| {
            let key = d.as_slice();
            let again = asked.get_mut(key).is_some_and(|n| {
                *n -= 1;
                *n > 0
            });
            let bytes = if again {
                found.get(key).cloned()
            } else {
                found.remove(key)
            };
            bytes.filter(|b| blake3::hash(b).as_bytes() == d)
        })
        .collect())
}

impl Store for PostgresStore {
    fn location(&self) -> String {
        self.inner.link.location.clone()
    }

    fn load(&self, graph: &str) -> StoreFuture<'_, Snapshot> {
        let graph = graph.to_owned();
        self.inner.read(move |conn| {
            let graph = graph.clone();
            async move {
                let select = conn
                    .prepare("SELECT node, record FROM typedag_records WHERE graph = $1")
                    .await?;
                let rows = conn.client.query(&select, &[&graph]).await?;
                let mut records = HashMap::with_capacity(rows.len());
                for row in rows {
                    let node: String = row.get(0);
                    let loaded = match envelope::open_any_record(row.get(1)) {
                        Ok(r) => Loaded::Record(r),
                        Err(e) => Loaded::Damaged(e),
                    };
                    records.insert(node, loaded);
                }
                let manifest = shape(&conn, &graph).await?;
                Ok(Snapshot { records, manifest })
            }
        })
    }

    /// Reads the records of `nodes` alone, by key: a lookup of one item of a map, or of a
    /// map's index, does not read the thousands of other records its graph may have.
    fn stamps(&self, graph: &str, nodes: Arc<NodeIds>) -> StoreFuture<'_, Stamps> {
        let graph = graph.to_owned();
        self.inner.read(move |conn| {
            let (graph, nodes) = (graph.clone(), nodes.clone());
            async move {
                let select = conn
                    .prepare(
                        "SELECT node, record FROM typedag_records
                         WHERE graph = $1 AND node = ANY($2)",
                    )
                    .await?;
                let ids: Vec<&str> = nodes.iter().map(|(id, _)| id).collect();
                let rows = conn.client.query(&select, &[&graph, &ids]).await?;
                let mut stamps = vec![None; nodes.len()];
                for row in rows {
                    if let Some(stamp) = nodes
                        .position(row.get(0))
                        .and_then(|position| stamps.get_mut(position))
                    {
                        *stamp = Some(envelope::open_stamp(row.get(1)));
                    }
                }
                let manifest = shape(&conn, &graph).await?;
                Ok(Stamps { stamps, manifest })
            }
        })
    }

    fn output<'a>(
        &'a self,
        _graph: &'a str,
        _node: &'a str,
        digest: &'a Digest,
    ) -> StoreFuture<'a, Option<Vec<u8>>> {
        let digest = *digest;
        self.inner
            .read(move |conn| async move { Ok(outputs(&conn, &[digest]).await?.pop().flatten()) })
    }

    fn write(&self, write: Write, ack: Ack) {
        if let Err(mpsc::error::SendError(op)) = self.inner.writer.send(Queued { write, ack }) {
            (op.ack)(Err(StoreError::Other {
                location: self.inner.link.location.clone(),
                message: "the store's writer stopped".into(),
            }));
        }
    }

    fn graphs(&self) -> StoreFuture<'_, Vec<(String, Option<Manifest>)>> {
        self.inner.read(|conn| async move {
            let mut names: Vec<(String, Option<Manifest>)> = conn
                .client
                .query("SELECT graph, manifest FROM typedag_graphs", &[])
                .await?
                .into_iter()
                .map(|row| (row.get(0), Manifest::open(row.get(1)).ok()))
                .collect();
            // Graphs with records but no saved shape still count.
            for row in conn
                .client
                .query(
                    "SELECT DISTINCT graph FROM typedag_records
                     WHERE graph NOT IN (SELECT graph FROM typedag_graphs)",
                    &[],
                )
                .await?
            {
                names.push((row.get(0), None));
            }
            names.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(names)
        })
    }

    fn deliveries(&self, graph: &str) -> StoreFuture<'_, Vec<Delivery>> {
        let graph = graph.to_owned();
        self.inner.read(move |conn| {
            let graph = graph.clone();
            async move {
                let rows = conn
                    .client
                    .query(
                        "SELECT signal, json, sent_ms FROM typedag_signals WHERE graph = $1",
                        &[&graph],
                    )
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|row| Delivery {
                        signal: row.get(0),
                        json: row.get(1),
                        sent_ms: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
                    })
                    .collect())
            }
        })
    }

    fn coordinator(&self) -> Option<Arc<dyn Coordinator>> {
        Some(self.inner.clone())
    }
}

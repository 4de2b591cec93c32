//! A store in a PostgreSQL database, shared by every process that points at it (feature
//! `postgres`).
//!
//! The store talks to the server from a runtime of its own (one thread), so that it works
//! from any runtime its caller uses and outlives none of them. Reads share one connection;
//! writes go through another, owned by a writer task that commits whatever has queued up in
//! one transaction. A lost connection (a server restart, a network blip) is reconnected
//! and the operation retried, for up to [`PostgresStore::retry_for`]; every write is an
//! idempotent upsert or delete, so a retried batch cannot apply twice.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use super::{Ack, Loaded, Manifest, Snapshot, Store, StoreError, StoreFuture, Write, envelope};
use crate::cache::Digest;

/// The newest schema this typedag knows, and how to reach it from each older one.
const MIGRATIONS: &[&str] = &[
    // 1: records (with their outputs) and graph shapes.
    "CREATE TABLE typedag_records (
         graph  text  NOT NULL,
         node   text  NOT NULL,
         record bytea NOT NULL,
         output bytea,
         PRIMARY KEY (graph, node)
     );
     CREATE TABLE typedag_graphs (
         graph    text  PRIMARY KEY,
         shape    bytea NOT NULL,
         manifest bytea NOT NULL
     );",
];

/// Serialises schema changes between processes that connect at the same moment.
const MIGRATION_LOCK: i64 = 0x7479_7065_6461_6701;

/// Writes committed together at most.
const BATCH: usize = 4096;

/// How long an operation keeps retrying a lost connection by default.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// A store in PostgreSQL: the cache of every process that uses the same database.
///
/// Same semantics as the embedded store (fingerprints, early cutoff, failure records,
/// [`Runner::explain`](crate::Runner::explain)); completions that finish together are
/// committed in one transaction, before their `Completed` events. The store creates its
/// tables (`typedag_*`) and records their version in `typedag_migrations`; a database that
/// a newer typedag has upgraded is refused with a clear error.
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
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    link: Arc<Link>,
    /// The store's own runtime; shut down without blocking when the last handle goes.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    writer: mpsc::UnboundedSender<Op>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let mut open = open_stores().lock().unwrap_or_else(|e| e.into_inner());
        if open.get(&self.url).is_some_and(|w| w.strong_count() == 0) {
            open.remove(&self.url);
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.inner.link.location)
            .finish_non_exhaustive()
    }
}

fn open_stores() -> &'static Mutex<HashMap<String, Weak<Inner>>> {
    static OPEN: OnceLock<Mutex<HashMap<String, Weak<Inner>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

struct Op {
    write: Write,
    ack: Ack,
}

/// What every operation needs to reach the server: its address and how long to insist.
struct Link {
    config: Config,
    /// The address without the password, for messages.
    location: String,
    retry_for: Duration,
    /// The connection that reads share.
    reader: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, or the
    /// `key=value` form), creating or upgrading typedag's tables in it.
    ///
    /// # Errors
    /// [`StoreError::Unreachable`] when the server cannot be reached within a minute (the
    /// message says why: refused, unknown host), [`StoreError::Refused`] when the server
    /// says no (no such database, a bad password, no permission to create the tables),
    /// [`StoreError::NewerSchema`] when a newer typedag has upgraded the database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, RETRY_FOR).await
    }

    /// Like [`connect`](Self::connect), retrying a lost connection for `retry_for` before an
    /// operation fails (one minute by default: long enough for a server restart).
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
        if let Some(inner) = open_stores()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .and_then(Weak::upgrade)
        {
            return Ok(Self { inner });
        }
        let link = Arc::new(Link {
            location: location(&config),
            config,
            retry_for,
            reader: tokio::sync::Mutex::new(None),
        });
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
            handle.spawn(async move { migrate(&link).await })
        };
        let joined = migrated.await.map_err(|e| StoreError::Other {
            location: link.location.clone(),
            message: format!("setting up the tables stopped: {e}"),
        });
        if let Err(e) = joined.and_then(|r| r) {
            runtime.shutdown_background();
            return Err(e);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        handle.spawn(write_loop(link.clone(), rx));
        let inner = Arc::new(Inner {
            url: key.clone(),
            link,
            runtime: Some(runtime),
            handle,
            writer: tx,
        });
        open_stores()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    /// Runs `f` on the store's runtime with a reading connection, retrying lost connections.
    fn read<T, F, Fut>(&self, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: Fn(Arc<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send,
    {
        let link = self.inner.link.clone();
        let task = self.inner.handle.spawn(async move { link.read(f).await });
        let location = self.inner.link.location.clone();
        Box::pin(async move {
            task.await.map_err(|e| StoreError::Other {
                location,
                message: format!("a read stopped: {e}"),
            })?
        })
    }
}

/// `postgres://user@host:port/db`, whatever form the address was given in, without the
/// password.
fn location(config: &Config) -> String {
    let host = config.get_hosts().first().map_or_else(
        || "localhost".to_owned(),
        |h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        },
    );
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let at = if user.is_empty() { "" } else { "@" };
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}{at}{host}:{port}/{db}")
}

/// The address as given, with any password replaced by `***`.
fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Whether an error is the connection's, not the statement's: retrying on a new connection
/// may succeed.
fn transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::T_R_SERIALIZATION_FAILURE,
                    SqlState::T_R_DEADLOCK_DETECTED,
                ]
                .contains(code)
        }
        // No answer from the server at all: an I/O error, a refused connection.
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// Backoff between reconnection attempts.
fn pause(attempt: u32) -> Duration {
    Duration::from_millis((50u64 << attempt.min(4)).min(1000))
}

impl Link {
    fn unreachable(&self, e: &tokio_postgres::Error) -> StoreError {
        StoreError::Unreachable {
            location: self.location.clone(),
            message: describe(e),
        }
    }

    fn refused(&self, e: &tokio_postgres::Error) -> StoreError {
        StoreError::Refused {
            location: self.location.clone(),
            message: describe(e),
        }
    }

    /// A new connection, retried until `deadline` while the server cannot be reached.
    async fn connect(&self, deadline: Instant) -> Result<Client, StoreError> {
        let mut attempt = 0;
        loop {
            match self.config.connect(NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(async move {
                        // Ends when the connection does; the next use finds it closed.
                        let _ = connection.await;
                    });
                    return Ok(client);
                }
                Err(e) if transient(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(pause(attempt)).await;
                    attempt += 1;
                }
                Err(e) if transient(&e) => return Err(self.unreachable(&e)),
                // Wrong password, no such database: waiting will not help.
                Err(e) => return Err(self.refused(&e)),
            }
        }
    }

    async fn reader(&self, deadline: Instant) -> Result<Arc<Client>, StoreError> {
        let mut slot = self.reader.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let client = Arc::new(self.connect(deadline).await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    async fn read<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: Fn(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let deadline = Instant::now() + self.retry_for;
        let mut attempt = 0;
        loop {
            let client = self.reader(deadline).await?;
            match f(client).await {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(pause(attempt)).await;
                    attempt += 1;
                }
                Err(e) if transient(&e) => return Err(self.unreachable(&e)),
                Err(e) => return Err(self.refused(&e)),
            }
        }
    }
}

/// The server's message with its detail and hint, or the client's.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_owned();
            if let Some(detail) = db.detail() {
                text = format!("{text} ({detail})");
            }
            if let Some(hint) = db.hint() {
                text = format!("{text}; {hint}");
            }
            text
        }
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Creates or upgrades typedag's tables, one migration per transaction, under a lock that
/// makes concurrent first connections take turns.
async fn migrate(link: &Link) -> Result<(), StoreError> {
    let deadline = Instant::now() + link.retry_for;
    let mut attempt = 0;
    loop {
        let mut client = link.connect(deadline).await?;
        match migrate_once(&mut client).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(found)) => {
                return Err(StoreError::NewerSchema {
                    location: link.location.clone(),
                    found,
                    known: i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX),
                });
            }
            Err(e) if transient(&e) && Instant::now() < deadline => {
                tokio::time::sleep(pause(attempt)).await;
                attempt += 1;
            }
            Err(e) if transient(&e) => return Err(link.unreachable(&e)),
            Err(e) => return Err(link.refused(&e)),
        }
    }
}

/// `Ok(Err(version))` when the database is newer than this typedag.
async fn migrate_once(client: &mut Client) -> Result<Result<(), i32>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS typedag_migrations (
             version    integer     PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now(),
             typedag    text        NOT NULL
         )",
    )
    .await?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM typedag_migrations",
            &[],
        )
        .await?
        .get(0);
    let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    if current > known {
        return Ok(Err(current));
    }
    for (version, sql) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO typedag_migrations (version, typedag) VALUES ($1, $2)",
            &[&version, &env!("CARGO_PKG_VERSION")],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// Commits whatever has queued up in one transaction, then acknowledges it; a lost
/// connection is reconnected and the whole batch applied again.
async fn write_loop(link: Arc<Link>, mut rx: mpsc::UnboundedReceiver<Op>) {
    let mut client: Option<Client> = None;
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // The acks stay out of the transaction's future: they are not `Sync`.
        let (writes, acks): (Vec<Write>, Vec<Ack>) =
            batch.drain(..).map(|op| (op.write, op.ack)).unzip();
        let deadline = Instant::now() + link.retry_for;
        let mut attempt = 0;
        let result = loop {
            let c = match client.as_mut().filter(|c| !c.is_closed()) {
                Some(c) => c,
                None => match link.connect(deadline).await {
                    Ok(c) => client.insert(c),
                    Err(e) => break Err(e),
                },
            };
            match commit(c, &writes).await {
                Ok(()) => break Ok(()),
                Err(e) if transient(&e) && Instant::now() < deadline => {
                    client = None;
                    tokio::time::sleep(pause(attempt)).await;
                    attempt += 1;
                }
                Err(e) if transient(&e) => break Err(link.unreachable(&e)),
                Err(e) => break Err(link.refused(&e)),
            }
        };
        for ack in acks {
            ack(result.clone());
        }
    }
}

async fn commit(client: &mut Client, batch: &[Write]) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let mut saves: Vec<&Write> = Vec::new();
    for write in batch {
        if matches!(write, Write::Save { .. }) {
            saves.push(write);
            continue;
        }
        save(&tx, &saves).await?;
        saves.clear();
        match write {
            Write::Graph { graph, manifest } => {
                let shape = manifest.digest();
                let body = postcard::to_allocvec(&(shape, manifest)).unwrap_or_default();
                tx.execute(
                    "INSERT INTO typedag_graphs (graph, shape, manifest) VALUES ($1, $2, $3)
                     ON CONFLICT (graph) DO UPDATE SET shape = EXCLUDED.shape, manifest = EXCLUDED.manifest",
                    &[graph, &shape.as_slice(), &envelope::seal(&body)],
                )
                .await?;
            }
            Write::Forget {
                graph,
                nodes: Some(nodes),
            } => {
                tx.execute(
                    "DELETE FROM typedag_records WHERE graph = $1 AND node = ANY($2)",
                    &[graph, nodes],
                )
                .await?;
            }
            Write::Forget { graph, nodes: None } => {
                tx.execute("DELETE FROM typedag_records WHERE graph = $1", &[graph])
                    .await?;
                tx.execute("DELETE FROM typedag_graphs WHERE graph = $1", &[graph])
                    .await?;
            }
            Write::Save { .. } => unreachable!("saves are gathered above"),
        }
    }
    save(&tx, &saves).await?;
    tx.commit().await
}

/// Upserts a run of saves in one statement; of two saves of one node, the later wins.
async fn save(
    tx: &tokio_postgres::Transaction<'_>,
    saves: &[&Write],
) -> Result<(), tokio_postgres::Error> {
    if saves.is_empty() {
        return Ok(());
    }
    let mut at: HashMap<(&str, &str), usize> = HashMap::with_capacity(saves.len());
    let (mut graphs, mut nodes, mut records, mut outputs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for write in saves {
        let Write::Save {
            graph,
            node,
            record,
            output,
        } = write
        else {
            continue;
        };
        let sealed = envelope::seal_record(record);
        let out = output.as_deref();
        match at.get(&(graph.as_str(), node.as_str())) {
            Some(&i) => {
                records[i] = sealed;
                outputs[i] = out;
            }
            None => {
                at.insert((graph.as_str(), node.as_str()), graphs.len());
                graphs.push(graph.as_str());
                nodes.push(node.as_str());
                records.push(sealed);
                outputs.push(out);
            }
        }
    }
    tx.execute(
        "INSERT INTO typedag_records (graph, node, record, output)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::bytea[])
         ON CONFLICT (graph, node) DO UPDATE SET record = EXCLUDED.record, output = EXCLUDED.output",
        &[&graphs, &nodes, &records, &outputs],
    )
    .await?;
    Ok(())
}

fn read_manifest(value: &[u8]) -> Option<Manifest> {
    let body = envelope::open(value).ok()?;
    postcard::from_bytes::<(Digest, Manifest)>(body)
        .ok()
        .map(|(_, m)| m)
}

impl Store for PostgresStore {
    fn location(&self) -> String {
        self.inner.link.location.clone()
    }

    fn load(&self, graph: &str) -> StoreFuture<'_, Snapshot> {
        let graph = graph.to_owned();
        self.read(move |client| {
            let graph = graph.clone();
            async move {
                let rows = client
                    .query(
                        "SELECT node, record FROM typedag_records WHERE graph = $1",
                        &[&graph],
                    )
                    .await?;
                let mut records = HashMap::with_capacity(rows.len());
                for row in rows {
                    let node: String = row.get(0);
                    let loaded = match envelope::open_record(row.get(1)) {
                        Ok(r) => Loaded::Record(r),
                        Err(e) => Loaded::Damaged(e),
                    };
                    records.insert(node, loaded);
                }
                let manifest = client
                    .query_opt(
                        "SELECT shape FROM typedag_graphs WHERE graph = $1",
                        &[&graph],
                    )
                    .await?
                    .and_then(|row| <Digest>::try_from(row.get::<_, &[u8]>(0)).ok());
                Ok(Snapshot { records, manifest })
            }
        })
    }

    fn output<'a>(
        &'a self,
        graph: &'a str,
        node: &'a str,
        digest: &'a Digest,
    ) -> StoreFuture<'a, Option<Vec<u8>>> {
        let (graph, node, digest) = (graph.to_owned(), node.to_owned(), *digest);
        self.read(move |client| {
            let (graph, node) = (graph.clone(), node.clone());
            async move {
                let row = client
                    .query_opt(
                        "SELECT output FROM typedag_records WHERE graph = $1 AND node = $2",
                        &[&graph, &node],
                    )
                    .await?;
                Ok(row
                    .and_then(|r| r.get::<_, Option<Vec<u8>>>(0))
                    .filter(|b| blake3::hash(b).as_bytes() == &digest))
            }
        })
    }

    fn write(&self, write: Write, ack: Ack) {
        if let Err(mpsc::error::SendError(op)) = self.inner.writer.send(Op { write, ack }) {
            (op.ack)(Err(StoreError::Other {
                location: self.inner.link.location.clone(),
                message: "the store's writer stopped".into(),
            }));
        }
    }

    fn graphs(&self) -> StoreFuture<'_, Vec<(String, Option<Manifest>)>> {
        self.read(|client| async move {
            let mut names: Vec<(String, Option<Manifest>)> = client
                .query("SELECT graph, manifest FROM typedag_graphs", &[])
                .await?
                .into_iter()
                .map(|row| (row.get(0), read_manifest(row.get(1))))
                .collect();
            // Graphs with records but no saved shape still count.
            for row in client
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_shown_without_their_password() {
        assert_eq!(
            hide_password("postgres://ann:secret@db:5433/x"),
            "postgres://ann:***@db:5433/x"
        );
        assert_eq!(hide_password("postgres://ann@db/x"), "postgres://ann@db/x");
        let config: Config = "postgres://ann:secret@db:5433/x".parse().unwrap();
        assert_eq!(location(&config), "postgres://ann@db:5433/x");
        let config: Config = "host=db user=ann password=secret".parse().unwrap();
        assert_eq!(location(&config), "postgres://ann@db:5432/ann");
    }
}

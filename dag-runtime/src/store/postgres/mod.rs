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

mod link;
mod shared;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio_postgres::Config;

use self::link::{Conn, Link, PgError, hide_password};
use super::{
    Ack, Loaded, Manifest, Record, Snapshot, Store, StoreError, StoreFuture, Write, envelope,
};
use crate::cache::Digest;

/// Each schema version, as the statements that reach it from the one before.
const MIGRATIONS: &[&str] = &[
    // 1: records, outputs by digest, graph shapes.
    "CREATE TABLE typedag_records (
         graph       text  NOT NULL,
         node        text  NOT NULL,
         record      bytea NOT NULL,
         fingerprint bytea NOT NULL,
         digest      bytea,
         PRIMARY KEY (graph, node)
     );
     CREATE INDEX typedag_records_fingerprint ON typedag_records (fingerprint);
     CREATE TABLE typedag_outputs (
         digest bytea PRIMARY KEY,
         bytes  bytea NOT NULL
     );
     CREATE TABLE typedag_graphs (
         graph    text  PRIMARY KEY,
         shape    bytea NOT NULL,
         manifest bytea NOT NULL
     );",
    // 2: runs shared by several processes.
    "CREATE SEQUENCE typedag_tokens;
     CREATE TABLE typedag_runs (
         run        text        PRIMARY KEY,
         graph      text        NOT NULL,
         shape      bytea       NOT NULL,
         stopping   boolean     NOT NULL DEFAULT false,
         started_at timestamptz NOT NULL DEFAULT now()
     );
     CREATE TABLE typedag_nodes (
         run         text     NOT NULL REFERENCES typedag_runs ON DELETE CASCADE,
         idx         integer  NOT NULL,
         node        text     NOT NULL,
         priority    integer  NOT NULL,
         inputs      integer[] NOT NULL,
         waiting     integer  NOT NULL,
         state       smallint NOT NULL,
         owner       text,
         token       bigint,
         lease_until timestamptz,
         digest      bytea,
         outcome     bytea,
         PRIMARY KEY (run, idx)
     );
     CREATE INDEX typedag_nodes_ready ON typedag_nodes (run, priority DESC, idx)
         WHERE state = 1;
     CREATE INDEX typedag_nodes_claimed ON typedag_nodes (run, lease_until)
         WHERE state = 2;
     CREATE TABLE typedag_inflight (
         fingerprint bytea       PRIMARY KEY,
         token       bigint      NOT NULL,
         owner       text        NOT NULL,
         lease_until timestamptz NOT NULL
     );
     -- Records the ends of claimed nodes in one call: each end whose claim still holds
     -- (its token is the node's) is applied, with its record and output, its dependents
     -- readied, the nodes it skips marked, its fingerprint let go. Returns, for each end,
     -- whether its claim held, and the nodes it made ready. Ends come sorted by node, so
     -- rows lock in one order.
     CREATE FUNCTION typedag_complete(
         p_run text, p_graph text,
         p_idx integer[], p_token bigint[], p_state smallint[], p_digest bytea[],
         p_outcome bytea[], p_node text[], p_record bytea[], p_key bytea[], p_bytes bytea[],
         p_fp bytea[], p_stop boolean[],
         p_dep_of integer[], p_dep integer[],
         p_skip_of integer[], p_skip integer[], p_skip_outcome bytea[],
         p_origin text,
         OUT held boolean[], OUT readied integer[]
     ) LANGUAGE plpgsql AS $fn$
     DECLARE
         live integer[] := '{}';
         now_state smallint;
         now_token bigint;
         e integer;
         d record;
     BEGIN
         held := array_fill(false, ARRAY[coalesce(array_length(p_idx, 1), 0)]);
         readied := '{}';
         FOR e IN 1 .. coalesce(array_length(p_idx, 1), 0) LOOP
             SELECT n.state, n.token INTO now_state, now_token FROM typedag_nodes n
             WHERE n.run = p_run AND n.idx = p_idx[e] FOR UPDATE;
             IF now_token = p_token[e] THEN
                 held[e] := true;
                 IF now_state = 2 THEN
                     live := live || e;
                 END IF;
             END IF;
         END LOOP;
         IF cardinality(live) = 0 THEN
             RETURN;
         END IF;
         INSERT INTO typedag_outputs (digest, bytes)
         SELECT p_digest[u.k], p_bytes[u.k] FROM unnest(live) AS u(k)
         WHERE p_bytes[u.k] IS NOT NULL
         ON CONFLICT (digest) DO NOTHING;
         INSERT INTO typedag_records (graph, node, record, fingerprint, digest)
         SELECT p_graph, p_node[u.k], p_record[u.k], p_key[u.k], p_digest[u.k]
         FROM unnest(live) AS u(k) WHERE p_record[u.k] IS NOT NULL
         ON CONFLICT (graph, node) DO UPDATE
         SET record = EXCLUDED.record, fingerprint = EXCLUDED.fingerprint,
             digest = EXCLUDED.digest;
         FOREACH e IN ARRAY live LOOP
             UPDATE typedag_nodes
             SET state = p_state[e], digest = p_digest[e], outcome = p_outcome[e],
                 lease_until = NULL
             WHERE run = p_run AND idx = p_idx[e];
             IF p_fp[e] IS NOT NULL THEN
                 DELETE FROM typedag_inflight
                 WHERE fingerprint = p_fp[e] AND token = p_token[e];
             END IF;
         END LOOP;
         FOR d IN SELECT p_dep[s.k] AS node, count(*)::integer AS c
                  FROM generate_subscripts(p_dep, 1) AS s(k)
                  WHERE p_dep_of[s.k] = ANY(live)
                  GROUP BY p_dep[s.k] ORDER BY 1 LOOP
             UPDATE typedag_nodes
             SET waiting = waiting - d.c,
                 state = CASE WHEN state = 0 AND waiting - d.c <= 0 THEN 1 ELSE state END
             WHERE run = p_run AND idx = d.node
             RETURNING state INTO now_state;
             IF now_state = 1 THEN
                 readied := readied || d.node;
             END IF;
         END LOOP;
         FOR d IN SELECT p_skip[s.k] AS node, min(s.k) AS first
                  FROM generate_subscripts(p_skip, 1) AS s(k)
                  WHERE p_skip_of[s.k] = ANY(live)
                  GROUP BY p_skip[s.k] ORDER BY 1 LOOP
             UPDATE typedag_nodes SET state = 5, outcome = p_skip_outcome[d.first]
             WHERE run = p_run AND idx = d.node AND state = 0;
         END LOOP;
         IF EXISTS (SELECT 1 FROM unnest(live) AS u(k) WHERE p_stop[u.k]) THEN
             UPDATE typedag_runs SET stopping = true WHERE run = p_run;
         END IF;
         -- The readied nodes go back to the caller, who claims what it has room for; the
         -- others hear of them (`p_origin` says whose news it is).
         PERFORM pg_notify('typedag', p_run || ' ' || p_origin);
     END
     $fn$;",
];

/// Serialises schema changes between processes that connect at the same moment.
const MIGRATION_LOCK: i64 = 0x7479_7065_6461_6701;

/// Writes committed together at most.
const BATCH: usize = 4096;

/// How long an operation keeps retrying a lost connection by default.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// How long [`PostgresStore::connect`] tries to reach the server at first, at most.
const FIRST_CONNECT: Duration = Duration::from_secs(10);

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
    writer: mpsc::UnboundedSender<Op>,
    /// Completions of shared runs, committed in batches.
    completer: mpsc::UnboundedSender<shared::Completion>,
    /// Notifications that something changed in a shared run.
    wakes: Arc<Wakes>,
    /// Nodes that this process's completions made ready, by run: claimed first, without
    /// searching.
    hints: Arc<Hints>,
}

/// Nodes readied by this process's completions, by run.
pub(super) type Hints = Mutex<HashMap<String, Vec<i32>>>;

/// Counts notifications from other processes, and wakes whoever waits for the next one.
struct Wakes {
    count: AtomicU64,
    notify: Notify,
    /// Who we are in notifications: our own are not news.
    origin: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let mut open = open_stores().lock().unwrap_or_else(|e| e.into_inner());
        if open.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
            open.remove(&self.key);
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
        if let Some(inner) = open_stores()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .and_then(Weak::upgrade)
        {
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
        let (writer, rx) = mpsc::unbounded_channel();
        handle.spawn(write_loop(link.clone(), rx));
        let wakes = Arc::new(Wakes {
            count: AtomicU64::new(0),
            notify: Notify::new(),
            origin: shared::origin(),
        });
        let hints: Arc<Hints> = Arc::default();
        let (completer, rx) = mpsc::unbounded_channel();
        handle.spawn(shared::complete_loop(
            link.clone(),
            rx,
            hints.clone(),
            wakes.origin.clone(),
        ));
        handle.spawn(shared::listen(link.clone(), Arc::downgrade(&wakes)));
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
        open_stores()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Arc::downgrade(&inner));
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

/// Creates or upgrades typedag's tables, under a lock that makes concurrent first
/// connections take turns.
async fn migrate(link: &Link) -> Result<(), StoreError> {
    // A server that cannot be reached at all when the program starts is more likely a
    // wrong address than a restart: say so after a short wait, not the whole window.
    let deadline = Instant::now() + link.retry_for.min(FIRST_CONNECT);
    let migrated = link
        .transact(&mut None, deadline, &(), |c, ()| Box::pin(migrate_once(c)))
        .await?;
    migrated.map_err(|found| StoreError::NewerSchema {
        location: link.location.clone(),
        found,
        known: i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX),
    })
}

/// `Ok(Err(version))` when the database is newer than this typedag.
async fn migrate_once(conn: &Conn) -> Result<Result<(), i32>, PgError> {
    let client = &conn.client;
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS typedag_migrations (
                 version    integer     PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now(),
                 typedag    text        NOT NULL
             )",
        )
        .await?;
    let current: i32 = client
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
        client.batch_execute(sql).await?;
        client
            .execute(
                "INSERT INTO typedag_migrations (version, typedag) VALUES ($1, $2)",
                &[&version, &env!("CARGO_PKG_VERSION")],
            )
            .await?;
    }
    Ok(Ok(()))
}

/// Commits whatever has queued up in one transaction, then acknowledges it; a lost
/// connection is reconnected and the whole batch applied again.
async fn write_loop(link: Arc<Link>, mut rx: mpsc::UnboundedReceiver<Op>) {
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
                let shape = manifest.digest();
                let body = postcard::to_allocvec(&(shape, manifest)).unwrap_or_default();
                client
                    .execute(
                        "INSERT INTO typedag_graphs (graph, shape, manifest) VALUES ($1, $2, $3)
                         ON CONFLICT (graph) DO UPDATE
                         SET shape = EXCLUDED.shape, manifest = EXCLUDED.manifest",
                        &[graph, &shape.as_slice(), &envelope::seal(&body)],
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
                // Its finished shared runs go too; a run in progress stays.
                client
                    .execute(
                        "DELETE FROM typedag_runs r WHERE graph = $1 AND NOT EXISTS
                         (SELECT 1 FROM typedag_nodes n WHERE n.run = r.run AND n.state IN (0, 1, 2))",
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
    Ok(digests
        .iter()
        .map(|d| {
            found
                .remove(d.as_slice())
                .filter(|b| blake3::hash(b).as_bytes() == d)
        })
        .collect())
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
                let manifest = conn
                    .client
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
        _graph: &'a str,
        _node: &'a str,
        digest: &'a Digest,
    ) -> StoreFuture<'a, Option<Vec<u8>>> {
        let digest = *digest;
        self.inner
            .read(move |conn| async move { Ok(outputs(&conn, &[digest]).await?.pop().flatten()) })
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
        self.inner.read(|conn| async move {
            let mut names: Vec<(String, Option<Manifest>)> = conn
                .client
                .query("SELECT graph, manifest FROM typedag_graphs", &[])
                .await?
                .into_iter()
                .map(|row| (row.get(0), read_manifest(row.get(1))))
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

    fn coordinator(&self) -> Option<Arc<dyn super::shared::Coordinator>> {
        Some(self.inner.clone())
    }
}

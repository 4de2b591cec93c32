//! Runs shared by several processes, the [`Coordinator`] side: nodes are rows of
//! `typedag_nodes`; a process claims ready ones with `FOR UPDATE SKIP LOCKED` under a lease
//! that it renews. Their completions are committed in batches ([`complete`](super::complete));
//! `NOTIFY typedag` wakes idle processes ([`listen`](super::listen)).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::complete::Pending;
use super::link::{Conn, PgError};
use super::sql::{sql, still_going};
use super::{Inner, outputs, runs};
use crate::cache::Digest;
use crate::store::contract::StoreFuture;
use crate::store::envelope;
use crate::store::error::StoreError;
use crate::store::shared::{
    Begin, Claim, ClaimKind, Completion, Coordinator, Expansion, ItemRow, Join, NodeRow, Progress,
    RowState, RunSummary,
};

/// The claim statement: nodes of run $1 that match `$pick` (with its order), at most $3,
/// skipping those another process is claiming right now, and claimed if their state still
/// matches `$claimable`; each returned with its inputs' digests, and what it is (a node, an
/// item, an expanded map node). The rows are picked once, in a materialized step: as a
/// subquery of the update, the planner may scan the pick again for each row it updates,
/// each scan skipping the rows locked by the last and so claiming past the limit (seen when
/// a map's items are all ready at once).
macro_rules! claim_sql {
    ($pick:literal, $claimable:literal) => {
        concat!(
            "WITH picked AS MATERIALIZED (
                 SELECT idx FROM typedag_nodes
                 WHERE run = $1 ",
            $pick,
            " LIMIT $3
                 FOR UPDATE SKIP LOCKED),
             claimed AS (
                 UPDATE typedag_nodes n
                 SET state = {Claimed}, owner = $2, token = nextval('typedag_tokens'),
                     lease_until = now() + $4 * interval '1 millisecond', claimed_at = now()
                 FROM picked p
                 WHERE n.run = $1 AND n.idx = p.idx AND n.state ",
            $claimable,
            "
                 RETURNING n.idx, n.token, n.inputs, n.parent, n.item, n.key, n.items)
             SELECT c.idx, c.token,
                    ARRAY(SELECT u.digest
                          FROM unnest(c.inputs) WITH ORDINALITY AS x(i, o)
                          LEFT JOIN typedag_nodes u ON u.run = $1 AND u.idx = x.i
                          ORDER BY x.o),
                    c.parent, c.item, c.key, c.items
             FROM claimed c"
        )
    };
}

/// Claims among the nodes this process readied, unless the run is stopping: found by key
/// (the primary key; the index of ready nodes is full of entries for nodes claimed since,
/// until a vacuum).
const CLAIM_HINTED: &str = claim_sql!(
    "AND NOT (SELECT stopping FROM typedag_runs WHERE run = $1) AND idx = ANY($5)",
    "= {Ready}"
);
/// Claims among every ready node, best priority first, unless the run is stopping.
const CLAIM_ANY: &str = claim_sql!(
    "AND NOT (SELECT stopping FROM typedag_runs WHERE run = $1) AND state = {Ready}
     ORDER BY priority DESC, idx",
    "= {Ready}"
);
/// Claims, in a stopping run, the expanded map nodes that have not ended (waiting for items
/// that will not start now, or ready to gather), none of whose items is claimed.
const CLAIM_STOPPED: &str = claim_sql!(
    "AND (SELECT stopping FROM typedag_runs WHERE run = $1)
     AND parent IS NULL AND items IS NOT NULL AND state IN ({Waiting}, {Ready})
     AND NOT EXISTS (SELECT 1 FROM typedag_nodes i
                     WHERE i.run = $1 AND i.parent = typedag_nodes.idx
                       AND i.state = {Claimed})
     ORDER BY idx",
    "IN ({Waiting}, {Ready})"
);

fn claim_of(row: &tokio_postgres::Row) -> Claim {
    let number = |i: Option<i32>| i.map(|i| u32::try_from(i).unwrap_or(u32::MAX));
    let kind = match (number(row.get(3)), number(row.get(4)), number(row.get(6))) {
        (Some(parent), Some(position), _) => ClaimKind::Item {
            parent,
            position,
            key: key_of(row.get(5)),
        },
        (_, _, Some(items)) => ClaimKind::Expanded(items),
        _ => ClaimKind::Node,
    };
    Claim {
        index: u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX),
        token: row.get(1),
        digests: row
            .get::<_, Vec<Option<Vec<u8>>>>(2)
            .iter()
            .map(|d| digest_of(d.as_deref()))
            .collect(),
        kind,
    }
}

/// An item's key as its row keeps it; zeros for one that is not a key (never written).
fn key_of(bytes: Option<&[u8]>) -> [u8; 16] {
    bytes
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .unwrap_or_default()
}

/// Puts back the nodes whose lease ran out (their process died or lost the database), so
/// that others claim them; their old token no longer completes anything.
async fn requeue(conn: &Conn, run: &str) -> Result<(), PgError> {
    let requeue = conn
        .prepare(sql!(
            "WITH back AS (
                 UPDATE typedag_nodes
                 SET state = {Ready}, owner = NULL, token = NULL, lease_until = NULL
                 WHERE run = $1 AND state = {Claimed} AND lease_until < now()
                 RETURNING idx)
             SELECT count(*), CASE WHEN count(*) > 0 THEN pg_notify('typedag', $1) END
             FROM back"
        ))
        .await?;
    conn.client.execute(&requeue, &[&run]).await?;
    Ok(())
}

/// Runs one of the claim statements for `me` in `run`: at most `n` rows, under `lease`, of
/// the `hinted` nodes for the statement that takes them.
async fn claim_rows(
    conn: &Conn,
    statement: &'static str,
    run: &str,
    me: &str,
    n: usize,
    lease: Duration,
    hinted: Option<&[i32]>,
) -> Result<Vec<Claim>, PgError> {
    let statement = conn.prepare(statement).await?;
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let lease = millis(lease);
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&run, &me, &n, &lease];
    if let Some(hinted) = &hinted {
        params.push(hinted);
    }
    let rows = conn.client.query(&statement, &params).await?;
    Ok(rows.iter().map(claim_of).collect())
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn digest_of(bytes: Option<&[u8]>) -> Option<Digest> {
    bytes.and_then(|b| Digest::try_from(b).ok())
}

impl Coordinator for Inner {
    fn join(&self, join: Join) -> StoreFuture<'_, ()> {
        let join = Arc::new(join);
        let location = self.link.location.clone();
        let link = self.link.clone();
        self.spawn(async move {
            let deadline = Instant::now() + link.retry_for;
            let created = link
                .transact(&mut None, deadline, &*join, |c, j| Box::pin(create(c, j)))
                .await?;
            created.map_err(|detail| StoreError::RunMismatch {
                location,
                run: join.run.clone(),
                detail,
            })
        })
    }

    fn claim(
        &self,
        run: String,
        me: String,
        n: usize,
        lease: Duration,
        search: bool,
    ) -> StoreFuture<'_, Vec<Claim>> {
        let hints = self.hints.clone();
        self.read(move |conn| {
            let (run, me, hints) = (run.clone(), me.clone(), hints.clone());
            async move {
                let hinted: Vec<i32> = {
                    let mut all = hints.lock().unwrap_or_else(|e| e.into_inner());
                    let mine = all.entry(run.clone()).or_default();
                    let take = mine.len().min(n);
                    mine.drain(..take).collect()
                };
                let mut claims = Vec::new();
                if !hinted.is_empty() {
                    let by_id = sql!(CLAIM_HINTED);
                    claims = claim_rows(&conn, by_id, &run, &me, n, lease, Some(&hinted)).await?;
                }
                let room = n.saturating_sub(claims.len());
                if search && room > 0 {
                    let any = sql!(CLAIM_ANY);
                    claims.extend(claim_rows(&conn, any, &run, &me, room, lease, None).await?);
                }
                Ok(claims)
            }
        })
    }

    fn claim_stopped(
        &self,
        run: String,
        me: String,
        n: usize,
        lease: Duration,
    ) -> StoreFuture<'_, Vec<Claim>> {
        self.read(move |conn| {
            let (run, me) = (run.clone(), me.clone());
            async move {
                let stopped = sql!(CLAIM_STOPPED);
                claim_rows(&conn, stopped, &run, &me, n, lease, None).await
            }
        })
    }

    fn expand(&self, run: String, expansion: Expansion) -> StoreFuture<'_, Option<Vec<u32>>> {
        let (hints, origin) = (self.hints.clone(), self.wakes.origin.clone());
        let expansion = Arc::new(expansion);
        self.read(move |conn| {
            let (run, origin, e) = (run.clone(), origin.clone(), expansion.clone());
            let hints = hints.clone();
            async move {
                let readied = expand(&conn, &run, &e, &origin).await?;
                if let Some(readied) = &readied {
                    let mut all = hints.lock().unwrap_or_else(|e| e.into_inner());
                    all.entry(run.clone())
                        .or_default()
                        .extend(readied.iter().filter_map(|&i| i32::try_from(i).ok()));
                }
                Ok(readied)
            }
        })
    }

    fn items(&self, run: String, parent: u32) -> StoreFuture<'_, Vec<ItemRow>> {
        self.read(move |conn| {
            let run = run.clone();
            async move {
                let select = conn
                    .prepare(
                        "SELECT item, key, state, digest, outcome,
                                (extract(epoch FROM claimed_at) * 1000000)::bigint
                         FROM typedag_nodes
                         WHERE run = $1 AND parent = $2 ORDER BY item",
                    )
                    .await?;
                let parent = i32::try_from(parent).unwrap_or(i32::MAX);
                Ok(conn
                    .client
                    .query(&select, &[&run, &parent])
                    .await?
                    .into_iter()
                    .map(|row| ItemRow {
                        position: u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX),
                        key: key_of(row.get(1)),
                        state: RowState::from_number(row.get(2)),
                        digest: digest_of(row.get(3)),
                        outcome: row.get(4),
                        claimed_us: row
                            .get::<_, Option<i64>>(5)
                            .and_then(|us| u64::try_from(us).ok()),
                    })
                    .collect())
            }
        })
    }

    fn outputs(&self, digests: Vec<Digest>) -> StoreFuture<'_, Vec<Option<Vec<u8>>>> {
        self.read(move |conn| {
            let digests = digests.clone();
            async move { outputs(&conn, &digests).await }
        })
    }

    fn begin(
        &self,
        fingerprint: Digest,
        token: i64,
        me: String,
        lease: Duration,
    ) -> StoreFuture<'_, Begin> {
        self.read(move |conn| {
            let me = me.clone();
            async move {
                // Take the fingerprint unless a live claim holds it, then look for a record
                // of it: whoever computed it before committed that record together with
                // letting the fingerprint go, so a record seen here is whole. Two statements,
                // pipelined: the look must come after the take. In one statement it would
                // read the snapshot taken as the statement began, while the take sees a
                // release committed since, and both would miss the record.
                let take = conn
                    .prepare(
                        "INSERT INTO typedag_inflight (fingerprint, token, owner, lease_until)
                         VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
                         ON CONFLICT (fingerprint) DO UPDATE
                         SET token = EXCLUDED.token, owner = EXCLUDED.owner,
                             lease_until = EXCLUDED.lease_until
                         WHERE typedag_inflight.lease_until < now()
                            OR typedag_inflight.token = EXCLUDED.token
                         RETURNING token",
                    )
                    .await?;
                let look = conn
                    .prepare(
                        "SELECT r.record FROM typedag_records r
                         WHERE r.fingerprint = $1 AND r.digest IS NOT NULL
                           AND EXISTS (SELECT 1 FROM typedag_outputs o
                                       WHERE o.digest = r.digest)
                         LIMIT 1",
                    )
                    .await?;
                let key = fingerprint.as_slice();
                let lease = millis(lease);
                let (taken, record) = futures::future::try_join(
                    conn.client.query_opt(&take, &[&key, &token, &me, &lease]),
                    conn.client.query_opt(&look, &[&key]),
                )
                .await?;
                if taken.is_none() {
                    return Ok(Begin::Busy);
                }
                let found = record
                    .as_ref()
                    .and_then(|row| row.get::<_, Option<&[u8]>>(0))
                    .and_then(|r| envelope::open_any_record(r).ok())
                    .filter(|r| r.digest().is_some());
                Ok(found.map_or(Begin::Go, |r| Begin::Found(Box::new(r))))
            }
        })
    }

    fn complete(
        &self,
        run: String,
        graph: String,
        completion: Completion,
    ) -> StoreFuture<'_, bool> {
        let (reply, answer) = oneshot::channel();
        let sent = self.completer.send(Pending {
            run,
            graph,
            completion,
            reply,
        });
        let location = self.link.location.clone();
        Box::pin(async move {
            if sent.is_err() {
                return Err(StoreError::Other {
                    location,
                    message: "the store's writer stopped".into(),
                });
            }
            answer.await.map_err(|_| StoreError::Other {
                location,
                message: "the store's writer stopped".into(),
            })?
        })
    }

    fn renew(&self, run: String, me: String, lease: Duration) -> StoreFuture<'_, ()> {
        self.read(move |conn| {
            let (run, me) = (run.clone(), me.clone());
            async move {
                let nodes = conn
                    .prepare(sql!(
                        "UPDATE typedag_nodes
                         SET lease_until = now() + $3 * interval '1 millisecond'
                         WHERE run = $1 AND owner = $2 AND state = {Claimed}"
                    ))
                    .await?;
                let inflight = conn
                    .prepare(
                        "UPDATE typedag_inflight
                         SET lease_until = now() + $2 * interval '1 millisecond'
                         WHERE owner = $1",
                    )
                    .await?;
                conn.client
                    .execute(&nodes, &[&run, &me, &millis(lease)])
                    .await?;
                conn.client
                    .execute(&inflight, &[&me, &millis(lease)])
                    .await?;
                requeue(&conn, &run).await
            }
        })
    }

    fn release(&self, run: String, me: String) -> StoreFuture<'_, ()> {
        self.read(move |conn| {
            let (run, me) = (run.clone(), me.clone());
            async move {
                conn.client
                    .execute(
                        sql!(
                            "UPDATE typedag_nodes
                             SET state = {Ready}, owner = NULL, token = NULL, lease_until = NULL
                             WHERE run = $1 AND owner = $2 AND state = {Claimed}"
                        ),
                        &[&run, &me],
                    )
                    .await?;
                conn.client
                    .execute("DELETE FROM typedag_inflight WHERE owner = $1", &[&me])
                    .await?;
                conn.client
                    .execute("SELECT pg_notify('typedag', $1)", &[&run])
                    .await?;
                Ok(())
            }
        })
    }

    fn progress(&self, run: String) -> StoreFuture<'_, Progress> {
        self.read(move |conn| {
            let run = run.clone();
            async move {
                let select = conn
                    .prepare(sql!(concat!(
                        "SELECT count(*) FILTER (WHERE state IN ({Waiting}, {Ready}, {Claimed})),
                                count(*) FILTER (WHERE state = {Claimed}),
                                (SELECT stopping FROM typedag_runs WHERE run = $1),
                                count(*) FILTER (WHERE parent IS NULL AND items IS NOT NULL
                                                   AND state IN ({Waiting}, {Ready})),
                                (SELECT NOT ",
                        still_going!(),
                        " FROM typedag_runs r WHERE r.run = $1)
                         FROM typedag_nodes WHERE run = $1"
                    )))
                    .await?;
                requeue(&conn, &run).await?;
                let row = conn.client.query_one(&select, &[&run]).await?;
                Ok(Progress {
                    unfinished: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                    claimed: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
                    stopping: row.get::<_, Option<bool>>(2).unwrap_or(false),
                    open_maps: u64::try_from(row.get::<_, i64>(3)).unwrap_or(0),
                    // A run that is not there (forgotten) has ended.
                    ended: row.get::<_, Option<bool>>(4).unwrap_or(true),
                })
            }
        })
    }

    fn nodes(&self, run: String) -> StoreFuture<'_, Vec<NodeRow>> {
        self.hints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&run);
        self.read(move |conn| {
            let run = run.clone();
            async move {
                Ok(conn
                    .client
                    .query(
                        "SELECT idx, state, digest, outcome FROM typedag_nodes
                         WHERE run = $1 AND parent IS NULL ORDER BY idx",
                        &[&run],
                    )
                    .await?
                    .into_iter()
                    .map(|row| NodeRow {
                        index: u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX),
                        state: RowState::from_number(row.get(1)),
                        digest: digest_of(row.get(2)),
                        outcome: row.get(3),
                    })
                    .collect())
            }
        })
    }

    fn runs(&self) -> StoreFuture<'_, Vec<RunSummary>> {
        self.read(|conn| async move { runs::list(&conn).await })
    }

    fn forget_runs(&self, runs: Vec<String>) -> StoreFuture<'_, ()> {
        self.read(move |conn| {
            let runs = runs.clone();
            async move { runs::forget(&conn, &runs).await }
        })
    }

    fn wakes(&self) -> u64 {
        self.wakes.count.load(Ordering::SeqCst)
    }

    fn wait(&self, seen: u64, timeout: Duration) -> StoreFuture<'_, ()> {
        let wakes = self.wakes.clone();
        Box::pin(async move {
            let notified = wakes.notify.notified();
            if wakes.count.load(Ordering::SeqCst) == seen {
                let _ = tokio::time::timeout(timeout, notified).await;
            }
            Ok(())
        })
    }
}

/// How many rows an expansion adds before the planner is told the table grew.
const EXPANSION_ANALYZED: usize = 1000;

/// Adds a map node's item rows in one call of `typedag_expand`, fenced by the claim's
/// token: `None` if the claim was lost, else the rows of the items left to run.
async fn expand(
    conn: &Conn,
    run: &str,
    e: &Expansion,
    origin: &str,
) -> Result<Option<Vec<u32>>, PgError> {
    let call = conn
        .prepare("SELECT held, readied FROM typedag_expand($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .await?;
    let labels: Vec<&str> = e.items.iter().map(|i| i.label.as_str()).collect();
    let keys: Vec<&[u8]> = e.items.iter().map(|i| i.key.as_slice()).collect();
    let digests: Vec<Option<&[u8]>> = e
        .items
        .iter()
        .map(|i| i.done.as_ref().map(|(d, _)| d.as_slice()))
        .collect();
    let outcomes: Vec<Option<&[u8]>> = e
        .items
        .iter()
        .map(|i| i.done.as_ref().map(|(_, o)| o.as_slice()))
        .collect();
    let bytes: Vec<Option<&[u8]>> = e.items.iter().map(|i| i.bytes.as_deref()).collect();
    let index = i32::try_from(e.index).unwrap_or(i32::MAX);
    let row = conn
        .client
        .query_one(
            &call,
            &[
                &run, &index, &e.token, &labels, &keys, &digests, &outcomes, &bytes, &origin,
            ],
        )
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(None);
    }
    if e.items.len() >= EXPANSION_ANALYZED {
        // As when a run is created: the planner must know the table is no longer small.
        conn.client.batch_execute("ANALYZE typedag_nodes").await?;
    }
    let readied: Vec<i32> = row.get(1);
    Ok(Some(
        readied
            .into_iter()
            .filter_map(|i| u32::try_from(i).ok())
            .collect(),
    ))
}

/// Creates the run's rows, or checks that the run already there is of the same graph.
/// `Ok(Err(why))` when it is not.
async fn create(conn: &Conn, join: &Join) -> Result<Result<(), String>, PgError> {
    let client = &conn.client;
    let inserted = client
        .execute(
            "INSERT INTO typedag_runs (run, graph, shape) VALUES ($1, $2, $3)
             ON CONFLICT (run) DO NOTHING",
            &[&join.run, &join.graph, &join.shape.as_slice()],
        )
        .await?;
    if inserted == 0 {
        let row = client
            .query_one(
                "SELECT graph, shape FROM typedag_runs WHERE run = $1",
                &[&join.run],
            )
            .await?;
        let (graph, shape): (String, Vec<u8>) = (row.get(0), row.get(1));
        if graph != join.graph {
            return Ok(Err(format!(
                "it runs graph `{graph}`, and this process runs graph `{}`",
                join.graph
            )));
        }
        if shape != join.shape {
            return Ok(Err(format!(
                "this process's graph `{graph}` has other nodes or edges than the run's"
            )));
        }
        return Ok(Ok(()));
    }
    let n = join.nodes.len();
    let (mut idx, mut ids, mut priorities, mut waiting, mut states, mut digests, mut outcomes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut inputs = Vec::with_capacity(n);
    for (i, node) in join.nodes.iter().enumerate() {
        idx.push(i32::try_from(i).unwrap_or(i32::MAX));
        ids.push(node.id.as_str());
        // An array literal per node: `{3,7}`, read back as integer[] by the server.
        let list: Vec<String> = node.inputs.iter().map(u32::to_string).collect();
        inputs.push(format!("{{{}}}", list.join(",")));
        priorities.push(node.priority);
        waiting.push(i32::try_from(node.waiting).unwrap_or(i32::MAX));
        let (st, digest, outcome) = match &node.done {
            Some((digest, outcome)) => (
                RowState::Done,
                Some(digest.as_slice()),
                Some(outcome.as_slice()),
            ),
            None if node.waiting == 0 => (RowState::Ready, None, None),
            None => (RowState::Waiting, None, None),
        };
        states.push(st.number());
        digests.push(digest);
        outcomes.push(outcome);
    }
    client
        .execute(
            "INSERT INTO typedag_nodes
                 (run, idx, node, priority, inputs, waiting, state, digest, outcome)
             SELECT $1, t.idx, t.node, t.priority, t.inputs::integer[], t.waiting, t.state,
                    t.digest, t.outcome
             FROM UNNEST($2::int[], $3::text[], $4::int[], $5::text[], $6::int[], $7::int2[],
                         $8::bytea[], $9::bytea[])
                  AS t(idx, node, priority, inputs, waiting, state, digest, outcome)",
            &[
                &join.run,
                &idx,
                &ids,
                &priorities,
                &inputs,
                &waiting,
                &states,
                &digests,
                &outcomes,
            ],
        )
        .await?;
    // The planner must know the table is no longer small, or it picks plans that read
    // every node on each claim.
    client.batch_execute("ANALYZE typedag_nodes").await?;
    client
        .execute("SELECT pg_notify('typedag', $1)", &[&join.run])
        .await?;
    Ok(Ok(()))
}

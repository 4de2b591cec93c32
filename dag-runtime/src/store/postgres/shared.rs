//! Runs shared by several processes: nodes are rows of `typedag_nodes`; a process claims
//! ready ones with `FOR UPDATE SKIP LOCKED` under a lease that it renews, and completes
//! them in transactions that store the output and ready the dependents, fenced by the
//! claim's token. `NOTIFY typedag` wakes idle processes.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{AsyncMessage, NoTls};

use super::link::{Conn, Link, PgError, pause, transient};
use super::{BATCH, Inner, Save, Wakes, outputs, save};
use crate::cache::Digest;
use crate::store::shared::{Begin, Claim, Coordinator, End, Join, NodeEnd, Progress, state};
use crate::store::{StoreError, StoreFuture, envelope};

/// A completion on its way to the database.
pub(super) struct Completion {
    run: String,
    graph: String,
    end: End,
    reply: oneshot::Sender<Result<bool, StoreError>>,
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
            let mut attempt = 0;
            loop {
                let conn = link.connect(deadline).await?;
                match conn.transaction(create(&conn, &join)).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(detail)) => {
                        return Err(StoreError::RunMismatch {
                            location,
                            run: join.run.clone(),
                            detail,
                        });
                    }
                    Err(e) if transient(&e) && Instant::now() < deadline => {
                        tokio::time::sleep(pause(attempt)).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(link.error(&e)),
                }
            }
        })
    }

    fn claim(
        &self,
        run: String,
        me: String,
        n: usize,
        lease: Duration,
    ) -> StoreFuture<'_, Vec<Claim>> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let (run, me) = (run.clone(), me.clone());
            async move {
                let claim = conn
                    .prepare(
                        "UPDATE typedag_nodes n
                         SET state = 2, owner = $2, token = nextval('typedag_tokens'),
                             lease_until = now() + $4 * interval '1 millisecond'
                         FROM (SELECT idx FROM typedag_nodes
                               WHERE run = $1
                                 AND (state = 1 OR (state = 2 AND lease_until < now()))
                                 AND NOT (SELECT stopping FROM typedag_runs WHERE run = $1)
                               ORDER BY priority DESC, idx
                               LIMIT $3
                               FOR UPDATE SKIP LOCKED) p
                         WHERE n.run = $1 AND n.idx = p.idx
                         RETURNING n.idx, n.token",
                    )
                    .await?;
                let rows = conn
                    .client
                    .query(&claim, &[&run, &me, &n, &millis(lease)])
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|row| Claim {
                        index: u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX),
                        token: row.get(1),
                    })
                    .collect())
            }
        })
    }

    fn digests(&self, run: String, nodes: Vec<u32>) -> StoreFuture<'_, Vec<Option<Digest>>> {
        let nodes: Vec<i32> = nodes
            .iter()
            .map(|&i| i32::try_from(i).unwrap_or(i32::MAX))
            .collect();
        self.read(move |conn| {
            let (run, nodes) = (run.clone(), nodes.clone());
            async move {
                let select = conn
                    .prepare(
                        "SELECT idx, digest FROM typedag_nodes WHERE run = $1 AND idx = ANY($2)",
                    )
                    .await?;
                let found: HashMap<i32, Option<Digest>> = conn
                    .client
                    .query(&select, &[&run, &nodes])
                    .await?
                    .into_iter()
                    .map(|row| (row.get(0), digest_of(row.get(1))))
                    .collect();
                Ok(nodes
                    .iter()
                    .map(|i| found.get(i).copied().flatten())
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
        claim: Claim,
        me: String,
        lease: Duration,
    ) -> StoreFuture<'_, Begin> {
        self.read(move |conn| {
            let me = me.clone();
            async move {
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
                let key = fingerprint.as_slice();
                let taken = conn
                    .client
                    .query_opt(&take, &[&key, &claim.token, &me, &millis(lease)])
                    .await?;
                if taken.is_none() {
                    return Ok(Begin::Busy);
                }
                // Whoever computed it before us committed its record with the end of its
                // claim on the fingerprint: if it is there, it is whole.
                let find = conn
                    .prepare(
                        "SELECT r.record FROM typedag_records r
                         WHERE r.fingerprint = $1 AND r.digest IS NOT NULL
                           AND EXISTS (SELECT 1 FROM typedag_outputs o WHERE o.digest = r.digest)
                         LIMIT 1",
                    )
                    .await?;
                let found = conn
                    .client
                    .query_opt(&find, &[&key])
                    .await?
                    .and_then(|row| envelope::open_record(row.get(0)).ok())
                    .filter(|r| r.digest().is_some());
                Ok(found.map_or(Begin::Go, |r| Begin::Found(Box::new(r))))
            }
        })
    }

    fn complete(&self, run: String, graph: String, end: End) -> StoreFuture<'_, bool> {
        let (reply, answer) = oneshot::channel();
        let sent = self.completer.send(Completion {
            run,
            graph,
            end,
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
                    .prepare(
                        "UPDATE typedag_nodes
                         SET lease_until = now() + $3 * interval '1 millisecond'
                         WHERE run = $1 AND owner = $2 AND state = 2",
                    )
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
                Ok(())
            }
        })
    }

    fn release(&self, run: String, me: String) -> StoreFuture<'_, ()> {
        self.read(move |conn| {
            let (run, me) = (run.clone(), me.clone());
            async move {
                conn.client
                    .execute(
                        "UPDATE typedag_nodes
                         SET state = 1, owner = NULL, token = NULL, lease_until = NULL
                         WHERE run = $1 AND owner = $2 AND state = 2",
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
                    .prepare(
                        "SELECT count(*) FILTER (WHERE state IN (0, 1, 2)),
                                count(*) FILTER (WHERE state = 2),
                                (SELECT stopping FROM typedag_runs WHERE run = $1)
                         FROM typedag_nodes WHERE run = $1",
                    )
                    .await?;
                let row = conn.client.query_one(&select, &[&run]).await?;
                Ok(Progress {
                    unfinished: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                    claimed: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
                    stopping: row.get::<_, Option<bool>>(2).unwrap_or(false),
                })
            }
        })
    }

    fn ends(&self, run: String) -> StoreFuture<'_, Vec<NodeEnd>> {
        self.read(move |conn| {
            let run = run.clone();
            async move {
                Ok(conn
                    .client
                    .query(
                        "SELECT idx, state, digest, outcome FROM typedag_nodes
                         WHERE run = $1 ORDER BY idx",
                        &[&run],
                    )
                    .await?
                    .into_iter()
                    .map(|row| NodeEnd {
                        index: u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX),
                        state: row.get(1),
                        digest: digest_of(row.get(2)),
                        outcome: row.get(3),
                    })
                    .collect())
            }
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
    for (i, node) in join.nodes.iter().enumerate() {
        idx.push(i32::try_from(i).unwrap_or(i32::MAX));
        ids.push(node.id.as_str());
        priorities.push(node.priority);
        waiting.push(i32::try_from(node.waiting).unwrap_or(i32::MAX));
        let (st, digest, outcome) = match &node.done {
            Some((digest, outcome)) => (
                state::DONE,
                Some(digest.as_slice()),
                Some(outcome.as_slice()),
            ),
            None if node.waiting == 0 => (state::READY, None, None),
            None => (state::WAITING, None, None),
        };
        states.push(st);
        digests.push(digest);
        outcomes.push(outcome);
    }
    client
        .execute(
            "INSERT INTO typedag_nodes (run, idx, node, priority, waiting, state, digest, outcome)
             SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::int[], $5::int[], $6::int2[],
                                      $7::bytea[], $8::bytea[])",
            &[
                &join.run,
                &idx,
                &ids,
                &priorities,
                &waiting,
                &states,
                &digests,
                &outcomes,
            ],
        )
        .await?;
    client
        .execute("SELECT pg_notify('typedag', $1)", &[&join.run])
        .await?;
    Ok(Ok(()))
}

/// Commits completions in batches: one transaction for whatever has queued up.
pub(super) async fn complete_loop(link: Arc<Link>, mut rx: mpsc::UnboundedReceiver<Completion>) {
    let mut conn: Option<Conn> = None;
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let (ends, replies): (Vec<(String, String, End)>, Vec<_>) = batch
            .drain(..)
            .map(|c| ((c.run, c.graph, c.end), c.reply))
            .unzip();
        let deadline = Instant::now() + link.retry_for;
        let mut attempt = 0;
        let result = loop {
            let c = match conn.as_ref().filter(|c| !c.is_closed()) {
                Some(c) => c,
                None => match link.connect(deadline).await {
                    Ok(c) => conn.insert(c),
                    Err(e) => break Err(e),
                },
            };
            match c.transaction(apply(c, &ends)).await {
                Ok(accepted) => break Ok(accepted),
                Err(e) if transient(&e) && Instant::now() < deadline => {
                    conn = None;
                    tokio::time::sleep(pause(attempt)).await;
                    attempt += 1;
                }
                Err(e) => break Err(link.error(&e)),
            }
        };
        for (i, reply) in replies.into_iter().enumerate() {
            let _ = reply.send(match &result {
                Ok(accepted) => Ok(accepted[i]),
                Err(e) => Err(e.clone()),
            });
        }
    }
}

/// Applies a batch of completions; for each, whether its claim still held. A claim whose
/// node already carries its end (a retried batch whose first commit went through) counts
/// as accepted and changes nothing.
async fn apply(conn: &Conn, ends: &[(String, String, End)]) -> Result<Vec<bool>, PgError> {
    let mut accepted = vec![false; ends.len()];
    let mut runs: Vec<&str> = ends.iter().map(|(run, _, _)| run.as_str()).collect();
    runs.sort_unstable();
    runs.dedup();
    for run in runs {
        let mine: Vec<usize> = (0..ends.len()).filter(|&i| ends[i].0 == run).collect();
        let mut idx: Vec<i32> = mine
            .iter()
            .map(|&i| i32::try_from(ends[i].2.index).unwrap_or(i32::MAX))
            .collect();
        // Lock the rows in one order, so that two processes' batches cannot deadlock.
        idx.sort_unstable();
        let lock = conn
            .prepare(
                "SELECT idx, state, token FROM typedag_nodes
                 WHERE run = $1 AND idx = ANY($2) ORDER BY idx FOR UPDATE",
            )
            .await?;
        let now: HashMap<i32, (i16, Option<i64>)> = conn
            .client
            .query(&lock, &[&run, &idx])
            .await?
            .into_iter()
            .map(|row| (row.get(0), (row.get(1), row.get(2))))
            .collect();
        let mut apply = Vec::new();
        for &i in &mine {
            let end = &ends[i].2;
            let at = i32::try_from(end.index).unwrap_or(i32::MAX);
            match now.get(&at) {
                Some(&(st, Some(token))) if token == end.token => {
                    accepted[i] = true;
                    if st == state::CLAIMED {
                        apply.push(i);
                    }
                }
                _ => {}
            }
        }
        if apply.is_empty() {
            continue;
        }
        let (mut n_idx, mut n_state, mut n_digest, mut n_outcome) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut deps, mut skip_idx, mut skip_outcome) = (Vec::new(), Vec::new(), Vec::new());
        let (mut fps, mut fp_tokens) = (Vec::new(), Vec::new());
        let mut saves = Vec::new();
        let mut stop = false;
        for &i in &apply {
            let (_, graph, end) = &ends[i];
            n_idx.push(i32::try_from(end.index).unwrap_or(i32::MAX));
            n_state.push(end.state);
            n_digest.push(end.digest.as_ref().map(<[u8; 32]>::as_slice));
            n_outcome.push(end.outcome.as_slice());
            deps.extend(
                end.dependents
                    .iter()
                    .map(|&d| i32::try_from(d).unwrap_or(i32::MAX)),
            );
            for &s in &end.skip {
                skip_idx.push(i32::try_from(s).unwrap_or(i32::MAX));
                skip_outcome.push(end.skip_outcome.as_slice());
            }
            if let Some(fp) = &end.fingerprint {
                fps.push(fp.as_slice());
                fp_tokens.push(end.token);
            }
            if let Some((node, record, output)) = &end.save {
                saves.push(Save {
                    graph,
                    node,
                    record,
                    output: output.as_deref(),
                });
            }
            stop |= end.stop;
        }
        save(conn, &saves).await?;
        let finish = conn
            .prepare(
                "UPDATE typedag_nodes n
                 SET state = u.state, digest = u.digest, outcome = u.outcome,
                     lease_until = NULL
                 FROM UNNEST($2::int[], $3::int2[], $4::bytea[], $5::bytea[])
                      AS u(idx, state, digest, outcome)
                 WHERE n.run = $1 AND n.idx = u.idx",
            )
            .await?;
        conn.client
            .execute(&finish, &[&run, &n_idx, &n_state, &n_digest, &n_outcome])
            .await?;
        if !deps.is_empty() {
            let ready = conn
                .prepare(
                    "UPDATE typedag_nodes n
                     SET waiting = n.waiting - d.c,
                         state = CASE WHEN n.state = 0 AND n.waiting - d.c <= 0 THEN 1
                                      ELSE n.state END
                     FROM (SELECT i, count(*)::int AS c FROM UNNEST($2::int[]) AS i
                           GROUP BY i ORDER BY i) d
                     WHERE n.run = $1 AND n.idx = d.i",
                )
                .await?;
            conn.client.execute(&ready, &[&run, &deps]).await?;
        }
        if !skip_idx.is_empty() {
            let skip = conn
                .prepare(
                    "UPDATE typedag_nodes n SET state = 5, outcome = u.outcome
                     FROM UNNEST($2::int[], $3::bytea[]) AS u(idx, outcome)
                     WHERE n.run = $1 AND n.idx = u.idx AND n.state = 0",
                )
                .await?;
            conn.client
                .execute(&skip, &[&run, &skip_idx, &skip_outcome])
                .await?;
        }
        if !fps.is_empty() {
            let done = conn
                .prepare(
                    "DELETE FROM typedag_inflight f
                     USING UNNEST($1::bytea[], $2::int8[]) AS u(fingerprint, token)
                     WHERE f.fingerprint = u.fingerprint AND f.token = u.token",
                )
                .await?;
            conn.client.execute(&done, &[&fps, &fp_tokens]).await?;
        }
        if stop {
            conn.client
                .execute(
                    "UPDATE typedag_runs SET stopping = true WHERE run = $1",
                    &[&run],
                )
                .await?;
        }
        conn.client
            .execute("SELECT pg_notify('typedag', $1)", &[&run])
            .await?;
    }
    Ok(accepted)
}

/// Counts `NOTIFY typedag` on a connection of its own, reconnecting when it drops, until
/// the store is gone.
pub(super) async fn listen(link: Arc<Link>, wakes: Weak<Wakes>) {
    let bump = |wakes: &Weak<Wakes>| -> bool {
        let Some(w) = wakes.upgrade() else {
            return false;
        };
        w.count.fetch_add(1, Ordering::SeqCst);
        w.notify.notify_waiters();
        true
    };
    loop {
        if wakes.strong_count() == 0 {
            return;
        }
        if let Ok((client, mut connection)) = link.config.connect(NoTls).await {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let pump = tokio::spawn(async move {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(Ok(message)) = messages.next().await {
                    if matches!(message, AsyncMessage::Notification(_)) && tx.send(()).is_err() {
                        return;
                    }
                }
            });
            if client.batch_execute("LISTEN typedag").await.is_ok() {
                // Whatever happened while we were not listening: look again.
                if !bump(&wakes) {
                    return;
                }
                while rx.recv().await.is_some() {
                    if !bump(&wakes) {
                        return;
                    }
                }
            }
            pump.abort();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

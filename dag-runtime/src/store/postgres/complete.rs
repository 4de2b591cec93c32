//! Completions of claimed nodes, committed in batches: one call of `typedag_complete` per
//! run stores the outputs and records, readies the dependents and lets the fingerprints go,
//! fenced by each claim's token.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::Hints;
use super::link::{Conn, Link, PgError};
use crate::store::envelope;
use crate::store::error::StoreError;
use crate::store::queue::BATCH;
use crate::store::shared::Completion;

/// A completion on its way to the database, and whom to tell whether its claim held.
pub(super) struct Pending {
    pub run: String,
    pub graph: String,
    pub completion: Completion,
    pub reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// Commits completions in batches: one transaction for whatever has queued up.
pub(super) async fn complete_loop(
    link: Arc<Link>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    hints: Arc<Hints>,
    origin: String,
) {
    let mut conn: Option<Conn> = None;
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let (ends, replies): (Vec<(String, String, Completion)>, Vec<_>) = batch
            .drain(..)
            .map(|p| ((p.run, p.graph, p.completion), p.reply))
            .unzip();
        let deadline = Instant::now() + link.retry_for;
        let work = (ends, origin.clone());
        let result = link
            .transact(&mut conn, deadline, &work, |c, (ends, origin)| {
                Box::pin(apply(c, ends, origin))
            })
            .await
            .map(|(accepted, readied)| {
                let mut all = hints.lock().unwrap_or_else(|e| e.into_inner());
                for (run, nodes) in readied {
                    all.entry(run).or_default().extend(nodes);
                }
                accepted
            });
        for (i, reply) in replies.into_iter().enumerate() {
            let _ = reply.send(match &result {
                Ok(accepted) => Ok(accepted[i]),
                Err(e) => Err(e.clone()),
            });
        }
    }
}

/// Applies a batch of completions, one call of `typedag_complete` per run; for each,
/// whether its claim still held. A claim whose node already carries its end (a retried
/// batch whose first commit went through) counts as held and changes nothing.
async fn apply(
    conn: &Conn,
    ends: &[(String, String, Completion)],
    origin: &str,
) -> Result<(Vec<bool>, Vec<(String, Vec<i32>)>), PgError> {
    let mut held = vec![false; ends.len()];
    let mut readied = Vec::new();
    let mut order: Vec<usize> = (0..ends.len()).collect();
    // By run, then by node: rows lock in one order, so batches cannot deadlock.
    order.sort_by(|&a, &b| (&ends[a].0, ends[a].2.index).cmp(&(&ends[b].0, ends[b].2.index)));
    let call = conn
        .prepare(
            "SELECT held, readied FROM typedag_complete($1, $2, $3, $4, $5, $6, $7, $8, $9,
                                     $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .await?;
    let mut at = 0;
    while at < order.len() {
        let run = &ends[order[at]].0;
        let graph = &ends[order[at]].1;
        let group: Vec<usize> = order[at..]
            .iter()
            .copied()
            .take_while(|&i| &ends[i].0 == run)
            .collect();
        at += group.len();
        let mut a = Arrays::default();
        let mut saved = HashSet::new();
        for (pos, &i) in (1i32..).zip(&group) {
            a.push(pos, &ends[i].2, &mut saved);
        }
        let row = conn
            .client
            .query_one(
                &call,
                &[
                    run,
                    graph,
                    &a.idx,
                    &a.token,
                    &a.state,
                    &a.digest,
                    &a.outcome,
                    &a.node,
                    &a.record,
                    &a.key,
                    &a.bytes,
                    &a.fp,
                    &a.stop,
                    &a.dep_of,
                    &a.dep,
                    &a.skip_of,
                    &a.skip,
                    &a.skip_outcome,
                    &origin,
                ],
            )
            .await?;
        let answers: Vec<bool> = row.get(0);
        for (&i, ok) in group.iter().zip(answers) {
            held[i] = ok;
        }
        readied.push((run.clone(), row.get::<_, Vec<i32>>(1)));
    }
    Ok((held, readied))
}

/// The arguments of `typedag_complete`: one entry per end, and the dependents and skipped
/// nodes of each, flattened with the (1-based) position of their end.
#[derive(Default)]
struct Arrays<'a> {
    idx: Vec<i32>,
    token: Vec<i64>,
    state: Vec<i16>,
    digest: Vec<Option<&'a [u8]>>,
    outcome: Vec<&'a [u8]>,
    node: Vec<Option<&'a str>>,
    record: Vec<Option<Vec<u8>>>,
    key: Vec<Option<Vec<u8>>>,
    bytes: Vec<Option<&'a [u8]>>,
    fp: Vec<Option<&'a [u8]>>,
    stop: Vec<bool>,
    dep_of: Vec<i32>,
    dep: Vec<i32>,
    skip_of: Vec<i32>,
    skip: Vec<i32>,
    skip_outcome: Vec<&'a [u8]>,
}

impl<'a> Arrays<'a> {
    /// Adds `end`; its record only if no end before it in the call (`saved`) saves one at
    /// the same id: the statement may write a row once. Two such ends are equal items of a
    /// map, which compute the same record, and each keeps its output bytes. (Should the
    /// first one's claim have been lost, the record is missing: the next run runs the item
    /// again.)
    fn push(&mut self, pos: i32, end: &'a Completion, saved: &mut HashSet<&'a str>) {
        let int = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        self.idx.push(int(end.index));
        self.token.push(end.token);
        self.state.push(end.state.number());
        self.digest
            .push(end.digest.as_ref().map(<[u8; 32]>::as_slice));
        self.outcome.push(&end.outcome);
        match &end.save {
            Some((node, record, bytes)) if saved.insert(node) => {
                self.node.push(Some(node));
                self.record.push(Some(envelope::seal_record(record)));
                self.key.push(Some(record.fingerprint.key().to_vec()));
                self.bytes.push(bytes.as_deref());
            }
            other => {
                self.node.push(None);
                self.record.push(None);
                self.key.push(None);
                self.bytes
                    .push(other.as_ref().and_then(|(_, _, bytes)| bytes.as_deref()));
            }
        }
        self.fp
            .push(end.fingerprint.as_ref().map(<[u8; 32]>::as_slice));
        self.stop.push(end.stop);
        for &d in &end.dependents {
            self.dep_of.push(pos);
            self.dep.push(int(d));
        }
        for &s in &end.skip {
            self.skip_of.push(pos);
            self.skip.push(int(s));
            self.skip_outcome.push(&end.skip_outcome);
        }
    }
}

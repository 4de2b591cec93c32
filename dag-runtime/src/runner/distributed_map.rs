//! Map nodes in a run shared by several processes. The process that claims a map node
//! expands it: it reads the list, keys each item by its bytes (as a local map does), finds
//! in the store the items computed before in the same context, and adds one row per item
//! to the run. Items are then claimed, run and completed like nodes, by any process, each
//! once; the map node waits for them. Whoever claims it again once the last has ended
//! gathers it: the `Vec` of the items' outputs in list order, recorded as a local map
//! records it (with its index of keys), or the node's failure naming the failed items.
//! A failed item of a run that stops at the first failure stops it, as a failed node does;
//! a map node the stop caught with items not ended is gathered all the same, once none of
//! its items is claimed, and fails naming its failed items and those that did not start.
//!
//! Each item that runs is recorded at its own id (`pages#<key>`), with a fingerprint that
//! stands for its key and context, so that a later distributed run finds it whatever became
//! of this one. Once the node's `Vec` is stored, those records are forgotten, as a local map
//! forgets its batches (which a distributed run reads too).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::attempt::{Call, FOR_SHARED, Success, attempt};
use super::distributed::{Participant, SharedOutcome, UNFINGERPRINTED, inputs};
use super::distributed_end::{
    Finished, Settling, complete, end, finished, settle_failed, settle_ran,
};
use super::distributed_tally::tally;
use super::inputs::Prepared;
use super::item_index::{
    index_bytes, item_context, item_fingerprint, item_id, items_index_id, last_index, last_vec,
};
use super::item_keys::{Chunk, Encoded, Key, match_items};
use super::item_log;
use super::map::{failed_items_message, label, stopped_message, unserializable};
use super::persist::{completed_record, encode_output, failed_record};
use super::plan::upstream_of;
use crate::cache::{Digest, FixedParts, InputDigest, Reason, Stamp};
use crate::cache::{Verdict, verdict};
use crate::error::Error;
use crate::event::Event;
use crate::failure::Failure;
use crate::graph::map::ItemFns;
use crate::ids::NodeIds;
use crate::store::Write;
use crate::store::shared::{Claim, ClaimKind, Expansion, ItemRow, NewItem, RowState};
use crate::task::{ItemOf, Shared};

/// The inputs of the map nodes whose items this process runs, by map node, each read from
/// the store once.
#[derive(Default)]
pub(super) struct Maps(Mutex<HashMap<usize, Arc<InputCell>>>);

/// A map node's inputs in this process, once read (or why they could not be).
type InputCell = OnceCell<Result<Arc<MapInput>, Failure>>;

/// What every item of a map node runs on, in this process.
pub(super) struct MapInput {
    /// The node's inputs, the list among them.
    prepared: Vec<Prepared>,
    /// The list.
    list: Shared,
    /// The mapped parameter.
    param: usize,
    items: ItemFns,
    /// What the items' outputs depend on besides the items, when they are kept.
    context: Option<Digest>,
    /// Why the items run.
    reason: Reason,
}

impl MapInput {
    /// The inputs of item `position`.
    fn of_item(&self, position: usize) -> Vec<Prepared> {
        let mut inputs = self.prepared.clone();
        inputs[self.param] = Prepared::Item(Box::new(ItemOf {
            list: self.list.clone(),
            index: position,
            get: self.items.get,
        }));
        inputs
    }
}

/// Map node `i`'s inputs, read once per process (`digests`: its upstream outputs').
async fn map_input(
    ctx: &Participant,
    i: usize,
    digests: &Finished,
) -> Result<Arc<MapInput>, Failure> {
    let cell = ctx
        .maps
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(i)
        .or_default()
        .clone();
    cell.get_or_init(|| read_map_input(ctx, i, digests))
        .await
        .clone()
}

async fn read_map_input(
    ctx: &Participant,
    i: usize,
    digests: &Finished,
) -> Result<Arc<MapInput>, Failure> {
    let run = &ctx.run;
    let spec = &run.nodes[i];
    let (param, _, items) = spec
        .each()
        .ok_or_else(|| Failure::fatal("typedag: not a map node".into()))?;
    let prepared = inputs(ctx, i, digests).await?;
    let Some(Prepared::Shared(list)) = prepared.get(param).cloned() else {
        return Err(Failure::fatal(
            "typedag: a map node without its list".into(),
        ));
    };
    let parts = kept_parts(ctx, i);
    let context = parts.map(|parts| {
        let others = spec
            .upstream()
            .map(|(p, j)| (p, digests.digest(j).copied()));
        item_context(parts, param, others)
    });
    let mut scratch = Vec::new();
    let upstream = upstream_of(
        spec,
        |j| match digests.digest(j) {
            Some(d) => InputDigest::Known(d),
            None => InputDigest::Missing,
        },
        &mut scratch,
    );
    // Its items run for the reason it runs; a process that started after another run
    // stored the node's `Vec` still runs the items this run left to it.
    let reason = match verdict(run.plan[i].parts.as_ref(), run.stamp(i), upstream) {
        Verdict::Run(reason, _) => reason,
        _ => Reason::NeverRan,
    };
    Ok(Arc::new(MapInput {
        prepared,
        list,
        param,
        items,
        context,
        reason,
    }))
}

/// Map node `i`'s fixed fingerprint parts, when its items are kept in the store (its task
/// caches).
fn kept_parts(ctx: &Participant, i: usize) -> Option<&FixedParts> {
    let spec = &ctx.run.nodes[i];
    ctx.run.plan[i]
        .parts
        .as_ref()
        .filter(|_| spec.meta.task_options.cache)
}

/// Runs claimed map node `s.index`: expands it into items, or gathers them once they have
/// all ended.
pub(super) async fn run_map(
    ctx: &Participant,
    s: &Settling<'_>,
    digests: &Finished,
) -> Result<(), Error> {
    match s.claim.kind {
        ClaimKind::Expanded(_) => gather(ctx, s, digests).await,
        _ => expand(ctx, s, digests).await,
    }
}

/// Adds the map node's items to the run, those the store holds as done; with none left to
/// run, gathers them at once.
async fn expand(ctx: &Participant, s: &Settling<'_>, digests: &Finished) -> Result<(), Error> {
    let run = &ctx.run;
    let i = s.index;
    let spec = &run.nodes[i];
    let input = match map_input(ctx, i, digests).await {
        Ok(input) => input,
        Err(failure) => return settle_failed(ctx, s, vec![failure], None).await.map(drop),
    };
    let encoded = match Encoded::new(&input.items, &*input.list) {
        Ok(encoded) => encoded,
        Err((k, e)) => {
            let failure = Failure::fatal(unserializable(k, &e));
            return settle_failed(ctx, s, vec![failure], None).await.map(drop);
        }
    };
    run.events.emit(&Event::Mapped {
        node: &spec.id,
        task: spec.meta.task,
        items: encoded.len(),
    });
    let (keys, found) = stored_items(ctx, i, &encoded, input.context.as_ref()).await;
    let cached = SharedOutcome::Cached.encode();
    let items: Vec<NewItem> = keys
        .iter()
        .zip(found)
        .enumerate()
        .map(|(k, (key, found))| {
            let (done, bytes) = match found {
                Some((digest, bytes)) => (Some((digest, cached.clone())), bytes),
                None => (None, None),
            };
            NewItem {
                label: label(&spec.id, k),
                key: *key,
                done,
                bytes,
            }
        })
        .collect();
    let found: Vec<usize> = (0..items.len())
        .filter(|&k| items[k].done.is_some())
        .collect();
    let expansion = Expansion {
        index: s.claim.index,
        token: s.claim.token,
        items,
    };
    let Some(left) = ctx.coordinator.expand(ctx.name.clone(), expansion).await? else {
        run.events.emit(&Event::Lost {
            node: &spec.id,
            task: spec.meta.task,
        });
        return Ok(());
    };
    if run.events.on() {
        for k in found {
            run.events.emit(&Event::Cached {
                node: &label(&spec.id, k),
                task: spec.meta.task,
            });
        }
    }
    if left.is_empty() {
        return gather(ctx, s, digests).await;
    }
    Ok(())
}

/// Each item's key and, if the store holds it for `context`, its output's digest, with its
/// bytes when they are not stored by digest already: from items recorded one by one (by
/// distributed runs), from the node's last `Vec` (by any run), from a local run's batches.
async fn stored_items(
    ctx: &Participant,
    i: usize,
    list: &Encoded,
    context: Option<&Digest>,
) -> (Vec<Key>, Vec<Option<(Digest, Option<Vec<u8>>)>>) {
    let run = &ctx.run;
    let spec = &run.nodes[i];
    let last = match context {
        Some(context) => last_index(run, i, context).await,
        None => None,
    };
    let matched = match_items(
        list,
        last.as_ref().map(|(_, l)| (&l.keys.0[..], &l.chunks[..])),
    );
    let keys = matched.keys;
    let mut found: Vec<Option<(Digest, Option<Vec<u8>>)>> = vec![None; keys.len()];
    let (Some(store), Some(parts), Some(context)) = (&run.store, kept_parts(ctx, i), context)
    else {
        return (keys, found);
    };
    let (ids, at) = NodeIds::distinct(keys.iter().map(|key| item_id(&spec.id, key)));
    if let Ok(stamps) = store.stamps(&run.graph, Arc::new(ids)).await {
        for (k, key) in keys.iter().enumerate() {
            if let Some(Some(Stamp::Done {
                fingerprint,
                digest,
            })) = stamps.stamps.get(at[k])
                && *fingerprint == item_fingerprint(parts, context, key)
            {
                found[k] = Some((*digest, None));
            }
        }
    }
    let from_last: Vec<Option<usize>> = (0..keys.len())
        .map(|k| matched.from_old[k].filter(|_| found[k].is_none()))
        .collect();
    if let Some((list, _)) = &last
        && from_last.iter().any(Option::is_some)
        && let Some(old) = last_vec(run, i, list).await
        && let Some(values) = (spec.meta.split)(old)
    {
        for k in 0..keys.len() {
            if let Some(p) = from_last[k]
                && let Some(value) = values.get(p)
                && let Ok((bytes, digest)) = encode_output(spec, value)
            {
                found[k] = Some((digest, Some(bytes)));
            }
        }
    }
    if found.iter().any(Option::is_none) {
        let logged = item_log::read(store.as_ref(), &run.graph, &spec.id, context).await;
        for (k, key) in keys.iter().enumerate() {
            if found[k].is_none()
                && let Some(bytes) = logged.items.get(key)
            {
                found[k] = Some((*blake3::hash(bytes).as_bytes(), Some(bytes.clone())));
            }
        }
    }
    (keys, found)
}

/// Runs claimed item `position` of map node `parent` and records its end, which counts
/// down the items its map node waits for.
pub(super) async fn run_item(
    ctx: &Participant,
    claim: &Claim,
    parent: usize,
    position: usize,
    key: Key,
) -> Result<(), Error> {
    let run = &ctx.run;
    let spec = run.nodes.get(parent).ok_or_else(|| {
        Error::Internal(format!(
            "claimed item of node {parent}, which is not in the graph"
        ))
    })?;
    let name = label(&spec.id, position);
    let digests = finished(ctx, parent, claim);
    let input = map_input(ctx, parent, &digests).await;
    let reason = input.as_ref().map_or(Reason::NeverRan, |m| m.reason);
    let result = match &input {
        Ok(input) => {
            let call = Call::item(run, parent, position);
            attempt::<FOR_SHARED>(run, parent, &name, input.of_item(position), reason, call).await
        }
        Err(failure) => Err(vec![failure.clone()]),
    };
    let encoded = result.and_then(|done| match encode_output(spec, &done.value) {
        Ok((bytes, digest)) => Ok((done, bytes, digest)),
        Err(failure) => Err(vec![failure]),
    });
    let context = input.as_ref().ok().and_then(|m| m.context);
    let fingerprint = match (kept_parts(ctx, parent), context) {
        (Some(parts), Some(context)) => item_fingerprint(parts, &context, &key),
        _ => UNFINGERPRINTED,
    };
    let id = item_id(&spec.id, &key);
    let task = spec.meta.task;
    let mut e;
    let event = match encoded {
        Ok((done, bytes, digest)) => {
            let ended = SharedOutcome::Ran {
                attempts: done.attempts,
                duration_us: micros(done.duration),
                reason,
            };
            e = end(claim, RowState::Done, Some(digest), &ended);
            let record = completed_record(spec, fingerprint, reason, digest, &bytes, &done);
            e.save = Some((id, record, Some(bytes)));
            Ok(done)
        }
        Err(failures) => {
            e = end(
                claim,
                RowState::Failed,
                None,
                &SharedOutcome::Failed {
                    attempts: failures.clone(),
                },
            );
            let record = failed_record(spec, fingerprint, reason, &failures, Duration::ZERO);
            e.save = Some((id, record, None));
            // As a failed node's end: nothing starts after it, in any process.
            e.stop = run.fail_fast;
            Err(failures)
        }
    };
    e.dependents = vec![u32::try_from(parent).unwrap_or(u32::MAX)];
    if !complete(ctx, e).await? {
        run.events.emit(&Event::Lost { node: &name, task });
        return Ok(());
    }
    match event {
        Ok(done) => run.events.emit(&Event::Completed {
            node: &name,
            task,
            duration: done.duration,
            attempts: done.attempts,
        }),
        Err(failures) => {
            if let Some(error) = failures.last() {
                run.events.emit(&Event::Failed {
                    node: &name,
                    task,
                    error,
                    attempts: u32::try_from(failures.len()).unwrap_or(u32::MAX),
                });
            }
        }
    }
    Ok(())
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Ends a map node whose items have all ended (or the rest of which the run stopped
/// before): its `Vec` in list order, recorded with its index of keys, the items' own
/// records then forgotten; or its failure naming the failed items and those that did not
/// start.
async fn gather(ctx: &Participant, s: &Settling<'_>, digests: &Finished) -> Result<(), Error> {
    let run = &ctx.run;
    let i = s.index;
    let spec = &run.nodes[i];
    let rows = ctx
        .coordinator
        .items(ctx.name.clone(), s.claim.index)
        .await?;
    let gathered = tally(rows);
    let items = Some(gathered.items);
    let (n, unstarted) = (gathered.rows.len(), gathered.unstarted);
    if !gathered.failed.is_empty() {
        let failed = &gathered.failed;
        let message = match map_input(ctx, i, digests).await {
            Ok(input) => failed_items_message(n, failed, unstarted, |k| {
                (input.items.show)(&*input.list, k)
            }),
            Err(_) => failed_items_message(n, failed, unstarted, |k| format!("item {k}")),
        };
        return settle_failed(ctx, s, vec![Failure::fatal(message)], items)
            .await
            .map(drop);
    }
    if unstarted > 0 {
        let failure = Failure::fatal(stopped_message(n, unstarted));
        return settle_failed(ctx, s, vec![failure], items).await.map(drop);
    }
    let value = match assemble(ctx, i, &gathered.rows).await {
        Ok(value) => value,
        Err(message) => {
            return settle_failed(ctx, s, vec![Failure::fatal(message)], items)
                .await
                .map(drop);
        }
    };
    let Some(codec) = &spec.meta.codec else {
        return Err(Error::Internal("a shared node without a codec".into()));
    };
    let bytes = match (codec.encode_list)(&value) {
        Ok(bytes) => bytes,
        Err(e) => {
            let message =
                format!("its `Vec` of outputs could not be serialized for the store: {e}");
            return settle_failed(ctx, s, vec![Failure::fatal(message)], items)
                .await
                .map(drop);
        }
    };
    let digest = *blake3::hash(&bytes).as_bytes();
    let done = Success {
        value,
        attempts: 1,
        duration: gathered.duration,
        digest: Some(digest),
    };
    let keys: Vec<Key> = gathered.rows.iter().map(|r| r.key).collect();
    // The index needs the list's chunks, from the list itself.
    let input = map_input(ctx, i, digests).await.ok();
    let context = input.as_ref().and_then(|m| m.context);
    let chunks = input.and_then(|m| Encoded::new(&m.items, &*m.list).ok().map(|e| e.chunks()));
    if let (Some(context), Some(chunks)) = (context, chunks) {
        save_index(ctx, s, &done, context, keys.clone(), chunks).await;
    }
    if settle_ran(ctx, s, &done, bytes, digest, items).await?
        && let Some(context) = context
    {
        forget_items(ctx, i, &keys, &context).await;
    }
    Ok(())
}

/// The map node's `Vec`, from its items' stored outputs in list order; or why not.
async fn assemble(ctx: &Participant, i: usize, rows: &[ItemRow]) -> Result<Shared, String> {
    let spec = &ctx.run.nodes[i];
    let codec = spec
        .meta
        .codec
        .as_ref()
        .ok_or("typedag: a shared node without a codec")?;
    let wanted: Vec<Digest> = rows.iter().map(|r| r.digest.unwrap_or_default()).collect();
    let bytes = ctx
        .coordinator
        .outputs(wanted)
        .await
        .map_err(|e| e.to_string())?;
    let mut values = Vec::with_capacity(rows.len());
    for (row, bytes) in rows.iter().zip(bytes) {
        let name = label(&spec.id, row.position as usize);
        let Some(bytes) = bytes else {
            // Its record points at nothing: forget it, so that the next run runs it again.
            ctx.run.send_then(
                Write::Forget {
                    graph: ctx.run.graph.clone(),
                    nodes: Some(vec![item_id(&spec.id, &row.key)]),
                },
                |_| {},
            );
            return Err(format!(
                "the output of item `{name}` is missing from the store; the next run runs it again"
            ));
        };
        let value = (codec.decode)(&bytes)
            .map_err(|e| format!("the output of item `{name}` cannot be decoded: {e}"))?;
        values.push(value);
    }
    let n = values.len();
    (spec.meta.assemble)(None, &vec![None; n], values.into_iter().map(Some).collect())
        .ok_or_else(|| "typedag: an item's output was of another type or still shared".into())
}

/// Stores the map node's index of item keys beside its `Vec`, as a local map does, and
/// waits until it is durable: a run that finds the `Vec` then finds its items too.
async fn save_index(
    ctx: &Participant,
    s: &Settling<'_>,
    done: &Success,
    context: Digest,
    keys: Vec<Key>,
    chunks: Vec<Chunk>,
) {
    let run = &ctx.run;
    let spec = &run.nodes[s.index];
    let Some(list) = done.digest else { return };
    let bytes = index_bytes(context, list, keys, chunks);
    let digest = *blake3::hash(&bytes).as_bytes();
    let record = completed_record(spec, s.fingerprint, s.reason, digest, &bytes, done);
    let (tx, rx) = tokio::sync::oneshot::channel();
    run.send_then(
        Write::Save {
            graph: run.graph.clone(),
            node: items_index_id(&spec.id),
            record,
            output: Some(bytes),
        },
        move |_| {
            let _ = tx.send(());
        },
    );
    // Not durable (the store failed): the run stops with the store's error anyway.
    let _ = rx.await;
}

/// Forgets the records the map node's items no longer need, its `Vec` being stored: each
/// item's own, and a local run's batches and failed items.
async fn forget_items(ctx: &Participant, i: usize, keys: &[Key], context: &Digest) {
    let run = &ctx.run;
    let Some(store) = &run.store else { return };
    let spec = &run.nodes[i];
    let logged = item_log::read(store.as_ref(), &run.graph, &spec.id, context).await;
    let mut doomed: Vec<String> = keys.iter().map(|k| item_id(&spec.id, k)).collect();
    doomed.extend(logged.ids);
    doomed.extend(logged.failed.iter().map(|k| item_id(&spec.id, k)));
    run.send_then(
        Write::Forget {
            graph: run.graph.clone(),
            nodes: Some(doomed),
        },
        |_| {},
    );
}

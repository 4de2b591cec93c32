//! A map node's run: each item of its list keyed by the digest of its bytes, taken from the
//! node's last `Vec` or loaded from the store when its record still answers for it, run
//! otherwise (its own attempts, record and events, on several workers), then the node's
//! `Vec` assembled in item order.
//!
//! Items are recorded as they finish, so a run stopped mid-map (cancelled, killed) loses
//! none that finished; the node itself is recorded once every item is in, with an index of
//! its items' keys (`node#items`), so that the next run over a changed list finds the
//! unchanged items in the last `Vec` (two reads) instead of one record each.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::attempt::{Success, attempt_unless_cancelled};
use super::driver::{Alive, drive};
use super::inputs::Prepared;
use super::persist::{completed_record, encode_output, failed_record};
use super::state::Run;
use crate::cache::{
    Digest, Fingerprint, FixedParts, InputDigest, Reason, Stamp, Verdict, upstream_part, verdict,
};
use crate::event::Event;
use crate::failure::Failure;
use crate::graph::map::{AnyItem, ItemFns};
use crate::ids::NodeIds;
use crate::report::Items;
use crate::store::Write;
use crate::task::Shared;

/// What a map node records beside its `Vec`: the keys of its items, in order, and what
/// else they were computed from, so that a later run can reuse them.
#[derive(serde::Serialize, serde::Deserialize)]
struct ItemsIndex {
    /// The digest of everything an item's output depends on but the item itself.
    context: Digest,
    /// The digest of the `Vec` these keys describe.
    list: Digest,
    /// Each item's key (the start of its digest), in order.
    keys: Vec<[u8; 16]>,
}

/// Runs map node `index` on its inputs: the node's result and the write of its record.
pub(super) async fn run_map(
    run: &Arc<Run>,
    index: usize,
    prepared: Vec<Prepared>,
    reason: Reason,
    fingerprint: Option<Fingerprint>,
    alive: &Alive,
) -> (Option<Result<Success, Vec<Failure>>>, Option<Write>) {
    let start = Instant::now();
    let spec = &run.nodes[index];
    let task = spec.meta.task;
    let Some((param, _, items)) = spec.each() else {
        return fail(
            run,
            index,
            fingerprint,
            reason,
            "typedag: not a map node".into(),
        );
    };
    let Some(Prepared::Shared(list)) = prepared.get(param).cloned() else {
        return fail(
            run,
            index,
            fingerprint,
            reason,
            "typedag: a map node without its list".into(),
        );
    };
    let n = (items.len)(&*list);

    // Each item's key, the digest of its bytes, when there is a store to key records in.
    let keyed = run.store.is_some() && run.plan[index].parts.is_some();
    let keys = if keyed {
        match item_keys(&items, &*list) {
            Ok(keys) => keys,
            Err((i, e)) => {
                let message = format!(
                    "item {i} could not be serialized, and an item's record is keyed by its bytes: {e}"
                );
                return fail(run, index, fingerprint, reason, message);
            }
        }
    } else {
        Vec::new()
    };
    run.events.emit(&Event::Mapped {
        node: &spec.id,
        task,
        items: n,
    });

    // Items found in the node's last `Vec`, then what the store holds for each other item.
    let context = keyed.then(|| item_context(run, index, param));
    let mut ends: Vec<Option<Result<Shared, Failure>>> = (0..n).map(|_| None).collect();
    let mut cached = 0usize;
    if let Some(context) = &context
        && let Some((old_keys, mut old_values)) = previous_items(run, index, context).await
    {
        let mut at: HashMap<&[u8; 16], usize, BuildHasherDefault<KeyHasher>> =
            HashMap::with_capacity_and_hasher(old_keys.len(), BuildHasherDefault::default());
        at.extend(old_keys.iter().enumerate().map(|(p, k)| (k, p)));
        for (i, key) in keys.iter().enumerate() {
            let short: &[u8; 16] = key[..16].try_into().expect("a digest has 32 bytes");
            if let Some(value) = at.get(short).and_then(|&p| old_values[p].take()) {
                ends[i] = Some(Ok(value));
                cached += 1;
            }
        }
    }
    let remaining: Vec<usize> = (0..n).filter(|&i| ends[i].is_none()).collect();
    // Record ids, for the items looked up or run: the others are never named.
    let mut ids: Vec<String> = vec![String::new(); if keyed { n } else { 0 }];
    for &i in remaining.iter().filter(|_| keyed) {
        ids[i] = item_id(&spec.id, &keys[i]);
    }
    let verdicts = if keyed {
        let keys: Vec<Digest> = remaining.iter().map(|&i| keys[i]).collect();
        let ids: Vec<String> = remaining.iter().map(|&i| ids[i].clone()).collect();
        stored_verdicts(run, index, param, &keys, &ids).await
    } else {
        let reason = if run.store.is_none() {
            Reason::NoStore
        } else {
            Reason::CachingOff
        };
        remaining
            .iter()
            .map(|_| Verdict::Run(reason, None))
            .collect()
    };
    let mut to_run = Vec::new();
    for (&i, v) in remaining.iter().zip(verdicts) {
        match v {
            Verdict::Cached(digest) => match load_item(run, index, &ids[i], &digest).await {
                Some(end) => {
                    cached += 1;
                    ends[i] = Some(Ok(end));
                }
                None => to_run.push((i, Reason::RecordDamaged, None)),
            },
            Verdict::Run(reason, fp) => to_run.push((i, reason, fp)),
            Verdict::Waits(_) => to_run.push((i, Reason::NeverRan, None)),
        }
    }
    if run.events.on() {
        for (i, end) in ends.iter().enumerate() {
            if end.is_some() {
                run.events.emit(&Event::Cached {
                    node: &label(&spec.id, i),
                    task,
                });
            }
        }
    }

    // Run the others on several workers at once: this task, which holds the node's slot, and
    // one more for each slot free in the run and in the task's limit group, each taking the
    // next item until none is left.
    let ran = to_run.len();
    let extra = run
        .lock()
        .take_slots(run, index, to_run.len().saturating_sub(1));
    let work = Arc::new(Work {
        run: run.clone(),
        index,
        param,
        list: list.clone(),
        get: items.get,
        prepared,
        ids,
        to_run,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..extra {
        let (work, tx, alive) = (work.clone(), tx.clone(), alive.clone());
        let run = run.clone();
        tokio::spawn(async move {
            // The worker lets go of the node's inputs before its last send.
            work.worker(tx).await;
            // The slot goes back once the worker is done: ready nodes may take it.
            let jobs = run.lock().give_slot(&run, index);
            for job in jobs {
                tokio::spawn(drive(run.clone(), job, alive.clone()));
            }
        });
    }
    // One worker is this task.
    work.clone().worker(tx).await;
    let mut cancelled = false;
    while let Some((i, end)) = rx.recv().await {
        match end {
            Some(end) => ends[i] = Some(end),
            None => cancelled = true,
        }
    }
    if cancelled || run.cancel.is_cancelled() {
        return (None, None);
    }

    let show = items.show;
    let failed: Vec<(usize, &Failure)> = ends
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Some(Err(f)) => Some((i, f)),
            _ => None,
        })
        .collect();
    let unstarted = ends.iter().filter(|e| e.is_none()).count();
    run.lock().items.insert(
        index,
        Items {
            total: n,
            ran: ran - unstarted,
            cached,
            failed: failed.len(),
        },
    );
    if !failed.is_empty() {
        let shown: Vec<String> = failed
            .iter()
            .take(5)
            .map(|(i, f)| format!("{}: {}", show(&*list, *i), f.message()))
            .collect();
        let more = if failed.len() > shown.len() {
            format!("; and {} more", failed.len() - shown.len())
        } else {
            String::new()
        };
        let message = if unstarted > 0 {
            format!(
                "{} of {n} items failed ({}{more}), and {unstarted} did not start (the run stops at the first failure); the others are stored, and the next run runs only the failed and unstarted ones",
                failed.len(),
                shown.join("; ")
            )
        } else {
            format!(
                "{} of {n} items failed ({}{more}); the others are stored, and the next run runs only the failed ones",
                failed.len(),
                shown.join("; ")
            )
        };
        return fail(run, index, fingerprint, reason, message);
    }

    // Every item is in: the node's `Vec`, in item order, and its bytes.
    let values: Vec<Shared> = ends.into_iter().flatten().filter_map(Result::ok).collect();
    let Some(value) = (spec.meta.collect)(values) else {
        return fail(
            run,
            index,
            fingerprint,
            reason,
            "typedag: an item's output was of another type or still shared".into(),
        );
    };
    let bytes = match &spec.meta.codec {
        Some(codec) => match (codec.encode_list)(&value) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                let message =
                    format!("its `Vec` of outputs could not be serialized for the store: {e}");
                return fail(run, index, fingerprint, reason, message);
            }
        },
        None => None,
    };
    let digest = bytes.as_ref().map(|b| *blake3::hash(b).as_bytes());
    let done = Success {
        value,
        attempts: 1,
        duration: start.elapsed(),
        digest,
    };
    let write = match (fingerprint, bytes, digest, context) {
        (Some(fp), Some(bytes), Some(digest), Some(context))
            if spec.meta.task_options.cache && run.store.is_some() =>
        {
            let index_bytes = postcard::to_allocvec(&ItemsIndex {
                context,
                list: digest,
                keys: keys
                    .iter()
                    .map(|k| k[..16].try_into().expect("a digest has 32 bytes"))
                    .collect(),
            })
            .expect("an index of keys always encodes");
            let index_digest = *blake3::hash(&index_bytes).as_bytes();
            let record = completed_record(spec, fp, reason, index_digest, &index_bytes, &done);
            run.send_then(
                Write::Save {
                    graph: run.graph.clone(),
                    node: items_index_id(&spec.id),
                    record,
                    output: Some(index_bytes),
                },
                |_: &Run| {},
            );
            let record = completed_record(spec, fp, reason, digest, &bytes, &done);
            Some(Write::Save {
                graph: run.graph.clone(),
                node: spec.id.to_string(),
                record,
                output: Some(bytes),
            })
        }
        _ => None,
    };
    (Some(Ok(done)), write)
}

/// The items a map node runs, shared by its workers.
struct Work {
    run: Arc<Run>,
    index: usize,
    param: usize,
    list: Shared,
    get: fn(&AnyItem, usize) -> Option<&AnyItem>,
    prepared: Vec<Prepared>,
    ids: Vec<String>,
    to_run: Vec<(usize, Reason, Option<Fingerprint>)>,
    /// The next of `to_run` to take.
    next: AtomicUsize,
    /// Set once an item failed in a run that stops at the first failure: no item starts
    /// after it.
    stop: AtomicBool,
}

type Ended = (usize, Option<Result<Shared, Failure>>);

impl Work {
    /// Runs items until none is left, or the run is cancelled, sending each item's end.
    async fn worker(self: Arc<Self>, ends: tokio::sync::mpsc::UnboundedSender<Ended>) {
        loop {
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            let Some((i, reason, fp)) = self.to_run.get(k) else {
                break;
            };
            if self.run.cancel.is_cancelled() {
                let _ = ends.send((*i, None));
                break;
            }
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let mut inputs: Vec<Prepared> = self.prepared.clone();
            inputs[self.param] = Prepared::Item(Box::new(crate::task::ItemOf {
                list: self.list.clone(),
                index: *i,
                get: self.get,
            }));
            let id = self.ids.get(*i).cloned().unwrap_or_default();
            let end = run_item(&self.run, self.index, *i, id, inputs, *reason, *fp).await;
            if self.run.fail_fast && matches!(end, Some(Err(_))) {
                self.stop.store(true, Ordering::Relaxed);
            }
            // The receiver lives until every worker has stopped.
            let _ = ends.send((*i, end));
        }
        // Let go of the inputs before the channel closes: once it has, the node may end,
        // and its inputs must then be held by no one else.
        drop(self);
        drop(ends);
    }
}

/// The record id of a map node's item: the node's id and the item's key.
pub(super) fn item_id(node: &str, key: &Digest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(node.len() + 33);
    id.push_str(node);
    id.push('#');
    for b in &key[..16] {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    id
}

/// Hashes an item's key, already a digest, by its first eight bytes.
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8).take(1) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
}

/// The record id of a map node's index of item keys.
fn items_index_id(node: &str) -> String {
    format!("{node}#items")
}

/// The digest of what every item's output depends on besides the item: the task's code and
/// output type, the constants, and the other inputs.
fn item_context(run: &Run, index: usize, param: usize) -> Digest {
    let spec = &run.nodes[index];
    let mut buf = Vec::new();
    let mut h = crate::cache::PartHasher::new(&mut buf, b"typedag.map-items.v1\0");
    if let Some(parts) = &run.plan[index].parts {
        h.add(0, &parts.code);
        h.add(1, &parts.output_type);
        h.add(2, &parts.inputs);
    }
    let state = run.lock();
    for (p, j) in spec.upstream() {
        if p != param {
            h.add(3 + p, state.digests[j].as_ref().unwrap_or(&[0; 32]));
        }
    }
    h.finish()
}

/// The keys and outputs of the node's last `Vec`, if its record and index are there and its
/// items were computed from the same context.
async fn previous_items(
    run: &Arc<Run>,
    index: usize,
    context: &Digest,
) -> Option<(Vec<[u8; 16]>, Vec<Option<Shared>>)> {
    let spec = &run.nodes[index];
    let Some(crate::cache::Stamp::Done { digest: list, .. }) = run.stamp(index).copied() else {
        return None;
    };
    let (store, codec) = (run.store.as_ref()?, spec.meta.codec.as_ref()?);
    let index_id = items_index_id(&spec.id);
    let mut ids = NodeIds::default();
    ids.map_mut().insert(Arc::from(index_id.as_str()), 0);
    let stamps = store.stamps(&run.graph, Arc::new(ids)).await.ok()?.stamps;
    let Some(Some(crate::cache::Stamp::Done { digest, .. })) = stamps.into_iter().next() else {
        return None;
    };
    let bytes = store.output(&run.graph, &index_id, &digest).await.ok()??;
    let items: ItemsIndex = postcard::from_bytes(&bytes).ok()?;
    if items.context != *context || items.list != list {
        return None;
    }
    let bytes = store.output(&run.graph, &spec.id, &list).await.ok()??;
    let values = (spec.meta.split)((codec.decode_list)(&bytes).ok()?)?;
    (values.len() == items.keys.len()).then(|| (items.keys, values.into_iter().map(Some).collect()))
}

/// How events and messages name item `i` of a map node: `pages[3]`.
fn label(node: &str, i: usize) -> String {
    format!("{node}[{i}]")
}

/// Each item's key, the digest of its bytes; or the first item that cannot be serialized,
/// with why.
pub(super) fn item_keys(items: &ItemFns, list: &AnyItem) -> Result<Vec<Digest>, (usize, String)> {
    (0..(items.len)(list))
        .map(|i| {
            (items.encode)(list, i)
                .map(|bytes| *blake3::hash(&bytes).as_bytes())
                .map_err(|e| (i, e))
        })
        .collect()
}

/// The items' record ids at dense positions, as `Store::stamps` takes them: an item listed
/// twice is one record.
pub(super) fn positions(ids: &[String]) -> Arc<NodeIds> {
    let mut positions = NodeIds::default();
    for id in ids {
        let next = positions.len();
        positions
            .map_mut()
            .entry(Arc::from(id.as_str()))
            .or_insert(next);
    }
    Arc::new(positions)
}

/// Each item's verdict from its stamp: the node's own parts, and its upstream part with the
/// item's key in place of the list (`others`: each upstream input's digest, by parameter).
pub(super) fn item_verdicts(
    parts: &FixedParts,
    param: usize,
    others: &[(usize, Option<Digest>)],
    keys: &[Digest],
    ids: &[String],
    positions: &NodeIds,
    stamps: &[Option<Stamp>],
) -> Vec<Verdict> {
    let mut buf = Vec::new();
    keys.iter()
        .zip(ids)
        .map(|(key, id)| {
            let upstream = upstream_part(
                others.iter().map(|(p, d)| {
                    let digest = if *p == param {
                        InputDigest::Known(key)
                    } else {
                        d.as_ref().map_or(InputDigest::Missing, InputDigest::Known)
                    };
                    (*p, digest)
                }),
                &mut buf,
            );
            let stamp = positions
                .position(id)
                .and_then(|at| stamps.get(at))
                .and_then(Option::as_ref);
            verdict(Some(parts), stamp, upstream)
        })
        .collect()
}

/// Each item's verdict in this run, from the store's stamps of the items.
async fn stored_verdicts(
    run: &Arc<Run>,
    index: usize,
    param: usize,
    keys: &[Digest],
    ids: &[String],
) -> Vec<Verdict> {
    let (Some(store), Some(parts)) = (&run.store, run.plan[index].parts.as_ref()) else {
        return keys
            .iter()
            .map(|_| Verdict::Run(Reason::NoStore, None))
            .collect();
    };
    let positions = positions(ids);
    // Unreadable: every item runs, and its write will say what is wrong.
    let stamps = store
        .stamps(&run.graph, positions.clone())
        .await
        .map(|s| s.stamps)
        .unwrap_or_default();
    let others: Vec<(usize, Option<Digest>)> = {
        let state = run.lock();
        run.nodes[index]
            .upstream()
            .map(|(p, j)| (p, state.digests[j]))
            .collect()
    };
    item_verdicts(parts, param, &others, keys, ids, &positions, &stamps)
}

/// A cached item's output from the store: `None` if it cannot be loaded (it then runs).
async fn load_item(run: &Arc<Run>, index: usize, id: &str, digest: &Digest) -> Option<Shared> {
    let (store, codec) = (run.store.as_ref()?, run.nodes[index].meta.codec.as_ref()?);
    let bytes = store.output(&run.graph, id, digest).await.ok()??;
    (codec.decode)(&bytes).ok()
}

/// One item's attempts, its record and its events: `None` if the run was cancelled.
async fn run_item(
    run: &Arc<Run>,
    index: usize,
    i: usize,
    id: String,
    inputs: Vec<Prepared>,
    reason: Reason,
    fingerprint: Option<Fingerprint>,
) -> Option<Result<Shared, Failure>> {
    let spec = &run.nodes[index];
    let task = spec.meta.task;
    let name = label(&spec.id, i);
    let result = attempt_unless_cancelled(run, index, &name, inputs, reason).await?;
    let stored = fingerprint.filter(|_| spec.meta.task_options.cache && run.store.is_some());
    match result {
        Ok(done) => {
            let encoded = match spec.meta.codec {
                Some(_) => match encode_output(spec, &done.value) {
                    Ok(encoded) => Some(encoded),
                    Err(failure) => {
                        return Some(Err(item_failed(
                            run,
                            spec,
                            &name,
                            &id,
                            stored,
                            reason,
                            vec![failure],
                        )));
                    }
                },
                None => None,
            };
            match (stored, &encoded) {
                (Some(fp), Some((bytes, digest))) => {
                    let record = completed_record(spec, fp, reason, *digest, bytes, &done);
                    let write = Write::Save {
                        graph: run.graph.clone(),
                        node: id,
                        record,
                        output: Some(bytes.clone()),
                    };
                    let (duration, attempts) = (done.duration, done.attempts);
                    run.send_then(write, move |run: &Run| {
                        run.events.emit(&Event::Completed {
                            node: &name,
                            task,
                            duration,
                            attempts,
                        });
                    });
                }
                _ => run.events.emit(&Event::Completed {
                    node: &name,
                    task,
                    duration: done.duration,
                    attempts: done.attempts,
                }),
            }
            Some(Ok(done.value))
        }
        Err(failures) => Some(Err(item_failed(
            run, spec, &name, &id, stored, reason, failures,
        ))),
    }
}

/// An item that failed for good: its record and event, and the failure that counted.
fn item_failed(
    run: &Arc<Run>,
    spec: &crate::graph::NodeSpec,
    name: &str,
    id: &str,
    stored: Option<Fingerprint>,
    reason: Reason,
    failures: Vec<Failure>,
) -> Failure {
    if let Some(error) = failures.last() {
        run.events.emit(&Event::Failed {
            node: name,
            task: spec.meta.task,
            error,
            attempts: u32::try_from(failures.len()).unwrap_or(u32::MAX),
        });
    }
    if let Some(fp) = stored {
        let record = failed_record(spec, fp, reason, &failures, Duration::ZERO);
        run.send_then(
            Write::Save {
                graph: run.graph.clone(),
                node: id.to_owned(),
                record,
                output: None,
            },
            |_: &Run| {},
        );
    }
    failures
        .into_iter()
        .last()
        .unwrap_or_else(|| Failure::fatal("no attempt recorded".into()))
}

/// The map node fails with `message`: its result and the write of its record.
fn fail(
    run: &Run,
    index: usize,
    fingerprint: Option<Fingerprint>,
    reason: Reason,
    message: String,
) -> (Option<Result<Success, Vec<Failure>>>, Option<Write>) {
    let spec = &run.nodes[index];
    let failures = vec![Failure::fatal(message)];
    let write = fingerprint
        .filter(|_| spec.meta.task_options.cache && run.store.is_some())
        .map(|fp| Write::Save {
            graph: run.graph.clone(),
            node: spec.id.to_string(),
            record: failed_record(spec, fp, reason, &failures, Duration::ZERO),
            output: None,
        });
    (Some(Err(failures)), write)
}

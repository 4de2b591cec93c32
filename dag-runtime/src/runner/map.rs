//! A map node's run: each item of its list keyed by the digest of its bytes, loaded from
//! the store when its record still answers for it, run otherwise (its own attempts, record
//! and events, several at once), then the node's `Vec` assembled in item order.
//!
//! Items are recorded as they finish, so a run stopped mid-map (cancelled, killed) loses
//! none that finished; the node itself is recorded once every item is in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::attempt::{Success, attempt};
use super::inputs::Prepared;
use super::persist::{completed_record, encode_output, failed_record};
use super::state::Run;
use crate::cache::{Digest, Fingerprint, InputDigest, Reason, Verdict, upstream_part, verdict};
use crate::event::Event;
use crate::failure::Failure;
use crate::ids::NodeIds;
use crate::report::Items;
use crate::store::Write;
use crate::task::Shared;

/// One item's end: its output and, when it is cached, its bytes.
struct ItemEnd {
    value: Shared,
    bytes: Option<Vec<u8>>,
}

/// Runs map node `index` on its inputs: the node's result and the write of its record.
pub(super) async fn run_map(
    run: &Arc<Run>,
    index: usize,
    prepared: Vec<Prepared>,
    reason: Reason,
    fingerprint: Option<Fingerprint>,
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
    let Some(Prepared::Shared(list)) = prepared.get(param).map(clone_prepared) else {
        return fail(
            run,
            index,
            fingerprint,
            reason,
            "typedag: a map node without its list".into(),
        );
    };
    let n = (items.len)(&*list);

    // Each item's key: the digest of its bytes.
    let mut keys: Vec<Digest> = Vec::with_capacity(n);
    for i in 0..n {
        match (items.encode)(&*list, i) {
            Ok(bytes) => keys.push(*blake3::hash(&bytes).as_bytes()),
            Err(e) => {
                let message = format!(
                    "item {i} could not be serialized, and an item's record is keyed by its bytes: {e}"
                );
                return fail(run, index, fingerprint, reason, message);
            }
        }
    }
    run.events.emit(&Event::Mapped {
        node: &spec.id,
        task,
        items: n,
    });

    // What the store holds for each item, and whether it still answers for it.
    let ids: Vec<String> = keys.iter().map(|k| item_id(&spec.id, k)).collect();
    let verdicts = item_verdicts(run, index, param, &keys, &ids).await;

    let mut ends: Vec<Option<Result<ItemEnd, Failure>>> = (0..n).map(|_| None).collect();
    let mut to_run = Vec::new();
    let mut cached = 0usize;
    for (i, v) in verdicts.into_iter().enumerate() {
        match v {
            Verdict::Cached(digest) => match load_item(run, index, &ids[i], &digest).await {
                Some(end) => {
                    cached += 1;
                    run.events.emit(&Event::Cached {
                        node: &label(&spec.id, i),
                        task,
                    });
                    ends[i] = Some(Ok(end));
                }
                None => to_run.push((i, Reason::RecordDamaged, None)),
            },
            Verdict::Run(reason, fp) => to_run.push((i, reason, fp)),
            Verdict::Waits(_) => to_run.push((i, Reason::NeverRan, None)),
        }
    }

    // Run the others, several at once: as many as the runner and the task's limit allow.
    let at_once = spec
        .meta
        .task_options
        .limit
        .unwrap_or(usize::MAX)
        .min(run.limit)
        .max(1);
    let ran = to_run.len();
    let mut finished = futures::stream::iter(to_run)
        .map(|(i, reason, fp)| {
            let mut inputs: Vec<Prepared> = prepared.iter().map(clone_prepared).collect();
            inputs[param] = Prepared::Item(list.clone(), i, items.get);
            let id = ids[i].clone();
            async move { (i, run_item(run, index, i, id, inputs, reason, fp).await) }
        })
        .buffer_unordered(at_once);
    let mut cancelled = false;
    while let Some((i, end)) = finished.next().await {
        match end {
            Some(end) => ends[i] = Some(end),
            None => cancelled = true,
        }
    }
    drop(finished);
    if cancelled || run.cancel.is_cancelled() {
        return (None, None);
    }

    let failed: Vec<(usize, &Failure)> = ends
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Some(Err(f)) => Some((i, f)),
            _ => None,
        })
        .collect();
    run.lock().items.insert(
        index,
        Items {
            total: n,
            ran,
            cached,
            failed: failed.len(),
        },
    );
    if !failed.is_empty() {
        let shown: Vec<String> = failed
            .iter()
            .take(5)
            .map(|(i, f)| format!("item {i}: {}", f.message()))
            .collect();
        let more = if failed.len() > shown.len() {
            format!("; and {} more", failed.len() - shown.len())
        } else {
            String::new()
        };
        let message = format!(
            "{} of {n} items failed ({}{more}); the others are stored, and the next run runs only the failed ones",
            failed.len(),
            shown.join("; ")
        );
        return fail(run, index, fingerprint, reason, message);
    }

    // Every item is in: the node's `Vec`, in item order, and its bytes.
    let mut values = Vec::with_capacity(n);
    let mut bytes: Option<Vec<u8>> = spec.meta.codec.as_ref().map(|_| list_header(n));
    for end in ends.into_iter().flatten() {
        let Ok(end) = end else {
            unreachable!("failed items are handled above")
        };
        match (&mut bytes, end.bytes) {
            (Some(all), Some(b)) => all.extend_from_slice(&b),
            (Some(_), None) => bytes = None,
            _ => {}
        }
        values.push(end.value);
    }
    let Some(value) = (spec.meta.collect)(values) else {
        return fail(
            run,
            index,
            fingerprint,
            reason,
            "typedag: an item's output was of another type or still shared".into(),
        );
    };
    let digest = bytes.as_ref().map(|b| *blake3::hash(b).as_bytes());
    let done = Success {
        value,
        attempts: 1,
        duration: start.elapsed(),
        digest,
    };
    let write = match (fingerprint, bytes, digest) {
        (Some(fp), Some(bytes), Some(digest))
            if spec.meta.task_options.cache && run.store.is_some() =>
        {
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

/// The record id of a map node's item: the node's id and the item's key.
fn item_id(node: &str, key: &Digest) -> String {
    let mut id = String::with_capacity(node.len() + 34);
    id.push_str(node);
    id.push('#');
    for b in &key[..16] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// How events and messages name item `i` of a map node: `pages[3]`.
fn label(node: &str, i: usize) -> String {
    format!("{node}[{i}]")
}

/// The postcard length prefix of a `Vec` of `n` items: the `Vec`'s bytes are this, then
/// each item's bytes.
fn list_header(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    let mut v = n as u64;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn clone_prepared(p: &Prepared) -> Prepared {
    match p {
        Prepared::Shared(v) => Prepared::Shared(v.clone()),
        Prepared::List(values, collect) => Prepared::List(values.clone(), *collect),
        Prepared::Absent => Prepared::Absent,
        Prepared::Item(list, i, get) => Prepared::Item(list.clone(), *i, *get),
    }
}

/// Each item's verdict: what its record says, given its key and the node's other inputs.
async fn item_verdicts(
    run: &Arc<Run>,
    index: usize,
    param: usize,
    keys: &[Digest],
    ids: &[String],
) -> Vec<Verdict> {
    let spec = &run.nodes[index];
    let parts = run.plan[index].parts.as_ref();
    let (Some(store), Some(_)) = (&run.store, parts) else {
        let reason = if run.store.is_none() {
            Reason::NoStore
        } else {
            Reason::CachingOff
        };
        return keys.iter().map(|_| Verdict::Run(reason, None)).collect();
    };
    // Positions are dense: an item listed twice is one record.
    let mut positions = NodeIds::default();
    for id in ids {
        let next = positions.len();
        positions
            .map_mut()
            .entry(Arc::from(id.as_str()))
            .or_insert(next);
    }
    let positions = Arc::new(positions);
    let stamps = match store.stamps(&run.graph, positions.clone()).await {
        Ok(s) => s.stamps,
        // Unreadable: every item runs, and its write will say what is wrong.
        Err(_) => Vec::new(),
    };
    let others: Vec<(usize, Option<Digest>)> = {
        let state = run.lock();
        spec.upstream()
            .map(|(p, j)| (p, state.digests[j]))
            .collect()
    };
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
            verdict(parts, stamp, upstream)
        })
        .collect()
}

/// A cached item's output from the store: `None` if it cannot be loaded (it then runs).
async fn load_item(run: &Arc<Run>, index: usize, id: &str, digest: &Digest) -> Option<ItemEnd> {
    let (store, codec) = (run.store.as_ref()?, run.nodes[index].meta.codec.as_ref()?);
    let bytes = store.output(&run.graph, id, digest).await.ok()??;
    let value = (codec.decode)(&bytes).ok()?;
    Some(ItemEnd {
        value,
        bytes: Some(bytes),
    })
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
) -> Option<Result<ItemEnd, Failure>> {
    let spec = &run.nodes[index];
    let task = spec.meta.task;
    let name = label(&spec.id, i);
    let result = if !run.cancellable {
        attempt(run, index, &name, inputs, reason).await
    } else if run.cancel.is_cancelled() {
        return None;
    } else {
        let attempt = std::pin::pin!(attempt(run, index, &name, inputs, reason));
        let cancelled = std::pin::pin!(run.cancel.cancelled());
        match futures::future::select(attempt, cancelled).await {
            futures::future::Either::Left((result, _)) => result,
            futures::future::Either::Right(_) => return None,
        }
    };
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
            Some(Ok(ItemEnd {
                value: done.value,
                bytes: encoded.map(|(bytes, _)| bytes),
            }))
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

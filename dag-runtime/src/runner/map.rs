//! A map node's run: each item of its list keyed by the digest of its bytes, taken from the
//! node's last `Vec` or loaded from the store when its record still answers for it, run
//! otherwise (its own attempts, record and events, on several workers), then the node's
//! `Vec` assembled in item order.
//!
//! Items are made durable as they finish, in batches (`item_log.rs`), so a run stopped
//! mid-map (cancelled, killed) loses none that finished; the node itself is recorded once
//! every item is in, with an index of its items' keys (`node#items`), so that the next run
//! over a changed list finds the unchanged items in the last `Vec` (two reads).

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::attempt::{Call, FOR_ITEM, Success, attempt_unless_cancelled};
use super::driver::{Alive, drive};
use super::inputs::Prepared;
use super::item_index::{
    index_bytes, item_context, item_id, items_index_id, last_index, last_vec, shared_items,
};
use super::item_keys::{Encoded, Key, Matched, match_items};
use super::item_log::{self, Finished, ItemLog, Logged};
use super::persist::{completed_record, encode_output, failed_record};
use super::state::Run;
use crate::cache::{Fingerprint, Reason};
use crate::event::Event;
use crate::failure::Failure;
use crate::graph::map::AnyItem;
use crate::report::Items;
use crate::store::Write;
use crate::task::Shared;

/// A map node's end: its result and the write of its record.
pub(super) type MapEnd = (Option<Result<Success, Vec<Failure>>>, Option<Write>);

/// Runs map node `index` on its inputs: the node's result and the write of its record. A
/// write that must follow that one (the items' cleanup) waits in `State::after` for
/// [`send_after`].
pub(super) async fn run_map(
    run: &Arc<Run>,
    index: usize,
    prepared: Vec<Prepared>,
    reason: Reason,
    fingerprint: Option<Fingerprint>,
    alive: &Alive,
) -> MapEnd {
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

    // Each item's bytes, when its output is kept in a store: items are known by them.
    let parts = run.plan[index].parts.as_ref();
    let kept = (run.store.as_ref(), parts, fingerprint)
        .0
        .filter(|_| spec.meta.task_options.cache && parts.is_some() && fingerprint.is_some());
    let encoded = match kept {
        Some(_) => match Encoded::new(&items, &*list) {
            Ok(encoded) => Some(encoded),
            Err((i, e)) => return fail(run, index, fingerprint, reason, unserializable(i, &e)),
        },
        None => None,
    };
    run.events.emit(&Event::Mapped {
        node: &spec.id,
        task,
        items: n,
    });

    // Items found in the node's last `Vec` (by chunk, then by key), then in the batches of
    // earlier runs.
    let context = parts.filter(|_| kept.is_some()).map(|parts| {
        let state = run.lock();
        let others = spec.upstream().map(|(p, j)| (p, state.digests[j]));
        item_context(parts, param, others)
    });
    let last = match &context {
        Some(context) => last_index(run, index, context).await,
        None => None,
    };
    let Matched {
        mut from_old,
        keys,
        chunks,
    } = match &encoded {
        Some(encoded) => match_items(
            encoded,
            last.as_ref().map(|(_, i)| (&i.keys.0[..], &i.chunks[..])),
        ),
        None => Matched {
            from_old: vec![None; n],
            keys: Vec::new(),
            chunks: Vec::new(),
        },
    };
    drop(encoded);
    let old = match &last {
        Some((list, _)) if from_old.iter().any(Option::is_some) => last_vec(run, index, list).await,
        _ => None,
    };
    if old.is_none() {
        // The last `Vec` could not be read: its items are looked for elsewhere.
        from_old.iter_mut().for_each(|p| *p = None);
    }
    // Each item's output when it is not taken from the last `Vec`: loaded from a batch, or
    // run in this run.
    let mut fresh: Vec<Option<Shared>> = vec![None; n];
    let mut cached = from_old.iter().filter(|p| p.is_some()).count();
    let mut logged = Logged::default();
    if let (Some(store), Some(context)) = (kept, &context) {
        logged = item_log::read(store.as_ref(), &run.graph, &spec.id, context).await;
        if let Some(codec) = &spec.meta.codec
            && !logged.items.is_empty()
        {
            for (i, key) in keys.iter().enumerate() {
                if from_old[i].is_none()
                    && let Some(value) = logged.items.get(key).and_then(|b| (codec.decode)(b).ok())
                {
                    fresh[i] = Some(value);
                    cached += 1;
                }
            }
        }
    }
    // In a store processes share, the items a distributed run recorded one by one, its map
    // node having failed or stopped before it gathered them.
    let mut adopted = Vec::new();
    if let (Some(store), Some(context), Some(parts)) = (kept, &context, parts)
        && store.coordinator().is_some()
    {
        let left: Vec<usize> = (0..n)
            .filter(|&i| from_old[i].is_none() && fresh[i].is_none())
            .collect();
        for (i, id, value) in shared_items(run, index, parts, context, &keys, &left).await {
            fresh[i] = Some(value);
            cached += 1;
            adopted.push(id);
        }
    }
    if run.events.on() {
        for i in 0..n {
            if from_old[i].is_some() || fresh[i].is_some() {
                run.events.emit(&Event::Cached {
                    node: &label(&spec.id, i),
                    task,
                });
            }
        }
    }
    let to_run: Vec<usize> = (0..n)
        .filter(|&i| from_old[i].is_none() && fresh[i].is_none())
        .collect();
    let item_reason = if kept.is_some() {
        reason
    } else if run.store.is_none() {
        Reason::NoStore
    } else {
        Reason::CachingOff
    };
    let log = match (fingerprint, context) {
        (Some(fp), Some(context)) => Some(ItemLog::new(
            run,
            index,
            fp,
            reason,
            context,
            logged.ids.len(),
        )),
        _ => None,
    };

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
        keys,
        log: log.clone(),
        fingerprint: fingerprint.filter(|_| kept.is_some()),
        reason: item_reason,
        to_run,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        workers: AtomicUsize::new(0),
        spare: std::sync::Mutex::new(None),
        alive: alive.clone(),
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    *work.spare.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx.clone());
    for _ in 0..extra {
        work.clone().spawn_worker(tx.clone());
    }
    // Slots that free up while the items run go to more workers.
    run.lock().growing.push((index, Arc::downgrade(&work)));
    // One worker is this task.
    work.clone().worker(tx).await;
    // `ended`: the items that ran to an end, success or failure.
    let (mut cancelled, mut ended) = (false, 0usize);
    let mut failed: Vec<(usize, Failure)> = Vec::new();
    while let Some((i, end)) = rx.recv().await {
        match end {
            Some(Ok(value)) => fresh[i] = Some(value),
            Some(Err(failure)) => failed.push((i, failure)),
            None => {
                cancelled = true;
                continue;
            }
        }
        ended += 1;
    }
    run.lock().growing.retain(|(i, _)| *i != index);
    // Every worker has let go of the work: its inputs go with it.
    let keys = Arc::into_inner(work).map(|w| w.keys).unwrap_or_default();
    // Every item that finished goes to the store, whatever the node's end.
    let written = log.as_ref().map(ItemLog::close).unwrap_or_default();
    // What became of the items, for the report, the node cancelled or not.
    run.lock().items.insert(
        index,
        Items {
            total: n,
            ran: ended,
            cached,
            failed: failed.len(),
        },
    );
    if cancelled || run.cancel.is_cancelled() {
        return (None, None);
    }

    let show = items.show;
    failed.sort_by_key(|(i, _)| *i);
    let unstarted = ran - ended;
    if !failed.is_empty() {
        let message = failed_items_message(n, &failed, unstarted, |i| show(&*list, i));
        return fail(run, index, fingerprint, reason, message);
    }
    if unstarted > 0 {
        return fail(
            run,
            index,
            fingerprint,
            reason,
            stopped_message(n, unstarted),
        );
    }

    // Every item is in: the node's `Vec`, in item order, and its bytes.
    let Some(value) = (spec.meta.assemble)(old, &from_old, fresh) else {
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
        (Some(fp), Some(bytes), Some(digest), Some(context)) if kept.is_some() => {
            let index_bytes = index_bytes(context, digest, keys, chunks);
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
            let write = Write::Save {
                graph: run.graph.clone(),
                node: spec.id.to_string(),
                record,
                output: Some(bytes),
            };
            // Once the `Vec` is stored, the batches and failed items' records are not needed.
            let mut doomed = logged.ids;
            doomed.extend(written);
            doomed.extend(logged.failed.iter().map(|k| item_id(&spec.id, k)));
            doomed.extend(adopted);
            if !doomed.is_empty() {
                run.send_after_record(
                    index,
                    Write::Forget {
                        graph: run.graph.clone(),
                        nodes: Some(doomed),
                    },
                );
            }
            Some(write)
        }
        _ => None,
    };
    (Some(Ok(done)), write)
}

/// The items a map node runs, shared by its workers.
pub(super) struct Work {
    run: Arc<Run>,
    index: usize,
    param: usize,
    list: Shared,
    get: fn(&AnyItem, usize) -> Option<&AnyItem>,
    prepared: Vec<Prepared>,
    /// Each item's key, when items are kept in the store (empty otherwise).
    keys: Vec<Key>,
    /// Where finished items go, when they are kept.
    log: Option<Arc<ItemLog>>,
    /// The fingerprint a failed item's record carries, when items are kept.
    fingerprint: Option<Fingerprint>,
    /// Why the items run.
    reason: Reason,
    /// The positions of the items to run.
    to_run: Vec<usize>,
    /// The next of `to_run` to take.
    next: AtomicUsize,
    /// Set once an item failed in a run that stops at the first failure: no item starts
    /// after it.
    stop: AtomicBool,
    /// How many workers are taking items.
    workers: AtomicUsize,
    /// A sender for workers started later, on slots that free up in the run (see
    /// [`State::grow_maps`](super::state::State::grow_maps)); dropped once no item is left to
    /// take, so that the channel closes when the last worker stops.
    spare: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<Ended>>>,
    /// Keeps the run's drivers counted while a worker runs.
    alive: Alive,
}

type Ended = (usize, Option<Result<Shared, Failure>>);

impl Work {
    /// Runs items until none is left, or the run is cancelled, sending each item's end.
    async fn worker(self: Arc<Self>, ends: tokio::sync::mpsc::UnboundedSender<Ended>) {
        self.workers.fetch_add(1, Ordering::AcqRel);
        loop {
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&i) = self.to_run.get(k) else {
                break;
            };
            if self.run.cancel.is_cancelled() {
                let _ = ends.send((i, None));
                break;
            }
            // No item starts once the run stops (a failure under fail-fast elsewhere, a
            // store that cannot write), looked at every few items: it takes the run's lock.
            if self.stop.load(Ordering::Relaxed)
                || (k.is_multiple_of(16) && self.run.lock().stopping)
            {
                break;
            }
            let mut inputs: Vec<Prepared> = self.prepared.clone();
            inputs[self.param] = Prepared::Item(Box::new(crate::task::ItemOf {
                list: self.list.clone(),
                index: i,
                get: self.get,
            }));
            let end = self.run_item(i, inputs).await;
            if self.run.fail_fast && matches!(end, Some(Err(_))) {
                self.stop.store(true, Ordering::Relaxed);
            }
            // The receiver lives until every worker has stopped.
            let _ = ends.send((i, end));
        }
        // No item is left for a worker to take (or none may start): none starts again.
        self.spare.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.workers.fetch_sub(1, Ordering::AcqRel);
        // Let go of the inputs before the channel closes: once it has, the node may end,
        // and its inputs must then be held by no one else.
        drop(self);
        drop(ends);
    }

    /// Starts one more worker, on a slot of the run already counted: it gives the slot back
    /// when it stops, and whatever nodes are then ready take it.
    fn spawn_worker(self: Arc<Self>, ends: tokio::sync::mpsc::UnboundedSender<Ended>) {
        let (run, index, alive) = (self.run.clone(), self.index, self.alive.clone());
        tokio::spawn(async move {
            // The worker lets go of the node's inputs before its last send.
            self.worker(ends).await;
            let jobs = run.lock().give_slot(&run, index);
            for job in jobs {
                tokio::spawn(drive(run.clone(), job, alive.clone()));
            }
        });
    }

    /// How many more workers the node could use: the items not yet taken, less one for each
    /// worker taking them.
    pub(super) fn wants(&self) -> usize {
        if self.stop.load(Ordering::Relaxed) {
            return 0;
        }
        let left = self
            .to_run
            .len()
            .saturating_sub(self.next.load(Ordering::Relaxed));
        left.saturating_sub(self.workers.load(Ordering::Acquire))
    }

    /// Starts one more worker on a slot the run counted for it, if items are still left to
    /// take; `false` if none are (the slot is then the caller's to give back).
    pub(super) fn start_worker(self: Arc<Self>) -> bool {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match spare {
            Some(ends) => {
                self.spawn_worker(ends);
                true
            }
            None => false,
        }
    }

    /// Item `i`'s attempts, its way to the store and its events: `None` if the run was
    /// cancelled.
    async fn run_item(&self, i: usize, inputs: Vec<Prepared>) -> Option<Result<Shared, Failure>> {
        let run = &self.run;
        let spec = &run.nodes[self.index];
        let task = spec.meta.task;
        let name = label(&spec.id, i);
        let call = Call::item(run, self.index, i);
        let result =
            attempt_unless_cancelled::<FOR_ITEM>(run, self.index, &name, inputs, self.reason, call)
                .await?;
        let kept = self.log.as_ref().zip(self.keys.get(i));
        match result {
            Ok(done) => {
                let Some((log, key)) = kept else {
                    run.events.emit(&Event::Completed {
                        node: &name,
                        task,
                        duration: done.duration,
                        attempts: done.attempts,
                    });
                    return Some(Ok(done.value));
                };
                match encode_output(spec, &done.value) {
                    Ok((bytes, _)) => {
                        // Its `Completed` event is sent once its batch is durable.
                        log.push(Finished {
                            key: *key,
                            bytes: Some(bytes),
                            position: i,
                            duration: done.duration,
                            attempts: done.attempts,
                        });
                        Some(Ok(done.value))
                    }
                    Err(failure) => Some(Err(self.item_failed(i, &name, vec![failure]))),
                }
            }
            Err(failures) => Some(Err(self.item_failed(i, &name, failures))),
        }
    }

    /// Item `i` failed for good: its record and event, and the failure that counted.
    fn item_failed(&self, i: usize, name: &str, failures: Vec<Failure>) -> Failure {
        let run = &self.run;
        let spec = &run.nodes[self.index];
        if let Some(error) = failures.last() {
            run.events.emit(&Event::Failed {
                node: name,
                task: spec.meta.task,
                error,
                attempts: u32::try_from(failures.len()).unwrap_or(u32::MAX),
            });
        }
        if let (Some(fp), Some(key), Some(log)) = (self.fingerprint, self.keys.get(i), &self.log) {
            let record = failed_record(spec, fp, self.reason, &failures, Duration::ZERO);
            run.send_then(
                Write::Save {
                    graph: run.graph.clone(),
                    node: item_id(&spec.id, key),
                    record,
                    output: None,
                },
                |_: &Run| {},
            );
            // Named in a batch, so that the record is forgotten once the node completes.
            log.push(Finished {
                key: *key,
                bytes: None,
                position: i,
                duration: Duration::ZERO,
                attempts: 0,
            });
        }
        failures
            .into_iter()
            .last()
            .unwrap_or_else(|| Failure::fatal("no attempt recorded".into()))
    }
}

/// How events and messages name item `i` of a map node: `pages[3]`.
pub(super) fn label(node: &str, i: usize) -> String {
    format!("{node}[{i}]")
}

/// The map node's error when some items failed: which ones and why, the first few by a
/// short form of the item (`show`), and how many did not start.
pub(super) fn failed_items_message(
    n: usize,
    failed: &[(usize, Failure)],
    unstarted: usize,
    show: impl Fn(usize) -> String,
) -> String {
    let shown: Vec<String> = failed
        .iter()
        .take(5)
        .map(|(i, f)| format!("{}: {}", show(*i), f.message()))
        .collect();
    let more = if failed.len() > shown.len() {
        format!("; and {} more", failed.len() - shown.len())
    } else {
        String::new()
    };
    if unstarted > 0 {
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
    }
}

/// The map node's error when the run stopped (at a failure elsewhere) before `unstarted`
/// of its `n` items started, and none failed.
pub(super) fn stopped_message(n: usize, unstarted: usize) -> String {
    format!(
        "the run stopped before {unstarted} of its {n} items started; the others are stored, and the next run runs the rest"
    )
}

/// The map node's error when item `i` cannot be serialized (`e`, why).
pub(super) fn unserializable(i: usize, e: &str) -> String {
    format!("item {i} could not be serialized, and an item is stored by its bytes: {e}")
}

/// The map node fails with `message`: its result and the write of its record.
fn fail(
    run: &Run,
    index: usize,
    fingerprint: Option<Fingerprint>,
    reason: Reason,
    message: String,
) -> MapEnd {
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

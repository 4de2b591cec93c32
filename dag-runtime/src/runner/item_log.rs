//! A map node's finished items, made durable in batches: while one batch is being committed,
//! the items that finish queue up, and go in the next one. Each batch is one record of
//! consecutive ids (`pages#log0`, `pages#log1`, …), so a map of 100,000 items writes a few
//! hundred records appended in order, not 100,000 records at random places in the store.
//!
//! A batch holds each item's key and output bytes, and the context they were computed in.
//! A later run of the map reads every batch back and takes the items of the same context;
//! once the node's `Vec` and index are stored, its batches are forgotten, and so are the
//! records of the items that failed on the way (named in the batches too, bytes-less).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::item_keys::Key;
use super::persist::done_record;
use super::state::Run;
use crate::cache::{Digest, Fingerprint, Reason, Stamp};
use crate::event::Event;
use crate::ids::NodeIds;
use crate::store::{Store, Write};

/// How many batch ids a run looks up at once when it reads the batches back.
const PROBE: usize = 32;

/// The record id of batch `k` of map node `node`.
fn batch_id(node: &str, k: usize) -> String {
    format!("{node}#log{k}")
}

/// Output bytes, written as one byte string rather than as a sequence of numbers.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a [u8]>::deserialize(d).map(Bytes)
    }
}

/// One batch record's value.
#[derive(Serialize, Deserialize)]
struct Batch<'a> {
    /// What the items' outputs depend on besides the items.
    context: Digest,
    /// Each item's key, and its output's bytes, or `None` for an item that failed (its
    /// record is at its own id, to be forgotten with the batches).
    #[serde(borrow)]
    items: Vec<(Key, Option<Bytes<'a>>)>,
}

/// An item that finished, on its way into a batch.
pub(super) struct Finished {
    pub key: Key,
    /// Its output's bytes, or `None` if it failed.
    pub bytes: Option<Vec<u8>>,
    /// For its `Completed` event once durable: its position, time and attempts.
    pub position: usize,
    pub duration: Duration,
    pub attempts: u32,
}

/// The batches one run of a map node writes.
pub(super) struct ItemLog {
    run: Arc<Run>,
    index: usize,
    fingerprint: Fingerprint,
    reason: Reason,
    context: Digest,
    queue: Mutex<Queue>,
}

struct Queue {
    /// Items finished since the last batch went out.
    items: Vec<Finished>,
    /// Whether a batch is on its way to the store: the next waits for it.
    writing: bool,
    /// The next batch's number.
    next: usize,
    /// Whether the map has ended: nothing more is written after the last batch.
    closed: bool,
    /// Every batch written, by id.
    written: Vec<String>,
}

impl ItemLog {
    /// A log for map node `index` whose batches are numbered from `first` (those below are
    /// an earlier run's).
    pub(super) fn new(
        run: &Arc<Run>,
        index: usize,
        fingerprint: Fingerprint,
        reason: Reason,
        context: Digest,
        first: usize,
    ) -> Arc<Self> {
        Arc::new(ItemLog {
            run: run.clone(),
            index,
            fingerprint,
            reason,
            context,
            queue: Mutex::new(Queue {
                items: Vec::new(),
                writing: false,
                next: first,
                closed: false,
                written: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a finished item: it goes out now if no batch is on its way, with the next one
    /// otherwise. A successful item's `Completed` event is sent once its batch is durable.
    pub(super) fn push(self: &Arc<Self>, item: Finished) {
        let batch = {
            let mut queue = self.lock();
            queue.items.push(item);
            if queue.writing {
                return;
            }
            queue.writing = true;
            self.take(&mut queue)
        };
        self.write(batch);
    }

    /// Writes what is queued, even while another batch is on its way, and writes nothing
    /// after: the map has ended. The ids of every batch this run wrote.
    pub(super) fn close(self: &Arc<Self>) -> Vec<String> {
        let (batch, written) = {
            let mut queue = self.lock();
            queue.closed = true;
            let batch = (!queue.items.is_empty()).then(|| self.take(&mut queue));
            (batch, queue.written.clone())
        };
        if let Some(batch) = batch {
            self.write(batch);
        }
        written
    }

    /// The queued items and their batch's id, numbered under the lock.
    fn take(&self, queue: &mut Queue) -> (String, Vec<Finished>) {
        let id = batch_id(&self.run.nodes[self.index].id, queue.next);
        queue.next += 1;
        queue.written.push(id.clone());
        (id, std::mem::take(&mut queue.items))
    }

    fn write(self: &Arc<Self>, (id, items): (String, Vec<Finished>)) {
        let run = &self.run;
        let spec = &run.nodes[self.index];
        let bytes = postcard::to_allocvec(&Batch {
            context: self.context,
            items: items
                .iter()
                .map(|f| (f.key, f.bytes.as_deref().map(Bytes)))
                .collect(),
        })
        .expect("keys and byte strings always encode");
        let digest = *blake3::hash(&bytes).as_bytes();
        let record = done_record(
            spec,
            self.fingerprint,
            self.reason,
            digest,
            bytes.len(),
            Duration::ZERO,
            1,
        );
        let write = Write::Save {
            graph: run.graph.clone(),
            node: id,
            record,
            output: Some(bytes),
        };
        let log = self.clone();
        run.send_then(write, move |run: &Run| {
            if run.events.on() {
                let spec = &run.nodes[log.index];
                for f in items.iter().filter(|f| f.bytes.is_some()) {
                    run.events.emit(&Event::Completed {
                        node: &super::map::label(&spec.id, f.position),
                        task: spec.meta.task,
                        duration: f.duration,
                        attempts: f.attempts,
                    });
                }
            }
            log.written();
        });
    }

    /// A batch is durable: the items queued meanwhile go out.
    fn written(self: &Arc<Self>) {
        let batch = {
            let mut queue = self.lock();
            if queue.items.is_empty() || queue.closed {
                queue.writing = false;
                return;
            }
            self.take(&mut queue)
        };
        self.write(batch);
    }
}

/// What earlier runs of a map node left in its batches.
#[derive(Default)]
pub(super) struct Logged {
    /// The output bytes of each item logged in the context asked for.
    pub items: HashMap<Key, Vec<u8>>,
    /// The keys of the items that failed, in any context: their records are at their ids.
    pub failed: Vec<Key>,
    /// The id of every batch found, in order: the next batch is numbered after them.
    pub ids: Vec<String>,
}

/// Reads back every batch of map node `node` in `graph`, keeping the items computed in
/// `context`. A batch that cannot be read is passed over: its items run again.
pub(super) async fn read(store: &dyn Store, graph: &str, node: &str, context: &Digest) -> Logged {
    let mut logged = Logged::default();
    let mut digests = Vec::new();
    // Batches are numbered from 0 with no gap: look them up a few at a time until one is
    // missing.
    'probe: loop {
        let from = logged.ids.len();
        let ids: Vec<String> = (from..from + PROBE).map(|k| batch_id(node, k)).collect();
        let mut positions = NodeIds::default();
        for (p, id) in ids.iter().enumerate() {
            positions.map_mut().insert(Arc::from(id.as_str()), p);
        }
        let Ok(found) = store.stamps(graph, Arc::new(positions)).await else {
            break;
        };
        for (id, stamp) in ids.into_iter().zip(found.stamps) {
            match stamp {
                Some(Stamp::Done { digest, .. }) => {
                    logged.ids.push(id);
                    digests.push(digest);
                }
                _ => break 'probe,
            }
        }
    }
    for (id, digest) in logged.ids.iter().zip(&digests) {
        let Ok(Some(bytes)) = store.output(graph, id, digest).await else {
            continue;
        };
        let Ok(batch) = postcard::from_bytes::<Batch<'_>>(&bytes) else {
            continue;
        };
        let same = batch.context == *context;
        for (key, output) in batch.items {
            match output {
                Some(Bytes(b)) if same => {
                    logged.items.insert(key, b.to_vec());
                }
                Some(_) => {}
                None => logged.failed.push(key),
            }
        }
    }
    logged
}

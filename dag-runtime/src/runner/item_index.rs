//! What a map node keeps in the store beside its `Vec`, and how a run reads it back: the
//! index of its items' keys and chunks (`pages#items`), the context they were computed in,
//! the last `Vec` itself, and the items a distributed run recorded one by one
//! (`pages#<key>`).

use std::sync::Arc;

use super::item_keys::{Chunk, Key};
use super::state::Run;
use crate::cache::{Digest, Fingerprint, FixedParts, Stamp};
use crate::ids::NodeIds;
use crate::store::Store;
use crate::task::Shared;

/// What a map node records beside its `Vec`: the keys of its items, in order, and what
/// else they were computed from, so that a later run can reuse them.
#[derive(serde::Serialize, serde::Deserialize)]
struct ItemsIndex {
    /// The digest of everything an item's output depends on but the item itself.
    context: Digest,
    /// The digest of the `Vec` these keys describe.
    list: Digest,
    /// Each item's key, in order.
    keys: Keys,
    /// The list's chunks, in order.
    chunks: Vec<Chunk>,
}

/// Keys, written as one byte string of 16 bytes each.
pub(super) struct Keys(pub Vec<Key>);

impl serde::Serialize for Keys {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0.as_flattened())
    }
}

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = <&'de [u8]>::deserialize(d)?;
        let (keys, rest) = bytes.as_chunks::<16>();
        if !rest.is_empty() {
            return Err(serde::de::Error::custom("a key list of whole keys"));
        }
        Ok(Keys(keys.to_vec()))
    }
}

/// What an item recorded one by one (by a distributed run) says it was computed from: its
/// map node's code and output type, its context in place of the constants and its key in
/// place of the upstream outputs. A later run finds the item by them, and no node's
/// fingerprint is ever one of these.
pub(super) fn item_fingerprint(parts: &FixedParts, context: &Digest, key: &Key) -> Fingerprint {
    let mut upstream = [0; 32];
    upstream[..key.len()].copy_from_slice(key);
    Fingerprint {
        code: parts.code,
        output_type: parts.output_type,
        inputs: *context,
        upstream,
    }
}

/// The items among `left` that the store holds recorded one by one for this context (by a
/// distributed run): each item's position, record id and output.
pub(super) async fn shared_items(
    run: &Arc<Run>,
    index: usize,
    parts: &FixedParts,
    context: &Digest,
    keys: &[Key],
    left: &[usize],
) -> Vec<(usize, String, Shared)> {
    let spec = &run.nodes[index];
    let (Some(store), Some(codec)) = (&run.store, &spec.meta.codec) else {
        return Vec::new();
    };
    if left.is_empty() {
        return Vec::new();
    }
    let ids: Vec<String> = left.iter().map(|&i| item_id(&spec.id, &keys[i])).collect();
    let (positions, at) = NodeIds::distinct(&ids);
    let Ok(stamps) = store.stamps(&run.graph, Arc::new(positions)).await else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for ((&i, id), p) in left.iter().zip(ids).zip(at) {
        let Some(Some(Stamp::Done {
            fingerprint,
            digest,
        })) = stamps.stamps.get(p)
        else {
            continue;
        };
        if *fingerprint != item_fingerprint(parts, context, &keys[i]) {
            continue;
        }
        if let Ok(Some(bytes)) = store.output(&run.graph, &id, digest).await
            && let Ok(value) = (codec.decode)(&bytes)
        {
            found.push((i, id, value));
        }
    }
    found
}

/// The record id of a failed item of a map node: the node's id and the item's key.
pub(super) fn item_id(node: &str, key: &Key) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(node.len() + 33);
    id.push_str(node);
    id.push('#');
    for b in key {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    id
}

/// The value of a map node's index: the keys and chunks of its `Vec` (of digest `list`),
/// computed in `context`.
pub(super) fn index_bytes(
    context: Digest,
    list: Digest,
    keys: Vec<Key>,
    chunks: Vec<Chunk>,
) -> Vec<u8> {
    postcard::to_allocvec(&ItemsIndex {
        context,
        list,
        keys: Keys(keys),
        chunks,
    })
    .expect("an index of keys always encodes")
}

/// The record id of a map node's index of item keys.
pub(super) fn items_index_id(node: &str) -> String {
    format!("{node}#items")
}

/// The digest of what every item's output depends on besides the item: the task's code and
/// output type, the constants, and the other inputs (`others`: each upstream parameter and
/// its input's digest; the list's is left out).
pub(super) fn item_context(
    parts: &FixedParts,
    param: usize,
    others: impl Iterator<Item = (usize, Option<Digest>)>,
) -> Digest {
    let mut buf = Vec::new();
    let mut h = crate::cache::PartHasher::new(&mut buf, b"typedag.map-items.v1\0");
    h.add(0, &parts.code);
    h.add(1, &parts.output_type);
    h.add(2, &parts.inputs);
    for (p, digest) in others {
        if p != param {
            h.add(3 + p, digest.as_ref().unwrap_or(&[0; 32]));
        }
    }
    h.finish()
}

/// The keys and chunks of map node `node`'s last `Vec`, stored with digest `list`, if its
/// index is there and its items were computed in `context`.
pub(super) async fn stored_index(
    store: &dyn Store,
    graph: &str,
    node: &str,
    list: &Digest,
    context: &Digest,
) -> Option<(Vec<Key>, Vec<Chunk>)> {
    let index_id = items_index_id(node);
    let mut ids = NodeIds::default();
    ids.map_mut().insert(Arc::from(index_id.as_str()), 0);
    let stamps = store.stamps(graph, Arc::new(ids)).await.ok()?.stamps;
    let Some(Some(Stamp::Done { digest, .. })) = stamps.into_iter().next() else {
        return None;
    };
    let bytes = store.output(graph, &index_id, &digest).await.ok()??;
    let items: ItemsIndex = postcard::from_bytes(&bytes).ok()?;
    let whole = items.chunks.iter().map(|c| c.len as usize).sum::<usize>() == items.keys.0.len();
    (items.context == *context && items.list == *list && whole)
        .then_some((items.keys.0, items.chunks))
}

/// The node's last `Vec`'s digest and index, if its record and index are there and its
/// items were computed in `context`.
pub(super) async fn last_index(
    run: &Arc<Run>,
    index: usize,
    context: &Digest,
) -> Option<(Digest, Index)> {
    let spec = &run.nodes[index];
    let Some(Stamp::Done { digest: list, .. }) = run.stamp(index).copied() else {
        return None;
    };
    let store = run.store.as_ref()?;
    let (keys, chunks) = stored_index(store.as_ref(), &run.graph, &spec.id, &list, context).await?;
    Some((
        list,
        Index {
            keys: Keys(keys),
            chunks,
        },
    ))
}

/// The keys and chunks of a map node's last `Vec`.
pub(super) struct Index {
    pub keys: Keys,
    pub chunks: Vec<Chunk>,
}

/// The node's last `Vec` (stored with digest `list`), decoded.
pub(super) async fn last_vec(run: &Arc<Run>, index: usize, list: &Digest) -> Option<Shared> {
    let spec = &run.nodes[index];
    let (store, codec) = (run.store.as_ref()?, spec.meta.codec.as_ref()?);
    let bytes = store.output(&run.graph, &spec.id, list).await.ok()??;
    (codec.decode_list)(&bytes).ok()
}

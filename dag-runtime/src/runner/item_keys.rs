//! What a map node's items are known by from one run to the next: each item's key (the
//! start of the digest of its bytes), and the list cut into chunks at places the items
//! themselves choose, each with the digest of its bytes.
//!
//! A rerun over a list with one item changed finds the other items by chunk: a chunk whose
//! digest is one of the last list's holds the same items, and their keys and outputs are
//! taken by position, with no digest per item. Since the cuts depend only on the items next
//! to them, an inserted, removed or edited item changes only the chunk around it; only the
//! items of changed chunks are hashed one by one and looked up by key.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::graph::map::{AnyItem, ItemFns};

/// An item's key: the start of the digest of its bytes.
pub(super) type Key = [u8; 16];

/// About one item in this many ends a chunk.
const CUT_EVERY: u64 = 64;
/// The most items a chunk holds.
const CHUNK_MAX: usize = 1024;

/// A run of consecutive items: how many, and the digest of their bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) struct Chunk {
    pub digest: Key,
    pub len: u32,
}

/// A list's items, encoded one after the other.
pub(super) struct Encoded {
    bytes: Vec<u8>,
    /// Where each item's bytes end.
    ends: Vec<usize>,
}

impl Encoded {
    /// Encodes every item of `list`; or the first item that cannot be serialized, with why.
    pub(super) fn new(items: &ItemFns, list: &AnyItem) -> Result<Self, (usize, String)> {
        let mut encoded = Encoded {
            bytes: Vec::new(),
            ends: Vec::with_capacity((items.len)(list)),
        };
        (items.encode_all)(list, &mut encoded.bytes, &mut encoded.ends)?;
        Ok(encoded)
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    fn item(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Item `i`'s key.
    pub(super) fn key(&self, i: usize) -> Key {
        short(blake3::hash(self.item(i)).as_bytes())
    }

    /// The list cut into chunks: after each item whose bytes say so, and every
    /// [`CHUNK_MAX`] items at most.
    pub(super) fn chunks(&self) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        let (mut first, mut start) = (0, 0);
        for i in 0..self.len() {
            if cuts_after(self.item(i)) || i + 1 - first == CHUNK_MAX || i + 1 == self.len() {
                let end = self.ends[i];
                chunks.push(Chunk {
                    digest: short(blake3::hash(&self.bytes[start..end]).as_bytes()),
                    len: u32::try_from(i + 1 - first).unwrap_or(u32::MAX),
                });
                (first, start) = (i + 1, end);
            }
        }
        chunks
    }
}

/// The first 16 bytes of a digest.
fn short(digest: &[u8; 32]) -> Key {
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Whether a chunk ends after an item with these bytes: about one item in [`CUT_EVERY`],
/// by a quick hash of the bytes that must never change (it decides which chunks the store's
/// index holds).
fn cuts_after(item: &[u8]) -> bool {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ item.len() as u64;
    for word in item.chunks(8) {
        let mut w = [0u8; 8];
        w[..word.len()].copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
    }
    h.is_multiple_of(CUT_EVERY)
}

/// Which items of a list are items of the last list, and every item's key.
pub(super) struct Matched {
    /// For each item, its position in the last list, when it is one of its items (each
    /// position given once).
    pub from_old: Vec<Option<usize>>,
    /// Each item's key.
    pub keys: Vec<Key>,
    /// The list's chunks.
    pub chunks: Vec<Chunk>,
}

/// Matches the items of `list` against the last list's keys and chunks (`old`): first by
/// chunk, then the items of the chunks left over, by key.
pub(super) fn match_items(list: &Encoded, old: Option<(&[Key], &[Chunk])>) -> Matched {
    let n = list.len();
    let chunks = list.chunks();
    let mut from_old = vec![None; n];
    let mut keys = vec![[0u8; 16]; n];
    let Some((old_keys, old_chunks)) = old else {
        for (i, key) in keys.iter_mut().enumerate() {
            *key = list.key(i);
        }
        return Matched {
            from_old,
            keys,
            chunks,
        };
    };
    // Where each of the last list's chunks starts.
    let mut old_at: HashMap<Chunk, usize> = HashMap::with_capacity(old_chunks.len());
    let mut at = 0usize;
    for chunk in old_chunks {
        old_at.entry(*chunk).or_insert(at);
        at += chunk.len as usize;
    }
    let mut taken = vec![false; old_keys.len()];
    let mut left = Vec::new();
    let mut start = 0usize;
    for chunk in &chunks {
        let len = chunk.len as usize;
        match old_at.remove(chunk) {
            Some(o) if o + len <= old_keys.len() => {
                for k in 0..len {
                    from_old[start + k] = Some(o + k);
                    keys[start + k] = old_keys[o + k];
                    taken[o + k] = true;
                }
            }
            _ => left.extend(start..start + len),
        }
        start += len;
    }
    if !left.is_empty() {
        // The last list's items not yet matched, by key.
        let mut by_key: HashMap<Key, usize> = HashMap::new();
        for (p, key) in old_keys.iter().enumerate().filter(|(p, _)| !taken[*p]) {
            by_key.entry(*key).or_insert(p);
        }
        for i in left {
            keys[i] = list.key(i);
            from_old[i] = by_key.remove(&keys[i]);
        }
    }
    Matched {
        from_old,
        keys,
        chunks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(list: &[u64]) -> Encoded {
        Encoded::new(&ItemFns::of::<u64>(), &list.to_vec()).unwrap()
    }

    /// A list of distinct items, out of order.
    fn items(n: u64) -> Vec<u64> {
        (0..n)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect()
    }

    /// Matches `new` against `old` as a rerun does, and checks the result against the
    /// items themselves: every item matched is the same item, each old position is given at
    /// most once, no item is left unmatched while a copy of it is, and every key is the
    /// item's.
    /// Returns how many items were hashed one by one (not matched by chunk).
    fn check(old: &[u64], new: &[u64]) -> usize {
        let last = encoded(old);
        let old_keys: Vec<Key> = (0..old.len()).map(|i| last.key(i)).collect();
        let old_chunks = last.chunks();
        let list = encoded(new);
        let m = match_items(&list, Some((&old_keys, &old_chunks)));
        let mut given = std::collections::HashSet::new();
        for (i, at) in m.from_old.iter().enumerate() {
            assert_eq!(m.keys[i], list.key(i), "the key of item {i}");
            if let Some(p) = at {
                assert_eq!(old[*p], new[i], "item {i} matched to another item");
                assert!(given.insert(*p), "old item {p} given twice");
            }
        }
        // An item left unmatched has no copy in the last list that was not given to another.
        for (i, _) in m.from_old.iter().enumerate().filter(|(_, at)| at.is_none()) {
            let spare = (0..old.len()).find(|p| old[*p] == new[i] && !given.contains(p));
            assert_eq!(spare, None, "item {i} is in the last list, unmatched");
        }
        let by_chunk: usize = {
            let mut at = std::collections::HashMap::new();
            let mut start = 0;
            for c in &old_chunks {
                at.insert(*c, start);
                start += c.len as usize;
            }
            m.chunks
                .iter()
                .filter(|c| at.contains_key(*c))
                .map(|c| c.len as usize)
                .sum()
        };
        new.len() - by_chunk
    }

    #[test]
    fn chunks_cover_the_list_and_are_about_the_size_asked() {
        let list = encoded(&items(100_000));
        let chunks = list.chunks();
        assert_eq!(
            chunks.iter().map(|c| c.len as usize).sum::<usize>(),
            100_000
        );
        let mean = 100_000 / chunks.len();
        assert!((32..=128).contains(&mean), "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.len as usize <= CHUNK_MAX));
        assert!(encoded(&[]).chunks().is_empty());
    }

    #[test]
    fn one_inserted_removed_or_edited_item_changes_only_the_chunks_around_it() {
        let old = items(20_000);
        let mut inserted = old.clone();
        inserted.insert(10_000, 7);
        let mut removed = old.clone();
        removed.remove(10_000);
        let mut edited = old.clone();
        edited[10_000] = 7;
        let mut appended = old[1..].to_vec();
        appended.push(7);
        for new in [inserted, removed, edited, appended] {
            let hashed = check(&old, &new);
            assert!(hashed <= 2 * CHUNK_MAX, "{hashed} items hashed one by one");
            assert!(hashed < 1_000, "{hashed} items hashed one by one");
        }
    }

    #[test]
    fn reordered_duplicated_and_unrelated_lists_match_item_by_item() {
        let old = items(5_000);
        let mut reversed = old.clone();
        reversed.reverse();
        check(&old, &reversed);
        let mut doubled = old.clone();
        doubled.extend_from_slice(&old);
        check(&old, &doubled);
        check(&doubled, &old);
        check(
            &old,
            &items(3_000).iter().map(|x| x ^ 1).collect::<Vec<_>>(),
        );
        check(&old, &[]);
        check(&[], &old);
    }

    #[test]
    fn without_a_last_list_every_item_is_keyed() {
        let list = encoded(&items(1_000));
        let m = match_items(&list, None);
        assert!(m.from_old.iter().all(Option::is_none));
        assert!((0..1_000).all(|i| m.keys[i] == list.key(i)));
    }
}

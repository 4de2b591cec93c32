//! Node ids: the map from a graph's ids to their positions, and the fast hasher it uses.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

/// A graph's node ids with their positions (declaration order): what a
/// [`Store`](crate::Store) needs to hand back a run's records by position.
#[derive(Clone, Default)]
pub struct NodeIds {
    map: HashMap<Arc<str>, usize, BuildHasherDefault<IdHasher>>,
}

impl NodeIds {
    /// The position of node `id`, if the graph has it.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.map.get(id).copied()
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `ids` to look up, each once, at positions from 0 with no gap, and the position of
    /// each of `ids` among them: equal ids (of equal items of a map) share one. Given each
    /// its own, equal ids would leave positions past the end of what a store hands back.
    pub(crate) fn distinct<I: AsRef<str>>(ids: impl IntoIterator<Item = I>) -> (Self, Vec<usize>) {
        let mut distinct = Self::default();
        let at = ids
            .into_iter()
            .map(|id| {
                let next = distinct.map.len();
                *distinct.map.entry(Arc::from(id.as_ref())).or_insert(next)
            })
            .collect();
        (distinct, at)
    }

    /// The map itself, for the graph that fills it.
    pub(crate) fn map_mut(
        &mut self,
    ) -> &mut HashMap<Arc<str>, usize, BuildHasherDefault<IdHasher>> {
        &mut self.map
    }

    /// Every id with its position, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, usize)> {
        self.map.iter().map(|(id, &i)| (&**id, i))
    }
}

impl fmt::Debug for NodeIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIds")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// A fast hash for node ids: a multiply-rotate per eight bytes. Ids come from the program
/// itself, not from an adversary, so SipHash's flood resistance buys nothing here, and graphs
/// of ten thousand nodes hash every id at least twice per run.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl IdHasher {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits: fold the well-mixed high half in.
        self.0 ^ (self.0 >> 29)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_ids_share_a_position_and_positions_leave_no_gap() {
        let (ids, at) = NodeIds::distinct(["a", "b", "a", "c", "b"]);
        assert_eq!(at, [0, 1, 0, 2, 1]);
        assert_eq!(ids.len(), 3);
        for (id, position) in [("a", 0), ("b", 1), ("c", 2)] {
            assert_eq!(ids.position(id), Some(position));
        }
    }
}

//! What a node's output was computed from: digests, the four-part fingerprint, and the
//! hasher that builds its parts.

use serde::{Deserialize, Serialize};

use super::Reason;

/// A 32-byte BLAKE3 digest.
pub type Digest = [u8; 32];

/// Everything a node's output was computed from, in four parts so that a change can be
/// named. Two fingerprints are equal exactly when the node would compute the same thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The task's full path and its code fingerprint (or `version`).
    pub code: Digest,
    /// The output type's shape, as serde sees it.
    pub output_type: Digest,
    /// The constant inputs' postcard bytes, in argument order.
    pub inputs: Digest,
    /// The upstream outputs' digests, in argument order.
    pub upstream: Digest,
}

impl Fingerprint {
    /// One digest of all four parts: equal for equal fingerprints, whatever the graph.
    pub fn key(&self) -> Digest {
        let mut h = blake3::Hasher::new();
        h.update(b"typedag.fingerprint.v1\0");
        for part in [&self.code, &self.output_type, &self.inputs, &self.upstream] {
            h.update(part);
        }
        *h.finalize().as_bytes()
    }

    /// The part that differs first, in the order code, output type, inputs, upstream.
    pub fn change_from(&self, stored: &Fingerprint) -> Option<Reason> {
        if self.code != stored.code {
            Some(Reason::CodeChanged)
        } else if self.output_type != stored.output_type {
            Some(Reason::OutputTypeChanged)
        } else if self.inputs != stored.inputs {
            Some(Reason::InputChanged)
        } else if self.upstream != stored.upstream {
            Some(Reason::UpstreamChanged)
        } else {
            None
        }
    }
}

/// The code part of a fingerprint: the task's full path (`Task::PATH`, not its bare name:
/// two `load`s in different modules with the same tokens are different code) and its code
/// fingerprint.
pub(crate) fn code_part(path: &str, fingerprint: &str) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(b"typedag.code.v1\0");
    h.update(path.as_bytes());
    h.update(b"\0");
    h.update(fingerprint.as_bytes());
    *h.finalize().as_bytes()
}

/// Hashes a sequence of digests, each tagged with its position. Collects the bytes in a
/// buffer the caller keeps between nodes and hashes them once: cheaper than a streaming
/// hasher for a node's few inputs, and nothing is allocated per node.
pub(crate) struct PartHasher<'a>(&'a mut Vec<u8>);

impl<'a> PartHasher<'a> {
    pub(crate) fn new(buf: &'a mut Vec<u8>, tag: &[u8]) -> Self {
        buf.clear();
        buf.extend_from_slice(tag);
        Self(buf)
    }

    pub(crate) fn add(&mut self, position: usize, digest: &Digest) {
        self.0.extend_from_slice(&(position as u64).to_le_bytes());
        self.0.extend_from_slice(digest);
    }

    pub(crate) fn finish(self) -> Digest {
        *blake3::hash(self.0).as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_part_hashes_like_a_short_one_would() {
        let digests: Vec<Digest> = (0..20u8).map(|i| [i; 32]).collect();
        let mut buf = Vec::new();
        let mut long = PartHasher::new(&mut buf, b"tag");
        let mut bytes = b"tag".to_vec();
        for (i, d) in digests.iter().enumerate() {
            long.add(i, d);
            bytes.extend_from_slice(&(i as u64).to_le_bytes());
            bytes.extend_from_slice(d);
        }
        assert_eq!(long.finish(), *blake3::hash(&bytes).as_bytes());
    }

    #[test]
    fn the_first_changed_part_is_named() {
        let base = Fingerprint {
            code: [1; 32],
            output_type: [2; 32],
            inputs: [3; 32],
            upstream: [4; 32],
        };
        assert_eq!(base.change_from(&base), None);
        let mut up = base;
        up.upstream = [0; 32];
        assert_eq!(up.change_from(&base), Some(Reason::UpstreamChanged));
        up.inputs = [0; 32];
        assert_eq!(up.change_from(&base), Some(Reason::InputChanged));
        up.code = [0; 32];
        assert_eq!(up.change_from(&base), Some(Reason::CodeChanged));
    }
}

//! The cache semantics: what a node's fingerprint is made of, when a stored record still
//! answers for it, and why a node runs when it does not.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, OnceLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A 32-byte BLAKE3 digest.
pub type Digest = [u8; 32];

/// Everything a node's output was computed from, in four parts so that a change can be
/// named. Two fingerprints are equal exactly when the node would compute the same thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The task's name and its code fingerprint (or `version`).
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

    /// The whole fingerprint as one digest, for display.
    pub fn digest(&self) -> Digest {
        let mut h = blake3::Hasher::new();
        h.update(&self.code);
        h.update(&self.output_type);
        h.update(&self.inputs);
        h.update(&self.upstream);
        *h.finalize().as_bytes()
    }
}

/// Why a node runs instead of being loaded from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Reason {
    /// The store has no record of it.
    NeverRan,
    /// A constant input has other bytes than last time.
    InputChanged,
    /// The task's code (or its `version`) changed.
    CodeChanged,
    /// An upstream output has other bytes than last time.
    UpstreamChanged,
    /// The output type's shape changed, so the stored bytes no longer fit it.
    OutputTypeChanged,
    /// The task has `cache = false`: it runs every time.
    CachingOff,
    /// An upstream task has `cache = false`, so its output has no digest to compare.
    UpstreamNotCached,
    /// It failed last time; failures are retried on the next run.
    FailedBefore,
    /// Its stored record could not be read (damaged); it is computed again.
    RecordDamaged,
    /// The runner has no store.
    NoStore,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::NeverRan => "never ran",
            Reason::InputChanged => "input changed",
            Reason::CodeChanged => "code changed",
            Reason::UpstreamChanged => "upstream changed",
            Reason::OutputTypeChanged => "output type changed",
            Reason::CachingOff => "caching off",
            Reason::UpstreamNotCached => "an upstream task is not cached",
            Reason::FailedBefore => "failed last time",
            Reason::RecordDamaged => "stored record damaged",
            Reason::NoStore => "no store",
        })
    }
}

/// The code part of a fingerprint: the task's name and its code fingerprint.
pub(crate) fn code_part(task: &str, fingerprint: &str) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(b"typedag.code.v1\0");
    h.update(task.as_bytes());
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

/// The shape of `T` as serde sees it (field names and order, variants, element types), so
/// that a changed output type invalidates its records instead of decoding them wrongly.
///
/// Traced once per type and remembered. Types that serde cannot trace without data (those
/// that deserialize through `deserialize_any`, say) fall back to the type's name, and a
/// record that then fails to decode is computed again.
pub(crate) fn type_digest<T: DeserializeOwned + 'static>() -> Digest {
    static SEEN: OnceLock<Mutex<HashMap<TypeId, Digest>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let id = TypeId::of::<T>();
    if let Some(d) = seen.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return *d;
    }
    let digest = trace::<T>();
    seen.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, digest);
    digest
}

fn trace<T: DeserializeOwned>() -> Digest {
    use serde_reflection::{FormatHolder, Samples, Tracer, TracerConfig};
    let mut h = blake3::Hasher::new();
    h.update(b"typedag.type.v1\0");
    h.update(std::any::type_name::<T>().as_bytes());
    let traced = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let samples = Samples::new();
        let mut tracer = Tracer::new(TracerConfig::default());
        let (mut format, _) = tracer.trace_type::<T>(&samples).ok()?;
        let _ = format.normalize();
        let registry = tracer.registry().ok()?;
        postcard::to_allocvec(&(format, registry)).ok()
    }));
    if let Ok(Some(shape)) = traced {
        h.update(b"\0shape\0");
        h.update(&shape);
    }
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct A {
        x: u32,
        y: u32,
    }

    mod other {
        #[derive(serde::Serialize, serde::Deserialize)]
        pub struct A {
            pub y: u32,
            pub x: u32,
        }
    }

    #[derive(Serialize, Deserialize)]
    enum E {
        One(u8),
        Two { s: String },
    }

    #[test]
    fn a_type_digest_follows_the_shape() {
        assert_eq!(type_digest::<A>(), type_digest::<A>());
        assert_ne!(type_digest::<A>(), type_digest::<other::A>());
        assert_ne!(type_digest::<u32>(), type_digest::<u64>());
        assert_ne!(type_digest::<Vec<u8>>(), type_digest::<Vec<u16>>());
        assert_ne!(type_digest::<E>(), type_digest::<A>());
    }

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

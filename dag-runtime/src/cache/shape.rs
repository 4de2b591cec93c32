//! The shape of an output type as serde sees it, digested: a changed type invalidates its
//! records instead of decoding them wrongly.

use std::any::TypeId;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, OnceLock};

use serde::de::DeserializeOwned;

use super::Digest;

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
    use serde::{Deserialize, Serialize};

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
}

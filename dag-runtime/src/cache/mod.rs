//! The cache semantics, one part per file:
//!
//! - [`fingerprint`]: digests and the four-part fingerprint of what a node computed from;
//! - [`shape`]: the digest of an output type's shape;
//! - [`reason`]: the words for why a node runs;
//! - [`verdict`]: when a stored record still answers for a node.
//!
//! A leaf: it knows nothing of graphs, runners or stores.

mod fingerprint;
mod reason;
mod shape;
mod verdict;

pub use self::fingerprint::{Digest, Fingerprint};
pub(crate) use self::fingerprint::{PartHasher, code_part};
pub use self::reason::Reason;
pub(crate) use self::shape::type_digest;
pub use self::verdict::Stamp;
pub(crate) use self::verdict::{
    FixedParts, InputDigest, Upstream, Verdict, upstream_part, verdict,
};

//! The verdict: whether a stored record still answers for a node, and if not, why it runs.

use super::{Digest, Fingerprint, PartHasher, Reason};

/// What a run needs of one node's record to tell whether it still answers for the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// It completed: what it was computed from and its output's digest.
    Done {
        /// What the output was computed from.
        fingerprint: Fingerprint,
        /// BLAKE3 of the output's bytes.
        digest: Digest,
    },
    /// It failed for good.
    Failed {
        /// What it was computed from.
        fingerprint: Fingerprint,
    },
    /// The record could not be read.
    Damaged,
}

/// The parts of a node's fingerprint fixed before the run starts: everything but the
/// upstream outputs' digests.
#[derive(Clone, Copy)]
pub(crate) struct FixedParts {
    pub code: Digest,
    pub output_type: Digest,
    pub inputs: Digest,
    /// `cache = false`: the node runs every time; its output is digested, not stored.
    pub always: bool,
}

/// What is known of one upstream output's digest.
pub(crate) enum InputDigest<'a> {
    Known(&'a Digest),
    /// A task with `cache = false`, or a node that did not complete.
    Missing,
    /// Not known before the run: the node with this id runs first.
    Pending(&'a str),
}

/// The upstream part of a node's fingerprint, as far as it can be known.
pub(crate) enum Upstream {
    Known(Digest),
    /// An upstream output has no digest: the node must run.
    NotCached,
    /// Known only once this upstream node has run again.
    Pending(String),
}

/// Hashes the digests of a node's upstream outputs, each with the parameter that reads it,
/// in argument order. `buf` is scratch space kept between nodes.
pub(crate) fn upstream_part<'a>(
    inputs: impl Iterator<Item = (usize, InputDigest<'a>)>,
    buf: &mut Vec<u8>,
) -> Upstream {
    let mut h = PartHasher::new(buf, b"typedag.upstream.v1\0");
    let mut pending = None;
    for (param, input) in inputs {
        match input {
            InputDigest::Missing => return Upstream::NotCached,
            InputDigest::Pending(on) => {
                pending.get_or_insert(on);
            }
            InputDigest::Known(d) => h.add(param, d),
        }
    }
    match pending {
        Some(on) => Upstream::Pending(on.to_owned()),
        None => Upstream::Known(h.finish()),
    }
}

#[allow(
    clippy::large_enum_variant,
    reason = "short-lived, never stored in bulk"
)]
pub(crate) enum Verdict {
    /// The stored output answers: load it, with this digest.
    Cached(Digest),
    /// Run it, for this reason; record it under this fingerprint (`None`: nothing to record).
    Run(Reason, Option<Fingerprint>),
    /// Cached unless this upstream node's output changes (only before a run).
    Waits(String),
}

/// Compares what a node would compute from with what the store recorded.
pub(crate) fn verdict(
    parts: Option<&FixedParts>,
    stamp: Option<&Stamp>,
    upstream: Upstream,
) -> Verdict {
    let Some(parts) = parts else {
        return Verdict::Run(Reason::CachingOff, None);
    };
    let (digest, pending, not_cached) = match upstream {
        Upstream::Known(d) => (d, None, false),
        Upstream::NotCached => ([0; 32], None, true),
        Upstream::Pending(on) => ([0; 32], Some(on), false),
    };
    let fingerprint = Fingerprint {
        code: parts.code,
        output_type: parts.output_type,
        inputs: parts.inputs,
        upstream: digest,
    };
    if parts.always {
        return Verdict::Run(Reason::CachingOff, Some(fingerprint));
    }
    if not_cached {
        return Verdict::Run(Reason::UpstreamNotCached, Some(fingerprint));
    }
    let (stored, output) = match stamp {
        None => return Verdict::Run(Reason::NeverRan, Some(fingerprint)),
        Some(Stamp::Damaged) => return Verdict::Run(Reason::RecordDamaged, Some(fingerprint)),
        Some(Stamp::Done {
            fingerprint,
            digest,
        }) => (fingerprint, Some(digest)),
        Some(Stamp::Failed { fingerprint }) => (fingerprint, None),
    };
    let own = Fingerprint {
        upstream: stored.upstream,
        ..fingerprint
    };
    if let Some(reason) = own.change_from(stored) {
        return Verdict::Run(reason, Some(fingerprint));
    }
    let Some(output) = output else {
        return Verdict::Run(Reason::FailedBefore, Some(fingerprint));
    };
    if let Some(on) = pending {
        return Verdict::Waits(on);
    }
    if fingerprint.upstream != stored.upstream {
        return Verdict::Run(Reason::UpstreamChanged, Some(fingerprint));
    }
    Verdict::Cached(*output)
}

//! A record's bytes: fixed-width fields first, so that reading ten thousand of them at the
//! start of a run costs little.

use super::record::{Record, RecordState, Stamp};
use crate::cache::{Digest, Fingerprint, Reason};

const REASONS: [Reason; 10] = [
    Reason::NeverRan,
    Reason::InputChanged,
    Reason::CodeChanged,
    Reason::UpstreamChanged,
    Reason::OutputTypeChanged,
    Reason::CachingOff,
    Reason::UpstreamNotCached,
    Reason::FailedBefore,
    Reason::RecordDamaged,
    Reason::NoStore,
];

pub(super) fn encode(r: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(224 + r.task.len());
    for part in [
        &r.fingerprint.code,
        &r.fingerprint.output_type,
        &r.fingerprint.inputs,
        &r.fingerprint.upstream,
    ] {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&r.finished_ms.to_le_bytes());
    out.extend_from_slice(&r.duration_us.to_le_bytes());
    out.extend_from_slice(&r.attempts.to_le_bytes());
    let reason = REASONS.iter().position(|x| *x == r.reason).unwrap_or(0);
    out.push(u8::try_from(reason).unwrap_or(0));
    put_str(&mut out, &r.task);
    match &r.state {
        RecordState::Done { digest, size } => {
            out.push(0);
            out.extend_from_slice(digest);
            out.extend_from_slice(&size.to_le_bytes());
        }
        RecordState::Failed { error } => {
            out.push(1);
            put_str(&mut out, error);
        }
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn digest(&mut self) -> Option<Digest> {
        self.take(32)?.try_into().ok()
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.str_bytes()?.to_vec()).ok()
    }
    fn str_bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        self.take(len)
    }
    fn fingerprint(&mut self) -> Option<Fingerprint> {
        Some(Fingerprint {
            code: self.digest()?,
            output_type: self.digest()?,
            inputs: self.digest()?,
            upstream: self.digest()?,
        })
    }
}

/// The stamp of a record's bytes, without allocating.
pub(super) fn decode_stamp(bytes: &[u8]) -> Option<Stamp> {
    let mut r = Reader(bytes);
    let fingerprint = r.fingerprint()?;
    // finished_ms, duration_us, attempts, reason, task
    r.take(8 + 8 + 4 + 1)?;
    r.str_bytes()?;
    match r.take(1)?[0] {
        0 => {
            let digest = r.digest()?;
            r.u64()?;
            r.0.is_empty().then_some(Stamp::Done {
                fingerprint,
                digest,
            })
        }
        1 => {
            r.str_bytes()?;
            r.0.is_empty().then_some(Stamp::Failed { fingerprint })
        }
        _ => None,
    }
}

pub(super) fn decode(bytes: &[u8]) -> Option<Record> {
    let mut r = Reader(bytes);
    let fingerprint = r.fingerprint()?;
    let finished_ms = r.u64()?;
    let duration_us = r.u64()?;
    let attempts = r.u32()?;
    let reason = *REASONS.get(usize::from(r.take(1)?[0]))?;
    let task = r.string()?;
    let state = match r.take(1)?[0] {
        0 => RecordState::Done {
            digest: r.digest()?,
            size: r.u64()?,
        },
        1 => RecordState::Failed { error: r.string()? },
        _ => return None,
    };
    r.0.is_empty().then_some(Record {
        task,
        fingerprint,
        state,
        finished_ms,
        duration_us,
        attempts,
        reason,
    })
}

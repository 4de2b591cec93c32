//! What a store keeps about one node ([`Record`]), and what a run reads back of it
//! ([`Loaded`], and the [`Stamp`] the cache reads).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use crate::cache::Stamp;
use crate::cache::{Digest, Fingerprint, Reason};

/// What a store keeps about one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The task's name.
    pub task: String,
    /// What the output was computed from.
    pub fingerprint: Fingerprint,
    /// The output's digest and size, or the failure.
    pub state: RecordState,
    /// When it finished, in milliseconds since the Unix epoch.
    pub finished_ms: u64,
    /// How long it took, in microseconds, retries included.
    pub duration_us: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Why it ran.
    pub reason: Reason,
}

/// How a node's last run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordState {
    /// It completed: its output is stored.
    Done {
        /// BLAKE3 of the output's postcard bytes.
        digest: Digest,
        /// Their length.
        size: u64,
    },
    /// It failed for good.
    Failed {
        /// The last attempt's error.
        error: String,
    },
}

impl Record {
    pub(crate) fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// How long ago it finished.
    pub fn age(&self) -> Duration {
        Duration::from_millis(Self::now_ms().saturating_sub(self.finished_ms))
    }

    /// What a run needs of it.
    pub fn stamp(&self) -> Stamp {
        match &self.state {
            RecordState::Done { digest, .. } => Stamp::Done {
                fingerprint: self.fingerprint,
                digest: *digest,
            },
            RecordState::Failed { .. } => Stamp::Failed {
                fingerprint: self.fingerprint,
            },
        }
    }

    /// The output digest, if it completed.
    pub fn digest(&self) -> Option<&Digest> {
        match &self.state {
            RecordState::Done { digest, .. } => Some(digest),
            RecordState::Failed { .. } => None,
        }
    }
}

/// One record as read back: whole, or damaged (its checksum or format did not match).
#[derive(Clone, Debug)]
pub enum Loaded {
    /// The record, verified.
    Record(Record),
    /// The record could not be read; the node is computed again.
    Damaged(String),
}

impl Loaded {
    /// What a run needs of it.
    pub fn stamp(&self) -> Stamp {
        match self {
            Loaded::Record(r) => r.stamp(),
            Loaded::Damaged(_) => Stamp::Damaged,
        }
    }
}

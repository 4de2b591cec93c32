//! The words for why a node runs: the same in events, reports, `Runner::explain` and the
//! `typedag` command.

use std::fmt;

use serde::{Deserialize, Serialize};

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

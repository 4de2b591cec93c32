//! How a distributed map node's items ended, read from their rows: the counts every
//! process reports, the failed items and those the run stopped before, and the node's
//! duration, the wall span of its items.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::distributed::SharedOutcome;
use crate::failure::Failure;
use crate::report::Items;
use crate::store::shared::{ItemRow, RowState};

/// What became of a map node's items, as every process's report reads it.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub(super) struct SharedItems {
    pub(super) total: u64,
    pub(super) ran: u64,
    pub(super) cached: u64,
    pub(super) failed: u64,
}

impl From<SharedItems> for Items {
    fn from(s: SharedItems) -> Items {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Items {
            total: n(s.total),
            ran: n(s.ran),
            cached: n(s.cached),
            failed: n(s.failed),
        }
    }
}

/// How each item of a map node ended, as its row says.
pub(super) struct Gathered {
    pub(super) rows: Vec<ItemRow>,
    pub(super) items: SharedItems,
    /// The wall span of the items that ran: the map node's duration.
    pub(super) duration: Duration,
    /// The failed items: position and the failure that counted.
    pub(super) failed: Vec<(usize, Failure)>,
    /// How many items had not ended: the run stopped before they started.
    pub(super) unstarted: usize,
}

/// Reads the ends of every item of a map node, counting them.
pub(super) fn tally(rows: Vec<ItemRow>) -> Gathered {
    let mut items = SharedItems {
        total: rows.len() as u64,
        ..SharedItems::default()
    };
    let mut span = Span::default();
    let mut failed = Vec::new();
    let mut unstarted = 0;
    for row in &rows {
        if matches!(
            row.state,
            Some(RowState::Waiting | RowState::Ready | RowState::Claimed)
        ) {
            unstarted += 1;
            continue;
        }
        let outcome = row
            .outcome
            .as_deref()
            .and_then(|b| postcard::from_bytes::<SharedOutcome>(b).ok());
        match outcome {
            Some(SharedOutcome::Cached) => items.cached += 1,
            Some(SharedOutcome::Ran { duration_us, .. }) => {
                items.ran += 1;
                span.add(row.claimed_us, duration_us);
            }
            Some(SharedOutcome::Failed { attempts }) => {
                items.ran += 1;
                let failure = attempts
                    .into_iter()
                    .last()
                    .unwrap_or_else(|| Failure::fatal("no attempt recorded".into()));
                failed.push((row.position as usize, failure));
            }
            _ if row.state == Some(RowState::Failed) => {
                failed.push((
                    row.position as usize,
                    Failure::fatal("its outcome could not be read".into()),
                ));
            }
            _ => {}
        }
    }
    items.failed = failed.len() as u64;
    Gathered {
        rows,
        items,
        duration: span.wall(),
        failed,
        unstarted,
    }
}

/// The wall span of a map node's items, as a local map's duration is the wall time of its
/// items: from the first one's start to the last one's end, whichever processes ran them
/// side by side. Each starts when it was claimed, by the store's clock (one for every
/// process), and ends its own time at work later; the span is at least the longest item's
/// time, should a row not say when it was claimed.
#[derive(Default)]
struct Span {
    /// The first start and the last end, in microseconds since the Unix epoch.
    bounds: Option<(u64, u64)>,
    longest: u64,
}

impl Span {
    fn add(&mut self, claimed_us: Option<u64>, duration_us: u64) {
        self.longest = self.longest.max(duration_us);
        if let Some(start) = claimed_us {
            let end = start.saturating_add(duration_us);
            self.bounds = Some(match self.bounds {
                Some((first, last)) => (first.min(start), last.max(end)),
                None => (start, end),
            });
        }
    }

    fn wall(&self) -> Duration {
        let span = self.bounds.map_or(0, |(first, last)| last - first);
        Duration::from_micros(span.max(self.longest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Reason;

    fn ran(position: u32, claimed_us: Option<u64>, duration_us: u64) -> ItemRow {
        let outcome = SharedOutcome::Ran {
            attempts: 1,
            duration_us,
            reason: Reason::NeverRan,
        };
        ItemRow {
            position,
            key: [0; 16],
            state: Some(RowState::Done),
            digest: Some([0; 32]),
            outcome: Some(outcome.encode()),
            claimed_us,
        }
    }

    #[test]
    fn a_maps_duration_is_the_wall_span_of_its_items() {
        let ms = |n: u64| n * 1000;
        // Two items side by side, a third after the first: 50 + 50 + 30 ms at work, over
        // 80 ms.
        let rows = vec![
            ran(0, Some(ms(1_000)), ms(50)),
            ran(1, Some(ms(1_010)), ms(50)),
            ran(2, Some(ms(1_050)), ms(30)),
        ];
        assert_eq!(tally(rows).duration, Duration::from_millis(80));
        // A cached item adds no time; a row that does not say when it was claimed, at least
        // its own.
        let mut cached = ran(1, None, 0);
        cached.outcome = Some(SharedOutcome::Cached.encode());
        let rows = vec![
            ran(0, Some(ms(1_000)), ms(20)),
            cached,
            ran(2, None, ms(70)),
        ];
        assert_eq!(tally(rows).duration, Duration::from_millis(70));
        assert_eq!(tally(Vec::new()).duration, Duration::ZERO);
    }
}

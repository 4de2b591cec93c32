//! SQL text that names row states: each state's number comes from [`RowState`], the one
//! place it is written, filled in where the text says `{Waiting}`, `{Ready}` and so on.
//! Filled in once per process, not bound as parameters: the partial indexes on ready and
//! claimed nodes serve only statements whose state is a constant.

use crate::store::shared::RowState;

/// `text` with each `{State}` replaced by that state's number.
pub(super) fn fill(text: &str) -> String {
    let mut out = text.to_owned();
    for state in RowState::ALL {
        out = out.replace(&format!("{{{state:?}}}"), &state.number().to_string());
    }
    out
}

/// A statement naming row states, filled in once: `sql!("… WHERE state = {Ready}")` is a
/// `&'static str`, so that a connection prepares it once too.
macro_rules! sql {
    ($text:expr) => {{
        static TEXT: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| $crate::store::postgres::sql::fill($text));
        TEXT.as_str()
    }};
}
pub(super) use sql;

/// A condition, true while run `r` (a `typedag_runs` row) is still going: a row of it is
/// claimed, or a row that has not ended may yet start or end. In a run that is not stopping
/// that is any waiting or ready row (its processes may come back under its name and go on).
/// In a stopping run nothing new starts, so rows that never started stay waiting or ready
/// for good; only an expanded map node not yet gathered will still end, as the run's
/// processes wait for it before they end. The one rule for which runs may be dropped.
macro_rules! still_going {
    () => {
        "EXISTS (SELECT 1 FROM typedag_nodes g
                 WHERE g.run = r.run
                   AND (g.state = {Claimed}
                        OR g.state IN ({Waiting}, {Ready})
                           AND (NOT r.stopping OR g.parent IS NULL AND g.items IS NOT NULL)))"
    };
}
pub(super) use still_going;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_filled_in() {
        let text = "IN ({Waiting}, {Ready}, {Claimed}) {Done} {Failed} {Skipped} '{}'";
        assert_eq!(fill(text), "IN (0, 1, 2) 3 4 5 '{}'");
        for state in RowState::ALL {
            assert_eq!(RowState::from_number(state.number()), Some(state));
        }
        assert_eq!(RowState::from_number(6), None);
    }
}

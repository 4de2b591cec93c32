//! The one duration syntax of typedag: a number and a unit, like `500ms`, `1.5s`, `2m`, `7d`.
//!
//! `#[task(timeout = "30s")]`, `TYPEDAG_TIMEOUT` and `typedag gc --older-than` all read
//! durations with [`parse`], so the same text means the same time everywhere and every
//! message names the same units ([`EXPECTED`]).

use std::fmt;
use std::time::Duration;

/// What a duration looks like, for messages: "expected {EXPECTED}".
pub const EXPECTED: &str = "a number and a unit, like 500ms, 30s, 2m, 1h or 7d (units: ns, us or µs, ms, s, m or min, h, d)";

/// Each unit with its length in nanoseconds.
const UNITS: [(&str, u128); 9] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("min", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// A text that is not a duration; its message quotes the text and says what is expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    text: String,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{:?}` is not a duration: expected {EXPECTED}",
            self.text
        )
    }
}

impl std::error::Error for DurationError {}

/// Reads one number (whole or decimal) and one unit, with optional spaces around and between
/// them, exactly: no rounding beyond the nanosecond, no overflow.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(dag_duration::parse("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(dag_duration::parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
/// assert!(dag_duration::parse("30").is_err());
/// ```
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    nanos(text)
        .and_then(|n| {
            let secs = u64::try_from(n / 1_000_000_000).ok()?;
            Some(Duration::new(secs, (n % 1_000_000_000) as u32))
        })
        .ok_or_else(|| DurationError {
            text: text.to_owned(),
        })
}

fn nanos(text: &str) -> Option<u128> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    let scale = UNITS.iter().find(|(name, _)| *name == unit)?.1;
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(scale)?;
    if !frac.is_empty() {
        let digits = u32::try_from(frac.len()).ok()?;
        let frac: u128 = frac.parse().ok()?;
        nanos = nanos.checked_add(frac.checked_mul(scale)? / 10u128.checked_pow(digits)?)?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_reads() {
        for (text, want) in [
            ("30s", Duration::from_secs(30)),
            ("1.5s", Duration::from_millis(1500)),
            ("100ms", Duration::from_millis(100)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            ("2m", Duration::from_secs(120)),
            ("2min", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("7d", Duration::from_secs(7 * 86_400)),
            (" 12 h ", Duration::from_secs(12 * 3600)),
            (".5s", Duration::from_millis(500)),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_text_and_the_units() {
        for text in [
            "30",
            "s",
            ".s",
            "3 weeks",
            "-1s",
            "1.2.3s",
            "",
            "99999999999999999999999d",
        ] {
            let e = parse(text).expect_err(text);
            let message = e.to_string();
            assert!(message.contains(&format!("{text:?}")), "{message}");
            assert!(message.ends_with(EXPECTED), "{message}");
        }
    }
}

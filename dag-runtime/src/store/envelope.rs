//! Our own envelope around every stored value: a format tag, the body, and a checksum, so
//! that a damaged or foreign value is detected on every read.

use super::layout;
use super::record::{Record, Stamp};

const TAG: &[u8; 4] = b"TDv1";
/// The tag of a record that carries its output ([`seal_record_with`]).
const INLINE: &[u8; 4] = b"TDr1";
/// CRC-32 of the body: catches damage cheaply; outputs are also checked against their
/// BLAKE3 digest.
const SUM: usize = 4;

pub(crate) fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TAG.len() + body.len() + SUM);
    out.extend_from_slice(TAG);
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out
}

pub(crate) fn open(value: &[u8]) -> Result<&[u8], String> {
    if value.len() < TAG.len() + SUM {
        return Err(format!("value too short ({} bytes)", value.len()));
    }
    if &value[..TAG.len()] != TAG {
        return Err("unknown value format".to_owned());
    }
    checked(&value[TAG.len()..])
}

/// A body followed by its CRC-32: the body, if the sum matches.
fn checked(summed: &[u8]) -> Result<&[u8], String> {
    let (body, sum) = summed.split_at(summed.len() - SUM);
    if crc32fast::hash(body).to_le_bytes() != sum {
        return Err("checksum mismatch".to_owned());
    }
    Ok(body)
}

pub(crate) fn seal_record(record: &Record) -> Vec<u8> {
    seal(&layout::encode(record))
}

/// A record followed by its output's bytes, in one value: small outputs live with their
/// record, one write instead of two. The output is checked against the record's digest
/// when read, so the checksum covers only the record.
pub(crate) fn seal_record_with(record: &Record, output: &[u8]) -> Vec<u8> {
    let body = layout::encode(record);
    let mut out = Vec::with_capacity(TAG.len() + 4 + body.len() + SUM + output.len());
    out.extend_from_slice(INLINE);
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(output);
    out
}

/// Splits a value into its sealed record and the output bytes after it, if it holds
/// them ([`seal_record_with`]); a plain sealed record has none.
pub(crate) fn split_record(value: &[u8]) -> (&[u8], Option<&[u8]>) {
    if value.len() >= TAG.len() + 4 && &value[..TAG.len()] == INLINE {
        let len = u32::from_le_bytes(value[4..8].try_into().unwrap_or([0; 4])) as usize;
        let end = (8 + len + SUM).min(value.len());
        return (&value[..end], Some(&value[end..]));
    }
    (value, None)
}

/// The checked record bytes of a value written by [`seal_record`] or
/// [`seal_record_with`].
fn record_body(value: &[u8]) -> Result<&[u8], String> {
    match split_record(value) {
        (sealed, Some(_)) if sealed.len() < 8 + SUM => {
            Err(format!("value too short ({} bytes)", value.len()))
        }
        (sealed, Some(_)) => checked(&sealed[8..]),
        (sealed, None) => open(sealed),
    }
}

/// The stamp of a value written by [`seal_record`] or [`seal_record_with`], checked
/// like [`open_any_record`] but without building the whole record.
pub(crate) fn open_stamp(value: &[u8]) -> Stamp {
    record_body(value)
        .ok()
        .and_then(layout::decode_stamp)
        .unwrap_or(Stamp::Damaged)
}

/// Opens a value written by [`seal_record`] or [`seal_record_with`].
pub(crate) fn open_any_record(value: &[u8]) -> Result<Record, String> {
    layout::decode(record_body(value)?).ok_or_else(|| "record unreadable".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::RecordState;

    /// A record of a completed node.
    fn sample() -> Record {
        use crate::cache::{Fingerprint, Reason};
        Record {
            task: "parse".into(),
            fingerprint: Fingerprint {
                code: [1; 32],
                output_type: [2; 32],
                inputs: [3; 32],
                upstream: [4; 32],
            },
            state: RecordState::Done {
                digest: [5; 32],
                size: 1024,
            },
            finished_ms: 1_700_000_000_000,
            duration_us: 1234,
            attempts: 2,
            reason: Reason::UpstreamChanged,
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        use crate::cache::Reason;
        let mut record = sample();
        let back = open_any_record(&seal_record(&record)).unwrap();
        assert_eq!(back, record);
        record.state = RecordState::Failed {
            error: "the disk is full".into(),
        };
        record.reason = Reason::NoStore;
        let back = open_any_record(&seal_record(&record)).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn a_stamp_reads_what_the_record_says_and_damage_is_caught() {
        let mut record = sample();
        for _ in 0..2 {
            for value in [seal_record(&record), seal_record_with(&record, b"abc")] {
                assert_eq!(open_stamp(&value), record.stamp());
                let record_part = split_record(&value).0.len();
                for i in 0..record_part {
                    let mut bad = value.clone();
                    bad[i] ^= 0x10;
                    assert_eq!(open_stamp(&bad), Stamp::Damaged, "flip at {i}");
                }
            }
            record.state = RecordState::Failed {
                error: "no space".into(),
            };
        }
    }

    #[test]
    fn a_record_with_its_output_reads_back_and_damage_is_caught() {
        let record = sample();
        let value = seal_record_with(&record, b"abc");
        assert_eq!(open_any_record(&value).unwrap(), record);
        assert_eq!(split_record(&value).1, Some(&b"abc"[..]));
        let plain = seal_record(&record);
        assert_eq!(open_any_record(&plain).unwrap(), record);
        assert_eq!(split_record(&plain).1, None);
        // Damage in the record is caught by its checksum; in the output, the caller's
        // digest check catches it.
        for i in 0..value.len() - 3 {
            let mut bad = value.clone();
            bad[i] ^= 0x10;
            assert!(open_any_record(&bad).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn a_flipped_bit_is_caught() {
        let sealed = seal(b"hello");
        assert_eq!(open(&sealed).unwrap(), b"hello");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x10;
            assert!(open(&bad).is_err(), "flip at {i}");
        }
        assert!(open(b"TDv1").is_err());
    }
}

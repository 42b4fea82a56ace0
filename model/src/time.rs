//! Strict RFC 3339 timestamps: `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)`, stored as UTC
//! milliseconds with finer digits truncated.

use chrono::{DateTime, NaiveDate, SecondsFormat};

/// A parsed `event_time`: UTC milliseconds since the epoch, and the nanoseconds below the
/// millisecond that storage truncates (kept so that range checks are exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTime {
    pub millis: i64,
    pub sub_milli_nanos: u32,
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    s.iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

fn expect(b: &[u8], at: usize, allowed: &[u8], what: &str) -> Result<(), String> {
    match b.get(at) {
        Some(c) if allowed.contains(c) => Ok(()),
        _ => Err(format!("expected {what} at position {}", at + 1)),
    }
}

/// A timestamp that is not strict RFC 3339: the message says which part is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeError(String);

/// Parses an RFC 3339 date-time. `T` and `Z` may be lower case (RFC 3339 5.6); a space for `T`,
/// a missing offset, more than 9 fraction digits, out-of-range fields and leap seconds (`:60`)
/// are rejected with a message saying which part is wrong.
pub fn parse_rfc3339(s: &str) -> Result<EventTime, TimeError> {
    parse(s).map_err(TimeError)
}

fn parse(s: &str) -> Result<EventTime, String> {
    let b = s.as_bytes();
    let num = |at, n, what: &str| digits(b, at, n).ok_or_else(|| format!("expected {what} at position {}", at + 1));
    let year = num(0, 4, "a 4-digit year")?;
    expect(b, 4, b"-", "'-'")?;
    let month = num(5, 2, "a 2-digit month")?;
    expect(b, 7, b"-", "'-'")?;
    let day = num(8, 2, "a 2-digit day")?;
    expect(b, 10, b"Tt", "'T' between date and time")?;
    let hour = num(11, 2, "a 2-digit hour")?;
    expect(b, 13, b":", "':'")?;
    let minute = num(14, 2, "2-digit minutes")?;
    expect(b, 16, b":", "':'")?;
    let second = num(17, 2, "2-digit seconds")?;
    let mut at = 19;
    let mut nanos: u32 = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let n = at - start;
        if n == 0 {
            return Err("expected fraction digits after '.'".into());
        }
        if n > 9 {
            return Err(format!("fraction has {n} digits, at most 9 are allowed"));
        }
        nanos = digits(b, start, n).unwrap_or(0) * 10u32.pow(9 - n as u32);
    }
    let offset_secs: i64 = match b.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = num(at + 1, 2, "a 2-digit offset hour")?;
            expect(b, at + 3, b":", "':' in the offset")?;
            let om = num(at + 4, 2, "2-digit offset minutes")?;
            if oh > 23 || om > 59 {
                return Err(format!("offset {} is out of range", &s[at..at + 6]));
            }
            at += 6;
            let v = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return Err("expected 'Z' or a numeric offset like +01:00 after the time".into()),
    };
    if at != b.len() {
        return Err(format!("unexpected text after the offset at position {}", at + 1));
    }
    if hour > 23 || minute > 59 {
        return Err(format!("time {:02}:{:02} is out of range", hour, minute));
    }
    if second > 59 {
        return Err("seconds must be 00-59 (leap seconds are not accepted)".into());
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or_else(|| format!("{year:04}-{month:02}-{day:02} is not a calendar date"))?;
    let local =
        date.and_hms_opt(hour, minute, second).ok_or_else(|| "time is out of range".to_string())?.and_utc().timestamp();
    let secs = local - offset_secs;
    Ok(EventTime { millis: secs * 1000 + i64::from(nanos / 1_000_000), sub_milli_nanos: nanos % 1_000_000 })
}

/// A minute, in milliseconds: the aggregates' window.
pub const MINUTE_MS: i64 = 60_000;

/// The wall clock in UTC milliseconds since the epoch: arrival times, ages and latencies of the
/// local pipeline, the processor's EMF timestamps and the local Runtime API's deadlines.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `2026-11-23T12:02:10.123Z` for UTC milliseconds (for messages and generated events).
pub fn format_millis(ms: i64) -> String {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("{ms} ms since the epoch"),
    }
}

/// The start of the UTC minute holding `ms`.
pub fn floor_to_minute(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        parse_rfc3339(s).unwrap().millis
    }

    #[test]
    fn offsets_are_converted_to_utc_and_fractions_truncated() {
        assert_eq!(format_millis(ms("2026-11-23T13:02:10.123456789+01:00")), "2026-11-23T12:02:10.123Z");
        assert_eq!(format_millis(ms("2026-11-23T07:07:00-05:00")), "2026-11-23T12:07:00.000Z");
        assert_eq!(format_millis(ms("2026-11-23T12:00:20.25Z")), "2026-11-23T12:00:20.250Z");
        assert_eq!(format_millis(ms("2026-11-23t12:00:00.9999z")), "2026-11-23T12:00:00.999Z");
        assert_eq!(format_millis(ms("2026-11-24T05:29:00+14:00")), "2026-11-23T15:29:00.000Z");
        assert_eq!(format_millis(ms("2026-01-01T00:30:00+01:00")), "2025-12-31T23:30:00.000Z");
        assert_eq!(format_millis(ms("2026-11-23T12:00:00-00:00")), "2026-11-23T12:00:00.000Z");
        let t = parse_rfc3339("2026-11-23T12:00:00.000000001Z").unwrap();
        assert_eq!(t.sub_milli_nanos, 1);
    }

    #[test]
    fn leap_days_exist_only_in_leap_years() {
        assert_eq!(format_millis(ms("2028-02-29T10:00:00Z")), "2028-02-29T10:00:00.000Z");
        assert_eq!(format_millis(ms("2000-02-29T00:00:00Z")), "2000-02-29T00:00:00.000Z");
        assert!(parse_rfc3339("2026-02-29T10:00:00Z").unwrap_err().to_string().contains("not a calendar date"));
        assert!(parse_rfc3339("2100-02-29T10:00:00Z").is_err());
    }

    #[test]
    fn malformed_timestamps_are_rejected() {
        for bad in [
            "",
            "yesterday",
            "2026-11-23 12:10:00",
            "2026-11-23 12:10:00Z",
            "2026-11-23T12:10:00",
            "2026-11-23T12:10Z",
            "2026-11-23T12:10:00.Z",
            "2026-11-23T12:10:00.1234567890Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T23:60:00Z",
            "2026-12-31T23:59:60Z",
            "2026-13-01T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-23T12:10:00+1:00",
            "2026-11-23T12:10:00+24:00",
            "2026-11-23T12:10:00+0100",
            "2026-11-23T12:10:00ZZ",
            "2026-11-23T12:10:00Z ",
            "+2026-11-23T12:10:00Z",
            "２０２６-11-23T12:10:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn minutes_floor_towards_the_past() {
        assert_eq!(floor_to_minute(ms("2026-11-23T12:59:59.999Z")), ms("2026-11-23T12:59:00Z"));
        assert_eq!(floor_to_minute(-1), -60_000);
    }
}

//! The key layout of contract section 2: `<prefix><table>/dt=YYYY-MM-DD/hr=HH/<file>.parquet`,
//! with `dt`/`hr` the UTC hour of the table's partition column.

use chrono::DateTime;

use crate::schema::Table;

const HOUR_MS: i64 = 3_600_000;

/// One Hive partition: a UTC hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// Start of the hour, UTC milliseconds since the epoch.
    pub hour_start_ms: i64,
}

impl Partition {
    pub fn of_millis(ms: i64) -> Partition {
        Partition { hour_start_ms: ms.div_euclid(HOUR_MS) * HOUR_MS }
    }

    /// `dt=2026-11-23/hr=12`
    pub fn path(self) -> String {
        match DateTime::from_timestamp_millis(self.hour_start_ms) {
            Some(t) => t.format("dt=%Y-%m-%d/hr=%H").to_string(),
            // Validation keeps event times within years 2000-9999 and arrival times come
            // from Kinesis; an unrepresentable hour still gets a stable, visible name.
            None => format!("dt=invalid/hr={}", self.hour_start_ms),
        }
    }
}

/// `<prefix><table>/<partition>/`: the folder of one partition.
pub fn partition_dir(prefix: &str, table: Table, partition: Partition) -> String {
    format!("{prefix}{}/{}/", table.as_str(), partition.path())
}

/// The visible key of a data file. `stem` must not start with `_` or `.` (those are hidden).
pub fn data_key(prefix: &str, table: Table, partition: Partition, stem: &str) -> String {
    format!("{}{stem}.parquet", partition_dir(prefix, table, partition))
}

/// A key prefix the datasets cannot live under.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrefixError {
    #[error("the key prefix {0:?} must end with '/'")]
    NoTrailingSlash(String),
    #[error("the key prefix {0:?} must be relative path segments like \"analytics/\"")]
    NotRelative(String),
}

/// Checks a datasets' key prefix: empty, or relative path segments ending with `/`.
pub fn check_prefix(prefix: &str) -> Result<(), PrefixError> {
    if prefix.is_empty() {
        return Ok(());
    }
    if !prefix.ends_with('/') {
        return Err(PrefixError::NoTrailingSlash(prefix.to_string()));
    }
    if prefix.starts_with('/') || prefix[..prefix.len() - 1].split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(PrefixError::NotRelative(prefix.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::parse_rfc3339;

    fn p(s: &str) -> Partition {
        Partition::of_millis(parse_rfc3339(s).unwrap().millis)
    }

    #[test]
    fn partitions_are_utc_hours() {
        assert_eq!(p("2026-11-23T12:59:59.999Z").path(), "dt=2026-11-23/hr=12");
        assert_eq!(p("2026-11-23T13:00:00Z").path(), "dt=2026-11-23/hr=13");
        assert_eq!(p("2026-11-23T13:02:10.123456789+01:00").path(), "dt=2026-11-23/hr=12");
        assert_eq!(p("2026-11-24T00:30:00+01:00").path(), "dt=2026-11-23/hr=23");
        assert_eq!(p("2028-02-29T23:00:00Z").path(), "dt=2028-02-29/hr=23");
    }

    #[test]
    fn keys_follow_the_contract_layout() {
        let part = p("2026-11-23T12:00:00Z");
        assert_eq!(data_key("", Table::SalesMinute, part, "f"), "sales_minute/dt=2026-11-23/hr=12/f.parquet");
        assert_eq!(data_key("a/b/", Table::Events, part, "x"), "a/b/events/dt=2026-11-23/hr=12/x.parquet");
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("analytics/").is_ok());
        assert!(check_prefix("a/b/").is_ok());
        for bad in ["analytics", "/abs/", "a//b/", "../x/", "./"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}

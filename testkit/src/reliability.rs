//! Rows of the reliability report (docs/reliability.md): each scenario test records what it
//! injected, the records it delivered, the events that came out, and what was lost or doubled
//! against the contract's expectation, with the peak memory of the process that ran the
//! handler. `scripts/reliability-table` prints them as one table at the end of the test command.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Position in the table.
    pub order: u32,
    pub scenario: String,
    pub injected: String,
    pub records_in: u64,
    pub events_out: u64,
    pub quarantined_out: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Peak resident memory of the process that ran the handler, in KiB.
    pub peak_kib: Option<u64>,
    /// Which process that was.
    pub process: String,
}

/// Where rows are written: `target/tmp/reliability/`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tmp/reliability")
}

/// Records a row (replacing an earlier run's row of the same scenario).
pub fn record(row: &Row) {
    let dir = dir();
    std::fs::create_dir_all(&dir).expect("create target/tmp/reliability");
    let slug: String =
        row.scenario.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let file = dir.join(format!("{:02}-{slug}.json", row.order));
    std::fs::write(file, serde_json::to_vec_pretty(row).expect("a row is JSON")).expect("write a reliability row");
}

/// Lost and doubled rows of a table: the rows expected (by key, with multiplicity) that are
/// missing, and the rows present beyond what is expected.
pub fn compare<K: Ord + Clone>(expected: &[K], actual: &[K]) -> (u64, u64) {
    let mut count: BTreeMap<K, i64> = BTreeMap::new();
    for k in expected {
        *count.entry(k.clone()).or_default() += 1;
    }
    for k in actual {
        *count.entry(k.clone()).or_default() -= 1;
    }
    let lost = count.values().filter(|v| **v > 0).map(|v| *v as u64).sum();
    let doubled = count.values().filter(|v| **v < 0).map(|v| (-*v) as u64).sum();
    (lost, doubled)
}

/// The peak memory an `orderstream` command printed (`peak memory 52 MiB`), in KiB.
pub fn printed_peak_kib(output: &str) -> Option<u64> {
    let (_, rest) = output.split_once("peak memory ")?;
    rest.split_whitespace().next()?.parse::<u64>().ok().map(|mib| mib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_extra_rows_are_counted_with_multiplicity() {
        assert_eq!(compare(&["a", "b", "b", "c"], &["a", "b", "c", "c", "d"]), (1, 2));
        assert_eq!(compare::<&str>(&[], &[]), (0, 0));
        assert_eq!(printed_peak_kib("x; peak memory 52 MiB\n"), Some(52 * 1024));
        assert_eq!(printed_peak_kib("nothing"), None);
    }
}

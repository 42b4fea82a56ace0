//! `orderstream plan`: how many shards each hour needs, from the history of the stream's
//! traffic. The forecast ([`forecast`]) and the schedule ([`schedule`]) are pure; this module
//! reads the history (the datasets' records per minute, or a CSV) and draws the chart
//! ([`chart`]). docs/cost.md explains the model.

pub mod chart;
pub mod forecast;
pub mod scale;
pub mod schedule;
pub mod skew;

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::Array;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sink::store::ObjectStore;
use sink::Table;

pub use forecast::{hourly_mape, ForecastError, History, Model};
pub use schedule::{plan, stream_costs, throttled_minutes, Action, HourPlan, Plan, PlanSettings, StreamCosts};

/// Records per minute in the datasets under `prefix`: valid events from `funnel_minute` (the
/// sum of its counts per `window_start`) and rejected records from `quarantine` (per minute of
/// `arrival_time`).
pub async fn read_history<S: ObjectStore + ?Sized>(store: &S, prefix: &str) -> anyhow::Result<BTreeMap<i64, f64>> {
    let mut minutes: BTreeMap<i64, f64> = BTreeMap::new();
    for table in [Table::FunnelMinute, Table::Quarantine] {
        let time = if table == Table::Quarantine { "arrival_time" } else { "window_start" };
        for key in store.list(&format!("{prefix}{table}/")).await? {
            let name = key.rsplit('/').next().unwrap_or(&key);
            if !key.ends_with(".parquet") || name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            let Some(body) = store.get(&key).await? else { continue };
            let unreadable = |e: &dyn std::fmt::Display| anyhow::anyhow!("{key} is not a readable Parquet file: {e}");
            let reader = ParquetRecordBatchReaderBuilder::try_new(body)
                .map_err(|e| unreadable(&e))?
                .build()
                .map_err(|e| unreadable(&e))?;
            for batch in reader {
                let batch = batch.map_err(|e| unreadable(&e))?;
                let column = |name: &str| {
                    batch.column_by_name(name).ok_or_else(|| anyhow::anyhow!("{key} has no column {name}"))
                };
                let times = column(time)?;
                let times = times
                    .as_primitive_opt::<TimestampMillisecondType>()
                    .ok_or_else(|| anyhow::anyhow!("{key}: {time} is not a timestamp in milliseconds"))?;
                let mut counts = vec![1.0; batch.num_rows()];
                if table == Table::FunnelMinute {
                    counts.iter_mut().for_each(|c| *c = 0.0);
                    for measure in
                        ["page_views", "product_views", "add_to_carts", "remove_from_carts", "checkouts", "orders"]
                    {
                        let values = column(measure)?;
                        let values = values
                            .as_primitive_opt::<Int64Type>()
                            .ok_or_else(|| anyhow::anyhow!("{key}: {measure} is not a bigint"))?;
                        for (row, c) in counts.iter_mut().enumerate() {
                            *c += values.value(row) as f64;
                        }
                    }
                }
                for (row, c) in counts.into_iter().enumerate() {
                    if times.is_valid(row) {
                        *minutes.entry(times.value(row).div_euclid(60_000) * 60_000).or_default() += c;
                    }
                }
            }
        }
    }
    Ok(minutes)
}

/// Records per minute from CSV lines `minute,records`: the minute as RFC 3339
/// (`2026-11-23T19:00:00Z`) or milliseconds since the epoch; a header line is skipped.
pub fn parse_csv(text: &str) -> Result<BTreeMap<i64, f64>, String> {
    let mut minutes = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.chars().next().is_some_and(|c| c.is_ascii_alphabetic())) {
            continue;
        }
        let (time, count) =
            line.split_once(',').ok_or_else(|| format!("line {}: not `minute,records`: {line:.80}", i + 1))?;
        let (time, count) = (time.trim(), count.trim());
        let ms = match time.parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => {
                model::parse_rfc3339(time).map_err(|e| format!("line {}: {time:?} is not a time: {e}", i + 1))?.millis
            }
        };
        let n: f64 = count
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("line {}: {count:?} is not a number of records", i + 1))?;
        *minutes.entry(ms.div_euclid(60_000) * 60_000).or_default() += n;
    }
    Ok(minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_takes_both_times_and_names_bad_lines() {
        let m =
            parse_csv("minute,records\n2026-11-23T19:00:00Z,10\n1795460460000,5\n2026-11-23T19:01:30Z,1\n").unwrap();
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![(1_795_460_400_000, 10.0), (1_795_460_460_000, 6.0)]);
        assert!(parse_csv("2026-11-23T19:00:00Z;10").unwrap_err().contains("line 1: not `minute,records`"));
        assert!(parse_csv("yesterday,10\n").is_ok_and(|m| m.is_empty()), "a header line");
        assert!(parse_csv("1,2\nyesterday,10\n").unwrap_err().contains("line 2: \"yesterday\" is not a time"));
        assert!(parse_csv("1,-2\n").unwrap_err().contains("\"-2\" is not a number of records"));
    }
}

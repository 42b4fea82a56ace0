//! From a forecast to shards per hour, within the rules of `UpdateShardCount`: a call at most
//! doubles or halves the count, and a stream takes at most 10 calls in 24 hours. The count rises
//! before the hour that needs it and falls only when the hour before needed no more.

use super::forecast::{History, DAY};
use crate::cost::{kinesis_record_bytes, shards_for, Prices, SHARD_BYTES_PER_SECOND, SHARD_RECORDS_PER_SECOND};

/// `UpdateShardCount` calls a stream takes in 24 hours.
pub const MAX_CHANGES_PER_DAY: usize = 10;

#[derive(Debug, Clone)]
pub struct PlanSettings {
    /// Bytes of a record's data.
    pub record_bytes: f64,
    /// User records per Kinesis record (KPL aggregation).
    pub kpl_records: f64,
    /// Capacity over each hour's forecast peak minute.
    pub headroom: f64,
    /// Minutes before an hour that a rise is asked for (resharding takes minutes).
    pub lead_minutes: i64,
}

impl PlanSettings {
    /// Bytes of a Kinesis record (a KPL aggregate with `kpl_records`).
    pub fn kinesis_bytes(&self) -> f64 {
        kinesis_record_bytes(self.record_bytes, self.kpl_records)
    }

    /// User records/s one shard takes.
    pub fn per_shard(&self) -> f64 {
        SHARD_RECORDS_PER_SECOND.min(SHARD_BYTES_PER_SECOND / self.kinesis_bytes()) * self.kpl_records
    }

    /// Shards that carry `rate` user records/s with the headroom.
    pub fn shards(&self, rate: f64, headroom: f64) -> u32 {
        shards_for(rate / self.kpl_records, self.kinesis_bytes(), headroom)
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HourPlan {
    pub start_ms: i64,
    /// Forecast records/s: the hour's mean and its busiest minute.
    pub mean_rate: f64,
    pub peak_rate: f64,
    /// Shards the hour needs, and the shards planned (the rules of resharding applied).
    pub needed: u32,
    pub shards: u32,
}

/// An `UpdateShardCount` call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Action {
    pub at_ms: i64,
    pub target_shard_count: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub hours: Vec<HourPlan>,
    pub actions: Vec<Action>,
}

/// Hour by hour shards for the forecast, starting from `current` shards (what the last hour of
/// the history needed, when known).
pub fn plan(forecast: &History, current: Option<u32>, s: &PlanSettings) -> Plan {
    let mut hours: Vec<HourPlan> = forecast
        .per_minute
        .chunks(60)
        .enumerate()
        .map(|(h, minutes)| {
            let peak = minutes.iter().copied().fold(0.0, f64::max) / 60.0;
            let needed = s.shards(peak, s.headroom);
            HourPlan {
                start_ms: forecast.start_ms + h as i64 * 3_600_000,
                mean_rate: minutes.iter().sum::<f64>() / minutes.len() as f64 / 60.0,
                peak_rate: peak,
                needed,
                shards: needed,
            }
        })
        .collect();
    // Never below what the hour before needed: a fall waits an hour.
    let needed: Vec<u32> = hours.iter().map(|h| h.needed).collect();
    for (h, hour) in hours.iter_mut().enumerate() {
        let before = if h == 0 { current.unwrap_or(0) } else { needed[h - 1] };
        hour.shards = hour.needed.max(before);
    }
    let mut levels: Vec<u32> = hours.iter().map(|h| h.shards).collect();
    for _ in 0..100 {
        let before = levels.clone();
        limit_changes(&mut levels);
        limit_steps(&mut levels, current);
        if levels == before {
            break;
        }
    }
    for (hour, level) in hours.iter_mut().zip(&levels) {
        hour.shards = *level;
    }
    let mut actions = Vec::new();
    let mut previous = current;
    for hour in &hours {
        if previous != Some(hour.shards) {
            let rising = previous.is_none_or(|p| hour.shards > p);
            let at_ms =
                if rising && previous.is_some() { hour.start_ms - s.lead_minutes * 60_000 } else { hour.start_ms };
            actions.push(Action { at_ms, target_shard_count: hour.shards });
        }
        previous = Some(hour.shards);
    }
    Plan { hours, actions }
}

/// Changes in each 24-hour window of `levels` (hourly), the first change (from nothing) not
/// counted.
fn most_changes_in_a_day(levels: &[u32]) -> usize {
    let changes: Vec<usize> = (1..levels.len()).filter(|&h| levels[h] != levels[h - 1]).collect();
    changes.iter().map(|&start| changes.iter().filter(|&&c| c >= start && c < start + 24).count()).max().unwrap_or(0)
}

/// Merges adjacent levels (to the larger) where it costs the fewest shard-hours, until no 24
/// hours hold more than [`MAX_CHANGES_PER_DAY`] changes.
fn limit_changes(levels: &mut [u32]) {
    while most_changes_in_a_day(levels) > MAX_CHANGES_PER_DAY {
        // Runs of equal levels: (start, end, level).
        let mut runs: Vec<(usize, usize, u32)> = Vec::new();
        for (h, &l) in levels.iter().enumerate() {
            match runs.last_mut() {
                Some(r) if r.2 == l => r.1 = h + 1,
                _ => runs.push((h, h + 1, l)),
            }
        }
        let cheapest = (1..runs.len())
            .min_by_key(|&i| {
                let (a, b) = (runs[i - 1], runs[i]);
                let top = a.2.max(b.2);
                (top - a.2) as usize * (a.1 - a.0) + (top - b.2) as usize * (b.1 - b.0)
            })
            .expect("more than one run when there are changes");
        let (a, b) = (runs[cheapest - 1], runs[cheapest]);
        let top = a.2.max(b.2);
        levels[a.0..b.1].iter_mut().for_each(|l| *l = top);
    }
}

/// Each step at most doubles (the hour before rises to half the next) or halves (a fall stops
/// at half).
fn limit_steps(levels: &mut [u32], current: Option<u32>) {
    let half = |n: u32| n.div_ceil(2);
    for h in (0..levels.len().saturating_sub(1)).rev() {
        levels[h] = levels[h].max(half(levels[h + 1]));
    }
    for h in 1..levels.len() {
        levels[h] = levels[h].max(half(levels[h - 1]));
    }
    if let (Some(c), Some(first)) = (current, levels.first_mut()) {
        *first = (*first).max(half(c));
    }
}

/// Minutes of `actual` the plan's shards could not take (records or bytes above the shards'
/// limits).
pub fn throttled_minutes(plan: &Plan, actual: &History, s: &PlanSettings) -> usize {
    actual
        .per_minute
        .iter()
        .enumerate()
        .filter(|(m, count)| {
            let Some(hour) = plan.hours.get(m / 60) else { return false };
            let kinesis = **count / 60.0 / s.kpl_records;
            let n = f64::from(hour.shards);
            kinesis > n * SHARD_RECORDS_PER_SECOND || kinesis * s.kinesis_bytes() > n * SHARD_BYTES_PER_SECOND
        })
        .count()
}

/// The stream's cost over the plan's hours three ways: as planned, provisioned for the peak all
/// along, and on-demand.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StreamCosts {
    pub planned: f64,
    pub peak_provisioned: f64,
    pub on_demand: f64,
}

pub fn stream_costs(plan: &Plan, forecast: &History, s: &PlanSettings, p: &Prices) -> StreamCosts {
    let k = &p.kinesis;
    let bytes = s.kinesis_bytes();
    let records: f64 = forecast.per_minute.iter().sum::<f64>() / s.kpl_records;
    let put_units =
        records * (bytes / k.put_payload_unit_bytes).ceil() / 1e6 * k.provisioned_put_payload_units_per_million;
    let shard_hours: f64 = plan.hours.iter().map(|h| f64::from(h.shards)).sum();
    let peak = plan.hours.iter().map(|h| h.needed).max().unwrap_or(0);
    let hours = plan.hours.len() as f64;
    let gb = 1_073_741_824.0;
    let on_demand = hours * k.on_demand_stream_hour
        + records * (bytes / k.on_demand_record_rounding_bytes).ceil() * k.on_demand_record_rounding_bytes / gb
            * k.on_demand_ingest_gb
        + records * bytes / gb * k.on_demand_retrieval_gb;
    StreamCosts {
        planned: shard_hours * k.provisioned_shard_hour + put_units,
        peak_provisioned: f64::from(peak) * hours * k.provisioned_shard_hour + put_units,
        on_demand,
    }
}

/// Publisher groups that merge a peak of `rate` records/s with the headroom, at
/// `staged_bytes_per_record` of staged Parquet each, one vCPU a group
/// ([`crate::cost::PUBLISHER_MB_PER_CPU_SECOND`]).
pub fn publisher_groups(rate: f64, staged_bytes_per_record: f64, headroom: f64) -> u32 {
    let mb_per_second = rate * staged_bytes_per_record * headroom / 1e6;
    ((mb_per_second / crate::cost::PUBLISHER_MB_PER_CPU_SECOND) - 1e-9).ceil().max(1.0) as u32
}

/// Hours in a forecast of `days` days.
pub fn hours(days: usize) -> usize {
    days * DAY / 60
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PlanSettings {
        PlanSettings { record_bytes: 240.0, kpl_records: 1.0, headroom: 1.0, lead_minutes: 15 }
    }

    /// A day whose hours run at `rates` records/s (repeated to 24 hours).
    fn day(rates: &[f64]) -> History {
        let per_minute = (0..DAY).map(|m| rates[(m / 60) % rates.len()] * 60.0).collect();
        History { start_ms: 0, per_minute }
    }

    #[test]
    fn rises_come_before_the_hour_and_falls_an_hour_late() {
        let mut rates = vec![1000.0; 24];
        rates[10] = 3000.0;
        let p = plan(&day(&rates), Some(1), &settings());
        let shards: Vec<u32> = p.hours.iter().map(|h| h.shards).collect();
        assert_eq!(&shards[8..13], &[1, 2, 3, 3, 2]);
        // 1 -> 2 is asked for at 08:45 (the doubling rule), 2 -> 3 at 09:45; falls on the hour.
        let at = |h: i64, m: i64| h * 3_600_000 + m * 60_000;
        assert_eq!(
            p.actions,
            vec![
                Action { at_ms: at(8, 45), target_shard_count: 2 },
                Action { at_ms: at(9, 45), target_shard_count: 3 },
                Action { at_ms: at(12, 0), target_shard_count: 2 },
                Action { at_ms: at(13, 0), target_shard_count: 1 },
            ]
        );
        assert_eq!(throttled_minutes(&p, &day(&rates), &settings()), 0);
    }

    #[test]
    fn at_most_ten_calls_a_day_and_each_at_most_doubles_or_halves() {
        // A sawtooth that would change every hour, between 1 and 8 shards.
        let rates: Vec<f64> = (0..24).map(|h| if h % 2 == 0 { 1000.0 } else { 8000.0 }).collect();
        let p = plan(&day(&rates), None, &settings());
        let levels: Vec<u32> = p.hours.iter().map(|h| h.shards).collect();
        assert!(most_changes_in_a_day(&levels) <= MAX_CHANGES_PER_DAY, "{levels:?}");
        for w in levels.windows(2) {
            assert!(w[1] <= 2 * w[0] && w[1] >= w[0].div_ceil(2), "{levels:?}");
        }
        assert!(p.hours.iter().all(|h| h.shards >= h.needed));
        assert_eq!(throttled_minutes(&p, &day(&rates), &settings()), 0);
    }

    #[test]
    fn a_publisher_group_merges_110_mb_a_second() {
        // 100 bytes staged per record: 1,100,000 records/s fill one group, with 20% headroom less.
        assert_eq!(publisher_groups(910_000.0, 100.0, 1.2), 1);
        assert_eq!(publisher_groups(920_000.0, 100.0, 1.2), 2);
        assert_eq!(publisher_groups(4_000_000.0, 100.0, 1.2), 5);
        assert_eq!(publisher_groups(0.0, 100.0, 1.2), 1);
    }
}

//! The scaler's rule: from a provisioned stream's last minutes of CloudWatch metrics, the
//! planned schedule (`orderstream plan --schedule`) and the limits, the shard count to ask for
//! now. Pure; `crate::scaler` reads the metrics and makes the `UpdateShardCount` call.
//!
//! - **Out** when the busiest of the last few minutes needs more shards (records and bytes, with
//!   the headroom), and by the largest step a call allows when writes were throttled (the
//!   refused records are not in `IncomingRecords`, so the load is larger than it shows) or the
//!   processors fall behind (iterator age: more shards, more concurrent invocations).
//! - **In** only on evidence: every minute of the longer window has its datapoint (the last two
//!   may still be on their way), its busiest minute fits the smaller count with the headroom, and
//!   the smaller count saves at least a quarter (a call for less is not worth one of the day's
//!   ten).
//! - **The schedule** asks for its count from each action's time on: the larger of the two wins,
//!   so the predictive rise comes before the peak and the reactive rule covers what the forecast
//!   missed.
//! - One call at most doubles or halves the count; the next minutes go on from there.

use super::schedule::Action;
use crate::cost::shards_for_load;

/// One minute of the stream's metrics: CloudWatch's sums over the minute (the iterator age its
/// maximum); `None` where the minute has no datapoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Minute {
    pub start_ms: i64,
    /// `IncomingRecords` (Kinesis records: a KPL aggregate is one).
    pub records: Option<f64>,
    /// `IncomingBytes`.
    pub bytes: Option<f64>,
    /// `WriteProvisionedThroughputExceeded`: records refused.
    pub throttled: Option<f64>,
    /// `GetRecords.IteratorAgeMilliseconds`, the maximum.
    pub iterator_age_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub min_shards: u32,
    pub max_shards: u32,
    /// Capacity over the busiest minute (1.2: 20% spare).
    pub headroom: f64,
    /// Minutes that a rise looks at.
    pub scale_out_minutes: usize,
    /// Minutes that must all fit a smaller count before it is asked for.
    pub scale_in_minutes: usize,
    /// Processors further behind than this get more shards.
    pub max_iterator_age_ms: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            min_shards: 1,
            max_shards: 500,
            headroom: 1.2,
            scale_out_minutes: 5,
            scale_in_minutes: 30,
            max_iterator_age_ms: 60_000.0,
        }
    }
}

impl Rules {
    /// The rules' own consistency, as a one-line error.
    pub fn check(&self) -> Result<(), String> {
        if self.min_shards == 0 || self.min_shards > self.max_shards {
            return Err(format!(
                "the shard limits must satisfy 1 <= min ({}) <= max ({})",
                self.min_shards, self.max_shards
            ));
        }
        if !(self.headroom >= 1.0 && self.headroom.is_finite()) {
            return Err(format!("the headroom is a factor of at least 1, not {}", self.headroom));
        }
        if self.scale_out_minutes == 0 || self.scale_in_minutes < self.scale_out_minutes {
            return Err(format!(
                "the scale-in window ({} minutes) must be at least the scale-out window ({} minutes, at least 1)",
                self.scale_in_minutes, self.scale_out_minutes
            ));
        }
        Ok(())
    }

    /// The longest window the rule reads, in minutes.
    pub fn window_minutes(&self) -> usize {
        self.scale_in_minutes
    }
}

/// What the rule asks for, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decision {
    pub current: u32,
    /// What the metrics need.
    pub reactive: u32,
    /// What the schedule asks for now.
    pub scheduled: Option<u32>,
    /// The larger of the two within the limits.
    pub wanted: u32,
    /// The count to call for now: `wanted` within one call's step.
    pub target: u32,
    pub reasons: Vec<String>,
}

impl Decision {
    /// The `UpdateShardCount` target, when there is a call to make.
    pub fn call(&self) -> Option<u32> {
        (self.target != self.current).then_some(self.target)
    }
}

/// The count the schedule asks for at `now_ms`: its last action at or before then.
pub fn scheduled_at(schedule: &[Action], now_ms: i64) -> Option<u32> {
    schedule.iter().filter(|a| a.at_ms <= now_ms).max_by_key(|a| a.at_ms).map(|a| a.target_shard_count)
}

/// Shards a minute of `records` and `bytes` needs with the headroom (at least 1).
fn shards_for_minute(records: f64, bytes: f64, headroom: f64) -> u32 {
    shards_for_load(records / 60.0, bytes / 60.0, headroom)
}

/// The rule, at `now_ms`, for a stream of `current` open shards.
pub fn decide(current: u32, minutes: &[Minute], schedule: &[Action], now_ms: i64, r: &Rules) -> Decision {
    let current = current.max(1);
    let since = |n: usize| now_ms - n as i64 * 60_000;
    let window = |n: usize| minutes.iter().filter(move |m| m.start_ms >= since(n) && m.start_ms < now_ms);
    let need = |n: usize| {
        window(n)
            .filter_map(|m| {
                m.records.map(|records| (m.start_ms, shards_for_minute(records, m.bytes.unwrap_or(0.0), r.headroom)))
            })
            .max_by_key(|&(_, shards)| shards)
    };
    let mut reasons = Vec::new();

    let mut reactive = current;
    if let Some((at, shards)) = need(r.scale_out_minutes).filter(|&(_, s)| s > current) {
        reactive = shards;
        reasons.push(format!("the minute of {} needs {shards} shards", model::format_millis(at)));
    }
    let throttled: f64 = window(r.scale_out_minutes).filter_map(|m| m.throttled).sum();
    if throttled > 0.0 {
        reactive = reactive.max(current.saturating_mul(2));
        reasons.push(format!("{throttled:.0} writes throttled in the last {} minutes", r.scale_out_minutes));
    }
    let behind = window(r.scale_out_minutes).filter_map(|m| m.iterator_age_ms).fold(0.0, f64::max);
    if behind > r.max_iterator_age_ms {
        reactive = reactive.max(current.saturating_mul(2));
        reasons.push(format!("the processors are {:.0} s behind", behind / 1000.0));
    }
    if reactive == current {
        // Scale in on evidence only: every minute of the long window but the last two reported.
        let reported = window(r.scale_in_minutes).filter(|m| m.records.is_some()).count();
        match need(r.scale_in_minutes) {
            Some((_, shards)) if reported + 2 >= r.scale_in_minutes => {
                if f64::from(shards) <= 0.75 * f64::from(current) {
                    reactive = shards;
                    reasons.push(format!("the last {} minutes fit {shards} shards", r.scale_in_minutes));
                }
            }
            _ => reasons
                .push(format!("{reported} of the last {} minutes reported: too few to scale in", r.scale_in_minutes)),
        }
    }

    let scheduled = scheduled_at(schedule, now_ms);
    let mut wanted = reactive.max(r.min_shards);
    if let Some(s) = scheduled.filter(|&s| s > wanted) {
        wanted = s;
        reasons.push(format!("the schedule asks for {s}"));
    }
    if wanted > r.max_shards {
        reasons.push(format!("held at the maximum of {} shards", r.max_shards));
        wanted = r.max_shards;
    }
    let target = if wanted > current { wanted.min(current.saturating_mul(2)) } else { wanted.max(current.div_ceil(2)) };
    if target != wanted {
        reasons.push(format!("one call goes from {current} to {target} at most"));
    }
    Decision { current, reactive, scheduled, wanted, target, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_764_000_000_000 / 60_000 * 60_000;

    /// `n` whole minutes before now, each with `per_second` records of 240 bytes.
    fn steady(n: usize, per_second: f64) -> Vec<Minute> {
        (1..=n)
            .map(|k| Minute {
                start_ms: NOW - k as i64 * 60_000,
                records: Some(per_second * 60.0),
                bytes: Some(per_second * 60.0 * 240.0),
                throttled: Some(0.0),
                iterator_age_ms: Some(200.0),
            })
            .collect()
    }

    fn rules() -> Rules {
        Rules { max_shards: 64, ..Rules::default() }
    }

    #[test]
    fn a_load_within_the_count_asks_for_nothing() {
        let d = decide(4, &steady(30, 3000.0), &[], NOW, &rules());
        assert_eq!(d.call(), None, "{d:?}");
    }

    #[test]
    fn a_rise_asks_for_what_the_busiest_recent_minute_needs_one_doubling_at_a_time() {
        let mut minutes = steady(30, 3000.0);
        minutes[1].records = Some(4500.0 * 60.0);
        let d = decide(4, &minutes, &[], NOW, &rules());
        assert_eq!((d.reactive, d.target), (6, 6), "{d:?}");
        minutes[0].records = Some(20_000.0 * 60.0);
        let d = decide(4, &minutes, &[], NOW, &rules());
        assert_eq!((d.reactive, d.target), (24, 8), "{d:?}");
        // Bytes count as well as records: 1,000 records/s of 2 KiB fill two shards.
        let mut big = steady(30, 1000.0);
        big[0].bytes = Some(1000.0 * 60.0 * 2048.0);
        assert_eq!(decide(4, &big, &[], NOW, &rules()).reactive, 3);
    }

    #[test]
    fn throttles_and_a_lagging_processor_take_the_largest_step() {
        let mut minutes = steady(30, 1000.0);
        minutes[2].throttled = Some(12.0);
        let d = decide(4, &minutes, &[], NOW, &rules());
        assert_eq!(d.target, 8, "{d:?}");
        assert!(d.reasons[0].contains("12 writes throttled"), "{d:?}");
        let mut minutes = steady(30, 1000.0);
        minutes[0].iterator_age_ms = Some(95_000.0);
        let d = decide(4, &minutes, &[], NOW, &rules());
        assert_eq!(d.target, 8, "{d:?}");
        // Throttles older than the scale-out window are history.
        let mut minutes = steady(30, 1000.0);
        minutes[20].throttled = Some(12.0);
        assert_ne!(decide(4, &minutes, &[], NOW, &rules()).target, 8);
    }

    #[test]
    fn scaling_in_needs_the_whole_window_to_fit_and_saves_a_quarter() {
        // 8 shards, 30 quiet minutes needing 2: halve (one call's limit).
        let d = decide(8, &steady(30, 1500.0), &[], NOW, &rules());
        assert_eq!((d.reactive, d.target), (2, 4), "{d:?}");
        // One busy minute 25 minutes ago holds the count.
        let mut minutes = steady(30, 1500.0);
        minutes[24].records = Some(7000.0 * 60.0);
        assert_eq!(decide(8, &minutes, &[], NOW, &rules()).call(), None);
        // 7 of 8 would save an eighth: not worth a call.
        assert_eq!(decide(8, &steady(30, 5500.0), &[], NOW, &rules()).call(), None);
        // The last two minutes may be missing; a third missing minute holds the count.
        let d = decide(8, &steady(30, 1500.0)[2..], &[], NOW, &rules());
        assert_eq!(d.target, 4, "{d:?}");
        let d = decide(8, &steady(30, 1500.0)[3..], &[], NOW, &rules());
        assert_eq!(d.call(), None, "{d:?}");
        assert!(d.reasons[0].contains("too few to scale in"), "{d:?}");
        assert_eq!(decide(8, &[], &[], NOW, &rules()).call(), None);
    }

    #[test]
    fn the_schedule_and_the_metrics_combine_the_larger_wins() {
        let schedule = [
            Action { at_ms: NOW - 3_600_000, target_shard_count: 2 },
            Action { at_ms: NOW - 60_000, target_shard_count: 8 },
            Action { at_ms: NOW + 60_000, target_shard_count: 16 },
        ];
        assert_eq!(scheduled_at(&schedule, NOW), Some(8));
        assert_eq!(scheduled_at(&schedule, NOW - 7_200_000), None);
        // Quiet metrics, the schedule's rise: 8.
        let d = decide(4, &steady(30, 1000.0), &schedule, NOW, &rules());
        assert_eq!((d.scheduled, d.target), (Some(8), 8), "{d:?}");
        // A load above the schedule: the load.
        let d = decide(8, &steady(30, 9000.0), &schedule, NOW, &rules());
        assert_eq!(d.target, 11, "{d:?}");
        // The schedule keeps the count up while the metrics would scale in.
        let d = decide(8, &steady(30, 100.0), &schedule, NOW, &rules());
        assert_eq!(d.call(), None, "{d:?}");
    }

    #[test]
    fn the_limits_hold() {
        let r = Rules { min_shards: 3, max_shards: 10, ..Rules::default() };
        assert_eq!(decide(6, &steady(30, 100.0), &[], NOW, &r).target, 3);
        assert_eq!(decide(8, &steady(30, 50_000.0), &[], NOW, &r).target, 10);
        assert_eq!(decide(1, &[], &[], NOW, &r).target, 2);
        assert!(Rules { min_shards: 0, ..Rules::default() }.check().is_err());
        assert!(Rules { min_shards: 9, max_shards: 8, ..Rules::default() }.check().is_err());
        assert!(Rules { headroom: 0.5, ..Rules::default() }.check().is_err());
        assert!(Rules { scale_in_minutes: 3, ..Rules::default() }.check().is_err());
        assert!(Rules::default().check().is_ok());
    }

    proptest! {
        /// Whatever the metrics and the schedule: one call within double and half, within the
        /// limits where one call can reach them, and a load that needs more is never scaled in.
        #[test]
        fn a_call_stays_within_the_rules(
            current in 1u32..200,
            rates in proptest::collection::vec(proptest::option::of(0.0f64..400_000.0), 0..40),
            throttled in proptest::option::of(0.0f64..100.0),
            schedule in proptest::collection::vec((-120i64..120, 1u32..300), 0..5),
            min in 1u32..50, extra in 0u32..300,
        ) {
            let r = Rules { min_shards: min, max_shards: min + extra, ..Rules::default() };
            let mut minutes: Vec<Minute> = rates.iter().enumerate().map(|(k, rate)| Minute {
                start_ms: NOW - (k as i64 + 1) * 60_000,
                records: rate.map(|x| x * 60.0),
                bytes: rate.map(|x| x * 60.0 * 240.0),
                ..Minute::default()
            }).collect();
            if let Some(first) = minutes.first_mut() { first.throttled = throttled; }
            let schedule: Vec<Action> = schedule.iter().map(|&(m, s)| Action { at_ms: NOW + m * 60_000, target_shard_count: s }).collect();
            let d = decide(current, &minutes, &schedule, NOW, &r);
            prop_assert!(d.target <= current * 2 && d.target >= current.div_ceil(2), "{d:?}");
            prop_assert!(d.target <= r.max_shards.max(current.div_ceil(2)), "{d:?}");
            prop_assert!(d.target >= r.min_shards.min(current * 2), "{d:?}");
            let recent_need = minutes.iter().take(r.scale_out_minutes)
                .filter_map(|m| m.records.map(|x| shards_for_minute(x, m.bytes.unwrap_or(0.0), r.headroom)))
                .max().unwrap_or(1).min(r.max_shards);
            prop_assert!(d.target >= recent_need.min(current), "{d:?}");
            if let Some(s) = scheduled_at(&schedule, NOW) {
                prop_assert!(d.target >= s.min(r.max_shards).min(current * 2).min(current.max(s)), "{d:?}");
            }
        }
    }
}

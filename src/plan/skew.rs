//! Shard skew under the producer's partition strategies: the share of a minute's records its
//! busiest shard takes, and the shards the peak then needs. The records are the storefront's
//! (its sessions), routed by `producer::kinesis::Router` and hashed as Kinesis does (MD5 of the
//! partition key, or the explicit hash key) onto shards that split the key space evenly.

use producer::kinesis::{Router, Shard, Strategy};
use producer::{Config, Faults, Storefront};

use crate::sources::embedded::{even_starting_hash_keys, hash_key};

/// Records simulated per shard count tried.
const SAMPLE: usize = 20_000;
/// The most shards tried, as a multiple of what even spreading needs.
const MAX_FACTOR: u32 = 16;

/// The partition keys (session ids) of `SAMPLE` storefront records with `sessions` visitors at
/// once.
pub fn sample_sessions(sessions: usize, seed: u64) -> Vec<String> {
    let mut shop = Storefront::new(Config {
        seed,
        concurrent_sessions: sessions,
        daily_curve: false,
        flash_sale_every_minutes: 0,
        faults: Faults { invalid_rate: 0.0, duplicate_rate: 0.0, late_rate: 0.0 },
        ..Config::default()
    });
    let mut buf = Vec::new();
    (0..SAMPLE)
        .map(|_| {
            buf.clear();
            shop.next_record(&mut buf).partition_key
        })
        .collect()
}

/// A strategy for `n` shards: the weighted one puts `hot_weight` times an other shard's share on
/// the first shard.
fn strategy(name: &str, n: u32, hot_weight: f64) -> Strategy {
    match name {
        "session" => Strategy::Session,
        "random" => Strategy::Random,
        "round-robin" => Strategy::RoundRobin,
        _ => Strategy::Weighted(std::iter::once(hot_weight).chain(std::iter::repeat_n(1.0, n as usize - 1)).collect()),
    }
}

pub const STRATEGIES: [&str; 4] = ["session", "random", "round-robin", "weighted"];

/// Records per shard when `keys`' records are routed under `name` onto `n` even shards.
fn counts(name: &str, n: u32, keys: &[String], hot_weight: f64) -> Vec<usize> {
    let starts = even_starting_hash_keys(n as usize);
    let shards: Vec<Shard> = starts
        .iter()
        .enumerate()
        .map(|(i, s)| Shard { id: format!("shardId-{i:012}"), starting_hash_key: *s })
        .collect();
    let mut router = Router::new(strategy(name, n, hot_weight), shards, 1).expect("weights for every shard");
    let mut counts = vec![0usize; starts.len()];
    for key in keys {
        let (partition_key, explicit) = router.route(key.clone());
        let hash = explicit.and_then(|k| k.parse::<u128>().ok()).unwrap_or_else(|| hash_key(&partition_key));
        counts[starts.partition_point(|s| *s <= hash) - 1] += 1;
    }
    counts
}

/// The busiest of `n` shards' share of a minute of `per_minute` records under `name`:
///
/// - round-robin: 1/n; weighted: the hot shard's weight over all weights (both exact);
/// - random and session keys: 1/n plus the busiest shard's chance excess, `sqrt(2 ln n)`
///   standard deviations of a shard's count, the counts' dispersion (variance over mean) measured
///   on `keys` routed the same way: about 1 for random keys, more for sessions, whose records
///   share a shard.
pub fn hottest_share(name: &str, n: u32, keys: &[String], hot_weight: f64, per_minute: f64) -> f64 {
    let even = 1.0 / f64::from(n.max(1));
    match name {
        "round-robin" => even,
        "weighted" => hot_weight / (hot_weight + f64::from(n.max(1)) - 1.0),
        _ if n <= 1 => 1.0,
        _ => {
            let c = counts(name, n, keys, hot_weight);
            let mean = keys.len() as f64 / c.len() as f64;
            let variance = c.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (c.len() - 1) as f64;
            let dispersion = (variance / mean).max(1.0);
            let per_shard = per_minute * even;
            let sd = (dispersion * per_shard).sqrt();
            even * (1.0 + (2.0 * f64::from(n).ln()).sqrt() * sd / per_shard)
        }
    }
}

/// What a strategy does at the peak.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Skew {
    pub strategy: &'static str,
    /// The busiest shard's share at the evenly spread shard count.
    pub hottest_share: f64,
    /// Shards the peak needs under it (`None`: no count up to 16 times the even one carries it).
    pub shards: Option<u32>,
}

/// For each strategy, the shards that keep the busiest one within `per_shard / headroom` at
/// `peak` records/s, starting from `even` (what even spreading needs).
pub fn report(keys: &[String], peak: f64, even: u32, per_shard: f64, headroom: f64, hot_weight: f64) -> Vec<Skew> {
    let share = |name: &str, n: u32| hottest_share(name, n, keys, hot_weight, peak * 60.0);
    STRATEGIES
        .iter()
        .map(|&name| {
            let fits = |n: u32| peak * share(name, n) * headroom <= per_shard * (1.0 + 1e-9);
            let shards = if fits(even) {
                Some(even)
            } else {
                // Double until it fits, then halve the gap.
                let (mut low, mut high) = (even, even.saturating_mul(2));
                while high <= even.saturating_mul(MAX_FACTOR) && !fits(high) {
                    (low, high) = (high, high.saturating_mul(2));
                }
                if high > even.saturating_mul(MAX_FACTOR) {
                    None
                } else {
                    while high - low > 1 {
                        let mid = low + (high - low) / 2;
                        if fits(mid) {
                            high = mid
                        } else {
                            low = mid
                        }
                    }
                    Some(high)
                }
            };
            Skew { strategy: name, hottest_share: share(name, even), shards }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_strategies_spread_and_a_hot_shard_takes_its_weight() {
        let keys = sample_sessions(500, 3);
        assert_eq!(hottest_share("round-robin", 10, &keys, 2.0, 6000.0), 0.1);
        // One shard at twice the others' weight: 2/11 of the records.
        assert!((hottest_share("weighted", 10, &keys, 2.0, 6000.0) - 2.0 / 11.0).abs() < 1e-12);
        // Random keys: the busiest of 10 shards is 2.15 standard deviations of 600 records above
        // the mean (53 records, 9%), less in a busier minute.
        let random = hottest_share("random", 10, &keys, 2.0, 6000.0);
        assert!(random > 0.105 && random < 0.112, "{random}");
        assert!(hottest_share("random", 10, &keys, 2.0, 600_000.0) < 0.1012);
        // A session's records share a shard: more dispersed than random keys.
        assert!(hottest_share("session", 10, &keys, 2.0, 6000.0) > random);
    }

    #[test]
    fn a_skewed_strategy_needs_more_shards_and_a_hot_enough_shard_cannot_be_carried() {
        let keys = sample_sessions(5000, 3);
        let r = report(&keys, 8800.0, 9, 1000.0, 1.0, 2.0);
        let shards = |name: &str| r.iter().find(|s| s.strategy == name).unwrap().shards;
        assert_eq!(shards("round-robin"), Some(9));
        // The hot shard takes 2/(n+1) of 8,800 records/s: n = 17 keeps it within 1,000 (the
        // sample's share is within a few percent of that).
        assert!(shards("weighted").is_some_and(|n| (16..=18).contains(&n)), "{r:?}");
        // A shard weighted 1,000 times the others takes nearly everything, whatever the count.
        let r = report(&keys, 8800.0, 9, 1000.0, 1.0, 1000.0);
        assert_eq!(r.iter().find(|s| s.strategy == "weighted").unwrap().shards, None);
    }
}

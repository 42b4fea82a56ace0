//! KPL aggregation (`--aggregate`, contract 1.4): user records packed, per destination shard,
//! into KPL aggregates, each put with an explicit hash key inside its shard's range so that it
//! lands where its records would have landed one by one, and with the shard's id as partition
//! key, so that the sender keeps one aggregate of a shard in flight at a time and the user
//! records of a key keep their order under retries.
//!
//! [`Aggregator`] is the pure part (which shard, when an aggregate is full, when it is due);
//! [`aggregate_stage`] runs it between a generator and [`crate::kinesis::send_all`] ([`through`]
//! puts it there).

use std::time::Duration;

use md5::{Digest, Md5};
use model::kpl::Aggregate;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::kinesis::{Entry, Shard};

/// When an aggregate is sent: the KPL's defaults (`AggregationMaxSize` 51,200 bytes,
/// `RecordMaxBufferedTime` 100 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of an aggregate, at most (a Kinesis record holds 1 MiB with its partition key).
    pub max_bytes: usize,
    /// User records of an aggregate, at most.
    pub max_records: usize,
    /// How long a user record waits in an aggregate that is not full.
    pub max_delay: Duration,
}

/// The largest aggregate: a Kinesis record's 1 MiB less the longest partition key (256 bytes).
pub const MAX_AGGREGATE_BYTES: usize = (1 << 20) - 256;

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 51_200, max_records: 10_000, max_delay: Duration::from_millis(100) }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AggregateError {
    #[error("the stream has no open shard to aggregate for")]
    NoShards,
    #[error(
        "an aggregate of at most {0} bytes cannot hold a record (at least 64 bytes, at most {MAX_AGGREGATE_BYTES})"
    )]
    MaxBytes(usize),
}

struct Open {
    aggregate: Aggregate,
    since: Instant,
}

/// Open aggregates, one per shard.
pub struct Aggregator {
    shards: Vec<Shard>,
    open: Vec<Option<Open>>,
    limits: Limits,
}

impl Aggregator {
    pub fn new(mut shards: Vec<Shard>, limits: Limits) -> Result<Self, AggregateError> {
        if shards.is_empty() {
            return Err(AggregateError::NoShards);
        }
        if !(64..=MAX_AGGREGATE_BYTES).contains(&limits.max_bytes) {
            return Err(AggregateError::MaxBytes(limits.max_bytes));
        }
        shards.sort_by_key(|s| s.starting_hash_key);
        let open = shards.iter().map(|_| None).collect();
        Ok(Aggregator { shards, open, limits: Limits { max_records: limits.max_records.max(1), ..limits } })
    }

    /// The shard a record goes to: its explicit hash key, else the MD5 of its partition key (as
    /// Kinesis maps them), in the open shard whose range holds it.
    fn shard_of(&self, entry: &Entry) -> usize {
        let hash = entry
            .explicit_hash_key
            .as_deref()
            .and_then(|k| k.parse::<u128>().ok())
            .unwrap_or_else(|| u128::from_be_bytes(Md5::digest(entry.partition_key.as_bytes()).into()));
        self.shards.partition_point(|s| s.starting_hash_key <= hash).saturating_sub(1)
    }

    /// Adds a user record; answers what is ready to send: the shard's aggregate when this
    /// record fills it or does not fit in it, and the record itself, as it is, when even an
    /// aggregate of its own would exceed `max_bytes` (as the KPL sends one).
    pub fn add(&mut self, entry: Entry, now: Instant) -> Vec<Entry> {
        if Aggregate::new().len_with(&entry.partition_key, &entry.data) > self.limits.max_bytes {
            return vec![entry];
        }
        let shard = self.shard_of(&entry);
        let mut out = Vec::new();
        let fits = |o: &Open| {
            o.aggregate.count() < self.limits.max_records
                && o.aggregate.len_with(&entry.partition_key, &entry.data) <= self.limits.max_bytes
        };
        if self.open[shard].as_ref().is_some_and(|o| !fits(o)) {
            out.extend(self.close(shard));
        }
        let open = self.open[shard].get_or_insert_with(|| Open { aggregate: Aggregate::new(), since: now });
        open.aggregate.add(&entry.partition_key, &entry.data);
        if open.aggregate.len() >= self.limits.max_bytes || open.aggregate.count() >= self.limits.max_records {
            out.extend(self.close(shard));
        }
        out
    }

    /// When the oldest open aggregate is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.open.iter().flatten().map(|o| o.since + self.limits.max_delay).min()
    }

    /// The aggregates that have waited `max_delay`.
    pub fn due(&mut self, now: Instant) -> Vec<Entry> {
        let delay = self.limits.max_delay;
        let due: Vec<usize> =
            (0..self.open.len()).filter(|&i| self.open[i].as_ref().is_some_and(|o| o.since + delay <= now)).collect();
        due.into_iter().filter_map(|i| self.close(i)).collect()
    }

    /// Every open aggregate.
    pub fn drain(&mut self) -> Vec<Entry> {
        (0..self.open.len()).filter_map(|i| self.close(i)).collect()
    }

    fn close(&mut self, shard: usize) -> Option<Entry> {
        let open = self.open[shard].take()?;
        let records = open.aggregate.count() as u32;
        Some(Entry {
            data: open.aggregate.finish().into(),
            partition_key: self.shards[shard].id.clone(),
            explicit_hash_key: Some(self.shards[shard].starting_hash_key.to_string()),
            records,
        })
    }
}

/// `rx` as the sender should read it: the same records, or, with an aggregator, its aggregates
/// from a stage of their own (await its handle once the sender is done).
pub fn through(
    rx: mpsc::Receiver<Entry>,
    aggregator: Option<Aggregator>,
) -> (mpsc::Receiver<Entry>, Option<tokio::task::JoinHandle<u64>>) {
    match aggregator {
        Some(agg) => {
            let (tx, aggregates) = mpsc::channel(256);
            (aggregates, Some(tokio::spawn(aggregate_stage(rx, tx, agg))))
        }
        None => (rx, None),
    }
}

/// Reads user records from `rx` and sends aggregates to `tx`: full ones at once, the others
/// when due, the rest when `rx` closes. Answers the user records it took.
pub async fn aggregate_stage(mut rx: mpsc::Receiver<Entry>, tx: mpsc::Sender<Entry>, mut agg: Aggregator) -> u64 {
    let mut taken = 0u64;
    loop {
        let due = agg.next_due();
        tokio::select! {
            entry = rx.recv() => match entry {
                Some(entry) => {
                    taken += 1;
                    for out in agg.add(entry, Instant::now()) {
                        if tx.send(out).await.is_err() {
                            return taken;
                        }
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                for out in agg.due(Instant::now()) {
                    if tx.send(out).await.is_err() {
                        return taken;
                    }
                }
            }
        }
    }
    for out in agg.drain() {
        if tx.send(out).await.is_err() {
            break;
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(n: u128) -> Vec<Shard> {
        (0..n).map(|i| Shard { id: format!("shardId-{i:012}"), starting_hash_key: u128::MAX / n * i }).collect()
    }

    fn entry(key: &str, bytes: usize) -> Entry {
        Entry { data: vec![b'x'; bytes].into(), partition_key: key.into(), explicit_hash_key: None, records: 1 }
    }

    fn unpack(e: &Entry) -> Vec<(String, Vec<u8>)> {
        model::kpl::deaggregate(&e.data)
            .unwrap()
            .into_iter()
            .map(|u| (u.partition_key.to_string(), u.data.to_vec()))
            .collect()
    }

    #[test]
    fn records_are_packed_per_shard_and_land_where_they_would_alone() {
        let mut agg = Aggregator::new(shards(4), Limits::default()).unwrap();
        let now = Instant::now();
        let mut out = Vec::new();
        for i in 0..400 {
            out.extend(agg.add(entry(&format!("session-{i}"), 50), now));
        }
        out.extend(agg.drain());
        assert_eq!(out.len(), 4, "one aggregate per shard");
        let mut total = 0;
        for e in &out {
            let hash: u128 = e.explicit_hash_key.as_deref().unwrap().parse().unwrap();
            let shard = agg.shards.partition_point(|s| s.starting_hash_key <= hash) - 1;
            for (key, data) in unpack(e) {
                let alone = agg.shard_of(&entry(&key, 0));
                assert_eq!(alone, shard, "{key}");
                assert_eq!(data.len(), 50);
            }
            assert_eq!(e.records as usize, unpack(e).len());
            assert_eq!(e.partition_key, agg.shards[shard].id, "the shard's id");
            total += e.records;
        }
        assert_eq!(total, 400);
    }

    #[test]
    fn full_aggregates_are_sent_at_once_and_never_exceed_the_limits() {
        let limits = Limits { max_bytes: 1_000, max_records: 7, max_delay: Duration::from_secs(60) };
        let mut agg = Aggregator::new(shards(1), limits).unwrap();
        let now = Instant::now();
        let mut out = Vec::new();
        for i in 0..100 {
            out.extend(agg.add(entry(&format!("k{}", i % 3), 10 + i * 3), now));
        }
        out.extend(agg.drain());
        assert!(out.iter().all(|e| e.data.len() <= 1_000 && e.records <= 7), "limits held");
        assert_eq!(out.iter().map(|e| e.records).sum::<u32>(), 100);
        let sizes: Vec<usize> = out.iter().flat_map(unpack).map(|(_, d)| d.len()).collect();
        assert_eq!(sizes, (0..100).map(|i| 10 + i * 3).collect::<Vec<_>>(), "order kept");
        // A record that no aggregate can hold goes as it is; one that fills an aggregate alone
        // goes in one of its own.
        let mut agg = Aggregator::new(shards(1), limits).unwrap();
        assert_eq!(agg.add(entry("k", 990), now), vec![entry("k", 990)]);
        assert!(agg.add(entry("k", 960), now).is_empty());
        let alone = agg.add(entry("k", 100), now);
        assert_eq!((alone.len(), alone[0].records), (1, 1));
        assert!(alone[0].data.len() <= 1_000 && unpack(&alone[0]).len() == 1);
    }

    #[test]
    fn an_aggregate_that_is_not_full_is_due_after_the_delay() {
        let mut agg = Aggregator::new(shards(2), Limits::default()).unwrap();
        let t0 = Instant::now();
        assert!(agg.add(entry("a", 10), t0).is_empty());
        assert_eq!(agg.next_due(), Some(t0 + Duration::from_millis(100)));
        assert!(agg.due(t0 + Duration::from_millis(99)).is_empty());
        let due = agg.due(t0 + Duration::from_millis(100));
        assert_eq!(due.len(), 1);
        assert_eq!(agg.next_due(), None);
    }

    #[test]
    fn explicit_hash_keys_choose_the_shard_and_bad_limits_are_refused() {
        let agg = Aggregator::new(shards(4), Limits::default()).unwrap();
        let mut e = entry("k", 1);
        e.explicit_hash_key = Some((u128::MAX / 4 * 3 + 5).to_string());
        assert_eq!(agg.shard_of(&e), 3);
        assert_eq!(Aggregator::new(Vec::new(), Limits::default()).err(), Some(AggregateError::NoShards));
        let huge = Limits { max_bytes: 2 << 20, ..Limits::default() };
        assert_eq!(Aggregator::new(shards(1), huge).err(), Some(AggregateError::MaxBytes(2 << 20)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_stage_sends_everything_it_takes() {
        let (in_tx, in_rx) = mpsc::channel(16);
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let agg = Aggregator::new(shards(3), Limits::default()).unwrap();
        let stage = tokio::spawn(aggregate_stage(in_rx, out_tx, agg));
        for i in 0..50 {
            in_tx.send(entry(&format!("s{i}"), 20)).await.unwrap();
        }
        // Not full: they come out when due.
        let first = out_rx.recv().await.unwrap();
        assert!(first.records > 0);
        drop(in_tx);
        let mut records = first.records;
        while let Some(e) = out_rx.recv().await {
            records += e.records;
        }
        assert_eq!((records, stage.await.unwrap()), (50, 50));
    }
}

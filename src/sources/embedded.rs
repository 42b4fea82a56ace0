//! An embedded stream with Kinesis semantics: shards that split the 128-bit hash key space
//! evenly, partition keys hashed with MD5 as Kinesis does (or an explicit hash key), per-shard
//! increasing sequence numbers, arrival timestamps, optional per-shard write limits
//! (1 MB/s and 1,000 records/s by default) that refuse records with
//! `ProvisionedThroughputExceededException` like the real service, and resharding: a split or a
//! merge closes the parent shards (their records stay readable) and opens child shards that
//! take their hash key ranges.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use md5::{Digest, Md5};
use producer::kinesis::{ApiError, Entry, KinesisApi, Outcome, Shard};

use super::{Records, ShardSource, StreamRecord};
use crate::now_ms;

/// Write limits of one shard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShardLimits {
    pub records_per_second: f64,
    pub bytes_per_second: f64,
}

impl Default for ShardLimits {
    /// The limits of a provisioned Kinesis shard.
    fn default() -> Self {
        ShardLimits { records_per_second: 1000.0, bytes_per_second: 1024.0 * 1024.0 }
    }
}

struct Bucket {
    records: f64,
    bytes: f64,
    refilled: Instant,
}

struct ShardState {
    id: String,
    starting_hash_key: u128,
    /// Inclusive, as Kinesis's `EndingHashKey`.
    ending_hash_key: u128,
    /// A closed shard takes no more records (a split or merge replaced it).
    open: bool,
    parents: Vec<usize>,
    records: Records,
    bucket: Option<Bucket>,
}

/// Why a split or merge cannot be done.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReshardError {
    #[error("{0} is closed")]
    Closed(String),
    #[error("{key} is not inside {shard}'s hash key range")]
    OutsideRange { key: u128, shard: String },
    #[error("{0} and {1} are not adjacent")]
    NotAdjacent(String, String),
}

pub struct EmbeddedStream {
    name: String,
    shards: RwLock<Vec<Arc<Mutex<ShardState>>>>,
    /// The open shards' hash key ranges (start, end, shard), sorted by start.
    routes: RwLock<Vec<(u128, u128, usize)>>,
    limits: Option<ShardLimits>,
}

fn new_shard(index: usize, start: u128, end: u128, parents: Vec<usize>) -> Arc<Mutex<ShardState>> {
    Arc::new(Mutex::new(ShardState {
        id: format!("shardId-{index:012}"),
        starting_hash_key: start,
        ending_hash_key: end,
        open: true,
        parents,
        records: Records::default(),
        bucket: None,
    }))
}

fn lock(s: &Mutex<ShardState>) -> std::sync::MutexGuard<'_, ShardState> {
    // Each update of a shard is complete before its lock is released.
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The 128-bit hash key of a partition key: MD5, read as a big-endian integer (as Kinesis does).
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// The starting hash keys of `n` shards that split the 128-bit key space evenly (as
/// CreateStream does): floor(i * 2^128 / n).
pub fn even_starting_hash_keys(n: usize) -> Vec<u128> {
    let n = n.max(1) as u128;
    // 2^128 = n * (MAX / n) + (MAX % n) + 1.
    let (q, r) = (u128::MAX / n, u128::MAX % n + 1);
    (0..n).map(|i| i * q + i * r / n).collect()
}

impl EmbeddedStream {
    pub fn new(name: impl Into<String>, shard_count: usize, limits: Option<ShardLimits>) -> Self {
        let starts = even_starting_hash_keys(shard_count);
        let mut shards = Vec::new();
        let mut routes = Vec::new();
        for (i, &start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).map_or(u128::MAX, |next| next - 1);
            shards.push(new_shard(i, start, end, Vec::new()));
            routes.push((start, end, i));
        }
        EmbeddedStream { name: name.into(), shards: RwLock::new(shards), routes: RwLock::new(routes), limits }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Shards ever opened (closed parents included).
    pub fn shard_count(&self) -> usize {
        self.shards.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn shard(&self, shard: usize) -> Arc<Mutex<ShardState>> {
        self.shards.read().unwrap_or_else(|e| e.into_inner())[shard].clone()
    }

    pub fn shard_id(&self, shard: usize) -> String {
        lock(&self.shard(shard)).id.clone()
    }

    /// The shards a shard was split or merged from.
    pub fn parents(&self, shard: usize) -> Vec<usize> {
        lock(&self.shard(shard)).parents.clone()
    }

    /// The shard's hash key range (inclusive).
    pub fn hash_range(&self, shard: usize) -> (u128, u128) {
        let handle = self.shard(shard);
        let s = lock(&handle);
        (s.starting_hash_key, s.ending_hash_key)
    }

    /// Whether the shard takes records (a closed one was replaced by a split or merge).
    pub fn is_open(&self, shard: usize) -> bool {
        lock(&self.shard(shard)).open
    }

    /// The open shard whose hash key range holds `hash`.
    pub fn shard_of(&self, hash: u128) -> usize {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let i = routes.partition_point(|&(start, _, _)| start <= hash).saturating_sub(1);
        routes[i].2
    }

    /// Splits an open shard at `new_starting_hash_key`: the shard closes, and two children take
    /// its lower and upper hash key ranges. Returns the children.
    pub fn split_shard(&self, shard: usize, new_starting_hash_key: u128) -> Result<(usize, usize), ReshardError> {
        let parent = self.shard(shard);
        let mut p = lock(&parent);
        if !p.open {
            return Err(ReshardError::Closed(p.id.clone()));
        }
        if new_starting_hash_key <= p.starting_hash_key || new_starting_hash_key > p.ending_hash_key {
            return Err(ReshardError::OutsideRange { key: new_starting_hash_key, shard: p.id.clone() });
        }
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        let (low, high) = (shards.len(), shards.len() + 1);
        shards.push(new_shard(low, p.starting_hash_key, new_starting_hash_key - 1, vec![shard]));
        shards.push(new_shard(high, new_starting_hash_key, p.ending_hash_key, vec![shard]));
        p.open = false;
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        routes.retain(|r| r.2 != shard);
        routes.push((p.starting_hash_key, new_starting_hash_key - 1, low));
        routes.push((new_starting_hash_key, p.ending_hash_key, high));
        routes.sort_unstable();
        Ok((low, high))
    }

    /// Merges two open shards whose hash key ranges are adjacent: both close, and a child takes
    /// their ranges. Returns the child.
    pub fn merge_shards(&self, a: usize, b: usize) -> Result<usize, ReshardError> {
        let (first, second) = (self.shard(a.min(b)), self.shard(a.max(b)));
        let (mut x, mut y) = (lock(&first), lock(&second));
        if !x.open || !y.open {
            return Err(ReshardError::Closed(if x.open { y.id.clone() } else { x.id.clone() }));
        }
        if x.starting_hash_key > y.starting_hash_key {
            std::mem::swap(&mut x, &mut y);
        }
        if x.ending_hash_key.checked_add(1) != Some(y.starting_hash_key) {
            return Err(ReshardError::NotAdjacent(x.id.clone(), y.id.clone()));
        }
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        let child = shards.len();
        shards.push(new_shard(child, x.starting_hash_key, y.ending_hash_key, vec![a.min(b), a.max(b)]));
        x.open = false;
        y.open = false;
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        routes.retain(|r| r.2 != a && r.2 != b);
        routes.push((x.starting_hash_key, y.ending_hash_key, child));
        routes.sort_unstable();
        Ok(child)
    }

    /// Appends one record, or refuses it when the shard is over its limits.
    pub fn put(&self, entry: &Entry) -> Outcome {
        let hash = match &entry.explicit_hash_key {
            Some(h) => match h.parse::<u128>() {
                Ok(v) => v,
                Err(_) => {
                    return Outcome::Failed {
                        code: "InvalidArgumentException".into(),
                        message: format!("explicit hash key {h:?} is not a 128-bit decimal"),
                    }
                }
            },
            None => hash_key(&entry.partition_key),
        };
        // A split or merge may close the shard between routing and locking it: route again.
        let (shard, handle) = loop {
            let shard = self.shard_of(hash);
            let handle = self.shard(shard);
            if lock(&handle).open {
                break (shard, handle);
            }
        };
        let mut s = lock(&handle);
        if !s.open {
            drop(s);
            return self.put(entry);
        }
        if let Some(limits) = self.limits {
            let now = Instant::now();
            let b = s.bucket.get_or_insert(Bucket {
                records: limits.records_per_second,
                bytes: limits.bytes_per_second,
                refilled: now,
            });
            let dt = now.duration_since(b.refilled).as_secs_f64();
            b.records = (b.records + dt * limits.records_per_second).min(limits.records_per_second);
            b.bytes = (b.bytes + dt * limits.bytes_per_second).min(limits.bytes_per_second);
            b.refilled = now;
            let size = (entry.data.len() + entry.partition_key.len()) as f64;
            if b.records < 1.0 || b.bytes < size {
                return Outcome::Failed {
                    code: "ProvisionedThroughputExceededException".into(),
                    message: format!("Rate exceeded for shard {} in stream {}", s.id, self.name),
                };
            }
            b.records -= 1.0;
            b.bytes -= size;
        }
        s.records.push(|position| StreamRecord {
            position,
            // 56 digits like the real service's, increasing within the shard.
            sequence_number: format!("49{shard:06}{position:048}"),
            partition_key: entry.partition_key.clone(),
            data: entry.data.clone(),
            arrival_ms: now_ms(),
        });
        Outcome::Stored { shard_id: s.id.clone() }
    }

    /// Up to `max_records` records from `position` on, within `max_bytes` of payload (as
    /// estimated by `size`), at least one if any is there.
    pub fn read(
        &self,
        shard: usize,
        position: u64,
        max_records: usize,
        max_bytes: usize,
        size: impl Fn(&StreamRecord) -> usize,
    ) -> Vec<StreamRecord> {
        let handle = self.shard(shard);
        let s = lock(&handle);
        s.records.read(position, max_records, max_bytes, size)
    }

    /// The position after the last record of the shard.
    pub fn end(&self, shard: usize) -> u64 {
        lock(&self.shard(shard)).records.end()
    }

    /// Drops the records before `position` (consumed and checkpointed).
    pub fn trim(&self, shard: usize, position: u64) {
        let handle = self.shard(shard);
        let mut s = lock(&handle);
        s.records.trim(position);
    }
}

#[async_trait]
impl KinesisApi for EmbeddedStream {
    async fn put_records(&self, stream: &str, entries: &[Entry]) -> Result<Vec<Outcome>, ApiError> {
        if stream != self.name {
            return Err(ApiError::StreamNotFound(stream.to_string()));
        }
        Ok(entries.iter().map(|e| self.put(e)).collect())
    }

    async fn open_shards(&self, stream: &str) -> Result<Vec<Shard>, ApiError> {
        if stream != self.name {
            return Err(ApiError::StreamNotFound(stream.to_string()));
        }
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(routes.into_iter().map(|(start, _, i)| Shard { id: self.shard_id(i), starting_hash_key: start }).collect())
    }
}

/// A shard of the embedded stream.
pub struct EmbeddedShard {
    pub stream: Arc<EmbeddedStream>,
    pub shard: usize,
    shard_id: String,
}

impl EmbeddedShard {
    pub fn new(stream: Arc<EmbeddedStream>, shard: usize) -> Self {
        let shard_id = stream.shard_id(shard);
        EmbeddedShard { stream, shard, shard_id }
    }
}

#[async_trait::async_trait]
impl ShardSource for EmbeddedShard {
    fn stream_name(&self) -> &str {
        self.stream.name()
    }
    fn shard_id(&self) -> &str {
        &self.shard_id
    }
    async fn end(&self) -> std::io::Result<u64> {
        Ok(self.stream.end(self.shard))
    }
    fn read(
        &self,
        position: u64,
        max_records: usize,
        max_bytes: usize,
        size: fn(&StreamRecord) -> usize,
    ) -> Vec<StreamRecord> {
        self.stream.read(self.shard, position, max_records, max_bytes, size)
    }
    fn trim(&self, position: u64) {
        self.stream.trim(self.shard, position)
    }
    fn closed(&self) -> bool {
        !self.stream.is_open(self.shard)
    }
    fn outlives_run(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(pk: &str) -> Entry {
        Entry { data: Bytes::from_static(b"{}"), partition_key: pk.into(), explicit_hash_key: None, records: 1 }
    }

    #[test]
    fn partition_keys_hash_like_kinesis() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e, read big-endian.
        assert_eq!(hash_key(""), 0xd41d8cd98f00b204e9800998ecf8427e);
        let s = EmbeddedStream::new("s", 4, None);
        assert_eq!(s.shard_of(0), 0);
        assert_eq!(s.shard_of(u128::MAX), 3);
        // Four shards start at multiples of 2^126, as a 4-shard Kinesis stream's do.
        assert_eq!(s.shard_of((1 << 126) - 1), 0);
        assert_eq!(s.shard_of(1 << 126), 1);
        assert_eq!(s.shard_of(3 << 126), 3);
        // The same key always lands on the same shard, with increasing sequence numbers.
        let mut seen = Vec::new();
        for _ in 0..3 {
            match s.put(&entry("session-42")) {
                Outcome::Stored { shard_id } => seen.push(shard_id),
                other => panic!("{other:?}"),
            }
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]));
        let shard = s.shard_of(hash_key("session-42"));
        let records = s.read(shard, 0, 10, usize::MAX, |r| r.data.len());
        assert_eq!(records.len(), 3);
        assert!(records.windows(2).all(|w| processor::kinesis::cmp_sequence(
            &w[0].sequence_number,
            &w[1].sequence_number
        )
        .is_lt()));
        assert_eq!(records[0].sequence_number.len(), 56);
        // Keys spread over all shards.
        for i in 0..400 {
            s.put(&entry(&format!("k{i}")));
        }
        assert!((0..4).all(|i| s.end(i) > 50));
        // Trimming drops consumed records; positions stay.
        s.trim(shard, 2);
        assert_eq!(s.read(shard, 2, 1, usize::MAX, |_| 1)[0].position, 2);
    }

    #[test]
    fn explicit_hash_keys_choose_the_shard() {
        let s = EmbeddedStream::new("s", 2, None);
        let mut e = entry("x");
        e.explicit_hash_key = Some((u128::MAX / 2 + 10).to_string());
        assert_eq!(s.put(&e), Outcome::Stored { shard_id: "shardId-000000000001".into() });
        e.explicit_hash_key = Some("nope".into());
        assert!(matches!(s.put(&e), Outcome::Failed { .. }));
    }

    #[test]
    fn a_split_and_a_merge_close_the_parents_and_route_to_the_children() {
        let s = EmbeddedStream::new("s", 3, None);
        let keys: Vec<String> = (0..600).map(|i| format!("k{i}")).collect();
        for k in &keys {
            s.put(&entry(k));
        }
        let before: Vec<u64> = (0..3).map(|i| s.end(i)).collect();
        let (low, high) = s.split_shard(0, 1u128 << 126).unwrap();
        let merged = s.merge_shards(1, 2).unwrap();
        assert_eq!((low, high, merged, s.shard_count()), (3, 4, 5, 6));
        assert_eq!((s.parents(low), s.parents(merged)), (vec![0], vec![1, 2]));
        assert!(!s.is_open(0) && !s.is_open(1) && !s.is_open(2) && s.is_open(5));
        assert!(s.split_shard(0, 1).is_err() && s.merge_shards(3, 5).is_err(), "closed, or not adjacent");
        for k in &keys {
            s.put(&entry(k));
        }
        // The parents keep their records and take no more; every key lands on a child.
        assert_eq!((0..3).map(|i| s.end(i)).collect::<Vec<_>>(), before);
        assert_eq!(s.end(low) + s.end(high) + s.end(merged), 600);
        for k in &keys {
            let shard = s.shard_of(hash_key(k));
            assert!([low, high, merged].contains(&shard));
            let h = hash_key(k);
            assert_eq!(shard == low, h < 1u128 << 126, "{k}");
        }
    }

    #[test]
    fn shard_limits_throttle_like_the_service() {
        let s = EmbeddedStream::new("s", 1, Some(ShardLimits { records_per_second: 100.0, bytes_per_second: 1e9 }));
        let stored = (0..150).filter(|i| matches!(s.put(&entry(&format!("k{i}"))), Outcome::Stored { .. })).count();
        assert_eq!(stored, 100);
        let s = EmbeddedStream::new("s", 1, Some(ShardLimits { records_per_second: 1e9, bytes_per_second: 30.0 }));
        let stored = (0..20).filter(|i| matches!(s.put(&entry(&format!("k{i}"))), Outcome::Stored { .. })).count();
        assert_eq!(stored, 7, "4 bytes a record (data and key) within 30 bytes");
    }
}

//! An embedded stream with Kinesis semantics: shards that split the 128-bit hash key space
//! evenly, partition keys hashed with MD5 as Kinesis does (or an explicit hash key), per-shard
//! increasing sequence numbers, arrival timestamps, and optional per-shard write limits
//! (1 MB/s and 1,000 records/s by default) that refuse records with
//! `ProvisionedThroughputExceededException` like the real service.

use crate::now_ms;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};
use producer::kinesis::{ApiError, Entry, KinesisApi, Outcome, Shard};

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

/// A record as a consumer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Position in the shard (0, 1, 2, ...), for checkpoints.
    pub position: u64,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Bytes,
    pub arrival_ms: i64,
}

struct Bucket {
    records: f64,
    bytes: f64,
    refilled: Instant,
}

struct ShardState {
    id: String,
    starting_hash_key: u128,
    /// Records not yet trimmed; `records[0]` is at position `first`.
    records: VecDeque<StreamRecord>,
    first: u64,
    next: u64,
    bucket: Option<Bucket>,
}

pub struct EmbeddedStream {
    name: String,
    shards: Vec<Mutex<ShardState>>,
    limits: Option<ShardLimits>,
}

/// The 128-bit hash key of a partition key: MD5, read as a big-endian integer (as Kinesis does).
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

impl EmbeddedStream {
    pub fn new(name: impl Into<String>, shard_count: usize, limits: Option<ShardLimits>) -> Self {
        let n = shard_count.max(1) as u128;
        // floor(i * 2^128 / n): 2^128 = n * (MAX / n) + (MAX % n) + 1.
        let (q, r) = (u128::MAX / n, u128::MAX % n + 1);
        let shards = (0..n)
            .map(|i| {
                Mutex::new(ShardState {
                    id: format!("shardId-{i:012}"),
                    starting_hash_key: i * q + i * r / n,
                    records: VecDeque::new(),
                    first: 0,
                    next: 0,
                    bucket: None,
                })
            })
            .collect();
        EmbeddedStream { name: name.into(), shards, limits }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn shard_id(&self, shard: usize) -> String {
        self.lock(shard).id.clone()
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, ShardState> {
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shard whose hash key range holds `hash`.
    pub fn shard_of(&self, hash: u128) -> usize {
        let starts: Vec<u128> = (0..self.shards.len()).map(|i| self.lock(i).starting_hash_key).collect();
        starts.partition_point(|&s| s <= hash).saturating_sub(1)
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
        let shard = self.shard_of(hash);
        let mut s = self.lock(shard);
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
        let position = s.next;
        s.next += 1;
        let record = StreamRecord {
            position,
            // 56 digits like the real service's, increasing within the shard.
            sequence_number: format!("49{shard:06}{position:048}"),
            partition_key: entry.partition_key.clone(),
            data: entry.data.clone(),
            arrival_ms: now_ms(),
        };
        s.records.push_back(record);
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
        let s = self.lock(shard);
        take_within(&s.records, s.first, position, max_records, max_bytes, size)
    }

    /// The position after the last record of the shard.
    pub fn end(&self, shard: usize) -> u64 {
        self.lock(shard).next
    }

    /// Drops the records before `position` (consumed and checkpointed).
    pub fn trim(&self, shard: usize, position: u64) {
        let mut s = self.lock(shard);
        while s.first < position && s.records.pop_front().is_some() {
            s.first += 1;
        }
    }
}

/// From `records` (whose first is at position `first`): up to `max_records` records from
/// `position` on whose sizes add up to at most `max_bytes`, and at least one if any is there.
pub fn take_within<'a>(
    records: impl IntoIterator<Item = &'a StreamRecord>,
    first: u64,
    position: u64,
    max_records: usize,
    max_bytes: usize,
    size: impl Fn(&StreamRecord) -> usize,
) -> Vec<StreamRecord> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for r in records.into_iter().skip(position.saturating_sub(first) as usize).take(max_records) {
        let n = size(r);
        if !out.is_empty() && bytes + n > max_bytes {
            break;
        }
        bytes += n;
        out.push(r.clone());
    }
    out
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
        Ok((0..self.shards.len())
            .map(|i| {
                let s = self.lock(i);
                Shard { id: s.id.clone(), starting_hash_key: s.starting_hash_key }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pk: &str) -> Entry {
        Entry { data: Bytes::from_static(b"{}"), partition_key: pk.into(), explicit_hash_key: None }
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
    fn shard_limits_throttle_like_the_service() {
        let s = EmbeddedStream::new("s", 1, Some(ShardLimits { records_per_second: 100.0, bytes_per_second: 1e9 }));
        let stored = (0..150).filter(|i| matches!(s.put(&entry(&format!("k{i}"))), Outcome::Stored { .. })).count();
        assert_eq!(stored, 100);
        let s = EmbeddedStream::new("s", 1, Some(ShardLimits { records_per_second: 1e9, bytes_per_second: 30.0 }));
        let stored = (0..20).filter(|i| matches!(s.put(&entry(&format!("k{i}"))), Outcome::Stored { .. })).count();
        assert_eq!(stored, 7, "4 bytes a record (data and key) within 30 bytes");
    }
}

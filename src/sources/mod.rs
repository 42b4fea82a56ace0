//! Where the event source mapping reads shards from: the [`ShardSource`] trait and the
//! [`StreamRecord`]s it yields, with two sources: [`embedded`], an in-process stream with Kinesis
//! semantics (the main job's), and [`kinesis`], a real stream through the AWS SDK (`consume`,
//! `replay`).

pub mod embedded;
pub mod kinesis;

use std::collections::VecDeque;

use bytes::Bytes;

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

/// One shard as the mapping reads it: records at positions 0, 1, 2, ... of this run.
#[async_trait::async_trait]
pub trait ShardSource: Send + Sync {
    fn stream_name(&self) -> &str;
    fn shard_id(&self) -> &str;
    /// The position after the last record available now (a source may fetch more first).
    async fn end(&self) -> std::io::Result<u64>;
    /// Up to `max_records` records from `position` on whose sizes (by `size`) add up to at most
    /// `max_bytes`, at least one if any is there.
    fn read(
        &self,
        position: u64,
        max_records: usize,
        max_bytes: usize,
        size: fn(&StreamRecord) -> usize,
    ) -> Vec<StreamRecord>;
    /// The records before `position` are checkpointed: the source may forget them.
    fn trim(&self, position: u64);
    /// Whether the source has nothing more to give now (for a remote stream: its last read came
    /// back empty), so that a stopping poller with nothing left to process may end.
    fn caught_up(&self) -> bool {
        true
    }
    /// Whether the shard is closed (split or merged): once drained, its poller ends, and its
    /// children are polled.
    fn closed(&self) -> bool {
        false
    }
    /// Whether the records stay readable after this run (a real stream, within its retention).
    /// When they do not, a batch given up on carries its records to the on-failure destination.
    fn outlives_run(&self) -> bool {
        true
    }
}

/// A shard's records from a position on: appended at the end, read from any position, trimmed
/// from the front once checkpointed (positions stay).
#[derive(Debug, Default)]
pub struct Records {
    records: VecDeque<StreamRecord>,
    /// Position of `records[0]`.
    first: u64,
    next: u64,
}

impl Records {
    /// The position after the last record.
    pub fn end(&self) -> u64 {
        self.next
    }

    /// Records held (not trimmed yet).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Appends a record made for the next position.
    pub fn push(&mut self, make: impl FnOnce(u64) -> StreamRecord) -> u64 {
        let position = self.next;
        self.records.push_back(make(position));
        self.next += 1;
        position
    }

    /// Up to `max_records` records from `position` on whose sizes add up to at most
    /// `max_bytes`, and at least one if any is there.
    pub fn read(
        &self,
        position: u64,
        max_records: usize,
        max_bytes: usize,
        size: impl Fn(&StreamRecord) -> usize,
    ) -> Vec<StreamRecord> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for r in self.records.iter().skip(position.saturating_sub(self.first) as usize).take(max_records) {
            let n = size(r);
            if !out.is_empty() && bytes + n > max_bytes {
                break;
            }
            bytes += n;
            out.push(r.clone());
        }
        out
    }

    /// Drops the records before `position`.
    pub fn trim(&mut self, position: u64) {
        while self.first < position && self.records.pop_front().is_some() {
            self.first += 1;
        }
    }
}

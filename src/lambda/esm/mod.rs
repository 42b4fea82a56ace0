//! A local event source mapping that behaves like Lambda's for Kinesis: one poller per shard,
//! in-order delivery, batch size and batching window, the 6 MB payload cap, retry from the
//! lowest failed record of a partial batch response, bisect on error, maximum retry attempts
//! and record age with an on-failure destination, checkpoints and iterator age; children of a
//! split or merge after their parents.
//!
//! - [`policy`]: what to do after an invocation (checkpoint, retry, give up): pure;
//! - [`poller`]: the loops that read shards and invoke;
//! - [`function`]: what is invoked: the handler in this process, or the real bootstrap under the
//!   local Lambda Runtime API.

pub mod function;
pub mod policy;
pub mod poller;

use std::collections::BTreeMap;
use std::time::Duration;

use model::ReasonCode;
use processor::digest::Digest;
use processor::kinesis::InputRecord;
use sink::RecordMeta;

use super::on_failure::Destination;
use crate::sources::StreamRecord;

pub use function::Function;
pub use policy::{Cursor, Decision};
pub use poller::{poll_all, poll_shard, poll_stream};

/// Lambda's invocation payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// Bytes of the Lambda event around one record's base64 data (ids, ARN, timestamps).
const RECORD_ENVELOPE_BYTES: usize = 400;

#[derive(Clone)]
pub struct EsmConfig {
    /// BatchSize: records per invocation at most.
    pub batch_size: usize,
    /// MaximumBatchingWindowInSeconds: how long to gather records before invoking.
    pub batching_window: Duration,
    pub max_payload_bytes: usize,
    /// MaximumRetryAttempts (`None`: until the records expire, the default: see
    /// docs/exactly-once.md).
    pub max_retry_attempts: Option<u32>,
    /// MaximumRecordAgeInSeconds (`None`: no limit).
    pub max_record_age: Option<Duration>,
    /// BisectBatchOnFunctionError.
    pub bisect_on_error: bool,
    /// The on-failure destination: Lambda's invocation record per discarded batch, in a folder or
    /// an SQS queue.
    pub on_failure: Destination,
}

impl EsmConfig {
    /// Lambda's settings of this project's event source mapping: batches of up to 1,000 records,
    /// and a failing batch retried (whole) until it succeeds.
    pub fn new(on_failure: Destination) -> Self {
        EsmConfig {
            batch_size: 1000,
            batching_window: Duration::from_millis(500),
            max_payload_bytes: MAX_PAYLOAD_BYTES,
            max_retry_attempts: None,
            max_record_age: None,
            bisect_on_error: false,
            on_failure,
        }
    }
}

/// The size a record adds to the invocation payload: its data in base64 plus the envelope.
pub fn payload_size(r: &StreamRecord) -> usize {
    r.data.len().div_ceil(3) * 4 + r.partition_key.len() + RECORD_ENVELOPE_BYTES
}

/// Figures of the mapping, for the progress line and the summary.
#[derive(Debug, Clone, Default)]
pub struct EsmStats {
    pub invocations: u64,
    pub failed_invocations: u64,
    /// Kinesis records processed (a KPL aggregate is one; [`EsmStats::user_records`] counts its
    /// records).
    pub records: u64,
    pub events: u64,
    pub quarantined: BTreeMap<ReasonCode, u64>,
    pub duplicates: u64,
    pub discarded: u64,
    /// Per shard: checkpoint and iterator age (ms) of the last invocation.
    pub shards: BTreeMap<String, (u64, i64)>,
    /// Milliseconds from a record's arrival in the stream to its commit, per record.
    pub latencies_ms: Vec<u32>,
    /// What the committed events add up to (for the dashboard).
    pub digest: Digest,
}

impl EsmStats {
    /// User records processed: events, quarantined and duplicates (an aggregate counts its
    /// records).
    pub fn user_records(&self) -> u64 {
        self.events + self.quarantined.values().sum::<u64>() + self.duplicates
    }
}

pub(crate) fn inputs(stream: &str, shard_id: &str, records: &[StreamRecord]) -> Vec<InputRecord> {
    let (stream, shard_id): (std::sync::Arc<str>, std::sync::Arc<str>) = (stream.into(), shard_id.into());
    records
        .iter()
        .map(|r| InputRecord {
            stream: stream.clone(),
            meta: RecordMeta {
                shard_id: shard_id.clone(),
                sequence_number: r.sequence_number.clone(),
                sub_sequence_number: 0,
                partition_key: r.partition_key.clone(),
                arrival_ms: r.arrival_ms,
            },
            data: r.data.to_vec(),
            undecodable: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_estimate_counts_base64_and_the_envelope() {
        let r = StreamRecord {
            position: 0,
            sequence_number: "1".into(),
            partition_key: "pk".into(),
            data: bytes::Bytes::from(vec![0u8; 300]),
            arrival_ms: 0,
        };
        assert_eq!(payload_size(&r), 400 + 2 + RECORD_ENVELOPE_BYTES);
    }
}

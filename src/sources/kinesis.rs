//! A real Kinesis stream (AWS, or moto_server) as a shard source: each open shard is read with
//! GetShardIterator and GetRecords (at most 5 calls a second, the service's limit per shard);
//! fetched records stay buffered until they are checkpointed, so a retry re-reads nothing. Also
//! [`read_range`], the records between two sequence numbers (a replay).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use bytes::Bytes;
use processor::kinesis::{cmp_sequence, InputRecord};
use sink::RecordMeta;

use super::{Records, ShardSource, StreamRecord};

/// GetRecords calls per second and shard that Kinesis allows.
const MIN_CALL_INTERVAL: Duration = Duration::from_millis(200);
/// Records buffered ahead of the checkpoint at most.
const MAX_BUFFERED: usize = 20_000;

struct Reader {
    iterator: Option<String>,
    last_call: Option<Instant>,
}

pub struct KinesisShard {
    client: Client,
    stream: String,
    shard_id: String,
    buffer: Mutex<Records>,
    reader: tokio::sync::Mutex<Reader>,
    /// Whether the last GetRecords call returned no record (or the shard is closed).
    caught_up: AtomicBool,
}

fn io_error(what: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{what}: {}", awsenv::one_line(e)))
}

impl KinesisShard {
    /// Opens a shard at the start of its retention (`TRIM_HORIZON`) or at its end (`LATEST`).
    pub async fn open(client: Client, stream: &str, shard_id: &str, from_start: bool) -> std::io::Result<Self> {
        let kind = if from_start { ShardIteratorType::TrimHorizon } else { ShardIteratorType::Latest };
        let out = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard_id)
            .shard_iterator_type(kind)
            .send()
            .await
            .map_err(|e| {
                io_error(
                    &format!("GetShardIterator {stream}/{shard_id}"),
                    aws_sdk_kinesis::error::DisplayErrorContext(e),
                )
            })?;
        Ok(KinesisShard {
            client,
            stream: stream.to_string(),
            shard_id: shard_id.to_string(),
            buffer: Mutex::new(Records::default()),
            reader: tokio::sync::Mutex::new(Reader { iterator: out.shard_iterator, last_call: None }),
            caught_up: AtomicBool::new(false),
        })
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Records> {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One GetRecords call, if the shard is open, the buffer has room and the rate allows.
    async fn fetch(&self) -> std::io::Result<()> {
        let mut reader = self.reader.lock().await;
        let Some(iterator) = reader.iterator.clone() else {
            self.caught_up.store(true, Ordering::SeqCst);
            return Ok(());
        };
        if self.buffer().len() >= MAX_BUFFERED || reader.last_call.is_some_and(|t| t.elapsed() < MIN_CALL_INTERVAL) {
            return Ok(());
        }
        reader.last_call = Some(Instant::now());
        let out = self.client.get_records().shard_iterator(iterator).limit(10_000).send().await.map_err(|e| {
            io_error(
                &format!("GetRecords {}/{}", self.stream, self.shard_id),
                aws_sdk_kinesis::error::DisplayErrorContext(e),
            )
        })?;
        reader.iterator = out.next_shard_iterator().map(str::to_string);
        self.caught_up.store(out.records().is_empty(), Ordering::SeqCst);
        let mut b = self.buffer();
        for r in out.records() {
            b.push(|position| StreamRecord {
                position,
                sequence_number: r.sequence_number().to_string(),
                partition_key: r.partition_key().unwrap_or_default().to_string(),
                data: Bytes::copy_from_slice(r.data().as_ref()),
                arrival_ms: r.approximate_arrival_timestamp().map_or(0, |t| t.to_millis().unwrap_or(0)),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ShardSource for KinesisShard {
    fn stream_name(&self) -> &str {
        &self.stream
    }
    fn shard_id(&self) -> &str {
        &self.shard_id
    }
    async fn end(&self) -> std::io::Result<u64> {
        self.fetch().await?;
        Ok(self.buffer().end())
    }
    fn read(
        &self,
        position: u64,
        max_records: usize,
        max_bytes: usize,
        size: fn(&StreamRecord) -> usize,
    ) -> Vec<StreamRecord> {
        self.buffer().read(position, max_records, max_bytes, size)
    }
    fn trim(&self, position: u64) {
        self.buffer().trim(position);
    }
    fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::SeqCst)
    }
}

/// The records of a shard from `start` to `end` (inclusive), read back from the stream.
pub async fn read_range(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    shard_id: &str,
    start: &str,
    end: &str,
) -> anyhow::Result<Vec<InputRecord>> {
    let what = format!("{stream} {shard_id} from {start}");
    let it = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(start)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(awsenv::one_line(aws_sdk_kinesis::error::DisplayErrorContext(e))))
        .with_context(|| format!("GetShardIterator {what}"))?;
    let mut iterator = it.shard_iterator;
    let mut out: Vec<InputRecord> = Vec::new();
    while let Some(current) = iterator {
        let page = client
            .get_records()
            .shard_iterator(current)
            .limit(10_000)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(awsenv::one_line(aws_sdk_kinesis::error::DisplayErrorContext(e))))
            .with_context(|| format!("GetRecords {what}"))?;
        let (stream_name, shard): (std::sync::Arc<str>, std::sync::Arc<str>) = (stream.into(), shard_id.into());
        for r in page.records() {
            if cmp_sequence(r.sequence_number(), end).is_gt() {
                return check_start(out, start, &what);
            }
            out.push(InputRecord {
                stream: stream_name.clone(),
                meta: RecordMeta {
                    shard_id: shard.clone(),
                    sequence_number: r.sequence_number().to_string(),
                    sub_sequence_number: 0,
                    partition_key: r.partition_key().unwrap_or_default().to_string(),
                    arrival_ms: r.approximate_arrival_timestamp().map_or(0, |t| t.to_millis().unwrap_or(0)),
                },
                data: r.data().as_ref().to_vec(),
                undecodable: false,
            });
        }
        let caught_up = page.records().is_empty() && page.millis_behind_latest().unwrap_or(0) == 0;
        if caught_up || out.last().is_some_and(|r| r.meta.sequence_number == end) {
            break;
        }
        iterator = page.next_shard_iterator().map(str::to_string);
        tokio::time::sleep(MIN_CALL_INTERVAL).await;
    }
    check_start(out, start, &what)
}

fn check_start(out: Vec<InputRecord>, start: &str, what: &str) -> anyhow::Result<Vec<InputRecord>> {
    match out.first() {
        Some(first) if cmp_sequence(&first.meta.sequence_number, start).is_eq() => Ok(out),
        _ => anyhow::bail!(
            "{what}: the records are no longer in the stream (beyond its retention, or the shard was \
             deleted): they cannot be replayed"
        ),
    }
}

//! Records the event source mapping gave up on, processed later exactly once.
//!
//! `orderstream replay` reads the on-failure records ([`crate::lambda::on_failure`]) of a folder or
//! an SQS queue, reads the records back from the stream (`GetShardIterator AT_SEQUENCE_NUMBER`,
//! within the stream's retention) unless they are inside, and runs them through the shared
//! handler. The shard's ledger knows which records no commit holds, so a replay commits exactly
//! those, and a second replay of the same batch changes nothing.

use std::time::Duration;

use processor::{BatchReport, Processor};
use sink::store::ObjectStore;

use crate::lambda::on_failure::{acknowledge, pending, Destination, OnFailureRecord};
use crate::sources::kinesis::read_range;

/// What a replay did.
#[derive(Debug, Default, Clone)]
pub struct ReplaySummary {
    pub batches: usize,
    pub failed_batches: usize,
    pub report: BatchReport,
}

/// Records per handler call in a replay (as the event source mapping's largest batch).
const REPLAY_CHUNK: usize = 10_000;
/// Invocations of one chunk before the replay of its batch is given up (and left to replay again).
const REPLAY_ATTEMPTS: usize = 5;

/// Replays every on-failure record of `source` through the handler, acknowledging (deleting or
/// moving) each one that is fully committed. `kinesis` reads records that are not inline.
pub async fn replay<S: ObjectStore>(
    source: &Destination,
    kinesis: Option<&aws_sdk_kinesis::Client>,
    processor: &Processor<S>,
) -> anyhow::Result<ReplaySummary> {
    let mut summary = ReplaySummary::default();
    for item in pending(source).await? {
        summary.batches += 1;
        let p = match item {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                summary.failed_batches += 1;
                continue;
            }
        };
        match replay_one(&p.record, kinesis, processor).await {
            Ok(report) => {
                eprintln!(
                    "replayed {}: {} records, {} events, {} quarantined, {} duplicates, {} already committed",
                    p.record.describe(),
                    report.records,
                    report.events,
                    report.quarantined,
                    report.duplicates,
                    report.already_committed
                );
                acknowledge(source, &p).await?;
                summary.report.merge_from(report);
            }
            Err(e) => {
                eprintln!("error: {}: {e:#} (left to replay again)", p.record.describe());
                summary.failed_batches += 1;
            }
        }
    }
    Ok(summary)
}

async fn replay_one<S: ObjectStore>(
    record: &OnFailureRecord,
    kinesis: Option<&aws_sdk_kinesis::Client>,
    processor: &Processor<S>,
) -> anyhow::Result<BatchReport> {
    let b = &record.batch;
    let records = match (&record.kinesis_event, kinesis) {
        (Some(event), _) => crate::input::event_records(&serde_json::to_vec(event)?)?,
        (None, Some(client)) => {
            read_range(client, &record.stream(), &b.shard_id, &b.start_sequence_number, &b.end_sequence_number).await?
        }
        (None, None) => {
            anyhow::bail!("the records are in the stream: replaying them needs Kinesis (AWS_REGION, credentials)")
        }
    };
    let mut total = BatchReport::default();
    for chunk in records.chunks(REPLAY_CHUNK) {
        let mut from = 0;
        for attempt in 1.. {
            let report = processor.process(chunk[from..].to_vec()).await;
            let lowest =
                report.failed.iter().filter_map(|seq| chunk.iter().position(|r| &r.meta.sequence_number == seq)).min();
            let error = report.error.clone();
            total.merge_from(report);
            match lowest {
                None => break,
                Some(_) if attempt >= REPLAY_ATTEMPTS => {
                    anyhow::bail!("{}", error.unwrap_or_else(|| "records failed".into()))
                }
                Some(l) => from = l,
            }
            tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
        }
    }
    total.failed.clear();
    total.error = None;
    Ok(total)
}

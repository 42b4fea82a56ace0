//! `samples` and `process`: the shared handler over one batch of records from a file (a Lambda
//! Kinesis event, or NDJSON) or the bundled contract samples, into a directory or a bucket.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use processor::config::OutputConfig;
use processor::kinesis::InputRecord;
use processor::Processor;
use sink::store::ObjectStore;

use super::publish::{self, AfterArgs};
use super::{print_report, DataDir};
use crate::faults::CrashAfterWrites;
use crate::input::{self, Placement};

#[derive(clap::Args)]
pub struct SamplesArgs {
    #[command(flatten)]
    dir: DataDir,
    /// With a bucket the datasets go to S3 instead of the data directory.
    #[command(flatten)]
    output: OutputConfig,
    #[command(flatten)]
    publish: AfterArgs,
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["event", "ndjson"]))]
pub struct Args {
    #[command(flatten)]
    dir: DataDir,
    /// With a bucket the datasets go to S3 instead of the data directory.
    #[command(flatten)]
    output: OutputConfig,
    /// A Lambda Kinesis event (JSON as Lambda sends it).
    #[arg(long)]
    event: Option<PathBuf>,
    /// One record's data per line.
    #[arg(long)]
    ndjson: Option<PathBuf>,
    /// Stream name of the NDJSON records.
    #[arg(long, default_value = "local")]
    stream: String,
    /// Shard of the NDJSON records.
    #[arg(long, default_value = "shardId-000000000000")]
    shard: String,
    /// Sequence number of the first NDJSON record (the next ones count up by one).
    #[arg(long, default_value_t = 1)]
    first_sequence: u128,
    /// Arrival time of the NDJSON records (RFC 3339); default now.
    #[arg(long, value_parser = parse_time)]
    arrival: Option<i64>,
    /// Only records from this 0-based position on (to replay a retry that starts mid-batch).
    #[arg(long, default_value_t = 0)]
    skip: usize,
    /// At most this many records.
    #[arg(long)]
    take: Option<usize>,
    #[command(flatten)]
    publish: AfterArgs,
    /// Fault injection for crash tests: abort the process right before its N+1th store write.
    #[arg(long, hide = true)]
    crash_after_writes: Option<usize>,
}

fn parse_time(s: &str) -> Result<i64, model::TimeError> {
    model::parse_rfc3339(s).map(|t| t.millis)
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub async fn samples(a: SamplesArgs) -> anyhow::Result<bool> {
    let records = input::sample_records("samples", "shardId-000000000000")?;
    one_batch(&a.dir, &a.output, &a.publish, records, None).await
}

pub async fn run(p: Args) -> anyhow::Result<bool> {
    let records = match &p.event {
        Some(path) => input::event_records(&read(path)?).with_context(|| format!("{}", path.display()))?,
        None => {
            let path = p.ndjson.as_ref().context("give --event or --ndjson")?;
            let arrival_ms = p.arrival.unwrap_or_else(model::now_ms);
            let at = Placement {
                stream: p.stream.as_str().into(),
                shard_id: p.shard.as_str().into(),
                first_sequence: p.first_sequence,
                arrival_ms,
            };
            input::ndjson_records(&read(path)?, &at)
        }
    };
    let records: Vec<_> = records.into_iter().skip(p.skip).take(p.take.unwrap_or(usize::MAX)).collect();
    one_batch(&p.dir, &p.output, &p.publish, records, p.crash_after_writes).await
}

async fn one_batch(
    dir: &DataDir,
    output: &OutputConfig,
    publish_args: &AfterArgs,
    records: Vec<InputRecord>,
    crash_after: Option<usize>,
) -> anyhow::Result<bool> {
    let store = dir.store(output).await?;
    let store: Arc<dyn ObjectStore> = match crash_after {
        Some(n) => Arc::new(CrashAfterWrites::new(store, n)),
        None => store,
    };
    let processor = Processor::new(store.clone(), output.prefix.clone());
    let report = processor.process(records).await;
    if let Some(e) = &report.error {
        eprintln!("error: {e}");
        eprintln!(
            "error: {} of {} records not committed; run again to retry them",
            report.failed.len(),
            report.records
        );
        return Ok(false);
    }
    print_report(&report, processor.store().as_ref());
    if !publish::after(store, &output.prefix, publish_args).await {
        return Ok(false);
    }
    if output.bucket.is_none() && !publish_args.no_publish {
        println!(
            "query: duckdb -c \"SELECT event_type, count(*) FROM read_parquet('{}/events/**/*.parquet', hive_partitioning=true) GROUP BY 1\"",
            dir.data_dir.display()
        );
    }
    Ok(true)
}

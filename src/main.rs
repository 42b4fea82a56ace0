//! `orderstream`: the pipeline on one machine.
//!
//! With no subcommand it runs the shared Lambda handler over the contract samples bundled with
//! the repository and writes the five datasets under `./data/`. `process` runs the handler over
//! a Lambda Kinesis event file or NDJSON, into a local directory or a bucket.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use orderstream::crash::CrashAfterWrites;
use orderstream::input::{self, Placement};
use processor::config::OutputConfig;
use processor::{BatchReport, Processor};
use sink::store::ObjectStore;

#[derive(Parser)]
#[command(name = "orderstream", version, about = "Streaming order analytics on Kinesis, on one machine")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Local data directory (used when no bucket is given).
    #[arg(long, global = true, default_value = "data")]
    data_dir: PathBuf,
    #[command(flatten)]
    output: OutputConfig,
}

#[derive(Subcommand)]
enum Command {
    /// Process the bundled contract samples (the default).
    Samples,
    /// Run the Lambda handler over records from a file, as one batch.
    Process(ProcessArgs),
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["event", "ndjson"]))]
struct ProcessArgs {
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
    /// Fault injection for crash tests: abort the process right before its N+1th store write.
    #[arg(long, hide = true)]
    crash_after_writes: Option<usize>,
}

fn parse_time(s: &str) -> Result<i64, String> {
    model::parse_rfc3339(s).map(|t| t.millis)
}

fn print_report(report: &BatchReport, store: &dyn ObjectStore) {
    println!(
        "records {}: {} events, {} quarantined, {} duplicates dropped, {} already committed; {} files in {}",
        report.records,
        report.events,
        report.quarantined,
        report.duplicates,
        report.already_committed,
        report.files,
        store.describe()
    );
    for (code, n) in &report.quarantined_by_reason {
        println!("  quarantined {code}: {n}");
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let store = orderstream::open_store(cli.output.bucket.as_deref(), &cli.data_dir).await?;
    let (records, crash_after) = match cli.command.unwrap_or(Command::Samples) {
        Command::Samples => (input::sample_records("samples", "shardId-000000000000")?, None),
        Command::Process(p) => {
            let records = match (&p.event, &p.ndjson) {
                (Some(path), _) => input::event_records(
                    &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
                )
                .with_context(|| format!("{}", path.display()))?,
                (None, Some(path)) => {
                    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                    let arrival_ms = p.arrival.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
                    let at =
                        Placement { stream: p.stream, shard_id: p.shard, first_sequence: p.first_sequence, arrival_ms };
                    input::ndjson_records(&text, &at)
                }
                (None, None) => unreachable!("clap requires --event or --ndjson"),
            };
            let records: Vec<_> = records.into_iter().skip(p.skip).take(p.take.unwrap_or(usize::MAX)).collect();
            (records, p.crash_after_writes)
        }
    };
    let store: Arc<dyn ObjectStore> = match crash_after {
        Some(n) => Arc::new(CrashAfterWrites::new(store, n)),
        None => store,
    };
    let processor = Processor::new(store, cli.output.prefix);
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
    if cli.output.bucket.is_none() {
        println!("query: duckdb -c \"SELECT event_type, count(*) FROM read_parquet('{}/events/**/*.parquet', hive_partitioning=true) GROUP BY 1\"", cli.data_dir.display());
    }
    Ok(true)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,aws_config=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

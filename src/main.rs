//! `orderstream`: the pipeline on one machine.
//!
//! With no subcommand it runs the main job: simulated storefront traffic into an embedded stream
//! with Kinesis semantics, a local event source mapping invoking the shared Lambda handler, and
//! the five datasets under `./data/`. `samples` runs the handler over the contract samples;
//! `process` over a Lambda Kinesis event file or NDJSON, into a local directory or a bucket.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::time::Duration;

use producer::args;
use producer::kinesis::KinesisApi;

use orderstream::consume::KinesisShard;
use orderstream::crash::CrashAfterWrites;
use orderstream::esm::{self, EsmConfig, EsmStats, Function};
use orderstream::input::{self, Placement};
use orderstream::pipeline::{self, MainJob};
use orderstream::replay::{self, Destination};
use orderstream::stream::ShardLimits;
use processor::config::OutputConfig;
use processor::runtime_api::{FunctionSpec, LocalLambda};
use processor::{BatchReport, Processor};
use producer::Faults;
use sink::store::ObjectStore;

#[derive(Parser)]
#[command(name = "orderstream", version, about = "Streaming order analytics on Kinesis, on one machine")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Clone)]
struct DataDir {
    /// Local data directory (the datasets' keys under it, as in the bucket).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
}

/// The main job (no subcommand).
#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    dir: DataDir,
    /// How long to produce traffic, in seconds; the pipeline then drains.
    #[arg(long, default_value_t = 60.0, value_parser = args::positive)]
    duration: f64,
    /// Storefront records per second.
    #[arg(long, default_value_t = 5000.0, value_parser = args::positive)]
    rate: f64,
    /// Shards of the embedded stream.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    shards: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Throttle each shard at 1,000 records/s and 1 MiB/s, as a provisioned Kinesis shard.
    #[arg(long)]
    shard_limits: bool,
    /// Share of invalid records (each reason code of the contract), quarantined by the handler.
    #[arg(long, default_value_t = 0.005, value_parser = args::share)]
    invalid_rate: f64,
    /// Share of valid events sent again right after, as a producer retry does (dropped as duplicates).
    #[arg(long, default_value_t = 0.005, value_parser = args::share)]
    duplicate_rate: f64,
    /// Share of valid events whose event time is 2 to 30 minutes behind the clock (late arrivals).
    #[arg(long, default_value_t = 0.01, value_parser = args::share)]
    late_rate: f64,
    #[command(flatten)]
    mapping: MappingArgs,
    /// Fault injection for tests: the data directory refuses every write for LEN seconds from
    /// START seconds into the run (an S3 outage), as "START,LEN".
    #[arg(long, hide = true, value_parser = parse_outage)]
    store_outage: Option<(f64, f64)>,
    /// Reshard the embedded stream this many seconds into the run: split the first shard, and a
    /// second later merge the second and third (with three shards or more).
    #[arg(long, value_parser = args::positive)]
    reshard_at: Option<f64>,
    /// Address of the live dashboard [default: 127.0.0.1:8686, or a free port if that is taken].
    #[arg(long, value_name = "ADDR", conflicts_with = "no_dashboard")]
    dashboard: Option<std::net::SocketAddr>,
    /// Run without the live dashboard.
    #[arg(long)]
    no_dashboard: bool,
    /// Keep serving the dashboard after the run, until Ctrl-C.
    #[arg(long, conflicts_with = "no_dashboard")]
    serve: bool,
}

/// The event source mapping's settings, for every command that maps a stream to the handler.
#[derive(clap::Args, Clone)]
struct MappingArgs {
    /// Event source mapping: records per invocation at most.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10000))]
    batch_size: u64,
    /// Event source mapping: batching window in milliseconds.
    #[arg(long, default_value_t = 500)]
    batching_window_ms: u64,
    /// Event source mapping: retries of a failing batch before it goes to the on-failure
    /// destination, to be replayed with `orderstream replay`; -1 (the default) retries until the
    /// records expire.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(-1..=10000))]
    max_retry_attempts: i64,
    /// Event source mapping: records older than this many seconds go to the on-failure
    /// destination instead of being retried again.
    #[arg(long, value_parser = args::positive)]
    max_record_age: Option<f64>,
    /// Event source mapping: retry a failed batch in halves (BisectBatchOnFunctionError).
    #[arg(long)]
    bisect_on_error: bool,
}

impl MappingArgs {
    fn config(&self, on_failure: Destination) -> EsmConfig {
        let mut esm = EsmConfig::new(on_failure);
        esm.batch_size = self.batch_size as usize;
        esm.batching_window = Duration::from_millis(self.batching_window_ms);
        esm.max_retry_attempts = u32::try_from(self.max_retry_attempts).ok();
        esm.max_record_age = self.max_record_age.map(Duration::from_secs_f64);
        esm.bisect_on_error = self.bisect_on_error;
        esm
    }
}

fn parse_outage(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s.split_once(',').ok_or("expected START,LEN in seconds")?;
    let num = |x: &str| x.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
    Ok((num(a).ok_or("START is not a number of seconds")?, num(b).ok_or("LEN is not a number of seconds")?))
}

const DEFAULT_DASHBOARD: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8686);

#[derive(Subcommand)]
enum Command {
    /// Process the bundled contract samples.
    Samples(SamplesArgs),
    /// Run the Lambda handler over records from a file, as one batch.
    Process(ProcessArgs),
    /// Run the event source mapping against a real Kinesis stream (AWS SDK environment:
    /// AWS_REGION, credentials, AWS_ENDPOINT_URL), outside Lambda, until stopped.
    Consume(ConsumeArgs),
    /// Run the real `processor` binary (the Lambda bootstrap) under a local Lambda Runtime API
    /// with one Lambda Kinesis event, and print its response.
    Invoke(InvokeArgs),
    /// Process the batches the event source mapping gave up on, exactly once: Lambda's on-failure
    /// records from an SQS queue (records read back from Kinesis) or from a folder.
    Replay(ReplayArgs),
    /// Rebuild a shard's state (head.json, a checkpoint: the de-duplication window and the
    /// replayed ranges) from its commit records.
    Repair(RepairArgs),
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["queue_url", "on_failure_dir"]))]
struct ReplayArgs {
    /// The on-failure SQS queue of the event source mapping (the Terraform output
    /// on_failure_queue_url); the records are read back from Kinesis (AWS SDK environment).
    #[arg(long)]
    queue_url: Option<String>,
    /// A folder of on-failure records (the main job's DATA_DIR/_on_failure); replayed ones move
    /// to its replayed/ folder.
    #[arg(long)]
    on_failure_dir: Option<PathBuf>,
    #[command(flatten)]
    dir: DataDir,
    /// With a bucket the datasets go to S3 instead of the data directory.
    #[command(flatten)]
    output: OutputConfig,
}

#[derive(clap::Args)]
struct RepairArgs {
    /// The stream's name.
    #[arg(long)]
    stream: String,
    /// The shard's id (shardId-000000000000).
    #[arg(long)]
    shard: String,
    #[command(flatten)]
    dir: DataDir,
    /// With a bucket the shard's ledger is in S3 instead of the data directory.
    #[command(flatten)]
    output: OutputConfig,
}

/// The real function under the local Lambda Runtime API.
#[derive(clap::Args, Clone)]
struct FunctionArgs {
    /// The Lambda bootstrap to run (for example target/release/processor); it writes to the
    /// bucket given by --bucket, with this process's AWS environment.
    #[arg(long, value_name = "BOOTSTRAP")]
    function: Option<PathBuf>,
    /// The function's timeout in seconds: a longer invocation is stopped, as Lambda stops it.
    #[arg(long, default_value_t = 60.0, value_parser = args::positive, requires = "function")]
    function_timeout: f64,
}

impl FunctionArgs {
    fn spec(&self, output: &OutputConfig) -> anyhow::Result<Option<FunctionSpec>> {
        let Some(bootstrap) = &self.function else { return Ok(None) };
        anyhow::ensure!(bootstrap.is_file(), "--function {}: no such file", bootstrap.display());
        let bucket = output
            .bucket
            .as_deref()
            .context("--function needs --bucket (or ANALYTICS_BUCKET): the Lambda function writes to S3 only")?;
        let mut spec = FunctionSpec::new(bootstrap);
        spec.timeout = Duration::from_secs_f64(self.function_timeout);
        if let Some(region) = std::env::var("AWS_REGION").ok().or_else(|| std::env::var("AWS_DEFAULT_REGION").ok()) {
            spec.region = region;
        }
        spec.env = vec![("ANALYTICS_BUCKET".into(), bucket.into()), ("ANALYTICS_PREFIX".into(), output.prefix.clone())];
        Ok(Some(spec))
    }
}

#[derive(clap::Args)]
struct InvokeArgs {
    #[command(flatten)]
    function: FunctionArgs,
    /// The Lambda Kinesis event (JSON as Lambda sends it).
    #[arg(long)]
    event: PathBuf,
    #[command(flatten)]
    output: OutputConfig,
}

#[derive(clap::Args)]
struct ConsumeArgs {
    /// The Kinesis stream to read.
    #[arg(long)]
    stream: String,
    #[command(flatten)]
    dir: DataDir,
    /// With a bucket the datasets go to S3 instead of the data directory.
    #[command(flatten)]
    output: OutputConfig,
    /// Start at the newest records instead of the oldest retained (what is already committed is
    /// skipped either way).
    #[arg(long)]
    latest: bool,
    /// Stop after this many seconds, once what was read is processed (default: until Ctrl-C).
    #[arg(long, value_parser = args::positive)]
    duration: Option<f64>,
    #[command(flatten)]
    mapping: MappingArgs,
    /// Send the on-failure records of batches given up on to this SQS queue, as Lambda does
    /// (default: a file each in DATA_DIR/_on_failure/).
    #[arg(long)]
    on_failure_queue: Option<String>,
    /// Invoke the real Lambda bootstrap under a local Lambda Runtime API instead of the handler
    /// in this process.
    #[command(flatten)]
    function: FunctionArgs,
}

#[derive(clap::Args)]
struct SamplesArgs {
    #[command(flatten)]
    dir: DataDir,
    /// With a bucket the datasets go to S3 instead of the data directory.
    #[command(flatten)]
    output: OutputConfig,
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["event", "ndjson"]))]
struct ProcessArgs {
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

async fn main_job(a: RunArgs) -> anyhow::Result<bool> {
    let data_dir = a.dir.data_dir.clone();
    let faults = Faults { invalid_rate: a.invalid_rate, duplicate_rate: a.duplicate_rate, late_rate: a.late_rate };
    let esm = a.mapping.config(Destination::Dir(replay::local_dir(&data_dir)));
    let job = MainJob {
        data_dir: data_dir.clone(),
        duration: Duration::from_secs_f64(a.duration),
        rate: a.rate,
        shards: a.shards as usize,
        seed: a.seed,
        shard_limits: a.shard_limits.then(ShardLimits::default),
        faults,
        esm,
        progress: true,
        dashboard: (!a.no_dashboard).then_some(a.dashboard.unwrap_or(DEFAULT_DASHBOARD)),
        dashboard_any_port: a.dashboard.is_none(),
        store_outage: a.store_outage.map(|(from, len)| (Duration::from_secs_f64(from), Duration::from_secs_f64(len))),
        reshard_at: a.reshard_at.map(Duration::from_secs_f64),
    };
    eprintln!(
        "orderstream: {:.0} s of storefront traffic at {:.0} records/s through {} shards into {}/ (Ctrl-C to stop)",
        a.duration,
        a.rate,
        a.shards,
        data_dir.display()
    );
    let summary = pipeline::run(&job).await?;
    println!("{}", summary.render(&data_dir));
    if let (true, Some(d)) = (a.serve, &summary.dashboard) {
        eprintln!("dashboard: still serving the final figures at {} (Ctrl-C to stop)", d.url());
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    }
    Ok(summary.reconciled())
}

async fn consume(a: ConsumeArgs) -> anyhow::Result<bool> {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    anyhow::ensure!(
        shared.region().is_some(),
        "no AWS region configured: set AWS_REGION (for example AWS_REGION=us-east-1)"
    );
    let client = aws_sdk_kinesis::Client::new(&shared);
    let shards = producer::kinesis::SdkKinesis::new(client.clone()).open_shards(&a.stream).await?;
    let (function, target): (Arc<dyn Function>, String) = match a.function.spec(&a.output)? {
        Some(spec) => {
            let target = format!(
                "the function {} (s3://{}/{})",
                spec.bootstrap.display(),
                a.output.bucket.as_deref().unwrap_or(""),
                a.output.prefix
            );
            (Arc::new(esm::RuntimeFunction::new(spec)), target)
        }
        None => {
            let store = orderstream::open_store(a.output.bucket.as_deref(), &a.dir.data_dir).await?;
            let target = store.describe();
            (Arc::new(Processor::new(store, a.output.prefix.clone())), target)
        }
    };
    let destination = match &a.on_failure_queue {
        Some(url) => Destination::Sqs { client: aws_sdk_sqs::Client::new(&shared), queue_url: url.clone() },
        None => Destination::Dir(replay::local_dir(&a.dir.data_dir)),
    };
    let cfg = a.mapping.config(destination);
    let stats = Arc::new(std::sync::Mutex::new(EsmStats::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pollers = Vec::new();
    for shard in &shards {
        let source = KinesisShard::open(client.clone(), &a.stream, &shard.id, !a.latest).await?;
        pollers.push(tokio::spawn(esm::poll_shard(source, function.clone(), cfg.clone(), stats.clone(), stop.clone())));
    }
    eprintln!("consuming {} ({} shards) into {target}; Ctrl-C to stop", a.stream, shards.len());
    match a.duration {
        Some(secs) => tokio::time::sleep(Duration::from_secs_f64(secs)).await,
        None => tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?,
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for p in pollers {
        p.await.context("a shard poller stopped")??;
    }
    let st = stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!(
        "{} records: {} events, {} quarantined, {} duplicates dropped; {} invocations ({} failed), {} records sent to {}",
        st.records,
        st.events,
        st.quarantined.values().sum::<u64>(),
        st.duplicates,
        st.invocations,
        st.failed_invocations,
        st.discarded,
        cfg.on_failure.describe()
    );
    if st.discarded > 0 {
        eprintln!("replay them with: orderstream replay {}", replay_source_flag(&cfg.on_failure));
    }
    Ok(st.discarded == 0)
}

fn replay_source_flag(d: &Destination) -> String {
    match d {
        Destination::Dir(dir) => format!("--on-failure-dir {}", dir.display()),
        Destination::Sqs { queue_url, .. } => format!("--queue-url {queue_url}"),
    }
}

async fn replay_batches(a: ReplayArgs) -> anyhow::Result<bool> {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let source = match (&a.queue_url, &a.on_failure_dir) {
        (Some(url), _) => {
            anyhow::ensure!(
                shared.region().is_some(),
                "no AWS region configured: set AWS_REGION (for example AWS_REGION=us-east-1)"
            );
            Destination::Sqs { client: aws_sdk_sqs::Client::new(&shared), queue_url: url.clone() }
        }
        (None, Some(dir)) => {
            anyhow::ensure!(dir.is_dir(), "--on-failure-dir {}: no such folder", dir.display());
            Destination::Dir(dir.clone())
        }
        (None, None) => anyhow::bail!("give --queue-url or --on-failure-dir"),
    };
    let kinesis = shared.region().is_some().then(|| aws_sdk_kinesis::Client::new(&shared));
    let store = orderstream::open_store(a.output.bucket.as_deref(), &a.dir.data_dir).await?;
    let target = store.describe();
    let processor = Processor::new(store, a.output.prefix.clone());
    let summary = replay::replay(&source, kinesis.as_ref(), &processor).await?;
    let r = &summary.report;
    println!(
        "{} batches from {}: {} replayed, {} failed; {} records: {} events, {} quarantined, {} duplicates dropped, {} already committed; into {target}; {}",
        summary.batches,
        source.describe(),
        summary.batches - summary.failed_batches,
        summary.failed_batches,
        r.records,
        r.events,
        r.quarantined,
        r.duplicates,
        r.already_committed,
        orderstream::peak_memory_note()
    );
    Ok(summary.failed_batches == 0)
}

async fn repair(a: RepairArgs) -> anyhow::Result<bool> {
    let store = orderstream::open_store(a.output.bucket.as_deref(), &a.dir.data_dir).await?;
    let keys = processor::ledger::ShardKeys::new(&a.output.prefix, &a.stream, &a.shard);
    let settings = processor::config::processor_config_from_env().map_err(anyhow::Error::msg)?.ledger;
    let rebuilt = processor::ledger::io::rebuild(&store, &keys, &settings)
        .await
        .with_context(|| format!("repairing {} {} in {}", a.stream, a.shard, store.describe()))?;
    let s = &rebuilt.state;
    println!(
        "{} {}: {} commit records (from {} to {}), high-water mark {}, {} ids in the de-duplication window, {} replayed ranges; wrote checkpoint {} and head.json{}",
        a.stream,
        a.shard,
        rebuilt.commits,
        s.floor,
        s.latest,
        s.high_water_mark.as_deref().unwrap_or("-"),
        s.window.len(),
        s.replays.len(),
        s.checkpoint(),
        if rebuilt.missing_files > 0 { format!("; {} files of the latest commit are gone", rebuilt.missing_files) } else { String::new() }
    );
    Ok(true)
}

async fn invoke(a: InvokeArgs) -> anyhow::Result<bool> {
    let event = std::fs::read(&a.event).with_context(|| format!("cannot read {}", a.event.display()))?;
    serde_json::from_slice::<processor::kinesis::KinesisEvent>(&event)
        .with_context(|| format!("{} is not a Lambda Kinesis event", a.event.display()))?;
    let spec = a.function.spec(&a.output)?.context("--function is required")?;
    let lambda = LocalLambda::start(spec).await.context("cannot serve the local Lambda Runtime API")?;
    match lambda.invoke(event).await {
        Ok(response) => {
            println!("{}", String::from_utf8_lossy(&response));
            Ok(true)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(false)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let Some(command) = cli.command else {
        return main_job(cli.run).await;
    };
    let (output, data_dir, records, crash_after) = match command {
        Command::Consume(a) => return consume(a).await,
        Command::Invoke(a) => return invoke(a).await,
        Command::Replay(a) => return replay_batches(a).await,
        Command::Repair(a) => return repair(a).await,
        Command::Samples(a) => {
            (a.output, a.dir.data_dir, input::sample_records("samples", "shardId-000000000000")?, None)
        }
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
            (p.output, p.dir.data_dir, records, p.crash_after_writes)
        }
    };
    let store = orderstream::open_store(output.bucket.as_deref(), &data_dir).await?;
    let store: Arc<dyn ObjectStore> = match crash_after {
        Some(n) => Arc::new(CrashAfterWrites::new(store, n)),
        None => store,
    };
    let processor = Processor::new(store, output.prefix);
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
    if output.bucket.is_none() {
        println!("query: duckdb -c \"SELECT event_type, count(*) FROM read_parquet('{}/events/**/*.parquet', hive_partitioning=true) GROUP BY 1\"", data_dir.display());
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

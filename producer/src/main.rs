//! `producer`: simulated storefront traffic into a Kinesis stream (`--stream`) or as NDJSON on
//! standard output (`--stdout`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{ArgGroup, Parser, ValueEnum};
use producer::aggregate::{self, Aggregator, Limits};
use producer::args::{self, Pace};
use producer::kinesis::{self, Entry, KinesisApi, Router, SdkKinesis, SendConfig, SendStats, Strategy};
use producer::{Config, Faults, Storefront, Truth};

#[derive(Parser)]
#[command(
    name = "producer",
    version,
    about = "Storefront load generator: simulated clicks and orders into Kinesis or NDJSON"
)]
#[command(group = ArgGroup::new("output").required(true).args(["stream", "stdout"]))]
#[command(group = ArgGroup::new("amount").args(["events", "duration"]))]
struct Cli {
    /// Put the events into this Kinesis stream (AWS SDK standard environment: AWS_REGION,
    /// credentials, AWS_ENDPOINT_URL).
    #[arg(long)]
    stream: Option<String>,
    /// Write the events as NDJSON to standard output instead.
    #[arg(long)]
    stdout: bool,
    /// How many records to produce [default: 1000 unless --duration is given].
    #[arg(long)]
    events: Option<u64>,
    /// Produce for this many seconds instead of a number of events.
    #[arg(long, value_parser = args::seconds)]
    duration: Option<Duration>,
    /// Records per second, paced evenly; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0, value_parser = args::non_negative)]
    rate: f64,
    /// The same seed and flags give the same records, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated time of the first event: RFC 3339, or "now". The default is fixed so that runs
    /// repeat exactly.
    #[arg(long, default_value = "2026-11-23T00:00:00Z", value_parser = parse_start)]
    start: i64,
    /// Events per simulated second at the daily peak (the storefront's clock; with --rate
    /// and --start now, set it to the same value so event times follow the wall clock).
    #[arg(long, default_value_t = 1000.0, value_parser = args::positive)]
    sim_rate: f64,
    /// Visitors browsing at the same time.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    sessions: u64,
    /// Flat traffic instead of the daily curve.
    #[arg(long)]
    flat: bool,
    /// Minutes between flash sales (0: none), each lasting --flash-sale-minutes.
    #[arg(long, default_value_t = 60)]
    flash_sale_every: u32,
    #[arg(long, default_value_t = 5)]
    flash_sale_minutes: u32,
    /// Share of records the contract rejects, spread over every reason code.
    #[arg(long, default_value_t = 0.0, value_parser = args::share)]
    invalid_rate: f64,
    /// Share of valid events sent twice, as a producer retry does.
    #[arg(long, default_value_t = 0.0, value_parser = args::share)]
    duplicate_rate: f64,
    /// Share of events whose event_time is 2 to 30 minutes in the past.
    #[arg(long, default_value_t = 0.0, value_parser = args::share)]
    late_rate: f64,
    /// How records are spread over shards (with --stream).
    #[arg(long, value_enum, default_value_t = KeyStrategy::Session)]
    partition_key: KeyStrategy,
    /// Weights per open shard for --partition-key weighted, e.g. 8,1,1,1.
    #[arg(long, value_delimiter = ',')]
    weights: Vec<f64>,
    /// PutRecords requests in flight.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    concurrency: u64,
    /// Attempts per record before it is given up (written to --dead-letter and counted).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,
    /// Write records that could not be sent here (NDJSON); they are always counted.
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Write the truth manifest (expected rows and sums per table) to this JSON file.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Pack the records of each shard into KPL aggregates (as the Kinesis Producer Library
    /// does), each put with an explicit hash key in its shard's range; an aggregate is sent
    /// when full or after 100 ms.
    #[arg(long, conflicts_with = "stdout")]
    aggregate: bool,
    /// Bytes of a KPL aggregate, at most: up to 1,048,320 [default: 51200, the KPL's].
    #[arg(long)]
    aggregate_max_bytes: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KeyStrategy {
    Session,
    Random,
    RoundRobin,
    Weighted,
}

fn parse_start(s: &str) -> Result<i64, model::TimeError> {
    if s == "now" {
        return Ok(model::now_ms());
    }
    model::parse_rfc3339(s).map(|t| t.millis)
}

fn storefront(cli: &Cli) -> Storefront {
    Storefront::new(Config {
        seed: cli.seed,
        start_ms: cli.start,
        events_per_second: cli.sim_rate,
        concurrent_sessions: cli.sessions as usize,
        daily_curve: !cli.flat,
        flash_sale_every_minutes: cli.flash_sale_every,
        flash_sale_minutes: cli.flash_sale_minutes,
        faults: Faults { invalid_rate: cli.invalid_rate, duplicate_rate: cli.duplicate_rate, late_rate: cli.late_rate },
    })
}

fn write_truth(cli: &Cli, truth: &Truth) -> anyhow::Result<()> {
    if let Some(path) = &cli.truth {
        let json = serde_json::to_vec_pretty(&truth.manifest(cli.seed))?;
        std::fs::write(path, json).with_context(|| format!("cannot write the truth manifest {}", path.display()))?;
    }
    Ok(())
}

fn run_stdout(cli: &Cli, pace: &Pace) -> anyhow::Result<()> {
    let mut store = storefront(cli);
    let mut truth = cli.truth.as_ref().map(|_| Truth::new());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut buf = Vec::with_capacity(1024);
    let mut produced = 0u64;
    while !pace.done(produced) {
        if let Some(wait) = pace.wait(produced) {
            out.flush().ok();
            std::thread::sleep(wait);
        }
        let g = store.next_record(&mut buf);
        buf.push(b'\n');
        if let Err(e) = out.write_all(&buf) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                break;
            }
            return Err(e).context("cannot write to standard output");
        }
        if let Some(t) = truth.as_mut() {
            t.add(&g);
        }
        produced += 1;
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("cannot write to standard output")
        }
        _ => {}
    }
    if let Some(t) = &truth {
        write_truth(cli, t)?;
    }
    Ok(())
}

fn summary(stats: &SendStats, elapsed: Duration) -> String {
    let ms = |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0));
    let shards: Vec<String> = stats.per_shard.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    let aggregated = match stats.kinesis_records == stats.sent {
        true => String::new(),
        false => format!(" in {} KPL aggregates", stats.kinesis_records),
    };
    format!(
        "sent {} records{aggregated} in {:.1} s ({:.0}/s); {} requests; retried {}, throttled {}, failed {}; \
         PutRecords latency p50 {}, p99 {}\nrecords per shard: {}",
        stats.sent,
        elapsed.as_secs_f64(),
        stats.sent as f64 / elapsed.as_secs_f64().max(1e-9),
        stats.requests,
        stats.retried,
        stats.throttled,
        stats.failed,
        ms(stats.latency(0.5)),
        ms(stats.latency(0.99)),
        if shards.is_empty() { "-".to_string() } else { shards.join(", ") }
    )
}

async fn run_stream(cli: &Cli, stream: &str, pace: Pace) -> anyhow::Result<bool> {
    let api = SdkKinesis::from_env().await?;
    let strategy = match cli.partition_key {
        KeyStrategy::Session => Strategy::Session,
        KeyStrategy::Random => Strategy::Random,
        KeyStrategy::RoundRobin => Strategy::RoundRobin,
        KeyStrategy::Weighted => Strategy::Weighted(cli.weights.clone()),
    };
    if !cli.weights.is_empty() && cli.partition_key != KeyStrategy::Weighted {
        bail!("--weights goes with --partition-key weighted");
    }
    // Also checks, before anything is generated, that the stream exists and the credentials work.
    let shards = api.open_shards(stream).await?;
    let aggregator = match cli.aggregate {
        true => Some(Aggregator::new(
            shards.clone(),
            Limits { max_bytes: cli.aggregate_max_bytes.unwrap_or(Limits::default().max_bytes), ..Limits::default() },
        )?),
        false => None,
    };
    let mut router = Router::new(strategy, shards, cli.seed)?;
    let mut cfg = SendConfig::new(stream);
    cfg.concurrency = cli.concurrency as usize;
    cfg.max_attempts = cli.max_attempts;
    let stats = Arc::new(Mutex::new(SendStats::default()));
    let (tx, rx) = tokio::sync::mpsc::channel::<Entry>(4096);
    // With --aggregate, user records pass through the aggregator on their way to the sender.
    let (rx, aggregating) = aggregate::through(rx, aggregator);

    let progress = progress_bar(stats.clone(), pace.started);
    let mut store = storefront(cli);
    let mut truth = cli.truth.as_ref().map(|_| Truth::new());
    let generator = async {
        let mut buf = Vec::with_capacity(1024);
        let mut produced = 0u64;
        while !pace.done(produced) {
            if let Some(wait) = pace.wait(produced) {
                tokio::time::sleep(wait).await;
            }
            let g = store.next_record(&mut buf);
            if let Some(t) = truth.as_mut() {
                t.add(&g);
            }
            let (partition_key, explicit_hash_key) = router.route(g.partition_key);
            let entry =
                Entry { data: bytes::Bytes::copy_from_slice(&buf), partition_key, explicit_hash_key, records: 1 };
            if tx.send(entry).await.is_err() {
                break;
            }
            produced += 1;
        }
        drop(tx);
    };
    let sender = kinesis::send_all(&api, &cfg, rx, stats.clone(), cli.seed.wrapping_add(1));
    let ((), sent) = tokio::join!(generator, sender);
    progress.abort();
    if let Some(stage) = aggregating {
        stage.await.context("the KPL aggregation stopped")?;
    }
    let given_up = sent?;
    let stats = stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
    eprintln!("{}", summary(&stats, pace.started.elapsed()));
    if let Some(t) = &truth {
        write_truth(cli, t)?;
    }
    if given_up.is_empty() {
        return Ok(true);
    }
    let lost: u64 = given_up.iter().map(|e| u64::from(e.records)).sum();
    match &cli.dead_letter {
        Some(path) => {
            let mut out = Vec::new();
            for e in &given_up {
                // An aggregate's user records, one a line, as the others.
                let records = match model::kpl::is_aggregate(&e.data) {
                    true => model::kpl::deaggregate(&e.data)?.into_iter().map(|u| u.data).collect(),
                    false => vec![&e.data[..]],
                };
                for data in records {
                    out.extend_from_slice(data);
                    out.push(b'\n');
                }
            }
            std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "error: {lost} records could not be sent after {} attempts; they are in {}",
                cli.max_attempts,
                path.display()
            );
        }
        None => eprintln!(
            "error: {lost} records could not be sent after {} attempts (use --dead-letter FILE to keep them)",
            cli.max_attempts
        ),
    }
    Ok(false)
}

/// A live line on a terminal: rate, sent, throttled, retried. Nothing when stderr is not one.
fn progress_bar(stats: Arc<Mutex<SendStats>>, started: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let s = stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let rate = s.sent as f64 / started.elapsed().as_secs_f64().max(1e-9);
            let limit = s.rate_limit.map_or(String::new(), |l| format!(", limited to {l:.0}/s"));
            bar.set_message(format!(
                "{rate:.0} records/s{limit} | sent {} | throttled {} | retried {}",
                s.sent, s.throttled, s.retried
            ));
            bar.tick();
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let pace = Pace {
        started: Instant::now(),
        rate: cli.rate,
        events: cli.events.or(if cli.duration.is_none() { Some(1000) } else { None }),
        duration: cli.duration,
    };
    let result = match &cli.stream {
        _ if cli.aggregate_max_bytes.is_some() && !cli.aggregate => {
            Err(anyhow::anyhow!("--aggregate-max-bytes goes with --aggregate"))
        }
        None => run_stdout(&cli, &pace).map(|()| true),
        Some(stream) => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(run_stream(&cli, stream, pace)),
            Err(e) => Err(anyhow::anyhow!("cannot start the async runtime: {e}")),
        },
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

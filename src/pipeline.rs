//! The main job: simulated storefront traffic (the producer) into an embedded stream, a local
//! event source mapping invoking the shared Lambda handler, and the datasets under a local
//! directory; then a summary reconciled with the producer's truth manifest.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use model::EventType;
use processor::Processor;
use producer::aggregate::{self, Aggregator, Limits};
use producer::args::Pace;
use producer::kinesis::{self, Entry, KinesisApi, SendConfig, SendStats};
use producer::{Config, Faults, Storefront, Truth, TruthManifest};
use sink::store::{LocalStore, ObjectStore};

use crate::faults::Outage;
use crate::publishing::{Background, PublishStats};

use crate::dashboard::{self, Dashboard, Live};
use crate::lambda::esm::{self, EsmConfig, EsmStats};
use crate::now_ms;
use crate::sources::embedded::{EmbeddedStream, ShardLimits};

#[derive(Clone)]
pub struct MainJob {
    pub data_dir: PathBuf,
    pub duration: Duration,
    /// Records per second produced (and the storefront clock's speed, so that event times
    /// follow the wall clock).
    pub rate: f64,
    pub shards: usize,
    pub seed: u64,
    pub shard_limits: Option<ShardLimits>,
    pub faults: Faults,
    pub esm: EsmConfig,
    /// A live progress line on standard error.
    pub progress: bool,
    /// Where to serve the live dashboard (none: no dashboard).
    pub dashboard: Option<SocketAddr>,
    /// When the dashboard's address is taken, serve on a free port instead of failing.
    pub dashboard_any_port: bool,
    /// Fault injection: the data directory refuses writes for a while (start, length).
    pub store_outage: Option<(Duration, Duration)>,
    /// Reshard the stream this far into the run: split the first shard in two, and a second
    /// later merge the second and third (when there are three).
    pub reshard_at: Option<Duration>,
    /// How often the in-process publisher runs a round.
    pub publish_interval: Duration,
    /// Pack each shard's records into KPL aggregates, as the producer's `--aggregate` does.
    pub aggregate: bool,
}

async fn reshard(stream: Arc<EmbeddedStream>, at: Duration) -> anyhow::Result<()> {
    tokio::time::sleep(at).await;
    let (start, end) = stream.hash_range(0);
    let (low, high) = stream.split_shard(0, start + (end - start) / 2 + 1)?;
    eprintln!("resharding: split {} into {} and {}", stream.shard_id(0), stream.shard_id(low), stream.shard_id(high));
    tokio::time::sleep(Duration::from_secs(1)).await;
    if stream.shard_count() >= 5 {
        let child = stream.merge_shards(1, 2)?;
        eprintln!(
            "resharding: merged {} and {} into {}",
            stream.shard_id(1),
            stream.shard_id(2),
            stream.shard_id(child)
        );
    }
    Ok(())
}

/// What a run did.
pub struct Summary {
    pub stream: String,
    pub elapsed: Duration,
    pub truth: TruthManifest,
    pub sent: SendStats,
    pub esm: EsmStats,
    /// The dashboard, still serving the final figures until dropped.
    pub dashboard: Option<Dashboard>,
    pub publish_interval: Duration,
    pub published: PublishStats,
    /// The visible datasets this run published, as a reader lists them.
    pub audit: publisher::audit::Audit,
    /// Data files the folder held before the run (left out of `audit`).
    pub earlier_files: usize,
}

pub async fn run(job: &MainJob) -> anyhow::Result<Summary> {
    anyhow::ensure!(job.rate > 0.0, "--rate must be above 0: the storefront's clock follows it");
    let store = LocalStore::new(&job.data_dir).with_context(|| format!("cannot use {}", job.data_dir.display()))?;
    // The folder may hold earlier runs' datasets: the summary counts this run's files.
    let earlier = publisher::audit::visible_files(&store, "").await.context("listing the data directory")?;
    let store: Arc<dyn ObjectStore> = match job.store_outage {
        Some((from, len)) => Arc::new(Outage::new(Arc::new(store), Instant::now() + from, len)),
        None => Arc::new(store),
    };
    let processor = Arc::new(Processor::new(store.clone(), ""));
    // A stream name per run: the processor's commit state is per stream, and a new embedded
    // stream starts its sequence numbers again.
    let started_at = chrono::DateTime::from_timestamp_millis(now_ms()).unwrap_or_default();
    let name = format!("storefront-{}", started_at.format("%Y%m%dT%H%M%S%.3f"));
    let stream = Arc::new(EmbeddedStream::new(&name, job.shards, job.shard_limits));
    let stop = Arc::new(AtomicBool::new(false));
    let esm_stats = Arc::new(Mutex::new(EsmStats::default()));
    let sent = Arc::new(Mutex::new(SendStats::default()));
    let published = Arc::new(Mutex::new(PublishStats::default()));
    let live = Arc::new(Live::new(&name, job.shards, job.rate, sent.clone(), esm_stats.clone(), published.clone()));
    let started = live.started;
    let dashboard = match job.dashboard {
        Some(addr) => Some(start_dashboard(live.clone(), addr, job.dashboard_any_port).await?),
        None => None,
    };
    let pollers = tokio::spawn(esm::poll_stream(
        stream.clone(),
        processor.clone(),
        job.esm.clone(),
        esm_stats.clone(),
        stop.clone(),
    ));
    let reshard = job.reshard_at.map(|at| tokio::spawn(reshard(stream.clone(), at)));
    let publishing = Background::start(store.clone(), "", job.publish_interval, published.clone());

    let progress = job.progress.then(|| {
        let live = live.clone();
        tokio::spawn(async move {
            let terminal = std::io::stderr().is_terminal();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let secs = started.elapsed().as_secs_f64();
                let line = progress_line(
                    secs,
                    live.produced.load(Ordering::Relaxed),
                    &live.sent.lock().unwrap_or_else(|e| e.into_inner()),
                    &live.esm.lock().unwrap_or_else(|e| e.into_inner()),
                    &live.published.lock().unwrap_or_else(|e| e.into_inner()),
                );
                if terminal {
                    eprint!("\r\x1b[2K{line}");
                } else if (secs as u64).is_multiple_of(10) {
                    eprintln!("{line}");
                }
            }
        })
    });

    let (tx, rx) = tokio::sync::mpsc::channel::<Entry>(8192);
    // With --aggregate, the records pass through the KPL aggregator on their way in.
    let aggregator = match job.aggregate {
        true => {
            let shards = stream.open_shards(&name).await.context("listing the embedded stream's shards")?;
            Some(Aggregator::new(shards, Limits::default())?)
        }
        false => None,
    };
    let (rx, aggregating) = aggregate::through(rx, aggregator);
    let mut send_cfg = SendConfig::new(&name);
    send_cfg.base_backoff = Duration::from_millis(20);
    send_cfg.max_backoff = Duration::from_secs(1);
    send_cfg.max_attempts = 50;
    let sender = kinesis::send_all(&*stream, &send_cfg, rx, sent.clone(), job.seed.wrapping_add(1));
    let mut storefront = Storefront::new(Config {
        seed: job.seed,
        start_ms: now_ms(),
        events_per_second: job.rate,
        daily_curve: false,
        flash_sale_every_minutes: 0,
        faults: job.faults,
        ..Config::default()
    });
    let counter = live.clone();
    let pace = Pace { started, rate: job.rate, events: None, duration: Some(job.duration) };
    let generate = async move {
        let mut truth = Truth::new();
        let mut buf = Vec::with_capacity(1024);
        let mut n = 0u64;
        while !pace.done(n) {
            if let Some(wait) = pace.wait(n) {
                tokio::time::sleep(wait).await;
            }
            // A chunk per millisecond of schedule keeps the timer cost low at high rates.
            let chunk = (job.rate / 1000.0).ceil().max(1.0) as u64;
            for _ in 0..chunk {
                let g = storefront.next_record(&mut buf);
                truth.add(&g);
                let entry = Entry {
                    data: bytes::Bytes::copy_from_slice(&buf),
                    partition_key: g.partition_key,
                    explicit_hash_key: None,
                    records: 1,
                };
                if tx.send(entry).await.is_err() {
                    return truth;
                }
                n += 1;
                counter.produced.store(n, Ordering::Relaxed);
            }
        }
        truth
    };
    let (given_up, truth) = tokio::join!(sender, generate);
    if let Some(stage) = aggregating {
        stage.await.context("the KPL aggregation stopped")?;
    }
    let given_up = given_up.context("the embedded stream refused the records")?;
    let lost: u64 = given_up.iter().map(|e| u64::from(e.records)).sum();
    anyhow::ensure!(lost == 0, "{lost} records could not be put into the embedded stream");
    stop.store(true, Ordering::SeqCst);
    if let Some(r) = reshard {
        r.await.context("the resharding task stopped")??;
    }
    pollers
        .await
        .context("an event source mapping poller stopped")?
        .context("writing to the on-failure destination")?;
    publishing.finish().await.context("publishing what the handler committed")?;
    if let Some(p) = progress {
        p.abort();
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
    }
    let audit =
        publisher::audit::audit_except(&*store, "", &earlier).await.context("listing the published datasets")?;
    let truth_json = truth.manifest(job.seed);
    let truth_file = job.data_dir.join(format!("_truth-{name}.json"));
    std::fs::write(&truth_file, serde_json::to_vec_pretty(&truth_json)?)
        .with_context(|| format!("cannot write {}", truth_file.display()))?;
    let sent = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let esm = esm_stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
    live.finished.store(true, Ordering::SeqCst);
    live.tick();
    let published = published.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Summary {
        stream: name,
        elapsed: started.elapsed(),
        truth: truth_json,
        sent,
        esm,
        dashboard,
        publish_interval: job.publish_interval,
        published,
        audit,
        earlier_files: earlier.len(),
    })
}

async fn start_dashboard(live: Arc<Live>, addr: SocketAddr, any_port: bool) -> anyhow::Result<Dashboard> {
    let d = match dashboard::serve(live.clone(), addr).await {
        Err(e) if any_port && e.kind() == std::io::ErrorKind::AddrInUse => {
            dashboard::serve(live, SocketAddr::new(addr.ip(), 0)).await
        }
        other => other,
    }
    .with_context(|| {
        format!("cannot serve the dashboard on {addr} (choose another with --dashboard, or --no-dashboard)")
    })?;
    eprintln!("dashboard: {}", d.url());
    Ok(d)
}

fn progress_line(secs: f64, produced: u64, sent: &SendStats, esm: &EsmStats, published: &PublishStats) -> String {
    let age = esm.shards.values().map(|(_, age)| *age).max().unwrap_or(0);
    let quarantined: u64 = esm.quarantined.values().sum();
    format!(
        "{secs:>5.0} s | produced {produced} ({:.0}/s) | in stream {} | processed {} ({:.0}/s): {} events, {quarantined} quarantined | max iterator age {:.1} s | published {} files in {} rounds",
        produced as f64 / secs.max(1e-9),
        sent.sent,
        esm.user_records(),
        esm.user_records() as f64 / secs.max(1e-9),
        esm.events,
        age as f64 / 1000.0,
        published.files,
        published.rounds,
    )
}

fn percentile(sorted: &[u32], q: f64) -> u32 {
    sorted.get(((sorted.len().saturating_sub(1)) as f64 * q).round() as usize).copied().unwrap_or(0)
}

impl Summary {
    /// Whether what the handler processed equals the producer's truth manifest.
    pub fn reconciled(&self) -> bool {
        let t = &self.truth.tables;
        let quarantined: u64 = self.esm.quarantined.values().sum();
        self.esm.events == t.events.rows && quarantined == t.quarantine.rows && self.esm.discarded == 0
    }

    /// Whether every commit was published, with section 2.7's shape.
    pub fn published_ok(&self) -> bool {
        self.published.missing_files == 0 && self.audit.holds()
    }

    fn publishing_lines(&self) -> String {
        let p = &self.published;
        let a = &self.audit;
        let per_table: Vec<String> = a
            .tables
            .iter()
            .map(|(t, x)| format!("{t} {} in {} hour{}", x.files, x.hours, if x.hours == 1 { "" } else { "s" }))
            .collect();
        let most_files = a.tables.values().map(|t| t.max_files_per_hour_and_round).max().unwrap_or(0);
        let most_rows = a.tables.values().map(|t| t.max_rows_per_key).max().unwrap_or(0);
        let failed = if p.failed_rounds > 0 {
            format!(
                " ({} rounds failed and were rolled forward; last: {})",
                p.failed_rounds,
                p.last_error.as_deref().unwrap_or("-")
            )
        } else {
            String::new()
        };
        format!(
            "published: {rounds} rounds every {interval:.0} s, {commits} commits ({staged} staged files, {staged_mb:.1} MB) into {files} files ({mb:.1} MB){failed}: {per_table}\n\
             \x20    at most {most_files} file per table, hour and round; sales_minute and funnel_minute at most {most_rows} row per key per round\n\
             freshness from arrival in the stream to visible in the datasets: p50 {f50} ms, p99 {f99} ms",
            rounds = p.rounds,
            interval = self.publish_interval.as_secs_f64(),
            commits = p.commits,
            files = p.files,
            staged = p.input_files,
            staged_mb = p.input_bytes as f64 / 1e6,
            mb = p.bytes as f64 / 1e6,
            per_table = per_table.join(", ")
                + &if self.earlier_files > 0 {
                    format!(" (besides {} files of earlier runs in the folder)", self.earlier_files)
                } else {
                    String::new()
                },
            f50 = p.freshness_ms(0.5),
            f99 = p.freshness_ms(0.99),
        )
    }

    pub fn render(&self, data_dir: &std::path::Path) -> String {
        let t = &self.truth;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut lat = self.esm.latencies_ms.clone();
        lat.sort_unstable();
        let by_type = |k: EventType| t.events_of(k) as f64;
        let pct = |a: f64, b: f64| if b > 0.0 { format!("{:.1}%", 100.0 * a / b) } else { "-".into() };
        let quarantined: Vec<String> = self.esm.quarantined.iter().map(|(c, n)| format!("{c} {n}")).collect();
        let revenue: Vec<String> =
            t.tables.order_items.line_total_minor_by_currency.iter().map(|(c, v)| format!("{c} {}", v.0)).collect();
        let dir = data_dir.display();
        let user_records = self.esm.user_records();
        format!(
            "stream {stream}: {shards} shards, {secs:.1} s\n\
             in:  {produced} records produced ({in_rate:.0}/s); put {sent}, throttled {throttled}, retried {retried}\n\
             out: {events} events, {q} quarantined, {dups} duplicates dropped, {discarded} sent to the on-failure destination\n\
             \x20    quarantined by reason: {qr}\n\
             orders: {orders}; revenue (minor units): {revenue}\n\
             funnel: product views per page view {f1}, add to cart per product view {f2}, checkout per add to cart {f3}, order per checkout {f4}\n\
             throughput: {out_rate:.0} records/s processed{aggregates}, {inv} invocations ({failed} failed); {peak}\n\
             latency from arrival in the stream to committed files: p50 {p50} ms, p95 {p95} ms, p99 {p99} ms, max {max} ms\n\
             {publishing}\n\
             reconciled with the producer's truth manifest ({dir}/_truth-{stream}.json): {ok}{replay}\n\
             \n\
             Query the datasets in {dir}/ with DuckDB:\n\
             \x20 duckdb -c \"SELECT event_type, count(*) FROM read_parquet('{dir}/events/**/*.parquet', hive_partitioning=true) GROUP BY 1 ORDER BY 2 DESC\"\n\
             \x20 duckdb -c \"SELECT window_start, currency, sum(revenue_minor) FROM read_parquet('{dir}/sales_minute/**/*.parquet', hive_partitioning=true) GROUP BY ALL ORDER BY 1 DESC LIMIT 20\"\n\
             \x20 duckdb -c \"SELECT country, sum(checkouts), sum(orders) FROM read_parquet('{dir}/funnel_minute/**/*.parquet', hive_partitioning=true) GROUP BY 1 ORDER BY 3 DESC\"\n\
             \x20 duckdb -c \"SELECT reason_code, count(*), any_value(reason) FROM read_parquet('{dir}/quarantine/**/*.parquet', hive_partitioning=true) GROUP BY 1\"",
            stream = self.stream,
            shards = self.esm.shards.len(),
            produced = t.records,
            in_rate = t.records as f64 / secs,
            sent = self.sent.sent,
            throttled = self.sent.throttled,
            retried = self.sent.retried,
            events = self.esm.events,
            q = self.esm.quarantined.values().sum::<u64>(),
            dups = self.esm.duplicates,
            discarded = self.esm.discarded,
            qr = if quarantined.is_empty() { "-".to_string() } else { quarantined.join(", ") },
            orders = by_type(EventType::OrderPlaced),
            revenue = if revenue.is_empty() { "-".to_string() } else { revenue.join(", ") },
            f1 = pct(by_type(EventType::ProductView), by_type(EventType::PageView)),
            f2 = pct(by_type(EventType::AddToCart), by_type(EventType::ProductView)),
            f3 = pct(by_type(EventType::CheckoutStarted), by_type(EventType::AddToCart)),
            f4 = pct(by_type(EventType::OrderPlaced), by_type(EventType::CheckoutStarted)),
            out_rate = user_records as f64 / secs,
            aggregates = match user_records == self.esm.records {
                true => String::new(),
                false => format!(" (in {} KPL aggregates)", self.esm.records),
            },
            inv = self.esm.invocations,
            failed = self.esm.failed_invocations,
            p50 = percentile(&lat, 0.5),
            p95 = percentile(&lat, 0.95),
            p99 = percentile(&lat, 0.99),
            max = lat.last().copied().unwrap_or(0),
            publishing = self.publishing_lines(),
            ok = if self.reconciled() { "yes" } else { "NO" },
            peak = crate::peak_memory_note(),
            replay = if self.esm.discarded > 0 {
                format!("\n{} records were given up on: replay them with `cargo run --release -- replay --on-failure-dir {dir}/_on_failure`", self.esm.discarded)
            } else {
                String::new()
            },
        )
    }
}

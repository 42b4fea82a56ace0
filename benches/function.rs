//! The Lambda function measured as Lambda runs it: a bootstrap under the local Lambda Runtime
//! API (`orderstream::lambda::runtime_api`), writing to a local S3 (moto_server), on the fixed
//! payloads of `bench/payloads/` (docs/performance.md, "The function"):
//!
//!     cargo bench --bench function -- payloads
//!     cargo bench --bench function -- run --function target/lambda/processor \
//!         [--peer bench/peer/bootstrap] [--invocations N] [--only PAYLOAD] [--record FILE]
//!
//! `payloads` writes the payloads (ZSTD-compressed Lambda Kinesis events of just under 6 MB,
//! generated from fixed seeds: run it only to change them). `run` starts a fresh function per
//! payload and reports, per payload: the cold start (process start to the answer of an empty
//! event), the wall time of each full invocation (p50, p99), the CPU time of the function's
//! process per invocation and its events per CPU second, and the process's peak resident memory.
//! Every invocation goes to a shard of its own (the shard id in the event is rewritten), so that
//! each is a first batch, never a replay of the last. With `--peer`, the Python peer
//! (bench/peer/) runs the same payloads the same way, and a table of ratios follows. With
//! `--record`, the figures are also written as JSON (bench/function.json: what
//! `orderstream cost` prices the Lambda functions' duration and logs from).
//! `scripts/bench` builds, runs and records it all.

use std::path::{Path, PathBuf};
use std::time::Instant;

use orderstream::lambda::runtime_api::{FunctionSpec, LocalLambda};
use processor::kinesis::{event_json, InputRecord};
use producer::{Config, Faults, Storefront};
use sink::RecordMeta;

const PAYLOAD_LIMIT: usize = 6_000_000;
/// The shard id every payload is generated with (rewritten per invocation).
const SHARD: &str = "shardId-000000000000";

fn usage() -> ! {
    eprintln!(
        "usage: function payloads | function run --function PATH [--peer PATH] [--invocations N] [--only NAME] [--record FILE] | function instructions --payload NAME"
    );
    std::process::exit(2)
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn payload_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/payloads")
}

fn main() {
    // `cargo bench` passes `--bench`; the subcommand is the first other argument.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("payloads") => write_payloads(),
        Some("instructions") => {
            let Some(name) = flag(&args, "--payload") else { usage() };
            instructions(&name);
        }
        Some("run") => {
            let Some(function) = flag(&args, "--function").map(PathBuf::from) else { usage() };
            let invocations = flag(&args, "--invocations").map_or(10, |v| {
                v.parse().unwrap_or_else(|_| {
                    eprintln!("error: --invocations {v:?} is not a whole number");
                    std::process::exit(2)
                })
            });
            let peer = flag(&args, "--peer").map(PathBuf::from);
            let record = flag(&args, "--record").map(PathBuf::from);
            run(&function, peer.as_deref(), invocations, flag(&args, "--only").as_deref(), record.as_deref());
        }
        _ => usage(),
    }
}

/// A record of the payloads' one shard, arriving 50 ms after its event time.
fn record(sequence: usize, partition_key: String, event_time_ms: i64, data: Vec<u8>) -> InputRecord {
    InputRecord {
        stream: "storefront".into(),
        meta: RecordMeta {
            shard_id: SHARD.into(),
            sequence_number: testkit::records::sequence_number(sequence + 1),
            sub_sequence_number: 0,
            partition_key,
            arrival_ms: event_time_ms + 50,
        },
        data,
        undecodable: false,
    }
}

/// The bytes one record adds to the event's JSON.
fn json_size(r: &InputRecord) -> usize {
    event_json(std::slice::from_ref(r), "eu-west-1", "123456789012").to_string().len() - r#"{"Records":[]}"#.len() + 1
}

/// Records from `next` until the event would pass the payload limit.
fn fill(mut next: impl FnMut(usize) -> InputRecord) -> Vec<InputRecord> {
    let (mut records, mut size) = (Vec::new(), r#"{"Records":[]}"#.len());
    loop {
        let r = next(records.len());
        size += json_size(&r);
        if size > PAYLOAD_LIMIT {
            return records;
        }
        records.push(r);
    }
}

fn storefront(seed: u64, invalid_rate: f64) -> Storefront {
    Storefront::new(Config {
        seed,
        events_per_second: 2_000.0,
        daily_curve: false,
        flash_sale_every_minutes: 0,
        faults: Faults { invalid_rate, duplicate_rate: 0.0, late_rate: 0.0 },
        ..Config::default()
    })
}

/// The storefront's records: every event type, 1% (or 5%) of them invalid over every reason code.
fn storefront_records(seed: u64, invalid_rate: f64) -> Vec<InputRecord> {
    let mut shop = storefront(seed, invalid_rate);
    let mut buf = Vec::new();
    fill(|n| {
        let g = shop.next_record(&mut buf);
        record(n, g.partition_key, g.event_time_ms, buf.clone())
    })
}

const CATEGORIES: [&str; 5] = ["books", "garden", "toys", "kitchen", "sports"];
const COUNTRIES: [&str; 5] = ["DE", "FR", "US", "GB", "JP"];

/// Orders of 40 lines each (the contract allows 500): the `order_items` table's worst case.
fn large_orders() -> Vec<InputRecord> {
    let start = Config::default().start_ms;
    fill(|n| {
        let time = start + n as i64 * 40;
        let items: Vec<serde_json::Value> = (0..40)
            .map(|i| {
                serde_json::json!({"product_id": format!("p-{:05}", (n * 7 + i * 13) % 20_000),
                    "category": CATEGORIES[i % 5],
                    "quantity": 1 + (n + i) % 4, "unit_price_minor": 199 + ((n * 31 + i * 17) % 20_000)})
            })
            .collect();
        let total: i64 = items
            .iter()
            .map(|i| i["quantity"].as_i64().unwrap_or(0) * i["unit_price_minor"].as_i64().unwrap_or(0))
            .sum();
        let event = serde_json::json!({
            "event_id": format!("order-{n:08}"), "event_type": "order_placed",
            "event_time": model::format_millis(time), "session_id": format!("s-{:06}", n % 5_000),
            "customer_id": format!("c-{:06}", n % 3_000), "country": COUNTRIES[n % 5],
            "device": "web", "order_id": format!("o-{n:08}"), "currency": "EUR",
            "items": items, "total_minor": total + 499, "shipping_minor": 499,
        });
        record(n, format!("s-{:06}", n % 5_000), time, event.to_string().into_bytes())
    })
}

/// The storefront's records (1% invalid) in KPL aggregates of up to 50 KB (the KPL's default
/// `AggregationMaxSize` is 51,200 bytes), as a shop using the KPL sends them.
fn kpl_aggregates() -> Vec<InputRecord> {
    let mut shop = storefront(14, 0.01);
    let mut buf = Vec::new();
    let mut next_user = move || {
        let g = shop.next_record(&mut buf);
        (g.partition_key, g.event_time_ms, buf.clone())
    };
    let mut carry = None;
    fill(|n| {
        let (key, time, data) = carry.take().unwrap_or_else(&mut next_user);
        let mut aggregate = model::kpl::Aggregate::new();
        aggregate.add(&key, &data);
        loop {
            let (k, t, d) = next_user();
            if aggregate.len_with(&k, &d) > 50_000 {
                carry = Some((k, t, d));
                return record(n, key, time, aggregate.finish());
            }
            aggregate.add(&k, &d);
        }
    })
}

fn write_payloads() {
    let dir = payload_dir();
    std::fs::create_dir_all(&dir).expect("bench/payloads");
    let payloads: [(&str, Vec<InputRecord>); 4] = [
        ("storefront", storefront_records(12, 0.01)),
        ("bad5", storefront_records(13, 0.05)),
        ("large-orders", large_orders()),
        ("kpl", kpl_aggregates()),
    ];
    for (name, records) in payloads {
        let json = event_json(&records, "eu-west-1", "123456789012").to_string();
        assert!(json.len() <= PAYLOAD_LIMIT);
        let packed = zstd::encode_all(json.as_bytes(), 19).expect("zstd");
        let path = dir.join(format!("{name}.json.zst"));
        std::fs::write(&path, &packed).expect("write the payload");
        println!("{}: {} records, {} bytes ({} compressed)", path.display(), records.len(), json.len(), packed.len());
    }
}

/// A payload: its name, its event's text and how many user records it holds.
struct Payload {
    name: String,
    text: String,
    user_records: usize,
    /// The user records' bytes (their JSON), as the processor reads them.
    json_bytes: usize,
}

fn read_payloads() -> Vec<Payload> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(payload_dir())
        .expect("bench/payloads (cargo bench --bench function -- payloads)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".json.zst"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let packed = std::fs::read(&path).expect("a payload");
            let text = String::from_utf8(zstd::decode_all(&packed[..]).expect("zstd")).expect("UTF-8");
            let event = processor::kinesis::KinesisEvent::from_slice(text.as_bytes()).expect("a Kinesis event");
            let (mut user_records, mut json_bytes) = (0, 0);
            for r in &event.records {
                match model::kpl::deaggregate(&r.data) {
                    Ok(users) => {
                        user_records += users.len();
                        json_bytes += users.iter().map(|u| u.data.len()).sum::<usize>();
                    }
                    Err(_) => (user_records, json_bytes) = (user_records + 1, json_bytes + r.data.len()),
                }
            }
            let name = path.file_name().unwrap_or_default().to_string_lossy().trim_end_matches(".json.zst").to_string();
            Payload { name, text, user_records, json_bytes }
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn spec(function: &Path, moto: &testkit::servers::Server, log: &Path) -> FunctionSpec {
    let mut spec = FunctionSpec::new(function);
    // The memory of a Lambda function with one full vCPU (1,769 MB); the processor sizes its
    // state cache from it.
    spec.memory_mb = 1769;
    spec.log_file = Some(log.to_path_buf());
    spec.env = testkit::function_env(&moto.endpoint(), "bench", "analytics/");
    // Every invocation here is on a shard of its own, so the shard-state cache never serves a
    // hit: on, it would only pile up the states of shards never seen again (about 0.4 MB each
    // for `kpl`) and the peak would grow with the number of invocations. Off, the peak is the
    // invocation's own; what the cache may hold is its budget, stated apart (docs/performance.md).
    spec.env.push(("STATE_CACHE_MB".into(), "0".into()));
    spec
}

/// One invocation of the handler on a payload's text, in process (the in-memory store): the
/// region `scripts/bench --gate` counts instructions of (callgrind's `--toggle-collect`).
#[inline(never)]
fn invocation(runtime: &tokio::runtime::Runtime, text: &str) -> usize {
    let processor = processor::Processor::new(sink::store::MemoryStore::new(), "gate/");
    let event = processor::kinesis::KinesisEvent::from_slice(text.as_bytes()).expect("a Kinesis event");
    let (response, report) = runtime.block_on(processor.handle(event));
    assert!(report.error.is_none(), "{:?}", report.error);
    response.batch_item_failures.len()
}

/// Runs [`invocation`] once on the payload `name` and prints its user records, for the gate.
fn instructions(name: &str) {
    let Some(p) = read_payloads().into_iter().find(|p| p.name == name) else {
        eprintln!("error: no payload {name} in bench/payloads");
        std::process::exit(2)
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    assert_eq!(invocation(&runtime, &p.text), 0, "no record failed");
    println!("user_records {}", p.user_records);
}

/// One function's figures on one payload.
struct Figures {
    /// The shards its invocations went to.
    shards: std::ops::Range<usize>,
    cold_ms: f64,
    wall_p50_ms: f64,
    wall_p99_ms: f64,
    cpu_ms: f64,
    events_per_cpu_second: f64,
    peak_mib: f64,
    /// What the function logged (standard output and error) per invocation, on average.
    log_bytes: f64,
}

impl Figures {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "cpu_ms": self.cpu_ms,
            "wall_p50_ms": self.wall_p50_ms,
            "wall_p99_ms": self.wall_p99_ms,
            "cold_start_ms": self.cold_ms,
            "peak_mib": self.peak_mib,
            "log_bytes_per_invocation": self.log_bytes,
        })
    }
}

/// Runs `function` on each payload, a fresh process per payload (its cold start is the answer to
/// an empty event), every invocation on a shard of its own.
fn measure(
    runtime: &tokio::runtime::Runtime,
    moto: &testkit::servers::Server,
    function: &Path,
    payloads: &[Payload],
    invocations: usize,
) -> Vec<Figures> {
    let logs = tempfile::tempdir().expect("a temporary directory");
    let name = function.file_name().unwrap_or_default().to_string_lossy().to_string();
    let mut shard = 0;
    payloads
        .iter()
        .map(|p| {
            let first_shard = shard + 1;
            let log = logs.path().join(format!("{}.log", p.name));
            let spec = spec(function, moto, &log);
            let (cold, walls, cpu, peak) = runtime.block_on(async {
                let lambda = LocalLambda::start(spec).await.expect("the local Runtime API");
                let started = Instant::now();
                lambda.invoke(&br#"{"Records": []}"#[..]).await.expect("the empty event's answer");
                let cold = started.elapsed().as_secs_f64();
                let pid = lambda.pid().await.expect("the function runs");
                let (mut walls, cpu_before) = (Vec::new(), testkit::procfs::cpu_seconds(pid));
                for _ in 0..invocations {
                    shard += 1;
                    let text = p.text.replace(SHARD, &format!("shardId-{shard:012}"));
                    let started = Instant::now();
                    let answer = lambda.invoke(text).await.unwrap_or_else(|e| {
                        let log = std::fs::read_to_string(&log).unwrap_or_default();
                        panic!("{name} on {}: {e}\n{log}", p.name)
                    });
                    walls.push(started.elapsed().as_secs_f64());
                    let answer: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
                    assert_eq!(answer["batchItemFailures"], serde_json::json!([]), "{answer}");
                }
                assert_eq!(lambda.pid().await, Some(pid), "one warm environment");
                (cold, walls, testkit::procfs::cpu_seconds(pid) - cpu_before, testkit::procfs::peak_mib(pid))
            });
            let mut sorted = walls;
            sorted.sort_by(f64::total_cmp);
            let per_invocation = cpu / invocations as f64;
            let figures = Figures {
                shards: first_shard..shard + 1,
                cold_ms: cold * 1000.0,
                wall_p50_ms: percentile(&sorted, 0.5) * 1000.0,
                wall_p99_ms: percentile(&sorted, 0.99) * 1000.0,
                cpu_ms: per_invocation * 1000.0,
                events_per_cpu_second: p.user_records as f64 / per_invocation,
                peak_mib: peak,
                log_bytes: std::fs::metadata(&log).map_or(0, |m| m.len()) as f64 / (invocations + 1) as f64,
            };
            eprintln!("{name} {}: {:.0} ms a full invocation (p50)", p.name, figures.wall_p50_ms);
            figures
        })
        .collect()
}

/// What the commits of `shards` staged, per table: rows and bytes of Parquet (from the commit
/// records, `processor::ledger::CommitSummary`).
fn staged(
    runtime: &tokio::runtime::Runtime,
    moto: &testkit::servers::Server,
    shards: std::ops::Range<usize>,
) -> std::collections::BTreeMap<String, (u64, u64)> {
    use sink::store::{ObjectStore, S3Store};
    let store = S3Store::new(testkit::s3_client(&moto.endpoint()), "bench");
    let mut tables = std::collections::BTreeMap::new();
    runtime.block_on(async {
        for shard in shards {
            let prefix = format!("analytics/_pipeline/storefront/shardId-{shard:012}/commits/");
            for key in store.list(&prefix).await.expect("the commit records") {
                let body = store.get(&key).await.expect("a commit record").expect("listed");
                let summary = processor::ledger::CommitSummary::parse(&key, &body).expect("a commit record");
                for f in summary.files {
                    let entry = tables.entry(f.table).or_insert((0, 0));
                    *entry = (entry.0 + f.rows, entry.1 + f.bytes);
                }
            }
        }
    });
    tables
}

/// Issue 12's B6: Parquet bytes per user record and against the records' JSON, per table.
fn print_bytes(payloads: &[Payload], staged: &[std::collections::BTreeMap<String, (u64, u64)>], invocations: usize) {
    println!("\nWhat the processor stages per invocation (its commits' files), per table: Parquet bytes per user record of the payload, and as a share of the records' JSON:\n");
    let tables: Vec<&str> = sink::Table::ALL.iter().map(|t| t.as_str()).collect();
    println!("| payload | JSON bytes per record | {} | all five |", tables.join(" | "));
    println!("|---|---|{}---|", "---|".repeat(tables.len()));
    for (p, per_table) in payloads.iter().zip(staged) {
        let n = (p.user_records * invocations) as f64;
        let json = (p.json_bytes * invocations) as f64;
        let cell = |bytes: u64| format!("{:.1} B ({:.1}%)", bytes as f64 / n, 100.0 * bytes as f64 / json);
        let cells: Vec<String> = tables.iter().map(|t| cell(per_table.get(*t).map_or(0, |v| v.1))).collect();
        let total = per_table.values().map(|v| v.1).sum();
        println!("| {} | {:.0} | {} | {} |", p.name, json / n, cells.join(" | "), cell(total));
    }
}

fn print_figures(function: &Path, payloads: &[Payload], figures: &[Figures]) {
    println!("\n`{}`:\n", function.display());
    println!("| payload | user records | bytes | cold start | wall p50 | wall p99 | CPU per invocation | events per CPU second | peak memory |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (p, f) in payloads.iter().zip(figures) {
        println!(
            "| {} | {} | {:.2} MB | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} | {:.1} MiB |",
            p.name,
            p.user_records,
            p.text.len() as f64 / 1e6,
            f.cold_ms,
            f.wall_p50_ms,
            f.wall_p99_ms,
            f.cpu_ms,
            f.events_per_cpu_second,
            f.peak_mib
        );
    }
}

fn run(function: &Path, peer: Option<&Path>, invocations: usize, only: Option<&str>, record: Option<&Path>) {
    for f in std::iter::once(function).chain(peer) {
        if !f.is_file() {
            eprintln!("error: no function bootstrap at {} (scripts/bench builds it)", f.display());
            std::process::exit(2)
        }
    }
    let payloads: Vec<Payload> = read_payloads().into_iter().filter(|p| only.is_none_or(|o| p.name == o)).collect();
    let moto = testkit::servers::start_moto();
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    runtime.block_on(testkit::s3_client(&moto.endpoint()).create_bucket().bucket("bench").send()).expect("the bucket");
    println!("{invocations} invocations of each payload, a fresh function per payload, moto_server as S3");
    let ours = measure(&runtime, &moto, function, &payloads, invocations);
    print_figures(function, &payloads, &ours);
    let staged: Vec<_> = ours.iter().map(|f| staged(&runtime, &moto, f.shards.clone())).collect();
    print_bytes(&payloads, &staged, invocations);
    let theirs = peer.map(|peer| measure(&runtime, &moto, peer, &payloads, invocations));
    if let Some(path) = record {
        write_record(path, &payloads, &staged, invocations, &ours, theirs.as_deref());
    }
    let (Some(peer), Some(theirs)) = (peer, theirs) else { return };
    print_figures(peer, &payloads, &theirs);
    println!("\nThe processor against the peer (how many times better):\n");
    println!("| payload | events per CPU second | wall p50 | wall p99 | peak memory | cold start |");
    println!("|---|---|---|---|---|---|");
    for ((p, a), b) in payloads.iter().zip(&ours).zip(&theirs) {
        println!(
            "| {} | {:.1}x | {:.1}x | {:.1}x | {:.1}x | {:.0}x |",
            p.name,
            a.events_per_cpu_second / b.events_per_cpu_second,
            b.wall_p50_ms / a.wall_p50_ms,
            b.wall_p99_ms / a.wall_p99_ms,
            b.peak_mib / a.peak_mib,
            b.cold_ms / a.cold_ms
        );
    }
}

/// The figures as JSON, per payload: its records, the processor's (and the peer's) figures per
/// invocation, and the Parquet bytes the processor staged per user record and table.
fn write_record(
    path: &Path,
    payloads: &[Payload],
    staged: &[std::collections::BTreeMap<String, (u64, u64)>],
    invocations: usize,
    ours: &[Figures],
    theirs: Option<&[Figures]>,
) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu.lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']));
    let mut measured = serde_json::Map::new();
    for (i, p) in payloads.iter().enumerate() {
        let n = (p.user_records * invocations) as f64;
        let bytes: serde_json::Map<_, _> =
            staged[i].iter().map(|(table, (_, b))| (table.clone(), serde_json::json!(*b as f64 / n))).collect();
        let mut entry = serde_json::json!({
            "user_records": p.user_records,
            "json_bytes_per_record": p.json_bytes as f64 / p.user_records as f64,
            "event_bytes_per_record": p.text.len() as f64 / p.user_records as f64,
            "processor": ours[i].json(),
            "staged_bytes_per_record": bytes,
        });
        if let Some(theirs) = theirs {
            entry["peer"] = theirs[i].json();
        }
        measured.insert(p.name.clone(), entry);
    }
    let doc = serde_json::json!({
        "measured": model::format_millis(model::now_ms())[..10],
        "by": format!("cargo bench --bench function -- run --invocations {invocations} (scripts/bench)"),
        "machine": format!("{} vCPUs of {}", std::thread::available_parallelism().map_or(0, |n| n.get()), model.unwrap_or("an unknown CPU")),
        "payloads": measured,
    });
    let text = serde_json::to_string_pretty(&doc).expect("JSON") + "\n";
    if let Err(e) = std::fs::write(path, text) {
        eprintln!("error: cannot write {}: {e}", path.display());
        std::process::exit(1)
    }
}

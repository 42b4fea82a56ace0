//! The publisher's throughput and memory on one large round (docs/performance.md):
//!
//!     cargo bench -p publisher --bench round -- prepare --dir DIR --mb 1024
//!     cargo bench -p publisher --bench round -- round --dir DIR [--memory-mb 1024]
//!
//! `prepare` commits storefront traffic (the producer's, 64 shards, batches of 10,000 records)
//! with the processor into a local directory until the staged Parquet reaches the size asked,
//! without publishing. `round` runs one publisher round over it (it deletes the inputs it
//! publishes: run it on a copy, `cp -al` is enough: the store never writes a file in place) and
//! prints the staged megabytes, wall and CPU seconds, MB/s per wall second and per CPU second,
//! and the process's peak resident memory. Not a criterion benchmark: one round of a gigabyte
//! is the measurement, and its setup is minutes.

use std::path::PathBuf;
use std::time::Instant;

use processor::kinesis::InputRecord;
use processor::Processor;
use producer::{Config, Storefront};
use publisher::{Publisher, Settings};
use sink::store::{LocalStore, ObjectStore};
use sink::RecordMeta;

// 64 shards: about 1,600 records a second each at the storefront rate below, near the shard
// limit (with 8, each shard's de-duplication window grows twelve times past a real one's).
const SHARDS: usize = 64;
const BATCH: usize = 10_000;

fn usage() -> ! {
    eprintln!("usage: round prepare --dir DIR --mb N | round round --dir DIR [--memory-mb N] [--row-group-mb N]");
    std::process::exit(2)
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn number(args: &[String], name: &str, default: u64) -> u64 {
    match flag(args, name) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("error: {name} {v:?} is not a whole number");
            std::process::exit(2)
        }),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the subcommand is the first other argument.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let Some(dir) = flag(&args, "--dir").map(PathBuf::from) else { usage() };
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    match args.first().map(String::as_str) {
        Some("prepare") => runtime.block_on(prepare(dir, number(&args, "--mb", 1024) << 20)),
        Some("round") => {
            let memory = (number(&args, "--memory-mb", 1024) as usize) << 20;
            let row_group = (number(&args, "--row-group-mb", 128) as usize) << 20;
            runtime.block_on(round(dir, Settings::with_memory(memory, row_group)))
        }
        _ => usage(),
    }
}

async fn staged_bytes(store: &LocalStore) -> u64 {
    let mut total = 0;
    for key in store.list("_staging/").await.expect("list") {
        total += std::fs::metadata(store.root().join(&key)).map(|m| m.len()).unwrap_or(0);
    }
    total
}

async fn prepare(dir: PathBuf, target: u64) {
    let store = LocalStore::new(&dir).expect("the directory");
    let processor = Processor::new(store.clone(), "");
    let mut storefront = Storefront::new(Config {
        seed: 3,
        events_per_second: 100_000.0,
        daily_curve: false,
        flash_sale_every_minutes: 0,
        ..Config::default()
    });
    let started = Instant::now();
    let (mut records, mut buf) = (0u64, Vec::new());
    let mut sequence = [0u64; SHARDS];
    loop {
        let mut batches: Vec<Vec<InputRecord>> = (0..SHARDS).map(|_| Vec::with_capacity(BATCH)).collect();
        while batches.iter().any(|b| b.len() < BATCH) {
            let g = storefront.next_record(&mut buf);
            let shard = (xxhash_rust::xxh3::xxh3_64(g.partition_key.as_bytes()) % SHARDS as u64) as usize;
            if batches[shard].len() == BATCH {
                continue;
            }
            sequence[shard] += 1;
            batches[shard].push(InputRecord {
                stream: "bench".into(),
                meta: RecordMeta {
                    shard_id: format!("shardId-{shard:012}").into(),
                    sequence_number: format!("{:056}", sequence[shard]),
                    sub_sequence_number: 0,
                    partition_key: g.partition_key,
                    arrival_ms: g.event_time_ms,
                },
                data: buf.clone(),
                undecodable: false,
            });
        }
        let reports = futures::future::join_all(batches.into_iter().map(|b| processor.process(b))).await;
        for r in &reports {
            assert!(r.error.is_none(), "{:?}", r.error);
        }
        records += (SHARDS * BATCH) as u64;
        let staged = staged_bytes(&store).await;
        eprint!(
            "\rcommitted {records} records: {:.0} MB staged ({:.0} s)",
            staged as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        if staged >= target {
            eprintln!();
            println!("prepared {} MB of staged Parquet from {records} records in {}", staged >> 20, dir.display());
            return;
        }
    }
}

async fn round(dir: PathBuf, settings: Settings) {
    let store = LocalStore::new(&dir).expect("the directory");
    let staged = staged_bytes(&store).await;
    let workers = settings.workers;
    let mut settings = settings;
    settings.round_bytes = u64::MAX;
    let publisher = Publisher::new(store, "", settings);
    let (wall0, cpu0) = (Instant::now(), testkit::procfs::cpu_seconds("self"));
    let report = publisher.round().await.expect("the round");
    let (wall, cpu) = (wall0.elapsed().as_secs_f64(), testkit::procfs::cpu_seconds("self") - cpu0);
    let mb = staged as f64 / 1e6;
    println!(
        "round of {mb:.0} MB staged ({} files, {} commits) into {} files ({:.0} MB, {} rows), {workers} merges at once: \
         {wall:.1} s wall, {cpu:.1} s CPU; {:.0} MB/s, {:.0} MB/s per CPU second; peak memory {:.0} MiB",
        report.input_files,
        report.commits(),
        report.outputs.len(),
        report.bytes() as f64 / 1e6,
        report.rows(),
        mb / wall,
        mb / cpu.max(1e-9),
        testkit::procfs::peak_mib("self")
    );
}

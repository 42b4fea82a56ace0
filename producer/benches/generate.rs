//! Generation and serialization throughput on one core: the storefront model and the JSON
//! writer, into a reused buffer copied to an `io::sink` (what `--stdout > /dev/null` does,
//! minus the pipe).
//!
//!     cargo bench -p producer --bench generate

use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use producer::{Config, Faults, Storefront};

const EVENTS: u64 = 200_000;

fn generate(cfg: Config) -> u64 {
    let mut store = Storefront::new(cfg);
    let mut buf = Vec::with_capacity(1024);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::sink());
    let mut bytes = 0u64;
    for _ in 0..EVENTS {
        store.next_record(&mut buf);
        buf.push(b'\n');
        bytes += buf.len() as u64;
        out.write_all(&buf).expect("sink");
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("producer");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.bench_function("stdout_200k_events", |b| b.iter(|| generate(Config::default())));
    let faulty =
        Config { faults: Faults { invalid_rate: 0.05, duplicate_rate: 0.05, late_rate: 0.05 }, ..Config::default() };
    group.bench_function("stdout_200k_events_with_faults", |b| b.iter(|| generate(faulty.clone())));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

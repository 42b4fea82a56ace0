//! Throughput of the handler on a full Lambda invocation: 6,000 records of about 350 bytes
//! (every 50th invalid), against the in-memory store, so that the figure is the processor's own
//! CPU cost (validation, de-duplication, Arrow, Parquet, the commit protocol), not the network's;
//! `event_to_response` starts from the invocation's JSON text, as the function does (the event
//! read as `lambda_runtime` reads it, base64 decoded, handled).
//!
//!     cargo bench -p processor --bench handler

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use processor::kinesis::{InputRecord, KinesisEvent};
use processor::Processor;
use sink::store::MemoryStore;

/// The records of [`testkit::records::kinesis_event`], as the processor's input.
fn input_records(count: usize) -> Vec<InputRecord> {
    let event: KinesisEvent = serde_json::from_str(&testkit::records::kinesis_event(count)).expect("a Kinesis event");
    event.records
}

const RECORDS: usize = 6000;

fn bench(c: &mut Criterion) {
    let input = input_records(RECORDS);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    let mut group = c.benchmark_group("invocation");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(20);
    group.bench_function("validate_only", |b| {
        b.iter(|| input.iter().filter(|r| model::validate(&r.data, r.meta.arrival_ms).is_ok()).count())
    });
    group.bench_function("handler_6000_records", |b| {
        b.iter_batched(
            || (Processor::new(MemoryStore::new(), "bench/"), input.clone()),
            |(p, recs)| {
                let report = runtime.block_on(p.process(recs));
                assert!(report.error.is_none());
                report
            },
            BatchSize::LargeInput,
        )
    });
    let text = testkit::records::kinesis_event(RECORDS);
    group.bench_function("event_to_response_6000_records", |b| {
        b.iter_batched(
            || Processor::new(MemoryStore::new(), "bench/"),
            |p| {
                // The function's reading of an invocation's body (processor::runtime).
                let event = KinesisEvent::from_slice(text.as_bytes()).expect("a Kinesis event");
                let (response, report) = runtime.block_on(p.handle(event));
                assert!(report.error.is_none());
                response
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

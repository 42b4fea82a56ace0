//! The reliability scenarios of docs/reliability.md that run the real `processor` and
//! `publisher` bootstraps under the local Lambda Runtime API, as Lambda runs them, against
//! moto_server's S3 behind the fault proxy: lost replies on every write, 5xx bursts, the
//! function killed in the middle of every write (of a commit, and of a publisher round),
//! redelivery with other boundaries, files that disappear, interleaved batches, and a store
//! without conditional writes. Each publishes with the real publisher, checks the datasets
//! against what the contract says they must hold, and records a row of the report
//! (testkit::reliability).

use std::time::Duration;

use orderstream::lambda::runtime_api::{FunctionSpec, LocalLambda};
use serde_json::Value;
use sink::store::{ObjectStore, S3Store};
use sink::Table;
use testkit::procfs::peak_kib;
use testkit::records::{event, is_valid, kinesis_records, sequence_number};
use testkit::reliability::{compare, record, Row};
use testkit::servers::{self, Server};
use testkit::ProxyFault;

const SHARD: &str = "shardId-000000000007";
const RECORDS: usize = 300;

struct World {
    moto: Server,
    proxy: Server,
    s3: aws_sdk_s3::Client,
    logs: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let moto = servers::start_moto();
        let proxy = testkit::start_fault_proxy(&moto);
        let s3 = testkit::s3_client(&moto.endpoint());
        testkit::create_bucket(&s3, "lake").await;
        World { moto, proxy, s3, logs: tempfile::tempdir().unwrap() }
    }

    /// The processor function, writing under `prefix` through the fault proxy.
    async fn lambda(&self, prefix: &str, timeout: Duration) -> LocalLambda {
        let mut spec = FunctionSpec::new(testkit::processor_bootstrap());
        spec.memory_mb = 128;
        spec.timeout = timeout;
        spec.log_file = Some(self.logs.path().join(format!("{}.log", prefix.trim_end_matches('/'))));
        spec.env = self.env(prefix, &self.proxy);
        LocalLambda::start(spec).await.expect("the local Lambda Runtime API")
    }

    /// The publisher function (a round a second), through the fault proxy or straight to S3.
    async fn publisher(&self, prefix: &str, timeout: Duration, through_proxy: bool) -> LocalLambda {
        let mut spec = FunctionSpec::new(testkit::publisher_bootstrap());
        spec.name = "publisher".into();
        spec.memory_mb = 256;
        spec.timeout = timeout;
        let name = prefix.trim_end_matches('/');
        spec.log_file = Some(self.logs.path().join(format!("{name}-publisher.log")));
        spec.env = self.env(prefix, if through_proxy { &self.proxy } else { &self.moto });
        spec.env.push(("PUBLISH_INTERVAL_SECONDS".into(), "1".into()));
        LocalLambda::start(spec).await.expect("the local Lambda Runtime API")
    }

    fn env(&self, prefix: &str, s3: &Server) -> Vec<(String, String)> {
        testkit::function_env(&s3.endpoint(), "lake", prefix)
    }

    /// Everything committed under `prefix` published by the publisher function (invoked with a
    /// Scheduled Event, straight to S3), until an invocation finds nothing left.
    async fn publish(&self, prefix: &str) {
        let publisher = self.publisher(prefix, Duration::from_millis(1500), false).await;
        for _ in 0..10 {
            let answer = publisher.invoke(testkit::scheduled_event()).await.expect("the publisher succeeds");
            let answer: Value = serde_json::from_slice(&answer).unwrap();
            if answer["commitsPublished"] == 0 {
                return;
            }
        }
        panic!("the publisher kept finding commits under {prefix}");
    }

    /// The bucket, not through the proxy.
    fn store(&self) -> S3Store {
        S3Store::new(self.s3.clone(), "lake")
    }
}

/// What delivering a batch took.
#[derive(Default)]
struct Delivered {
    invocations: usize,
    peak_kib: u64,
}

impl Delivered {
    fn add(&mut self, other: Delivered) {
        self.invocations += other.invocations;
        self.peak_kib = self.peak_kib.max(other.peak_kib);
    }
}

/// Delivers `records` as Lambda's event source mapping does with `ReportBatchItemFailures`:
/// again from the lowest failed record, or whole after a function error or timeout (the next
/// invocation is then a cold start), until the batch succeeds.
async fn deliver(lambda: &LocalLambda, records: &[Value]) -> Delivered {
    let mut d = Delivered::default();
    let mut pos = 0;
    loop {
        assert!(d.invocations < 20, "no progress after 20 invocations");
        d.invocations += 1;
        let answer = lambda.invoke(event(&records[pos..])).await;
        if let Some(pid) = lambda.pid().await {
            d.peak_kib = d.peak_kib.max(peak_kib(pid).unwrap_or(0));
        }
        let Ok(body) = answer else { continue };
        let response: Value = serde_json::from_slice(&body).expect("a partial batch response");
        let failed: Vec<&str> = response["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap())
            .collect();
        match failed.iter().filter_map(|seq| records.iter().position(|r| r["kinesis"]["sequenceNumber"] == *seq)).min()
        {
            None if failed.is_empty() => return d,
            None => continue,
            Some(lowest) => pos = lowest,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Records `range` as numbers.
fn numbers(range: std::ops::Range<usize>) -> Vec<usize> {
    range.collect()
}

/// What the datasets under `prefix` hold, once the publisher has published everything, against
/// what records `expected` must give: events out, quarantined out, lost, doubled.
async fn outcome(world: &World, prefix: &str, expected: &[usize]) -> (u64, u64, u64, u64) {
    world.publish(prefix).await;
    let store = &world.store();
    let audit = publisher::audit::audit(store, prefix).await.unwrap();
    assert!(audit.holds(), "{prefix}: {audit:?}");
    let events: Vec<String> = testkit::read_table(store, prefix, Table::Events)
        .await
        .into_iter()
        .map(|(_, r)| testkit::s(&r, "event_id"))
        .collect();
    let quarantine: Vec<String> = testkit::read_table(store, prefix, Table::Quarantine)
        .await
        .into_iter()
        .map(|(_, r)| testkit::s(&r, "sequence_number"))
        .collect();
    let want_events: Vec<String> = expected.iter().filter(|&&n| is_valid(n)).map(|n| format!("e-{n}")).collect();
    let want_quarantine: Vec<String> =
        expected.iter().filter(|&&n| !is_valid(n)).map(|&n| sequence_number(n)).collect();
    let (lost_e, dup_e) = compare(&want_events, &events);
    let (lost_q, dup_q) = compare(&want_quarantine, &quarantine);
    testkit::aggregates_match_details(store, prefix).await;
    (events.len() as u64, quarantine.len() as u64, lost_e + lost_q, dup_e + dup_q)
}

#[allow(clippy::too_many_arguments)]
fn row(order: u32, scenario: &str, injected: String, records_in: usize, out: (u64, u64, u64, u64), peak: u64) -> Row {
    Row {
        order,
        scenario: scenario.into(),
        injected,
        records_in: records_in as u64,
        events_out: out.0,
        quarantined_out: out.1,
        lost: out.2,
        duplicated: out.3,
        peak_kib: Some(peak),
        process: "processor bootstrap (local Runtime API, 128 MB)".into(),
    }
}

/// After a run with one fault armed: the fault cleared, the datasets under `prefix` checked
/// (nothing lost or doubled) and added to `total`; whether the fault landed (when it did not,
/// every write has had its turn).
async fn settle(world: &World, prefix: &str, total: &mut (u64, u64, u64, u64)) -> bool {
    let left = testkit::proxy_counters(&world.proxy);
    testkit::inject_faults(&world.proxy, 0, 0, 503);
    let out = outcome(world, prefix, &numbers(0..RECORDS)).await;
    assert_eq!((out.2, out.3), (0, 0), "{prefix}: lost, doubled");
    *total = (total.0 + out.0, total.1 + out.1, total.2 + out.2, total.3 + out.3);
    left["fail"] != 1
}

/// For every write of a first commit, k = 0, 1, ...: a fresh function and prefix, the fault on
/// the k-th write, the batch delivered until it succeeds, the datasets checked. Stops when the
/// fault no longer lands (k is past the last write).
async fn on_every_write(
    world: &World,
    name: &str,
    fault: ProxyFault,
    timeout: Duration,
) -> (usize, u64, (u64, u64, u64, u64)) {
    let records = kinesis_records(SHARD, 0..RECORDS);
    let (mut runs, mut delivered, mut total) = (0, Delivered::default(), (0, 0, 0, 0));
    for k in 0.. {
        assert!(k < 64, "the fault kept landing");
        let prefix = format!("{name}-{k}/");
        let lambda = world.lambda(&prefix, timeout).await;
        testkit::inject_lost_replies(&world.proxy, k, 1, fault);
        delivered.add(deliver(&lambda, &records).await);
        runs += 1;
        if !settle(world, &prefix, &mut total).await {
            break;
        }
    }
    (runs, delivered.peak_kib, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_on_every_write() {
    let world = World::new().await;
    for (order, fault, how) in
        [(1, ProxyFault::AppliedThen500, "a 500"), (2, ProxyFault::AppliedThenReset, "a connection reset")]
    {
        let (runs, peak, out) = on_every_write(&world, &format!("lost-{order}"), fault, Duration::from_secs(20)).await;
        record(&row(
            order,
            &format!("lost reply ({how} after S3 applied the write)"),
            format!("on write k of a first commit, for each of its {} writes (conditional-write probe, staged files, commit record, head.json)", runs - 1),
            runs * RECORDS,
            out,
            peak,
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_killed_in_the_middle_of_every_write() {
    let world = World::new().await;
    // The proxy forwards the k-th write and never answers: the function's 2 s timeout kills it,
    // as Lambda does, after S3 applied the write.
    let (runs, peak, out) = on_every_write(&world, "crash", ProxyFault::AppliedThenHang, Duration::from_secs(2)).await;
    record(&row(
        3,
        "function killed in the middle of each write (timeout)",
        format!(
            "write k applied, never answered, the function stopped by its 2 s timeout; for each of the {} writes",
            runs - 1
        ),
        runs * RECORDS,
        out,
        peak,
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_5xx_bursts_longer_than_the_sdk_retries() {
    let world = World::new().await;
    let records = kinesis_records(SHARD, 0..RECORDS);
    let (mut runs, mut delivered, mut total) = (0, Delivered::default(), (0, 0, 0, 0));
    for k in (0..40).step_by(2) {
        let prefix = format!("burst-{k}/");
        let lambda = world.lambda(&prefix, Duration::from_secs(20)).await;
        testkit::inject_faults(&world.proxy, k, 8, 503);
        delivered.add(deliver(&lambda, &records).await);
        settle(&world, &prefix, &mut total).await;
        runs += 1;
    }
    assert!(delivered.invocations > runs, "some bursts outlasted the SDK's retries");
    record(&row(
        4,
        "S3 5xx bursts",
        format!(
            "8 requests in a row answered 503, from request k = 0, 2, ..., 38 ({runs} runs; {} invocations)",
            delivered.invocations
        ),
        runs * RECORDS,
        total,
        delivered.peak_kib,
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_with_other_boundaries() {
    let world = World::new().await;
    let records = kinesis_records(SHARD, 0..RECORDS);
    let lambda = world.lambda("redelivery/", Duration::from_secs(20)).await;
    let mut d = Delivered::default();
    // Two batches, the first redelivered whole, a retry from the middle, a bisected half, all
    // again; then the same from a cold start.
    for (a, b) in [(0, 120), (120, 300), (0, 120), (60, 250), (0, 60), (0, 300)] {
        d.add(deliver(&lambda, &records[a..b]).await);
    }
    let cold = world.lambda("redelivery/", Duration::from_secs(20)).await;
    d.add(deliver(&cold, &records[30..300]).await);
    let out = outcome(&world, "redelivery/", &numbers(0..RECORDS)).await;
    assert_eq!((out.2, out.3), (0, 0));
    record(&row(
        5,
        "redelivery with other boundaries",
        "batches 0-120, 120-300, then 0-120, 60-250, 0-60, 0-300 again, then 30-300 from a cold start".into(),
        RECORDS,
        out,
        d.peak_kib,
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visible_files_head_and_checkpoints_removed() {
    let world = World::new().await;
    let records = kinesis_records(SHARD, 0..RECORDS);
    let mut d = Delivered::default();
    let lambda = world.lambda("removed/", Duration::from_secs(20)).await;
    d.add(deliver(&lambda, &records[0..100]).await);
    world.publish("removed/").await;
    d.add(deliver(&lambda, &records[100..200]).await);
    world.publish("removed/").await;
    // An erasure of the latest round's visible files (what a lifecycle rule, a compaction or
    // an erasure request does), and of head.json and every checkpoint; then a cold start.
    let store = world.store();
    let mut removed = 0;
    for key in store.list("removed/").await.unwrap() {
        let latest_file = key.ends_with("part-0-00000000000000000002.parquet");
        if latest_file || key.ends_with("/head.json") || key.contains("/checkpoints/") {
            store.delete(&key).await.unwrap();
            removed += 1;
        }
    }
    assert!(removed >= 5, "{removed}");
    let cold = world.lambda("removed/", Duration::from_secs(20)).await;
    d.add(deliver(&cold, &records[150..300]).await);
    // The erased round's records are gone by design; nothing else may be.
    let expected: Vec<usize> = (0..100).chain(200..RECORDS).collect();
    let out = outcome(&world, "removed/", &expected).await;
    assert_eq!((out.2, out.3), (0, 0));
    record(&row(
        6,
        "visible files, head.json and checkpoints removed",
        format!("{removed} objects deleted (the latest round's files: 100 records; head.json files, checkpoints) before a cold start; expected: the other 200"),
        RECORDS,
        out,
        d.peak_kib,
    ));
}

/// For every write of a publisher round, k = 0, 1, ...: a fresh prefix with one commit of every
/// record, the fault on the round's k-th write (the publisher function through the proxy), then
/// the publisher again straight to S3, the datasets checked. Stops when the fault no longer
/// lands.
async fn on_every_round_write(
    world: &World,
    name: &str,
    fault: ProxyFault,
    timeout: Duration,
) -> (usize, u64, (u64, u64, u64, u64)) {
    let records = kinesis_records(SHARD, 0..RECORDS);
    let (mut runs, mut peak, mut total) = (0, 0, (0, 0, 0, 0));
    for k in 0.. {
        assert!(k < 64, "the fault kept landing");
        let prefix = format!("{name}-{k}/");
        deliver(&world.lambda(&prefix, Duration::from_secs(20)).await, &records).await;
        let publisher = world.publisher(&prefix, timeout, true).await;
        testkit::inject_lost_replies(&world.proxy, k, 1, fault);
        // Its answer may be an error (or no answer: killed); the next round finishes the work.
        let _ = publisher.invoke(testkit::scheduled_event()).await;
        if let Some(kib) = publisher.pid().await.and_then(peak_kib) {
            peak = peak.max(kib);
        }
        runs += 1;
        if !settle(world, &prefix, &mut total).await {
            break;
        }
    }
    (runs, peak, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_round_losing_a_reply_or_killed_at_every_write() {
    let world = World::new().await;
    for (order, fault, how, timeout) in [
        (13, ProxyFault::AppliedThenReset, "lost reply (a connection reset after S3 applied the write)", 1500),
        (14, ProxyFault::AppliedThenHang, "publisher killed in the middle of each write (timeout)", 1500),
    ] {
        let (runs, peak, out) =
            on_every_round_write(&world, &format!("round-{order}"), fault, Duration::from_millis(timeout)).await;
        record(&Row {
            order,
            scenario: format!("publisher round: {how}"),
            injected: format!("on write k of a round, for each of its {} writes (merged files, round record, copies, deletes, head.json); then the next round", runs - 1),
            records_in: (runs * RECORDS) as u64,
            events_out: out.0,
            quarantined_out: out.1,
            lost: out.2,
            duplicated: out.3,
            peak_kib: (peak > 0).then_some(peak),
            process: "publisher bootstrap (local Runtime API, 256 MB)".into(),
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_batches_fail_loudly_and_lose_nothing() {
    let world = World::new().await;
    let records = kinesis_records(SHARD, 0..RECORDS);
    let evens: Vec<Value> = records.iter().step_by(2).cloned().collect();
    let odds: Vec<Value> = records.iter().skip(1).step_by(2).cloned().collect();
    let lambda = world.lambda("interleaved/", Duration::from_secs(20)).await;
    let mut d = deliver(&lambda, &evens).await;
    // ParallelizationFactor 2: the other invocation's records interleave with the commit.
    let answer: Value = serde_json::from_slice(&lambda.invoke(event(&odds)).await.unwrap()).unwrap();
    assert_eq!(answer["batchItemFailures"].as_array().unwrap().len(), odds.len(), "every record reported failed");
    // Set back to 1, the mapping delivers the shard in order: the odd records come in then.
    d.add(deliver(&lambda, &records).await);
    let out = outcome(&world, "interleaved/", &numbers(0..RECORDS)).await;
    assert_eq!((out.2, out.3), (0, 0));
    record(&row(
        7,
        "interleaved batches (ParallelizationFactor 2)",
        "the even records committed, then the odd ones as another invocation: refused whole; then the shard in order"
            .into(),
        RECORDS + odds.len(),
        out,
        d.peak_kib,
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_conditional_writes_is_refused() {
    let world = World::new().await;
    let records = kinesis_records(SHARD, 0..RECORDS);
    testkit::drop_conditions(&world.proxy, true);
    let lambda = world.lambda("unconditional/", Duration::from_secs(20)).await;
    let answer: Value = serde_json::from_slice(&lambda.invoke(event(&records)).await.unwrap()).unwrap();
    assert_eq!(answer["batchItemFailures"].as_array().unwrap().len(), RECORDS, "refused: every record failed");
    let peak = peak_kib(lambda.pid().await.unwrap()).unwrap();
    let written = world.store().list("unconditional/").await.unwrap();
    assert!(written.is_empty(), "nothing written: {written:?}");
    testkit::drop_conditions(&world.proxy, false);
    let out = outcome(&world, "unconditional/", &[]).await;
    assert_eq!((out.2, out.3), (0, 0));
    record(&row(
        8,
        "store without conditional writes",
        "If-None-Match stripped by the proxy: the probe finds a second conditional create succeeding; all records reported failed, nothing written".into(),
        RECORDS,
        out,
        peak,
    ));
}

//! The real `processor` binary under the local Lambda Runtime API (`orderstream::lambda::runtime_api`), as
//! AWS runs a `provided.al2023` bootstrap: it fetches a full-size Kinesis event (6 MB), writes to
//! S3 (moto_server) and posts the partial batch response, within 128 MiB of memory.

use orderstream::lambda::runtime_api::{FunctionSpec, InvokeError, LocalLambda};

use testkit::records::{self, kinesis_event};
use testkit::servers;

fn spec(moto_port: u16, logs: &std::path::Path) -> FunctionSpec {
    let mut spec = FunctionSpec::new(testkit::processor_bootstrap());
    spec.memory_mb = 128;
    spec.log_file = Some(logs.to_path_buf());
    spec.env = testkit::function_env(&format!("http://127.0.0.1:{moto_port}"), "lake", "analytics/");
    spec
}

/// Peak resident memory of the running function, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    testkit::procfs::peak_kib(pid).expect("the function's VmHWM in /proc")
}

#[test]
fn the_bootstrap_processes_a_full_6_mb_invocation_within_128_mib() {
    let moto = servers::start_moto();
    let s3 = testkit::s3_client(&moto.endpoint());
    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(s3.create_bucket().bucket("lake").send()).unwrap();

    // As many ~350-byte records as fit Lambda's 6 MB invocation payload.
    let mut count = 6000;
    while kinesis_event(count + 100).len() < 6_000_000 {
        count += 100;
    }
    let big = kinesis_event(count);
    assert!(big.len() <= 6_000_000 && big.len() > 5_500_000, "{}", big.len());
    let size = big.len();
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("function.log");
    let (answers, peak) = tokio.block_on(async {
        let lambda = LocalLambda::start(spec(moto.port, &log_file)).await.unwrap();
        // With metrics: the function's summary line, logged last, is then through the pipe.
        let wait = std::time::Duration::from_secs(5);
        let first = lambda.invoke_with_metrics(big.clone(), wait).await.expect("a response");
        let pid = lambda.pid().await.expect("the function keeps running between invocations");
        let second = lambda.invoke_with_metrics(big, wait).await.expect("a response");
        assert_eq!(lambda.pid().await, Some(pid), "one warm execution environment");
        let peak = peak_rss_kib(pid);
        // Everything the function wrote is in the log file before it is read.
        lambda.shutdown().await;
        ([first, second], peak)
    });
    let logs = std::fs::read_to_string(&log_file).unwrap();
    for (answer, summary) in &answers {
        let answer: serde_json::Value = serde_json::from_slice(answer).unwrap();
        assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
        let summary = summary.as_ref().expect("the invocation's EMF summary, by its request id");
        assert_eq!(summary.records_in, count as u64);
    }
    assert_eq!(
        answers[0].1.as_ref().unwrap().quarantined_by_reason_code,
        [("invalid_json".to_string(), (count / 50) as u64)].into()
    );
    assert_ne!(answers[0].1.as_ref().unwrap().request_id, answers[1].1.as_ref().unwrap().request_id);
    // JSON log lines: the first invocation committed everything, the redelivered second found
    // it all committed.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l:?}\n{logs}")))
        .collect();
    let committed: Vec<_> = lines.iter().filter(|l| l["fields"]["message"] == "batch committed").collect();
    assert_eq!(committed.len(), 2, "log lines:\n{logs}");
    assert_eq!(committed[0]["fields"]["quarantined"], (count / 50) as u64);
    assert_eq!(committed[0]["fields"]["events"], (count - count / 50) as u64);
    assert_eq!(committed[1]["fields"]["already_committed"], count as u64);
    assert!(!logs.contains('\u{1b}'), "no ANSI colours in Lambda logs");
    // CloudWatch Embedded Metric Format lines for each invocation.
    let emf: Vec<_> = lines.iter().filter(|l| l["_aws"].is_object() && l["RecordsIn"].is_number()).collect();
    assert_eq!(emf.len(), 2, "{logs}");
    assert_eq!(emf[0]["RecordsIn"], count as u64);
    assert_eq!(emf[0]["Quarantined"], (count / 50) as u64);
    // Every fourth record is a valid order (the invalid ones, n % 50 == 49, never are).
    assert_eq!(emf[0]["Orders"], (count / 4) as u64);
    assert_eq!(emf[1]["AlreadyCommitted"], count as u64);
    let by_reason = lines.iter().find(|l| l["ReasonCode"] == "invalid_json").expect("quarantine by reason");
    assert_eq!(by_reason["QuarantinedByReason"], (count / 50) as u64);
    assert!(lines.iter().any(|l| l["Currency"] == "JPY" && l["RevenueMinor"].as_f64().unwrap() > 0.0));
    // The processor commits staged files; the publisher, not the processor, makes them visible.
    let list =
        |prefix: &'static str| tokio.block_on(s3.list_objects_v2().bucket("lake").prefix(prefix).send()).unwrap();
    assert!(list("analytics/_staging/").key_count().unwrap_or(0) >= 1);
    assert_eq!(list("analytics/events/").key_count().unwrap_or(0), 0);
    eprintln!("{count} records, {size} bytes of event: peak RSS {peak} KiB");
    assert!(peak < 128 * 1024, "peak RSS {peak} KiB exceeds the smallest Lambda (128 MiB)");
}

#[tokio::test]
async fn a_missing_bucket_fails_the_init_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("function.log");
    let mut spec = spec(9, &log_file);
    spec.env.retain(|(k, _)| k != "ANALYTICS_BUCKET");
    let lambda = LocalLambda::start(spec).await.unwrap();
    let err = lambda.invoke(&b"{}"[..]).await.unwrap_err();
    // The runtime client posts the error to /init/error, or the process exits first.
    assert!(matches!(err, InvokeError::Init(_) | InvokeError::Exited(_)), "{err}");
    let logs = std::fs::read_to_string(&log_file).unwrap();
    assert!(logs.contains("ANALYTICS_BUCKET is not set"), "{logs}");
}

#[tokio::test]
async fn a_bad_event_is_a_function_error_and_the_environment_stays_warm() {
    let dir = tempfile::tempdir().unwrap();
    let lambda = LocalLambda::start(spec(9, &dir.path().join("function.log"))).await.unwrap();
    let err = lambda.invoke(&br#"{"Records": "not a list"}"#[..]).await.unwrap_err();
    let InvokeError::Function { message, .. } = &err else { panic!("{err}") };
    assert!(message.contains("invalid type"), "{message}");
    let pid = lambda.pid().await;
    // An empty batch needs no S3: it answers at once, from the same process.
    let answer = lambda.invoke(&br#"{"Records": []}"#[..]).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&answer).unwrap(),
        serde_json::json!({"batchItemFailures": []})
    );
    assert_eq!(lambda.pid().await, pid);
}

/// Arrival of the first test record (2026-11-23T13:05:00.500Z) minus half a second.
const T: i64 = 1_795_439_100_000;

#[test]
fn ten_hot_shards_and_a_full_invocation_stay_within_128_mib() {
    let moto = servers::start_moto();
    let s3 = testkit::s3_client(&moto.endpoint());
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let shards: Vec<String> = (0..10).map(|i| format!("shardId-{i:012}")).collect();
    tokio.block_on(async {
        s3.create_bucket().bucket("lake").send().await.unwrap();
        for shard in &shards {
            testkit::ledger::seed_full_window(
                &sink::store::S3Store::new(s3.clone(), "lake"),
                "analytics/",
                "storefront",
                shard,
                600_000,
                T,
            )
            .await;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (peaks, answers) = tokio.block_on(async {
        let lambda = LocalLambda::start(spec(moto.port, &dir.path().join("function.log"))).await.unwrap();
        let mut answers = Vec::new();
        let mut peaks = Vec::new();
        // A batch for each shard: each cold start reads its 12 MB window; the state cache keeps
        // what fits in a quarter of the function's memory (two such windows), evicting the least
        // recently used.
        for shard in &shards {
            answers.push(lambda.invoke(records::kinesis_event_of(shard, 50)).await.unwrap());
            peaks.push(peak_rss_kib(lambda.pid().await.unwrap()));
        }
        // Then a full 6 MB invocation on one of them.
        answers.push(lambda.invoke(kinesis_event(5800)).await.unwrap());
        peaks.push(peak_rss_kib(lambda.pid().await.unwrap()));
        (peaks, answers)
    });
    for a in &answers {
        let a: serde_json::Value = serde_json::from_slice(a).unwrap();
        assert_eq!(a, serde_json::json!({"batchItemFailures": []}));
    }
    let peak = *peaks.iter().max().unwrap();
    eprintln!("10 shards of 600,000 ids, then a 5,800-record invocation: peak RSS {peak} KiB (after each: {peaks:?})");
    assert!(peak < 128 * 1024, "peak RSS {peak} KiB exceeds the smallest Lambda (128 MiB)");
    let records_in = 10 * 50 + 5800;
    // Read back: every valid record an event once, every invalid one quarantined once (shard 4's
    // first 50 records came again in the full invocation).
    let store = sink::store::S3Store::new(s3.clone(), "lake");
    tokio.block_on(testkit::publish(&store, "analytics/"));
    let rows = |table| tokio.block_on(testkit::read_table(&store, "analytics/", table));
    let events: Vec<(String, String)> =
        rows(sink::Table::Events).iter().map(|(_, r)| (testkit::s(r, "shard_id"), testkit::s(r, "event_id"))).collect();
    let quarantine: Vec<(String, String)> = rows(sink::Table::Quarantine)
        .iter()
        .map(|(_, r)| (testkit::s(r, "shard_id"), testkit::s(r, "sequence_number")))
        .collect();
    let (mut want_events, mut want_quarantine) = (Vec::new(), Vec::new());
    for shard in &shards {
        let count = if shard.ends_with('4') { 5800 } else { 50 };
        for n in 0..count {
            if testkit::records::is_valid(n) {
                want_events.push((shard.clone(), format!("e-{n}")));
            } else {
                want_quarantine.push((shard.clone(), testkit::records::sequence_number(n)));
            }
        }
    }
    let (lost_e, dup_e) = testkit::reliability::compare(&want_events, &events);
    let (lost_q, dup_q) = testkit::reliability::compare(&want_quarantine, &quarantine);
    assert_eq!((lost_e + lost_q, dup_e + dup_q), (0, 0));
    testkit::reliability::record(&testkit::reliability::Row {
        order: 11,
        scenario: "10 hot shards in one environment".into(),
        injected:
            "10 shards whose windows hold 600,000 ids each (the shard limit): a batch each, then a full 6 MB invocation"
                .into(),
        records_in: records_in as u64,
        events_out: events.len() as u64,
        quarantined_out: quarantine.len() as u64,
        lost: lost_e + lost_q,
        duplicated: dup_e + dup_q,
        peak_kib: Some(peak),
        process: "processor bootstrap (local Runtime API, 128 MB)".into(),
    });
}

//! The main job at a reduced size, and the local event source mapping's failure handling, with
//! the same handler as the Lambda function.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use orderstream::lambda::esm::{self, EsmConfig, EsmStats};
use orderstream::lambda::on_failure::Destination;
use orderstream::pipeline::{self, MainJob};
use orderstream::sources::embedded::{EmbeddedShard, EmbeddedStream};
use processor::Processor;
use producer::kinesis::Entry;
use producer::Faults;
use sink::store::{LocalStore, MemoryStore, ObjectStore, StoreError};
use sink::Table;
use testkit::{read_table, s};

/// A 3-second main job at 1,500 records/s over 3 shards into `dir`, batches of `batch_size`,
/// rounds every 0.5 s, some of every fault, no dashboard.
fn short_job(dir: &std::path::Path, batch_size: usize) -> MainJob {
    MainJob {
        data_dir: dir.to_path_buf(),
        duration: Duration::from_secs(3),
        rate: 1500.0,
        shards: 3,
        seed: 1,
        shard_limits: None,
        faults: Faults { invalid_rate: 0.02, duplicate_rate: 0.02, late_rate: 0.02 },
        esm: EsmConfig {
            batch_size,
            batching_window: Duration::from_millis(200),
            ..EsmConfig::new(Destination::Dir(dir.join("_on_failure")))
        },
        progress: false,
        dashboard: None,
        dashboard_any_port: false,
        store_outage: None,
        reshard_at: None,
        publish_interval: Duration::from_millis(500),
        aggregate: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_job_writes_datasets_equal_to_the_producers_truth() {
    let dir = tempfile::tempdir().unwrap();
    let job = MainJob {
        seed: 4,
        faults: Faults { invalid_rate: 0.02, duplicate_rate: 0.01, late_rate: 0.02 },
        dashboard: Some("127.0.0.1:0".parse().unwrap()),
        ..short_job(dir.path(), 300)
    };
    let summary = pipeline::run(&job).await.unwrap();
    assert!(summary.reconciled(), "{}", summary.render(dir.path()));
    // Published in rounds: at most one file per table, hour and round, aggregates at one row
    // per key per round, and the summary says so.
    assert!(summary.published_ok(), "{:?}", summary.audit);
    assert!(summary.published.rounds >= 3, "rounds every 0.5 s over 3 s: {}", summary.published.rounds);
    let events_files = summary.audit.tables[&Table::Events].files;
    assert!(
        events_files <= summary.published.rounds * summary.audit.tables[&Table::Events].hours,
        "{events_files} events files"
    );
    // Every staged file the handler committed went into a round.
    assert_eq!(summary.published.commits, summary.esm.invocations - summary.esm.failed_invocations);
    assert!(summary.published.input_files > summary.published.files, "{:?}", summary.published);
    let (f50, f99) = (summary.published.freshness_ms(0.5), summary.published.freshness_ms(0.99));
    assert!(f50 > 0 && f50 <= f99 && f99 < 10_000, "freshness p50 {f50} ms, p99 {f99} ms");
    let produced = summary.truth.records;
    assert!((4000..=4600).contains(&produced), "about 1,500 records/s for 3 s: {produced}");
    assert_eq!(summary.esm.records, produced, "every record was processed");
    assert_eq!(summary.esm.shards.len(), 3);
    assert!(summary.esm.duplicates > 0 && summary.esm.discarded == 0);
    let text = summary.render(dir.path());
    assert!(
        text.contains("reconciled with the producer's truth manifest")
            && text.contains("p99")
            && text.contains("duckdb -c")
            && text.contains("at most 1 file per table, hour and round")
            && text.contains("at most 1 row per key per round")
            && text.contains("freshness from arrival in the stream to visible in the datasets"),
        "{text}"
    );

    // The datasets, with the parquet crate and with DuckDB (hive partitioning).
    let store = LocalStore::new(dir.path()).unwrap();
    let events = read_table(&store, "", Table::Events).await;
    assert_eq!(events.len() as u64, summary.truth.tables.events.rows);
    assert!(events.iter().all(|(_, r)| s(r, "shard_id").starts_with("shardId-00000000000")));
    testkit::aggregates_match_details(&store, "").await;
    let report = testkit::python_report(&["--dir", dir.path().to_str().unwrap()]);
    testkit::assert_contract_types(&report, &Table::ALL);
    assert_eq!(report["checks"]["sales_mismatches"], 0);
    assert_eq!(report["checks"]["funnel_mismatches"], 0);
    assert_eq!(report["tables"]["quarantine"]["rows"], summary.truth.tables.quarantine.rows);

    // The dashboard's final figures are the run's.
    let addr = summary.dashboard.as_ref().expect("a dashboard").addr;
    let snap: serde_json::Value =
        tokio::task::spawn_blocking(move || http_get_json(addr, "/api/snapshot")).await.unwrap();
    let t = &summary.truth.tables;
    assert_eq!(snap["finished"], true);
    assert_eq!(snap["produced"], summary.truth.records);
    assert_eq!(snap["processed"], summary.truth.records);
    assert_eq!(snap["events"], t.events.rows);
    assert_eq!(snap["quarantined"], t.quarantine.rows);
    assert_eq!(snap["orders"], t.events.by_event_type["order_placed"]);
    for step in snap["funnel"].as_array().unwrap() {
        assert_eq!(step["count"], t.events.by_event_type[step["step"].as_str().unwrap()], "{step}");
    }
    let by_reason: u64 = snap["quarantine"].as_array().unwrap().iter().map(|q| q[1].as_u64().unwrap()).sum();
    assert_eq!(by_reason, t.quarantine.rows);
    assert_eq!(snap["iterator_age"].as_array().unwrap().len(), 3);
    assert!(!snap["minutes"].as_array().unwrap().is_empty() && !snap["top_products"].as_array().unwrap().is_empty());
    assert_eq!(snap["files_published"], summary.published.files);
    assert_eq!(snap["rounds"], summary.published.rounds);
    let first_files = summary.audit.files();
    drop(summary);

    // A second run into the same folder counts its own files, and says how many were there.
    let again = pipeline::run(&MainJob { dashboard: None, ..job }).await.unwrap();
    assert!(again.reconciled() && again.published_ok(), "{}", again.render(dir.path()));
    assert_eq!(again.earlier_files as u64, first_files);
    let now_visible = publisher::audit::visible_files(&store, "").await.unwrap().len() as u64;
    assert_eq!(now_visible, first_files + again.audit.files());
    let events = &again.audit.tables[&Table::Events];
    assert!(events.files <= again.published.rounds * events.hours, "{} events files", events.files);
    let text = again.render(dir.path());
    assert!(text.contains(&format!("(besides {} files of earlier runs in the folder)", again.earlier_files)), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sent_in_kpl_aggregates_come_out_as_the_truth_says() {
    let dir = tempfile::tempdir().unwrap();
    let job = MainJob { seed: 8, aggregate: true, ..short_job(dir.path(), 50) };
    let summary = pipeline::run(&job).await.unwrap();
    let text = summary.render(dir.path());
    assert!(summary.reconciled() && summary.published_ok(), "{text}");
    let produced = summary.truth.records;
    assert_eq!(summary.sent.sent, produced, "user records put");
    assert!(
        summary.sent.kinesis_records * 5 < produced,
        "aggregated: {} Kinesis records",
        summary.sent.kinesis_records
    );
    assert_eq!(summary.esm.records, summary.sent.kinesis_records, "the handler saw the aggregates");
    assert_eq!(summary.esm.user_records(), produced, "and every record inside them");
    assert!(summary.esm.duplicates > 0, "duplicates inside and across aggregates dropped");
    assert!(text.contains("KPL aggregates)"), "{text}");
    // Read back independently: every event once (pyarrow and DuckDB), the quarantine as the truth.
    let report = testkit::python_report(&["--dir", dir.path().to_str().unwrap()]);
    testkit::assert_contract_types(&report, &Table::ALL);
    assert_eq!(report["tables"]["events"]["rows"], summary.truth.tables.events.rows);
    assert_eq!(report["tables"]["quarantine"]["rows"], summary.truth.tables.quarantine.rows);
    assert_eq!(report["checks"]["sales_mismatches"], 0);
    // User records of one aggregate share its sequence number and differ by sub-sequence.
    let store = LocalStore::new(dir.path()).unwrap();
    let events = read_table(&store, "", Table::Events).await;
    let mut seen = std::collections::BTreeSet::new();
    for (_, r) in &events {
        assert!(seen.insert((s(r, "sequence_number"), testkit::i(r, "sub_sequence_number"))), "a position twice");
    }
    assert!(events.iter().any(|(_, r)| testkit::i(r, "sub_sequence_number") > 0));
}

/// The truth manifest a main job wrote into its data directory.
fn truth_manifest(dir: &std::path::Path) -> producer::TruthManifest {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("_truth-"))
        .expect("a truth manifest");
    serde_json::from_slice(&std::fs::read(file).unwrap()).expect("a truth manifest")
}

fn http_get_json(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let (head, body) = testkit::http(addr, "GET", path);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(&body).unwrap()
}

/// A memory store whose first `n` reads fail: each failed invocation fails once, at loading the
/// shard's state, so the number of failed invocations is exact.
struct FailingReads {
    inner: MemoryStore,
    left: AtomicUsize,
}

#[async_trait]
impl ObjectStore for FailingReads {
    fn describe(&self) -> String {
        "failing".into()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        if self.left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(StoreError::new("get", key, "failing", "injected: 503 SlowDown"));
        }
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.inner.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        self.inner.put_if_absent(key, body).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<bool, StoreError> {
        self.inner.copy(from, to).await
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.exists(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list_dirs(prefix).await
    }
    async fn upload_start(&self, key: &str) -> Result<String, StoreError> {
        self.inner.upload_start(key).await
    }
    async fn upload_part(&self, key: &str, upload: &str, n: u32, body: Bytes) -> Result<String, StoreError> {
        self.inner.upload_part(key, upload, n, body).await
    }
    async fn upload_complete(&self, key: &str, upload: &str, parts: Vec<(u32, String)>) -> Result<(), StoreError> {
        self.inner.upload_complete(key, upload, parts).await
    }
    async fn upload_abort(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        self.inner.upload_abort(key, upload).await
    }
}

#[tokio::test]
async fn failed_invocations_are_retried_bisected_and_finally_sent_to_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let stream = Arc::new(EmbeddedStream::new("esm", 1, None));
    for n in 0..100 {
        let data = format!(
            r#"{{"event_id":"e-{n}","event_type":"page_view","event_time":"2026-11-23T12:00:00Z","session_id":"s","country":"US","device":"app","page":"/"}}"#
        );
        stream.put(&Entry { data: Bytes::from(data), partition_key: "s".into(), explicit_hash_key: None, records: 1 });
    }
    let store = FailingReads { inner: MemoryStore::new(), left: AtomicUsize::new(3) };
    let processor = Arc::new(Processor::new(store, ""));
    let cfg = EsmConfig {
        batch_size: 40,
        max_retry_attempts: Some(2),
        bisect_on_error: true,
        ..EsmConfig::new(Destination::Dir(dir.path().join("_on_failure")))
    };
    let stats = Arc::new(Mutex::new(EsmStats::default()));
    // Stop as soon as the shard is drained.
    let source = EmbeddedShard::new(stream.clone(), 0);
    esm::poll_shard(source, processor.clone(), cfg, stats.clone(), Arc::new(AtomicBool::new(true))).await.unwrap();
    let st = stats.lock().unwrap().clone();
    // 0..40 fails, retried as 0..20 (bisected), then 0..10, which exhausts the 2 retries and
    // goes to the destination; then 10..50, 50..90 and 90..100 succeed.
    assert_eq!((st.invocations, st.failed_invocations, st.discarded, st.records), (6, 3, 10, 90));
    let note: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(
            "_on_failure/esm-shardId-000000000000-49000000000000000000000000000000000000000000000000000000.json",
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(note["KinesisBatchInfo"]["batchSize"], 10);
    assert_eq!(note["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert!(note["responseContext"]["functionError"].as_str().unwrap().contains("503 SlowDown"));
    testkit::publish(processor.store(), "").await;
    let mut ids: Vec<u32> = read_table(processor.store(), "", Table::Events)
        .await
        .into_iter()
        .map(|(_, r)| s(&r, "event_id")[2..].parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (10..100).collect::<Vec<_>>());
    assert_eq!(stream.end(0), 100);
}

#[test]
fn the_cli_runs_the_main_job_and_refuses_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_orderstream");
    let out = std::process::Command::new(bin)
        .args(["--data-dir", dir.path().to_str().unwrap(), "--duration", "1", "--rate", "300", "--shards", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("2 shards") && stdout.contains("manifest") && stdout.contains(": yes"), "{stdout}");
    for args in [
        vec!["--rate", "0"],
        vec!["--duration", "-3"],
        vec!["--invalid-rate", "3"],
        vec!["--shards", "0"],
        vec!["--bucket", "b"],
        vec!["--max-retry-attempts", "-2"],
        vec!["--max-record-age", "0"],
        vec!["--no-dashboard", "--serve"],
        vec!["--dashboard", "localhost"],
        vec!["--publish-interval", "0"],
    ] {
        let out = std::process::Command::new(bin)
            .args(["--data-dir", dir.path().to_str().unwrap()])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.starts_with("error") && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_dashboard_address_in_use_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orderstream"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "--duration", "1", "--dashboard", &addr])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("error: cannot serve the dashboard on") && last.contains(&addr), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn serve_keeps_the_final_figures_up_until_ctrl_c() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut job = std::process::Command::new(env!("CARGO_BIN_EXE_orderstream"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "--duration", "1", "--rate", "200", "--shards", "2"])
        .args(["--dashboard", "127.0.0.1:0", "--serve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(job.stderr.take().unwrap());
    let mut seen = Vec::new();
    let mut url = None;
    for line in stderr.lines().map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("dashboard: still serving the final figures at ") {
            url = rest.split_whitespace().next().map(str::to_string);
            break;
        }
        seen.push(line);
    }
    let url = url.unwrap_or_else(|| panic!("no serving line:\n{}", seen.join("\n")));
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    let snap = http_get_json(addr, "/api/snapshot");
    assert_eq!(snap["finished"], true);
    assert_eq!(snap["processed"], snap["produced"]);
    let killed = std::process::Command::new("kill").args(["-INT", &job.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = job.wait().unwrap();
    assert!(status.success(), "Ctrl-C ends --serve cleanly: {status}");
}

#[test]
fn batches_given_up_during_an_outage_are_replayed_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let bin = env!("CARGO_BIN_EXE_orderstream");
    // A 1.5 s outage of the data directory a second into the run; the mapping gives up on a
    // batch after one retry (the default never gives up).
    let out = std::process::Command::new(bin)
        .args(["--data-dir", data, "--duration", "4", "--rate", "400", "--shards", "2", "--seed", "7"])
        .args(["--no-dashboard", "--batching-window-ms", "100", "--max-retry-attempts", "1", "--store-outage", "1,1.5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "records were given up on: not reconciled\n{stdout}");
    assert!(
        stdout.contains("given up on: replay them with `cargo run --release -- replay --on-failure-dir"),
        "{stdout}"
    );
    let on_failure = dir.path().join("_on_failure");
    let given_up = std::fs::read_dir(&on_failure).unwrap().count();
    assert!(given_up > 0);

    let replay = || {
        let out = std::process::Command::new(bin)
            .args(["replay", "--on-failure-dir", on_failure.to_str().unwrap(), "--data-dir", data])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = replay();
    assert!(
        first.contains(&format!("{given_up} batches from"))
            && first.contains(&format!("{given_up} replayed, 0 failed")),
        "{first}"
    );

    let truth = truth_manifest(dir.path());
    let t = &truth.tables;
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let check = || {
        tokio.block_on(async {
            let out = (
                read_table(&store, "", Table::Events).await.len(),
                read_table(&store, "", Table::Quarantine).await.len(),
            );
            assert_eq!(out, (t.events.rows as usize, t.quarantine.rows as usize));
            assert_eq!(read_table(&store, "", Table::OrderItems).await.len() as u64, t.order_items.rows);
            testkit::aggregates_match_details(&store, "").await;
            out
        })
    };
    let (events, quarantined) = check();
    testkit::reliability::record(&testkit::reliability::Row {
        order: 10,
        scenario: "batches given up during an outage, replayed from the main job's folder".into(),
        injected: format!("the data directory refused writes for 1.5 s; the mapping gave up after 1 retry ({given_up} batches); `orderstream replay --on-failure-dir`, twice"),
        records_in: truth.records,
        events_out: events as u64,
        quarantined_out: quarantined as u64,
        lost: 0,
        duplicated: 0,
        peak_kib: testkit::reliability::printed_peak_kib(&first),
        process: "orderstream replay".into(),
    });
    // Nothing is left to replay; a replayed record put back changes nothing.
    assert!(replay().starts_with("0 batches"));
    let done = on_failure.join("replayed");
    let one = std::fs::read_dir(&done).unwrap().next().unwrap().unwrap().path();
    std::fs::rename(&one, on_failure.join(one.file_name().unwrap())).unwrap();
    let again = replay();
    assert!(
        again.contains("1 replayed") && again.contains(" 0 events") && again.contains("already committed"),
        "{again}"
    );
    check();
}

#[test]
fn a_split_and_a_merge_during_a_run_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // No producer retries: a retry that straddles a reshard lands on two shards, and the
    // contract de-duplicates per shard, so the truth manifest would count it once and the
    // datasets twice.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orderstream"))
        .args(["--data-dir", data, "--duration", "4", "--rate", "600", "--shards", "3", "--seed", "11"])
        .args(["--no-dashboard", "--batching-window-ms", "100", "--duplicate-rate", "0", "--reshard-at", "1"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("split shardId-000000000000 into shardId-000000000003 and shardId-000000000004"),
        "{stderr}"
    );
    assert!(
        stderr.contains("merged shardId-000000000001 and shardId-000000000002 into shardId-000000000005"),
        "{stderr}"
    );
    assert!(stdout.contains("stream storefront-") && stdout.contains(": 6 shards,"), "{stdout}");
    assert!(stdout.contains("reconciled with the producer's truth manifest") && stdout.contains(": yes"), "{stdout}");
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let shards: std::collections::BTreeSet<String> = tokio.block_on(async {
        testkit::aggregates_match_details(&store, "").await;
        read_table(&store, "", Table::Events).await.into_iter().map(|(_, r)| s(&r, "shard_id")).collect()
    });
    assert_eq!(shards.len(), 6, "parents and children all hold events: {shards:?}");
    let truth = truth_manifest(dir.path());
    let (want_events, want_quarantined) = (truth.tables.events.rows, truth.tables.quarantine.rows);
    let (events, quarantined) = tokio.block_on(async {
        (
            read_table(&store, "", Table::Events).await.len() as u64,
            read_table(&store, "", Table::Quarantine).await.len() as u64,
        )
    });
    testkit::reliability::record(&testkit::reliability::Row {
        order: 12,
        scenario: "a shard split and a merge during a run".into(),
        injected: "3 shards; 1 s in, shard 0 split in two; 2 s in, shards 1 and 2 merged; children read once their parents are drained".into(),
        records_in: truth.records,
        events_out: events,
        quarantined_out: quarantined,
        lost: want_events.saturating_sub(events) + want_quarantined.saturating_sub(quarantined),
        duplicated: events.saturating_sub(want_events) + quarantined.saturating_sub(want_quarantined),
        peak_kib: testkit::reliability::printed_peak_kib(&stdout),
        process: "orderstream (the main job)".into(),
    });
}

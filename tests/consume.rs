//! `orderstream consume`: the event source mapping against moto_server's Kinesis on 127.0.0.1,
//! writing datasets equal to the producer's truth manifest; a second run adds nothing.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use producer::kinesis::{send_all, Entry, SdkKinesis, SendConfig, SendStats};
use producer::{Config, Faults, Storefront, Truth, TruthManifest};
use sink::store::LocalStore;
use sink::Table;
use testkit::{read_table, s};

/// A stream of 2 shards holding 3,000 storefront records with faults, sent with the producer's
/// own code; the truth manifest of what was sent.
async fn fill_stream(client: &aws_sdk_kinesis::Client, name: &str, seed: u64) -> TruthManifest {
    client.create_stream().stream_name(name).shard_count(2).send().await.unwrap();
    let mut store = Storefront::new(Config {
        seed,
        start_ms: model::now_ms() - 600_000,
        faults: Faults { invalid_rate: 0.03, duplicate_rate: 0.02, late_rate: 0.02 },
        ..Config::default()
    });
    let mut truth = Truth::new();
    let (tx, rx) = tokio::sync::mpsc::channel(5000);
    let mut buf = Vec::new();
    for _ in 0..3000 {
        let g = store.next_record(&mut buf);
        truth.add(&g);
        tx.send(Entry {
            data: bytes::Bytes::copy_from_slice(&buf),
            partition_key: g.partition_key,
            explicit_hash_key: None,
            records: 1,
        })
        .await
        .unwrap();
    }
    drop(tx);
    let api = SdkKinesis::new(client.clone());
    // One request at a time: moto_server assigns sequence numbers without a lock, and
    // concurrent PutRecords to a shard can overwrite records inside moto.
    let mut cfg = SendConfig::new(name);
    cfg.concurrency = 1;
    let given_up = send_all(&api, &cfg, rx, Arc::new(Mutex::new(SendStats::default())), 1).await.unwrap();
    assert!(given_up.is_empty());
    truth.manifest(seed)
}

fn orderstream(moto: &testkit::servers::Server) -> Command {
    testkit::aws_command(env!("CARGO_BIN_EXE_orderstream"), &moto.endpoint())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_reads_every_shard_into_datasets_equal_to_the_truth() {
    let moto = testkit::servers::start_moto();
    let client = testkit::kinesis_client(&moto.endpoint());
    let t = fill_stream(&client, "live", 8).await;
    let dir = tempfile::tempdir().unwrap();
    let consume = || {
        orderstream(&moto)
            .args(["consume", "--stream", "live", "--duration", "3", "--batching-window-ms", "100"])
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = consume();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    let tables = &t.tables;
    assert!(stdout.starts_with("3000 records:"), "{stdout}");

    let local = LocalStore::new(dir.path()).unwrap();
    let events = read_table(&local, "", Table::Events).await;
    assert_eq!(events.len() as u64, tables.events.rows);
    let shards: std::collections::BTreeSet<_> = events.iter().map(|(_, r)| s(r, "shard_id")).collect();
    assert_eq!(shards.len(), 2, "both shards were read");
    let mut quarantine: BTreeMap<String, u64> = BTreeMap::new();
    for (_, r) in read_table(&local, "", Table::Quarantine).await {
        *quarantine.entry(s(&r, "reason_code")).or_default() += 1;
    }
    assert_eq!(quarantine, tables.quarantine.by_reason_code);
    testkit::aggregates_match_details(&local, "").await;

    // Reading the stream again from its start commits nothing new.
    let out = consume();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("3000 records: 0 events, 0 quarantined"));
    assert_eq!(read_table(&local, "", Table::Events).await.len(), events.len());
}

/// The real Lambda bootstrap, built beside `orderstream` by `cargo test --workspace`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_and_invoke_run_the_real_bootstrap_under_the_local_runtime_api() {
    let moto = testkit::servers::start_moto();
    let client = testkit::kinesis_client(&moto.endpoint());
    let t = fill_stream(&client, "live", 9).await;
    let s3 = testkit::s3_client(&moto.endpoint());
    testkit::create_bucket(&s3, "lake").await;
    let bootstrap = testkit::processor_bootstrap();

    let out = orderstream(&moto)
        .args(["consume", "--stream", "live", "--duration", "3", "--batching-window-ms", "100"])
        .args(["--bucket", "lake", "--prefix", "fn/", "--function"])
        .arg(&bootstrap)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let t_events = t.tables.events.rows;
    let t_quarantined = t.tables.quarantine.rows;
    assert!(
        stdout.starts_with(&format!("3000 records: {t_events} events, {t_quarantined} quarantined")),
        "the figures come from the function's EMF summaries: {stdout}"
    );
    // The function's JSON log lines (and EMF) went to standard error.
    assert!(stderr.contains(r#""message":"batch committed""#) && stderr.contains(r#""_aws""#), "{stderr}");
    let bucket = sink::store::S3Store::new(s3.clone(), "lake");
    let events = read_table(&bucket, "fn/", Table::Events).await;
    assert_eq!(events.len() as u64, t.tables.events.rows);
    assert_eq!(read_table(&bucket, "fn/", Table::Quarantine).await.len() as u64, t.tables.quarantine.rows);
    testkit::aggregates_match_details(&bucket, "fn/").await;

    // One event file through the same bootstrap: its records are already committed. Three of
    // one shard, whose batch log line counts them together (the table's first rows can come from
    // two shards, when a round's first commit held fewer than three events).
    let shard = s(&events[0].1, "shard_id");
    let records: Vec<processor::kinesis::InputRecord> = events
        .iter()
        .filter(|(_, r)| s(r, "shard_id") == shard)
        .take(3)
        .map(|(_, r)| processor::kinesis::InputRecord {
            stream: "live".into(),
            meta: sink::RecordMeta {
                shard_id: s(r, "shard_id").into(),
                sequence_number: s(r, "sequence_number"),
                sub_sequence_number: 0,
                partition_key: "k".into(),
                arrival_ms: testkit::i(r, "arrival_time"),
            },
            data: b"{}".to_vec(),
            undecodable: false,
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let event_file = dir.path().join("event.json");
    std::fs::write(&event_file, processor::kinesis::event_json(&records, "us-east-1", "123456789012").to_string())
        .unwrap();
    let invoke =
        |extra: &[&str]| orderstream(&moto).args(["invoke", "--event"]).arg(&event_file).args(extra).output().unwrap();
    let out = invoke(&["--bucket", "lake", "--prefix", "fn/", "--function", bootstrap.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"batchItemFailures":[]}"#);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains(r#""already_committed":3"#), "the function's log:\n{log}");
    assert_eq!(read_table(&bucket, "fn/", Table::Events).await.len(), events.len(), "nothing new");

    // Mistakes get one line each.
    for (extra, says) in [
        (vec!["--function", bootstrap.to_str().unwrap()], "--function needs --bucket"),
        (vec!["--bucket", "lake", "--function", "/nonexistent/bootstrap"], "no such file"),
    ] {
        let out = invoke(&extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.starts_with("error:") && err.contains(says), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

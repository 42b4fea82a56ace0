//! `orderstream consume`: the event source mapping against moto_server's Kinesis on 127.0.0.1,
//! writing datasets equal to the producer's truth manifest; a second run adds nothing.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use producer::kinesis::{send_all, Entry, SdkKinesis, SendConfig, SendStats};
use producer::{Config, Faults, Storefront, Truth};
use sink::store::LocalStore;
use sink::Table;
use support::{read_table, s};

fn kinesis(endpoint: &str) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_kinesis::config::Credentials::new("test", "test", None, None, "tests"))
            .build(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_reads_every_shard_into_datasets_equal_to_the_truth() {
    let moto = support::servers::start_moto();
    let client = kinesis(&moto.endpoint());
    client.create_stream().stream_name("live").shard_count(2).send().await.unwrap();

    // 3,000 storefront records with faults, sent with the producer's own code.
    let mut store = Storefront::new(Config {
        seed: 8,
        start_ms: chrono::Utc::now().timestamp_millis() - 600_000,
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
        })
        .await
        .unwrap();
    }
    drop(tx);
    let api = SdkKinesis::new(client.clone());
    // One request at a time: moto_server assigns sequence numbers without a lock, and
    // concurrent PutRecords to a shard can overwrite records inside moto.
    let mut cfg = SendConfig::new("live");
    cfg.concurrency = 1;
    let given_up = send_all(&api, &cfg, rx, Arc::new(Mutex::new(SendStats::default())), 1).await.unwrap();
    assert!(given_up.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let consume = || {
        Command::new(env!("CARGO_BIN_EXE_orderstream"))
            .args(["consume", "--stream", "live", "--duration", "3", "--batching-window-ms", "100"])
            .arg("--data-dir")
            .arg(dir.path())
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap()
    };
    let out = consume();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    let t = truth.to_json(8);
    let tables = &t["tables"];
    assert!(stdout.starts_with("3000 records:"), "{stdout}");

    let local = LocalStore::new(dir.path()).unwrap();
    let events = read_table(&local, "", Table::Events).await;
    assert_eq!(events.len() as u64, tables["events"]["rows"].as_u64().unwrap());
    let shards: std::collections::BTreeSet<_> = events.iter().map(|(_, r)| s(r, "shard_id")).collect();
    assert_eq!(shards.len(), 2, "both shards were read");
    let mut quarantine: BTreeMap<String, u64> = BTreeMap::new();
    for (_, r) in read_table(&local, "", Table::Quarantine).await {
        *quarantine.entry(s(&r, "reason_code")).or_default() += 1;
    }
    assert_eq!(serde_json::json!(quarantine), tables["quarantine"]["by_reason_code"]);
    support::aggregates_match_details(&local, "").await;

    // Reading the stream again from its start commits nothing new.
    let out = consume();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("3000 records: 0 events, 0 quarantined"));
    assert_eq!(read_table(&local, "", Table::Events).await.len(), events.len());
}

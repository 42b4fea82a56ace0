//! A damaged ledger on moto_server's S3: the shard stops with an error that names the object and
//! the repair command; `orderstream repair` refuses to guess over a damaged commit record, and
//! rebuilds `head.json` and a checkpoint from the commit records once it is restored.

use std::process::Output;

use orderstream::input;
use processor::Processor;
use sink::store::{ObjectStore, S3Store};

fn orderstream(moto: &testkit::servers::Server, args: &[&str]) -> Output {
    testkit::aws_command(env!("CARGO_BIN_EXE_orderstream"), &moto.endpoint()).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_commit_record_stops_the_shard_until_it_is_restored_and_repaired() {
    let moto = testkit::servers::start_moto();
    let s3 = testkit::s3_client(&moto.endpoint());
    testkit::create_bucket(&s3, "lake").await;
    let store = S3Store::new(s3.clone(), "lake");
    let records = input::sample_records("orders", "shardId-000000000005").unwrap();
    let p = Processor::new(S3Store::new(s3.clone(), "lake"), "r/");
    for range in [0..20, 20..40, 40..56] {
        assert_eq!(p.process(records[range].to_vec()).await.error, None);
    }
    let base = "r/_pipeline/orders/shardId-000000000005/";
    let key = format!("{base}commits/00000000000000000002.json");
    let good = store.get(&key).await.unwrap().unwrap();
    store.put(&key, bytes::Bytes::from_static(b"{\"format\": 2, \"commit\": \"two\"}")).await.unwrap();
    store.delete(&format!("{base}head.json")).await.unwrap();

    // The shard stops, naming the object and the command.
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, processor::kinesis::event_json(&records, "us-east-1", "123456789012").to_string()).unwrap();
    let args = ["process", "--event", event.to_str().unwrap(), "--bucket", "lake", "--prefix", "r/"];
    let out = orderstream(&moto, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&key) && stderr.contains("is damaged"), "{stderr}");
    assert!(stderr.contains("orderstream repair --stream orders --shard shardId-000000000005 --prefix r/"), "{stderr}");

    // The repair does not guess over it either.
    let repair =
        ["repair", "--stream", "orders", "--shard", "shardId-000000000005", "--bucket", "lake", "--prefix", "r/"];
    let out = orderstream(&moto, &repair);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(&key), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    // Restored from its previous version, the repair rebuilds the state.
    store.put(&key, good).await.unwrap();
    let out = orderstream(&moto, &repair);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("3 commit records (from 1 to 3)") && stdout.contains("wrote checkpoint 3 and head.json"),
        "{stdout}"
    );
    assert!(store.get(&format!("{base}head.json")).await.unwrap().is_some());
    assert!(store.get(&format!("{base}checkpoints/00000000000000000003.bin")).await.unwrap().is_some());

    // The shard goes on: a redelivery of everything is all committed already.
    let out = orderstream(&moto, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("56 already committed"), "{stdout}");
    testkit::assert_sample_datasets(&store, "r/").await;
}

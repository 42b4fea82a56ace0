//! The S3 store, the handler and the publisher against moto_server's S3 API on 127.0.0.1: round
//! trips, writes signed with a CRC32 of their body rather than its SHA-256, both readers,
//! redelivery, 503 bursts longer than the SDK's retries (through a fault proxy), a process killed
//! between any two writes of a commit, and a publisher killed between any two writes of a round.

use bytes::Bytes;
use orderstream::input;
use processor::kinesis::InputRecord;
use processor::Processor;
use sink::store::{ObjectStore, S3Store};
use sink::Table;
use testkit::assert_sample_datasets;

async fn store_on(endpoint: &str, bucket: &str, create: bool) -> S3Store {
    let client = testkit::s3_client(endpoint);
    if create {
        testkit::create_bucket(&client, bucket).await;
    }
    S3Store::new(client, bucket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_store_round_trips_objects_on_a_real_s3_api() {
    let moto = testkit::servers::start_moto();
    let store = store_on(&moto.endpoint(), "roundtrip", true).await;
    let key = "p/events/dt=2026-11-23/hr=12/part-ä b+c.parquet";
    assert_eq!(store.get(key).await.unwrap(), None);
    assert!(!store.exists(key).await.unwrap());
    store.put(key, Bytes::from_static(b"one")).await.unwrap();
    store.put(key, Bytes::from_static(b"two")).await.unwrap();
    assert_eq!(store.get(key).await.unwrap().unwrap(), "two");
    assert!(store.exists(key).await.unwrap());
    // The start of an object (a GET with a Range), all of a shorter one, none of a missing one;
    // an empty object (whose every range S3 refuses with 416) is all of its start.
    assert_eq!(store.get_prefix(key, 2).await.unwrap().unwrap(), "tw");
    assert_eq!(store.get_prefix(key, 99).await.unwrap().unwrap(), "two");
    assert_eq!(store.get_prefix("p/missing", 2).await.unwrap(), None);
    store.put("p/empty", Bytes::new()).await.unwrap();
    assert_eq!(store.get_prefix("p/empty", 2).await.unwrap().unwrap(), "");
    store.delete("p/empty").await.unwrap();
    // Conditional create: If-None-Match: * is refused on an existing key.
    assert!(store.put_if_absent("p/c/1.json", Bytes::from_static(b"first")).await.unwrap());
    assert!(!store.put_if_absent("p/c/1.json", Bytes::from_static(b"second")).await.unwrap());
    assert_eq!(store.get("p/c/1.json").await.unwrap().unwrap(), "first");
    // Copy with a key that needs URL encoding; a missing source is reported, not an error.
    assert!(store.copy(key, "p/copy/x=1/ä b+c.parquet").await.unwrap());
    assert_eq!(store.get("p/copy/x=1/ä b+c.parquet").await.unwrap().unwrap(), "two");
    assert!(!store.copy("p/missing", "p/never").await.unwrap());
    assert_eq!(store.list("p/c").await.unwrap(), vec!["p/c/1.json", "p/copy/x=1/ä b+c.parquet"]);
    store.delete(key).await.unwrap();
    store.delete(key).await.unwrap();
    assert!(!store.exists(key).await.unwrap());
    // Large objects (8 MiB) go through whole.
    let big = Bytes::from(vec![7u8; 8 << 20]);
    store.put("p/big", big.clone()).await.unwrap();
    assert_eq!(store.get("p/big").await.unwrap().unwrap(), big);
    // Folders one level down (common prefixes).
    store.put("p/events/dt=2026-11-23/hr=12/one.parquet", Bytes::from_static(b"1")).await.unwrap();
    assert_eq!(store.list_dirs("p/").await.unwrap(), vec!["p/c/", "p/copy/", "p/events/"]);
    assert_eq!(store.list_dirs("p/copy/").await.unwrap(), vec!["p/copy/x=1/"]);
    // A multipart upload: nothing until it completes, then the whole; an aborted one leaves
    // nothing.
    let body: Vec<u8> = (0..(11 << 20)).map(|i: u32| (i % 253) as u8).collect();
    let mut up = sink::store::Upload::new(&store, "p/multi", 0);
    for chunk in body.chunks(3 << 20) {
        up.write(chunk).await.unwrap();
    }
    assert!(!store.exists("p/multi").await.unwrap());
    up.finish().await.unwrap();
    assert_eq!(store.get("p/multi").await.unwrap().unwrap(), body);
    let mut up = sink::store::Upload::new(&store, "p/aborted", 0);
    up.write(&body).await.unwrap();
    up.abort().await;
    assert!(!store.exists("p/aborted").await.unwrap());
    // A missing bucket is an error that names it.
    let missing = store_on(&moto.endpoint(), "no-such-bucket", false).await;
    let err = missing.put("k", Bytes::new()).await.unwrap_err().to_string();
    assert!(err.contains("s3://no-such-bucket") && err.contains("NoSuchBucket"), "{err}");
}

/// The requests as they went out, recorded by an SDK interceptor.
#[derive(Debug, Default, Clone)]
struct Sent(std::sync::Arc<std::sync::Mutex<Vec<Request>>>);

/// A request's method and URI, its `x-amz-content-sha256` and its `x-amz-checksum-crc32`.
type Request = (String, String, Option<String>);

impl aws_sdk_s3::config::Intercept for Sent {
    fn name(&self) -> &'static str {
        "Sent"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let request = context.request();
        let header = |name| request.headers().get(name).map(str::to_string);
        let method = format!("{} {}", request.method(), request.uri());
        self.0.lock().unwrap().push((
            method,
            header("x-amz-content-sha256").unwrap_or_default(),
            header("x-amz-checksum-crc32"),
        ));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_sent_with_a_crc32_of_their_body_in_place_of_its_sha256() {
    let moto = testkit::servers::start_moto();
    let sent = Sent::default();
    let client = testkit::s3_client(&moto.endpoint());
    testkit::create_bucket(&client, "unsigned").await;
    let config = client.config().to_builder().interceptor(sent.clone()).build();
    let store = S3Store::new(aws_sdk_s3::Client::from_conf(config), "unsigned");
    store.put("p/one", Bytes::from_static(b"one")).await.unwrap();
    assert!(store.put_if_absent("p/two", Bytes::from_static(b"two")).await.unwrap());
    let body: Vec<u8> = (0..(6 << 20)).map(|i: u32| (i % 251) as u8).collect();
    let mut up = sink::store::Upload::new(&store, "p/multi", 0);
    up.write(&body).await.unwrap();
    up.finish().await.unwrap();
    assert_eq!(store.get("p/one").await.unwrap().unwrap(), "one");
    assert_eq!(store.get("p/multi").await.unwrap().unwrap(), body);
    let sent = sent.0.lock().unwrap();
    let writes: Vec<_> = sent.iter().filter(|(method, _, _)| method.starts_with("PUT ")).collect();
    // PutObject twice, UploadPart twice (5 MiB and the last 1 MiB).
    assert_eq!(writes.len(), 4, "{sent:#?}");
    for (method, hash, crc32) in &writes {
        assert_eq!(hash, "UNSIGNED-PAYLOAD", "{method}");
        assert!(crc32.is_some(), "{method} went out without a CRC32 of its body");
    }
    // The CRC32 is the body's: "one"'s is 0x7a6c86f1 (Python's `zlib.crc32`), sent as the base64
    // of its four bytes, most significant first.
    assert_eq!(writes[0].2.as_deref(), Some("emyG8Q=="), "{:?}", writes[0]);
    // Other requests are signed as before: a GET's payload hash is the SHA-256 of its empty body.
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let gets: Vec<_> = sent.iter().filter(|(method, _, _)| method.starts_with("GET ")).collect();
    assert!(!gets.is_empty() && gets.iter().all(|(_, hash, _)| hash == EMPTY), "{gets:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_writes_readable_datasets_to_s3_and_redelivery_changes_nothing() {
    let moto = testkit::servers::start_moto();
    let store = store_on(&moto.endpoint(), "analytics", true).await;
    let p = Processor::new(store, "prod/");
    let records = input::sample_records("orders", "shardId-000000000000").unwrap();
    // Two batches, then the first redelivered whole, then a retry starting mid-batch.
    for (a, b) in [(0, 30), (30, 56), (0, 30), (12, 44)] {
        let report = p.process(records[a..b].to_vec()).await;
        assert_eq!(report.error, None);
    }
    // A cold processor (a new Lambda container) agrees.
    let cold = Processor::new(store_on(&moto.endpoint(), "analytics", false).await, "prod/");
    assert_eq!(cold.process(records.clone()).await.already_committed, 56);
    // Published by rounds: one file per table and hour, written in parts when large.
    testkit::publish(p.store(), "prod/").await;
    assert!(publisher::audit::audit(p.store(), "prod/").await.unwrap().holds());
    assert_sample_datasets(p.store(), "prod/").await;

    let report =
        testkit::python_report(&["--s3-endpoint", &moto.endpoint(), "--bucket", "analytics", "--prefix", "prod/"]);
    testkit::assert_contract_types(&report, &Table::ALL);
    assert_eq!(report["checks"]["sales_mismatches"], 0);
    assert_eq!(report["checks"]["funnel_mismatches"], 0);
    assert_eq!(report["events"].as_array().unwrap().len(), 16);
    assert_eq!(report["quarantine"].as_array().unwrap().len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_503_bursts_longer_than_the_sdk_retries_lose_and_duplicate_nothing() {
    let moto = testkit::servers::start_moto();
    let proxy = testkit::start_fault_proxy(&moto);
    testkit::create_bucket(&testkit::s3_client(&moto.endpoint()), "flaky").await;
    let records = input::sample_records("orders", "shardId-000000000003").unwrap();
    // A burst of 8 failures (the SDK tries each request 3 times) starting at request k of a
    // commit, for every k of a commit and beyond; each time the event source mapping retries
    // from the lowest failed record until the batch succeeds.
    let mut failed_invocations = 0;
    for (k, prefix) in (0..34).map(|k| (k, format!("burst-{k}/"))) {
        let p = Processor::new(store_on(&proxy.endpoint(), "flaky", false).await, prefix.clone());
        testkit::inject_faults(&proxy, k, 8, 503);
        let mut pos = 0;
        for attempt in 0.. {
            assert!(attempt < 10, "no progress after 10 invocations");
            let report = p.process(records[pos..].to_vec()).await;
            if report.failed.is_empty() {
                break;
            }
            failed_invocations += 1;
            let msg = report.error.unwrap();
            assert!(msg.contains("503") || msg.contains("SlowDown") || msg.contains("service error"), "{msg}");
            pos = records.iter().position(|r| r.meta.sequence_number == report.failed[0]).unwrap();
        }
        testkit::inject_faults(&proxy, 0, 0, 503);
        let store = store_on(&moto.endpoint(), "flaky", false).await;
        testkit::publish(&store, &prefix).await;
        assert_sample_datasets(&store, &prefix).await;
    }
    // A commit makes about 20 requests (reads included; publishing is the publisher's), and
    // concurrent requests share a burst, so the SDK's own retries absorb some of them; most
    // must still reach the handler as failed invocations.
    assert!(failed_invocations >= 10, "too few bursts outlasted the SDK's retries ({failed_invocations})");
}

/// Delivers the records as the event source mapping does until the batch succeeds, and returns
/// the lost replies the handler read back.
async fn deliver_until_done(p: &Processor<S3Store>, records: &[InputRecord]) -> usize {
    let (mut pos, mut lost) = (0, 0);
    for attempt in 0.. {
        assert!(attempt < 10, "no progress after 10 invocations");
        let report = p.process(records[pos..].to_vec()).await;
        lost += report.lost_replies;
        if report.failed.is_empty() {
            return lost;
        }
        pos = records.iter().position(|r| r.meta.sequence_number == report.failed[0]).unwrap();
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_applied_by_s3_whose_reply_is_lost_is_read_back_on_every_write() {
    let moto = testkit::servers::start_moto();
    let proxy = testkit::start_fault_proxy(&moto);
    testkit::create_bucket(&testkit::s3_client(&moto.endpoint()), "lost").await;
    let records = input::sample_records("orders", "shardId-000000000004").unwrap();
    let mut read_back = 0;
    for fault in [testkit::ProxyFault::AppliedThen500, testkit::ProxyFault::AppliedThenReset] {
        // Every write of a first commit: the probe's 2 conditional PUTs and DELETE, 9 staged
        // PUTs, the commit record, head.json.
        for k in 0..14 {
            let prefix = format!("{fault:?}-{k}/");
            let p = Processor::new(store_on(&proxy.endpoint(), "lost", false).await, prefix.clone());
            testkit::inject_lost_replies(&proxy, k, 1, fault);
            read_back += deliver_until_done(&p, &records).await;
            testkit::inject_faults(&proxy, 0, 0, 503);
            let store = store_on(&moto.endpoint(), "lost", false).await;
            testkit::publish(&store, &prefix).await;
            assert_sample_datasets(&store, &prefix).await;
            // Redelivered whole afterwards: nothing new.
            let again = p.process(records.clone()).await;
            assert_eq!((again.error, again.already_committed), (None, records.len()), "{prefix}");
        }
    }
    // The commit record's lost reply (the SDK's retry answered 412) was read back as ours,
    // once for each way of losing it.
    assert_eq!(read_back, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_conditional_writes_is_refused() {
    let moto = testkit::servers::start_moto();
    let proxy = testkit::start_fault_proxy(&moto);
    testkit::create_bucket(&testkit::s3_client(&moto.endpoint()), "unsafe").await;
    testkit::drop_conditions(&proxy, true);
    let p = Processor::new(store_on(&proxy.endpoint(), "unsafe", false).await, "p/");
    let report = p.process(input::sample_records("orders", "shardId-000000000000").unwrap()).await;
    let e = report.error.expect("refused");
    assert!(e.contains("does not honour If-None-Match: *") && e.contains("s3://unsafe"), "{e}");
    assert_eq!(report.failed.len(), 56);
    let left = store_on(&moto.endpoint(), "unsafe", false).await.list("p/").await.unwrap();
    assert!(left.is_empty(), "nothing written: {left:?}");
    testkit::drop_conditions(&proxy, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_between_any_two_writes_loses_and_duplicates_nothing() {
    let moto = testkit::servers::start_moto();
    testkit::create_bucket(&testkit::s3_client(&moto.endpoint()), "crashes").await;
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        processor::kinesis::event_json(
            &input::sample_records("orders", "shardId-000000000002").unwrap(),
            "us-east-1",
            "123456789012",
        )
        .to_string(),
    )
    .unwrap();
    let run = |prefix: &str, extra: &[&str]| {
        testkit::aws_command(env!("CARGO_BIN_EXE_orderstream"), &moto.endpoint())
            .args(["process", "--event", event.to_str().unwrap()])
            .args(extra)
            .env("ANALYTICS_BUCKET", "crashes")
            .env("ANALYTICS_PREFIX", prefix)
            .output()
            .unwrap()
    };
    let store = store_on(&moto.endpoint(), "crashes", false).await;
    let mut crashes = 0;
    for n in 0.. {
        assert!(n < 200, "the commit never finished");
        let prefix = format!("crash-{n}/");
        let out = run(&prefix, &["--crash-after-writes", &n.to_string()]);
        if out.status.success() {
            assert_sample_datasets(&store, &prefix).await;
            break;
        }
        crashes += 1;
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("fault injection"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Lambda retries: first a bisected half of the batch, then the whole batch.
        for extra in [&["--take", "28"][..], &[]] {
            let out = run(&prefix, extra);
            assert!(out.status.success(), "retry after crash {n}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert_sample_datasets(&store, &prefix).await;
    }
    // The commit: the conditional-write probe (2 conditional PUTs and a DELETE), the samples' 9
    // staged PUTs, the commit record and head.json (14); then the round that `process` runs to
    // publish it: 9 merged files, the round record, 9 COPYs, 18 DELETEs (inputs and merged
    // files) and the group's head.json (38): 52 crash points.
    assert_eq!(crashes, 52, "every write of the commit and of its round is a crash point");
    // The independent reader on one of the crashed-and-retried prefixes.
    let report =
        testkit::python_report(&["--s3-endpoint", &moto.endpoint(), "--bucket", "crashes", "--prefix", "crash-11/"]);
    testkit::assert_contract_types(&report, &Table::ALL);
    assert_eq!(report["events"].as_array().unwrap().len(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_killed_between_any_two_writes_of_a_round_loses_and_duplicates_nothing() {
    let moto = testkit::servers::start_moto();
    testkit::create_bucket(&testkit::s3_client(&moto.endpoint()), "rounds").await;
    let store = store_on(&moto.endpoint(), "rounds", false).await;
    let records = input::sample_records("orders", "shardId-000000000005").unwrap();
    let publish = |prefix: &str, extra: &[&str]| {
        testkit::aws_command(env!("CARGO_BIN_EXE_orderstream"), &moto.endpoint())
            .args(["publish", "--bucket", "rounds", "--prefix", prefix])
            .args(extra)
            .output()
            .unwrap()
    };
    let mut crashes = 0;
    for n in 0.. {
        assert!(n < 200, "the round never finished");
        let prefix = format!("round-{n}/");
        // Two commits to publish.
        let p = Processor::new(store.clone(), prefix.clone());
        assert_eq!(p.process(records[..30].to_vec()).await.error, None);
        assert_eq!(p.process(records[30..].to_vec()).await.error, None);
        let out = publish(&prefix, &["--crash-after-writes", &n.to_string()]);
        if out.status.success() {
            assert_sample_datasets(&store, &prefix).await;
            break;
        }
        crashes += 1;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("fault injection"), "{stderr}");
        // The next invocation finishes the round (or decides it anew), then finds nothing.
        let out = publish(&prefix, &[]);
        assert!(out.status.success(), "after crash {n}: {}", String::from_utf8_lossy(&out.stderr));
        assert_sample_datasets(&store, &prefix).await;
        let audit = publisher::audit::audit(&store, &prefix).await.unwrap();
        assert!(audit.holds(), "after crash {n}: {audit:?}");
        let again = publish(&prefix, &[]);
        assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to publish"));
        assert!(
            store.list(&format!("{prefix}_staging/")).await.unwrap().iter().all(|k| k.contains("/_publish/")),
            "after crash {n}: committed inputs left staged"
        );
    }
    // Every write of the round: merged files, the round record, copies, deletes, head.json.
    assert!(crashes >= 20, "every write of the round is a crash point ({crashes})");
}

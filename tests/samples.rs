//! The contract samples through the shared handler into a local directory, read back with the
//! `parquet` crate and with pyarrow + DuckDB.

use std::process::Command;
use std::sync::Arc;

use orderstream::input;
use processor::Processor;
use sink::store::{LocalStore, ObjectStore};
use sink::Table;
use testkit::{i, read_table, s};

fn processor_for(dir: &std::path::Path) -> Processor<Arc<dyn ObjectStore>> {
    Processor::new(Arc::new(LocalStore::new(dir).unwrap()) as Arc<dyn ObjectStore>, "")
}

#[tokio::test]
async fn samples_land_in_the_five_tables_as_the_contract_says() {
    let dir = tempfile::tempdir().unwrap();
    let p = processor_for(dir.path());
    let records = input::sample_records("samples", "shardId-000000000000").unwrap();
    let report = p.process(records).await;
    assert_eq!(report.error, None);
    assert_eq!((report.events, report.quarantined, report.duplicates), (16, 40, 0));
    let store = p.store().as_ref();
    testkit::publish(store, "").await;

    let events = read_table(store, "", Table::Events).await;
    assert_eq!(events.len(), 16);
    let by_id = |id: &str| events.iter().find(|(_, r)| s(r, "event_id") == id).unwrap_or_else(|| panic!("{id}"));
    let (key9, e9) = by_id("evt-0009");
    assert!(key9.starts_with("events/dt=2026-11-23/hr=12/part-"), "{key9}");
    assert_eq!(model::format_millis(i(e9, "event_time")), "2026-11-23T12:02:10.123Z");
    assert!(by_id("evt-0011").0.starts_with("events/dt=2026-11-23/hr=12/"));
    assert!(by_id("evt-0012").0.starts_with("events/dt=2026-11-23/hr=13/"));
    assert!(by_id("evt-0016").0.starts_with("events/dt=2026-11-23/hr=12/"), "-05:00 offset converted to UTC");
    // Nulls follow the event type.
    assert!(e9["customer_id"].is_null() && e9["currency"].is_null() && e9["product_id"].is_null());
    assert!(by_id("evt-0010").1["customer_id"].is_null(), "absent customer_id is anonymous");
    let (_, e8) = by_id("evt-0008");
    assert_eq!((s(e8, "order_id"), i(e8, "units"), i(e8, "total_minor")), ("o-9001".into(), 3, 10309));
    assert!(e8["page"].is_null() && e8["quantity"].is_null() && e8["cart_value_minor"].is_null());
    let (_, e3) = by_id("evt-0003");
    assert_eq!((i(e3, "quantity"), i(e3, "unit_price_minor")), (1, 8999));
    assert!(e3["units"].is_null() && e3["order_id"].is_null());
    assert_eq!(s(&by_id("evt-0013").1, "page"), "/検索?q=靴");
    for (_, e) in &events {
        assert_eq!(s(e, "shard_id"), "shardId-000000000000");
        assert_eq!(i(e, "sub_sequence_number"), 0);
        assert_eq!(model::format_millis(i(e, "arrival_time")), "2026-11-23T13:05:00.000Z");
    }

    let items = read_table(store, "", Table::OrderItems).await;
    assert_eq!(items.len(), 5);
    let mut totals = std::collections::BTreeMap::<String, i64>::new();
    for (_, r) in &items {
        *totals.entry(s(r, "currency")).or_default() += i(r, "line_total_minor");
        assert_eq!(i(r, "line_total_minor"), i(r, "quantity") * i(r, "unit_price_minor"));
    }
    assert_eq!(totals, [("EUR".into(), 16998), ("JPY".into(), 120_000_000), ("USD".into(), 9997)].into());
    let lines: Vec<_> =
        items.iter().filter(|(_, r)| s(r, "order_id") == "o-9001").map(|(_, r)| i(r, "line_number")).collect();
    assert_eq!(lines, vec![0, 1]);

    // Quarantine: each sample's exact bytes and its reason code, partitioned by arrival.
    let quarantine = read_table(store, "", Table::Quarantine).await;
    assert_eq!(quarantine.len(), 40);
    for (line_no, line) in input::INVALID_SAMPLES.lines().enumerate() {
        let (code, data) = input::invalid_sample_bytes(line).unwrap();
        let seq = (line_no + 1).to_string();
        let (key, row) = quarantine.iter().find(|(_, r)| s(r, "sequence_number") == seq).expect("quarantined");
        assert!(key.starts_with("quarantine/dt=2026-11-23/hr=12/"));
        assert_eq!(s(row, "reason_code"), code, "sample line {}", line_no + 1);
        assert!(!s(row, "reason").is_empty());
        assert_eq!(i(row, "data") as usize, data.len(), "data length of sample line {}", line_no + 1);
        assert_eq!(s(row, "partition_key"), format!("pk-{seq}"));
    }
    // The exact bytes: read one binary value back in full.
    let q_key = &quarantine[0].0;
    let file = store.get(q_key).await.unwrap().unwrap();
    let batch = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    use arrow_array::cast::AsArray;
    let data = batch.column_by_name("data").unwrap().as_binary::<i32>();
    let seqs = batch.column_by_name("sequence_number").unwrap().as_string::<i32>();
    for row in 0..batch.num_rows() {
        let line = input::INVALID_SAMPLES.lines().nth(seqs.value(row).parse::<usize>().unwrap() - 1).unwrap();
        assert_eq!(data.value(row), input::invalid_sample_bytes(line).unwrap().1.as_slice());
    }

    testkit::aggregates_match_details(store, "").await;

    // The independent reader: physical types, partitions, aggregates.
    let report = testkit::python_report(&["--dir", dir.path().to_str().unwrap()]);
    testkit::assert_contract_types(&report, &Table::ALL);
    assert_eq!(report["checks"]["sales_mismatches"], 0);
    assert_eq!(report["checks"]["funnel_mismatches"], 0);
    assert_eq!(report["line_totals"], serde_json::json!({"USD": 9997, "EUR": 16998, "JPY": 120000000}));
    let e9 = report["events"].as_array().unwrap().iter().find(|e| e["event_id"] == "evt-0009").unwrap();
    assert_eq!(e9["event_time"], "2026-11-23T12:02:10.123Z");
    assert_eq!(e9["partition"], "dt=2026-11-23/hr=12");
}

#[tokio::test]
async fn running_the_same_records_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let records = input::sample_records("samples", "shardId-000000000000").unwrap();
    let first = processor_for(dir.path()).process(records.clone()).await;
    assert_eq!(first.files, 9);
    testkit::publish(&LocalStore::new(dir.path()).unwrap(), "").await;
    let files_before = LocalStore::new(dir.path()).unwrap().list("").await.unwrap();
    // A warm processor and a cold one (new process) both skip what is committed.
    let p = processor_for(dir.path());
    for _ in 0..2 {
        let again = p.process(records.clone()).await;
        assert_eq!((again.already_committed, again.events, again.files, again.error), (56, 0, 0, None));
        assert!(testkit::publish(&LocalStore::new(dir.path()).unwrap(), "").await.iter().all(|r| r.round.is_none()));
    }
    assert_eq!(LocalStore::new(dir.path()).unwrap().list("").await.unwrap(), files_before);
}

#[test]
fn the_cli_writes_under_the_data_dir_and_explains_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_orderstream");
    let out = Command::new(bin).args(["samples", "--data-dir", dir.path().to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("16 events, 40 quarantined"), "{stdout}");
    assert!(stdout.contains("published: 1 rounds, 1 commits into 9 files"), "{stdout}");
    assert!(dir.path().join("events/dt=2026-11-23/hr=13").is_dir());
    // Published already: a round on demand finds nothing.
    let out = Command::new(bin).args(["publish", "--data-dir", dir.path().to_str().unwrap()]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "nothing to publish");

    // NDJSON through `process`, with a chosen arrival time.
    let nd = dir.path().join("in.ndjson");
    std::fs::write(&nd, format!("{}\nnot json\n", input::VALID_SAMPLES.lines().next().unwrap())).unwrap();
    let out = Command::new(bin)
        .args([
            "process",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--ndjson",
            nd.to_str().unwrap(),
            "--stream",
            "cli",
            "--arrival",
            "2026-11-23T12:01:00Z",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("records 2: 1 events, 1 quarantined"));

    // Mistakes: one line on stderr, a non-zero exit, no panic.
    for args in [
        vec!["process", "--ndjson", "/nonexistent/file.ndjson"],
        vec!["process"],
        vec!["process", "--ndjson", nd.to_str().unwrap(), "--arrival", "yesterday"],
        vec!["samples", "--prefix", "no-slash"],
        vec!["process", "--event", nd.to_str().unwrap()],
        vec!["publish", "--groups", "2", "--group", "2"],
        vec!["publish", "--groups", "0"],
        vec!["publish", "--round-mb", "0"],
    ] {
        let out = Command::new(bin).args(&args).arg("--data-dir").arg(dir.path()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{args:?}: {stderr}");
        assert!(stderr.lines().any(|l| l.starts_with("error")), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn the_kpl_sample_is_de_aggregated_as_contract_1_4_says() {
    let dir = tempfile::tempdir().unwrap();
    let p = processor_for(dir.path());
    let json = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/contract/kpl-event.json")).unwrap();
    let records = input::event_records(&json).unwrap();
    assert_eq!(records.len(), 4, "four Kinesis records");
    let second_len = records[1].data.len() as i64;
    let report = p.process(records.clone()).await;
    assert_eq!(report.error, None);
    // Three user records of the first aggregate and the plain record; the corrupt aggregate and
    // the last aggregate's second user record quarantined; its first a duplicate of record 1's.
    assert_eq!((report.events, report.quarantined, report.duplicates), (4, 2, 1));
    let store = p.store().as_ref();
    testkit::publish(store, "").await;

    let events = read_table(store, "", Table::Events).await;
    let mut subs: Vec<(String, i64, String)> =
        events.iter().map(|(_, r)| (s(r, "sequence_number"), i(r, "sub_sequence_number"), s(r, "event_id"))).collect();
    subs.sort();
    let seq = |n: usize| records[n].meta.sequence_number.clone();
    assert_eq!(
        subs,
        [
            (seq(0), 0, "evt-0001".to_string()),
            (seq(0), 1, "evt-0002".to_string()),
            (seq(0), 2, "evt-0003".to_string()),
            (seq(2), 0, "evt-0006".to_string()),
        ]
    );
    let quarantine = read_table(store, "", Table::Quarantine).await;
    let mut rows: Vec<(String, i64, String, String, i64)> = quarantine
        .iter()
        .map(|(_, r)| {
            (
                s(r, "sequence_number"),
                i(r, "sub_sequence_number"),
                s(r, "partition_key"),
                s(r, "reason_code"),
                i(r, "data"),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(rows.len(), 2);
    let (seq1, sub1, _, code1, bytes1) = &rows[0];
    assert_eq!(
        (seq1, *sub1, code1.as_str(), *bytes1),
        (&seq(1), 0, "invalid_encoding", second_len),
        "the whole aggregate's bytes"
    );
    let (seq3, sub3, key3, code3, _) = &rows[1];
    assert_eq!((seq3, *sub3, key3.as_str(), code3.as_str()), (&seq(3), 1, "s-1001", "schema_violation"));
    assert!(quarantine.iter().any(|(_, r)| s(r, "reason").contains("MD5")), "{quarantine:?}");

    // Redelivered whole: nothing changes.
    let again = p.process(records).await;
    assert_eq!((again.already_committed, again.events), (4, 0));
}

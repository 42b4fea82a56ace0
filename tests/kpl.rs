//! KPL aggregates written by AWS's own aggregation library (aws_kinesis_agg, PyPI), read by the
//! processor (contract 1.4): every user record a record of its own, by index and key.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use orderstream::input;
use processor::Processor;
use sink::store::MemoryStore;
use sink::Table;
use testkit::{i, read_table, s};

/// Aggregates `(partition key, data)` with aws_kinesis_agg into aggregates of at most
/// `max_bytes`: the Lambda event and the user records of each aggregate.
fn aggregate(records: &[(String, String)], max_bytes: usize) -> (Vec<u8>, Vec<usize>) {
    let mut child = Command::new("python3")
        .arg(testkit::script("kpl_aggregate.py"))
        .arg(max_bytes.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (bash scripts/test installs the test tools into .venv)");
    let mut stdin = child.stdin.take().unwrap();
    for (key, data) in records {
        writeln!(stdin, "{}", serde_json::json!({"partition_key": key, "data": data})).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kpl_aggregate.py failed (pip install -r tests/requirements.txt installs aws_kinesis_agg):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let counts = v["user_records"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap() as usize).collect();
    (serde_json::to_vec(&v["event"]).unwrap(), counts)
}

/// `n` user records: valid events `evt-k<j>` (every 97th a copy of the one before: a duplicate),
/// and every 250th `not json`.
fn user_records(n: usize) -> Vec<(String, String)> {
    let sample: serde_json::Value = serde_json::from_str(input::VALID_SAMPLES.lines().next().unwrap()).unwrap();
    (0..n)
        .map(|j| {
            let data = if j % 250 == 249 {
                "not json".to_string()
            } else {
                let mut e = sample.clone();
                let id = if j % 97 == 96 { j - 1 } else { j };
                e["event_id"] = format!("evt-k{id}").into();
                e.to_string()
            };
            (format!("pk-{}", j % 37), data)
        })
        .collect()
}

async fn check(n: usize, max_bytes: usize) -> usize {
    let users = user_records(n);
    let (event, counts) = aggregate(&users, max_bytes);
    assert_eq!(counts.iter().sum::<usize>(), n);
    let records = input::event_records(&event).unwrap();
    assert_eq!(records.len(), counts.len());
    // Where user record j went: (its aggregate's sequence number, its index there).
    let mut place = Vec::new();
    for (a, &c) in counts.iter().enumerate() {
        place.extend((0..c).map(|s| (records[a].meta.sequence_number.clone(), s as i64)));
    }
    let p = Processor::new(MemoryStore::new(), "");
    let report = p.process(records.clone()).await;
    assert_eq!(report.error, None);
    let invalid = n / 250;
    let duplicates = (0..n).filter(|j| j % 97 == 96 && j % 250 != 249 && (j - 1) % 250 != 249).count();
    assert_eq!((report.quarantined, report.duplicates), (invalid, duplicates));
    assert_eq!(report.events, n - invalid - duplicates);
    testkit::publish(p.store(), "").await;

    let events = read_table(p.store(), "", Table::Events).await;
    assert_eq!(events.len(), report.events);
    for (_, row) in &events {
        let j: usize = s(row, "event_id").trim_start_matches("evt-k").parse().unwrap();
        assert_eq!((s(row, "sequence_number"), i(row, "sub_sequence_number")), place[j], "evt-k{j}");
    }
    let quarantine = read_table(p.store(), "", Table::Quarantine).await;
    let mut seen = BTreeMap::new();
    for (_, row) in &quarantine {
        assert_eq!(s(row, "reason_code"), "invalid_json");
        let at = (s(row, "sequence_number"), i(row, "sub_sequence_number"));
        let j = place.iter().position(|p| *p == at).unwrap();
        assert_eq!(j % 250, 249);
        assert_eq!(s(row, "partition_key"), users[j].0, "the user record's own key");
        assert_eq!(i(row, "data"), 8, "the user record's bytes, not the aggregate's");
        seen.insert(j, ());
    }
    assert_eq!(seen.len(), invalid);
    // Redelivered: every aggregate already committed.
    assert_eq!(p.process(records).await.already_committed, counts.len());
    counts.len()
}

#[tokio::test]
async fn aggregates_of_awss_library_are_read_record_by_record() {
    // One aggregate of 1,000 records (under 1 MiB), then the same split into many.
    assert_eq!(check(1000, 1 << 20).await, 1);
    assert!(check(1000, 10_000).await >= 10);
    // An aggregate of one record.
    assert_eq!(check(1, 1 << 20).await, 1);
}

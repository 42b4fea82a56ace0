//! The `producer` binary as users run it: NDJSON that repeats byte for byte, a Kinesis stream on
//! moto_server, and one-line errors for mistakes.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use testkit::{kinesis_client, read_stream, servers};

fn producer(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_producer"));
    cmd.args(args).env_remove("AWS_REGION").env_remove("AWS_DEFAULT_REGION").env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn moto_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
    ]
}

fn with_env<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn stdout_repeats_byte_for_byte_for_a_seed_and_flags() {
    let args = [
        "--stdout",
        "--events",
        "2500",
        "--seed",
        "11",
        "--invalid-rate",
        "0.05",
        "--duplicate-rate",
        "0.02",
        "--late-rate",
        "0.03",
    ];
    let a = producer(&args, &[]);
    let b = producer(&args, &[]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.stdout.iter().filter(|&&c| c == b'\n').count(), 2500);
    let other = producer(&["--stdout", "--events", "2500", "--seed", "12"], &[]);
    assert_ne!(a.stdout, other.stdout);
    // The default is 1000 events; without faults every line is a valid event.
    let plain = producer(&["--stdout"], &[]);
    let text = String::from_utf8(plain.stdout).unwrap();
    assert_eq!(text.lines().count(), 1000);
    for line in text.lines() {
        model::validate(line.as_bytes(), i64::MAX / 2).unwrap_or_else(|r| panic!("{r}: {line}"));
    }
}

#[test]
fn the_truth_manifest_is_written_and_counts_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.json");
    let out =
        producer(&["--stdout", "--events", "3000", "--invalid-rate", "0.1", "--truth", truth.to_str().unwrap()], &[]);
    assert!(out.status.success());
    let t: producer::TruthManifest = serde_json::from_slice(&std::fs::read(&truth).unwrap()).unwrap();
    assert_eq!(t.tables.events.rows + t.tables.quarantine.rows + t.duplicates, 3000);
    assert_eq!(t.tables.quarantine.by_reason_code.len(), 6);
}

#[test]
fn mistakes_get_one_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--events", "5"], "--stream"),
        (vec!["--stdout", "--stream", "s"], "cannot be used with"),
        (vec!["--stdout", "--invalid-rate", "2"], "between 0 and 1"),
        (vec!["--stdout", "--rate=-1"], ">= 0"),
        (vec!["--stdout", "--start", "yesterday"], "--start"),
        (vec!["--stdout", "--events", "many"], "--events"),
        (vec!["--stdout", "--partition-key", "hot"], "--partition-key"),
        (vec!["--stdout", "--truth", "/nonexistent/dir/t.json"], "truth manifest"),
        (vec!["--stream", "orders"], "AWS_REGION"),
    ];
    let _ = dir;
    for (args, needle) in cases {
        let out = producer(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(stderr.lines().next().is_some_and(|l| l.starts_with("error")), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn missing_credentials_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("none");
    let nowhere = nowhere.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_producer"))
        .args(["--stream", "orders", "--events", "3"])
        .env_clear()
        .env("HOME", nowhere)
        .env("AWS_CONFIG_FILE", nowhere)
        .env("AWS_SHARED_CREDENTIALS_FILE", nowhere)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim(), "error: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role");
}

#[test]
fn into_moto_kinesis_every_record_arrives_in_order_per_partition_key() {
    let moto = servers::start_moto();
    let env = moto_env(&moto.endpoint());
    let env = with_env(&env);
    // A missing stream: one line naming it.
    let out = producer(&["--stream", "nope", "--events", "10"], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("\"nope\" was not found"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = kinesis_client(&moto.endpoint());
    rt.block_on(client.create_stream().stream_name("orders").shard_count(2).send()).unwrap();
    let flags = ["--events", "2000", "--seed", "5", "--invalid-rate", "0.02", "--duplicate-rate", "0.02"];
    // One request at a time: moto_server assigns sequence numbers without a lock, and
    // concurrent PutRecords to a shard can overwrite records inside moto.
    let out = producer(&[&["--stream", "orders", "--concurrency", "1"][..], &flags].concat(), &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("sent 2000 records") && stderr.contains("failed 0"), "{stderr}");
    assert!(stderr.contains("p99") && stderr.contains("shardId-000000000000"), "{stderr}");

    // The stream holds exactly the records --stdout prints for the same seed and flags, and
    // each session's records in the order they were produced.
    let expected = producer(&[&["--stdout"][..], &flags].concat(), &[]).stdout;
    let expected: Vec<&[u8]> = expected.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let shards = rt.block_on(read_stream(&client, "orders"));
    assert_eq!(shards.len(), 2);
    assert!(shards.values().all(|r| !r.is_empty()), "both shards used");
    let mut got: Vec<&[u8]> = shards.values().flatten().map(|(_, d)| d.as_ref()).collect();
    let mut want = expected.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let mut order_in_stream: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
    for (pk, data) in shards.values().flatten() {
        order_in_stream.entry(pk.as_str()).or_default().push(data.as_ref());
    }
    for (pk, records) in &order_in_stream {
        let positions: Vec<usize> = records.iter().map(|r| expected.iter().position(|e| e == r).unwrap()).collect();
        let mut sorted = positions.clone();
        sorted.sort_unstable();
        assert_eq!(positions, sorted, "records of {pk} out of order");
    }

    // Round robin with explicit hash keys spreads records evenly over the shards.
    rt.block_on(client.create_stream().stream_name("spread").shard_count(4).send()).unwrap();
    let out = producer(
        &["--stream", "spread", "--events", "400", "--partition-key", "round-robin", "--concurrency", "1"],
        &env,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let counts: Vec<usize> = rt.block_on(read_stream(&client, "spread")).values().map(Vec::len).collect();
    assert_eq!(counts, vec![100; 4]);
    let out =
        producer(&["--stream", "spread", "--events", "10", "--partition-key", "weighted", "--weights", "1,2"], &env);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--weights has 2 values but the stream has 4 open shards"));
}

/// A Kinesis record as aws_kinesis_agg reads it: whether it is an aggregate, its user records
/// (partition key, data).
type Read = (bool, Vec<(String, Vec<u8>)>);

/// The Kinesis records, read by aws_kinesis_agg (AWS's KPL library, PyPI): per record, whether
/// it is an aggregate and its user records (partition key, data).
fn deaggregate_with_aws(records: &[(String, bytes::Bytes)]) -> Vec<Read> {
    use base64::Engine;
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg(testkit::script("kpl_deaggregate.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (bash scripts/test installs the test tools into .venv)");
    let mut stdin = child.stdin.take().unwrap();
    for (pk, data) in records {
        let data = base64::engine::general_purpose::STANDARD.encode(data);
        writeln!(stdin, "{}", serde_json::json!({"partition_key": pk, "data": data})).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kpl_deaggregate.py failed (pip install -r tests/requirements.txt installs aws_kinesis_agg):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    v.iter()
        .map(|r| {
            let users = r["user_records"].as_array().unwrap().iter();
            let users = users.map(|u| {
                let data = base64::engine::general_purpose::STANDARD.decode(u["data"].as_str().unwrap()).unwrap();
                (u["partition_key"].as_str().unwrap().to_string(), data)
            });
            (r["aggregated"].as_bool().unwrap(), users.collect())
        })
        .collect()
}

#[test]
fn aggregated_records_are_read_by_aws_kinesis_agg_on_the_shard_of_each_user_record() {
    let moto = servers::start_moto();
    let env = moto_env(&moto.endpoint());
    let env = with_env(&env);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = kinesis_client(&moto.endpoint());
    rt.block_on(client.create_stream().stream_name("kpl").shard_count(3).send()).unwrap();
    let flags = ["--events", "3000", "--seed", "9", "--invalid-rate", "0.02"];
    let out = producer(
        &[&["--stream", "kpl", "--concurrency", "1", "--aggregate", "--aggregate-max-bytes", "20000"][..], &flags]
            .concat(),
        &env,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("sent 3000 records in ") && stderr.contains("KPL aggregates"), "{stderr}");

    let expected = producer(&[&["--stdout"][..], &flags].concat(), &[]).stdout;
    let expected: Vec<Vec<u8>> =
        expected.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    let shards = rt.block_on(read_stream(&client, "kpl"));
    let ranges: Vec<(String, u128)> = rt
        .block_on(client.list_shards().stream_name("kpl").send())
        .unwrap()
        .shards()
        .iter()
        .map(|s| (s.shard_id().to_string(), s.hash_key_range().unwrap().starting_hash_key().parse().unwrap()))
        .collect();
    let shard_of = |key: &str| {
        use md5::Digest;
        let hash = u128::from_be_bytes(md5::Md5::digest(key.as_bytes()).into());
        ranges.iter().rev().find(|(_, start)| *start <= hash).unwrap().0.clone()
    };
    let mut got = Vec::new();
    let mut per_key: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (shard, records) in &shards {
        assert!(records.iter().all(|(_, d)| d.len() <= 20_000), "aggregates within --aggregate-max-bytes");
        let read = deaggregate_with_aws(records);
        assert!(read.len() < 3000 / 5, "{} Kinesis records on {shard}: aggregated", read.len());
        for (aggregated, users) in read {
            assert!(aggregated, "every Kinesis record is an aggregate with a good MD5");
            for (key, data) in users {
                assert_eq!(shard_of(&key), *shard, "{key} is on the shard its key hashes to");
                per_key.entry(key).or_default().push(data.clone());
                got.push(data);
            }
        }
    }
    let (mut got_sorted, mut want) = (got.clone(), expected.clone());
    got_sorted.sort();
    want.sort();
    let differ: Vec<String> = got_sorted
        .iter()
        .zip(&want)
        .filter(|(a, b)| a != b)
        .take(2)
        .map(|(a, b)| format!("read {:?}\nproduced {:?}", String::from_utf8_lossy(a), String::from_utf8_lossy(b)))
        .collect();
    assert!(differ.is_empty(), "every record once: {} read, {} produced; {differ:?}", got.len(), expected.len());
    // Each key's records in the order produced (equal records, such as invalid ones, matched in
    // turn).
    for (key, records) in &per_key {
        let mut last = None;
        for r in records {
            let next = expected.iter().enumerate().position(|(i, e)| e == r && last.is_none_or(|l| i > l));
            assert!(next.is_some(), "records of {key} out of order");
            last = next;
        }
    }
    // Mistakes: --aggregate without a stream, a size no aggregate can have.
    let out = producer(&["--stdout", "--aggregate"], &[]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("'--stdout' cannot be used with"));
    let out = producer(&["--stdout", "--aggregate-max-bytes", "900"], &[]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "error: --aggregate-max-bytes goes with --aggregate\n");
    assert!(!out.status.success());
    let out = producer(&["--stream", "kpl", "--aggregate", "--aggregate-max-bytes", "2000000"], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("at most 2000000 bytes"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

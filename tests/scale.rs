//! The scaler against moto_server on 127.0.0.1: provisioned streams in its Kinesis, their
//! metrics put in its CloudWatch, `orderstream scale` and the `scaler` function's bootstrap
//! (under the local Lambda Runtime API) reading them and resizing the streams.

use std::process::Command;
use std::time::Duration;

use aws_sdk_kinesis::types::{StreamMode, StreamModeDetails};
use orderstream::lambda::runtime_api::{FunctionSpec, LocalLambda};
use serde_json::Value;
use testkit::servers::Server;

struct Setup {
    moto: Server,
    kinesis: aws_sdk_kinesis::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    /// The current minute's start.
    now: i64,
}

impl Setup {
    fn new() -> Setup {
        let moto = testkit::servers::start_moto();
        let kinesis = testkit::kinesis_client(&moto.endpoint());
        let cloudwatch = testkit::cloudwatch_client(&moto.endpoint());
        Setup { moto, kinesis, cloudwatch, now: model::now_ms() / 60_000 * 60_000 }
    }

    async fn stream(&self, name: &str, shards: i32) {
        self.kinesis.create_stream().stream_name(name).shard_count(shards).send().await.unwrap();
    }

    async fn open_shards(&self, name: &str) -> i32 {
        let s = self.kinesis.describe_stream_summary().stream_name(name).send().await.unwrap();
        s.stream_description_summary().unwrap().open_shard_count()
    }

    /// `metric` of `stream` for the minutes `ago` (1: the last whole minute), each `value`.
    async fn put(&self, stream: &str, metric: &str, ago: impl IntoIterator<Item = i64>, value: f64) {
        let points: Vec<(i64, f64)> = ago.into_iter().map(|k| (self.now - k * 60_000, value)).collect();
        testkit::put_stream_metric(&self.cloudwatch, stream, metric, &points).await;
    }

    /// `per_second` records of 240 bytes in each of the minutes `ago`.
    async fn traffic(&self, stream: &str, ago: impl IntoIterator<Item = i64> + Clone, per_second: f64) {
        self.put(stream, "IncomingRecords", ago.clone(), per_second * 60.0).await;
        self.put(stream, "IncomingBytes", ago, per_second * 60.0 * 240.0).await;
    }

    fn scale(&self, args: &[&str]) -> (bool, String, String) {
        let out = testkit::aws_command(env!("CARGO_BIN_EXE_orderstream"), &self.moto.endpoint())
            .arg("scale")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn step(&self, args: &[&str]) -> Value {
        let (ok, stdout, stderr) = self.scale(&[args, &["--json"]].concat());
        assert!(ok, "orderstream scale {args:?} failed: {stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_resizes_a_stream_by_its_metrics_and_its_schedule() {
    let t = Setup::new();
    t.stream("orders", 2).await;
    // Half an hour at 1,500 records/s: 2 shards with 20% headroom carry it (1,800 records/s).
    t.traffic("orders", 1..=30, 1500.0).await;
    let step = t.step(&["--stream", "orders"]);
    assert_eq!(step["decision"]["target"], 2, "{step}");
    assert_eq!(step["called"], false);

    // A busier last minute (1,500 records/s more: CloudWatch sums a minute's datapoints) needs 4:
    // dry run first, then the call.
    t.traffic("orders", [1], 1500.0).await;
    let step = t.step(&["--stream", "orders", "--dry-run"]);
    assert_eq!((step["decision"]["target"].as_u64(), step["called"].as_bool()), (Some(4), Some(false)), "{step}");
    assert_eq!(t.open_shards("orders").await, 2);
    let (ok, stdout, stderr) = t.scale(&["--stream", "orders"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("orders: 2 open shards; the metrics need 4: UpdateShardCount to 4"), "{stdout}");
    assert!(stdout.contains("needs 4 shards"), "{stdout}");
    assert_eq!(t.open_shards("orders").await, 4);

    // The schedule asks for 12 from a minute ago: the larger wins, one doubling per call.
    let dir = tempfile::tempdir().unwrap();
    let schedule = dir.path().join("schedule.json");
    let at = |ms: i64| model::format_millis(ms);
    std::fs::write(
        &schedule,
        serde_json::json!([
            {"at": at(t.now - 86_400_000), "target_shard_count": 1, "scaling_type": "UNIFORM_SCALING"},
            {"at": at(t.now - 60_000), "target_shard_count": 12, "scaling_type": "UNIFORM_SCALING"},
            {"at": at(t.now + 3_600_000), "target_shard_count": 2, "scaling_type": "UNIFORM_SCALING"},
        ])
        .to_string(),
    )
    .unwrap();
    let step = t.step(&["--stream", "orders", "--schedule", schedule.to_str().unwrap()]);
    assert_eq!(step["decision"]["scheduled"], 12, "{step}");
    assert_eq!(step["decision"]["target"], 8, "{step}");
    assert_eq!(t.open_shards("orders").await, 8);
    let step = t.step(&["--stream", "orders", "--schedule", schedule.to_str().unwrap()]);
    assert_eq!(step["decision"]["target"], 12, "{step}");
    assert_eq!(t.open_shards("orders").await, 12);

    // Without the schedule, half an hour that fits 4 halves the count, and --max-shards holds.
    let step = t.step(&["--stream", "orders", "--max-shards", "10"]);
    assert_eq!(step["decision"]["target"], 6, "{step}");
    assert_eq!(t.open_shards("orders").await, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttles_double_the_stream_and_missing_minutes_hold_it() {
    let t = Setup::new();
    t.stream("busy", 3).await;
    t.traffic("busy", 1..=30, 1000.0).await;
    t.put("busy", "WriteProvisionedThroughputExceeded", [2], 40.0).await;
    let step = t.step(&["--stream", "busy"]);
    assert_eq!(step["decision"]["target"], 6, "{step}");
    assert!(step["decision"]["reasons"].to_string().contains("40 writes throttled"), "{step}");
    assert_eq!(t.open_shards("busy").await, 6);

    // A stream whose metrics have gaps is not scaled in.
    t.stream("patchy", 8).await;
    t.traffic("patchy", (1..=30).step_by(2), 100.0).await;
    let step = t.step(&["--stream", "patchy"]);
    assert_eq!(step["called"], false, "{step}");
    assert!(step["decision"]["reasons"].to_string().contains("too few to scale in"), "{step}");
    assert_eq!(t.open_shards("patchy").await, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn impossible_requests_get_a_clear_error() {
    let t = Setup::new();
    t.kinesis
        .create_stream()
        .stream_name("elastic")
        .stream_mode_details(StreamModeDetails::builder().stream_mode(StreamMode::OnDemand).build().unwrap())
        .send()
        .await
        .unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--stream", "elastic"], "is on-demand: Kinesis scales it"),
        (&["--stream", "nowhere"], "cannot describe the stream nowhere"),
        (&["--stream", "s", "--min-shards", "9", "--max-shards", "4"], "1 <= min (9) <= max (4)"),
        (&["--stream", "s", "--schedule", "/no/such/file.json"], "cannot read the schedule"),
        (&["--stream", "s", "--schedule", r#"[{"at": "soon", "target_shard_count": 2}]"#], "schedule entry 1"),
    ];
    for (args, expected) in cases {
        let (ok, _, stderr) = t.scale(args);
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.lines().next().is_some_and(|l| l.contains(expected)), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{args:?}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_orderstream")).args(["scale", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--stream", "STREAM_NAME", "--schedule", "SCALER_SCHEDULE", "--dry-run", "--max-shards"] {
        assert!(help.contains(flag), "--help lacks {flag}: {help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scaler_bootstrap_takes_a_step_per_invocation_from_its_environment() {
    let t = Setup::new();
    t.stream("orders", 1).await;
    t.traffic("orders", 1..=30, 200.0).await;
    t.traffic("orders", [1], 1300.0).await;
    let logs = tempfile::tempdir().unwrap();
    let mut spec = FunctionSpec::new(testkit::scaler_bootstrap());
    spec.name = "scaler".into();
    spec.timeout = Duration::from_secs(20);
    spec.log_file = Some(logs.path().join("scaler.log"));
    spec.env = vec![
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_ENDPOINT_URL".into(), t.moto.endpoint()),
        ("STREAM_NAME".into(), "orders".into()),
        ("SCALER_MAX_SHARDS".into(), "16".into()),
        (
            "SCALER_SCHEDULE".into(),
            format!(r#"[{{"at": "{}", "target_shard_count": 4}}]"#, model::format_millis(t.now)),
        ),
    ];
    let lambda = LocalLambda::start(spec).await.unwrap();
    let answer = lambda.invoke(testkit::scheduled_event()).await.expect("the scaler succeeds");
    let step: Value = serde_json::from_slice(&answer).unwrap();
    // 1,500 records/s need 2; the schedule 4; one call doubles 1 to 2.
    assert_eq!(
        (step["decision"]["reactive"].as_u64(), step["decision"]["target"].as_u64()),
        (Some(2), Some(2)),
        "{step}"
    );
    assert_eq!(t.open_shards("orders").await, 2);
    let answer = lambda.invoke(testkit::scheduled_event()).await.expect("the scaler succeeds");
    let step: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(step["decision"]["target"], 4, "{step}");
    assert_eq!(t.open_shards("orders").await, 4);
    lambda.shutdown().await;
    let log = std::fs::read_to_string(logs.path().join("scaler.log")).unwrap();
    assert!(log.contains("scaling step"), "{log}");
    // Each step's EMF line: the dashboard's open, needed and scheduled shards.
    let emf: Vec<Value> =
        log.lines().filter(|l| l.contains("\"_aws\"")).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(emf.len(), 2, "{log}");
    assert_eq!(
        (&emf[1]["OpenShards"], &emf[1]["ShardsScheduled"], &emf[1]["ShardsTarget"]),
        (&Value::from(2), &Value::from(4), &Value::from(4))
    );

    // Without STREAM_NAME the function says so in its log and exits.
    let mut spec = FunctionSpec::new(testkit::scaler_bootstrap());
    spec.timeout = Duration::from_secs(20);
    spec.log_file = Some(logs.path().join("unset.log"));
    spec.env = vec![("AWS_ENDPOINT_URL".into(), t.moto.endpoint())];
    let lambda = LocalLambda::start(spec).await.unwrap();
    lambda.invoke(testkit::scheduled_event()).await.expect_err("no stream, no step");
    lambda.shutdown().await;
    let log = std::fs::read_to_string(logs.path().join("unset.log")).unwrap();
    assert!(log.contains("STREAM_NAME is not set"), "{log}");
}

//! Test support shared by the workspace's tests (a crate of its own, `publish = false`, used as a
//! dev-dependency): reading datasets back with the `parquet` crate, moto_server and the fault
//! proxy on 127.0.0.1 ([`servers`]), a store that fails on command ([`faulty`]), storefront
//! records and Lambda events ([`records`]), the independent Python reader, and the rows of the
//! reliability report ([`reliability`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use sink::store::ObjectStore;
use sink::Table;

pub mod faulty;
pub mod ledger;
pub mod procfs;
pub mod records;
pub mod reliability;
pub mod servers;

use servers::{Server, INSTALL_HINT};

pub type Row = BTreeMap<String, Value>;

/// The workspace's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `processor` binary (the Lambda bootstrap) of this workspace, built (once per test process,
/// with the profile and target directory of the tests) if it is not up to date.
pub fn processor_bootstrap() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_bin("processor", "processor")).clone()
}

/// The `publisher` binary (the publisher function's bootstrap, `cargo build --bin publisher` at
/// the root), built like [`processor_bootstrap`].
pub fn publisher_bootstrap() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_bin("orderstream", "publisher")).clone()
}

/// The `scaler` binary (the scaler function's bootstrap), built like [`processor_bootstrap`].
pub fn scaler_bootstrap() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_bin("orderstream", "scaler")).clone()
}

fn build_bin(package: &str, bin: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", bin, "--message-format=json"])
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {bin}: {e}"));
    assert!(out.status.success(), "building {bin} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .find(|p| p.file_name().is_some_and(|n| n == bin))
        .unwrap_or_else(|| panic!("cargo named no executable {bin}"))
}

/// An EventBridge Scheduled Event, as the publisher function's schedule sends it.
pub fn scheduled_event() -> String {
    serde_json::json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-23T13:05:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/orderstream-publisher-0"],
        "detail": {}
    })
    .to_string()
}

/// A command with the AWS SDK environment pointed at an emulator (dummy credentials, one region,
/// no instance metadata).
pub fn aws_command(program: impl AsRef<std::ffi::OsStr>, endpoint: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// The environment of a function (processor or publisher) under the local Lambda Runtime API
/// whose S3 is an emulator at `endpoint`: dummy credentials and the dataset's bucket and prefix.
pub fn function_env(endpoint: &str, bucket: &str, prefix: &str) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ENDPOINT_URL", endpoint),
        ("ANALYTICS_BUCKET", bucket),
        ("ANALYTICS_PREFIX", prefix),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A script of this crate (testkit/scripts/).
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name)
}

/// Every row of a Parquet file, as JSON values (timestamps as epoch milliseconds, binary as
/// its length).
pub fn parquet_rows(bytes: bytes::Bytes) -> Vec<Row> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("a Parquet file").build().expect("reader");
    reader.flat_map(|b| batch_rows(&b.expect("a record batch"))).collect()
}

pub fn batch_rows(batch: &RecordBatch) -> Vec<Row> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|i| {
            schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(f, col)| {
                    let v = if col.is_null(i) {
                        Value::Null
                    } else {
                        match f.data_type() {
                            arrow_schema::DataType::Utf8 => Value::from(col.as_string::<i32>().value(i)),
                            arrow_schema::DataType::Int32 => Value::from(col.as_primitive::<Int32Type>().value(i)),
                            arrow_schema::DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(i)),
                            arrow_schema::DataType::Timestamp(..) => {
                                Value::from(col.as_primitive::<TimestampMillisecondType>().value(i))
                            }
                            arrow_schema::DataType::Binary => Value::from(col.as_binary::<i32>().value(i).len()),
                            other => panic!("unexpected column type {other}"),
                        }
                    };
                    (f.name().clone(), v)
                })
                .collect()
        })
        .collect()
}

/// Whether a key is a visible data file of a table (what Athena, Hive and DuckDB read).
pub fn is_visible_data_file(key: &str) -> bool {
    let last = key.rsplit('/').next().unwrap_or(key);
    key.ends_with(".parquet") && !last.starts_with('_') && !last.starts_with('.')
}

/// Publishes everything committed under the prefix: publisher rounds (one group) until one
/// finds nothing left. Panics when a round fails.
pub async fn publish(store: &dyn ObjectStore, prefix: &str) -> Vec<publisher::RoundReport> {
    let publisher = publisher::Publisher::new(store, prefix, publisher::Settings::default());
    publisher.drain(1000).await.expect("publisher rounds")
}

/// All rows of a table, read through the store with the `parquet` crate, each with its key.
pub async fn read_table(store: &dyn ObjectStore, prefix: &str, table: Table) -> Vec<(String, Row)> {
    let mut out = Vec::new();
    for key in store.list(&format!("{prefix}{}/", table.as_str())).await.expect("list") {
        if !is_visible_data_file(&key) {
            continue;
        }
        let bytes = store.get(&key).await.expect("get").expect("listed file exists");
        out.extend(parquet_rows(bytes).into_iter().map(|r| (key.clone(), r)));
    }
    out
}

pub fn s(row: &Row, col: &str) -> String {
    match &row[col] {
        Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

pub fn i(row: &Row, col: &str) -> i64 {
    row[col].as_i64().unwrap_or_else(|| panic!("{col} is not an integer in {row:?}"))
}

/// The contract samples, checked with the `parquet` crate: every sample exactly once.
pub async fn assert_sample_datasets(store: &dyn ObjectStore, prefix: &str) {
    let mut events: Vec<_> =
        read_table(store, prefix, Table::Events).await.into_iter().map(|(_, r)| s(&r, "event_id")).collect();
    events.sort();
    let want: Vec<_> = (1..=16).map(|n| format!("evt-{n:04}")).collect();
    assert_eq!(events, want, "events under {prefix}");
    let mut q: Vec<_> = read_table(store, prefix, Table::Quarantine)
        .await
        .into_iter()
        .map(|(_, r)| s(&r, "sequence_number").parse::<u128>().unwrap())
        .collect();
    q.sort();
    assert_eq!(q.len(), 40, "quarantine under {prefix}");
    q.dedup();
    assert_eq!(q.len(), 40, "quarantine under {prefix}: a record twice");
    assert_eq!(read_table(store, prefix, Table::OrderItems).await.len(), 5);
    aggregates_match_details(store, prefix).await;
}

/// Sales and funnel aggregates recomputed from the detail tables, and as read from the
/// aggregate tables (summing rows that share a key): the two must be equal.
pub async fn aggregates_match_details(store: &dyn ObjectStore, prefix: &str) {
    type Key = (i64, String, String, String);
    let mut from_items: BTreeMap<Key, [i64; 3]> = BTreeMap::new();
    for (_, r) in read_table(store, prefix, Table::OrderItems).await {
        let k = (model::floor_to_minute(i(&r, "event_time")), s(&r, "country"), s(&r, "category"), s(&r, "currency"));
        let e = from_items.entry(k).or_default();
        e[0] += 1;
        e[1] += i(&r, "quantity");
        e[2] += i(&r, "line_total_minor");
    }
    let mut from_sales: BTreeMap<Key, [i64; 3]> = BTreeMap::new();
    for (_, r) in read_table(store, prefix, Table::SalesMinute).await {
        let k = (i(&r, "window_start"), s(&r, "country"), s(&r, "category"), s(&r, "currency"));
        let e = from_sales.entry(k).or_default();
        e[0] += i(&r, "order_lines");
        e[1] += i(&r, "units");
        e[2] += i(&r, "revenue_minor");
    }
    assert_eq!(from_sales, from_items, "sales_minute must equal order_items");

    let types = ["page_view", "product_view", "add_to_cart", "remove_from_cart", "checkout_started", "order_placed"];
    let mut from_events: BTreeMap<(i64, String, String), [i64; 6]> = BTreeMap::new();
    for (_, r) in read_table(store, prefix, Table::Events).await {
        let k = (model::floor_to_minute(i(&r, "event_time")), s(&r, "country"), s(&r, "device"));
        let t = types.iter().position(|t| *t == s(&r, "event_type")).expect("known type");
        from_events.entry(k).or_default()[t] += 1;
    }
    let mut from_funnel: BTreeMap<(i64, String, String), [i64; 6]> = BTreeMap::new();
    let cols = ["page_views", "product_views", "add_to_carts", "remove_from_carts", "checkouts", "orders"];
    for (_, r) in read_table(store, prefix, Table::FunnelMinute).await {
        let k = (i(&r, "window_start"), s(&r, "country"), s(&r, "device"));
        let e = from_funnel.entry(k).or_default();
        for (j, c) in cols.iter().enumerate() {
            e[j] += i(&r, c);
        }
    }
    assert_eq!(from_funnel, from_events, "funnel_minute must equal the counts of events");
}

/// testkit/scripts/fault_proxy.py in front of a server.
pub fn start_fault_proxy(upstream: &Server) -> Server {
    servers::start_fault_proxy(&script("fault_proxy.py"), upstream)
}

/// Makes the proxy forward `after` more requests, then answer the `n` after them with
/// `status`. Returns the proxy's counters.
pub fn inject_faults(proxy: &Server, after: usize, n: usize, status: u16) -> Value {
    proxy_control(proxy, &format!("after={after}&fail={n}&status={status}"))
}

/// How the fault proxy fails a request (testkit/scripts/fault_proxy.py).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFault {
    /// Forwarded, applied by S3, then answered with a 500: the reply is lost.
    AppliedThen500,
    /// Forwarded, applied by S3, then the connection is reset.
    AppliedThenReset,
    /// Forwarded, applied by S3, then never answered.
    AppliedThenHang,
}

/// Makes the proxy pass `after` more writes, then apply the next `n` writes and lose their
/// replies; reads pass.
pub fn inject_lost_replies(proxy: &Server, after: usize, n: usize, fault: ProxyFault) -> Value {
    let mode = match fault {
        ProxyFault::AppliedThen500 => "apply",
        ProxyFault::AppliedThenReset => "reset",
        ProxyFault::AppliedThenHang => "hang",
    };
    proxy_control(proxy, &format!("after={after}&fail={n}&mode={mode}&writes=1"))
}

/// Makes the proxy strip `If-None-Match` from every request (or stop doing so).
pub fn drop_conditions(proxy: &Server, yes: bool) -> Value {
    proxy_control(proxy, &format!("fail=0&drop_conditions={}", u8::from(yes)))
}

/// The proxy's counters: faults still to inject (`fail`) and injected in all (`failed`).
pub fn proxy_counters(proxy: &Server) -> Value {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], proxy.port));
    let (_, body) = http(addr, "GET", "/__fault__");
    serde_json::from_str(&body).expect("proxy counters")
}

fn proxy_control(proxy: &Server, query: &str) -> Value {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], proxy.port));
    let (_, body) = http(addr, "POST", &format!("/__fault__?{query}"));
    serde_json::from_str(&body).expect("proxy counters")
}

/// One HTTP/1.1 request without a body on a fresh connection: the status line and headers, and
/// the body.
pub fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (String, String) {
    let mut conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    write!(conn, "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.to_string(), body.to_string())
}

/// The SDK configuration of every client for an emulator endpoint: dummy credentials, one
/// region, the project's HTTPS client.
fn emulator_config(endpoint: &str) -> aws_config::SdkConfig {
    use aws_sdk_kinesis::config::{Credentials, Region, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(awsenv::https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "tests")))
        .build()
}

/// A Kinesis client for an emulator endpoint, with dummy credentials.
pub fn kinesis_client(endpoint: &str) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&emulator_config(endpoint))
}

/// A CloudWatch client for an emulator endpoint, with dummy credentials.
pub fn cloudwatch_client(endpoint: &str) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&emulator_config(endpoint))
}

/// Puts datapoints `(time in ms, value)` of a Kinesis stream's metric (namespace `AWS/Kinesis`,
/// dimension `StreamName`), as Kinesis reports them.
pub async fn put_stream_metric(client: &aws_sdk_cloudwatch::Client, stream: &str, metric: &str, points: &[(i64, f64)]) {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let data: Vec<MetricDatum> = points
        .iter()
        .map(|&(ms, value)| {
            MetricDatum::builder()
                .metric_name(metric)
                .dimensions(Dimension::builder().name("StreamName").value(stream).build())
                .timestamp(DateTime::from_millis(ms))
                .value(value)
                .build()
        })
        .collect();
    for chunk in data.chunks(1000) {
        client.put_metric_data().namespace("AWS/Kinesis").set_metric_data(Some(chunk.to_vec())).send().await.unwrap();
    }
}

/// Every record of every shard, from the start: (partition key, data) per shard.
pub async fn read_stream(client: &aws_sdk_kinesis::Client, stream: &str) -> BTreeMap<String, Vec<(String, Bytes)>> {
    let mut out = BTreeMap::new();
    let shards = client.list_shards().stream_name(stream).send().await.unwrap();
    for shard in shards.shards() {
        let mut it = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        let mut records = Vec::new();
        loop {
            let page = client.get_records().shard_iterator(&it).limit(10_000).send().await.unwrap();
            if page.records().is_empty() {
                break;
            }
            records.extend(page.records().iter().map(|r| {
                (r.partition_key().unwrap_or_default().to_string(), Bytes::copy_from_slice(r.data().as_ref()))
            }));
            it = page.next_shard_iterator().unwrap().to_string();
        }
        out.insert(shard.shard_id().to_string(), records);
    }
    out
}

/// An SQS client for an emulator endpoint, with dummy credentials.
pub fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&emulator_config(endpoint))
}

/// An S3 client for an emulator endpoint, with dummy credentials and short retry backoff.
pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&emulator_config(endpoint))
        .force_path_style(true)
        .retry_config(aws_config::retry::RetryConfig::standard().with_initial_backoff(Duration::from_millis(20)))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

pub async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) {
    client.create_bucket().bucket(bucket).send().await.expect("create bucket");
}

/// Runs testkit/scripts/check_datasets.py (pyarrow + DuckDB) and returns its JSON report.
pub fn python_report(args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(script("check_datasets.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {INSTALL_HINT}"));
    assert!(
        out.status.success(),
        "check_datasets.py failed ({INSTALL_HINT} if a module is missing):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

/// The Parquet physical and logical types that the contract requires for an Arrow column
/// type of [`Table::schema`], as pyarrow names them.
pub fn expected_parquet_type(dt: &arrow_schema::DataType) -> (&'static str, &'static str) {
    match dt {
        arrow_schema::DataType::Utf8 => ("BYTE_ARRAY", "String"),
        arrow_schema::DataType::Int32 => ("INT32", "None"),
        arrow_schema::DataType::Int64 => ("INT64", "None"),
        arrow_schema::DataType::Timestamp(..) => ("INT64", "Timestamp(isAdjustedToUTC=true, timeUnit=milliseconds"),
        arrow_schema::DataType::Binary => ("BYTE_ARRAY", "None"),
        other => panic!("no contract type for {other}"),
    }
}

/// Asserts that the Python report's physical types of every table equal the contract's, derived
/// from [`Table::schema`]; compression is ZSTD and every chunk has statistics, true to its rows.
pub fn assert_contract_types(report: &Value, expect_rows_in: &[Table]) {
    for table in Table::ALL {
        let t = &report["tables"][table.as_str()];
        if !expect_rows_in.contains(&table) {
            continue;
        }
        assert!(t["rows"].as_u64().unwrap() > 0, "{table} has no rows: {t}");
        assert_eq!(t["codecs"], serde_json::json!(["ZSTD"]), "{table}");
        assert_eq!(t["statistics"], Value::Bool(true), "{table}: every column chunk has statistics");
        assert_eq!(t["wrong_statistics"], serde_json::json!([]), "{table}: statistics true to the rows (pyarrow)");
        assert_eq!(t["rows_outside_their_partition"], 0, "{table}");
        let cols = t["columns"].as_object().unwrap();
        let schema = table.schema();
        assert_eq!(
            cols.keys().cloned().collect::<std::collections::BTreeSet<_>>(),
            schema.fields().iter().map(|f| f.name().clone()).collect(),
            "{table}: columns (no partition column inside the files)"
        );
        for f in schema.fields() {
            let (physical, logical) = expected_parquet_type(f.data_type());
            let got = &cols[f.name()];
            assert_eq!(got["physical"], physical, "{table}.{}", f.name());
            assert!(got["logical"].as_str().unwrap().starts_with(logical), "{table}.{}: {}", f.name(), got["logical"]);
        }
    }
}

//! The real `processor` binary under a Lambda Runtime API served on 127.0.0.1, as AWS runs a
//! `provided.al2023` bootstrap: it fetches a full-size Kinesis event (6 MB), writes to S3
//! (moto_server) and posts the partial batch response, within 128 MiB of memory.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[path = "support/records.rs"]
mod records;
#[path = "../../tests/support/servers.rs"]
mod servers;

use records::kinesis_event;

/// What the fake Runtime API hands out and what it received.
#[derive(Default)]
struct Runtime {
    events: Mutex<VecDeque<(String, String)>>,
    /// (request id, "response" | "error" | "init-error", body)
    results: Mutex<Vec<(String, String, String)>>,
    changed: Condvar,
}

/// One keep-alive connection of the runtime client.
fn serve(stream: TcpStream, rt: Arc<Runtime>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut len = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let body = String::from_utf8_lossy(&body).to_string();
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let next = rt.events.lock().unwrap().pop_front();
            let Some((id, event)) = next else {
                // No more events: hold the request as Lambda does between invocations.
                std::thread::sleep(Duration::from_secs(600));
                return;
            };
            let deadline =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 60_000;
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:processor\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793\r\nContent-Length: {}\r\n\r\n{event}",
                event.len()
            )
            .unwrap();
        } else {
            let kind = if path.ends_with("/response") {
                "response"
            } else if path.contains("/init/error") {
                "init-error"
            } else {
                "error"
            };
            let id = path.split('/').nth(4).unwrap_or("").to_string();
            rt.results.lock().unwrap().push((id, kind.to_string(), body));
            rt.changed.notify_all();
            write!(out, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n").unwrap();
        }
        out.flush().unwrap();
    }
}

fn start_runtime(events: Vec<(String, String)>) -> (Arc<Runtime>, u16) {
    let rt = Arc::new(Runtime::default());
    rt.events.lock().unwrap().extend(events);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let shared = rt.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let rt = shared.clone();
            std::thread::spawn(move || serve(stream, rt));
        }
    });
    (rt, port)
}

fn wait_results(rt: &Runtime, n: usize, child: &mut Child) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut results = rt.results.lock().unwrap();
    while results.len() < n {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("processor exited with {status} after {} of {n} results", results.len());
        }
        assert!(Instant::now() < deadline, "no result from the processor");
        results = rt.changed.wait_timeout(results, Duration::from_millis(200)).unwrap().0;
    }
    results.clone()
}

fn processor_command(runtime_port: u16, moto_port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_processor"));
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{runtime_port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "processor")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/23/[$LATEST]test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/processor")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{moto_port}"))
        .env("ANALYTICS_BUCKET", "lake")
        .env("ANALYTICS_PREFIX", "analytics/")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Peak resident memory of a running process, from /proc (Linux).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap();
    line.trim().trim_end_matches("kB").trim().parse().unwrap()
}

#[test]
fn the_bootstrap_processes_a_full_6_mb_invocation_within_128_mib() {
    let moto = servers::start_moto();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .endpoint_url(moto.endpoint())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests"))
            .force_path_style(true)
            .build(),
    );
    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(s3.create_bucket().bucket("lake").send()).unwrap();

    // As many ~350-byte records as fit Lambda's 6 MB invocation payload.
    let mut count = 6000;
    while kinesis_event(count + 100).len() < 6_000_000 {
        count += 100;
    }
    let big = kinesis_event(count);
    assert!(big.len() <= 6_000_000 && big.len() > 5_500_000, "{}", big.len());
    let size = big.len();
    let (rt, port) = start_runtime(vec![("req-1".into(), big.clone()), ("req-2".into(), big)]);
    let mut child = processor_command(port, moto.port).spawn().unwrap();
    let results = wait_results(&rt, 2, &mut child);
    let peak = peak_rss_kib(child.id());
    child.kill().unwrap();
    let (mut logs, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut logs).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    child.wait().unwrap();

    for (id, kind, body) in &results {
        assert_eq!(kind, "response", "{id}: {body}\n{stderr}");
        let answer: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(answer, serde_json::json!({"batchItemFailures": []}), "{id}");
    }
    // JSON log lines: the first invocation committed everything, the redelivered second found
    // it all committed.
    let lines: Vec<serde_json::Value> = logs.lines().map(|l| serde_json::from_str(l).expect("JSON log line")).collect();
    let committed: Vec<_> = lines.iter().filter(|l| l["fields"]["message"] == "batch committed").collect();
    assert_eq!(committed.len(), 2, "log lines:\n{logs}\n{stderr}");
    assert_eq!(committed[0]["fields"]["quarantined"], (count / 50) as u64);
    assert_eq!(committed[0]["fields"]["events"], (count - count / 50) as u64);
    assert_eq!(committed[1]["fields"]["already_committed"], count as u64);
    assert!(!logs.contains('\u{1b}'), "no ANSI colours in Lambda logs");
    // CloudWatch Embedded Metric Format lines for each invocation.
    let emf: Vec<_> = lines.iter().filter(|l| l["_aws"].is_object() && l["RecordsIn"].is_number()).collect();
    assert_eq!(emf.len(), 2, "{logs}");
    assert_eq!(emf[0]["RecordsIn"], count as u64);
    assert_eq!(emf[0]["Quarantined"], (count / 50) as u64);
    // Every fourth record is a valid order (the invalid ones, n % 50 == 49, never are).
    assert_eq!(emf[0]["Orders"], (count / 4) as u64);
    assert_eq!(emf[1]["AlreadyCommitted"], count as u64);
    let by_reason = lines.iter().find(|l| l["ReasonCode"] == "invalid_json").expect("quarantine by reason");
    assert_eq!(by_reason["QuarantinedByReason"], (count / 50) as u64);
    assert!(lines.iter().any(|l| l["Currency"] == "JPY" && l["RevenueMinor"].as_f64().unwrap() > 0.0));
    let objects = tokio.block_on(s3.list_objects_v2().bucket("lake").prefix("analytics/events/").send()).unwrap();
    assert!(objects.key_count().unwrap_or(0) >= 1);
    eprintln!("{count} records, {size} bytes of event: peak RSS {peak} KiB");
    assert!(peak < 128 * 1024, "peak RSS {peak} KiB exceeds the smallest Lambda (128 MiB)");
}

#[test]
fn a_missing_bucket_fails_the_init_with_a_clear_message() {
    let (_rt, port) = start_runtime(vec![]);
    let output = processor_command(port, 9).env_remove("ANALYTICS_BUCKET").output().unwrap();
    assert!(!output.status.success());
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(logs.contains("ANALYTICS_BUCKET is not set"), "{logs}");
}

//! A local Lambda Runtime API (version 2018-06-01) and the function process under it, so that the
//! real `bootstrap` runs on a laptop as Lambda runs it: started with `AWS_LAMBDA_RUNTIME_API` and
//! the function's environment, it long-polls `GET /runtime/invocation/next`, gets the event with
//! the `Lambda-Runtime-*` headers, and posts `/response` or `/error` (or `/init/error` when it
//! cannot start).
//!
//! Like one Lambda execution environment it runs one invocation at a time; a timeout or a crash
//! ends the process, and the next invocation starts a new one (a cold start). Responses over
//! 6 MB are refused with 413, as Lambda refuses them.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use processor::metrics::BatchSummary;
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, Notify};

/// Lambda's limit on a synchronous response.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// The function to run: its bootstrap and configuration.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub bootstrap: PathBuf,
    pub name: String,
    pub memory_mb: u32,
    pub timeout: Duration,
    pub region: String,
    /// The function's own environment (configuration, credentials, endpoints), on top of the
    /// variables Lambda sets.
    pub env: Vec<(String, String)>,
    /// Where the function's standard output and error go (default: this process's standard
    /// error, so that its logs never mix with a command's output).
    pub log_file: Option<PathBuf>,
}

impl FunctionSpec {
    pub fn new(bootstrap: impl Into<PathBuf>) -> Self {
        FunctionSpec {
            bootstrap: bootstrap.into(),
            name: "processor".into(),
            memory_mb: 512,
            timeout: Duration::from_secs(60),
            region: "us-east-1".into(),
            env: Vec::new(),
            log_file: None,
        }
    }

    fn arn(&self) -> String {
        format!("arn:aws:lambda:{}:000000000000:function:{}", self.region, self.name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function reported an error (`/invocation/{id}/error`).
    #[error("the function failed: {error_type}: {message}")]
    Function { error_type: String, message: String },
    /// The function could not initialise (`/init/error`).
    #[error("the function could not start: {0}")]
    Init(String),
    #[error("the function timed out after {0:?}; its process was stopped")]
    Timeout(Duration),
    #[error("the function's process exited during the invocation ({0})")]
    Exited(String),
    #[error("the function's response is over Lambda's 6 MB limit ({0} bytes)")]
    ResponseTooLarge(usize),
    #[error("cannot start the function {path}: {error}")]
    Spawn { path: String, error: std::io::Error },
}

enum Outcome {
    Response(Bytes),
    Error(Bytes),
    Init(Bytes),
    TooLarge(usize),
}

struct Queued {
    id: String,
    body: Bytes,
    deadline_ms: i64,
}

#[derive(Default)]
struct Shared {
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    arn: String,
    /// The invocation waiting for the function's next `GET /next`.
    next: Mutex<Option<Queued>>,
    ready: Notify,
    /// Invocations handed out, by request id, until the function answers.
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// The first EMF document the processor logs for an invocation (it names its `RequestId`),
    /// by request id, until the invoker takes it.
    metrics: Mutex<HashMap<String, BatchSummary>>,
    metrics_seen: Notify,
}

/// Bound on the metric documents kept for invocations nobody asks about.
const MAX_KEPT_METRICS: usize = 1024;

impl Shared {
    fn resolve(&self, id: &str, outcome: Outcome) -> bool {
        let sender = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        sender.is_some_and(|s| s.send(outcome).is_ok())
    }
}

/// The Runtime API on 127.0.0.1 and the function's execution environment.
pub struct LocalLambda {
    spec: FunctionSpec,
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// The running function process; the lock makes invocations one at a time.
    environment: tokio::sync::Mutex<Option<Environment>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LocalLambda {
    fn drop(&mut self) {
        self.server.abort();
        // `kill_on_drop` stops the function process with the environment.
    }
}

/// One execution environment: the function's process and the task that copies its standard
/// output to the log.
struct Environment {
    child: Child,
    logs: Option<tokio::task::JoinHandle<()>>,
}

impl Environment {
    /// Empties `slot`: stops the process and waits (a little) until everything it wrote is in
    /// the log, so that a caller who reads the log after a failed invocation sees the
    /// function's last words.
    async fn discard(slot: &mut Option<Environment>) {
        let Some(mut env) = slot.take() else { return };
        let _ = env.child.kill().await;
        if let Some(logs) = env.logs {
            let _ = tokio::time::timeout(Duration::from_secs(5), logs).await;
        }
    }
}

fn error_body(error_type: &str, message: &str) -> String {
    serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string()
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    loop {
        let queued = shared.next.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(q) = queued {
            let mut headers = HeaderMap::new();
            let header = |v: String| HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""));
            headers.insert("lambda-runtime-aws-request-id", header(q.id.clone()));
            headers.insert("lambda-runtime-deadline-ms", header(q.deadline_ms.to_string()));
            headers.insert("lambda-runtime-invoked-function-arn", header(shared.arn.clone()));
            headers.insert("lambda-runtime-trace-id", header(format!("Root=1-00000000-{}", &q.id[..24])));
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            return (StatusCode::OK, headers, q.body).into_response();
        }
        shared.ready.notified().await;
    }
}

async fn respond(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let outcome = if body.len() > MAX_RESPONSE_BYTES { Outcome::TooLarge(body.len()) } else { Outcome::Response(body) };
    let too_large = matches!(outcome, Outcome::TooLarge(_));
    if !shared.resolve(&id, outcome) {
        return (StatusCode::BAD_REQUEST, error_body("InvalidRequestID", &format!("no invocation {id} is waiting")))
            .into_response();
    }
    if too_large {
        return (StatusCode::PAYLOAD_TOO_LARGE, error_body("RequestEntityTooLarge", "the response is over 6 MB"))
            .into_response();
    }
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

async fn invocation_error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    if !shared.resolve(&id, Outcome::Error(body)) {
        return (StatusCode::BAD_REQUEST, error_body("InvalidRequestID", &format!("no invocation {id} is waiting")))
            .into_response();
    }
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let ids: Vec<String> = shared.waiting.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
    for id in ids {
        shared.resolve(&id, Outcome::Init(body.clone()));
    }
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

/// `{"errorType": ..., "errorMessage": ...}` of an error post, or its text.
fn parse_error(body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    (
        text("errorType").unwrap_or_else(|| "Unhandled".into()),
        text("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    )
}

impl LocalLambda {
    /// Serves the Runtime API on a free port of 127.0.0.1; the function starts at the first
    /// invocation.
    pub async fn start(spec: FunctionSpec) -> std::io::Result<Self> {
        let shared = Arc::new(Shared { arn: spec.arn(), ..Shared::default() });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(axum::extract::DefaultBodyLimit::max(2 * MAX_RESPONSE_BYTES))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the local Lambda Runtime API stopped");
            }
        });
        Ok(LocalLambda { spec, addr, shared, environment: tokio::sync::Mutex::new(None), server })
    }

    /// The `AWS_LAMBDA_RUNTIME_API` value (`127.0.0.1:PORT`).
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// The process id of the running function, if one runs.
    pub async fn pid(&self) -> Option<u32> {
        self.environment.lock().await.as_ref().and_then(|e| e.child.id())
    }

    fn spawn(&self) -> Result<Environment, InvokeError> {
        let s = &self.spec;
        let mut cmd = Command::new(&s.bootstrap);
        cmd.env("AWS_LAMBDA_RUNTIME_API", self.runtime_api())
            .env("AWS_LAMBDA_FUNCTION_NAME", &s.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", s.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", s.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_REGION", &s.region)
            .env("AWS_DEFAULT_REGION", &s.region)
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("_HANDLER", "bootstrap")
            .env("TZ", ":UTC")
            .env("LAMBDA_TASK_ROOT", s.bootstrap.parent().unwrap_or(std::path::Path::new(".")))
            .envs(s.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // Standard output passes through a reader that notes the invocations' EMF documents.
        let log: Box<dyn std::io::Write + Send> = match &s.log_file {
            Some(path) => {
                let open = || std::fs::OpenOptions::new().create(true).append(true).open(path);
                let spawn_error = |error| InvokeError::Spawn { path: path.display().to_string(), error };
                cmd.stderr(open().map_err(spawn_error)?);
                Box::new(open().map_err(spawn_error)?)
            }
            None => Box::new(std::io::stderr()),
        };
        cmd.stdout(Stdio::piped());
        let mut child =
            cmd.spawn().map_err(|error| InvokeError::Spawn { path: s.bootstrap.display().to_string(), error })?;
        let logs = child.stdout.take().map(|stdout| tokio::spawn(forward_logs(stdout, log, self.shared.clone())));
        Ok(Environment { child, logs })
    }

    /// Stops the execution environment and waits (a little) until everything the function wrote
    /// is in the log: a caller about to exit calls it, or the function's last lines (the ones it
    /// logged just before its answer) could still be in the pipe when the process ends.
    pub async fn shutdown(&self) {
        Environment::discard(&mut *self.environment.lock().await).await;
    }

    /// Invokes the function with `payload` and waits for its answer (or its timeout).
    pub async fn invoke(&self, payload: impl Into<Bytes>) -> Result<Bytes, InvokeError> {
        let (id, body) = self.invoke_request(payload.into()).await?;
        self.shared.metrics.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        Ok(body)
    }

    /// Invokes the function and also returns the batch summary it logged for the invocation
    /// ([`BatchSummary`]), waiting up to `wait` for it after the answer.
    pub async fn invoke_with_metrics(
        &self,
        payload: impl Into<Bytes>,
        wait: Duration,
    ) -> Result<(Bytes, Option<BatchSummary>), InvokeError> {
        let (id, body) = self.invoke_request(payload.into()).await?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let seen = self.shared.metrics_seen.notified();
            tokio::pin!(seen);
            seen.as_mut().enable();
            if let Some(doc) = self.shared.metrics.lock().unwrap_or_else(|e| e.into_inner()).remove(&id) {
                return Ok((body, Some(doc)));
            }
            if tokio::time::timeout_at(deadline, seen).await.is_err() {
                return Ok((body, None));
            }
        }
    }

    async fn invoke_request(&self, payload: Bytes) -> Result<(String, Bytes), InvokeError> {
        let mut environment = self.environment.lock().await;
        if environment.as_mut().is_some_and(|env| matches!(env.child.try_wait(), Ok(Some(_)))) {
            Environment::discard(&mut environment).await;
        }
        if environment.is_none() {
            *environment = Some(self.spawn()?);
        }
        let child = &mut environment.as_mut().expect("an execution environment was just started").child;

        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), tx);
        let deadline_ms = model::now_ms() + self.spec.timeout.as_millis() as i64;
        *self.shared.next.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Queued { id: id.clone(), body: payload, deadline_ms });
        self.shared.ready.notify_one();

        let ended = tokio::select! {
            biased;
            answer = rx => Ended::Answer(answer.ok()),
            status = child.wait() => Ended::Exited(status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())),
            _ = tokio::time::sleep(self.spec.timeout) => Ended::TimedOut,
        };
        self.shared.next.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.shared.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        let result = match ended {
            Ended::Answer(Some(Outcome::Response(body))) => return Ok((id, body)),
            Ended::Answer(Some(Outcome::Error(body))) => {
                let (error_type, message) = parse_error(&body);
                return Err(InvokeError::Function { error_type, message });
            }
            Ended::Answer(Some(Outcome::TooLarge(n))) => return Err(InvokeError::ResponseTooLarge(n)),
            Ended::Answer(Some(Outcome::Init(body))) => {
                let (error_type, message) = parse_error(&body);
                InvokeError::Init(format!("{error_type}: {message}"))
            }
            Ended::Answer(None) => InvokeError::Exited("no answer".into()),
            Ended::Exited(status) => InvokeError::Exited(status),
            // As Lambda does, a timed-out environment is discarded.
            Ended::TimedOut => InvokeError::Timeout(self.spec.timeout),
        };
        Environment::discard(&mut environment).await;
        Err(result)
    }
}

/// Copies the function's standard output to its log, keeping the EMF documents that name a
/// request id (the processor's first document of each batch).
async fn forward_logs(
    stdout: tokio::process::ChildStdout,
    mut log: Box<dyn std::io::Write + Send>,
    shared: Arc<Shared>,
) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // One write per line: the function's standard error appends to the same file, and a
        // line written in two pieces could take a line of it in between.
        let mut whole = Vec::with_capacity(line.len() + 1);
        whole.extend_from_slice(line.as_bytes());
        whole.push(b'\n');
        let _ = log.write_all(&whole);
        if let Some(summary) = BatchSummary::from_log_line(&line) {
            let mut kept = shared.metrics.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() >= MAX_KEPT_METRICS {
                kept.clear();
            }
            kept.entry(summary.request_id.clone()).or_insert(summary);
            drop(kept);
            shared.metrics_seen.notify_waiters();
        }
    }
    let _ = log.flush();
}

enum Ended {
    Answer(Option<Outcome>),
    Exited(String),
    TimedOut,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bootstrap written in shell, for the failure modes a real function rarely shows on cue.
    fn script(dir: &std::path::Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("bootstrap");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[tokio::test]
    async fn a_function_past_its_timeout_is_stopped_and_the_next_invocation_starts_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec =
            FunctionSpec::new(script(dir.path(), "echo started >> \"$LAMBDA_TASK_ROOT/starts\"; exec sleep 30"));
        spec.timeout = Duration::from_millis(300);
        let lambda = LocalLambda::start(spec).await.unwrap();
        let err = lambda.invoke(&b"{}"[..]).await.unwrap_err();
        assert!(matches!(err, InvokeError::Timeout(_)), "{err}");
        assert_eq!(lambda.pid().await, None, "the timed-out environment is gone");
        let err = lambda.invoke(&b"{}"[..]).await.unwrap_err();
        assert!(matches!(err, InvokeError::Timeout(_)), "{err}");
        let starts = std::fs::read_to_string(dir.path().join("starts")).unwrap();
        assert_eq!(starts.lines().count(), 2, "a cold start per invocation after a timeout");
    }

    #[tokio::test]
    async fn a_crash_fails_the_invocation_and_a_missing_bootstrap_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let lambda = LocalLambda::start(FunctionSpec::new(script(dir.path(), "exit 3"))).await.unwrap();
        let err = lambda.invoke(&b"{}"[..]).await.unwrap_err();
        assert!(matches!(&err, InvokeError::Exited(s) if s.contains('3')), "{err}");

        let lambda = LocalLambda::start(FunctionSpec::new(dir.path().join("nothing-here"))).await.unwrap();
        let err = lambda.invoke(&b"{}"[..]).await.unwrap_err();
        assert!(matches!(&err, InvokeError::Spawn { path, .. } if path.ends_with("nothing-here")), "{err}");
    }

    #[tokio::test]
    async fn answers_for_unknown_requests_and_oversized_responses_are_refused() {
        let lambda = LocalLambda::start(FunctionSpec::new("/bin/true")).await.unwrap();
        let addr = lambda.addr;
        let post = |path: String, len: usize| {
            tokio::task::spawn_blocking(move || {
                use std::io::{Read, Write};
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                write!(s, "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
                    .unwrap();
                let _ = s.write_all(&vec![b' '; len]);
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                out
            })
        };
        let answer = post("/2018-06-01/runtime/invocation/nope/response".into(), 2).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("InvalidRequestID"), "{answer}");

        let (tx, rx) = oneshot::channel();
        lambda.shared.waiting.lock().unwrap().insert("r1".into(), tx);
        let answer = post("/2018-06-01/runtime/invocation/r1/response".into(), MAX_RESPONSE_BYTES + 1).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(matches!(rx.await, Ok(Outcome::TooLarge(n)) if n == MAX_RESPONSE_BYTES + 1));
    }
}

//! Sending records to a Kinesis stream with PutRecords: batches of up to 500 records / 5 MiB,
//! several requests in flight, failed records retried with exponential backoff and full jitter,
//! throttling slowing the send rate, and nothing dropped silently: a record that still fails
//! after the last attempt is handed back to the caller.
//!
//! Order per partition key: a key is busy while one of its records is in flight or waiting for
//! a retry, and a request carries at most one record of a key, so a session's records reach
//! their shard in the order they were produced, retries included.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::rng::{cumulative, Rand};

/// PutRecords limits of the Kinesis API.
pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
const THROTTLED: &str = "ProvisionedThroughputExceededException";

/// One record to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub data: Bytes,
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    /// The user records it carries: 1, or a KPL aggregate's count.
    pub records: u32,
}

impl Entry {
    /// Bytes counted against the 5 MiB request limit (data and partition key).
    fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// What happened to one record of a PutRecords request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored { shard_id: String },
    Failed { code: String, message: String },
}

/// An open shard and its hash key range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub id: String,
    pub starting_hash_key: u128,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("stream {0:?} was not found: create it first, or check --stream and AWS_REGION")]
    StreamNotFound(String),
    #[error("{}", awsenv::NO_CREDENTIALS)]
    NoCredentials,
    #[error("AWS refused the credentials or the permissions: {0}")]
    Credentials(String),
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("{message}")]
    Other { message: String, retryable: bool },
}

/// The two calls the producer makes, so that tests can wrap them with faults.
#[async_trait]
pub trait KinesisApi: Send + Sync {
    async fn put_records(&self, stream: &str, entries: &[Entry]) -> Result<Vec<Outcome>, ApiError>;
    async fn open_shards(&self, stream: &str) -> Result<Vec<Shard>, ApiError>;
}

/// The real service through aws-sdk-kinesis.
pub struct SdkKinesis {
    client: aws_sdk_kinesis::Client,
}

impl SdkKinesis {
    pub fn new(client: aws_sdk_kinesis::Client) -> Self {
        SdkKinesis { client }
    }

    /// A client from the SDK's standard environment (AWS_REGION, credentials, AWS_ENDPOINT_URL).
    pub async fn from_env() -> Result<Self, awsenv::AwsEnvError> {
        Ok(SdkKinesis::new(aws_sdk_kinesis::Client::new(&awsenv::load().await?)))
    }
}

fn classify<E, R>(stream: &str, e: SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = awsenv::one_line(DisplayErrorContext(&e));
    if awsenv::is_no_credentials(&message) {
        return ApiError::NoCredentials;
    }
    match e.code() {
        Some("ResourceNotFoundException") => ApiError::StreamNotFound(stream.to_string()),
        Some(THROTTLED | "LimitExceededException" | "KMSThrottlingException") => ApiError::Throttled(message),
        Some(
            "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "AccessDeniedException"
            | "IncompleteSignature"
            | "MissingAuthenticationToken",
        ) => ApiError::Credentials(message),
        Some(_) => ApiError::Other {
            retryable: matches!(e, SdkError::ServiceError(_)) && message.contains("Internal"),
            message,
        },
        None if message.contains("credentials") => ApiError::Credentials(message),
        // Timeouts, connection errors, 5xx without a code: worth another try.
        None => ApiError::Other { message, retryable: true },
    }
}

#[async_trait]
impl KinesisApi for SdkKinesis {
    async fn put_records(&self, stream: &str, entries: &[Entry]) -> Result<Vec<Outcome>, ApiError> {
        let records = entries
            .iter()
            .map(|e| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(e.data.to_vec()))
                    .partition_key(&e.partition_key)
                    .set_explicit_hash_key(e.explicit_hash_key.clone())
                    .build()
                    .map_err(|err| ApiError::Other { message: err.to_string(), retryable: false })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .put_records()
            .stream_name(stream)
            .set_records(Some(records))
            .send()
            .await
            .map_err(|e| classify(stream, e))?;
        Ok(out
            .records()
            .iter()
            .map(|r| match (r.error_code(), r.shard_id()) {
                (Some(code), _) => {
                    Outcome::Failed { code: code.to_string(), message: r.error_message().unwrap_or("").to_string() }
                }
                (None, shard) => Outcome::Stored { shard_id: shard.unwrap_or("unknown").to_string() },
            })
            .collect())
    }

    async fn open_shards(&self, stream: &str) -> Result<Vec<Shard>, ApiError> {
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = match &token {
                Some(t) => self.client.list_shards().next_token(t),
                None => self.client.list_shards().stream_name(stream),
            };
            let out = req.send().await.map_err(|e| classify(stream, e))?;
            for s in out.shards() {
                let open = s.sequence_number_range().is_some_and(|r| r.ending_sequence_number().is_none());
                let start = s.hash_key_range().and_then(|h| h.starting_hash_key().parse::<u128>().ok());
                if let (true, Some(starting_hash_key)) = (open, start) {
                    shards.push(Shard { id: s.shard_id().to_string(), starting_hash_key });
                }
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        shards.sort_by_key(|s| s.starting_hash_key);
        Ok(shards)
    }
}

/// How records are spread over shards.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// The session id: a visit stays on one shard, in order.
    Session,
    /// A random key per record.
    Random,
    /// Explicit hash keys cycling through the open shards.
    RoundRobin,
    /// Explicit hash keys with a weight per open shard (a hot shard on purpose).
    Weighted(Vec<f64>),
}

/// Why records cannot be routed to the stream's shards as asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoutingError {
    #[error("--weights has {weights} values but the stream has {shards} open shards")]
    WeightCount { weights: usize, shards: usize },
    #[error("--weights must be non-negative numbers with a positive sum")]
    BadWeights,
    #[error("the stream has no open shard")]
    NoOpenShard,
}

pub struct Router {
    strategy: Strategy,
    shards: Vec<Shard>,
    cdf: Vec<f64>,
    next: usize,
    rng: Rand,
}

impl Router {
    /// `shards` are the stream's open shards (needed by the round-robin and weighted strategies).
    pub fn new(strategy: Strategy, shards: Vec<Shard>, seed: u64) -> Result<Self, RoutingError> {
        let cdf = match &strategy {
            Strategy::Weighted(w) if w.len() != shards.len() => {
                return Err(RoutingError::WeightCount { weights: w.len(), shards: shards.len() })
            }
            Strategy::Weighted(w) if w.iter().any(|x| !x.is_finite() || *x < 0.0) || w.iter().sum::<f64>() <= 0.0 => {
                return Err(RoutingError::BadWeights)
            }
            Strategy::Weighted(w) => cumulative(w.iter().copied()),
            Strategy::RoundRobin if shards.is_empty() => return Err(RoutingError::NoOpenShard),
            _ => Vec::new(),
        };
        Ok(Router { strategy, shards, cdf, next: 0, rng: Rand::new(seed ^ 0x005e_ed0f_5a4d) })
    }

    /// The partition key and explicit hash key of a record of this session.
    pub fn route(&mut self, session: String) -> (String, Option<String>) {
        match &self.strategy {
            Strategy::Session => (session, None),
            Strategy::Random => (format!("{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64()), None),
            Strategy::RoundRobin => {
                let shard = &self.shards[self.next % self.shards.len()];
                self.next += 1;
                (session, Some(shard.starting_hash_key.to_string()))
            }
            Strategy::Weighted(_) => {
                let shard = &self.shards[self.rng.pick(&self.cdf)];
                (session, Some(shard.starting_hash_key.to_string()))
            }
        }
    }
}

/// Retry and concurrency settings.
#[derive(Debug, Clone)]
pub struct SendConfig {
    pub stream: String,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl SendConfig {
    pub fn new(stream: impl Into<String>) -> Self {
        SendConfig {
            stream: stream.into(),
            concurrency: 4,
            max_attempts: 12,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Counters of a run, shared with the progress display.
#[derive(Debug, Clone, Default)]
pub struct SendStats {
    /// User records stored (a KPL aggregate counts its records).
    pub sent: u64,
    /// Kinesis records stored (aggregates count one each).
    pub kinesis_records: u64,
    /// Record attempts that failed and were tried again.
    pub retried: u64,
    /// Record attempts refused with ProvisionedThroughputExceededException (or whole requests).
    pub throttled: u64,
    /// User records given up after the last attempt.
    pub failed: u64,
    pub requests: u64,
    pub per_shard: BTreeMap<String, u64>,
    pub latencies_us: Vec<u64>,
    /// The send rate limit (records/s) while throttling, `None` when unlimited.
    pub rate_limit: Option<f64>,
}

impl SendStats {
    /// The `q` quantile (0..=1) of PutRecords latency.
    pub fn latency(&self, q: f64) -> Option<Duration> {
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).map(|us| Duration::from_micros(*us))
    }
}

/// The send rate never drops below this (records/s).
const MIN_RATE: f64 = 50.0;
/// Throttled responses within this interval are one congestion event (like TCP's round trip).
const DECREASE_INTERVAL: Duration = Duration::from_millis(500);

/// Multiplicative-decrease, multiplicative-increase send rate: unlimited until the first
/// throttle; then 70% of the rate observed over the last second on each congestion event, and
/// 5% more on each response without a throttled record.
struct AdaptiveRate {
    limit: Option<f64>,
    tokens: f64,
    refilled: Instant,
    recent: VecDeque<(Instant, usize)>,
    last_decrease: Option<Instant>,
}

impl AdaptiveRate {
    fn new() -> Self {
        AdaptiveRate {
            limit: None,
            tokens: 0.0,
            refilled: Instant::now(),
            recent: VecDeque::new(),
            last_decrease: None,
        }
    }

    fn observed_rate(&mut self) -> f64 {
        let now = Instant::now();
        while self.recent.front().is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(1)) {
            self.recent.pop_front();
        }
        self.recent.iter().map(|(_, n)| *n as f64).sum::<f64>().max(1.0)
    }

    fn on_throttle(&mut self) {
        let now = Instant::now();
        if self.last_decrease.is_some_and(|t| now.duration_since(t) < DECREASE_INTERVAL) {
            return;
        }
        self.last_decrease = Some(now);
        let observed = self.observed_rate();
        let current = self.limit.map_or(observed, |l| l.min(observed.max(MIN_RATE)));
        self.limit = Some((current * 0.7).max(MIN_RATE));
        self.tokens = 0.0;
    }

    fn on_success(&mut self) {
        if let Some(l) = self.limit {
            self.limit = Some(l * 1.05);
        }
    }

    /// Waits until `n` records may be sent.
    async fn acquire(&mut self, n: usize) {
        self.recent.push_back((Instant::now(), n));
        let Some(limit) = self.limit else { return };
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * limit).min(limit.max(n as f64));
        self.refilled = now;
        if self.tokens < n as f64 {
            let wait = (n as f64 - self.tokens) / limit;
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            self.tokens = n as f64;
            self.refilled = Instant::now();
        }
        self.tokens -= n as f64;
    }
}

struct Pending {
    entry: Entry,
    attempts: u32,
    ready: Instant,
    /// Arrival order, to put retries back in front in the order they were produced.
    seq: u64,
}

type Response = (Vec<Pending>, Result<Vec<Outcome>, ApiError>, Duration);

/// Sends every entry that arrives on `rx` until it closes. Returns the statistics and the
/// entries that failed all their attempts; a fatal error (missing stream, refused credentials)
/// stops the run.
pub async fn send_all<A: KinesisApi + ?Sized>(
    api: &A,
    cfg: &SendConfig,
    mut rx: mpsc::Receiver<Entry>,
    stats: Arc<Mutex<SendStats>>,
    jitter_seed: u64,
) -> Result<Vec<Entry>, ApiError> {
    let mut jitter = Rand::new(jitter_seed);
    let mut rate = AdaptiveRate::new();
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let mut waiting: Vec<Pending> = Vec::new();
    let mut given_up = Vec::new();
    let mut inflight = FuturesUnordered::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut input_open = true;
    let max_queue = 2 * MAX_BATCH_RECORDS * cfg.concurrency.max(1);
    let mut next_seq: u64 = 0;
    loop {
        // Retries whose backoff is over go first.
        let now = Instant::now();
        let (mut ready, later): (Vec<_>, Vec<_>) = waiting.drain(..).partition(|p| p.ready <= now);
        waiting = later;
        // Oldest first, ahead of newer records of the same keys.
        ready.sort_by_key(|p| std::cmp::Reverse(p.seq));
        for p in ready {
            busy.remove(&p.entry.partition_key);
            queue.push_front(p);
        }
        while inflight.len() < cfg.concurrency.max(1) && !queue.is_empty() {
            let batch = take_batch(&mut queue, &mut busy);
            if batch.is_empty() {
                break;
            }
            rate.acquire(batch.len()).await;
            let entries: Vec<Entry> = batch.iter().map(|p| p.entry.clone()).collect();
            inflight.push(async move {
                let started = Instant::now();
                let result = api.put_records(&cfg.stream, &entries).await;
                (batch, result, started.elapsed())
            });
        }
        if !input_open && queue.is_empty() && waiting.is_empty() && inflight.is_empty() {
            return Ok(given_up);
        }
        let next_retry = waiting.iter().map(|p| p.ready).min();
        tokio::select! {
            biased;
            Some(response) = inflight.next(), if !inflight.is_empty() => {
                let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
                let retry = handle(response, cfg, &mut st, &mut rate, &mut given_up, &mut busy)?;
                st.rate_limit = rate.limit;
                drop(st);
                for mut p in retry {
                    let cap = cfg.max_backoff.min(cfg.base_backoff.saturating_mul(1 << p.attempts.min(16)));
                    p.ready = Instant::now() + cap.mul_f64(jitter.unit());
                    waiting.push(p);
                }
            }
            entry = rx.recv(), if input_open && queue.len() < max_queue => match entry {
                Some(entry) => {
                    queue.push_back(Pending { entry, attempts: 0, ready: Instant::now(), seq: next_seq });
                    next_seq += 1;
                    while queue.len() < max_queue {
                        match rx.try_recv() {
                            Ok(entry) => {
                                queue.push_back(Pending { entry, attempts: 0, ready: Instant::now(), seq: next_seq });
                                next_seq += 1;
                            }
                            Err(_) => break,
                        }
                    }
                }
                None => input_open = false,
            },
            _ = tokio::time::sleep_until(next_retry.unwrap_or_else(Instant::now)), if next_retry.is_some() => {}
        }
    }
}

/// Up to 500 records and 5 MiB, oldest first, at most one per partition key and none of a busy
/// key; the records taken make their keys busy. The others keep their places.
fn take_batch(queue: &mut VecDeque<Pending>, busy: &mut HashSet<String>) -> Vec<Pending> {
    let mut batch = Vec::new();
    let mut rest = VecDeque::with_capacity(queue.len());
    let mut bytes = 0;
    for p in queue.drain(..) {
        let full = batch.len() == MAX_BATCH_RECORDS || (!batch.is_empty() && bytes + p.entry.size() > MAX_BATCH_BYTES);
        if full || busy.contains(&p.entry.partition_key) {
            rest.push_back(p);
            continue;
        }
        busy.insert(p.entry.partition_key.clone());
        bytes += p.entry.size();
        batch.push(p);
    }
    *queue = rest;
    batch
}

/// Books a response; returns the records to try again.
fn handle(
    (batch, result, latency): Response,
    cfg: &SendConfig,
    st: &mut SendStats,
    rate: &mut AdaptiveRate,
    given_up: &mut Vec<Entry>,
    busy: &mut HashSet<String>,
) -> Result<Vec<Pending>, ApiError> {
    st.requests += 1;
    st.latencies_us.push(latency.as_micros() as u64);
    let mut failed = Vec::new();
    match result {
        Ok(outcomes) if outcomes.len() == batch.len() => {
            let mut throttled = false;
            for (p, outcome) in batch.into_iter().zip(outcomes) {
                match outcome {
                    Outcome::Stored { shard_id } => {
                        busy.remove(&p.entry.partition_key);
                        st.sent += u64::from(p.entry.records);
                        st.kinesis_records += 1;
                        *st.per_shard.entry(shard_id).or_default() += u64::from(p.entry.records);
                    }
                    Outcome::Failed { code, .. } => {
                        if code == THROTTLED {
                            st.throttled += 1;
                            throttled = true;
                        }
                        failed.push(p);
                    }
                }
            }
            if throttled {
                rate.on_throttle();
            } else {
                rate.on_success();
            }
        }
        Ok(outcomes) => {
            return Err(ApiError::Other {
                message: format!("PutRecords answered {} results for {} records", outcomes.len(), batch.len()),
                retryable: false,
            })
        }
        Err(ApiError::Throttled(_)) => {
            st.throttled += batch.len() as u64;
            rate.on_throttle();
            failed = batch;
        }
        Err(ApiError::Other { retryable: true, .. }) => failed = batch,
        Err(fatal) => return Err(fatal),
    }
    let mut retry = Vec::new();
    for mut p in failed {
        p.attempts += 1;
        if p.attempts >= cfg.max_attempts {
            st.failed += u64::from(p.entry.records);
            busy.remove(&p.entry.partition_key);
            given_up.push(p.entry);
        } else {
            st.retried += 1;
            retry.push(p);
        }
    }
    Ok(retry)
}

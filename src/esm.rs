//! A local event source mapping that behaves like Lambda's for Kinesis: one poller per shard,
//! in-order delivery, batch size and batching window, the 6 MB payload cap, retry from the
//! lowest failed record of a partial batch response, bisect on error, maximum retry attempts
//! and record age with an on-failure destination (a local folder), checkpoints and iterator
//! age. It invokes the same handler as the Lambda function.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::ReasonCode;
use processor::digest::Digest;
use processor::kinesis::InputRecord;
use processor::runtime_api::{FunctionSpec, LocalLambda};
use processor::{BatchReport, Processor};
use sink::store::ObjectStore;
use sink::RecordMeta;

use crate::now_ms;
use crate::replay::{Condition, Destination, OnFailureRecord};
use crate::stream::{EmbeddedStream, StreamRecord};

/// One shard as the mapping reads it: records at positions 0, 1, 2, ... of this run.
#[async_trait::async_trait]
pub trait ShardSource: Send + Sync {
    fn stream_name(&self) -> &str;
    fn shard_id(&self) -> &str;
    /// The position after the last record available now (a source may fetch more first).
    async fn end(&self) -> std::io::Result<u64>;
    /// Up to `max_records` records from `position` on, within `max_bytes` (by `payload_size`).
    fn read(&self, position: u64, max_records: usize, max_bytes: usize) -> Vec<StreamRecord>;
    /// The records before `position` are checkpointed: the source may forget them.
    fn trim(&self, position: u64);
    /// Whether the source has nothing more to give now (for a remote stream: its last read came
    /// back empty), so that a stopping poller with nothing left to process may end.
    fn caught_up(&self) -> bool {
        true
    }
    /// Whether the shard is closed (split or merged): once drained, its poller ends, and its
    /// children are polled.
    fn closed(&self) -> bool {
        false
    }
    /// Whether the records stay readable after this run (a real stream, within its retention).
    /// When they do not, a batch given up on carries its records to the on-failure destination.
    fn outlives_run(&self) -> bool {
        true
    }
}

/// A shard of the embedded stream.
pub struct EmbeddedShard {
    pub stream: Arc<EmbeddedStream>,
    pub shard: usize,
    shard_id: String,
}

impl EmbeddedShard {
    pub fn new(stream: Arc<EmbeddedStream>, shard: usize) -> Self {
        let shard_id = stream.shard_id(shard);
        EmbeddedShard { stream, shard, shard_id }
    }
}

#[async_trait::async_trait]
impl ShardSource for EmbeddedShard {
    fn stream_name(&self) -> &str {
        self.stream.name()
    }
    fn shard_id(&self) -> &str {
        &self.shard_id
    }
    async fn end(&self) -> std::io::Result<u64> {
        Ok(self.stream.end(self.shard))
    }
    fn read(&self, position: u64, max_records: usize, max_bytes: usize) -> Vec<StreamRecord> {
        self.stream.read(self.shard, position, max_records, max_bytes, payload_size)
    }
    fn trim(&self, position: u64) {
        self.stream.trim(self.shard, position)
    }
    fn closed(&self) -> bool {
        !self.stream.is_open(self.shard)
    }
    fn outlives_run(&self) -> bool {
        false
    }
}

/// Lambda's invocation payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// Bytes of the Lambda event around one record's base64 data (ids, ARN, timestamps).
const RECORD_ENVELOPE_BYTES: usize = 400;

#[derive(Clone)]
pub struct EsmConfig {
    /// BatchSize: records per invocation at most.
    pub batch_size: usize,
    /// MaximumBatchingWindowInSeconds: how long to gather records before invoking.
    pub batching_window: Duration,
    pub max_payload_bytes: usize,
    /// MaximumRetryAttempts (`None`: until the records expire, the default: see
    /// docs/exactly-once.md).
    pub max_retry_attempts: Option<u32>,
    /// MaximumRecordAgeInSeconds (`None`: no limit).
    pub max_record_age: Option<Duration>,
    /// BisectBatchOnFunctionError.
    pub bisect_on_error: bool,
    /// The on-failure destination: Lambda's invocation record per discarded batch, in a folder or
    /// an SQS queue.
    pub on_failure: Destination,
}

impl EsmConfig {
    /// Lambda's settings of this project's event source mapping: batches of up to 1,000 records,
    /// and a failing batch retried (whole) until it succeeds.
    pub fn new(on_failure: Destination) -> Self {
        EsmConfig {
            batch_size: 1000,
            batching_window: Duration::from_millis(500),
            max_payload_bytes: MAX_PAYLOAD_BYTES,
            max_retry_attempts: None,
            max_record_age: None,
            bisect_on_error: false,
            on_failure,
        }
    }
}

/// The size a record adds to the invocation payload: its data in base64 plus the envelope.
pub fn payload_size(r: &StreamRecord) -> usize {
    r.data.len().div_ceil(3) * 4 + r.partition_key.len() + RECORD_ENVELOPE_BYTES
}

/// What to do after an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Everything up to `to` (exclusive) is done: checkpoint there.
    Checkpoint { to: u64 },
    /// Invoke again from `from` (the lowest failed record), with at most `limit` records.
    Retry { from: u64, limit: usize },
    /// Retries are exhausted: records `from..to` go to the on-failure destination, and the
    /// checkpoint moves past them.
    Discard { from: u64, to: u64, condition: Condition },
}

/// The per-shard state of the mapping: checkpoint, attempts, the current bisected batch size.
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    pub checkpoint: u64,
    attempts: u32,
    limit: Option<usize>,
}

impl Cursor {
    /// Records the next invocation may take.
    pub fn batch_limit(&self, cfg: &EsmConfig) -> usize {
        self.limit.unwrap_or(cfg.batch_size).min(cfg.batch_size).max(1)
    }

    /// After invoking records at positions `first..=last`: `lowest_failed` is the position of the
    /// lowest record the response named (or `first` when the invocation failed), `oldest_age` the
    /// age of the batch's oldest record.
    pub fn after(
        &mut self,
        cfg: &EsmConfig,
        first: u64,
        last: u64,
        lowest_failed: Option<u64>,
        oldest_age: Duration,
    ) -> Decision {
        let Some(failed) = lowest_failed else {
            *self = Cursor { checkpoint: last + 1, attempts: 0, limit: None };
            return Decision::Checkpoint { to: last + 1 };
        };
        let failed = failed.clamp(first, last);
        self.attempts += 1;
        let too_many = cfg.max_retry_attempts.is_some_and(|m| self.attempts > m);
        let too_old = cfg.max_record_age.is_some_and(|m| oldest_age > m);
        if too_many || too_old {
            *self = Cursor { checkpoint: last + 1, attempts: 0, limit: None };
            let condition = if too_old { Condition::RecordAgeExceeded } else { Condition::RetryAttemptsExhausted };
            return Decision::Discard { from: failed, to: last + 1, condition };
        }
        self.checkpoint = failed;
        let remaining = (last + 1 - failed) as usize;
        self.limit = cfg.bisect_on_error.then(|| remaining.div_ceil(2).max(1));
        Decision::Retry { from: failed, limit: self.batch_limit(cfg) }
    }
}

/// Figures of the mapping, for the progress line and the summary.
#[derive(Debug, Clone, Default)]
pub struct EsmStats {
    pub invocations: u64,
    pub failed_invocations: u64,
    pub records: u64,
    pub events: u64,
    pub quarantined: BTreeMap<ReasonCode, u64>,
    pub duplicates: u64,
    pub discarded: u64,
    /// Per shard: checkpoint and iterator age (ms) of the last invocation.
    pub shards: BTreeMap<String, (u64, i64)>,
    /// Milliseconds from a record's arrival in the stream to its commit, per record.
    pub latencies_ms: Vec<u32>,
    /// What the committed events add up to (for the dashboard).
    pub digest: Digest,
}

fn inputs(stream: &str, shard_id: &str, records: &[StreamRecord]) -> Vec<InputRecord> {
    records
        .iter()
        .map(|r| InputRecord {
            stream: stream.to_string(),
            meta: RecordMeta {
                shard_id: shard_id.to_string(),
                sequence_number: r.sequence_number.clone(),
                sub_sequence_number: 0,
                partition_key: r.partition_key.clone(),
                arrival_ms: r.arrival_ms,
            },
            data: r.data.to_vec(),
            undecodable: false,
        })
        .collect()
}

/// What the mapping invokes: the handler in this process, or the real bootstrap under the local
/// Lambda Runtime API.
#[async_trait::async_trait]
pub trait Function: Send + Sync {
    /// Invokes the function with one batch. The report's `failed` and `error` drive the retry
    /// decision; its figures (events, quarantined, digest) the statistics, where it has them.
    async fn invoke(&self, records: Vec<InputRecord>) -> BatchReport;
}

#[async_trait::async_trait]
impl<S: ObjectStore> Function for Processor<S> {
    async fn invoke(&self, records: Vec<InputRecord>) -> BatchReport {
        self.process(records).await
    }
}

/// The real `processor` binary under [`LocalLambda`]: each batch becomes a Lambda Kinesis event,
/// the partial batch response names the failed records, and the batch's figures (events,
/// quarantined by reason, duplicates) come from the EMF summary the function logs for the
/// invocation. Orders, revenue and units per product are not in it: the digest stays empty.
///
/// Like Lambda with a parallelization factor of 1, each shard gets an execution environment of
/// its own (a Runtime API and a function process), so shards are processed concurrently and a
/// shard's batches one at a time.
pub struct RuntimeFunction {
    spec: FunctionSpec,
    environments: tokio::sync::Mutex<HashMap<String, Arc<LocalLambda>>>,
}

impl RuntimeFunction {
    pub fn new(spec: FunctionSpec) -> Self {
        RuntimeFunction { spec, environments: tokio::sync::Mutex::new(HashMap::new()) }
    }

    async fn environment(&self, shard_id: &str) -> std::io::Result<Arc<LocalLambda>> {
        let mut environments = self.environments.lock().await;
        if let Some(lambda) = environments.get(shard_id) {
            return Ok(lambda.clone());
        }
        let lambda = Arc::new(LocalLambda::start(self.spec.clone()).await?);
        environments.insert(shard_id.to_string(), lambda.clone());
        Ok(lambda)
    }
}

#[async_trait::async_trait]
impl Function for RuntimeFunction {
    async fn invoke(&self, records: Vec<InputRecord>) -> BatchReport {
        let mut report = BatchReport {
            stream: records.first().map(|r| r.stream.clone()).unwrap_or_default(),
            records: records.len(),
            ..BatchReport::default()
        };
        let payload = processor::kinesis::event_json(&records, &self.spec.region, "000000000000").to_string();
        let shard_id = records.first().map(|r| r.meta.shard_id.as_str()).unwrap_or_default();
        let answer = match self.environment(shard_id).await {
            Ok(lambda) => lambda.invoke_with_metrics(payload, METRICS_WAIT).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("cannot serve the local Lambda Runtime API: {e}")),
        };
        let (body, summary) = match answer {
            Ok(a) => a,
            Err(e) => {
                report.error = Some(e);
                return report;
            }
        };
        match partial_batch_response(&body) {
            Ok(failed) => report.failed = failed,
            Err(e) => report.error = Some(e),
        }
        if let Some(doc) = summary {
            let count = |k: &str| doc[k].as_u64().unwrap_or(0) as usize;
            report.events = count("Events");
            report.quarantined = count("Quarantined");
            report.duplicates = count("Duplicates");
            report.already_committed = count("AlreadyCommitted");
            if let Some(by_reason) = doc["QuarantinedByReasonCode"].as_object() {
                for (code, n) in by_reason {
                    if let Ok(code) = code.parse::<ReasonCode>() {
                        report.quarantined_by_reason.insert(code, n.as_u64().unwrap_or(0) as usize);
                    }
                }
            }
        } else {
            tracing::warn!("the function logged no EMF summary for the batch: its figures are not counted");
        }
        report
    }
}

/// The item identifiers of a partial batch response, as Lambda reads it: a null or empty
/// response, or a null or empty `batchItemFailures`, is a complete success; a failure whose
/// `itemIdentifier` is null or empty comes back as `""`, which fails the whole batch.
pub fn partial_batch_response(body: &[u8]) -> Result<Vec<String>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("the function's response is not JSON ({e}): the batch counts as failed"))?;
    let failures = match &v {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Object(o) => o.get("batchItemFailures").cloned().unwrap_or_default(),
        other => return Err(format!("the function's response is not a partial batch response: {other:.100}")),
    };
    match failures {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::Array(items) => Ok(items
            .iter()
            .map(|f| f.get("itemIdentifier").and_then(|i| i.as_str()).unwrap_or("").to_string())
            .collect()),
        other => Err(format!("batchItemFailures is not a list: {other:.100}")),
    }
}

/// The position to retry from after an invocation: none when it succeeded; the lowest failed
/// record; the batch's first record when the invocation failed or the response names a record
/// that is not in the batch (as Lambda, which then retries the whole batch).
pub fn lowest_failed(records: &[StreamRecord], report: &BatchReport) -> Option<u64> {
    let first = records.first()?.position;
    if report.error.is_some() {
        return Some(first);
    }
    let mut lowest: Option<u64> = None;
    for seq in &report.failed {
        let pos = records.iter().find(|r| &r.sequence_number == seq).map_or(first, |r| r.position);
        lowest = Some(lowest.map_or(pos, |l| l.min(pos)));
    }
    lowest
}

/// How long to wait, after the function's answer, for its EMF summary of the batch (logged
/// before the answer; this covers reading the pipe).
const METRICS_WAIT: Duration = Duration::from_secs(2);

/// Polls one shard until `stop` is set and the shard is drained.
pub async fn poll_shard<F: Function + ?Sized, Src: ShardSource>(
    source: Src,
    function: Arc<F>,
    cfg: EsmConfig,
    stats: Arc<Mutex<EsmStats>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let shard_id = source.shard_id().to_string();
    let mut cursor = Cursor::default();
    let idle = Duration::from_millis(20);
    loop {
        let available = source.end().await?.saturating_sub(cursor.checkpoint);
        let stopping = stop.load(Ordering::SeqCst);
        if available == 0 {
            if (stopping && source.caught_up()) || source.closed() {
                return Ok(());
            }
            tokio::time::sleep(idle).await;
            continue;
        }
        let limit = cursor.batch_limit(&cfg);
        let records = source.read(cursor.checkpoint, limit, cfg.max_payload_bytes);
        let (Some(first), Some(last)) = (records.first(), records.last()) else { continue };
        let full = records.len() >= limit;
        let waited = Duration::from_millis(now_ms().saturating_sub(first.arrival_ms).max(0) as u64);
        if !full && !stopping && waited < cfg.batching_window {
            tokio::time::sleep(idle.min(cfg.batching_window - waited)).await;
            continue;
        }
        let (first_pos, last_pos, oldest_arrival) = (first.position, last.position, first.arrival_ms);
        let mut report = function.invoke(inputs(source.stream_name(), &shard_id, &records)).await;
        let lowest_failed = lowest_failed(&records, &report);
        let age = Duration::from_millis(now_ms().saturating_sub(oldest_arrival).max(0) as u64);
        let decision = cursor.after(&cfg, first_pos, last_pos, lowest_failed, age);
        let now = now_ms();
        {
            let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
            st.invocations += 1;
            st.shards.insert(shard_id.clone(), (cursor.checkpoint, now - last.arrival_ms));
            match &decision {
                Decision::Checkpoint { .. } => {
                    st.records += records.len() as u64;
                    st.events += report.events as u64;
                    st.duplicates += report.duplicates as u64;
                    st.digest.merge(std::mem::take(&mut report.digest));
                    for (code, n) in &report.quarantined_by_reason {
                        *st.quarantined.entry(*code).or_default() += *n as u64;
                    }
                    st.latencies_ms
                        .extend(records.iter().map(|r| (now - r.arrival_ms).clamp(0, u32::MAX as i64) as u32));
                }
                Decision::Retry { .. } => st.failed_invocations += 1,
                Decision::Discard { from, to, .. } => {
                    st.failed_invocations += 1;
                    st.discarded += to - from;
                }
            }
        }
        match decision {
            Decision::Checkpoint { to } => source.trim(to),
            Decision::Retry { .. } => {
                tracing::warn!(
                    shard = shard_id,
                    error = report.error.as_deref().unwrap_or(""),
                    "invocation failed; retrying"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Decision::Discard { from, to, condition } => {
                let discarded: Vec<StreamRecord> = records.iter().filter(|r| r.position >= from).cloned().collect();
                let batch = inputs(source.stream_name(), &shard_id, &discarded);
                if let Some(note) =
                    OnFailureRecord::new(&batch, condition, report.error.as_deref(), !source.outlives_run())
                {
                    let sent = cfg.on_failure.send(&note).await.map_err(|e| std::io::Error::other(format!("{e:#}")))?;
                    tracing::error!(
                        shard = shard_id,
                        records = discarded.len(),
                        destination = sent,
                        "retries exhausted; batch sent to the on-failure destination"
                    );
                }
                source.trim(to);
            }
        }
    }
}

/// Polls every shard of the embedded stream, as Lambda does across resharding: a shard is
/// polled once all its parents are drained (records of a key stay in order), until `stop` is set
/// and every shard is drained.
pub async fn poll_stream<F: Function + ?Sized + 'static>(
    stream: Arc<EmbeddedStream>,
    function: Arc<F>,
    cfg: EsmConfig,
    stats: Arc<Mutex<EsmStats>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut running: HashMap<usize, tokio::task::JoinHandle<std::io::Result<()>>> = HashMap::new();
    let mut drained: Vec<usize> = Vec::new();
    loop {
        for shard in 0..stream.shard_count() {
            let known = running.contains_key(&shard) || drained.contains(&shard);
            if !known && stream.parents(shard).iter().all(|p| drained.contains(p)) {
                let source = EmbeddedShard::new(stream.clone(), shard);
                let task = poll_shard(source, function.clone(), cfg.clone(), stats.clone(), stop.clone());
                running.insert(shard, tokio::spawn(task));
            }
        }
        let finished: Vec<usize> = running.iter().filter(|(_, h)| h.is_finished()).map(|(s, _)| *s).collect();
        for shard in finished {
            if let Some(handle) = running.remove(&shard) {
                handle.await.map_err(std::io::Error::other)??;
                drained.push(shard);
            }
        }
        if running.is_empty() && drained.len() == stream.shard_count() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EsmConfig {
        EsmConfig {
            batch_size: 100,
            max_retry_attempts: Some(2),
            bisect_on_error: true,
            ..EsmConfig::new(Destination::Dir("unused".into()))
        }
    }

    #[test]
    fn success_checkpoints_after_the_batch() {
        let mut c = Cursor::default();
        assert_eq!(c.batch_limit(&cfg()), 100);
        assert_eq!(c.after(&cfg(), 0, 99, None, Duration::ZERO), Decision::Checkpoint { to: 100 });
        assert_eq!(c.checkpoint, 100);
    }

    #[test]
    fn a_partial_failure_retries_from_the_lowest_failed_record_bisected() {
        let mut c = Cursor { checkpoint: 100, ..Cursor::default() };
        // Records 100..=199, the response names 140 as the lowest failure.
        assert_eq!(c.after(&cfg(), 100, 199, Some(140), Duration::ZERO), Decision::Retry { from: 140, limit: 30 });
        assert_eq!((c.checkpoint, c.batch_limit(&cfg())), (140, 30));
        // The half fails again at its start: halve again.
        assert_eq!(c.after(&cfg(), 140, 169, Some(140), Duration::ZERO), Decision::Retry { from: 140, limit: 15 });
        // Third failure: over MaximumRetryAttempts (2), to the destination.
        assert_eq!(
            c.after(&cfg(), 140, 154, Some(140), Duration::ZERO),
            Decision::Discard { from: 140, to: 155, condition: Condition::RetryAttemptsExhausted }
        );
        assert_eq!((c.checkpoint, c.batch_limit(&cfg())), (155, 100));
    }

    #[test]
    fn without_bisect_the_whole_rest_is_retried_and_old_records_are_discarded() {
        let no_bisect = EsmConfig {
            bisect_on_error: false,
            max_retry_attempts: None,
            max_record_age: Some(Duration::from_secs(60)),
            ..cfg()
        };
        let mut c = Cursor::default();
        assert_eq!(
            c.after(&no_bisect, 0, 99, Some(0), Duration::from_secs(1)),
            Decision::Retry { from: 0, limit: 100 }
        );
        assert_eq!(
            c.after(&no_bisect, 0, 99, Some(50), Duration::from_secs(61)),
            Decision::Discard { from: 50, to: 100, condition: Condition::RecordAgeExceeded }
        );
        // A lowest failure outside the batch is clamped into it.
        let mut c = Cursor::default();
        assert_eq!(c.after(&no_bisect, 10, 19, Some(3), Duration::ZERO), Decision::Retry { from: 10, limit: 100 });
    }

    #[test]
    fn partial_batch_responses_are_read_as_lambda_reads_them() {
        for success in ["", " ", "null", "{}", r#"{"batchItemFailures":null}"#, r#"{"batchItemFailures":[]}"#] {
            assert_eq!(partial_batch_response(success.as_bytes()), Ok(vec![]), "{success:?}");
        }
        assert_eq!(
            partial_batch_response(br#"{"batchItemFailures":[{"itemIdentifier":"12"},{"itemIdentifier":null},{}]}"#),
            Ok(vec!["12".to_string(), String::new(), String::new()])
        );
        for failure in ["not json", "[1]", r#"{"batchItemFailures":"12"}"#] {
            assert!(partial_batch_response(failure.as_bytes()).is_err(), "{failure:?}");
        }
    }

    #[test]
    fn a_failure_outside_the_batch_fails_the_whole_batch() {
        let records: Vec<StreamRecord> = (10..20)
            .map(|p| StreamRecord {
                position: p,
                sequence_number: format!("{}", 1000 + p),
                partition_key: "k".into(),
                data: bytes::Bytes::new(),
                arrival_ms: 0,
            })
            .collect();
        let report = |failed: &[&str]| BatchReport {
            failed: failed.iter().map(|s| s.to_string()).collect(),
            ..BatchReport::default()
        };
        assert_eq!(lowest_failed(&records, &report(&[])), None);
        assert_eq!(lowest_failed(&records, &report(&["1015", "1013"])), Some(13));
        assert_eq!(lowest_failed(&records, &report(&["1015", "999"])), Some(10));
        assert_eq!(lowest_failed(&records, &report(&[""])), Some(10));
        let failed = BatchReport { error: Some("boom".into()), ..BatchReport::default() };
        assert_eq!(lowest_failed(&records, &failed), Some(10));
    }

    #[tokio::test]
    async fn each_shard_gets_an_execution_environment_of_its_own() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // A bootstrap that notes the Runtime API it was given and never answers.
        let bootstrap = dir.path().join("bootstrap");
        std::fs::write(
            &bootstrap,
            "#!/bin/sh\necho \"$AWS_LAMBDA_RUNTIME_API\" >> \"$LAMBDA_TASK_ROOT/apis\"\nexec sleep 30\n",
        )
        .unwrap();
        std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut spec = FunctionSpec::new(&bootstrap);
        spec.timeout = Duration::from_millis(300);
        let function = RuntimeFunction::new(spec);
        let record = |shard: &str| InputRecord {
            stream: "s".into(),
            meta: RecordMeta {
                shard_id: shard.into(),
                sequence_number: "1".into(),
                sub_sequence_number: 0,
                partition_key: "k".into(),
                arrival_ms: 0,
            },
            data: b"{}".to_vec(),
            undecodable: false,
        };
        for shard in ["shardId-0", "shardId-1", "shardId-0"] {
            let report = function.invoke(vec![record(shard)]).await;
            assert!(report.error.as_deref().is_some_and(|e| e.contains("timed out")), "{report:?}");
        }
        let apis = std::fs::read_to_string(dir.path().join("apis")).unwrap();
        let apis: Vec<&str> = apis.lines().collect();
        assert_eq!(apis.len(), 3, "a cold start per timed-out invocation");
        assert_ne!(apis[0], apis[1], "two shards, two environments");
        assert_eq!(apis[0], apis[2], "a shard keeps its environment's Runtime API");
    }

    #[test]
    fn the_payload_estimate_counts_base64_and_the_envelope() {
        let r = StreamRecord {
            position: 0,
            sequence_number: "1".into(),
            partition_key: "pk".into(),
            data: bytes::Bytes::from(vec![0u8; 300]),
            arrival_ms: 0,
        };
        assert_eq!(payload_size(&r), 400 + 2 + RECORD_ENVELOPE_BYTES);
    }
}

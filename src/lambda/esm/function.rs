//! What the mapping invokes ([`Function`]): the shared handler in this process, or the real
//! `processor` bootstrap under the local Lambda Runtime API ([`RuntimeFunction`]); and how Lambda
//! reads a partial batch response.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use model::ReasonCode;
use processor::kinesis::InputRecord;
use processor::{BatchReport, Processor};
use sink::store::ObjectStore;

use crate::lambda::runtime_api::{FunctionSpec, LocalLambda};
use crate::sources::StreamRecord;

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
            stream: records.first().map(|r| r.stream.to_string()).unwrap_or_default(),
            records: records.len(),
            ..BatchReport::default()
        };
        let payload = processor::kinesis::event_json(&records, &self.spec.region, "000000000000").to_string();
        let shard_id = records.first().map(|r| &*r.meta.shard_id).unwrap_or_default();
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
        if let Some(s) = summary {
            report.events = s.events as usize;
            report.quarantined = s.quarantined as usize;
            report.duplicates = s.duplicates as usize;
            report.already_committed = s.already_committed as usize;
            report.replayed = s.replayed as usize;
            report.quarantined_by_reason = s
                .quarantined_by_reason_code
                .iter()
                .filter_map(|(code, n)| Some((code.parse::<ReasonCode>().ok()?, *n as usize)))
                .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use sink::RecordMeta;

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
}

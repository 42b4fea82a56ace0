//! Lambda's on-failure records: what the event source mapping sends to its on-failure
//! destination when it gives up on a batch (the shard and the first and last sequence numbers,
//! not the records), and the destinations: a folder (the local mapping's default; from the
//! embedded stream the batch's records go inside, since that stream does not outlive the run) or
//! an SQS queue (Lambda's). `orderstream replay` reads them back ([`crate::replay`]).

use std::path::PathBuf;

use anyhow::Context;
use processor::kinesis::{stream_name, InputRecord};
use serde::{Deserialize, Serialize};

/// The batch an on-failure record describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisBatchInfo {
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    #[serde(default)]
    pub approximate_arrival_of_first_record: Option<String>,
    #[serde(default)]
    pub approximate_arrival_of_last_record: Option<String>,
    #[serde(default)]
    pub batch_size: Option<u64>,
    pub stream_arn: String,
}

/// Lambda's invocation record for a Kinesis batch it gave up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnFailureRecord {
    #[serde(rename = "requestContext", default)]
    pub request_context: serde_json::Value,
    #[serde(rename = "responseContext", default)]
    pub response_context: serde_json::Value,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(rename = "KinesisBatchInfo")]
    pub batch: KinesisBatchInfo,
    /// The batch's records as a Lambda Kinesis event: written only by the local event source
    /// mapping over the embedded stream, whose records do not outlive the run.
    #[serde(rename = "kinesisEvent", default, skip_serializing_if = "Option::is_none")]
    pub kinesis_event: Option<serde_json::Value>,
}

/// Why the mapping gave up on a batch (Lambda's `requestContext.condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
}

impl OnFailureRecord {
    /// The record the local event source mapping writes for `records` (in sequence order).
    pub fn new(records: &[InputRecord], condition: Condition, error: Option<&str>, with_records: bool) -> Option<Self> {
        let (first, last) = (records.first()?, records.last()?);
        let arn = format!("arn:aws:kinesis:local:000000000000:stream/{}", first.stream);
        let condition = match condition {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
        };
        Some(OnFailureRecord {
            request_context: serde_json::json!({ "condition": condition, "functionArn": "local" }),
            response_context: serde_json::json!({ "functionError": error.unwrap_or("") }),
            version: "1.0".into(),
            timestamp: model::format_millis(model::now_ms()),
            batch: KinesisBatchInfo {
                shard_id: first.meta.shard_id.to_string(),
                start_sequence_number: first.meta.sequence_number.clone(),
                end_sequence_number: last.meta.sequence_number.clone(),
                approximate_arrival_of_first_record: Some(model::format_millis(first.meta.arrival_ms)),
                approximate_arrival_of_last_record: Some(model::format_millis(last.meta.arrival_ms)),
                batch_size: Some(records.len() as u64),
                stream_arn: arn,
            },
            kinesis_event: with_records.then(|| processor::kinesis::event_json(records, "local", "000000000000")),
        })
    }

    /// Reads an on-failure record from a message body: Lambda's JSON, or the same inside an SNS
    /// notification (an SNS destination with an SQS subscription).
    pub fn parse(body: &str) -> anyhow::Result<Self> {
        let v: serde_json::Value = serde_json::from_str(body).context("not JSON")?;
        let v = match (v.get("Type").and_then(|t| t.as_str()), v.get("Message").and_then(|m| m.as_str())) {
            (Some("Notification"), Some(inner)) => serde_json::from_str(inner).context("SNS message is not JSON")?,
            _ => v,
        };
        serde_json::from_value(v).context("not a Lambda on-failure record of a Kinesis batch (no KinesisBatchInfo)")
    }

    pub fn stream(&self) -> String {
        stream_name(Some(&self.batch.stream_arn))
    }

    /// `stream shard first..last`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {}..{}",
            self.stream(),
            self.batch.shard_id,
            self.batch.start_sequence_number,
            self.batch.end_sequence_number
        )
    }
}

/// Where on-failure records go and come from.
#[derive(Clone)]
pub enum Destination {
    /// A folder: a JSON file per batch.
    Dir(PathBuf),
    /// An SQS queue, as Lambda's on-failure destination.
    Sqs { client: aws_sdk_sqs::Client, queue_url: String },
}

/// The local folder of the main job's on-failure destination.
pub fn local_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("_on_failure")
}

impl Destination {
    /// The `orderstream replay` flag that reads this destination back.
    pub fn replay_flag(&self) -> String {
        match self {
            Destination::Dir(dir) => format!("--on-failure-dir {}", dir.display()),
            Destination::Sqs { queue_url, .. } => format!("--queue-url {queue_url}"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Destination::Dir(d) => d.display().to_string(),
            Destination::Sqs { queue_url, .. } => queue_url.clone(),
        }
    }

    /// Sends one record (the local event source mapping's on-failure destination).
    pub async fn send(&self, record: &OnFailureRecord) -> anyhow::Result<String> {
        let body = serde_json::to_string_pretty(record)?;
        match self {
            Destination::Dir(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                let b = &record.batch;
                let file = dir.join(format!("{}-{}-{}.json", record.stream(), b.shard_id, b.start_sequence_number));
                std::fs::write(&file, body).with_context(|| format!("cannot write {}", file.display()))?;
                Ok(file.display().to_string())
            }
            Destination::Sqs { client, queue_url } => {
                client
                    .send_message()
                    .queue_url(queue_url)
                    .message_body(body)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!(awsenv::one_line(aws_sdk_sqs::error::DisplayErrorContext(e))))
                    .with_context(|| format!("SendMessage to {queue_url}"))?;
                Ok(queue_url.clone())
            }
        }
    }
}

/// One on-failure record waiting to be replayed, and how to acknowledge it.
pub struct Pending {
    pub record: OnFailureRecord,
    ack: Ack,
}

enum Ack {
    File(PathBuf),
    Message(String),
}

const SQS_VISIBILITY_TIMEOUT_S: i32 = 900;

/// Every on-failure record waiting in a folder or a queue (a queue's are hidden from other
/// readers for 15 minutes), or why one cannot be read.
pub async fn pending(source: &Destination) -> anyhow::Result<Vec<Result<Pending, String>>> {
    match source {
        Destination::Dir(dir) => {
            let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
            };
            files.sort();
            Ok(files
                .into_iter()
                .map(|f| {
                    let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
                    let record = OnFailureRecord::parse(&text).map_err(|e| format!("{}: {e:#}", f.display()))?;
                    Ok(Pending { record, ack: Ack::File(f) })
                })
                .collect())
        }
        Destination::Sqs { client, queue_url } => {
            let mut out = Vec::new();
            loop {
                let got = client
                    .receive_message()
                    .queue_url(queue_url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .visibility_timeout(SQS_VISIBILITY_TIMEOUT_S)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!(awsenv::one_line(aws_sdk_sqs::error::DisplayErrorContext(e))))
                    .with_context(|| format!("ReceiveMessage from {queue_url}"))?;
                let messages = got.messages();
                if messages.is_empty() {
                    return Ok(out);
                }
                for m in messages {
                    let id = m.message_id().unwrap_or("?");
                    let parsed = OnFailureRecord::parse(m.body().unwrap_or_default())
                        .map_err(|e| format!("message {id}: {e:#} (left in the queue)"));
                    out.push(parsed.map(|record| Pending {
                        record,
                        ack: Ack::Message(m.receipt_handle().unwrap_or_default().to_string()),
                    }));
                }
            }
        }
    }
}

/// Marks a record done: a file moves to the folder's `replayed/`, a message is deleted.
pub async fn acknowledge(source: &Destination, p: &Pending) -> anyhow::Result<()> {
    match (source, &p.ack) {
        (Destination::Dir(dir), Ack::File(f)) => {
            let done = dir.join("replayed");
            std::fs::create_dir_all(&done).with_context(|| format!("cannot create {}", done.display()))?;
            let to = done.join(f.file_name().unwrap_or_default());
            std::fs::rename(f, &to).with_context(|| format!("cannot move {} to {}", f.display(), to.display()))
        }
        (Destination::Sqs { client, queue_url }, Ack::Message(handle)) => client
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!(awsenv::one_line(aws_sdk_sqs::error::DisplayErrorContext(e))))
            .with_context(|| format!("DeleteMessage from {queue_url}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_invocation_record_and_an_sns_wrapped_one_parse() {
        let lambda = r#"{"requestContext":{"requestId":"c9b8","functionArn":"arn:aws:lambda:us-east-2:123456789012:function:f",
            "condition":"RetryAttemptsExhausted","approximateInvokeCount":1},
            "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
            "version":"1.0","timestamp":"2019-11-14T00:38:06.021Z",
            "KinesisBatchInfo":{"shardId":"shardId-000000000001","startSequenceNumber":"4960118965842235937883629852182763",
            "endSequenceNumber":"4960118965842235937883629852290237","approximateArrivalOfFirstRecord":"2019-11-14T00:38:04.835Z",
            "approximateArrivalOfLastRecord":"2019-11-14T00:38:05.580Z","batchSize":500,
            "streamArn":"arn:aws:kinesis:us-east-2:123456789012:stream/mystream"}}"#;
        let r = OnFailureRecord::parse(lambda).unwrap();
        assert_eq!(
            (r.stream().as_str(), r.batch.shard_id.as_str(), r.batch.batch_size),
            ("mystream", "shardId-000000000001", Some(500))
        );
        assert!(r.kinesis_event.is_none());
        let sns = serde_json::json!({"Type": "Notification", "Message": lambda}).to_string();
        assert_eq!(OnFailureRecord::parse(&sns).unwrap(), r);
        assert!(OnFailureRecord::parse(r#"{"requestContext":{}}"#).is_err());
        assert!(OnFailureRecord::parse("nope").is_err());
    }

    #[test]
    fn a_local_record_carries_the_batch_and_round_trips() {
        let records = crate::input::sample_records("orders", "shardId-000000000002").unwrap();
        let r = OnFailureRecord::new(&records[3..9], Condition::RecordAgeExceeded, Some("boom"), true).unwrap();
        assert_eq!((r.batch.start_sequence_number.as_str(), r.batch.end_sequence_number.as_str()), ("4", "9"));
        assert_eq!(r.request_context["condition"], "RecordAgeExceeded");
        let back = OnFailureRecord::parse(&serde_json::to_string(&r).unwrap()).unwrap();
        let event = serde_json::to_vec(back.kinesis_event.as_ref().unwrap()).unwrap();
        assert_eq!(crate::input::event_records(&event).unwrap(), records[3..9].to_vec());
        assert!(OnFailureRecord::new(&[], Condition::RetryAttemptsExhausted, None, false).is_none());
    }
}

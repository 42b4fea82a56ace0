//! CloudWatch Embedded Metric Format: one JSON line per metric set on standard output, which
//! Lambda's log pipeline turns into CloudWatch metrics without an API call.
//!
//! Namespace `Orderstream`, dimension `Stream`: `RecordsIn`, `Events`, `Quarantined`,
//! `Duplicates`, `AlreadyCommitted`, `Replayed`, `FailedRecords`, `Orders`, `LostReplies`,
//! `InterleavedBatches` (counts) and `BatchLatency` (milliseconds); with `Stream`
//! and `ReasonCode`: `QuarantinedByReason`; with `Stream` and `Currency`: `RevenueMinor` (the sum
//! of order line totals, in minor units).

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::BatchReport;

pub const NAMESPACE: &str = "Orderstream";

/// The metrics of the summary document (dimension `Stream`), with their units: the names the
/// Terraform dashboard and alarms use (`terraform/modules/orderstream/cloudwatch.tf`, checked
/// by `tests/terraform.rs`).
pub const SUMMARY_METRICS: [(&str, &str); 11] = [
    ("RecordsIn", "Count"),
    ("Events", "Count"),
    ("Quarantined", "Count"),
    ("Duplicates", "Count"),
    ("AlreadyCommitted", "Count"),
    ("Replayed", "Count"),
    ("FailedRecords", "Count"),
    ("Orders", "Count"),
    ("LostReplies", "Count"),
    ("InterleavedBatches", "Count"),
    ("BatchLatency", "Milliseconds"),
];

/// The metrics of the per-reason and per-currency documents.
pub const DIMENSIONED_METRICS: [(&str, &str, &str); 2] =
    [("QuarantinedByReason", "ReasonCode", "Count"), ("RevenueMinor", "Currency", "None")];

/// The batch summary: the first EMF document of an invocation, written last. What the function
/// writes and what the local Runtime API reads back, one type on both sides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchSummary {
    pub stream: String,
    pub request_id: String,
    pub records_in: u64,
    pub events: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    pub already_committed: u64,
    pub replayed: u64,
    pub failed_records: u64,
    pub orders: u64,
    pub lost_replies: u64,
    pub interleaved_batches: u64,
    pub batch_latency: u64,
    /// Quarantined records by reason code (a plain property, not a metric).
    pub quarantined_by_reason_code: BTreeMap<String, u64>,
}

impl BatchSummary {
    pub fn of(report: &BatchReport, request_id: &str) -> Self {
        BatchSummary {
            stream: report.stream.clone(),
            request_id: request_id.to_string(),
            records_in: report.records as u64,
            events: report.events as u64,
            quarantined: report.quarantined as u64,
            duplicates: report.duplicates as u64,
            already_committed: report.already_committed as u64,
            replayed: report.replayed as u64,
            failed_records: report.failed.len() as u64,
            orders: report.digest.orders(),
            lost_replies: report.lost_replies as u64,
            interleaved_batches: u64::from(report.interleaved),
            batch_latency: report.elapsed_ms,
            quarantined_by_reason_code: report
                .quarantined_by_reason
                .iter()
                .map(|(code, n)| (code.as_str().to_string(), *n as u64))
                .collect(),
        }
    }

    /// Reads a log line: the summary if it is one (an EMF document naming a request id).
    pub fn from_log_line(line: &str) -> Option<Self> {
        if !line.starts_with('{') || !line.contains("\"_aws\"") || !line.contains("\"RequestId\"") {
            return None;
        }
        serde_json::from_str(line).ok()
    }
}

fn document(timestamp_ms: i64, dimensions: &[&str], metrics: &[(&str, &str)], values: Value) -> Value {
    let mut doc = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": metrics.iter().map(|(name, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        },
    });
    if let (Some(doc), Value::Object(values)) = (doc.as_object_mut(), values) {
        doc.extend(values);
    }
    doc
}

/// The EMF documents of one batch; none for an empty batch (it has no stream to name). The
/// first is the [`BatchSummary`], which also carries, as plain properties, the invocation's
/// `RequestId` and `QuarantinedByReasonCode`, so that one log line tells the whole batch.
pub fn documents(report: &BatchReport, timestamp_ms: i64, request_id: &str) -> Vec<Value> {
    if report.records == 0 {
        return Vec::new();
    }
    let stream = &report.stream;
    let summary = serde_json::to_value(BatchSummary::of(report, request_id)).unwrap_or_default();
    let mut docs = vec![document(timestamp_ms, &["Stream"], &SUMMARY_METRICS, summary)];
    let [(by_reason, reason_dim, reason_unit), (revenue, currency_dim, revenue_unit)] = DIMENSIONED_METRICS;
    for (code, n) in &report.quarantined_by_reason {
        docs.push(document(
            timestamp_ms,
            &["Stream", reason_dim],
            &[(by_reason, reason_unit)],
            json!({"Stream": stream, reason_dim: code.as_str(), by_reason: n}),
        ));
    }
    for (currency, amount) in &report.digest.revenue_by_currency() {
        docs.push(document(
            timestamp_ms,
            &["Stream", currency_dim],
            &[(revenue, revenue_unit)],
            json!({"Stream": stream, currency_dim: currency, revenue: *amount as f64}),
        ));
    }
    docs
}

/// Writes the batch's documents to standard output, one line each, the first of
/// [`documents`] last. A failed write loses metrics, never the batch.
pub fn emit(report: &BatchReport, request_id: &str) {
    let docs = documents(report, model::now_ms(), request_id);
    // The summary document last: a log reader that has seen it has seen the batch's lines.
    write_lines(docs.iter().skip(1).chain(docs.first()));
}

/// Writes EMF documents to standard output, one line each, and flushes: how every function of
/// the project (processor, publisher, scaler) hands CloudWatch its metrics. A failed write loses
/// metrics, nothing else.
pub fn write_lines<'a>(docs: impl IntoIterator<Item = &'a Value>) {
    let mut out = std::io::stdout().lock();
    for doc in docs {
        let _ = writeln!(out, "{doc}");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Digest, Minute};
    use model::ReasonCode;

    #[test]
    fn a_batch_becomes_emf_documents() {
        let report = BatchReport {
            stream: "orders".into(),
            records: 10,
            events: 7,
            quarantined: 2,
            quarantined_by_reason: [(ReasonCode::InvalidJson, 2)].into(),
            duplicates: 1,
            digest: Digest {
                minutes: [
                    (0, Minute { orders: 2, revenue_minor: [("EUR".to_string(), 1000i128)].into() }),
                    (60_000, Minute { orders: 1, revenue_minor: [("EUR".into(), 500), ("JPY".into(), 99)].into() }),
                ]
                .into(),
                ..Digest::default()
            },
            elapsed_ms: 42,
            ..Default::default()
        };
        let docs = documents(&report, 1_795_435_200_000, "req-1");
        assert_eq!(docs.len(), 4);
        let main = &docs[0];
        assert_eq!(main["_aws"]["Timestamp"], 1_795_435_200_000i64);
        let spec = &main["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], "Orderstream");
        assert_eq!(spec["Dimensions"], json!([["Stream"]]));
        // Every metric named in the spec has a value at the top level.
        for m in spec["Metrics"].as_array().unwrap() {
            assert!(main[m["Name"].as_str().unwrap()].is_number(), "{m}");
        }
        assert_eq!(
            (main["RecordsIn"].as_u64(), main["Orders"].as_u64(), main["BatchLatency"].as_u64()),
            (Some(10), Some(3), Some(42))
        );
        assert_eq!(
            (main["RequestId"].as_str(), &main["QuarantinedByReasonCode"]),
            (Some("req-1"), &json!({"invalid_json": 2}))
        );
        assert_eq!(docs[1]["ReasonCode"], "invalid_json");
        assert_eq!(docs[1]["QuarantinedByReason"], 2);
        assert_eq!((docs[2]["Currency"].as_str(), docs[2]["RevenueMinor"].as_f64()), (Some("EUR"), Some(1500.0)));
        assert_eq!(docs[3]["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Stream", "Currency"]]));
        assert!(documents(&BatchReport::default(), 0, "r").is_empty(), "an empty batch names no stream");
        // The summary line reads back as the same type.
        let back = BatchSummary::from_log_line(&main.to_string()).unwrap();
        assert_eq!(back, BatchSummary::of(&report, "req-1"));
        assert_eq!(BatchSummary::from_log_line(&docs[1].to_string()), None, "not a summary");
    }
}

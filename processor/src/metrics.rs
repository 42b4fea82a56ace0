//! CloudWatch Embedded Metric Format: one JSON line per metric set on standard output, which
//! Lambda's log pipeline turns into CloudWatch metrics without an API call.
//!
//! Namespace `Orderstream`, dimension `Stream`: `RecordsIn`, `Events`, `Quarantined`,
//! `Duplicates`, `AlreadyCommitted`, `Replayed`, `FailedRecords`, `Orders`, `MissingFiles`,
//! `LostReplies`, `InterleavedBatches` (counts) and `BatchLatency` (milliseconds); with `Stream`
//! and `ReasonCode`: `QuarantinedByReason`; with `Stream` and `Currency`: `RevenueMinor` (the sum
//! of order line totals, in minor units).

use std::io::Write;

use serde_json::{json, Value};

use crate::BatchReport;

pub const NAMESPACE: &str = "Orderstream";

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
/// first also carries, as plain properties, the invocation's `RequestId` and
/// `QuarantinedByReasonCode` (code to count), so that one log line tells the whole batch.
pub fn documents(report: &BatchReport, timestamp_ms: i64, request_id: &str) -> Vec<Value> {
    if report.records == 0 {
        return Vec::new();
    }
    let stream = &report.stream;
    let mut docs = vec![document(
        timestamp_ms,
        &["Stream"],
        &[
            ("RecordsIn", "Count"),
            ("Events", "Count"),
            ("Quarantined", "Count"),
            ("Duplicates", "Count"),
            ("AlreadyCommitted", "Count"),
            ("Replayed", "Count"),
            ("FailedRecords", "Count"),
            ("Orders", "Count"),
            ("MissingFiles", "Count"),
            ("LostReplies", "Count"),
            ("InterleavedBatches", "Count"),
            ("BatchLatency", "Milliseconds"),
        ],
        json!({
            "Stream": stream,
            "RecordsIn": report.records,
            "Events": report.events,
            "Quarantined": report.quarantined,
            "Duplicates": report.duplicates,
            "AlreadyCommitted": report.already_committed,
            "Replayed": report.replayed,
            "FailedRecords": report.failed.len(),
            "Orders": report.digest.orders(),
            "MissingFiles": report.missing_files,
            "LostReplies": report.lost_replies,
            "InterleavedBatches": u8::from(report.interleaved),
            "BatchLatency": report.elapsed_ms,
            "RequestId": request_id,
            "QuarantinedByReasonCode": report.quarantined_by_reason.iter()
                .map(|(code, n)| (code.as_str().to_string(), json!(n)))
                .collect::<serde_json::Map<_, _>>(),
        }),
    )];
    for (code, n) in &report.quarantined_by_reason {
        docs.push(document(
            timestamp_ms,
            &["Stream", "ReasonCode"],
            &[("QuarantinedByReason", "Count")],
            json!({"Stream": stream, "ReasonCode": code.as_str(), "QuarantinedByReason": n}),
        ));
    }
    for (currency, revenue) in &report.digest.revenue_by_currency() {
        docs.push(document(
            timestamp_ms,
            &["Stream", "Currency"],
            &[("RevenueMinor", "None")],
            json!({"Stream": stream, "Currency": currency, "RevenueMinor": *revenue as f64}),
        ));
    }
    docs
}

/// Writes the batch's documents to standard output, one line each, the first of
/// [`documents`] last. A failed write loses metrics, never the batch.
pub fn emit(report: &BatchReport, request_id: &str) {
    let docs = documents(report, model::now_ms(), request_id);
    let mut out = std::io::stdout().lock();
    // The summary document last: a log reader that has seen it has seen the batch's lines.
    for doc in docs.iter().skip(1).chain(docs.first()) {
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
    }
}

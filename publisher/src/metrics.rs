//! The publisher's CloudWatch Embedded Metric Format line, one per round: namespace
//! `Orderstream` (the processor's), dimension `PublisherGroup`.

use serde_json::{json, Value};

use crate::RoundReport;

/// The metrics of a round's line, with their units: the names the Terraform alarms use
/// (`terraform/modules/orderstream/cloudwatch.tf`, checked by `tests/terraform.rs`).
pub const ROUND_METRICS: [(&str, &str); 9] = [
    ("CommitsPublished", "Count"),
    ("FilesPublished", "Count"),
    ("BytesPublished", "Bytes"),
    ("MissingFiles", "Count"),
    ("ShardErrors", "Count"),
    ("RoundLatency", "Milliseconds"),
    // The longest a commit of the round waited to be published.
    ("PublishLag", "Milliseconds"),
    // The age of the oldest commit still unpublished after the round (0: none).
    ("OldestUnpublishedAge", "Milliseconds"),
    ("LostReplies", "Count"),
];

pub const DIMENSION: &str = "PublisherGroup";

/// The EMF document of one round.
pub fn document(report: &RoundReport, group: u32, now_ms: i64) -> Value {
    let values = [
        report.commits(),
        report.outputs.len() as u64,
        report.bytes(),
        report.missing_files,
        report.shard_errors.len() as u64,
        report.elapsed_ms,
        report.lag_ms() as u64,
        report.oldest_left_ms.map_or(0, |t| (now_ms - t).max(0) as u64),
        report.lost_replies,
    ];
    let mut doc = json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": processor::metrics::NAMESPACE,
                "Dimensions": [[DIMENSION]],
                "Metrics": ROUND_METRICS.iter().map(|(name, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        },
        DIMENSION: group.to_string(),
        "Round": report.round,
        "RolledForward": report.rolled_forward,
    });
    if let Some(map) = doc.as_object_mut() {
        for ((name, _), v) in ROUND_METRICS.iter().zip(values) {
            map.insert(name.to_string(), json!(v));
        }
    }
    doc
}

/// Writes the round's line to standard output (a failed write loses metrics, nothing else).
pub fn emit(report: &RoundReport, group: u32) {
    processor::metrics::write_lines([&document(report, group, model::now_ms())]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_becomes_one_document() {
        let report = RoundReport { round: Some(3), elapsed_ms: 40, oldest_left_ms: Some(1_000), ..Default::default() };
        let doc = document(&report, 2, 6_000);
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Dimensions"], json!([["PublisherGroup"]]));
        for m in spec["Metrics"].as_array().unwrap() {
            assert!(doc[m["Name"].as_str().unwrap()].is_number(), "{m}");
        }
        assert_eq!((doc["PublisherGroup"].as_str(), doc["Round"].as_u64()), (Some("2"), Some(3)));
        assert_eq!(doc["OldestUnpublishedAge"], 5_000);
        assert_eq!(doc["RoundLatency"], 40);
    }
}

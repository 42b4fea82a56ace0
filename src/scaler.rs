//! The scaler: one step of demand-based and scheduled scaling of a provisioned stream. It reads
//! the stream's count (`DescribeStreamSummary`) and its last minutes of metrics (CloudWatch
//! `GetMetricData`), asks the pure rule ([`crate::plan::scale`]) and makes the
//! `UpdateShardCount` call. The `scaler` Lambda (src/bin/scaler.rs) runs a step a minute;
//! `orderstream scale` runs one from the command line. Its settings are flags and the same
//! environment variables (`STREAM_NAME`, `SCALER_*`), so both read them one way.

use std::path::PathBuf;

use anyhow::Context;
use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::types::{ScalingType, StreamMode, StreamStatus};

use crate::plan::scale::{self, Decision, Minute, Rules};
use crate::plan::Action;
use crate::stream_metrics;

/// The scaler's settings (flags of `orderstream scale`, environment of the Lambda).
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// The provisioned stream to scale.
    #[arg(long = "stream", env = "STREAM_NAME")]
    pub stream: String,
    /// Never fewer shards than this.
    #[arg(long, env = "SCALER_MIN_SHARDS", default_value_t = 1)]
    pub min_shards: u32,
    /// Never more shards than this.
    #[arg(long, env = "SCALER_MAX_SHARDS", default_value_t = 500)]
    pub max_shards: u32,
    /// Capacity over the busiest recent minute (1.2: 20% spare).
    #[arg(long, env = "SCALER_HEADROOM", default_value_t = 1.2)]
    pub headroom: f64,
    /// Processors further behind than this many seconds get more shards.
    #[arg(long, env = "SCALER_MAX_ITERATOR_AGE_SECONDS", default_value_t = 60)]
    pub max_iterator_age_seconds: u32,
    /// Minutes that must all fit a smaller count before the stream is scaled in.
    #[arg(long, env = "SCALER_SCALE_IN_MINUTES", default_value_t = 30)]
    pub scale_in_minutes: u32,
    /// The planned schedule: the JSON `orderstream plan --schedule` writes (a list of
    /// `{"at": RFC 3339, "target_shard_count": N}`).
    #[arg(long, env = "SCALER_SCHEDULE", value_parser = read_schedule, default_value = "[]", hide_default_value = true)]
    pub schedule: Schedule,
}

/// The planned `UpdateShardCount` calls.
#[derive(Debug, Clone, Default)]
pub struct Schedule(pub Vec<Action>);

/// The schedule from its JSON text, or from a file holding it.
fn read_schedule(value: &str) -> Result<Schedule, String> {
    let text = if value.trim_start().starts_with('[') {
        value.to_string()
    } else {
        let path = PathBuf::from(value);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read the schedule {}: {e}", path.display()))?
    };
    parse_schedule(&text).map(Schedule)
}

/// The schedule's JSON: `[{"at": "2026-12-07T19:45:00Z", "target_shard_count": 8}, ...]`
/// (other fields, such as `scaling_type`, are ignored).
pub fn parse_schedule(text: &str) -> Result<Vec<Action>, String> {
    #[derive(serde::Deserialize)]
    struct Entry {
        at: String,
        target_shard_count: u32,
    }
    let entries: Vec<Entry> = serde_json::from_str(text)
        .map_err(|e| format!("the schedule is not a list of {{at, target_shard_count}}: {e}"))?;
    entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let at =
                model::parse_rfc3339(&e.at).map_err(|err| format!("schedule entry {}: {:?}: {err}", i + 1, e.at))?;
            if e.target_shard_count == 0 {
                return Err(format!("schedule entry {}: a stream has at least 1 shard", i + 1));
            }
            Ok(Action { at_ms: at.millis, target_shard_count: e.target_shard_count })
        })
        .collect()
}

impl Settings {
    pub fn rules(&self) -> Rules {
        Rules {
            min_shards: self.min_shards,
            max_shards: self.max_shards,
            headroom: self.headroom,
            scale_in_minutes: self.scale_in_minutes as usize,
            max_iterator_age_ms: f64::from(self.max_iterator_age_seconds) * 1000.0,
            ..Rules::default()
        }
    }
}

/// What a step did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub stream: String,
    pub decision: Decision,
    /// Whether the `UpdateShardCount` call was made.
    pub called: bool,
}

/// The metrics of a step's CloudWatch Embedded Metric Format line (namespace `Orderstream`,
/// dimension `Stream`, as the processor's): the names the Terraform dashboard draws
/// (`terraform/modules/orderstream/cloudwatch.tf`, checked by `tests/terraform.rs`).
pub const STEP_METRICS: [&str; 5] = ["OpenShards", "ShardsNeeded", "ShardsScheduled", "ShardsTarget", "ScalingCalls"];

impl Step {
    /// The step's EMF document: the open shards against what the metrics need and what the
    /// schedule asks for (0: no schedule), the target, and whether a call was made.
    pub fn emf(&self, now_ms: i64) -> serde_json::Value {
        let d = &self.decision;
        let values = [d.current, d.reactive, d.scheduled.unwrap_or(0), d.target, u32::from(self.called)];
        let mut doc = serde_json::json!({
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": processor::metrics::NAMESPACE,
                    "Dimensions": [["Stream"]],
                    "Metrics": STEP_METRICS.iter().map(|name| serde_json::json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
                }],
            },
            "Stream": self.stream,
            "Reasons": d.reasons,
        });
        if let Some(map) = doc.as_object_mut() {
            for (name, v) in STEP_METRICS.iter().zip(values) {
                map.insert(name.to_string(), serde_json::json!(v));
            }
        }
        doc
    }
}

pub struct Scaler {
    kinesis: aws_sdk_kinesis::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    settings: Settings,
    rules: Rules,
}

/// The CloudWatch metrics the rule reads, with their statistic.
const METRICS: [stream_metrics::Query; 4] = [
    ("IncomingRecords", "Sum"),
    ("IncomingBytes", "Sum"),
    ("WriteProvisionedThroughputExceeded", "Sum"),
    ("GetRecords.IteratorAgeMilliseconds", "Maximum"),
];

impl Scaler {
    /// Clients from the SDK's environment; the settings checked.
    pub async fn from_env(settings: Settings) -> anyhow::Result<Scaler> {
        let rules = settings.rules();
        rules.check().map_err(anyhow::Error::msg)?;
        let shared = awsenv::load().await?;
        Ok(Scaler {
            kinesis: aws_sdk_kinesis::Client::new(&shared),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&shared),
            settings,
            rules,
        })
    }

    /// One step at `now_ms`: read, decide, and call unless `dry_run`.
    pub async fn step(&self, now_ms: i64, dry_run: bool) -> anyhow::Result<Step> {
        let stream = &self.settings.stream;
        let summary = self.kinesis.describe_stream_summary().stream_name(stream).send().await.map_err(|e| {
            anyhow::anyhow!("cannot describe the stream {stream}: {}", awsenv::one_line(DisplayErrorContext(e)))
        })?;
        let summary = summary.stream_description_summary().context("DescribeStreamSummary answered no summary")?;
        if summary.stream_mode_details().map(|m| m.stream_mode()) == Some(&StreamMode::OnDemand) {
            anyhow::bail!("the stream {stream} is on-demand: Kinesis scales it, there is nothing to do");
        }
        let current = summary.open_shard_count().max(0) as u32;
        let minutes = self.metrics(now_ms).await?;
        let decision = scale::decide(current, &minutes, &self.settings.schedule.0, now_ms, &self.rules);
        let mut called = false;
        if let Some(target) = decision.call() {
            if summary.stream_status() != &StreamStatus::Active {
                tracing::info!(stream, status = %summary.stream_status(), target, "the stream is not ACTIVE: the call waits for the next step");
            } else if !dry_run {
                self.kinesis
                    .update_shard_count()
                    .stream_name(stream)
                    .target_shard_count(target as i32)
                    .scaling_type(ScalingType::UniformScaling)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "UpdateShardCount of {stream} to {target} failed (Kinesis takes 10 calls a stream in 24 hours): {}",
                            awsenv::one_line(DisplayErrorContext(e))
                        )
                    })?;
                called = true;
            }
        }
        Ok(Step { stream: stream.clone(), decision, called })
    }

    /// The stream's whole minutes of the rule's window before `now_ms`.
    async fn metrics(&self, now_ms: i64) -> anyhow::Result<Vec<Minute>> {
        let end = now_ms.div_euclid(60_000) * 60_000;
        let start = end - self.rules.window_minutes() as i64 * 60_000;
        let minutes = stream_metrics::per_minute(&self.cloudwatch, &self.settings.stream, &METRICS, start, end).await?;
        Ok(minutes
            .into_iter()
            .map(|(start_ms, v)| Minute {
                start_ms,
                records: v[0],
                bytes: v[1],
                throttled: v[2],
                iterator_age_ms: v[3],
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_reads_what_plan_writes_and_names_bad_entries() {
        let text = r#"[{"at": "2026-12-07T19:45:00Z", "target_shard_count": 8, "scaling_type": "UNIFORM_SCALING"}]"#;
        let s = parse_schedule(text).unwrap();
        assert_eq!(
            s,
            vec![Action { at_ms: model::parse_rfc3339("2026-12-07T19:45:00Z").unwrap().millis, target_shard_count: 8 }]
        );
        assert!(parse_schedule("[]").unwrap().is_empty());
        let e = parse_schedule(r#"[{"at": "tomorrow", "target_shard_count": 8}]"#).unwrap_err();
        assert!(e.contains("schedule entry 1") && e.contains("tomorrow"), "{e}");
        let e = parse_schedule(r#"[{"at": "2026-12-07T19:45:00Z", "target_shard_count": 0}]"#).unwrap_err();
        assert!(e.contains("at least 1 shard"), "{e}");
        assert!(parse_schedule(r#"{"at": 1}"#).unwrap_err().contains("not a list"));
        assert!(read_schedule("/no/such/schedule.json").unwrap_err().contains("cannot read the schedule"));
    }

    #[test]
    fn a_step_becomes_one_emf_document() {
        let decision =
            Decision { current: 4, reactive: 6, scheduled: None, wanted: 6, target: 6, reasons: vec!["load".into()] };
        let doc = Step { stream: "orders".into(), decision, called: true }.emf(1_000);
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            (spec["Namespace"].as_str(), &spec["Dimensions"]),
            (Some("Orderstream"), &serde_json::json!([["Stream"]]))
        );
        for m in spec["Metrics"].as_array().unwrap() {
            assert!(doc[m["Name"].as_str().unwrap()].is_number(), "{m}");
        }
        assert_eq!(
            (&doc["Stream"], &doc["OpenShards"], &doc["ShardsNeeded"]),
            (&serde_json::json!("orders"), &serde_json::json!(4), &serde_json::json!(6))
        );
        assert_eq!((&doc["ShardsScheduled"], &doc["ScalingCalls"]), (&serde_json::json!(0), &serde_json::json!(1)));
    }
}

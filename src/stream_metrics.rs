//! A Kinesis stream's CloudWatch metrics per minute (`GetMetricData`, namespace `AWS/Kinesis`,
//! dimension `StreamName`): what the scaler reads of the last minutes and the planner of the last
//! days.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::error::DisplayErrorContext;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};

/// A metric and its statistic (`Sum`, `Maximum`...).
pub type Query<'a> = (&'a str, &'a str);

/// Each minute in `[start_ms, end_ms)` that has a datapoint of any of the `queries`, with each
/// query's value (`None` where that one has none).
pub async fn per_minute(
    client: &aws_sdk_cloudwatch::Client,
    stream: &str,
    queries: &[Query<'_>],
    start_ms: i64,
    end_ms: i64,
) -> anyhow::Result<BTreeMap<i64, Vec<Option<f64>>>> {
    let queries: Vec<MetricDataQuery> = queries
        .iter()
        .enumerate()
        .map(|(i, (name, stat))| {
            let metric = Metric::builder()
                .namespace("AWS/Kinesis")
                .metric_name(*name)
                .dimensions(Dimension::builder().name("StreamName").value(stream).build())
                .build();
            MetricDataQuery::builder()
                .id(format!("m{i}"))
                .metric_stat(MetricStat::builder().metric(metric).period(60).stat(*stat).build())
                .build()
        })
        .collect();
    let n = queries.len();
    let mut minutes: BTreeMap<i64, Vec<Option<f64>>> = BTreeMap::new();
    let mut pages = client
        .get_metric_data()
        .set_metric_data_queries(Some(queries))
        .start_time(DateTime::from_millis(start_ms))
        .end_time(DateTime::from_millis(end_ms))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow::anyhow!("cannot read the metrics of {stream}: {}", awsenv::one_line(DisplayErrorContext(e)))
        })?;
        for result in page.metric_data_results() {
            let Some(i) = result.id().and_then(|id| id.strip_prefix('m')).and_then(|i| i.parse::<usize>().ok()) else {
                continue;
            };
            for (t, v) in result.timestamps().iter().zip(result.values()) {
                let Ok(ms) = t.to_millis() else { continue };
                if i < n && (start_ms..end_ms).contains(&ms) {
                    minutes.entry(ms.div_euclid(60_000) * 60_000).or_insert_with(|| vec![None; n])[i] = Some(*v);
                }
            }
        }
    }
    Ok(minutes)
}

//! `plan`: forecast the stream's traffic from its history and plan shards per hour
//! (`orderstream::plan`, docs/cost.md).

use std::path::PathBuf;

use anyhow::Context;
use processor::config::OutputConfig;
use producer::args::positive;

use super::DataDir;
use crate::cost::Prices;
use crate::plan::{self, History, Model, Plan, PlanSettings, StreamCosts};

/// The calls the Terraform module's `shard_schedule` takes.
const TFVARS_MAX_CALLS: usize = 60;

#[derive(clap::Args)]
pub struct Args {
    /// The history as CSV lines `minute,records` (RFC 3339 or epoch milliseconds) instead of the
    /// datasets.
    #[arg(long)]
    history: Option<PathBuf>,
    /// The history from CloudWatch instead: the stream's `IncomingRecords` per minute (and
    /// `IncomingBytes`, for the record size) over the last `--history-days` whole UTC days (AWS
    /// SDK environment: AWS_REGION, credentials).
    #[arg(long, conflicts_with = "history")]
    stream: Option<String>,
    /// Days of CloudWatch history (it keeps minutes for 15 days).
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(2..=15))]
    history_days: u32,
    #[command(flatten)]
    dir: DataDir,
    /// With a bucket the history is read from the bucket's datasets.
    #[command(flatten)]
    output: OutputConfig,
    /// Days to forecast and plan.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=28))]
    days: u32,
    /// Test the model instead: forecast the history's last N days from the days before them and
    /// compare (the error per hour, minutes the plan would have throttled, the costs).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=28))]
    hold_out: Option<u32>,
    /// Bytes of a record's data [default: 240, or the stream's average with --stream].
    #[arg(long, value_parser = positive)]
    record_bytes: Option<f64>,
    /// User records per Kinesis record (KPL aggregation; 1: none).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    kpl_records: u32,
    /// Capacity over each hour's forecast busiest minute.
    #[arg(long, default_value_t = 1.2, value_parser = positive)]
    headroom: f64,
    /// Minutes before an hour that a rise is asked for.
    #[arg(long, default_value_t = 15)]
    lead_minutes: u32,
    /// Visitors browsing at once, for the shard skew of the session strategy (the producer's
    /// --sessions).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    sessions: u64,
    /// The weighted strategy's hot shard: its weight against the others' 1.
    #[arg(long, default_value_t = 2.0, value_parser = positive)]
    hot_shard_weight: f64,
    /// Write the chart (SVG) here.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Write the `UpdateShardCount` calls (JSON: time and target shard count) here.
    #[arg(long)]
    schedule: Option<PathBuf>,
    /// Write the calls as Terraform variables here (`shard_schedule`, which the module's scaler
    /// follows: name it `*.auto.tfvars.json` beside the configuration).
    #[arg(long)]
    tfvars: Option<PathBuf>,
    /// A price list in the format of the built-in one (src/cost/prices-us-east-1.json).
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(a: Args) -> anyhow::Result<bool> {
    let prices = Prices::load(a.prices.as_deref()).map_err(anyhow::Error::msg)?;
    let mut measured_bytes = None;
    let (minutes, source) = match (&a.history, &a.stream) {
        (_, Some(stream)) => {
            let (minutes, bytes) = cloudwatch_history(stream, a.history_days, f64::from(a.kpl_records)).await?;
            measured_bytes = bytes;
            let size = bytes.map(|b| format!(", {b:.0} bytes a record")).unwrap_or_default();
            (minutes, format!("CloudWatch IncomingRecords of {stream}{size}"))
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            (
                plan::parse_csv(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                path.display().to_string(),
            )
        }
        (None, None) => {
            let source = match &a.output.bucket {
                Some(b) => format!("s3://{b}/{}", a.output.prefix),
                None => {
                    anyhow::ensure!(a.dir.data_dir.is_dir(), "no data directory {}", a.dir.data_dir.display());
                    format!("{}/{}", a.dir.data_dir.display(), a.output.prefix)
                }
            };
            let store = a.dir.store(&a.output).await?;
            (plan::read_history(store.as_ref(), &a.output.prefix).await?, source)
        }
    };
    let history = History::from_minutes(minutes).with_context(|| format!("the history in {source}"))?;
    let settings = PlanSettings {
        record_bytes: a.record_bytes.or(measured_bytes).unwrap_or(240.0),
        kpl_records: f64::from(a.kpl_records),
        headroom: a.headroom,
        lead_minutes: i64::from(a.lead_minutes),
    };
    let (train, actual) = match a.hold_out {
        Some(n) => {
            anyhow::ensure!(
                history.days() >= n as usize + 2,
                "--hold-out {n} leaves {} day(s) of history to learn from: the planner needs at least 2",
                history.days().saturating_sub(n as usize)
            );
            let (train, held) = history.without_last(n as usize);
            (train, Some(held))
        }
        None => (history, None),
    };
    let days = a.hold_out.unwrap_or(a.days) as usize;
    let model = Model::fit(&train)?;
    let forecast = model.forecast(days);
    // The hour before the forecast: what it needed sets where the plan starts.
    let last_hour: f64 = train.per_minute[train.per_minute.len() - 60..].iter().copied().fold(0.0, f64::max) / 60.0;
    let current = settings.shards(last_hour, settings.headroom);
    let the_plan = plan::plan(&forecast, Some(current), &settings);
    let costs = plan::stream_costs(&the_plan, &forecast, &settings, &prices);
    let busiest = the_plan.hours.iter().max_by(|a, b| a.peak_rate.total_cmp(&b.peak_rate)).expect("a day has hours");
    // Staged Parquet per record as the function benchmark measured the storefront's payload.
    let staged: f64 = crate::cost::Measured::recorded()
        .payloads
        .get("storefront")
        .map_or(0.0, |p| p.staged_bytes_per_record.values().sum());
    let groups = plan::schedule::publisher_groups(busiest.peak_rate, staged, settings.headroom);
    let keys = plan::skew::sample_sessions(a.sessions as usize, 1);
    let skew = plan::skew::report(
        &keys,
        busiest.peak_rate,
        busiest.needed,
        settings.per_shard(),
        settings.headroom,
        a.hot_shard_weight,
    );
    let checked = actual
        .as_ref()
        .map(|held| (plan::hourly_mape(&forecast, held), plan::throttled_minutes(&the_plan, held, &settings)));
    if let Some(path) = &a.chart {
        std::fs::write(path, plan::chart::svg(&the_plan, &forecast, actual.as_ref(), settings.per_shard()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let calls: Vec<_> = the_plan
        .actions
        .iter()
        .map(|x| serde_json::json!({"at": model::format_millis(x.at_ms), "target_shard_count": x.target_shard_count}))
        .collect();
    if let Some(path) = &a.schedule {
        // The arguments of `aws kinesis update-shard-count`, each call's scaling type with it.
        let mut calls = calls.clone();
        for c in &mut calls {
            c["scaling_type"] = "UNIFORM_SCALING".into();
        }
        std::fs::write(path, serde_json::to_string_pretty(&calls)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &a.tfvars {
        anyhow::ensure!(
            calls.len() <= TFVARS_MAX_CALLS,
            "the plan has {} calls; the module's shard_schedule holds {TFVARS_MAX_CALLS} (the scaler's environment is 4 KB): plan fewer --days",
            calls.len()
        );
        let vars = serde_json::json!({ "shard_schedule": calls });
        std::fs::write(path, serde_json::to_string_pretty(&vars)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if a.json {
        let doc = serde_json::json!({
            "history": {"source": source, "days": train.days(), "record_bytes": settings.record_bytes},
            "plan": the_plan,
            "costs": costs,
            "publisher_groups": groups,
            "skew": skew,
            "check": checked.map(|(mape, throttled)| serde_json::json!({"hourly_mape": mape, "throttled_minutes": throttled})),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", report(&model, &train, &the_plan, &costs, checked, &source, days, &prices, groups));
        print!("{}", skew_table(&skew, busiest));
    }
    Ok(true)
}

fn skew_table(skew: &[plan::skew::Skew], busiest: &plan::HourPlan) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "\nShard skew at the busiest minute ({:.0} records/s; the plan assumes keys spread evenly over {} shards):\n\n",
        busiest.peak_rate, busiest.needed
    );
    let _ = writeln!(out, "| partition strategy | busiest shard's share | shards the peak needs |");
    let _ = writeln!(out, "|---|---:|---:|");
    for s in skew {
        let needs = s.shards.map_or("none carries it (one shard takes too much)".to_string(), |n| n.to_string());
        let _ = writeln!(
            out,
            "| {} | {:.1}% (even: {:.1}%) | {needs} |",
            s.strategy,
            100.0 * s.hottest_share,
            100.0 / f64::from(busiest.needed)
        );
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn report(
    model: &Model,
    train: &History,
    p: &Plan,
    costs: &StreamCosts,
    checked: Option<(f64, usize)>,
    source: &str,
    days: usize,
    prices: &Prices,
    groups: u32,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let (level, slope, weekdays) = model.level();
    let _ = writeln!(
        out,
        "History: {} day(s) from {} ({source}); the last day's level {:.0} records a day, {:+.1}% a day{}.\n",
        train.days(),
        &model::format_millis(train.start_ms)[..10],
        level,
        if level > 0.0 { 100.0 * slope / level } else { 0.0 },
        if weekdays.iter().any(|w| (w - 1.0).abs() > 1e-9) { ", by weekday" } else { "" }
    );
    let _ = writeln!(out, "| hour (UTC) | forecast records/s | busiest minute | shards needed | shards planned |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for h in &p.hours {
        let t = model::format_millis(h.start_ms);
        let _ = writeln!(
            out,
            "| {} {} | {:.0} | {:.0} | {} | {} |",
            &t[..10],
            &t[11..16],
            h.mean_rate,
            h.peak_rate,
            h.needed,
            h.shards
        );
    }
    let _ = writeln!(out, "\nUpdateShardCount calls ({}):", p.actions.len());
    for x in &p.actions {
        let _ = writeln!(out, "  {}  -> {} shards", model::format_millis(x.at_ms), x.target_shard_count);
    }
    let month = 30.0 / days as f64;
    let peak = p.hours.iter().map(|h| h.shards).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "\nThe stream over these {days} day(s), {} list prices: as planned ${:.2} (${:.0} a month), provisioned for the peak ${:.2} (${:.0}), on-demand ${:.2} (${:.0}).",
        prices.region,
        costs.planned,
        costs.planned * month,
        costs.peak_provisioned,
        costs.peak_provisioned * month,
        costs.on_demand,
        costs.on_demand * month
    );
    let cheaper = if costs.planned <= costs.on_demand { "the plan" } else { "on-demand" };
    let _ = writeln!(
        out,
        "Cheaper: {cheaper}. Lambda: reserved concurrency {peak} for the processor (one per shard at the peak); {groups} publisher group(s) (each merges about {:.0} MB/s of staged Parquet).",
        crate::cost::PUBLISHER_MB_PER_CPU_SECOND
    );
    if let Some((mape, throttled)) = checked {
        let _ = writeln!(
            out,
            "\nAgainst the held-out day(s): mean absolute error per hour {:.1}%; minutes the planned shards would have throttled: {throttled}.",
            mape * 100.0
        );
    }
    out
}

/// User records per minute over the last `days` whole UTC days of the stream's CloudWatch
/// `IncomingRecords` (Kinesis records: KPL aggregates of `kpl_records` each), every minute
/// without a datapoint a minute without records; and the average bytes of a user record, when
/// any came.
async fn cloudwatch_history(
    stream: &str,
    days: u32,
    kpl_records: f64,
) -> anyhow::Result<(std::collections::BTreeMap<i64, f64>, Option<f64>)> {
    use crate::plan::forecast::DAY_MS;
    let shared = awsenv::load().await?;
    let client = aws_sdk_cloudwatch::Client::new(&shared);
    let end = model::now_ms().div_euclid(DAY_MS) * DAY_MS;
    let start = end - i64::from(days) * DAY_MS;
    let metrics = [("IncomingRecords", "Sum"), ("IncomingBytes", "Sum")];
    let found = crate::stream_metrics::per_minute(&client, stream, &metrics, start, end).await?;
    anyhow::ensure!(
        !found.is_empty(),
        "CloudWatch has no IncomingRecords of the stream {stream} in the last {days} days (a stream of that name, in this region?)"
    );
    let (records, bytes): (f64, f64) =
        found.values().fold((0.0, 0.0), |(r, b), v| (r + v[0].unwrap_or(0.0), b + v[1].unwrap_or(0.0)));
    let mut minutes: std::collections::BTreeMap<i64, f64> = (start..end).step_by(60_000).map(|m| (m, 0.0)).collect();
    for (minute, v) in found {
        minutes.insert(minute, v[0].unwrap_or(0.0) * kpl_records);
    }
    let average = (records > 0.0 && bytes > 0.0).then(|| bytes / records / kpl_records);
    Ok((minutes, average))
}

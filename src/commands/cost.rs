//! `cost`: the monthly cost of a deployment at a rate or a daily curve, beside Amazon Data
//! Firehose and a Python Lambda on the same stream (`orderstream::cost`, docs/cost.md).

use std::path::PathBuf;

use producer::args::positive;

use crate::cost::{self, Architecture, Demand, Estimate, Measured, Prices, Settings, StreamMode};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("traffic").required(true).args(["rate", "daily_peak"])))]
#[command(group(clap::ArgGroup::new("mode").args(["shards", "on_demand"])))]
pub struct Args {
    /// Records per second, all day.
    #[arg(long, value_parser = positive)]
    rate: Option<f64>,
    /// Records per second at 19:00 UTC on the producer's daily curve (a quarter of it at 07:00),
    /// with its flash sales.
    #[arg(long, value_parser = positive)]
    daily_peak: Option<f64>,
    /// With --daily-peak: minutes between flash sales (0: none), each tripling the traffic.
    #[arg(long, default_value_t = 60, requires = "daily_peak")]
    flash_sale_every: u32,
    /// With --daily-peak: minutes a flash sale lasts.
    #[arg(long, default_value_t = 5, requires = "daily_peak")]
    flash_sale_minutes: u32,
    /// Bytes of a record's data [default: the measured payload's average].
    #[arg(long, value_parser = positive)]
    record_bytes: Option<f64>,
    /// User records per Kinesis record: the producers aggregate this many with the KPL (1: none).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    kpl_records: u32,
    /// Provisioned shards [default: the fewest that carry the peak minute with --headroom].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    shards: Option<u32>,
    /// An on-demand stream instead of provisioned shards.
    #[arg(long)]
    on_demand: bool,
    /// Capacity over the peak minute when the shard count is derived.
    #[arg(long, default_value_t = 1.2, value_parser = at_least_one)]
    headroom: f64,
    /// The account's shard quota (Kinesis's default in us-east-1).
    #[arg(long, default_value_t = 500)]
    max_shards: u32,
    /// Hours the stream keeps records (24 to 8760).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(24..=8760))]
    retention_hours: u32,
    /// Event source mapping: records per invocation at most.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10000))]
    batch_size: u32,
    /// Event source mapping: seconds to gather records before invoking (0 to 300).
    #[arg(long, default_value_t = 5.0, value_parser = window)]
    batching_window: f64,
    /// The processor's memory in MB (128 to 10240).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(128..=10240))]
    memory_mb: u32,
    /// The functions' architecture.
    #[arg(long, value_enum, default_value_t = Architecture::Arm64)]
    architecture: Architecture,
    /// Seconds between a publisher's rounds.
    #[arg(long, default_value_t = 10.0, value_parser = positive)]
    publish_interval: f64,
    /// Publisher groups.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    publisher_groups: u32,
    /// The publisher's memory in MB.
    #[arg(long, default_value_t = 1769, value_parser = clap::value_parser!(u32).range(256..=10240))]
    publisher_memory_mb: u32,
    /// Days of published data kept in S3.
    #[arg(long, default_value_t = 365.0, value_parser = positive)]
    dataset_days: f64,
    /// Athena queries a day.
    #[arg(long, default_value_t = 100.0, value_parser = non_negative)]
    queries_per_day: f64,
    /// Days of data one query reads.
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    query_days: f64,
    /// Share of the `events` table's bytes a query reads (its columns), 0 to 1.
    #[arg(long, default_value_t = 0.2, value_parser = share)]
    query_share: f64,
    /// One S3 request's latency as the function sees it, in ms.
    #[arg(long, default_value_t = 30.0, value_parser = non_negative)]
    s3_latency_ms: f64,
    /// Currencies the shop sells in (a revenue metric each).
    #[arg(long, default_value_t = 8)]
    currencies: u32,
    /// The Python Lambda's memory in MB.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(128..=10240))]
    peer_memory_mb: u32,
    /// The measured payload whose CPU time per record prices the functions (bench/function.json)
    /// [default: storefront, or kpl with --kpl-records].
    #[arg(long)]
    payload: Option<String>,
    /// A price list in the format of the built-in one (src/cost/prices-us-east-1.json).
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Print the estimate as JSON.
    #[arg(long)]
    json: bool,
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number >= 0")),
    }
}

fn at_least_one(s: &str) -> Result<f64, String> {
    non_negative(s).and_then(|v| if v >= 1.0 { Ok(v) } else { Err(format!("{s} is below 1")) })
}

fn window(s: &str) -> Result<f64, String> {
    non_negative(s).and_then(|v| if v <= 300.0 { Ok(v) } else { Err(format!("{s} is above 300 seconds")) })
}

fn share(s: &str) -> Result<f64, String> {
    non_negative(s).and_then(|v| if v <= 1.0 { Ok(v) } else { Err(format!("{s} is above 1")) })
}

pub async fn run(a: Args) -> anyhow::Result<bool> {
    let prices = Prices::load(a.prices.as_deref()).map_err(anyhow::Error::msg)?;
    let measured = Measured::recorded();
    let payload_name = a.payload.clone().unwrap_or_else(|| if a.kpl_records > 1 { "kpl" } else { "storefront" }.into());
    let (payload, peer) = measured.payload(&payload_name).map_err(anyhow::Error::msg)?;
    let demand = match (a.rate, a.daily_peak) {
        (Some(rate), _) => Demand::flat(rate),
        (None, Some(peak)) => Demand::daily(peak, a.flash_sale_every, a.flash_sale_minutes),
        (None, None) => unreachable!("clap requires --rate or --daily-peak"),
    };
    let settings = Settings {
        demand,
        record_bytes: a.record_bytes.unwrap_or(payload.json_bytes_per_record),
        kpl_records: f64::from(a.kpl_records),
        stream: if a.on_demand { StreamMode::OnDemand } else { StreamMode::Provisioned(a.shards) },
        headroom: a.headroom,
        max_shards: a.max_shards,
        retention_hours: f64::from(a.retention_hours),
        batch_size: f64::from(a.batch_size),
        batching_window_s: a.batching_window,
        memory_mb: f64::from(a.memory_mb),
        architecture: a.architecture,
        publish_interval_s: a.publish_interval,
        publisher_groups: a.publisher_groups,
        publisher_memory_mb: f64::from(a.publisher_memory_mb),
        publisher_timeout_s: 60.0,
        dataset_days: a.dataset_days,
        queries_per_day: a.queries_per_day,
        query_days: a.query_days,
        query_share: a.query_share,
        s3_latency_ms: a.s3_latency_ms,
        currencies: a.currencies,
        peer_memory_mb: f64::from(a.peer_memory_mb),
    };
    let estimate = cost::estimate(&settings, &prices, payload, peer)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&estimate)?);
    } else {
        print!("{}", report(&estimate, &settings, &prices, &measured, &payload_name));
    }
    Ok(true)
}

const SERVICES: [&str; 8] = [
    "Kinesis",
    "Lambda processor",
    "Lambda publisher",
    "Firehose",
    "S3 requests",
    "S3 storage",
    "Athena",
    "CloudWatch",
];

fn report(e: &Estimate, s: &Settings, prices: &Prices, measured: &Measured, payload: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let aggregated =
        if s.kpl_records > 1.0 { format!(" in KPL aggregates of {}", s.kpl_records) } else { String::new() };
    let stream = match s.stream {
        StreamMode::OnDemand => format!("an on-demand stream (about {} shards)", e.shards),
        StreamMode::Provisioned(_) if e.shards == 1 => "1 provisioned shard".to_string(),
        StreamMode::Provisioned(_) => format!("{} provisioned shards", e.shards),
    };
    let _ = writeln!(
        out,
        "{:.0} records/s on average, {:.0} at the peak minute, {:.0} bytes each{aggregated}: {:.1} billion records a month on {stream}.\n",
        e.mean_rate,
        e.peak_rate,
        s.record_bytes,
        e.records_per_month / 1e9
    );
    let money = |v: f64| if v == 0.0 { "-".to_string() } else { format!("${v:.2}") };
    let names: Vec<&str> = e.choices.iter().map(|c| c.name).collect();
    let _ = writeln!(out, "| {} a month | {} |", prices.currency, names.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(names.len()));
    for service in SERVICES {
        let cells: Vec<String> = e.choices.iter().map(|c| money(c.service(service))).collect();
        let _ = writeln!(out, "| {service} | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = e.choices.iter().map(|c| format!("**{}**", money(c.total()))).collect();
    let _ = writeln!(out, "| total | {} |", totals.join(" | "));
    let per_million: Vec<String> =
        e.choices.iter().map(|c| format!("${:.4}", c.total() / (e.records_per_month / 1e6))).collect();
    let _ = writeln!(out, "| per million records | {} |", per_million.join(" | "));
    for c in &e.choices {
        let _ = writeln!(out, "\n{}:", c.name);
        for l in &c.lines {
            let _ = writeln!(out, "  {:<17} {:>12}  {}", l.service, money(l.monthly), l.detail);
        }
        for n in &c.notes {
            let _ = writeln!(out, "  note: {n}");
        }
    }
    let _ = writeln!(
        out,
        "\nPrices: {} list prices as of {} (--prices to use others). CPU per record: payload {payload:?}, {} on {}, {}.",
        prices.region, prices.as_of, measured.by, measured.machine, measured.measured
    );
    out
}

//! The main job (no subcommand): storefront traffic through an embedded stream and the local
//! event source mapping into the shared handler, for a while, then a summary reconciled with the
//! producer's truth manifest ([`crate::pipeline`]).

use std::time::Duration;

use anyhow::Context;
use producer::{args, Faults};

use super::{DataDir, MappingArgs};
use crate::lambda::on_failure::{self, Destination};
use crate::pipeline::{self, MainJob};
use crate::sources::embedded::ShardLimits;

const DEFAULT_DASHBOARD: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8686);

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    dir: DataDir,
    /// How long to produce traffic, in seconds; the pipeline then drains.
    #[arg(long, default_value_t = 60.0, value_parser = args::positive)]
    duration: f64,
    /// Storefront records per second.
    #[arg(long, default_value_t = 5000.0, value_parser = args::positive)]
    rate: f64,
    /// Shards of the embedded stream.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    shards: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Throttle each shard at 1,000 records/s and 1 MiB/s, as a provisioned Kinesis shard.
    #[arg(long)]
    shard_limits: bool,
    /// Share of invalid records (each reason code of the contract), quarantined by the handler.
    #[arg(long, default_value_t = 0.005, value_parser = args::share)]
    invalid_rate: f64,
    /// Share of valid events sent again right after, as a producer retry does (dropped as duplicates).
    #[arg(long, default_value_t = 0.005, value_parser = args::share)]
    duplicate_rate: f64,
    /// Share of valid events whose event time is 2 to 30 minutes behind the clock (late arrivals).
    #[arg(long, default_value_t = 0.01, value_parser = args::share)]
    late_rate: f64,
    #[command(flatten)]
    mapping: MappingArgs,
    /// Fault injection for tests: the data directory refuses every write for LEN seconds from
    /// START seconds into the run (an S3 outage), as "START,LEN".
    #[arg(long, hide = true, value_parser = parse_outage)]
    store_outage: Option<(f64, f64)>,
    /// Seconds between the in-process publisher's rounds (merging committed files into the
    /// visible datasets).
    #[arg(long, default_value_t = 2.0, value_parser = args::positive)]
    publish_interval: f64,
    /// Reshard the embedded stream this many seconds into the run: split the first shard, and a
    /// second later merge the second and third (with three shards or more).
    #[arg(long, value_parser = args::positive)]
    reshard_at: Option<f64>,
    /// Address of the live dashboard [default: 127.0.0.1:8686, or a free port if that is taken].
    #[arg(long, value_name = "ADDR", conflicts_with = "no_dashboard")]
    dashboard: Option<std::net::SocketAddr>,
    /// Run without the live dashboard.
    #[arg(long)]
    no_dashboard: bool,
    /// Keep serving the dashboard after the run, until Ctrl-C.
    #[arg(long, conflicts_with = "no_dashboard")]
    serve: bool,
    /// Pack each shard's records into KPL aggregates (as the producer's --aggregate and the
    /// Kinesis Producer Library do); the handler de-aggregates them.
    #[arg(long)]
    aggregate: bool,
}

fn parse_outage(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s.split_once(',').ok_or("expected START,LEN in seconds")?;
    let num = |x: &str| x.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
    Ok((num(a).ok_or("START is not a number of seconds")?, num(b).ok_or("LEN is not a number of seconds")?))
}

pub async fn run(a: Args) -> anyhow::Result<bool> {
    let data_dir = a.dir.data_dir.clone();
    let job = MainJob {
        data_dir: data_dir.clone(),
        duration: Duration::from_secs_f64(a.duration),
        rate: a.rate,
        shards: a.shards as usize,
        seed: a.seed,
        shard_limits: a.shard_limits.then(ShardLimits::default),
        faults: Faults { invalid_rate: a.invalid_rate, duplicate_rate: a.duplicate_rate, late_rate: a.late_rate },
        esm: a.mapping.config(Destination::Dir(on_failure::local_dir(&data_dir))),
        progress: true,
        dashboard: (!a.no_dashboard).then_some(a.dashboard.unwrap_or(DEFAULT_DASHBOARD)),
        dashboard_any_port: a.dashboard.is_none(),
        store_outage: a.store_outage.map(|(from, len)| (Duration::from_secs_f64(from), Duration::from_secs_f64(len))),
        reshard_at: a.reshard_at.map(Duration::from_secs_f64),
        publish_interval: Duration::from_secs_f64(a.publish_interval),
        aggregate: a.aggregate,
    };
    eprintln!(
        "orderstream: {:.0} s of storefront traffic at {:.0} records/s through {} shards{} into {}/ (Ctrl-C to stop)",
        a.duration,
        a.rate,
        a.shards,
        if a.aggregate { " in KPL aggregates" } else { "" },
        data_dir.display()
    );
    let summary = pipeline::run(&job).await?;
    println!("{}", summary.render(&data_dir));
    if let (true, Some(d)) = (a.serve, &summary.dashboard) {
        eprintln!("dashboard: still serving the final figures at {} (Ctrl-C to stop)", d.url());
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    }
    Ok(summary.reconciled() && summary.published_ok())
}

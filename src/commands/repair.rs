//! `repair`: a shard's state (`head.json`, a checkpoint) rebuilt from its commit records.

use anyhow::Context;
use processor::config::OutputConfig;
use processor::ledger::{io, ShardKeys};

use super::DataDir;

#[derive(clap::Args)]
pub struct Args {
    /// The stream's name.
    #[arg(long)]
    stream: String,
    /// The shard's id (shardId-000000000000).
    #[arg(long)]
    shard: String,
    #[command(flatten)]
    dir: DataDir,
    /// With a bucket the shard's ledger is in S3 instead of the data directory.
    #[command(flatten)]
    output: OutputConfig,
}

pub async fn run(a: Args) -> anyhow::Result<bool> {
    let store = a.dir.store(&a.output).await?;
    let keys = ShardKeys::new(&a.output.prefix, &a.stream, &a.shard);
    let settings = processor::config::processor_config_from_env()?.ledger;
    let rebuilt = io::rebuild(&store, &keys, &settings)
        .await
        .with_context(|| format!("repairing {} {} in {}", a.stream, a.shard, store.describe()))?;
    let s = &rebuilt.state;
    println!(
        "{} {}: {} commit records (from {} to {}), high-water mark {}, {} ids in the de-duplication window, {} replayed ranges; wrote checkpoint {} and head.json",
        a.stream,
        a.shard,
        rebuilt.commits,
        s.floor,
        s.latest,
        s.high_water_mark.as_deref().unwrap_or("-"),
        s.window.len(),
        s.replays.len(),
        s.checkpoint(),
    );
    Ok(true)
}

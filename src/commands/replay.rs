//! `replay`: the batches the event source mapping gave up on, exactly once ([`crate::replay`]).

use std::path::PathBuf;

use processor::config::OutputConfig;
use processor::Processor;

use super::publish::{self, AfterArgs};
use super::DataDir;
use crate::lambda::on_failure::Destination;

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["queue_url", "on_failure_dir"]))]
pub struct Args {
    /// The on-failure SQS queue of the event source mapping (the Terraform output
    /// on_failure_queue_url); the records are read back from Kinesis (AWS SDK environment).
    #[arg(long)]
    queue_url: Option<String>,
    /// A folder of on-failure records (the main job's DATA_DIR/_on_failure); replayed ones move
    /// to its replayed/ folder.
    #[arg(long)]
    on_failure_dir: Option<PathBuf>,
    #[command(flatten)]
    dir: DataDir,
    /// With a bucket the datasets go to S3 instead of the data directory.
    #[command(flatten)]
    output: OutputConfig,
    #[command(flatten)]
    publish: AfterArgs,
}

pub async fn run(a: Args) -> anyhow::Result<bool> {
    // The folder of a local run needs no AWS; an SQS queue (and the stream) does.
    let source = match (&a.queue_url, &a.on_failure_dir) {
        (Some(url), _) => {
            Destination::Sqs { client: aws_sdk_sqs::Client::new(&awsenv::load().await?), queue_url: url.clone() }
        }
        (None, Some(dir)) => {
            anyhow::ensure!(dir.is_dir(), "--on-failure-dir {}: no such folder", dir.display());
            Destination::Dir(dir.clone())
        }
        (None, None) => anyhow::bail!("give --queue-url or --on-failure-dir"),
    };
    let kinesis = awsenv::load().await.ok().map(|shared| aws_sdk_kinesis::Client::new(&shared));
    let store = a.dir.store(&a.output).await?;
    let target = store.describe();
    let processor = Processor::new(store.clone(), a.output.prefix.clone());
    let summary = crate::replay::replay(&source, kinesis.as_ref(), &processor).await?;
    let r = &summary.report;
    println!(
        "{} batches from {}: {} replayed, {} failed; {} records: {} events, {} quarantined, {} duplicates dropped, {} already committed; into {target}; {}",
        summary.batches,
        source.describe(),
        summary.batches - summary.failed_batches,
        summary.failed_batches,
        r.records,
        r.events,
        r.quarantined,
        r.duplicates,
        r.already_committed,
        crate::peak_memory_note()
    );
    let published = publish::after(store, &a.output.prefix, &a.publish).await;
    Ok(summary.failed_batches == 0 && published)
}

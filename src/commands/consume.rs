//! `consume`: the event source mapping against a real Kinesis stream, outside Lambda, invoking
//! the handler in this process or the real bootstrap under the local Runtime API.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use processor::config::OutputConfig;
use processor::Processor;
use producer::args;
use producer::kinesis::{KinesisApi, SdkKinesis};

use super::publish::{self, AfterArgs};
use super::{DataDir, FunctionArgs, MappingArgs};
use crate::lambda::esm::function::RuntimeFunction;
use crate::lambda::esm::{self, EsmStats, Function};
use crate::lambda::on_failure::{self, Destination};
use crate::sources::kinesis::KinesisShard;

#[derive(clap::Args)]
pub struct Args {
    /// The Kinesis stream to read.
    #[arg(long)]
    stream: String,
    #[command(flatten)]
    dir: DataDir,
    /// With a bucket the datasets go to S3 instead of the data directory.
    #[command(flatten)]
    output: OutputConfig,
    /// Start at the newest records instead of the oldest retained (what is already committed is
    /// skipped either way).
    #[arg(long)]
    latest: bool,
    /// Stop after this many seconds, once what was read is processed (default: until Ctrl-C).
    #[arg(long, value_parser = args::positive)]
    duration: Option<f64>,
    #[command(flatten)]
    mapping: MappingArgs,
    /// Send the on-failure records of batches given up on to this SQS queue, as Lambda does
    /// (default: a file each in DATA_DIR/_on_failure/).
    #[arg(long)]
    on_failure_queue: Option<String>,
    /// Invoke the real Lambda bootstrap under a local Lambda Runtime API instead of the handler
    /// in this process.
    #[command(flatten)]
    function: FunctionArgs,
    #[command(flatten)]
    publish: AfterArgs,
}

pub async fn run(a: Args) -> anyhow::Result<bool> {
    let shared = awsenv::load().await?;
    let client = aws_sdk_kinesis::Client::new(&shared);
    let shards = SdkKinesis::new(client.clone()).open_shards(&a.stream).await?;
    let (function, target): (Arc<dyn Function>, String) = match a.function.spec(&a.output)? {
        Some(spec) => {
            let target = format!(
                "the function {} (s3://{}/{})",
                spec.bootstrap.display(),
                a.output.bucket.as_deref().unwrap_or(""),
                a.output.prefix
            );
            (Arc::new(RuntimeFunction::new(spec)), target)
        }
        None => {
            let store = a.dir.store(&a.output).await?;
            let target = store.describe();
            (Arc::new(Processor::new(store, a.output.prefix.clone())), target)
        }
    };
    let destination = match &a.on_failure_queue {
        Some(url) => Destination::Sqs { client: aws_sdk_sqs::Client::new(&shared), queue_url: url.clone() },
        None => Destination::Dir(on_failure::local_dir(&a.dir.data_dir)),
    };
    let cfg = a.mapping.config(destination);
    let mut sources = Vec::new();
    for shard in &shards {
        sources.push(KinesisShard::open(client.clone(), &a.stream, &shard.id, !a.latest).await?);
    }
    let stats = Arc::new(Mutex::new(EsmStats::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mapping = tokio::spawn(esm::poll_all(sources, function, cfg.clone(), stats.clone(), stop.clone()));
    eprintln!("consuming {} ({} shards) into {target}; Ctrl-C to stop", a.stream, shards.len());
    match a.duration {
        Some(secs) => tokio::time::sleep(Duration::from_secs_f64(secs)).await,
        None => tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?,
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    mapping.await.context("a shard poller stopped")??;
    let st = stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!(
        "{} records: {} events, {} quarantined, {} duplicates dropped; {} invocations ({} failed), {} records sent to {}",
        st.records,
        st.events,
        st.quarantined.values().sum::<u64>(),
        st.duplicates,
        st.invocations,
        st.failed_invocations,
        st.discarded,
        cfg.on_failure.describe()
    );
    if st.discarded > 0 {
        eprintln!("replay them with: orderstream replay {}", cfg.on_failure.replay_flag());
    }
    let published = publish::after(a.dir.store(&a.output).await?, &a.output.prefix, &a.publish).await;
    Ok(st.discarded == 0 && published)
}

//! `orderstream`: the pipeline on one machine. This file only parses the command line and
//! dispatches; each command lives in `commands/`.
//!
//! With no subcommand it runs the main job: simulated storefront traffic into an embedded stream
//! with Kinesis semantics, a local event source mapping invoking the shared Lambda handler, and
//! the five datasets under `./data/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orderstream::commands::{consume, cost, invoke, main_job, plan, process, publish, repair, replay, scale};

#[derive(Parser)]
#[command(name = "orderstream", version, about = "Streaming order analytics on Kinesis, on one machine")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: main_job::Args,
}

#[derive(Subcommand)]
enum Command {
    /// Process the bundled contract samples.
    Samples(process::SamplesArgs),
    /// Run the Lambda handler over records from a file, as one batch.
    Process(process::Args),
    /// Run the event source mapping against a real Kinesis stream (AWS SDK environment:
    /// AWS_REGION, credentials, AWS_ENDPOINT_URL), outside Lambda, until stopped.
    Consume(consume::Args),
    /// Run the real `processor` binary (the Lambda bootstrap) under a local Lambda Runtime API
    /// with one Lambda Kinesis event, and print its response.
    Invoke(invoke::Args),
    /// Process the batches the event source mapping gave up on, exactly once: Lambda's on-failure
    /// records from an SQS queue (records read back from Kinesis) or from a folder.
    Replay(replay::Args),
    /// Run publisher rounds now: merge the committed staged files into the visible datasets (a
    /// few files per table and hour), until everything committed is visible.
    Publish(publish::Args),
    /// Rebuild a shard's state (head.json, a checkpoint: the de-duplication window and the
    /// replayed ranges) from its commit records.
    Repair(repair::Args),
    /// What a deployment costs a month at a rate or a daily curve (AWS list prices, the
    /// functions' measured CPU time), beside Amazon Data Firehose and a Python Lambda.
    Cost(cost::Args),
    /// Forecast the stream's traffic from its history (the datasets, or a CSV) and plan its
    /// shards hour by hour: the table, a chart, the UpdateShardCount calls, the costs.
    Plan(plan::Args),
    /// One step of the scaler: read a provisioned stream's last minutes of CloudWatch metrics
    /// and the planned schedule, and resize it with UpdateShardCount when they ask for it.
    Scale(scale::Args),
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        None => main_job::run(cli.run).await,
        Some(Command::Samples(a)) => process::samples(a).await,
        Some(Command::Process(a)) => process::run(a).await,
        Some(Command::Consume(a)) => consume::run(a).await,
        Some(Command::Invoke(a)) => invoke::run(a).await,
        Some(Command::Replay(a)) => replay::run(a).await,
        Some(Command::Publish(a)) => publish::run(a).await,
        Some(Command::Repair(a)) => repair::run(a).await,
        Some(Command::Cost(a)) => cost::run(a).await,
        Some(Command::Plan(a)) => plan::run(a).await,
        Some(Command::Scale(a)) => scale::run(a).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,aws_config=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! `invoke`: the real `processor` bootstrap under the local Lambda Runtime API, with one Lambda
//! Kinesis event; prints the function's response.

use std::path::PathBuf;

use anyhow::Context;
use processor::config::OutputConfig;

use super::FunctionArgs;
use crate::lambda::runtime_api::LocalLambda;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    function: FunctionArgs,
    /// The Lambda Kinesis event (JSON as Lambda sends it).
    #[arg(long)]
    event: PathBuf,
    #[command(flatten)]
    output: OutputConfig,
}

pub async fn run(a: Args) -> anyhow::Result<bool> {
    let event = std::fs::read(&a.event).with_context(|| format!("cannot read {}", a.event.display()))?;
    processor::kinesis::KinesisEvent::from_slice(&event)
        .with_context(|| format!("{} is not a Lambda Kinesis event", a.event.display()))?;
    let spec = a.function.spec(&a.output)?.context("--function is required")?;
    let lambda = LocalLambda::start(spec).await.context("cannot serve the local Lambda Runtime API")?;
    let answer = lambda.invoke(event).await;
    lambda.shutdown().await;
    match answer {
        Ok(response) => {
            println!("{}", String::from_utf8_lossy(&response));
            Ok(true)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(false)
        }
    }
}

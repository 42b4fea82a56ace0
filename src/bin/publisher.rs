//! The publisher function's `bootstrap` (provided.al2023), invoked by an EventBridge schedule:
//! configuration from the environment, one S3 client, and the library's loop of rounds.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use processor::config::OutputConfig;
use publisher::Publisher;
use sink::store::S3Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    processor::init_lambda_logging();
    let configured =
        OutputConfig::from_env().map_err(Error::from).and_then(|d| Ok((d, publisher::config::from_env()?)));
    let (destination, (settings, interval)) = match configured {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return Err(e);
        }
    };
    let store = S3Store::from_env(&destination.bucket).await?;
    let group = settings.group;
    let publisher = Publisher::new(store, &destination.prefix, settings);
    let publisher = &publisher;
    // Any event starts the rounds: the schedule's (an EventBridge Scheduled Event), or a test
    // invocation's.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let left_ms = (event.context.deadline as i64 - model::now_ms()).max(0) as u64;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(left_ms);
        let done =
            publisher::lambda::run_rounds(publisher, deadline, interval, |r| publisher::metrics::emit(r, group)).await;
        let published: u64 = done.rounds.iter().map(|r| r.commits()).sum();
        if done.errors.is_empty() {
            Ok(serde_json::json!({ "rounds": done.rounds.len(), "commitsPublished": published }))
        } else {
            Err(Error::from(format!(
                "{} of {} rounds failed: {}",
                done.errors.len(),
                done.rounds.len() + done.errors.len(),
                done.errors.join("; ")
            )))
        }
    }))
    .await
}

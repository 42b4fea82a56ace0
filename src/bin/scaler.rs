//! The scaler function's `bootstrap` (provided.al2023), invoked every minute by an EventBridge
//! schedule: its settings from the environment (`STREAM_NAME`, `SCALER_*`), one step of
//! `orderstream::scaler` per invocation, reported as an EMF line (the dashboard's shards widget)
//! and a log line.

use clap::Parser;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderstream::scaler::{Scaler, Settings};

/// The settings, read from the environment alone.
#[derive(Parser)]
struct FromEnv {
    #[command(flatten)]
    settings: Settings,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    processor::init_lambda_logging();
    let configured = match FromEnv::try_parse_from(["scaler"]) {
        _ if std::env::var_os("STREAM_NAME").is_none_or(|s| s.is_empty()) => {
            Err(Error::from("STREAM_NAME is not set: the function scales that stream"))
        }
        Ok(c) => Scaler::from_env(c.settings).await.map_err(|e| Error::from(e.to_string())),
        Err(e) => Err(Error::from(e.to_string().lines().next().unwrap_or_default().to_string())),
    };
    let scaler = match configured {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return Err(e);
        }
    };
    let scaler = &scaler;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        let step = scaler.step(model::now_ms(), false).await.map_err(|e| Error::from(e.to_string()))?;
        processor::metrics::write_lines([&step.emf(model::now_ms())]);
        let d = &step.decision;
        tracing::info!(
            stream = %step.stream, current = d.current, reactive = d.reactive, scheduled = ?d.scheduled,
            target = d.target, called = step.called, reasons = ?d.reasons, "scaling step"
        );
        Ok::<_, Error>(serde_json::to_value(&step)?)
    }))
    .await
}

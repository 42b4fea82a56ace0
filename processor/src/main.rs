//! The Lambda `bootstrap` (provided.al2023): configuration from the environment, one S3 client,
//! and the shared handler. Everything else lives in the library.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use processor::config::OutputConfig;
use processor::kinesis::KinesisEvent;
use processor::Processor;
use sink::store::S3Store;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    processor::init_lambda_logging();

    let (destination, config) =
        match OutputConfig::from_env().and_then(|d| Ok((d, processor::config::processor_config_from_env()?))) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "bad configuration");
                return Err(e.into());
            }
        };
    let store = S3Store::from_env(&destination.bucket).await?;
    let processor = Processor::with_config(store, destination.prefix, config);
    let processor = &processor;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| async move {
        let (response, report) = processor.handle(event.payload).await;
        processor::metrics::emit(&report, &event.context.request_id);
        Ok::<_, Error>(response)
    }))
    .await
}

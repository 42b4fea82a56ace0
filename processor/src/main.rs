//! The Lambda `bootstrap` (provided.al2023): configuration from the environment, one S3 client,
//! and the shared handler. Everything else lives in the library.

use lambda_runtime::{layers::TracingLayer, service_fn, Error, LambdaEvent, Runtime};
use processor::config::OutputConfig;
use processor::kinesis::KinesisEvent;
use processor::runtime::EventReader;
use processor::Processor;
use sink::store::S3Store;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let kept = processor::heap::keep_freed_memory();
    processor::init_lambda_logging();
    if !kept {
        tracing::warn!(
            "malloc's mmap and trim thresholds left as they were: each invocation faults its buffers in again"
        );
    }

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
    // The event is read by `EventReader` (the payload `None`), or by lambda_runtime when it is
    // not a Kinesis event, to report the error with its path.
    let reader = EventReader::default();
    let handler = service_fn(|event: LambdaEvent<Option<KinesisEvent>>| {
        let reader = reader.clone();
        async move {
            let payload = reader.event(event.payload, &event.context.request_id)?;
            let (response, report) = processor.handle(payload).await;
            processor::metrics::emit(&report, &event.context.request_id);
            Ok::<_, Error>(response)
        }
    });
    Runtime::new(handler).layer(reader.clone()).layer(TracingLayer::new()).run().await
}

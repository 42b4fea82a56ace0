//! The Lambda processor: Kinesis batches to the contract's five Parquet datasets, exactly once.
//!
//! - [`kinesis`]: the Lambda Kinesis event and the records it carries;
//! - [`Processor`]: validation, de-duplication and commits over any [`sink::store::ObjectStore`];
//! - [`ledger`]: the per-shard ledger of commits that makes the datasets exact;
//! - [`dedup`]: the `event_id` window;
//! - [`config`]: the environment of contract section 3;
//! - [`digest`]: what a batch committed, in the figures a dashboard charts;
//! - [`metrics`]: CloudWatch Embedded Metric Format lines of each batch;
//! - [`runtime`]: the event read from the invocation's body ahead of `lambda_runtime`;
//! - [`heap`]: the allocator kept from giving each invocation's memory back between invocations.
//!
//! The binary `processor` (src/main.rs) is only the Lambda wiring around [`Processor::handle`].

mod cache;
pub mod config;
pub mod dedup;
pub mod digest;
mod handler;
pub mod heap;
pub mod kinesis;
pub mod ledger;
pub mod metrics;
pub mod runtime;

pub use handler::{BatchReport, Processor, ProcessorConfig};

/// A Lambda function's logs: JSON lines without colours or timestamps (CloudWatch adds the
/// time), filtered by `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`, `info` by default.
pub fn init_lambda_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time()
        .with_current_span(false)
        .init();
}

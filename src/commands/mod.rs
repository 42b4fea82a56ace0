//! The command line, one module a command: each has its flags (`Args`) and `run`, which answers
//! whether the command did all it should (the exit status). Flag groups shared by several
//! commands live here.

pub mod consume;
pub mod cost;
pub mod invoke;
pub mod main_job;
pub mod plan;
pub mod process;
pub mod publish;
pub mod repair;
pub mod replay;
pub mod scale;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use processor::config::OutputConfig;
use processor::BatchReport;
use producer::args;
use sink::store::{LocalStore, ObjectStore, S3Store};

use crate::lambda::esm::EsmConfig;
use crate::lambda::on_failure::Destination;
use crate::lambda::runtime_api::FunctionSpec;

/// Where the datasets go without a bucket.
#[derive(clap::Args, Clone)]
pub struct DataDir {
    /// Local data directory (the datasets' keys under it, as in the bucket).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
}

impl DataDir {
    /// The store the datasets go to: the bucket when one is given, else this directory.
    pub async fn store(&self, output: &OutputConfig) -> anyhow::Result<Arc<dyn ObjectStore>> {
        match &output.bucket {
            Some(b) => Ok(Arc::new(S3Store::from_env(b.as_str()).await.with_context(|| format!("bucket {b:?}"))?)),
            None => Ok(Arc::new(
                LocalStore::new(&self.data_dir)
                    .with_context(|| format!("cannot use {} as the data directory", self.data_dir.display()))?,
            )),
        }
    }
}

/// The event source mapping's settings, for every command that maps a stream to the handler.
#[derive(clap::Args, Clone)]
pub struct MappingArgs {
    /// Event source mapping: records per invocation at most.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub batch_size: u64,
    /// Event source mapping: batching window in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub batching_window_ms: u64,
    /// Event source mapping: retries of a failing batch before it goes to the on-failure
    /// destination, to be replayed with `orderstream replay`; -1 (the default) retries until the
    /// records expire.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(-1..=10000))]
    pub max_retry_attempts: i64,
    /// Event source mapping: records older than this many seconds go to the on-failure
    /// destination instead of being retried again.
    #[arg(long, value_parser = args::positive)]
    pub max_record_age: Option<f64>,
    /// Event source mapping: retry a failed batch in halves (BisectBatchOnFunctionError).
    #[arg(long)]
    pub bisect_on_error: bool,
}

impl MappingArgs {
    pub fn config(&self, on_failure: Destination) -> EsmConfig {
        let mut esm = EsmConfig::new(on_failure);
        esm.batch_size = self.batch_size as usize;
        esm.batching_window = Duration::from_millis(self.batching_window_ms);
        esm.max_retry_attempts = u32::try_from(self.max_retry_attempts).ok();
        esm.max_record_age = self.max_record_age.map(Duration::from_secs_f64);
        esm.bisect_on_error = self.bisect_on_error;
        esm
    }
}

/// The real function under the local Lambda Runtime API.
#[derive(clap::Args, Clone)]
pub struct FunctionArgs {
    /// The Lambda bootstrap to run (for example target/release/processor); it writes to the
    /// bucket given by --bucket, with this process's AWS environment.
    #[arg(long, value_name = "BOOTSTRAP")]
    pub function: Option<PathBuf>,
    /// The function's timeout in seconds: a longer invocation is stopped, as Lambda stops it.
    #[arg(long, default_value_t = 60.0, value_parser = args::positive, requires = "function")]
    pub function_timeout: f64,
}

impl FunctionArgs {
    /// The function to run, when `--function` names one.
    pub fn spec(&self, output: &OutputConfig) -> anyhow::Result<Option<FunctionSpec>> {
        let Some(bootstrap) = &self.function else { return Ok(None) };
        anyhow::ensure!(bootstrap.is_file(), "--function {}: no such file", bootstrap.display());
        let bucket = output.bucket.as_deref().with_context(|| {
            format!(
                "--function needs --bucket (or {}): the Lambda function writes to S3 only",
                processor::config::BUCKET_VAR
            )
        })?;
        let mut spec = FunctionSpec::new(bootstrap);
        spec.timeout = Duration::from_secs_f64(self.function_timeout);
        if let Some(region) = std::env::var("AWS_REGION").ok().or_else(|| std::env::var("AWS_DEFAULT_REGION").ok()) {
            spec.region = region;
        }
        spec.env = output.lambda_env(bucket);
        Ok(Some(spec))
    }
}

/// One line of what a batch did, and one per reason code of its quarantine.
pub fn print_report(report: &BatchReport, store: &dyn ObjectStore) {
    println!(
        "records {}: {} events, {} quarantined, {} duplicates dropped, {} already committed; {} files in {}",
        report.records,
        report.events,
        report.quarantined,
        report.duplicates,
        report.already_committed,
        report.files,
        store.describe()
    );
    for (code, n) in &report.quarantined_by_reason {
        println!("  quarantined {code}: {n}");
    }
}

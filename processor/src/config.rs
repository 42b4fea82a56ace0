//! Configuration in one struct: flags for the command line, the same names as environment
//! variables for the Lambda function (contract section 3). The one home of the `ANALYTICS_*` and
//! tuning variables' names.

use clap::Args;

/// The dataset bucket's variable.
pub const BUCKET_VAR: &str = "ANALYTICS_BUCKET";
/// The datasets' key prefix variable.
pub const PREFIX_VAR: &str = "ANALYTICS_PREFIX";

/// Where the datasets go.
#[derive(Debug, Clone, Args)]
pub struct OutputConfig {
    /// Dataset bucket (S3). The AWS SDK's standard environment configures the client: AWS_REGION,
    /// credentials, AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 (then path-style addressing).
    #[arg(long, env = BUCKET_VAR)]
    pub bucket: Option<String>,
    /// Key prefix of every dataset, empty or ending with '/'.
    #[arg(long, env = PREFIX_VAR, default_value = "", value_parser = parse_prefix)]
    pub prefix: String,
}

fn parse_prefix(s: &str) -> Result<String, sink::layout::PrefixError> {
    sink::layout::check_prefix(s).map(|()| s.to_string())
}

/// A configuration the function cannot run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{BUCKET_VAR} is not set: set it to the name of the dataset bucket")]
    NoBucket,
    #[error("{0}")]
    Invalid(String),
    #[error("{name}={value:?} is not a whole number")]
    NotANumber { name: &'static str, value: String },
    #[error("STREAM_RETENTION_HOURS={0} is outside Kinesis's 24 to 8760 hours")]
    Retention(u64),
}

#[derive(Debug, clap::Parser)]
#[command(name = "processor", about = "The Lambda bootstrap: reads its configuration from the environment")]
struct LambdaEnv {
    #[command(flatten)]
    output: OutputConfig,
}

/// The Lambda function's bucket and prefix, from its environment only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub bucket: String,
    pub prefix: String,
}

impl OutputConfig {
    /// The Lambda function's configuration, from its environment only.
    pub fn from_env() -> Result<Destination, ConfigError> {
        use clap::Parser;
        let env = LambdaEnv::try_parse_from(["processor"])
            .map_err(|e| ConfigError::Invalid(e.to_string().trim().to_string()))?;
        match env.output.bucket {
            Some(bucket) if !bucket.is_empty() => Ok(Destination { bucket, prefix: env.output.prefix }),
            _ => Err(ConfigError::NoBucket),
        }
    }

    /// The variables that configure a function process writing here.
    pub fn lambda_env(&self, bucket: &str) -> Vec<(String, String)> {
        vec![(BUCKET_VAR.into(), bucket.into()), (PREFIX_VAR.into(), self.prefix.clone())]
    }
}

/// The processor's tuning from the Lambda environment: `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (MB)
/// sizes the shard-state cache (a quarter of it; `STATE_CACHE_MB` overrides), and
/// `STREAM_RETENTION_HOURS` (default 24) tells when the ledger may fold old commit records.
pub fn processor_config_from_env() -> Result<crate::ProcessorConfig, ConfigError> {
    let mut config = crate::ProcessorConfig::default();
    let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
        match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => {
                v.trim().parse::<u64>().map(Some).map_err(|_| ConfigError::NotANumber { name, value: v })
            }
            _ => Ok(None),
        }
    };
    if let Some(mb) = number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")? {
        config.cache_budget = (mb as usize) << 18;
    }
    if let Some(mb) = number("STATE_CACHE_MB")? {
        config.cache_budget = (mb as usize) << 20;
    }
    if let Some(hours) = number("STREAM_RETENTION_HOURS")? {
        if !(24..=8760).contains(&hours) {
            return Err(ConfigError::Retention(hours));
        }
        config.ledger.retention = std::time::Duration::from_secs(hours * 3600);
    }
    Ok(config)
}

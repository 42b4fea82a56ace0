//! Configuration in one struct: flags for the command line, the same names as environment
//! variables for the Lambda function (contract section 3).

use clap::Args;

/// Where the datasets go.
#[derive(Debug, Clone, Args)]
pub struct OutputConfig {
    /// Dataset bucket (S3). The AWS SDK's standard environment configures the client: AWS_REGION,
    /// credentials, AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 (then path-style addressing).
    #[arg(long, env = "ANALYTICS_BUCKET")]
    pub bucket: Option<String>,
    /// Key prefix of every dataset, empty or ending with '/'.
    #[arg(long, env = "ANALYTICS_PREFIX", default_value = "", value_parser = parse_prefix)]
    pub prefix: String,
}

fn parse_prefix(s: &str) -> Result<String, String> {
    sink::layout::check_prefix(s).map(|()| s.to_string())
}

#[derive(Debug, clap::Parser)]
#[command(name = "processor", about = "The Lambda bootstrap: reads its configuration from the environment")]
struct LambdaEnv {
    #[command(flatten)]
    output: OutputConfig,
}

impl OutputConfig {
    /// The Lambda function's configuration, from its environment only.
    pub fn from_env() -> Result<(String, String), String> {
        use clap::Parser;
        let env = LambdaEnv::try_parse_from(["processor"]).map_err(|e| e.to_string().trim().to_string())?;
        match env.output.bucket {
            Some(b) if !b.is_empty() => Ok((b, env.output.prefix)),
            _ => Err("ANALYTICS_BUCKET is not set: set it to the name of the dataset bucket".into()),
        }
    }
}

/// The processor's tuning from the Lambda environment: `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (MB)
/// sizes the shard-state cache (a quarter of it; `STATE_CACHE_MB` overrides), and
/// `STREAM_RETENTION_HOURS` (default 24) tells when the ledger may fold old commit records.
pub fn processor_config_from_env() -> Result<crate::ProcessorConfig, String> {
    let mut config = crate::ProcessorConfig::default();
    let number = |name: &str| -> Result<Option<u64>, String> {
        match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => {
                v.trim().parse::<u64>().map(Some).map_err(|_| format!("{name}={v:?} is not a whole number"))
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
            return Err(format!("STREAM_RETENTION_HOURS={hours} is outside Kinesis's 24 to 8760 hours"));
        }
        config.ledger.retention = std::time::Duration::from_secs(hours * 3600);
    }
    Ok(config)
}

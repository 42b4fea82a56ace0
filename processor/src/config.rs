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

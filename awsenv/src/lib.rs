//! The AWS SDK's standard environment (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` /
//! `AWS_ENDPOINT_URL_<SERVICE>`), loaded one way by every binary that talks to AWS: the processor
//! (S3), the producer (Kinesis) and the local command line (Kinesis, SQS, S3); and the SDK's
//! errors, whose chains span lines, as one line that says what to do.

/// Why the environment cannot configure a client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AwsEnvError {
    #[error("no AWS region configured: set AWS_REGION (for example AWS_REGION=us-east-1)")]
    NoRegion,
    #[error("no root certificate could be read from {0}: point it at a PEM file of CA certificates, or unset it")]
    NoRootCertificates(String),
}

/// The HTTPS client of every SDK client: hyper 1 and rustls with ring, the system's root
/// certificates; one connection pool per process.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    static CLIENT: std::sync::OnceLock<aws_smithy_runtime_api::client::http::SharedHttpClient> =
        std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
        })
        .clone()
}

/// The shared SDK configuration from the environment; a region is required.
pub async fn load() -> Result<aws_config::SdkConfig, AwsEnvError> {
    check_root_certificates()?;
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client()).load().await;
    if shared.region().is_none() {
        return Err(AwsEnvError::NoRegion);
    }
    Ok(shared)
}

/// Roots named by `SSL_CERT_FILE` / `SSL_CERT_DIR` that hold no certificate: the TLS client
/// would panic at its first connection, so say it here instead. The system's own roots are not
/// read twice (a Lambda cold start would pay for it).
fn check_root_certificates() -> Result<(), AwsEnvError> {
    let named: Vec<String> = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok().filter(|x| !x.is_empty()).map(|x| format!("{v}={x}")))
        .collect();
    if !named.is_empty() && rustls_native_certs::load_native_certs().certs.is_empty() {
        return Err(AwsEnvError::NoRootCertificates(named.join(" and ")));
    }
    Ok(())
}

/// Whether the environment names a custom endpoint for `service` (moto, MinIO, LocalStack...):
/// `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL`.
pub fn endpoint_url_is_set(service: &str) -> bool {
    [format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase()), "AWS_ENDPOINT_URL".to_string()]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// What the SDK says when it found no credentials anywhere.
pub const NO_CREDENTIALS: &str =
    "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role";

/// An SDK error (give it `DisplayErrorContext(e)` for the whole chain) as one line; missing
/// credentials as [`NO_CREDENTIALS`].
pub fn one_line(e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    if text.contains("no credentials found") {
        return NO_CREDENTIALS.to_string();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether [`one_line`] made the error the missing-credentials line.
pub fn is_no_credentials(line: &str) -> bool {
    line == NO_CREDENTIALS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_fold_into_one_line_and_missing_credentials_say_what_to_do() {
        assert_eq!(
            one_line("dispatch failure:\n  io error:\n\tconnection refused"),
            "dispatch failure: io error: connection refused"
        );
        assert_eq!(one_line("an error: no credentials found in the chain"), NO_CREDENTIALS);
        assert!(is_no_credentials(&one_line("no credentials found")));
        assert_eq!(
            AwsEnvError::NoRegion.to_string(),
            "no AWS region configured: set AWS_REGION (for example AWS_REGION=us-east-1)"
        );
    }
}

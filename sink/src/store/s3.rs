use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{ObjectStore, StoreError};

/// Characters kept as they are in an `x-amz-copy-source` value: unreserved ones and `/`.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// A bucket through aws-sdk-s3.
///
/// Writes (`PutObject`, `UploadPart`) are signed without hashing their body
/// (`UNSIGNED-PAYLOAD`): the SDK's CRC32 of the body goes in a signed `x-amz-checksum-crc32`
/// header, which S3 checks against the body it receives, and TLS protects the body in transit.
/// The SHA-256 that payload signing would add was 2% of the Lambda function's CPU
/// (docs/performance.md, B1).
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

/// Why an [`S3Store`] cannot be made from the environment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum S3ConfigError {
    #[error("the bucket name is empty")]
    EmptyBucket,
    #[error(transparent)]
    Env(#[from] awsenv::AwsEnvError),
}

impl S3Store {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Store { client, bucket: bucket.into() }
    }

    /// A client from the SDK's standard environment (region, credentials, `AWS_ENDPOINT_URL` /
    /// `AWS_ENDPOINT_URL_S3`), path-style when an endpoint URL is set.
    pub async fn from_env(bucket: impl Into<String>) -> Result<Self, S3ConfigError> {
        let bucket = bucket.into();
        if bucket.is_empty() {
            return Err(S3ConfigError::EmptyBucket);
        }
        let shared = awsenv::load().await?;
        let config =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(awsenv::endpoint_url_is_set("s3")).build();
        Ok(S3Store::new(Client::from_conf(config), bucket))
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn err<E, R>(&self, op: &'static str, key: &str, e: &SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        StoreError::new(op, key, &self.describe(), awsenv::one_line(DisplayErrorContext(e)))
    }

    /// A GET of the whole object, or of the byte range given (`bytes=0-99`).
    async fn get_range(&self, key: &str, mut range: Option<String>) -> Result<Option<Bytes>, StoreError> {
        loop {
            match self.client.get_object().bucket(&self.bucket).key(key).set_range(range.clone()).send().await {
                Ok(mut out) => {
                    // One buffer of the object's size, filled chunk by chunk: collecting the chunks
                    // first and then joining them would hold the object twice.
                    let size = out.content_length().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
                    let mut body = bytes::BytesMut::with_capacity(size);
                    while let Some(chunk) = out
                        .body
                        .try_next()
                        .await
                        .map_err(|e| StoreError::new("get", key, &self.describe(), e.to_string()))?
                    {
                        body.extend_from_slice(&chunk);
                    }
                    return Ok(Some(body.freeze()));
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
                // A range that starts past the end (an empty object) is refused with 416: the
                // object is all of its start.
                Err(e) if range.is_some() && e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                    range = None
                }
                Err(e) => return Err(self.err("get", key, &e)),
            }
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.get_range(key, None).await
    }

    async fn get_prefix(&self, key: &str, len: usize) -> Result<Option<Bytes>, StoreError> {
        if len == 0 {
            return Ok(self.exists(key).await?.then(Bytes::new));
        }
        self.get_range(key, Some(format!("bytes=0-{}", len - 1))).await
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("put", key, &e))
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .body(ByteStream::from(body))
            .customize()
            .disable_payload_signing()
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(false),
            Err(e) => Err(self.err("put_if_absent", key, &e)),
        }
    }

    async fn copy(&self, from: &str, to: &str) -> Result<bool, StoreError> {
        let source = utf8_percent_encode(&format!("{}/{from}", self.bucket), COPY_SOURCE).to_string();
        match self.client.copy_object().bucket(&self.bucket).key(to).copy_source(source).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("NoSuchKey") => Ok(false),
            Err(e) => Err(self.err("copy", from, &e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(self.err("exists", key, &e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("delete", key, &e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("list", prefix, &e))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        keys.sort();
        Ok(keys)
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).delimiter("/").into_paginator().send();
        let mut dirs = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("list_dirs", prefix, &e))?;
            dirs.extend(page.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_string)));
        }
        dirs.sort();
        dirs.dedup();
        Ok(dirs)
    }

    async fn upload_start(&self, key: &str) -> Result<String, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err("upload_start", key, &e))?;
        out.upload_id()
            .map(str::to_string)
            .ok_or_else(|| StoreError::new("upload_start", key, &self.describe(), "the reply holds no upload id"))
    }

    async fn upload_part(&self, key: &str, upload: &str, n: u32, body: Bytes) -> Result<String, StoreError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .part_number(i32::try_from(n).unwrap_or(i32::MAX))
            .body(ByteStream::from(body))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| self.err("upload_part", key, &e))?;
        out.e_tag()
            .map(str::to_string)
            .ok_or_else(|| StoreError::new("upload_part", key, &self.describe(), "the reply holds no ETag"))
    }

    async fn upload_complete(&self, key: &str, upload: &str, parts: Vec<(u32, String)>) -> Result<(), StoreError> {
        let parts = parts
            .into_iter()
            .map(|(n, etag)| {
                CompletedPart::builder().part_number(i32::try_from(n).unwrap_or(i32::MAX)).e_tag(etag).build()
            })
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("upload_complete", key, &e))
    }

    async fn upload_abort(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("upload_abort", key, &e))
    }
}

//! Object stores behind one narrow interface: [`S3Store`] (aws-sdk-s3), [`LocalStore`] (a
//! directory with the same keys) and [`MemoryStore`] (tests and benchmarks).
//!
//! The commit protocol (docs/exactly-once.md) needs exactly these operations; in particular
//! [`ObjectStore::put_if_absent`], an atomic create-if-absent (S3 `If-None-Match: *`).

mod local;
mod memory;
mod s3;
mod upload;

use async_trait::async_trait;
use bytes::Bytes;

pub use local::LocalStore;
pub use memory::MemoryStore;
pub use s3::{S3ConfigError, S3Store};
pub use upload::{Upload, MIN_PART_BYTES};

/// A failed store operation, naming the operation, the key and the store.
#[derive(Debug, thiserror::Error)]
#[error("{op} {key:?} in {store}: {message}")]
pub struct StoreError {
    pub op: &'static str,
    pub key: String,
    pub store: String,
    pub message: String,
}

impl StoreError {
    pub fn new(op: &'static str, key: &str, store: &str, message: impl Into<String>) -> Self {
        StoreError { op, key: key.to_string(), store: store.to_string(), message: message.into() }
    }
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// `s3://bucket` or a directory path, for messages.
    fn describe(&self) -> String;
    /// The object's bytes, or `None` when there is no such key.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;
    /// The object's first `len` bytes (all of it when it is shorter), or `None` when there is no
    /// such key: on S3 a GET with a `Range`, for a reader that needs only the start of an object.
    async fn get_prefix(&self, key: &str, len: usize) -> Result<Option<Bytes>, StoreError> {
        Ok(self.get(key).await?.map(|body| body.slice(..body.len().min(len))))
    }
    /// Creates or replaces the object.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError>;
    /// Creates the object only if the key does not exist, atomically: `Ok(false)` when it exists.
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StoreError>;
    /// Copies an object to another key (replacing it): `Ok(false)` when the source is missing.
    async fn copy(&self, from: &str, to: &str) -> Result<bool, StoreError>;
    /// Whether the key exists.
    async fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// Deletes the object; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key under the prefix, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// The "folders" right under the prefix (which ends with `/`), sorted: `<prefix><name>/` for
    /// every key `<prefix><name>/...` (S3's common prefixes with the delimiter `/`).
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Starts a multipart upload of `key`: its id. [`Upload`] drives the four calls.
    async fn upload_start(&self, key: &str) -> Result<String, StoreError>;
    /// Uploads part `n` (from 1; every part but the last at least [`MIN_PART_BYTES`]): its ETag.
    async fn upload_part(&self, key: &str, upload: &str, n: u32, body: Bytes) -> Result<String, StoreError>;
    /// Completes the upload from its parts in order: the object appears whole, at once.
    async fn upload_complete(&self, key: &str, upload: &str, parts: Vec<(u32, String)>) -> Result<(), StoreError>;
    /// Abandons the upload and its parts.
    async fn upload_abort(&self, key: &str, upload: &str) -> Result<(), StoreError>;
}

/// A store behind a pointer (`Arc<S>`, `&S`) is the store.
macro_rules! forward_store {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<S: ObjectStore + ?Sized> ObjectStore for $ptr {
            fn describe(&self) -> String {
                (**self).describe()
            }
            async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
                (**self).get(key).await
            }
            async fn get_prefix(&self, key: &str, len: usize) -> Result<Option<Bytes>, StoreError> {
                (**self).get_prefix(key, len).await
            }
            async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
                (**self).put(key, body).await
            }
            async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
                (**self).put_if_absent(key, body).await
            }
            async fn copy(&self, from: &str, to: &str) -> Result<bool, StoreError> {
                (**self).copy(from, to).await
            }
            async fn exists(&self, key: &str) -> Result<bool, StoreError> {
                (**self).exists(key).await
            }
            async fn delete(&self, key: &str) -> Result<(), StoreError> {
                (**self).delete(key).await
            }
            async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
                (**self).list(prefix).await
            }
            async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
                (**self).list_dirs(prefix).await
            }
            async fn upload_start(&self, key: &str) -> Result<String, StoreError> {
                (**self).upload_start(key).await
            }
            async fn upload_part(&self, key: &str, upload: &str, n: u32, body: Bytes) -> Result<String, StoreError> {
                (**self).upload_part(key, upload, n, body).await
            }
            async fn upload_complete(&self, key: &str, upload: &str, parts: Vec<(u32, String)>) -> Result<(), StoreError> {
                (**self).upload_complete(key, upload, parts).await
            }
            async fn upload_abort(&self, key: &str, upload: &str) -> Result<(), StoreError> {
                (**self).upload_abort(key, upload).await
            }
        }
    )*};
}

forward_store!(std::sync::Arc<S>, &S);

/// The folders right under `prefix` among sorted `keys` (every one starting with `prefix`).
pub(crate) fn dirs_of<'a>(prefix: &str, keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut dirs: Vec<String> = keys
        .filter_map(|k| k.strip_prefix(prefix))
        .filter_map(|rest| rest.find('/').map(|i| format!("{prefix}{}", &rest[..=i])))
        .collect();
    dirs.dedup();
    dirs
}

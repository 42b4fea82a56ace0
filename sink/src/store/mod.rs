//! Object stores behind one narrow interface: [`S3Store`] (aws-sdk-s3), [`LocalStore`] (a
//! directory with the same keys) and [`MemoryStore`] (tests and benchmarks).
//!
//! The commit protocol (docs/exactly-once.md) needs exactly these operations; in particular
//! [`ObjectStore::put_if_absent`], an atomic create-if-absent (S3 `If-None-Match: *`).

mod local;
mod memory;
mod s3;

use async_trait::async_trait;
use bytes::Bytes;

pub use local::LocalStore;
pub use memory::MemoryStore;
pub use s3::{S3ConfigError, S3Store};

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
}

#[async_trait]
impl<S: ObjectStore + ?Sized> ObjectStore for std::sync::Arc<S> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        (**self).get(key).await
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
}

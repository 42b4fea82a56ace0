//! A memory store with S3's semantics that fails requests on command, in the ways S3 fails:
//! refused before anything happens (503), applied with the reply lost (a 500 or a reset after
//! the write), applied with the SDK's retry answered 412 or 409, and a store that ignores
//! `If-None-Match: *` altogether.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use sink::store::{MemoryStore, ObjectStore, StoreError};

/// How an injected fault fails a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refused before anything happened (503 SlowDown).
    Refuse,
    /// A write is applied, then its reply is lost (500 after the write, or a connection reset).
    LostReply,
    /// A write is applied, its reply is lost, and the SDK's retry is answered as a retry would
    /// be: a conditional create with 412 (`Ok(false)`), any other write with an error.
    RetryRefused,
}

#[derive(Default)]
pub struct Faulty {
    pub inner: MemoryStore,
    ops: AtomicUsize,
    fail_from: AtomicUsize,
    burst: AtomicUsize,
    fault: Mutex<Option<Fault>>,
    /// Count (and fail) only writes.
    writes_only: AtomicBool,
    /// Treat conditional creates as plain puts (a store without conditional writes).
    ignore_conditions: AtomicBool,
    /// Writes counted since the last arming.
    pub writes: AtomicUsize,
}

impl Faulty {
    /// Fails `burst` requests in a row once `after` requests have gone through.
    pub fn arm(&self, fault: Option<(usize, usize, Fault)>, writes_only: bool) {
        let (after, burst, kind) = fault.map_or((usize::MAX, 0, None), |(a, b, k)| (a, b, Some(k)));
        self.ops.store(0, Ordering::SeqCst);
        self.writes.store(0, Ordering::SeqCst);
        self.fail_from.store(after, Ordering::SeqCst);
        self.burst.store(burst, Ordering::SeqCst);
        self.writes_only.store(writes_only, Ordering::SeqCst);
        *self.fault.lock().unwrap() = kind;
    }

    pub fn ignore_conditions(&self, yes: bool) {
        self.ignore_conditions.store(yes, Ordering::SeqCst);
    }

    fn take(&self, write: bool) -> Option<Fault> {
        if write {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        if !write && self.writes_only.load(Ordering::SeqCst) {
            return None;
        }
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        let from = self.fail_from.load(Ordering::SeqCst);
        if n >= from && n - from < self.burst.load(Ordering::SeqCst) {
            let kind = (*self.fault.lock().unwrap())?;
            // A read cannot be applied: it fails.
            return Some(if write { kind } else { Fault::Refuse });
        }
        None
    }

    fn error(op: &'static str, key: &str, f: Fault) -> StoreError {
        let message = match f {
            Fault::Refuse => "injected: 503 SlowDown",
            Fault::LostReply | Fault::RetryRefused => "injected: the write was applied, then the connection was reset",
        };
        StoreError::new(op, key, "faulty", message)
    }
}

#[async_trait]
impl ObjectStore for Faulty {
    fn describe(&self) -> String {
        "faulty memory".into()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        if let Some(f) = self.take(false) {
            return Err(Self::error("get", key, f));
        }
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        match self.take(true) {
            Some(Fault::Refuse) => Err(Self::error("put", key, Fault::Refuse)),
            Some(f) => {
                self.inner.put(key, body).await?;
                Err(Self::error("put", key, f))
            }
            None => self.inner.put(key, body).await,
        }
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        if self.ignore_conditions.load(Ordering::SeqCst) {
            return self.put(key, body).await.map(|()| true);
        }
        match self.take(true) {
            Some(Fault::Refuse) => Err(Self::error("put_if_absent", key, Fault::Refuse)),
            Some(Fault::LostReply) => {
                self.inner.put_if_absent(key, body).await?;
                Err(Self::error("put_if_absent", key, Fault::LostReply))
            }
            Some(Fault::RetryRefused) => {
                self.inner.put_if_absent(key, body).await?;
                Ok(false)
            }
            None => self.inner.put_if_absent(key, body).await,
        }
    }
    async fn copy(&self, from: &str, to: &str) -> Result<bool, StoreError> {
        match self.take(true) {
            Some(Fault::Refuse) => Err(Self::error("copy", from, Fault::Refuse)),
            Some(f) => {
                self.inner.copy(from, to).await?;
                Err(Self::error("copy", from, f))
            }
            None => self.inner.copy(from, to).await,
        }
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        if let Some(f) = self.take(false) {
            return Err(Self::error("exists", key, f));
        }
        self.inner.exists(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.take(true) {
            Some(Fault::Refuse) => Err(Self::error("delete", key, Fault::Refuse)),
            Some(f) => {
                self.inner.delete(key).await?;
                Err(Self::error("delete", key, f))
            }
            None => self.inner.delete(key).await,
        }
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        if let Some(f) = self.take(false) {
            return Err(Self::error("list", prefix, f));
        }
        self.inner.list(prefix).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        if let Some(f) = self.take(false) {
            return Err(Self::error("list_dirs", prefix, f));
        }
        self.inner.list_dirs(prefix).await
    }
    async fn upload_start(&self, key: &str) -> Result<String, StoreError> {
        match self.take(true) {
            Some(Fault::Refuse) => Err(Self::error("upload_start", key, Fault::Refuse)),
            Some(f) => {
                self.inner.upload_start(key).await?;
                Err(Self::error("upload_start", key, f))
            }
            None => self.inner.upload_start(key).await,
        }
    }
    async fn upload_part(&self, key: &str, upload: &str, n: u32, body: Bytes) -> Result<String, StoreError> {
        match self.take(true) {
            Some(Fault::Refuse) => Err(Self::error("upload_part", key, Fault::Refuse)),
            Some(f) => {
                self.inner.upload_part(key, upload, n, body).await?;
                Err(Self::error("upload_part", key, f))
            }
            None => self.inner.upload_part(key, upload, n, body).await,
        }
    }
    async fn upload_complete(&self, key: &str, upload: &str, parts: Vec<(u32, String)>) -> Result<(), StoreError> {
        match self.take(true) {
            Some(Fault::Refuse) => Err(Self::error("upload_complete", key, Fault::Refuse)),
            Some(f) => {
                self.inner.upload_complete(key, upload, parts).await?;
                Err(Self::error("upload_complete", key, f))
            }
            None => self.inner.upload_complete(key, upload, parts).await,
        }
    }
    async fn upload_abort(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        self.inner.upload_abort(key, upload).await
    }
}

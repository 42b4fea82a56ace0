//! Fault injection: a store that kills the whole process (abort, no unwinding, no cleanup)
//! right before its N+1th write (the crash tests run the real binary with
//! `--crash-after-writes N` for every N to cut a commit between any two writes), and a store
//! that refuses every write for a while (an S3 outage: `--store-outage START,LEN`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use sink::store::{ObjectStore, StoreError};

pub struct CrashAfterWrites {
    inner: Arc<dyn ObjectStore>,
    writes_left: AtomicUsize,
}

impl CrashAfterWrites {
    pub fn new(inner: Arc<dyn ObjectStore>, writes: usize) -> Self {
        CrashAfterWrites { inner, writes_left: AtomicUsize::new(writes) }
    }

    fn before_write(&self) {
        let left = self.writes_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if left.is_err() {
            eprintln!("fault injection: killing the process before a write");
            std::process::abort();
        }
    }
}

#[async_trait]
impl ObjectStore for CrashAfterWrites {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.inner.get(key).await
    }
    async fn get_prefix(&self, key: &str, len: usize) -> Result<Option<Bytes>, StoreError> {
        self.inner.get_prefix(key, len).await
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.before_write();
        self.inner.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        self.before_write();
        self.inner.put_if_absent(key, body).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<bool, StoreError> {
        self.before_write();
        self.inner.copy(from, to).await
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.exists(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.before_write();
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list_dirs(prefix).await
    }
    async fn upload_start(&self, key: &str) -> Result<String, StoreError> {
        self.before_write();
        self.inner.upload_start(key).await
    }
    async fn upload_part(&self, key: &str, upload: &str, n: u32, body: Bytes) -> Result<String, StoreError> {
        self.before_write();
        self.inner.upload_part(key, upload, n, body).await
    }
    async fn upload_complete(&self, key: &str, upload: &str, parts: Vec<(u32, String)>) -> Result<(), StoreError> {
        self.before_write();
        self.inner.upload_complete(key, upload, parts).await
    }
    async fn upload_abort(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        self.before_write();
        self.inner.upload_abort(key, upload).await
    }
}

/// A store that refuses every write from `from` for `len`, as an S3 outage does.
pub struct Outage {
    inner: Arc<dyn ObjectStore>,
    from: Instant,
    until: Instant,
}

impl Outage {
    pub fn new(inner: Arc<dyn ObjectStore>, from: Instant, len: Duration) -> Self {
        Outage { inner, from, until: from + len }
    }

    fn check(&self, op: &'static str, key: &str) -> Result<(), StoreError> {
        let now = Instant::now();
        if now >= self.from && now < self.until {
            return Err(StoreError::new(op, key, &self.inner.describe(), "injected outage: 503 Service Unavailable"));
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for Outage {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.inner.get(key).await
    }
    async fn get_prefix(&self, key: &str, len: usize) -> Result<Option<Bytes>, StoreError> {
        self.inner.get_prefix(key, len).await
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.check("put", key)?;
        self.inner.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        self.check("put_if_absent", key)?;
        self.inner.put_if_absent(key, body).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<bool, StoreError> {
        self.check("copy", from)?;
        self.inner.copy(from, to).await
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.exists(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check("delete", key)?;
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list_dirs(prefix).await
    }
    async fn upload_start(&self, key: &str) -> Result<String, StoreError> {
        self.check("upload_start", key)?;
        self.inner.upload_start(key).await
    }
    async fn upload_part(&self, key: &str, upload: &str, n: u32, body: Bytes) -> Result<String, StoreError> {
        self.check("upload_part", key)?;
        self.inner.upload_part(key, upload, n, body).await
    }
    async fn upload_complete(&self, key: &str, upload: &str, parts: Vec<(u32, String)>) -> Result<(), StoreError> {
        self.check("upload_complete", key)?;
        self.inner.upload_complete(key, upload, parts).await
    }
    async fn upload_abort(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        self.check("upload_abort", key)?;
        self.inner.upload_abort(key, upload).await
    }
}

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectStore, StoreError};

/// An in-memory store with S3's semantics, for tests and benchmarks.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        // A panic while holding the lock cannot leave the map half-updated (each operation is
        // one map call), so a poisoned lock is still consistent.
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.objects().get(key).cloned())
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.objects().insert(key.to_string(), body);
        Ok(())
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        let mut objects = self.objects();
        if objects.contains_key(key) {
            return Ok(false);
        }
        objects.insert(key.to_string(), body);
        Ok(true)
    }
    async fn copy(&self, from: &str, to: &str) -> Result<bool, StoreError> {
        let mut objects = self.objects();
        let Some(body) = objects.get(from).cloned() else { return Ok(false) };
        objects.insert(to.to_string(), body);
        Ok(true)
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.objects().contains_key(key))
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.objects().remove(key);
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .objects()
            .range(prefix.to_string()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

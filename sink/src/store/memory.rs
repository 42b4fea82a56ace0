use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectStore, StoreError};

/// An in-memory store with S3's semantics, for tests and benchmarks.
/// Multipart uploads in progress: id to key and parts.
type Uploads = BTreeMap<String, (String, BTreeMap<u32, Bytes>)>;

#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
    uploads: Mutex<Uploads>,
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

    fn uploads(&self) -> std::sync::MutexGuard<'_, Uploads> {
        self.uploads.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn no_upload(op: &'static str, key: &str) -> StoreError {
        StoreError::new(op, key, "memory", "NoSuchUpload")
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
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let objects = self.objects();
        let keys = objects.range(prefix.to_string()..).map(|(k, _)| k.as_str()).take_while(|k| k.starts_with(prefix));
        Ok(super::dirs_of(prefix, keys))
    }
    async fn upload_start(&self, key: &str) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.uploads().insert(id.clone(), (key.to_string(), BTreeMap::new()));
        Ok(id)
    }
    async fn upload_part(&self, key: &str, upload: &str, n: u32, body: Bytes) -> Result<String, StoreError> {
        let mut uploads = self.uploads();
        let (k, parts) = uploads.get_mut(upload).ok_or_else(|| Self::no_upload("upload_part", key))?;
        if k != key {
            return Err(Self::no_upload("upload_part", key));
        }
        parts.insert(n, body);
        Ok(format!("\"{n}\""))
    }
    async fn upload_complete(&self, key: &str, upload: &str, parts: Vec<(u32, String)>) -> Result<(), StoreError> {
        let (k, held) = self.uploads().remove(upload).ok_or_else(|| Self::no_upload("upload_complete", key))?;
        let mut chosen = Vec::with_capacity(parts.len());
        for (n, _) in &parts {
            chosen.push(held.get(n).filter(|_| k == key).ok_or_else(|| Self::no_upload("upload_complete", key))?);
        }
        let mut body = Vec::with_capacity(chosen.iter().map(|p| p.len()).sum());
        for part in chosen {
            body.extend_from_slice(part);
        }
        self.objects().insert(key.to_string(), Bytes::from(body));
        Ok(())
    }
    async fn upload_abort(&self, _key: &str, upload: &str) -> Result<(), StoreError> {
        self.uploads().remove(upload);
        Ok(())
    }
}

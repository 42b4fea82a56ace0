//! Writing one object in parts, with memory bounded by the part size: a single PUT when the
//! whole object fits in one part, a multipart upload otherwise.

use bytes::{Bytes, BytesMut};

use super::{ObjectStore, StoreError};

/// S3's smallest part (but the last).
pub const MIN_PART_BYTES: usize = 5 << 20;

/// An object being written. Call [`Upload::finish`] to make it appear (whole, at once) or
/// [`Upload::abort`] to drop it; an upload that is neither leaves its parts to the bucket's
/// lifecycle rule for incomplete multipart uploads.
pub struct Upload<'a, S: ObjectStore + ?Sized> {
    store: &'a S,
    key: String,
    part_bytes: usize,
    buf: BytesMut,
    id: Option<String>,
    parts: Vec<(u32, String)>,
    written: u64,
}

impl<'a, S: ObjectStore + ?Sized> Upload<'a, S> {
    /// Parts of `part_bytes` (at least [`MIN_PART_BYTES`]).
    pub fn new(store: &'a S, key: &str, part_bytes: usize) -> Self {
        let part_bytes = part_bytes.max(MIN_PART_BYTES);
        Upload {
            store,
            key: key.to_string(),
            part_bytes,
            buf: BytesMut::new(),
            id: None,
            parts: Vec::new(),
            written: 0,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Appends bytes; a full part is uploaded before this returns.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.buf.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        while self.buf.len() >= self.part_bytes {
            let part = self.buf.split_to(self.part_bytes).freeze();
            self.send(part).await?;
        }
        Ok(())
    }

    async fn send(&mut self, part: Bytes) -> Result<(), StoreError> {
        let id = match &self.id {
            Some(id) => id.clone(),
            None => {
                let id = self.store.upload_start(&self.key).await?;
                self.id = Some(id.clone());
                id
            }
        };
        let n = self.parts.len() as u32 + 1;
        let etag = self.store.upload_part(&self.key, &id, n, part).await?;
        self.parts.push((n, etag));
        Ok(())
    }

    /// Makes the object appear: its size.
    pub async fn finish(mut self) -> Result<u64, StoreError> {
        match self.id.clone() {
            None => self.store.put(&self.key, self.buf.split().freeze()).await?,
            Some(id) => {
                if !self.buf.is_empty() {
                    let rest = self.buf.split().freeze();
                    self.send(rest).await?;
                }
                self.store.upload_complete(&self.key, &id, std::mem::take(&mut self.parts)).await?;
            }
        }
        Ok(self.written)
    }

    /// Drops what was uploaded (best effort: a failure leaves it to the lifecycle rule).
    pub async fn abort(self) {
        if let Some(id) = &self.id {
            if let Err(e) = self.store.upload_abort(&self.key, id).await {
                tracing::warn!(error = %e, "an abandoned multipart upload was not aborted; the bucket's lifecycle rule removes it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn small_objects_are_one_put_and_large_ones_come_in_parts() {
        let store = MemoryStore::new();
        let mut up = Upload::new(&store, "a/small", MIN_PART_BYTES);
        up.write(b"hello").await.unwrap();
        assert_eq!(store.get("a/small").await.unwrap(), None, "nothing appears before finish");
        assert_eq!(up.finish().await.unwrap(), 5);
        assert_eq!(store.get("a/small").await.unwrap().unwrap(), "hello");

        let body: Vec<u8> = (0..(MIN_PART_BYTES * 2 + 123)).map(|i| (i % 251) as u8).collect();
        let mut up = Upload::new(&store, "a/large", 0);
        for chunk in body.chunks(1 << 20) {
            up.write(chunk).await.unwrap();
        }
        assert_eq!(store.get("a/large").await.unwrap(), None);
        up.finish().await.unwrap();
        assert_eq!(store.get("a/large").await.unwrap().unwrap(), body);

        let mut up = Upload::new(&store, "a/dropped", 0);
        up.write(&body).await.unwrap();
        up.abort().await;
        assert_eq!(store.get("a/dropped").await.unwrap(), None);
    }
}

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectStore, StoreError};

/// Temporary files live here, under the root; the leading `.` hides them from readers.
const TMP_DIR: &str = ".tmp";

/// A local directory laid out like the bucket: key `a/b.parquet` is the file `<root>/a/b.parquet`.
///
/// Every write goes to a temporary file first and is then renamed (or hard-linked, for
/// [`ObjectStore::put_if_absent`]) into place, so a reader or a crashed process never sees a
/// partial file. Files are not fsynced: the store survives process crashes, not power loss.
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root`, creating the directory if needed.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(root.join(TMP_DIR))
            .map_err(|e| StoreError::new("create", "", &root.display().to_string(), e.to_string()))?;
        Ok(LocalStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn err(&self, op: &'static str, key: &str, e: impl ToString) -> StoreError {
        StoreError::new(op, key, &self.describe(), e.to_string())
    }

    fn path(&self, op: &'static str, key: &str) -> Result<PathBuf, StoreError> {
        let valid = !key.is_empty()
            && !key.starts_with('/')
            && !key.ends_with('/')
            && key.split('/').all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\\'));
        if !valid {
            return Err(self.err(op, key, "not a valid object key (empty segments, '.', '..' and '\\' are refused)"));
        }
        Ok(self.root.join(key))
    }

    /// Writes `body` to a new temporary file and returns its path.
    fn write_tmp(&self, op: &'static str, key: &str, body: &[u8]) -> Result<PathBuf, StoreError> {
        let tmp = self.root.join(TMP_DIR).join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::write(&tmp, body).map_err(|e| self.err(op, key, e))?;
        Ok(tmp)
    }

    fn ensure_parent(&self, op: &'static str, key: &str, path: &Path) -> Result<(), StoreError> {
        match path.parent() {
            Some(dir) => std::fs::create_dir_all(dir).map_err(|e| self.err(op, key, e)),
            None => Ok(()),
        }
    }

    fn put_sync(&self, key: &str, body: &[u8]) -> Result<(), StoreError> {
        let path = self.path("put", key)?;
        self.ensure_parent("put", key, &path)?;
        let tmp = self.write_tmp("put", key, body)?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.err("put", key, e)
        })
    }

    fn put_if_absent_sync(&self, key: &str, body: &[u8]) -> Result<bool, StoreError> {
        let path = self.path("put_if_absent", key)?;
        self.ensure_parent("put_if_absent", key, &path)?;
        let tmp = self.write_tmp("put_if_absent", key, body)?;
        // link(2) fails if the target exists: an atomic create-if-absent.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.err("put_if_absent", key, e)),
        }
    }

    /// A hard link under the temporary directory renamed into place (a copy where the file
    /// system has no links): no file is ever written in place, so the two names never diverge
    /// by a write, and a gigabyte costs no memory.
    fn copy_sync(&self, from: &str, to: &str) -> Result<bool, StoreError> {
        let source = self.path("copy", from)?;
        let path = self.path("copy", to)?;
        self.ensure_parent("copy", to, &path)?;
        let tmp = self.root.join(TMP_DIR).join(uuid::Uuid::new_v4().simple().to_string());
        let made = std::fs::hard_link(&source, &tmp).or_else(|e| match e.kind() {
            ErrorKind::NotFound => Err(e),
            _ => std::fs::copy(&source, &tmp).map(|_| ()),
        });
        match made {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound && !source.exists() => return Ok(false),
            Err(e) => return Err(self.err("copy", from, e)),
        }
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.err("copy", to, e)
        })?;
        Ok(true)
    }

    /// The object's first `len` bytes (all of it when it is shorter: `usize::MAX` for a GET).
    fn get_sync(&self, key: &str, len: usize) -> Result<Option<Bytes>, StoreError> {
        use std::io::Read;
        let path = self.path("get", key)?;
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.err("get", key, e)),
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut body = Vec::with_capacity(len.min(usize::try_from(size).unwrap_or(usize::MAX)));
        file.take(len as u64).read_to_end(&mut body).map_err(|e| self.err("get", key, e))?;
        Ok(Some(Bytes::from(body)))
    }

    fn list_sync(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Walk the deepest directory that the prefix names in full, then filter.
        let dir_part = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let start = if dir_part.is_empty() { self.root.clone() } else { self.root.join(dir_part) };
        let mut keys = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err("list", prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.err("list", prefix, e))?;
                let path = entry.path();
                let Ok(rel) = path.strip_prefix(&self.root) else { continue };
                let rel = rel.to_string_lossy().replace('\\', "/");
                if rel == TMP_DIR {
                    continue;
                }
                let file_type = entry.file_type().map_err(|e| self.err("list", prefix, e))?;
                if file_type.is_dir() {
                    stack.push(path);
                } else if rel.starts_with(prefix) {
                    keys.push(rel);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

impl LocalStore {
    fn list_dirs_sync(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let dir = prefix.strip_suffix('/').unwrap_or(prefix);
        let path = if dir.is_empty() { self.root.clone() } else { self.path("list_dirs", dir)? };
        let entries = match std::fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err("list_dirs", prefix, e)),
        };
        let mut dirs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.err("list_dirs", prefix, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if entry.file_type().map_err(|e| self.err("list_dirs", prefix, e))?.is_dir()
                && !(dir.is_empty() && name == TMP_DIR)
            {
                dirs.push(format!("{prefix}{name}/"));
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    /// A multipart upload's parts live in `.tmp/<id>/<n>` until it completes.
    fn upload_dir(&self, op: &'static str, key: &str, upload: &str) -> Result<PathBuf, StoreError> {
        if upload.is_empty() || !upload.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(self.err(op, key, "NoSuchUpload"));
        }
        Ok(self.root.join(TMP_DIR).join(upload))
    }

    fn upload_complete_sync(&self, key: &str, upload: &str, parts: &[(u32, String)]) -> Result<(), StoreError> {
        use std::io::Write;
        let path = self.path("upload_complete", key)?;
        let dir = self.upload_dir("upload_complete", key, upload)?;
        self.ensure_parent("upload_complete", key, &path)?;
        let tmp = self.root.join(TMP_DIR).join(format!("{upload}.object"));
        let mut out = std::fs::File::create(&tmp).map_err(|e| self.err("upload_complete", key, e))?;
        for (n, _) in parts {
            let mut part =
                std::fs::File::open(dir.join(n.to_string())).map_err(|e| self.err("upload_complete", key, e))?;
            std::io::copy(&mut part, &mut out).map_err(|e| self.err("upload_complete", key, e))?;
        }
        out.flush().map_err(|e| self.err("upload_complete", key, e))?;
        drop(out);
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.err("upload_complete", key, e)
        })?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError::new("io", "", "local", format!("blocking task failed: {e}"))))
}

impl Clone for LocalStore {
    fn clone(&self) -> Self {
        LocalStore { root: self.root.clone() }
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let (s, k) = (self.clone(), key.to_string());
        blocking(move || s.get_sync(&k, usize::MAX)).await
    }
    async fn get_prefix(&self, key: &str, len: usize) -> Result<Option<Bytes>, StoreError> {
        let (s, k) = (self.clone(), key.to_string());
        blocking(move || s.get_sync(&k, len)).await
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let (s, k) = (self.clone(), key.to_string());
        blocking(move || s.put_sync(&k, &body)).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        let (s, k) = (self.clone(), key.to_string());
        blocking(move || s.put_if_absent_sync(&k, &body)).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<bool, StoreError> {
        let (s, f, t) = (self.clone(), from.to_string(), to.to_string());
        blocking(move || s.copy_sync(&f, &t)).await
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path("exists", key)?;
        tokio::fs::try_exists(&path).await.map_err(|e| self.err("exists", key, e))
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path("delete", key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("delete", key, e)),
        }
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (s, p) = (self.clone(), prefix.to_string());
        blocking(move || s.list_sync(&p)).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (s, p) = (self.clone(), prefix.to_string());
        blocking(move || s.list_dirs_sync(&p)).await
    }
    async fn upload_start(&self, key: &str) -> Result<String, StoreError> {
        self.path("upload_start", key)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.upload_dir("upload_start", key, &id)?;
        tokio::fs::create_dir_all(&dir).await.map_err(|e| self.err("upload_start", key, e))?;
        Ok(id)
    }
    async fn upload_part(&self, key: &str, upload: &str, n: u32, body: Bytes) -> Result<String, StoreError> {
        let path = self.upload_dir("upload_part", key, upload)?.join(n.to_string());
        // Not `tokio::fs::write(path, &body)`: given a reference, it copies the part first.
        let (s, k) = (self.clone(), key.to_string());
        blocking(move || std::fs::write(&path, &body).map_err(|e| s.err("upload_part", &k, e))).await?;
        Ok(format!("\"{n}\""))
    }
    async fn upload_complete(&self, key: &str, upload: &str, parts: Vec<(u32, String)>) -> Result<(), StoreError> {
        let (s, k, u) = (self.clone(), key.to_string(), upload.to_string());
        blocking(move || s.upload_complete_sync(&k, &u, &parts)).await
    }
    async fn upload_abort(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        let dir = self.upload_dir("upload_abort", key, upload)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("upload_abort", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_store_has_s3_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path()).unwrap();
        assert_eq!(s.get("a/b.txt").await.unwrap(), None);
        s.put("a/b.txt", Bytes::from_static(b"one")).await.unwrap();
        s.put("a/b.txt", Bytes::from_static(b"two")).await.unwrap();
        assert_eq!(s.get("a/b.txt").await.unwrap().unwrap(), "two");
        assert_eq!(s.get_prefix("a/b.txt", 2).await.unwrap().unwrap(), "tw");
        assert_eq!(s.get_prefix("a/b.txt", 9).await.unwrap().unwrap(), "two");
        assert_eq!(s.get_prefix("a/missing.txt", 2).await.unwrap(), None);
        assert!(s.put_if_absent("a/c.txt", Bytes::from_static(b"x")).await.unwrap());
        assert!(!s.put_if_absent("a/c.txt", Bytes::from_static(b"y")).await.unwrap());
        assert_eq!(s.get("a/c.txt").await.unwrap().unwrap(), "x");
        assert!(s.copy("a/c.txt", "z/d.txt").await.unwrap());
        assert!(!s.copy("missing", "z/e.txt").await.unwrap());
        assert!(s.exists("z/d.txt").await.unwrap());
        // A copy is a link, but no write reaches it through the other name.
        s.put("z/d.txt", Bytes::from_static(b"new")).await.unwrap();
        assert_eq!(s.get("a/c.txt").await.unwrap().unwrap(), "x");
        assert!(s.copy("a/c.txt", "z/d.txt").await.unwrap(), "over an existing key");
        assert_eq!(s.get("z/d.txt").await.unwrap().unwrap(), "x");
        assert_eq!(s.list("a/").await.unwrap(), vec!["a/b.txt", "a/c.txt"]);
        assert_eq!(s.list("").await.unwrap(), vec!["a/b.txt", "a/c.txt", "z/d.txt"]);
        assert_eq!(s.list("a/b").await.unwrap(), vec!["a/b.txt"]);
        assert_eq!(s.list_dirs("").await.unwrap(), vec!["a/", "z/"]);
        assert_eq!(s.list_dirs("a/").await.unwrap(), Vec::<String>::new());
        assert_eq!(s.list_dirs("q/").await.unwrap(), Vec::<String>::new());
        let big = vec![7u8; crate::store::MIN_PART_BYTES + 10];
        let mut up = crate::store::Upload::new(&s, "m/n.bin", 0);
        up.write(&big).await.unwrap();
        assert!(!s.exists("m/n.bin").await.unwrap());
        up.finish().await.unwrap();
        assert_eq!(s.get("m/n.bin").await.unwrap().unwrap().len(), big.len());
        s.delete("a/b.txt").await.unwrap();
        s.delete("a/b.txt").await.unwrap();
        assert!(!s.exists("a/b.txt").await.unwrap());
        for bad in ["", "/abs", "a/../b", "a//b", "a/"] {
            assert!(s.put(bad, Bytes::new()).await.is_err(), "{bad}");
        }
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(), 0);
    }
}

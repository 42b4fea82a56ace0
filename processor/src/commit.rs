//! The per-shard commit protocol (docs/exactly-once.md).
//!
//! State of a shard lives in the store under `<prefix>_pipeline/<stream>/<shard>/`:
//! - `commits/<n>.json`: commit records, created once each with `If-None-Match: *` (the fence);
//! - `head.json`: a copy of the latest commit record, to find it without listing;
//! - `dedup/<n>-<attempt>.bin`: the de-duplication window as of commit `n`;
//!
//! and data files are written before their commit under `<prefix>_staging/<stream>/<shard>/
//! <n>-<attempt>/<i>.parquet`: a prefix of its own, so that one lifecycle rule expires the
//! orphans of failed attempts (S3 lifecycle filters match key prefixes only).
//!
//! A commit record names the last sequence number it covers and every data file it publishes.
//! Data files become visible (copied to `<prefix><table>/dt=../hr=../`) only after their commit
//! record exists; publishing is idempotent and is rolled forward by whoever loads the state next.

use std::cmp::Ordering;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sink::store::{ObjectStore, StoreError};

use crate::dedup::DedupWindow;
use crate::kinesis::cmp_sequence;

/// How many store requests of one commit run at once.
pub const MAX_CONCURRENT_REQUESTS: usize = 8;
const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("shard state is corrupt: {0}")]
    Corrupt(String),
    #[error("encoding the batch failed: {0}")]
    Encode(String),
    #[error("another invocation committed {0} first")]
    Conflict(String),
}

/// One data file of a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedFile {
    pub table: String,
    pub staged: String,
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
}

/// What a commit record says (also the content of `head.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub format: u32,
    pub stream: String,
    pub shard_id: String,
    pub commit: u64,
    /// Every record of the shard up to this sequence number is in the datasets (or was a
    /// duplicate).
    pub last_sequence_number: String,
    pub files: Vec<CommittedFile>,
    /// The de-duplication window as of this commit.
    pub dedup_snapshot: String,
    /// The previous commit's window, deleted once this commit is published.
    pub superseded_snapshot: Option<String>,
    pub records: u64,
    pub events: u64,
    pub quarantined: u64,
    pub duplicates: u64,
}

/// The keys of one shard's state.
#[derive(Debug, Clone)]
pub struct ShardKeys {
    pub prefix: String,
    pub stream: String,
    pub shard_id: String,
    base: String,
    staging: String,
}

impl ShardKeys {
    pub fn new(prefix: &str, stream: &str, shard_id: &str) -> Self {
        ShardKeys {
            prefix: prefix.to_string(),
            stream: stream.to_string(),
            shard_id: shard_id.to_string(),
            base: format!("{prefix}_pipeline/{stream}/{shard_id}/"),
            staging: format!("{prefix}_staging/{stream}/{shard_id}/"),
        }
    }
    pub fn head(&self) -> String {
        format!("{}head.json", self.base)
    }
    pub fn commit(&self, n: u64) -> String {
        format!("{}commits/{n:020}.json", self.base)
    }
    pub fn staged(&self, n: u64, attempt: &str, i: usize) -> String {
        format!("{}{n:020}-{attempt}/{i:04}.parquet", self.staging)
    }
    pub fn snapshot(&self, n: u64, attempt: &str) -> String {
        format!("{}dedup/{n:020}-{attempt}.bin", self.base)
    }
    /// The visible file name (without `.parquet`) of commit `n`'s files: unique per stream,
    /// shard and commit, so publishing again replaces a file with itself.
    pub fn file_stem(&self, n: u64) -> String {
        format!("part-{}-{}-{n:020}", self.stream, self.shard_id)
    }
}

/// What a processor knows of a shard: its latest published commit and de-duplication window.
#[derive(Debug, Clone, Default)]
pub struct ShardState {
    pub head: Option<CommitRecord>,
    pub dedup: DedupWindow,
}

impl ShardState {
    pub fn next_commit(&self) -> u64 {
        self.head.as_ref().map_or(1, |h| h.commit + 1)
    }

    /// Whether the record's effects are already committed.
    pub fn covers(&self, sequence_number: &str) -> bool {
        self.head.as_ref().is_some_and(|h| cmp_sequence(sequence_number, &h.last_sequence_number) != Ordering::Greater)
    }
}

fn parse_commit(key: &str, body: &[u8]) -> Result<CommitRecord, CommitError> {
    let c: CommitRecord =
        serde_json::from_slice(body).map_err(|e| CommitError::Corrupt(format!("{key} is not a commit record: {e}")))?;
    if c.format != FORMAT {
        return Err(CommitError::Corrupt(format!("{key} has format {}, this processor reads {FORMAT}", c.format)));
    }
    Ok(c)
}

pub fn commit_bytes(c: &CommitRecord) -> Bytes {
    // Serializing plain strings and integers cannot fail.
    Bytes::from(serde_json::to_vec_pretty(c).unwrap_or_default())
}

/// Reads a shard's state: the head, then any newer commit records, then the window; and
/// finishes publishing the latest commit (a crash may have cut it short).
pub async fn load<S: ObjectStore>(store: &S, keys: &ShardKeys) -> Result<ShardState, CommitError> {
    let mut head = match store.get(&keys.head()).await? {
        Some(b) => Some(parse_commit(&keys.head(), &b)?),
        None => None,
    };
    loop {
        let next = keys.commit(head.as_ref().map_or(1, |h| h.commit + 1));
        match store.get(&next).await? {
            Some(b) => head = Some(parse_commit(&next, &b)?),
            None => break,
        }
    }
    let Some(head) = head else { return Ok(ShardState::default()) };
    let snapshot = store.get(&head.dedup_snapshot).await?.ok_or_else(|| {
        CommitError::Corrupt(format!(
            "commit {} names window {} which does not exist",
            head.commit, head.dedup_snapshot
        ))
    })?;
    let dedup = DedupWindow::from_bytes(&snapshot).map_err(|e| CommitError::Corrupt(e.to_string()))?;
    publish(store, keys, &head).await?;
    Ok(ShardState { head: Some(head), dedup })
}

/// Makes a committed record's files visible, then moves `head.json` to it and cleans up.
/// Idempotent: a file whose staged copy is gone must already be visible.
pub async fn publish<S: ObjectStore>(store: &S, keys: &ShardKeys, commit: &CommitRecord) -> Result<(), CommitError> {
    // Owned inputs and named async functions (not closures returning async blocks) keep these
    // futures `Send`, so a caller can spawn the handler.
    let files: Vec<(String, String)> = commit.files.iter().map(|f| (f.staged.clone(), f.key.clone())).collect();
    futures::stream::iter(files)
        .map(|(staged, key)| publish_file(store, commit.commit, staged, key))
        .buffer_unordered(MAX_CONCURRENT_REQUESTS)
        .try_collect::<Vec<()>>()
        .await?;
    store.put(&keys.head(), commit_bytes(commit)).await?;
    let obsolete: Vec<String> =
        commit.files.iter().map(|f| f.staged.clone()).chain(commit.superseded_snapshot.clone()).collect();
    futures::stream::iter(obsolete)
        .map(|key| delete_key(store, key))
        .buffer_unordered(MAX_CONCURRENT_REQUESTS)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn publish_file<S: ObjectStore>(store: &S, commit: u64, staged: String, key: String) -> Result<(), CommitError> {
    if store.copy(&staged, &key).await? || store.exists(&key).await? {
        Ok(())
    } else {
        Err(CommitError::Corrupt(format!(
            "commit {commit} lists {key} but neither it nor its staged copy {staged} exists"
        )))
    }
}

async fn put_key<S: ObjectStore>(store: &S, key: String, body: Bytes) -> Result<(), StoreError> {
    store.put(&key, body).await
}

async fn delete_key<S: ObjectStore>(store: &S, key: String) -> Result<(), StoreError> {
    store.delete(&key).await
}

/// Writes staged files and the window, then creates the commit record. `Conflict` when commit
/// `n` exists already (another invocation won): the staged files are removed again.
pub async fn write_commit<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    commit: &CommitRecord,
    staged: Vec<(String, Bytes)>,
    snapshot: Bytes,
) -> Result<(), CommitError> {
    let writes = staged.into_iter().chain(std::iter::once((commit.dedup_snapshot.clone(), snapshot)));
    futures::stream::iter(writes)
        .map(|(key, body)| put_key(store, key, body))
        .buffer_unordered(MAX_CONCURRENT_REQUESTS)
        .try_collect::<Vec<()>>()
        .await?;
    let key = keys.commit(commit.commit);
    if store.put_if_absent(&key, commit_bytes(commit)).await? {
        return Ok(());
    }
    for k in commit.files.iter().map(|f| f.staged.as_str()).chain([commit.dedup_snapshot.as_str()]) {
        // Best effort: leftovers are hidden and expire with the staging lifecycle rule.
        let _ = store.delete(k).await;
    }
    Err(CommitError::Conflict(key))
}

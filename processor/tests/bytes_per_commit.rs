//! Bytes a commit writes at the Kinesis shard limit (1,000 records/s, one batch a second, a full
//! 10-minute window of 600,000 ids): in proportion to the batch, not to the window
//! (docs/exactly-once.md quotes the figures this test prints).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use processor::kinesis::InputRecord;
use processor::{Processor, ProcessorConfig};
use sink::store::{MemoryStore, ObjectStore, StoreError};
use sink::RecordMeta;

/// A memory store that adds up the bytes written per kind of object.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    bytes: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counting {
    fn add(&self, key: &str, n: usize) {
        let kind = if key.contains("/_staging/") || key.starts_with("_staging/") {
            "staged data files"
        } else if key.contains("/commits/") {
            "commit record (ids kept, record fingerprints)"
        } else if key.contains("/checkpoints/") {
            "checkpoints (window), amortized"
        } else if key.ends_with("head.json") {
            "head.json"
        } else if key.contains("/_probe/") {
            "conditional-write probe"
        } else {
            "visible data files (copies)"
        };
        *self.bytes.lock().unwrap().entry(kind).or_default() += n as u64;
    }
}

#[async_trait]
impl ObjectStore for Counting {
    fn describe(&self) -> String {
        "counting".into()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.add(key, body.len());
        self.inner.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        self.add(key, body.len());
        self.inner.put_if_absent(key, body).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<bool, StoreError> {
        if let Some(b) = self.inner.get(from).await? {
            self.add(to, b.len());
        }
        self.inner.copy(from, to).await
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.exists(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list_dirs(prefix).await
    }
    async fn upload_start(&self, key: &str) -> Result<String, StoreError> {
        self.inner.upload_start(key).await
    }
    async fn upload_part(&self, key: &str, upload: &str, n: u32, body: Bytes) -> Result<String, StoreError> {
        self.add(key, body.len());
        self.inner.upload_part(key, upload, n, body).await
    }
    async fn upload_complete(&self, key: &str, upload: &str, parts: Vec<(u32, String)>) -> Result<(), StoreError> {
        self.inner.upload_complete(key, upload, parts).await
    }
    async fn upload_abort(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        self.inner.upload_abort(key, upload).await
    }
}

/// 2026-11-23T13:05:00Z
const T: i64 = 1_795_439_100_000;
const SHARD: &str = "shardId-000000000000";
const PER_SECOND: usize = 1000;
const WINDOW_IDS: usize = 600_000;

fn batch(second: usize) -> Vec<InputRecord> {
    (0..PER_SECOND)
        .map(|i| {
            let n = second * PER_SECOND + i;
            InputRecord {
                stream: "storefront".into(),
                meta: RecordMeta {
                    shard_id: SHARD.into(),
                    sequence_number: format!("49545115243490985018280067714973144582180062593{n:09}"),
                    sub_sequence_number: 0,
                    partition_key: format!("session-{}", n / 7),
                    arrival_ms: T + 1000 * (second as i64 + 1) + i as i64,
                },
                data: testkit::records::record_data(n).into_bytes(),
                undecodable: false,
            }
        })
        .collect()
}

#[tokio::test]
async fn a_commit_at_the_shard_limit_writes_in_proportion_to_its_batch() {
    let store = Arc::new(Counting::default());
    testkit::ledger::seed_full_window(&store.inner, "", "storefront", SHARD, WINDOW_IDS, T).await;
    let p = Processor::with_config(store.clone(), "", ProcessorConfig::default());
    // A checkpoint is written at the latest every 256 commits: 256 commits of 1,000 records
    // (4 minutes and 16 seconds at the shard limit) include exactly one.
    const COMMITS: usize = 256;
    for second in 0..COMMITS {
        let r = p.process(batch(second)).await;
        assert_eq!((r.error, r.events), (None, PER_SECOND), "commit {second}");
    }
    let bytes = store.bytes.lock().unwrap().clone();
    let per_commit = |kind: &str| bytes.get(kind).copied().unwrap_or(0) as f64 / COMMITS as f64 / 1000.0;
    let ledger: f64 = ["commit record (ids kept, record fingerprints)", "checkpoints (window), amortized", "head.json"]
        .iter()
        .map(|k| per_commit(k))
        .sum();
    let total: f64 = bytes.values().sum::<u64>() as f64 / COMMITS as f64 / 1000.0;
    eprintln!(
        "bytes written per commit of {PER_SECOND} records with a window of {WINDOW_IDS} ids, over {COMMITS} commits:"
    );
    for kind in bytes.keys() {
        eprintln!("  {kind}: {:.1} KB", per_commit(kind));
    }
    eprintln!("  ledger (commit record, checkpoint, head): {ledger:.1} KB; everything: {total:.1} KB");
    assert!(bytes.contains_key("checkpoints (window), amortized"), "one checkpoint was written");
    // The window itself is 12 MB; a commit writes tens of KB of it.
    assert!(ledger < 100.0, "{ledger:.1} KB of ledger per commit");
}

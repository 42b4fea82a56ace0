//! A shard's ledger written directly, as a busy shard leaves it: commit 1 and a checkpoint whose
//! de-duplication window holds a full 10 minutes of ids, for tests that start from there.

use base64::Engine;
use processor::dedup::{DedupWindow, WindowDelta};
use processor::ledger::record::{
    checkpoint_bytes, encode_fingerprints, sequence_fingerprint, ArrivalSpan, CheckpointHeader, CheckpointRef, Head,
    FORMAT,
};
use processor::ledger::{CommitKind, CommitRecord, SeqRange, ShardKeys};
use sink::store::ObjectStore;

/// Writes shard `shard` of `stream` under `prefix` as of commit 1 (sequence number 1, at
/// `latest_arrival_ms`) with `ids` distinct ids kept over the 10 minutes before it, and returns
/// the window.
pub async fn seed_full_window(
    store: &dyn ObjectStore,
    prefix: &str,
    stream: &str,
    shard: &str,
    ids: usize,
    latest_arrival_ms: i64,
) -> DedupWindow {
    let keys = ShardKeys::new(prefix, stream, shard);
    let salt = xxhash_rust::xxh3::xxh3_128(shard.as_bytes());
    let span = model::DEDUP_WINDOW_MS - 10_000;
    let mut kept: Vec<(u128, i64)> = (0..ids as u128)
        .map(|i| (xxhash_rust::xxh3::xxh3_128(&(i ^ salt).to_le_bytes()), latest_arrival_ms - (i as i64 * 997 % span)))
        .collect();
    kept.sort_unstable();
    let mut window = DedupWindow::new();
    window.apply(&WindowDelta { kept, latest_arrival_ms });
    assert_eq!(window.len(), ids, "distinct ids");
    let commit = CommitRecord {
        format: FORMAT,
        stream: stream.into(),
        shard_id: shard.into(),
        commit: 1,
        attempt: "seed".into(),
        kind: CommitKind::Stream,
        ranges: vec![SeqRange("1".into(), "1".into())],
        high_water_mark: "1".into(),
        arrival: ArrivalSpan(latest_arrival_ms, latest_arrival_ms),
        committed_ms: latest_arrival_ms,
        checkpoint: 0,
        files: Vec::new(),
        window: base64::engine::general_purpose::STANDARD.encode(WindowDelta::default().to_bytes()),
        sequences: encode_fingerprints(&[sequence_fingerprint("1")]),
        records: 1,
        events: 0,
        quarantined: 0,
        duplicates: 0,
    };
    let header = CheckpointHeader {
        format: FORMAT,
        stream: stream.into(),
        shard_id: shard.into(),
        commit: 1,
        high_water_mark: Some("1".into()),
        floor: 1,
        checkpoints: vec![CheckpointRef { commit: 1, latest_arrival_ms }],
        replays: Vec::new(),
    };
    let head = Head { format: FORMAT, latest: 1, checkpoint: 1 };
    store.put(&keys.commit(1), commit.to_bytes()).await.expect("write commit 1");
    store.put(&keys.checkpoint(1), checkpoint_bytes(&header, &window)).await.expect("write checkpoint 1");
    store.put(&keys.head(), head.to_bytes()).await.expect("write head.json");
    window
}

//! The `event_id` de-duplication window of one shard (contract 2.6): records sharing an
//! `event_id` count once when they arrive within 10 minutes of each other.
//!
//! Ids are kept as 128-bit XXH3 hashes (16 bytes instead of up to 64, a stable, specified hash):
//! two different ids collide with probability about n^2 / 2^129, below 10^-27 for a full window.

use std::collections::HashMap;

use model::DEDUP_WINDOW_MS;
use xxhash_rust::xxh3::xxh3_128;

const MAGIC: &[u8; 8] = b"OSDEDUP1";
const ENTRY_BYTES: usize = 24;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DedupWindow {
    /// Hash of `event_id` -> arrival (ms) of the copy that was kept.
    seen: HashMap<u128, i64>,
    /// The latest arrival seen; entries older than this minus the window can never match again.
    latest_arrival_ms: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt de-duplication snapshot: {0}")]
pub struct SnapshotError(String);

impl DedupWindow {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Whether a valid event with this id arriving now is a duplicate of a kept one; if not, it
    /// becomes the kept copy.
    pub fn is_duplicate(&mut self, event_id: &str, arrival_ms: i64) -> bool {
        self.latest_arrival_ms = self.latest_arrival_ms.max(arrival_ms);
        let key = xxh3_128(event_id.as_bytes());
        match self.seen.get(&key) {
            Some(&kept) if (arrival_ms - kept).abs() <= DEDUP_WINDOW_MS => true,
            _ => {
                self.seen.insert(key, arrival_ms);
                false
            }
        }
    }

    /// Drops ids that no later record can match.
    pub fn prune(&mut self) {
        let horizon = self.latest_arrival_ms.saturating_sub(DEDUP_WINDOW_MS);
        self.seen.retain(|_, &mut kept| kept >= horizon);
    }

    /// A compact binary snapshot: magic, latest arrival, then 24 bytes per id.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.seen.len() * ENTRY_BYTES);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.latest_arrival_ms.to_le_bytes());
        for (k, v) in &self.seen {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, SnapshotError> {
        let body = b.strip_prefix(MAGIC.as_slice()).ok_or_else(|| SnapshotError("bad magic".into()))?;
        if body.len() < 8 || (body.len() - 8) % ENTRY_BYTES != 0 {
            return Err(SnapshotError(format!("bad length {}", b.len())));
        }
        let (latest, entries) = body.split_at(8);
        let mut seen = HashMap::with_capacity(entries.len() / ENTRY_BYTES);
        for e in entries.chunks_exact(ENTRY_BYTES) {
            let (k, v) = e.split_at(16);
            seen.insert(
                u128::from_le_bytes(k.try_into().map_err(|_| SnapshotError("entry".into()))?),
                i64::from_le_bytes(v.try_into().map_err(|_| SnapshotError("entry".into()))?),
            );
        }
        let latest_arrival_ms = i64::from_le_bytes(latest.try_into().map_err(|_| SnapshotError("header".into()))?);
        Ok(DedupWindow { seen, latest_arrival_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_within_ten_minutes_are_duplicates() {
        let mut w = DedupWindow::new();
        assert!(!w.is_duplicate("a", 0));
        assert!(w.is_duplicate("a", DEDUP_WINDOW_MS));
        assert!(!w.is_duplicate("b", 1));
        // One millisecond past the window: a new event, which becomes the kept copy.
        assert!(!w.is_duplicate("a", DEDUP_WINDOW_MS + 1));
        assert!(w.is_duplicate("a", DEDUP_WINDOW_MS + 2));
    }

    #[test]
    fn pruning_keeps_what_can_still_match_and_snapshots_round_trip() {
        let mut w = DedupWindow::new();
        w.is_duplicate("old", 0);
        w.is_duplicate("new", DEDUP_WINDOW_MS + 5);
        w.prune();
        assert_eq!(w.len(), 1);
        let copy = DedupWindow::from_bytes(&w.to_bytes()).unwrap();
        assert_eq!(copy, w);
        assert!(DedupWindow::from_bytes(b"nope").is_err());
        assert!(DedupWindow::from_bytes(&w.to_bytes()[..20]).is_err());
    }
}

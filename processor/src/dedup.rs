//! The `event_id` de-duplication window of one shard (contract 2.6): records sharing an
//! `event_id` count once when they arrive within 10 minutes of each other.
//!
//! Ids are kept as 128-bit XXH3 hashes (16 bytes instead of up to 64, a stable, specified hash):
//! two different ids collide with probability about n^2 / 2^129, below 10^-27 for a full window.
//!
//! - [`DedupWindow`]: the shard's window, as of its latest commit: a sorted array of hashes and
//!   a parallel array of 32-bit arrival offsets, 20 bytes an id (a full window at the shard limit,
//!   600,000 ids, is 12 MB in memory and in a checkpoint).
//! - [`WindowBatch`]: one batch's decisions against a window, without changing it; it ends in a
//!   [`WindowDelta`] (the ids the batch kept), which a commit records and [`DedupWindow::apply`]
//!   merges. Replaying the deltas of a shard's commits in order rebuilds its window exactly.
//! - [`ReplayWindow`]: every kept copy around an older stretch of the shard, to de-duplicate
//!   records that are processed after later ones (a replay of records Lambda gave up on).

use std::collections::HashMap;

use model::DEDUP_WINDOW_MS;
use xxhash_rust::xxh3::xxh3_128;

const WINDOW_MAGIC: &[u8; 8] = b"OSWIN002";
/// Offsets are rebased before they could overflow 32 bits.
const MAX_OFFSET_SPAN_MS: i64 = 1 << 31;

/// The window's key of an `event_id`.
pub fn id_hash(event_id: &str) -> u128 {
    xxh3_128(event_id.as_bytes())
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt de-duplication window: {0}")]
pub struct WindowError(String);

impl WindowError {
    pub(crate) fn new(what: impl Into<String>) -> Self {
        WindowError(what.into())
    }
}

/// Where a batch looks up ids kept before it.
pub trait KeptIds {
    /// Whether a copy of `hash` was kept with an arrival within the window of `arrival_ms`.
    fn matches(&self, hash: u128, arrival_ms: i64) -> bool;
}

/// The window as of a shard's latest commit: for every id kept within 10 minutes of the latest
/// arrival, the arrival of its latest kept copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DedupWindow {
    /// Sorted, unique.
    hashes: Vec<u128>,
    /// `arrival - base_ms` of each hash's kept copy.
    offsets: Vec<u32>,
    base_ms: i64,
    /// The latest arrival of a valid event seen; ids kept before this minus the window can never
    /// match again and are pruned.
    latest_arrival_ms: i64,
}

/// The ids one batch kept, every kept copy (sorted by hash, then arrival: an id kept twice more
/// than 10 minutes apart has two entries), and the latest arrival among its valid events: what a
/// commit adds to the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowDelta {
    pub kept: Vec<(u128, i64)>,
    pub latest_arrival_ms: i64,
}

impl DedupWindow {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    pub fn latest_arrival_ms(&self) -> i64 {
        self.latest_arrival_ms
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.hashes.capacity() * 16 + self.offsets.capacity() * 4
    }

    /// The arrival of the kept copy of `hash`, if the window holds one.
    pub fn kept_arrival(&self, hash: u128) -> Option<i64> {
        self.hashes.binary_search(&hash).ok().map(|i| self.base_ms + i64::from(self.offsets[i]))
    }

    /// Starts a batch's decisions against this window.
    pub fn batch(&self) -> WindowBatch<'_> {
        WindowBatch::new(self)
    }

    /// Merges a commit's kept ids (a later copy replaces an earlier one), then drops the ids that
    /// no later record can match. Deterministic: the same deltas in the same order give the same
    /// window, whether applied live or while loading a shard.
    pub fn apply(&mut self, delta: &WindowDelta) {
        self.latest_arrival_ms = self.latest_arrival_ms.max(delta.latest_arrival_ms);
        let horizon = self.latest_arrival_ms.saturating_sub(DEDUP_WINDOW_MS);
        if self.latest_arrival_ms.saturating_sub(self.base_ms) > MAX_OFFSET_SPAN_MS || self.is_empty() {
            self.rebase(horizon);
        }
        // The window keeps the latest copy of each id: the last of each hash's run.
        let mut fresh: Vec<(u128, i64)> = Vec::with_capacity(delta.kept.len());
        for &(h, t) in delta.kept.iter().filter(|&&(_, t)| t >= horizon) {
            match fresh.last_mut() {
                Some(last) if last.0 == h => last.1 = last.1.max(t),
                _ => fresh.push((h, t)),
            }
        }
        self.merge(&fresh);
        self.prune(horizon);
    }

    /// Moves the offsets' base to `base_ms`; ids kept before it are dropped.
    fn rebase(&mut self, base_ms: i64) {
        let old = self.base_ms;
        let mut w = 0;
        for r in 0..self.hashes.len() {
            let t = old + i64::from(self.offsets[r]);
            if t >= base_ms {
                self.hashes[w] = self.hashes[r];
                self.offsets[w] = (t - base_ms) as u32;
                w += 1;
            }
        }
        self.hashes.truncate(w);
        self.offsets.truncate(w);
        self.base_ms = base_ms;
    }

    /// Merges sorted, unique `(hash, arrival)` pairs whose arrivals are at or after the base, in
    /// place from the back (no second copy of the window).
    fn merge(&mut self, fresh: &[(u128, i64)]) {
        if fresh.is_empty() {
            return;
        }
        let (old_len, add) = (self.hashes.len(), fresh.len());
        // Exactly: a doubling growth would hold twice the window's memory for good.
        self.hashes.reserve_exact(add);
        self.offsets.reserve_exact(add);
        self.hashes.resize(old_len + add, 0);
        self.offsets.resize(old_len + add, 0);
        let (mut i, mut j, mut w) = (old_len, add, old_len + add);
        while j > 0 {
            let (h, t) = fresh[j - 1];
            let offset = (t - self.base_ms) as u32;
            if i > 0 && self.hashes[i - 1] > h {
                w -= 1;
                self.hashes[w] = self.hashes[i - 1];
                self.offsets[w] = self.offsets[i - 1];
                i -= 1;
            } else if i > 0 && self.hashes[i - 1] == h {
                w -= 1;
                self.hashes[w] = h;
                self.offsets[w] = self.offsets[i - 1].max(offset);
                i -= 1;
                j -= 1;
            } else {
                w -= 1;
                self.hashes[w] = h;
                self.offsets[w] = offset;
                j -= 1;
            }
        }
        // Equal hashes merged into one slot leave a gap of `w - i` slots at the front of the
        // merged part: close it.
        if w > i {
            self.hashes.copy_within(w.., i);
            self.offsets.copy_within(w.., i);
            let len = self.hashes.len() - (w - i);
            self.hashes.truncate(len);
            self.offsets.truncate(len);
        }
    }

    fn prune(&mut self, horizon: i64) {
        let min = horizon.saturating_sub(self.base_ms).clamp(0, i64::from(u32::MAX)) as u32;
        if self.offsets.iter().all(|&o| o >= min) {
            return;
        }
        let mut w = 0;
        for r in 0..self.hashes.len() {
            if self.offsets[r] >= min {
                self.hashes[w] = self.hashes[r];
                self.offsets[w] = self.offsets[r];
                w += 1;
            }
        }
        self.hashes.truncate(w);
        self.offsets.truncate(w);
        if self.hashes.capacity() > 2 * self.hashes.len() + 1024 {
            self.hashes.shrink_to_fit();
            self.offsets.shrink_to_fit();
        }
    }

    /// Every `(hash, arrival)` the window holds, sorted by hash.
    pub fn entries(&self) -> impl Iterator<Item = (u128, i64)> + '_ {
        self.hashes.iter().zip(&self.offsets).map(|(&h, &o)| (h, self.base_ms + i64::from(o)))
    }

    /// The checkpoint form: magic, base, latest arrival, count, the hashes, then the offsets
    /// (little-endian): 20 bytes an id.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.hashes.len() * 20);
        out.extend_from_slice(WINDOW_MAGIC);
        out.extend_from_slice(&self.base_ms.to_le_bytes());
        out.extend_from_slice(&self.latest_arrival_ms.to_le_bytes());
        out.extend_from_slice(&(self.hashes.len() as u64).to_le_bytes());
        for h in &self.hashes {
            out.extend_from_slice(&h.to_le_bytes());
        }
        for o in &self.offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, WindowError> {
        let body = b.strip_prefix(WINDOW_MAGIC.as_slice()).ok_or_else(|| WindowError("bad magic".into()))?;
        let mut r = Reader(body);
        let base_ms = r.i64()?;
        let latest_arrival_ms = r.i64()?;
        let n = usize::try_from(r.u64()?).map_err(|_| WindowError("count".into()))?;
        if r.0.len() != n.checked_mul(20).ok_or_else(|| WindowError("count".into()))? {
            return Err(WindowError(format!("{} bytes of entries for {n} ids", r.0.len())));
        }
        let (hashes, offsets) = r.0.split_at(n * 16);
        let hashes: Vec<u128> =
            hashes.chunks_exact(16).map(|c| u128::from_le_bytes(c.try_into().unwrap_or_default())).collect();
        if hashes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(WindowError("ids out of order".into()));
        }
        let offsets = offsets.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default())).collect();
        Ok(DedupWindow { hashes, offsets, base_ms, latest_arrival_ms })
    }
}

impl KeptIds for DedupWindow {
    fn matches(&self, hash: u128, arrival_ms: i64) -> bool {
        self.kept_arrival(hash).is_some_and(|kept| (arrival_ms - kept).abs() <= DEDUP_WINDOW_MS)
    }
}

/// Every kept copy (not only the latest) of the ids of some stretch of a shard: a record replayed
/// after later ones were committed is a duplicate when any kept copy arrived within the window
/// of it, before or after.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// Sorted by hash, then arrival.
    entries: Vec<(u128, i64)>,
}

impl ReplayWindow {
    pub fn new(mut entries: Vec<(u128, i64)>) -> Self {
        // In place: a replay's window can hold a million ids or more, and `sort_by_hash` would
        // make a second list of them.
        entries.sort_unstable();
        entries.dedup();
        ReplayWindow { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl KeptIds for ReplayWindow {
    fn matches(&self, hash: u128, arrival_ms: i64) -> bool {
        let start = self.entries.partition_point(|&(h, _)| h < hash);
        self.entries[start..]
            .iter()
            .take_while(|&&(h, _)| h == hash)
            .any(|&(_, kept)| (arrival_ms - kept).abs() <= DEDUP_WINDOW_MS)
    }
}

/// One batch's de-duplication decisions. The window it reads is not changed: a batch that does
/// not commit leaves nothing behind.
pub struct WindowBatch<'a> {
    prior: &'a dyn KeptIds,
    /// The latest kept copy of each id. (Hashed by foldhash: the keys are hashes already, and
    /// with the standard SipHash the map's lookups and inserts were 2.5% of an invocation.)
    kept: HashMap<u128, i64, foldhash::fast::RandomState>,
    /// Every kept copy.
    copies: Vec<(u128, i64)>,
    latest_arrival_ms: i64,
}

impl<'a> WindowBatch<'a> {
    pub fn new(prior: &'a dyn KeptIds) -> Self {
        WindowBatch { prior, kept: HashMap::default(), copies: Vec::new(), latest_arrival_ms: 0 }
    }

    /// Room for `n` more kept ids (a batch's records), so that the map and the list are not
    /// grown record by record.
    pub fn reserve(&mut self, n: usize) {
        self.kept.reserve(n);
        self.copies.reserve(n);
    }

    /// Whether a valid event with this id arriving now is a duplicate of a kept copy; if not, it
    /// becomes the kept copy.
    pub fn is_duplicate(&mut self, event_id: &str, arrival_ms: i64) -> bool {
        self.latest_arrival_ms = self.latest_arrival_ms.max(arrival_ms);
        let hash = id_hash(event_id);
        let duplicate = self.kept.get(&hash).is_some_and(|&kept| (arrival_ms - kept).abs() <= DEDUP_WINDOW_MS)
            || self.prior.matches(hash, arrival_ms);
        if !duplicate {
            self.kept.insert(hash, arrival_ms);
            self.copies.push((hash, arrival_ms));
        }
        duplicate
    }

    pub fn finish(self) -> WindowDelta {
        let WindowBatch { kept, copies, latest_arrival_ms, .. } = self;
        // The map is freed before the sort makes its list of the same ids.
        drop(kept);
        WindowDelta { kept: sort_by_hash(copies), latest_arrival_ms }
    }
}

/// `(hash, arrival)` pairs in the order `sort_unstable` gives, in time linear in their number
/// when the hashes are spread evenly, as XXH3's are: one pass counts the pairs of each of about
/// n/2 ranges of hashes (their top bits), a second places each pair in its range's place, and
/// each range's few pairs are then sorted on their own. Any hashes give the same order; only
/// the time depends on their spread. (`sort_unstable` on a batch's 7,000 kept ids was 2% of an
/// invocation's instructions.) For a batch's ids: the second list is as large as the first.
fn sort_by_hash(mut pairs: Vec<(u128, i64)>) -> Vec<(u128, i64)> {
    let n = pairs.len();
    if n < 64 {
        pairs.sort_unstable();
        return pairs;
    }
    // 32 ranges or more; 2,048 for a batch of 7,000 ids.
    let bits = (n / 2).ilog2().min(20);
    let range = |hash: u128| (hash >> (128 - bits)) as usize;
    let mut starts = vec![0usize; (1 << bits) + 1];
    for &(hash, _) in &pairs {
        starts[range(hash) + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut next = starts.clone();
    let mut sorted = vec![(0, 0); n];
    for &pair in &pairs {
        let at = &mut next[range(pair.0)];
        sorted[*at] = pair;
        *at += 1;
    }
    for bounds in starts.windows(2) {
        sorted[bounds[0]..bounds[1]].sort_unstable();
    }
    sorted
}

impl WindowDelta {
    /// The form a commit record carries: the count and the smallest arrival as LEB128 varints,
    /// then per id its 16 hash bytes and its arrival's offset from the smallest (a varint).
    pub fn to_bytes(&self) -> Vec<u8> {
        let base = self.kept.iter().map(|&(_, t)| t).min().unwrap_or(0);
        let mut out = Vec::with_capacity(16 + self.kept.len() * 20);
        put_varint(&mut out, self.kept.len() as u64);
        out.extend_from_slice(&base.to_le_bytes());
        out.extend_from_slice(&self.latest_arrival_ms.to_le_bytes());
        for &(h, t) in &self.kept {
            out.extend_from_slice(&h.to_le_bytes());
            put_varint(&mut out, (t - base) as u64);
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, WindowError> {
        let mut r = Reader(b);
        let n = r.varint()?;
        let base = r.i64()?;
        let latest_arrival_ms = r.i64()?;
        let mut kept = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(b.len() / 17));
        for _ in 0..n {
            let h = u128::from_le_bytes(r.take(16)?.try_into().unwrap_or_default());
            let t = base.checked_add_unsigned(r.varint()?).ok_or_else(|| WindowError("arrival".into()))?;
            kept.push((h, t));
        }
        if !r.0.is_empty() {
            return Err(WindowError(format!("{} bytes after the last id", r.0.len())));
        }
        if kept.windows(2).any(|w| w[0] >= w[1]) {
            return Err(WindowError("ids out of order".into()));
        }
        // A batch's latest arrival is the latest of its events', so of every id it kept: a delta
        // saying otherwise is damaged, and its arrivals would not fit the window's offsets.
        if let Some(&(_, t)) = kept.iter().find(|&&(_, t)| t > latest_arrival_ms) {
            return Err(WindowError(format!("an id kept at {t}, after the latest arrival {latest_arrival_ms}")));
        }
        Ok(WindowDelta { kept, latest_arrival_ms })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WindowError> {
        if self.0.len() < n {
            return Err(WindowError("truncated".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i64(&mut self) -> Result<i64, WindowError> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Result<u64, WindowError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }
    fn varint(&mut self) -> Result<u64, WindowError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(WindowError("varint too long".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn commit(w: &mut DedupWindow, ids: &[(&str, i64)]) -> (Vec<bool>, WindowDelta) {
        let mut batch = w.batch();
        let dups = ids.iter().map(|(id, t)| batch.is_duplicate(id, *t)).collect();
        let delta = batch.finish();
        w.apply(&delta);
        (dups, delta)
    }

    #[test]
    fn copies_within_ten_minutes_are_duplicates() {
        let mut w = DedupWindow::new();
        let (dups, _) = commit(&mut w, &[("a", 0), ("a", DEDUP_WINDOW_MS), ("b", 1)]);
        assert_eq!(dups, [false, true, false]);
        // One millisecond past the window: a new event, which becomes the kept copy.
        let (dups, _) = commit(&mut w, &[("a", DEDUP_WINDOW_MS + 1), ("a", DEDUP_WINDOW_MS + 2)]);
        assert_eq!(dups, [false, true]);
        assert_eq!(w.kept_arrival(id_hash("a")), Some(DEDUP_WINDOW_MS + 1));
    }

    #[test]
    fn a_batch_that_does_not_commit_changes_nothing() {
        let mut w = DedupWindow::new();
        commit(&mut w, &[("a", 1000)]);
        let before = w.clone();
        let mut batch = w.batch();
        assert!(!batch.is_duplicate("b", 2000));
        assert!(batch.is_duplicate("a", 2000));
        drop(batch);
        assert_eq!(w, before);
    }

    #[test]
    fn pruning_keeps_what_can_still_match_and_checkpoints_round_trip() {
        let mut w = DedupWindow::new();
        commit(&mut w, &[("old", 0)]);
        commit(&mut w, &[("new", DEDUP_WINDOW_MS + 5)]);
        assert_eq!(w.len(), 1);
        let copy = DedupWindow::from_bytes(&w.to_bytes()).unwrap();
        assert_eq!(copy, w);
        assert!(DedupWindow::from_bytes(b"nope").is_err());
        assert!(DedupWindow::from_bytes(&w.to_bytes()[..40]).is_err());
    }

    #[test]
    fn offsets_are_rebased_over_long_runs() {
        let mut w = DedupWindow::new();
        let day = 86_400_000i64;
        for d in 0..60 {
            let (dups, _) = commit(&mut w, &[("x", d * day), ("x", d * day + 1), (&format!("d{d}"), d * day)]);
            assert_eq!(dups, [false, true, false], "day {d}");
        }
        assert_eq!(w.kept_arrival(id_hash("x")), Some(59 * day));
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn a_replay_window_matches_any_kept_copy_before_or_after() {
        let kept = vec![(id_hash("x"), 100_000), (id_hash("x"), 2_000_000)];
        let r = ReplayWindow::new(kept);
        let mut batch = WindowBatch::new(&r);
        // Within 10 minutes of the first copy only: still a duplicate.
        assert!(batch.is_duplicate("x", 50_000));
        // Within 10 minutes of the later copy, before it.
        assert!(batch.is_duplicate("x", 1_500_000));
        assert!(!batch.is_duplicate("x", 1_000_000));
        assert!(batch.is_duplicate("x", 1_000_001), "kept in this batch");
        assert!(!batch.is_duplicate("y", 0));
        assert!(!batch.is_duplicate("x", 2_700_000));
        // Both kept copies of x are in the delta, for later replays.
        assert_eq!(batch.finish().kept.len(), 3);
    }

    #[test]
    fn deltas_round_trip_and_corruption_is_an_error() {
        let d = WindowDelta {
            kept: vec![(1, 5_000), (7, 1_795_435_200_000), (u128::MAX, 17)],
            latest_arrival_ms: 1_795_435_200_000,
        };
        let mut d = d;
        d.kept.sort_unstable();
        let b = d.to_bytes();
        assert_eq!(WindowDelta::from_bytes(&b).unwrap(), d);
        for cut in 0..b.len() {
            assert!(WindowDelta::from_bytes(&b[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(WindowDelta::from_bytes(&WindowDelta::default().to_bytes()).unwrap(), WindowDelta::default());
        // An id kept after the delta's latest arrival is damage: an error, not a window whose
        // offsets overflow (found by the `ledger` fuzz target: applying it panicked).
        let later = WindowDelta { latest_arrival_ms: 5_000, ..d.clone() };
        assert!(WindowDelta::from_bytes(&later.to_bytes()).is_err());
        let mut found = vec![0x01, 0x00, 0x00];
        found.extend([0xff; 39]);
        found.push(0x00);
        assert!(WindowDelta::from_bytes(&found).is_err());
    }

    /// The reference: a map of every id to the arrival of its latest kept copy, pruned by the
    /// latest arrival after each commit (the window before this representation).
    #[derive(Default)]
    struct Model {
        seen: HashMap<u128, i64>,
        latest: i64,
    }

    impl Model {
        fn commit(&mut self, ids: &[(u8, i64)]) -> Vec<bool> {
            let out = ids
                .iter()
                .map(|&(id, t)| {
                    self.latest = self.latest.max(t);
                    let h = id_hash(&id.to_string());
                    match self.seen.get(&h) {
                        Some(&k) if (t - k).abs() <= DEDUP_WINDOW_MS => true,
                        _ => {
                            self.seen.insert(h, t);
                            false
                        }
                    }
                })
                .collect();
            let horizon = self.latest - DEDUP_WINDOW_MS;
            self.seen.retain(|_, k| *k >= horizon);
            out
        }
    }

    proptest! {
        #[test]
        fn the_compact_window_decides_as_the_map_did_and_rebuilds_from_deltas(
            batches in prop::collection::vec(prop::collection::vec((0u8..40, 0i64..120_000), 0..30), 1..40)
        ) {
            let mut w = DedupWindow::new();
            let mut model = Model::default();
            let mut deltas = Vec::new();
            let mut clock = 1_795_435_200_000i64;
            for b in &batches {
                let ids: Vec<(u8, i64)> = b.iter().map(|&(id, gap)| { clock += gap; (id, clock) }).collect();
                let names: Vec<(String, i64)> = ids.iter().map(|&(id, t)| (id.to_string(), t)).collect();
                let refs: Vec<(&str, i64)> = names.iter().map(|(s, t)| (s.as_str(), *t)).collect();
                let (dups, delta) = commit(&mut w, &refs);
                prop_assert_eq!(dups, model.commit(&ids));
                deltas.push(WindowDelta::from_bytes(&delta.to_bytes()).unwrap());
            }
            let mut rebuilt = DedupWindow::new();
            for d in &deltas {
                rebuilt.apply(d);
            }
            prop_assert_eq!(rebuilt.entries().collect::<Vec<_>>(), w.entries().collect::<Vec<_>>());
            prop_assert_eq!(DedupWindow::from_bytes(&w.to_bytes()).unwrap().entries().collect::<Vec<_>>(), w.entries().collect::<Vec<_>>());
        }

        /// Any pairs, spread or not: ids' hashes, a few hashes repeated with many arrivals, and
        /// hashes that all share their top bits (one range holds them all).
        #[test]
        fn sorting_by_hash_orders_pairs_as_sort_unstable_does(
            ids in prop::collection::vec((any::<u32>(), -5i64..5), 0..3_000),
            shape in 0u8..3,
        ) {
            let pairs: Vec<(u128, i64)> = ids
                .iter()
                .map(|&(id, t)| match shape {
                    0 => (id_hash(&id.to_string()), t),
                    1 => (id_hash(&(id % 7).to_string()), t),
                    _ => (u128::from(id), t),
                })
                .collect();
            let mut expected = pairs.clone();
            expected.sort_unstable();
            prop_assert_eq!(sort_by_hash(pairs), expected);
        }
    }
}

//! The ledger through an object store. Every write whose outcome is unknown (a timeout, a reset,
//! a 5xx, a retry answered 412 or 409) is resolved by reading back, never by assuming; cleanup
//! never deletes anything a commit record names.

use std::collections::HashMap;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use model::DEDUP_WINDOW_MS;
use sink::store::{ObjectStore, StoreError};

use super::record::{
    checkpoint_bytes, parse_checkpoint, CheckpointRef, CommitKind, CommitRecord, CommitSummary, Head, Published, FORMAT,
};
use super::state::ShardState;
use super::{probe_key, LedgerError, Settings, ShardKeys};
use crate::dedup::ReplayWindow;
use crate::kinesis::cmp_sequence;

/// How many store requests of one operation run at once.
pub const MAX_CONCURRENT_REQUESTS: usize = 8;
/// A cold start without a usable checkpoint applies at most this many commit records; beyond,
/// rebuilding is the repair command's work, not an invocation's.
pub const MAX_COMMITS_ON_LOAD: u64 = 4096;
/// Commits are folded an hour after the stream's retention has put their records beyond reach.
const FOLD_MARGIN_MS: i64 = 3_600_000;

/// What a load found and did besides building the state.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Repairs made on the way (a lost `head.json`, a damaged checkpoint), for the log.
    pub repaired: Vec<String>,
}

/// How a commit record came to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Clean,
    /// The store applied the create but its answer was lost (an error, or a retry answered 412
    /// or 409); reading back found our own attempt's record.
    ReplyLost,
}

fn missing(keys: &ShardKeys, n: u64) -> LedgerError {
    LedgerError::Damaged {
        key: keys.commit(n),
        what: "missing, while the shard's ledger says it was created (commit records are created once \
               and never deleted before the stream's retention)"
            .into(),
    }
}

/// Commit record `n`, if it exists.
pub async fn get_commit<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    n: u64,
) -> Result<Option<CommitRecord>, LedgerError> {
    get_parsed(store, keys, n, CommitRecord::parse).await
}

/// How much of a commit record a publisher reads first: its summary with room to spare (1.6 KB
/// for a commit of four files, 290 bytes more a file: 8 KB hold 5 tables over 5 hours). The
/// rest, the ids it kept and its records' fingerprints, is about 35 bytes a record: 350 KB for
/// a batch of 10,000.
pub const SUMMARY_BYTES: usize = 8 << 10;

/// Commit record `n`'s [`CommitSummary`], if it exists (what a publisher reads): from the
/// record's first [`SUMMARY_BYTES`] (a ranged GET) when they hold it, else from the whole record.
pub async fn get_commit_summary<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    n: u64,
) -> Result<Option<CommitSummary>, LedgerError> {
    let key = keys.commit(n);
    let Some(start) = store.get_prefix(&key, SUMMARY_BYTES).await? else { return Ok(None) };
    if start.len() < SUMMARY_BYTES {
        return CommitSummary::parse(&key, &start).map(Some);
    }
    if let Some(summary) = CommitSummary::parse_start(&start) {
        return Ok(Some(summary));
    }
    get_parsed(store, keys, n, CommitSummary::parse).await
}

async fn get_parsed<S: ObjectStore, T>(
    store: &S,
    keys: &ShardKeys,
    n: u64,
    parse: fn(&str, &[u8]) -> Result<T, LedgerError>,
) -> Result<Option<T>, LedgerError> {
    let key = keys.commit(n);
    match store.get(&key).await? {
        Some(body) => Ok(Some(parse(&key, &body)?)),
        None => Ok(None),
    }
}

async fn required_commit<S: ObjectStore>(store: &S, keys: &ShardKeys, n: u64) -> Result<CommitRecord, LedgerError> {
    get_commit(store, keys, n).await?.ok_or_else(|| missing(keys, n))
}

/// Commit records fetched while handling one batch.
#[derive(Default)]
pub struct CommitCache(HashMap<u64, CommitRecord>);

impl CommitCache {
    async fn get<S: ObjectStore>(&mut self, store: &S, keys: &ShardKeys, n: u64) -> Result<&CommitRecord, LedgerError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.0.entry(n) {
            slot.insert(required_commit(store, keys, n).await?);
        }
        Ok(&self.0[&n])
    }

    /// Fetches the records of `numbers` not yet held, concurrently.
    async fn prefetch<S: ObjectStore>(
        &mut self,
        store: &S,
        keys: &ShardKeys,
        numbers: impl Iterator<Item = u64>,
    ) -> Result<(), LedgerError> {
        let wanted: Vec<u64> = numbers.filter(|n| !self.0.contains_key(n)).collect();
        let fetched: Vec<CommitRecord> = futures::stream::iter(wanted)
            .map(|n| required_commit(store, keys, n))
            .buffer_unordered(MAX_CONCURRENT_REQUESTS)
            .try_collect()
            .await?;
        self.0.extend(fetched.into_iter().map(|c| (c.commit, c)));
        Ok(())
    }
}

/// The shard's `head.json`, when it exists and is usable (a damaged one is noted and ignored:
/// it is a hint).
pub async fn read_head<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    notes: &mut Vec<String>,
) -> Result<Option<Head>, StoreError> {
    let Some(body) = store.get(&keys.head()).await? else { return Ok(None) };
    match serde_json::from_slice::<Head>(&body) {
        Ok(h) if h.format == FORMAT => Ok(Some(h)),
        Ok(h) => {
            notes.push(format!("{} has format {}: ignored", keys.head(), h.format));
            Ok(None)
        }
        Err(e) => {
            notes.push(format!("{} is damaged ({e}): ignored", keys.head()));
            Ok(None)
        }
    }
}

/// Records the latest commit and checkpoint in `head.json` (a hint: a failure is logged).
pub async fn write_head<S: ObjectStore>(store: &S, keys: &ShardKeys, state: &ShardState) {
    let head = Head { format: FORMAT, latest: state.latest, checkpoint: state.checkpoint() };
    if let Err(e) = store.put(&keys.head(), head.to_bytes()).await {
        tracing::warn!(shard = keys.shard_id, error = %e, "head.json not updated; the next load looks past it");
    }
}

/// The commit up to which the publisher has published this shard (0: none, or unknown).
pub async fn read_published<S: ObjectStore>(store: &S, keys: &ShardKeys) -> Result<u64, StoreError> {
    let Some(body) = store.get(&keys.published()).await? else { return Ok(0) };
    match serde_json::from_slice::<Published>(&body) {
        Ok(p) if p.format == FORMAT => Ok(p.commit),
        _ => {
            tracing::warn!(key = keys.published(), "unreadable: treated as nothing published, so nothing is folded");
            Ok(0)
        }
    }
}

/// The highest commit number in a listing of the shard's commit records (0: none).
async fn last_listed_commit<S: ObjectStore>(store: &S, keys: &ShardKeys) -> Result<u64, LedgerError> {
    let listed = store.list(&keys.commits()).await?;
    Ok(listed.iter().filter_map(|k| keys.commit_number(k)).max().unwrap_or(0))
}

/// Reads a shard's state: `head.json`, the commit records after it, the newest usable
/// checkpoint and the commits after that. A lost or damaged `head.json` or checkpoint is
/// repaired on the way; a commit record that is missing or damaged inside the chain is an error
/// that needs a repair.
pub async fn load<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    settings: &Settings,
) -> Result<(ShardState, LoadReport), LedgerError> {
    let mut report = LoadReport::default();
    let head = read_head(store, keys, &mut report.repaired).await?;
    let mut cache = CommitCache::default();
    let mut latest = match &head {
        Some(h) => {
            if h.latest > 0 {
                cache.get(store, keys, h.latest).await?;
            }
            h.latest
        }
        None => {
            let found = last_listed_commit(store, keys).await?;
            if found > 0 {
                report.repaired.push(format!("{} is missing or damaged: found commit {found} by listing", keys.head()));
                cache.get(store, keys, found).await?;
            }
            found
        }
    };
    while let Some(c) = get_commit(store, keys, latest + 1).await? {
        latest += 1;
        cache.0.insert(latest, c);
    }
    if latest == 0 {
        return Ok((ShardState::new(), report));
    }
    let named = head.as_ref().map_or(0, |h| h.checkpoint).max(cache.0[&latest].checkpoint);
    let (mut state, fell_back) = from_checkpoint(store, keys, named, &mut cache, &mut report).await?;
    let todo = latest - state.latest;
    if todo > MAX_COMMITS_ON_LOAD {
        return Err(LedgerError::Damaged {
            key: keys.checkpoint(named),
            what: format!(
                "no usable checkpoint: rebuilding would read {todo} commit records, more than an invocation \
                 should; run `{}`",
                keys.repair_command()
            ),
        });
    }
    let first = state.latest + 1;
    apply_commits(store, keys, &mut cache, &mut state, first..=latest).await?;
    if head.as_ref().is_none_or(|h| h.latest != latest) {
        write_head(store, keys, &state).await;
    }
    if let Some(loaded_from) = fell_back {
        // Replace the damaged checkpoint, so that the next cold start does not fall back again.
        state.checkpoints.retain(|c| c.commit <= loaded_from);
        if let Err(e) = checkpoint(store, keys, &mut state, settings, model::now_ms()).await {
            tracing::warn!(error = %e, "could not write a checkpoint to replace a damaged one");
        }
    }
    Ok((state, report))
}

/// Applies commit records `range` to `state` in order (fetched 256 at a time, 8 at once).
async fn apply_commits<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    cache: &mut CommitCache,
    state: &mut ShardState,
    range: std::ops::RangeInclusive<u64>,
) -> Result<(), LedgerError> {
    let (first, last) = (*range.start(), *range.end());
    for chunk_start in (first..=last).step_by(256) {
        let chunk_end = (chunk_start + 255).min(last);
        cache.prefetch(store, keys, chunk_start..=chunk_end).await?;
        for n in chunk_start..=chunk_end {
            let c = cache.0.remove(&n).ok_or_else(|| missing(keys, n))?;
            state.apply(&c).map_err(|e| LedgerError::Damaged { key: keys.commit(n), what: e.to_string() })?;
        }
    }
    Ok(())
}

/// The state as of checkpoint `named`, or of an older one when it is missing or damaged (each
/// commit record names the checkpoint before it). Returns the commit of the checkpoint used
/// when that was not `named`.
async fn from_checkpoint<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    named: u64,
    cache: &mut CommitCache,
    report: &mut LoadReport,
) -> Result<(ShardState, Option<u64>), LedgerError> {
    let mut c = named;
    loop {
        if c == 0 {
            return Ok((ShardState::new(), (named != 0).then_some(0)));
        }
        let key = keys.checkpoint(c);
        let why = match store.get(&key).await? {
            Some(body) => match parse_checkpoint(&key, &body) {
                Ok((h, w)) if h.commit == c && h.stream == keys.stream && h.shard_id == keys.shard_id => {
                    let state = ShardState::from_checkpoint(h, w);
                    return Ok((state, (c != named).then_some(c)));
                }
                Ok(_) => "belongs to another commit or shard".to_string(),
                Err(e) => e.to_string(),
            },
            None => "is missing".to_string(),
        };
        // The commit record of checkpoint `c` names the checkpoint before it.
        let previous = cache.get(store, keys, c).await?.checkpoint;
        report.repaired.push(format!("checkpoint {key} {why}: using checkpoint {previous} and the commits after it"));
        if previous >= c {
            return Err(LedgerError::Damaged {
                key: keys.commit(c),
                what: format!("names checkpoint {previous}, not an older one"),
            });
        }
        c = previous;
    }
}

async fn put_key<S: ObjectStore>(store: &S, key: String, body: Bytes) -> Result<(), StoreError> {
    store.put(&key, body).await
}

async fn delete_key<S: ObjectStore>(store: &S, key: String) -> Result<(), StoreError> {
    store.delete(&key).await
}

/// Writes the staged files, then creates the commit record with `If-None-Match: *`. When the
/// create is refused or unanswered, the record is read back: our own attempt's record is our
/// success; another attempt's is a `Conflict` (our staged files, which it cannot name, are
/// removed); no record, or no answer, is `Unknown` (nothing is removed: the next load finds out).
pub async fn write_commit<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    commit: &CommitRecord,
    staged: Vec<(String, Bytes)>,
) -> Result<Created, LedgerError> {
    futures::stream::iter(staged)
        .map(|(key, body)| put_key(store, key, body))
        .buffer_unordered(MAX_CONCURRENT_REQUESTS)
        .try_collect::<Vec<()>>()
        .await?;
    let key = keys.commit(commit.commit);
    let answer = store.put_if_absent(&key, commit.to_bytes()).await;
    if matches!(answer, Ok(true)) {
        return Ok(Created::Clean);
    }
    let answered = match &answer {
        Ok(_) => "refused as existing".to_string(),
        Err(e) => e.to_string(),
    };
    match store.get(&key).await {
        Ok(Some(body)) => {
            let winner = CommitRecord::parse(&key, &body)?;
            if winner.attempt == commit.attempt {
                tracing::warn!(key, answered, "the commit's reply was lost; reading it back found our own record");
                return Ok(Created::ReplyLost);
            }
            for f in &commit.files {
                if !winner.files.iter().any(|w| w.staged == f.staged) {
                    // Best effort: leftovers are hidden and expire with the staging lifecycle rule.
                    let _ = store.delete(&f.staged).await;
                }
            }
            Err(LedgerError::Conflict { key })
        }
        Ok(None) => Err(LedgerError::Unknown { key, detail: format!("{answered}, yet absent when read back") }),
        Err(e) => Err(LedgerError::Unknown { key, detail: format!("{answered}; reading it back: {e}") }),
    }
}

/// Checks that the store honours `If-None-Match: *`: a second conditional create of a probe key
/// must be refused and must leave the first body in place.
pub async fn check_conditional_writes<S: ObjectStore>(store: &S, prefix: &str) -> Result<(), LedgerError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let key = probe_key(prefix, &id);
    let first = Bytes::from(format!("{{\"probe\":\"{id}\",\"write\":1}}"));
    let second = Bytes::from(format!("{{\"probe\":\"{id}\",\"write\":2}}"));
    let created = store.put_if_absent(&key, first.clone()).await;
    if !matches!(created, Ok(true)) && store.get(&key).await?.as_ref() != Some(&first) {
        // Refused or unanswered, and not there: try again later.
        return Err(match created {
            Err(e) => e.into(),
            _ => LedgerError::NoConditionalWrites { store: store.describe(), key },
        });
    }
    let again = store.put_if_absent(&key, second.clone()).await;
    let after = store.get(&key).await;
    let _ = store.delete(&key).await;
    match (again, after?) {
        (Ok(true), _) => Err(LedgerError::NoConditionalWrites { store: store.describe(), key }),
        (_, Some(body)) if body == first => Ok(()),
        (Err(e), _) => Err(e.into()),
        (Ok(false), _) => Err(LedgerError::NoConditionalWrites { store: store.describe(), key }),
    }
}

/// Writes a checkpoint of `state` as of its latest commit, and folds what the stream's retention
/// has put out of reach: commit records up to the newest kept checkpoint older than the
/// retention (plus an hour) that the publisher has published (`published.json`), the
/// checkpoints before it, and replayed ranges as old.
pub async fn checkpoint<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    state: &mut ShardState,
    settings: &Settings,
    now_ms: i64,
) -> Result<(), StoreError> {
    let retention_ms = i64::try_from(settings.retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms.saturating_sub(retention_ms).saturating_sub(FOLD_MARGIN_MS);
    let mut checkpoints = state.checkpoints.clone();
    checkpoints.retain(|c| c.commit < state.latest);
    let mut fold_to = checkpoints.iter().rev().find(|c| c.latest_arrival_ms < cutoff).map(|c| c.commit);
    if fold_to.is_some() {
        // Only what the publisher is done with: it reads unpublished commits' records.
        let published = read_published(store, keys).await?;
        fold_to =
            checkpoints.iter().rev().find(|c| c.latest_arrival_ms < cutoff && c.commit <= published).map(|c| c.commit);
    }
    checkpoints.push(CheckpointRef { commit: state.latest, latest_arrival_ms: state.window.latest_arrival_ms() });
    let (floor, dropped): (u64, Vec<u64>) = match fold_to {
        Some(old) => (old + 1, checkpoints.iter().map(|c| c.commit).filter(|&c| c < old).collect()),
        None => (state.floor, Vec::new()),
    };
    checkpoints.retain(|c| !dropped.contains(&c.commit));
    let mut next = state.clone();
    next.checkpoints = checkpoints.clone();
    next.floor = floor;
    next.replays.retain(|r| r.arrival.1 >= cutoff);
    let header = next.checkpoint_header(keys, checkpoints, floor);
    store.put(&keys.checkpoint(state.latest), checkpoint_bytes(&header, &state.window)).await?;
    let old_floor = state.floor;
    state.checkpoints = next.checkpoints;
    state.floor = next.floor;
    state.replays = next.replays;
    state.ids_since_checkpoint = 0;
    let doomed: Vec<String> =
        (old_floor..floor).map(|n| keys.commit(n)).chain(dropped.iter().map(|&c| keys.checkpoint(c))).collect();
    if !doomed.is_empty() {
        let count = doomed.len();
        let failed = futures::stream::iter(doomed)
            .map(|key| delete_key(store, key))
            .buffer_unordered(MAX_CONCURRENT_REQUESTS)
            .filter(|r| std::future::ready(r.is_err()))
            .count()
            .await;
        tracing::info!(
            shard = keys.shard_id,
            folded = count,
            failed,
            floor,
            "folded ledger objects beyond the stream's retention"
        );
    }
    Ok(())
}

/// Where a record at or below the high-water mark stands, from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    Committed(u64),
    /// No commit covers it: Lambda gave up on it (or it was never delivered). `near` is the
    /// commit whose stretch of the shard it falls in; `inside` a commit whose sequence range
    /// holds it although it is not one of its records: a batch of another invocation of the same
    /// shard (a parallelization factor above 1) committed around it.
    Gap {
        near: u64,
        inside: Option<u64>,
    },
}

/// Finds whether a record at or below the high-water mark was committed: by the replayed
/// ranges, then by a binary search over the commits by high-water mark (the stream commits
/// cover increasing, disjoint ranges).
pub async fn locate<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    state: &ShardState,
    seq: &str,
    cache: &mut CommitCache,
) -> Result<Located, LedgerError> {
    let fingerprint = super::record::sequence_fingerprint(seq);
    let holds = |c: &CommitRecord| -> Result<bool, LedgerError> {
        let fingerprints =
            c.fingerprints().map_err(|what| LedgerError::Damaged { key: keys.commit(c.commit), what })?;
        Ok(fingerprints.binary_search(&fingerprint).is_ok())
    };
    let mut inside = None;
    for c in cache.0.values().filter(|c| c.covers_range(seq)) {
        if holds(c)? {
            return Ok(Located::Committed(c.commit));
        }
        inside = Some(c.commit);
    }
    for r in &state.replays {
        if r.ranges.iter().any(|range| range.contains(seq)) && holds(cache.get(store, keys, r.commit).await?)? {
            return Ok(Located::Committed(r.commit));
        }
    }
    let (mut lo, mut hi) = (state.floor.max(1), state.latest);
    if hi < lo {
        return Ok(Located::Gap { near: state.latest, inside });
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if cmp_sequence(&cache.get(store, keys, mid).await?.high_water_mark, seq).is_ge() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let c = cache.get(store, keys, lo).await?;
    if c.covers_range(seq) {
        if holds(c)? {
            return Ok(Located::Committed(lo));
        }
        inside = Some(lo);
    }
    let below_all = c.ranges.first().is_some_and(|r| cmp_sequence(seq, &r.0).is_lt());
    if lo == state.floor && state.floor > 1 && below_all {
        return Err(LedgerError::Expired { sequence_number: seq.to_string(), floor: state.floor });
    }
    Ok(Located::Gap { near: lo, inside })
}

/// Every kept copy of the ids that can match records arriving between `from_ms` and `to_ms`:
/// the commits around `near` whose arrivals come within the window of that stretch, the replay
/// commits that do, and the shard's current window.
pub async fn replay_window<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    state: &ShardState,
    (from_ms, to_ms): (i64, i64),
    near: u64,
    cache: &mut CommitCache,
) -> Result<ReplayWindow, LedgerError> {
    let (lo_t, hi_t) = (from_ms.saturating_sub(DEDUP_WINDOW_MS), to_ms.saturating_add(DEDUP_WINDOW_MS));
    let mut entries: Vec<(u128, i64)> = state.window.entries().filter(|&(_, t)| t >= lo_t && t <= hi_t).collect();
    let mut add = |c: &CommitRecord| -> Result<(), LedgerError> {
        if c.arrival.overlaps(lo_t, hi_t) {
            let delta =
                c.delta().map_err(|e| LedgerError::Damaged { key: keys.commit(c.commit), what: e.to_string() })?;
            entries.extend(delta.kept);
        }
        Ok(())
    };
    const STEP: u64 = MAX_CONCURRENT_REQUESTS as u64 * 2;
    let floor = state.floor.max(1);
    let mut n = near.min(state.latest);
    while n >= floor && n > 0 {
        cache.prefetch(store, keys, n.saturating_sub(STEP - 1).max(floor)..=n).await?;
        let c = cache.get(store, keys, n).await?;
        add(c)?;
        if c.kind == CommitKind::Stream && c.arrival.1 < lo_t {
            break;
        }
        n -= 1;
    }
    let mut n = near + 1;
    while n <= state.latest {
        cache.prefetch(store, keys, n..=(n + STEP - 1).min(state.latest)).await?;
        let c = cache.get(store, keys, n).await?;
        add(c)?;
        if c.kind == CommitKind::Stream && c.arrival.0 > hi_t {
            break;
        }
        n += 1;
    }
    for r in &state.replays {
        if r.arrival.overlaps(lo_t, hi_t) {
            let c = cache.get(store, keys, r.commit).await?;
            add(c)?;
        }
    }
    Ok(ReplayWindow::new(entries))
}

/// What a rebuild found.
#[derive(Debug)]
pub struct Rebuilt {
    pub state: ShardState,
    pub commits: u64,
}

/// Rebuilds a shard's state from its commit records alone (the repair): lists them, checks that
/// they form an unbroken chain, applies them, and writes a checkpoint and `head.json`.
pub async fn rebuild<S: ObjectStore>(store: &S, keys: &ShardKeys, settings: &Settings) -> Result<Rebuilt, LedgerError> {
    let mut numbers: Vec<u64> =
        store.list(&keys.commits()).await?.iter().filter_map(|k| keys.commit_number(k)).collect();
    numbers.sort_unstable();
    let (Some(&first), Some(&last)) = (numbers.first(), numbers.last()) else {
        return Ok(Rebuilt { state: ShardState::new(), commits: 0 });
    };
    if let Some(w) = numbers.windows(2).find(|w| w[1] != w[0] + 1) {
        return Err(missing(keys, w[0] + 1));
    }
    let mut state = ShardState { floor: first, latest: first - 1, ..ShardState::new() };
    let mut cache = CommitCache::default();
    apply_commits(store, keys, &mut cache, &mut state, first..=last).await?;
    // Checkpoints named by the records may be damaged: this state starts a fresh list.
    state.checkpoints.clear();
    checkpoint(store, keys, &mut state, settings, model::now_ms()).await?;
    let head = Head { format: FORMAT, latest: state.latest, checkpoint: state.checkpoint() };
    store.put(&keys.head(), head.to_bytes()).await?;
    Ok(Rebuilt { state, commits: last - first + 1 })
}

#[cfg(test)]
mod tests {
    use sink::store::MemoryStore;

    use super::*;
    use crate::ledger::record::tests::{record, with_records_last};

    #[tokio::test]
    async fn a_summary_is_read_from_the_start_of_a_large_record_or_else_from_all_of_it() {
        let store = MemoryStore::new();
        let keys = ShardKeys::new("", "orders", "s");
        let mut c = record();
        c.window = "A".repeat(100_000);
        let expected = CommitSummary::parse("k", &c.to_bytes()).unwrap();
        store.put(&keys.commit(7), c.to_bytes()).await.unwrap();
        store.put(&keys.commit(8), Bytes::from(with_records_last(&c))).await.unwrap();
        store.put(&keys.commit(9), Bytes::from_static(b"{\"format\": 2")).await.unwrap();
        assert_eq!(get_commit_summary(&store, &keys, 7).await.unwrap(), Some(expected.clone()));
        assert_eq!(get_commit_summary(&store, &keys, 8).await.unwrap(), Some(expected));
        assert!(matches!(get_commit_summary(&store, &keys, 9).await, Err(LedgerError::Damaged { .. })));
        assert_eq!(get_commit_summary(&store, &keys, 10).await.unwrap(), None);
    }
}

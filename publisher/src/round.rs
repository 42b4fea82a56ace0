//! Publisher rounds through an object store (docs/exactly-once.md, "Publishing").
//!
//! A round: finish the latest round if a crash cut it short; find every owned shard's commits
//! after its position; merge their staged files into one file per table and hour, staged under
//! the round's attempt; create the round record with `If-None-Match: *` (the fence: from here
//! on the round is decided); copy its files to their visible keys; delete the staged files;
//! update `head.json`. Every step after the fence is idempotent and rolled forward by the next
//! round when a crash stops it; every step before leaves only hidden files that nothing names.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use processor::ledger::io as ledger_io;
use processor::ledger::{CommitSummary, Published, ShardKeys, PROBE_DIR};
use sink::store::{ObjectStore, StoreError, Upload};
use sink::{Partition, Table};
use tokio::sync::mpsc;

use crate::keys::{group_of, publish_dir, GroupKeys};
use crate::merge::{self, Merged};
use crate::plan::{self, Input, Pending, Plan, Taken};
use crate::record::{GroupHead, RoundOutput, RoundRecord, ShardPosition, FORMAT};
use crate::{PublishError, Settings};

/// Store requests of one step in flight at once.
const CONCURRENT_REQUESTS: usize = 8;
/// Staged inputs fetched ahead of the merge, per output.
const PREFETCH: usize = 4;
/// Output bytes handed from the encoder to the upload at a time.
const CHUNK_BYTES: usize = 1 << 20;
/// Round records kept: older ones are deleted, one per round. A round attempt that started
/// before the record it would create was deleted would have to have stalled for this many
/// rounds (over half an hour at the shortest interval), far beyond any invocation's timeout.
pub const KEEP_ROUNDS: u64 = 2000;

/// What one round did.
#[derive(Debug, Clone, Default)]
pub struct RoundReport {
    /// The round decided now (`None`: nothing to publish, nothing written).
    pub round: Option<u64>,
    /// An earlier round that a crash had cut short, finished now.
    pub rolled_forward: Option<u64>,
    pub taken: Vec<Taken>,
    pub outputs: Vec<RoundOutput>,
    pub input_files: u64,
    pub input_bytes: u64,
    /// Staged inputs (or a decided round's outputs) that existed nowhere: rows not published.
    pub missing_files: u64,
    /// Round records whose create answered with an error although it was applied.
    pub lost_replies: u64,
    /// Commits left for the next round (this one's budget was spent), and the oldest's
    /// `committed_ms`.
    pub left: u64,
    pub oldest_left_ms: Option<i64>,
    /// Shards skipped for this round, with why (their ledger could not be read).
    pub shard_errors: Vec<String>,
    /// When the round's files had all become visible (UTC ms).
    pub visible_ms: i64,
    pub elapsed_ms: u64,
}

impl RoundReport {
    pub fn commits(&self) -> u64 {
        self.taken.len() as u64
    }
    pub fn bytes(&self) -> u64 {
        self.outputs.iter().map(|o| o.bytes).sum()
    }
    pub fn rows(&self) -> u64 {
        self.outputs.iter().map(|o| o.rows).sum()
    }
    /// The longest a published commit waited between its commit and the round (ms).
    pub fn lag_ms(&self) -> i64 {
        self.taken.iter().map(|t| self.visible_ms - t.committed_ms).max().unwrap_or(0).max(0)
    }
}

/// The latest round of a group as found in the store.
struct Latest {
    round: u64,
    record: Option<RoundRecord>,
    complete: bool,
}

/// A publisher of one group.
pub struct Publisher<S> {
    store: S,
    keys: GroupKeys,
    settings: Settings,
}

async fn get_key<S: ObjectStore>(store: &S, key: String) -> Result<(String, Option<Bytes>), StoreError> {
    let body = store.get(&key).await?;
    Ok((key, body))
}

async fn delete_key<S: ObjectStore>(store: &S, key: String) -> Result<(), StoreError> {
    store.delete(&key).await
}

impl<S: ObjectStore> Publisher<S> {
    pub fn new(store: S, prefix: &str, settings: Settings) -> Self {
        let keys = GroupKeys::new(prefix, settings.group);
        Publisher { store, keys, settings }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn keys(&self) -> &GroupKeys {
        &self.keys
    }

    /// Runs one round.
    pub async fn round(&self) -> Result<RoundReport, PublishError> {
        let started = std::time::Instant::now();
        let mut report = RoundReport::default();
        let latest = latest(&self.store, &self.keys).await?;
        if let Some(record) = &latest.record {
            if !latest.complete {
                self.finish(record, None, &mut report).await?;
                report.rolled_forward = Some(record.round);
            }
        }
        let mut positions: BTreeMap<(String, String), ShardPosition> = latest
            .record
            .as_ref()
            .map(|r| r.positions.iter().map(|p| ((p.stream.clone(), p.shard_id.clone()), p.clone())).collect())
            .unwrap_or_default();
        let owned = self.owned_shards().await?;
        let unknown: Vec<(String, String)> = owned.iter().filter(|s| !positions.contains_key(*s)).cloned().collect();
        if !unknown.is_empty() {
            for (shard, p) in self.adopt(&unknown).await? {
                positions.insert(shard, p);
            }
        }
        self.mark(&mut positions, latest.round).await;
        let pending = self.pending(&owned, &positions, &mut report).await?;
        let plan = plan::plan(&pending, self.settings.round_bytes)?;
        report.left = plan.left;
        report.oldest_left_ms = plan.oldest_left_ms;
        if plan.is_empty() {
            report.elapsed_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
        let r = latest.round + 1;
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        let outputs = self.merge_all(r, &attempt, &plan, &mut report).await?;
        for span in &plan.spans {
            let p = positions.entry((span.stream.clone(), span.shard_id.clone())).or_insert_with(|| ShardPosition {
                stream: span.stream.clone(),
                shard_id: span.shard_id.clone(),
                commit: 0,
                marked: 0,
            });
            p.commit = span.to;
        }
        let record = RoundRecord {
            format: FORMAT,
            group: self.settings.group,
            groups: self.settings.groups,
            round: r,
            attempt,
            created_ms: model::now_ms(),
            positions: positions.into_values().collect(),
            spans: plan.spans.clone(),
            outputs,
            commits: plan.taken.len() as u64,
            records: plan.taken.iter().map(|t| t.records).sum(),
            input_files: plan.outputs.values().map(|v| v.len() as u64).sum(),
            input_bytes: plan.input_bytes,
            missing_inputs: report.missing_files,
            oldest_committed_ms: plan.taken.iter().map(|t| t.committed_ms).min().unwrap_or(0),
        };
        self.decide(&record, &mut report).await?;
        self.not_resurrected(&record).await?;
        report.round = Some(r);
        report.input_files = record.input_files;
        report.input_bytes = record.input_bytes;
        report.outputs = record.outputs.clone();
        report.taken = plan.taken.clone();
        self.finish(&record, Some(&plan), &mut report).await?;
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Runs rounds until one finds nothing to publish (or `max_rounds`): everything committed
    /// before the call is then visible.
    pub async fn drain(&self, max_rounds: usize) -> Result<Vec<RoundReport>, PublishError> {
        let mut reports = Vec::new();
        for _ in 0..max_rounds.max(1) {
            let report = self.round().await?;
            let done = report.round.is_none();
            reports.push(report);
            if done {
                break;
            }
        }
        Ok(reports)
    }

    /// Every shard with a ledger that this group owns.
    async fn owned_shards(&self) -> Result<Vec<(String, String)>, StoreError> {
        let root = processor::ledger::ledgers_dir(&self.keys.prefix);
        let mut owned = Vec::new();
        for stream_dir in self.store.list_dirs(&root).await? {
            let stream = stream_dir[root.len()..].trim_end_matches('/').to_string();
            if stream == PROBE_DIR {
                continue;
            }
            for shard_dir in self.store.list_dirs(&stream_dir).await? {
                let shard = shard_dir[stream_dir.len()..].trim_end_matches('/').to_string();
                if group_of(&stream, &shard, self.settings.groups) == self.settings.group {
                    owned.push((stream.clone(), shard));
                }
            }
        }
        Ok(owned)
    }

    /// Positions of shards new to this group from the other groups' latest rounds (after a
    /// change of the number of groups, a shard's commits published by its former group stay
    /// published); 0 for a shard no group has published.
    async fn adopt(&self, shards: &[(String, String)]) -> Result<Vec<((String, String), ShardPosition)>, PublishError> {
        let mut found: BTreeMap<(String, String), ShardPosition> = BTreeMap::new();
        let root = publish_dir(&self.keys.prefix);
        for dir in self.store.list_dirs(&root).await? {
            let Ok(g) = dir[root.len()..].trim_end_matches('/').parse::<u32>() else { continue };
            if g == self.settings.group {
                continue;
            }
            let Some(record) = latest(&self.store, &GroupKeys::new(&self.keys.prefix, g)).await?.record else {
                continue;
            };
            for p in record.positions {
                let k = (p.stream.clone(), p.shard_id.clone());
                if shards.contains(&k) && found.get(&k).is_none_or(|f| f.commit < p.commit) {
                    found.insert(k, p);
                }
            }
        }
        Ok(shards
            .iter()
            .map(|k| {
                let p = found.remove(k).unwrap_or_else(|| ShardPosition {
                    stream: k.0.clone(),
                    shard_id: k.1.clone(),
                    commit: 0,
                    marked: 0,
                });
                (k.clone(), p)
            })
            .collect())
    }

    /// Each owned shard's commits after its position, up to the round's commit limit.
    async fn pending(
        &self,
        owned: &[(String, String)],
        positions: &BTreeMap<(String, String), ShardPosition>,
        report: &mut RoundReport,
    ) -> Result<Vec<Pending>, PublishError> {
        let mut out = Vec::new();
        for (stream, shard) in owned {
            let from = positions.get(&(stream.clone(), shard.clone())).map_or(0, |p| p.commit) + 1;
            match self.shard_commits(stream, shard, from).await {
                Ok(commits) if commits.is_empty() => {}
                Ok(commits) => out.push(Pending { stream: stream.clone(), shard_id: shard.clone(), commits }),
                Err(e) => {
                    tracing::error!(stream, shard, error = %e, "the shard's commits could not be read; it is skipped this round");
                    report.shard_errors.push(format!("{stream} {shard}: {e}"));
                }
            }
        }
        Ok(out)
    }

    async fn shard_commits(&self, stream: &str, shard: &str, from: u64) -> Result<Vec<CommitSummary>, PublishError> {
        let keys = ShardKeys::new(&self.keys.prefix, stream, shard);
        let mut notes = Vec::new();
        let hinted = ledger_io::read_head(&self.store, &keys, &mut notes).await?.map_or(0, |h| h.latest);
        let limit = from + self.settings.round_commits - 1;
        let known = hinted.min(limit);
        let mut commits: Vec<CommitSummary> = futures::stream::iter(from..=known)
            .map(|n| get_commit_in_chain(&self.store, &keys, n))
            .buffered(CONCURRENT_REQUESTS)
            .try_collect()
            .await?;
        // head.json may lag: a crash between a commit and its update.
        let mut n = known.max(from - 1) + 1;
        while n <= limit {
            match ledger_io::get_commit_summary(&self.store, &keys, n).await? {
                Some(c) => commits.push(c),
                None => break,
            }
            n += 1;
        }
        Ok(commits)
    }

    /// Merges every output of the plan, `workers` at a time, each staged under the attempt.
    async fn merge_all(
        &self,
        r: u64,
        attempt: &str,
        plan: &Plan,
        report: &mut RoundReport,
    ) -> Result<Vec<RoundOutput>, PublishError> {
        // Owned inputs keep the future `Send` (a closure over borrowed items is not, to rustc).
        let jobs: Vec<(Table, Partition, Vec<Input>)> =
            plan.outputs.iter().map(|((t, p), v)| (*t, *p, v.clone())).collect();
        let results: Vec<Result<(Option<RoundOutput>, u64), PublishError>> = futures::stream::iter(jobs)
            .map(|(table, partition, inputs)| self.merge_output(r, attempt, table, partition, inputs))
            .buffer_unordered(self.settings.workers.max(1))
            .collect()
            .await;
        let mut outputs = Vec::new();
        let mut failure = None;
        for result in results {
            match result {
                Ok((output, missing)) => {
                    report.missing_files += missing;
                    outputs.extend(output);
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(e) = failure {
            // Nothing names these files: remove them now rather than wait for the lifecycle.
            for o in &outputs {
                let _ = self.store.delete(&o.staged).await;
            }
            return Err(e);
        }
        outputs.sort_by(|a, b| (&a.table, a.hour).cmp(&(&b.table, b.hour)));
        Ok(outputs)
    }

    /// One table and hour: inputs fetched ahead, merged on a blocking thread, uploaded in parts
    /// as they are encoded. `None` when no input row was found.
    async fn merge_output(
        &self,
        r: u64,
        attempt: &str,
        table: Table,
        partition: Partition,
        inputs: Vec<Input>,
    ) -> Result<(Option<RoundOutput>, u64), PublishError> {
        let staged = self.keys.staged(r, attempt, table, partition);
        let (in_tx, in_rx) = mpsc::channel::<(String, Bytes)>(PREFETCH);
        let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(2);
        let count = inputs.len() as u64;
        let keys: Vec<String> = inputs.into_iter().map(|i| i.staged).collect();
        let fetch = async move {
            let mut missing = 0u64;
            let mut gets = futures::stream::iter(keys).map(|key| get_key(&self.store, key)).buffered(PREFETCH);
            while let Some(got) = gets.next().await {
                match got? {
                    (key, Some(body)) => {
                        if in_tx.send((key, body)).await.is_err() {
                            break;
                        }
                    }
                    (key, None) => {
                        tracing::error!(
                            key,
                            "a committed staged file does not exist (expired or erased): its rows are not published"
                        );
                        missing += 1;
                    }
                }
            }
            Ok::<u64, StoreError>(missing)
        };
        let row_group_bytes = self.settings.row_group_bytes;
        let merge = tokio::task::spawn_blocking(move || {
            merge::merge(table, Received(in_rx), Chunks::new(out_tx), row_group_bytes)
        });
        let upload = async {
            let mut up = Upload::new(&self.store, &staged, self.settings.part_bytes);
            while let Some(chunk) = out_rx.recv().await {
                if let Err(e) = up.write(&chunk).await {
                    // The merge stops at its next chunk (else it would wait for room forever).
                    out_rx.close();
                    up.abort().await;
                    return Err(e);
                }
            }
            Ok(up)
        };
        let (fetched, merged, uploaded) = tokio::join!(fetch, merge, upload);
        let merged: Result<Merged, PublishError> = match merged {
            Ok(m) => m.map_err(PublishError::from),
            Err(e) => Err(PublishError::Task(e.to_string())),
        };
        let up = uploaded?;
        let (missing, merged) = match (fetched, merged) {
            (Ok(missing), Ok(merged)) => (missing, merged),
            (Err(e), _) => {
                up.abort().await;
                return Err(e.into());
            }
            (_, Err(e)) => {
                up.abort().await;
                return Err(e);
            }
        };
        if merged.rows == 0 {
            up.abort().await;
            return Ok((None, missing));
        }
        let bytes = up.finish().await?;
        let output = RoundOutput {
            table: table.as_str().to_string(),
            hour: partition.hour_start_ms,
            staged,
            key: self.keys.visible(r, table, partition),
            rows: merged.rows,
            bytes,
            inputs: count - missing,
        };
        Ok((Some(output), missing))
    }

    /// Creates the round record. Refused or unanswered, it is read back: our own attempt's record
    /// is our success; another's means another publisher decided the round (our staged files are
    /// removed); none, or no answer, leaves the outcome to the next round.
    async fn decide(&self, record: &RoundRecord, report: &mut RoundReport) -> Result<(), PublishError> {
        let key = self.keys.round(record.round);
        let answer = self.store.put_if_absent(&key, record.to_bytes()).await;
        if matches!(answer, Ok(true)) {
            return Ok(());
        }
        let answered = match &answer {
            Ok(_) => "refused as existing".to_string(),
            Err(e) => e.to_string(),
        };
        match self.store.get(&key).await {
            Ok(Some(body)) => {
                let winner = RoundRecord::parse(&key, &body)?;
                if winner.attempt == record.attempt {
                    tracing::warn!(key, answered, "the round record's reply was lost; reading it back found our own");
                    report.lost_replies += 1;
                    return Ok(());
                }
                for o in &record.outputs {
                    let _ = self.store.delete(&o.staged).await;
                }
                Err(PublishError::Conflict { key })
            }
            Ok(None) => Err(PublishError::Unknown { key, detail: format!("{answered}, yet absent when read back") }),
            Err(e) => Err(PublishError::Unknown { key, detail: format!("{answered}; reading it back: {e}") }),
        }
    }

    /// Round records older than [`KEEP_ROUNDS`] are deleted: an attempt that stalled for that
    /// long could create its round's record again. Its group's `head.json`, already past the
    /// round, tells: the record is withdrawn before anything becomes visible.
    async fn not_resurrected(&self, record: &RoundRecord) -> Result<(), PublishError> {
        let Some(head) = read_head(&self.store, &self.keys).await? else { return Ok(()) };
        if head.round <= record.round {
            return Ok(());
        }
        let key = self.keys.round(record.round);
        self.store.delete(&key).await?;
        for o in &record.outputs {
            let _ = self.store.delete(&o.staged).await;
        }
        Err(PublishError::Conflict { key })
    }

    /// Sees a decided round through: its files visible, its staged files (merged and input)
    /// deleted, the shards' `published.json` moved on, `head.json` marked complete. Idempotent;
    /// `plan` is the round's own plan when this process decided it (its commits are in hand),
    /// `None` when rolling forward a round found unfinished.
    async fn finish(
        &self,
        record: &RoundRecord,
        plan: Option<&Plan>,
        report: &mut RoundReport,
    ) -> Result<(), PublishError> {
        let copies: Vec<(String, String)> = record.outputs.iter().map(|o| (o.staged.clone(), o.key.clone())).collect();
        let missing: Vec<bool> = futures::stream::iter(copies)
            .map(|(staged, key)| make_visible(&self.store, staged, key))
            .buffer_unordered(CONCURRENT_REQUESTS)
            .try_collect()
            .await?;
        report.missing_files += missing.iter().filter(|m| **m).count() as u64;
        report.visible_ms = model::now_ms();
        let mut doomed: Vec<String> = record.outputs.iter().map(|o| o.staged.clone()).collect();
        match plan {
            Some(plan) => doomed.extend(plan.outputs.values().flatten().map(|i| i.staged.clone())),
            None => doomed.extend(self.inputs_of(record).await),
        }
        let failed = futures::stream::iter(doomed)
            .map(|key| delete_key(&self.store, key))
            .buffer_unordered(CONCURRENT_REQUESTS)
            .filter(|r| std::future::ready(r.is_err()))
            .count()
            .await;
        if failed > 0 {
            tracing::warn!(
                failed,
                "staged files of a published round were not deleted; the staging lifecycle rule expires them"
            );
        }
        let head = GroupHead { format: FORMAT, round: record.round, complete: true };
        if let Err(e) = self.store.put(&self.keys.head(), head.to_bytes()).await {
            tracing::warn!(error = %e, "the group's head.json was not updated; the next round rolls this one forward again");
        }
        if record.round > KEEP_ROUNDS {
            let _ = self.store.delete(&self.keys.round(record.round - KEEP_ROUNDS)).await;
        }
        Ok(())
    }

    /// The staged inputs of a round's commits, read again from their commit records.
    async fn inputs_of(&self, record: &RoundRecord) -> Vec<String> {
        let mut keys = Vec::new();
        for span in &record.spans {
            let shard = ShardKeys::new(&self.keys.prefix, &span.stream, &span.shard_id);
            let commits: Vec<Result<Option<CommitSummary>, _>> = futures::stream::iter(span.from..=span.to)
                .map(|n| ledger_io::get_commit_summary(&self.store, &shard, n))
                .buffered(CONCURRENT_REQUESTS)
                .collect()
                .await;
            for c in commits.into_iter().flatten().flatten() {
                keys.extend(c.files.into_iter().map(|f| f.staged));
            }
        }
        keys
    }

    /// Moves each shard's `published.json` on to the position of the latest round (decided and
    /// finished) when it has gone far enough past the mark: the mark bounds how far the
    /// processor may fold its ledger, so it may lag, and must not lead.
    async fn mark(&self, positions: &mut BTreeMap<(String, String), ShardPosition>, round: u64) {
        for p in positions.values_mut() {
            let due =
                p.commit > p.marked && (p.commit - p.marked >= self.settings.mark_every || round.is_multiple_of(64));
            if !due {
                continue;
            }
            let keys = ShardKeys::new(&self.keys.prefix, &p.stream, &p.shard_id);
            let body = Published { format: processor::ledger::record::FORMAT, commit: p.commit }.to_bytes();
            match self.store.put(&keys.published(), body).await {
                Ok(()) => p.marked = p.commit,
                Err(e) => {
                    tracing::warn!(shard = p.shard_id, error = %e, "published.json not updated; the shard folds less until it is")
                }
            }
        }
    }
}

async fn read_head<S: ObjectStore>(store: &S, keys: &GroupKeys) -> Result<Option<GroupHead>, StoreError> {
    let Some(body) = store.get(&keys.head()).await? else { return Ok(None) };
    match serde_json::from_slice::<GroupHead>(&body) {
        Ok(h) if h.format == FORMAT => Ok(Some(h)),
        _ => {
            tracing::warn!(key = keys.head(), "unreadable: ignored (a hint), looking for the latest round by listing");
            Ok(None)
        }
    }
}

/// A group's latest round: `head.json`'s, or the last listed, and any created after it.
async fn latest<S: ObjectStore>(store: &S, keys: &GroupKeys) -> Result<Latest, PublishError> {
    let head = read_head(store, keys).await?;
    let mut round = match head {
        Some(h) => h.round,
        None => {
            let listed = store.list(&keys.rounds()).await?;
            listed.iter().filter_map(|k| keys.round_number(k)).max().unwrap_or(0)
        }
    };
    let mut record = match round {
        0 => None,
        r => Some(required_round(store, keys, r).await?),
    };
    while let Some(body) = store.get(&keys.round(round + 1)).await? {
        round += 1;
        record = Some(RoundRecord::parse(&keys.round(round), &body)?);
    }
    let complete = head.is_some_and(|h| h.round == round && h.complete);
    Ok(Latest { round, record, complete })
}

async fn required_round<S: ObjectStore>(store: &S, keys: &GroupKeys, r: u64) -> Result<RoundRecord, PublishError> {
    let key = keys.round(r);
    match store.get(&key).await? {
        Some(body) => RoundRecord::parse(&key, &body),
        None => Err(PublishError::Damaged {
            key,
            what: "missing, while the group's head.json names it (round records are never deleted while recent)".into(),
        }),
    }
}

/// Commit `n`'s summary, which the shard's `head.json` says exists.
async fn get_commit_in_chain<S: ObjectStore>(
    store: &S,
    keys: &ShardKeys,
    n: u64,
) -> Result<CommitSummary, PublishError> {
    ledger_io::get_commit_summary(store, keys, n).await?.ok_or_else(|| PublishError::Damaged {
        key: keys.commit(n),
        what: "missing, while the shard's head.json names a later commit".into(),
    })
}

/// Copies a decided round's staged file to its visible key: `true` when it exists neither
/// staged nor visible.
async fn make_visible<S: ObjectStore>(store: &S, staged: String, key: String) -> Result<bool, StoreError> {
    if store.copy(&staged, &key).await? || store.exists(&key).await? {
        return Ok(false);
    }
    tracing::error!(
        key,
        staged,
        "a published round's file exists neither staged nor visible: its rows are not in the datasets"
    );
    Ok(true)
}

/// The merge's inputs, received on its blocking thread.
struct Received(mpsc::Receiver<(String, Bytes)>);

impl Iterator for Received {
    type Item = (String, Bytes);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.blocking_recv()
    }
}

/// The encoder's output, handed to the upload a chunk at a time.
struct Chunks {
    buf: Vec<u8>,
    tx: mpsc::Sender<Bytes>,
}

impl Chunks {
    fn new(tx: mpsc::Sender<Bytes>) -> Self {
        Chunks { buf: Vec::with_capacity(CHUNK_BYTES), tx }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload of the merged file stopped"))
    }
}

impl std::io::Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

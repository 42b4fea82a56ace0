//! The batch handler shared by the Lambda function, the local pipeline, the tests and the
//! benchmarks: records in, datasets committed exactly once, failed sequence numbers out.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::streams::KinesisEventResponse;
use model::{ReasonCode, Rejection};
use sink::store::ObjectStore;
use sink::{encode_parquet, DatasetBuilder, RecordMeta};

use crate::cache::{ShardCache, ShardKey};
use crate::dedup::{KeptIds, WindowBatch};
use crate::digest::{Digest, ProductUnits};
use crate::kinesis::{cmp_sequence, InputRecord, KinesisEvent};
use crate::ledger::io::{self, CommitCache, Created, Located};
use crate::ledger::record::{encode_fingerprints, sequence_fingerprint, ArrivalSpan, FORMAT};
use crate::ledger::{
    CommitKind, CommitRecord, CommittedFile, LedgerError, Position, SeqRange, Settings, ShardKeys, ShardState,
};

/// A commit that loses the race to another invocation is retried this many times.
const MAX_CONFLICT_RETRIES: usize = 3;

/// What one shard's part of a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// The stream the records came from.
    pub stream: String,
    pub records: usize,
    /// Records a commit already covers (a redelivery): skipped.
    pub already_committed: usize,
    /// Records below the high-water mark that no commit covered (records Lambda gave up on,
    /// replayed), committed now.
    pub replayed: usize,
    pub events: usize,
    pub quarantined: usize,
    pub quarantined_by_reason: BTreeMap<ReasonCode, usize>,
    /// Valid events whose `event_id` was already kept within the window: dropped.
    pub duplicates: usize,
    /// Files staged for the publisher.
    pub files: usize,
    /// Writes whose reply was lost and whose outcome was read back.
    pub lost_replies: usize,
    /// Whether the batch interleaved with the shard's commits (a parallelization factor above 1).
    pub interleaved: bool,
    /// What the committed events add up to: the funnel, orders and revenue per minute, units per
    /// product and category.
    pub digest: Digest,
    /// Sequence numbers to report as failed (Lambda retries from the lowest).
    pub failed: Vec<String>,
    pub error: Option<String>,
    /// Wall time of the whole batch, in milliseconds.
    pub elapsed_ms: u64,
}

impl BatchReport {
    /// Adds another part's figures to this one.
    pub fn merge_from(&mut self, o: BatchReport) {
        if self.stream.is_empty() {
            self.stream = o.stream;
        }
        self.records += o.records;
        self.already_committed += o.already_committed;
        self.replayed += o.replayed;
        self.events += o.events;
        self.quarantined += o.quarantined;
        for (code, n) in o.quarantined_by_reason {
            *self.quarantined_by_reason.entry(code).or_default() += n;
        }
        self.duplicates += o.duplicates;
        self.files += o.files;
        self.lost_replies += o.lost_replies;
        self.interleaved |= o.interleaved;
        self.digest.merge(o.digest);
        self.failed.extend(o.failed);
        self.error = self.error.take().or(o.error);
    }
}

/// How a processor runs: the ledger's upkeep and the state cache.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub ledger: Settings,
    /// Bytes of shard state a warm environment keeps between invocations.
    pub cache_budget: usize,
    /// A cached state unused for longer is read again from the store.
    pub cache_max_age: Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            ledger: Settings::default(),
            cache_budget: 512 << 20,
            cache_max_age: Duration::from_secs(600),
        }
    }
}

/// The processor: a store, a key prefix, and what it knows of each shard between invocations.
pub struct Processor<S> {
    store: S,
    prefix: String,
    config: ProcessorConfig,
    cache: Mutex<ShardCache>,
    fence_checked: tokio::sync::OnceCell<()>,
}

/// Why a shard's batch did not commit, and the state to keep when it is still valid.
struct Failure {
    error: LedgerError,
    state: Option<ShardState>,
}

impl Failure {
    fn keep(state: ShardState, error: LedgerError) -> Self {
        Failure { error, state: Some(state) }
    }
    fn drop(error: LedgerError) -> Self {
        Failure { error, state: None }
    }
}

/// The sequence numbers of the records not done: Lambda retries from the lowest.
fn failed(records: &[InputRecord], done: &[bool]) -> Vec<String> {
    records.iter().zip(done).filter(|(_, d)| !**d).map(|(r, _)| r.meta.sequence_number.clone()).collect()
}

/// One commit, built and encoded, not yet written.
struct Built {
    record: CommitRecord,
    staged: Vec<(String, bytes::Bytes)>,
    report: BatchReport,
}

impl<S: ObjectStore> Processor<S> {
    pub fn new(store: S, prefix: impl Into<String>) -> Self {
        Self::with_config(store, prefix, ProcessorConfig::default())
    }

    pub fn with_config(store: S, prefix: impl Into<String>, config: ProcessorConfig) -> Self {
        let cache = ShardCache::new(config.cache_budget, config.cache_max_age);
        Processor {
            store,
            prefix: prefix.into(),
            config,
            cache: Mutex::new(cache),
            fence_checked: tokio::sync::OnceCell::new(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Bytes of shard state held between invocations, and for how many shards.
    pub fn cached(&self) -> (usize, usize) {
        let cache = self.lock_cache();
        (cache.bytes(), cache.len())
    }

    /// The Lambda entry point: a Kinesis event in, the partial batch response out (and the
    /// batch's report, for metrics).
    pub async fn handle(&self, event: KinesisEvent) -> (KinesisEventResponse, BatchReport) {
        let report = self.process(event.records).await;
        let mut response = KinesisEventResponse::default();
        response.set_failures(report.failed.iter().cloned());
        (response, report)
    }

    /// Processes a batch (records of one or more shards, each shard's in sequence order).
    pub async fn process(&self, records: Vec<InputRecord>) -> BatchReport {
        let started = std::time::Instant::now();
        let mut groups: Vec<(ShardKey, Vec<InputRecord>)> = Vec::new();
        for r in records {
            // A shard's key is copied once, for its group.
            match groups.iter_mut().find(|((stream, shard), _)| **stream == *r.stream && **shard == *r.meta.shard_id) {
                Some((_, v)) => v.push(r),
                None => groups.push(((r.stream.to_string(), r.meta.shard_id.to_string()), vec![r])),
            }
        }
        let mut total = BatchReport::default();
        for ((stream, shard), mut recs) in groups {
            recs.sort_by(|a, b| cmp_sequence(&a.meta.sequence_number, &b.meta.sequence_number));
            let report = self.process_shard(&stream, &shard, recs).await;
            if let Some(e) = &report.error {
                tracing::error!(stream, shard, error = %e, failed = report.failed.len(), "batch not committed; reporting its records as failed");
            } else {
                tracing::info!(
                    stream,
                    shard,
                    records = report.records,
                    already_committed = report.already_committed,
                    replayed = report.replayed,
                    events = report.events,
                    quarantined = report.quarantined,
                    duplicates = report.duplicates,
                    files = report.files,
                    "batch committed"
                );
            }
            total.merge_from(report);
        }
        total.elapsed_ms = started.elapsed().as_millis() as u64;
        total
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, ShardCache> {
        // Each cache operation is one map update: a panic elsewhere cannot leave it half-done.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn process_shard(&self, stream: &str, shard: &str, records: Vec<InputRecord>) -> BatchReport {
        let keys = ShardKeys::new(&self.prefix, stream, shard);
        let cache_key = (stream.to_string(), shard.to_string());
        let mut done = vec![false; records.len()];
        let mut report = BatchReport { stream: stream.to_string(), records: records.len(), ..Default::default() };
        let mut error = None;
        for _ in 0..=MAX_CONFLICT_RETRIES {
            let taken = self.lock_cache().take(&cache_key);
            let state = match taken {
                Some(s) => s,
                None => match io::load(&self.store, &keys, &self.config.ledger).await {
                    Ok((s, loaded)) => {
                        for note in loaded.repaired {
                            tracing::warn!(stream, shard, note, "repaired the shard's state while loading it");
                        }
                        s
                    }
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                },
            };
            match self.commit_records(&keys, state, &records, &mut done, &mut report).await {
                Ok(state) => {
                    self.lock_cache().put(cache_key, state);
                    return report;
                }
                Err(Failure { error: LedgerError::Conflict { key }, .. }) => {
                    tracing::warn!(stream, shard, commit = key, "another invocation committed first; reloading");
                    error = Some(LedgerError::Conflict { key });
                }
                Err(f) => {
                    if let Some(state) = f.state {
                        self.lock_cache().put(cache_key, state);
                    }
                    error = Some(f.error);
                    break;
                }
            }
        }
        let error = error.map(|e| match &e {
            LedgerError::Conflict { key } => {
                format!("lost the commit race {} times, last at {key}", MAX_CONFLICT_RETRIES + 1)
            }
            e if e.needs_repair() => format!(
                "the shard's state is damaged, so the shard stops here rather than risk wrong numbers: {e}. \
                 Restore the object from its previous version (the bucket is versioned) or rebuild the \
                 shard's state from its commit records: {}",
                keys.repair_command()
            ),
            e => e.to_string(),
        });
        report.failed = failed(&records, &done);
        report.error = error;
        report
    }

    async fn check_fence(&self) -> Result<(), LedgerError> {
        self.fence_checked
            .get_or_try_init(|| async {
                io::check_conditional_writes(&self.store, &self.prefix).await?;
                tracing::debug!(store = self.store.describe(), "the store honours If-None-Match: *");
                Ok::<(), LedgerError>(())
            })
            .await
            .map(|_| ())
    }

    /// Commits the records no commit covers yet: first those below the high-water mark (a
    /// replay), then those above it.
    async fn commit_records(
        &self,
        keys: &ShardKeys,
        state: ShardState,
        records: &[InputRecord],
        done: &mut [bool],
        report: &mut BatchReport,
    ) -> Result<ShardState, Failure> {
        let mut lookups = CommitCache::default();
        let (mut above, mut gaps, mut near) = (Vec::new(), Vec::new(), None);
        let mut committed_by = std::collections::BTreeSet::new();
        let mut inside: Option<(usize, u64)> = None;
        for (i, r) in records.iter().enumerate() {
            if done[i] {
                continue;
            }
            let seq = &r.meta.sequence_number;
            let located = match state.position(seq) {
                Position::Above => {
                    above.push(i);
                    continue;
                }
                Position::Committed(c) => Ok(Located::Committed(c)),
                Position::LookUp => io::locate(&self.store, keys, &state, seq, &mut lookups).await,
            };
            match located {
                Ok(Located::Committed(c)) => {
                    committed_by.insert(c);
                    done[i] = true;
                    report.already_committed += 1;
                }
                Ok(Located::Gap { near: n, inside: around }) => {
                    near.get_or_insert(n);
                    if let Some(c) = around {
                        inside.get_or_insert((i, c));
                    }
                    gaps.push(i);
                }
                Err(e) => return Err(Failure::keep(state, e)),
            }
        }
        // A record inside a commit's range that is not one of its records, in a batch holding
        // none of that commit's records: the batch and the commit are two invocations' shares of
        // the same stretch of the shard (a parallelization factor above 1). In a batch that does
        // hold the commit's records (the shard in order again), it is simply not committed yet.
        if let Some((i, commit)) = inside.filter(|(_, c)| !committed_by.contains(c)) {
            report.interleaved = true;
            let e = LedgerError::Interleaved { sequence_number: records[i].meta.sequence_number.clone(), commit };
            return Err(Failure::keep(state, e));
        }
        let mut state = state;
        if !gaps.is_empty() {
            let arrivals = gaps.iter().map(|&i| records[i].meta.arrival_ms);
            let span = (arrivals.clone().min().unwrap_or(0), arrivals.max().unwrap_or(0));
            let window = match io::replay_window(&self.store, keys, &state, span, near.unwrap_or(0), &mut lookups).await
            {
                Ok(w) => w,
                Err(e) => return Err(Failure::keep(state, e)),
            };
            let built = match self.build(keys, &state, CommitKind::Replay, records, &gaps, &window) {
                Ok(b) => b,
                Err(e) => return Err(Failure::keep(state, e)),
            };
            state = self.commit(keys, state, built, report).await?;
            gaps.iter().for_each(|&i| done[i] = true);
            report.replayed += gaps.len();
        }
        if !above.is_empty() {
            let built = match self.build(keys, &state, CommitKind::Stream, records, &above, &state.window) {
                Ok(b) => b,
                Err(e) => return Err(Failure::keep(state, e)),
            };
            state = self.commit(keys, state, built, report).await?;
            above.iter().for_each(|&i| done[i] = true);
        }
        Ok(state)
    }

    /// Validates, de-duplicates and encodes the records at `idx` into the next commit.
    fn build(
        &self,
        keys: &ShardKeys,
        state: &ShardState,
        kind: CommitKind,
        records: &[InputRecord],
        idx: &[usize],
        prior: &dyn KeptIds,
    ) -> Result<Built, LedgerError> {
        let mut report = BatchReport::default();
        let mut batch = WindowBatch::new(prior);
        batch.reserve(idx.len());
        let mut builder = DatasetBuilder::new();
        let mut products = ProductUnits::default();
        // One contract record: an event (or a duplicate), or a quarantine row with its bytes.
        let mut take = |meta: &RecordMeta, data: &[u8], outcome: Result<model::Event, Rejection>| match outcome {
            Ok(event) if batch.is_duplicate(&event.event_id, meta.arrival_ms) => report.duplicates += 1,
            Ok(event) => {
                products.add(&event);
                builder.add_event(&event, meta)
            }
            Err(rejection) => {
                *report.quarantined_by_reason.entry(rejection.code).or_default() += 1;
                builder.add_rejection(meta, &rejection, data);
            }
        };
        for &i in idx {
            let r = &records[i];
            if r.undecodable {
                let bad =
                    Rejection::new(ReasonCode::InvalidEncoding, "record data in the Lambda event is not valid base64");
                take(&r.meta, &r.data, Err(bad));
            } else if model::kpl::is_aggregate(&r.data) {
                // Contract 1.4: each user record is a record of its own (its index, its key); a
                // corrupt aggregate is quarantined whole.
                match model::kpl::deaggregate(&r.data) {
                    Ok(users) => {
                        for (n, u) in users.iter().enumerate() {
                            let meta = RecordMeta {
                                shard_id: r.meta.shard_id.clone(),
                                sequence_number: r.meta.sequence_number.clone(),
                                sub_sequence_number: n as i32,
                                partition_key: u.partition_key.to_string(),
                                arrival_ms: r.meta.arrival_ms,
                            };
                            take(&meta, u.data, model::validate(u.data, r.meta.arrival_ms));
                        }
                    }
                    Err(e) => take(&r.meta, &r.data, Err(Rejection::new(ReasonCode::InvalidEncoding, e.to_string()))),
                }
            } else {
                take(&r.meta, &r.data, model::validate(&r.data, r.meta.arrival_ms));
            }
        }
        // The batch's kept ids in the commit record's form now, so that they are not held while
        // the tables are encoded (issue 12's B4: an invocation's memory peaks there).
        let window = crate::ledger::record::to_base64(&batch.finish().to_bytes());
        report.digest = Digest::of_batch(builder.aggregates(), products);
        report.events = builder.event_count();
        report.quarantined = builder.quarantine_count();

        let n = state.next_commit();
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        let mut files = Vec::new();
        let mut staged = Vec::new();
        for (i, tb) in builder.finish().map_err(|e| LedgerError::Encode(e.to_string()))?.into_iter().enumerate() {
            let rows = tb.batch.num_rows() as u64;
            let body = encode_parquet(tb.table, tb.batch).map_err(|e| LedgerError::Encode(e.to_string()))?;
            let staged_key = keys.staged(n, &attempt, i);
            files.push(CommittedFile {
                table: tb.table.as_str().to_string(),
                hour: tb.partition.hour_start_ms,
                staged: staged_key.clone(),
                rows,
                bytes: body.len() as u64,
            });
            staged.push((staged_key, body));
        }
        report.files = files.len();
        let ranges = seq_ranges(records, idx);
        let last_seq = idx.last().map(|&i| records[i].meta.sequence_number.clone()).unwrap_or_default();
        let high_water_mark = match (&state.high_water_mark, kind) {
            (Some(h), CommitKind::Replay) => h.clone(),
            (Some(h), CommitKind::Stream) if cmp_sequence(h, &last_seq).is_gt() => h.clone(),
            _ => last_seq,
        };
        let mut fingerprints: Vec<u64> =
            idx.iter().map(|&i| sequence_fingerprint(&records[i].meta.sequence_number)).collect();
        fingerprints.sort_unstable();
        fingerprints.dedup();
        let arrivals = idx.iter().map(|&i| records[i].meta.arrival_ms);
        let arrival = ArrivalSpan(arrivals.clone().min().unwrap_or(0), arrivals.max().unwrap_or(0));
        let record = CommitRecord {
            format: FORMAT,
            stream: keys.stream.clone(),
            shard_id: keys.shard_id.clone(),
            commit: n,
            attempt,
            kind,
            ranges,
            high_water_mark,
            arrival,
            committed_ms: model::now_ms(),
            checkpoint: state.checkpoint(),
            files,
            window,
            sequences: encode_fingerprints(&fingerprints),
            records: idx.len() as u64,
            events: report.events as u64,
            quarantined: report.quarantined as u64,
            duplicates: report.duplicates as u64,
        };
        Ok(Built { record, staged, report })
    }

    /// Writes a built commit, applies it, checkpoints when due and records it in `head.json`.
    async fn commit(
        &self,
        keys: &ShardKeys,
        mut state: ShardState,
        built: Built,
        report: &mut BatchReport,
    ) -> Result<ShardState, Failure> {
        if let Err(e) = self.check_fence().await {
            return Err(Failure::keep(state, e));
        }
        let Built { record, staged, report: counts } = built;
        match io::write_commit(&self.store, keys, &record, staged).await {
            Ok(Created::Clean) => {}
            Ok(Created::ReplyLost) => report.lost_replies += 1,
            // Nothing was created: the state still holds.
            Err(e @ LedgerError::Store(_)) => return Err(Failure::keep(state, e)),
            Err(e) => return Err(Failure::drop(e)),
        }
        if let Err(e) = state.apply(&record) {
            return Err(Failure::drop(LedgerError::Damaged { key: keys.commit(record.commit), what: e.to_string() }));
        }
        report.merge_from(counts);
        if self.config.ledger.wants_checkpoint(&state) {
            if let Err(e) = io::checkpoint(&self.store, keys, &mut state, &self.config.ledger, model::now_ms()).await {
                tracing::warn!(shard = keys.shard_id, error = %e, "checkpoint not written; the next commit tries again");
            }
        }
        io::write_head(&self.store, keys, &state).await;
        Ok(state)
    }
}

/// The sequence-number ranges of the records at positions `idx` (ascending) of `records`: runs of
/// consecutive positions are runs of consecutive records of the shard, and a range is made of its
/// first and last records' sequence numbers.
fn seq_ranges(records: &[InputRecord], idx: &[usize]) -> Vec<SeqRange> {
    let range = |(first, last): (usize, usize)| {
        SeqRange(records[first].meta.sequence_number.clone(), records[last].meta.sequence_number.clone())
    };
    let mut ranges = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    for &i in idx {
        run = match run {
            Some((first, last)) if last + 1 == i => Some((first, i)),
            done => {
                ranges.extend(done.map(range));
                Some((i, i))
            }
        };
    }
    ranges.extend(run.map(range));
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commits_ranges_are_the_runs_of_consecutive_records() {
        let records: Vec<InputRecord> = (10..17)
            .map(|n| InputRecord {
                stream: "orders".into(),
                meta: RecordMeta {
                    shard_id: "shardId-000000000000".into(),
                    sequence_number: n.to_string(),
                    sub_sequence_number: 0,
                    partition_key: "k".into(),
                    arrival_ms: 0,
                },
                data: Vec::new(),
                undecodable: false,
            })
            .collect();
        let range = |a: &str, b: &str| SeqRange(a.into(), b.into());
        assert_eq!(seq_ranges(&records, &[]), vec![]);
        assert_eq!(seq_ranges(&records, &[3]), vec![range("13", "13")]);
        assert_eq!(seq_ranges(&records, &[0, 1, 2, 3, 4, 5, 6]), vec![range("10", "16")]);
        assert_eq!(
            seq_ranges(&records, &[0, 1, 3, 5, 6]),
            vec![range("10", "11"), range("13", "13"), range("15", "16")]
        );
    }
}

//! The batch handler shared by the Lambda function, the local pipeline, the tests and the
//! benchmarks: records in, datasets committed exactly once, failed sequence numbers out.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use aws_lambda_events::streams::KinesisEventResponse;
use model::{ReasonCode, Rejection};
use sink::store::ObjectStore;
use sink::{encode_parquet, layout, DatasetBuilder};

use crate::commit::{self, CommitError, CommitRecord, CommittedFile, ShardKeys, ShardState};
use crate::digest::Digest;
use crate::kinesis::{cmp_sequence, InputRecord, KinesisEvent};

/// A commit that loses the race to another invocation is retried this many times.
const MAX_CONFLICT_RETRIES: usize = 3;

/// What one shard's part of a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// The stream the records came from.
    pub stream: String,
    pub records: usize,
    /// Records at or below the last committed sequence number (a redelivery): skipped.
    pub already_committed: usize,
    pub events: usize,
    pub quarantined: usize,
    pub quarantined_by_reason: BTreeMap<ReasonCode, usize>,
    /// Valid events whose `event_id` was already kept within the window: dropped.
    pub duplicates: usize,
    pub files: usize,
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
    fn merge(&mut self, o: BatchReport) {
        if self.stream.is_empty() {
            self.stream = o.stream;
        }
        self.records += o.records;
        self.already_committed += o.already_committed;
        self.events += o.events;
        self.quarantined += o.quarantined;
        for (code, n) in o.quarantined_by_reason {
            *self.quarantined_by_reason.entry(code).or_default() += n;
        }
        self.duplicates += o.duplicates;
        self.files += o.files;
        self.digest.merge(o.digest);
        self.failed.extend(o.failed);
        self.error = self.error.take().or(o.error);
    }
}

/// The processor: a store, a key prefix, and what it knows of each shard between invocations.
pub struct Processor<S> {
    store: S,
    prefix: String,
    shards: Mutex<HashMap<(String, String), ShardState>>,
}

impl<S: ObjectStore> Processor<S> {
    pub fn new(store: S, prefix: impl Into<String>) -> Self {
        Processor { store, prefix: prefix.into(), shards: Mutex::new(HashMap::new()) }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The Lambda entry point: a Kinesis event in, the partial batch response out (and the
    /// batch's report, for metrics).
    pub async fn handle(&self, event: KinesisEvent) -> (KinesisEventResponse, BatchReport) {
        let records = event.records.into_iter().map(|r| r.into_input()).collect();
        let report = self.process(records).await;
        let mut response = KinesisEventResponse::default();
        response.set_failures(report.failed.iter().cloned());
        (response, report)
    }

    /// Processes a batch (records of one or more shards, each shard's in sequence order).
    pub async fn process(&self, records: Vec<InputRecord>) -> BatchReport {
        let started = std::time::Instant::now();
        let mut groups: Vec<((String, String), Vec<InputRecord>)> = Vec::new();
        for r in records {
            let key = (r.stream.clone(), r.meta.shard_id.clone());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(r),
                None => groups.push((key, vec![r])),
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
                    events = report.events,
                    quarantined = report.quarantined,
                    duplicates = report.duplicates,
                    files = report.files,
                    "batch committed"
                );
            }
            total.merge(report);
        }
        total.elapsed_ms = started.elapsed().as_millis() as u64;
        total
    }

    fn take_state(&self, key: &(String, String)) -> Option<ShardState> {
        self.shards.lock().unwrap_or_else(|e| e.into_inner()).remove(key)
    }

    fn keep_state(&self, key: (String, String), state: ShardState) {
        self.shards.lock().unwrap_or_else(|e| e.into_inner()).insert(key, state);
    }

    async fn process_shard(&self, stream: &str, shard: &str, records: Vec<InputRecord>) -> BatchReport {
        let keys = ShardKeys::new(&self.prefix, stream, shard);
        let cache_key = (stream.to_string(), shard.to_string());
        let mut last_error = String::new();
        let mut watermark: Option<String> = None;
        for _ in 0..=MAX_CONFLICT_RETRIES {
            // A state is taken out of the cache and put back only after a successful commit:
            // after any failure the next invocation reloads it from the store.
            let state = match self.take_state(&cache_key) {
                Some(s) => s,
                None => match commit::load(&self.store, &keys).await {
                    Ok(s) => s,
                    Err(e) => {
                        last_error = format!("loading the shard state failed: {e}");
                        break;
                    }
                },
            };
            watermark = state.head.as_ref().map(|h| h.last_sequence_number.clone());
            match self.commit_batch(&keys, state, &records).await {
                Ok((state, report)) => {
                    self.keep_state(cache_key, state);
                    return report;
                }
                Err(CommitError::Conflict(k)) => {
                    tracing::warn!(stream, shard, commit = k, "another invocation committed first; reloading");
                    last_error = format!("lost the commit race {MAX_CONFLICT_RETRIES} times, last at {k}");
                }
                Err(e) => {
                    last_error = e.to_string();
                    break;
                }
            }
        }
        let failed = records
            .iter()
            .map(|r| &r.meta.sequence_number)
            .filter(|s| watermark.as_deref().is_none_or(|w| cmp_sequence(s, w) == std::cmp::Ordering::Greater))
            .cloned()
            .collect();
        BatchReport {
            stream: stream.to_string(),
            records: records.len(),
            failed,
            error: Some(last_error),
            ..Default::default()
        }
    }

    async fn commit_batch(
        &self,
        keys: &ShardKeys,
        mut state: ShardState,
        records: &[InputRecord],
    ) -> Result<(ShardState, BatchReport), CommitError> {
        let mut report = BatchReport { stream: keys.stream.clone(), records: records.len(), ..Default::default() };
        let fresh: Vec<&InputRecord> = records.iter().filter(|r| !state.covers(&r.meta.sequence_number)).collect();
        report.already_committed = records.len() - fresh.len();
        let Some(last) = fresh.last() else { return Ok((state, report)) };

        let mut builder = DatasetBuilder::new();
        for r in &fresh {
            let outcome = if r.undecodable {
                Err(Rejection::new(ReasonCode::InvalidEncoding, "record data in the Lambda event is not valid base64"))
            } else {
                model::validate(&r.data, r.meta.arrival_ms)
            };
            match outcome {
                Ok(event) if state.dedup.is_duplicate(&event.event_id, r.meta.arrival_ms) => report.duplicates += 1,
                Ok(event) => {
                    report.digest.add(&event);
                    builder.add_event(&event, &r.meta)
                }
                Err(rejection) => {
                    *report.quarantined_by_reason.entry(rejection.code).or_default() += 1;
                    builder.add_rejection(&r.meta, &rejection, &r.data);
                }
            }
        }
        state.dedup.prune();
        report.events = builder.event_count();
        report.quarantined = builder.quarantine_count();

        let n = state.next_commit();
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        let stem = keys.file_stem(n);
        let mut files = Vec::new();
        let mut staged = Vec::new();
        for (i, tb) in builder.finish().map_err(|e| CommitError::Encode(e.to_string()))?.into_iter().enumerate() {
            let body = encode_parquet(&tb.batch).map_err(|e| CommitError::Encode(e.to_string()))?;
            let staged_key = keys.staged(n, &attempt, i);
            files.push(CommittedFile {
                table: tb.table.as_str().to_string(),
                staged: staged_key.clone(),
                key: layout::data_key(&keys.prefix, tb.table, tb.partition, &stem),
                rows: tb.batch.num_rows() as u64,
                bytes: body.len() as u64,
            });
            staged.push((staged_key, body));
        }
        report.files = files.len();
        let commit = CommitRecord {
            format: 1,
            stream: keys.stream.clone(),
            shard_id: keys.shard_id.clone(),
            commit: n,
            last_sequence_number: last.meta.sequence_number.clone(),
            files,
            dedup_snapshot: keys.snapshot(n, &attempt),
            superseded_snapshot: state.head.as_ref().map(|h| h.dedup_snapshot.clone()),
            records: fresh.len() as u64,
            events: report.events as u64,
            quarantined: report.quarantined as u64,
            duplicates: report.duplicates as u64,
        };
        let snapshot = bytes::Bytes::from(state.dedup.to_bytes());
        commit::write_commit(&self.store, keys, &commit, staged, snapshot).await?;
        commit::publish(&self.store, keys, &commit).await?;
        state.head = Some(commit);
        Ok((state, report))
    }
}

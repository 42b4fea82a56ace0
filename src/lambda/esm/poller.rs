//! The pollers: one per shard, reading in order, invoking, and acting on the policy's decision;
//! over the embedded stream, a child shard's poller starts once its parents are drained.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::function::{lowest_failed, Function};
use super::policy::{Cursor, Decision};
use super::{inputs, payload_size, EsmConfig, EsmStats};
use crate::lambda::on_failure::OnFailureRecord;
use crate::now_ms;
use crate::sources::embedded::{EmbeddedShard, EmbeddedStream};
use crate::sources::{ShardSource, StreamRecord};

/// Polls one shard until `stop` is set and the shard is drained.
pub async fn poll_shard<F: Function + ?Sized, Src: ShardSource>(
    source: Src,
    function: Arc<F>,
    cfg: EsmConfig,
    stats: Arc<Mutex<EsmStats>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let shard_id = source.shard_id().to_string();
    let mut cursor = Cursor::default();
    let idle = Duration::from_millis(20);
    loop {
        let available = source.end().await?.saturating_sub(cursor.checkpoint);
        let stopping = stop.load(Ordering::SeqCst);
        if available == 0 {
            if (stopping && source.caught_up()) || source.closed() {
                return Ok(());
            }
            tokio::time::sleep(idle).await;
            continue;
        }
        let limit = cursor.batch_limit(&cfg);
        // Until a batch is full, the batching window is timed from the first record's arrival,
        // read alone: reading the whole batch on every look copied each record again and again
        // while it waited (about 25 times a batch at 150,000 records/s: 9% of the main job's
        // CPU per record, docs/performance.md).
        if available < limit as u64 && !stopping {
            let Some(first) = source.read(cursor.checkpoint, 1, usize::MAX, payload_size).pop() else { continue };
            let waited = Duration::from_millis(now_ms().saturating_sub(first.arrival_ms).max(0) as u64);
            if waited < cfg.batching_window {
                tokio::time::sleep(idle.min(cfg.batching_window - waited)).await;
                continue;
            }
        }
        let records = source.read(cursor.checkpoint, limit, cfg.max_payload_bytes, payload_size);
        let (Some(first), Some(last)) = (records.first(), records.last()) else { continue };
        let (first_pos, last_pos, oldest_arrival) = (first.position, last.position, first.arrival_ms);
        let mut report = function.invoke(inputs(source.stream_name(), &shard_id, &records)).await;
        let lowest_failed = lowest_failed(&records, &report);
        let age = Duration::from_millis(now_ms().saturating_sub(oldest_arrival).max(0) as u64);
        let decision = cursor.after(&cfg, first_pos, last_pos, lowest_failed, age);
        let now = now_ms();
        {
            let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
            st.invocations += 1;
            st.shards.insert(shard_id.clone(), (cursor.checkpoint, now - last.arrival_ms));
            match &decision {
                Decision::Checkpoint { .. } => {
                    st.records += records.len() as u64;
                    st.events += report.events as u64;
                    st.duplicates += report.duplicates as u64;
                    st.digest.merge(std::mem::take(&mut report.digest));
                    for (code, n) in &report.quarantined_by_reason {
                        *st.quarantined.entry(*code).or_default() += *n as u64;
                    }
                    st.latencies_ms
                        .extend(records.iter().map(|r| (now - r.arrival_ms).clamp(0, u32::MAX as i64) as u32));
                }
                Decision::Retry { .. } => st.failed_invocations += 1,
                Decision::Discard { from, to, .. } => {
                    st.failed_invocations += 1;
                    st.discarded += to - from;
                }
            }
        }
        match decision {
            Decision::Checkpoint { to } => source.trim(to),
            Decision::Retry { .. } => {
                tracing::warn!(
                    shard = shard_id,
                    error = report.error.as_deref().unwrap_or(""),
                    "invocation failed; retrying"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Decision::Discard { from, to, condition } => {
                let discarded: Vec<StreamRecord> = records.iter().filter(|r| r.position >= from).cloned().collect();
                let batch = inputs(source.stream_name(), &shard_id, &discarded);
                if let Some(note) =
                    OnFailureRecord::new(&batch, condition, report.error.as_deref(), !source.outlives_run())
                {
                    let sent = cfg.on_failure.send(&note).await.map_err(|e| std::io::Error::other(format!("{e:#}")))?;
                    tracing::error!(
                        shard = shard_id,
                        records = discarded.len(),
                        destination = sent,
                        "retries exhausted; batch sent to the on-failure destination"
                    );
                }
                source.trim(to);
            }
        }
    }
}

/// Polls every shard of the embedded stream, as Lambda does across resharding: a shard is
/// polled once all its parents are drained (records of a key stay in order), until `stop` is set
/// and every shard is drained.
pub async fn poll_stream<F: Function + ?Sized + 'static>(
    stream: Arc<EmbeddedStream>,
    function: Arc<F>,
    cfg: EsmConfig,
    stats: Arc<Mutex<EsmStats>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut running: HashMap<usize, tokio::task::JoinHandle<std::io::Result<()>>> = HashMap::new();
    let mut drained: Vec<usize> = Vec::new();
    loop {
        for shard in 0..stream.shard_count() {
            let known = running.contains_key(&shard) || drained.contains(&shard);
            if !known && stream.parents(shard).iter().all(|p| drained.contains(p)) {
                let source = EmbeddedShard::new(stream.clone(), shard);
                let task = poll_shard(source, function.clone(), cfg.clone(), stats.clone(), stop.clone());
                running.insert(shard, tokio::spawn(task));
            }
        }
        let finished: Vec<usize> = running.iter().filter(|(_, h)| h.is_finished()).map(|(s, _)| *s).collect();
        for shard in finished {
            if let Some(handle) = running.remove(&shard) {
                handle.await.map_err(std::io::Error::other)??;
                drained.push(shard);
            }
        }
        if running.is_empty() && drained.len() == stream.shard_count() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
/// Polls each of `sources` (the open shards of a real stream) until `stop` is set and each is
/// drained.
pub async fn poll_all<F: Function + ?Sized + 'static, Src: ShardSource + 'static>(
    sources: Vec<Src>,
    function: Arc<F>,
    cfg: EsmConfig,
    stats: Arc<Mutex<EsmStats>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let pollers: Vec<_> = sources
        .into_iter()
        .map(|source| tokio::spawn(poll_shard(source, function.clone(), cfg.clone(), stats.clone(), stop.clone())))
        .collect();
    for p in pollers {
        p.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda::on_failure::Destination;
    use crate::sources::embedded::{EmbeddedShard, EmbeddedStream};
    use processor::kinesis::InputRecord;
    use processor::BatchReport;
    use producer::kinesis::Entry;

    /// Notes each batch's size.
    #[derive(Default)]
    struct Batches(Mutex<Vec<usize>>);

    #[async_trait::async_trait]
    impl Function for Batches {
        async fn invoke(&self, records: Vec<InputRecord>) -> BatchReport {
            self.0.lock().unwrap().push(records.len());
            BatchReport::default()
        }
    }

    #[tokio::test]
    async fn a_full_batch_goes_at_once_and_the_rest_waits_for_the_window_or_the_stop() {
        let stream = Arc::new(EmbeddedStream::new("s", 1, None));
        for i in 0..5 {
            let entry = Entry {
                data: bytes::Bytes::from(format!("{{\"n\":{i}}}")),
                partition_key: "k".into(),
                explicit_hash_key: None,
                records: 1,
            };
            assert!(matches!(stream.put(&entry), producer::kinesis::Outcome::Stored { .. }));
        }
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = EsmConfig::new(Destination::Dir(dir.path().to_path_buf()));
        cfg.batch_size = 3;
        cfg.batching_window = Duration::from_secs(60);
        let function = Arc::new(Batches::default());
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(EsmStats::default()));
        let poller = tokio::spawn(poll_shard(
            EmbeddedShard::new(stream.clone(), 0),
            function.clone(),
            cfg,
            stats.clone(),
            stop.clone(),
        ));
        let seen = || function.0.lock().unwrap().clone();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while seen().is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(seen(), vec![3], "a full batch is invoked without waiting for the 60 s window");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(seen(), vec![3], "two records wait for the window");
        stop.store(true, Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(10), poller).await.unwrap().unwrap().unwrap();
        assert_eq!(seen(), vec![3, 2], "a stopping poller invokes what is left");
        assert_eq!(stats.lock().unwrap().records, 5);
    }
}

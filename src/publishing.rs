//! The main job's publisher: rounds in this process every `--publish-interval`, then a last
//! drain once the stream is processed; what they did, for the dashboard and the summary.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use publisher::{Publisher, RoundReport};
use sink::store::ObjectStore;
use tokio::sync::watch;

/// What the rounds did so far.
#[derive(Debug, Clone, Default)]
pub struct PublishStats {
    pub rounds: u64,
    pub commits: u64,
    pub files: u64,
    pub bytes: u64,
    /// The committed (staged) files the rounds merged, and their bytes.
    pub input_files: u64,
    pub input_bytes: u64,
    pub missing_files: u64,
    pub failed_rounds: u64,
    pub last_error: Option<String>,
    /// The latest round's longest wait between a commit and its round (ms).
    pub lag_ms: i64,
    /// Per published commit: from its first record's arrival to visible (ms), and its records.
    freshness: Vec<(i64, u64)>,
}

impl PublishStats {
    pub fn add(&mut self, r: &RoundReport) {
        if r.round.is_none() {
            return;
        }
        self.rounds += 1;
        self.commits += r.commits();
        self.files += r.outputs.len() as u64;
        self.bytes += r.bytes();
        self.input_files += r.input_files;
        self.input_bytes += r.input_bytes;
        self.missing_files += r.missing_files;
        self.lag_ms = r.lag_ms();
        self.freshness.extend(r.taken.iter().map(|t| ((r.visible_ms - t.first_arrival_ms).max(0), t.records)));
    }

    /// The `q` quantile over records of the time from arrival to visible: each record counts
    /// with its commit's first arrival, so that this is an upper bound.
    pub fn freshness_ms(&self, q: f64) -> i64 {
        let mut v = self.freshness.clone();
        v.sort_unstable();
        let total: u64 = v.iter().map(|(_, n)| n).sum();
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ms, n) in v {
            seen += n;
            if seen >= want {
                return ms;
            }
        }
        0
    }
}

/// A publisher running rounds every interval until stopped, then until nothing is left.
pub struct Background {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Background {
    pub fn start(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        interval: Duration,
        stats: Arc<Mutex<PublishStats>>,
    ) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let publisher = Publisher::new(store, prefix, publisher::Settings::default());
        let task = tokio::spawn(async move {
            let note = |r: Result<RoundReport, publisher::PublishError>| {
                let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
                match r {
                    Ok(report) => s.add(&report),
                    Err(e) => {
                        s.failed_rounds += 1;
                        s.last_error = Some(e.to_string());
                    }
                }
            };
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => note(publisher.round().await),
                    _ = stopped.changed() => break,
                }
            }
            // Everything committed becomes visible before the summary.
            let rounds = publisher.drain(1000).await?;
            for r in rounds {
                note(Ok(r));
            }
            Ok(())
        });
        Background { stop, task }
    }

    /// Stops the interval and publishes what is left.
    pub async fn finish(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.map_err(|e| anyhow::anyhow!("the publisher task stopped: {e}"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use publisher::plan::Taken;

    #[test]
    fn freshness_counts_records() {
        let mut s = PublishStats::default();
        let taken = |first_arrival_ms, records| Taken {
            stream: "s".into(),
            shard_id: "a".into(),
            commit: 1,
            records,
            first_arrival_ms,
            committed_ms: first_arrival_ms,
        };
        s.add(&RoundReport {
            round: Some(1),
            visible_ms: 1000,
            taken: vec![taken(900, 90), taken(0, 10)],
            ..Default::default()
        });
        assert_eq!((s.freshness_ms(0.5), s.freshness_ms(0.9), s.freshness_ms(0.99)), (100, 100, 1000));
        assert_eq!((s.rounds, s.commits), (1, 2));
        s.add(&RoundReport::default());
        assert_eq!(s.rounds, 1, "a round with nothing to publish is not counted");
    }
}

//! The scheduled function: each invocation runs rounds every interval until about one interval
//! before its deadline, so that data appears every interval, not once per schedule tick.

use std::time::Duration;

use sink::store::ObjectStore;

use crate::{Publisher, RoundReport};

/// What an invocation did.
#[derive(Debug, Default)]
pub struct Invocation {
    pub rounds: Vec<RoundReport>,
    pub errors: Vec<String>,
}

/// Runs rounds every `interval` while the next one can still start an interval before
/// `deadline`; each round's metrics line is written as it ends. At least one round runs.
pub async fn run_rounds<S: ObjectStore>(
    publisher: &Publisher<S>,
    deadline: tokio::time::Instant,
    interval: Duration,
    mut each: impl FnMut(&RoundReport),
) -> Invocation {
    let mut done = Invocation::default();
    loop {
        let started = tokio::time::Instant::now();
        match publisher.round().await {
            Ok(report) => {
                each(&report);
                done.rounds.push(report);
            }
            Err(e) => {
                tracing::error!(error = %e, "round failed; the next one rolls it forward");
                done.errors.push(e.to_string());
            }
        }
        let next = started + interval;
        if next + interval > deadline {
            return done;
        }
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sink::store::MemoryStore;

    #[tokio::test(start_paused = true)]
    async fn rounds_run_every_interval_until_one_interval_before_the_deadline() {
        let publisher = Publisher::new(MemoryStore::new(), "", crate::Settings::default());
        let start = tokio::time::Instant::now();
        let mut at = Vec::new();
        let done = run_rounds(&publisher, start + Duration::from_secs(60), Duration::from_secs(10), |_| {
            at.push(start.elapsed().as_secs())
        })
        .await;
        assert_eq!(at, [0, 10, 20, 30, 40, 50]);
        assert!(done.errors.is_empty());
        let short = run_rounds(&publisher, tokio::time::Instant::now(), Duration::from_secs(10), |_| {}).await;
        assert_eq!(short.rounds.len(), 1, "at least one round");
    }
}

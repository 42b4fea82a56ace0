//! What the mapping does after an invocation: checkpoint past the batch, retry from the lowest
//! failed record (halving the batch when bisecting), or give up on the rest of it. Pure.

use std::time::Duration;

use super::EsmConfig;
use crate::lambda::on_failure::Condition;

/// What to do after an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Everything up to `to` (exclusive) is done: checkpoint there.
    Checkpoint { to: u64 },
    /// Invoke again from `from` (the lowest failed record), with at most `limit` records.
    Retry { from: u64, limit: usize },
    /// Retries are exhausted: records `from..to` go to the on-failure destination, and the
    /// checkpoint moves past them.
    Discard { from: u64, to: u64, condition: Condition },
}

/// The per-shard state of the mapping: checkpoint, attempts, the current bisected batch size.
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    pub checkpoint: u64,
    attempts: u32,
    limit: Option<usize>,
}

impl Cursor {
    /// Records the next invocation may take.
    pub fn batch_limit(&self, cfg: &EsmConfig) -> usize {
        self.limit.unwrap_or(cfg.batch_size).min(cfg.batch_size).max(1)
    }

    /// After invoking records at positions `first..=last`: `lowest_failed` is the position of the
    /// lowest record the response named (or `first` when the invocation failed), `oldest_age` the
    /// age of the batch's oldest record.
    pub fn after(
        &mut self,
        cfg: &EsmConfig,
        first: u64,
        last: u64,
        lowest_failed: Option<u64>,
        oldest_age: Duration,
    ) -> Decision {
        let Some(failed) = lowest_failed else {
            *self = Cursor { checkpoint: last + 1, attempts: 0, limit: None };
            return Decision::Checkpoint { to: last + 1 };
        };
        let failed = failed.clamp(first, last);
        self.attempts += 1;
        let too_many = cfg.max_retry_attempts.is_some_and(|m| self.attempts > m);
        let too_old = cfg.max_record_age.is_some_and(|m| oldest_age > m);
        if too_many || too_old {
            *self = Cursor { checkpoint: last + 1, attempts: 0, limit: None };
            let condition = if too_old { Condition::RecordAgeExceeded } else { Condition::RetryAttemptsExhausted };
            return Decision::Discard { from: failed, to: last + 1, condition };
        }
        self.checkpoint = failed;
        let remaining = (last + 1 - failed) as usize;
        self.limit = cfg.bisect_on_error.then(|| remaining.div_ceil(2).max(1));
        Decision::Retry { from: failed, limit: self.batch_limit(cfg) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda::on_failure::Destination;

    fn cfg() -> EsmConfig {
        EsmConfig {
            batch_size: 100,
            max_retry_attempts: Some(2),
            bisect_on_error: true,
            ..EsmConfig::new(Destination::Dir("unused".into()))
        }
    }

    #[test]
    fn success_checkpoints_after_the_batch() {
        let mut c = Cursor::default();
        assert_eq!(c.batch_limit(&cfg()), 100);
        assert_eq!(c.after(&cfg(), 0, 99, None, Duration::ZERO), Decision::Checkpoint { to: 100 });
        assert_eq!(c.checkpoint, 100);
    }

    #[test]
    fn a_partial_failure_retries_from_the_lowest_failed_record_bisected() {
        let mut c = Cursor { checkpoint: 100, ..Cursor::default() };
        // Records 100..=199, the response names 140 as the lowest failure.
        assert_eq!(c.after(&cfg(), 100, 199, Some(140), Duration::ZERO), Decision::Retry { from: 140, limit: 30 });
        assert_eq!((c.checkpoint, c.batch_limit(&cfg())), (140, 30));
        // The half fails again at its start: halve again.
        assert_eq!(c.after(&cfg(), 140, 169, Some(140), Duration::ZERO), Decision::Retry { from: 140, limit: 15 });
        // Third failure: over MaximumRetryAttempts (2), to the destination.
        assert_eq!(
            c.after(&cfg(), 140, 154, Some(140), Duration::ZERO),
            Decision::Discard { from: 140, to: 155, condition: Condition::RetryAttemptsExhausted }
        );
        assert_eq!((c.checkpoint, c.batch_limit(&cfg())), (155, 100));
    }

    #[test]
    fn without_bisect_the_whole_rest_is_retried_and_old_records_are_discarded() {
        let no_bisect = EsmConfig {
            bisect_on_error: false,
            max_retry_attempts: None,
            max_record_age: Some(Duration::from_secs(60)),
            ..cfg()
        };
        let mut c = Cursor::default();
        assert_eq!(
            c.after(&no_bisect, 0, 99, Some(0), Duration::from_secs(1)),
            Decision::Retry { from: 0, limit: 100 }
        );
        assert_eq!(
            c.after(&no_bisect, 0, 99, Some(50), Duration::from_secs(61)),
            Decision::Discard { from: 50, to: 100, condition: Condition::RecordAgeExceeded }
        );
        // A lowest failure outside the batch is clamped into it.
        let mut c = Cursor::default();
        assert_eq!(c.after(&no_bisect, 10, 19, Some(3), Duration::ZERO), Decision::Retry { from: 10, limit: 100 });
    }
}

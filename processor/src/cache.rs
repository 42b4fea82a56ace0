//! The shard states a warm execution environment keeps between invocations: least recently used
//! shards are evicted to stay within a byte budget, and a state not used for a while is read again
//! rather than trusted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::ledger::ShardState;

/// (stream, shard)
pub type ShardKey = (String, String);

struct Entry {
    state: ShardState,
    bytes: usize,
    used: Instant,
}

pub struct ShardCache {
    entries: HashMap<ShardKey, Entry>,
    bytes: usize,
    budget: usize,
    max_age: Duration,
}

impl ShardCache {
    pub fn new(budget: usize, max_age: Duration) -> Self {
        ShardCache { entries: HashMap::new(), bytes: 0, budget, max_age }
    }

    /// Takes a shard's state out (a batch works on it; it comes back only if the batch ends well).
    /// A state unused for longer than the maximum age is dropped: another environment may have
    /// committed since, long enough ago for its records to be folded.
    pub fn take(&mut self, key: &ShardKey) -> Option<ShardState> {
        let e = self.entries.remove(key)?;
        self.bytes -= e.bytes;
        (e.used.elapsed() <= self.max_age).then_some(e.state)
    }

    /// Keeps a state, evicting the least recently used others while over budget; a state larger
    /// than the whole budget is not kept.
    pub fn put(&mut self, key: ShardKey, state: ShardState) {
        let bytes = state.heap_bytes();
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= old.bytes;
        }
        while self.bytes + bytes > self.budget {
            let Some(lru) = self.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone()) else { break };
            if let Some(e) = self.entries.remove(&lru) {
                self.bytes -= e.bytes;
                tracing::info!(
                    stream = lru.0,
                    shard = lru.1,
                    bytes = e.bytes,
                    "evicted a shard's state from the cache"
                );
            }
        }
        if self.bytes + bytes <= self.budget {
            self.bytes += bytes;
            self.entries.insert(key, Entry { state, bytes, used: Instant::now() });
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::{DedupWindow, WindowDelta};

    fn state(ids: usize) -> ShardState {
        let mut window = DedupWindow::new();
        window.apply(&WindowDelta { kept: (0..ids as u128).map(|h| (h, 1000)).collect(), latest_arrival_ms: 1000 });
        ShardState { window, ..ShardState::new() }
    }

    fn key(s: &str) -> ShardKey {
        ("stream".into(), s.into())
    }

    #[test]
    fn least_recently_used_shards_are_evicted_to_stay_within_the_budget() {
        let one = state(10_000).heap_bytes();
        let mut cache = ShardCache::new(one * 3 + one / 2, Duration::from_secs(600));
        for s in ["a", "b", "c"] {
            cache.put(key(s), state(10_000));
        }
        assert_eq!(cache.len(), 3);
        // Using "a" makes "b" the least recently used.
        let a = cache.take(&key("a")).unwrap();
        cache.put(key("a"), a);
        cache.put(key("d"), state(10_000));
        assert!(cache.take(&key("b")).is_none(), "b was evicted");
        assert!(cache.bytes() <= one * 3 + one / 2);
        for s in ["a", "c", "d"] {
            assert!(cache.take(&key(s)).is_some(), "{s}");
        }
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        // A state larger than the budget is not kept at all.
        cache.put(key("huge"), state(100_000));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_state_unused_for_too_long_is_read_again() {
        let mut cache = ShardCache::new(usize::MAX, Duration::ZERO);
        cache.put(key("a"), state(1));
        std::thread::sleep(Duration::from_millis(2));
        assert!(cache.take(&key("a")).is_none());
        assert_eq!(cache.bytes(), 0);
    }
}

//! What a processor knows of a shard between invocations, and how each commit record changes it.
//! Pure: the same commit records applied in order give the same state, live or while loading.

use std::collections::VecDeque;

use super::record::{CheckpointHeader, CheckpointRef, CommitKind, CommitRecord, ReplayRanges, SeqRange, FORMAT};
use super::ShardKeys;
use crate::dedup::DedupWindow;
use crate::kinesis::cmp_sequence;

/// Commits whose record ranges and fingerprints stay in memory, to recognise a redelivery
/// without reading the ledger.
pub const RECENT_COMMITS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentCommit {
    pub commit: u64,
    pub ranges: Vec<SeqRange>,
    /// Sorted.
    pub fingerprints: Vec<u64>,
}

/// Why a commit record does not fit the state it is applied to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    #[error("commit {commit} follows commit {latest}")]
    OutOfOrder { commit: u64, latest: u64 },
    #[error("its high-water mark {got} is below the previous {previous}")]
    HighWaterMark { got: String, previous: String },
    #[error(transparent)]
    Window(#[from] crate::dedup::WindowError),
    #[error("{0}")]
    Fingerprints(String),
}

/// Where a record stands against the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Above the high-water mark: not committed yet.
    Above,
    /// One of this commit's records: already committed.
    Committed(u64),
    /// At or below the high-water mark and not among the recent commits' records: the ledger
    /// decides.
    LookUp,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardState {
    /// The latest commit (0: none yet).
    pub latest: u64,
    pub high_water_mark: Option<String>,
    pub window: DedupWindow,
    pub recent: VecDeque<RecentCommit>,
    /// Replay commits' ranges, while they can still matter (within the stream's retention).
    pub replays: Vec<ReplayRanges>,
    /// The oldest commit record kept.
    pub floor: u64,
    /// Checkpoints kept, oldest first.
    pub checkpoints: Vec<CheckpointRef>,
    /// Ids kept since the newest checkpoint.
    pub ids_since_checkpoint: u64,
}

impl ShardState {
    pub fn new() -> Self {
        ShardState { floor: 1, ..Default::default() }
    }

    pub fn from_checkpoint(h: CheckpointHeader, window: DedupWindow) -> Self {
        ShardState {
            latest: h.commit,
            high_water_mark: h.high_water_mark,
            window,
            recent: VecDeque::new(),
            replays: h.replays,
            floor: h.floor.max(1),
            checkpoints: h.checkpoints,
            ids_since_checkpoint: 0,
        }
    }

    pub fn next_commit(&self) -> u64 {
        self.latest + 1
    }

    /// The newest checkpoint (0: none).
    pub fn checkpoint(&self) -> u64 {
        self.checkpoints.last().map_or(0, |c| c.commit)
    }

    pub fn commits_since_checkpoint(&self) -> u64 {
        self.latest - self.checkpoint().min(self.latest)
    }

    /// Applies the next commit record. An error names what does not fit.
    pub fn apply(&mut self, c: &CommitRecord) -> Result<(), ApplyError> {
        if c.commit != self.latest + 1 {
            return Err(ApplyError::OutOfOrder { commit: c.commit, latest: self.latest });
        }
        if let Some(hwm) = &self.high_water_mark {
            if cmp_sequence(&c.high_water_mark, hwm).is_lt() {
                return Err(ApplyError::HighWaterMark { got: c.high_water_mark.clone(), previous: hwm.clone() });
            }
        }
        let delta = c.delta()?;
        let fingerprints = c.fingerprints().map_err(ApplyError::Fingerprints)?;
        self.window.apply(&delta);
        self.ids_since_checkpoint += delta.kept.len() as u64;
        self.high_water_mark = Some(c.high_water_mark.clone());
        if c.kind == CommitKind::Replay {
            self.replays.push(ReplayRanges { commit: c.commit, ranges: c.ranges.clone(), arrival: c.arrival });
        }
        self.recent.push_back(RecentCommit { commit: c.commit, ranges: c.ranges.clone(), fingerprints });
        while self.recent.len() > RECENT_COMMITS {
            self.recent.pop_front();
        }
        if c.checkpoint > self.checkpoint() {
            // A checkpoint written by another processor, after the one this state came from.
            self.checkpoints
                .push(CheckpointRef { commit: c.checkpoint, latest_arrival_ms: self.window.latest_arrival_ms() });
            self.ids_since_checkpoint = delta.kept.len() as u64;
        }
        self.latest = c.commit;
        Ok(())
    }

    /// Where a record stands, from what is in memory.
    pub fn position(&self, seq: &str) -> Position {
        match &self.high_water_mark {
            None => return Position::Above,
            Some(hwm) if cmp_sequence(seq, hwm).is_gt() => return Position::Above,
            Some(_) => {}
        }
        let fingerprint = super::record::sequence_fingerprint(seq);
        self.recent
            .iter()
            .rev()
            .find(|c| c.ranges.iter().any(|r| r.contains(seq)) && c.fingerprints.binary_search(&fingerprint).is_ok())
            .map_or(Position::LookUp, |c| Position::Committed(c.commit))
    }

    /// Heap bytes held (for the cache's budget).
    pub fn heap_bytes(&self) -> usize {
        let recent: usize = self.recent.iter().map(|c| c.fingerprints.capacity() * 8 + c.ranges.len() * 128).sum();
        let replays = self.replays.len() * 160;
        self.window.heap_bytes() + recent + replays + 512
    }

    /// The header of a checkpoint of this state.
    pub fn checkpoint_header(&self, keys: &ShardKeys, checkpoints: Vec<CheckpointRef>, floor: u64) -> CheckpointHeader {
        CheckpointHeader {
            format: FORMAT,
            stream: keys.stream.clone(),
            shard_id: keys.shard_id.clone(),
            commit: self.latest,
            high_water_mark: self.high_water_mark.clone(),
            floor,
            checkpoints,
            replays: self.replays.clone(),
        }
    }
}

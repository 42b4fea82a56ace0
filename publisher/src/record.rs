//! What a publisher group stores: round records (the fence) and `head.json` (a hint).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The round format this publisher writes and reads.
pub const FORMAT: u32 = 1;

/// How far a group has published one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPosition {
    pub stream: String,
    pub shard_id: String,
    /// Every commit up to this one is published (0: none).
    pub commit: u64,
    /// What the shard's `published.json` says (it may lag `commit`, never lead it).
    pub marked: u64,
}

/// The commits of one shard that a round publishes: `from..=to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpan {
    pub stream: String,
    pub shard_id: String,
    pub from: u64,
    pub to: u64,
}

/// One merged file of a round: every input of its table and hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundOutput {
    pub table: String,
    /// The start of the partition's UTC hour, ms since the epoch.
    pub hour: i64,
    /// Where the round's attempt wrote it before the round was decided (hidden).
    pub staged: String,
    /// Where readers find it.
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    /// Staged files merged into it.
    pub inputs: u64,
}

/// Round `r` of a group: created once, with `If-None-Match: *`. Once it exists the round is
/// decided: its outputs become visible (rolled forward by whoever finds it unfinished) and the
/// commits of its spans are published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundRecord {
    pub format: u32,
    pub group: u32,
    pub groups: u32,
    pub round: u64,
    /// The writer's attempt: a create answered 412 on a record with our attempt is our own.
    pub attempt: String,
    pub created_ms: i64,
    /// Every shard the group has published, after this round.
    pub positions: Vec<ShardPosition>,
    /// The commits this round publishes.
    pub spans: Vec<ShardSpan>,
    pub outputs: Vec<RoundOutput>,
    pub commits: u64,
    pub records: u64,
    pub input_files: u64,
    pub input_bytes: u64,
    /// Inputs that existed neither staged (expired, erased): their rows are not published.
    pub missing_inputs: u64,
    /// The oldest `committed_ms` among the commits published.
    pub oldest_committed_ms: i64,
}

impl RoundRecord {
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec_pretty(self).unwrap_or_default())
    }

    pub fn parse(key: &str, body: &[u8]) -> Result<Self, crate::PublishError> {
        let damaged = |what: String| crate::PublishError::Damaged { key: key.to_string(), what };
        let r: RoundRecord = serde_json::from_slice(body).map_err(|e| damaged(format!("not a round record: {e}")))?;
        if r.format != FORMAT {
            return Err(damaged(format!("unknown round format {}", r.format)));
        }
        Ok(r)
    }
}

/// `head.json` of a group: the latest round, and whether it was seen through to the end
/// (outputs visible, inputs deleted). Losing it costs a LIST and a roll-forward, never
/// correctness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupHead {
    pub format: u32,
    pub round: u64,
    pub complete: bool,
}

impl GroupHead {
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

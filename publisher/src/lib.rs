//! The publisher: committed data made visible in rounds, a few large files per table and hour,
//! exactly once (contract section 2.7, docs/exactly-once.md).
//!
//! Processors commit each batch's files staged and hidden; a publisher group (one by default)
//! owns a fixed share of the shards ([`keys::group_of`]) and, each round, merges every owned
//! shard's new commits into one file per table and hour, the aggregate tables rolled up to one
//! row per key.
//!
//! - [`plan`]: which commits a round takes and which files each output merges (pure);
//! - [`merge`]: the merge of one output, streaming (pure: bytes in, bytes out), its detail
//!   tables' column chunks spliced ([`splice`]) and its dictionaries united ([`redict`], with
//!   [`rle`], the index encoding);
//! - [`round`]: rounds through an object store, with the fence and the roll-forward;
//! - [`record`], [`keys`]: what a group stores, and where;
//! - [`config`]: the environment of contract section 3 and the tuning;
//! - [`lambda`]: the scheduled function's loop of rounds; [`metrics`]: its EMF lines;
//! - [`audit`]: the visible datasets as a reader lists them (files per table, hour and round).

pub mod audit;
pub mod config;
pub mod keys;
pub mod lambda;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod record;
pub mod redict;
pub mod rle;
pub mod round;
pub mod splice;

pub use config::Settings;
pub use round::{Publisher, RoundReport};

use sink::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key} is damaged: {what}")]
    Damaged { key: String, what: String },
    #[error("another publisher of the group created {key} first (two publishers of one group ran at once; the round is theirs)")]
    Conflict { key: String },
    #[error("the outcome of creating {key} is unknown ({detail}); the next round finds out")]
    Unknown { key: String, detail: String },
    #[error(transparent)]
    Merge(#[from] merge::MergeError),
    #[error(transparent)]
    Plan(#[from] plan::UnknownTable),
    #[error("a merge task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Ledger(#[from] processor::ledger::LedgerError),
}

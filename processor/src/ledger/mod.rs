//! The per-shard ledger: what each shard has committed, so that the datasets hold every record
//! exactly once whatever Lambda and S3 do (docs/exactly-once.md).
//!
//! A shard's ledger lives in the store under `<prefix>_pipeline/<stream>/<shard>/`:
//! - `commits/<n:020>.json`: commit records, created once each with `If-None-Match: *` (the
//!   fence). Each names its writer's attempt, the sequence ranges it covers, the ids it kept, the
//!   fingerprints of its records and the data files it publishes ([`record::CommitRecord`]);
//! - `checkpoints/<n:020>.bin`: the shard's state as of commit `n` (the de-duplication window,
//!   the replayed ranges), so that a cold start reads one checkpoint and the commits after it;
//! - `head.json`: the latest commit and the newest checkpoint, a hint;
//! - `published.json`: written by the publisher (crate `publisher`), the commit up to which
//!   every commit is published, which bounds folding;
//!
//! and data files are written before their commit under `<prefix>_staging/<stream>/<shard>/
//! <n>-<attempt>/<i>.parquet`: a prefix of its own, so that one lifecycle rule expires the
//! orphans of failed attempts (S3 lifecycle filters match key prefixes only). The processor
//! never writes a visible key: publisher rounds merge the staged files of many commits and
//! shards into the visible datasets, then delete them.
//!
//! - [`record`]: the stored forms; [`state`]: what a processor holds and how a commit changes it
//!   (pure); [`io`]: reading and writing them through an [`sink::store::ObjectStore`], where every
//!   write whose outcome is unknown is resolved by reading back.

pub mod io;
pub mod record;
pub mod state;

use std::time::Duration;

use sink::store::StoreError;

pub use record::{CommitKind, CommitRecord, CommitSummary, CommittedFile, Head, Published, SeqRange};
pub use state::{Position, ShardState};

/// The keys of one shard's ledger.
#[derive(Debug, Clone)]
pub struct ShardKeys {
    pub prefix: String,
    pub stream: String,
    pub shard_id: String,
    base: String,
    staging: String,
}

impl ShardKeys {
    pub fn new(prefix: &str, stream: &str, shard_id: &str) -> Self {
        ShardKeys {
            prefix: prefix.to_string(),
            stream: stream.to_string(),
            shard_id: shard_id.to_string(),
            base: format!("{prefix}_pipeline/{stream}/{shard_id}/"),
            staging: format!("{prefix}_staging/{stream}/{shard_id}/"),
        }
    }
    pub fn head(&self) -> String {
        format!("{}head.json", self.base)
    }
    pub fn commits(&self) -> String {
        format!("{}commits/", self.base)
    }
    pub fn commit(&self, n: u64) -> String {
        format!("{}commits/{n:020}.json", self.base)
    }
    /// The commit number of a key under [`ShardKeys::commits`].
    pub fn commit_number(&self, key: &str) -> Option<u64> {
        key.strip_prefix(&self.commits())?.strip_suffix(".json")?.parse().ok()
    }
    pub fn checkpoint(&self, n: u64) -> String {
        format!("{}checkpoints/{n:020}.bin", self.base)
    }
    pub fn published(&self) -> String {
        format!("{}published.json", self.base)
    }
    pub fn staged(&self, n: u64, attempt: &str, i: usize) -> String {
        format!("{}{n:020}-{attempt}/{i:04}.parquet", self.staging)
    }
    /// The command that rebuilds this shard's state from its commit records.
    pub fn repair_command(&self) -> String {
        let prefix = if self.prefix.is_empty() { String::new() } else { format!(" --prefix {}", self.prefix) };
        format!("orderstream repair --stream {} --shard {}{prefix}", self.stream, self.shard_id)
    }
}

/// The folder of every stream's ledgers: `<prefix>_pipeline/<stream>/<shard>/`.
pub fn ledgers_dir(prefix: &str) -> String {
    format!("{prefix}_pipeline/")
}

/// The folder name under [`ledgers_dir`] that is not a stream.
pub const PROBE_DIR: &str = "_probe";

/// The probe key of the conditional-write check, under the hidden prefix.
pub fn probe_key(prefix: &str, id: &str) -> String {
    format!("{}{PROBE_DIR}/{id}.json", ledgers_dir(prefix))
}

/// What the ledger's upkeep is tuned by.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The stream's retention: a commit record older than this (plus an hour) covers records that
    /// can be neither redelivered nor replayed, and is folded into a checkpoint.
    pub retention: Duration,
    /// A checkpoint at the latest after this many commits...
    pub checkpoint_every: u64,
    /// ...or once the ids kept since the last one reach half the window (and at least this many).
    pub checkpoint_min_ids: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { retention: Duration::from_secs(24 * 3600), checkpoint_every: 256, checkpoint_min_ids: 1024 }
    }
}

impl Settings {
    /// Whether the state is due a checkpoint.
    pub fn wants_checkpoint(&self, state: &ShardState) -> bool {
        let ids = (state.window.len() as u64 / 2).max(self.checkpoint_min_ids);
        state.commits_since_checkpoint() >= self.checkpoint_every || state.ids_since_checkpoint >= ids
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A ledger object that exists but cannot be used, or that is missing where the chain says
    /// it must be: going on could make the numbers wrong.
    #[error("{key} is damaged: {what}")]
    Damaged { key: String, what: String },
    #[error(
        "{key} was written by an older orderstream (ledger format 1); this version reads format 2: \
         move the shard's old _pipeline/ folder aside to start it anew"
    )]
    OldFormat { key: String },
    #[error("encoding the batch failed: {0}")]
    Encode(String),
    #[error("another invocation created {key} first")]
    Conflict { key: String },
    /// A conditional create whose answer was lost and whose read-back failed too: the commit may
    /// or may not exist; the next load finds out.
    #[error("the outcome of creating {key} is unknown ({detail})")]
    Unknown { key: String, detail: String },
    #[error(
        "record {sequence_number} lies inside commit {commit}'s sequence range but is not one of its \
         records: another invocation's batch interleaves with this shard's commits (is the event \
         source mapping's ParallelizationFactor above 1? It must be 1). The batch is not processed"
    )]
    Interleaved { sequence_number: String, commit: u64 },
    #[error(
        "record {sequence_number} is older than the shard's ledger keeps (commits before {floor} were \
         folded after the stream's retention): it cannot be told apart from a committed record"
    )]
    Expired { sequence_number: String, floor: u64 },
    #[error(
        "the store {store} does not honour If-None-Match: * (a second conditional create of {key} \
         succeeded): exactly-once commits need conditional writes (Amazon S3 has them; so do MinIO \
         and moto); refusing to write"
    )]
    NoConditionalWrites { store: String, key: String },
}

impl LedgerError {
    /// Whether the shard must stop until someone repairs its state.
    pub fn needs_repair(&self) -> bool {
        matches!(self, LedgerError::Damaged { .. } | LedgerError::OldFormat { .. })
    }
}

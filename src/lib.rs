//! The local side of the pipeline: the main job ([`pipeline`]: the producer, an embedded stream
//! with Kinesis semantics ([`stream`]) and a local event source mapping ([`esm`]) around the
//! shared handler), inputs for the handler (Lambda event files, NDJSON, the bundled contract
//! samples), the choice of store, and fault injection for the crash tests.

pub mod consume;
pub mod crash;
pub mod dashboard;
pub mod esm;
pub mod input;
pub mod pipeline;
pub mod replay;
pub mod stream;

use std::sync::Arc;

use anyhow::Context;
use sink::store::{LocalStore, ObjectStore, S3Store};

pub use model::now_ms;

/// This process's peak resident memory (VmHWM) in KiB, where the system tells (Linux).
pub fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// `peak memory 52 MiB`, or nothing where the system does not tell.
pub fn peak_memory_note() -> String {
    peak_memory_kib().map(|k| format!("peak memory {} MiB", k.div_ceil(1024))).unwrap_or_default()
}

/// An error (an AWS SDK error chain spans lines) as one line.
pub fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The store the datasets go to: the bucket when one is given, else a local directory.
pub async fn open_store(bucket: Option<&str>, data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match bucket {
        Some(b) => Ok(Arc::new(S3Store::from_env(b).await.map_err(anyhow::Error::msg)?)),
        None => Ok(Arc::new(
            LocalStore::new(data_dir)
                .with_context(|| format!("cannot use {} as the data directory", data_dir.display()))?,
        )),
    }
}

//! The local side of the pipeline, around the shared handler:
//!
//! - [`commands`]: the command line, one module a command (`main.rs` only parses and dispatches);
//! - [`cost`]: what a deployment costs a month, beside Firehose and a Python Lambda;
//! - [`plan`]: shards per hour from a forecast of the stream's history;
//! - [`sources`]: shards to read: the embedded stream with Kinesis semantics, a real stream;
//! - [`lambda`]: Lambda emulated: the Runtime API, the event source mapping, on-failure records;
//! - [`pipeline`]: the main job's wiring (producer, embedded stream, mapping, handler);
//! - [`dashboard`]: the main job's live charts;
//! - [`replay`]: records the mapping gave up on, processed exactly once;
//! - [`input`]: records from files (Lambda events, NDJSON, the contract samples);
//! - [`faults`]: stores that crash or fail on purpose, for tests.

pub mod commands;
pub mod cost;
pub mod dashboard;
pub mod faults;
pub mod input;
pub mod lambda;
pub mod pipeline;
pub mod plan;
pub mod publishing;
pub mod replay;
pub mod scaler;
pub mod sources;
pub mod stream_metrics;

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

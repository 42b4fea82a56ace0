//! Records for the handler from files: a Lambda Kinesis event (JSON, as Lambda sends it), NDJSON
//! (one record's data per line), and the contract samples bundled with the repository.

use std::sync::Arc;

use anyhow::{bail, Context};
use base64::Engine;
use processor::kinesis::{InputRecord, KinesisEvent};
use sink::RecordMeta;

/// The contract's samples, compiled in (tests/fixtures/contract/).
pub const VALID_SAMPLES: &str = include_str!("../tests/fixtures/contract/valid.ndjson");
pub const INVALID_SAMPLES: &str = include_str!("../tests/fixtures/contract/invalid.ndjson");

/// Where a run of NDJSON records sits in a stream (its names shared by the run's records).
#[derive(Debug, Clone)]
pub struct Placement {
    pub stream: Arc<str>,
    pub shard_id: Arc<str>,
    pub first_sequence: u128,
    pub arrival_ms: i64,
}

/// Each line (without its line ending) is one record's data; sequence numbers count up from
/// `first_sequence`. Empty lines are records too (they are quarantined as `invalid_json`), except
/// one final empty line after the last newline.
pub fn ndjson_records(text: &[u8], at: &Placement) -> Vec<InputRecord> {
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            record(at, at.first_sequence + i as u128, line.to_vec())
        })
        .collect()
}

fn record(at: &Placement, seq: u128, data: Vec<u8>) -> InputRecord {
    InputRecord {
        stream: at.stream.clone(),
        meta: RecordMeta {
            shard_id: at.shard_id.clone(),
            sequence_number: seq.to_string(),
            sub_sequence_number: 0,
            partition_key: format!("pk-{seq}"),
            arrival_ms: at.arrival_ms,
        },
        data,
        undecodable: false,
    }
}

/// A Lambda Kinesis event file.
pub fn event_records(json: &[u8]) -> anyhow::Result<Vec<InputRecord>> {
    let event =
        KinesisEvent::from_slice(json).context("not a Lambda Kinesis event ({\"Records\": [{\"kinesis\": {...}}]})")?;
    Ok(event.records)
}

/// The bytes of one line of the contract's invalid samples (`data` or `data_base64`).
pub fn invalid_sample_bytes(line: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let v: serde_json::Value = serde_json::from_str(line).context("invalid sample line")?;
    let code = v["reason_code"].as_str().unwrap_or_default().to_string();
    match (&v["data"], &v["data_base64"]) {
        (serde_json::Value::String(d), _) => Ok((code, d.as_bytes().to_vec())),
        (_, serde_json::Value::String(b)) => Ok((code, base64::engine::general_purpose::STANDARD.decode(b)?)),
        _ => bail!("sample without data: {line}"),
    }
}

/// The bundled samples as one shard's records: the 40 invalid ones (arriving 12:30:00Z), then
/// the 16 valid ones (arriving 13:05:00Z), as the samples' README prescribes.
pub fn sample_records(stream: &str, shard_id: &str) -> anyhow::Result<Vec<InputRecord>> {
    let invalid_at = Placement {
        stream: stream.into(),
        shard_id: shard_id.into(),
        first_sequence: 1,
        arrival_ms: model::parse_rfc3339("2026-11-23T12:30:00Z")?.millis,
    };
    let mut records = Vec::new();
    for (i, line) in INVALID_SAMPLES.lines().enumerate() {
        records.push(record(&invalid_at, 1 + i as u128, invalid_sample_bytes(line)?.1));
    }
    let valid_at = Placement {
        first_sequence: 1 + records.len() as u128,
        arrival_ms: model::parse_rfc3339("2026-11-23T13:05:00Z")?.millis,
        ..invalid_at
    };
    records.extend(ndjson_records(VALID_SAMPLES.as_bytes(), &valid_at));
    Ok(records)
}

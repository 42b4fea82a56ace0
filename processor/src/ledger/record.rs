//! What the ledger stores: commit records (the fence), `head.json` (a hint) and checkpoints, and
//! their serialized forms.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::LedgerError;
use crate::dedup::{DedupWindow, WindowDelta};
use crate::kinesis::cmp_sequence;

/// The ledger format this processor writes and reads.
pub const FORMAT: u32 = 2;
const CHECKPOINT_MAGIC: &[u8; 8] = b"OSCKPT02";

/// The ledger's base64 (the standard alphabet, padded), by SIMD: a commit's kept ids and
/// fingerprints are most of its record, written by every invocation.
pub fn to_base64(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

fn from_base64(text: &str, field: &str) -> Result<Vec<u8>, String> {
    base64_simd::STANDARD
        .decode_to_vec(text)
        .map_err(|_| format!("`{field}` is not base64 (the standard alphabet, padded)"))
}

/// One data file of a commit: one table's rows of one partition hour, staged (hidden) until a
/// publisher round merges it into the visible datasets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedFile {
    pub table: String,
    /// The start of the partition's UTC hour, in ms since the epoch.
    pub hour: i64,
    /// Where the commit's attempt wrote it.
    pub staged: String,
    pub rows: u64,
    pub bytes: u64,
}

/// A run of consecutive records of the shard, by sequence number (inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange(pub String, pub String);

impl SeqRange {
    pub fn contains(&self, seq: &str) -> bool {
        cmp_sequence(seq, &self.0).is_ge() && cmp_sequence(seq, &self.1).is_le()
    }
}

/// How a commit's records reached the processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitKind {
    /// Records above the shard's high-water mark: the stream in order.
    Stream,
    /// Records below it that no commit covered (a replay of records Lambda gave up on).
    Replay,
}

/// Arrival times of a commit's records (UTC ms), first and last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrivalSpan(pub i64, pub i64);

impl ArrivalSpan {
    pub fn overlaps(&self, from_ms: i64, to_ms: i64) -> bool {
        self.0 <= to_ms && self.1 >= from_ms
    }
}

/// Commit record `n` of a shard: created once, with `If-None-Match: *`. It names its writer's
/// attempt, the records it covers, the ids it kept, and every data file it staged for the
/// publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub format: u32,
    pub stream: String,
    pub shard_id: String,
    pub commit: u64,
    /// The writer's attempt id: a conditional PUT answered 412 on a record carrying our own
    /// attempt id is our own success (a lost reply), not another writer's.
    pub attempt: String,
    pub kind: CommitKind,
    /// The records it covers: runs of consecutive records, disjoint from every other commit's.
    pub ranges: Vec<SeqRange>,
    /// The highest sequence number covered by this commit or any before it.
    pub high_water_mark: String,
    pub arrival: ArrivalSpan,
    /// When the writer created it (its clock, UTC ms): the publisher's lag is measured from it.
    pub committed_ms: i64,
    /// The newest checkpoint that existed when this commit was written (0: none).
    pub checkpoint: u64,
    pub files: Vec<CommittedFile>,
    pub records: u64,
    pub events: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    // The two large fields come last (serde writes the fields in this order), so that the
    // start of the record holds its summary: a publisher reads only that
    // ([`CommitSummary::parse_start`]).
    /// The ids this commit kept ([`WindowDelta::to_bytes`], base64).
    #[serde(serialize_with = "base64_text")]
    pub window: String,
    /// XXH3-64 of every covered record's sequence number, sorted (little-endian u64s, base64):
    /// a redelivered record must be one of them.
    #[serde(serialize_with = "base64_text")]
    pub sequences: String,
}

/// A base64 text written into a commit record's JSON as it is: its alphabet has nothing JSON
/// escapes, and serde_json's escaping reads a string byte by byte (most of writing a commit
/// record, 1.3% of an invocation). A text that is not one JSON string as it is (a quote, a
/// control character) or could read as another (a backslash) is written as any string. Only
/// serde_json writes commit records (a raw value is its own).
fn base64_text<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    if memchr::memchr(b'\\', text.as_bytes()).is_none() {
        if let Ok(raw) = serde_json::value::RawValue::from_string(format!("\"{text}\"")) {
            return raw.serialize(s);
        }
    }
    s.serialize_str(text)
}

/// The fingerprint of a sequence number.
pub fn sequence_fingerprint(seq: &str) -> u64 {
    xxh3_64(seq.trim_start_matches('0').as_bytes())
}

pub fn encode_fingerprints(sorted: &[u64]) -> String {
    let bytes: Vec<u8> = sorted.iter().flat_map(|f| f.to_le_bytes()).collect();
    to_base64(&bytes)
}

impl CommitRecord {
    pub fn to_bytes(&self) -> Bytes {
        // Plain strings and integers: serializing cannot fail.
        Bytes::from(serde_json::to_vec_pretty(self).unwrap_or_default())
    }

    pub fn parse(key: &str, body: &[u8]) -> Result<Self, LedgerError> {
        let damaged = |what: String| LedgerError::Damaged { key: key.to_string(), what };
        let probe: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| damaged(format!("not a commit record: {e}")))?;
        match probe.get("format").and_then(|f| f.as_u64()) {
            Some(f) if f == u64::from(FORMAT) => {}
            Some(1) => return Err(LedgerError::OldFormat { key: key.to_string() }),
            other => return Err(damaged(format!("unknown ledger format {other:?}"))),
        }
        let c: CommitRecord =
            serde_json::from_value(probe).map_err(|e| damaged(format!("not a commit record: {e}")))?;
        c.delta().map_err(|e| damaged(e.to_string()))?;
        c.fingerprints().map_err(damaged)?;
        if c.ranges.is_empty() {
            return Err(damaged("covers no records".into()));
        }
        Ok(c)
    }

    pub fn delta(&self) -> Result<WindowDelta, crate::dedup::WindowError> {
        let bytes = from_base64(&self.window, "window").map_err(crate::dedup::WindowError::new)?;
        WindowDelta::from_bytes(&bytes)
    }

    /// The sorted fingerprints of the covered records.
    pub fn fingerprints(&self) -> Result<Vec<u64>, String> {
        let bytes = from_base64(&self.sequences, "sequences")?;
        if bytes.len() % 8 != 0 {
            return Err(format!("sequences: {} bytes", bytes.len()));
        }
        Ok(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())).collect())
    }

    pub fn covers_range(&self, seq: &str) -> bool {
        self.ranges.iter().any(|r| r.contains(seq))
    }
}

/// What a publisher reads of a commit record: which commit, its data files and its figures.
/// The ids it kept and the fingerprints of its records, most of its bytes, are skipped by the
/// JSON parser without being decoded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommitSummary {
    pub format: u32,
    pub stream: String,
    pub shard_id: String,
    pub commit: u64,
    pub arrival: ArrivalSpan,
    pub committed_ms: i64,
    pub files: Vec<CommittedFile>,
    pub records: u64,
}

impl CommitSummary {
    /// The summary from the start of a commit record, when the start holds all of it: the
    /// record's members up to `window`, which [`CommitRecord`] writes after the summary's. `None`
    /// when it does not (a start cut before `window`, or a record written with another order of
    /// members): the caller reads the whole record.
    pub fn parse_start(start: &[u8]) -> Option<Self> {
        // `to_vec_pretty` puts each top-level member on a line of its own, indented by two
        // spaces; inside a JSON string a line break is escaped, so this is the member itself.
        const WINDOW: &[u8] = b",\n  \"window\":";
        let at = start.windows(WINDOW.len()).position(|w| w == WINDOW)?;
        let mut summary = start[..at].to_vec();
        summary.extend_from_slice(b"\n}");
        serde_json::from_slice::<Self>(&summary).ok().filter(|s| s.format == FORMAT)
    }

    pub fn parse(key: &str, body: &[u8]) -> Result<Self, LedgerError> {
        #[derive(Deserialize)]
        struct Format {
            format: Option<u64>,
        }
        let damaged = |what: String| LedgerError::Damaged { key: key.to_string(), what };
        // One pass over the body (most of it the ids, which the parser skips) when the record is
        // of this format; the format alone is read again only to say why a summary is refused.
        let error = match serde_json::from_slice::<Self>(body) {
            Ok(summary) if summary.format == FORMAT => return Ok(summary),
            Ok(_) => None,
            Err(e) => Some(e),
        };
        let probe: Format = serde_json::from_slice(body).map_err(|e| damaged(format!("not a commit record: {e}")))?;
        match (probe.format, error) {
            (Some(f), Some(e)) if f == u64::from(FORMAT) => Err(damaged(format!("not a commit record: {e}"))),
            (Some(1), _) => Err(LedgerError::OldFormat { key: key.to_string() }),
            (other, _) => Err(damaged(format!("unknown ledger format {other:?}"))),
        }
    }
}

/// `head.json`: a hint, overwritten after each commit, so that a cold start (and the publisher)
/// finds the latest commit and checkpoint without listing. It may lag (a crash between the
/// commit and its update): readers look for the commits after it. Losing it costs a LIST,
/// never correctness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub format: u32,
    /// The latest commit known then.
    pub latest: u64,
    /// The newest checkpoint known then (0: none).
    pub checkpoint: u64,
}

impl Head {
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// `published.json`, written by the publisher: every commit up to `commit` is published (its
/// round is decided), so that the processor may fold commit records up to it. It may lag the
/// publisher's rounds, never lead them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub format: u32,
    pub commit: u64,
}

impl Published {
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// A retained checkpoint and the latest arrival it had seen (the fold's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    pub commit: u64,
    pub latest_arrival_ms: i64,
}

/// The ranges of a replay commit, kept in every checkpoint while they can still be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRanges {
    pub commit: u64,
    pub ranges: Vec<SeqRange>,
    pub arrival: ArrivalSpan,
}

/// The state of a shard as of a commit, folded: what a cold start reads instead of every commit
/// record before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    pub format: u32,
    pub stream: String,
    pub shard_id: String,
    pub commit: u64,
    pub high_water_mark: Option<String>,
    /// The oldest commit record still kept (older ones were folded: beyond the stream's
    /// retention, they can be neither redelivered nor replayed).
    pub floor: u64,
    /// Checkpoints kept, oldest first, this one last.
    pub checkpoints: Vec<CheckpointRef>,
    pub replays: Vec<ReplayRanges>,
}

/// A checkpoint's bytes: magic, the header's JSON length (u32 LE) and JSON, the window
/// ([`DedupWindow::to_bytes`]), and an XXH3-64 of everything before it.
pub fn checkpoint_bytes(header: &CheckpointHeader, window: &DedupWindow) -> Bytes {
    let json = serde_json::to_vec(header).unwrap_or_default();
    let win = window.to_bytes();
    let mut out = Vec::with_capacity(8 + 4 + json.len() + win.len() + 8);
    out.extend_from_slice(CHECKPOINT_MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&win);
    let sum = xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Bytes::from(out)
}

pub fn parse_checkpoint(key: &str, b: &[u8]) -> Result<(CheckpointHeader, DedupWindow), LedgerError> {
    let damaged = |what: &str| LedgerError::Damaged { key: key.to_string(), what: what.to_string() };
    if b.len() < 20 || !b.starts_with(CHECKPOINT_MAGIC) {
        return Err(damaged("not a checkpoint"));
    }
    let (body, sum) = b.split_at(b.len() - 8);
    if xxh3_64(body).to_le_bytes() != sum {
        return Err(damaged("checksum mismatch"));
    }
    let len = u32::from_le_bytes(body[8..12].try_into().unwrap_or_default()) as usize;
    let json = body.get(12..12 + len).ok_or_else(|| damaged("truncated header"))?;
    let header: CheckpointHeader = serde_json::from_slice(json).map_err(|e| damaged(&format!("header: {e}")))?;
    if header.format != FORMAT {
        return Err(damaged(&format!("format {}", header.format)));
    }
    let window = DedupWindow::from_bytes(&body[12 + len..]).map_err(|e| damaged(&e.to_string()))?;
    Ok((header, window))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record() -> CommitRecord {
        CommitRecord {
            format: FORMAT,
            stream: "orders".into(),
            shard_id: "shardId-000000000001".into(),
            commit: 7,
            attempt: "a1".into(),
            kind: CommitKind::Stream,
            ranges: vec![SeqRange("10".into(), "19".into())],
            high_water_mark: "19".into(),
            arrival: ArrivalSpan(1_000, 2_000),
            committed_ms: 2_100,
            checkpoint: 4,
            files: vec![CommittedFile {
                table: "events".into(),
                hour: 0,
                staged: "_staging/orders/s/7-a1/0.parquet".into(),
                rows: 10,
                bytes: 999,
            }],
            window: to_base64(&WindowDelta::default().to_bytes()),
            sequences: encode_fingerprints(&[sequence_fingerprint("10")]),
            records: 10,
            events: 9,
            quarantined: 1,
            duplicates: 0,
        }
    }

    #[test]
    fn a_summary_reads_what_the_publisher_needs_and_skips_the_ids() {
        let c = record();
        let s = CommitSummary::parse("k", &c.to_bytes()).unwrap();
        let expected = CommitSummary {
            format: FORMAT,
            stream: c.stream.clone(),
            shard_id: c.shard_id.clone(),
            commit: 7,
            arrival: c.arrival,
            committed_ms: 2_100,
            files: c.files.clone(),
            records: 10,
        };
        assert_eq!(s, expected);
        // The ids are not decoded: a summary does not depend on them.
        let mut odd = c.clone();
        odd.window = "not base64 at all".into();
        assert!(CommitRecord::parse("k", &odd.to_bytes()).is_err());
        assert_eq!(CommitSummary::parse("k", &odd.to_bytes()).unwrap(), expected);
    }

    #[test]
    fn the_base64_texts_are_written_as_they_are_and_anything_else_as_a_string() {
        let c = record();
        let text = String::from_utf8(c.to_bytes().to_vec()).unwrap();
        assert!(text.contains(&format!("\"window\": \"{}\"", c.window)), "{text}");
        assert!(text.contains(&format!("\"sequences\": \"{}\"", c.sequences)), "{text}");
        // Texts that are not base64 (a damaged record, a test's) still read back as written.
        for odd in ["a\"b", "a\\nb", "a\\\"b", "a\nb\u{1}", "é", "\"", "\\", "", "x\", \"y\": \"z"] {
            let mut c = record();
            c.window = odd.to_string();
            c.sequences = odd.to_string();
            let read: serde_json::Value = serde_json::from_slice(&c.to_bytes()).unwrap();
            assert_eq!((read["window"].as_str(), read["sequences"].as_str()), (Some(odd), Some(odd)), "{odd:?}");
        }
    }

    proptest::proptest! {
        /// The ledger's base64 is the `base64` crate's (the processor's before the SIMD one):
        /// records written by either read the same.
        #[test]
        fn the_ledgers_base64_is_the_standard_one(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            use base64::Engine;
            let reference = base64::engine::general_purpose::STANDARD;
            let text = to_base64(&bytes);
            proptest::prop_assert_eq!(&text, &reference.encode(&bytes));
            proptest::prop_assert_eq!(from_base64(&text, "window"), Ok(bytes));
        }
    }

    #[test]
    fn a_record_with_ids_that_are_not_base64_is_damaged() {
        let mut c = record();
        c.sequences.push('!');
        let e = CommitRecord::parse("k", &c.to_bytes()).unwrap_err().to_string();
        assert!(e.contains("`sequences` is not base64 (the standard alphabet, padded)"), "{e}");
        // Unpadded, or with bits left over: not what the processor writes.
        for text in ["QQ", "QR=="] {
            assert!(from_base64(text, "window").is_err(), "{text}");
        }
    }

    /// `c`'s bytes as records were written before the summary's members came first: `records`
    /// after the ids.
    pub(crate) fn with_records_last(c: &CommitRecord) -> Vec<u8> {
        let text = String::from_utf8(c.to_bytes().to_vec()).unwrap();
        let line = format!("  \"records\": {},\n", c.records);
        let moved = text.replacen(&line, "", 1);
        let end = moved.rfind("\n}").unwrap();
        format!("{},\n  \"records\": {}\n}}", &moved[..end], c.records).into_bytes()
    }

    #[test]
    fn the_start_of_a_record_holds_its_summary() {
        let mut c = record();
        c.window = "A".repeat(40_000);
        let bytes = c.to_bytes();
        let whole = CommitSummary::parse("k", &bytes).unwrap();
        let window_at = bytes.windows(10).position(|w| w == b"\"window\": ").unwrap();
        assert_eq!(CommitSummary::parse_start(&bytes[..window_at + 20]), Some(whole.clone()));
        assert_eq!(CommitSummary::parse_start(&bytes), Some(whole.clone()));
        // A start cut before the ids, or a record with a summary member after them: not from
        // the start (the caller reads the whole record).
        assert_eq!(CommitSummary::parse_start(&bytes[..window_at / 2]), None);
        let old = with_records_last(&c);
        assert_eq!(CommitSummary::parse("k", &old).unwrap(), whole);
        assert_eq!(CommitSummary::parse_start(&old), None);
        // A line break inside a string is escaped: a stream or file named like the member is
        // no member.
        let mut odd = record();
        odd.stream = ",\n  \"window\":".into();
        let bytes = odd.to_bytes();
        assert_eq!(CommitSummary::parse_start(&bytes), Some(CommitSummary::parse("k", &bytes).unwrap()));
    }

    #[test]
    fn a_summary_of_another_format_or_no_record_is_refused_by_name() {
        let mut old = record();
        old.format = 1;
        let err = CommitSummary::parse("k1", &old.to_bytes()).unwrap_err();
        assert!(matches!(err, LedgerError::OldFormat { ref key } if key == "k1"), "{err}");
        let err = CommitSummary::parse("k2", b"{\"format\": 2}").unwrap_err();
        assert!(matches!(err, LedgerError::Damaged { ref key, .. } if key == "k2"), "{err}");
        let err = CommitSummary::parse("k3", b"[]").unwrap_err();
        assert!(err.to_string().contains("k3"), "{err}");
    }
}

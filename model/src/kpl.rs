//! KPL-aggregated records (contract 1.4): the magic `F3 89 9A C2`, a protobuf
//! `AggregatedRecord`, then the 16-byte MD5 of the protobuf.
//!
//! ```text
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records                 = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes  data                    = 3;
//!   repeated Tag    tags                    = 4;
//! }
//! ```
//!
//! A small protobuf reader of our own: it borrows from the record's bytes, never allocates
//! more than a pointer per user record, and answers a typed error for anything a corrupt or
//! truncated aggregate can hold (it is fuzzed with the other decoders). [`Aggregate`] writes
//! them (the producer's `--aggregate`), as the KPL does.

use md5::{Digest, Md5};

use crate::validate::KPL_MAGIC;

/// One user record of an aggregate, borrowed from the aggregate's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRecord<'a> {
    pub partition_key: &'a str,
    pub explicit_hash_key: Option<&'a str>,
    pub data: &'a [u8],
}

/// Why an aggregate is corrupt (quarantined whole as `invalid_encoding`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KplError {
    #[error("KPL aggregate of {0} bytes is shorter than its magic and MD5 trailer (20 bytes)")]
    Short(usize),
    #[error("KPL aggregate's MD5 trailer does not match its protobuf")]
    Checksum,
    #[error("KPL aggregate's protobuf is malformed at byte {at}: {what}")]
    Protobuf { at: usize, what: &'static str },
    #[error("KPL aggregate's record {record} has no {field}")]
    Missing { record: usize, field: &'static str },
    #[error("KPL aggregate's record {record} names {table} entry {index}, of {len}")]
    Index { record: usize, table: &'static str, index: u64, len: usize },
    #[error("KPL aggregate holds no records")]
    Empty,
}

/// Whether `data` is a KPL aggregate (starts with the magic).
pub fn is_aggregate(data: &[u8]) -> bool {
    data.starts_with(&KPL_MAGIC)
}

/// The user records of an aggregate, in order (the index is the `sub_sequence_number`).
pub fn deaggregate(data: &[u8]) -> Result<Vec<UserRecord<'_>>, KplError> {
    if data.len() < KPL_MAGIC.len() + 16 {
        return Err(KplError::Short(data.len()));
    }
    let (body, digest) = data[KPL_MAGIC.len()..].split_at(data.len() - KPL_MAGIC.len() - 16);
    if Md5::digest(body).as_slice() != digest {
        return Err(KplError::Checksum);
    }
    let mut keys = Vec::new();
    let mut hash_keys = Vec::new();
    let mut raw = Vec::new();
    let mut r = Reader { buf: body, pos: 0, base: KPL_MAGIC.len() };
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, LEN) => keys.push(r.string()?),
            (2, LEN) => hash_keys.push(r.string()?),
            (3, LEN) => {
                let at = r.base + r.pos;
                raw.push((at, r.bytes()?));
            }
            (1..=3, _) => return Err(r.error("a known field with the wrong wire type")),
            _ => r.skip(wire)?,
        }
    }
    if raw.is_empty() {
        return Err(KplError::Empty);
    }
    raw.into_iter()
        .enumerate()
        .map(|(record, (at, bytes))| {
            let (key, hash_key, data) = record_fields(bytes, at, record)?;
            let partition_key = *keys.get(key as usize).ok_or(KplError::Index {
                record,
                table: "partition_key_table",
                index: key,
                len: keys.len(),
            })?;
            let explicit_hash_key = match hash_key {
                None => None,
                Some(h) => Some(*hash_keys.get(h as usize).ok_or(KplError::Index {
                    record,
                    table: "explicit_hash_key_table",
                    index: h,
                    len: hash_keys.len(),
                })?),
            };
            Ok(UserRecord { partition_key, explicit_hash_key, data })
        })
        .collect()
}

/// An aggregate being written, as the KPL writes one: a partition key table (each key once),
/// then the records in order. [`Aggregate::len`] is the exact size [`Aggregate::finish`] returns,
/// so that a producer can stop before a limit.
#[derive(Debug, Clone, Default)]
pub struct Aggregate {
    keys: Vec<u8>,
    key_index: std::collections::HashMap<String, u64>,
    records: Vec<u8>,
    count: usize,
}

impl Aggregate {
    pub fn new() -> Self {
        Aggregate::default()
    }

    /// User records added.
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the finished aggregate: magic, protobuf, MD5.
    pub fn len(&self) -> usize {
        KPL_MAGIC.len() + self.keys.len() + self.records.len() + 16
    }

    /// The size of the aggregate with one more record of this key and data.
    pub fn len_with(&self, partition_key: &str, data: &[u8]) -> usize {
        let (index, new_key) = match self.key_index.get(partition_key) {
            Some(&i) => (i, 0),
            None => (self.key_index.len() as u64, field_len(partition_key.len())),
        };
        self.len() + new_key + field_len(record_len(index, data.len()))
    }

    pub fn add(&mut self, partition_key: &str, data: &[u8]) {
        let index = match self.key_index.get(partition_key) {
            Some(&i) => i,
            None => {
                let i = self.key_index.len() as u64;
                put_field(&mut self.keys, 1, partition_key.as_bytes());
                self.key_index.insert(partition_key.to_string(), i);
                i
            }
        };
        put_varint(&mut self.records, 3 << 3 | LEN as u64);
        put_varint(&mut self.records, record_len(index, data.len()) as u64);
        put_varint(&mut self.records, 1 << 3 | VARINT as u64);
        put_varint(&mut self.records, index);
        put_field(&mut self.records, 3, data);
        self.count += 1;
    }

    /// The aggregate's bytes (magic, protobuf, MD5 of the protobuf).
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        out.extend_from_slice(&KPL_MAGIC);
        out.extend_from_slice(&self.keys);
        out.extend_from_slice(&self.records);
        let digest = Md5::digest(&out[KPL_MAGIC.len()..]);
        out.extend_from_slice(&digest);
        out
    }
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// A length-delimited field of `len` bytes with a one-byte tag.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// A `Record`'s encoded size: its key index and its data.
fn record_len(index: u64, data: usize) -> usize {
    1 + varint_len(index) + field_len(data)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    put_varint(out, number << 3 | LEN as u64);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// The partition key index, the explicit hash key index and the data of one `Record` message
/// (`at`: its offset in the aggregate, for errors).
fn record_fields(bytes: &[u8], at: usize, record: usize) -> Result<(u64, Option<u64>, &[u8]), KplError> {
    let mut r = Reader { buf: bytes, pos: 0, base: at };
    let (mut key, mut hash_key, mut data) = (None, None, None);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, VARINT) => key = Some(r.varint()?),
            (2, VARINT) => hash_key = Some(r.varint()?),
            (3, LEN) => data = Some(r.bytes()?),
            (1..=3, _) => return Err(r.error("a known field with the wrong wire type")),
            _ => r.skip(wire)?,
        }
    }
    let key = key.ok_or(KplError::Missing { record, field: "partition_key_index" })?;
    let data = data.ok_or(KplError::Missing { record, field: "data" })?;
    Ok((key, hash_key, data))
}

/// A protobuf message's fields, read in place.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the aggregate, for errors.
    base: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, what: &'static str) -> KplError {
        KplError::Protobuf { at: self.base + self.pos, what }
    }

    fn varint(&mut self) -> Result<u64, KplError> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else { return Err(self.error("a varint cut short")) };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.error("a varint over 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("a varint over 10 bytes"))
    }

    /// The next field's number and wire type, or `None` at the end of the message.
    fn key(&mut self) -> Result<Option<(u64, u8)>, KplError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(self.error("field number 0"));
        }
        Ok(Some((field, (key & 7) as u8)))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], KplError> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(self.error("a length past the end of the message"));
        }
        let out = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(out)
    }

    fn bytes(&mut self) -> Result<&'a [u8], KplError> {
        let n = self.varint()?;
        self.take(n)
    }

    fn string(&mut self) -> Result<&'a str, KplError> {
        let at = self.pos;
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map_err(|_| KplError::Protobuf { at: self.base + at, what: "a key that is not UTF-8" })
    }

    /// Skips a field of another number (tags, fields added later).
    fn skip(&mut self, wire: u8) -> Result<(), KplError> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            I64 => self.take(8).map(|_| ()),
            LEN => self.bytes().map(|_| ()),
            I32 => self.take(4).map(|_| ()),
            _ => Err(self.error("an unknown wire type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::{put_field as field, put_varint as varint};

    /// An aggregate as the KPL writes it: the key tables, then each record.
    fn aggregate(keys: &[&str], records: &[(u64, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for k in keys {
            field(&mut body, 1, k.as_bytes());
        }
        for (key, data) in records {
            let mut rec = Vec::new();
            varint(&mut rec, 1 << 3);
            varint(&mut rec, *key);
            field(&mut rec, 3, data);
            field(&mut body, 3, &rec);
        }
        seal(&body)
    }

    fn seal(body: &[u8]) -> Vec<u8> {
        let mut out = KPL_MAGIC.to_vec();
        out.extend_from_slice(body);
        out.extend_from_slice(&Md5::digest(body));
        out
    }

    #[test]
    fn user_records_in_order_with_their_own_keys() {
        let agg = aggregate(&["s-1", "s-2"], &[(0, b"a"), (1, b"bb"), (0, b"")]);
        assert!(is_aggregate(&agg) && !is_aggregate(b"{}"));
        let got = deaggregate(&agg).unwrap();
        let keys: Vec<_> = got.iter().map(|u| (u.partition_key, u.data)).collect();
        assert_eq!(keys, [("s-1", &b"a"[..]), ("s-2", b"bb"), ("s-1", b"")]);
        assert!(got.iter().all(|u| u.explicit_hash_key.is_none()));
    }

    #[test]
    fn one_record_and_a_thousand() {
        assert_eq!(deaggregate(&aggregate(&["k"], &[(0, b"x")])).unwrap().len(), 1);
        let data: Vec<Vec<u8>> = (0..1000).map(|i| format!("{{\"n\":{i}}}").into_bytes()).collect();
        let records: Vec<(u64, &[u8])> = data.iter().enumerate().map(|(i, d)| ((i % 7) as u64, &d[..])).collect();
        let keys: Vec<String> = (0..7).map(|i| format!("key-{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let agg = aggregate(&keys, &records);
        let got = deaggregate(&agg).unwrap();
        assert_eq!(got.len(), 1000);
        assert_eq!((got[999].partition_key, got[999].data), ("key-5", &b"{\"n\":999}"[..]));
    }

    #[test]
    fn explicit_hash_keys_and_tags_and_unknown_fields() {
        let mut body = Vec::new();
        field(&mut body, 1, b"pk");
        field(&mut body, 2, b"340282366920938463463374607431768211455");
        let mut rec = Vec::new();
        varint(&mut rec, 1 << 3);
        varint(&mut rec, 0);
        varint(&mut rec, 2 << 3);
        varint(&mut rec, 0);
        field(&mut rec, 3, b"d");
        field(&mut rec, 4, b"\x0a\x01k"); // a tag, skipped
        varint(&mut rec, 9 << 3 | 5); // an unknown 32-bit field
        rec.extend_from_slice(&[1, 2, 3, 4]);
        field(&mut body, 3, &rec);
        let agg = seal(&body);
        let got = deaggregate(&agg).unwrap();
        assert_eq!(got[0].explicit_hash_key, Some("340282366920938463463374607431768211455"));
        assert_eq!(got[0].data, b"d");
    }

    #[test]
    fn corrupt_aggregates_say_what_is_wrong() {
        let good = aggregate(&["k"], &[(0, b"hello")]);
        let mut bad_sum = good.clone();
        *bad_sum.last_mut().unwrap() ^= 1;
        assert_eq!(deaggregate(&bad_sum), Err(KplError::Checksum));
        assert_eq!(deaggregate(&KPL_MAGIC), Err(KplError::Short(4)));
        // Truncated protobuf, resealed so that the checksum holds.
        let body = &good[4..good.len() - 16];
        let cut = seal(&body[..body.len() - 2]);
        assert!(matches!(deaggregate(&cut), Err(KplError::Protobuf { .. })), "{:?}", deaggregate(&cut));
        // An index outside the key table.
        let outside = aggregate(&["k"], &[(0, b"a"), (3, b"b")]);
        assert_eq!(
            deaggregate(&outside),
            Err(KplError::Index { record: 1, table: "partition_key_table", index: 3, len: 1 })
        );
        assert_eq!(deaggregate(&aggregate(&["k"], &[])), Err(KplError::Empty));
        // A record without data; a varint that never ends; a wire type of a group.
        let mut rec = Vec::new();
        varint(&mut rec, 1 << 3);
        varint(&mut rec, 0);
        let mut body = Vec::new();
        field(&mut body, 1, b"k");
        field(&mut body, 3, &rec);
        assert_eq!(deaggregate(&seal(&body)), Err(KplError::Missing { record: 0, field: "data" }));
        assert!(matches!(deaggregate(&seal(&[0x0a, 0xff, 0xff])), Err(KplError::Protobuf { .. })));
        assert!(matches!(deaggregate(&seal(&[0x0b])), Err(KplError::Protobuf { .. })));
        assert!(matches!(
            deaggregate(&seal(&[0x0a, 0x01, 0xff])),
            Err(KplError::Protobuf { what: "a key that is not UTF-8", .. })
        ));
    }

    #[test]
    fn written_aggregates_read_back_and_know_their_size() {
        let mut agg = Aggregate::new();
        assert!(agg.is_empty());
        let data: Vec<Vec<u8>> = (0..300).map(|i| vec![b'x'; i * 3]).collect();
        for (i, d) in data.iter().enumerate() {
            let key = format!("session-{}", i % 17);
            let before = agg.len_with(&key, d);
            agg.add(&key, d);
            assert_eq!(agg.len(), before, "record {i}");
        }
        assert_eq!(agg.count(), 300);
        let len = agg.len();
        let bytes = agg.finish();
        assert_eq!(bytes.len(), len);
        let got = deaggregate(&bytes).unwrap();
        assert_eq!(got.len(), 300);
        for (i, u) in got.iter().enumerate() {
            assert_eq!((u.partition_key, u.data), (format!("session-{}", i % 17).as_str(), &data[i][..]));
        }
        // Sizes across varint boundaries: 127/128 bytes of data, 128 keys.
        for n in [0usize, 1, 126, 127, 128, 129, 16_383, 16_384] {
            let mut a = Aggregate::new();
            for k in 0..130 {
                let key = format!("k{k}");
                let expected = a.len_with(&key, &vec![0; n]);
                a.add(&key, &vec![0; n]);
                assert_eq!(a.len(), expected, "{n} bytes, key {k}");
            }
            assert_eq!(deaggregate(&a.finish()).unwrap().len(), 130);
        }
    }
}

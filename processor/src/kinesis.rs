//! The standard Kinesis event that Lambda sends, and the records the processor works on.
//!
//! The event is deserialized with this module's own serde types rather than
//! `aws_lambda_events::kinesis::KinesisEvent`: that crate (1.2) reads the digits after the dot
//! of `approximateArrivalTimestamp` as milliseconds, so `1763903100.5` becomes 5 ms instead of
//! 500 ms. The contract wants the arrival rounded to the nearest millisecond.
//! [`KinesisEvent::from_slice`] reads the text as Lambda writes it without serde (`envelope`),
//! and any other text with these types.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use serde::Deserialize;
use sink::RecordMeta;

mod envelope;

/// `{"Records": [...]}` as Lambda sends it for a Kinesis event source mapping, read straight
/// into the records the processor works on: the event's strings are borrowed from its text while
/// it is read (no copy of each record's base64, ARN and ids), each record's data decoded once.
#[derive(Debug, PartialEq)]
pub struct KinesisEvent {
    pub records: Vec<InputRecord>,
}

impl KinesisEvent {
    /// The event of a JSON text: read by this crate's own reader of the envelope where it can
    /// (the text as Lambda writes it), and otherwise by serde_json, whose error says what is
    /// wrong. The same event either way.
    pub fn from_slice(text: &[u8]) -> serde_json::Result<KinesisEvent> {
        match KinesisEvent::read_plain(text) {
            Some(event) => Ok(event),
            None => serde_json::from_slice(text),
        }
    }

    /// The event of a text as Lambda writes it, read without serde (`envelope`): `None` for any
    /// text it cannot read exactly as serde_json does (escapes, `null`s, members of other kinds
    /// than it expects), valid or not.
    pub fn read_plain(text: &[u8]) -> Option<KinesisEvent> {
        envelope::records(text).map(KinesisEvent::from_records)
    }

    /// Every record of an event names the same stream, and most the same shard: each name is
    /// made once and shared while it stays the same.
    fn from_records(records: Vec<RecordText<'_>>) -> KinesisEvent {
        let mut last: Option<(Option<Text<'_>>, Arc<str>)> = None;
        let mut last_shard: Option<Arc<str>> = None;
        let records = records
            .into_iter()
            .map(|r| {
                let stream = match &last {
                    Some((arn, stream)) if *arn == r.event_source_arn => stream.clone(),
                    _ => {
                        let stream: Arc<str> = stream_name(r.event_source_arn.as_deref()).into();
                        last = Some((r.event_source_arn.clone(), stream.clone()));
                        stream
                    }
                };
                let shard_id = r.shard_id();
                let shard = match &last_shard {
                    Some(shard) if **shard == *shard_id => shard.clone(),
                    _ => last_shard.insert(shard_id.into()).clone(),
                };
                r.into_input(stream, shard)
            })
            .collect();
        KinesisEvent { records }
    }
}

impl<'de> Deserialize<'de> for KinesisEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(KinesisEvent::from_records(EventText::deserialize(d)?.records))
    }
}

#[derive(Deserialize)]
struct EventText<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<RecordText<'a>>,
}

/// One record of the event as its text has it (escaped strings are copied, others borrowed).
#[derive(Deserialize)]
struct RecordText<'a> {
    /// `shardId-000000000006:49545115243490985018280067714973144582180062593244200961`
    #[serde(rename = "eventID", default, borrow)]
    event_id: Option<Text<'a>>,
    /// `arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream`
    #[serde(rename = "eventSourceARN", default, borrow)]
    event_source_arn: Option<Text<'a>>,
    #[serde(borrow)]
    kinesis: DataText<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataText<'a> {
    /// Base64 of the record's bytes.
    #[serde(borrow)]
    data: StringBytes<'a>,
    #[serde(borrow)]
    sequence_number: Cow<'a, str>,
    #[serde(default, borrow)]
    partition_key: Cow<'a, str>,
    /// Epoch seconds with a fraction.
    approximate_arrival_timestamp: f64,
}

/// A string of the event, borrowed from its text unless it has escapes. (serde reads a `Cow` as
/// borrowed only where it is a field's own type: an `Option<Cow<str>>` is always a copy.)
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A JSON string read as its bytes, borrowed when it has no escapes: the base64 of a record is
/// most of an event's text, and bytes are found by a SIMD search for the closing quote with no
/// UTF-8 check (a string is checked for UTF-8 byte by byte), which base64 decoding makes
/// unnecessary: anything outside its alphabet is refused there.
struct StringBytes<'a>(Cow<'a, [u8]>);

impl<'de: 'a, 'a> Deserialize<'de> for StringBytes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StringBytes<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(StringBytes(Cow::Borrowed(v)))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(StringBytes(Cow::Owned(v.to_vec())))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StringBytes(Cow::Borrowed(v.as_bytes())))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StringBytes(Cow::Owned(v.as_bytes().to_vec())))
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

/// One record to process: where it came from and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// The stream's name (from the event source ARN), or `local` when there is none; shared by
    /// the records of a stream.
    pub stream: Arc<str>,
    pub meta: RecordMeta,
    /// The record's bytes; for a record whose base64 could not be decoded, the base64 text.
    pub data: Vec<u8>,
    /// Set when `data` is not the decoded record (invalid base64).
    pub undecodable: bool,
}

/// Epoch seconds to milliseconds, rounded to the nearest millisecond.
pub fn seconds_to_millis(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// The stream name of `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`.
pub fn stream_name(arn: Option<&str>) -> String {
    arn.and_then(|a| a.rsplit_once(":stream/").map(|(_, name)| name.to_string()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "local".to_string())
}

impl RecordText<'_> {
    /// The shard of `eventID` (`shardId-...:sequence`), `unknown-shard` when absent.
    fn shard_id(&self) -> &str {
        self.event_id
            .as_deref()
            .and_then(|id| id.split_once(':').map(|(shard, _)| shard))
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown-shard")
    }

    fn into_input(self, stream: Arc<str>, shard_id: Arc<str>) -> InputRecord {
        let k = self.kinesis;
        let (data, undecodable) = match decode_base64(&k.data.0) {
            Some(bytes) => (bytes, false),
            None => (k.data.0.into_owned(), true),
        };
        InputRecord {
            stream,
            meta: RecordMeta {
                shard_id,
                sequence_number: k.sequence_number.into_owned(),
                sub_sequence_number: 0,
                partition_key: k.partition_key.into_owned(),
                arrival_ms: seconds_to_millis(k.approximate_arrival_timestamp),
            },
            data,
            undecodable,
        }
    }
}

/// A record's data from its base64 (the standard alphabet, padded, canonical: what Kinesis
/// sends), with SIMD where the CPU has it: 8% of an invocation's instructions with the scalar
/// decoder. `None` for anything else.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    base64_simd::STANDARD.decode_to_vec(text).ok()
}

/// Orders Kinesis sequence numbers (decimal strings of up to 128 bits and more) numerically.
pub fn cmp_sequence(a: &str, b: &str) -> Ordering {
    // Leading zeros skipped byte by byte (`str::trim_start_matches` decodes UTF-8 per char).
    fn digits(s: &str) -> &[u8] {
        let s = s.as_bytes();
        &s[s.iter().position(|&c| c != b'0').unwrap_or(s.len())..]
    }
    let (a, b) = (digits(a), digits(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The Lambda Kinesis event of `records`, as the event source mapping sends it (`region` and
/// `account` make up the ARNs). The inverse of reading a [`KinesisEvent`].
pub fn event_json(records: &[InputRecord], region: &str, account: &str) -> serde_json::Value {
    let records: Vec<_> = records
        .iter()
        .map(|r| {
            let data = if r.undecodable {
                String::from_utf8_lossy(&r.data).into_owned()
            } else {
                base64_simd::STANDARD.encode_to_string(&r.data)
            };
            serde_json::json!({
                "eventID": format!("{}:{}", r.meta.shard_id, r.meta.sequence_number),
                "eventSourceARN": format!("arn:aws:kinesis:{region}:{account}:stream/{}", r.stream),
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventName": "aws:kinesis:record",
                "awsRegion": region,
                "invokeIdentityArn": format!("arn:aws:iam::{account}:role/processor"),
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.meta.partition_key,
                    "sequenceNumber": r.meta.sequence_number,
                    "data": data,
                    "approximateArrivalTimestamp": r.meta.arrival_ms as f64 / 1000.0,
                }
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use proptest::prelude::*;

    /// The reference: the `base64` crate's standard engine (padding required, trailing bits
    /// zero), which the processor used before the SIMD decoder.
    fn reference(text: &[u8]) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD.decode(text).ok()
    }

    #[test]
    fn a_records_ids_are_borrowed_from_the_event_unless_escaped() {
        let text = r#"{"eventID": "shardId-000000000003:49", "eventSourceARN": "arn:aws:kinesis:eu-west-1:1:stream\/orders",
            "kinesis": {"data": "", "sequenceNumber": "49", "approximateArrivalTimestamp": 1}}"#;
        let record: RecordText = serde_json::from_str(text).unwrap();
        assert!(matches!(&record.event_id, Some(Text(Cow::Borrowed("shardId-000000000003:49")))));
        // An escape (`\/`) makes a copy, of the string as it reads.
        assert!(
            matches!(&record.event_source_arn, Some(Text(Cow::Owned(arn))) if arn == "arn:aws:kinesis:eu-west-1:1:stream/orders")
        );
        assert_eq!(record.shard_id(), "shardId-000000000003");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Every encoding decodes to its bytes, and any damage to one (a byte replaced by any
        /// other, one cut off or added) is refused exactly when the reference refuses it.
        #[test]
        fn the_simd_decoder_agrees_with_the_reference(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            at in any::<prop::sample::Index>(),
            by in any::<u8>(),
            damage in 0u8..4,
        ) {
            let mut text = base64::engine::general_purpose::STANDARD.encode(&bytes).into_bytes();
            prop_assert_eq!(decode_base64(&text), Some(bytes));
            match damage {
                0 => {}
                1 if !text.is_empty() => { let i = at.index(text.len()); text[i] = by; }
                2 => { text.pop(); }
                _ => text.insert(at.index(text.len() + 1), by),
            }
            prop_assert_eq!(decode_base64(&text), reference(&text), "{:?}", String::from_utf8_lossy(&text));
        }

        /// Sequence numbers, with any leading zeros, order as their values do.
        #[test]
        fn sequence_numbers_order_as_their_values(a in any::<u128>(), b in any::<u128>(), za in 0usize..4, zb in 0usize..4) {
            let (ta, tb) = (format!("{}{a}", "0".repeat(za)), format!("{}{b}", "0".repeat(zb)));
            prop_assert_eq!(cmp_sequence(&ta, &tb), a.cmp(&b));
        }

        /// Text from the alphabet, padding and a few strangers, of any length.
        #[test]
        fn arbitrary_text_is_decoded_as_the_reference_does(text in "[A-Za-z0-9+/=\\-_ \n]{0,80}") {
            prop_assert_eq!(decode_base64(text.as_bytes()), reference(text.as_bytes()));
        }
    }

    #[test]
    fn non_canonical_and_unpadded_base64_is_refused() {
        // "Zg==" is "f"; "Zh==" has non-zero trailing bits; "Zg" lacks its padding.
        assert_eq!(decode_base64(b"Zg=="), Some(b"f".to_vec()));
        for bad in [&b"Zh=="[..], b"Zg", b"Zg=", b"Z===", b"Zm9v\n", b" Zm9v", b"Zm9v====", b"Zm9-"] {
            assert_eq!(decode_base64(bad), None, "{:?}", String::from_utf8_lossy(bad));
            assert_eq!(reference(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn arrival_is_rounded_to_the_nearest_millisecond() {
        assert_eq!(seconds_to_millis(1763903100.5), 1763903100500);
        assert_eq!(seconds_to_millis(1763903100.98), 1763903100980);
        assert_eq!(seconds_to_millis(1763903100.1234), 1763903100123);
        assert_eq!(seconds_to_millis(1763903100.1236), 1763903100124);
        assert_eq!(seconds_to_millis(1763903100.0), 1763903100000);
        assert_eq!(seconds_to_millis(1545084650.987), 1545084650987);
    }

    #[test]
    fn sequence_numbers_compare_numerically() {
        assert_eq!(cmp_sequence("9", "10"), Ordering::Less);
        assert_eq!(
            cmp_sequence(
                "49545115243490985018280067714973144582180062593244200961",
                "49545115243490985018280067714973144582180062593244200962"
            ),
            Ordering::Less
        );
        assert_eq!(cmp_sequence("007", "7"), Ordering::Equal);
        assert_eq!(cmp_sequence("100", "99"), Ordering::Greater);
        assert_eq!(cmp_sequence("000", ""), Ordering::Equal);
        assert_eq!(cmp_sequence("0", "1"), Ordering::Less);
        assert_eq!(cmp_sequence("0010", "009"), Ordering::Greater);
    }

    #[test]
    fn an_event_built_from_records_reads_back_as_the_same_records() {
        let records: Vec<InputRecord> = (0..50i64)
            .map(|n| InputRecord {
                stream: "storefront".into(),
                meta: RecordMeta {
                    shard_id: format!("shardId-00000000000{}", n % 3).into(),
                    sequence_number: format!("4954511524349098501828006771497314458218006259324{n:07}"),
                    sub_sequence_number: 0,
                    partition_key: format!("session-{n}"),
                    arrival_ms: 1_795_439_100_000 + n * 37 + n % 7,
                },
                data: format!("{{\"n\":{n}}}").into_bytes(),
                undecodable: false,
            })
            .collect();
        let json = serde_json::to_string(&event_json(&records, "eu-west-1", "123456789012")).unwrap();
        let event: KinesisEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(event.records, records);
        // The same from an owned tree (strings not borrowed).
        let event: KinesisEvent = serde_json::from_value(event_json(&records, "eu-west-1", "123456789012")).unwrap();
        assert_eq!(event.records, records);
    }

    #[test]
    fn shard_and_stream_come_from_the_event() {
        let json = r#"{"Records":[{"eventID":"shardId-000000000006:4954","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/orders",
            "kinesis":{"data":"eyJhIjoxfQ==","sequenceNumber":"4954","partitionKey":"pk","approximateArrivalTimestamp":1545084650.987,"kinesisSchemaVersion":"1.0"}},
            {"kinesis":{"data":"***","sequenceNumber":"4955","approximateArrivalTimestamp":1545084651}}]}"#;
        let event: KinesisEvent = serde_json::from_str(json).unwrap();
        let mut records = event.records.into_iter();
        let first = records.next().unwrap();
        assert_eq!((&*first.stream, &*first.meta.shard_id), ("orders", "shardId-000000000006"));
        assert_eq!(first.data, br#"{"a":1}"#);
        assert_eq!(first.meta.arrival_ms, 1545084650987);
        let second = records.next().unwrap();
        assert_eq!((&*second.stream, &*second.meta.shard_id), ("local", "unknown-shard"));
        assert!(second.undecodable);
        assert_eq!(second.data, b"***");
    }

    #[test]
    fn a_run_of_one_shards_records_shares_its_stream_and_shard_names() {
        let record = |shard: &str, seq: &str| {
            format!(
                r#"{{"eventID":"{shard}:{seq}","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/orders",
                "kinesis":{{"data":"eyJhIjoxfQ==","sequenceNumber":"{seq}","approximateArrivalTimestamp":1}}}}"#
            )
        };
        let json = format!(
            r#"{{"Records":[{},{},{}]}}"#,
            record("shardId-000000000001", "1"),
            record("shardId-000000000001", "2"),
            record("shardId-000000000002", "3")
        );
        let event: KinesisEvent = serde_json::from_str(&json).unwrap();
        let [a, b, c] = &event.records[..] else { panic!("three records") };
        assert!(Arc::ptr_eq(&a.meta.shard_id, &b.meta.shard_id));
        assert_eq!((&*b.meta.shard_id, &*c.meta.shard_id), ("shardId-000000000001", "shardId-000000000002"));
        assert!(Arc::ptr_eq(&a.stream, &c.stream));
        assert_eq!(&*c.stream, "orders");
    }

    fn only_record(data_json: &str) -> Result<InputRecord, serde_json::Error> {
        let json = format!(
            r#"{{"Records":[{{"kinesis":{{"data":{data_json},"sequenceNumber":"1","approximateArrivalTimestamp":1}}}}]}}"#
        );
        serde_json::from_slice::<KinesisEvent>(json.as_bytes()).map(|e| e.records.into_iter().next().unwrap())
    }

    #[test]
    fn the_data_string_is_read_with_its_escapes() {
        // JSON may escape '/' and any character as \uXXXX: "P/8=" is [0x3f, 0xff].
        for text in [r#""P/8=""#, r#""P\/8=""#, r#""\u0050/8=""#] {
            let r = only_record(text).unwrap();
            assert_eq!((r.data.as_slice(), r.undecodable), (&[0x3f, 0xff][..], false), "{text}");
        }
        // Text that is not base64, with an escape or a raw control character, is kept as it
        // came for the quarantine (invalid_encoding), not a failure of the whole event.
        let r = only_record(r#""a\"b""#).unwrap();
        assert_eq!((r.data.as_slice(), r.undecodable), (&b"a\"b"[..], true));
        let r = only_record("\"a\tb\"").unwrap();
        assert_eq!((r.data.as_slice(), r.undecodable), (&b"a\tb"[..], true));
    }

    #[test]
    fn data_that_is_not_a_string_fails_the_event_clearly() {
        for text in ["12", "null", "{}", "[1]"] {
            let err = only_record(text).unwrap_err().to_string();
            assert!(err.contains("expected a string"), "{text}: {err}");
        }
    }
}

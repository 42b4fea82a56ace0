//! The Kinesis event's text read as Lambda writes it, without serde: one pass over the text that
//! borrows each string, compares a record's keys as bytes, and reads the members the processor
//! does not use only as far as their ends.
//!
//! serde_json read the envelope string by string, each key matched against the fields' names
//! and each unused member parsed to be ignored, checking every string for UTF-8 on its own: about
//! 8,400 instructions a storefront record of 850 bytes, a quarter of an invocation. This reader
//! takes only text it reads exactly as serde_json does (the derived `RecordText`'s fields in any
//! order, whitespace anywhere) and gives up (`None`) on anything else: an escape, a control
//! character in a string other than a record's data, text that is not UTF-8, a member it does
//! not know whose value is not a string, a `null`, a number other than plain digits, a repeated
//! field, a missing one, a top-level member other than `Records`.
//! [`super::KinesisEvent::from_slice`] then reads the text with serde_json, which accepts it or
//! says why not. Whatever it reads, serde_json reads the same: a property test and the
//! `kinesis_event` fuzz target compare the two.

use std::borrow::Cow;

use super::{DataText, RecordText, StringBytes, Text};

/// The records of `text`, or `None` where serde_json must read it.
pub(super) fn records(text: &[u8]) -> Option<Vec<RecordText<'_>>> {
    // Checked as UTF-8 once, as a whole (with SIMD): a string between two quotes of it is then
    // UTF-8 too.
    let text = simdutf8::basic::from_utf8(text).ok()?;
    let mut c = Cursor { text, at: 0 };
    c.expect(b'{')?;
    if c.key()? != "Records" {
        return None;
    }
    c.expect(b'[')?;
    let mut records = Vec::new();
    if !c.eat(b']') {
        loop {
            records.push(c.record()?);
            if !c.eat(b',') {
                c.expect(b']')?;
                break;
            }
        }
    }
    c.expect(b'}')?;
    c.skip_whitespace();
    (c.at == text.len()).then_some(records)
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

/// `10^k` for the digits after a number's point: exact as `f64` up to 22.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// Fills a field once: a second value is a duplicate field, which serde refuses.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

impl<'a> Cursor<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.as_bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// Whether `byte` comes next (after whitespace), taken if so.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        let next = self.text.as_bytes().get(self.at) == Some(&byte);
        self.at += usize::from(next);
        next
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// A string without escapes or control characters: the text between its quotes.
    fn string(&mut self) -> Option<&'a str> {
        self.skip_whitespace();
        let (text, after) = model::plain_string(self.text, self.at)?;
        self.at = after;
        Some(text)
    }

    /// The record's base64 as bytes, without escapes: serde_json reads a string as bytes with
    /// no check of what they are (a control character included), and so does this. Found by a
    /// SIMD search: it is most of the event's text.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let rest = &self.text.as_bytes()[self.at..];
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        (rest[end] == b'"').then_some(())?;
        self.at += end + 1;
        Some(&rest[..end])
    }

    /// A key and its colon.
    fn key(&mut self) -> Option<&'a str> {
        let key = self.string()?;
        self.expect(b':')?;
        Some(key)
    }

    /// The members of an object (its `{` taken), each key given to `member`, which reads the
    /// value.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.key()?;
            member(self, key)?;
            if !self.eat(b',') {
                return self.expect(b'}');
            }
        }
    }

    fn record(&mut self) -> Option<RecordText<'a>> {
        self.expect(b'{')?;
        let (mut event_id, mut event_source_arn, mut kinesis) = (None, None, None);
        self.members(|c, key| match key {
            "eventID" => once(&mut event_id, Text(Cow::Borrowed(c.string()?))),
            "eventSourceARN" => once(&mut event_source_arn, Text(Cow::Borrowed(c.string()?))),
            "kinesis" => once(&mut kinesis, c.data()?),
            // A member the processor does not read: a string, not looked at.
            _ => c.string().map(drop),
        })?;
        Some(RecordText { event_id, event_source_arn, kinesis: kinesis? })
    }

    fn data(&mut self) -> Option<DataText<'a>> {
        self.expect(b'{')?;
        let (mut data, mut sequence_number, mut partition_key, mut arrival) = (None, None, None, None);
        self.members(|c, key| match key {
            "data" => once(&mut data, StringBytes(Cow::Borrowed(c.bytes()?))),
            "sequenceNumber" => once(&mut sequence_number, Cow::Borrowed(c.string()?)),
            "partitionKey" => once(&mut partition_key, Cow::Borrowed(c.string()?)),
            "approximateArrivalTimestamp" => once(&mut arrival, c.number()?),
            _ => c.string().map(drop),
        })?;
        Some(DataText {
            data: data?,
            sequence_number: sequence_number?,
            partition_key: partition_key.unwrap_or_default(),
            approximate_arrival_timestamp: arrival?,
        })
    }

    /// A number of plain digits with an optional fraction (`1795392000.05`), valued as serde_json
    /// values it: the digits as an integer, divided by the power of ten of the fraction's length.
    /// That integer is kept below 2^53, where it and the power are exact and the one division
    /// rounds correctly, so the value is also the one serde_json's `float_roundtrip` would give.
    fn number(&mut self) -> Option<f64> {
        self.skip_whitespace();
        let bytes = &self.text.as_bytes()[self.at..];
        let digits = |from: usize| bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
        let whole = digits(0);
        // One digit at least; a leading zero only alone (JSON's grammar).
        if whole == 0 || (whole > 1 && bytes[0] == b'0') {
            return None;
        }
        let fraction = if bytes.get(whole) == Some(&b'.') { digits(whole + 1) } else { 0 };
        let end = if fraction > 0 { whole + 1 + fraction } else { whole };
        // What follows is not part of the number: an exponent or a lone point goes to serde_json.
        if matches!(bytes.get(end), Some(b'.' | b'e' | b'E')) || fraction > POW10.len() - 1 {
            return None;
        }
        let mut significand: u64 = 0;
        for &b in bytes[..end].iter().filter(|b| b.is_ascii_digit()) {
            significand = significand.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        if significand >= 1 << 53 {
            return None;
        }
        self.at += end;
        Some(significand as f64 / POW10[fraction])
    }
}

#[cfg(test)]
mod tests {
    use super::super::KinesisEvent;
    use proptest::prelude::*;

    /// What serde_json reads, and what the plain reader reads where it reads anything: they must
    /// agree.
    fn both(text: &str) -> (Option<KinesisEvent>, Option<KinesisEvent>) {
        let plain = KinesisEvent::read_plain(text.as_bytes());
        let serde = serde_json::from_slice::<KinesisEvent>(text.as_bytes()).ok();
        if plain.is_some() {
            assert_eq!(plain, serde, "{text}");
        }
        (plain, serde)
    }

    const RECORD: &str = r#"{"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "s-1",
        "sequenceNumber": "49545115243490985018280067714973144582180062593244200961",
        "data": "eyJhIjoxfQ==", "approximateArrivalTimestamp": 1545084650.987},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": "shardId-000000000006:49545115243490985018280067714973144582180062593244200961",
        "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
        "awsRegion": "us-east-2", "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"}"#;

    #[test]
    fn an_event_as_lambda_writes_it_is_read_without_serde() {
        for text in [
            format!(r#"{{"Records": [{RECORD}, {RECORD}]}}"#),
            format!("\n{{ \"Records\" :\r\n\t[ {RECORD} ] }}\n"),
            r#"{"Records":[]}"#.to_string(),
        ] {
            let (plain, serde) = both(&text);
            assert!(plain.is_some() && serde.is_some(), "{text}");
        }
        let (plain, _) = both(&format!(r#"{{"Records": [{RECORD}]}}"#));
        let record = &plain.unwrap().records[0];
        assert_eq!((&*record.stream, &*record.meta.shard_id), ("lambda-stream", "shardId-000000000006"));
        assert_eq!((record.data.as_slice(), record.meta.arrival_ms), (&br#"{"a":1}"#[..], 1_545_084_650_987));
        assert_eq!(record.meta.partition_key, "s-1");
    }

    #[test]
    fn what_it_cannot_read_exactly_is_left_to_serde_json() {
        let record = |from: &str, to: &str| {
            assert!(RECORD.contains(from), "{from}");
            format!(r#"{{"Records": [{}]}}"#, RECORD.replacen(from, to, 1))
        };
        let valid = [
            record("stream/lambda", r"stream\/lambda"),
            record(r#""eventVersion""#, r#""event\u0056ersion""#),
            record(r#""awsRegion": "us-east-2""#, r#""awsRegion": null"#),
            record(r#""awsRegion": "us-east-2""#, r#""awsRegion": {"a": [1, "b"]}"#),
            record(r#""eventSourceARN": "arn"#, r#""eventSourceARN": null, "x": "arn"#),
            record("1545084650.987", "1545084650987e-3"),
            record("1545084650.987", "1.545084650987E9"),
            record("1545084650.987", "-1"),
            record("1545084650.987", "12345678901234567890"),
            record("\"eyJhIjoxfQ==\"", "\"eyJh\\nIjoxfQ==\""),
            format!(r#"{{"Records": [{RECORD}], "other": 1}}"#),
        ];
        for text in &valid {
            let (plain, serde) = both(text);
            assert!(plain.is_none() && serde.is_some(), "{text}");
        }
        let invalid = [
            record("\"eventName\"", "\"eventName\", \"eventName\""),
            record(r#""eventID": "shardId"#, r#""eventID": "a", "eventID": "shardId"#),
            record(r#""partitionKey": "s-1""#, r#""partitionKey": "s-1", "partitionKey": "s-1""#),
            record("1545084650.987", "01545084650.987"),
            record("1545084650.987", "1545084650."),
            record("1545084650.987", "1545084650.9.8"),
            record("1545084650.987", "1e999"),
            record("\"us-east-2\"", "\"us-\u{1}east-2\""),
            record("\"kinesis\": {", "\"kinesis\": {\"data\": \"\", "),
            record(r#""data": "eyJhIjoxfQ==", "#, ""),
            format!(r#"{{"Records": [{RECORD}] "#),
            format!(r#"{{"Records": [{RECORD}]}} x"#),
            format!(r#"{{"Records": [{RECORD},]}}"#),
            format!(r#"{{"Records": [{RECORD}], "Records": []}}"#),
        ];
        for text in &invalid {
            let (plain, serde) = both(text);
            assert!(plain.is_none() && serde.is_none(), "{text}");
        }
        // A control character in a record's data: serde_json reads the string as bytes, without
        // a check, and so does the plain reader (the record is then not base64).
        let (plain, _) = both(&record("\"eyJhIjoxfQ==\"", "\"eyJh\u{1}IjoxfQ==\""));
        assert!(plain.unwrap().records[0].undecodable);
        // Text that is not UTF-8, even in a record's data (serde_json reads that as bytes).
        let mut text = record("eyJhIjoxfQ==", "eyJh\u{e9}").into_bytes();
        let at = text.iter().position(|&b| b == 0xc3).unwrap();
        text[at] = 0xff;
        assert!(KinesisEvent::read_plain(&text).is_none());
        assert!(serde_json::from_slice::<KinesisEvent>(&text).is_ok());
    }

    /// A member's value in one of the ways JSON can write it, and whether the plain reader is to
    /// read it.
    fn string_text() -> impl Strategy<Value = (String, bool)> {
        let text = prop_oneof![4 => "[a-zA-Z0-9:/._-]{0,12}", 1 => "[ -~]{0,12}"];
        (text, 0..8u8).prop_map(|(s, form)| {
            let json = serde_json::to_string(&s).unwrap();
            match form {
                // The first character as a \u escape.
                0 if !s.is_empty() => (format!("\"\\u{:04x}{}", s.as_bytes()[0], &json[2..]), false),
                1 => (format!("\"{s}é\""), !s.contains(['"', '\\'])),
                _ => (json.clone(), !json.contains('\\')),
            }
        })
    }

    fn number_text() -> impl Strategy<Value = (String, bool)> {
        prop_oneof![
            6 => (0u64..1 << 40, 0u32..7).prop_map(|(n, point)| {
                let digits = n.to_string();
                let point = (point as usize).min(digits.len() - 1);
                let (whole, fraction) = digits.split_at(digits.len() - point);
                if fraction.is_empty() {
                    (whole.to_string(), true)
                } else {
                    (format!("{whole}.{fraction}"), true)
                }
            }),
            1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| (f.to_string(), false)),
            1 => "-?[0-9]{1,22}(\\.[0-9]{0,24})?([eE][-+]?[0-9]{1,3})?".prop_map(|s| (s, false)),
        ]
    }

    fn other_value() -> impl Strategy<Value = (String, bool)> {
        prop_oneof![
            8 => string_text(),
            1 => Just(("null".to_string(), false)),
            1 => number_text().prop_map(|(n, _)| (n, false)),
            1 => Just((r#"{"a": ["b", 1, {}]}"#.to_string(), false)),
        ]
    }

    prop_compose! {
        /// The text of an object of `members`, in any order, with any whitespace, some of them
        /// perhaps twice.
        fn object(members: Vec<(String, (String, bool))>)
            (order in Just(members.clone()).prop_shuffle(),
             twice in proptest::option::weighted(0.05, 0..members.len().max(1)),
             space in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("\n  "), Just("\t")], 4))
            -> (String, bool) {
            let mut order = order;
            let twice = twice.filter(|&i| i < order.len());
            if let Some(i) = twice {
                let again = order[i].clone();
                order.push(again);
            }
            let plain = twice.is_none() && order.iter().all(|(_, (_, plain))| *plain);
            let body: Vec<String> = order.iter().map(|(k, (v, _))| format!("{}\"{k}\"{}:{}{v}", space[0], space[1], space[2])).collect();
            (format!("{{{}{}}}", body.join(","), space[3]), plain)
        }
    }

    fn record() -> impl Strategy<Value = (String, bool)> {
        (
            string_text(),
            string_text(),
            proptest::option::of(string_text()),
            any::<Vec<u8>>(),
            string_text(),
            number_text(),
            other_value(),
            0..8u8,
        )
            .prop_flat_map(|(id, arn, key, data, seq, arrival, other, leave_out)| {
                let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data);
                let mut kinesis = vec![
                    ("data".to_string(), (format!("\"{data}\""), true)),
                    ("sequenceNumber".to_string(), seq),
                    ("approximateArrivalTimestamp".to_string(), arrival),
                    ("kinesisSchemaVersion".to_string(), other),
                ];
                kinesis.extend(key.map(|k| ("partitionKey".to_string(), k)));
                let mut outer = vec![
                    ("eventID".to_string(), id),
                    ("eventSourceARN".to_string(), arn),
                    ("eventSource".to_string(), ("\"aws:kinesis\"".to_string(), true)),
                ];
                // A required field left out now and then: neither reads the event.
                let complete = leave_out != 0;
                if !complete {
                    kinesis.remove(1);
                }
                (Just(outer.split_off(0)), object(kinesis), Just(complete))
            })
            .prop_flat_map(|(mut outer, kinesis, complete)| {
                outer.push(("kinesis".to_string(), kinesis));
                (object(outer), Just(complete))
            })
            .prop_map(|((text, plain), complete)| (text, plain && complete))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Events written in the many ways JSON allows: whatever the plain reader reads, serde_json
        /// reads the same, and the plain reader reads every one without escapes, `null`s, numbers
        /// other than plain digits, or members twice.
        #[test]
        fn the_plain_reader_reads_as_serde_json_does(records in proptest::collection::vec(record(), 0..4), space in "[ \n]{0,2}") {
            let plain = records.iter().all(|(_, plain)| *plain);
            let texts: Vec<&str> = records.iter().map(|(t, _)| t.as_str()).collect();
            let text = format!("{space}{{{space}\"Records\":{space}[{}]}}{space}", texts.join(","));
            let (read, serde) = both(&text);
            if plain {
                prop_assert!(read.is_some() && serde.is_some(), "{}", text);
            }
        }
    }
}

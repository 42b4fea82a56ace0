//! A JSON tree that borrows its strings and keys from the record's text: what validation reads a
//! record into. It holds what `serde_json::Value` would (the same numbers, the last of duplicate
//! keys), without a map or an allocation per key and per unescaped string, and refuses nesting
//! past a depth while it parses (no scan of the text before).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// Why a text is not a [`Json`] tree.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// Objects and arrays nest deeper than the limit (a top-level object is depth 1).
    TooDeep,
    /// Not JSON: serde_json's message (what and where).
    Syntax(serde_json::Error),
}

/// The message of the depth error inside serde_json's error, to tell it from a syntax error.
const TOO_DEEP: &str = "orderstream: nested too deep";

mod plain;

pub use plain::plain_string;

/// Parses `text` (one JSON value and nothing else but whitespace): without serde where the text
/// is plain (`plain`), by serde_json otherwise, into the same tree.
pub(crate) fn parse(text: &str, max_depth: usize) -> Result<Json<'_>, ParseError> {
    match plain::parse(text, max_depth) {
        Some(json) => Ok(json),
        None => parse_with_serde(text, max_depth),
    }
}

/// An object's members that `slot` places (a key's slot, or `None` for a key not wanted), read
/// from `text` as [`parse`] reads it, each put in its slot of `slots` (the last of a repeated key,
/// as in `serde_json::Value`; `slots` empty at the start). The other members are read, so that
/// the text is checked whole, but not kept: a record's fields are found without a list of its
/// members. `Ok(Err(value))` where the text is JSON but not an object.
pub(crate) fn parse_object<'a>(
    text: &'a str,
    max_depth: usize,
    slot: impl Fn(&str) -> Option<usize>,
    slots: &mut [Option<Json<'a>>],
) -> Result<Result<(), Json<'a>>, ParseError> {
    if plain::object(text, max_depth, &slot, slots).is_some() {
        return Ok(Ok(()));
    }
    slots.fill_with(|| None);
    match parse(text, max_depth)? {
        Json::Object(object) => {
            object.into_slots(slot, slots);
            Ok(Ok(()))
        }
        other => Ok(Err(other)),
    }
}

fn parse_with_serde(text: &str, max_depth: usize) -> Result<Json<'_>, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = JsonVisitor { depth: 0, max_depth }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    value.map_err(|e| {
        if e.is_data() && e.to_string().starts_with(TOO_DEEP) {
            ParseError::TooDeep
        } else {
            ParseError::Syntax(e)
        }
    })
}

#[derive(Debug, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// An object's members in text order. A key given twice means its last value, as in
/// `serde_json::Value`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Object<'a> {
    /// The members that `slot` places, each put in its slot of `slots` (the last of a repeated
    /// key); the others dropped.
    pub(crate) fn into_slots(self, slot: impl Fn(&str) -> Option<usize>, slots: &mut [Option<Json<'a>>]) {
        for (key, value) in self.0 {
            if let Some(i) = slot(&key) {
                slots[i] = Some(value);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'a> Json<'a> {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// A string's text, borrowed from the parsed text unless it had escapes.
    pub(crate) fn text(&self) -> Option<Cow<'a, str>> {
        match self {
            Json::String(Cow::Borrowed(s)) => Some(Cow::Borrowed(s)),
            Json::String(Cow::Owned(s)) => Some(Cow::Owned(s.clone())),
            _ => None,
        }
    }

    /// The JSON type, for messages: "a string", "an object".
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// Reads one value with `depth` containers around it.
#[derive(Clone, Copy)]
struct JsonVisitor {
    depth: usize,
    max_depth: usize,
}

impl JsonVisitor {
    /// The visitor of a container's members, or the depth error.
    fn inner<E: serde::de::Error>(self) -> Result<JsonVisitor, E> {
        if self.depth >= self.max_depth {
            return Err(E::custom(TOO_DEEP));
        }
        Ok(JsonVisitor { depth: self.depth + 1, ..self })
    }
}

impl<'de> DeserializeSeed<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(i.into()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(u.into()))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Json<'de>, E> {
        // The parser gives finite numbers only; anything else is null, as in serde_json::Value.
        Ok(Number::from_f64(f).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let inner = self.inner()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let inner = self.inner()?;
        let mut members = Vec::with_capacity(16);
        while let Some(Key(key)) = map.next_key()? {
            members.push((key, map.next_value_seed(inner)?));
        }
        Ok(Json::Object(Object(members)))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The same tree as serde_json::Value, member by member (the last of duplicate keys).
    fn same(json: &Json, value: &Value) -> bool {
        match (json, value) {
            (Json::Null, Value::Null) => true,
            (Json::Bool(a), Value::Bool(b)) => a == b,
            (Json::Number(a), Value::Number(b)) => a == b && a.to_string() == b.to_string(),
            (Json::String(a), Value::String(b)) => a == b,
            (Json::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
            (Json::Object(a), Value::Object(b)) => {
                b.iter().all(|(k, v)| a.get(k).is_some_and(|x| same(x, v)))
                    && a.0.iter().all(|(k, _)| b.contains_key(k.as_ref()))
            }
            _ => false,
        }
    }

    #[test]
    fn it_reads_what_serde_json_value_reads() {
        for text in [
            r#"{"a": 1, "b": -2, "c": 1.5, "d": -0, "e": 18446744073709551615, "f": 1e300, "g": 5.0}"#,
            r#"{"s": "plain", "t": "esc\"aped \u00e9 \ud83d\udca1", "n": null, "b": [true, false, [], {}]}"#,
            r#"{"k": 1, "k": "two", "k\u0031": 3}"#,
            r#"[1, "x", {"a": {"b": [null]}}]"#,
            r#""just a string""#,
        ] {
            let json = parse(text, 32).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert!(same(&json, &value), "{text}");
        }
    }

    #[test]
    fn strings_and_keys_without_escapes_are_borrowed() {
        let json = parse(r#"{"plain": "value", "esc\n": "a\tb"}"#, 32).unwrap();
        let Json::Object(o) = json else { panic!() };
        assert!(matches!(&o.0[0], (Cow::Borrowed("plain"), Json::String(Cow::Borrowed("value")))));
        assert!(matches!(&o.0[1], (Cow::Owned(k), Json::String(Cow::Owned(v))) if k == "esc\n" && v == "a\tb"));
    }

    #[test]
    fn the_last_of_duplicate_keys_counts() {
        let json = parse(r#"{"a": 1, "a": 2}"#, 32).unwrap();
        let Json::Object(o) = json else { panic!() };
        assert_eq!(o.get("a"), Some(&Json::Number(2.into())));
        assert_eq!(o.get("b"), None);
    }

    /// A slot for each key of up to two bytes, by its length: random keys fill them, and
    /// different keys share one (the last member of them wins).
    fn by_length(key: &str) -> Option<usize> {
        (key.len() < 3).then_some(key.len())
    }

    type Slots<'a> = [Option<Json<'a>>; 3];

    /// `parse_object`'s answer with its slots.
    fn slots_of(text: &str, max_depth: usize) -> Result<Result<Slots<'_>, Json<'_>>, ParseError> {
        let mut slots = Slots::default();
        Ok(parse_object(text, max_depth, by_length, &mut slots)?.map(|()| slots))
    }

    /// What `parse_object` must give: the tree's members in their slots.
    fn slots_of_tree(json: Json<'_>) -> Result<Slots<'_>, Json<'_>> {
        match json {
            Json::Object(object) => {
                let mut slots = Slots::default();
                object.into_slots(by_length, &mut slots);
                Ok(slots)
            }
            other => Err(other),
        }
    }

    #[test]
    fn an_objects_members_are_read_into_their_slots_and_the_rest_is_read_and_dropped() {
        let text = r#"{"ab": 1, "a": "s", "xyz": [1, {"b": 2}], "ab": {"b": null}}"#;
        let Ok(Ok(slots)) = slots_of(text, 32) else { panic!("read") };
        assert_eq!(slots[0], None);
        assert_eq!(slots[1], Some(Json::String(Cow::Borrowed("s"))), "a nested object's key is not a member");
        assert!(matches!(&slots[2], Some(Json::Object(_))), "the last of a repeated key");
        // Read by serde_json (an escape), the same.
        let escaped = r#"{"ab": 1, "a": "s", "xyz": "\n", "ab": {"b": null}}"#;
        let Ok(Ok(by_serde)) = slots_of(escaped, 32) else { panic!("read") };
        assert_eq!(by_serde, slots);
        // An escape after members the plain reader has put in their slots: serde_json reads
        // the whole object again.
        let late = r#"{"a": "first", "xyz": 2, "b": "\u0041"}"#;
        let Ok(Ok(late)) = slots_of(late, 32) else { panic!("read") };
        assert_eq!(late, [None, Some(Json::String(Cow::Owned("A".into()))), None], "`a` and `b` share a slot");
        // Not an object: its tree. Not JSON, or nested too deep (in a member that has no slot
        // too): parse's errors.
        assert!(matches!(slots_of("[1]", 32), Ok(Err(Json::Array(_)))));
        assert!(matches!(slots_of(r#" "s" "#, 32), Ok(Err(Json::String(_)))));
        assert!(matches!(slots_of(r#"{"a": 1"#, 32), Err(ParseError::Syntax(_))));
        assert!(matches!(slots_of(r#"{"a": 1} 2"#, 32), Err(ParseError::Syntax(_))));
        assert!(matches!(slots_of(r#"{"xyz": [[1]]}"#, 2), Err(ParseError::TooDeep)));
        assert!(matches!(slots_of("{}", 0), Err(ParseError::TooDeep)));
    }

    #[test]
    fn nesting_is_limited_while_parsing() {
        let nest = |n: usize, open: &str, close: &str| format!("{}1{}", open.repeat(n), close.repeat(n));
        assert!(parse(&nest(3, "[", "]"), 3).is_ok());
        assert!(matches!(parse(&nest(4, "[", "]"), 3), Err(ParseError::TooDeep)));
        assert!(parse(&nest(3, r#"{"a":"#, "}"), 3).is_ok());
        assert!(matches!(parse(&nest(4, r#"{"a":"#, "}"), 3), Err(ParseError::TooDeep)));
        // Brackets inside strings do not nest; deep and broken is still refused.
        assert!(parse(r#"[["[[[[[[", "]]]]"]]"#, 2).is_ok());
        assert!(matches!(parse("[[[[[[", 3), Err(ParseError::TooDeep)));
        // Past serde_json's own recursion limit (128), still the depth error, without a stack
        // overflow.
        assert!(matches!(parse(&"[".repeat(100_000), 32), Err(ParseError::TooDeep)));
        assert!(matches!(parse("[1] 2", 32), Err(ParseError::Syntax(_))));
        assert!(
            matches!(parse(r#"{"a" 1}"#, 32), Err(ParseError::Syntax(e)) if e.to_string().contains("line 1 column"))
        );
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// The plain reader's tree, compared with serde_json's where it reads one.
    fn plain(text: &str, max_depth: usize) -> Option<Json<'_>> {
        let read = plain::parse(text, max_depth);
        if let Some(json) = &read {
            assert_eq!(Some(json), parse_with_serde(text, max_depth).ok().as_ref(), "{text}");
        }
        read
    }

    #[test]
    fn the_plain_reader_reads_plain_records_and_leaves_the_rest_to_serde_json() {
        let record = r#" {"event_id": "e-1", "n": 18446744073709551615, "m": -9223372036854775808, "z": 0,
            "t": [true, false, null, {}, [], -1], "é": "ü", "a": {"b": {"c": "d"}}, "n": 2} "#;
        let Some(Json::Object(o)) = plain(record, 3) else { panic!("read") };
        assert!(matches!(o.get("n"), Some(Json::Number(n)) if n.as_u64() == Some(2)));
        assert!(matches!(o.get("m"), Some(Json::Number(n)) if n.as_i64() == Some(i64::MIN)));
        assert!(matches!(&o.0[0], (Cow::Borrowed("event_id"), Json::String(Cow::Borrowed("e-1")))));
        for left in [
            r#"{"a": 1.5}"#,
            r#"{"a": 1e3}"#,
            r#"{"a": -0}"#,
            r#"{"a": 18446744073709551616}"#,
            r#"{"a": -9223372036854775809}"#,
            r#"{"a\n": 1}"#,
            r#"{"a": "\u00e9"}"#,
        ] {
            assert!(plain(left, 2).is_none() && parse(left, 2).is_ok(), "{left}");
        }
        // Nesting past the limit: serde_json's reading says so.
        assert!(plain("[[[1]]]", 2).is_none() && matches!(parse("[[[1]]]", 2), Err(ParseError::TooDeep)));
        for bad in ["", "{", r#"{"a" 1}"#, r#"{"a": 01}"#, r#"{"a": -}"#, "[1,]", "[1] 2", "tru", "{\"a\": \"\u{1}\"}"]
        {
            assert!(plain(bad, 32).is_none() && parse(bad, 32).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Any JSON text: whatever the plain reader reads, serde_json reads into the same tree,
        /// and the plain reader reads every text without escapes and fractions.
        #[test]
        fn the_plain_reader_reads_as_serde_json_does(value in any_json(), pretty in proptest::bool::ANY) {
            let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }.unwrap();
            // Plain: no float, and no string or key that JSON writes with an escape.
            fn is_plain(v: &Value) -> bool {
                let unescaped = |s: &str| !serde_json::to_string(s).unwrap().contains('\\');
                match v {
                    Value::Number(n) => !n.is_f64(),
                    Value::String(s) => unescaped(s),
                    Value::Array(a) => a.iter().all(is_plain),
                    Value::Object(o) => o.iter().all(|(k, v)| unescaped(k) && is_plain(v)),
                    _ => true,
                }
            }
            let read = plain(&text, 32);
            if is_plain(&value) {
                proptest::prop_assert!(read.is_some(), "{}", text);
            }
            // The plain reader's slots, where it reads an object: as serde_json's tree has them.
            let mut slots = Slots::default();
            if plain::object(&text, 32, by_length, &mut slots).is_some() {
                let tree = parse_with_serde(&text, 32).unwrap();
                proptest::prop_assert_eq!(Ok(slots), slots_of_tree(tree), "{}", text);
            } else {
                proptest::prop_assert!(!(is_plain(&value) && value.is_object()), "{}", text);
            }
        }

        /// Any JSON text (escapes, numbers of every kind, nesting) reads as serde_json::Value
        /// reads it.
        #[test]
        fn any_text_reads_as_serde_json_reads_it(value in any_json(), pretty in proptest::bool::ANY) {
            let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }.unwrap();
            // (Compared with what serde_json reads back: without its float_roundtrip feature a
            // float may come back a bit away from the one written.)
            let read: Value = serde_json::from_str(&text).unwrap();
            let json = parse(&text, 32).unwrap();
            proptest::prop_assert!(same(&json, &read), "{}", text);
            // An object's members in their slots: as the tree has them.
            let slots = slots_of(&text, 32).unwrap();
            proptest::prop_assert_eq!(slots, slots_of_tree(json), "{}", text);
        }
    }
}

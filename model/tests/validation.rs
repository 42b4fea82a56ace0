//! Validation against contract section 1: every sample of the contract, then edge cases of our own.

use base64::Engine;
use model::{parse_rfc3339, validate, EventType, ReasonCode};

const VALID: &str = include_str!("../../tests/fixtures/contract/valid.ndjson");
const INVALID: &str = include_str!("../../tests/fixtures/contract/invalid.ndjson");

fn at(s: &str) -> i64 {
    parse_rfc3339(s).unwrap().millis
}

/// Arrival of the valid samples (samples README).
fn valid_arrival() -> i64 {
    at("2026-11-23T13:05:00Z")
}

/// Arrival of the invalid samples.
fn invalid_arrival() -> i64 {
    at("2026-11-23T12:30:00Z")
}

fn code_of(json: &str) -> ReasonCode {
    validate(json.as_bytes(), invalid_arrival()).expect_err(json).code
}

/// A valid page view with one field replaced (or removed, with `None`).
fn page_view_with(field: &str, value: Option<serde_json::Value>) -> String {
    let mut v = serde_json::json!({
        "event_id": "e-1", "event_type": "page_view", "event_time": "2026-11-23T12:10:00Z",
        "session_id": "s-1", "customer_id": null, "country": "US", "device": "desktop", "page": "/"
    });
    match value {
        Some(x) => v[field] = x,
        None => {
            v.as_object_mut().unwrap().remove(field);
        }
    }
    v.to_string()
}

fn order_with(items: serde_json::Value, total: serde_json::Value, extra: &[(&str, serde_json::Value)]) -> String {
    let mut v = serde_json::json!({
        "event_id": "o-1", "event_type": "order_placed", "event_time": "2026-11-23T12:10:00Z",
        "session_id": "s-1", "country": "US", "device": "app", "order_id": "ord-1",
        "currency": "USD", "items": items, "total_minor": total
    });
    for (k, x) in extra {
        v[*k] = x.clone();
    }
    v.to_string()
}

#[test]
fn every_valid_sample_is_an_event_with_the_documented_figures() {
    let events: Vec<_> = VALID
        .lines()
        .map(|l| validate(l.as_bytes(), valid_arrival()).unwrap_or_else(|r| panic!("{r} for {l}")))
        .collect();
    assert_eq!(events.len(), 16);
    let count = |t: EventType| events.iter().filter(|e| e.event_type == t).count();
    assert_eq!(
        [
            EventType::PageView,
            EventType::ProductView,
            EventType::AddToCart,
            EventType::RemoveFromCart,
            EventType::CheckoutStarted,
            EventType::OrderPlaced
        ]
        .map(count),
        [3, 4, 3, 1, 2, 3]
    );
    let lines: Vec<_> =
        events.iter().filter_map(|e| e.order.as_ref().map(|o| (e.currency.clone().unwrap(), o))).collect();
    assert_eq!(lines.iter().map(|(_, o)| o.items.len()).sum::<usize>(), 5);
    for (cur, expected) in [("USD", 9997), ("EUR", 16998), ("JPY", 120_000_000)] {
        let sum: i64 =
            lines.iter().filter(|(c, _)| c == cur).flat_map(|(_, o)| &o.items).map(|i| i.line_total_minor).sum();
        assert_eq!(sum, expected, "{cur}");
    }
    let e9 = events.iter().find(|e| e.event_id == "evt-0009").unwrap();
    assert_eq!(model::format_millis(e9.event_time_ms), "2026-11-23T12:02:10.123Z");
    assert_eq!(e9.customer_id, None);
    let e10 = events.iter().find(|e| e.event_id == "evt-0010").unwrap();
    assert_eq!(e10.customer_id, None, "absent customer_id is anonymous");
    let e8 = events.iter().find(|e| e.event_id == "evt-0008").unwrap();
    let o = e8.order.as_ref().unwrap();
    assert_eq!((o.units(), o.discount_minor, o.shipping_minor, o.tax_minor), (3, 500, 0, 812));
    let e13 = events.iter().find(|e| e.event_id == "evt-0013").unwrap();
    assert_eq!(e13.page.as_deref(), Some("/検索?q=靴"));
    assert_eq!(e13.customer_id.as_deref(), Some("c-ü-42"));
}

#[test]
fn every_invalid_sample_gets_its_reason_code() {
    let mut n = 0;
    for line in INVALID.lines() {
        let s: serde_json::Value = serde_json::from_str(line).unwrap();
        let data = match (&s["data"], &s["data_base64"]) {
            (serde_json::Value::String(d), _) => d.as_bytes().to_vec(),
            (_, serde_json::Value::String(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
            _ => panic!("sample without data: {line}"),
        };
        let want: ReasonCode = s["reason_code"].as_str().unwrap().parse().unwrap();
        let got = validate(&data, invalid_arrival()).expect_err(line);
        assert_eq!(got.code, want, "{}: {}", s["note"], got.reason);
        assert!(!got.reason.is_empty());
        n += 1;
    }
    assert_eq!(n, 40);
}

#[test]
fn encoding_errors_name_the_byte_offset() {
    let r = validate(b"{\"event_id\":\"x\xff\"}", 0).unwrap_err();
    assert_eq!(r.code, ReasonCode::InvalidEncoding);
    assert!(r.reason.contains("byte offset 14"), "{}", r.reason);
    // Overlong encoding, lone continuation byte, UTF-16 BOM, truncated sequence.
    for bad in [&b"\xc0\xaf{}"[..], b"\x80", b"\xff\xfe{\x00}\x00", b"{\"a\":\"\xe2\x82\"}"] {
        assert_eq!(validate(bad, 0).unwrap_err().code, ReasonCode::InvalidEncoding);
    }
    // Where the check is done in blocks (SIMD): a bad byte at each position of a long record.
    let record = br#"{"event_id":"e-0123456789abcdef","event_type":"page_view","page":"/products/p-0042"}"#;
    for at in 1..record.len() - 1 {
        let mut bad = record.to_vec();
        bad[at] = 0xff;
        let r = validate(&bad, 0).unwrap_err();
        assert_eq!(r.code, ReasonCode::InvalidEncoding);
        assert!(r.reason.ends_with(&format!("byte offset {at}")), "{at}: {}", r.reason);
    }
    let kpl = validate(&[0xF3, 0x89, 0x9A, 0xC2, 1, 2, 3], 0).unwrap_err();
    assert_eq!(kpl.code, ReasonCode::InvalidEncoding);
    assert!(kpl.reason.contains("KPL"));
}

#[test]
fn json_errors() {
    for bad in [
        "",
        "   \n",
        "{",
        "{}}",
        "null",
        "42",
        "true",
        "[]",
        "{\"a\":1,}",
        "{'a':1}",
        "{\"a\":Infinity}",
        "{\"event_type\":\"page_view\"} {}",
        "{\"a\":\"\\ud800\"}",
    ] {
        assert_eq!(code_of(bad), ReasonCode::InvalidJson, "{bad:?}");
    }
}

#[test]
fn nesting_is_limited_to_32_levels() {
    let nest = |depth: usize| {
        let inner = format!("{}1{}", "[".repeat(depth - 1), "]".repeat(depth - 1));
        page_view_with("extra", None).replacen('{', &format!("{{\"deep\":{inner},"), 1)
    };
    // The object itself is level 1: 32 levels in all are accepted, 33 are not.
    assert!(validate(nest(32).as_bytes(), invalid_arrival()).is_ok());
    assert_eq!(code_of(&nest(33)), ReasonCode::InvalidJson);
    // Brackets inside strings do not count.
    let in_string = page_view_with("page", Some(serde_json::json!("[".repeat(100))));
    assert!(validate(in_string.as_bytes(), invalid_arrival()).is_ok());
    // Very deep input is rejected without exhausting the stack.
    assert_eq!(code_of(&"[".repeat(1_000_000)), ReasonCode::InvalidJson);
}

#[test]
fn event_type_is_checked_before_other_fields() {
    // An unknown type wins over other schema errors; a wrong JSON type is not in the list either.
    let unknown = page_view_with("event_type", Some("wishlist".into())).replace("\"event_id\":\"e-1\",", "");
    assert_eq!(code_of(&unknown), ReasonCode::UnknownEventType);
    for t in [serde_json::json!(42), serde_json::json!(null), serde_json::json!(""), serde_json::json!(" page_view")] {
        assert_eq!(code_of(&page_view_with("event_type", Some(t))), ReasonCode::UnknownEventType);
    }
    assert_eq!(code_of(&page_view_with("event_type", None)), ReasonCode::SchemaViolation);
}

#[test]
fn field_rules_are_schema_violations_that_name_the_field() {
    use serde_json::json;
    let cases = [
        ("event_id", Some(json!(""))),
        ("event_id", Some(json!("é"))),
        ("event_id", Some(json!(7))),
        ("session_id", Some(json!("x".repeat(129)))),
        ("session_id", None),
        ("customer_id", Some(json!("x".repeat(129)))),
        ("customer_id", Some(json!(5))),
        ("country", Some(json!("U"))),
        ("country", Some(json!("USA"))),
        ("country", Some(json!("us"))),
        ("country", Some(json!("ÜS"))),
        ("device", Some(json!(""))),
        ("device", Some(json!("d".repeat(33)))),
        ("page", Some(json!(""))),
        ("page", Some(json!("p".repeat(2049)))),
        ("page", Some(json!(null))),
        ("event_time", Some(json!("2026-02-29T12:00:00Z"))),
        ("event_time", Some(json!(null))),
    ];
    for (field, value) in cases {
        let json = page_view_with(field, value.clone());
        let r = validate(json.as_bytes(), invalid_arrival()).expect_err(&json);
        assert_eq!(r.code, ReasonCode::SchemaViolation, "{field}={value:?}");
        assert!(r.reason.contains(field), "{field}: {}", r.reason);
    }
    // Limits are counted in characters, not bytes.
    let long_unicode = page_view_with("session_id", Some(json!("é".repeat(128))));
    assert!(validate(long_unicode.as_bytes(), invalid_arrival()).is_ok());
    let max_id = page_view_with("event_id", Some(json!("A_-9".repeat(16))));
    assert!(validate(max_id.as_bytes(), invalid_arrival()).is_ok());
    // Around the limits, with characters of one to four bytes (`device` holds 1-32 characters):
    // the byte length alone settles neither 32 characters of 3 bytes nor 33 of 1.
    for (c, bytes) in [("d", 1), ("é", 2), ("€", 3), ("😀", 4)] {
        assert_eq!(c.len(), bytes);
        for (n, ok) in [(0, false), (1, true), (8, true), (9, true), (32, true), (33, false)] {
            let json = page_view_with("device", Some(json!(c.repeat(n))));
            assert_eq!(validate(json.as_bytes(), invalid_arrival()).is_ok(), ok, "{n} x {c:?}");
        }
    }
}

#[test]
fn integers_must_be_plain_integers_that_fit_64_bits() {
    use serde_json::json;
    let product = |price: &str| {
        format!(
            r#"{{"event_id":"p","event_type":"product_view","event_time":"2026-11-23T12:10:00Z","session_id":"s","country":"US","device":"app","product_id":"p","category":"c","currency":"USD","unit_price_minor":{price}}}"#
        )
    };
    for ok in ["0", "9223372036854775807", "-0"] {
        assert!(validate(product(ok).as_bytes(), invalid_arrival()).is_ok(), "{ok}");
    }
    for bad in
        ["1.0", "1e3", "1E0", "9223372036854775808", "18446744073709551616", "-1", "\"5\"", "null", "true", "[5]"]
    {
        let r = validate(product(bad).as_bytes(), invalid_arrival()).unwrap_err();
        assert_eq!(r.code, ReasonCode::SchemaViolation, "{bad}");
        assert!(r.reason.contains("unit_price_minor"), "{}", r.reason);
    }
    let cart = |q: serde_json::Value| {
        page_view_with("x", None).replace("\"page_view\"", "\"add_to_cart\"").replace(
            "\"page\":\"/\"",
            &format!(
                "\"product_id\":\"p\",\"category\":\"c\",\"currency\":\"EUR\",\"unit_price_minor\":5,\"quantity\":{q}"
            ),
        )
    };
    assert!(validate(cart(json!(1)).as_bytes(), invalid_arrival()).is_ok());
    assert!(validate(cart(json!(10000)).as_bytes(), invalid_arrival()).is_ok());
    for q in [json!(0), json!(10001), json!(2.5), json!(-3), json!(4294967297i64)] {
        assert_eq!(code_of(&cart(q)), ReasonCode::SchemaViolation);
    }
}

#[test]
fn order_totals_add_up_exactly_in_64_bits() {
    use serde_json::json;
    let item = |q: i64, p: i64| json!({"product_id": "p", "category": "c", "quantity": q, "unit_price_minor": p});
    // total = items - discount + shipping + tax
    let ok = order_with(
        json!([item(2, 100), item(1, 50)]),
        json!(245),
        &[("discount_minor", json!(10)), ("shipping_minor", json!(5)), ("tax_minor", json!(0))],
    );
    let e = validate(ok.as_bytes(), invalid_arrival()).unwrap();
    let o = e.order.unwrap();
    assert_eq!(o.items.iter().map(|i| i.line_total_minor).collect::<Vec<_>>(), vec![200, 50]);
    assert_eq!(o.units(), 3);
    let off = order_with(json!([item(2, 100)]), json!(201), &[]);
    let r = validate(off.as_bytes(), invalid_arrival()).unwrap_err();
    assert_eq!(r.code, ReasonCode::InconsistentTotal);
    assert!(r.reason.contains("201") && r.reason.contains("200"), "{}", r.reason);
    // The largest total that fits is fine; one more line overflows.
    let max = i64::MAX;
    assert!(validate(order_with(json!([item(1, max)]), json!(max), &[]).as_bytes(), invalid_arrival()).is_ok());
    for bad in [
        order_with(json!([item(1, max), item(1, 1)]), json!(0), &[]),
        order_with(json!([item(2, max / 2 + 1)]), json!(0), &[]),
        order_with(json!([item(1, max)]), json!(0), &[("shipping_minor", json!(1))]),
    ] {
        let r = validate(bad.as_bytes(), invalid_arrival()).unwrap_err();
        assert_eq!(r.code, ReasonCode::InconsistentTotal, "{bad}");
        assert!(r.reason.contains("overflows"));
    }
    // A discount larger than the items: the expected total is negative, never equal.
    let neg = order_with(json!([item(1, 5)]), json!(0), &[("discount_minor", json!(10))]);
    assert_eq!(code_of(&neg), ReasonCode::InconsistentTotal);
    // Intermediate order matters: sum - discount first keeps this in range.
    let edge = order_with(json!([item(1, max)]), json!(max), &[("discount_minor", json!(1)), ("tax_minor", json!(1))]);
    assert!(validate(edge.as_bytes(), invalid_arrival()).is_ok());
}

#[test]
fn order_schema_rules() {
    use serde_json::json;
    let item = json!({"product_id": "p", "category": "c", "quantity": 1, "unit_price_minor": 1});
    let many = serde_json::Value::Array(vec![item.clone(); 500]);
    assert!(validate(order_with(many, json!(500), &[]).as_bytes(), invalid_arrival()).is_ok());
    let too_many = serde_json::Value::Array(vec![item.clone(); 501]);
    for (bad, field) in [
        (order_with(too_many, json!(501), &[]), "items"),
        (order_with(json!([]), json!(0), &[]), "items"),
        (order_with(json!({}), json!(0), &[]), "items"),
        (order_with(json!([1]), json!(0), &[]), "items[0]"),
        (
            order_with(json!([item, {"product_id": "p", "category": "c", "quantity": 1}]), json!(1), &[]),
            "items[1].unit_price_minor",
        ),
        (
            order_with(
                json!([{"product_id": "", "category": "c", "quantity": 1, "unit_price_minor": 1}]),
                json!(1),
                &[],
            ),
            "items[0].product_id",
        ),
        (
            order_with(
                json!([{"product_id": "p", "category": "c", "quantity": 1, "unit_price_minor": 1}]),
                json!(1),
                &[("tax_minor", json!(null))],
            ),
            "tax_minor",
        ),
        (
            order_with(
                json!([{"product_id": "p", "category": "c", "quantity": 1, "unit_price_minor": 1}]),
                json!(1.5),
                &[],
            ),
            "total_minor",
        ),
    ] {
        let r = validate(bad.as_bytes(), invalid_arrival()).unwrap_err();
        assert_eq!(r.code, ReasonCode::SchemaViolation, "{bad}");
        assert!(r.reason.contains(field), "{field}: {}", r.reason);
    }
    // A schema error in a later item wins over an overflow in an earlier one.
    let both = order_with(
        json!([{"product_id": "p", "category": "c", "quantity": 2, "unit_price_minor": i64::MAX}, {"product_id": "p"}]),
        json!(0),
        &[],
    );
    assert_eq!(code_of(&both), ReasonCode::SchemaViolation);
}

#[test]
fn event_time_range_is_exact_to_the_nanosecond() {
    let arrival = at("2026-11-23T12:30:00Z");
    let with_time = |t: &str| page_view_with("event_time", Some(t.into()));
    let check = |t: &str| validate(with_time(t).as_bytes(), arrival).map(|e| e.event_time_ms).map_err(|r| r.code);
    assert!(check("2026-11-23T12:35:00Z").is_ok());
    assert!(check("2026-11-23T12:35:00.000000000Z").is_ok());
    assert_eq!(check("2026-11-23T12:35:00.000000001Z"), Err(ReasonCode::EventTimeOutOfRange));
    assert_eq!(check("2026-11-23T13:35:00.001+01:00"), Err(ReasonCode::EventTimeOutOfRange));
    assert!(check("2000-01-01T00:00:00Z").is_ok());
    assert!(check("2000-01-01T01:00:00+01:00").is_ok());
    assert!(check("2000-01-01T00:59:59.999+01:00").is_err());
    assert_eq!(check("1999-12-31T23:59:59.999Z"), Err(ReasonCode::EventTimeOutOfRange));
    // Old but after 2000 is fine (late data).
    assert!(check("2001-06-01T00:00:00Z").is_ok());
    // A bad total is reported before a bad time.
    let both = order_with(
        serde_json::json!([{"product_id": "p", "category": "c", "quantity": 1, "unit_price_minor": 1}]),
        serde_json::json!(2),
        &[],
    )
    .replace("2026-11-23T12:10:00Z", "1999-01-01T00:00:00Z");
    assert_eq!(code_of(&both), ReasonCode::InconsistentTotal);
}

#[test]
fn unknown_and_foreign_fields_are_ignored() {
    use serde_json::json;
    // A page view carrying cart fields of the wrong type is still a page view.
    let mut v: serde_json::Value = serde_json::from_str(&page_view_with("quantity", Some(json!("lots")))).unwrap();
    v["items"] = json!("nope");
    v["nested"] = json!({"a": [1, 2, {"b": null}]});
    let text = v.to_string();
    let e = validate(text.as_bytes(), invalid_arrival()).unwrap();
    assert_eq!((e.quantity, e.order, e.product_id), (None, None, None));
    // Field order is free; whitespace around the object is fine.
    let reordered = r#"  {"page":"/","device":"d","country":"FR","session_id":"s","event_time":"2026-11-23T12:00:00Z","event_type":"page_view","event_id":"z"}  "#;
    assert!(validate(reordered.as_bytes(), invalid_arrival()).is_ok());
}

#[test]
fn an_events_strings_are_borrowed_from_the_record_unless_escaped() {
    use std::borrow::Cow;
    let borrowed = |s: &Cow<str>| matches!(s, Cow::Borrowed(_));
    let text = order_with(
        serde_json::json!([{"product_id": "p\u{e9}-1", "category": "shoes", "quantity": 2, "unit_price_minor": 5}]),
        serde_json::json!(10),
        &[("customer_id", serde_json::json!("c-1"))],
    );
    let e = validate(text.as_bytes(), invalid_arrival()).unwrap();
    let order = e.order.as_ref().unwrap();
    let item = &order.items[0];
    for s in [&e.event_id, &e.session_id, &e.country, &e.device, &order.order_id, &item.product_id, &item.category] {
        assert!(borrowed(s), "{s:?} was copied");
    }
    assert!([&e.customer_id, &e.currency].iter().all(|s| s.as_ref().is_some_and(borrowed)));
    assert_eq!(item.product_id, "p\u{e9}-1");

    // An escaped string is unescaped into a string of its own, with the same text.
    let escaped = page_view_with("page", Some(serde_json::json!("/c/\"shoes\"")));
    let e = validate(escaped.as_bytes(), invalid_arrival()).unwrap();
    assert!(matches!(&e.page, Some(Cow::Owned(p)) if p == "/c/\"shoes\""), "{:?}", e.page);
    assert!(borrowed(&e.event_id));
}

/// A key given twice means its last value (as `serde_json::Value` reads it), at the top level and
/// in an item, whatever the earlier value was; a key that is no field is not looked at.
#[test]
fn the_last_of_a_repeated_key_is_the_field() {
    let order = r#"{"event_id": "o-1", "event_type": "page_view", "event_type": "order_placed",
        "event_time": "2026-11-23T12:10:00Z", "session_id": "s-1", "country": 7, "country": "DE",
        "device": "app", "order_id": "ord-1", "currency": "EUR", "total_minor": 500,
        "items": [{"product_id": "p-1", "category": "c", "quantity": "two", "quantity": 2,
        "unit_price_minor": 250, "colour": {"deep": [1]}}], "event_Id": "x", "items ": null}"#;
    let event = validate(order.as_bytes(), invalid_arrival()).unwrap();
    assert_eq!((event.event_type, &*event.country), (EventType::OrderPlaced, "DE"));
    assert_eq!(event.order.unwrap().items[0].quantity, 2);

    let bad = order.replace(r#""quantity": 2,"#, r#""quantity": 2, "quantity": 0,"#);
    let r = validate(bad.as_bytes(), invalid_arrival()).unwrap_err();
    assert_eq!(r.code, ReasonCode::SchemaViolation);
    assert!(r.reason.contains("`items[0].quantity` must be in 1..=10000, got 0"), "{}", r.reason);
    let bad = order.replace(r#""country": "DE""#, r#""country": "DE", "country": null"#);
    let r = validate(bad.as_bytes(), invalid_arrival()).unwrap_err();
    assert!(r.reason.contains("`country` must be a string, got null"), "{}", r.reason);
}

proptest::proptest! {
    /// Text of any bytes, mostly ASCII with multi-byte and bad sequences among it: refused as
    /// `invalid_encoding` exactly when the standard library finds it not UTF-8, at the offset it
    /// gives.
    #[test]
    fn utf8_is_checked_as_the_standard_library_checks_it(
        bytes in proptest::collection::vec(proptest::prop_oneof![12 => 0x20u8..0x7f, 1 => 0x80u8..=0xff], 0..300)
    ) {
        let got = validate(&bytes, 0);
        match std::str::from_utf8(&bytes) {
            Ok(_) => proptest::prop_assert!(got.is_ok() || got.unwrap_err().code != ReasonCode::InvalidEncoding),
            Err(e) => {
                let r = got.unwrap_err();
                proptest::prop_assert_eq!(r.code, ReasonCode::InvalidEncoding);
                proptest::prop_assert!(r.reason.ends_with(&format!("byte offset {}", e.valid_up_to())), "{}", r.reason);
            }
        }
    }
}

//! A fast writer of contract events as JSON (no intermediate tree, no float formatting), and
//! RFC 3339 millisecond timestamps without a date library on the hot path.

use model::Event;

/// How an anonymous visitor's `customer_id` is written: both forms are in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anonymous {
    Absent,
    Null,
}

/// Deliberate deviations, for fault injection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides<'a> {
    pub event_type: Option<&'a str>,
    pub event_time: Option<&'a str>,
    pub country: Option<&'a str>,
    pub total_delta: i64,
}

pub fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.extend_from_slice(s.as_bytes());
    } else {
        for c in s.chars() {
            match c {
                '"' => buf.extend_from_slice(b"\\\""),
                '\\' => buf.extend_from_slice(b"\\\\"),
                c if (c as u32) < 0x20 => buf.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
                c => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
    }
    buf.push(b'"');
}

fn push_int(buf: &mut Vec<u8>, v: i64) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(v).as_bytes());
}

fn key(buf: &mut Vec<u8>, k: &str) {
    buf.push(b',');
    buf.push(b'"');
    buf.extend_from_slice(k.as_bytes());
    buf.extend_from_slice(b"\":");
}

fn field_str(buf: &mut Vec<u8>, k: &str, v: &str) {
    key(buf, k);
    push_str(buf, v);
}

fn field_int(buf: &mut Vec<u8>, k: &str, v: i64) {
    key(buf, k);
    push_int(buf, v);
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-11-23T12:02:10.123Z`
pub fn push_timestamp(buf: &mut Vec<u8>, ms: i64) {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let digits = |buf: &mut Vec<u8>, v: i64, n: u32| {
        for i in (0..n).rev() {
            buf.push(b'0' + (v / 10i64.pow(i) % 10) as u8);
        }
    };
    digits(buf, y, 4);
    buf.push(b'-');
    digits(buf, i64::from(m), 2);
    buf.push(b'-');
    digits(buf, i64::from(d), 2);
    buf.push(b'T');
    digits(buf, in_day / 3_600_000, 2);
    buf.push(b':');
    digits(buf, in_day / 60_000 % 60, 2);
    buf.push(b':');
    digits(buf, in_day / 1000 % 60, 2);
    buf.push(b'.');
    digits(buf, in_day % 1000, 3);
    buf.push(b'Z');
}

/// Appends the event as one JSON object (no newline).
pub fn write_event(buf: &mut Vec<u8>, e: &Event, anonymous: Anonymous, o: &Overrides) {
    buf.extend_from_slice(b"{\"event_id\":");
    push_str(buf, &e.event_id);
    field_str(buf, "event_type", o.event_type.unwrap_or(e.event_type.as_str()));
    key(buf, "event_time");
    match o.event_time {
        Some(t) => push_str(buf, t),
        None => {
            buf.push(b'"');
            push_timestamp(buf, e.event_time_ms);
            buf.push(b'"');
        }
    }
    field_str(buf, "session_id", &e.session_id);
    match (&e.customer_id, anonymous) {
        (Some(c), _) => field_str(buf, "customer_id", c),
        (None, Anonymous::Null) => {
            key(buf, "customer_id");
            buf.extend_from_slice(b"null");
        }
        (None, Anonymous::Absent) => {}
    }
    field_str(buf, "country", o.country.unwrap_or(&e.country));
    field_str(buf, "device", &e.device);
    if let Some(p) = &e.page {
        field_str(buf, "page", p);
    }
    if let Some(p) = &e.product_id {
        field_str(buf, "product_id", p);
    }
    if let Some(c) = &e.category {
        field_str(buf, "category", c);
    }
    if let Some(p) = e.unit_price_minor {
        field_int(buf, "unit_price_minor", p);
    }
    if let Some(q) = e.quantity {
        field_int(buf, "quantity", i64::from(q));
    }
    if let Some(v) = e.cart_value_minor {
        field_int(buf, "cart_value_minor", v);
    }
    if let Some(c) = &e.currency {
        field_str(buf, "currency", c);
    }
    if let Some(order) = &e.order {
        field_str(buf, "order_id", &order.order_id);
        key(buf, "items");
        buf.push(b'[');
        for (i, item) in order.items.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(b"{\"product_id\":");
            push_str(buf, &item.product_id);
            field_str(buf, "category", &item.category);
            field_int(buf, "quantity", i64::from(item.quantity));
            field_int(buf, "unit_price_minor", item.unit_price_minor);
            buf.push(b'}');
        }
        buf.push(b']');
        if order.discount_minor > 0 {
            field_int(buf, "discount_minor", order.discount_minor);
        }
        if order.shipping_minor > 0 {
            field_int(buf, "shipping_minor", order.shipping_minor);
        }
        if order.tax_minor > 0 {
            field_int(buf, "tax_minor", order.tax_minor);
        }
        field_int(buf, "total_minor", order.total_minor + o.total_delta);
    }
    buf.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_the_reference_formatter() {
        for ms in [0i64, 951_782_400_000, 1_795_435_200_123, 1_830_297_599_999, 4_102_444_800_000, 253_402_300_799_999]
        {
            let mut buf = Vec::new();
            push_timestamp(&mut buf, ms);
            assert_eq!(String::from_utf8(buf).unwrap(), model::format_millis(ms));
        }
    }

    #[test]
    fn strings_are_escaped() {
        let mut buf = Vec::new();
        push_str(&mut buf, "a\"b\\c\u{1}é");
        assert_eq!(serde_json::from_slice::<String>(&buf).unwrap(), "a\"b\\c\u{1}é");
    }
}

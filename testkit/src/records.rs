//! Storefront records of about 350 bytes and Lambda Kinesis events of them, shared by the
//! Lambda runtime tests and the handler benchmark.

use base64::Engine;

/// A storefront record of about 350 bytes.
pub fn record_data(n: usize) -> String {
    let (m, s) = (n / 100 % 60, n % 60);
    match n % 4 {
        0 => format!(
            r#"{{"event_id":"e-{n}","event_type":"page_view","event_time":"2026-11-23T12:{m:02}:{s:02}.{:03}Z","session_id":"session-{}","customer_id":"customer-{}","country":"US","device":"mobile","page":"/category/shoes?sort=price&page={}&utm_source=newsletter&utm_campaign=black-friday-2026","referrer":"https://www.example.com/"}}"#,
            n % 1000,
            n / 7,
            n / 11,
            n % 40
        ),
        1 => format!(
            r#"{{"event_id":"e-{n}","event_type":"add_to_cart","event_time":"2026-11-23T12:{m:02}:{s:02}Z","session_id":"session-{}","customer_id":null,"country":"DE","device":"desktop","product_id":"product-{}","category":"category-{}","unit_price_minor":{},"currency":"EUR","quantity":{},"experiment":{{"id":"checkout-v2","arm":"B"}}}}"#,
            n / 7,
            n % 997,
            n % 13,
            100 + n % 9000,
            1 + n % 3
        ),
        2 => format!(
            r#"{{"event_id":"e-{n}","event_type":"order_placed","event_time":"2026-11-23T12:{m:02}:{s:02}Z","session_id":"session-{}","customer_id":"customer-{}","country":"JP","device":"app","order_id":"order-{n}","currency":"JPY","items":[{{"product_id":"product-{}","category":"category-{}","quantity":2,"unit_price_minor":1500}},{{"product_id":"product-{}","category":"category-{}","quantity":1,"unit_price_minor":990}}],"total_minor":3990}}"#,
            n / 7,
            n / 11,
            n % 997,
            n % 13,
            (n + 1) % 997,
            (n + 1) % 13
        ),
        _ => format!(
            r#"{{"event_id":"e-{n}","event_type":"checkout_started","event_time":"2026-11-23T12:{m:02}:{s:02}Z","session_id":"session-{}","customer_id":"customer-{}","country":"FR","device":"tablet","cart_value_minor":{},"currency":"EUR","coupon":"WINTER-2026","shipping_method":"express","gift_wrap":false}}"#,
            n / 7,
            n / 11,
            1000 + n % 50000
        ),
    }
}

/// A Kinesis event of `count` records (a multiple of 50) of shard 4; every 50th record is invalid
/// JSON.
pub fn kinesis_event(count: usize) -> String {
    kinesis_event_of("shardId-000000000004", count)
}

/// [`kinesis_event`] of another shard.
pub fn kinesis_event_of(shard: &str, count: usize) -> String {
    event(&kinesis_records(shard, 0..count))
}

/// The sequence number of record `n` (56 digits, as Kinesis's).
pub fn sequence_number(n: usize) -> String {
    format!("4954511524349098501828006771497314458218006259324{n:07}")
}

/// Whether record `n` is valid (every 50th is not: invalid JSON).
pub fn is_valid(n: usize) -> bool {
    n % 50 != 49
}

/// Records `range` of a shard of the stream `storefront`, as a Lambda event lists them; record
/// `n` is [`record_data`]`(n)` (or invalid JSON), arriving at 2026-11-23T13:05:00.500Z plus `n`
/// milliseconds.
pub fn kinesis_records(shard: &str, range: std::ops::Range<usize>) -> Vec<serde_json::Value> {
    let b64 = base64::engine::general_purpose::STANDARD;
    range
        .map(|n| {
            let data = if is_valid(n) { record_data(n) } else { format!("{{\"broken\": {n}") };
            let seq = sequence_number(n);
            serde_json::json!({
                "eventID": format!("{shard}:{seq}"),
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/storefront",
                "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1", "invokeIdentityArn": "arn:aws:iam::123456789012:role/processor",
                "kinesis": {
                    "kinesisSchemaVersion": "1.0", "partitionKey": format!("session-{}", n / 7), "sequenceNumber": seq,
                    "data": b64.encode(data), "approximateArrivalTimestamp": 1795439100.5 + n as f64 / 1000.0
                }
            })
        })
        .collect()
}

/// A Lambda Kinesis event of `records`.
pub fn event(records: &[serde_json::Value]) -> String {
    serde_json::json!({ "Records": records }).to_string()
}

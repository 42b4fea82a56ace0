//! The record decoder: a record's `data` (base64 text as Lambda sends it), its arrival and its
//! identifiers, decoded and validated as the handler does. Undecodable base64 keeps its text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use processor::kinesis::KinesisEvent;

fuzz_target!(|data: &[u8]| {
    let Some((&arrival, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let event = serde_json::json!({"Records": [{
        "eventID": "shardId-000000000000:1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
        "kinesis": {"data": text, "sequenceNumber": "1", "partitionKey": "k",
                    "approximateArrivalTimestamp": 1_795_439_100.0 + f64::from(arrival) * 97.3}
    }]});
    let event: KinesisEvent = serde_json::from_value(event).expect("a well-formed event");
    for input in event.records {
        if input.undecodable {
            assert_eq!(input.data, text.as_bytes());
        } else {
            let _ = model::validate(&input.data, input.meta.arrival_ms);
        }
    }
});

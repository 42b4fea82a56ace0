//! The Lambda Kinesis event parser: any bytes as the event Lambda sends, then every record
//! turned into the processor's input. No panic, whatever the JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use processor::kinesis::KinesisEvent;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<KinesisEvent>(data) {
        for input in event.records {
            assert!(!input.meta.shard_id.is_empty() && !input.stream.is_empty());
        }
    }
});

//! The Lambda Kinesis event parser: any bytes as the event Lambda sends, then every record
//! turned into the processor's input. No panic, whatever the JSON; and the processor's own reader
//! of the envelope reads nothing that serde_json does not read the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use processor::kinesis::KinesisEvent;

fuzz_target!(|data: &[u8]| {
    let read = serde_json::from_slice::<KinesisEvent>(data);
    if let Some(plain) = KinesisEvent::read_plain(data) {
        assert_eq!(read.as_ref().ok(), Some(&plain), "serde_json reads this text otherwise");
    }
    if let Ok(event) = read {
        for input in event.records {
            assert!(!input.meta.shard_id.is_empty() && !input.stream.is_empty());
        }
    }
});

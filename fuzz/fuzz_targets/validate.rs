//! The validator: any bytes as a record's data, at any arrival. It answers an event or one
//! reason code, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, record)) = data.split_first_chunk::<8>() else { return };
    // Arrivals around the contract's ranges: 2000-01-01 to 2030.
    let arrival = 946_684_800_000 + (i64::from_le_bytes(*head).rem_euclid(946_684_800_000));
    match model::validate(record, arrival) {
        Ok(event) => assert!(!event.event_id.is_empty() && event.event_id.len() <= 64),
        Err(rejection) => assert!(!rejection.reason.is_empty()),
    }
});

//! The KPL de-aggregator: any bytes as an aggregate's protobuf, sealed with the magic and a
//! correct MD5 so that the protobuf reader itself is exercised (and as they come, unsealed).
//! User records are slices of the input, at most one per two bytes; each is validated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};

fuzz_target!(|body: &[u8]| {
    let mut sealed = model::KPL_MAGIC.to_vec();
    sealed.extend_from_slice(body);
    sealed.extend_from_slice(&Md5::digest(body));
    for data in [&sealed[..], body] {
        if let Ok(users) = model::kpl::deaggregate(data) {
            assert!(!users.is_empty() && users.len() <= data.len() / 2);
            for u in users {
                assert!(u.data.len() <= data.len());
                let _ = model::validate(u.data, 1_795_439_100_000);
            }
        }
    }
});

//! The ledger's decoders, which read what a bucket holds (a damaged or foreign object must be an
//! error, not a panic or an allocation sized by its bytes): commit records, checkpoints, window
//! deltas and windows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use processor::dedup::{DedupWindow, WindowDelta};
use processor::ledger::record::parse_checkpoint;
use processor::ledger::CommitRecord;

fuzz_target!(|data: &[u8]| {
    let _ = CommitRecord::parse("commits/1.json", data);
    let _ = parse_checkpoint("checkpoints/1.bin", data);
    if let Ok(delta) = WindowDelta::from_bytes(data) {
        assert_eq!(WindowDelta::from_bytes(&delta.to_bytes()).as_ref(), Ok(&delta));
        let mut w = DedupWindow::new();
        w.apply(&delta);
    }
    if let Ok(w) = DedupWindow::from_bytes(data) {
        assert_eq!(DedupWindow::from_bytes(&w.to_bytes()).as_ref(), Ok(&w));
    }
});

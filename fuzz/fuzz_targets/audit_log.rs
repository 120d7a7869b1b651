//! The audit-log reader (`verify_log`, used by `captix audit verify|show`). Any bytes: no
//! panic; an accepted log has one record per line, numbered from 1.
#![no_main]

use captix::audit::verify_log;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match verify_log(data) {
        Ok(records) => {
            let lines = data.split(|b| *b == b'\n').count() - usize::from(data.ends_with(b"\n"));
            let lines = if data.is_empty() { 0 } else { lines };
            assert_eq!(records.len(), lines);
            for (i, r) in records.iter().enumerate() {
                assert_eq!(r.seq, i as u64 + 1);
            }
        }
        Err(broken) => {
            assert!(broken.line >= 1);
            assert!(!broken.reason.is_empty());
        }
    }
});

//! The response framer fed arbitrary bytes in one piece, then end of file:
//! it must never panic, and must report at most one response per byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::ResponseFramer;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, wire)) = data.split_first() else { return };
    let mut f = ResponseFramer::new(flags & 1 == 1);
    let mut n = 0usize;
    if f.feed_all(wire, |_| n += 1).is_ok() {
        let _ = f.finish();
    }
    assert!(n <= wire.len() / 8 + 1, "{n} responses from {} bytes", wire.len());
});

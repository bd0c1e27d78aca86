//! Differential: the same bytes fed whole and in random pieces must give
//! the same responses and the same verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::{Response, ResponseFramer};

fn frame(head: bool, pieces: &[&[u8]]) -> (Vec<Response>, bool) {
    let mut f = ResponseFramer::new(head);
    let mut got = Vec::new();
    for p in pieces {
        if f.feed_all(p, |r| got.push(r)).is_err() {
            return (got, true);
        }
    }
    (got, false)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (head, step, wire) = (data[0] & 1 == 1, (data[1] as usize % 7) + 1, &data[2..]);
    let pieces: Vec<&[u8]> = wire.chunks(step).collect();
    let (a, a_err) = frame(head, &[wire]);
    let (b, b_err) = frame(head, &pieces);
    assert_eq!(a_err, b_err, "verdicts differ");
    if !a_err {
        assert_eq!(a, b, "responses differ");
    }
});

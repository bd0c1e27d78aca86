//! The HTTP/2 frame reader fed arbitrary bytes whole and at arbitrary
//! splits: never a panic, and the same frames and DATA bytes either way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::h2::frame::{Event, FrameReader};

fn read(wire: &[u8], cuts: &[usize]) -> (Vec<String>, Option<String>) {
    let mut r = FrameReader::new(1 << 14);
    let mut out = Vec::new();
    let mut data = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&wire.len())) {
        let mut piece = &wire[start..end.max(start)];
        start = end.max(start);
        while !piece.is_empty() {
            match r.feed(piece) {
                Err(e) => return (out, Some(e.to_string())),
                Ok((used, ev)) => {
                    piece = &piece[used..];
                    match ev {
                        Some(Event::Frame(f)) => out.push(format!("{f:?}")),
                        Some(Event::Data { stream, data: d, flow, last, end_stream }) => {
                            data.extend_from_slice(d);
                            assert!(flow as usize >= d.len());
                            if last {
                                out.push(format!("data {stream} {end_stream} {data:?}"));
                                data.clear();
                            }
                        }
                        None => {}
                    }
                }
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, wire)) = data.split_first() else { return };
    let step = usize::from(step).max(1);
    let cuts: Vec<usize> = (step..wire.len()).step_by(step).collect();
    assert_eq!(read(wire, &[]), read(wire, &cuts));
});

//! Table tests for the response framer: every case is fed whole, split in two
//! at every byte offset, and byte by byte; all must agree.

use proptest::prelude::*;
use proto::{FrameError, Response, ResponseFramer};

/// What a case must produce: the responses, then what end of file says.
struct Case {
    name: &'static str,
    head_request: bool,
    wire: Vec<u8>,
    /// Statuses and keep-alive flags of the responses completed by the bytes.
    expect: Vec<(u16, bool)>,
    /// Result of `finish()` after all bytes: Ok(None) idle, Ok(Some) body
    /// ended by close, Err truncated.
    at_eof: Result<Option<u16>, FrameError>,
    /// An error expected while feeding, instead of the above.
    error: Option<FrameError>,
}

fn ok(name: &'static str, wire: &[u8], expect: &[(u16, bool)]) -> Case {
    Case {
        name,
        head_request: false,
        wire: wire.to_vec(),
        expect: expect.to_vec(),
        at_eof: Ok(None),
        error: None,
    }
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        ok("content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", &[(200, true)]),
        ok("zero length", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &[(200, true)]),
        ok(
            "chunked with extensions and trailers",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: yes\r\n\r\n",
            &[(200, true)],
        ),
        ok(
            "chunked, uppercase hex, no trailers",
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
            &[(201, true)],
        ),
        ok("204 ignores content-length", b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", &[(204, true)]),
        ok("304 has no body", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", &[(304, true)]),
        ok(
            "1xx interim responses are skipped",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
            &[(200, true)],
        ),
        ok("connection close", b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno", &[(500, false)]),
        ok("http/1.0 closes by default", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", &[(200, false)]),
        ok(
            "http/1.0 keep-alive",
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
            &[(200, true)],
        ),
        ok(
            "pipelined mix",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            &[(200, true), (404, true), (204, true), (200, true)],
        ),
        ok(
            "lenient bare LF in chunk framing",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\n0\n\n",
            &[(200, true)],
        ),
        Case {
            head_request: true,
            ..ok("HEAD has no body", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", &[(200, true), (200, true)])
        },
        Case {
            at_eof: Ok(Some(200)),
            ..ok("body until close", b"HTTP/1.1 200 OK\r\n\r\nsome bytes then EOF", &[])
        },
        Case {
            at_eof: Err(FrameError::Truncated),
            ..ok("content-length longer than sent", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", &[])
        },
        Case {
            at_eof: Err(FrameError::Truncated),
            ..ok("truncated chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", &[])
        },
        Case {
            at_eof: Err(FrameError::Truncated),
            ..ok("truncated head", b"HTTP/1.1 200 OK\r\nContent-Le", &[])
        },
        Case {
            error: Some(FrameError::InvalidHead("not HTTP/1.x")),
            ..ok("garbage", b"GARBAGE GARBAGE GARBAGE\r\n\r\n", &[])
        },
        Case {
            error: Some(FrameError::InvalidContentLength),
            ..ok("bad content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n", &[])
        },
        Case {
            error: Some(FrameError::InvalidContentLength),
            ..ok("conflicting content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", &[])
        },
        Case {
            error: Some(FrameError::InvalidChunk),
            ..ok("bad chunk size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &[])
        },
        Case {
            error: Some(FrameError::InvalidChunk),
            ..ok("missing CRLF after chunk data", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX", &[])
        },
    ];
    // More than 100 headers.
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..101 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    v.push(Case {
        error: Some(FrameError::TooManyHeaders),
        ..ok("too many headers", &many, &[])
    });
    // A head over 64 KiB.
    let mut big = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 70 * 1024));
    v.push(Case {
        error: Some(FrameError::HeadTooLarge),
        ..ok("head too large", &big, &[])
    });
    // A chunk size line that never ends.
    let mut endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    endless.extend(std::iter::repeat_n(b'e', 10 * 1024));
    v.push(Case {
        error: Some(FrameError::ChunkLineTooLong),
        ..ok("endless chunk line", &endless, &[])
    });
    v
}

/// The responses (or the first error), then what end of file said.
type Outcome = (
    Result<Vec<Response>, FrameError>,
    Option<Result<Option<u16>, FrameError>>,
);

/// Feeds `pieces` in order.
fn run(head_request: bool, pieces: &[&[u8]]) -> Outcome {
    let mut f = ResponseFramer::new(head_request);
    let mut got = Vec::new();
    for p in pieces {
        if let Err(e) = f.feed_all(p, |r| got.push(r)) {
            return (Err(e), None);
        }
    }
    let eof = f.finish().map(|r| r.map(|r| r.status));
    (Ok(got), Some(eof))
}

fn check(case: &Case, pieces: &[&[u8]], how: &str) {
    let (got, eof) = run(case.head_request, pieces);
    match (&case.error, got) {
        (Some(want), Err(e)) => assert_eq!(&e, want, "{} ({how})", case.name),
        (Some(want), Ok(r)) => panic!("{} ({how}): wanted error {want:?}, got {r:?}", case.name),
        (None, Err(e)) => panic!("{} ({how}): unexpected error {e:?}", case.name),
        (None, Ok(r)) => {
            let r: Vec<(u16, bool)> = r.iter().map(|r| (r.status, r.keep_alive)).collect();
            assert_eq!(r, case.expect, "{} ({how})", case.name);
            assert_eq!(eof.unwrap(), case.at_eof, "{} at eof ({how})", case.name);
        }
    }
}

#[test]
fn every_case_at_every_split() {
    for case in cases() {
        check(&case, &[&case.wire], "whole");
        let step = if case.wire.len() > 4096 { 997 } else { 1 };
        for at in (0..=case.wire.len()).step_by(step) {
            let (a, b) = case.wire.split_at(at);
            check(&case, &[a, b], &format!("split at {at}"));
        }
        if case.wire.len() <= 4096 {
            let bytes: Vec<&[u8]> = case.wire.chunks(1).collect();
            check(&case, &bytes, "byte by byte");
        }
    }
}

#[test]
fn framer_is_reusable_after_reset() {
    let mut f = ResponseFramer::new(false);
    f.feed_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", |_| {})
        .unwrap();
    assert!(!f.is_idle());
    f.reset();
    assert!(f.is_idle());
    let mut n = 0;
    f.feed_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", |_| n += 1)
        .unwrap();
    assert_eq!(n, 1);
}

/// A valid stream of several responses in random shapes.
fn response_stream() -> impl Strategy<Value = (Vec<u8>, Vec<u16>)> {
    let one = (200u16..600, 0usize..300, any::<bool>(), 1usize..40).prop_map(
        |(status, len, chunked, chunk)| {
            let status = if status == 204 || status == 304 {
                200
            } else {
                status
            };
            let body: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut w = format!("HTTP/1.1 {status} X\r\nServer: t\r\n").into_bytes();
            if chunked {
                w.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for c in body.chunks(chunk) {
                    w.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                    w.extend_from_slice(c);
                    w.extend_from_slice(b"\r\n");
                }
                w.extend_from_slice(b"0\r\n\r\n");
            } else {
                w.extend_from_slice(format!("Content-Length: {len}\r\n\r\n").as_bytes());
                w.extend_from_slice(&body);
            }
            (w, status)
        },
    );
    prop::collection::vec(one, 1..8).prop_map(|v| {
        let mut wire = Vec::new();
        let mut statuses = Vec::new();
        for (w, s) in v {
            wire.extend(w);
            statuses.push(s);
        }
        (wire, statuses)
    })
}

proptest! {
    #[test]
    fn random_splits_frame_identically((wire, statuses) in response_stream(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut last = 0;
        for p in points {
            pieces.push(&wire[last..p]);
            last = p;
        }
        pieces.push(&wire[last..]);
        let (got, eof) = run(false, &pieces);
        let got: Vec<u16> = got.unwrap().iter().map(|r| r.status).collect();
        prop_assert_eq!(got, statuses);
        prop_assert_eq!(eof.unwrap(), Ok(None));
    }

    /// A reader that discards sized bodies unread (as urk's `MSG_TRUNC`
    /// receives do), in steps of any size, sees the same responses, and
    /// every byte of the stream is accounted for exactly once.
    #[test]
    fn skipping_sized_bodies_frames_identically((wire, statuses) in response_stream(), steps in prop::collection::vec(1u64..400, 1..16), peek in 1usize..64) {
        let mut f = ResponseFramer::new(false);
        let mut got = Vec::new();
        let (mut at, mut step) = (0usize, 0usize);
        while at < wire.len() {
            let rem = f.sized_remaining();
            if rem > 0 {
                let n = rem.min(steps[step % steps.len()]);
                step += 1;
                if let Some(r) = f.skip(n) {
                    got.push(r);
                }
                at += n as usize;
            } else {
                // Read a little at a time, as a small head receive would.
                let end = (at + peek).min(wire.len());
                f.feed_all(&wire[at..end], |r| got.push(r)).unwrap();
                at = end;
            }
        }
        prop_assert_eq!(at, wire.len());
        let codes: Vec<u16> = got.iter().map(|r| r.status).collect();
        prop_assert_eq!(codes, statuses);
        prop_assert_eq!(f.finish(), Ok(None));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048), head in any::<bool>(), split in any::<prop::sample::Index>()) {
        let at = split.index(data.len() + 1);
        let _ = run(head, &[&data[..at], &data[at..]]);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_head_never_panic(tail in prop::collection::vec(any::<u8>(), 0..1024)) {
        let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        wire.extend(tail);
        let _ = run(false, &[&wire]);
    }
}

proptest! {
    /// Differential: any bytes, fed whole or in two pieces, give the same
    /// responses and the same verdict (error or not).
    #[test]
    fn any_split_gives_the_same_verdict(data in prop::collection::vec(any::<u8>(), 0..1024), head in any::<bool>(), split in any::<prop::sample::Index>()) {
        let at = split.index(data.len() + 1);
        let (whole, _) = run(head, &[&data]);
        let (parts, _) = run(head, &[&data[..at], &data[at..]]);
        prop_assert_eq!(whole.is_err(), parts.is_err());
        if let (Ok(a), Ok(b)) = (whole, parts) {
            prop_assert_eq!(a, b);
        }
    }
}

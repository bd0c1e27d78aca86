//! HTTP/2 frames: every frame urk writes reads back the same, however the
//! bytes are split; what breaks the framing rules is a named error; and a
//! real peer, nghttp2's server session, takes our preface, SETTINGS,
//! HEADERS and PING and answers in frames our reader and HPACK decoder
//! read.

mod support;

use proto::h2::frame::{self, flags, kind, setting, Event, Frame, FrameError, FrameReader, Head};
use proto::h2::hpack::{encode_field, Decoder};
use support::{Behaviour, Server};

/// An owned copy of an event, to compare across splits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Frame(String),
    Data {
        stream: u32,
        data: Vec<u8>,
        flow: u32,
        end_stream: bool,
    },
}

/// Feeds `wire` in pieces of `piece` bytes; DATA pieces of one frame are
/// joined, so that every split gives the same list.
fn read(wire: &[u8], piece: usize) -> Result<Vec<Got>, FrameError> {
    let mut r = FrameReader::new(frame::DEFAULT_MAX_FRAME);
    let mut out: Vec<Got> = Vec::new();
    let mut open: Option<(u32, Vec<u8>, u32)> = None;
    for chunk in wire.chunks(piece) {
        let mut at = 0;
        while at < chunk.len() {
            let (used, ev) = r.feed(&chunk[at..])?;
            at += used;
            match ev {
                Some(Event::Frame(f)) => out.push(Got::Frame(format!("{f:?}"))),
                Some(Event::Data {
                    stream,
                    data,
                    flow,
                    last,
                    end_stream,
                }) => {
                    let o = open.get_or_insert((stream, Vec::new(), 0));
                    o.1.extend_from_slice(data);
                    o.2 += flow;
                    if last {
                        let (stream, data, flow) = open.take().unwrap();
                        out.push(Got::Data {
                            stream,
                            data,
                            flow,
                            end_stream,
                        });
                    }
                }
                None => {}
            }
        }
    }
    assert!(r.is_idle(), "bytes left over");
    Ok(out)
}

#[test]
fn every_frame_we_write_reads_back_whatever_the_split() {
    let mut wire = Vec::new();
    frame::write::settings(
        &[
            (setting::ENABLE_PUSH, 0),
            (setting::INITIAL_WINDOW_SIZE, 1 << 24),
        ],
        &mut wire,
    );
    frame::write::settings_ack(&mut wire);
    frame::write::window_update(0, 1 << 30, &mut wire);
    frame::write::ping(false, *b"12345678", &mut wire);
    frame::write::ping(true, *b"abcdefgh", &mut wire);
    let block: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    frame::write::headers(1, &block, false, 16_384, &mut wire);
    frame::write::data(1, b"hello", true, &mut wire);
    frame::write::data(3, &[7; 20_000][..16_000], false, &mut wire);
    frame::write::rst_stream(3, 8, &mut wire);
    frame::write::goaway(5, 0, &mut wire);
    let whole = read(&wire, wire.len()).unwrap();
    for piece in [1, 2, 7, 9, 10, 1000, 16_393] {
        assert_eq!(read(&wire, piece).unwrap(), whole, "pieces of {piece}");
    }
    let frames: Vec<&str> = whole
        .iter()
        .filter_map(|g| match g {
            Got::Frame(f) => Some(f.as_str()),
            _ => None,
        })
        .collect();
    assert!(frames[0].starts_with("Settings { ack: false"));
    assert_eq!(frames[1], "Settings { ack: true, payload: [] }");
    assert_eq!(
        frames[2],
        "WindowUpdate { stream: 0, increment: 1073741824 }"
    );
    assert!(frames[3].starts_with("Ping { ack: false, data: [49, 50"));
    assert!(frames[4].starts_with("Ping { ack: true"));
    // 40,000 bytes of block: a HEADERS and two CONTINUATIONs, the last
    // one ending the headers.
    assert!(frames[5].starts_with("Headers { stream: 1, end_stream: false, end_headers: false"));
    assert!(frames[6].starts_with("Continuation { stream: 1, end_headers: false"));
    assert!(frames[7].starts_with("Continuation { stream: 1, end_headers: true"));
    assert_eq!(frames[8], "RstStream { stream: 3, code: 8 }");
    assert!(frames[9].starts_with("GoAway { last_stream: 5, code: 0"));
    let data: Vec<&Got> = whole
        .iter()
        .filter(|g| matches!(g, Got::Data { .. }))
        .collect();
    assert_eq!(
        data[0],
        &Got::Data {
            stream: 1,
            data: b"hello".to_vec(),
            flow: 5,
            end_stream: true
        }
    );
    assert!(matches!(
        data[1],
        Got::Data {
            stream: 3,
            flow: 16_000,
            end_stream: false,
            ..
        }
    ));
}

/// Hand-made frames: padding and priority as servers may send them.
#[test]
fn padding_and_priority_are_stripped_and_counted() {
    let mut wire = Vec::new();
    // DATA, padded: pad length 3, "abc", 3 bytes of padding; 7 bytes of
    // window, 3 of data.
    Head {
        len: 7,
        kind: kind::DATA,
        flags: flags::PADDED | flags::END_STREAM,
        stream: 1,
    }
    .write(&mut wire);
    wire.extend_from_slice(&[3, b'a', b'b', b'c', 0, 0, 0]);
    // HEADERS, padded, with priority: pad 2, 5 priority bytes, block 0x88.
    Head {
        len: 1 + 5 + 1 + 2,
        kind: kind::HEADERS,
        flags: flags::PADDED | flags::PRIORITY | flags::END_HEADERS,
        stream: 3,
    }
    .write(&mut wire);
    wire.extend_from_slice(&[2, 0, 0, 0, 1, 16, 0x88, 0, 0]);
    // PRIORITY and an unknown type: ignored.
    Head {
        len: 5,
        kind: kind::PRIORITY,
        flags: 0,
        stream: 3,
    }
    .write(&mut wire);
    wire.extend_from_slice(&[0, 0, 0, 1, 16]);
    Head {
        len: 2,
        kind: 0xfa,
        flags: 0,
        stream: 0,
    }
    .write(&mut wire);
    wire.extend_from_slice(&[1, 2]);
    for piece in [1, 3, wire.len()] {
        let got = read(&wire, piece).unwrap();
        assert_eq!(
            got[0],
            Got::Data {
                stream: 1,
                data: b"abc".to_vec(),
                flow: 7,
                end_stream: true
            },
            "pieces of {piece}"
        );
        assert_eq!(
            got[1],
            Got::Frame(format!(
                "{:?}",
                Frame::Headers {
                    stream: 3,
                    end_stream: false,
                    end_headers: true,
                    block: &[0x88]
                }
            ))
        );
        assert_eq!(got[2], Got::Frame("Ignored { kind: 2, stream: 3 }".into()));
        assert_eq!(
            got[3],
            Got::Frame("Ignored { kind: 250, stream: 0 }".into())
        );
    }
}

#[test]
fn broken_framing_is_a_named_error() {
    let frame_of = |len: u32, k: u8, f: u8, stream: u32| {
        let mut w = Vec::new();
        Head {
            len,
            kind: k,
            flags: f,
            stream,
        }
        .write(&mut w);
        w.extend(std::iter::repeat_n(1u8, len as usize));
        w
    };
    for (wire, err) in [
        (
            frame_of(16_385, kind::DATA, 0, 1),
            FrameError::TooLarge(16_385),
        ),
        (
            frame_of(5, kind::SETTINGS, 0, 0),
            FrameError::BadLength {
                kind: kind::SETTINGS,
                len: 5,
            },
        ),
        (
            frame_of(6, kind::SETTINGS, flags::ACK, 0),
            FrameError::BadLength {
                kind: kind::SETTINGS,
                len: 6,
            },
        ),
        (
            frame_of(7, kind::PING, 0, 0),
            FrameError::BadLength {
                kind: kind::PING,
                len: 7,
            },
        ),
        (
            frame_of(3, kind::WINDOW_UPDATE, 0, 1),
            FrameError::BadLength {
                kind: kind::WINDOW_UPDATE,
                len: 3,
            },
        ),
        (
            frame_of(5, kind::RST_STREAM, 0, 1),
            FrameError::BadLength {
                kind: kind::RST_STREAM,
                len: 5,
            },
        ),
        (
            frame_of(6, kind::SETTINGS, 0, 1),
            FrameError::BadStream {
                kind: kind::SETTINGS,
                stream: 1,
            },
        ),
        (
            frame_of(4, kind::DATA, 0, 0),
            FrameError::BadStream {
                kind: kind::DATA,
                stream: 0,
            },
        ),
        // A pad length as long as the payload, or longer.
        (
            frame_of(1, kind::DATA, flags::PADDED, 1),
            FrameError::BadPadding,
        ),
        (
            frame_of(1, kind::HEADERS, flags::PADDED, 1),
            FrameError::BadPadding,
        ),
    ] {
        assert_eq!(read(&wire, wire.len()), Err(err), "{wire:02x?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn nghttp2_takes_our_requests_and_we_read_its_answers() {
    let mut server = Server::new(
        &[(i32::from(setting::MAX_CONCURRENT_STREAMS), 100)],
        Behaviour {
            status: Some("204"),
            ..Default::default()
        },
    );
    let mut hello = frame::PREFACE.to_vec();
    frame::write::settings(
        &[
            (setting::ENABLE_PUSH, 0),
            (setting::INITIAL_WINDOW_SIZE, 1 << 20),
        ],
        &mut hello,
    );
    frame::write::window_update(0, 1 << 24, &mut hello);
    let mut block = Vec::new();
    for (n, v) in [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "127.0.0.1"),
    ] {
        encode_field(n.as_bytes(), v.as_bytes(), &mut block);
    }
    // Requests go out with the preface, before the server's SETTINGS.
    frame::write::headers(1, &block, true, 16_384, &mut hello);
    frame::write::headers(3, &block, true, 16_384, &mut hello);
    frame::write::ping(false, *b"urk-ping", &mut hello);
    let answer = server.exchange(&hello);
    let mut reader = FrameReader::new(frame::DEFAULT_MAX_FRAME);
    let mut decoder = Decoder::new(4096);
    let (mut settings, mut acks, mut pongs, mut statuses) = (0, 0, 0, Vec::new());
    let mut at = 0;
    while at < answer.len() {
        let (used, ev) = reader.feed(&answer[at..]).unwrap();
        at += used;
        match ev {
            Some(Event::Frame(Frame::Settings {
                ack: false,
                payload,
            })) => {
                settings += 1;
                let limit =
                    Frame::settings(payload).find(|&(id, _)| id == setting::MAX_CONCURRENT_STREAMS);
                assert_eq!(limit, Some((setting::MAX_CONCURRENT_STREAMS, 100)));
            }
            Some(Event::Frame(Frame::Settings { ack: true, .. })) => acks += 1,
            Some(Event::Frame(Frame::Ping { ack: true, data })) => {
                assert_eq!(&data, b"urk-ping");
                pongs += 1;
            }
            Some(Event::Frame(Frame::Headers {
                stream,
                end_stream,
                end_headers,
                block,
            })) => {
                assert!(end_stream && end_headers);
                decoder
                    .decode(block, |n, v| {
                        if n == b":status" {
                            statuses.push((stream, String::from_utf8_lossy(v).into_owned()));
                        }
                    })
                    .unwrap();
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
    assert_eq!((settings, acks, pongs), (1, 1, 1));
    assert_eq!(statuses, [(1, "204".to_string()), (3, "204".to_string())]);
    // Our acknowledgement of its SETTINGS is taken too.
    let mut ack = Vec::new();
    frame::write::settings_ack(&mut ack);
    assert!(server.exchange(&ack).is_empty());
}

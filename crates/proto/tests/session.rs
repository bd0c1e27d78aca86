//! The client session against nghttp2's server session: requests before
//! the server's SETTINGS, its concurrency limit, bodies past the default
//! windows, PING, RST_STREAM(REFUSED_STREAM) and GOAWAY, each as a test.

mod support;

use proto::h2::hpack::encode_field;
use proto::h2::session::{ClientSession, Event};
use support::{Behaviour, Server};

fn block() -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "a"),
    ] {
        encode_field(n.as_bytes(), v.as_bytes(), &mut b);
    }
    b
}

/// Moves bytes both ways until neither side has anything to say;
/// returns what the client was told.
fn settle(client: &mut ClientSession, server: &mut Server, mut from_server: Vec<u8>) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..100 {
        client.receive(&from_server, |e| events.push(e)).unwrap();
        let out = client.output().to_vec();
        client.sent(out.len());
        from_server = server.exchange(&out);
        if out.is_empty() && from_server.is_empty() {
            return events;
        }
    }
    panic!("no end to the exchange");
}

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

#[test]
fn requests_go_before_the_servers_settings_and_complete() {
    let mut server = Server::new(&[], Behaviour::default());
    let mut c = ClientSession::new();
    let ids: Vec<u32> = (0..3).map(|_| c.request(&block(), b"").unwrap()).collect();
    assert_eq!(ids, [1, 3, 5]);
    let events = settle(&mut c, &mut server, Vec::new());
    assert_eq!(
        count(&events, |e| matches!(e, Event::Status { status: 200, .. })),
        3
    );
    assert_eq!(count(&events, |e| matches!(e, Event::Done { .. })), 3);
    assert_eq!(count(&events, |e| matches!(e, Event::FirstByte { .. })), 3);
    assert_eq!(c.open(), 0);
    assert_eq!(server.behaviour.answered, [1, 3, 5]);
}

#[test]
fn the_servers_stream_limit_is_kept() {
    // MAX_CONCURRENT_STREAMS 2: a third request waits for a free stream.
    let mut server = Server::new(&[(3, 2)], Behaviour::default());
    let mut c = ClientSession::new();
    let hello = server.exchange(c.output());
    c.sent(c.output().len());
    c.receive(&hello, |_| {}).unwrap();
    assert!(c.request(&block(), b"").is_some());
    assert!(c.request(&block(), b"").is_some());
    assert!(!c.can_request());
    assert_eq!(c.request(&block(), b""), None);
    let events = settle(&mut c, &mut server, Vec::new());
    assert_eq!(count(&events, |e| matches!(e, Event::Done { .. })), 2);
    assert!(c.can_request());
}

#[test]
fn bodies_past_the_default_windows_flow_and_are_counted() {
    // 300 KB per response, four at once: far past 65,535, so only our
    // SETTINGS and WINDOW_UPDATEs let them through.
    let mut server = Server::new(
        &[],
        Behaviour {
            body: 300_000,
            ..Default::default()
        },
    );
    let mut c = ClientSession::new();
    for _ in 0..4 {
        c.request(&block(), b"").unwrap();
    }
    let events = settle(&mut c, &mut server, Vec::new());
    let body: usize = events
        .iter()
        .map(|e| match e {
            Event::Body { len, .. } => *len,
            _ => 0,
        })
        .sum();
    assert_eq!(body, 1_200_000);
    assert_eq!(count(&events, |e| matches!(e, Event::Done { .. })), 4);
    // A request body past the server's default stream window (65,535)
    // waits for its WINDOW_UPDATE, then goes.
    let mut server = Server::new(&[], Behaviour::default());
    let mut c = ClientSession::new();
    c.request(&block(), &vec![b'b'; 200_000]).unwrap();
    let events = settle(&mut c, &mut server, Vec::new());
    assert_eq!(count(&events, |e| matches!(e, Event::Done { .. })), 1);
}

#[test]
fn ping_refused_streams_and_goaway() {
    let mut server = Server::new(
        &[],
        Behaviour {
            refuse: true,
            ..Default::default()
        },
    );
    let mut c = ClientSession::new();
    c.request(&block(), b"").unwrap();
    let events = settle(&mut c, &mut server, Vec::new());
    assert_eq!(events, [Event::Reset { stream: 1, code: 7 }]);
    // A PING is answered with the same bytes (nghttp2 takes the answer).
    let ping = server.ping(*b"12345678");
    let mut got = Vec::new();
    c.receive(&ping, |e| got.push(e)).unwrap();
    assert!(got.is_empty());
    let pong = c.output().to_vec();
    c.sent(pong.len());
    assert_eq!(&pong[pong.len() - 8..], b"12345678");
    server.exchange(&pong);
    // GOAWAY: no more streams, and the caller hears which were processed.
    let mut server = Server::new(&[], Behaviour::default());
    let mut c = ClientSession::new();
    c.request(&block(), b"").unwrap();
    settle(&mut c, &mut server, Vec::new());
    let bye = server.goaway(1);
    let mut got = Vec::new();
    c.receive(&bye, |e| got.push(e)).unwrap();
    assert_eq!(
        got,
        [Event::GoAway {
            last_stream: 1,
            code: 0
        }]
    );
    assert!(!c.can_request());
    assert_eq!(c.request(&block(), b""), None);
}

#[test]
fn a_cancelled_streams_late_answer_is_read_and_dropped() {
    let mut server = Server::new(
        &[],
        Behaviour {
            body: 1000,
            ..Default::default()
        },
    );
    let mut c = ClientSession::new();
    let first = c.request(&block(), b"").unwrap();
    let out = c.output().to_vec();
    c.sent(out.len());
    let answer = server.exchange(&out);
    c.cancel(first);
    let mut got = Vec::new();
    c.receive(&answer, |e| got.push(e)).unwrap();
    assert!(got.is_empty(), "{got:?}");
    // The table stayed in step: the next stream decodes.
    c.request(&block(), b"").unwrap();
    let events = settle(&mut c, &mut server, Vec::new());
    assert!(
        events.contains(&Event::Status {
            stream: 3,
            status: 200
        }),
        "{events:?}"
    );
}

#[test]
fn a_lowered_table_size_is_answered_in_the_next_block() {
    // SETTINGS_HEADER_TABLE_SIZE 0: our next block must start with a size
    // update, or nghttp2 refuses it.
    let mut server = Server::new(&[(1, 0)], Behaviour::default());
    let mut c = ClientSession::new();
    let hello = server.exchange(c.output());
    c.sent(c.output().len());
    c.receive(&hello, |_| {}).unwrap();
    let before = c.output().len();
    c.request(&block(), b"").unwrap();
    // After the HEADERS frame's 9-byte header: the update to 0.
    assert_eq!(c.output()[before + 9], 0x20);
    let events = settle(&mut c, &mut server, Vec::new());
    assert!(
        events.contains(&Event::Status {
            stream: 1,
            status: 200
        }),
        "{events:?}"
    );
    // Only once: the next block is the template as it is.
    let before = c.output().len();
    c.request(&block(), b"").unwrap();
    assert_eq!(c.output()[before + 9], 0x82);
}

#[test]
fn a_shrunk_initial_window_holds_a_body_until_updates_come() {
    // The body starts under the default 65,535 window; the server's
    // SETTINGS then shrink it to 1,000, which takes the stream's window
    // far below zero (§6.9.2): nothing more may go until its
    // WINDOW_UPDATEs lift it, and nghttp2 would call any overrun a flow
    // control error.
    let mut server = Server::new(&[(4, 1000)], Behaviour::default());
    let mut c = ClientSession::new();
    c.request(&block(), &vec![b'b'; 150_000]).unwrap();
    let events = settle(&mut c, &mut server, Vec::new());
    assert_eq!(
        events.last(),
        Some(&Event::Done { stream: 1 }),
        "{events:?}"
    );
}

//! A small HTTP/2 server (h2c, prior knowledge) for urk's tests: real
//! sockets on 127.0.0.1, one thread per connection, frames written by hand
//! so that it can misbehave exactly as a test asks (GOAWAY at a chosen
//! stream, refused and reset streams, stalls, a lowered stream limit mid
//! connection, padding, trailers, CONTINUATION, huge header blocks, a
//! close after N streams). It counts every response it has fully written,
//! so tests can compare urk's figures with the server's.
//!
//! Its frames are read with urk's own `FrameReader`; what it writes
//! follows RFC 9113 by hand (nghttp2 checks urk's side in proto's tests).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use urk_engine::proto::h2::frame::{self, Event, Frame, FrameReader};
use urk_engine::proto::h2::hpack::encode_field;

/// How the server answers, stream by stream (counted per connection,
/// from 1 in the order requests end).
#[derive(Debug, Clone, Default)]
pub struct H2Config {
    /// Body bytes of each response.
    pub body: usize,
    /// SETTINGS_MAX_CONCURRENT_STREAMS in its first SETTINGS.
    pub max_streams: Option<u32>,
    /// After this many requests on a connection, a second SETTINGS lowers
    /// the stream limit to `lowered_to`.
    pub lower_after: Option<(u64, u32)>,
    /// Every Nth request is refused: RST_STREAM(REFUSED_STREAM).
    pub refuse_every: u64,
    /// Every Nth request is reset with this code.
    pub reset_every: Option<(u64, u32)>,
    /// Every Nth request is never answered.
    pub stall_every: u64,
    /// After N requests: GOAWAY naming the Nth's stream as the last one;
    /// requests after it are not answered, and the connection closes once
    /// the answered ones are written.
    pub goaway_after: u64,
    /// Close the connection (no GOAWAY) after answering N requests.
    pub close_after: u64,
    /// Pad DATA and HEADERS frames with this many bytes.
    pub padding: u8,
    /// End each response with a trailer block instead of the last DATA.
    pub trailers: bool,
    /// Send a `103 Early Hints` head before each response's.
    pub interim: bool,
    /// Add a header of this many bytes to each response (past 16 KiB it
    /// needs CONTINUATION frames).
    pub header_bytes: usize,
    /// Delay each answer this long.
    pub delay: Duration,
}

/// What the server did, in total.
#[derive(Debug, Default)]
pub struct Counts {
    /// Requests whose END_STREAM arrived.
    pub requests: AtomicU64,
    /// Responses written whole.
    pub answered: AtomicU64,
    pub refused: AtomicU64,
    pub reset: AtomicU64,
    /// Requests neither answered nor refused nor reset (stalled, or above
    /// a GOAWAY).
    pub dropped: AtomicU64,
    pub connections: AtomicU64,
    pub goaways: AtomicU64,
    /// Request body bytes received (DATA payload).
    pub body_bytes: AtomicU64,
}

pub struct H2Server {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
}

impl H2Server {
    pub fn start(cfg: H2Config) -> H2Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counts.clone(), stop.clone());
        thread::spawn(move || {
            for sock in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(sock) = sock else { continue };
                c.connections.fetch_add(1, Ordering::Relaxed);
                let (cfg, c) = (cfg.clone(), c.clone());
                thread::spawn(move || {
                    let _ = serve(sock, &cfg, &c);
                });
            }
        });
        H2Server { addr, counts, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, f: impl Fn(&Counts) -> &AtomicU64) -> u64 {
        f(&self.counts).load(Ordering::Relaxed)
    }

    /// Responses answered, once the count has stopped moving.
    pub fn settled(&self) -> u64 {
        let mut last = u64::MAX;
        for _ in 0..40 {
            let now = self.get(|c| &c.answered);
            if now == last {
                return now;
            }
            last = now;
            thread::sleep(Duration::from_millis(50));
        }
        last
    }
}

impl Drop for H2Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// One connection: read the preface, then answer frame by frame.
fn serve(mut sock: TcpStream, cfg: &H2Config, counts: &Counts) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut preface = [0u8; 24];
    sock.read_exact(&mut preface)?;
    if preface != frame::PREFACE {
        return Ok(());
    }
    let mut out = Vec::new();
    let mut settings = vec![];
    if let Some(n) = cfg.max_streams {
        settings.push((frame::setting::MAX_CONCURRENT_STREAMS, n));
    }
    frame::write::settings(&settings, &mut out);
    sock.write_all(&out)?;
    let mut reader = FrameReader::new(frame::DEFAULT_MAX_FRAME);
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0u64;
    let mut gone = false;
    loop {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut data = &buf[..n];
        let mut ended: Vec<u32> = Vec::new();
        out.clear();
        while !data.is_empty() {
            let (used, ev) = reader
                .feed(data)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            match ev {
                Some(Event::Data {
                    stream,
                    data: d,
                    flow,
                    end_stream,
                    ..
                }) => {
                    counts
                        .body_bytes
                        .fetch_add(d.len() as u64, Ordering::Relaxed);
                    if flow > 0 {
                        frame::write::window_update(0, flow, &mut out);
                        if !end_stream {
                            frame::write::window_update(stream, flow, &mut out);
                        }
                    }
                    if end_stream {
                        ended.push(stream);
                    }
                }
                Some(Event::Frame(Frame::Headers {
                    stream,
                    end_stream: true,
                    ..
                })) => ended.push(stream),
                Some(Event::Frame(Frame::Settings { ack: false, .. })) => {
                    frame::write::settings_ack(&mut out)
                }
                Some(Event::Frame(Frame::Ping {
                    ack: false,
                    data: d,
                })) => frame::write::ping(true, d, &mut out),
                _ => {}
            }
            data = &data[used..];
        }
        for stream in ended {
            counts.requests.fetch_add(1, Ordering::Relaxed);
            seen += 1;
            if gone {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if cfg.lower_after.is_some_and(|(n, _)| seen == n) {
                let to = cfg.lower_after.unwrap().1;
                frame::write::settings(&[(frame::setting::MAX_CONCURRENT_STREAMS, to)], &mut out);
            }
            let every = |k: u64| k > 0 && seen % k == 0;
            if every(cfg.refuse_every) {
                frame::write::rst_stream(stream, 0x7, &mut out);
                counts.refused.fetch_add(1, Ordering::Relaxed);
            } else if let Some((_, code)) = cfg.reset_every.filter(|&(k, _)| every(k)) {
                frame::write::rst_stream(stream, code, &mut out);
                counts.reset.fetch_add(1, Ordering::Relaxed);
            } else if every(cfg.stall_every) {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
            } else {
                if !cfg.delay.is_zero() {
                    sock.write_all(&out)?;
                    out.clear();
                    thread::sleep(cfg.delay);
                }
                respond(stream, cfg, &mut out);
                sock.write_all(&out)?;
                out.clear();
                counts.answered.fetch_add(1, Ordering::Relaxed);
            }
            if cfg.goaway_after > 0 && seen == cfg.goaway_after {
                frame::write::goaway(stream, 0, &mut out);
                counts.goaways.fetch_add(1, Ordering::Relaxed);
                gone = true;
            }
            if cfg.close_after > 0 && seen == cfg.close_after {
                sock.write_all(&out)?;
                return Ok(());
            }
        }
        sock.write_all(&out)?;
        if gone {
            // Give the client a moment to read what was answered, then
            // close as a server that went away does.
            thread::sleep(Duration::from_millis(20));
            return Ok(());
        }
    }
}

/// Writes one response on `stream`, as the configuration shapes it.
fn respond(stream: u32, cfg: &H2Config, out: &mut Vec<u8>) {
    let mut block = Vec::new();
    if cfg.interim {
        encode_field(b":status", b"103", &mut block);
        encode_field(b"link", b"</style.css>; rel=preload", &mut block);
        frame::write::headers(stream, &block, false, 16_384, out);
        block.clear();
    }
    encode_field(b":status", b"200", &mut block);
    if cfg.header_bytes > 0 {
        encode_field(b"x-big", &vec![b'h'; cfg.header_bytes], &mut block);
    }
    let no_body = cfg.body == 0 && !cfg.trailers;
    if cfg.padding > 0 && block.len() < 16_000 {
        // HEADERS padded: pad length, block, padding.
        let flags = frame::flags::END_HEADERS
            | frame::flags::PADDED
            | if no_body { frame::flags::END_STREAM } else { 0 };
        let len = 1 + block.len() + usize::from(cfg.padding);
        raw(len, frame::kind::HEADERS, flags, stream, out);
        out.push(cfg.padding);
        out.extend_from_slice(&block);
        out.extend(std::iter::repeat_n(0u8, usize::from(cfg.padding)));
    } else {
        frame::write::headers(stream, &block, no_body, 16_384, out);
    }
    let mut left = cfg.body;
    while left > 0 {
        let n = left.min(16_000 - usize::from(cfg.padding));
        left -= n;
        let end = left == 0 && !cfg.trailers;
        if cfg.padding > 0 {
            let flags = frame::flags::PADDED | if end { frame::flags::END_STREAM } else { 0 };
            raw(
                1 + n + usize::from(cfg.padding),
                frame::kind::DATA,
                flags,
                stream,
                out,
            );
            out.push(cfg.padding);
            out.extend(std::iter::repeat_n(b'x', n));
            out.extend(std::iter::repeat_n(0u8, usize::from(cfg.padding)));
        } else {
            frame::write::data(stream, &vec![b'x'; n], end, out);
        }
    }
    if cfg.trailers {
        block.clear();
        encode_field(b"grpc-status", b"0", &mut block);
        frame::write::headers(stream, &block, true, 16_384, out);
    }
}

fn raw(len: usize, kind: u8, flags: u8, stream: u32, out: &mut Vec<u8>) {
    frame::Head {
        len: len as u32,
        kind,
        flags,
        stream,
    }
    .write(out);
}

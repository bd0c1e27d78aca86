//! A small HTTP/1.1 server for urk's tests and demo: real sockets on
//! 127.0.0.1, one thread per connection, and a count of every response it
//! has fully written, so tests can compare urk's numbers with the server's.
//!
//! It can answer exactly (fixed body, chunked, HEAD, 204/304, any status)
//! and misbehave on purpose (Connection: close every N responses, HTTP/1.0,
//! slow responses).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How the server answers.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Status code of every response.
    pub status: u16,
    /// Body of every response (not sent for HEAD, 204 and 304).
    pub body: Vec<u8>,
    /// Send the body chunked instead of with Content-Length.
    pub chunked: bool,
    /// Answer as HTTP/1.0 and close after each response.
    pub http10: bool,
    /// Send `Connection: close` and close after every Nth response on a
    /// connection (0: never).
    pub close_every: u64,
    /// Every Nth response on a connection carries a 6-byte body instead
    /// of `body` (0: never), so that body sizes change under the client.
    pub small_every: u64,
    /// Wait this long before each response.
    pub delay: Duration,
    /// Send each response's head, then wait this long before its body (a
    /// server that streams what it computes): time to first byte and
    /// latency part by this much.
    pub body_delay: Duration,
    /// Once, at the first request this long after the start, stall every
    /// response for the second duration (a GC pause, a lock convoy).
    pub stall: Option<(Duration, Duration)>,
    /// Keep a handle on every connection so [`TestServer::kill`] can cut
    /// them (costs a descriptor per connection until then).
    pub killable: bool,
    /// Speak TLS (`https://`), and misbehave in TLS if asked.
    pub tls: Option<TlsMode>,
    /// Keep every request seen ([`TestServer::seen`]).
    pub record: bool,
    /// A known capacity: one request at a time across all connections,
    /// each taking this long (so at most 1/this per second).
    pub service_time: Option<Duration>,
    /// Answer 503 to requests beyond this many per second (counted in
    /// 100 ms windows).
    pub limit_rps: Option<u64>,
    /// Answer requests whose path starts with the first with the second
    /// status instead of `status`.
    pub status_by_path: Vec<(String, u16)>,
}

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the server had read it whole.
    pub at: std::time::SystemTime,
}

impl Seen {
    /// The value of header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server has counted: responses, their bytes, the requests.
#[derive(Default)]
struct Tally {
    answered: AtomicU64,
    written: AtomicU64,
    seen: Mutex<Vec<Seen>>,
    /// `service_time`: when the one request being served is due to end.
    busy: Mutex<Option<Instant>>,
    /// `limit_rps`: the current 100 ms window and its count.
    window: Mutex<(u64, u64)>,
}

/// The server's TLS side and how it misbehaves. Counts in `*_after` are
/// responses on one connection (0: never).
#[derive(Debug, Clone)]
pub struct TlsMode {
    pub config: std::sync::Arc<rustls::ServerConfig>,
    /// Close without sending close_notify first.
    pub no_close_notify: bool,
    /// After this many responses, send a fatal alert and close.
    pub alert_after: u64,
    /// After this many responses, send a record that does not decrypt.
    pub garbage_after: u64,
    /// After this many responses, send the start of a record and close.
    pub truncate_after: u64,
    /// Connections after the first this many never get their handshake
    /// answered (the first ones serve, e.g. urk's probe handshake).
    pub stall_handshakes_after: Option<u64>,
}

impl TlsMode {
    pub fn new(config: std::sync::Arc<rustls::ServerConfig>) -> TlsMode {
        TlsMode {
            config,
            no_close_notify: false,
            alert_after: 0,
            garbage_after: 0,
            truncate_after: 0,
            stall_handshakes_after: None,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            status: 200,
            body: b"hello world\n".to_vec(),
            chunked: false,
            http10: false,
            close_every: 0,
            small_every: 0,
            delay: Duration::ZERO,
            body_delay: Duration::ZERO,
            stall: None,
            killable: false,
            tls: None,
            record: false,
            status_by_path: Vec::new(),
            service_time: None,
            limit_rps: None,
        }
    }
}

/// A running server; stops accepting when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    scheme: &'static str,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    /// Every accepted connection, so `kill` can cut them all.
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl TestServer {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub fn start(cfg: ServerConfig) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Self::serve_on(listener, cfg)
    }

    /// Binds `[::1]` on a free port (IPv6 only) and starts serving.
    pub fn start_v6(cfg: ServerConfig) -> TestServer {
        let listener = TcpListener::bind("[::1]:0").expect("bind [::1]:0");
        Self::serve_on(listener, cfg)
    }

    /// Serves plain HTTP on a Unix domain socket at `path` (its `url`
    /// still names a TCP address nobody listens on).
    pub fn start_unix(path: &std::path::Path, cfg: ServerConfig) -> TestServer {
        let _ = std::fs::remove_file(path);
        let listener = std::os::unix::net::UnixListener::bind(path).expect("bind unix socket");
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = Arc::new(cfg);
        let stall = Arc::new(Stall {
            start: Instant::now(),
            until: Mutex::new(None),
        });
        {
            let (tally, stop) = (tally.clone(), stop.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (cfg, tally, stall) = (cfg.clone(), tally.clone(), stall.clone());
                    thread::spawn(move || serve(PlainUnix(stream), &cfg, &tally, &stall));
                }
            });
        }
        TestServer {
            addr: "127.0.0.1:9".parse().unwrap(),
            scheme: "http",
            tally,
            stop,
            open: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Starts on a given port (to come back after [`kill`](Self::kill)),
    /// retrying while the old listener is still going away.
    pub fn start_on(port: u16, cfg: ServerConfig) -> TestServer {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => return Self::serve_on(l, cfg),
                Err(e) if Instant::now() > deadline => panic!("rebind {port}: {e}"),
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Stops listening and resets every open connection, as a crash would.
    pub fn kill(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn serve_on(listener: TcpListener, cfg: ServerConfig) -> TestServer {
        let addr = listener.local_addr().expect("local addr");
        let open = Arc::new(Mutex::new(Vec::new()));
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let scheme = if cfg.tls.is_some() { "https" } else { "http" };
        let cfg = Arc::new(cfg);
        let stall = Arc::new(Stall {
            start: Instant::now(),
            until: Mutex::new(None),
        });
        {
            let (tally, stop, open) = (tally.clone(), stop.clone(), open.clone());
            thread::spawn(move || {
                let mut accepted = 0u64;
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if cfg.killable {
                        if let Ok(c) = stream.try_clone() {
                            open.lock().unwrap().push(c);
                        }
                    }
                    let (cfg, tally, stall) = (cfg.clone(), tally.clone(), stall.clone());
                    accepted += 1;
                    let nth = accepted;
                    thread::spawn(move || {
                        let counts = &*tally;
                        match &cfg.tls {
                            None => {
                                let _ = stream.set_nodelay(true);
                                serve(Plain(stream), &cfg, counts, &stall)
                            }
                            Some(t) => serve_tls(stream, t, nth, &cfg, counts, &stall),
                        }
                    });
                }
            });
        }
        TestServer {
            addr,
            scheme,
            tally,
            stop,
            open,
        }
    }

    /// `http://127.0.0.1:PORT{path}` (`https://` when it speaks TLS).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    /// Responses fully written so far.
    pub fn answered(&self) -> u64 {
        self.tally.answered.load(Ordering::SeqCst)
    }

    /// Bytes of the responses counted by [`answered`](Self::answered).
    pub fn written(&self) -> u64 {
        self.tally.written.load(Ordering::SeqCst)
    }

    /// Every request read so far (with `record`), in the order read.
    pub fn seen(&self) -> Vec<Seen> {
        self.tally.seen.lock().unwrap().clone()
    }

    /// The count once it has stopped moving (the last writes of a run may
    /// finish a moment after the client has read them).
    pub fn settled(&self) -> u64 {
        let mut last = self.answered();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            thread::sleep(Duration::from_millis(50));
            let now = self.answered();
            if now == last || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            let _ = TcpStream::connect(self.addr);
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Whatever",
    }
}

fn response(cfg: &ServerConfig, head_request: bool, close: bool) -> Vec<u8> {
    response_with(cfg, cfg.status, &cfg.body, head_request, close)
}

fn response_with(
    cfg: &ServerConfig,
    status: u16,
    body: &[u8],
    head_request: bool,
    close: bool,
) -> Vec<u8> {
    let version = if cfg.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut r = format!(
        "{version} {status} {}\r\nServer: urk-test\r\n",
        reason(status)
    )
    .into_bytes();
    if close && !cfg.http10 {
        r.extend_from_slice(b"Connection: close\r\n");
    }
    let no_body = status == 204 || status == 304;
    if no_body {
        r.extend_from_slice(b"\r\n");
        return r;
    }
    if cfg.chunked {
        r.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        if head_request {
            return r;
        }
        for (k, c) in body.chunks(5).enumerate() {
            let ext = if k == 0 { ";first=1" } else { "" };
            r.extend_from_slice(format!("{:x}{ext}\r\n", c.len()).as_bytes());
            r.extend_from_slice(c);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\nX-Trailer: done\r\n\r\n");
    } else {
        r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        if !head_request {
            r.extend_from_slice(body);
        }
    }
    r
}

/// The one-off stall: when it started (if it has) is shared by all connections.
struct Stall {
    start: Instant,
    until: Mutex<Option<Instant>>,
}

impl Stall {
    fn wait(&self, cfg: &ServerConfig) {
        let Some((after, len)) = cfg.stall else {
            return;
        };
        let until = {
            let mut u = self.until.lock().unwrap();
            if u.is_none() && self.start.elapsed() >= after {
                *u = Some(Instant::now() + len);
            }
            *u
        };
        if let Some(until) = until {
            let now = Instant::now();
            if now < until {
                thread::sleep(until - now);
            }
        }
    }
}

/// A connection's byte stream: plain TCP, or TLS over it.
trait Wire: Read + Write {
    /// Ends the connection after its last response.
    fn close(&mut self);
    /// After each response: false ends the connection (a misbehaviour).
    fn after_response(&mut self, _served: u64) -> bool {
        true
    }
}

struct Plain(TcpStream);

impl Read for Plain {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(b)
    }
}

impl Write for Plain {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Wire for Plain {
    fn close(&mut self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

struct PlainUnix(std::os::unix::net::UnixStream);

impl Read for PlainUnix {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(b)
    }
}

impl Write for PlainUnix {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Wire for PlainUnix {
    fn close(&mut self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

struct Tls<'a> {
    s: rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    mode: &'a TlsMode,
}

impl Read for Tls<'_> {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.s.read(b)
    }
}

impl Write for Tls<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.s.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.s.flush()
    }
}

impl Wire for Tls<'_> {
    fn close(&mut self) {
        if !self.mode.no_close_notify {
            self.s.conn.send_close_notify();
            let _ = self.s.conn.complete_io(&mut self.s.sock);
        }
        let _ = self.s.sock.shutdown(Shutdown::Both);
    }

    fn after_response(&mut self, served: u64) -> bool {
        let m = self.mode;
        let _ = self.s.flush();
        if m.alert_after == served {
            // A record the server's own session cannot decrypt makes it
            // send a real, encrypted fatal alert (bad_record_mac).
            let bad = [0x17u8, 0x03, 0x03, 0x00, 0x20]
                .iter()
                .copied()
                .chain([0u8; 32]);
            let bad: Vec<u8> = bad.collect();
            let _ = self.s.conn.read_tls(&mut bad.as_slice());
            let _ = self.s.conn.process_new_packets();
            let _ = self.s.conn.complete_io(&mut self.s.sock);
            let _ = self.s.sock.shutdown(Shutdown::Both);
            return false;
        }
        if m.garbage_after == served {
            // Application data that no key decrypts.
            let mut rec = vec![0x17u8, 0x03, 0x03, 0x00, 0x30];
            rec.extend([0x5au8; 0x30]);
            let _ = self.s.sock.write_all(&rec);
            return true;
        }
        if m.truncate_after == served {
            // A record header promising 0x100 bytes, and 10 of them.
            let mut rec = vec![0x17u8, 0x03, 0x03, 0x01, 0x00];
            rec.extend([0u8; 10]);
            let _ = self.s.sock.write_all(&rec);
            let _ = self.s.sock.shutdown(Shutdown::Both);
            return false;
        }
        true
    }
}

/// Accepts TLS on a new connection (or never answers its handshake) and
/// serves it.
fn serve_tls(
    mut stream: TcpStream,
    mode: &TlsMode,
    nth: u64,
    cfg: &ServerConfig,
    counts: &Tally,
    stall: &Stall,
) {
    if mode.stall_handshakes_after.is_some_and(|n| nth > n) {
        // Read and drop the ClientHello and whatever follows; answer nothing.
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        return;
    }
    let Ok(conn) = rustls::ServerConnection::new(mode.config.clone()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let wire = Tls {
        s: rustls::StreamOwned::new(conn, stream),
        mode,
    };
    serve(wire, cfg, counts, stall);
}

/// Serves one connection, counting responses and their bytes.
fn serve(mut stream: impl Wire, cfg: &ServerConfig, tally: &Tally, stall: &Stall) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0;
    let mut served = 0u64;
    loop {
        // Answer every complete request already buffered (pipelining).
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let Ok(httparse::Status::Complete(head_len)) = req.parse(&buf[..have]) else {
                break;
            };
            let body_len: usize = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            if have < head_len + body_len {
                break;
            }
            let head_request = req.method == Some("HEAD");
            let path = req.path.unwrap_or("").to_string();
            if cfg.record {
                tally.seen.lock().unwrap().push(Seen {
                    method: req.method.unwrap_or("").to_string(),
                    path: path.clone(),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                    body: buf[head_len..head_len + body_len].to_vec(),
                    at: std::time::SystemTime::now(),
                });
            }
            let arrived = Instant::now();
            let mut status = cfg
                .status_by_path
                .iter()
                .find(|(p, _)| path.starts_with(p.as_str()))
                .map_or(cfg.status, |&(_, s)| s);
            if let Some(limit) = cfg.limit_rps {
                let tenth = stall.start.elapsed().as_millis() as u64 / 100;
                let mut w = tally.window.lock().unwrap();
                if w.0 != tenth {
                    *w = (tenth, 0);
                }
                w.1 += 1;
                if w.1 > limit / 10 {
                    status = 503;
                }
            }
            if let Some(t) = cfg.service_time {
                // One at a time (FIFO enough), each `t` long from when the
                // one before was due to end, not from when its sleep did:
                // the host's late wake-ups do not lower the capacity, which
                // stays 1/t while requests queue.
                let mut free = tally.busy.lock().unwrap();
                let end = free.map_or(arrived, |f| f.max(arrived)) + t;
                *free = Some(end);
                if let Some(d) = end.checked_duration_since(Instant::now()) {
                    thread::sleep(d);
                }
            }
            buf.copy_within(head_len + body_len..have, 0);
            have -= head_len + body_len;
            served += 1;
            let close = cfg.http10 || (cfg.close_every > 0 && served % cfg.close_every == 0);
            if !cfg.delay.is_zero() {
                thread::sleep(cfg.delay);
            }
            stall.wait(cfg);
            let small = cfg.small_every > 0 && served % cfg.small_every == 0;
            let body: &[u8] = if small { b"small\n" } else { &cfg.body };
            let r = response_with(cfg, status, body, head_request, close);
            let mut rest = &r[..];
            if !cfg.body_delay.is_zero() {
                let head = r
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(0, |i| i + 4);
                if stream
                    .write_all(&r[..head])
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
                thread::sleep(cfg.body_delay);
                rest = &r[head..];
            }
            if stream
                .write_all(rest)
                .and_then(|()| stream.flush())
                .is_err()
            {
                return;
            }
            tally.written.fetch_add(r.len() as u64, Ordering::SeqCst);
            tally.answered.fetch_add(1, Ordering::SeqCst);
            if close {
                stream.close();
                return;
            }
            if !stream.after_response(served) {
                return;
            }
        }
        if have == buf.len() {
            return; // request head too large for this server
        }
        match stream.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
}

/// Length of one response as [`TestServer`] writes it.
pub fn response_len(cfg: &ServerConfig, head_request: bool, close: bool) -> usize {
    response(cfg, head_request, close).len()
}

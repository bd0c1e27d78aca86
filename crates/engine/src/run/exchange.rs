//! One request, sent as the run's first would be, and its response read
//! whole: what a run will send and get back, seen before any load (the
//! CLI's `--debug`). Blocking, on one connection of its own: it shares the
//! run's request source and TLS settings, not its ring.

use std::io::{Read, Write};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use proto::ResponseFramer;

use crate::io::transport::{BlockingStream, Negotiated};
use crate::source::{Outbox, SourceArgs, WorkerSource};
use crate::{EngineError, Plan};

/// What [`Plan::exchange`] sent and got back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Where the connection went.
    pub server: String,
    /// `https://`: what the handshake agreed on.
    pub tls: Option<Negotiated>,
    /// It spoke HTTP/2: `request` and `head` are the header fields as
    /// sent and decoded (`name: value` lines, pseudo-fields first, a blank
    /// line after), not bytes on the wire, which are compressed.
    pub http2: bool,
    /// The request, byte for byte as sent (plaintext; on HTTP/2, its
    /// fields as lines and then its body).
    pub request: Vec<u8>,
    /// The response's head: status line and headers, through the blank
    /// line (on HTTP/2, `:status` and the fields as lines).
    pub head: Vec<u8>,
    /// The start of its body, at most the limit asked for.
    pub body: Vec<u8>,
    /// The body's whole length as received (chunked framing included).
    pub body_len: u64,
    /// The response's status code.
    pub status: u16,
    /// From the request's send to the response's last byte.
    pub elapsed: Duration,
}

impl Plan {
    /// Sends the first request the run would send (the fixed request,
    /// the first target, or the script's first `request()`) on a
    /// connection of its own, and reads its response whole, keeping at
    /// most `body_limit` bytes of the body. Nothing else is sent.
    ///
    /// ```no_run
    /// let cfg = urk_engine::Config::new("http://127.0.0.1:8080/")?;
    /// let x = urk_engine::Plan::new(&cfg)?.exchange(4096)?;
    /// println!("{}", String::from_utf8_lossy(&x.head));
    /// # Ok::<(), urk_engine::EngineError>(())
    /// ```
    pub fn exchange(&self, body_limit: usize) -> Result<Exchange, EngineError> {
        let (request, head_request) = self.first_request()?;
        let timeout = self.cfg.timeout;
        let server = self.endpoint.to_string();
        let fail = |step: &'static str, reason: String| EngineError::Exchange {
            server: server.clone(),
            step,
            reason,
        };
        let (mut wire, tls): (Box<dyn ReadWrite>, _) = match &self.tls {
            Some(setup) => {
                let (conn, sock) = setup.handshake_blocking(&self.endpoint, timeout)?;
                let agreed = Negotiated::of(&conn);
                (Box::new(rustls::StreamOwned::new(conn, sock)), Some(agreed))
            }
            None => {
                let sock = BlockingStream::connect(&self.endpoint, timeout)
                    .map_err(|e| fail("connect", e.to_string()))?;
                (Box::new(sock), None)
            }
        };
        if self.cfg.http2 {
            let to = (server.clone(), tls);
            return super::exchange_h2::exchange(wire, &request, to, body_limit)
                .map_err(|(step, reason)| fail(step, reason));
        }
        let began = Instant::now();
        wire.write_all(&request)
            .and_then(|()| wire.flush())
            .map_err(|e| fail("send the request", e.to_string()))?;
        let mut framer = ResponseFramer::new(head_request);
        let mut got = Received::new(body_limit);
        let mut buf = vec![0u8; 16 * 1024];
        let status = loop {
            let n = match wire.read(&mut buf) {
                Ok(n) => n,
                // A signal (a read with a timeout is not restarted): read on.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // A server that closes without close_notify ends the body
                // as a close would.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(fail("read the response", e.to_string())),
            };
            if n == 0 {
                match framer.finish() {
                    Ok(Some(r)) => break r.status,
                    _ => {
                        return Err(fail(
                            "read the response",
                            "the server closed the connection before the response was complete"
                                .into(),
                        ))
                    }
                }
            }
            let mut data = &buf[..n];
            let mut done = None;
            while !data.is_empty() && done.is_none() {
                let (used, r) = framer
                    .feed(data)
                    .map_err(|e| fail("read the response", e.to_string()))?;
                got.keep(&data[..used]);
                data = &data[used..];
                done = r.map(|r| r.status);
            }
            if let Some(s) = done {
                break s;
            }
        };
        let elapsed = began.elapsed();
        Ok(Exchange {
            server,
            tls,
            http2: false,
            request,
            head: got.head,
            body: got.body,
            body_len: got.body_len,
            status,
            elapsed,
        })
    }

    /// The run's first request and whether it is a `HEAD`.
    fn first_request(&self) -> Result<(Vec<u8>, bool), EngineError> {
        let seq = AtomicU64::new(0);
        let mut source = WorkerSource::new(
            &self.source,
            SourceArgs {
                pipeline: 1,
                seq: &seq,
                index: 0,
                workers: 1,
                addr: self.endpoint.tcp(),
                shard: self.cfg.shard,
            },
        )?;
        let mut out = Outbox::default();
        let batch = source.batch(1, 1, &mut out);
        let bytes = match (batch, source.fixed()) {
            (Some(b), Some(fixed)) if b.fixed_len.is_some() => {
                fixed[..b.fixed_len.unwrap_or(0)].to_vec()
            }
            (Some(_), _) => std::mem::take(&mut out.bytes),
            (None, _) => {
                let e = source.script().and_then(|s| s.error.take());
                return Err(EngineError::Script(e.unwrap_or_else(|| {
                    crate::ScriptError("the script made no request".into())
                })));
            }
        };
        // A script's request() may give several at once: the first.
        let ends = proto::parts::split_requests(&bytes).map_err(|e| {
            EngineError::Script(crate::ScriptError(format!("the first request: {e}")))
        })?;
        let first = ends.first().ok_or_else(|| {
            EngineError::Script(crate::ScriptError("the request is empty".into()))
        })?;
        Ok((bytes[..first.end].to_vec(), first.head))
    }
}

/// A blocking byte stream: plain or TLS.
pub(crate) trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The response's bytes as they come: the head whole, the body up to a
/// limit, its length counted.
struct Received {
    head: Vec<u8>,
    head_done: bool,
    body: Vec<u8>,
    body_len: u64,
    limit: usize,
}

impl Received {
    fn new(limit: usize) -> Received {
        Received {
            head: Vec::new(),
            head_done: false,
            body: Vec::new(),
            body_len: 0,
            limit,
        }
    }

    fn keep(&mut self, mut bytes: &[u8]) {
        if !self.head_done {
            let before = self.head.len();
            self.head.extend_from_slice(bytes);
            match self.head.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(at) => {
                    self.head.truncate(at + 4);
                    self.head_done = true;
                    bytes = &bytes[at + 4 - before..];
                }
                None => return,
            }
        }
        self.body_len += bytes.len() as u64;
        let room = self.limit.saturating_sub(self.body.len());
        self.body.extend_from_slice(&bytes[..room.min(bytes.len())]);
    }
}

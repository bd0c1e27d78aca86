//! The protocol seam beside the transport: on an HTTP/2 connection, the
//! sans-IO [`ClientSession`] and what the worker must know of each open
//! stream (when it was sent and meant to be sent, which target it is) to
//! book its response. An HTTP/1.1 connection needs none of it: its
//! responses come in order, so its framer and one batch's times do.

use proto::h2::session::{ClientSession, Piece};

/// One request in flight on an HTTP/2 connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stream {
    pub id: u32,
    /// When it went out, in µs since the run started.
    pub sent_at: u64,
    /// When it should have gone out (its slot under a schedule; a retried
    /// request keeps its first one): latency counts from here.
    pub intended_at: u64,
    /// Its target, when the request was not the fixed one.
    pub target: Option<u32>,
    /// Its response's status, once the head has come.
    pub status: u16,
}

/// A request to send again on another stream: the server refused it
/// (REFUSED_STREAM) or went away before processing it (above a GOAWAY's
/// last stream), so it was never processed (RFC 9113 §8.7).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    pub intended_at: u64,
    pub target: Option<u32>,
}

/// An HTTP/2 connection's protocol state.
pub(crate) struct H2Session {
    pub session: ClientSession,
    /// Open streams; few (at most the in-flight depth), so a scan finds
    /// one faster than a map would.
    pub streams: Vec<Stream>,
    /// The plain transport's bytes being sent: the session's output,
    /// swapped out so that the session can write on while they are.
    pub tx: Vec<u8>,
    /// Responses kept whole for a script that reads headers or bodies.
    pub captures: Captures,
    /// Each session reads the server's `Date` fields.
    dates: bool,
}

/// Responses being kept for a script's `response()`, by stream, each
/// written as the HTTP/1.1 response it would have been (status line,
/// fields, blank line, body), which is what the script side takes apart.
#[derive(Default)]
pub(crate) struct Captures {
    open: Vec<(u32, Vec<u8>, bool)>,
    spare: Vec<Vec<u8>>,
}

/// Where a capture's status digits go: `HTTP/1.1 000 \r\n`.
const STATUS_LINE: &[u8] = b"HTTP/1.1 000 \r\n";

impl Captures {
    fn entry(&mut self, stream: u32) -> &mut (u32, Vec<u8>, bool) {
        let k = match self.open.iter().position(|c| c.0 == stream) {
            Some(k) => k,
            None => {
                let mut raw = self.spare.pop().unwrap_or_default();
                raw.extend_from_slice(STATUS_LINE);
                self.open.push((stream, raw, false));
                self.open.len() - 1
            }
        };
        &mut self.open[k]
    }

    /// A field or body bytes of `stream`'s response.
    pub(crate) fn piece(&mut self, stream: u32, piece: Piece<'_>) {
        let (_, raw, body) = self.entry(stream);
        match piece {
            Piece::Field { name, value } => {
                raw.extend_from_slice(name);
                raw.extend_from_slice(b": ");
                raw.extend_from_slice(value);
                raw.extend_from_slice(b"\r\n");
            }
            Piece::Data(d) => {
                if !*body {
                    *body = true;
                    raw.extend_from_slice(b"\r\n");
                }
                raw.extend_from_slice(d);
            }
        }
    }

    /// `stream`'s final status.
    pub(crate) fn status(&mut self, stream: u32, status: u16) {
        let (_, raw, _) = self.entry(stream);
        let s = status.min(999);
        raw[9..12].copy_from_slice(&[
            b'0' + (s / 100) as u8,
            b'0' + (s / 10 % 10) as u8,
            b'0' + (s % 10) as u8,
        ]);
    }

    /// `stream`'s whole response, if it was kept; hand it back after use.
    pub(crate) fn take(&mut self, stream: u32) -> Option<Vec<u8>> {
        let k = self.open.iter().position(|c| c.0 == stream)?;
        let (_, mut raw, body) = self.open.swap_remove(k);
        if !body {
            raw.extend_from_slice(b"\r\n");
        }
        Some(raw)
    }

    /// A buffer from [`Captures::take`], for the next response.
    pub(crate) fn give_back(&mut self, mut raw: Vec<u8>) {
        raw.clear();
        self.spare.push(raw);
    }

    /// Drops what `stream` had kept (it was reset or cancelled).
    pub(crate) fn drop_stream(&mut self, stream: u32) {
        if let Some(raw) = self.take(stream) {
            self.give_back(raw);
        }
    }
}

impl H2Session {
    pub(crate) fn new(depth: usize) -> H2Session {
        H2Session {
            session: ClientSession::new(),
            streams: Vec::with_capacity(depth),
            tx: Vec::new(),
            captures: Captures::default(),
            dates: false,
        }
    }

    /// This session and the next read the server's `Date` fields.
    pub(crate) fn set_dates(&mut self, on: bool) {
        self.dates = on;
        self.session.set_dates(on);
    }

    /// A new connection in the slot: a fresh session (its preface first),
    /// the buffers kept.
    pub(crate) fn reset(&mut self) {
        self.session = ClientSession::new();
        self.session.set_dates(self.dates);
        self.streams.clear();
        self.tx.clear();
        let open = std::mem::take(&mut self.captures.open);
        for (_, raw, _) in open {
            self.captures.give_back(raw);
        }
    }
}

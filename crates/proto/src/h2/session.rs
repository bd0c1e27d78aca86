//! A client's HTTP/2 connection without I/O (RFC 9113): handed the bytes
//! that arrived, it answers what the protocol wants answered (SETTINGS
//! acknowledged, PINGs returned, windows replenished), reassembles and
//! decodes header blocks, and tells its caller what happened to each
//! stream; what it wants sent waits in [`ClientSession::output`]. Streams
//! are odd and increasing, opened by [`ClientSession::request`] with a
//! header block encoded once per template.
//!
//! ```
//! use proto::h2::{hpack::encode_field, session::ClientSession};
//! let mut block = Vec::new();
//! for (n, v) in [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")] {
//!     encode_field(n.as_bytes(), v.as_bytes(), &mut block);
//! }
//! let mut c = ClientSession::new();
//! assert_eq!(c.request(&block, b""), Some(1));
//! assert_eq!(c.request(&block, b""), Some(3));
//! // The preface, our SETTINGS and WINDOW_UPDATE, then both requests:
//! // nothing waits for the server.
//! assert!(c.output().starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
//! ```

use std::collections::HashMap;
use std::fmt;

use super::frame::{self, setting, Event as Wire, Frame, FrameError, FrameReader};
use super::hpack::{Decoder, HpackError};

/// Our receive window for every stream, announced in our SETTINGS: large,
/// so that a response is never held back by our window (16 MiB).
pub const STREAM_WINDOW: u32 = 1 << 24;
/// The connection's receive window we raise to at once (1 GiB).
pub const CONNECTION_WINDOW: u32 = 1 << 30;
/// Largest header block taken (HEADERS and CONTINUATIONs together).
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// The last stream id a connection may use (§5.1.1).
const LAST_STREAM: u32 = (1 << 31) - 1;
/// A window starts at this (§6.9.2).
const DEFAULT_WINDOW: i64 = 65_535;

/// What happened on the connection, for the caller to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The first byte of a stream's response arrived (its first HEADERS).
    FirstByte { stream: u32 },
    /// A stream's final response head: its status.
    Status { stream: u32, status: u16 },
    /// A stream's final response head's `Date`, Unix seconds (the
    /// server's clock), just before its `Status`: only when asked for with
    /// [`ClientSession::set_dates`].
    Date { stream: u32, unix_s: u64 },
    /// Body bytes of a stream, counted, not kept.
    Body { stream: u32, len: usize },
    /// A stream is complete: its last frame had END_STREAM.
    Done { stream: u32 },
    /// The server reset a stream with this error code (7: REFUSED_STREAM,
    /// never processed, safe to retry).
    Reset { stream: u32, code: u32 },
    /// The server is going away: streams above `last_stream` were not
    /// processed (retry them on a new connection); none may be opened.
    GoAway { last_stream: u32, code: u32 },
}

/// What a caller that keeps responses (a script that reads headers or
/// bodies, `--debug`) is handed besides the [`Event`]s: the fields of each
/// final response head (pseudo-fields and interim heads left out), and
/// its body bytes as they come. Borrowed: valid for the call only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// One field of the response head.
    Field { name: &'a [u8], value: &'a [u8] },
    /// Body bytes.
    Data(&'a [u8]),
}

/// Why the connection cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// The framing rules were broken.
    Frame(FrameError),
    /// A header block did not decode (the table is now unknown).
    Hpack(HpackError),
    /// A header block larger than [`MAX_HEADER_BLOCK`].
    HeadersTooLarge(usize),
    /// A frame other than CONTINUATION inside a header block.
    BrokenHeaderBlock,
    /// A server push, which our SETTINGS disabled.
    Push,
    /// A response without a valid `:status`.
    NoStatus { stream: u32 },
    /// A WINDOW_UPDATE past 2^31-1, or of zero on the connection.
    FlowControl,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Frame(e) => e.fmt(f),
            SessionError::Hpack(e) => e.fmt(f),
            SessionError::HeadersTooLarge(n) => {
                write!(f, "the server sent a {n}-byte header block")
            }
            SessionError::BrokenHeaderBlock => {
                f.write_str("the server interleaved a frame with a header block")
            }
            SessionError::Push => {
                f.write_str("the server pushed a stream though push was disabled")
            }
            SessionError::NoStatus { stream } => {
                write!(
                    f,
                    "the server's response on stream {stream} has no valid :status"
                )
            }
            SessionError::FlowControl => f.write_str("the server broke flow control"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<FrameError> for SessionError {
    fn from(e: FrameError) -> Self {
        SessionError::Frame(e)
    }
}

/// One open stream of ours.
#[derive(Debug, Clone, Default)]
struct Stream {
    /// How much more body the server lets us send.
    send_window: i64,
    /// Body bytes still to send, and where they start.
    body: Vec<u8>,
    sent: usize,
    /// Received body bytes not yet given back in a WINDOW_UPDATE.
    unacked: u32,
    /// The final (non-1xx) response head has come.
    answered: bool,
}

/// One client connection's HTTP/2 state.
#[derive(Debug, Clone)]
pub struct ClientSession {
    reader: FrameReader,
    /// Everything else: apart from the reader, so that the reader's
    /// events (which borrow it) can be acted on without copying them.
    state: State,
}

#[derive(Debug, Clone)]
struct State {
    decoder: Decoder,
    out: Vec<u8>,
    next_stream: u32,
    streams: HashMap<u32, Stream>,
    /// The server's settings.
    max_concurrent: u32,
    initial_window: i64,
    max_frame: u32,
    /// A lowered header table size we must acknowledge in our next block.
    table_size_update: Option<u32>,
    send_window: i64,
    /// Connection bytes received and not yet given back.
    unacked: u32,
    /// Request bodies' buffers of finished streams, for the next ones: a
    /// request with a body allocates nothing once enough are here.
    spare: Vec<Vec<u8>>,
    /// A header block being gathered across CONTINUATIONs: its stream
    /// and END_STREAM flag; the bytes are in `block`.
    gathering: Option<(u32, bool)>,
    /// Where split header blocks are gathered (capacity kept).
    block: Vec<u8>,
    /// The server's GOAWAY: its last processed stream.
    goaway: Option<u32>,
    /// Reading `Date` fields: the last one seen.
    dates: Option<crate::date::DateCache>,
}

impl Default for ClientSession {
    fn default() -> Self {
        ClientSession::new()
    }
}

impl ClientSession {
    /// A new connection: the preface, our SETTINGS (push off, a large
    /// stream window) and a connection WINDOW_UPDATE are in the output at
    /// once, and requests may follow before the server's SETTINGS.
    pub fn new() -> ClientSession {
        let mut out = frame::PREFACE.to_vec();
        frame::write::settings(
            &[
                (setting::ENABLE_PUSH, 0),
                (setting::INITIAL_WINDOW_SIZE, STREAM_WINDOW),
            ],
            &mut out,
        );
        frame::write::window_update(0, CONNECTION_WINDOW - DEFAULT_WINDOW as u32, &mut out);
        ClientSession {
            reader: FrameReader::new(frame::DEFAULT_MAX_FRAME),
            state: State {
                decoder: Decoder::new(4096),
                out,
                next_stream: 1,
                streams: HashMap::new(),
                max_concurrent: u32::MAX,
                initial_window: DEFAULT_WINDOW,
                max_frame: frame::DEFAULT_MAX_FRAME,
                table_size_update: None,
                spare: Vec::new(),
                send_window: DEFAULT_WINDOW,
                unacked: 0,
                gathering: None,
                block: Vec::new(),
                goaway: None,
                dates: None,
            },
        }
    }

    /// Reads each final response head's `Date` into an [`Event::Date`]:
    /// the server's clock, against which a client can check its own.
    pub fn set_dates(&mut self, on: bool) {
        self.state.dates = on.then(crate::date::DateCache::default);
    }

    /// What to send, in order; tell [`ClientSession::sent`] how much went.
    pub fn output(&self) -> &[u8] {
        &self.state.out
    }

    /// `n` bytes of the output are on their way.
    pub fn sent(&mut self, n: usize) {
        self.state.out.drain(..n.min(self.state.out.len()));
    }

    /// Moves the whole output into `into` (emptied first) by swapping
    /// buffers: a caller whose send points into `into` until it completes
    /// keeps it stable while the session writes the next output into the
    /// buffer it got back. Neither side copies or allocates once both
    /// buffers have grown.
    pub fn take_output(&mut self, into: &mut Vec<u8>) {
        into.clear();
        std::mem::swap(into, &mut self.state.out);
    }

    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS` (unlimited until it
    /// says otherwise).
    pub fn max_concurrent(&self) -> u32 {
        self.state.max_concurrent
    }

    /// The server sent GOAWAY: no stream may be opened on this connection.
    pub fn going_away(&self) -> bool {
        self.state.goaway.is_some()
    }

    /// Every stream id is used (§5.1.1): the connection must be replaced.
    pub fn exhausted(&self) -> bool {
        self.state.next_stream > LAST_STREAM
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.state.streams.len()
    }

    /// Whether a new stream may be opened: the server's concurrency limit
    /// has room, no GOAWAY came, and stream ids are left.
    pub fn can_request(&self) -> bool {
        self.state.goaway.is_none()
            && self.state.next_stream <= LAST_STREAM
            && (self.state.streams.len() as u64) < u64::from(self.state.max_concurrent)
    }

    /// Opens a stream with `block` (a header block from
    /// [`encode_field`](super::hpack::encode_field)) and `body`, sent as
    /// the windows allow; `None` if no stream may be opened now.
    pub fn request(&mut self, block: &[u8], body: &[u8]) -> Option<u32> {
        if !self.can_request() {
            return None;
        }
        let id = self.state.next_stream;
        self.state.next_stream += 2;
        let mut with_update;
        let block = match self.state.table_size_update.take() {
            None => block,
            Some(size) => {
                with_update = Vec::with_capacity(block.len() + 5);
                super::hpack::encode_size_update(size as usize, &mut with_update);
                with_update.extend_from_slice(block);
                &with_update[..]
            }
        };
        frame::write::headers(
            id,
            block,
            body.is_empty(),
            self.state.max_frame as usize,
            &mut self.state.out,
        );
        let mut s = Stream {
            send_window: self.state.initial_window,
            ..Stream::default()
        };
        if !body.is_empty() {
            let mut b = self.state.spare.pop().unwrap_or_default();
            b.extend_from_slice(body);
            s.body = b;
        }
        let st = &mut self.state;
        let s = st.streams.entry(id).or_insert(s);
        flush_body(id, s, &mut st.send_window, st.max_frame, &mut st.out);
        Some(id)
    }

    /// Gives up on a stream (its timeout): RST_STREAM(CANCEL). Its late
    /// frames are still read (and their DATA counted against the window).
    pub fn cancel(&mut self, stream: u32) {
        if self.state.forget(stream) {
            frame::write::rst_stream(stream, 0x8, &mut self.state.out);
        }
    }

    /// Takes bytes that arrived, telling `on` what they meant.
    pub fn receive(&mut self, bytes: &[u8], on: impl FnMut(Event)) -> Result<(), SessionError> {
        self.receive_pieces(bytes, on, |_, _| {})
    }

    /// Like [`ClientSession::receive`], and hands `keep` each final
    /// response head's fields and its body bytes, by stream, for a caller
    /// that keeps responses.
    pub fn receive_pieces(
        &mut self,
        mut bytes: &[u8],
        mut on: impl FnMut(Event),
        mut keep: impl FnMut(u32, Piece<'_>),
    ) -> Result<(), SessionError> {
        while !bytes.is_empty() {
            let (used, ev) = self.reader.feed(bytes)?;
            if let Some(ev) = ev {
                self.state.handle(ev, &mut on, &mut keep)?;
            }
            bytes = &bytes[used..];
        }
        Ok(())
    }
}

/// Sends what the windows allow of stream `id`'s body.
fn flush_body(id: u32, s: &mut Stream, conn_window: &mut i64, max_frame: u32, out: &mut Vec<u8>) {
    while s.sent < s.body.len() {
        let room = s.send_window.min(*conn_window).min(i64::from(max_frame));
        if room <= 0 {
            return;
        }
        let n = (room as usize).min(s.body.len() - s.sent);
        let end = s.sent + n == s.body.len();
        frame::write::data(id, &s.body[s.sent..s.sent + n], end, out);
        s.sent += n;
        s.send_window -= n as i64;
        *conn_window -= n as i64;
    }
}

impl State {
    /// Bodies waiting for window, sent as far as it now allows.
    fn flush_bodies(&mut self) {
        for (&id, st) in self.streams.iter_mut() {
            if st.sent < st.body.len() {
                flush_body(id, st, &mut self.send_window, self.max_frame, &mut self.out);
            }
        }
    }

    /// Stream `id` is over: forgotten, its body's buffer kept for the
    /// next. False if it was not open.
    fn forget(&mut self, id: u32) -> bool {
        let Some(mut s) = self.streams.remove(&id) else {
            return false;
        };
        if s.body.capacity() > 0 {
            s.body.clear();
            self.spare.push(s.body);
        }
        true
    }

    fn handle(
        &mut self,
        ev: Wire<'_>,
        on: &mut impl FnMut(Event),
        keep: &mut impl FnMut(u32, Piece<'_>),
    ) -> Result<(), SessionError> {
        let continuation = matches!(ev, Wire::Frame(Frame::Continuation { .. }));
        if self.gathering.is_some() != continuation {
            return Err(SessionError::BrokenHeaderBlock);
        }
        let f = match ev {
            Wire::Data {
                stream,
                data,
                flow,
                end_stream,
                ..
            } => {
                if !data.is_empty() && self.streams.contains_key(&stream) {
                    keep(stream, Piece::Data(data));
                }
                self.data(stream, data.len(), flow, end_stream, on);
                return Ok(());
            }
            Wire::Frame(f) => f,
        };
        match f {
            Frame::Headers {
                stream,
                end_stream,
                end_headers: true,
                block,
            } => self.headers_done(stream, end_stream, block, on, keep)?,
            Frame::Headers {
                stream,
                end_stream,
                block,
                ..
            } => {
                self.gathering = Some((stream, end_stream));
                self.block.clear();
                self.block.extend_from_slice(block);
            }
            Frame::Continuation {
                end_headers, block, ..
            } => {
                self.block.extend_from_slice(block);
                if self.block.len() > MAX_HEADER_BLOCK {
                    return Err(SessionError::HeadersTooLarge(self.block.len()));
                }
                if end_headers {
                    let (stream, end_stream) = self.gathering.take().unwrap_or_default();
                    let block = std::mem::take(&mut self.block);
                    let done = self.headers_done(stream, end_stream, &block, on, keep);
                    self.block = block;
                    done?;
                }
            }
            Frame::Settings { ack: true, .. } => {}
            Frame::Settings {
                ack: false,
                payload,
            } => {
                for (id, v) in Frame::settings(payload) {
                    self.setting(id, v)?;
                }
                frame::write::settings_ack(&mut self.out);
                self.flush_bodies();
            }
            Frame::Ping { ack: false, data } => frame::write::ping(true, data, &mut self.out),
            Frame::Ping { ack: true, .. } => {}
            Frame::WindowUpdate {
                stream: 0,
                increment,
            } => {
                if increment == 0 {
                    return Err(SessionError::FlowControl);
                }
                self.send_window += i64::from(increment);
                if self.send_window > i64::from(LAST_STREAM) {
                    return Err(SessionError::FlowControl);
                }
                self.flush_bodies();
            }
            Frame::WindowUpdate { stream, increment } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.send_window += i64::from(increment);
                    flush_body(
                        stream,
                        s,
                        &mut self.send_window,
                        self.max_frame,
                        &mut self.out,
                    );
                }
            }
            Frame::RstStream { stream, code } => {
                if self.forget(stream) {
                    on(Event::Reset { stream, code });
                }
            }
            Frame::GoAway {
                last_stream, code, ..
            } => {
                self.goaway = Some(last_stream);
                on(Event::GoAway { last_stream, code });
            }
            Frame::PushPromise { .. } => return Err(SessionError::Push),
            Frame::Ignored { .. } => {}
        }
        Ok(())
    }

    /// DATA: counted against the windows (a cancelled stream's too), given
    /// back in batches of half a window.
    fn data(
        &mut self,
        stream: u32,
        len: usize,
        flow: u32,
        end_stream: bool,
        on: &mut impl FnMut(Event),
    ) {
        self.unacked += flow;
        if let Some(s) = self.streams.get_mut(&stream) {
            s.unacked += flow;
            if len > 0 {
                on(Event::Body { stream, len });
            }
            if s.unacked >= STREAM_WINDOW / 2 && !end_stream {
                frame::write::window_update(stream, s.unacked, &mut self.out);
                s.unacked = 0;
            }
            if end_stream {
                self.forget(stream);
                on(Event::Done { stream });
            }
        }
        if self.unacked >= CONNECTION_WINDOW / 2 {
            frame::write::window_update(0, self.unacked, &mut self.out);
            self.unacked = 0;
        }
    }

    /// One of the server's SETTINGS.
    fn setting(&mut self, id: u16, v: u32) -> Result<(), SessionError> {
        match id {
            setting::MAX_CONCURRENT_STREAMS => self.max_concurrent = v,
            setting::INITIAL_WINDOW_SIZE => {
                if v > LAST_STREAM {
                    return Err(SessionError::FlowControl);
                }
                // Open streams' windows move by the change, even below
                // zero (§6.9.2).
                let delta = i64::from(v) - self.initial_window;
                self.initial_window = i64::from(v);
                for s in self.streams.values_mut() {
                    s.send_window += delta;
                }
            }
            setting::MAX_FRAME_SIZE => self.max_frame = v.clamp(1 << 14, (1 << 24) - 1),
            setting::HEADER_TABLE_SIZE if v < 4096 => self.table_size_update = Some(v),
            _ => {}
        }
        Ok(())
    }

    /// A whole header block: decoded (always, or the table drifts), its
    /// status taken, interim (1xx) heads skipped.
    fn headers_done(
        &mut self,
        stream: u32,
        end_stream: bool,
        block: &[u8],
        on: &mut impl FnMut(Event),
        keep: &mut impl FnMut(u32, Piece<'_>),
    ) -> Result<(), SessionError> {
        let mut status = None;
        let mut date = None;
        // Only a final head's fields are kept: not an interim one's, not
        // trailers, not a cancelled stream's.
        let mut kept = self.streams.get(&stream).is_some_and(|s| !s.answered);
        let dates = &mut self.dates;
        self.decoder
            .decode(block, |n, v| {
                if n == b"date" {
                    if let Some(d) = dates.as_mut() {
                        date = d.parse(v);
                    }
                }
                if n == b":status" {
                    status = std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<u16>().ok());
                    kept &= !matches!(status, Some(100..=199));
                } else if kept && !n.starts_with(b":") {
                    keep(stream, Piece::Field { name: n, value: v });
                }
            })
            .map_err(SessionError::Hpack)?;
        let Some(s) = self.streams.get_mut(&stream) else {
            // A stream we cancelled: decoded for the table, then dropped.
            return Ok(());
        };
        if !s.answered {
            match status {
                Some(100..=199) => {}
                Some(code @ 200..=999) => {
                    s.answered = true;
                    on(Event::FirstByte { stream });
                    if let Some(unix_s) = date {
                        on(Event::Date { stream, unix_s });
                    }
                    on(Event::Status {
                        stream,
                        status: code,
                    });
                }
                _ => return Err(SessionError::NoStatus { stream }),
            }
        }
        if end_stream {
            self.forget(stream);
            on(Event::Done { stream });
        }
        Ok(())
    }
}

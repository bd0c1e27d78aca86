//! HTTP/2 frames (RFC 9113 §4 and §6), read and written without I/O.
//!
//! The [`FrameReader`] is fed a connection's bytes in whatever pieces
//! they arrive and hands out one event at a time, as the HTTP/1.1 framer
//! does: every frame but DATA whole (its payload borrowed, gathered only
//! when it straddles two pieces), DATA as it comes, chunk by chunk, so
//! that a body nobody reads is counted, never copied.

use std::fmt;

/// What every client connection starts with (§3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The frame header's length.
pub const HEAD_LEN: usize = 9;

/// Whether `bytes` start as a server's side of an HTTP/2 connection
/// does: a SETTINGS frame (not an ACK) on stream 0, of a whole number of
/// settings. What an HTTP/1.1 client gets from a server that speaks only
/// HTTP/2 (nginx's `listen ... http2` sends it before reading anything).
///
/// ```
/// use proto::h2::frame::{looks_like_server_preface, write};
/// let mut s = Vec::new();
/// write::settings(&[(3, 128)], &mut s);
/// assert!(looks_like_server_preface(&s));
/// assert!(!looks_like_server_preface(b"HTTP/1.1 200 OK\r\n"));
/// ```
pub fn looks_like_server_preface(bytes: &[u8]) -> bool {
    let Some(h) = bytes.get(..HEAD_LEN) else {
        return false;
    };
    let len = u32::from_be_bytes([0, h[0], h[1], h[2]]);
    h[3] == kind::SETTINGS && h[4] == 0 && h[5..9] == [0; 4] && len % 6 == 0 && len <= 16_384
}
/// SETTINGS_MAX_FRAME_SIZE's initial value: what a peer may send until it
/// says more.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;

/// Frame flags.
pub mod flags {
    /// DATA, HEADERS: the stream's last frame from this side.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, CONTINUATION: the header block is complete.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS: a pad length and padding.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: a priority block (5 bytes) before the header block.
    pub const PRIORITY: u8 = 0x20;
}

/// Frame types (§6).
pub mod kind {
    #![allow(missing_docs)]
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// SETTINGS identifiers (§6.5.2).
pub mod setting {
    #![allow(missing_docs)]
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// A frame's 9-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The payload's length.
    pub len: u32,
    /// Its type (see [`kind`]).
    pub kind: u8,
    /// Its flags (see [`flags`]).
    pub flags: u8,
    /// Its stream (0: the connection).
    pub stream: u32,
}

impl Head {
    fn parse(b: &[u8; HEAD_LEN]) -> Head {
        Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    /// Appends the header.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_be_bytes()[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&(self.stream & 0x7fff_ffff).to_be_bytes());
    }

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A whole frame other than DATA, its payload borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A header block fragment, padding and priority removed.
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        block: &'a [u8],
    },
    /// The rest of a header block.
    Continuation {
        stream: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    /// A stream reset, with its error code.
    RstStream { stream: u32, code: u32 },
    /// Settings (6 bytes each, see [`Frame::settings`]), or their ACK.
    Settings { ack: bool, payload: &'a [u8] },
    /// A ping, or the answer to one.
    Ping { ack: bool, data: [u8; 8] },
    /// The peer is going away: streams above `last_stream` were not
    /// processed.
    GoAway {
        last_stream: u32,
        code: u32,
        debug: &'a [u8],
    },
    /// More flow-control window for a stream (0: the connection).
    WindowUpdate { stream: u32, increment: u32 },
    /// A server push (which a client that disabled push must refuse).
    PushPromise { stream: u32 },
    /// A priority signal, or a frame of a type this reader does not know:
    /// ignored (§5.5).
    Ignored { kind: u8, stream: u32 },
}

impl<'a> Frame<'a> {
    /// A SETTINGS frame's `(identifier, value)` pairs.
    pub fn settings(payload: &'a [u8]) -> impl Iterator<Item = (u16, u32)> + 'a {
        payload.chunks_exact(6).map(|s| {
            (
                u16::from_be_bytes([s[0], s[1]]),
                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
            )
        })
    }
}

/// What the reader hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole frame other than DATA.
    Frame(Frame<'a>),
    /// A piece of a DATA frame: `data` is payload (padding removed, may
    /// be empty), `flow` the bytes it takes from the flow-control windows
    /// (padding and the pad length included), `last` ends the frame, and
    /// `end_stream` is the frame's flag (set on its last piece only).
    Data {
        stream: u32,
        data: &'a [u8],
        flow: u32,
        last: bool,
        end_stream: bool,
    },
}

/// A connection error: the peer broke the framing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A frame larger than our SETTINGS_MAX_FRAME_SIZE (FRAME_SIZE_ERROR).
    TooLarge(u32),
    /// A frame whose length its type does not allow (FRAME_SIZE_ERROR).
    BadLength { kind: u8, len: u32 },
    /// Padding longer than the payload (PROTOCOL_ERROR).
    BadPadding,
    /// A frame on the wrong stream: a connection frame on a stream, or a
    /// stream frame on stream 0 (PROTOCOL_ERROR).
    BadStream { kind: u8, stream: u32 },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::TooLarge(n) => {
                write!(
                    f,
                    "the server sent a {n}-byte frame, above the maximum frame size"
                )
            }
            FrameError::BadLength { kind, len } => {
                write!(
                    f,
                    "the server sent a frame of type {kind} with a wrong length ({len})"
                )
            }
            FrameError::BadPadding => f.write_str("the server sent padding longer than its frame"),
            FrameError::BadStream { kind, stream } => {
                write!(f, "the server sent a frame of type {kind} on stream {stream}, where it does not belong")
            }
        }
    }
}

impl std::error::Error for FrameError {}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Gathering a frame header (`have` bytes of it so far).
    Head,
    /// Gathering a non-DATA frame's payload.
    Payload(Head),
    /// Inside a DATA frame: `data` payload bytes to come, then `pad`.
    Data {
        head: Head,
        pad_len_pending: bool,
        data: u32,
        pad: u32,
    },
}

/// Finds frames in a connection's byte stream (after the server's
/// preface, which is a SETTINGS frame like any other).
#[derive(Debug, Clone)]
pub struct FrameReader {
    state: State,
    head: [u8; HEAD_LEN],
    have: usize,
    /// A payload that straddled two pieces; its capacity is kept.
    buf: Vec<u8>,
    max_frame: u32,
}

impl FrameReader {
    /// A reader that refuses frames above `max_frame` bytes (what our
    /// SETTINGS_MAX_FRAME_SIZE says).
    pub fn new(max_frame: u32) -> FrameReader {
        FrameReader {
            state: State::Head,
            head: [0; HEAD_LEN],
            have: 0,
            buf: Vec::new(),
            max_frame,
        }
    }

    /// True between frames.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head) && self.have == 0
    }

    /// Consumes a prefix of `data` and returns how many bytes it took,
    /// and the event they completed, if any. Call again with the rest
    /// until all of `data` is consumed; each call consumes a byte or
    /// yields an event.
    pub fn feed<'a>(
        &'a mut self,
        data: &'a [u8],
    ) -> Result<(usize, Option<Event<'a>>), FrameError> {
        match self.state {
            State::Head => {
                let take = (HEAD_LEN - self.have).min(data.len());
                self.head[self.have..self.have + take].copy_from_slice(&data[..take]);
                self.have += take;
                if self.have < HEAD_LEN {
                    return Ok((take, None));
                }
                self.have = 0;
                let head = Head::parse(&self.head);
                check(&head, self.max_frame)?;
                if head.kind == kind::DATA {
                    self.state = State::Data {
                        head,
                        pad_len_pending: head.has(flags::PADDED),
                        data: if head.has(flags::PADDED) { 0 } else { head.len },
                        pad: 0,
                    };
                    if head.len == 0 {
                        self.state = State::Head;
                        return Ok((take, Some(data_event(head, &[], 0, true))));
                    }
                    return Ok((take, None));
                }
                self.buf.clear();
                if head.len == 0 {
                    self.state = State::Head;
                    return Ok((take, Some(Event::Frame(frame(head, &[])?))));
                }
                self.state = State::Payload(head);
                Ok((take, None))
            }
            State::Payload(head) => {
                let want = head.len as usize - self.buf.len();
                if self.buf.is_empty() && data.len() >= want {
                    // Whole in this piece: borrowed, not copied.
                    self.state = State::Head;
                    return Ok((want, Some(Event::Frame(frame(head, &data[..want])?))));
                }
                let take = want.min(data.len());
                self.buf.extend_from_slice(&data[..take]);
                if self.buf.len() < head.len as usize {
                    return Ok((take, None));
                }
                self.state = State::Head;
                Ok((take, Some(Event::Frame(frame(head, &self.buf)?))))
            }
            State::Data {
                head,
                pad_len_pending,
                data: left,
                pad,
            } => {
                if pad_len_pending {
                    let p = u32::from(data[0]);
                    if p >= head.len {
                        return Err(FrameError::BadPadding);
                    }
                    let rest = head.len - 1 - p;
                    self.state = State::Data {
                        head,
                        pad_len_pending: false,
                        data: rest,
                        pad: p,
                    };
                    let done = rest == 0 && p == 0;
                    if done {
                        self.state = State::Head;
                    }
                    return Ok((1, Some(data_event(head, &[], 1, done))));
                }
                if left > 0 {
                    let take = (left as usize).min(data.len());
                    let left = left - take as u32;
                    let done = left == 0 && pad == 0;
                    self.state = match done {
                        true => State::Head,
                        false => State::Data {
                            head,
                            pad_len_pending: false,
                            data: left,
                            pad,
                        },
                    };
                    return Ok((
                        take,
                        Some(data_event(head, &data[..take], take as u32, done)),
                    ));
                }
                let take = (pad as usize).min(data.len());
                let pad = pad - take as u32;
                self.state = match pad {
                    0 => State::Head,
                    _ => State::Data {
                        head,
                        pad_len_pending: false,
                        data: 0,
                        pad,
                    },
                };
                Ok((take, Some(data_event(head, &[], take as u32, pad == 0))))
            }
        }
    }
}

fn data_event(head: Head, data: &[u8], flow: u32, last: bool) -> Event<'_> {
    Event::Data {
        stream: head.stream,
        data,
        flow,
        last,
        end_stream: last && head.has(flags::END_STREAM),
    }
}

/// The header's rules: size, and which stream each type belongs on.
fn check(h: &Head, max_frame: u32) -> Result<(), FrameError> {
    if h.len > max_frame {
        return Err(FrameError::TooLarge(h.len));
    }
    let bad_len = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(FrameError::BadLength {
                kind: h.kind,
                len: h.len,
            })
        }
    };
    let on_stream = match h.kind {
        kind::DATA
        | kind::HEADERS
        | kind::PRIORITY
        | kind::RST_STREAM
        | kind::PUSH_PROMISE
        | kind::CONTINUATION => Some(true),
        kind::SETTINGS | kind::PING | kind::GOAWAY => Some(false),
        _ => None,
    };
    if let Some(s) = on_stream {
        if s != (h.stream != 0) {
            return Err(FrameError::BadStream {
                kind: h.kind,
                stream: h.stream,
            });
        }
    }
    match h.kind {
        kind::PRIORITY => bad_len(h.len == 5),
        kind::RST_STREAM | kind::WINDOW_UPDATE => bad_len(h.len == 4),
        kind::PING => bad_len(h.len == 8),
        kind::SETTINGS if h.has(flags::ACK) => bad_len(h.len == 0),
        kind::SETTINGS => bad_len(h.len % 6 == 0),
        kind::GOAWAY => bad_len(h.len >= 8),
        _ => Ok(()),
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A whole non-DATA frame from its header and payload.
fn frame(h: Head, p: &[u8]) -> Result<Frame<'_>, FrameError> {
    Ok(match h.kind {
        kind::HEADERS => {
            let mut b = p;
            if h.has(flags::PADDED) {
                let pad = usize::from(*b.first().ok_or(FrameError::BadPadding)?);
                b = &b[1..];
                if pad > b.len() {
                    return Err(FrameError::BadPadding);
                }
                b = &b[..b.len() - pad];
            }
            if h.has(flags::PRIORITY) {
                b = b.get(5..).ok_or(FrameError::BadLength {
                    kind: h.kind,
                    len: h.len,
                })?;
            }
            Frame::Headers {
                stream: h.stream,
                end_stream: h.has(flags::END_STREAM),
                end_headers: h.has(flags::END_HEADERS),
                block: b,
            }
        }
        kind::CONTINUATION => Frame::Continuation {
            stream: h.stream,
            end_headers: h.has(flags::END_HEADERS),
            block: p,
        },
        kind::RST_STREAM => Frame::RstStream {
            stream: h.stream,
            code: be32(p),
        },
        kind::SETTINGS => Frame::Settings {
            ack: h.has(flags::ACK),
            payload: p,
        },
        kind::PING => {
            let mut data = [0; 8];
            data.copy_from_slice(p);
            Frame::Ping {
                ack: h.has(flags::ACK),
                data,
            }
        }
        kind::GOAWAY => Frame::GoAway {
            last_stream: be32(p) & 0x7fff_ffff,
            code: be32(&p[4..]),
            debug: &p[8..],
        },
        kind::WINDOW_UPDATE => Frame::WindowUpdate {
            stream: h.stream,
            increment: be32(p) & 0x7fff_ffff,
        },
        kind::PUSH_PROMISE => Frame::PushPromise { stream: h.stream },
        k => Frame::Ignored {
            kind: k,
            stream: h.stream,
        },
    })
}

/// Writing frames: each appends one whole frame to `out`.
pub mod write {
    use super::{flags, kind, Head};

    fn head(len: usize, kind: u8, flags: u8, stream: u32, out: &mut Vec<u8>) {
        Head {
            len: len as u32,
            kind,
            flags,
            stream,
        }
        .write(out);
    }

    /// SETTINGS with these `(identifier, value)` pairs.
    pub fn settings(pairs: &[(u16, u32)], out: &mut Vec<u8>) {
        head(6 * pairs.len(), kind::SETTINGS, 0, 0, out);
        for &(id, v) in pairs {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// The acknowledgement of the peer's SETTINGS.
    pub fn settings_ack(out: &mut Vec<u8>) {
        head(0, kind::SETTINGS, flags::ACK, 0, out);
    }

    /// More window for `stream` (0: the connection).
    pub fn window_update(stream: u32, increment: u32, out: &mut Vec<u8>) {
        head(4, kind::WINDOW_UPDATE, 0, stream, out);
        out.extend_from_slice(&(increment & 0x7fff_ffff).to_be_bytes());
    }

    /// A PING, or the answer to one (the same 8 bytes, ACK set).
    pub fn ping(ack: bool, data: [u8; 8], out: &mut Vec<u8>) {
        head(8, kind::PING, if ack { flags::ACK } else { 0 }, 0, out);
        out.extend_from_slice(&data);
    }

    /// Resets `stream` with `code` (8: CANCEL).
    pub fn rst_stream(stream: u32, code: u32, out: &mut Vec<u8>) {
        head(4, kind::RST_STREAM, 0, stream, out);
        out.extend_from_slice(&code.to_be_bytes());
    }

    /// Going away: nothing above `last_stream` was processed.
    pub fn goaway(last_stream: u32, code: u32, out: &mut Vec<u8>) {
        head(8, kind::GOAWAY, 0, 0, out);
        out.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
        out.extend_from_slice(&code.to_be_bytes());
    }

    /// A header block on `stream`, in a HEADERS frame and as many
    /// CONTINUATIONs as `max_frame` needs.
    pub fn headers(
        stream: u32,
        block: &[u8],
        end_stream: bool,
        max_frame: usize,
        out: &mut Vec<u8>,
    ) {
        let mut chunks = block.chunks(max_frame.max(1)).peekable();
        let first = chunks.next().unwrap_or(&[]);
        let end = if end_stream { flags::END_STREAM } else { 0 };
        let last = chunks.peek().is_none();
        head(
            first.len(),
            kind::HEADERS,
            end | if last { flags::END_HEADERS } else { 0 },
            stream,
            out,
        );
        out.extend_from_slice(first);
        while let Some(c) = chunks.next() {
            let last = chunks.peek().is_none();
            head(
                c.len(),
                kind::CONTINUATION,
                if last { flags::END_HEADERS } else { 0 },
                stream,
                out,
            );
            out.extend_from_slice(c);
        }
    }

    /// A DATA frame (at most the peer's maximum frame size: the caller
    /// splits, as flow control decides how much may go).
    pub fn data(stream: u32, bytes: &[u8], end_stream: bool, out: &mut Vec<u8>) {
        head(
            bytes.len(),
            kind::DATA,
            if end_stream { flags::END_STREAM } else { 0 },
            stream,
            out,
        );
        out.extend_from_slice(bytes);
    }
}

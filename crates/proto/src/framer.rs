use std::mem::MaybeUninit;

use crate::chunked::{Chunked, Step};
use crate::date::DateCache;
use crate::FrameError;

/// Most header fields a response may have; more is a [`FrameError::TooManyHeaders`].
pub const MAX_HEADERS: usize = 100;
/// Largest response head accepted; larger is a [`FrameError::HeadTooLarge`].
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What the engine needs to know about one complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Whether the connection can carry another request after this
    /// response: false for `Connection: close`, for HTTP/1.0 without
    /// keep-alive and for bodies delimited by the close itself.
    pub keep_alive: bool,
    /// The body's length when the head announced it (`Content-Length`, or 0
    /// for responses that have no body); `None` for chunked bodies and
    /// bodies delimited by the close. A caller that sees long bodies can
    /// read the next ones with [`ResponseFramer::skip`].
    pub body_len: Option<u64>,
    /// The server's clock when it made the response, Unix seconds, from
    /// its `Date` header: only when asked for with
    /// [`ResponseFramer::set_dates`], and only when valid.
    pub date: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Waiting for (the rest of) a head.
    Head,
    /// Inside a body of known length.
    Sized { remaining: u64, resp: Response },
    /// Inside a chunked body.
    Chunked { chunked: Chunked, resp: Response },
    /// Inside a body that ends when the server closes the connection.
    UntilClose { resp: Response },
}

/// Finds response boundaries in a connection's byte stream.
///
/// Feed it every byte received, in order, in whatever pieces arrive; it
/// reports each response when its last byte has been seen. One framer per
/// connection; [`reset`](Self::reset) it when the connection is replaced.
///
/// ```
/// let mut f = proto::ResponseFramer::new(false);
/// let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
/// let mut done = 0;
/// for piece in wire.chunks(5) {
///     f.feed_all(piece, |r| { assert_eq!(r.status, 200); done += 1 }).unwrap();
/// }
/// assert_eq!(done, 1);
/// assert!(f.is_idle());
/// ```
#[derive(Debug, Clone)]
pub struct ResponseFramer {
    state: State,
    /// A head that did not arrive in one piece is gathered here. Empty (and
    /// usually unallocated) otherwise; its capacity is kept for reuse.
    head: Vec<u8>,
    head_request: bool,
    /// Reading `Date` headers: the last value and what it parsed to.
    dates: Option<DateCache>,
}

impl ResponseFramer {
    /// `head_request`: the requests on this connection are `HEAD`, so
    /// responses have no body whatever their headers say.
    pub fn new(head_request: bool) -> ResponseFramer {
        ResponseFramer {
            state: State::Head,
            head: Vec::new(),
            head_request,
            dates: None,
        }
    }

    /// Reads each response's `Date` header into [`Response::date`]: the
    /// server's clock, against which a client can check its own. Off by
    /// default: it costs a comparison per header.
    pub fn set_dates(&mut self, on: bool) {
        self.dates = on.then(DateCache::default);
    }

    /// Says whether the next response answers a `HEAD` (no body whatever
    /// its headers say), for connections whose requests mix methods. Takes
    /// effect when that response's head is parsed; set it between responses.
    pub fn set_head_request(&mut self, head_request: bool) {
        self.head_request = head_request;
    }

    /// Forgets any partial response, for a fresh connection.
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.head.clear();
    }

    /// True between responses: nothing of a next response has arrived.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head) && self.head.is_empty()
    }

    /// Feeds every byte of `data`, calling `on_response` for each response
    /// completed (several when pipelined).
    pub fn feed_all(
        &mut self,
        mut data: &[u8],
        mut on_response: impl FnMut(Response),
    ) -> Result<(), FrameError> {
        while !data.is_empty() {
            let (used, resp) = self.feed(data)?;
            if let Some(r) = resp {
                on_response(r);
            }
            data = &data[used..];
        }
        Ok(())
    }

    /// Consumes a prefix of `data` and returns how many bytes it took, plus
    /// the response that those bytes completed, if any. Call again with the
    /// rest until all of `data` is consumed. Each call either consumes at
    /// least one byte or completes a response.
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Response>), FrameError> {
        match self.state {
            State::Head => self.feed_head(data),
            State::Sized { remaining, resp } => {
                let n = remaining.min(data.len() as u64);
                if n == remaining {
                    self.state = State::Head;
                    Ok((n as usize, Some(resp)))
                } else {
                    self.state = State::Sized {
                        remaining: remaining - n,
                        resp,
                    };
                    Ok((n as usize, None))
                }
            }
            State::Chunked { mut chunked, resp } => match chunked.advance(data)? {
                Step::Done(n) => {
                    self.state = State::Head;
                    Ok((n, Some(resp)))
                }
                Step::More(n) => {
                    self.state = State::Chunked { chunked, resp };
                    Ok((n, None))
                }
            },
            State::UntilClose { .. } => Ok((data.len(), None)),
        }
    }

    /// Body bytes still expected in a body of known length; 0 anywhere
    /// else (in a head, a chunked body, a body that ends at the close).
    ///
    /// The caller may consume these bytes from the socket without reading
    /// them (a `recv` with `MSG_TRUNC` copies nothing) and account for them
    /// with [`skip`](Self::skip).
    ///
    /// ```
    /// let mut f = proto::ResponseFramer::new(false);
    /// let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
    /// assert_eq!(f.feed(head).unwrap(), (head.len(), None));
    /// assert_eq!(f.sized_remaining(), 100_000);
    /// assert_eq!(f.skip(60_000), None);
    /// let r = f.skip(40_000).unwrap();
    /// assert_eq!((r.status, r.body_len), (200, Some(100_000)));
    /// assert!(f.is_idle());
    /// ```
    pub fn sized_remaining(&self) -> u64 {
        match self.state {
            State::Sized { remaining, .. } => remaining,
            _ => 0,
        }
    }

    /// Accounts for `n` body bytes that were consumed without being fed
    /// (at most [`sized_remaining`](Self::sized_remaining); more is clamped
    /// to it). Returns the response if they were its last bytes.
    pub fn skip(&mut self, n: u64) -> Option<Response> {
        let State::Sized { remaining, resp } = self.state else {
            return None;
        };
        if n >= remaining {
            self.state = State::Head;
            Some(resp)
        } else {
            self.state = State::Sized {
                remaining: remaining - n,
                resp,
            };
            None
        }
    }

    /// The connection reached end of file. A body delimited by the close is
    /// complete now; anything else partial is [`FrameError::Truncated`].
    /// Returns `None` when the close fell between responses.
    pub fn finish(&mut self) -> Result<Option<Response>, FrameError> {
        let state = std::mem::replace(&mut self.state, State::Head);
        let partial_head = !self.head.is_empty();
        self.head.clear();
        match state {
            State::UntilClose { resp } => Ok(Some(resp)),
            State::Head if !partial_head => Ok(None),
            _ => Err(FrameError::Truncated),
        }
    }

    fn feed_head(&mut self, data: &[u8]) -> Result<(usize, Option<Response>), FrameError> {
        if self.head.is_empty() {
            // Common case: the whole head is in this piece; parse in place.
            return match parse_head(data, self.head_request, self.dates.as_mut())? {
                Some((len, next)) => Ok((len, self.enter(next))),
                None if data.len() > MAX_HEAD_BYTES => Err(FrameError::HeadTooLarge),
                None => {
                    self.head.extend_from_slice(data);
                    Ok((data.len(), None))
                }
            };
        }
        let old = self.head.len();
        let take = data.len().min(MAX_HEAD_BYTES + 1 - old.min(MAX_HEAD_BYTES));
        self.head.extend_from_slice(&data[..take]);
        match parse_head(&self.head, self.head_request, self.dates.as_mut())? {
            Some((len, next)) => {
                self.head.clear();
                Ok((len - old, self.enter(next)))
            }
            None if self.head.len() > MAX_HEAD_BYTES => Err(FrameError::HeadTooLarge),
            None => Ok((take, None)),
        }
    }

    /// Moves to the state after a head; returns the response if it had no body.
    fn enter(&mut self, next: State) -> Option<Response> {
        match next {
            State::Sized { remaining: 0, resp } => {
                self.state = State::Head;
                Some(resp)
            }
            other => {
                self.state = other;
                None
            }
        }
    }
}

/// Parses a head; `None` if incomplete. An interim (1xx) response is
/// returned as a zero-length state that completes nothing: it maps to
/// `State::Head` so the caller goes on to the final response.
fn parse_head(
    data: &[u8],
    head_request: bool,
    mut dates: Option<&mut DateCache>,
) -> Result<Option<(usize, State)>, FrameError> {
    // Left uninitialised: httparse writes only the headers it finds, and
    // zeroing 100 of them (3.2 kB) for every response cost more than parsing
    // a typical head.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut res,
        data,
        &mut headers,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(FrameError::TooManyHeaders),
        Err(e) => return Err(FrameError::InvalidHead(head_error(e))),
    };
    if len > MAX_HEAD_BYTES {
        // Same verdict whether the head arrived in one piece or many.
        return Err(FrameError::HeadTooLarge);
    }
    let status = res.code.unwrap_or(0);
    if (100..200).contains(&status) {
        return Ok(Some((len, State::Head)));
    }
    let mut keep_alive = res.version == Some(1);
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut date = None;
    for h in res.headers.iter() {
        let name = h.name;
        if let Some(d) = dates.as_mut().filter(|_| name.eq_ignore_ascii_case("date")) {
            date = d.parse(h.value);
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(FrameError::InvalidContentLength);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            chunked = last_token(h.value).eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && res.version == Some(0) {
                    keep_alive = true;
                }
            }
        }
    }
    let mut resp = Response {
        status,
        keep_alive,
        body_len: None,
        date,
    };
    let state = if head_request || status == 204 || status == 304 {
        resp.body_len = Some(0);
        State::Sized { remaining: 0, resp }
    } else if transfer_encoding && chunked {
        State::Chunked {
            chunked: Chunked::START,
            resp,
        }
    } else if transfer_encoding {
        State::UntilClose {
            resp: Response {
                keep_alive: false,
                ..resp
            },
        }
    } else if let Some(n) = content_length {
        resp.body_len = Some(n);
        State::Sized { remaining: n, resp }
    } else {
        State::UntilClose {
            resp: Response {
                keep_alive: false,
                ..resp
            },
        }
    };
    Ok(Some((len, state)))
}

fn parse_length(v: &[u8]) -> Result<u64, FrameError> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(FrameError::InvalidContentLength);
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + (d - b'0') as u64))
}

fn last_token(v: &[u8]) -> &[u8] {
    v.rsplit(|&b| b == b',').next().unwrap_or(v).trim_ascii()
}

fn head_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "not HTTP/1.x",
    }
}

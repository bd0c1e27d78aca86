//! The protocol seam beside the transport: on an HTTP/2 connection, the
//! sans-IO [`ClientSession`] and what the worker must know of each open
//! stream (when it was sent and meant to be sent, which target it is) to
//! book its response. An HTTP/1.1 connection needs none of it: its
//! responses come in order, so its framer and one batch's times do.

use proto::h2::session::ClientSession;

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
}

impl H2Session {
    pub(crate) fn new(depth: usize) -> H2Session {
        H2Session {
            session: ClientSession::new(),
            streams: Vec::with_capacity(depth),
            tx: Vec::new(),
        }
    }

    /// A new connection in the slot: a fresh session (its preface first),
    /// the buffers kept.
    pub(crate) fn reset(&mut self) {
        self.session = ClientSession::new();
        self.streams.clear();
        self.tx.clear();
    }
}

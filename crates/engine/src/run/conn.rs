//! One connection: a typed state machine driven by its completions.
//!
//! What can be in flight is spelt out by types, not by booleans that could
//! be combined wrongly: the receive side is one [`Recv`] (a discarding
//! receive and a multishot one cannot both be armed), the other operations
//! are an [`Ops`] set, and what one socket's life knows is a [`Life`],
//! replaced whole when the slot is released.

use proto::ResponseFramer;

use crate::io::session::H2Session;
use crate::io::token::Op;
use crate::io::transport::TlsSession;
use crate::source::Outbox;

/// Where a connection is in its life. Every transition happens in the
/// worker's loop, on a completion or a timer check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No socket. Connect once the clock reaches `at` (backoff after
    /// failures, immediately otherwise).
    Down { at: u64 },
    /// A connect is in flight since `since`; while `throttled` it counts
    /// against the worker's limit of connects in flight.
    Connecting { since: u64, throttled: bool },
    /// TLS: connected at `since`, the handshake under way (bounded by the
    /// timeout).
    Handshaking { since: u64 },
    /// Requests go out, responses come in.
    Open,
    /// Closing: cancels are in flight; the slot is released once every
    /// operation on it has completed, then the connection goes `Down` until
    /// `then`.
    Draining { then: u64 },
}

/// The receive side: at most one receive operation at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Recv {
    /// No receive in flight.
    #[default]
    Idle,
    /// A receive is in flight; a multishot one stays armed across its
    /// completions until the kernel ends it.
    Armed { multishot: bool },
    /// A multishot receive is being cancelled, so that the long bodies to
    /// come can be discarded instead of copied.
    Stopping,
    /// A discarding receive (`MSG_TRUNC`) is in flight; nothing else may
    /// read the socket until it completes.
    Discarding,
}

impl Recv {
    /// The operation in flight, if any.
    pub(crate) fn op(self) -> Option<Op> {
        match self {
            Recv::Idle => None,
            Recv::Armed { .. } | Recv::Stopping => Some(Op::Recv),
            Recv::Discarding => Some(Op::Skip),
        }
    }
}

/// Operations in flight besides the receive and the send: a small set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ops(u8);

impl Ops {
    pub(crate) const CONNECT: Ops = Ops(1);
    pub(crate) const SOCKOPT: Ops = Ops(2);

    pub(crate) fn insert(&mut self, o: Ops) {
        self.0 |= o.0;
    }

    pub(crate) fn remove(&mut self, o: Ops) {
        self.0 &= !o.0;
    }

    pub(crate) fn contains(self, o: Ops) -> bool {
        self.0 & o.0 != 0
    }
}

/// What one socket's life knows. Replaced whole when the slot is released,
/// so that nothing of one connection leaks into the next.
#[derive(Debug, Default)]
pub(crate) struct Life {
    pub recv: Recv,
    pub ops: Ops,
    /// `Some(done)` while a send is in flight: bytes of the batch already
    /// on the wire before it.
    pub send: Option<u32>,
    /// Bytes on the wire of the batch being written (ciphertext under TLS).
    pub batch_len: u32,
    /// Requests written (or being written) whose response is not complete
    /// (on HTTP/2: open streams).
    pub outstanding: u32,
    /// Requests in the outstanding batch: `batch - outstanding` of them
    /// are answered, so the next response is the one at that index.
    pub batch: u32,
    /// When the outstanding batch was sent, in µs since the run started.
    pub sent_at: u64,
    /// When the outstanding batch should have been sent (constant-rate
    /// mode); equal to `sent_at` otherwise.
    pub intended_at: u64,
    /// The server announced it will close after the current response
    /// (HTTP/1.1; an HTTP/2 server's GOAWAY is in its session).
    pub last: bool,
    /// The last response had a long body: heads are read with a short
    /// one-shot receive, bodies discarded unread (plain transport only).
    pub large: bool,
    /// A script's `delay()`: the next request waits until then (µs).
    pub held_until: Option<u64>,
    /// At least one response came on this socket: a fault now is the
    /// server's trouble, not its refusal of the connection.
    pub answered: bool,
    /// When the connection last became free to send (its last response
    /// complete), µs: a slot that fell due before then waited for the
    /// server, not for urk.
    pub free_at: u64,
    /// Responses completed on this socket.
    pub responses: u32,
}

pub(crate) struct Conn {
    pub phase: Phase,
    pub life: Life,
    pub framer: ResponseFramer,
    /// HTTP/2: the session and its streams, in place of the framer (kept
    /// across reconnects so that its buffers are reused); `None` on
    /// HTTP/1.1.
    pub h2: Option<Box<H2Session>>,
    /// TLS state on an `https://` target, `None` on the plain transport;
    /// kept across reconnects so that its send buffer is reused.
    pub tls: Option<Box<TlsSession>>,
    /// Incarnation, bumped each time the slot is reused.
    pub gen: u32,
    /// Constant-rate mode: index of this connection's next schedule slot.
    pub k: u64,
    /// Poisson arrivals: slot `k`'s position in the schedule's slot space.
    pub arrival: f64,
    /// Constant-rate mode: waiting in the worker's due queue.
    pub queued: bool,
    /// A capacity search: the step its `k` counts slots of.
    pub step: u64,
    /// Its first connect has had an outcome (the warm-up waits for all).
    pub tried: bool,
    /// Consecutive failed connects, for backoff.
    pub failures: u32,
    /// Receive buffer at the `legacy` level; empty otherwise.
    pub buf: Box<[u8]>,
    /// The batch being sent when it is not the worker's fixed request
    /// (plain sends point into it until they complete).
    pub out: Outbox,
    /// A script's response hook takes headers or bodies: every byte of the
    /// response being framed, kept until it completes.
    pub capture: Option<Vec<u8>>,
}

impl Conn {
    /// `h2_streams`: an HTTP/2 connection with this many streams at most
    /// (`None`: HTTP/1.1).
    pub(crate) fn new(
        head_request: bool,
        buf_size: usize,
        tls: bool,
        h2_streams: Option<usize>,
    ) -> Conn {
        Conn {
            phase: Phase::Down { at: 0 },
            life: Life::default(),
            framer: ResponseFramer::new(head_request),
            h2: h2_streams.map(|n| Box::new(H2Session::new(n))),
            tls: tls.then(|| Box::new(TlsSession::new())),
            gen: 0,
            k: 0,
            arrival: 0.0,
            queued: false,
            step: 0,
            tried: false,
            failures: 0,
            buf: vec![0; buf_size].into_boxed_slice(),
            out: Outbox::default(),
            capture: None,
        }
    }

    /// Every cancellable operation in flight on this slot: what a close
    /// cancels (a plain array, so that closing allocates nothing).
    pub(crate) fn in_flight(&self) -> [Option<Op>; 3] {
        let l = &self.life;
        [
            l.recv.op(),
            l.send.map(|_| Op::Send),
            l.ops.contains(Ops::CONNECT).then_some(Op::Connect),
        ]
    }

    /// The target of the next response to come, if one is outstanding
    /// and the batch was not the fixed request.
    pub(crate) fn next_target(&self) -> Option<u32> {
        next_target(&self.life, &self.out.ids)
    }

    /// The transport can consume body bytes unread (`MSG_TRUNC`): the
    /// plain one can; under TLS every record must be decrypted whole.
    /// A script that reads bodies needs them too, and HTTP/2 frames every
    /// byte.
    pub(crate) fn can_discard(&self) -> bool {
        self.tls.is_none() && self.capture.is_none() && self.h2.is_none()
    }

    /// No operation refers to the slot any more: it may be reused.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight().iter().all(Option::is_none) && !self.life.ops.contains(Ops::SOCKOPT)
    }

    /// Delay before the next connect after `failures` failures in a row:
    /// 10 ms doubling to 1 s, so a dead target never becomes a hot loop.
    pub(crate) fn backoff_us(&self) -> u64 {
        if self.failures == 0 {
            0
        } else {
            (10_000u64 << (self.failures - 1).min(7)).min(1_000_000)
        }
    }
}

/// The target of the next response on a connection whose batch had these
/// `ids` (empty for the fixed request); `None` if nothing is outstanding.
pub(crate) fn next_target(l: &Life, ids: &[u32]) -> Option<u32> {
    let answered = l.batch.checked_sub(l.outstanding)?;
    if l.outstanding == 0 {
        return None;
    }
    ids.get(answered as usize).copied()
}

//! One connection: a small state machine driven by its completions.

use proto::ResponseFramer;

/// Where a connection is in its life. Every transition happens in the
/// worker's loop, on a completion or a timer check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No socket. Connect once the clock reaches `at` (backoff after
    /// failures, immediately otherwise).
    Down { at: u64 },
    /// A connect is in flight since `since`.
    Connecting { since: u64 },
    /// Connected: requests go out, responses come in.
    Open,
    /// Closing: cancels are in flight; the slot is released once every
    /// operation on it has completed, then the connection goes `Down` until
    /// `then`.
    Draining { then: u64 },
}

pub(crate) struct Conn {
    pub phase: Phase,
    pub framer: ResponseFramer,
    /// Incarnation, bumped each time the slot is reused.
    pub gen: u32,
    /// Operations in flight that refer to this slot (connect, send, recv).
    pub ops: u8,
    pub recv_armed: bool,
    /// A cancel of the multishot receive is in flight, so that the next
    /// long body can be discarded instead of copied.
    pub stopping: bool,
    /// A discarding receive (`MSG_TRUNC`) is in flight; nothing else may
    /// read the socket until it completes.
    pub skipping: bool,
    /// The last response had a long body: heads are read with a short
    /// one-shot receive, bodies discarded unread.
    pub large: bool,
    /// `Some(done)` while a send is in flight: bytes of the batch already sent.
    pub send: Option<u32>,
    /// Bytes of the batch being written (requests × their length).
    pub batch_len: u32,
    /// Requests written (or being written) whose response is not complete.
    pub outstanding: u32,
    /// When the outstanding batch was sent, in µs since the run started.
    pub sent_at: u64,
    /// When the outstanding batch should have been sent (constant-rate
    /// mode); equal to `sent_at` otherwise.
    pub intended_at: u64,
    /// Constant-rate mode: index of this connection's next schedule slot.
    pub k: u64,
    /// Constant-rate mode: waiting in the worker's due queue.
    pub queued: bool,
    /// The server announced it will close after the current response.
    pub last: bool,
    /// Its connect in flight counts against the worker's connect limit.
    pub throttled: bool,
    /// Its first connect has had an outcome (the warm-up waits for all).
    pub tried: bool,
    /// Consecutive failed connects, for backoff.
    pub failures: u32,
    /// Receive buffer at the `legacy` level; empty otherwise.
    pub buf: Box<[u8]>,
}

impl Conn {
    pub(crate) fn new(head_request: bool, buf_size: usize) -> Conn {
        Conn {
            phase: Phase::Down { at: 0 },
            framer: ResponseFramer::new(head_request),
            gen: 0,
            ops: 0,
            recv_armed: false,
            stopping: false,
            skipping: false,
            large: false,
            send: None,
            batch_len: 0,
            outstanding: 0,
            sent_at: 0,
            intended_at: 0,
            k: 0,
            queued: false,
            last: false,
            tried: false,
            throttled: false,
            failures: 0,
            buf: vec![0; buf_size].into_boxed_slice(),
        }
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

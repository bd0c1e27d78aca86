//! How a worker's I/O is carried out, apart from what it decides.
//!
//! The worker (connections' states, pacing, warm-up, timeouts, framing,
//! stats) asks for operations and reaps their completions; a backend
//! carries them out. Completions have io_uring's shape, `(user_data, res,
//! flags)` with its `MORE` and buffer-id flags, whichever backend made them,
//! so the worker's state machine is one:
//!
//! - [`Uring`]: the operations become SQEs in one submission queue,
//!   submitted with one `io_uring_enter` per loop that also waits; sockets
//!   sit in registered file slots, receives pick provided buffers.
//! - [`Epoll`]: where io_uring is blocked. Nonblocking sockets, each
//!   registered once, edge-triggered for both directions, so no
//!   `epoll_ctl` is needed per request; operations are carried out as soon
//!   as their socket is ready, reads land in a per-worker buffer, and the
//!   wait's timeout is `epoll_wait`'s.
//!
//! The worker is generic over the backend (static dispatch): no call per
//! operation goes through a vtable.

mod epoll;
mod rxmsg;
mod uring;

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};

pub(crate) use epoll::Epoll;
pub(crate) use uring::Uring;

use crate::{EngineError, IoLevel};

/// How a receive is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvHow {
    /// Stays armed across completions until it ends (`MORE` unset).
    Multishot,
    /// One completion of at most `cap` bytes.
    Once { cap: u32 },
}

/// What a backend is set up with: the io level and the kernel features
/// the run uses, decided once before the workers start (the backend
/// knows nothing of the worker).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup {
    pub level: IoLevel,
    /// Waits carry their timeout (`EXT_ARG`) instead of timeout entries.
    pub use_ext_arg: bool,
    /// Turn off quick ACKs on each new connection (through the ring).
    pub delay_acks: bool,
    /// Consume provided buffers incrementally (`IOU_PBUF_RING_INC`).
    pub incremental_buffers: bool,
    /// Receive with `recvmsg` and report each receive's kernel timestamp
    /// (see [`crate::io::stamps`]); the sockets are made to ask for them.
    pub rx_timestamps: bool,
}

/// A completion, in io_uring's shape whichever backend made it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completion {
    /// The token of the operation (see [`crate::io::token`]).
    pub data: u64,
    /// Bytes moved, or a negated errno.
    pub res: i32,
    /// io_uring's completion flags (`MORE`, the buffer id).
    pub flags: u32,
    /// With `rx_timestamps`, a receive's kernel receive time: ns since the
    /// epoch on the realtime clock; 0 when it carried none.
    pub stamp: u64,
}

impl Completion {
    pub(crate) fn of(data: u64, res: i32, flags: u32) -> Completion {
        Completion {
            data,
            res,
            flags,
            stamp: 0,
        }
    }
}

/// How a connection's socket is made.
pub(crate) struct Socket<'a> {
    pub family: AddressFamily,
    /// TCP: with `TCP_NODELAY`.
    pub tcp: bool,
    /// The source address to bind (port 0), if one was chosen.
    pub source: Option<&'a SockaddrStorage>,
    /// Ask for kernel receive timestamps (`SO_TIMESTAMPING`).
    pub timestamps: bool,
}

impl Socket<'_> {
    /// A new socket with `flags`, bound to its source address if it has
    /// one. `IP_BIND_ADDRESS_NO_PORT` leaves the port to the connect, so
    /// that ports are shared by destination (the 4-tuple) rather than
    /// reserved per source address: without it one source address binds
    /// at most its port range's count of sockets, to every target at once.
    pub(crate) fn make(&self, flags: SockFlag) -> Result<OwnedFd, Errno> {
        let fd = socket::socket(self.family, SockType::Stream, flags, None)?;
        if self.tcp {
            socket::setsockopt(&fd, sockopt::TcpNoDelay, &true)?;
        }
        if self.timestamps {
            // A kernel that refuses costs the receive lag only: the
            // report says no stamps came.
            let _ = crate::io::stamps::enable(&fd);
        }
        if let Some(src) = self.source {
            socket::setsockopt(&fd, sockopt::IpBindAddressNoPort, &true)?;
            socket::bind(fd.as_raw_fd(), src)?;
        }
        Ok(fd)
    }
}

/// What the report says about a worker's I/O.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackendInfo {
    pub setup_flags: &'static [&'static str],
    pub buffers: u32,
    pub buffer_size: u32,
    pub incremental_buffers: bool,
}

/// A worker's I/O. Every operation carries the `token` its completion
/// will report (see [`crate::io::token`]).
pub(crate) trait Backend: Sized {
    /// Sets up for `connections` connections, on the worker's own thread.
    fn new(setup: Setup, connections: usize) -> Result<Self, EngineError>;

    /// What the report's `io` block says.
    fn info(&self) -> BackendInfo;

    /// Whether a multishot receive can be asked for.
    fn multishot(&self) -> bool;

    /// Opens a socket for connection `i`.
    fn open(&mut self, i: usize, how: &Socket<'_>) -> Result<(), Errno>;

    /// Closes connection `i`'s socket; nothing of it may be in flight.
    fn release(&mut self, i: usize);

    /// Starts connecting connection `i` to `addr`.
    ///
    /// # Safety
    /// `addr` stays valid and unmoved until the connect's completion.
    unsafe fn connect(&mut self, i: usize, token: u64, addr: &SockaddrStorage);

    /// Sends `len` bytes at `ptr` on connection `i`; the completion says
    /// how many went (maybe fewer).
    ///
    /// # Safety
    /// The bytes stay valid, unmoved and unchanged until the send's
    /// completion has been reaped.
    unsafe fn send(&mut self, i: usize, token: u64, ptr: *const u8, len: u32);

    /// Receives on connection `i`; `buf` is the connection's own buffer
    /// (used by backends without provided buffers).
    ///
    /// # Safety
    /// `buf` stays valid and unmoved until the receive's last completion,
    /// and no other receive or skip on connection `i` is asked for until
    /// then (with kernel timestamps, the connection's `recvmsg` header is
    /// the kernel's until the completion).
    unsafe fn recv(&mut self, i: usize, token: u64, how: RecvHow, buf: &mut [u8]);

    /// Consumes up to `len` bytes on connection `i` without copying them
    /// (`MSG_TRUNC`).
    ///
    /// # Safety
    /// No other receive or skip on connection `i` is asked for until this
    /// one's completion (see [`Backend::recv`]).
    unsafe fn skip(&mut self, i: usize, token: u64, len: u32);

    /// Turns quick ACKs off on connection `i` (completes with `token`), or
    /// returns false if this backend does not do it.
    fn quickack_off(&mut self, i: usize, token: u64) -> bool;

    /// Cancels the operation that will complete with `target`.
    fn cancel(&mut self, target: u64, token: u64);

    /// Hands queued operations on (to the kernel, or carries them out),
    /// without waiting.
    fn flush(&mut self) -> Result<(), EngineError>;

    /// Flushes and waits up to `max_us` for `want` completions, or (with
    /// `min_wait_us`) for at most that long before settling for one, where
    /// the backend can batch. True if the wait timed out.
    fn wait(
        &mut self,
        max_us: u64,
        want: usize,
        min_wait_us: Option<u32>,
    ) -> Result<bool, EngineError>;

    /// Whether completions are waiting to be reaped (a spinning pacer
    /// stops for them).
    fn has_completions(&mut self) -> bool;

    /// Moves every completion into `out`.
    fn reap(&mut self, out: &mut Vec<Completion>);

    /// The bytes a receive completion delivered: in the provided buffer
    /// `bid`, or in `own` (the connection's buffer) when it names none.
    fn data<'a>(&'a self, bid: Option<u16>, len: usize, own: &'a [u8]) -> &'a [u8];

    /// A receive completion's buffer has been read.
    fn settle(&mut self, bid: u16, res: i32, flags: u32);

    /// After a reap: settled buffers go back where the next receives find
    /// them.
    fn publish(&mut self);

    /// The run is over and nothing is in flight: lets go of every socket
    /// and buffer before the report is printed.
    fn finish(&mut self);

    /// Operations never came back: leak what they may still write into
    /// rather than free it.
    fn abandon(&mut self);
}

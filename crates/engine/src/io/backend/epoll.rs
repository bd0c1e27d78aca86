//! The epoll backend, for where io_uring is blocked (container seccomp
//! profiles, `kernel.io_uring_disabled`, gVisor).
//!
//! Each socket is nonblocking and registered once, edge-triggered for
//! reading and writing, and stays registered for its life: no `epoll_ctl`
//! per request (wrk makes two). Whether a socket is readable or writable is
//! remembered from its events until a call says `EAGAIN`, so operations go
//! out as soon as they are asked for when the socket is ready, and the
//! others when its event comes. What the operations did is reported as
//! io_uring-shaped completions, so the worker cannot tell the backends
//! apart. Reads land in a per-worker buffer that lives until the worker
//! has framed them (`publish`).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll as EpollFd, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{self, sockopt, SockFlag, SockaddrLike, SockaddrStorage};

use super::{Backend, BackendInfo, Completion, RecvHow, Setup, Socket};
use crate::EngineError;

/// io_uring's completion flags, reproduced: a buffer id is reported, and a
/// multishot receive stays armed.
const F_BUFFER: u32 = 1;
const F_MORE: u32 = 2;
const BUFFER_SHIFT: u32 = 16;

/// The per-worker read buffer: what one loop turn reads before the worker
/// frames it. Past this the turn stops reading and the next one goes on.
const ARENA: usize = 1 << 20;
/// Most bytes one read takes.
const READ_MAX: usize = 64 * 1024;

/// One connection's socket and what is asked of it.
#[derive(Default)]
struct Slot {
    fd: Option<OwnedFd>,
    readable: bool,
    writable: bool,
    connect: Option<u64>,
    send: Option<(u64, *const u8, u32)>,
    recv: Option<(u64, RecvHow)>,
    skip: Option<(u64, u32)>,
    /// In the list of slots to look at this turn.
    listed: bool,
}

pub(crate) struct Epoll {
    ep: EpollFd,
    slots: Vec<Slot>,
    /// Slots with something to do: a new operation, or a readiness not
    /// used up yet.
    todo: Vec<usize>,
    done: Vec<Completion>,
    arena: Vec<u8>,
    /// `(start, len)` in the arena of each read this turn; the index is
    /// the completion's buffer id.
    chunks: Vec<(usize, usize)>,
    events: Vec<EpollEvent>,
    /// Reads go through `recvmsg` and carry kernel receive timestamps.
    stamps: bool,
}

/// One nonblocking read of up to `len` bytes into `dst` (null with
/// `MSG_TRUNC`, which discards them): `recv`, or with `stamped` `recvmsg`
/// and the kernel's receive time of what it read (0: none).
///
/// # Safety
/// `dst` is null with `MSG_TRUNC` in `flags`, or valid for `len` bytes of
/// writing.
unsafe fn read(raw: i32, dst: *mut u8, len: usize, flags: i32, stamped: bool) -> (isize, u64) {
    if !stamped {
        // SAFETY: the caller's contract.
        return (unsafe { libc::recv(raw, dst.cast(), len, flags) }, 0);
    }
    let mut control = [0u8; crate::io::stamps::CONTROL_LEN];
    let mut iov = libc::iovec {
        iov_base: dst.cast(),
        iov_len: len,
    };
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.as_mut_ptr().cast();
    hdr.msg_controllen = control.len() as _;
    // SAFETY: the header, its iovec and control buffer live on this stack
    // frame for the whole (synchronous) call; `dst` is the caller's.
    let n = unsafe { libc::recvmsg(raw, &mut hdr, flags) };
    // A usize with glibc, a u32 with musl.
    #[allow(clippy::unnecessary_cast)]
    let got = (hdr.msg_controllen as usize).min(control.len());
    (n, crate::io::stamps::parse(&control[..got]).unwrap_or(0))
}

impl Epoll {
    fn list(&mut self, i: usize) {
        if !self.slots[i].listed {
            self.slots[i].listed = true;
            self.todo.push(i);
        }
    }

    /// Carries out what slot `i` can do now. True if it may do more later
    /// this turn without a new event (read budget ran out).
    fn service(&mut self, i: usize) -> bool {
        let Some(raw) = self.slots[i].fd.as_ref().map(|f| f.as_raw_fd()) else {
            return false;
        };
        let mut again = false;
        if let Some(token) = self.slots[i].connect {
            if !self.slots[i].writable {
                return false;
            }
            // SAFETY: `raw` is this slot's socket, open for the whole call
            // (the slot keeps its `OwnedFd` until `release`).
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
            let res = match socket::getsockopt(&fd, sockopt::SocketError) {
                Ok(0) => 0,
                Ok(e) => -e,
                Err(e) => -(e as i32),
            };
            self.slots[i].connect = None;
            self.done.push(Completion::of(token, res, 0));
            if res != 0 {
                return false;
            }
        }
        let s = &mut self.slots[i];
        if let Some((token, ptr, len)) = s.send {
            if s.writable {
                // SAFETY: the worker keeps these bytes unmoved and
                // unchanged until it has reaped this send's completion
                // (the `# Safety` contract of `Backend::send`).
                let n = unsafe {
                    libc::send(
                        raw,
                        ptr.cast(),
                        len as usize,
                        libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                    )
                };
                match n {
                    n if n >= 0 => {
                        s.send = None;
                        self.done.push(Completion::of(token, n as i32, 0));
                    }
                    _ => match Errno::last() {
                        Errno::EAGAIN | Errno::EINTR => s.writable = false,
                        e => {
                            s.send = None;
                            self.done.push(Completion::of(token, -(e as i32), 0));
                        }
                    },
                }
            }
        }
        let s = &mut self.slots[i];
        if let Some((token, len)) = s.skip {
            if s.readable {
                // SAFETY: MSG_TRUNC on a TCP socket discards the bytes
                // without writing to the (null) buffer.
                let (n, stamp) = unsafe {
                    read(
                        raw,
                        std::ptr::null_mut(),
                        len as usize,
                        libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                        self.stamps,
                    )
                };
                match n {
                    n if n >= 0 => {
                        s.skip = None;
                        self.done.push(Completion {
                            stamp,
                            ..Completion::of(token, n as i32, 0)
                        });
                    }
                    _ => match Errno::last() {
                        Errno::EAGAIN | Errno::EINTR => s.readable = false,
                        e => {
                            s.skip = None;
                            self.done.push(Completion::of(token, -(e as i32), 0));
                        }
                    },
                }
            }
        }
        let s = &self.slots[i];
        if let (Some((token, how)), true) = (s.recv, s.readable) {
            let room = ARENA.saturating_sub(self.arena.len());
            let cap = match how {
                RecvHow::Once { cap } => cap as usize,
                RecvHow::Multishot => READ_MAX,
            }
            .min(READ_MAX);
            if room < cap.min(4096) || self.chunks.len() >= usize::from(u16::MAX) {
                // This turn's buffer is full: read on next turn.
                return true;
            }
            let want = cap.min(room);
            let start = self.arena.len();
            // SAFETY: the arena was allocated with ARENA bytes of capacity
            // and never grows (`room` keeps reads inside it), so
            // `start..start + want` is spare capacity nothing refers to.
            let (n, stamp) = unsafe {
                let dst = self.arena.as_mut_ptr().add(start);
                read(raw, dst, want, libc::MSG_DONTWAIT, self.stamps)
            };
            let s = &mut self.slots[i];
            match n {
                n if n > 0 => {
                    let n = n as usize;
                    // SAFETY: the kernel wrote these `n` bytes just past
                    // the initialised part, inside the capacity.
                    unsafe { self.arena.set_len(start + n) };
                    let bid = self.chunks.len() as u32;
                    self.chunks.push((start, n));
                    let more = how == RecvHow::Multishot;
                    if !more {
                        s.recv = None;
                    }
                    let flags = F_BUFFER | (bid << BUFFER_SHIFT) | if more { F_MORE } else { 0 };
                    self.done.push(Completion {
                        stamp,
                        ..Completion::of(token, n as i32, flags)
                    });
                    // Edge-triggered: the rest is read without a new event.
                    again = more || s.skip.is_some();
                }
                0 => {
                    s.recv = None;
                    self.done.push(Completion::of(token, 0, 0));
                }
                _ => match Errno::last() {
                    Errno::EAGAIN | Errno::EINTR => s.readable = false,
                    e => {
                        s.recv = None;
                        self.done.push(Completion::of(token, -(e as i32), 0));
                    }
                },
            }
        }
        again
    }

    /// Looks at every listed slot once; those that can go on stay listed.
    fn run_todo(&mut self) {
        let todo = std::mem::take(&mut self.todo);
        for &i in &todo {
            self.slots[i].listed = false;
        }
        for i in todo {
            if self.service(i) {
                self.list(i);
            }
        }
    }

    /// Waits for events up to `timeout_us` and marks their sockets ready.
    fn poll(&mut self, timeout_us: u64) -> Result<usize, EngineError> {
        let ms = timeout_us.div_ceil(1000).min(i32::MAX as u64);
        let timeout = EpollTimeout::try_from(ms as i32).unwrap_or(EpollTimeout::NONE);
        let n = match self.ep.wait(&mut self.events, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => {
                return Err(EngineError::Setup {
                    what: "epoll_wait",
                    source: e.into(),
                })
            }
        };
        for k in 0..n {
            let ev = self.events[k];
            let i = ev.data() as usize;
            let f = ev.events();
            let Some(s) = self.slots.get_mut(i) else {
                continue;
            };
            let err = f.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP);
            s.readable |= err || f.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP);
            s.writable |= err || f.contains(EpollFlags::EPOLLOUT);
            self.list(i);
        }
        Ok(n)
    }
}

impl Backend for Epoll {
    fn new(setup: Setup, n: usize) -> Result<Epoll, EngineError> {
        let ep = EpollFd::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| EngineError::Setup {
            what: "epoll_create",
            source: e.into(),
        })?;
        Ok(Epoll {
            ep,
            slots: (0..n).map(|_| Slot::default()).collect(),
            todo: Vec::with_capacity(n),
            done: Vec::with_capacity(2 * n),
            arena: Vec::with_capacity(ARENA),
            chunks: Vec::new(),
            events: vec![EpollEvent::empty(); n.clamp(16, 4096)],
            stamps: setup.rx_timestamps,
        })
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            setup_flags: &[],
            buffers: 1,
            buffer_size: ARENA as u32,
            incremental_buffers: false,
        }
    }

    fn multishot(&self) -> bool {
        true
    }

    fn open(&mut self, i: usize, how: &Socket<'_>) -> Result<(), Errno> {
        let fd = how.make(SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK)?;
        let flags = EpollFlags::EPOLLIN
            | EpollFlags::EPOLLOUT
            | EpollFlags::EPOLLRDHUP
            | EpollFlags::EPOLLET;
        self.ep.add(&fd, EpollEvent::new(flags, i as u64))?;
        self.slots[i] = Slot {
            fd: Some(fd),
            ..Slot::default()
        };
        Ok(())
    }

    fn release(&mut self, i: usize) {
        // Closing the socket takes it out of the epoll set.
        self.slots[i].fd = None;
    }

    unsafe fn connect(&mut self, i: usize, token: u64, addr: &SockaddrStorage) {
        let Some(fd) = self.slots[i].fd.as_ref().map(|f| f.as_raw_fd()) else {
            self.done.push(Completion::of(token, -libc::EBADF, 0));
            return;
        };
        // SAFETY: `addr` is a valid socket address of `addr.len()` bytes,
        // read by the kernel during this call only.
        let r = unsafe { libc::connect(fd, addr.as_ptr(), addr.len()) };
        match (r, Errno::last()) {
            (0, _) => {
                self.slots[i].writable = true;
                self.done.push(Completion::of(token, 0, 0));
            }
            (_, Errno::EINPROGRESS | Errno::EAGAIN | Errno::EINTR) => {
                self.slots[i].connect = Some(token);
            }
            (_, e) => self.done.push(Completion::of(token, -(e as i32), 0)),
        }
    }

    unsafe fn send(&mut self, i: usize, token: u64, ptr: *const u8, len: u32) {
        self.slots[i].send = Some((token, ptr, len));
        self.list(i);
    }

    unsafe fn recv(&mut self, i: usize, token: u64, how: RecvHow, _buf: &mut [u8]) {
        self.slots[i].recv = Some((token, how));
        self.list(i);
    }

    unsafe fn skip(&mut self, i: usize, token: u64, len: u32) {
        self.slots[i].skip = Some((token, len));
        self.list(i);
    }

    fn quickack_off(&mut self, _i: usize, _token: u64) -> bool {
        // Not done here: it would cost a system call per connection, where
        // the ring does it asynchronously (wrk does not do it either).
        false
    }

    fn cancel(&mut self, target: u64, _token: u64) {
        let t = crate::io::token::Token::decode(target);
        let Some(t) = t else { return };
        let Some(s) = self.slots.get_mut(t.conn as usize) else {
            return;
        };
        let hit = |op: &mut Option<u64>| op.take_if(|&mut tok| tok == target).is_some();
        let cancelled = hit(&mut s.connect)
            || s.send.take_if(|x| x.0 == target).is_some()
            || s.recv.take_if(|x| x.0 == target).is_some()
            || s.skip.take_if(|x| x.0 == target).is_some();
        if cancelled {
            self.done.push(Completion::of(target, -libc::ECANCELED, 0));
        }
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        self.run_todo();
        Ok(())
    }

    fn wait(
        &mut self,
        max_us: u64,
        _want: usize,
        _min_wait_us: Option<u32>,
    ) -> Result<bool, EngineError> {
        self.run_todo();
        // Work in hand (completions to reap, reads left over): only look
        // for new events.
        let busy = !self.done.is_empty() || !self.todo.is_empty();
        let n = self.poll(if busy { 0 } else { max_us })?;
        self.run_todo();
        Ok(n == 0 && !busy && self.done.is_empty())
    }

    fn has_completions(&mut self) -> bool {
        if self.done.is_empty() && self.poll(0).is_ok() {
            self.run_todo();
        }
        !self.done.is_empty()
    }

    fn reap(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.done);
    }

    fn data<'a>(&'a self, bid: Option<u16>, len: usize, own: &'a [u8]) -> &'a [u8] {
        match bid.and_then(|b| self.chunks.get(usize::from(b))) {
            Some(&(start, n)) => &self.arena[start..start + n.min(len)],
            None => &own[..len.min(own.len())],
        }
    }

    fn settle(&mut self, _bid: u16, _res: i32, _flags: u32) {}

    fn publish(&mut self) {
        // Every read of this turn has been framed.
        self.arena.clear();
        self.chunks.clear();
    }

    fn finish(&mut self) {
        for s in &mut self.slots {
            s.fd = None;
        }
    }

    fn abandon(&mut self) {}
}

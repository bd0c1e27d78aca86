//! The io_uring backend: every operation is an SQE, queued in the worker's
//! loop and submitted with the one `io_uring_enter` that also waits.
//! Sockets live in registered file slots (one per connection), receives
//! select provided buffers from a buffer ring (5.19+) or read into the
//! connection's own buffer (`legacy`).

use std::os::fd::AsRawFd;

use io_uring::types::{Fixed, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use nix::errno::Errno;
use nix::sys::socket::{SockFlag, SockaddrLike, SockaddrStorage};

use super::rxmsg::RxMsgs;
use super::{Backend, BackendInfo, Completion, RecvHow, Setup, Socket};
use crate::io::bufring::BufRing;
use crate::io::ring;
use crate::io::token::{Op, Token};
use crate::{EngineError, IoLevel};

pub(crate) struct Uring {
    /// Declared first so it is dropped first: the kernel lets go of every
    /// buffer below before they are freed.
    ring: IoUring,
    setup_flags: &'static [&'static str],
    bufs: Option<BufRing>,
    level: IoLevel,
    ext_arg: bool,
    delay_acks: bool,
    pending: Vec<squeue::Entry>,
    /// Without EXT_ARG a timeout entry wakes the wait; it cannot be moved
    /// once armed.
    timer: Box<Timespec>,
    timer_armed: bool,
    /// With kernel timestamps: receives are `recvmsg`s, with these headers.
    rx: Option<RxMsgs>,
}

impl Backend for Uring {
    fn new(shared: Setup, n: usize) -> Result<Uring, EngineError> {
        let sq = (2 * n + 16).next_power_of_two().clamp(64, 32_768) as u32;
        let cq = (4 * n + 64).next_power_of_two().clamp(128, 65_536) as u32;
        let ring::Ring { ring, flags } = ring::build(sq, cq)?;
        let table = vec![-1; n];
        ring.submitter()
            .register_files(&table)
            .map_err(|source| EngineError::Setup {
                what: "registering the connection file table",
                source,
            })?;
        let bufs = match shared.level {
            IoLevel::Legacy | IoLevel::Epoll | IoLevel::Auto => None,
            IoLevel::Basic | IoLevel::Full => {
                // Without incremental consumption every receive takes a
                // whole buffer, however few bytes it brings: one small
                // buffer per connection (up to 2048 shared by more). With
                // it, receives pack into a few large buffers.
                // A multishot `recvmsg` puts a header in each buffer
                // ahead of its payload: one buffer per receive, then.
                let inc = shared.incremental_buffers && !shared.rx_timestamps;
                let (count, size) = if inc {
                    ((n / 8).next_power_of_two().clamp(16, 256), 64 * 1024)
                } else {
                    (n.next_power_of_two().clamp(64, 2048), 8 * 1024)
                };
                let b = BufRing::new(&ring.submitter(), count as u16, size, 0, inc).map_err(
                    |source| EngineError::Setup {
                        what: "registering the provided buffer ring",
                        source,
                    },
                )?;
                Some(b)
            }
        };
        let rx = shared
            .rx_timestamps
            .then(|| RxMsgs::new(n, bufs.as_ref().map_or(0, |b| usize::from(b.count()))));
        Ok(Uring {
            rx,
            ring,
            setup_flags: flags,
            bufs,
            level: shared.level,
            ext_arg: shared.use_ext_arg,
            delay_acks: shared.delay_acks,
            pending: Vec::with_capacity(2 * n + 16),
            timer: Box::new(Timespec::new()),
            timer_armed: false,
        })
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            setup_flags: self.setup_flags,
            buffers: self.bufs.as_ref().map_or(0, |b| u32::from(b.count())),
            buffer_size: self.bufs.as_ref().map_or(0, |b| b.buf_size()),
            incremental_buffers: self.bufs.as_ref().is_some_and(|b| b.incremental()),
        }
    }

    fn multishot(&self) -> bool {
        self.bufs.is_some() && self.level == IoLevel::Full
    }

    fn open(&mut self, i: usize, how: &Socket<'_>) -> Result<(), Errno> {
        let fd = how.make(SockFlag::SOCK_CLOEXEC)?;
        self.ring
            .submitter()
            .register_files_update(i as u32, &[fd.as_raw_fd()])
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        // `fd` closes here; the fixed slot keeps the socket open.
        Ok(())
    }

    fn release(&mut self, i: usize) {
        let _ = self.ring.submitter().register_files_update(i as u32, &[-1]);
    }

    unsafe fn connect(&mut self, i: usize, token: u64, addr: &SockaddrStorage) {
        let e = opcode::Connect::new(Fixed(i as u32), addr.as_ptr(), addr.len())
            .build()
            .user_data(token);
        self.pending.push(e);
    }

    unsafe fn send(&mut self, i: usize, token: u64, ptr: *const u8, len: u32) {
        let e = opcode::Send::new(Fixed(i as u32), ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(token);
        self.pending.push(e);
    }

    unsafe fn recv(&mut self, i: usize, token: u64, how: RecvHow, buf: &mut [u8]) {
        let fd = Fixed(i as u32);
        let e = match (&self.bufs, how, &mut self.rx) {
            (Some(b), RecvHow::Multishot, Some(rx)) => {
                opcode::RecvMsgMulti::new(fd, rx.arm_multi(i), b.bgid()).build()
            }
            (Some(b), RecvHow::Multishot, None) => opcode::RecvMulti::new(fd, b.bgid()).build(),
            (Some(b), RecvHow::Once { cap }, Some(rx)) => {
                let len = b.buf_size().min(cap) as usize;
                opcode::RecvMsg::new(fd, rx.arm(i, std::ptr::null_mut(), len))
                    .buf_group(b.bgid())
                    .build()
                    .flags(squeue::Flags::BUFFER_SELECT)
            }
            (Some(b), RecvHow::Once { cap }, None) => {
                opcode::Recv::new(fd, std::ptr::null_mut(), b.buf_size().min(cap))
                    .buf_group(b.bgid())
                    .build()
                    .flags(squeue::Flags::BUFFER_SELECT)
            }
            (None, how, rx) => {
                let cap = match how {
                    RecvHow::Once { cap } => cap,
                    RecvHow::Multishot => u32::MAX,
                };
                let len = (buf.len() as u32).min(cap);
                match rx {
                    Some(rx) => {
                        opcode::RecvMsg::new(fd, rx.arm(i, buf.as_mut_ptr(), len as usize)).build()
                    }
                    None => opcode::Recv::new(fd, buf.as_mut_ptr(), len).build(),
                }
            }
        };
        self.pending.push(e.user_data(token));
    }

    unsafe fn skip(&mut self, i: usize, token: u64, len: u32) {
        // No buffer is lent: with MSG_TRUNC a TCP receive consumes the
        // bytes without writing to the (null) address.
        // No MSG_WAITALL: io_uring retries a short read by the amount the
        // buffer advanced, and a discarding read advances nothing, so the
        // retry never ends. A short skip completes and goes again.
        let fd = Fixed(i as u32);
        let e = match &mut self.rx {
            Some(rx) => opcode::RecvMsg::new(fd, rx.arm(i, std::ptr::null_mut(), len as usize))
                .flags(libc::MSG_TRUNC as u32)
                .build(),
            None => opcode::Recv::new(fd, std::ptr::null_mut(), len)
                .flags(libc::MSG_TRUNC)
                .build(),
        };
        self.pending.push(e.user_data(token));
    }

    fn quickack_off(&mut self, i: usize, token: u64) -> bool {
        static OFF: libc::c_int = 0;
        if !self.delay_acks {
            return false;
        }
        // `OFF` is static, so the pointer is valid whenever the kernel reads it.
        let e = opcode::SetSockOpt::new(
            Fixed(i as u32),
            libc::IPPROTO_TCP as u32,
            libc::TCP_QUICKACK as u32,
            &OFF as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        )
        .build()
        .user_data(token);
        self.pending.push(e);
        true
    }

    fn cancel(&mut self, target: u64, token: u64) {
        self.pending
            .push(opcode::AsyncCancel::new(target).build().user_data(token));
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        let (submitter, mut sq, _) = self.ring.split();
        let mut pushed = 0;
        for e in &self.pending {
            // SAFETY: every buffer an entry points to outlives its
            // operation: the worker keeps request bytes, outboxes, TLS
            // buffers and the sockaddr unmoved until the completion (the
            // `# Safety` contract of `send`, `recv`, `skip` and
            // `connect`); socket option values are static; provided
            // buffers belong to the buffer ring, kept (or leaked) until the
            // kernel hands the operation back; the timespec is copied by
            // the kernel on submit; a `recvmsg`'s header, iovec and control
            // bytes are its connection's slot in `rx` (boxed, kept or
            // leaked with the ring), which the kernel owns until the
            // receive's completion: the worker has one receive in flight
            // per connection (the contract of `recv` and `skip`), and the
            // multishot template is read on submit.
            if unsafe { sq.push(e) }.is_err() {
                sq.sync();
                if submitter.submit().is_err() {
                    break;
                }
                sq.sync();
                // SAFETY: as above.
                if unsafe { sq.push(e) }.is_err() {
                    break;
                }
            }
            pushed += 1;
        }
        sq.sync();
        drop(sq);
        self.pending.drain(..pushed);
        // Submitting happens in `wait` (or `submit_only`), in the same
        // system call that waits.
        Ok(())
    }

    fn wait(
        &mut self,
        max_us: u64,
        want: usize,
        min_wait_us: Option<u32>,
    ) -> Result<bool, EngineError> {
        if max_us == 0 {
            return submit_only(&self.ring).map(|()| false);
        }
        if !self.ext_arg && !self.timer_armed {
            *self.timer = Timespec::new().nsec((max_us * 1000) as u32);
            let e = opcode::Timeout::new(&*self.timer)
                .build()
                .user_data(Token::new(Op::Timer, 0, 0).encode());
            self.pending.push(e);
            self.timer_armed = true;
        }
        self.flush()?;
        let r = if self.ext_arg {
            let ts = Timespec::new().nsec((max_us * 1000) as u32);
            let mut args = SubmitArgs::new().timespec(&ts);
            if let Some(us) = min_wait_us {
                args = args.min_wait_usec(us);
            }
            self.ring.submitter().submit_with_args(want, &args)
        } else {
            self.ring.submitter().submit_and_wait(1)
        };
        match r {
            Ok(_) => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(true),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(false)
            }
            Err(source) => Err(EngineError::Setup {
                what: "io_uring_enter",
                source,
            }),
        }
    }

    fn has_completions(&mut self) -> bool {
        !self.ring.completion().is_empty()
    }

    fn reap(&mut self, out: &mut Vec<Completion>) {
        let mut cq = self.ring.completion();
        cq.sync();
        for c in cq {
            let token = Token::decode(c.user_data());
            if token.is_some_and(|t| t.op == Op::Timer) {
                self.timer_armed = false;
                continue;
            }
            let mut done = Completion::of(c.user_data(), c.result(), c.flags());
            if let (Some(rx), Some(t)) = (&mut self.rx, token) {
                if matches!(t.op, Op::Recv | Op::Skip) && done.res >= 0 {
                    let i = t.conn as usize;
                    match (&mut self.bufs, cqueue::buffer_select(done.flags)) {
                        // Only a multishot receive puts its header in the
                        // buffer ahead of the payload.
                        (Some(b), Some(bid)) if rx.multishot(i) => {
                            let raw = done.res;
                            (done.res, done.stamp) = rx.multi_done(bid, b.get(bid, raw as usize));
                            if done.res < 0 {
                                // A header that does not parse: the worker
                                // sees an error and settles nothing, so the
                                // buffer goes back here.
                                b.settle(bid, raw, done.flags);
                            }
                        }
                        // One that ended without a buffer has no stamp
                        // (the connection's slot holds an older read's).
                        _ if rx.multishot(i) => {}
                        _ => done.stamp = rx.single(i),
                    }
                }
            }
            out.push(done);
        }
    }

    fn data<'a>(&'a self, bid: Option<u16>, len: usize, own: &'a [u8]) -> &'a [u8] {
        match (&self.bufs, bid) {
            (Some(b), Some(bid)) => {
                let at = self.rx.as_ref().map_or(0, |rx| rx.payload_at(bid));
                &b.get(bid, at + len)[at..]
            }
            _ => &own[..len.min(own.len())],
        }
    }

    fn settle(&mut self, bid: u16, res: i32, flags: u32) {
        if let Some(b) = &mut self.bufs {
            b.settle(bid, res, flags);
        }
        if let Some(rx) = &mut self.rx {
            rx.recycled(bid);
        }
    }

    fn publish(&mut self) {
        if let Some(b) = &mut self.bufs {
            b.publish();
        }
    }

    fn abandon(&mut self) {
        // The kernel may still write into the provided buffers, and into
        // the headers of single-shot `recvmsg`s.
        std::mem::forget(self.bufs.take());
        std::mem::forget(self.rx.take());
    }

    fn finish(&mut self) {
        if let Some(b) = &self.bufs {
            b.unregister(&self.ring.submitter());
        }
        // Close every socket now, not when the ring's teardown gets to it
        // after the process is gone: the server sees the closes before the
        // report is printed (and before a next run starts connecting).
        let _ = self.ring.submitter().unregister_files();
    }
}

fn submit_only(ring: &IoUring) -> Result<(), EngineError> {
    match ring.submit() {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
            ) =>
        {
            Ok(())
        }
        Err(source) => Err(EngineError::Setup {
            what: "io_uring_enter",
            source,
        }),
    }
}

//! A worker: one thread, one ring, a slice of the connections.
//!
//! The loop reads top to bottom: reap completions (advancing each
//! connection's state machine), check timers, queue the SQEs that produced,
//! and submit them all with one `io_uring_enter` that also waits.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hdrhistogram::serialization::Serializer;
use hdrhistogram::Histogram;
use io_uring::types::{Fixed, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use nix::sys::socket::{
    self, sockopt, AddressFamily, SockFlag, SockType, SockaddrLike, SockaddrStorage,
};
use proto::Response;

use crate::bufring::BufRing;
use crate::conn::{Conn, Phase};
use crate::schedule::Schedule;
use crate::stats::{Interval, WorkerStats};
use crate::token::{Op, Token};
use crate::{ring, EngineError, IoLevel};

/// Timer and scan granularity: timeouts, backoff and the stop are checked
/// this often.
const TICK_US: u64 = 10_000;
/// Length of a timeline interval (`--hdr-log`, the JSON timeline).
const INTERVAL_US: u64 = 1_000_000;
/// wrk's Req/Sec sampling interval.
const SAMPLE_US: u64 = 100_000;
/// After the stop, wait at most this long for in-flight responses (or the
/// timeout, if shorter).
const GRACE_US: u64 = 1_000_000;
/// After Ctrl-C, wait only this long.
const INTERRUPT_GRACE_US: u64 = 100_000;
/// The warm-up never lasts longer than this (or the timeout). Opening 10000
/// loopback connections takes 0.2-0.4 s on a 2-core machine; ending the
/// warm-up before that starts the load while thousands of connections still
/// wait in the server's accept queue, where a busy server (nginx accepts one
/// per event-loop turn) leaves them until their requests time out. Stalled
/// connects (a dropped SYN is retried after 1 s) end it sooner: see
/// `WARMUP_STALL_US`.
const WARMUP_MAX_US: u64 = 2_000_000;
/// The warm-up ends when no first connect has completed for this long.
const WARMUP_STALL_US: u64 = 50_000;
/// Most connects a worker keeps in flight: opening 10000 connections at
/// once overflows a server's listen backlog (511 by default for nginx), and
/// the dropped SYNs come back as connect timeouts.
const MAX_CONNECTING: u32 = 128;
/// A connect older than this is probably waiting for a SYN retransmit (1 s):
/// it stops holding back the others.
const CONNECT_STALE_US: u64 = 100_000;
/// Bodies at least this long are discarded unread (`MSG_TRUNC`) after a
/// short head receive, instead of being copied into buffers. Measured on
/// loopback against nginx at c=50 (CPU-µs per request, copy vs discard):
/// 16 KiB 13.7 vs 14.5 (the extra receive costs what the copy did), 32 KiB
/// 21.2 vs 19.1, 64 KiB 32.9 vs 26.1, 256 KiB 90.5 vs 65.4.
const SKIP_MIN: u64 = 32 * 1024;
/// What a head receive reads on a connection with long bodies: a typical
/// head and the start of the body, so that the rest can be discarded.
const HEAD_PEEK: u32 = 1024;
/// Most bytes one discarding receive asks for (its length is 32-bit).
const SKIP_MAX: u64 = 1 << 30;
/// Most completions a batched wait asks for: enough to amortise the
/// wake-up, few enough that a batch never starves the buffer ring.
const MAX_BATCH: u64 = 32;
/// Requests in flight per step of a longer batched wait (see `wait`): 64
/// queued requests keep a server busy for far longer than one batch wait.
const DEEP_QUEUE: u64 = 64;
/// The longest stretch of a batched wait: 16x cut `io_uring_enter` calls
/// at 10000 connections another 5x but no CPU time worth measuring, and a
/// fast server with a short queue would idle through a long nap.
const MAX_DEPTH: u64 = 4;
/// How long shutdown waits for the kernel to hand back every operation.
const DRAIN_US: u64 = 1_000_000;

/// Read-only facts every worker shares.
pub(crate) struct Shared<'a> {
    pub request: Vec<u8>,
    pub pipeline: u32,
    pub head_request: bool,
    pub addr: SocketAddr,
    pub level: IoLevel,
    pub use_ext_arg: bool,
    /// Turn off quick ACKs on each new connection (through the ring).
    pub delay_acks: bool,
    /// Consume provided buffers incrementally (`IOU_PBUF_RING_INC`).
    pub incremental_buffers: bool,
    /// Batch the wait for this many µs (needs IORING_FEAT_MIN_TIMEOUT).
    pub batch_wait_us: Option<u32>,
    pub timeout_us: u64,
    pub duration_us: u64,
    pub stop: &'a AtomicBool,
    /// Constant-rate mode (`-R`).
    pub schedule: Option<Schedule>,
    /// Keep per-second interval histograms.
    pub intervals: bool,
    /// Running totals for a progress display.
    pub live: Option<&'a crate::Live>,
}

/// What a worker hands back.
pub(crate) struct Outcome {
    /// CPU time (user + system) this worker's thread used until the stop.
    pub cpu_s: f64,
    pub stats: WorkerStats,
    pub ended_us: u64,
    pub interrupted: bool,
    pub setup_flags: &'static [&'static str],
    pub buffers: u32,
    pub buffer_size: u32,
    pub incremental_buffers: bool,
}

pub(crate) struct Worker<'a> {
    /// Declared first so it is dropped first: the kernel lets go of every
    /// buffer below before they are freed.
    ring: IoUring,
    setup_flags: &'static [&'static str],
    bufs: Option<BufRing>,
    conns: Vec<Conn>,
    /// This worker's copy of the request bytes; sends point into it.
    request: Box<[u8]>,
    sockaddr: Box<SockaddrStorage>,
    family: AddressFamily,
    shared: &'a Shared<'a>,
    pending: Vec<squeue::Entry>,
    cqes: Vec<(u64, i32, u32)>,
    timer: Box<Timespec>,
    timer_armed: bool,
    stats: WorkerStats,
    start: Instant,
    quota: Option<u64>,
    in_flight: u64,
    stop_at: Option<u64>,
    grace_us: u64,
    interrupted: bool,
    next_scan: u64,
    next_sample: u64,
    sampled_requests: u64,
    sampled_errors: u64,
    /// Connects in flight.
    connecting: u32,
    /// The last scan (or a release) held connects back for the limit.
    deferred_connects: bool,
    /// Where the next pass over held-back connects resumes.
    connect_cursor: usize,
    /// Before the first request: waiting for every first connect.
    warming: bool,
    /// Connections whose first connect has not had an outcome yet.
    untried: usize,
    /// When the last first-connect outcome arrived: the warm-up does not
    /// wait for stragglers (a dropped SYN is retried only after 1 s).
    last_connect_outcome: u64,
    /// Constant-rate mode: when the schedule's slot 0 is due (end of warm-up).
    schedule_start: u64,
    /// Global index of this worker's first connection (for the schedule).
    conn_base: usize,
    /// Constant-rate mode: connections waiting for their next slot.
    due: BinaryHeap<Reverse<(u64, u32)>>,
    interval: Option<Histogram<u64>>,
    interval_index: u32,
    interval_requests: u64,
    interval_errors: u64,
}

impl<'a> Worker<'a> {
    /// Builds the ring and its resources. Runs on the worker's own thread
    /// (SINGLE_ISSUER wants the creator to be the submitter).
    pub(crate) fn new(
        shared: &'a Shared<'a>,
        connections: usize,
        conn_base: usize,
        quota: Option<u64>,
    ) -> Result<Worker<'a>, EngineError> {
        let n = connections;
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
        let (bufs, legacy_buf) = match shared.level {
            IoLevel::Legacy => (None, if n > 1000 { 4096 } else { 16 * 1024 }),
            _ => {
                // Without incremental consumption every receive takes a
                // whole buffer, however few bytes it brings: one small
                // buffer per connection (up to 2048 shared by more). With
                // it, receives pack into a few large buffers.
                let inc = shared.incremental_buffers;
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
                (Some(b), 0)
            }
        };
        let conns = (0..n)
            .map(|_| Conn::new(shared.head_request, legacy_buf))
            .collect();
        let family = match shared.addr {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        Ok(Worker {
            ring,
            setup_flags: flags,
            bufs,
            conns,
            request: shared.request.clone().into_boxed_slice(),
            sockaddr: Box::new(SockaddrStorage::from(shared.addr)),
            family,
            shared,
            pending: Vec::with_capacity(2 * n + 16),
            cqes: Vec::with_capacity(cq as usize),
            timer: Box::new(Timespec::new()),
            timer_armed: false,
            stats: WorkerStats::new(),
            start: Instant::now(),
            quota,
            in_flight: 0,
            stop_at: None,
            grace_us: GRACE_US.min(shared.timeout_us),
            interrupted: false,
            next_scan: 0,
            next_sample: SAMPLE_US,
            sampled_requests: 0,
            sampled_errors: 0,
            connecting: 0,
            deferred_connects: false,
            connect_cursor: 0,
            warming: true,
            untried: n,
            last_connect_outcome: 0,
            schedule_start: 0,
            conn_base,
            due: BinaryHeap::with_capacity(if shared.schedule.is_some() { n } else { 0 }),
            interval: shared.intervals.then(crate::stats::new_latency_histogram),
            interval_index: 0,
            interval_requests: 0,
            interval_errors: 0,
        })
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Runs the load until the stop, then closes everything.
    pub(crate) fn run(mut self, start: Instant) -> Result<Outcome, EngineError> {
        self.start = start;
        loop {
            let now = self.now();
            self.reap(now);
            self.tick(now);
            if self.finished(now) {
                break;
            }
            self.flush(now)?;
            self.wait(self.wait_budget(now))?;
        }
        let ended_us = self.now();
        self.stats.unfinished = self.in_flight;
        if let Some(s) = &self.shared.schedule {
            let window = self
                .stop_at
                .unwrap_or(ended_us)
                .saturating_sub(self.schedule_start);
            self.stats.scheduled = (0..self.conns.len())
                .map(|i| s.conn_slots_by(self.conn_base + i, window))
                .sum();
            if let Some(q) = self.quota {
                self.stats.scheduled = self.stats.scheduled.min(q);
            }
        }
        if self.interval.is_some() {
            self.close_interval();
        }
        if self.shared.schedule.is_none() {
            // Closed loop: every request is sent when it is due, so the
            // two distributions are one (see `WorkerStats::response`).
            let _ = self.stats.uncorrected.add(&self.stats.latency);
        }
        let cpu_s = thread_cpu_seconds();
        let clean = self.shutdown();
        let buffers = self.bufs.as_ref().map_or(0, |b| u32::from(b.count()));
        let incremental_buffers = self.bufs.as_ref().is_some_and(|b| b.incremental());
        let buffer_size = self
            .bufs
            .as_ref()
            .map_or(self.conns.first().map_or(0, |c| c.buf.len() as u32), |b| {
                b.buf_size()
            });
        if !clean {
            // The kernel still holds operations that point into these
            // buffers; leaking them is the only safe choice.
            std::mem::forget(self.bufs.take());
            std::mem::forget(std::mem::take(&mut self.conns));
            std::mem::forget(std::mem::take(&mut self.request));
        }
        Ok(Outcome {
            cpu_s,
            stats: std::mem::replace(&mut self.stats, WorkerStats::new()),
            ended_us,
            interrupted: self.interrupted,
            setup_flags: self.setup_flags,
            buffers,
            buffer_size,
            incremental_buffers,
        })
    }

    // ---- reap: completions advance connections ----

    fn reap(&mut self, now: u64) {
        let mut cqes = std::mem::take(&mut self.cqes);
        {
            let mut cq = self.ring.completion();
            cq.sync();
            cqes.extend(cq.map(|c| (c.user_data(), c.result(), c.flags())));
        }
        self.stats.completions += cqes.len() as u64;
        for &(data, res, flags) in &cqes {
            let Some(t) = Token::decode(data) else {
                continue;
            };
            let i = t.conn as usize;
            if t.op == Op::Timer {
                self.timer_armed = false;
                continue;
            }
            if t.op == Op::Cancel || i >= self.conns.len() || self.conns[i].gen != t.gen {
                continue;
            }
            match t.op {
                Op::Connect => self.on_connect(i, res, now),
                Op::Send => self.on_send(i, res, now),
                Op::Recv => self.on_recv(i, res, flags, now),
                Op::Skip => self.on_skip(i, res, now),
                Op::SockOpt => {
                    // A refused option costs only packets, never a request.
                    self.conns[i].ops -= 1;
                    self.release_if_idle(i, now);
                }
                Op::Cancel | Op::Timer => {}
            }
        }
        cqes.clear();
        self.cqes = cqes;
        if let Some(b) = &mut self.bufs {
            b.publish();
        }
    }

    fn on_connect(&mut self, i: usize, res: i32, now: u64) {
        if std::mem::take(&mut self.conns[i].throttled) {
            self.connecting -= 1;
        }
        let c = &mut self.conns[i];
        c.ops -= 1;
        if !c.tried {
            c.tried = true;
            self.untried -= 1;
            self.last_connect_outcome = now;
        }
        if matches!(c.phase, Phase::Draining { .. }) {
            return self.release_if_idle(i, now);
        }
        if res < 0 {
            self.stats.errors.connect += 1;
            self.stats.connect_causes.count(-res);
            c.failures += 1;
            let at = now + c.backoff_us();
            return self.close(i, at, now);
        }
        c.phase = Phase::Open;
        c.failures = 0;
        if self.shared.delay_acks {
            self.delay_acks(i);
        }
        self.arm_recv(i);
        self.try_send(i, now);
    }

    fn on_send(&mut self, i: usize, res: i32, now: u64) {
        let c = &mut self.conns[i];
        c.ops -= 1;
        let done = c.send.take().unwrap_or(0);
        if matches!(c.phase, Phase::Draining { .. }) {
            return self.release_if_idle(i, now);
        }
        if res <= 0 {
            self.stats.errors.write += 1;
            return self.fail(i, now);
        }
        self.stats.bytes_written += res as u64;
        let done = done + res as u32;
        let c = &self.conns[i];
        if done < c.batch_len {
            self.push_send_range(i, done as usize, c.batch_len as usize);
        } else if c.outstanding == 0 {
            // The responses overtook the send's completion.
            self.try_send(i, now);
        }
    }

    fn on_recv(&mut self, i: usize, res: i32, flags: u32, now: u64) {
        let bid = cqueue::buffer_select(flags);
        let c = &mut self.conns[i];
        if !cqueue::more(flags) {
            c.ops -= 1;
            c.recv_armed = false;
            c.stopping = false;
        }
        let draining = matches!(c.phase, Phase::Draining { .. });
        // Frame before settling: settling may give the buffer back.
        let ok = res <= 0 || draining || self.frame(i, bid, res as usize, now);
        if let (Some(b), Some(bid)) = (&mut self.bufs, bid) {
            b.settle(bid, res, flags);
        }
        if draining {
            return self.release_if_idle(i, now);
        }
        match res {
            n if n > 0 => {
                self.stats.bytes_read += n as u64;
                if !self.carry_on(i, ok, now) {
                    return;
                }
                let c = &mut self.conns[i];
                if c.recv_armed
                    && !c.stopping
                    && (c.large || c.framer.sized_remaining() >= SKIP_MIN)
                {
                    // A multishot receive would copy the long bodies to
                    // come: stop it; once it has ended, `next_recv`
                    // discards them instead.
                    c.stopping = true;
                    self.cancel(i, Op::Recv);
                }
            }
            0 => self.on_eof(i, now),
            e if e == -libc::ENOBUFS
                || e == -libc::ECANCELED
                || e == -libc::EINTR
                || e == -libc::EAGAIN => {}
            _ => {
                self.stats.errors.read += 1;
                return self.fail(i, now);
            }
        }
        self.next_recv(i);
    }

    /// A discarding receive completed: `res` body bytes are gone unread.
    fn on_skip(&mut self, i: usize, res: i32, now: u64) {
        let c = &mut self.conns[i];
        c.ops -= 1;
        c.skipping = false;
        if matches!(c.phase, Phase::Draining { .. }) {
            return self.release_if_idle(i, now);
        }
        match res {
            n if n > 0 => {
                self.stats.bytes_read += n as u64;
                let ok = match c.framer.skip(n as u64) {
                    Some(r) => self.book_response(i, r, now),
                    None => true,
                };
                if !self.carry_on(i, ok, now) {
                    return;
                }
            }
            // The server closed inside a body: a truncated response.
            0 => return self.on_eof(i, now),
            e if e == -libc::EINTR || e == -libc::EAGAIN => {}
            _ => {
                self.stats.errors.read += 1;
                return self.fail(i, now);
            }
        }
        self.next_recv(i);
    }

    /// After received bytes were framed: a framing error (or a response
    /// nobody asked for) and the server's announced close end the
    /// connection; a finished batch lets the next one go. False if the
    /// connection was failed.
    fn carry_on(&mut self, i: usize, ok: bool, now: u64) -> bool {
        if !ok {
            self.stats.errors.parse += 1;
            self.fail(i, now);
            return false;
        }
        let c = &self.conns[i];
        if c.last {
            // The server closes after this response: whatever is still
            // outstanding goes out again on a new connection.
            self.fail(i, now);
            return false;
        }
        if c.outstanding == 0 {
            self.try_send(i, now);
        }
        true
    }

    /// [`book`]s a response completed outside `frame`.
    fn book_response(&mut self, i: usize, r: Response, now: u64) -> bool {
        let rate_mode = self.shared.schedule.is_some();
        let Worker {
            conns,
            stats,
            interval,
            in_flight,
            ..
        } = self;
        book(&mut conns[i], stats, interval, in_flight, rate_mode, r, now)
    }

    /// Reads on: discards the rest of a long body unread, or arms a receive.
    fn next_recv(&mut self, i: usize) {
        let c = &self.conns[i];
        if c.phase != Phase::Open || c.recv_armed || c.skipping {
            return;
        }
        let rest = c.framer.sized_remaining();
        // After a short head receive on a long-body connection any rest is
        // discarded; elsewhere only a rest worth its own receive.
        if rest >= SKIP_MIN || (c.large && rest > 0) {
            self.skip(i, rest);
        } else {
            self.arm_recv(i);
        }
    }

    /// Feeds `len` received bytes to the connection's framer and books every
    /// response they complete. False on a framing error or a response
    /// nobody asked for.
    fn frame(&mut self, i: usize, bid: Option<u16>, len: usize, now: u64) -> bool {
        let Worker {
            conns,
            bufs,
            stats,
            in_flight,
            interval,
            shared,
            ..
        } = self;
        let rate_mode = shared.schedule.is_some();
        let c = &mut conns[i];
        // The legacy buffer is lent out while its bytes are framed, so the
        // connection's counters stay free to update (no allocation: an
        // empty box takes its place).
        let own = std::mem::take(&mut c.buf);
        let mut data: &[u8] = match (bufs.as_ref(), bid) {
            (Some(b), Some(bid)) => b.get(bid, len),
            _ => &own[..len.min(own.len())],
        };
        let mut ok = true;
        while ok && !data.is_empty() {
            let Ok((used, resp)) = c.framer.feed(data) else {
                ok = false;
                break;
            };
            data = &data[used..];
            if let Some(r) = resp {
                ok = book(c, stats, interval, in_flight, rate_mode, r, now);
            }
        }
        c.buf = own;
        ok
    }

    fn on_eof(&mut self, i: usize, now: u64) {
        let c = &mut self.conns[i];
        match c.framer.finish() {
            Ok(Some(r)) if c.outstanding > 0 => {
                self.book_response(i, r, now);
                self.fail(i, now);
            }
            Ok(None) if c.outstanding == 0 => self.close(i, now, now),
            Ok(Some(_)) => {
                self.stats.errors.parse += 1;
                self.fail(i, now);
            }
            Ok(None) | Err(_) => {
                self.stats.errors.read += 1;
                self.fail(i, now);
            }
        }
    }

    // ---- timers: stop, samples, timeouts, reconnects ----

    fn tick(&mut self, now: u64) {
        // Warm-up: every connection gets its first connect outcome before
        // any request goes out, as wrk opens all its connections first; a
        // server busy serving early connections would otherwise fall behind
        // accepting the rest and overflow its listen backlog.
        let stalled = now.saturating_sub(self.last_connect_outcome) > WARMUP_STALL_US;
        let cap = WARMUP_MAX_US.min(self.shared.timeout_us);
        if self.warming && (self.untried == 0 || stalled || now >= cap) {
            self.warming = false;
            self.schedule_start = now;
            for i in 0..self.conns.len() {
                self.try_send(i, now);
            }
        }
        if self.interval.is_some() && now >= u64::from(self.interval_index + 1) * INTERVAL_US {
            self.close_interval();
        }
        if self.stop_at.is_none() {
            if now >= self.shared.duration_us {
                self.stop_at = Some(now);
            } else if self.shared.stop.load(Ordering::Relaxed) {
                self.interrupted = true;
                self.grace_us = self.grace_us.min(INTERRUPT_GRACE_US);
                self.stop_at = Some(now);
            } else if self.quota.is_some_and(|q| self.stats.requests >= q) {
                self.stop_at = Some(now);
            }
        }
        // Constant-rate mode: connections whose next slot has come.
        while let Some(&Reverse((due, i))) = self.due.peek() {
            if due > now {
                break;
            }
            self.due.pop();
            self.conns[i as usize].queued = false;
            self.try_send(i as usize, now);
        }
        if now >= self.next_sample {
            if self.stop_at.is_none() {
                let elapsed = now - (self.next_sample - SAMPLE_US);
                let n = self.stats.requests - self.sampled_requests;
                let rate = n * 1_000_000 / elapsed.max(1);
                self.stats.rate.saturating_record(rate);
            }
            if let Some(live) = self.shared.live {
                let errors = self.stats.errors.total();
                live.add(
                    self.stats.requests - self.sampled_requests,
                    errors - self.sampled_errors,
                );
                self.sampled_errors = errors;
            }
            self.sampled_requests = self.stats.requests;
            self.next_sample = now + SAMPLE_US;
        }
        if self.deferred_connects && self.connecting < MAX_CONNECTING && self.stop_at.is_none() {
            self.start_deferred_connects(now);
        }
        if now < self.next_scan {
            return;
        }
        // The scan touches every connection, so it runs only as often as
        // timeouts need (a twentieth of the timeout, 10 to 100 ms), when a
        // backoff expires, or when connects were held back.
        self.next_scan = now + (self.shared.timeout_us / 20).clamp(TICK_US, 10 * TICK_US);
        self.deferred_connects = false;
        let timeout = self.shared.timeout_us;
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            match c.phase {
                Phase::Down { at } if at <= now && self.stop_at.is_none() => {
                    if self.connecting < MAX_CONNECTING {
                        self.connect(i, now);
                    } else {
                        self.deferred_connects = true;
                    }
                }
                Phase::Down { at } if self.stop_at.is_none() => {
                    self.next_scan = self.next_scan.min(at);
                }
                Phase::Connecting { since }
                    if c.throttled && now - since > CONNECT_STALE_US && now - since <= timeout =>
                {
                    c.throttled = false;
                    self.connecting -= 1;
                }
                Phase::Connecting { since } if now - since > timeout => {
                    self.stats.errors.connect += 1;
                    self.stats.connect_causes.timed_out += 1;
                    c.failures += 1;
                    let at = now + c.backoff_us();
                    self.close(i, at, now);
                }
                Phase::Open if c.outstanding > 0 && now.saturating_sub(c.sent_at) > timeout => {
                    self.stats.errors.timeout += u64::from(c.outstanding);
                    self.fail(i, now);
                }
                _ => {}
            }
        }
    }

    /// Fills free connect slots with connections that are due. A pass
    /// resumes where the last one stopped, so opening n connections reads
    /// each one about once, not once per completed connect (which made the
    /// warm-up quadratic: 3.5% of the CPU of opening 10,000).
    fn start_deferred_connects(&mut self, now: u64) {
        let n = self.conns.len();
        let mut seen = 0;
        while seen < n && self.connecting < MAX_CONNECTING {
            let i = self.connect_cursor;
            self.connect_cursor = if i + 1 == n { 0 } else { i + 1 };
            seen += 1;
            if matches!(self.conns[i].phase, Phase::Down { at } if at <= now) {
                self.connect(i, now);
            }
        }
        if seen == n {
            // A whole lap: nothing due is left waiting.
            self.deferred_connects = false;
        }
    }

    /// Files the current one-second interval and starts the next.
    fn close_interval(&mut self) {
        let Some(h) = &mut self.interval else { return };
        let mut encoded = Vec::new();
        let _ = hdrhistogram::serialization::V2Serializer::new().serialize(h, &mut encoded);
        h.reset();
        let errors = self.stats.errors.total();
        self.stats.intervals.push(Interval {
            index: self.interval_index,
            requests: self.stats.requests - self.interval_requests,
            errors: errors - self.interval_errors,
            encoded,
        });
        self.interval_requests = self.stats.requests;
        self.interval_errors = errors;
        self.interval_index += 1;
    }

    /// How long the next wait may last: until the next slot is due, at
    /// most a tick.
    fn wait_budget(&self, now: u64) -> u64 {
        match self.due.peek() {
            Some(&Reverse((due, _))) => due.saturating_sub(now).clamp(1, TICK_US),
            None => TICK_US,
        }
    }

    fn finished(&self, now: u64) -> bool {
        match self.stop_at {
            Some(at) => self.in_flight == 0 || now >= at + self.grace_us,
            None => false,
        }
    }

    // ---- transitions that queue SQEs ----

    fn can_issue(&self) -> bool {
        self.stop_at.is_none()
            && self
                .quota
                .is_none_or(|q| self.stats.requests + self.in_flight < q)
    }

    fn try_send(&mut self, i: usize, now: u64) {
        let c = &self.conns[i];
        if self.warming
            || c.phase != Phase::Open
            || c.outstanding > 0
            || c.send.is_some()
            || c.last
            || !self.can_issue()
        {
            return;
        }
        let batch = match self.quota {
            Some(q) => {
                u64::from(self.shared.pipeline).min(q - self.stats.requests - self.in_flight) as u32
            }
            None => self.shared.pipeline,
        };
        let c = &mut self.conns[i];
        let mut intended = now;
        if let Some(s) = &self.shared.schedule {
            let due = self.schedule_start + s.due_us(self.conn_base + i, c.k);
            if due > now {
                if !c.queued {
                    c.queued = true;
                    self.due.push(Reverse((due, i as u32)));
                }
                return;
            }
            c.k += 1;
            intended = due;
            self.stats.max_lag_us = self.stats.max_lag_us.max(now - due);
            self.stats.lag_sum_us += now - due;
        }
        c.outstanding = batch;
        c.sent_at = now;
        c.intended_at = intended;
        self.in_flight += u64::from(batch);
        self.stats.sent += u64::from(batch);
        // A short batch (the last requests of -n) sends a prefix of the
        // pipelined bytes: every copy of the request has the same length.
        let per = self.request.len() / self.shared.pipeline as usize;
        let end = per * batch as usize;
        self.conns[i].batch_len = end as u32;
        self.push_send_range(i, 0, end);
    }

    fn push_send_range(&mut self, i: usize, from: usize, to: usize) {
        let c = &mut self.conns[i];
        let bytes = &self.request[from..to];
        let e = opcode::Send::new(Fixed(i as u32), bytes.as_ptr(), bytes.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(Token::new(Op::Send, i, c.gen).encode());
        c.send = Some(from as u32);
        c.ops += 1;
        self.pending.push(e);
    }

    /// A new connection starts in quick-ACK mode: its first 16 responses
    /// would each be acknowledged by a packet of its own, although the next
    /// request, sent at once, carries the acknowledgement anyway. Over a
    /// short run with thousands of connections those first responses are
    /// most of them; loopback runs the server's side of every ACK on this
    /// core too. Setting `TCP_QUICKACK` to 0 (pingpong mode) saves them.
    fn delay_acks(&mut self, i: usize) {
        static OFF: libc::c_int = 0;
        let c = &mut self.conns[i];
        c.ops += 1;
        // `OFF` is static, so the pointer is valid whenever the kernel
        // reads it (see the SAFETY note in `flush`).
        let e = opcode::SetSockOpt::new(
            Fixed(i as u32),
            libc::IPPROTO_TCP as u32,
            libc::TCP_QUICKACK as u32,
            &OFF as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        )
        .build()
        .user_data(Token::new(Op::SockOpt, i, c.gen).encode());
        self.pending.push(e);
    }

    fn arm_recv(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let fd = Fixed(i as u32);
        let token = Token::new(Op::Recv, i, c.gen).encode();
        // With long bodies only the head is worth reading: a short one-shot
        // receive, then `skip` for the rest.
        let cap = if c.large { HEAD_PEEK } else { u32::MAX };
        let e = match (&self.bufs, self.shared.level) {
            (Some(b), IoLevel::Full) if !c.large => opcode::RecvMulti::new(fd, b.bgid()).build(),
            (Some(b), _) => opcode::Recv::new(fd, std::ptr::null_mut(), b.buf_size().min(cap))
                .buf_group(b.bgid())
                .build()
                .flags(squeue::Flags::BUFFER_SELECT),
            (None, _) => {
                opcode::Recv::new(fd, c.buf.as_mut_ptr(), (c.buf.len() as u32).min(cap)).build()
            }
        };
        c.recv_armed = true;
        c.ops += 1;
        self.stats.recv_arms += 1;
        self.pending.push(e.user_data(token));
    }

    /// Queues a receive that consumes up to `rest` body bytes without
    /// copying them anywhere: the load generator needs their count, not
    /// their content. It is the only read on the socket until it completes.
    fn skip(&mut self, i: usize, rest: u64) {
        let c = &mut self.conns[i];
        let len = rest.min(SKIP_MAX) as u32;
        // SAFETY: no buffer is lent: with MSG_TRUNC a TCP receive consumes
        // the bytes without writing to the (null) address, so nothing is
        // owned by the kernel until the completion arrives.
        let e = opcode::Recv::new(Fixed(i as u32), std::ptr::null_mut(), len)
            // No MSG_WAITALL: io_uring retries a short read by the amount the
            // buffer advanced, and a discarding read advances nothing, so
            // the retry never ends. A short skip completes and goes again.
            .flags(libc::MSG_TRUNC)
            .build()
            .user_data(Token::new(Op::Skip, i, c.gen).encode());
        c.skipping = true;
        c.ops += 1;
        self.stats.skips += 1;
        self.pending.push(e);
    }

    /// Opens a socket into the connection's fixed slot and queues the connect.
    fn connect(&mut self, i: usize, now: u64) {
        let opened = socket::socket(self.family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
            .and_then(|fd| {
                socket::setsockopt(&fd, sockopt::TcpNoDelay, &true)?;
                self.ring
                    .submitter()
                    .register_files_update(i as u32, &[fd.as_raw_fd()])
                    .map_err(|e| {
                        nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
                    })?;
                Ok(())
                // `fd` closes here; the fixed slot keeps the socket open.
            });
        let c = &mut self.conns[i];
        if let Err(errno) = opened {
            if !c.tried {
                c.tried = true;
                self.untried -= 1;
            }
            self.stats.errors.connect += 1;
            self.stats.connect_causes.count(errno as i32);
            c.failures += 1;
            c.phase = Phase::Down {
                at: now + c.backoff_us(),
            };
            return;
        }
        let addr = &*self.sockaddr;
        let e = opcode::Connect::new(Fixed(i as u32), addr.as_ptr(), addr.len())
            .build()
            .user_data(Token::new(Op::Connect, i, c.gen).encode());
        c.phase = Phase::Connecting { since: now };
        c.throttled = true;
        self.connecting += 1;
        c.ops += 1;
        self.pending.push(e);
    }

    /// Loses the connection's outstanding requests (the caller counted the
    /// fault) and reconnects at once.
    fn fail(&mut self, i: usize, now: u64) {
        let c = &mut self.conns[i];
        self.in_flight -= u64::from(c.outstanding);
        self.stats.lost += u64::from(c.outstanding);
        c.outstanding = 0;
        self.close(i, now, now);
    }

    /// Starts closing: cancels whatever is in flight; the slot is released
    /// when the last operation completes, then reconnects at `at`.
    fn close(&mut self, i: usize, at: u64, now: u64) {
        let c = &self.conns[i];
        if matches!(c.phase, Phase::Draining { .. } | Phase::Down { .. }) {
            return;
        }
        let (recv, skip, send) = (c.recv_armed, c.skipping, c.send.is_some());
        let connecting = matches!(c.phase, Phase::Connecting { .. });
        for (op, live) in [
            (Op::Recv, recv),
            (Op::Skip, skip),
            (Op::Send, send),
            (Op::Connect, connecting),
        ] {
            if live {
                self.cancel(i, op);
            }
        }
        self.conns[i].phase = Phase::Draining { then: at };
        self.release_if_idle(i, now);
    }

    /// Queues a cancel of connection `i`'s operation `op`, in this
    /// incarnation only (the generation is part of the target).
    fn cancel(&mut self, i: usize, op: Op) {
        let gen = self.conns[i].gen;
        let target = Token::new(op, i, gen).encode();
        self.pending.push(
            opcode::AsyncCancel::new(target)
                .build()
                .user_data(Token::new(Op::Cancel, i, gen).encode()),
        );
    }

    fn release_if_idle(&mut self, i: usize, now: u64) {
        let c = &mut self.conns[i];
        let Phase::Draining { then } = c.phase else {
            return;
        };
        if c.ops > 0 {
            return;
        }
        if then != u64::MAX {
            // Close the socket now, not at the next connect into this
            // slot. At shutdown (`then` is MAX) one `unregister_files`
            // closes every slot instead of a syscall per connection.
            let _ = self.ring.submitter().register_files_update(i as u32, &[-1]);
        }
        c.gen = c.gen.wrapping_add(1) & 0x00ff_ffff;
        c.framer.reset();
        c.send = None;
        c.recv_armed = false;
        c.stopping = false;
        c.skipping = false;
        c.large = false;
        c.outstanding = 0;
        c.last = false;
        c.phase = Phase::Down { at: then };
        if self.stop_at.is_some() {
            return;
        }
        if then > now {
            self.next_scan = self.next_scan.min(then);
        } else if self.connecting < MAX_CONNECTING {
            self.connect(i, now);
        } else {
            self.deferred_connects = true;
        }
    }

    // ---- submit ----

    /// Moves queued SQEs into the submission queue, submitting early only if
    /// it fills up.
    fn flush(&mut self, now: u64) -> Result<(), EngineError> {
        if !self.shared.use_ext_arg && !self.timer_armed {
            // Without EXT_ARG a timeout entry wakes us; it cannot be moved
            // once armed, so in constant-rate mode it ticks every ms.
            let budget = match self.shared.schedule {
                Some(_) => self.wait_budget(now).min(1000),
                None => TICK_US,
            };
            *self.timer = Timespec::new().nsec((budget * 1000) as u32);
            let e = opcode::Timeout::new(&*self.timer)
                .build()
                .user_data(Token::new(Op::Timer, 0, 0).encode());
            self.pending.push(e);
            self.timer_armed = true;
        }
        let (submitter, mut sq, _) = self.ring.split();
        let mut pushed = 0;
        for e in &self.pending {
            // SAFETY: every buffer an entry points to outlives its
            // operation: request bytes and the sockaddr are owned by this
            // worker, socket option values are static; recv buffers belong
            // to the connection or the buffer ring, both kept (or leaked)
            // until the kernel hands the operation back; the timespec is
            // copied by the kernel on submit.
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
        Ok(())
    }

    /// The one `io_uring_enter` per loop: submits and waits for at least one
    /// completion or `max_us`.
    fn wait(&mut self, max_us: u64) -> Result<(), EngineError> {
        self.stats.enters += 1;
        let r = if self.shared.use_ext_arg {
            let ts = Timespec::new().nsec((max_us * 1000) as u32);
            let mut args = SubmitArgs::new().timespec(&ts);
            let mut want = 1;
            if let (Some(min_wait), None) = (self.shared.batch_wait_us, &self.shared.schedule) {
                // Wait for half the busy connections, but at most
                // `min_wait` before settling for one completion: fewer
                // wake-ups, bigger batches, bounded reaping delay.
                // With many requests queued at the server (pipelining,
                // thousands of connections) a longer nap cannot starve it:
                // stretch the wait and reap more per wake-up.
                let depth = (self.in_flight / DEEP_QUEUE).clamp(1, MAX_DEPTH);
                want = (self.in_flight.min(self.conns.len() as u64) / 2).clamp(1, MAX_BATCH * depth)
                    as usize;
                args = args.min_wait_usec(min_wait * depth as u32);
            }
            self.ring.submitter().submit_with_args(want, &args)
        } else {
            self.ring.submitter().submit_and_wait(1)
        };
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
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

    /// Cancels everything and waits (bounded) until the kernel has handed
    /// back every operation. False if some never came back.
    fn shutdown(&mut self) -> bool {
        let end = self.now() + DRAIN_US;
        for i in 0..self.conns.len() {
            self.close(i, u64::MAX, 0);
        }
        loop {
            let now = self.now();
            self.reap(now);
            if self.conns.iter().all(|c| c.ops == 0) {
                break;
            }
            if now >= end || self.flush(now).is_err() || self.wait(TICK_US).is_err() {
                return false;
            }
        }
        if let Some(b) = &self.bufs {
            b.unregister(&self.ring.submitter());
        }
        // Close every socket now, not when the ring's teardown gets to it
        // after the process is gone: the server sees the closes before the
        // report is printed (and before a next run starts connecting).
        let _ = self.ring.submitter().unregister_files();
        true
    }
}

/// Books one complete response on its connection. False if nobody asked
/// for it (nothing outstanding, or the server had said it would close).
fn book(
    c: &mut Conn,
    stats: &mut WorkerStats,
    interval: &mut Option<Histogram<u64>>,
    in_flight: &mut u64,
    rate_mode: bool,
    r: Response,
    now: u64,
) -> bool {
    if c.outstanding == 0 || c.last {
        return false;
    }
    c.outstanding -= 1;
    *in_flight -= 1;
    let corrected = now.saturating_sub(c.intended_at);
    stats.response(
        r.status,
        corrected,
        rate_mode.then(|| now.saturating_sub(c.sent_at)),
    );
    if let Some(iv) = interval {
        iv.saturating_record(corrected.max(1));
    }
    c.last = !r.keep_alive;
    c.large = r.body_len.is_some_and(|n| n >= SKIP_MIN);
    true
}

/// User plus system time of the calling thread.
fn thread_cpu_seconds() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_THREAD).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

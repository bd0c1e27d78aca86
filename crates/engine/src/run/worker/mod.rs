//! A worker: one thread, one ring, a slice of the connections.
//!
//! The loop reads top to bottom: reap completions (advancing each
//! connection's state machine; `completions`), check timers (`timers`),
//! queue the SQEs that produced (`queue`), and submit them all with one
//! `io_uring_enter` that also waits (`submit`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::serialization::Serializer;
use hdrhistogram::Histogram;
use io_uring::cqueue;
use nix::sys::socket::{AddressFamily, SockaddrStorage};
use proto::Response;

use crate::io::backend::{Backend, RecvHow};
use crate::io::token::{Op, Token};
use crate::io::transport::{TlsCause, TlsClient, TlsSetup};
use crate::report::stats::MAX_LATENCY_US;
use crate::report::stats::{Fault, Interval, WorkerStats};
use crate::report::StopCause;
use crate::run::conn::{Conn, Life, Ops, Phase, Recv};
use crate::run::schedule::Schedule;
use crate::source::{Prepared, SourceArgs, WorkerSource};
use crate::ResponseUse;
use crate::{EngineError, IoLevel};
use due::DueQueue;

mod completions;
mod due;
mod h2;
mod pacing;
mod queue;
mod submit;
mod timers;

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
/// Plaintext decrypted per step on its way to the framer: one TLS record.
const TLS_SCRATCH: usize = 16 * 1024;
/// How long shutdown waits for the kernel to hand back every operation.
const DRAIN_US: u64 = 1_000_000;

/// Read-only facts every worker shares.
pub(crate) struct Shared<'a> {
    /// The run's requests, encoded.
    pub source: &'a Prepared,
    /// The one sequence of `{{seq}}` placeholders across the run.
    pub seq: &'a AtomicU64,
    pub threads: usize,
    pub pipeline: u32,
    /// Responses a connection gets before it is replaced (`None`: kept).
    pub requests_per_conn: Option<u32>,
    /// Every response answers a `HEAD` (`Some(true)`) or none does;
    /// `None`: mixed, the framer is told per response.
    pub head_request: Option<bool>,
    /// Targets counted one by one (0: none).
    pub tracked: usize,
    /// Set by the first worker whose script failed: every worker stops.
    pub halt: &'a AtomicBool,
    /// Where connections go (a script may send a worker elsewhere).
    pub endpoint: &'a crate::Endpoint,
    /// Source addresses connections are bound to, round robin (empty: the
    /// kernel's choice).
    pub sources: Vec<SockaddrStorage>,
    /// The addresses connections are spread over, round robin (empty:
    /// all go to `endpoint`).
    pub spread: Vec<std::net::SocketAddr>,
    /// The backend's setup: io level and kernel features.
    pub io: crate::io::backend::Setup,
    /// Batch the wait for this many µs (needs IORING_FEAT_MIN_TIMEOUT).
    pub batch_wait_us: Option<u32>,
    pub timeout_us: u64,
    pub duration_us: u64,
    /// Load this long before the measured window starts (0: none).
    pub warmup_us: u64,
    /// Hold the load until this wall-clock moment (connections open
    /// first), so that runs started on several machines load together.
    pub start_at: Option<std::time::SystemTime>,
    /// Runs of a fleet read the server's `Date` headers, to put their
    /// start on the server's clock.
    pub server_clock: bool,
    pub stop: &'a AtomicBool,
    /// Constant-rate mode (`-R`).
    pub schedule: Option<Schedule>,
    /// The longest a paced slot may be held to share a wake-up with the
    /// slots after it (see `pacing`), in µs; 0 keeps every slot on time.
    pub pacing_window_us: u64,
    /// A capacity search: steps of constant rates decided as the run goes.
    pub steps: Option<&'a crate::run::search::LiveSteps>,
    /// Paced requests arrive as a Poisson process (`None`: evenly).
    pub poisson: Option<crate::run::arrivals::PoissonGaps>,
    /// Connections over all workers (a step's slots interleave over them).
    pub connections: usize,
    /// Keep per-second interval histograms.
    pub intervals: bool,
    /// Running totals for a progress display.
    pub live: Option<&'a crate::Live>,
    /// `https://`: the checked TLS settings each worker makes its client from.
    pub tls: Option<TlsSetup>,
    /// Speak HTTP/2 (h2 by ALPN under TLS, h2c with prior knowledge
    /// otherwise); `pipeline` is then streams per connection.
    pub http2: bool,
    /// One instance of a fleet: `{{seq}}` and random values are its own.
    pub shard: Option<crate::Shard>,
    /// The request log's queue, and the share of requests it keeps.
    pub log: Option<(
        std::sync::mpsc::SyncSender<Vec<crate::run::reqlog::Record>>,
        f64,
    )>,
}

impl Shared<'_> {
    /// Requests go out on a schedule (`-R`, ramps, search steps): latency
    /// counts from each one's intended send time.
    pub(crate) fn paced(&self) -> bool {
        self.schedule.is_some() || self.steps.is_some()
    }
}

/// The end of a worker's measured window: when and why its load stopped,
/// and what it had counted by then. Responses that complete after it (in
/// the grace for requests in flight) count in the totals, never in the
/// rates, so a slow server's last responses cannot stretch the window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// µs since the start.
    pub end_us: u64,
    pub cause: StopCause,
    pub requests: u64,
    pub bytes_read: u64,
    /// CPU time (user + system) of this worker's thread within the window:
    /// setup before the start and the grace after it are not load.
    pub cpu_s: f64,
    /// The share of the window that CPU time covers (at most 1).
    pub busy: f64,
}

/// What a worker hands back.
pub(crate) struct Outcome {
    pub window: Window,
    pub stats: WorkerStats,
    pub ended_us: u64,
    pub setup_flags: &'static [&'static str],
    pub buffers: u32,
    pub buffer_size: u32,
    pub incremental_buffers: bool,
    /// The first failure of this worker's script hooks.
    pub script_error: Option<crate::ScriptError>,
    /// Constant-rate mode: when the schedule started, µs since the start.
    pub schedule_start_us: u64,
    /// What the warm-up did, once it ended (`None`: none asked for, or
    /// the run stopped within it, and the report is the warm-up's).
    pub warmup: Option<crate::report::stats::WarmupCounts>,
    /// Request records the log dropped (its writer fell behind).
    pub log_dropped: u64,
}

pub(crate) struct Worker<'a, B: Backend> {
    /// Declared first so it is dropped first: the kernel lets go of every
    /// buffer below before they are freed.
    io: B,
    conns: Vec<Conn>,
    /// This worker's side of the request source: its copy of the fixed
    /// request (plain sends point into it), or what picks and fills
    /// targets into each connection's outbox.
    source: WorkerSource<'a>,
    /// This worker's TLS client (configuration and session cache).
    tls: Option<TlsClient>,
    /// Where TLS plaintext is decrypted to on its way to the framer.
    scratch: Box<[u8]>,
    /// Where connections go: one address, or every address of a name
    /// when connections are spread, round robin. Boxed, so that connects
    /// in flight can point into it.
    peers: Box<[(SockaddrStorage, AddressFamily)]>,
    shared: &'a Shared<'a>,
    cqes: Vec<crate::io::backend::Completion>,
    /// The request log's batch, when one is kept.
    log: Option<crate::run::reqlog::Batch>,
    /// The run's start on the wall clock, Unix µs (the log's times).
    wall_start_us: u64,
    /// With kernel timestamps: the realtime clock when this batch of
    /// completions was reaped, ns (the kernel's stamps are on it).
    reaped_wall_ns: u64,
    /// The receive lag of the read being framed, µs, when it had a stamp.
    rx_lag_us: Option<u64>,
    stats: WorkerStats,
    start: Instant,
    quota: Option<u64>,
    in_flight: u64,
    /// Sends handed to the backend whose completions have not been reaped.
    sending: u32,
    /// Set once the load stops; the worker then only waits out the grace.
    stop: Option<Window>,
    grace_us: u64,
    /// This thread's CPU time when its load started.
    cpu_at_start: f64,
    pacer: pacing::Pacer,
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
    /// The load is held until then (`--start-at`), µs since the start.
    load_at_us: u64,
    /// The measured window starts here: after the warm-up, if any.
    window_at_us: u64,
    /// The warm-up is on: its counts are dropped when the window starts.
    in_warmup: bool,
    /// What the warm-up did, once it ended.
    warmup: Option<crate::report::stats::WarmupCounts>,
    /// Requests and faults the warm-up counted in the timeline's current
    /// second before the window's counts started from zero.
    interval_carry: (u64, u64),
    /// A capacity search: the step in force and its version.
    step: Option<crate::run::search::StepPlan>,
    step_version: u64,
    /// This thread's CPU time and non-2xx count when the last second closed.
    interval_cpu: f64,
    interval_non2xx: u64,
    /// Connects counted when the last second closed.
    interval_connects: u64,
    /// Which worker this is.
    index: usize,
    /// Global index of this worker's first connection (for the schedule).
    conn_base: usize,
    /// Constant-rate mode: connections waiting for their next slot.
    due: DueQueue,
    /// Paced runs whose slots share wake-ups (see `pacing`): slots that
    /// fall due before this moment wait for it, and go out together.
    batch_at: u64,
    interval: Option<Histogram<u64>>,
    /// Paced runs: this second's latencies from the actual send.
    interval_uncorrected: Option<Histogram<u64>>,
    /// A capacity search: this second's own send lags.
    interval_own_lag: Option<Histogram<u64>>,
    /// A capacity search with kernel timestamps: this second's receive
    /// lags, per read, which judge the step as the send side's own lag
    /// does.
    interval_rx_lag: Option<Histogram<u64>>,
    /// A capacity search, or seconds published live: this second's
    /// times to first byte.
    interval_ttfb: Option<Histogram<u64>>,
    /// Seconds published live: this second's connect times.
    interval_connect: Option<Histogram<u64>>,
    interval_index: u32,
    interval_requests: u64,
    interval_errors: u64,
    /// HTTP/2: requests the server never processed, to send again first.
    retries: std::collections::VecDeque<crate::io::session::Retry>,
    /// HTTP/2: the fixed request's header block and body, made once.
    h2_fixed: Option<h2::FixedH2>,
    /// HTTP/2: where any other request's header block is written.
    h2_block: Vec<u8>,
    /// This thread's CPU time when the last second was published live.
    live_cpu: f64,
}

impl<'a, B: Backend> Worker<'a, B> {
    /// Builds the backend (ring or epoll) and its resources. Runs on the
    /// worker's own thread (SINGLE_ISSUER wants the creator to be the
    /// submitter; a script's state is made on the thread that runs it).
    pub(crate) fn new(
        shared: &'a Shared<'a>,
        index: usize,
        connections: usize,
        conn_base: usize,
        quota: Option<u64>,
    ) -> Result<Worker<'a, B>, EngineError> {
        let n = connections;
        let io = B::new(shared.io, n)?;
        let legacy_buf = match shared.io.level {
            IoLevel::Legacy if n > 1000 => 4096,
            IoLevel::Legacy => 16 * 1024,
            _ => 0,
        };
        let mut source = WorkerSource::new(
            shared.source,
            SourceArgs {
                pipeline: shared.pipeline,
                seq: shared.seq,
                index,
                workers: shared.threads,
                addr: shared.endpoint.tcp(),
                shard: shared.shard,
            },
        )?;
        // A response hook that takes headers or the body gets the
        // response's bytes, kept per connection.
        let capture = source.hooks().response >= ResponseUse::Headers;
        let head_request = shared.head_request.or(source.fixed_head()).unwrap_or(false);
        let h2_streams = shared.http2.then_some(shared.pipeline as usize);
        let h2_fixed = match (shared.http2, source.fixed()) {
            (true, Some(fixed)) => {
                let scheme = if shared.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                Some(h2::FixedH2::new(fixed, scheme)?)
            }
            _ => None,
        };
        let conns = (0..n)
            .map(|_| {
                let mut c = Conn::new(head_request, legacy_buf, shared.tls.is_some(), h2_streams);
                c.capture = capture.then(Vec::new);
                c.framer.set_dates(shared.server_clock);
                if let Some(h) = &mut c.h2 {
                    h.set_dates(shared.server_clock);
                }
                c
            })
            .collect();
        let peers = match source.script().and_then(|s| s.addr()) {
            Some(a) => vec![crate::Endpoint::Tcp(a).sockaddr()?],
            None if shared.spread.is_empty() => vec![shared.endpoint.sockaddr()?],
            None => shared
                .spread
                .iter()
                .map(|&a| crate::Endpoint::Tcp(a).sockaddr())
                .collect::<Result<_, _>>()?,
        };
        let mut worker = Worker {
            io,
            conns,
            source,
            tls: shared.tls.as_ref().map(|t| t.for_worker(n)),
            scratch: vec![0; if shared.tls.is_some() { TLS_SCRATCH } else { 0 }].into_boxed_slice(),
            peers: peers.into_boxed_slice(),
            shared,
            cqes: Vec::with_capacity(4 * n + 64),
            log: shared.log.as_ref().map(|(tx, sample)| {
                crate::run::reqlog::Batch::new(
                    tx.clone(),
                    *sample,
                    0x5851_f42d_4c95_7f2d ^ index as u64,
                )
            }),
            wall_start_us: 0,
            reaped_wall_ns: 0,
            rx_lag_us: None,
            stats: WorkerStats::with_targets(shared.tracked),
            start: Instant::now(),
            quota,
            in_flight: 0,
            sending: 0,
            stop: None,
            grace_us: GRACE_US.min(shared.timeout_us),
            cpu_at_start: 0.0,
            pacer: pacing::Pacer::default(),
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
            load_at_us: 0,
            window_at_us: 0,
            in_warmup: shared.warmup_us > 0,
            warmup: None,
            interval_carry: (0, 0),
            step: None,
            step_version: 0,
            interval_cpu: 0.0,
            interval_non2xx: 0,
            interval_connects: 0,
            index,
            conn_base,
            due: DueQueue::with_capacity(if shared.paced() { n } else { 0 }),
            batch_at: 0,
            interval: shared
                .intervals
                .then(crate::report::stats::new_latency_histogram),
            interval_uncorrected: (shared.intervals && shared.paced())
                .then(crate::report::stats::new_latency_histogram),
            interval_own_lag: shared
                .steps
                .is_some()
                .then(crate::report::stats::new_latency_histogram),
            interval_rx_lag: (shared.steps.is_some() && shared.io.rx_timestamps)
                .then(crate::report::stats::new_latency_histogram),
            interval_ttfb: (shared.steps.is_some()
                || shared.live.is_some_and(|l| l.wants_seconds()))
            .then(crate::report::stats::new_latency_histogram),
            interval_connect: shared
                .live
                .is_some_and(|l| l.wants_seconds())
                .then(crate::report::stats::new_latency_histogram),
            interval_index: 0,
            interval_requests: 0,
            interval_errors: 0,
            retries: std::collections::VecDeque::new(),
            h2_fixed,
            h2_block: Vec::new(),
            live_cpu: 0.0,
        };
        if let Some(p) = &shared.poisson {
            for (i, c) in worker.conns.iter_mut().enumerate() {
                c.arrival = p.gap(conn_base + i, 0);
            }
        }
        if shared.paced() {
            // Slots are due to the microsecond: a wait that takes the
            // thread's timer slack (50 µs by default) would add it to every
            // corrected latency (see `pacing`). A failure costs precision.
            let _ = nix::sys::prctl::set_timerslack(1);
            worker.calibrate_pacer()?;
        }
        Ok(worker)
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Runs the load until the stop, then closes everything.
    /// Runs from `start` (`wall`: the same moment on the wall clock).
    pub(crate) fn run(
        mut self,
        (start, wall): (Instant, std::time::SystemTime),
    ) -> Result<Outcome, EngineError> {
        self.start = start;
        self.wall_start_us = wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        self.load_at_us = load_at_us(self.shared.start_at, wall);
        self.window_at_us = self.load_at_us + self.shared.warmup_us;
        self.next_sample = self.load_at_us + SAMPLE_US;
        self.cpu_at_start = thread_cpu_seconds();
        self.interval_cpu = self.cpu_at_start;
        self.live_cpu = self.cpu_at_start;
        loop {
            let now = self.now();
            self.check_stop(now);
            self.reap(now);
            self.tick(now);
            if self.finished(now) {
                break;
            }
            self.flush(now)?;
            self.sleep()?;
        }
        let ended_us = self.now();
        let window = match self.stop {
            Some(w) => w,
            None => self.window_until(ended_us, ended_us, StopCause::Duration),
        };
        self.stats.unfinished = self.in_flight;
        let span = window.end_us.saturating_sub(self.window_start());
        if self.stats.rate.is_empty() && span > 0 {
            // A window shorter than one Req/Sec sample (`-n 5000` can take
            // 34 ms): the thread's rate over its window is its one sample,
            // not a claim of zero.
            self.stats
                .rate
                .saturating_record(window.requests * 1_000_000 / span);
        }
        if let Some(s) = &self.shared.schedule {
            // The slots due within the window (after any warm-up).
            let span = window.end_us.saturating_sub(self.schedule_start);
            let before = self.window_start().saturating_sub(self.schedule_start);
            self.stats.scheduled = (0..self.conns.len())
                .map(|i| {
                    let conn = self.conn_base + i;
                    match &self.shared.poisson {
                        Some(p) => {
                            let by = |t: u64| p.count_before(conn, s.slots_at(t as f64));
                            by(span) - by(before.min(span))
                        }
                        None => {
                            s.conn_slots_by(conn, span) - s.conn_slots_by(conn, before.min(span))
                        }
                    }
                })
                .sum();
            if let Some(q) = self.quota {
                self.stats.scheduled = self.stats.scheduled.min(q);
            }
        }
        if self.interval.is_some() {
            self.close_interval();
        }
        if !self.shared.paced() {
            // Closed loop: every request is sent when it is due, so the
            // two distributions are one (see `WorkerStats::response`).
            let _ = self.stats.uncorrected.add(&self.stats.latency);
        }
        let clean = self.shutdown();
        let info = self.io.info();
        let script_error = self.source.script().and_then(|s| {
            s.finish();
            s.error.take()
        });
        let buffer_size = match info.buffer_size {
            0 => self.conns.first().map_or(0, |c| c.buf.len() as u32),
            n => n,
        };
        if !clean {
            // The kernel still holds operations that point into these
            // buffers; leaking them is the only safe choice.
            self.io.abandon();
            std::mem::forget(std::mem::take(&mut self.conns));
            std::mem::forget(std::mem::replace(
                &mut self.source,
                WorkerSource::Fixed {
                    bytes: Box::new([]),
                    per: 0,
                },
            ));
        }
        Ok(Outcome {
            window,
            stats: std::mem::replace(&mut self.stats, WorkerStats::new()),
            ended_us,
            setup_flags: info.setup_flags,
            buffers: info.buffers,
            buffer_size,
            incremental_buffers: info.incremental_buffers,
            script_error,
            schedule_start_us: self.schedule_start,
            warmup: self.warmup,
            log_dropped: self.log.take().map_or(0, |b| b.finish()),
        })
    }

    /// The window ending at `end_us` (read at `now`), with what was
    /// counted so far and this thread's CPU time since its start.
    fn window_until(&self, end_us: u64, now: u64, cause: StopCause) -> Window {
        let cpu_s = (thread_cpu_seconds() - self.cpu_at_start).max(0.0);
        Window {
            end_us,
            cause,
            requests: self.stats.requests,
            bytes_read: self.stats.bytes_read,
            cpu_s,
            busy: (cpu_s * 1e6 / now.saturating_sub(self.window_start()).max(1) as f64).min(1.0),
        }
    }

    /// When the window ends, in µs since the start.
    fn end_us(&self) -> u64 {
        self.window_at_us + self.shared.duration_us
    }

    /// Where the figures being counted began: the window's start, or the
    /// load's while the warm-up is on (a run stopped within it reports
    /// the warm-up).
    fn window_start(&self) -> u64 {
        match self.in_warmup {
            true => self.load_at_us,
            false => self.window_at_us,
        }
    }

    /// The warm-up is over: what it counted is put aside, and the window
    /// starts from zero, but for the requests still in flight, which are
    /// the window's to complete (or lose). The timeline keeps its seconds.
    fn begin_window(&mut self, now: u64) {
        self.in_warmup = false;
        let fresh = WorkerStats::with_targets(self.shared.tracked);
        let warm = std::mem::replace(&mut self.stats, fresh);
        let errors = warm.errors.total();
        self.warmup = Some(crate::report::stats::WarmupCounts {
            requests: warm.requests,
            errors,
            connects: warm.connects,
        });
        // The timeline's seconds stay whole: the one the warm-up ends in
        // keeps what the warm-up counted of it.
        self.interval_carry = (
            warm.requests - self.interval_requests,
            errors - self.interval_errors,
        );
        self.stats.intervals = warm.intervals;
        self.stats.tls.negotiated = warm.tls.negotiated;
        self.stats.sent = self.in_flight;
        self.stats.carried = self.in_flight;
        self.cpu_at_start = thread_cpu_seconds();
        self.interval_cpu = self.cpu_at_start;
        self.sampled_requests = 0;
        self.sampled_errors = 0;
        self.interval_requests = 0;
        self.interval_errors = 0;
        self.interval_non2xx = 0;
        self.interval_connects = 0;
        self.next_sample = now + SAMPLE_US;
    }
}

/// How long after the start (at `wall`) the load is held, in µs: until
/// `start_at`, if that is still to come.
pub(crate) fn load_at_us(
    start_at: Option<std::time::SystemTime>,
    wall: std::time::SystemTime,
) -> u64 {
    start_at
        .and_then(|t| t.duration_since(wall).ok())
        .map_or(0, |d| d.as_micros() as u64)
}

/// User plus system time of the calling thread.
fn thread_cpu_seconds() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_THREAD).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

//! The run: a checked [`Plan`] starts a worker thread per share of the
//! connections, each driving its connections' state machines (`conn`)
//! over the I/O beneath it ([`crate::io`]), paced by a `schedule` or a
//! capacity `search`, and merges what they counted into a [`Report`].
//! `exchange` is the one-request look (`--debug`) on the same plan.

pub(crate) mod arrivals;
pub(crate) mod conn;
pub(crate) mod exchange;
pub(crate) mod exchange_h2;
pub(crate) mod h2_probe;
pub(crate) mod reqlog;
pub(crate) mod schedule;
pub(crate) mod search;
pub(crate) mod worker;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Barrier, OnceLock};
use std::time::Instant;

use crate::io::{backend, limits, transport};
use crate::report::stats::WorkerStats;
use crate::report::{IoInfo, RunFacts, WarmupReport};
use crate::{source, Config, Endpoint, EngineError, IoLevel, KernelSupport, Report, Unavailable};
use schedule::Schedule;
use worker::{Outcome, Shared, Worker};

/// Runs the load described by `cfg` to its end (duration or request count).
pub fn run(cfg: &Config) -> Result<Report, EngineError> {
    run_until(cfg, &AtomicBool::new(false))
}

/// Like [`run`], but stops early, with the results so far, once `stop`
/// becomes true (e.g. from a Ctrl-C handler). Workers look at it every
/// 10 ms, never per request.
pub fn run_until(cfg: &Config, stop: &AtomicBool) -> Result<Report, EngineError> {
    Plan::new(cfg)?.run_until(stop)
}

/// A checked run, ready to start: the configuration is valid, the kernel
/// probed, the level chosen, the host resolved and the file limit raised.
/// Lets a caller report every startup problem before printing anything.
#[derive(Debug, Clone)]
pub struct Plan {
    cfg: Config,
    support: KernelSupport,
    level: IoLevel,
    /// Why `auto` fell back to epoll.
    fallback: Option<Unavailable>,
    endpoint: Endpoint,
    /// Source addresses to bind, checked.
    sources: Vec<SocketAddr>,
    /// The addresses connections are spread over (empty: all go to
    /// `endpoint`), and those of the name left out.
    spread: Vec<SocketAddr>,
    left_out: Vec<SocketAddr>,
    tls: Option<transport::TlsSetup>,
    source: source::Prepared,
    /// Poisson arrivals' seed: the configuration's, the source's, or drawn.
    arrivals_seed: u64,
    /// The request log goes on where an earlier run of the same search
    /// left it (the probe's), instead of starting the file anew.
    log_appends: bool,
}

impl Plan {
    /// Checks everything that can be checked before the load starts.
    pub fn new(cfg: &Config) -> Result<Plan, EngineError> {
        let cfg = &cfg.sharded()?;
        cfg.validate()?;
        let (support, level, fallback) = match cfg.io {
            IoLevel::Epoll => (KernelSupport::without_uring(), IoLevel::Epoll, None),
            asked => match KernelSupport::probe() {
                Ok(s) => {
                    let level = s.resolve(asked)?;
                    (s, level, None)
                }
                // Where io_uring is blocked, `auto` runs on epoll and says why.
                Err(EngineError::IoUringUnavailable(u)) if asked == IoLevel::Auto => {
                    (KernelSupport::without_uring(), IoLevel::Epoll, Some(u))
                }
                Err(e) => return Err(e),
            },
        };
        let (endpoint, spread, left_out) = match (cfg.connect_spread, &cfg.unix_socket) {
            (true, None) => {
                let (live, dead) = Endpoint::spread(cfg)?;
                (Endpoint::Tcp(live[0]), live, dead)
            }
            _ => (Endpoint::find(cfg)?, Vec::new(), Vec::new()),
        };
        let sources = endpoint.sources(&cfg.bind, &spread)?;
        limits::ensure_files(Config::share(cfg.connections as u64, 0, cfg.threads))?;
        let tls = match cfg.request.target.tls {
            true => {
                let setup =
                    transport::TlsSetup::new(&cfg.tls, &cfg.request.target.host, cfg.http2)?;
                if !cfg.http2 {
                    setup.probe(&endpoint, cfg.timeout)?;
                }
                Some(setup)
            }
            false => None,
        };
        if cfg.http2 {
            h2_probe::probe(&endpoint, tls.as_ref(), cfg.timeout)?;
        }
        let source = match &cfg.script {
            Some(s) => source::Prepared::Script(s.clone()),
            // Plain only: under TLS the handshake dwarfs the port search,
            // and reading the server's close_notify and close cost more
            // than they saved (https at c20 against nginx, 3 rounds: 154-161
            // CPU-µs per request against 145-151 with the client closing).
            None if cfg.requests_per_conn == Some(1) && !cfg.request.target.tls => {
                let targets: Vec<_> = cfg.targets.iter().map(closing_target).collect();
                source::Prepared::new(&closing(&cfg.request), &targets, cfg.order, cfg.seed)?
            }
            None => source::Prepared::new(&cfg.request, &cfg.targets, cfg.order, cfg.seed)?,
        };
        let arrivals_seed = cfg
            .seed
            .or(source.seed())
            .unwrap_or_else(|| fastrand::u64(..));
        Ok(Plan {
            arrivals_seed,
            cfg: cfg.clone(),
            support,
            level,
            fallback,
            endpoint,
            sources,
            spread,
            left_out,
            tls,
            source,
            log_appends: false,
        })
    }

    /// Appends to the request log rather than starting it anew: the
    /// second run of a search logs after the first.
    pub(crate) fn appending_log(mut self) -> Plan {
        self.log_appends = true;
        self
    }

    /// The configuration this process runs: with a shard, its share of
    /// the fleet's connections, rate and requests.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The io_uring level the run will use (`Epoll` without io_uring).
    pub fn level(&self) -> IoLevel {
        self.level
    }

    /// Why `IoLevel::Auto` is running on epoll: io_uring is unavailable
    /// here, for this reason (whose text says how to get it back).
    pub fn fallback_reason(&self) -> Option<&Unavailable> {
        self.fallback.as_ref()
    }

    /// The TCP address connections go to (`None` for a Unix socket).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.endpoint.tcp()
    }

    /// Where connections go.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// With [`Config::connect_spread`]: the addresses connections are
    /// spread over, and the name's addresses left out because they did
    /// not accept a connection. Both empty otherwise.
    ///
    /// ```no_run
    /// let mut cfg = urk_engine::Config::new("http://app.internal:8080/")?;
    /// cfg.connect_spread = true;
    /// let plan = urk_engine::Plan::new(&cfg)?;
    /// let (used, dead) = plan.spread();
    /// println!("{} addresses, {} left out", used.len(), dead.len());
    /// # Ok::<(), urk_engine::EngineError>(())
    /// ```
    pub fn spread(&self) -> (&[SocketAddr], &[SocketAddr]) {
        (&self.spread, &self.left_out)
    }

    /// Runs the load; see [`run_until`].
    pub fn run_until(&self, stop: &AtomicBool) -> Result<Report, EngineError> {
        self.run_inner(stop, None, None, None)
    }

    /// Like [`Plan::run_until`], publishing running totals into `live`
    /// every 100 ms (for a progress display; never per request).
    pub fn run_watched(&self, stop: &AtomicBool, live: &Live) -> Result<Report, EngineError> {
        self.run_inner(stop, Some(live), None, None)
    }

    /// Runs a capacity search's steps on one set of connections:
    /// `control` runs on this thread while the workers load, publishing
    /// steps into `steps` and reading the seconds they close; when it
    /// returns, the run stops.
    pub(crate) fn run_steps(
        &self,
        stop: &AtomicBool,
        live: Option<&Live>,
        steps: &search::LiveSteps,
        control: &mut StepControl<'_>,
    ) -> Result<Report, EngineError> {
        self.run_inner(stop, live, Some(steps), Some(control))
    }

    fn run_inner(
        &self,
        stop: &AtomicBool,
        live: Option<&Live>,
        steps: Option<&search::LiveSteps>,
        control: Option<&mut StepControl<'_>>,
    ) -> Result<Report, EngineError> {
        let (cfg, support, level) = (&self.cfg, &self.support, self.level);
        let seq = std::sync::atomic::AtomicU64::new(0);
        let halt = AtomicBool::new(false);
        let _stamps_on = cfg
            .kernel_timestamps
            .then(crate::io::stamps::switch_on)
            .flatten();
        let log = match &cfg.log {
            Some(spec) => Some(reqlog::Writer::start(spec, self.log_appends).map_err(|e| {
                EngineError::Config(format!(
                    "cannot write the request log '{}': {e}",
                    spec.path.display()
                ))
            })?),
            None => None,
        };
        let (log_writer, log_sink) = match log {
            Some((w, tx)) => (Some(w), Some(tx)),
            None => (None, None),
        };
        let shared = Shared {
            log: log_sink.map(|tx| (tx, cfg.log.as_ref().map_or(1.0, |l| l.sample))),
            source: &self.source,
            seq: &seq,
            threads: cfg.threads,
            pipeline: cfg.pipeline,
            requests_per_conn: cfg.requests_per_conn,
            head_request: self.source.all_head(&cfg.request),
            tracked: self.source.tracked(),
            halt: &halt,
            endpoint: &self.endpoint,
            spread: self.spread.clone(),
            sources: self
                .sources
                .iter()
                .map(|&a| nix::sys::socket::SockaddrStorage::from(a))
                .collect(),
            io: backend::Setup {
                level,
                use_ext_arg: support.ext_arg && level != IoLevel::Legacy,
                delay_acks: support.ring_sockopt,
                incremental_buffers: support.buf_ring_inc && level == IoLevel::Full,
                rx_timestamps: cfg.kernel_timestamps,
            },
            batch_wait_us: Some(cfg.batch_wait.as_micros().min(1_000_000) as u32)
                .filter(|&us| us > 0 && support.min_timeout && level != IoLevel::Legacy),
            timeout_us: cfg.timeout.as_micros() as u64,
            duration_us: cfg.duration.as_micros() as u64,
            warmup_us: cfg.warmup.as_micros() as u64,
            start_at: cfg.start_at,
            server_clock: cfg.start_at.is_some() || cfg.shard.is_some(),
            stop,
            schedule: match steps {
                Some(_) => None,
                None => cfg.plan().map(|p| Schedule::new(&p, cfg.connections)),
            },
            pacing_window_us: cfg.pacing_window.as_micros().min(1_000_000) as u64,
            steps,
            poisson: (cfg.arrivals == crate::Arrivals::Poisson).then(|| {
                // Each shard its own arrivals: one seed over a fleet
                // would send the same bursts from every instance.
                let seed = cfg
                    .shard
                    .map_or(self.arrivals_seed, |s| s.seed(self.arrivals_seed));
                arrivals::PoissonGaps::new(seed, cfg.connections)
            }),
            connections: cfg.connections,
            live,
            intervals: cfg.intervals,
            tls: self.tls.clone(),
            http2: cfg.http2,
            shard: cfg.shard,
        };
        let n = cfg.threads;
        let ready = Barrier::new(n);
        let start = OnceLock::new();
        let abort = AtomicBool::new(false);
        let outcomes: Vec<Result<Outcome, EngineError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (shared, ready, start, abort) = (&shared, &ready, &start, &abort);
                    let conns = Config::share(cfg.connections as u64, i, n) as usize;
                    let base: usize = (0..i)
                        .map(|w| Config::share(cfg.connections as u64, w, n) as usize)
                        .sum();
                    let quota = cfg.requests.map(|r| Config::share(r, i, n));
                    std::thread::Builder::new()
                        .name(format!("urk-worker-{i}"))
                        .spawn_scoped(s, move || {
                            let place = Place {
                                index: i,
                                conns,
                                base,
                                quota,
                            };
                            match level {
                                IoLevel::Epoll => {
                                    work::<backend::Epoll>(shared, place, ready, start, abort)
                                }
                                _ => work::<backend::Uring>(shared, place, ready, start, abort),
                            }
                        })
                        .map_err(|source| EngineError::Setup {
                            what: "starting a worker thread",
                            source,
                        })
                })
                .collect();
            if let Some(control) = control {
                control(&start);
            }
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h.join().unwrap_or_else(|_| {
                        Err(EngineError::Config(
                            "a worker thread panicked; this is a bug in urk".into(),
                        ))
                    }),
                    Err(e) => Err(e),
                })
                .collect()
        });

        let ext_arg = shared.io.use_ext_arg;
        // The writer ends once every sender is gone: the workers' are.
        drop(shared);
        let log_dropped: u64 = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .map(|o| o.log_dropped)
            .sum();
        let log = log_writer.map(|w| w.finish(log_dropped));
        let mut total = WorkerStats::new();
        let mut windows = Vec::with_capacity(n);
        let mut ended_us = Vec::with_capacity(n);
        let mut first: Option<Outcome> = None;
        let mut warmups = Vec::with_capacity(n);
        let mut script_error = None;
        let mut err = None;
        for o in outcomes {
            match o {
                Ok(o) => {
                    total.merge(&o.stats);
                    warmups.push(o.warmup);
                    windows.push(o.window);
                    ended_us.push(o.ended_us);
                    if script_error.is_none() {
                        script_error = o.script_error.as_ref().map(|e| e.to_string());
                    }
                    first.get_or_insert(o);
                }
                Err(e) => {
                    // Prefer the worker's own failure over the "another worker" echo.
                    if err.is_none() || matches!(err, Some(EngineError::Config(_))) {
                        err = Some(e);
                    }
                }
            }
        }
        if let Some(e) = err {
            return Err(e);
        }
        let first = first.ok_or_else(|| EngineError::Config("no worker ran".into()))?;
        let io = IoInfo {
            level,
            fallback_reason: self.fallback.as_ref().map(|u| u.to_string()),
            kernel: support.release.clone(),
            setup_flags: first.setup_flags.iter().map(|f| f.to_string()).collect(),
            ext_arg,
            buffers: first.buffers,
            buffer_size: first.buffer_size,
            incremental_buffers: first.incremental_buffers,
            enters_per_1000_requests: 0.0,
            completions_per_1000_requests: 0.0,
            recv_arms_per_1000_requests: 0.0,
            skips_per_1000_requests: 0.0,
        };
        let end_us = windows.iter().map(|w| w.end_us).max().unwrap_or(0);
        let wall = start.get().map_or(std::time::SystemTime::now(), |s| s.1);
        let load_at = worker::load_at_us(cfg.start_at, wall);
        let warmup = (!cfg.warmup.is_zero()).then(|| {
            // Finished only if every worker got past it; a run stopped
            // within it reports the warm-up.
            let finished = warmups.iter().all(Option::is_some);
            let done: Vec<_> = warmups.iter().flatten().collect();
            WarmupReport {
                seconds: if finished {
                    cfg.warmup.as_secs_f64()
                } else {
                    0.0
                },
                requests: done.iter().map(|w| w.requests).sum(),
                errors: done.iter().map(|w| w.errors).sum(),
                connections_opened: done.iter().map(|w| w.connects).sum(),
                // The seconds it began, the one it ended in too.
                timeline_seconds: cfg.warmup.as_secs_f64().ceil() as u32,
                finished,
            }
        });
        // The timeline's second 0 is the load's start; the window's (and
        // its rates') is after the warm-up.
        let window_at = load_at + warmup.as_ref().map_or(0, |w| (w.seconds * 1e6) as u64);
        let started_at = wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
            + window_at as f64 / 1e6;
        let facts = RunFacts {
            url: cfg.request.target.url.clone(),
            threads: cfg.threads,
            connections: cfg.connections,
            pipeline: cfg.pipeline,
            duration_s: end_us.saturating_sub(window_at) as f64 / 1e6,
            warmup,
            started_at,
            stopped_by: windows.iter().map(|w| w.cause).max().unwrap_or_default(),
            grace_s: windows
                .iter()
                .zip(&ended_us)
                .map(|(w, &e)| e.saturating_sub(w.end_us))
                .max()
                .unwrap_or(0) as f64
                / 1e6,
            window_requests: windows.iter().map(|w| w.requests).sum(),
            window_bytes: windows.iter().map(|w| w.bytes_read).sum(),
            generator_cpu_s: windows.iter().map(|w| w.cpu_s).sum(),
            busiest: windows.iter().map(|w| w.busy).fold(0.0, f64::max),
            rate: cfg.plan(),
            schedule_offset_us: first.schedule_start_us.saturating_sub(load_at),
            requests_asked: cfg.requests,
            tls: self.tls.is_some(),
            http2: cfg.http2,
            kernel_timestamps: cfg.kernel_timestamps,
            log,
            shard: cfg.shard,
            start_at: cfg.start_at.and_then(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs_f64())
            }),
            io,
            targets: self.source.labels(),
            seed: match cfg.arrivals {
                crate::Arrivals::Poisson => Some(self.arrivals_seed),
                crate::Arrivals::Uniform => self.source.seed(),
            },
            arrivals: cfg.arrivals,
            script_error,
            addresses: self.spread.iter().map(ToString::to_string).collect(),
        };
        Ok(Report::build(facts, &total))
    }
}

/// A request that is its connection's only one says so
/// (`Connection: close`, unless it has a `Connection` header already), so
/// that the server closes first and keeps the TIME_WAIT socket: a client
/// that closes first keeps one per connection, and its connects' port
/// searches walk them. A server that ignores it is closed on by the client.
fn closing(spec: &proto::RequestSpec) -> proto::RequestSpec {
    let mut s = spec.clone();
    if !s
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        s.headers.push(("Connection".into(), "close".into()));
    }
    s
}

fn closing_target(t: &proto::targets::TargetEntry) -> proto::targets::TargetEntry {
    let mut t = t.clone();
    t.spec = closing(&t.spec);
    t
}

/// When the run started (set by the first worker, on the clock and on the
/// wall clock).
type RunStart = OnceLock<(Instant, std::time::SystemTime)>;

/// What a capacity search runs on the calling thread during its run.
type StepControl<'a> = dyn FnMut(&RunStart) + 'a;

/// A worker's share of the run.
struct Place {
    index: usize,
    conns: usize,
    base: usize,
    quota: Option<u64>,
}

/// One worker's life on its thread, on backend `B`: made, lined up with
/// the others, run.
fn work<B: backend::Backend>(
    shared: &Shared<'_>,
    p: Place,
    ready: &Barrier,
    start: &RunStart,
    abort: &AtomicBool,
) -> Result<Outcome, EngineError> {
    let worker = Worker::<B>::new(shared, p.index, p.conns, p.base, p.quota);
    if worker.is_err() {
        abort.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    ready.wait();
    let worker = worker?;
    if abort.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(EngineError::Config("another worker failed to start".into()));
    }
    worker.run(*start.get_or_init(|| (Instant::now(), std::time::SystemTime::now())))
}

/// Running totals of a run in progress, updated by the workers every
/// 100 ms, read by whoever shows progress; and, when asked for
/// ([`Live::with_seconds`]), each worker's figures for every second as it
/// closes, for a live view. Nothing here is touched per request.
///
/// ```
/// let live = urk_engine::Live::with_seconds();
/// assert_eq!(live.totals(), (0, 0));
/// assert!(live.take_seconds().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Live {
    requests: std::sync::atomic::AtomicU64,
    errors: std::sync::atomic::AtomicU64,
    seconds: Option<std::sync::Mutex<Vec<LiveSecond>>>,
    /// Added to every published second's index: a capacity search's
    /// steps run after its probe, on a timeline of their own.
    base: std::sync::atomic::AtomicU32,
    search: std::sync::Mutex<Option<SearchProgress>>,
}

/// A capacity search so far, for a live view: the steps judged, the
/// bracket they make, and the rate of the step under way.
#[derive(Debug, Clone, Default)]
pub struct SearchProgress {
    /// The objectives, as given.
    pub objectives: Vec<String>,
    pub steps: Vec<crate::SearchStep>,
    /// The highest rate that passed, and the lowest that failed.
    pub passed: Option<f64>,
    pub failed: Option<f64>,
    /// The step being run now.
    pub current: Option<f64>,
}

/// One worker's second, published as it closes (needs
/// [`Config::intervals`]): what happened in it, and the worker's running
/// counts at its end.
#[derive(Debug, Clone)]
pub struct LiveSecond {
    /// Which worker.
    pub worker: usize,
    /// The second's index on the run's timeline.
    pub index: u32,
    /// Responses completed in it.
    pub requests: u64,
    /// Its latencies (corrected), HdrHistogram V2 encoding, µs.
    pub histogram_v2: Vec<u8>,
    /// Paced runs: its latencies from the actual send (V2, µs); empty in
    /// a closed loop, where they are the latencies above.
    pub uncorrected_v2: Vec<u8>,
    /// Its responses' times to first byte (V2, µs).
    pub ttfb_v2: Vec<u8>,
    /// The connect times of the connections that connected in it (V2, µs).
    pub connect_v2: Vec<u8>,
    /// This worker's share of the second spent on its thread's CPU (0-1).
    pub busy: f64,
    /// Running counts at its end: faults by class, failed connects by
    /// cause, responses by status, connections that connected and TLS
    /// handshakes done.
    pub errors: crate::Errors,
    pub connect_errors: crate::ConnectCauses,
    pub status: Vec<(u16, u64)>,
    pub connects: u64,
    pub handshakes: u64,
    /// Bytes received and sent, running counts at its end.
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Connections open, and connecting, at its end.
    pub open: u64,
    pub connecting: u64,
}

impl Live {
    /// A `Live` that also keeps each worker's seconds, for
    /// [`Live::take_seconds`].
    pub fn with_seconds() -> Live {
        Live {
            seconds: Some(std::sync::Mutex::new(Vec::new())),
            ..Live::default()
        }
    }

    /// A capacity search's progress, once one has started.
    pub fn search(&self) -> Option<SearchProgress> {
        self.search
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_search(&self, p: SearchProgress) {
        *self.search.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
    }

    pub(crate) fn set_base(&self, base: u32) {
        self.base.store(base, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn base(&self) -> u32 {
        self.base.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The seconds published since the last call, oldest first.
    pub fn take_seconds(&self) -> Vec<LiveSecond> {
        match &self.seconds {
            Some(m) => std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner())),
            None => Vec::new(),
        }
    }

    pub(crate) fn wants_seconds(&self) -> bool {
        self.seconds.is_some()
    }

    pub(crate) fn publish(&self, s: LiveSecond) {
        if let Some(m) = &self.seconds {
            m.lock().unwrap_or_else(|e| e.into_inner()).push(s);
        }
    }

    /// Completed requests and errors so far.
    pub fn totals(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.requests.load(Relaxed), self.errors.load(Relaxed))
    }

    pub(crate) fn add(&self, requests: u64, errors: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.requests.fetch_add(requests, Relaxed);
        self.errors.fetch_add(errors, Relaxed);
    }
}

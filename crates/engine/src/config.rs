use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::targets::TargetEntry;
use proto::{RequestSpec, Target};

use crate::EngineError;

/// How much of io_uring to use. `Auto` picks the best the kernel has;
/// forcing a lower level exercises the paths older kernels take.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IoLevel {
    /// Plain recv into a buffer per connection; wake-ups by timeout entries
    /// (Linux 5.10 to 5.18).
    Legacy,
    /// Single-shot recv that picks a buffer from a ring-mapped provided
    /// buffer ring shared by all connections of a worker (5.19).
    Basic,
    /// Multishot recv on the provided buffer ring: one SQE per connection
    /// for its whole life (6.0+).
    Full,
    /// No io_uring: nonblocking sockets on epoll, for where io_uring is
    /// blocked (container seccomp profiles, `kernel.io_uring_disabled`).
    Epoll,
    /// The best level the kernel supports.
    Auto,
}

impl fmt::Display for IoLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoLevel::Legacy => "legacy",
            IoLevel::Basic => "basic",
            IoLevel::Full => "full",
            IoLevel::Epoll => "epoll",
            IoLevel::Auto => "auto",
        })
    }
}

impl std::str::FromStr for IoLevel {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s {
            "auto" => Ok(IoLevel::Auto),
            "full" => Ok(IoLevel::Full),
            "basic" => Ok(IoLevel::Basic),
            "legacy" => Ok(IoLevel::Legacy),
            "epoll" => Ok(IoLevel::Epoll),
            _ => Err(EngineError::Config(format!(
                "invalid --io '{s}': expected auto, full, basic, legacy or epoll"
            ))),
        }
    }
}

/// How the next request is chosen among several targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Each in turn (each worker starts at its own share of the list).
    #[serde(rename = "rr")]
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// At random, in proportion to each target's weight.
    Weighted,
}

impl std::str::FromStr for Order {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s {
            "rr" => Ok(Order::RoundRobin),
            "random" => Ok(Order::Random),
            "weighted" => Ok(Order::Weighted),
            _ => Err(EngineError::Config(format!(
                "invalid order '{s}': expected rr, random or weighted"
            ))),
        }
    }
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

impl std::str::FromStr for TlsVersion {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s {
            "1.2" => Ok(TlsVersion::V1_2),
            "1.3" => Ok(TlsVersion::V1_3),
            _ => Err(EngineError::Config(format!(
                "invalid TLS version '{s}': expected 1.2 or 1.3"
            ))),
        }
    }
}

/// How `https://` connections are made. The defaults verify the server's
/// certificate against the system's roots and resume sessions on
/// reconnect, as a browser would.
///
/// ```
/// let mut cfg = urk_engine::Config::new("https://127.0.0.1:8443/")?;
/// cfg.tls.ca_file = Some("ca.pem".into());
/// cfg.tls.resume = false;
/// # Ok::<(), urk_engine::EngineError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// Accept any certificate (the handshake's signatures are still
    /// checked): for self-signed test servers.
    pub insecure: bool,
    /// Trust the CA certificates in this PEM file instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Present this certificate chain and private key (PEM files).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The server name for SNI and the certificate check, instead of the
    /// URL's host.
    pub sni: Option<String>,
    /// Lowest version offered.
    pub min_version: TlsVersion,
    /// Highest version offered.
    pub max_version: TlsVersion,
    /// Resume sessions when a connection is replaced (one session cache
    /// per worker thread).
    pub resume: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            insecure: false,
            ca_file: None,
            client_cert: None,
            sni: None,
            min_version: TlsVersion::V1_2,
            max_version: TlsVersion::V1_3,
            resume: true,
        }
    }
}

/// Everything a run needs. Defaults are wrk's: 2 threads, 10 connections,
/// 10 s, 2 s timeout.
///
/// ```
/// use std::time::Duration;
/// let cfg = urk_engine::Config::new("http://127.0.0.1:8080/")?
///     .threads(1)
///     .connections(50)
///     .duration(Duration::from_secs(5))
///     .header("Accept: */*")?;
/// assert_eq!(cfg.connections, 50);
/// # Ok::<(), urk_engine::EngineError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// What to send, where.
    pub request: RequestSpec,
    /// Worker threads, one io_uring each.
    pub threads: usize,
    /// Connections kept open, spread over the threads.
    pub connections: usize,
    /// How long to load; with `requests`, an upper bound. Counted after
    /// the `warmup`.
    pub duration: Duration,
    /// Load for this long before the measured window starts, so that a
    /// server's caches, JIT and connection pools are warm: the report,
    /// its rates and thresholds cover the window after it, and the
    /// timeline keeps its seconds, marked. A schedule (`rate`, ramps,
    /// stages) starts with the warm-up at its first rate; a ramp starts
    /// with the window.
    pub warmup: Duration,
    /// Stop after exactly this many completed responses.
    pub requests: Option<u64>,
    /// A request (or connect) outstanding longer than this is a timeout.
    pub timeout: Duration,
    /// Requests in flight per connection: written together on HTTP/1.1
    /// (pipelining, at most 64), concurrent streams on HTTP/2 (at most
    /// 1024, and no more than the server's `SETTINGS_MAX_CONCURRENT_STREAMS`
    /// as it changes).
    pub pipeline: u32,
    /// Speak HTTP/2: h2 by ALPN for `https://`, h2c with prior knowledge
    /// (RFC 9113 §3.3) for `http://` and Unix sockets. A probe connection
    /// checks that the server speaks it before any load.
    pub http2: bool,
    /// Close each connection after this many responses and open a new
    /// one, whatever the server's headers say (1: no keep-alive, a new
    /// connection per request, as `oha --disable-keepalive`); `None` keeps
    /// connections open. Servers that ignore `Connection: close` are
    /// common, so the client closes. With `pipeline`, a connection's last
    /// batch is cut to what it has left.
    pub requests_per_conn: Option<u32>,
    /// Which io_uring features to use.
    pub io: IoLevel,
    /// How long a worker may wait for a batch of completions before it
    /// settles for one (kernel 6.12+, `full` and `basic` levels). Fewer
    /// wake-ups per request; a response may be reaped up to this much after
    /// it arrived, which can only make latency look higher, never lower.
    /// With 64 or more requests in flight per worker the bound stretches
    /// (up to 4x): a server with that many requests queued stays busy while
    /// the worker naps. Zero waits for the first completion, as wrk does.
    pub batch_wait: Duration,
    /// Time each response's arrival by the kernel too, not only by when
    /// urk reaped it: sockets ask for software receive timestamps
    /// (`SO_TIMESTAMPING`) and receives read them, so that the report can
    /// say how long responses waited for urk after the kernel had them
    /// (its receive lag: batching, sleeping, a busy or starved thread) and
    /// what the latency was without that
    /// ([`Report::kernel_timestamps`](crate::Report::kernel_timestamps)).
    /// Off by default: receives become `recvmsg` with a control message
    /// each, and provided buffers are not shared between receives.
    pub kernel_timestamps: bool,
    /// Constant-rate mode: total requests per second, spread evenly over
    /// the connections; latency is measured from each request's intended
    /// send time (see [`Report::latency_us`](crate::Report::latency_us)).
    pub rate: Option<f64>,
    /// Paced runs: the longest a request may be held after its slot so
    /// that it goes out with the slots after it, sharing one wake-up.
    /// Slots come faster than wake-ups are cheap only at high rates (the
    /// pacer learns what a wake-up costs here); below that every slot is
    /// kept to the microsecond. A held request is late, and its corrected
    /// latency counts from its slot, so the window can only make latency
    /// look higher; [`RateReport::send_lag_us`](crate::RateReport::send_lag_us)
    /// shows by how much. Zero keeps every slot on time at any rate, at the
    /// CPU cost of a wake-up per slot. The window is also kept short
    /// enough for a connection's answer to come before its next slot, and
    /// is none while the schedule is behind (a slot whose connection the
    /// server kept busy a whole connection's gap past it), so that the
    /// run catches up as fast as a closed loop would.
    pub pacing_window: Duration,
    /// Rate ramps or stages instead of one constant `rate` (open-model
    /// load); latency still counts from each request's intended send time.
    pub rate_plan: Option<crate::RatePlan>,
    /// How a paced run's requests arrive (`rate`, ramps, stages, a capacity
    /// search's steps): evenly, or as a Poisson process with the same mean
    /// rate (seeded by `seed`); latency counts from each intended send
    /// either way.
    pub arrivals: crate::Arrivals,
    /// Keep one latency histogram per second of the run, for
    /// [`Report::timeline`](crate::Report::timeline) and HdrHistogram
    /// interval logs.
    pub intervals: bool,
    /// How `https://` connections are made (unused for `http://`).
    pub tls: TlsOptions,
    /// Requests to send instead of `request` (a targets file, see
    /// [`proto::targets`]); all must go to `request`'s server. Empty: send
    /// `request`. Placeholders ([`proto::template`]) work in both.
    pub targets: Vec<TargetEntry>,
    /// How the next target is chosen; `None`: weighted if any weight is
    /// not 1, round robin otherwise.
    pub order: Option<Order>,
    /// Seed for the order and the placeholders' random values, for a
    /// repeatable run; `None`: a random seed (the report says which).
    pub seed: Option<u64>,
    /// Requests made by code as the run goes, instead of `request` or
    /// `targets` (see [`RequestScript`](crate::RequestScript)).
    pub script: Option<Arc<dyn crate::RequestScript>>,
    /// Connect to this host and port instead of the URL's; `Host`, SNI and
    /// the certificate check still use the URL's host.
    pub connect_to: Option<(String, u16)>,
    /// Connect to this Unix domain socket; the URL gives `Host` and path.
    pub unix_socket: Option<PathBuf>,
    /// Spread the connections over every address the host resolves to
    /// (A and AAAA records) that accepts a connection before the run,
    /// round robin, instead of sending them all to the first that does:
    /// a load balancer's per-address limits, or several servers behind
    /// one name, see the load as it would come from many clients. Off by
    /// default: a name's addresses are not all served alike (`localhost`
    /// is `::1` and `127.0.0.1`, and a server often listens on one).
    pub connect_spread: bool,
    /// Source addresses to spread the connections over, round robin
    /// (see [`parse_sources`](crate::parse_sources)); empty: the kernel's
    /// choice. One source address can reach one target from as many ports
    /// as its local port range has; more addresses, more connections.
    pub bind: Vec<std::net::IpAddr>,
    /// Open the connections, then hold the load until this moment, so
    /// that runs started on several machines load together (a moment
    /// already past starts at once).
    pub start_at: Option<std::time::SystemTime>,
    /// This instance's place in a fleet running one load together: the
    /// connections, rate (ramps and stages too) and request count above
    /// are then the fleet's totals, of which this instance takes its exact
    /// share (see [`Shard`](crate::Shard)).
    pub shard: Option<crate::Shard>,
    /// Keep a record per request (or a sampled share) in a file; see
    /// [`LogSpec`](crate::LogSpec).
    pub log: Option<crate::LogSpec>,
}

impl Config {
    /// A `GET` of `url` with wrk's defaults.
    pub fn new(url: &str) -> Result<Config, EngineError> {
        Ok(Config {
            request: RequestSpec::get(Target::parse(url)?),
            threads: 2,
            connections: 10,
            duration: Duration::from_secs(10),
            warmup: Duration::ZERO,
            requests: None,
            timeout: Duration::from_secs(2),
            pipeline: 1,
            http2: false,
            requests_per_conn: None,
            io: IoLevel::Auto,
            batch_wait: Duration::from_micros(50),
            kernel_timestamps: false,
            rate: None,
            pacing_window: Duration::from_millis(1),
            rate_plan: None,
            arrivals: crate::Arrivals::Uniform,
            intervals: false,
            tls: TlsOptions::default(),
            targets: Vec::new(),
            order: None,
            seed: None,
            script: None,
            connect_to: None,
            unix_socket: None,
            bind: Vec::new(),
            connect_spread: false,
            start_at: None,
            shard: None,
            log: None,
        })
    }

    /// Sets the number of worker threads.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }

    /// Sets the number of connections.
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n;
        self
    }

    /// Sets the test length.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }

    /// Stops after exactly `n` completed responses.
    pub fn requests(mut self, n: u64) -> Self {
        self.requests = Some(n);
        self
    }

    /// Sets the request timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Sets how many requests each connection keeps in flight.
    pub fn pipeline(mut self, n: u32) -> Self {
        self.pipeline = n;
        self
    }

    /// Speaks HTTP/2 (see [`Config::http2`]).
    ///
    /// ```
    /// let cfg = urk_engine::Config::new("http://127.0.0.1:8080/")?.http2(true).pipeline(10);
    /// assert!(cfg.validate().is_ok());
    /// # Ok::<(), urk_engine::EngineError>(())
    /// ```
    pub fn http2(mut self, on: bool) -> Self {
        self.http2 = on;
        self
    }

    /// Sets how many responses a connection gets before it is closed and
    /// replaced; see [`Config::requests_per_conn`].
    pub fn requests_per_conn(mut self, n: Option<u32>) -> Self {
        self.requests_per_conn = n;
        self
    }

    /// Forces an io_uring level.
    pub fn io(mut self, level: IoLevel) -> Self {
        self.io = level;
        self
    }

    /// Sets the batched-wait bound; see [`Config::batch_wait`].
    pub fn batch_wait(mut self, d: Duration) -> Self {
        self.batch_wait = d;
        self
    }

    /// Turns kernel receive timestamps on or off; see
    /// [`Config::kernel_timestamps`].
    pub fn kernel_timestamps(mut self, on: bool) -> Self {
        self.kernel_timestamps = on;
        self
    }

    /// Switches to constant-rate mode at `per_sec` requests per second.
    pub fn rate(mut self, per_sec: f64) -> Self {
        self.rate = Some(per_sec);
        self
    }

    /// Sets the pacing window; see [`Config::pacing_window`].
    pub fn pacing_window(mut self, d: Duration) -> Self {
        self.pacing_window = d;
        self
    }

    /// Switches to an open-model load whose rate follows `plan` (ramps,
    /// stages).
    pub fn rate_plan(mut self, plan: crate::RatePlan) -> Self {
        self.rate_plan = Some(plan);
        self
    }

    /// The offered rate over the run, if the load is paced: with a
    /// warm-up, its first rate held through the warm-up first.
    pub fn plan(&self) -> Option<crate::RatePlan> {
        let plan = self
            .rate_plan
            .clone()
            .or_else(|| self.rate.map(crate::RatePlan::constant))?;
        Some(match plan.is_constant() || self.warmup.is_zero() {
            true => plan,
            false => plan.after(self.warmup),
        })
    }

    /// Keeps a record per request; see [`Config::log`].
    pub fn log(mut self, spec: crate::LogSpec) -> Self {
        self.log = Some(spec);
        self
    }

    /// Runs as one instance of a fleet; see [`Config::shard`].
    pub fn shard(mut self, shard: crate::Shard) -> Self {
        self.shard = Some(shard);
        self
    }

    /// This instance's own configuration: its share of the fleet's
    /// totals (the configuration itself when it is not one of a fleet).
    pub(crate) fn sharded(&self) -> Result<Config, EngineError> {
        let Some(s) = self.shard else {
            return Ok(self.clone());
        };
        let mut c = self.clone();
        c.connections = s.part(self.connections as u64) as usize;
        if c.connections == 0 {
            return Err(EngineError::Config(format!(
                "{} connections over {} shards leave shard {s} none: ask for at least as many connections as shards",
                self.connections, s.count
            )));
        }
        c.threads = self.threads.min(c.connections);
        if let Some(n) = self.requests {
            c.requests = Some(s.part(n));
            if c.requests == Some(0) {
                return Err(EngineError::Config(format!(
                    "{n} requests over {} shards leave shard {s} none: ask for at least as many requests as shards",
                    s.count
                )));
            }
        }
        c.rate = self.rate.map(|r| s.rate(r));
        c.rate_plan = self.rate_plan.as_ref().map(|p| p.scaled(s.rate(1.0)));
        Ok(c)
    }

    /// Loads for `d` before the measured window (see [`Config::warmup`]).
    pub fn warmup(mut self, d: Duration) -> Self {
        self.warmup = d;
        self
    }

    /// Keeps per-second interval histograms.
    pub fn intervals(mut self, on: bool) -> Self {
        self.intervals = on;
        self
    }

    /// Sets the method, e.g. `POST`.
    pub fn method(mut self, m: &str) -> Self {
        self.request.method = m.to_string();
        self
    }

    /// Adds a `Name: value` header; it replaces a default of the same name.
    pub fn header(mut self, h: &str) -> Result<Self, EngineError> {
        self.request.headers.push(RequestSpec::parse_header(h)?);
        Ok(self)
    }

    /// Sends these requests (a parsed targets file) instead of the one
    /// request.
    ///
    /// ```
    /// let cfg = urk_engine::Config::new("http://127.0.0.1:8080/")?;
    /// let list = proto::targets::parse("/a\n/b\n", Some(&cfg.request.target)).unwrap();
    /// let cfg = cfg.targets(list);
    /// assert_eq!(cfg.targets.len(), 2);
    /// # Ok::<(), urk_engine::EngineError>(())
    /// ```
    pub fn targets(mut self, list: Vec<TargetEntry>) -> Self {
        self.targets = list;
        self
    }

    /// Makes requests with `script` (see [`RequestScript`](crate::RequestScript)).
    pub fn script(mut self, script: Arc<dyn crate::RequestScript>) -> Self {
        self.script = Some(script);
        self
    }

    /// Sets the request body.
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.request.body = b.into();
        self
    }

    /// Checks ranges; `run` calls it too.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |s: String| Err(EngineError::Config(s));
        if self.connections == 0 {
            return bad("-c must be at least 1".into());
        }
        if self.threads == 0 {
            return bad("-t must be at least 1".into());
        }
        if self.threads > self.connections {
            return bad(format!(
                "-t {} is more than -c {}: every thread needs at least one connection",
                self.threads, self.connections
            ));
        }
        if self.connections > 1_000_000 {
            return bad("-c must be at most 1000000".into());
        }
        if self.threads > 1024 {
            return bad("-t must be at most 1024".into());
        }
        if self.duration.is_zero() {
            return bad("-d must be longer than 0".into());
        }
        if self.timeout.is_zero() {
            return bad("--timeout must be longer than 0".into());
        }
        if self.http2 && !(1..=1024).contains(&self.pipeline) {
            return bad("-p (streams per connection) must be between 1 and 1024".into());
        }
        if !self.http2 && !(1..=64).contains(&self.pipeline) {
            return bad("-p must be between 1 and 64".into());
        }
        if let Some(plan) = self.plan() {
            if let Err(why) = plan.check() {
                return bad(format!("-R: {why}"));
            }
            if self.pipeline > 1 && !self.http2 {
                return bad(
                    "-R and -p cannot be combined: a schedule paces single requests".into(),
                );
            }
        }
        if self.tls.min_version > self.tls.max_version {
            return bad("--tls-min is above --tls-max".into());
        }
        if self.requests == Some(0) {
            return bad("-n must be at least 1".into());
        }
        if self.requests_per_conn == Some(0) {
            return bad("requests_per_conn must be at least 1".into());
        }
        self.request.encode()?;
        if self.connect_to.is_some() && self.unix_socket.is_some() {
            return bad("connect_to and unix_socket cannot be combined".into());
        }
        if self.script.is_some() && !self.targets.is_empty() {
            return bad(
                "a script and a targets file cannot be combined: the script makes the requests"
                    .into(),
            );
        }
        let server = |t: &Target| (t.tls, t.host.clone(), t.port);
        if let Some(e) = self
            .targets
            .iter()
            .find(|e| server(&e.spec.target) != server(&self.request.target))
        {
            return bad(format!(
                "target on line {} ({}) goes to another server than {}",
                e.line, e.spec.target.url, self.request.target.url
            ));
        }
        Ok(())
    }

    /// The share of `total` that worker `i` of `n` takes: even, with the
    /// remainder going to the first workers (never dropped).
    pub(crate) fn share(total: u64, i: usize, n: usize) -> u64 {
        total / n as u64 + u64::from((i as u64) < total % n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, n) in [(10u64, 3usize), (1, 4), (50, 1), (7, 7)] {
            let sum: u64 = (0..n).map(|i| Config::share(total, i, n)).sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn validation() {
        let c = Config::new("http://127.0.0.1:1/").unwrap();
        assert!(c.clone().connections(0).validate().is_err());
        assert!(c.clone().threads(5).connections(2).validate().is_err());
        assert!(c.clone().pipeline(65).validate().is_err());
        assert!(c.validate().is_ok());
    }
}

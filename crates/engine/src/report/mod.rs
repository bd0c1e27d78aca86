pub mod checks;
pub mod confidence;
pub mod diff;
pub mod fleet;
mod kernel;
pub use kernel::KernelTimestamps;
pub(crate) use kernel::LAG_VERDICT;
pub(crate) mod histogram_b64;
mod merge;
pub(crate) mod server_clock;
pub use server_clock::ServerClock;
pub(crate) mod stats;
pub(crate) mod text;
pub(crate) mod threshold;
pub mod units;

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::report::stats::{ConnectCauses, Errors, LostCauses, TlsCauses, WorkerStats};
use crate::IoLevel;

/// The outcome of a run: plain data, serialisable as the `--json` report.
///
/// Field names are stable; more may be added. The histograms are kept for
/// callers that want other percentiles; they are not serialised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// urk's version.
    pub urk_version: String,
    /// The target URL.
    pub url: String,
    /// Worker threads.
    pub threads: usize,
    /// Connections.
    pub connections: usize,
    /// Requests per connection in flight.
    pub pipeline: u32,
    /// The measured window, in seconds: from the start until the load
    /// stopped (the duration asked for, the last response of a request
    /// count, or an interrupt). Rates are over this window.
    pub duration_s: f64,
    /// What ended the window.
    #[serde(default)]
    pub stopped_by: StopCause,
    /// A warm-up loaded before the window (`Config::warmup`): what it
    /// did, counted nowhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<WarmupReport>,
    /// When the window started, as a Unix time in seconds (the timeline's
    /// second 0): what `urk merge` lines the runs of several machines up
    /// by.
    #[serde(default)]
    pub started_at: f64,
    /// Completed responses: fully received, any status; those of the grace
    /// after the window included.
    pub requests: u64,
    /// Of `requests`, those completed after the window, while urk waited
    /// (at most 1 s, or the timeout) for the requests still in flight.
    /// Counted, so that nothing sent vanishes; not in the rates.
    #[serde(default)]
    pub requests_after_stop: u64,
    /// How long that wait lasted, in seconds.
    #[serde(default)]
    pub grace_s: f64,
    /// A request count was asked for: the run stops after exactly this many
    /// responses, unless the duration runs out first (then `stopped_by` is
    /// `duration` and `requests` is smaller).
    #[serde(default)]
    pub requests_asked: Option<u64>,
    /// Requests sent: `requests + requests_lost + requests_unfinished`.
    pub requests_sent: u64,
    /// Requests sent that will never get a response: their connection
    /// ended first. Each has one cause in `lost_causes`.
    pub requests_lost: u64,
    /// Why requests were lost; the causes sum to `requests_lost`.
    #[serde(default)]
    pub lost_causes: LostCauses,
    /// Requests still in flight when the run ended (after the grace).
    pub requests_unfinished: u64,
    /// Bytes received on the wire (ciphertext under TLS), heads included
    /// (the grace's too).
    pub bytes_read: u64,
    /// Of `bytes_read`, those received after the window.
    #[serde(default)]
    pub bytes_read_after_stop: u64,
    /// Bytes sent on the wire (ciphertext under TLS).
    pub bytes_written: u64,
    /// Responses completed within the window, per second of it:
    /// `(requests - requests_after_stop) / duration_s`.
    pub requests_per_sec: f64,
    /// Bytes received within the window, per second of it.
    pub bytes_read_per_sec: f64,
    /// Completed responses by status code.
    pub status: BTreeMap<u16, u64>,
    /// Completed responses whose status is not 2xx or 3xx.
    pub non_2xx_3xx: u64,
    /// Faults by class.
    pub errors: Errors,
    /// Why connects failed.
    pub connect_errors: ConnectCauses,
    /// Connections that connected over the run: the first ones, and every
    /// replacement (after a fault, a server's close, or
    /// [`Config::requests_per_conn`](crate::Config::requests_per_conn)).
    #[serde(default)]
    pub connections_opened: u64,
    /// `connections_opened` per second of the window.
    #[serde(default)]
    pub connects_per_sec: f64,
    /// Latency to the response's last byte, in microseconds: from the
    /// intended send time in constant-rate mode (corrected for coordinated
    /// omission), from the actual send otherwise.
    pub latency_us: LatencySummary,
    /// Latency from the actual send, in microseconds (equal to
    /// `latency_us` in closed-loop mode).
    pub latency_uncorrected_us: LatencySummary,
    /// How long the phases of a request took: the TCP connects and each
    /// response's first byte (the TLS handshakes are in `tls`).
    #[serde(default)]
    pub phases: PhaseTimings,
    /// Constant-rate mode: the requested rate and how well it was kept.
    pub rate: Option<RateReport>,
    /// `https://` runs: what was negotiated and how the handshakes went.
    #[serde(default)]
    pub tls: Option<TlsReport>,
    /// An HTTP/1.1 run's parse errors were HTTP/2 frames: the server
    /// speaks HTTP/2 only, and the run wants [`Config::http2`](crate::Config::http2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub http2_only: bool,
    /// HTTP/2 runs: streams per connection, the server's limit, GOAWAYs,
    /// resets and retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2: Option<crate::Http2Report>,
    /// Runs with [`Config::kernel_timestamps`](crate::Config::kernel_timestamps):
    /// how long responses waited for urk after the kernel had them, and the
    /// latency without that wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_timestamps: Option<KernelTimestamps>,
    /// Runs of a fleet (a shard, or a `start_at`): the server's clock
    /// against this machine's, from its `Date` headers, so that a merge
    /// can put every shard's start on the one clock they share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_clock: Option<ServerClock>,
    /// Runs with [`Config::log`](crate::Config::log): the file, the
    /// records it kept and those dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<crate::LogReport>,
    /// The command line that made the run, when the caller sets it (the
    /// CLI does), so that a saved report says how to repeat it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A targets file's targets, in file order (the first 1000): what
    /// each got back. Empty for a single request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetReport>,
    /// [`Config::connect_spread`](crate::Config::connect_spread): the
    /// addresses the connections were spread over, round robin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// The seed of the targets' order and the placeholders' random values
    /// (give it again for the same sequence); `None` when nothing was
    /// random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// One instance of a fleet: which (its connections, rate and request
    /// count are its share of the fleet's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::Shard>,
    /// The moment the load was asked to start (`start_at`), Unix seconds;
    /// `started_at` says when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<f64>,
    /// A merge of a fleet's reports: the fleet, and how late its
    /// instances started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::report::fleet::Fleet>,
    /// One entry per second of the run, when intervals were asked for.
    pub timeline: Vec<TimelineEntry>,
    /// Per-thread request rate, sampled every 100 ms.
    pub thread_requests_per_sec: RateSummary,
    /// What io_uring features were used.
    pub io: IoInfo,
    /// The run was stopped early (Ctrl-C, or the caller's stop flag).
    pub interrupted: bool,
    /// A capacity search (`find_max`): its answer and steps. The rest of
    /// the report is every step's load together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find_max: Option<crate::SearchReport>,
    /// A script hook failed during the run, which stopped it: the error,
    /// with the script's file and line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_error: Option<String>,
    /// CPU time (user + system) the worker threads used within the
    /// window, in seconds (setup before it and the grace after it left out).
    pub generator_cpu_s: f64,
    /// The busiest worker thread's CPU time as a share of the window, in
    /// percent (0 to 100).
    #[serde(default)]
    pub generator_busy_pct: f64,
    /// The busiest worker was busy at least 90% of a window of at least
    /// 100 ms: the figures may be bounded by urk rather than by the server.
    pub generator_bound: bool,
    /// All latencies, in microseconds; in JSON, HdrHistogram's V2
    /// compressed encoding in base64 (what `urk merge` adds up exactly).
    #[serde(rename = "latency_histogram_v2", with = "crate::report::histogram_b64")]
    pub latency_histogram: Histogram<u64>,
    /// All uncorrected latencies, in microseconds (V2, base64).
    #[serde(
        rename = "latency_uncorrected_histogram_v2",
        with = "crate::report::histogram_b64"
    )]
    pub uncorrected_histogram: Histogram<u64>,
    /// All per-thread rate samples (V2, base64).
    #[serde(
        rename = "thread_requests_per_sec_histogram_v2",
        with = "crate::report::histogram_b64"
    )]
    pub rate_histogram: Histogram<u64>,
}

/// What ended a run's measured window. Ordered from the most to the least
/// complete run, so that a merge keeps the least complete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopCause {
    /// The requested number of responses completed.
    Requests,
    /// The duration ran out.
    #[default]
    Duration,
    /// The caller's stop flag (Ctrl-C).
    Interrupted,
    /// The script: `thread:stop()`, or a failed hook (`script_error`).
    Script,
}

/// One target of a targets file and its responses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetReport {
    /// The request's method.
    pub method: String,
    /// The request's URL, as resolved.
    pub url: String,
    /// The line of the targets file it starts on.
    pub line: usize,
    /// Completed responses (any status).
    pub requests: u64,
    /// Completed responses by status code.
    pub status: BTreeMap<u16, u64>,
    /// Latency in microseconds (two significant digits).
    pub latency_us: LatencySummary,
    /// Its latencies (V2, base64), so that merged reports stay exact.
    #[serde(rename = "latency_histogram_v2", with = "crate::report::histogram_b64")]
    pub latency_histogram: Histogram<u64>,
}

/// The TLS side of an `https://` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsReport {
    /// Protocol version of the first completed handshake, e.g. `TLSv1.3`.
    pub version: String,
    /// Its cipher suite, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub cipher: String,
    /// Its key exchange group, e.g. `X25519MLKEM768`.
    pub group: String,
    /// The protocol ALPN settled on (`http/1.1`), or empty if the server
    /// chose none.
    pub alpn: String,
    /// Completed handshakes.
    pub handshakes: u64,
    /// Of them, those that resumed an earlier session.
    pub resumed: u64,
    /// From the TCP connect's completion to the handshake's, µs.
    pub handshake_latency_us: LatencySummary,
    /// TLS failures by cause (their sum is `errors.tls`).
    pub errors: TlsCauses,
    /// All handshake latencies (V2, base64), for exact merges.
    #[serde(
        rename = "handshake_histogram_v2",
        with = "crate::report::histogram_b64"
    )]
    pub handshake_histogram: Histogram<u64>,
}

/// How a constant-rate run kept its schedule.
#[derive(Clone, Serialize, Deserialize)]
pub struct RateReport {
    /// Requests per second asked for.
    pub requested: f64,
    /// Requests completed within the window, per second.
    pub achieved: f64,
    /// Requests the schedule had due before the end of the window.
    pub scheduled: u64,
    /// Requests actually sent.
    pub sent: u64,
    /// Scheduled requests never sent (the generator fell behind).
    pub behind: u64,
    /// Latest a send went out after its intended time, in µs.
    pub max_lag_us: u64,
    /// Mean lateness of sends, in µs.
    pub mean_lag_us: f64,
    /// How late each send went out after its slot (actual minus intended
    /// send time), in µs: the part of every corrected latency that is
    /// urk's pacing (a window held for shared wake-ups, a late wake-up)
    /// or a connection still busy with the response before.
    #[serde(default)]
    pub send_lag_us: LatencySummary,
    /// All send lags (V2, base64), for exact merges.
    #[serde(
        default = "crate::report::stats::new_growing_histogram",
        rename = "send_lag_histogram_v2",
        with = "crate::report::histogram_b64"
    )]
    pub send_lag_histogram: Histogram<u64>,
    /// Of each send lag, urk's own part: from when both the slot had come
    /// and the connection was free (its last response complete) to the
    /// send. What remains of the send lag waited for the server.
    #[serde(default)]
    pub own_lag_us: LatencySummary,
    /// Those own lags (V2, base64), for exact merges.
    #[serde(
        default = "crate::report::stats::new_growing_histogram",
        rename = "own_lag_histogram_v2",
        with = "crate::report::histogram_b64"
    )]
    pub own_lag_histogram: Histogram<u64>,
    /// The longest the pacer held slots to share a wake-up, in µs (0:
    /// every slot had its own; see
    /// [`Config::pacing_window`](crate::Config::pacing_window)).
    #[serde(default)]
    pub window_us: u64,
    /// True when at most 1% of the schedule (and at least one request) was missed.
    pub kept: bool,
    /// Ramps and stages: the offered rate's plan (`requested` is then its
    /// mean over the window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::RatePlan>,
    /// How the requests arrived: evenly, or as a Poisson process (its
    /// seed is the report's `seed`).
    #[serde(default)]
    pub arrivals: crate::Arrivals,
    /// urk's own share of the latency: its own lag's p99 over the
    /// latency's p99 (0 to 1 and beyond).
    #[serde(default)]
    pub lag_share: f64,
    /// urk's own lag is more than a tenth of the p99 latency: the figures
    /// are bounded by urk, by about that lag, whether its thread was busy
    /// or starved by other load. (A schedule missed because the server was
    /// slow is not urk's: its lag is the server's.)
    #[serde(default)]
    pub bounded_by_urk: bool,
    /// Self-checks of the run (`None` in merged reports: they need each
    /// run's samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<crate::SelfChecks>,
}

impl std::fmt::Debug for RateReport {
    /// Every figure but the send-lag histogram's buckets (its summary
    /// is there), so that a report in a message stays readable.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateReport")
            .field("requested", &self.requested)
            .field("achieved", &self.achieved)
            .field("scheduled", &self.scheduled)
            .field("sent", &self.sent)
            .field("behind", &self.behind)
            .field("max_lag_us", &self.max_lag_us)
            .field("mean_lag_us", &self.mean_lag_us)
            .field("send_lag_us", &self.send_lag_us)
            .field("own_lag_us", &self.own_lag_us)
            .field("window_us", &self.window_us)
            .field("kept", &self.kept)
            .field("plan", &self.plan)
            .field("arrivals", &self.arrivals)
            .field("checks", &self.checks)
            .finish_non_exhaustive()
    }
}

/// What a warm-up did before the measured window: its responses, faults
/// and connections are in none of the report's other figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WarmupReport {
    /// How long it loaded before the window, in seconds (0 when the run
    /// stopped within it).
    pub seconds: f64,
    /// Responses it completed.
    pub requests: u64,
    /// Faults it counted.
    pub errors: u64,
    /// Connections it opened.
    pub connections_opened: u64,
    /// The timeline's first entries that are its seconds, the one it
    /// ended in too (marked `warmup`); the timeline's second 0 is the
    /// warm-up's start.
    pub timeline_seconds: u32,
    /// False when the run stopped within the warm-up: the rest of the
    /// report is then the warm-up's own figures.
    pub finished: bool,
}

/// Where a response's time went, phase by phase, each an HdrHistogram
/// so that `urk merge` adds them exactly. A worker reads its clock once
/// per batch of completions, so a phase is timed to within that batch's
/// wait (see [`Config::batch_wait`](crate::Config::batch_wait)).
#[derive(Clone, Serialize, Deserialize)]
pub struct PhaseTimings {
    /// TCP connects, from the connect's submission to its completion, µs
    /// (every connection opened, replacements too).
    pub connect_us: LatencySummary,
    /// Every connect time (V2, base64).
    #[serde(
        default = "crate::report::stats::new_growing_histogram",
        rename = "connect_histogram_v2",
        with = "crate::report::histogram_b64"
    )]
    pub connect_histogram: Histogram<u64>,
    /// Time to first byte: from the request's send (its intended send
    /// under a schedule, as the latency) to the first byte of its
    /// response, µs.
    pub ttfb_us: LatencySummary,
    /// Every time to first byte (V2, base64).
    #[serde(
        default = "crate::report::stats::new_growing_histogram",
        rename = "ttfb_histogram_v2",
        with = "crate::report::histogram_b64"
    )]
    pub ttfb_histogram: Histogram<u64>,
}

impl PhaseTimings {
    pub(crate) fn of(connect: &Histogram<u64>, ttfb: &Histogram<u64>) -> PhaseTimings {
        PhaseTimings {
            connect_us: LatencySummary::of(connect),
            connect_histogram: connect.clone(),
            ttfb_us: LatencySummary::of(ttfb),
            ttfb_histogram: ttfb.clone(),
        }
    }

    /// Both runs' phases in histograms that span them both.
    pub(crate) fn merged(&self, o: &PhaseTimings) -> PhaseTimings {
        use crate::report::stats::sum;
        PhaseTimings::of(
            &sum(&self.connect_histogram, &o.connect_histogram),
            &sum(&self.ttfb_histogram, &o.ttfb_histogram),
        )
    }
}

impl Default for PhaseTimings {
    fn default() -> Self {
        let empty = crate::report::stats::new_growing_histogram();
        PhaseTimings::of(&empty, &empty)
    }
}

impl std::fmt::Debug for PhaseTimings {
    /// The summaries, not the histograms' buckets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhaseTimings")
            .field("connect_us", &self.connect_us)
            .field("ttfb_us", &self.ttfb_us)
            .finish_non_exhaustive()
    }
}

/// One second of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Seconds since the start at which this interval began.
    pub second: u32,
    /// Responses completed in this second.
    pub requests: u64,
    /// Faults counted in this second.
    pub errors: u64,
    /// Responses in this second whose status is not 2xx or 3xx.
    #[serde(default)]
    pub non_2xx_3xx: u64,
    /// Connections that connected in this second.
    #[serde(default)]
    pub connects: u64,
    /// 99th percentile latency of this second's responses, µs.
    pub p99_us: u64,
    /// Paced runs: requests the schedule offered in this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered: Option<f64>,
    /// A second of the warm-up, before the measured window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warmup: bool,
    /// This second's latencies (corrected), µs (V2, base64).
    #[serde(rename = "histogram_v2", with = "crate::report::histogram_b64")]
    pub histogram: Histogram<u64>,
    /// Paced runs: this second's latencies from the actual send, µs
    /// (V2, base64), beside the corrected ones.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "uncorrected_histogram_v2",
        with = "crate::report::histogram_b64::option"
    )]
    pub uncorrected: Option<Histogram<u64>>,
}

impl TimelineEntry {
    /// A second with nothing in it yet.
    pub(crate) fn empty(second: u32) -> TimelineEntry {
        TimelineEntry {
            second,
            requests: 0,
            errors: 0,
            non_2xx_3xx: 0,
            connects: 0,
            p99_us: 0,
            offered: None,
            warmup: false,
            histogram: crate::report::stats::new_latency_histogram(),
            uncorrected: None,
        }
    }
}

/// Latency figures in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    pub min: u64,
    pub mean: f64,
    pub stdev: f64,
    pub max: u64,
    pub p50: u64,
    pub p75: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub p99_99: u64,
    /// Share of samples within one standard deviation of the mean, in percent.
    pub within_stdev_pct: f64,
    /// How sure each percentile is: 95% confidence intervals.
    #[serde(default)]
    pub ci: PercentileIntervals,
}

/// 95% distribution-free confidence intervals of the percentiles, µs
/// (`[low, high]`), from order statistics
/// ([`percentile_ranks`](crate::percentile_ranks)); `None` (null in the
/// JSON) where the samples are too few to bound the percentile at all,
/// so it must not be read as exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PercentileIntervals {
    pub p50: Option<[u64; 2]>,
    pub p75: Option<[u64; 2]>,
    pub p90: Option<[u64; 2]>,
    pub p99: Option<[u64; 2]>,
    pub p99_9: Option<[u64; 2]>,
    pub p99_99: Option<[u64; 2]>,
}

impl PercentileIntervals {
    /// The intervals of `h`'s percentiles.
    pub(crate) fn of(h: &Histogram<u64>) -> PercentileIntervals {
        let n = h.len();
        let at = |q: f64| {
            confidence::percentile_ranks(n, q).map(|(l, u)| {
                // The value at rank r (1-based): quantile just under r/n,
                // so that rounding cannot push it to the next rank.
                let v = |r: u64| h.value_at_quantile((r as f64 - 0.5) / n as f64);
                [v(l), v(u)]
            })
        };
        PercentileIntervals {
            p50: at(0.5),
            p75: at(0.75),
            p90: at(0.9),
            p99: at(0.99),
            p99_9: at(0.999),
            p99_99: at(0.9999),
        }
    }
}

/// Per-thread request rate figures (wrk's Req/Sec row).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct RateSummary {
    pub mean: f64,
    pub stdev: f64,
    pub max: u64,
    /// Share of samples within one standard deviation of the mean, in percent.
    pub within_stdev_pct: f64,
}

/// The io_uring setup a run used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IoInfo {
    /// The level used (never `auto`); `epoll` without io_uring.
    pub level: IoLevel,
    /// Why `auto` ran on epoll: io_uring was unavailable, and how to get
    /// it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// The kernel release.
    pub kernel: String,
    /// Setup flags the kernel accepted.
    pub setup_flags: Vec<String>,
    /// Whether waits carried their timeout (EXT_ARG) instead of timeout entries.
    pub ext_arg: bool,
    /// Provided buffers per worker (0 at `legacy`).
    pub buffers: u32,
    /// Size of each receive buffer in bytes.
    pub buffer_size: u32,
    /// The kernel filled each buffer across many receives
    /// (`IOU_PBUF_RING_INC`, 6.12+, at `full`) instead of taking a whole
    /// buffer per receive.
    #[serde(default)]
    pub incremental_buffers: bool,
    /// `io_uring_enter` calls per 1000 completed requests, all workers.
    pub enters_per_1000_requests: f64,
    /// Completions reaped per 1000 completed requests: how many
    /// kernel-to-user hand-offs a response costs (more than one receive
    /// per response means the responses arrive in pieces).
    #[serde(default)]
    pub completions_per_1000_requests: f64,
    /// Receives armed per 1000 completed requests; at `full` this stays
    /// near the connection count unless the buffer ring runs dry.
    #[serde(default)]
    pub recv_arms_per_1000_requests: f64,
    /// Receives per 1000 completed requests that consumed body bytes
    /// without copying them (`MSG_TRUNC`). Bodies of 32 KiB and more are
    /// discarded this way: urk counts their bytes but never reads them.
    #[serde(default)]
    pub skips_per_1000_requests: f64,
}

fn per_1000(n: u64, requests: u64) -> f64 {
    n as f64 * 1000.0 / requests.max(1) as f64
}

fn within_stdev(h: &Histogram<u64>, mean: f64, stdev: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    let (lo, hi) = (mean - stdev, mean + stdev);
    let n: u64 = h
        .iter_recorded()
        .filter(|v| {
            let x = v.value_iterated_to() as f64;
            x >= lo && x <= hi
        })
        .map(|v| v.count_at_value())
        .sum();
    100.0 * n as f64 / h.len() as f64
}

impl LatencySummary {
    pub(crate) fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let (mean, stdev) = (h.mean(), h.stdev());
        LatencySummary {
            min: h.min(),
            mean,
            stdev,
            max: h.max(),
            p50: h.value_at_quantile(0.50),
            p75: h.value_at_quantile(0.75),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            within_stdev_pct: within_stdev(h, mean, stdev),
            ci: PercentileIntervals::of(h),
        }
    }
}

impl RateSummary {
    pub(crate) fn of(h: &Histogram<u64>) -> RateSummary {
        if h.is_empty() {
            return RateSummary::default();
        }
        let (mean, stdev) = (h.mean(), h.stdev());
        RateSummary {
            mean,
            stdev,
            max: h.max(),
            within_stdev_pct: within_stdev(h, mean, stdev),
        }
    }
}

pub(crate) struct RunFacts {
    pub url: String,
    pub threads: usize,
    pub connections: usize,
    pub pipeline: u32,
    /// The longest worker window, in seconds.
    pub duration_s: f64,
    pub warmup: Option<WarmupReport>,
    pub stopped_by: StopCause,
    pub grace_s: f64,
    /// Counted within the windows, all workers.
    pub window_requests: u64,
    pub window_bytes: u64,
    pub generator_cpu_s: f64,
    /// The busiest worker's share of its window (0 to 1).
    pub busiest: f64,
    pub rate: Option<crate::RatePlan>,
    /// When the schedule started, µs after the window's start.
    pub schedule_offset_us: u64,
    pub requests_asked: Option<u64>,
    pub tls: bool,
    pub http2: bool,
    pub kernel_timestamps: bool,
    pub log: Option<crate::LogReport>,
    pub io: IoInfo,
    /// Unix time of the window's start.
    pub started_at: f64,
    /// What a targets file's lines name, when it was one.
    pub targets: Option<Vec<crate::source::Label>>,
    pub seed: Option<u64>,
    pub shard: Option<crate::Shard>,
    pub start_at: Option<f64>,
    pub arrivals: crate::Arrivals,
    pub script_error: Option<String>,
    pub addresses: Vec<String>,
}

/// Windows shorter than this say nothing about whether urk was the bound:
/// a run of a few requests is mostly connecting.
const MIN_JUDGED_S: f64 = 0.1;

fn targets(labels: &[crate::source::Label], s: &WorkerStats) -> Vec<TargetReport> {
    labels
        .iter()
        .zip(&s.targets)
        .map(|(l, t)| TargetReport {
            method: l.method.clone(),
            url: l.url.clone(),
            line: l.line,
            requests: t.requests,
            status: t.status.iter().copied().collect(),
            latency_us: t
                .latency
                .as_ref()
                .map(LatencySummary::of)
                .unwrap_or_default(),
            latency_histogram: t
                .latency
                .clone()
                .unwrap_or_else(crate::report::stats::new_target_histogram),
        })
        .collect()
}

/// Fills in each second's offered requests from the rate plan (the
/// schedule started `offset_us` into the window).
fn offered(
    mut t: Vec<TimelineEntry>,
    plan: Option<&crate::RatePlan>,
    connections: usize,
    offset_us: u64,
) -> Vec<TimelineEntry> {
    let Some(plan) = plan else { return t };
    let s = crate::run::schedule::Schedule::new(plan, connections);
    let at = |sec: usize| s.slots_at((sec as f64 * 1e6 - offset_us as f64).max(0.0));
    for (i, e) in t.iter_mut().enumerate() {
        e.offered = Some(at(i + 1) - at(i));
    }
    t
}

/// The workers' seconds added up; the first `warmup` are the warm-up's.
fn timeline(s: &WorkerStats, warmup: u32) -> Vec<TimelineEntry> {
    let mut out: Vec<TimelineEntry> = Vec::new();
    let mut decoder = hdrhistogram::serialization::Deserializer::new();
    for iv in &s.intervals {
        let i = iv.index as usize;
        while out.len() <= i {
            out.push(TimelineEntry::empty(out.len() as u32));
        }
        out[i].requests += iv.requests;
        out[i].errors += iv.errors;
        out[i].non_2xx_3xx += iv.non_2xx_3xx;
        out[i].connects += iv.connects;
        if let Ok(h) = decoder.deserialize::<u64, _>(&mut iv.encoded.as_slice()) {
            let _ = out[i].histogram.add(&h);
        }
        if !iv.uncorrected.is_empty() {
            if let Ok(h) = decoder.deserialize::<u64, _>(&mut iv.uncorrected.as_slice()) {
                let u = out[i]
                    .uncorrected
                    .get_or_insert_with(crate::report::stats::new_latency_histogram);
                let _ = u.add(&h);
            }
        }
    }
    for e in &mut out {
        e.p99_us = e.histogram.value_at_quantile(0.99);
        e.warmup = e.second < warmup;
    }
    out
}

impl Report {
    pub(crate) fn build(facts: RunFacts, s: &WorkerStats) -> Report {
        let status: BTreeMap<u16, u64> = s
            .status
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(code, &n)| (code as u16, n))
            .collect();
        let non_2xx_3xx = status
            .iter()
            .filter(|(&c, _)| !(200..400).contains(&c))
            .map(|(_, n)| n)
            .sum();
        let secs = facts.duration_s.max(1e-9);
        let window_rate = facts.window_requests as f64 / secs;
        let rate = facts.rate.clone().map(|plan| {
            let mut scheduled = s.scheduled;
            if let Some(n) = facts.requests_asked {
                scheduled = scheduled.min(n);
            }
            let behind = scheduled.saturating_sub(s.sent - s.carried);
            let constant = plan.is_constant();
            let kept = behind <= (scheduled / 100).max(1);
            let lag_share = match s.latency.value_at_quantile(0.99) {
                0 => 0.0,
                p99 => s.own_lag.value_at_quantile(0.99) as f64 / p99 as f64,
            };
            RateReport {
                requested: if constant {
                    plan.rate_at(std::time::Duration::ZERO)
                } else {
                    scheduled as f64 / secs
                },
                achieved: window_rate,
                scheduled,
                sent: s.sent,
                behind,
                max_lag_us: s.send_lag.max(),
                mean_lag_us: s.send_lag.mean(),
                send_lag_us: LatencySummary::of(&s.send_lag),
                send_lag_histogram: s.send_lag.clone(),
                own_lag_us: LatencySummary::of(&s.own_lag),
                own_lag_histogram: s.own_lag.clone(),
                window_us: s.pacing_window_us,
                arrivals: facts.arrivals,
                lag_share,
                bounded_by_urk: lag_share > LAG_VERDICT && s.requests > 0,
                // Against what the schedule had due: Poisson arrivals
                // offer their mean rate only on average (over 3 s at
                // 500/s, a 2.6% standard deviation).
                checks: Some(checks::run_checks(
                    &s.sample_sets,
                    scheduled as f64 / secs,
                    window_rate,
                    facts.arrivals == crate::Arrivals::Poisson,
                )),
                kept,
                plan: (!constant).then_some(plan),
            }
        });
        Report {
            urk_version: proto::VERSION.to_string(),
            url: facts.url,
            threads: facts.threads,
            connections: facts.connections,
            pipeline: facts.pipeline,
            duration_s: facts.duration_s,
            stopped_by: facts.stopped_by,
            started_at: facts.started_at,
            warmup: facts.warmup.clone(),
            requests: s.requests,
            requests_after_stop: s.requests - facts.window_requests,
            grace_s: facts.grace_s,
            requests_asked: facts.requests_asked,
            requests_sent: s.sent,
            requests_lost: s.lost.total(),
            lost_causes: s.lost,
            requests_unfinished: s.unfinished,
            bytes_read: s.bytes_read,
            bytes_read_after_stop: s.bytes_read - facts.window_bytes,
            bytes_written: s.bytes_written,
            requests_per_sec: window_rate,
            bytes_read_per_sec: facts.window_bytes as f64 / secs,
            status,
            non_2xx_3xx,
            errors: s.errors,
            connect_errors: s.connect_causes,
            connections_opened: s.connects,
            connects_per_sec: s.connects as f64 / secs,
            latency_us: LatencySummary::of(&s.latency),
            latency_uncorrected_us: LatencySummary::of(&s.uncorrected),
            phases: PhaseTimings::of(&s.connect_us, &s.ttfb_us),
            rate,
            tls: facts.tls.then(|| {
                let t = &s.tls;
                let n = t.negotiated.clone().unwrap_or_default();
                TlsReport {
                    version: n.version,
                    cipher: n.cipher,
                    group: n.group,
                    alpn: n.alpn,
                    handshakes: t.handshakes,
                    resumed: t.resumed,
                    handshake_latency_us: LatencySummary::of(&t.handshake_us),
                    errors: t.causes,
                    handshake_histogram: t.handshake_us.clone(),
                }
            }),
            http2: facts.http2.then(|| s.h2.clone()),
            log: facts.log.clone(),
            kernel_timestamps: facts
                .kernel_timestamps
                .then(|| KernelTimestamps::of(&s.receive_lag, &s.kernel_latency)),
            server_clock: s.server_clock.summary(),
            http2_only: s.http2_only,
            command: None,
            targets: targets(facts.targets.as_deref().unwrap_or(&[]), s),
            seed: facts.seed,
            shard: facts.shard,
            start_at: facts.start_at,
            fleet: None,
            addresses: facts.addresses,
            timeline: offered(
                timeline(s, facts.warmup.as_ref().map_or(0, |w| w.timeline_seconds)),
                facts.rate.as_ref(),
                facts.connections,
                facts.schedule_offset_us,
            ),
            thread_requests_per_sec: RateSummary::of(&s.rate),
            io: IoInfo {
                enters_per_1000_requests: per_1000(s.enters, s.requests),
                completions_per_1000_requests: per_1000(s.completions, s.requests),
                recv_arms_per_1000_requests: per_1000(s.recv_arms, s.requests),
                skips_per_1000_requests: per_1000(s.skips, s.requests),
                ..facts.io
            },
            interrupted: facts.stopped_by == StopCause::Interrupted,
            script_error: facts.script_error,
            find_max: None,
            generator_cpu_s: facts.generator_cpu_s,
            generator_busy_pct: 100.0 * facts.busiest,
            generator_bound: facts.busiest >= 0.9 && facts.duration_s >= MIN_JUDGED_S,
            latency_histogram: s.latency.clone(),
            uncorrected_histogram: s.uncorrected.clone(),
            rate_histogram: s.rate.clone(),
        }
    }
}

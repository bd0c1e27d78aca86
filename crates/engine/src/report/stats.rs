//! Per-worker counters and histograms: plain fields owned by one thread, so
//! the hot path takes no lock and touches no atomic. Merged once, after the
//! workers join.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::io::transport::{Negotiated, TlsCause};

/// Highest latency recorded: one hour, in microseconds.
pub(crate) const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Defines a struct of `u64` counters that add field by field (merging
/// workers, merging reports) and sum to a total, so that a new counter
/// cannot be forgotten in one of those places.
macro_rules! counters {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name {
            $($(#[$fm])* #[serde(default)] pub $f: u64,)*
        }

        impl $name {
            /// All counts together.
            pub fn total(&self) -> u64 {
                0 $(+ self.$f)*
            }

            /// Each count with its field's name, for exporters.
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($f), self.$f)),*]
            }
        }

        impl std::ops::AddAssign for $name {
            fn add_assign(&mut self, o: $name) {
                $(self.$f += o.$f;)*
            }
        }
    };
}

counters! {
    /// Faults counted during a run, by where they hit. A request lost to a
    /// fault is counted in [`LostCauses`] and never as completed.
    ///
    /// ```
    /// let mut e = urk_engine::Errors::default();
    /// e += urk_engine::Errors { read: 2, timeout: 1, ..Default::default() };
    /// assert_eq!(e.total(), 3);
    /// ```
    pub struct Errors {
        /// Connections that could not be opened (refused, unreachable, out of
        /// descriptors or local ports, or not accepted within the timeout).
        pub connect,
        /// Receive failures: resets, and closes before a response was complete.
        pub read,
        /// Send failures.
        pub write,
        /// Requests with no complete response within the timeout.
        pub timeout,
        /// Responses that are not valid HTTP/1.x framing.
        pub parse,
        /// TLS failures: handshakes and records (causes in [`TlsCauses`]).
        pub tls,
        /// HTTP/2 streams the server reset with a code other than
        /// REFUSED_STREAM (those are sent again); codes in
        /// [`ResetCodes`].
        pub reset,
    }
}

counters! {
    /// Why TLS failed during the run, so the report can name the cause.
    pub struct TlsCauses {
        /// The server's certificate was refused (after the probe
        /// handshake had accepted one: the server changed it).
        pub certificate,
        /// The server sent a fatal alert.
        pub alert,
        /// A record that does not decrypt or parse, or another protocol
        /// violation.
        pub protocol,
        /// A handshake that did not finish within the timeout.
        pub handshake_timeout,
    }
}

counters! {
    /// Why connects failed, so the report can name the cause.
    pub struct ConnectCauses {
        /// Nothing listening (ECONNREFUSED).
        pub refused,
        /// No answer within the timeout (e.g. a full listen backlog).
        pub timed_out,
        /// No local port left for a new connection (EADDRNOTAVAIL).
        pub no_local_ports,
        /// Out of file descriptors or memory for a new socket.
        pub no_descriptors,
        /// Anything else (unreachable, reset during the handshake, ...).
        pub other,
    }
}

counters! {
    /// Why sent requests got no response: every lost request has exactly
    /// one cause, so the causes sum to `requests_lost`.
    pub struct LostCauses {
        /// The server ended the connection after a complete response
        /// (`Connection: close`, HTTP/1.0) while these were still
        /// outstanding, e.g. pipelined behind it. Not a fault of the server
        /// by HTTP's rules, so no error class counts it.
        pub server_closed,
        /// Outstanding on a connection that failed with a read error.
        pub read,
        /// Outstanding on a connection whose send failed.
        pub write,
        /// Outstanding on a connection whose response failed to parse.
        pub parse,
        /// Outstanding when their timeout expired.
        pub timeout,
        /// Outstanding on a connection that failed in TLS.
        pub tls,
        /// HTTP/2 streams the server reset (not REFUSED_STREAM).
        pub reset,
    }
}

counters! {
    /// HTTP/2 streams the server reset, by RST_STREAM error code (RFC
    /// 9113 §7); REFUSED_STREAM is not here: those requests are retried.
    pub struct ResetCodes {
        /// PROTOCOL_ERROR (0x1).
        pub protocol_error,
        /// INTERNAL_ERROR (0x2).
        pub internal_error,
        /// FLOW_CONTROL_ERROR (0x3).
        pub flow_control_error,
        /// STREAM_CLOSED (0x5).
        pub stream_closed,
        /// CANCEL (0x8).
        pub cancel,
        /// ENHANCE_YOUR_CALM (0xb).
        pub enhance_your_calm,
        /// NO_ERROR (0x0) before the response was complete, and every
        /// other code.
        pub other,
    }
}

impl ResetCodes {
    pub(crate) fn count(&mut self, code: u32) {
        match code {
            0x1 => self.protocol_error += 1,
            0x2 => self.internal_error += 1,
            0x3 => self.flow_control_error += 1,
            0x5 => self.stream_closed += 1,
            0x8 => self.cancel += 1,
            0xb => self.enhance_your_calm += 1,
            _ => self.other += 1,
        }
    }
}

/// What HTTP/2 did over a run (`Config::http2`): how many streams a
/// connection carried, what the server allowed, and what it refused,
/// reset or cut short with GOAWAY.
///
/// ```
/// let mut a = urk_engine::Http2Report { streams_peak: 10, goaways: 1, ..Default::default() };
/// a.merge(&urk_engine::Http2Report { streams_peak: 4, goaways: 2, server_max_streams: Some(128), ..Default::default() });
/// assert_eq!((a.streams_peak, a.goaways, a.server_max_streams), (10, 3, Some(128)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Http2Report {
    /// Connections whose HTTP/2 session started (the preface went out).
    #[serde(default)]
    pub sessions: u64,
    /// Most streams open at once on one connection: what `pipeline`
    /// asked for, unless the server allowed fewer.
    #[serde(default)]
    pub streams_peak: u64,
    /// The lowest `SETTINGS_MAX_CONCURRENT_STREAMS` a server announced;
    /// `None` if it set no limit.
    #[serde(default)]
    pub server_max_streams: Option<u64>,
    /// GOAWAY frames received (nginx sends one every `keepalive_requests`
    /// streams): no stream opens on that connection after one, and a new
    /// connection takes its place.
    #[serde(default)]
    pub goaways: u64,
    /// Requests sent again on another stream because the server never
    /// processed them (REFUSED_STREAM, or above a GOAWAY's last stream):
    /// counted once in `requests_sent`, their latency still from their
    /// first intended send.
    #[serde(default)]
    pub retried: u64,
    /// Streams the server reset, by code: lost, and counted as errors.
    #[serde(default)]
    pub resets: ResetCodes,
}

impl Http2Report {
    /// Adds another run's (or worker's) figures.
    pub fn merge(&mut self, o: &Http2Report) {
        self.sessions += o.sessions;
        self.streams_peak = self.streams_peak.max(o.streams_peak);
        self.server_max_streams = match (self.server_max_streams, o.server_max_streams) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.goaways += o.goaways;
        self.retried += o.retried;
        self.resets += o.resets;
    }
}

/// What ended a connection early, with its outstanding requests: each is
/// counted once, as an error class (if it is one) and as the lost
/// requests' cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    ServerClosed,
    Read,
    Write,
    Parse,
    Timeout,
    Tls(TlsCause),
}

impl Fault {
    /// The name a lost request's record gives it (the `lost_causes`
    /// field it counts in).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fault::ServerClosed => "server_closed",
            Fault::Read => "read",
            Fault::Write => "write",
            Fault::Parse => "parse",
            Fault::Timeout => "timeout",
            Fault::Tls(_) => "tls",
        }
    }
}

impl TlsCauses {
    pub(crate) fn count(&mut self, c: TlsCause) {
        match c {
            TlsCause::Certificate => self.certificate += 1,
            TlsCause::Alert => self.alert += 1,
            TlsCause::Protocol => self.protocol += 1,
            TlsCause::HandshakeTimeout => self.handshake_timeout += 1,
        }
    }
}

impl ConnectCauses {
    pub(crate) fn count(&mut self, errno: i32) {
        match errno {
            libc::ECONNREFUSED => self.refused += 1,
            libc::ETIMEDOUT | libc::ECANCELED => self.timed_out += 1,
            libc::EADDRNOTAVAIL | libc::EADDRINUSE => self.no_local_ports += 1,
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => self.no_descriptors += 1,
            _ => self.other += 1,
        }
    }
}

pub(crate) fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// Like [`new_latency_histogram`], but starts small and grows with the
/// values recorded.
pub(crate) fn new_growing_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 2, 3).expect("static histogram bounds are valid");
    h.auto(true);
    h
}

/// A growing histogram holding both `a`'s and `b`'s samples.
pub(crate) fn sum(a: &Histogram<u64>, b: &Histogram<u64>) -> Histogram<u64> {
    let mut h = new_growing_histogram();
    let _ = h.add(a);
    let _ = h.add(b);
    h
}

/// Records `v` (µs, up to an hour) in a histogram made by
/// [`new_growing_histogram`], growing it as needed: `saturating_record`
/// would clamp at its current top instead (2,047 µs for a new one).
pub(crate) fn record_growing(h: &mut Histogram<u64>, v: u64) {
    let _ = h.record(v.min(MAX_LATENCY_US));
}

/// Two significant digits: a report line per target, not a full report.
pub(crate) fn new_target_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).expect("static histogram bounds are valid")
}

pub(crate) fn new_rate_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 1_000_000_000, 3).expect("static histogram bounds are valid")
}

/// Status codes are counted in a flat array: no map lookup per response.
const STATUS_SLOTS: usize = 600;

pub(crate) struct WorkerStats {
    /// Latency from the intended send time (the actual send in closed-loop
    /// mode, where the two are the same).
    pub latency: Histogram<u64>,
    /// Latency from the actual send.
    pub uncorrected: Histogram<u64>,
    /// This worker's request rate, sampled every 100 ms (wrk's Req/Sec).
    pub rate: Histogram<u64>,
    pub requests: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Index = status code; index 0 collects codes outside 100..600.
    pub status: Box<[u64; STATUS_SLOTS]>,
    pub errors: Errors,
    pub connect_causes: ConnectCauses,
    pub tls: TlsStats,
    /// `io_uring_enter` calls (one per loop, plus any early submit).
    pub enters: u64,
    /// Completions reaped (every kind).
    pub completions: u64,
    /// Receives queued again because the previous one ended: one per
    /// response at `basic`; at `full`, a multishot receive ends only when
    /// the buffer ring runs dry or the connection closes.
    pub recv_arms: u64,
    /// Receives that discarded body bytes unread (`MSG_TRUNC`).
    pub skips: u64,
    /// Requests written (first byte queued), completed or not.
    pub sent: u64,
    /// Of `sent`, those sent in the warm-up and still in flight when the
    /// window started: the window's to complete, not its schedule's.
    pub carried: u64,
    /// Connections that connected (a TLS one before its handshake).
    pub connects: u64,
    /// Each successful connect's time, from its submission to its
    /// completion, µs (grown as values come).
    pub connect_us: Histogram<u64>,
    /// Each response's time to first byte, from its request's send (its
    /// slot, when paced) to the first byte of it framed, µs.
    pub ttfb_us: Histogram<u64>,
    /// Requests that were sent but lost, by cause.
    pub lost: LostCauses,
    /// Requests still in flight when the run ended.
    pub unfinished: u64,
    /// Constant-rate mode: slots the schedule had due before the stop.
    pub scheduled: u64,
    /// Paced runs: how late each send went out after its slot, µs.
    pub send_lag: Histogram<u64>,
    /// Paced runs: of each send lag, the part from when the connection
    /// was free too: urk's own, µs.
    pub own_lag: Histogram<u64>,
    /// Paced runs: the longest window the pacer held slots for, µs.
    pub pacing_window_us: u64,
    /// With kernel timestamps: how long each response waited for urk after
    /// the kernel had received its last byte, µs.
    pub receive_lag: Histogram<u64>,
    /// With kernel timestamps: each response's latency up to the kernel's
    /// receipt of its last byte (the latency less its receive lag), µs.
    pub kernel_latency: Histogram<u64>,
    /// With `Date` headers read: the server's clock against this one's.
    pub server_clock: crate::report::server_clock::ClockBounds,
    /// Per-second intervals, when asked for.
    pub intervals: Vec<Interval>,
    /// Per target of a targets file (the first `MAX_TRACKED`), by index.
    pub targets: Vec<TargetStats>,
    /// HTTP/2 streams, GOAWAYs and resets.
    pub h2: Http2Report,
    /// Paced runs: this worker's first sends and latencies, for the
    /// self-checks; after the merge, every worker's in `sample_sets`.
    pub samples: crate::report::checks::Samples,
    pub sample_sets: Vec<crate::report::checks::Samples>,
    /// An HTTP/1.1 run's parse error was the server's HTTP/2 preface.
    pub http2_only: bool,
}

/// One target's responses: counts by status and latencies. The histogram
/// is made at the target's first response (a long file of targets costs
/// memory only for those that were sent) and keeps two significant
/// digits: a line per target, not a second full report.
#[derive(Debug, Default, Clone)]
pub(crate) struct TargetStats {
    pub requests: u64,
    /// `(status, count)`, in order of first appearance: a target has few.
    pub status: Vec<(u16, u64)>,
    pub latency: Option<Histogram<u64>>,
}

impl TargetStats {
    fn record(&mut self, status: u16, latency_us: u64) {
        self.requests += 1;
        match self.status.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.status.push((status, 1)),
        }
        self.latency
            .get_or_insert_with(new_target_histogram)
            .saturating_record(latency_us.clamp(1, MAX_LATENCY_US));
    }

    fn merge(&mut self, o: &TargetStats) {
        self.requests += o.requests;
        for &(s, n) in &o.status {
            match self.status.iter_mut().find(|(x, _)| *x == s) {
                Some((_, m)) => *m += n,
                None => self.status.push((s, n)),
            }
        }
        match (&mut self.latency, &o.latency) {
            (Some(a), Some(b)) => {
                let _ = a.add(b);
            }
            (a @ None, Some(b)) => *a = Some(b.clone()),
            _ => {}
        }
    }
}

/// A worker's TLS figures.
pub(crate) struct TlsStats {
    pub causes: TlsCauses,
    /// Completed handshakes, and of them those that resumed a session.
    pub handshakes: u64,
    pub resumed: u64,
    /// From the TCP connect's completion to the handshake's, µs.
    pub handshake_us: Histogram<u64>,
    /// What the first completed handshake negotiated.
    pub negotiated: Option<Negotiated>,
}

impl Default for TlsStats {
    fn default() -> Self {
        TlsStats {
            causes: TlsCauses::default(),
            handshakes: 0,
            resumed: 0,
            handshake_us: new_latency_histogram(),
            negotiated: None,
        }
    }
}

impl TlsStats {
    fn merge(&mut self, o: &TlsStats) {
        self.causes += o.causes;
        self.handshakes += o.handshakes;
        self.resumed += o.resumed;
        let _ = self.handshake_us.add(&o.handshake_us);
        if self.negotiated.is_none() {
            self.negotiated.clone_from(&o.negotiated);
        }
    }
}

/// What a worker's warm-up did before its window started.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WarmupCounts {
    pub requests: u64,
    pub errors: u64,
    pub connects: u64,
}

/// One second of a worker's run: its counts and its latency histogram,
/// V2-encoded so that long runs stay small.
pub(crate) struct Interval {
    pub index: u32,
    pub requests: u64,
    pub errors: u64,
    pub non_2xx_3xx: u64,
    pub connects: u64,
    pub encoded: Vec<u8>,
    /// Paced runs: the second's latencies from the actual send (V2);
    /// empty otherwise.
    pub uncorrected: Vec<u8>,
}

impl WorkerStats {
    pub(crate) fn new() -> WorkerStats {
        WorkerStats::with_targets(0)
    }

    /// Counters for a run that reports `targets` targets one by one.
    pub(crate) fn with_targets(targets: usize) -> WorkerStats {
        WorkerStats {
            latency: new_latency_histogram(),
            uncorrected: new_latency_histogram(),
            rate: new_rate_histogram(),
            requests: 0,
            bytes_read: 0,
            bytes_written: 0,
            status: Box::new([0; STATUS_SLOTS]),
            errors: Errors::default(),
            connect_causes: ConnectCauses::default(),
            tls: TlsStats::default(),
            enters: 0,
            completions: 0,
            recv_arms: 0,
            skips: 0,
            sent: 0,
            carried: 0,
            connects: 0,
            connect_us: new_growing_histogram(),
            ttfb_us: new_growing_histogram(),
            scheduled: 0,
            lost: LostCauses::default(),
            unfinished: 0,
            // Grown as lags are recorded: a closed-loop run records none
            // and should not carry 190 KB of empty buckets per copy.
            send_lag: new_growing_histogram(),
            own_lag: new_growing_histogram(),
            receive_lag: new_growing_histogram(),
            kernel_latency: new_growing_histogram(),
            server_clock: Default::default(),
            pacing_window_us: 0,
            intervals: Vec::new(),
            targets: vec![TargetStats::default(); targets],
            h2: Http2Report::default(),
            samples: Default::default(),
            sample_sets: Vec::new(),
            http2_only: false,
        }
    }

    /// Counts a complete response against its target, if that is tracked.
    #[inline]
    pub(crate) fn target_response(&mut self, target: u32, status: u16, latency_us: u64) {
        if let Some(t) = self.targets.get_mut(target as usize) {
            t.record(status, latency_us);
        }
    }

    /// Counts a complete response. `uncorrected_us` is measured from the
    /// actual send and only differs from `latency_us` (from when the request
    /// was due) in constant-rate mode; in a closed loop it is `None` and the
    /// worker copies the one histogram at the end instead of recording every
    /// value twice.
    #[inline]
    pub(crate) fn response(&mut self, status: u16, latency_us: u64, uncorrected_us: Option<u64>) {
        self.requests += 1;
        let slot = if (100..STATUS_SLOTS as u16).contains(&status) {
            status as usize
        } else {
            0
        };
        self.status[slot] += 1;
        self.latency
            .saturating_record(latency_us.clamp(1, MAX_LATENCY_US));
        if let Some(u) = uncorrected_us {
            self.uncorrected
                .saturating_record(u.clamp(1, MAX_LATENCY_US));
        }
    }

    pub(crate) fn merge(&mut self, o: &WorkerStats) {
        let _ = self.latency.add(&o.latency);
        let _ = self.uncorrected.add(&o.uncorrected);
        self.sent += o.sent;
        self.carried += o.carried;
        self.connects += o.connects;
        let _ = self.connect_us.add(&o.connect_us);
        let _ = self.ttfb_us.add(&o.ttfb_us);
        self.scheduled += o.scheduled;
        self.lost += o.lost;
        self.unfinished += o.unfinished;
        let _ = self.send_lag.add(&o.send_lag);
        let _ = self.own_lag.add(&o.own_lag);
        let _ = self.receive_lag.add(&o.receive_lag);
        let _ = self.kernel_latency.add(&o.kernel_latency);
        self.server_clock.merge(&o.server_clock);
        self.pacing_window_us = self.pacing_window_us.max(o.pacing_window_us);
        self.intervals.extend(o.intervals.iter().map(|iv| Interval {
            index: iv.index,
            requests: iv.requests,
            errors: iv.errors,
            non_2xx_3xx: iv.non_2xx_3xx,
            connects: iv.connects,
            encoded: iv.encoded.clone(),
            uncorrected: iv.uncorrected.clone(),
        }));
        let _ = self.rate.add(&o.rate);
        self.requests += o.requests;
        self.bytes_read += o.bytes_read;
        self.bytes_written += o.bytes_written;
        for (a, b) in self.status.iter_mut().zip(o.status.iter()) {
            *a += b;
        }
        self.errors += o.errors;
        self.connect_causes += o.connect_causes;
        self.tls.merge(&o.tls);
        self.h2.merge(&o.h2);
        self.sample_sets.push(o.samples.clone());
        self.sample_sets.extend(o.sample_sets.iter().cloned());
        self.http2_only |= o.http2_only;
        self.enters += o.enters;
        self.completions += o.completions;
        self.recv_arms += o.recv_arms;
        self.skips += o.skips;
        if self.targets.len() < o.targets.len() {
            self.targets.resize(o.targets.len(), TargetStats::default());
        }
        for (a, b) in self.targets.iter_mut().zip(&o.targets) {
            a.merge(b);
        }
    }
}

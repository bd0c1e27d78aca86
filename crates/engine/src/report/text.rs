//! The report as wrk prints it, section for section, so that scripts written
//! around wrk's output read urk's unchanged.

use std::fmt::Write;

use crate::report::units::{
    format_binary, format_metric, format_time_s, format_time_us, pad_units,
};
use crate::{Config, Report, StopCause};

/// The two lines wrk prints before the run starts; a run of a request
/// count says so, with its duration as the bound.
///
/// ```
/// let cfg = urk_engine::Config::new("http://127.0.0.1:8080/").unwrap().threads(1).connections(50);
/// let cfg = cfg.duration(std::time::Duration::from_secs(5));
/// assert_eq!(urk_engine::banner(&cfg),
///     "Running 5s test @ http://127.0.0.1:8080/\n  1 threads and 50 connections\n");
/// assert!(urk_engine::banner(&cfg.requests(3000))
///     .starts_with("Running 3000 requests (within 5s) @ "));
/// ```
pub fn banner(cfg: &Config) -> String {
    let what = match cfg.requests {
        Some(n) => format!("{n} requests (within {})", span(cfg.duration)),
        None => format!("{} test", span(cfg.duration)),
    };
    let warm = match cfg.warmup.is_zero() {
        true => String::new(),
        false => format!(" (after a {} warm-up)", span(cfg.warmup)),
    };
    let own = cfg.sharded().unwrap_or_else(|_| cfg.clone());
    let shard = match cfg.shard {
        Some(s) => format!(
            "  shard {s}: {} of the fleet's {} connections{}\n",
            own.connections,
            cfg.connections,
            own.rate
                .map(|r| format!(
                    ", {} of its {} requests/s",
                    fmt_rate(r),
                    fmt_rate(cfg.rate.unwrap_or(0.0))
                ))
                .unwrap_or_default()
        ),
        None => String::new(),
    };
    format!(
        "Running {what}{warm} @ {}\n  {} threads and {} connections\n{shard}",
        cfg.request.target.url, own.threads, own.connections
    )
}

/// A rate as a person reads it: whole when it is.
fn fmt_rate(r: f64) -> String {
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.2}")
    }
}

/// A length as wrk says it (`10s`, `2m`), or to the microsecond when it
/// is not whole seconds (`300.00ms`, where wrk's form would say `0s`).
fn span(d: std::time::Duration) -> String {
    match d.subsec_nanos() {
        0 => format_time_s(d.as_secs_f64()),
        _ => format_time_us(d.as_secs_f64() * 1e6),
    }
}

fn stats_row(
    out: &mut String,
    name: &str,
    mean: f64,
    stdev: f64,
    max: f64,
    within: f64,
    fmt: fn(f64) -> String,
) {
    let _ = write!(out, "    {name:<10}");
    out.push_str(&pad_units(&fmt(mean), 8));
    out.push_str(&pad_units(&fmt(stdev), 10));
    out.push_str(&pad_units(&fmt(max), 9));
    let _ = writeln!(out, "{within:8.2}%");
}

/// What to add to the report text.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// The latency distribution (`--latency`); in constant-rate mode also
    /// wrk2's detailed percentile spectrum.
    pub latency: bool,
    /// The uncorrected latency distribution too (`-U`, constant-rate mode).
    pub uncorrected: bool,
}

fn distribution(out: &mut String, l: &crate::LatencySummary) {
    let ci = &l.ci;
    for (p, v, ci) in [
        ("50", l.p50, ci.p50),
        ("75", l.p75, ci.p75),
        ("90", l.p90, ci.p90),
        ("99", l.p99, ci.p99),
        ("99.9", l.p99_9, ci.p99_9),
        ("99.99", l.p99_99, ci.p99_99),
    ] {
        // How sure: said where it matters (an interval wider than a tenth
        // of the value), or where the samples cannot bound it at all.
        let sure = match ci {
            None if v > 0 => "  (too few samples to bound)".to_string(),
            Some([lo, hi]) if (hi - lo) as f64 > 0.1 * v as f64 => format!(
                "  (95% CI {}-{})",
                format_time_us(lo as f64),
                format_time_us(hi as f64)
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{p:>7}%{}{sure}",
            pad_units(&format_time_us(v as f64), 10)
        );
    }
}

/// wrk2's "Detailed Percentile spectrum", values in milliseconds, which
/// HdrHistogram's plotters read.
fn spectrum(out: &mut String, h: &hdrhistogram::Histogram<u64>) {
    out.push_str("  Detailed Percentile spectrum:\n");
    let _ = writeln!(
        out,
        "{:>12} {:>12} {:>12} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let total = h.len();
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let inv = if q < 1.0 {
            format!("{:14.2}", 1.0 / (1.0 - q))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:12.3} {:12.6} {:12} {inv}",
            v.value_iterated_to() as f64 / 1000.0,
            q,
            total.min(count_to(h, v.value_iterated_to())),
        );
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / 1000.0,
        total
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two()
    );
    out.push_str("----------------------------------------------------------\n");
}

fn count_to(h: &hdrhistogram::Histogram<u64>, v: u64) -> u64 {
    h.count_between(0, v)
}

/// Where the time went: connects, TLS handshakes and first bytes, a line
/// each (those that happened).
fn phases(out: &mut String, r: &Report) {
    let t = |v: u64| format_time_us(v as f64);
    let mut line = |name: &str, l: &crate::LatencySummary, n: u64, what: &str| {
        if n > 0 {
            let _ = writeln!(
                out,
                "  {name:<11} p50 {}, p99 {}, max {} ({n} {what})",
                t(l.p50),
                t(l.p99),
                t(l.max)
            );
        }
    };
    let p = &r.phases;
    line(
        "Connect:",
        &p.connect_us,
        p.connect_histogram.len(),
        "connects",
    );
    if let Some(tls) = &r.tls {
        line(
            "TLS:",
            &tls.handshake_latency_us,
            tls.handshakes,
            "handshakes",
        );
    }
    line(
        "First byte:",
        &p.ttfb_us,
        p.ttfb_histogram.len(),
        "responses",
    );
    if let Some(k) = r.kernel_timestamps.as_ref().filter(|k| k.responses > 0) {
        let _ = writeln!(
            out,
            "  Receive lag (kernel to urk): p50 {}, p99 {}, max {}; latency at the kernel: p50 {}, p99 {} ({} responses)",
            t(k.receive_lag_us.p50),
            t(k.receive_lag_us.p99),
            t(k.receive_lag_us.max),
            t(k.latency_us.p50),
            t(k.latency_us.p99),
            k.responses
        );
    }
}

/// Most targets listed in the text report; the JSON has them all.
const TEXT_TARGETS: usize = 20;

/// One line per target: method, path, responses, p50, p99, statuses.
fn targets(out: &mut String, targets: &[crate::TargetReport]) {
    let path = |url: &str| -> String {
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        url[after_scheme..]
            .find('/')
            .map_or("/".to_string(), |i| url[after_scheme + i..].to_string())
    };
    let width = targets
        .iter()
        .take(TEXT_TARGETS)
        .map(|t| t.method.len() + 1 + path(&t.url).len())
        .max()
        .unwrap_or(0)
        .clamp(10, 48);
    let _ = writeln!(
        out,
        "  Targets{:>w$}{:>10}{:>10}  Status",
        "Requests",
        "50%",
        "99%",
        w = width - 7 + 12
    );
    for t in targets.iter().take(TEXT_TARGETS) {
        let mut name = format!("{} {}", t.method, path(&t.url));
        if name.len() > width {
            name.truncate(width - 1);
            name.push('~');
        }
        let status: Vec<String> = t.status.iter().map(|(c, n)| format!("{c}:{n}")).collect();
        let _ = write!(out, "    {name:<width$}{:>10}", t.requests);
        out.push_str(&pad_units(&format_time_us(t.latency_us.p50 as f64), 10));
        out.push_str(&pad_units(&format_time_us(t.latency_us.p99 as f64), 10));
        let _ = writeln!(out, "  {}", status.join(" "));
    }
    if targets.len() > TEXT_TARGETS {
        let _ = writeln!(
            out,
            "    ... and {} more targets (--json lists them all)",
            targets.len() - TEXT_TARGETS
        );
    }
}

impl crate::SearchReport {
    /// The answer first, then a table of steps.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let goals = self.objectives.join(", ");
        match self.rate {
            Some(r) => {
                let _ = writeln!(out, "Max rate under {goals}: {} req/s", thousands(r));
            }
            None => {
                let _ = writeln!(out, "No rate met {goals}");
            }
        }
        if self.limited_by_generator {
            out.push_str("  urk could not go higher: the step above was bound by urk's own CPU, not by the server (add threads, -t)\n");
        }
        let _ = writeln!(
            out,
            "  closed-loop probe: {} req/s; steps of {}, the first {} discarded as warm-up",
            thousands(self.probe_rps),
            format_time_s(self.step_s),
            format_time_s(self.warmup_s)
        );
        let _ = writeln!(
            out,
            "  {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}  result",
            "rate", "achieved", "p50", "p99", "p99.9", "errors"
        );
        for s in &self.steps {
            let l = &s.latency_us;
            let _ = writeln!(
                out,
                "  {:>10} {:>10}{}{}{} {:>8}  {}",
                thousands(s.rate),
                thousands(s.achieved),
                pad_units(&format_time_us(l.p50 as f64), 11),
                pad_units(&format_time_us(l.p99 as f64), 11),
                pad_units(&format_time_us(l.p99_9 as f64), 11),
                s.errors + s.non_2xx_3xx,
                if s.pass {
                    "pass".to_string()
                } else {
                    format!("fail: {}", s.failed.join(", "))
                }
            );
        }
        out
    }
}

/// A paced run's failed self-checks, a line each with what it means.
fn checks(out: &mut String, r: &crate::RateReport) {
    let Some(c) = &r.checks else { return };
    if !c.achieved_within_2pct && r.requested > 0.0 {
        let _ = writeln!(
            out,
            "  Check: achieved {:.1}% of the offered rate: the schedule was not kept, and the latency (from each slot) includes that lateness",
            c.achieved_ratio * 100.0
        );
    }
    if let Some(g) = c.exponential_gaps.filter(|g| !g.pass) {
        let _ = writeln!(
            out,
            "  Check: the sends' gaps were not exponential (Anderson-Darling {:.2} > 1.32 over {} gaps): they went out in batches (the pacer's window, or a busy urk), so the server saw burstier or smoother load than Poisson",
            g.a2, g.n
        );
    }
    if let Some(k) = c.lag1_rank_correlation.filter(|k| !k.pass) {
        let _ = writeln!(
            out,
            "  Check: latencies are correlated in send order (lag-1 rank correlation {:.2}): a stall or a queue spans requests, so the percentiles' intervals, which assume independent samples, are too narrow",
            k.rho
        );
    }
}

/// A rate with thousands separators: 9450 -> "9,450".
fn thousands(v: f64) -> String {
    crate::report::units::format_count(v.round() as u64)
}

impl Report {
    /// Everything wrk prints after the run, plus urk's additions.
    pub fn to_text(&self, opts: TextOptions) -> String {
        let latency_distribution = opts.latency;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "  Thread Stats{:>6}{:>11}{:>8}{:>12}",
            "Avg", "Stdev", "Max", "+/- Stdev"
        );
        let l = &self.latency_us;
        stats_row(
            &mut out,
            "Latency",
            l.mean,
            l.stdev,
            l.max as f64,
            l.within_stdev_pct,
            format_time_us,
        );
        let r = &self.thread_requests_per_sec;
        stats_row(
            &mut out,
            "Req/Sec",
            r.mean,
            r.stdev,
            r.max as f64,
            r.within_stdev_pct,
            format_metric,
        );
        if latency_distribution {
            out.push_str("  Latency Distribution\n");
            distribution(&mut out, l);
            if self.rate.is_some() {
                spectrum(&mut out, &self.latency_histogram);
            }
        }
        if latency_distribution {
            phases(&mut out, self);
        }
        if latency_distribution && !self.targets.is_empty() {
            targets(&mut out, &self.targets);
        }
        if opts.uncorrected && self.rate.is_some() {
            out.push_str(
                "  Uncorrected Latency (measured from the actual send, hiding queueing)\n",
            );
            distribution(&mut out, &self.latency_uncorrected_us);
        }
        // The headline is the window's, as Requests/sec is; what the grace
        // after it brought follows on a line of its own.
        let _ = writeln!(
            out,
            "  {} requests in {}, {}B read",
            self.requests.saturating_sub(self.requests_after_stop),
            format_time_us(self.duration_s * 1e6),
            format_binary(self.bytes_read.saturating_sub(self.bytes_read_after_stop) as f64)
        );
        if let Some(w) = &self.warmup {
            if w.finished {
                let _ = writeln!(
                    out,
                    "  Warm-up before it: {} requests, {} errors in {} (counted in nothing above or below)",
                    w.requests,
                    w.errors,
                    format_time_us(w.seconds * 1e6)
                );
            } else {
                out.push_str("  Stopped during the warm-up: these figures are the warm-up's\n");
            }
        }
        if self.requests_after_stop > 0 || self.requests_unfinished > 0 {
            let _ = writeln!(
                out,
                "  After the stop: {} more completed in {} of waiting for those in flight, {} unfinished (counted, not in Requests/sec)",
                self.requests_after_stop,
                format_time_us(self.grace_s * 1e6),
                self.requests_unfinished
            );
        }
        if let Some(asked) = self.requests_asked {
            if self.stopped_by == StopCause::Duration {
                let _ = writeln!(
                    out,
                    "  Not reached: {} of the {asked} requests asked for completed before the {} limit",
                    self.requests,
                    format_time_us(self.duration_s * 1e6)
                );
            }
        }
        let e = &self.errors;
        if e.connect + e.read + e.write + e.timeout > 0 {
            let _ = writeln!(
                out,
                "  Socket errors: connect {}, read {}, write {}, timeout {}",
                e.connect, e.read, e.write, e.timeout
            );
        }
        // Each connect-failure cause that occurred, with what to do about it.
        let causes = &self.connect_errors;
        for (n, what, hint) in [
            (
                causes.refused,
                "Connects refused",
                " (ECONNREFUSED); is the server listening at this address and port?",
            ),
            (
                causes.timed_out,
                "Connects timed out",
                "; the server's listen backlog may be full (raise it, or open fewer connections at once)",
            ),
            (
                causes.no_local_ports,
                "Local ports exhausted",
                " connects failed (EADDRNOTAVAIL); use fewer connections, more target addresses or a wider net.ipv4.ip_local_port_range",
            ),
            (
                causes.no_descriptors,
                "Out of descriptors",
                " sockets could not be created (EMFILE/ENFILE); raise ulimit -n",
            ),
        ] {
            if n > 0 {
                let _ = writeln!(out, "  {what}: {n}{hint}");
            }
        }
        if e.parse > 0 {
            let hint = match self.http2_only {
                true => " (the server speaks HTTP/2 only: try --http2)",
                false => "",
            };
            let _ = writeln!(out, "  Parse errors: {}{hint}", e.parse);
        }
        if let Some(t) = &self.tls {
            if t.handshakes > 0 {
                let _ = writeln!(
                    out,
                    "  TLS: {}, {}, {}; {} handshakes, {} resumed, p99 {}",
                    t.version,
                    t.cipher,
                    t.group,
                    t.handshakes,
                    t.resumed,
                    format_time_us(t.handshake_latency_us.p99 as f64)
                );
            }
            let c = &t.errors;
            if e.tls > 0 {
                let _ = writeln!(
                    out,
                    "  TLS errors: {} (certificate {}, alert {}, protocol {}, handshake timeout {})",
                    e.tls, c.certificate, c.alert, c.protocol, c.handshake_timeout
                );
            }
        }
        if let Some(h) = &self.http2 {
            let limit = match h.server_max_streams {
                Some(n) => format!("server allows {n}"),
                None => "server sets no limit".into(),
            };
            let _ = writeln!(
                out,
                "  HTTP/2: up to {} streams per connection ({limit}), {} GOAWAYs, {} retried, {} reset",
                h.streams_peak,
                h.goaways,
                h.retried,
                h.resets.total()
            );
        }
        if self.requests_lost > 0 {
            let l = &self.lost_causes;
            let causes: Vec<String> = [
                (
                    l.server_closed,
                    "outstanding when the server closed the connection after a response",
                ),
                (l.read, "on read errors"),
                (l.write, "on write errors"),
                (l.parse, "on parse errors"),
                (l.timeout, "timed out"),
                (l.tls, "on TLS errors"),
                (l.reset, "reset by the server (HTTP/2)"),
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, why)| format!("{n} {why}"))
            .collect();
            let _ = writeln!(
                out,
                "  Lost requests (sent, never answered): {}: {}",
                self.requests_lost,
                causes.join(", ")
            );
        }
        if self.non_2xx_3xx > 0 {
            let _ = writeln!(out, "  Non-2xx or 3xx responses: {}", self.non_2xx_3xx);
        }
        if self.connections_opened > self.connections as u64 {
            // Connections were replaced: by requests_per_conn, a server's
            // close or faults. wrk's report has no line for it.
            let _ = writeln!(
                out,
                "  Connections opened: {} ({:.2}/s)",
                self.connections_opened, self.connects_per_sec
            );
        }
        if let Some(r) = &self.rate {
            match &r.plan {
                None => {
                    let _ = writeln!(
                        out,
                        "  Requested rate: {:.2} req/s{}, achieved {:.2} req/s",
                        r.requested,
                        match r.arrivals {
                            crate::Arrivals::Poisson => " (Poisson arrivals)",
                            crate::Arrivals::Uniform => "",
                        },
                        r.achieved
                    );
                }
                Some(plan) => {
                    let stages: Vec<String> = plan
                        .stages
                        .iter()
                        .map(|s| {
                            format!(
                                "{}..{} over {}",
                                s.from,
                                s.to,
                                format_time_s(s.duration.as_secs_f64())
                            )
                        })
                        .collect();
                    let _ = writeln!(
                        out,
                        "  Offered rate: {} req/s (mean {:.2}), achieved {:.2} req/s",
                        stages.join(", "),
                        r.requested,
                        r.achieved
                    );
                }
            }
            checks(&mut out, r);
            if latency_distribution && r.sent > 0 {
                // What of every corrected latency is the send's own lateness.
                let l = &r.send_lag_us;
                let held = match r.window_us {
                    0 => "every slot on time".to_string(),
                    w => format!(
                        "slots held up to {} to share wake-ups",
                        format_time_us(w as f64)
                    ),
                };
                let _ = writeln!(
                    out,
                    "  Send lag (after the slot): p50 {}, p99 {}, max {} ({held}); urk's own share (once the connection was free): p99 {}",
                    format_time_us(l.p50 as f64),
                    format_time_us(l.p99 as f64),
                    format_time_us(l.max as f64),
                    format_time_us(r.own_lag_us.p99 as f64),
                );
            }
            if !r.kept {
                let _ = writeln!(
                    out,
                    "  Warning: urk fell behind the schedule: {} of {} scheduled requests were never sent ({:.1}%), sends up to {} late; add connections (-c) or the server is too slow for this rate",
                    r.behind,
                    r.scheduled,
                    100.0 * r.behind as f64 / r.scheduled.max(1) as f64,
                    format_time_us(r.max_lag_us as f64)
                );
            }
        }
        let _ = writeln!(out, "Requests/sec: {:9.2}", self.requests_per_sec);
        let _ = writeln!(
            out,
            "Transfer/sec: {:>10}B",
            format_binary(self.bytes_read_per_sec)
        );
        if let Some(r) = self.rate.as_ref().filter(|r| r.bounded_by_urk) {
            // The lag, not only the CPU: a thread starved by other load on
            // the machine sends late without being busy.
            let why = if self.generator_busy_pct >= 90.0 {
                "its busiest thread was busy"
            } else {
                "its thread was not busy: other load on the machine starved it"
            };
            let _ = writeln!(
                out,
                "Warning: urk's own send lag (p99 {}) is {:.0}% of the p99 latency: the figures are bounded by urk by about that much ({why}).",
                format_time_us(r.own_lag_us.p99 as f64),
                r.lag_share * 100.0,
            );
        }
        if let Some(l) = &self.log {
            let sampled = match l.sample {
                s if s >= 1.0 => String::new(),
                s => format!(", {:.3}% sampled", s * 100.0),
            };
            let dropped = match l.dropped {
                0 => String::new(),
                d => format!("; {d} dropped: the writer could not keep up"),
            };
            let _ = writeln!(
                out,
                "Request log: {} records in {}{sampled}{dropped}",
                l.records, l.path
            );
            if let Some(e) = &l.error {
                let _ = writeln!(
                    out,
                    "Warning: the request log stopped early ({e}); the figures above count every request"
                );
            }
        }
        match &self.kernel_timestamps {
            Some(k) if k.responses == 0 && self.requests > 0 => {
                out.push_str("Kernel timestamps: the kernel gave none on these sockets (a Unix socket has none); no receive lag.\n");
            }
            Some(k) if k.lag_share(self.latency_us.p99) > crate::report::LAG_VERDICT => {
                let _ = writeln!(
                    out,
                    "Warning: responses waited for urk after the kernel had them (receive lag p99 {}), {:.0}% of the p99 latency: the figures are bounded by urk by about that much; the latency at the kernel has p99 {}.",
                    format_time_us(k.receive_lag_us.p99 as f64),
                    k.lag_share(self.latency_us.p99) * 100.0,
                    format_time_us(k.latency_us.p99 as f64),
                );
            }
            _ => {}
        }
        if self.generator_bound {
            let _ = writeln!(
                out,
                "Warning: urk's busiest thread was busy {:.0}% of the run; the figures may be bounded by urk, not the server (try more -t).",
                self.generator_busy_pct.min(100.0),
            );
        }
        if self.requests == 0 {
            out.push_str("No request completed.\n");
        } else if self.rate.is_none() {
            out.push_str("Note: closed-loop latency hides queueing (coordinated omission); use -R for a constant rate.\n");
        }
        if self.interrupted {
            out.push_str(
                "Interrupted: the run was stopped early; figures cover the time it ran.\n",
            );
        }
        out
    }
}

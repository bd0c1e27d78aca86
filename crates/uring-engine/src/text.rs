//! The report as wrk prints it, section for section, so that scripts written
//! around wrk's output read urk's unchanged.

use std::fmt::Write;

use crate::units::{format_binary, format_metric, format_time_s, format_time_us, pad_units};
use crate::{Config, Report};

/// The two lines wrk prints before the run starts.
///
/// ```
/// let cfg = uring_engine::Config::new("http://127.0.0.1:8080/").unwrap().threads(1).connections(50);
/// let cfg = cfg.duration(std::time::Duration::from_secs(5));
/// assert_eq!(uring_engine::banner(&cfg),
///     "Running 5s test @ http://127.0.0.1:8080/\n  1 threads and 50 connections\n");
/// ```
pub fn banner(cfg: &Config) -> String {
    format!(
        "Running {} test @ {}\n  {} threads and {} connections\n",
        format_time_s(cfg.duration.as_secs_f64()),
        cfg.request.target.url,
        cfg.threads,
        cfg.connections
    )
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

impl Report {
    /// Everything wrk prints after the run. `latency_distribution` adds the
    /// percentile table (`--latency`).
    pub fn to_text(&self, latency_distribution: bool) -> String {
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
            for (p, v) in [
                ("50", l.p50),
                ("75", l.p75),
                ("90", l.p90),
                ("99", l.p99),
                ("99.9", l.p99_9),
                ("99.99", l.p99_99),
            ] {
                let _ = writeln!(out, "{p:>7}%{}", pad_units(&format_time_us(v as f64), 10));
            }
        }
        let _ = writeln!(
            out,
            "  {} requests in {}, {}B read",
            self.requests,
            format_time_us(self.duration_s * 1e6),
            format_binary(self.bytes_read as f64)
        );
        let e = &self.errors;
        if e.connect + e.read + e.write + e.timeout > 0 {
            let _ = writeln!(
                out,
                "  Socket errors: connect {}, read {}, write {}, timeout {}",
                e.connect, e.read, e.write, e.timeout
            );
        }
        if e.parse > 0 {
            let _ = writeln!(out, "  Parse errors: {}", e.parse);
        }
        if self.non_2xx_3xx > 0 {
            let _ = writeln!(out, "  Non-2xx or 3xx responses: {}", self.non_2xx_3xx);
        }
        let _ = writeln!(out, "Requests/sec: {:9.2}", self.requests_per_sec);
        let _ = writeln!(
            out,
            "Transfer/sec: {:>10}B",
            format_binary(self.bytes_read_per_sec)
        );
        if self.generator_bound {
            let _ = writeln!(
                out,
                "Warning: urk itself used {:.0}% of its {} thread(s); the figures may be bounded by urk, not the server (try more -t).",
                100.0 * self.generator_cpu_s / (self.threads as f64 * self.duration_s.max(1e-9)),
                self.threads
            );
        }
        if self.interrupted {
            out.push_str(
                "Interrupted: the run was stopped early; figures cover the time it ran.\n",
            );
        }
        out
    }
}

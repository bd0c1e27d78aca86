//! `--fail-if` thresholds, as k6 has them: a run that breaks one fails a CI
//! job. Parsed before the run, so a typo is caught before any load.

use std::fmt;

use crate::report::units::{format_time_us, parse_duration};
use crate::Report;

/// Which time a latency threshold looks at: the whole response, or one
/// of its phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timing {
    /// To the response's last byte (`p99`).
    Total,
    /// To its first byte (`ttfb.p99`).
    FirstByte,
    /// A TCP connect (`connect.p99`).
    Connect,
}

/// What a threshold looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    /// A percentile, 0..=100.
    Percentile(Timing, f64),
    MeanLatency(Timing),
    MaxLatency(Timing),
    Errors,
    Non2xx,
    /// Errors as a share of requests and errors, in percent.
    ErrorsPct,
    /// Non-2xx/3xx responses as a share of responses, in percent.
    Non2xxPct,
    Rps,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
}

/// A condition on a run's figures, e.g. `p99>20ms`, `errors>0`,
/// `errors<0.1%`, `rps<10000`, `non2xx=0`, `mean>=5ms`, `max>1s`, or a
/// phase's time: `ttfb.p99>5ms` (to the first byte), `connect.p99>1ms`: with
/// `--fail-if` one that holds fails the run; with `--find-max` every one
/// must hold for a rate to pass.
///
/// ```
/// let t: urk_engine::Threshold = "p99.9>20ms".parse().unwrap();
/// assert_eq!(t.to_string(), "p99.9>20ms");
/// assert!("p99>>20".parse::<urk_engine::Threshold>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    text: String,
    metric: Metric,
    cmp: Cmp,
    /// µs for latencies, a count or rate otherwise.
    value: f64,
}

impl std::str::FromStr for Threshold {
    type Err = String;

    fn from_str(s: &str) -> Result<Threshold, String> {
        let bad = |why: &str| {
            format!("invalid --fail-if '{s}': {why} (e.g. p99>20ms, ttfb.p99>5ms, errors>0, rps<10000, non2xx>0)")
        };
        let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let at = t.find(['<', '>', '=']).ok_or_else(|| bad("no <, > or ="))?;
        let (name, rest) = t.split_at(at);
        let (cmp, value) = match rest.as_bytes() {
            [b'>', b'=', ..] => (Cmp::Ge, &rest[2..]),
            [b'<', b'=', ..] => (Cmp::Le, &rest[2..]),
            [b'>', ..] => (Cmp::Gt, &rest[1..]),
            [b'=', b'=', ..] => (Cmp::Eq, &rest[2..]),
            [b'=', ..] => (Cmp::Eq, &rest[1..]),
            _ => (Cmp::Lt, &rest[1..]),
        };
        let pct = value.ends_with('%');
        let value = value.trim_end_matches('%');
        let (timing, name) = match name.split_once('.') {
            Some(("ttfb", rest)) => (Timing::FirstByte, rest),
            Some(("connect", rest)) => (Timing::Connect, rest),
            Some(("latency", rest)) => (Timing::Total, rest),
            _ => (Timing::Total, name),
        };
        let metric = match name {
            "mean" | "avg" => Metric::MeanLatency(timing),
            "max" => Metric::MaxLatency(timing),
            _ if timing != Timing::Total && !name.starts_with('p') => {
                return Err(bad(
                    "a phase takes a percentile, mean or max (ttfb.p99<5ms)",
                ))
            }
            "errors" if pct => Metric::ErrorsPct,
            "non2xx" if pct => Metric::Non2xxPct,
            "errors" => Metric::Errors,
            "non2xx" => Metric::Non2xx,
            "rps" => Metric::Rps,
            p if p.starts_with('p') => {
                let q: f64 = p[1..].parse().map_err(|_| bad("unknown percentile"))?;
                if !(0.0..=100.0).contains(&q) {
                    return Err(bad("percentile must be between 0 and 100"));
                }
                Metric::Percentile(timing, q)
            }
            _ => return Err(bad("unknown metric")),
        };
        let value = match metric {
            Metric::Percentile(..) | Metric::MeanLatency(_) | Metric::MaxLatency(_) => {
                // A bare number is milliseconds, as in k6.
                let d = if value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    && !value.is_empty()
                {
                    parse_duration(&format!("{value}ms"))
                } else {
                    parse_duration(value)
                };
                d.ok_or_else(|| bad("expected a time such as 20ms"))?
                    .as_secs_f64()
                    * 1e6
            }
            _ => value.parse::<f64>().map_err(|_| bad("expected a number"))?,
        };
        if !value.is_finite() {
            return Err(bad("expected a finite number"));
        }
        Ok(Threshold {
            text: t,
            metric,
            cmp,
            value,
        })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The figures a threshold can look at: a whole report's, or one search
/// step's.
pub(crate) struct Figures<'a> {
    pub latency: &'a hdrhistogram::Histogram<u64>,
    pub ttfb: &'a hdrhistogram::Histogram<u64>,
    pub connect: &'a hdrhistogram::Histogram<u64>,
    pub errors: u64,
    pub non_2xx_3xx: u64,
    pub requests: u64,
    pub rps: f64,
}

impl<'a> Figures<'a> {
    fn of(r: &'a Report) -> Figures<'a> {
        Figures {
            latency: &r.latency_histogram,
            ttfb: &r.phases.ttfb_histogram,
            connect: &r.phases.connect_histogram,
            errors: r.errors.total(),
            non_2xx_3xx: r.non_2xx_3xx,
            requests: r.requests,
            rps: r.requests_per_sec,
        }
    }
}

impl Threshold {
    fn measure(&self, f: &Figures<'_>) -> f64 {
        let h = |t: Timing| match t {
            Timing::Total => f.latency,
            Timing::FirstByte => f.ttfb,
            Timing::Connect => f.connect,
        };
        match self.metric {
            Metric::Percentile(t, q) => h(t).value_at_quantile(q / 100.0) as f64,
            Metric::MeanLatency(t) => h(t).mean(),
            Metric::MaxLatency(t) => h(t).max() as f64,
            Metric::Errors => f.errors as f64,
            Metric::Non2xx => f.non_2xx_3xx as f64,
            Metric::ErrorsPct => {
                let e = f.errors as f64;
                100.0 * e / (e + f.requests as f64).max(1.0)
            }
            Metric::Non2xxPct => 100.0 * f.non_2xx_3xx as f64 / (f.requests as f64).max(1.0),
            Metric::Rps => f.rps,
        }
    }

    /// Whether the condition holds for the report (for an objective: it
    /// is met).
    pub fn holds(&self, r: &Report) -> bool {
        self.holds_for(&Figures::of(r))
    }

    pub(crate) fn holds_for(&self, f: &Figures<'_>) -> bool {
        let v = self.measure(f);
        match self.cmp {
            Cmp::Gt => v > self.value,
            Cmp::Ge => v >= self.value,
            Cmp::Lt => v < self.value,
            Cmp::Le => v <= self.value,
            Cmp::Eq => v == self.value,
        }
    }

    /// The figure the condition looks at, as a user reads it.
    pub fn shown(&self, r: &Report) -> String {
        self.shown_for(&Figures::of(r))
    }

    pub(crate) fn shown_for(&self, f: &Figures<'_>) -> String {
        let v = self.measure(f);
        match self.metric {
            Metric::Percentile(..) | Metric::MeanLatency(_) | Metric::MaxLatency(_) => {
                format_time_us(v)
            }
            Metric::Rps => format!("{v:.2}"),
            Metric::ErrorsPct | Metric::Non2xxPct => format!("{v:.3}%"),
            _ => format!("{v:.0}"),
        }
    }

    /// The percentile of a per-response time it looks at (latency or
    /// time to first byte), if any (0..=100): what sets how many
    /// responses a judgement needs.
    pub fn percentile(&self) -> Option<f64> {
        match self.metric {
            Metric::Percentile(Timing::Total | Timing::FirstByte, q) => Some(q),
            _ => None,
        }
    }

    /// `Some(message)` when the report breaks this threshold.
    pub fn broken(&self, r: &Report) -> Option<String> {
        self.holds(r)
            .then(|| format!("threshold broken: {} (was {})", self.text, self.shown(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        for ok in [
            "p99>20ms",
            "p50 >= 1s",
            "p99.99>500us",
            "mean>5",
            "max<2s",
            "errors>0",
            "rps<10000",
            "non2xx>=1",
            "non2xx=0",
            "errors<0.1%",
            "ttfb.p99<5ms",
            "connect.p99 < 1ms",
            "ttfb.mean>2",
            "connect.max>1s",
            "latency.p99<1s",
        ] {
            assert!(ok.parse::<Threshold>().is_ok(), "{ok}");
        }
        for bad in [
            "p99",
            "p101>1ms",
            "latency>1ms",
            "p99>fast",
            "rps<many",
            "errors>",
            "ttfb.errors>0",
            "connect.rps<5",
            "dns.p99<1ms",
            "ttfb.p99>soon",
        ] {
            assert!(bad.parse::<Threshold>().is_err(), "{bad}");
        }
        let t: Threshold = "p99>20".parse().unwrap();
        assert_eq!(t.value, 20_000.0);
    }
}

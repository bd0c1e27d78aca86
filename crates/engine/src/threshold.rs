//! `--fail-if` thresholds, as k6 has them: a run that breaks one fails a CI
//! job. Parsed before the run, so a typo is caught before any load.

use std::fmt;

use crate::units::{format_time_us, parse_duration};
use crate::Report;

/// What a threshold looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    /// A latency percentile, 0..=100.
    Percentile(f64),
    MeanLatency,
    MaxLatency,
    Errors,
    Non2xx,
    Rps,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
}

/// A condition that fails the run, e.g. `p99>20ms`, `errors>0`,
/// `rps<10000`, `non2xx>0`, `mean>=5ms`, `max>1s`.
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
            format!("invalid --fail-if '{s}': {why} (e.g. p99>20ms, errors>0, rps<10000, non2xx>0)")
        };
        let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let at = t.find(['<', '>']).ok_or_else(|| bad("no < or >"))?;
        let (name, rest) = t.split_at(at);
        let (cmp, value) = match rest.as_bytes() {
            [b'>', b'=', ..] => (Cmp::Ge, &rest[2..]),
            [b'<', b'=', ..] => (Cmp::Le, &rest[2..]),
            [b'>', ..] => (Cmp::Gt, &rest[1..]),
            _ => (Cmp::Lt, &rest[1..]),
        };
        let metric = match name {
            "mean" | "avg" => Metric::MeanLatency,
            "max" => Metric::MaxLatency,
            "errors" => Metric::Errors,
            "non2xx" => Metric::Non2xx,
            "rps" => Metric::Rps,
            p if p.starts_with('p') => {
                let q: f64 = p[1..].parse().map_err(|_| bad("unknown percentile"))?;
                if !(0.0..=100.0).contains(&q) {
                    return Err(bad("percentile must be between 0 and 100"));
                }
                Metric::Percentile(q)
            }
            _ => return Err(bad("unknown metric")),
        };
        let value = match metric {
            Metric::Percentile(_) | Metric::MeanLatency | Metric::MaxLatency => {
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

impl Threshold {
    fn measure(&self, r: &Report) -> f64 {
        match self.metric {
            Metric::Percentile(q) => r.latency_histogram.value_at_quantile(q / 100.0) as f64,
            Metric::MeanLatency => r.latency_us.mean,
            Metric::MaxLatency => r.latency_us.max as f64,
            Metric::Errors => r.errors.total() as f64,
            Metric::Non2xx => r.non_2xx_3xx as f64,
            Metric::Rps => r.requests_per_sec,
        }
    }

    /// `Some(message)` when the report breaks this threshold.
    pub fn broken(&self, r: &Report) -> Option<String> {
        let v = self.measure(r);
        let hit = match self.cmp {
            Cmp::Gt => v > self.value,
            Cmp::Ge => v >= self.value,
            Cmp::Lt => v < self.value,
            Cmp::Le => v <= self.value,
        };
        let shown = match self.metric {
            Metric::Percentile(_) | Metric::MeanLatency | Metric::MaxLatency => format_time_us(v),
            Metric::Rps => format!("{v:.2}"),
            _ => format!("{v:.0}"),
        };
        hit.then(|| format!("threshold broken: {} (was {shown})", self.text))
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
        ] {
            assert!(bad.parse::<Threshold>().is_err(), "{bad}");
        }
        let t: Threshold = "p99>20".parse().unwrap();
        assert_eq!(t.value, 20_000.0);
    }
}

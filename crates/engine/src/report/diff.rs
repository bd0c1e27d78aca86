//! Two runs side by side: how a baseline (A) and a candidate (B) differ
//! in rate and at each percentile, the check a CI job runs to catch a
//! regression. Percentiles come from each report's HdrHistogram, so they
//! are exact; each carries its 95% interval, and a change whose
//! intervals overlap is within what the samples can tell apart.

use serde::Serialize;

use crate::report::{LatencySummary, Report};

/// What a row measures, for printing and for which way is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffUnit {
    /// Microseconds of latency: higher is worse.
    Micros,
    /// Completed requests per second: lower is worse.
    PerSec,
    /// Errors: higher is worse.
    Count,
}

/// One figure of both runs.
#[derive(Debug, Clone, Serialize)]
pub struct DiffRow {
    pub name: &'static str,
    pub unit: DiffUnit,
    pub a: f64,
    pub b: f64,
    /// B over A less one (0.05: B is 5% higher); `None` when A is 0.
    pub change: Option<f64>,
    /// For percentiles: whether the two 95% intervals are apart, so that
    /// the samples tell the runs apart; `None` where either has none.
    pub beyond_noise: Option<bool>,
}

impl DiffRow {
    /// How much worse B is than A, as a share of A (negative: better).
    pub fn worse_by(&self) -> f64 {
        let c = self.change.unwrap_or(0.0);
        match self.unit {
            DiffUnit::PerSec => -c,
            DiffUnit::Micros | DiffUnit::Count => c,
        }
    }
}

/// How run B differs from run A.
///
/// ```
/// # fn demo(a: &urk_engine::Report, b: &urk_engine::Report) {
/// let d = urk_engine::Diff::of(a, b);
/// for row in d.slower(0.05) {
///     println!("{} is {:.1}% worse", row.name, row.worse_by() * 100.0);
/// }
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub rows: Vec<DiffRow>,
    /// Both runs kept a constant rate: their request rates were asked
    /// for, not measured, and say nothing of speed.
    pub paced: bool,
}

/// The percentiles compared, and the ones that judge "slower": the tail
/// beyond p99 is too thin in most runs to gate on.
const PERCENTILES: [(&str, bool); 6] = [
    ("p50", true),
    ("p75", false),
    ("p90", true),
    ("p99", true),
    ("p99.9", false),
    ("max", false),
];

fn percentile(l: &LatencySummary, name: &str) -> (u64, Option<[u64; 2]>) {
    match name {
        "p50" => (l.p50, l.ci.p50),
        "p75" => (l.p75, l.ci.p75),
        "p90" => (l.p90, l.ci.p90),
        "p99" => (l.p99, l.ci.p99),
        "p99.9" => (l.p99_9, l.ci.p99_9),
        _ => (l.max, None),
    }
}

fn change(a: f64, b: f64) -> Option<f64> {
    (a != 0.0).then(|| b / a - 1.0)
}

impl Diff {
    /// Run `b` against run `a`.
    pub fn of(a: &Report, b: &Report) -> Diff {
        let mut rows = vec![DiffRow {
            name: "requests/s",
            unit: DiffUnit::PerSec,
            a: a.requests_per_sec,
            b: b.requests_per_sec,
            change: change(a.requests_per_sec, b.requests_per_sec),
            beyond_noise: None,
        }];
        for (name, _) in PERCENTILES {
            let ((va, ia), (vb, ib)) = (
                percentile(&a.latency_us, name),
                percentile(&b.latency_us, name),
            );
            rows.push(DiffRow {
                name,
                unit: DiffUnit::Micros,
                a: va as f64,
                b: vb as f64,
                change: change(va as f64, vb as f64),
                beyond_noise: ia.zip(ib).map(|(x, y)| x[1] < y[0] || y[1] < x[0]),
            });
        }
        let (ea, eb) = (a.errors.total() as f64, b.errors.total() as f64);
        rows.push(DiffRow {
            name: "errors",
            unit: DiffUnit::Count,
            a: ea,
            b: eb,
            change: change(ea, eb),
            beyond_noise: None,
        });
        Diff {
            rows,
            paced: a.rate.is_some() && b.rate.is_some(),
        }
    }

    /// The figures by which B is worse than A beyond `bound` (0.05 for
    /// 5%): p50, p90 or p99 latency higher, errors more (any, where A had
    /// none: a run whose requests failed fast is not faster), or, unless
    /// both runs were paced, fewer requests per second.
    pub fn slower(&self, bound: f64) -> Vec<&DiffRow> {
        self.rows
            .iter()
            .filter(|r| match r.unit {
                DiffUnit::Micros => {
                    PERCENTILES.iter().any(|&(n, gate)| gate && n == r.name) && r.worse_by() > bound
                }
                DiffUnit::PerSec => !self.paced && r.worse_by() > bound,
                DiffUnit::Count => r.b > r.a && (r.a == 0.0 || r.worse_by() > bound),
            })
            .collect()
    }

    /// The comparison as a table.
    pub fn to_text(&self) -> String {
        use crate::units::format_time_us;
        let show = |r: &DiffRow, v: f64| match r.unit {
            DiffUnit::Micros => format_time_us(v),
            DiffUnit::PerSec => format!("{v:.2}"),
            DiffUnit::Count => format!("{v:.0}"),
        };
        let mut out = format!("{:<12} {:>12} {:>12} {:>9}\n", "", "A", "B", "change");
        for r in &self.rows {
            let change = match r.change {
                Some(c) => format!("{:+.1}%", c * 100.0),
                None if r.b == 0.0 => "=".to_string(),
                None => "new".to_string(),
            };
            let noise = match r.beyond_noise {
                Some(false) => "  (within the 95% intervals)",
                _ => "",
            };
            out.push_str(&format!(
                "{:<12} {:>12} {:>12} {:>9}{noise}\n",
                r.name,
                show(r, r.a),
                show(r, r.b),
                change
            ));
        }
        if self.paced {
            out.push_str("Both runs were paced: their rates were asked for, so only latency says which is slower.\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(p50: u64, errors: u64, rps: f64) -> Report {
        let mut r: Report = serde_json::from_str(include_str!("fixtures/min-report.json"))
            .expect("the minimal report parses");
        r.latency_us.p50 = p50;
        r.latency_us.p90 = p50;
        r.latency_us.p99 = p50;
        r.errors.read = errors;
        r.requests_per_sec = rps;
        r
    }

    #[test]
    fn slower_is_higher_latency_more_errors_or_a_lower_rate() {
        let a = report(100, 0, 1000.0);
        // Same: nothing.
        assert!(Diff::of(&a, &a).slower(0.0).is_empty());
        // Faster, fewer errors, more requests: nothing.
        assert!(Diff::of(&report(200, 5, 900.0), &a).slower(0.05).is_empty());
        let names = |b: &Report| -> Vec<&'static str> {
            Diff::of(&a, b)
                .slower(0.05)
                .iter()
                .map(|r| r.name)
                .collect()
        };
        assert_eq!(names(&report(110, 0, 1000.0)), ["p50", "p90", "p99"]);
        assert!(names(&report(104, 0, 1000.0)).is_empty(), "within 5%");
        assert_eq!(names(&report(100, 0, 900.0)), ["requests/s"]);
        // Failing fast is not faster: any errors where A had none.
        assert_eq!(names(&report(50, 1, 1000.0)), ["errors"]);
    }
}

//! Self-checks of a paced run, as Lancet runs them: was the schedule kept
//! (achieved within 2% of offered), did Poisson arrivals leave as Poisson
//! (an Anderson-Darling test of the actual send gaps against the
//! exponential), and are the latencies independent in send order (their
//! lag-1 rank correlation; a periodic stall or a long queue shows here,
//! and then the percentiles' intervals, which assume independent samples,
//! are too narrow). Each worker keeps the first sends and latencies of
//! its window for them: a push per request, bounded.

use serde::{Deserialize, Serialize};

/// Samples a worker keeps for the checks.
pub(crate) const SAMPLE_CAP: usize = 20_000;

/// What one worker kept: its send times, and `(intended send, latency)`
/// of its responses, µs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    pub sends: Vec<u64>,
    pub latencies: Vec<(u64, u64)>,
}

impl Samples {
    #[inline]
    pub(crate) fn send(&mut self, at: u64) {
        if self.sends.len() < SAMPLE_CAP {
            self.sends.push(at);
        }
    }

    #[inline]
    pub(crate) fn response(&mut self, intended: u64, latency: u64) {
        if self.latencies.len() < SAMPLE_CAP {
            self.latencies.push((intended, latency));
        }
    }
}

/// The checks' results (`rate.checks` in the JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SelfChecks {
    /// Achieved over offered rate (what the schedule had due in the
    /// window: for Poisson arrivals, their count, not their mean).
    pub achieved_ratio: f64,
    /// Achieved within 2% of offered.
    pub achieved_within_2pct: bool,
    /// Poisson arrivals: were the actual send gaps exponential?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponential_gaps: Option<GapCheck>,
    /// Latencies in send order: lag-1 rank correlation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag1_rank_correlation: Option<CorrelationCheck>,
}

/// An Anderson-Darling test of send gaps against the exponential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GapCheck {
    /// Gaps tested.
    pub n: u64,
    /// The statistic, modified for the estimated mean (Stephens).
    pub a2: f64,
    /// Below the 5% critical value (1.321).
    pub pass: bool,
}

/// The lag-1 rank correlation of latencies in send order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CorrelationCheck {
    pub n: u64,
    /// Spearman's rho between each latency and the next.
    pub rho: f64,
    /// Small: under 0.1, or within three standard errors of zero.
    pub pass: bool,
}

/// Stephens' 5% critical value of the modified A² for the exponential
/// with an estimated mean.
const AD_EXPONENTIAL_5PCT: f64 = 1.321;

/// The modified Anderson-Darling statistic of `x` against the exponential
/// with `x`'s mean; `None` for fewer than 20 values.
///
/// ```
/// use urk_engine::anderson_darling_exponential;
/// // Evenly spaced gaps are far from exponential.
/// assert!(anderson_darling_exponential(&vec![1.0; 100]).unwrap() > 1.321);
/// ```
pub fn anderson_darling_exponential(x: &[f64]) -> Option<f64> {
    if x.len() < 20 {
        return None;
    }
    let mut x = x.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return None;
    }
    let cdf = |v: f64| (1.0 - (-v / mean).exp()).clamp(1e-12, 1.0 - 1e-12);
    let s: f64 = (0..x.len())
        .map(|i| {
            let fi = cdf(x[i]);
            let fj = cdf(x[x.len() - 1 - i]);
            (2.0 * i as f64 + 1.0) * (fi.ln() + (1.0 - fj).ln())
        })
        .sum();
    let a2 = -n - s / n;
    Some(a2 * (1.0 + 0.6 / n))
}

/// Spearman's rank correlation between each value of `x` and the next;
/// `None` for fewer than 20 values.
///
/// ```
/// use urk_engine::lag1_rank_correlation;
/// let rising: Vec<f64> = (0..100).map(f64::from).collect();
/// assert!(lag1_rank_correlation(&rising).unwrap() > 0.99);
/// ```
pub fn lag1_rank_correlation(x: &[f64]) -> Option<f64> {
    if x.len() < 20 {
        return None;
    }
    // Ranks, ties sharing their mean rank.
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut rank = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0;
        for k in i..=j {
            rank[order[k]] = r;
        }
        i = j + 1;
    }
    let (a, b) = (&rank[..rank.len() - 1], &rank[1..]);
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (p, q) in a.iter().zip(b) {
        cov += (p - ma) * (q - mb);
        va += (p - ma).powi(2);
        vb += (q - mb).powi(2);
    }
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

/// The checks over every worker's samples.
pub(crate) fn run_checks(
    sets: &[Samples],
    requested: f64,
    achieved: f64,
    poisson: bool,
) -> SelfChecks {
    let ratio = if requested > 0.0 {
        achieved / requested
    } else {
        0.0
    };
    let mut checks = SelfChecks {
        achieved_ratio: ratio,
        achieved_within_2pct: (ratio - 1.0).abs() <= 0.02,
        ..SelfChecks::default()
    };
    if poisson {
        // Each worker's sends are a Poisson process of its share: their
        // gaps, pooled after scaling each worker's to a unit mean.
        let mut gaps = Vec::new();
        for s in sets {
            let mut t = s.sends.clone();
            t.sort_unstable();
            let g: Vec<f64> = t.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
            let mean = g.iter().sum::<f64>() / g.len().max(1) as f64;
            if mean > 0.0 {
                gaps.extend(g.iter().map(|x| x / mean));
            }
        }
        checks.exponential_gaps = anderson_darling_exponential(&gaps).map(|a2| GapCheck {
            n: gaps.len() as u64,
            a2,
            pass: a2 <= AD_EXPONENTIAL_5PCT,
        });
    }
    // The worker with the most responses: its latencies in send order.
    if let Some(s) = sets.iter().max_by_key(|s| s.latencies.len()) {
        let mut l = s.latencies.clone();
        l.sort_unstable_by_key(|p| p.0);
        let series: Vec<f64> = l.iter().map(|p| p.1 as f64).collect();
        checks.lag1_rank_correlation = lag1_rank_correlation(&series).map(|rho| {
            let n = series.len() as f64;
            CorrelationCheck {
                n: series.len() as u64,
                rho,
                pass: rho < 0.1 || rho.abs() < 3.0 / n.sqrt(),
            }
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exponential values from a fixed sequence of uniforms.
    fn exponential(n: usize) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(3);
        (0..n).map(|_| -(1.0 - rng.f64()).ln()).collect()
    }

    #[test]
    fn anderson_darling_tells_exponential_gaps_from_even_ones() {
        let a2 = anderson_darling_exponential(&exponential(5000)).unwrap();
        assert!(a2 < AD_EXPONENTIAL_5PCT, "{a2}");
        // Evenly spaced gaps with a little jitter: not exponential.
        let mut rng = fastrand::Rng::with_seed(4);
        let even: Vec<f64> = (0..5000).map(|_| 1.0 + 0.1 * rng.f64()).collect();
        assert!(anderson_darling_exponential(&even).unwrap() > 10.0 * AD_EXPONENTIAL_5PCT);
        assert!(anderson_darling_exponential(&[1.0; 5]).is_none());
    }

    #[test]
    fn rank_correlation_finds_a_stall_and_not_noise() {
        let noise = exponential(5000);
        let rho = lag1_rank_correlation(&noise).unwrap();
        assert!(rho.abs() < 3.0 / 5000f64.sqrt(), "{rho}");
        // A periodic stall: latencies climb for 50 requests, then drop.
        let stall: Vec<f64> = (0..5000).map(|i| (i % 50) as f64 + noise[i]).collect();
        assert!(lag1_rank_correlation(&stall).unwrap() > 0.5);
    }

    #[test]
    fn checks_judge_a_run() {
        let mut rng = fastrand::Rng::with_seed(9);
        let mut s = Samples::default();
        let mut t = 0u64;
        for _ in 0..5000 {
            t += (-(1.0 - rng.f64()).ln() * 500.0) as u64 + 1;
            s.send(t);
            s.response(t, 100 + rng.u64(..50));
        }
        let c = run_checks(&[s.clone()], 2000.0, 1990.0, true);
        assert!(c.achieved_within_2pct);
        assert!(c.exponential_gaps.unwrap().pass, "{c:?}");
        assert!(c.lag1_rank_correlation.unwrap().pass, "{c:?}");
        // Uniform gaps under a Poisson claim, and a schedule not kept.
        let mut even = Samples::default();
        for k in 0..5000 {
            even.send(k * 500);
        }
        let c = run_checks(&[even], 2000.0, 1900.0, true);
        assert!(!c.achieved_within_2pct);
        assert!(!c.exponential_gaps.unwrap().pass);
    }
}

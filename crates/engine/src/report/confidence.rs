//! How sure a percentile is: a distribution-free 95% confidence interval
//! from order statistics. Of n independent samples, the number below the
//! true q-quantile is Binomial(n, q); the interval between the l-th and
//! u-th smallest samples covers the quantile with probability
//! F(u-1) - F(l-1), F the binomial CDF. The ranks chosen leave at most
//! 2.5% on each side. A percentile whose upper rank would lie past the
//! last sample (p99.99 from 2,000 responses) cannot be bounded, and says
//! so instead of being printed as if exact.

/// Each side's share of what the interval may miss (95% in all).
const TAIL: f64 = 0.025;

/// The 1-based ranks `(l, u)` of a 95% interval for the `q`-quantile of
/// `n` samples, or `None` where the samples cannot bound it.
///
/// ```
/// // The median of 100 samples lies between the 40th and the 61st.
/// assert_eq!(urk_engine::percentile_ranks(100, 0.5), Some((40, 61)));
/// // 2,000 samples cannot bound a p99.99.
/// assert_eq!(urk_engine::percentile_ranks(2_000, 0.9999), None);
/// ```
pub fn percentile_ranks(n: u64, q: f64) -> Option<(u64, u64)> {
    if n == 0 || !(0.0..1.0).contains(&q) || q == 0.0 {
        return None;
    }
    let nf = n as f64;
    let mean = nf * q;
    let sd = (nf * q * (1.0 - q)).sqrt();
    // The binomial's mass lies within a dozen deviations of its mean:
    // start below that (or at zero) and walk up, pmf by pmf.
    let start = (mean - 12.0 * sd - 10.0).max(0.0).floor() as u64;
    let end = ((mean + 12.0 * sd + 10.0).ceil() as u64).min(n);
    let (lq, lp) = (q.ln(), (1.0 - q).ln());
    let mut pmf = (ln_choose(n, start) + start as f64 * lq + (n - start) as f64 * lp).exp();
    let (mut lower, mut upper) = (None, None);
    let ratio = q / (1.0 - q);
    // F(k) for k from `start`; what lies below it is negligible.
    let mut cdf = 0.0;
    let mut k = start;
    loop {
        // Here `cdf` is F(k - 1): rank k's.
        if cdf <= TAIL {
            lower = Some(k);
        }
        if cdf >= 1.0 - TAIL {
            upper = Some(k);
            break;
        }
        if k == end {
            break;
        }
        cdf += pmf;
        pmf *= (n - k) as f64 / (k + 1) as f64 * ratio;
        k += 1;
    }
    let l = lower.filter(|&l| l >= 1 && l <= n)?;
    // The rank just past the walk: F(end) is 1 to within rounding.
    let u = upper.unwrap_or(end + 1);
    (u <= n && l <= u).then_some((l, u))
}

/// ln(n choose k).
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// ln Γ(x) for x ≥ 1 (Lanczos, g = 7: relative error about 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ranks by the definition, summing every term in log space.
    fn by_definition(n: u64, q: f64) -> Option<(u64, u64)> {
        let mut cdf = 0.0;
        let (mut l, mut u) = (None, None);
        for r in 1..=n + 1 {
            // cdf = F(r - 1) after adding pmf(r - 1).
            let k = r - 1;
            cdf += (ln_choose(n, k) + k as f64 * q.ln() + (n - k) as f64 * (1.0 - q).ln()).exp();
            if cdf <= TAIL {
                l = Some(r);
            }
            if u.is_none() && cdf >= 1.0 - TAIL {
                u = Some(r);
            }
        }
        match (l, u) {
            (Some(l), Some(u)) if l >= 1 && u <= n => Some((l, u)),
            _ => None,
        }
    }

    #[test]
    fn ranks_equal_the_binomial_order_statistics() {
        for (n, q) in [
            (10_000, 0.99),
            (10_000, 0.5),
            (10_000, 0.9),
            (10_000, 0.999),
            (1_000, 0.75),
            (100_000, 0.9999),
        ] {
            assert_eq!(percentile_ranks(n, q), by_definition(n, q), "n={n} q={q}");
        }
        // The known answer (Python's lgamma agrees): p99 of 10,000 samples is bounded by the 9,880th
        // and 9,920th.
        assert_eq!(percentile_ranks(10_000, 0.99), Some((9_880, 9_920)));
    }

    #[test]
    fn too_few_samples_bound_nothing() {
        assert_eq!(percentile_ranks(2_000, 0.9999), None);
        assert_eq!(percentile_ranks(0, 0.5), None);
        assert!(percentile_ranks(50_000, 0.9999).is_some());
    }

    #[test]
    fn ln_gamma_is_exact_enough() {
        // ln(10!) = ln(3628800).
        assert!((ln_gamma(11.0) - 3_628_800f64.ln()).abs() < 1e-10);
        assert!(ln_gamma(1.0).abs() < 1e-12);
    }
}

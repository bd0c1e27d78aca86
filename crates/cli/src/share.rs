//! Shares as people write them on a command line: `5%` or `0.05`.

/// `5%` (a percentage) or `0.05` (the share itself) as a share; `None`
/// when it is not a finite number. Each flag checks its own range.
pub fn share(s: &str) -> Option<f64> {
    let s = s.trim();
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => s.parse::<f64>().ok()?,
    };
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn percentages_and_bare_shares() {
        assert_eq!(share("5%"), Some(0.05));
        assert_eq!(share(" 0.5 % "), Some(0.005));
        assert_eq!(share("0.25"), Some(0.25));
        for bad in ["", "%", "five", "NaN", "inf%"] {
            assert_eq!(share(bad), None, "{bad}");
        }
    }
}

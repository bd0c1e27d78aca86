//! wrk's units, both ways: parsing the numbers and times users type, and
//! formatting figures exactly as wrk prints them, so scripts that scrape
//! wrk's output keep working on urk's.

use std::time::Duration;

/// Parses a count with an optional SI suffix (`k`, `M`, `G`, base 1000), as
/// wrk accepts for `-c` and `-t`.
///
/// ```
/// assert_eq!(urk_engine::units::parse_count("1k"), Some(1000));
/// assert_eq!(urk_engine::units::parse_count("2M"), Some(2_000_000));
/// assert_eq!(urk_engine::units::parse_count("x"), None);
/// ```
pub fn parse_count(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1_000),
        (i, 'm' | 'M') => (&s[..i], 1_000_000),
        (i, 'g' | 'G') => (&s[..i], 1_000_000_000),
        _ => (s, 1),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Parses a time: a number with `us`, `ms`, `s`, `m` or `h`; a bare number
/// is seconds, as in wrk.
///
/// ```
/// use std::time::Duration;
/// use urk_engine::units::parse_duration;
/// assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
/// assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
/// assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
/// assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
/// assert_eq!(parse_duration("xyz"), None);
/// ```
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num == "." {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

struct Units {
    scale: f64,
    base: &'static str,
    units: &'static [&'static str],
}

const TIME_US: Units = Units {
    scale: 1000.0,
    base: "us",
    units: &["ms", "s"],
};
const TIME_S: Units = Units {
    scale: 60.0,
    base: "s",
    units: &["m", "h"],
};
const BINARY: Units = Units {
    scale: 1024.0,
    base: "",
    units: &["K", "M", "G", "T", "P"],
};
const METRIC: Units = Units {
    scale: 1000.0,
    base: "",
    units: &["k", "M", "G", "T", "P"],
};

/// wrk moves to the next unit at 85% of it and never uses the last unit of
/// a table; reproduced exactly.
fn format_units(n: f64, u: &Units, precision: usize) -> String {
    let mut amt = n;
    let mut unit = u.base;
    let threshold = u.scale * 0.85;
    let mut i = 0;
    while i + 1 < u.units.len() && amt >= threshold {
        amt /= u.scale;
        unit = u.units[i];
        i += 1;
    }
    format!("{amt:.precision$}{unit}")
}

/// Microseconds as wrk prints latencies: `635.91us`, `12.92ms`, `1.02s`.
pub fn format_time_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format_units(us / 1_000_000.0, &TIME_S, 2)
    } else {
        format_units(us, &TIME_US, 2)
    }
}

/// A count with thousands separators: 9450 as `9,450`.
///
/// ```
/// assert_eq!(urk_engine::units::format_count(1234567), "1,234,567");
/// assert_eq!(urk_engine::units::format_count(999), "999");
/// ```
pub fn format_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as wrk prints the test length: `5s`, `1m`.
pub fn format_time_s(s: f64) -> String {
    format_units(s, &TIME_S, 0)
}

/// Bytes as wrk prints them: `17.76G` (base 1024; the `B` is added by the caller).
pub fn format_binary(n: f64) -> String {
    format_units(n, &BINARY, 2)
}

/// A count as wrk prints request rates: `56.20k`.
pub fn format_metric(n: f64) -> String {
    format_units(n, &METRIC, 2)
}

/// Right-aligns `msg` in `width`, with wrk's trick of padding so the
/// numbers line up whether the unit has zero, one or two letters.
pub(crate) fn pad_units(msg: &str, width: usize) -> String {
    let b = msg.as_bytes();
    let mut pad = 2usize;
    if b.last().is_some_and(u8::is_ascii_alphabetic) {
        pad -= 1;
    }
    if b.len() >= 2 && b[b.len() - 2].is_ascii_alphabetic() {
        pad -= 1;
    }
    let w = width.saturating_sub(pad);
    format!("{msg:>w$}{}", &"  "[..pad])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_wrk() {
        assert_eq!(format_time_us(635.91), "635.91us");
        assert_eq!(format_time_us(890.0), "0.89ms");
        assert_eq!(format_time_us(12920.0), "12.92ms");
        assert_eq!(format_time_us(1_500_000.0), "1.50s");
        assert_eq!(format_time_us(90_000_000.0), "1.50m");
        assert_eq!(format_time_s(5.0), "5s");
        assert_eq!(format_time_s(60.0), "1m");
        assert_eq!(format_binary(17.76 * 1024.0 * 1024.0 * 1024.0), "17.76G");
        assert_eq!(format_metric(56200.0), "56.20k");
        assert_eq!(format_metric(12.0), "12.00");
        assert_eq!(pad_units("635.91us", 8), "635.91us");
        assert_eq!(pad_units("0.89ms", 10), "    0.89ms");
        assert_eq!(pad_units("12.00", 8), " 12.00  ");
        assert_eq!(pad_units("56.20k", 8), " 56.20k ");
    }

    #[test]
    fn parses() {
        assert_eq!(parse_count("50"), Some(50));
        assert_eq!(parse_count(""), None);
        assert_eq!(parse_count("-1"), None);
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }
}

//! `urk diff A.json B.json`: how a candidate run differs from a baseline,
//! and with `--fail-if-slower` the exit status a CI job gates on.

use argh::FromArgs;

/// Compare two --json reports: rate and latency percentiles of B against A
/// (exact, from their histograms), with 95% intervals.
#[derive(FromArgs, Debug)]
pub struct DiffArgs {
    /// exit 3 when B is slower than A beyond this share, e.g. 5%: p50, p90
    /// or p99 latency higher, or (unless both were paced with -R) fewer
    /// requests per second
    #[argh(option)]
    pub fail_if_slower: Option<String>,
    /// print the comparison as JSON
    #[argh(switch)]
    pub json: bool,
    /// the baseline's and the candidate's reports, written by urk --json
    #[argh(positional)]
    pub files: Vec<String>,
}

/// What the comparison printed, and whether B was slower beyond the bound.
pub struct Outcome {
    pub out: String,
    pub slower: Option<String>,
}

/// `5%`, `0.5%` or `0.05` as a share.
fn share(s: &str) -> Result<f64, String> {
    let bad = || format!("invalid --fail-if-slower '{s}': expected a percentage such as 5%");
    // A bare number is a share below 1 (0.05); "5" is refused rather
    // than read as 500%.
    let v = crate::share::share(s).ok_or_else(bad)?;
    if (!s.trim().ends_with('%') && v >= 1.0) || !(0.0..10.0).contains(&v) {
        return Err(bad());
    }
    Ok(v)
}

pub fn run(args: &DiffArgs) -> Result<Outcome, String> {
    let [a, b] = args.files.as_slice() else {
        return Err("urk diff compares two --json reports: urk diff A.json B.json".into());
    };
    let bound = args.fail_if_slower.as_deref().map(share).transpose()?;
    let reports = crate::merge::read_reports(&[a.clone(), b.clone()])?;
    let d = urk_engine::Diff::of(&reports[0], &reports[1]);
    let slower = bound.and_then(|bound| {
        let worse = d.slower(bound);
        (!worse.is_empty()).then(|| {
            let what: Vec<String> = worse
                .iter()
                .map(|r| format!("{} {:+.1}%", r.name, r.change.unwrap_or(0.0) * 100.0))
                .collect();
            format!(
                "{b} is slower than {a} beyond {:.1}%: {}",
                bound * 100.0,
                what.join(", ")
            )
        })
    });
    let out = if args.json {
        serde_json::to_string_pretty(&d).map_err(|e| e.to_string())? + "\n"
    } else {
        format!("A: {a}\nB: {b}\n{}", d.to_text())
    };
    Ok(Outcome { out, slower })
}

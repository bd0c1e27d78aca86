//! `urk merge A.json B.json ...`: one exact report from runs made at the
//! same time on several machines.

use argh::FromArgs;

/// Combine --json reports of concurrent runs: counts add, histograms merge
/// exactly (no averaging of percentiles).
#[derive(FromArgs, Debug)]
pub struct MergeArgs {
    /// print the merged report as JSON
    #[argh(switch)]
    pub json: bool,
    /// print the latency distribution
    #[argh(switch, short = 'L')]
    pub latency: bool,
    /// reports written by urk --json
    #[argh(positional)]
    pub files: Vec<String>,
}

/// Reads `--json` reports; an error names the file and what is wrong.
pub fn read_reports(files: &[String]) -> Result<Vec<urk_engine::Report>, String> {
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).map_err(|e| format!("cannot read '{f}': {e}"))?;
            serde_json::from_str(&text)
                .map_err(|e| format!("'{f}' is not an urk --json report: {e}"))
        })
        .collect()
}

pub fn run(args: &MergeArgs) -> Result<String, String> {
    if args.files.is_empty() {
        return Err("urk merge needs at least one --json report".into());
    }
    let reports = read_reports(&args.files)?;
    let merged = urk_engine::Report::merge(&reports).ok_or("nothing to merge")?;
    let caveats = urk_engine::Report::merge_caveats(&reports);
    if args.json {
        for c in &caveats {
            eprintln!("urk merge: {c}");
        }
        serde_json::to_string_pretty(&merged)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())
    } else {
        let header = format!(
            "Merged {} runs @ {}\n  {} threads and {} connections\n",
            reports.len(),
            merged.url,
            merged.threads,
            merged.connections
        );
        let notes: String = caveats.iter().map(|c| format!("Note: {c}\n")).collect();
        Ok(header
            + &notes
            + &merged.to_text(urk_engine::TextOptions {
                latency: args.latency,
                uncorrected: false,
            }))
    }
}

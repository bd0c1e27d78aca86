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
    /// merge shards of a fleet even when some are missing (the totals are
    /// then the part's)
    #[argh(switch)]
    pub partial: bool,
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
    let fleet = urk_engine::Fleet::of(&reports, args.partial).map_err(|e| e.to_string())?;
    let mut merged = urk_engine::Report::merge(&reports).ok_or("nothing to merge")?;
    let mut caveats = urk_engine::Report::merge_caveats(&reports);
    if let Some(f) = &fleet {
        caveats.extend(f.warnings());
    }
    merged.fleet = fleet;
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
        let fleet = merged.fleet.as_ref().map_or(String::new(), |f| {
            let late = f
                .start_late_max_s
                .map(|s| format!("; the latest started {s:.3} s after the asked moment"))
                .unwrap_or_default();
            let spread = f
                .start_spread_server_s
                .map(|s| {
                    format!(
                        "; {s:.3} s (± {:.3}) between the first and last start on the server's clock",
                        f.start_spread_within_s.unwrap_or(0.0)
                    )
                })
                .unwrap_or_default();
            format!("  {} of {} shards{late}{spread}\n", f.merged.len(), f.count)
        });
        let notes: String = caveats.iter().map(|c| format!("Note: {c}\n")).collect();
        Ok(header
            + &fleet
            + &notes
            + &merged.to_text(urk_engine::TextOptions {
                latency: args.latency,
                uncorrected: false,
            }))
    }
}

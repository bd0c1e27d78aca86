//! `urk report RUN.json... --html FILE`: the HTML report from saved
//! `--json` reports, several runs overlaid.

use argh::FromArgs;

/// Build an HTML report from --json reports: one run, or several
/// overlaid for comparison.
#[derive(FromArgs, Debug)]
pub struct ReportArgs {
    /// write the report to FILE (self-contained: opens offline)
    #[argh(option)]
    pub html: String,
    /// reports written by urk --json (a capacity search's too)
    #[argh(positional)]
    pub files: Vec<String>,
}

/// Reads every file and writes the page; an error is one line.
pub fn run(args: &ReportArgs) -> Result<(), String> {
    if args.files.is_empty() {
        return Err("urk report needs at least one --json report".into());
    }
    let reports = crate::merge::read_reports(&args.files)?;
    let runs: Vec<super::Run<'_>> = args
        .files
        .iter()
        .zip(&reports)
        .map(|(f, r)| super::Run {
            report: r,
            label: format!("{f}: {}", r.url),
            command: r.command.clone(),
        })
        .collect();
    super::write(&args.html, &runs).map_err(|e| format!("cannot write --html '{}': {e}", args.html))
}

//! Running the `urk` binary from the urk crate's tests.

#![allow(dead_code)]

use std::process::{Command, Output};

/// The binary under test (only the urk crate's tests have it).
pub fn bin() -> &'static str {
    match option_env!("CARGO_BIN_EXE_urk") {
        Some(path) => path,
        None => panic!("the urk binary is only built for the urk crate's tests"),
    }
}

/// A command for the binary, to add arguments and stdio to.
pub fn command() -> Command {
    Command::new(bin())
}

/// Runs the binary with `args` to completion.
pub fn urk(args: &[&str]) -> Output {
    command().args(args).output().expect("run urk")
}

/// Runs the binary with `args` and checks it refused them as a user
/// should see it: exit 2 and one line on stderr that says `want`.
pub fn refused(args: &[&str], want: &str) {
    let out = urk(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(want) && err.lines().count() == 1,
        "{args:?}: {err}"
    );
}

/// Writes each report (`--json`) to a file of its own in a folder named
/// for `name`, for `urk merge` and `urk diff`; returns their paths.
pub fn save_reports<'a>(
    name: &str,
    reports: impl IntoIterator<Item = &'a serde_json::Value>,
) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("urk-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    reports
        .into_iter()
        .enumerate()
        .map(|(k, r)| {
            let p = dir.join(format!("{k}.json"));
            std::fs::write(&p, r.to_string()).unwrap();
            p.to_string_lossy().into_owned()
        })
        .collect()
}

/// Bytes from a child as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every response the text report counts: the window's (`N requests in
/// T, B read`) and those completed after it (`After the stop: N more ...`).
pub fn requests_in(report: &str) -> u64 {
    let first_number = |prefix: &str| {
        report.lines().find(|l| l.contains(prefix)).and_then(|l| {
            l[l.find(prefix)? + prefix.len()..]
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
    };
    let window = report
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no requests line in\n{report}"));
    window + first_number("After the stop: ").unwrap_or(0)
}

/// Sends `sig` to a running urk, as Ctrl-C (SIGINT) or a service manager
/// (SIGTERM) would.
pub fn signal(child: &std::process::Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).expect("signal urk");
}

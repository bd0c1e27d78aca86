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

/// Bytes from a child as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The count from the report's `N requests in T, B read` line.
pub fn requests_in(report: &str) -> u64 {
    report
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no requests line in\n{report}"))
}

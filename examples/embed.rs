//! Embedding the engine in another tool: a config in, a report out.
//!
//!     cargo run --release --example embed -- http://127.0.0.1:8080/

use std::time::Duration;

use uring_engine::{run, Config, EngineError};

fn main() -> Result<(), EngineError> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080/".into());
    let cfg = Config::new(&url)?
        .threads(1)
        .connections(20)
        .duration(Duration::from_secs(3))
        .header("Accept: text/plain")?;
    let report = run(&cfg)?;
    println!(
        "{} requests ({:.0}/s), p50 {} us, p99 {} us, errors {}",
        report.requests,
        report.requests_per_sec,
        report.latency_us.p50,
        report.latency_us.p99,
        report.errors.total()
    );
    for (status, count) in &report.status {
        println!("  {status}: {count}");
    }
    Ok(())
}

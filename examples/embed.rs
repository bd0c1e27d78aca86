//! Embedding the engine in another tool: a config in, a report out.
//!
//!     cargo run --release --example embed -- http://127.0.0.1:8080/
//!     cargo run --release --example embed -- https://127.0.0.1:8443/ ca.pem

use std::time::Duration;

use urk_engine::{run, Config, EngineError};

fn main() -> Result<(), EngineError> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080/".into());
    let mut cfg = Config::new(&url)?
        .threads(1)
        .connections(20)
        .duration(Duration::from_secs(3))
        .header("Accept: text/plain")?;
    // https: trust this CA file instead of the system's roots.
    cfg.tls.ca_file = std::env::args().nth(2).map(Into::into);
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
    if let Some(tls) = &report.tls {
        println!(
            "  {} {}: {} handshakes, {} resumed",
            tls.version, tls.cipher, tls.handshakes, tls.resumed
        );
    }
    Ok(())
}

//! urk's main job with nothing installed: starts the bundled example HTTP
//! server on 127.0.0.1, loads it for 5 s with 50 connections on one
//! thread, and prints the report exactly as `urk --latency` would.
//!
//!     cargo run --release --example demo

#[path = "../tests/support/server.rs"]
mod server;

use std::time::Duration;

fn main() {
    let server = server::TestServer::start(server::ServerConfig::default());
    let cfg = urk_engine::Config::new(&server.url("/"))
        .expect("the demo URL is valid")
        .threads(1)
        .connections(50)
        .duration(Duration::from_secs(5));
    print!("{}", urk_engine::banner(&cfg));
    match urk_engine::run(&cfg) {
        Ok(report) => {
            print!(
                "{}",
                report.to_text(urk_engine::TextOptions {
                    latency: true,
                    uncorrected: false
                })
            );
            println!(
                "(server answered {}; io level {})",
                server.settled(),
                report.io.level
            );
        }
        Err(e) => {
            eprintln!("urk demo: {e}");
            std::process::exit(2);
        }
    }
}

//! The bundled test server as a program, to point urk (or wrk) at:
//!
//!     cargo run --release --example server            # prints its URL, runs until killed
//!     cargo run --release --example server -- 30      # stops after 30 s

#[path = "../tests/support/server.rs"]
mod server;

use std::time::Duration;

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX / 4);
    let s = server::TestServer::start(server::ServerConfig::default());
    println!("{}", s.url("/"));
    std::thread::sleep(Duration::from_secs(secs));
    println!("answered {}", s.answered());
}

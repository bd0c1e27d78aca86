//! The bundled test server as a program, to point urk (or wrk) at:
//!
//!     cargo run --release --example server            # prints its URL, runs until killed
//!     cargo run --release --example server -- 30      # stops after 30 s
//!     cargo run --release --example server -- 30 200000   # 200000-byte bodies

#[path = "../tests/support/server.rs"]
mod server;

use std::time::Duration;

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX / 4);
    let mut cfg = server::ServerConfig::default();
    if let Some(len) = std::env::args().nth(2).and_then(|s| s.parse().ok()) {
        cfg.body = vec![b'x'; len];
    }
    let s = server::TestServer::start(cfg);
    println!("{}", s.url("/"));
    std::thread::sleep(Duration::from_secs(secs));
    println!("answered {}", s.answered());
}

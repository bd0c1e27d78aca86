//! Targets beyond TCP on IPv4: IPv6 addresses, names, `--connect-to`,
//! Unix sockets; at the ring's level and on epoll, counts exact.

mod support;

use support::cli::{text, urk};
use support::server::{ServerConfig, TestServer};

fn recording() -> ServerConfig {
    ServerConfig {
        record: true,
        ..Default::default()
    }
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-q", "--json"];
    all.extend_from_slice(args);
    let out = urk(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn ipv6_literals_connect_over_ipv6() {
    for io in ["full", "epoll"] {
        let server = TestServer::start_v6(recording());
        let url = format!("http://[::1]:{}/six", server.addr.port());
        let r = run_json(&["--io", io, "-t2", "-c4", "-n", "500", &url]);
        assert_eq!(r["requests"], 500, "{io}");
        let seen = server.seen();
        assert_eq!(seen.len(), 500, "{io}");
        assert_eq!(seen[0].path, "/six");
        assert_eq!(
            seen[0].header("host"),
            Some(&*format!("[::1]:{}", server.addr.port()))
        );
    }
}

#[test]
fn a_name_reaches_a_server_on_one_of_its_addresses() {
    let server = TestServer::start(recording());
    let url = format!("http://localhost:{}/name", server.addr.port());
    let r = run_json(&["-t1", "-c2", "-n", "100", &url]);
    assert_eq!(r["requests"], 100);
    assert_eq!(server.seen().len(), 100);
}

#[test]
fn connect_to_goes_elsewhere_with_the_urls_host() {
    let server = TestServer::start(recording());
    let to = format!("127.0.0.1:{}", server.addr.port());
    for io in ["full", "epoll"] {
        let r = run_json(&[
            "--io",
            io,
            "-t1",
            "-c2",
            "-n",
            "50",
            "--connect-to",
            &to,
            "http://app.example.invalid/by-name",
        ]);
        assert_eq!(r["requests"], 50, "{io}");
    }
    let seen = server.seen();
    assert_eq!(seen.len(), 100);
    assert!(seen
        .iter()
        .all(|s| s.header("host") == Some("app.example.invalid")));
    let out = urk(&["--connect-to", "nonsense", "http://a/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("HOST:PORT"));
}

#[test]
fn unix_sockets_carry_the_load() {
    let dir = std::env::temp_dir().join(format!("urk-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.sock");
    let server = TestServer::start_unix(&path, recording());
    let mut total = 0;
    for io in ["full", "basic", "legacy", "epoll"] {
        let r = run_json(&[
            "--io",
            io,
            "-t2",
            "-c4",
            "-p2",
            "-n",
            "400",
            "--unix-socket",
            path.to_str().unwrap(),
            "http://localhost/over-unix",
        ]);
        assert_eq!(r["requests"], 400, "{io}");
        assert_eq!(r["errors"]["connect"], 0, "{io}");
        total += 400;
    }
    let seen = server.seen();
    assert_eq!(seen.len(), total);
    assert!(seen
        .iter()
        .all(|s| s.path == "/over-unix" && s.header("host") == Some("localhost")));
    let out = urk(&[
        "-q",
        "-n",
        "5",
        "-d1s",
        "--unix-socket",
        "/nonexistent/x.sock",
        "http://localhost/",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("failed connects"));
}

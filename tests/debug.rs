//! `--debug`: one request, the run's first, shown as sent and its
//! response as received; the server sees exactly that one request.

mod support;

use std::time::Duration;

use support::cli::{text, urk};
use support::server::{ServerConfig, TestServer, TlsMode};
use support::tls::{Leaf, Pki};

fn recording() -> TestServer {
    TestServer::start(ServerConfig {
        record: true,
        body: b"hello\n".to_vec(),
        ..Default::default()
    })
}

/// Runs `urk --debug` with `args`; its stdout, after checking it exited 0.
fn debug(args: &[&str]) -> String {
    let mut all = vec!["--debug"];
    all.extend_from_slice(args);
    let out = urk(&all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn one_request_is_shown_as_sent_and_answered() {
    let server = recording();
    let s = debug(&[
        "-m",
        "POST",
        "--body",
        "a=1",
        "-H",
        "X-Trace: 7",
        &server.url("/form"),
    ]);
    assert!(s.starts_with("* Connected to 127.0.0.1:"), "{s}");
    for line in [
        "> POST /form HTTP/1.1",
        "> X-Trace: 7",
        "> Content-Length: 3",
        "a=1",
        "< HTTP/1.1 200 OK",
        "hello",
    ] {
        assert!(s.lines().any(|l| l == line), "no '{line}' in\n{s}");
    }
    assert!(s.contains("* Status 200, 6 body bytes, "), "{s}");
    // Exactly one request reached the server, as shown.
    assert_eq!(server.settled(), 1);
    let seen = server.seen();
    assert_eq!(seen[0].path, "/form");
    assert_eq!(seen[0].body, b"a=1");
}

#[test]
fn a_long_body_is_cut_and_counted() {
    let server = TestServer::start(ServerConfig {
        body: vec![b'x'; 40_000],
        chunked: true,
        ..Default::default()
    });
    let s = debug(&[&server.url("/")]);
    assert!(s.contains("< Transfer-Encoding: chunked"), "{s}");
    let more = s
        .lines()
        .find_map(|l| l.strip_prefix("[")?.strip_suffix(" more bytes not shown]"))
        .unwrap_or_else(|| panic!("no cut in\n{}", &s[..400]));
    // The body as received, chunk sizes too, up to 16 KiB.
    let shown = 16 * 1024;
    assert!(
        s.contains("\nxxxxx\r\n") || s.contains("\nxxxxx\n"),
        "{}",
        &s[..400]
    );
    let total: u64 = s
        .lines()
        .find_map(|l| {
            l.strip_prefix("* Status 200, ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap();
    assert_eq!(more.parse::<u64>().unwrap() + shown as u64, total);
    assert!(total > 40_000, "chunked framing counts too: {total}");
}

#[test]
fn targets_and_scripts_send_their_first_request() {
    let server = recording();
    let dir = std::env::temp_dir().join(format!("urk-debug-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let targets = dir.join("targets.txt");
    std::fs::write(&targets, "/first?n={{seq}}\n/second\n").unwrap();
    let s = debug(&["--targets", targets.to_str().unwrap(), &server.url("/")]);
    assert!(s.contains("> GET /first?n=0000000000 HTTP/1.1"), "{s}");
    let lua = dir.join("put.lua");
    std::fs::write(
        &lua,
        "request = function() return wrk.format('PUT', '/from-lua', {['X-Lua'] = 'yes'}, 'b') end\n",
    )
    .unwrap();
    let s = debug(&["-s", lua.to_str().unwrap(), &server.url("/")]);
    assert!(s.contains("> PUT /from-lua HTTP/1.1"), "{s}");
    assert!(s.contains("> X-Lua: yes"), "{s}");
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].method, "PUT");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn over_tls_the_handshake_is_named() {
    let pki = Pki::new();
    let server = TestServer::start(ServerConfig {
        tls: Some(TlsMode::new(pki.server(Leaf::Good, false))),
        ..Default::default()
    });
    let s = debug(&["--cacert", pki.ca_file.to_str().unwrap(), &server.url("/")]);
    let first = s.lines().next().unwrap();
    assert!(
        first.contains(" with TLSv1.3, TLS13_") && first.ends_with("; ALPN http/1.1"),
        "{s}"
    );
    assert!(s.contains("< HTTP/1.1 200 OK"), "{s}");
}

#[test]
fn no_answer_is_one_line() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", dead.local_addr().unwrap());
    drop(dead);
    let out = urk(&["--debug", &url]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("urk: could not connect"), "{err}");
    // A server that never answers: the timeout ends it.
    let silent = support::fault::FaultServer::start(support::fault::Fault::NeverAnswer, 1);
    let began = std::time::Instant::now();
    let out = urk(&["--debug", "-T", "500ms", &silent.url()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(began.elapsed() < Duration::from_secs(5));
    assert!(text(&out.stderr).contains("could not read the response"));
}

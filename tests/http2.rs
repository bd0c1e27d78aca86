//! HTTP/2: counted against nginx's access log over h2c and h2 (TLS), at
//! every io level and depth, across nginx's GOAWAY every 1000 streams; the
//! probe that refuses a server that does not speak it; and a server that
//! misbehaves on purpose (tests/support/h2server.rs), each fault counted
//! exactly, without a hang or a panic.

#[path = "support/schema.rs"]
mod schema;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::cli::{text, urk};
use support::h2server::{H2Config, H2Server};
use support::nginx::Nginx;
use urk_engine::{run, Config, IoLevel, Report};

const LEVELS: [IoLevel; 4] = [
    IoLevel::Full,
    IoLevel::Basic,
    IoLevel::Legacy,
    IoLevel::Epoll,
];

fn h2(url: &str) -> Config {
    Config::new(url)
        .unwrap()
        .http2(true)
        .threads(1)
        .connections(2)
        .duration(Duration::from_secs(20))
        .timeout(Duration::from_secs(2))
}

/// Every request sent is completed, lost or unfinished, and every lost
/// one has its cause.
fn accounted(r: &Report) {
    assert_eq!(
        r.requests + r.requests_lost + r.requests_unfinished,
        r.requests_sent,
        "{}",
        brief(r)
    );
    assert_eq!(
        r.lost_causes.total(),
        r.requests_lost,
        "{:?}",
        r.lost_causes
    );
}

/// The figures a failure needs, without the histograms.
fn brief(r: &Report) -> String {
    format!(
        "requests {} sent {} lost {} ({:?}) unfinished {} errors {:?} stopped by {:?} http2 {:?}",
        r.requests,
        r.requests_sent,
        r.requests_lost,
        r.lost_causes,
        r.requests_unfinished,
        r.errors,
        r.stopped_by,
        r.http2
    )
}

/// A JSON-lines request log in the temporary directory, and its records
/// by error (`None`: answered).
fn request_log(name: &str) -> urk_engine::LogSpec {
    urk_engine::LogSpec {
        path: std::env::temp_dir().join(format!("urk-h2-{name}-{}.jsonl", std::process::id())),
        format: urk_engine::LogFormat::Json,
        sample: 1.0,
    }
}

fn logged_errors(spec: &urk_engine::LogSpec) -> BTreeMap<Option<String>, u64> {
    let mut by = BTreeMap::new();
    for l in std::fs::read_to_string(&spec.path).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        *by.entry(r["error"].as_str().map(String::from)).or_insert(0) += 1;
    }
    let _ = std::fs::remove_file(&spec.path);
    by
}

fn total(m: &BTreeMap<u16, u64>) -> u64 {
    m.values().sum()
}

#[test]
fn h2c_counts_exactly_against_nginx_at_every_level_and_depth() {
    for level in LEVELS {
        let Some(nginx) = Nginx::start(&format!("h2c-{level}")) else {
            return;
        };
        let mut logged = 0;
        for depth in [1, 10, 100] {
            // 2 connections x 2500 streams: nginx says GOAWAY at each one's
            // 1000th, and whatever was in flight above it is sent again.
            let r = run(&h2(&nginx.h2_url("/"))
                .io(level)
                .pipeline(depth)
                .requests(5000))
            .unwrap();
            let what = format!("{level} -p {depth}");
            assert_eq!(r.requests, 5000, "{what}: {}", brief(&r));
            assert_eq!(r.errors.total(), 0, "{what}: {:?}", r.errors);
            assert_eq!(r.requests_lost, 0, "{what}");
            accounted(&r);
            let h = r.http2.as_ref().expect("an http2 block");
            assert!(h.goaways >= 4, "{what}: {h:?}");
            assert_eq!(h.server_max_streams, Some(128), "{what}");
            assert_eq!(h.streams_peak, depth as u64, "{what}: {h:?}");
            let now = total(&nginx.logged());
            assert_eq!(now - logged, 5000, "{what}: nginx's count");
            logged = now;
            assert_eq!(r.status, BTreeMap::from([(200, 5000)]), "{what}");
        }
    }
}

#[test]
fn h2_over_tls_counts_exactly_with_a_ca_file_and_insecure() {
    let Some(nginx) = Nginx::start("h2-tls") else {
        return;
    };
    let mut logged = 0;
    for insecure in [false, true] {
        let mut cfg = h2(&nginx.h2_tls_url("/")).pipeline(10).requests(3000);
        match insecure {
            true => cfg.tls.insecure = true,
            false => cfg.tls.ca_file = Some(nginx.pki.ca_file.clone()),
        }
        let r = run(&cfg).unwrap();
        assert_eq!(r.requests, 3000, "insecure {insecure}: {}", brief(&r));
        assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
        accounted(&r);
        let tls = r.tls.as_ref().unwrap();
        assert_eq!(tls.alpn, "h2");
        assert!(r.http2.as_ref().unwrap().goaways >= 2, "{:?}", r.http2);
        let now = total(&nginx.logged());
        assert_eq!(now - logged, 3000);
        logged = now;
    }
}

#[test]
fn timed_runs_over_a_unix_socket_and_at_a_constant_rate_account_for_every_stream() {
    let Some(nginx) = Nginx::start("h2-timed") else {
        return;
    };
    let mut cfg = h2(&nginx.h2_url("/"))
        .connections(20)
        .pipeline(10)
        .duration(Duration::from_millis(800));
    cfg.unix_socket = Some(nginx.unix_socket(false).with_file_name("nginx-h2.sock"));
    let r = run(&cfg).unwrap();
    assert!(r.requests > 1000, "{}", brief(&r));
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    accounted(&r);
    let logged = total(&nginx.logged());
    // nginx logs what it answered: every completed response, and perhaps
    // some of those in flight at the end.
    assert!(
        logged >= r.requests && logged <= r.requests_sent,
        "{logged} {}",
        brief(&r)
    );

    // -R with several streams per connection: the schedule is kept, and
    // latency counts from each slot.
    let r = run(&h2(&nginx.h2_url("/"))
        .connections(10)
        .pipeline(4)
        .rate(2000.0)
        .duration(Duration::from_secs(1)))
    .unwrap();
    accounted(&r);
    let rate = r.rate.as_ref().expect("a rate block");
    assert!(
        (1800..=2200).contains(&(r.requests_sent)),
        "{} sent at -R 2000 for 1 s",
        r.requests_sent
    );
    assert!(rate.achieved > 1800.0, "{rate:?}");
    assert_eq!(r.errors.total(), 0);
}

#[test]
fn the_probe_stops_a_run_against_a_server_without_http2() {
    let Some(nginx) = Nginx::start("h2-probe") else {
        return;
    };
    // h2c against an HTTP/1.1 port: it answers the preface with HTTP/1.1.
    let out = urk(&["--http2", "-n", "10", "-c", "1", "-t", "1", &nginx.url("/")]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("does not speak HTTP/2") && err.contains("HTTP/1.1"),
        "{err}"
    );
    // h2 by ALPN against a server that only has http/1.1.
    let out = urk(&[
        "--http2",
        "-k",
        "-n",
        "10",
        "-c",
        "1",
        "-t",
        "1",
        &nginx.tls_url("/"),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("nothing was sent") || err.contains("HTTP/2"),
        "{err}"
    );
    // Nothing but the probes reached nginx: the h2c preface is logged as
    // a bad request (400), and no request was sent.
    let logged = nginx.logged();
    assert_eq!(logged.get(&200), None, "{logged:?}");
    assert!(total(&logged) <= 1, "{logged:?}");

    // Without --http2 against a port that speaks only HTTP/2: the parse
    // errors say why.
    let out = urk(&["-d", "300ms", "-c", "1", "-t", "1", &nginx.h2_url("/")]);
    let report = text(&out.stdout);
    assert!(
        report.contains("the server speaks HTTP/2 only: try --http2"),
        "{report}"
    );
}

#[test]
fn a_goaway_mid_run_sends_the_unprocessed_streams_again() {
    let server = H2Server::start(H2Config {
        goaway_after: 7,
        ..H2Config::default()
    });
    let r = run(&h2(&server.url("/")).pipeline(10).requests(500)).unwrap();
    assert_eq!(r.requests, 500, "{}", brief(&r));
    assert_eq!(r.requests_lost, 0);
    accounted(&r);
    let h = r.http2.as_ref().unwrap();
    assert!(h.goaways >= 60, "{h:?}");
    // Each GOAWAY left streams above its last one unanswered (those it
    // had read, and those still on their way): all were sent again, and
    // each is counted once in requests_sent.
    assert!(h.retried >= server.get(|c| &c.dropped), "{h:?}");
    assert_eq!(r.requests_sent, 500);
    assert_eq!(server.settled(), 500);
}

#[test]
fn refused_streams_are_retried_and_other_resets_are_counted_by_code() {
    let server = H2Server::start(H2Config {
        refuse_every: 5,
        ..H2Config::default()
    });
    let r = run(&h2(&server.url("/")).pipeline(8).requests(400)).unwrap();
    assert_eq!(r.requests, 400, "{}", brief(&r));
    accounted(&r);
    assert_eq!(r.errors.total(), 0);
    assert_eq!(
        r.http2.as_ref().unwrap().retried,
        server.get(|c| &c.refused)
    );
    assert!(server.get(|c| &c.refused) >= 80);

    let server = H2Server::start(H2Config {
        reset_every: Some((4, 0x2)),
        ..H2Config::default()
    });
    let log = request_log("resets");
    let r = run(&h2(&server.url("/"))
        .pipeline(8)
        .requests(300)
        .log(log.clone()))
    .unwrap();
    accounted(&r);
    assert_eq!(r.requests, 300);
    let resets = server.get(|c| &c.reset);
    // The log has every stream: answered, and reset with its fault.
    let by = logged_errors(&log);
    assert_eq!(by.get(&None), Some(&r.requests), "{by:?}");
    assert_eq!(by.get(&Some("reset".into())), Some(&resets), "{by:?}");
    assert!(resets >= 75, "{resets}");
    assert_eq!(r.errors.reset, resets);
    assert_eq!(r.lost_causes.reset, resets);
    assert_eq!(r.http2.as_ref().unwrap().resets.internal_error, resets);
    assert_eq!(r.requests_sent, 300 + resets);
}

#[test]
fn stalled_streams_time_out_and_are_cancelled_without_stalling_the_rest() {
    let server = H2Server::start(H2Config {
        stall_every: 10,
        ..H2Config::default()
    });
    let log = request_log("stalls");
    let r = run(&h2(&server.url("/"))
        .pipeline(10)
        .timeout(Duration::from_millis(200))
        .duration(Duration::from_secs(1))
        .log(log.clone()))
    .unwrap();
    accounted(&r);
    assert!(r.requests > 100, "{}", brief(&r));
    assert!(r.errors.timeout > 0, "{:?}", r.errors);
    let by = logged_errors(&log);
    assert_eq!(
        by.get(&Some("timeout".into())),
        Some(&r.lost_causes.timeout),
        "{by:?}"
    );
    assert_eq!(by.get(&None), Some(&r.requests), "{by:?}");
    assert_eq!(r.errors.timeout, r.lost_causes.timeout);
    assert_eq!(r.errors.total(), r.errors.timeout);
    // Every stall was either timed out or still waiting at the end.
    let stalled = server.get(|c| &c.dropped);
    assert!(
        r.errors.timeout <= stalled && stalled <= r.errors.timeout + r.requests_unfinished,
        "{stalled} {}",
        brief(&r)
    );
}

#[test]
fn a_lowered_stream_limit_mid_connection_is_obeyed() {
    let server = H2Server::start(H2Config {
        max_streams: Some(50),
        lower_after: Some((5, 2)),
        ..H2Config::default()
    });
    let r = run(&h2(&server.url("/")).pipeline(20).requests(400)).unwrap();
    assert_eq!(r.requests, 400, "{}", brief(&r));
    assert_eq!(r.errors.total(), 0);
    accounted(&r);
    let h = r.http2.as_ref().unwrap();
    assert_eq!(h.server_max_streams, Some(2), "{h:?}");
    assert!(h.streams_peak <= 20, "{h:?}");
}

#[test]
fn padding_trailers_interim_heads_and_continuation_are_read_whole() {
    let body = 50_000;
    let server = H2Server::start(H2Config {
        body,
        padding: 17,
        trailers: true,
        interim: true,
        header_bytes: 40_000,
        ..H2Config::default()
    });
    let r = run(&h2(&server.url("/")).pipeline(4).requests(200)).unwrap();
    assert_eq!(r.requests, 200, "{}", brief(&r));
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    assert_eq!(r.status, BTreeMap::from([(200, 200)]));
    // The big header is Huffman-coded ('h' takes 6 bits): 30,000 bytes.
    assert!(
        r.bytes_read > 200 * (body as u64 + 30_000),
        "{}",
        r.bytes_read
    );
    assert_eq!(server.settled(), 200);
}

#[test]
fn a_huge_header_block_and_a_server_that_closes_are_counted_not_fatal() {
    let server = H2Server::start(H2Config {
        header_bytes: 300_000,
        ..H2Config::default()
    });
    let r = run(&h2(&server.url("/")).duration(Duration::from_millis(500))).unwrap();
    accounted(&r);
    assert_eq!(r.requests, 0);
    assert!(r.errors.parse > 0, "{:?}", r.errors);

    let server = H2Server::start(H2Config {
        close_after: 3,
        ..H2Config::default()
    });
    let r = run(&h2(&server.url("/"))
        .pipeline(5)
        .duration(Duration::from_millis(500)))
    .unwrap();
    accounted(&r);
    assert!(r.requests > 10, "{}", brief(&r));
    // Its close may reset what it had just written (the client's next
    // requests were unread): never more responses than it wrote.
    assert!(r.requests <= server.settled(), "{}", brief(&r));
    assert!(
        r.errors.read + r.lost_causes.server_closed > 0,
        "{}",
        brief(&r)
    );
    assert!(r.connections_opened > 3);
}

#[test]
fn request_bodies_obey_the_servers_flow_control_windows() {
    // 100 KiB per request: more than the 65,535-byte windows the server
    // starts with, so every body waits for its WINDOW_UPDATEs.
    let server = H2Server::start(H2Config::default());
    let body = vec![b'b'; 100 * 1024];
    let r = run(&h2(&server.url("/upload"))
        .method("POST")
        .body(body.clone())
        .pipeline(4)
        .requests(100))
    .unwrap();
    assert_eq!(r.requests, 100, "{}", brief(&r));
    assert_eq!(r.errors.total(), 0);
    assert_eq!(server.get(|c| &c.body_bytes), 100 * body.len() as u64);
}

#[test]
fn the_json_report_carries_http2_and_text_has_its_line() {
    let server = H2Server::start(H2Config {
        max_streams: Some(64),
        ..H2Config::default()
    });
    let url = server.url("/");
    let args = ["--http2", "-n", "300", "-c", "2", "-t", "1", "-p", "10"];
    let out = urk(&[&args[..], &["--json", &url]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["requests"], 300);
    assert_eq!(v["http2"]["streams_peak"], 10);
    assert_eq!(v["http2"]["server_max_streams"], 64);
    schema::validate(&v);
    let out = urk(&[&args[..], &[&url]].concat());
    let report = text(&out.stdout);
    assert!(
        report.contains("HTTP/2: up to 10 streams per connection (server allows 64)"),
        "{report}"
    );
}

#[test]
fn targets_with_placeholders_and_lua_scripts_speak_http2_too() {
    let Some(nginx) = Nginx::start("h2-sources") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("urk-h2-sources-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let targets = dir.join("t.txt");
    std::fs::write(&targets, "/\n/missing?n={{seq}}\n").unwrap();
    let out = urk(&[
        "--http2",
        "-t1",
        "-c2",
        "-p",
        "8",
        "-n",
        "400",
        "--json",
        "--targets",
        targets.to_str().unwrap(),
        &nginx.h2_url("/"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"]["200"], 200, "{}", v["status"]);
    assert_eq!(v["status"]["404"], 200);
    let per: Vec<u64> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["requests"].as_u64().unwrap())
        .collect();
    assert_eq!(per, [200, 200]);
    assert_eq!(nginx.logged(), BTreeMap::from([(200, 200), (404, 200)]));

    // A dynamic script: wrk.format's headers become HPACK fields (its
    // Host becomes :authority, Connection is dropped), and response()
    // sees every status.
    let lua = dir.join("s.lua");
    std::fs::write(
        &lua,
        r#"
n = 0
seen = 0
request = function()
  n = n + 1
  local path = (n % 2 == 0) and "/" or "/missing"
  return wrk.format("GET", path, { ["X-Test"] = "1", ["Connection"] = "keep-alive" })
end
response = function(status, headers, body)
  seen = seen + 1
end
"#,
    )
    .unwrap();
    let out = urk(&[
        "--http2",
        "-t1",
        "-c1",
        "-p",
        "4",
        "-n",
        "100",
        "--json",
        "-s",
        lua.to_str().unwrap(),
        &nginx.h2_url("/"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["requests"], 100);
    assert_eq!(v["status"]["200"], 50, "{}", v["status"]);
    assert_eq!(v["status"]["404"], 50);
    let logged = nginx.logged();
    assert_eq!(logged, BTreeMap::from([(200, 250), (404, 250)]));
}

#[test]
fn a_scripts_response_hook_gets_http2_headers_and_bodies() {
    let Some(nginx) = Nginx::start("h2-hooks") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("urk-h2-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lua = dir.join("hooks.lua");
    std::fs::write(
        &lua,
        r#"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n = 0; statuses = {}; server = ""; body = "" end
request = function()
  n = n + 1
  return wrk.format(nil, (n % 2 == 0) and "/missing" or "/")
end
function response(status, headers, b)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    server = headers["server"]
    body = b
  end
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    print("200=" .. s[200])
    print("404=" .. s[404])
    print("server=" .. t:get("server"))
    print("body=" .. t:get("body"):gsub("\n", "\\n"))
  end
end
"#,
    )
    .unwrap();
    let out = urk(&[
        "-q",
        "--http2",
        "-t1",
        "-c2",
        "-p",
        "5",
        "-n",
        "40",
        "-s",
        lua.to_str().unwrap(),
        &nginx.h2_url("/"),
    ]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}{}", text(&out.stderr));
    let printed = |key: &str| {
        o.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(printed("200"), "20", "{o}");
    assert_eq!(printed("404"), "20", "{o}");
    assert!(printed("server").starts_with("nginx"), "{o}");
    assert_eq!(printed("body"), "hello world\\n", "{o}");
}

#[test]
fn debug_shows_one_http2_exchange_and_merge_adds_http2_figures() {
    let Some(nginx) = Nginx::start("h2-debug") else {
        return;
    };
    let out = urk(&["--http2", "--debug", "-H", "X-Trace: 7", &nginx.h2_url("/")]);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}{}", text(&out.stderr));
    for want in [
        "HTTP/2 with prior knowledge",
        "> :method: GET",
        "> :scheme: http",
        "> x-trace: 7",
        "< :status: 200",
        "hello world",
    ] {
        assert!(shown.contains(want), "{want} in {shown}");
    }
    assert_eq!(nginx.logged(), BTreeMap::from([(200, 1)]));

    // Two runs' reports merge into one whose HTTP/2 figures add up.
    let dir = std::env::temp_dir().join(format!("urk-h2-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    for k in 0..2 {
        let out = urk(&[
            "--http2",
            "-t1",
            "-c2",
            "-p",
            "10",
            "-n",
            "2500",
            "--json",
            &nginx.h2_url("/"),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let p = dir.join(format!("{k}.json"));
        std::fs::write(&p, &out.stdout).unwrap();
        paths.push(p.display().to_string());
    }
    let out = urk(&["merge", "--json", &paths[0], &paths[1]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema::validate(&m);
    assert_eq!(m["requests"], 5000);
    assert!(
        m["http2"]["goaways"].as_u64().unwrap() >= 4,
        "{}",
        m["http2"]
    );
    assert_eq!(m["http2"]["streams_peak"], 10);
}

/// nghttpd (nghttp2's server) started on a free port serving `dir`, with
/// `flags`; `None` (skipped) when it is not installed, unless
/// URK_REQUIRE_NGHTTPD=1.
fn nghttpd(dir: &std::path::Path, flags: &[&str]) -> Option<(std::process::Child, u16)> {
    if std::process::Command::new("nghttpd")
        .arg("--version")
        .output()
        .is_err()
    {
        assert_ne!(
            std::env::var("URK_REQUIRE_NGHTTPD").as_deref(),
            Ok("1"),
            "nghttpd is required (URK_REQUIRE_NGHTTPD=1) but not installed"
        );
        eprintln!("skipped: nghttpd is not installed (apt-get install nghttp2-server)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("nghttpd")
        .args(["--no-tls", "-d"])
        .arg(dir)
        .args(flags)
        .arg(port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nghttpd did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((child, port))
}

#[test]
fn against_nghttpd_padding_small_windows_and_trailers_are_exact() {
    let dir = std::env::temp_dir().join(format!("urk-nghttpd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = vec![b'n'; 50_000];
    std::fs::write(dir.join("f"), &file).unwrap();
    // 255 bytes of padding on every frame, 1 KiB stream windows (ours to
    // obey when sending bodies) and a trailer on every response.
    let Some((mut child, port)) = nghttpd(
        &dir,
        &["--padding=255", "--window-bits=10", "--trailer=x-done: 1"],
    ) else {
        return;
    };
    let url = format!("http://127.0.0.1:{port}/f");
    let r = run(&h2(&url).pipeline(10).requests(500)).unwrap();
    assert_eq!(r.requests, 500, "{}", brief(&r));
    assert_eq!(r.errors.total(), 0, "{}", brief(&r));
    assert_eq!(r.status, BTreeMap::from([(200, 500)]));
    assert!(r.bytes_read > 500 * file.len() as u64, "{}", r.bytes_read);
    // Request bodies larger than its 1 KiB windows wait for its
    // WINDOW_UPDATEs.
    let r = run(&h2(&url)
        .method("POST")
        .body(vec![b'p'; 20_000])
        .pipeline(4)
        .requests(100))
    .unwrap();
    assert_eq!(r.requests, 100, "{}", brief(&r));
    assert_eq!(r.errors.total(), 0, "{}", brief(&r));
    assert!(r.bytes_written > 100 * 20_000, "{}", r.bytes_written);
    let _ = child.kill();
    let _ = child.wait();
}

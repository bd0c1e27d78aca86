//! The `urk` binary: wrk's report sections, --json, and one-line errors
//! with exit status 2 for bad command lines.

mod support;

use std::process::Stdio;

use support::cli::{requests_in, text, urk};
use support::server::{ServerConfig, TestServer};

#[test]
fn bad_command_lines_fail_with_one_line_and_status_2() {
    let dir = std::env::temp_dir();
    let missing = dir.join("urk-no-such-body-file").display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["127.0.0.1:8080/"],
        vec!["https://127.0.0.1:8080/"],
        vec!["http://no-such-host.invalid/"],
        vec!["-c", "0", "http://127.0.0.1:1/"],
        vec!["-t", "5", "-c", "2", "http://127.0.0.1:1/"],
        vec!["-d", "xyz", "http://127.0.0.1:1/"],
        vec!["--body-file", &missing, "http://127.0.0.1:1/"],
        vec!["--io", "turbo", "http://127.0.0.1:1/"],
        vec!["-H", "no colon", "http://127.0.0.1:1/"],
        vec!["--bogus", "http://127.0.0.1:1/"],
        vec![],
    ];
    for args in cases {
        let out = urk(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("urk: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            out.stdout.is_empty(),
            "{args:?}: printed {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn text_report_has_wrks_sections() {
    let server = TestServer::start(ServerConfig {
        status: 404,
        ..Default::default()
    });
    let url = server.url("/x");
    let out = urk(&["-t1", "-c10", "-d5s", "-n", "500", "--latency", &url]);
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{s}{}", text(&out.stderr));
    let expected = [
        format!("Running 500 requests (within 5s) @ {url}\n"),
        "  1 threads and 10 connections\n".to_string(),
        "  Thread Stats   Avg      Stdev     Max   +/- Stdev\n".to_string(),
        "    Latency ".to_string(),
        "    Req/Sec ".to_string(),
        "  Latency Distribution\n".to_string(),
        "     50% ".to_string(),
        "     99% ".to_string(),
        "  500 requests in ".to_string(),
        "  Non-2xx or 3xx responses: 500\n".to_string(),
        "Requests/sec: ".to_string(),
        "Transfer/sec: ".to_string(),
    ];
    let mut at = 0;
    for e in &expected {
        let found = s[at..]
            .find(e.as_str())
            .unwrap_or_else(|| panic!("missing or out of order: {e:?} in\n{s}"));
        at += found + e.len();
    }
    assert!(!s.contains("Socket errors"), "{s}");
    assert_eq!(server.settled(), 500);
}

#[test]
fn json_report_has_the_documented_fields() {
    let server = TestServer::start(ServerConfig::default());
    let out = urk(&[
        "-t",
        "2",
        "-c",
        "4",
        "-n",
        "300",
        "--json",
        "--io",
        "legacy",
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON only");
    assert_eq!(v["requests"], 300);
    assert_eq!(v["threads"], 2);
    assert_eq!(v["connections"], 4);
    assert_eq!(v["status"]["200"], 300);
    assert_eq!(v["io"]["level"], "legacy");
    for k in ["connect", "read", "write", "timeout", "parse"] {
        assert_eq!(v["errors"][k], 0, "{k}");
    }
    for k in [
        "min", "mean", "stdev", "max", "p50", "p75", "p90", "p99", "p99_9", "p99_99",
    ] {
        assert!(v["latency_us"][k].is_number(), "{k}");
    }
    for k in [
        "urk_version",
        "url",
        "duration_s",
        "bytes_read",
        "bytes_written",
        "requests_per_sec",
    ] {
        assert!(!v[k].is_null(), "{k}");
    }
    assert!(v["io"]["kernel"].is_string() && v["io"]["setup_flags"].is_array());
}

#[test]
fn version_prints_and_exits_zero() {
    let out = urk(&["-v"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("urk "));
}

#[test]
fn sigint_prints_the_report_so_far() {
    let server = TestServer::start(ServerConfig::default());
    let child = support::cli::command()
        .args(["-t1", "-c4", "-d30s", &server.url("/")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    support::cli::signal(&child, nix::sys::signal::Signal::SIGINT);
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{s}");
    assert!(s.contains("Interrupted"), "{s}");
    let n = requests_in(&s);
    assert!(n > 0, "{s}");
}

#[test]
fn rate_mode_prints_spectrum_uncorrected_and_an_hdr_log() {
    let server = TestServer::start(ServerConfig::default());
    let log = std::env::temp_dir().join(format!("urk-cli-{}.hlog", std::process::id()));
    let log_s = log.display().to_string();
    let out = urk(&[
        "-t1",
        "-c4",
        "-d2s",
        "-R",
        "500",
        "--latency",
        "-U",
        "--hdr-log",
        &log_s,
        &server.url("/"),
    ]);
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{s}{}", text(&out.stderr));
    for want in [
        "  Latency Distribution\n",
        "  Detailed Percentile spectrum:\n",
        "#[Mean    =",
        "  Uncorrected Latency",
        "  Requested rate: 500.00 req/s, achieved ",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    assert!(!s.contains("closed-loop"), "{s}");
    // The log parses with HdrHistogram's own reader, one interval a second,
    // and its counts add up to the requests reported.
    let bytes = std::fs::read(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let mut decoder = hdrhistogram::serialization::Deserializer::new();
    let mut total = 0u64;
    let mut intervals = 0;
    for item in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&bytes) {
        if let hdrhistogram::serialization::interval_log::LogEntry::Interval(h) =
            item.expect("valid log line")
        {
            let raw = base64_decode(h.encoded_histogram());
            let hist: hdrhistogram::Histogram<u64> =
                decoder.deserialize(&mut raw.as_slice()).unwrap();
            total += hist.len();
            intervals += 1;
        }
    }
    assert!(intervals >= 2, "{intervals} intervals");
    let n = requests_in(&s);
    assert_eq!(total, n);
}

#[test]
fn refused_connects_say_why_in_the_text_report() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = urk(&["-t1", "-c4", "-d300ms", &url]);
    let s = text(&out.stdout);
    // Nothing completed: exit status 1, as wrk's.
    assert_eq!(out.status.code(), Some(1), "{s}{}", text(&out.stderr));
    assert_eq!(requests_in(&s), 0, "{s}");
    let counted = |prefix: &str| -> u64 {
        let line = s.lines().find(|l| l.trim_start().starts_with(prefix));
        let line = line.unwrap_or_else(|| panic!("no '{prefix}' line: {s}"));
        let rest = &line.trim_start()[prefix.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in '{line}'"))
    };
    let refused = counted("Connects refused: ");
    assert!(refused >= 4, "every connection tried at least once: {s}");
    assert_eq!(refused, counted("Socket errors: connect "), "{s}");
}

#[test]
fn closed_loop_text_says_it_hides_queueing() {
    let server = TestServer::start(ServerConfig::default());
    let out = urk(&["-t1", "-c2", "-n", "50", &server.url("/")]);
    let s = text(&out.stdout);
    assert!(s.contains("closed-loop latency hides queueing"), "{s}");
    assert!(s.contains("use -R"), "{s}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

/// A run shorter than one 100 ms Req/Sec sample reports its thread's rate
/// over its window, in the text and the JSON, not zero.
#[test]
fn a_short_run_reports_its_threads_rate_not_zero() {
    let server = TestServer::start(ServerConfig::default());
    let url = server.url("/");
    let out = urk(&["-t1", "-c10", "-n", "500", &url]);
    let s = text(&out.stdout);
    let line = s
        .lines()
        .find(|l| l.trim_start().starts_with("Req/Sec"))
        .unwrap_or_else(|| panic!("{s}"));
    let mean: f64 = line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches('k')
        .parse()
        .unwrap();
    assert!(mean > 0.0, "{s}");
    let out = urk(&["-t1", "-c10", "-n", "500", "--json", &url]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let thread = v["thread_requests_per_sec"]["mean"].as_f64().unwrap();
    let total = v["requests_per_sec"].as_f64().unwrap();
    // One thread: its rate is the run's, give or take the sampling.
    assert!(
        thread > 0.5 * total && thread < 1.5 * total,
        "{thread} vs {total}"
    );
}

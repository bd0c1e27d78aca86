//! `--find-max`: against servers whose limits are known, the search lands
//! just below them, never above, and says when the limit was urk's own.

mod support;

use std::sync::RwLock;
use std::time::Duration;

use support::cli::{text, urk};
use support::server::{ServerConfig, TestServer};

/// Whether urk was the bound is judged from its thread's CPU time: that
/// test runs alone, the others (servers with limits of their own) together.
static ALONE: RwLock<()> = RwLock::new(());

fn search(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-q", "--json"];
    all.extend_from_slice(args);
    let out = urk(&all);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{args:?}: {}",
        text(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    r["find_max"].clone()
}

#[test]
fn the_answer_is_just_below_a_known_capacity() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    // One request at a time, 2 ms each: 500/s exactly, however late the
    // host's timers fire (each ends 2 ms after the one before was due
    // to); below it nothing queues, above it the queue grows without
    // bound.
    let server = TestServer::start(ServerConfig {
        service_time: Some(Duration::from_millis(2)),
        ..Default::default()
    });
    let svg = std::env::temp_dir().join(format!("urk-find-max-{}.svg", std::process::id()));
    let f = search(&[
        "-t1",
        "-c20",
        "-d40s",
        "--step-duration",
        "2s",
        "--plot",
        svg.to_str().unwrap(),
        "--find-max",
        "p99<20ms",
        &server.url("/"),
    ]);
    let rate = f["rate"].as_f64().expect("a rate passed");
    // The answer is that capacity, as the closed-loop probe measured it
    // (CI once saw a server whose capacity sagged with its sleeps'
    // overshoot from 428/s in the probe to 353/s in the steps), or just
    // below it.
    let probe = f["probe_rps"].as_f64().unwrap();
    assert!((450.0..=500.0).contains(&rate), "found {rate}/s: {f:#}");
    assert!(
        rate >= 0.95 * probe.min(500.0),
        "found {rate}/s, probe {probe}/s: {f:#}"
    );
    // The plot: latency percentiles against offered rate, as SVG.
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(
        drawn.starts_with("<svg") && drawn.contains("Latency against offered rate"),
        "{}",
        &drawn[..200.min(drawn.len())]
    );
    let _ = std::fs::remove_file(&svg);
    assert_eq!(f["limited_by_generator"], false);
    let steps = f["steps"].as_array().unwrap();
    assert!(steps.len() >= 3, "{f:#}");
    // Every step above capacity failed on latency.
    for s in steps {
        if s["rate"].as_f64().unwrap() > 520.0 {
            assert_eq!(s["pass"], false, "{s}");
        }
    }
    // The bracket is narrow: the lowest failing step is within 10% above.
    let lowest_fail = steps
        .iter()
        .filter(|s| s["pass"] == false)
        .map(|s| s["rate"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!(lowest_fail <= rate * 1.1, "{rate} vs {lowest_fail}");
}

#[test]
fn a_first_byte_objective_is_judged_on_first_bytes() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    // The same known capacity (500/s), but every body comes 30 ms after
    // its head: no rate meets p99<20ms, while the first bytes meet it up
    // to the capacity.
    let server = TestServer::start(ServerConfig {
        service_time: Some(Duration::from_millis(2)),
        body_delay: Duration::from_millis(30),
        ..Default::default()
    });
    let f = search(&[
        "-t1",
        "-c40",
        "-d40s",
        "--step-duration",
        "2s",
        "--find-max",
        "ttfb.p99<20ms",
        &server.url("/"),
    ]);
    let rate = f["rate"].as_f64().expect("a rate passed");
    assert!((430.0..=500.0).contains(&rate), "found {rate}/s: {f:#}");
}

#[test]
fn an_errors_objective_finds_a_rate_limit() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start(ServerConfig {
        limit_rps: Some(400),
        ..Default::default()
    });
    let f = search(&[
        "-t1",
        "-c10",
        "-d45s",
        "--step-duration",
        "2s",
        "--find-max",
        "non2xx<1%",
        &server.url("/"),
    ]);
    let rate = f["rate"].as_f64().expect("a rate passed");
    assert!((360.0..=410.0).contains(&rate), "found {rate}/s: {f:#}");
}

#[test]
fn a_limit_of_urks_own_is_said_to_be_urks() {
    let _alone = ALONE.write().unwrap_or_else(|e| e.into_inner());
    // Each request costs the script ~3 ms of CPU: one thread cannot offer
    // much more than 300/s, far below what the server takes.
    let server = TestServer::start(ServerConfig::default());
    let dir = std::env::temp_dir().join(format!("urk-find-max-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let slow = dir.join("slow.lua");
    std::fs::write(
        &slow,
        "request = function()\n  local t = os.clock()\n  while os.clock() - t < 0.003 do end\n  return wrk.format()\nend\n",
    )
    .unwrap();
    let f = search(&[
        "-t1",
        "-c10",
        "-d30s",
        "--step-duration",
        "2s",
        "-s",
        slow.to_str().unwrap(),
        "--find-max",
        "p99<100ms",
        &server.url("/"),
    ]);
    assert_eq!(f["limited_by_generator"], true, "{f:#}");
    let steps = f["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["generator_bound"] == true), "{f:#}");
    // And the text says so instead of naming a server limit.
    let out = urk(&[
        "-q",
        "-t1",
        "-c10",
        "-d20s",
        "--step-duration",
        "2s",
        "-s",
        slow.to_str().unwrap(),
        "--find-max",
        "p99<100ms",
        &server.url("/"),
    ]);
    let s = text(&out.stdout);
    assert!(s.contains("urk could not go higher"), "{s}");
}

#[test]
fn bad_search_flags_are_one_line() {
    for args in [
        vec!["--find-max", "p99", "http://127.0.0.1:1/"],
        vec!["--find-max", "p99<1ms", "-R", "100", "http://127.0.0.1:1/"],
        vec!["--precision", "5%", "http://127.0.0.1:1/"],
        vec![
            "--find-max",
            "p99<1ms",
            "--precision",
            "2",
            "http://127.0.0.1:1/",
        ],
    ] {
        let out = urk(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr).lines().count(), 1, "{args:?}");
    }
}

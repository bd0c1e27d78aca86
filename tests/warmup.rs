//! `--warmup`: load before the measured window, counted apart from it,
//! exactly: the server's own count is the warm-up's plus the window's.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::cli::{text, urk};
use support::server::{ServerConfig, TestServer};

fn json(args: &[&str]) -> serde_json::Value {
    let out = urk(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn the_window_starts_after_the_warmup_and_both_are_counted() {
    let server = TestServer::start(ServerConfig::default());
    let r = json(&[
        "-t2",
        "-c4",
        "-d1s",
        "--warmup",
        "1500ms",
        "--json",
        &server.url("/"),
    ]);
    let w = &r["warmup"];
    assert_eq!(w["finished"], true, "{w}");
    assert_eq!(w["seconds"], 1.5);
    assert!(n(&w["requests"]) > 0);
    assert_eq!(n(&w["connections_opened"]), 4);
    // Nothing is lost between the two: the server's count is both.
    assert_eq!(
        n(&r["requests"]) + n(&w["requests"]),
        server.settled(),
        "{r:#}"
    );
    assert_eq!(
        n(&r["requests_sent"]),
        n(&r["requests"]) + n(&r["requests_lost"]) + n(&r["requests_unfinished"])
    );
    // The window is the second asked for, and its rate is over it alone.
    let secs = r["duration_s"].as_f64().unwrap();
    assert!((0.99..1.1).contains(&secs), "{secs}");
    let window = n(&r["requests"]) - n(&r["requests_after_stop"]);
    let rps = r["requests_per_sec"].as_f64().unwrap();
    assert!((rps - window as f64 / secs).abs() < 1.0, "{rps}");
    // The timeline keeps the warm-up's two seconds (the one it ended in
    // too), marked, and adds up to everything the server answered.
    let t = r["timeline"].as_array().unwrap();
    assert_eq!(n(&w["timeline_seconds"]), 2);
    assert!(t.len() >= 3, "{t:?}");
    for (i, e) in t.iter().enumerate() {
        assert_eq!(e["warmup"].as_bool().unwrap_or(false), i < 2, "{e}");
    }
    let in_timeline: u64 = t.iter().map(|e| n(&e["requests"])).sum();
    assert_eq!(in_timeline, server.settled());
    // Merged with another run, the warm-ups add up and their seconds
    // stay marked.
    let path = std::env::temp_dir().join(format!("urk-warmup-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(&r).unwrap()).unwrap();
    let p = path.to_str().unwrap();
    let m = json(&["merge", "--json", p, p]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(n(&m["warmup"]["requests"]), 2 * n(&w["requests"]));
    assert_eq!(n(&m["requests"]), 2 * n(&r["requests"]));
    assert_eq!(m["timeline"][1]["warmup"], true);
    assert!(!m["timeline"][2]["warmup"].as_bool().unwrap_or(false));
    // The text says so, before and after.
    let out = urk(&[
        "-t1",
        "-c2",
        "-d300ms",
        "--warmup",
        "200ms",
        &server.url("/"),
    ]);
    let s = text(&out.stdout);
    assert!(
        s.starts_with("Running 300.00ms test (after a 200.00ms warm-up) @ "),
        "{s}"
    );
    assert!(s.contains("  Warm-up before it: "), "{s}");
}

#[test]
fn a_request_count_and_a_schedule_start_with_the_window() {
    let server = TestServer::start(ServerConfig::default());
    let r = json(&[
        "-t2",
        "-c4",
        "-n",
        "300",
        "--warmup",
        "300ms",
        "--json",
        &server.url("/"),
    ]);
    assert_eq!(n(&r["requests"]), 300);
    assert_eq!(r["stopped_by"], "requests");
    assert_eq!(
        n(&r["requests"]) + n(&r["warmup"]["requests"]),
        server.settled()
    );
    // -R: the schedule runs through the warm-up at its rate; the window's
    // slots are the window's second of it.
    let before = server.settled();
    let r = json(&[
        "-t1",
        "-c4",
        "-d1s",
        "-R",
        "400",
        "--warmup",
        "1s",
        "--json",
        &server.url("/"),
    ]);
    let rate = &r["rate"];
    assert!((398..=402).contains(&n(&rate["scheduled"])), "{rate}");
    assert_eq!(n(&rate["behind"]), 0, "{rate}");
    assert_eq!(rate["kept"], true);
    assert!((395..=405).contains(&n(&r["warmup"]["requests"])), "{r:#}");
    assert_eq!(
        n(&r["requests"]) + n(&r["warmup"]["requests"]),
        server.settled() - before
    );
    // A ramp starts with the window: the warm-up holds its first rate.
    let r = json(&[
        "-t1",
        "-c4",
        "-R",
        "100..300",
        "--ramp",
        "1s",
        "--warmup",
        "1s",
        "--json",
        &server.url("/"),
    ]);
    let offered: Vec<f64> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["offered"].as_f64().unwrap())
        .collect();
    assert!((offered[0] - 100.0).abs() < 2.0, "{offered:?}");
    assert!((offered[1] - 200.0).abs() < 2.0, "{offered:?}");
}

#[test]
fn thresholds_judge_the_window_not_the_warmup() {
    // One 400 ms stall, 200 ms after the server starts: inside the
    // warm-up, so the window's worst latency is far below it.
    let server = TestServer::start(ServerConfig {
        stall: Some((Duration::from_millis(200), Duration::from_millis(400))),
        ..Default::default()
    });
    let out = urk(&[
        "-t1",
        "-c2",
        "-d500ms",
        "--warmup",
        "1500ms",
        "--fail-if",
        "max>300ms",
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Without the warm-up the stall is in the window.
    let server = TestServer::start(ServerConfig {
        stall: Some((Duration::from_millis(200), Duration::from_millis(400))),
        ..Default::default()
    });
    let out = urk(&[
        "-t1",
        "-c2",
        "-d2s",
        "--fail-if",
        "max>300ms",
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

#[test]
fn ctrl_c_within_the_warmup_reports_it_and_bad_values_are_one_line() {
    let server = TestServer::start(ServerConfig::default());
    let child = support::cli::command()
        .args(["-t1", "-c2", "-d5s", "--warmup", "10s", &server.url("/")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    support::cli::signal(&child, nix::sys::signal::Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{s}");
    assert!(s.contains("Stopped during the warm-up"), "{s}");
    assert!(s.contains("Interrupted"), "{s}");
    for bad in [
        &["--warmup", "soon", "http://127.0.0.1:1/"][..],
        &[
            "--warmup",
            "1s",
            "--find-max",
            "p99<1ms",
            "http://127.0.0.1:1/",
        ][..],
    ] {
        let out = urk(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert_eq!(
            text(&out.stderr).lines().count(),
            1,
            "{}",
            text(&out.stderr)
        );
    }
}

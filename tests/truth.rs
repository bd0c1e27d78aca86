//! Every number in the report is the one it claims to be: the window's
//! duration and rate, what the grace after it brought, why requests were
//! lost, what a request-count run says, exit statuses, the generator-bound
//! signal on tiny runs, and merges of unlike runs.

mod support;

use std::time::Duration;

use support::cli::{requests_in, text, urk};
use support::server::{ServerConfig, TestServer};

fn json(args: &[&str]) -> serde_json::Value {
    let out = urk(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_rate_is_the_windows_and_the_grace_is_counted_apart() {
    // 300 ms per response on 20 connections: all 20 are in flight when the
    // 2 s window ends, and their responses come in the grace after it.
    let server = TestServer::start(ServerConfig {
        delay: Duration::from_millis(300),
        ..Default::default()
    });
    let r = json(&["-t1", "-c20", "-d2s", "--json", &server.url("/")]);
    let duration = f(&r["duration_s"]);
    assert!((duration - 2.0).abs() < 0.005, "duration {duration}");
    assert_eq!(r["stopped_by"], "duration");
    let (all, after) = (u(&r["requests"]), u(&r["requests_after_stop"]));
    assert!(after > 0 && after <= 20, "{after} after the stop");
    assert!(
        f(&r["grace_s"]) > 0.0 && f(&r["grace_s"]) <= 1.0,
        "{}",
        r["grace_s"]
    );
    let rps = f(&r["requests_per_sec"]);
    let window_rate = (all - after) as f64 / duration;
    assert!((rps - window_rate).abs() < 1e-6, "{rps} vs {window_rate}");
    // Nothing vanishes: the server's count is the total, grace included.
    assert_eq!(server.settled(), all);
    assert_eq!(
        u(&r["requests_sent"]),
        all + u(&r["requests_lost"]) + u(&r["requests_unfinished"])
    );

    // The text report: the headline is the window's, the grace on its own line.
    let out = urk(&["-t1", "-c20", "-d2s", &server.url("/")]);
    let s = text(&out.stdout);
    let headline = s.lines().find(|l| l.contains(" requests in ")).unwrap();
    assert!(headline.contains(" requests in 2.00s,"), "{s}");
    let after_line = s.lines().find(|l| l.contains("After the stop: ")).unwrap();
    assert!(after_line.contains("not in Requests/sec"), "{s}");
    let window: u64 = headline.split_whitespace().next().unwrap().parse().unwrap();
    let rps: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((rps - window as f64 / 2.0).abs() < 0.01, "{s}");
    assert!(requests_in(&s) > window, "{s}");
}

#[test]
fn every_lost_request_has_a_cause() {
    // An HTTP/1.0 server answers one request per connection and closes:
    // with -p4 three requests are outstanding at every close.
    let server = TestServer::start(ServerConfig {
        http10: true,
        ..Default::default()
    });
    let r = json(&["-t1", "-c4", "-p4", "-n", "300", "--json", &server.url("/")]);
    assert_eq!(u(&r["requests"]), 300);
    let lost = u(&r["requests_lost"]);
    assert!(lost >= 300, "{lost} lost");
    let causes = &r["lost_causes"];
    assert_eq!(u(&causes["server_closed"]), lost, "{causes}");
    let sum: u64 = causes.as_object().unwrap().values().map(u).sum();
    assert_eq!(sum, lost, "{causes}");
    assert_eq!(
        u(&r["requests_sent"]),
        300 + lost + u(&r["requests_unfinished"])
    );
    // No error class claims them: the server closed as HTTP/1.0 allows.
    assert_eq!(r["errors"]["read"], 0);

    let out = urk(&["-t1", "-c4", "-p4", "-n", "300", &server.url("/")]);
    let s = text(&out.stdout);
    let line = s
        .lines()
        .find(|l| l.contains("Lost requests"))
        .unwrap_or_else(|| panic!("no lost line in\n{s}"));
    assert!(
        line.contains("outstanding when the server closed the connection"),
        "{line}"
    );

    // A read error loses what was outstanding under the read cause.
    let resets = TestServer::start(ServerConfig {
        delay: Duration::from_millis(50),
        killable: true,
        ..Default::default()
    });
    let child = support::cli::command()
        .args(["-t1", "-c4", "-p2", "-d2s", "--json", &resets.url("/")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    resets.kill();
    let out = child.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lost = u(&r["requests_lost"]);
    assert!(lost > 0, "{r}");
    let causes = &r["lost_causes"];
    let sum: u64 = causes.as_object().unwrap().values().map(u).sum();
    assert_eq!(sum, lost, "{causes}");
    assert!(u(&causes["read"]) > 0, "{causes}");
}

fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/")
}

#[test]
fn exit_statuses_say_how_the_run_went() {
    let server = TestServer::start(ServerConfig::default());
    // Nothing completed: 1, one line on stderr, no coordinated-omission note.
    let out = urk(&["-t1", "-c2", "-d300ms", &dead_url()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no request completed") && err.contains("refused"),
        "{err}"
    );
    let s = text(&out.stdout);
    assert!(!s.contains("coordinated omission"), "{s}");
    assert!(s.contains("No request completed."), "{s}");
    // With --json too.
    let out = urk(&["-t1", "-c2", "-d300ms", "--json", &dead_url()]);
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["requests"], 0);
    // Bad input: 2, before any load.
    let out = urk(&["-c", "0", &server.url("/")]);
    assert_eq!(out.status.code(), Some(2));
    // A broken threshold: 3.
    let out = urk(&[
        "-t1",
        "-c1",
        "-n",
        "20",
        "--fail-if",
        "p99>1us",
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // A good run: 0.
    let out = urk(&["-t1", "-c1", "-n", "20", &server.url("/")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(server.settled(), 40);
}

#[test]
fn request_count_runs_say_what_they_are() {
    let server = TestServer::start(ServerConfig::default());
    let out = urk(&["-t1", "-c2", "-n", "3000", &server.url("/")]);
    let s = text(&out.stdout);
    assert!(
        s.starts_with(&format!(
            "Running 3000 requests (within 10s) @ {}\n",
            server.url("/")
        )),
        "{s}"
    );
    assert!(!s.contains("Not reached"), "{s}");
    // A count the duration cuts short: said in the text and the JSON.
    let slow = TestServer::start(ServerConfig {
        delay: Duration::from_millis(20),
        ..Default::default()
    });
    let out = urk(&["-t1", "-c2", "-n", "10000000", "-d1s", &slow.url("/")]);
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    let line = s
        .lines()
        .find(|l| l.contains("Not reached"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        line.contains("of the 10000000 requests asked for"),
        "{line}"
    );
    let r = json(&[
        "-t1",
        "-c2",
        "-n",
        "10000000",
        "-d1s",
        "--json",
        &slow.url("/"),
    ]);
    assert_eq!(r["stopped_by"], "duration");
    assert_eq!(r["requests_asked"], 10_000_000);
    assert!(u(&r["requests"]) < 10_000_000);
    let r = json(&["-t1", "-c2", "-n", "100", "--json", &server.url("/")]);
    assert_eq!(r["stopped_by"], "requests");
    assert_eq!(r["requests"], 100);
    assert_eq!(r["requests_after_stop"], 0);
}

#[test]
fn a_tiny_run_is_not_called_generator_bound() {
    let server = TestServer::start(ServerConfig::default());
    let out = urk(&["-t1", "-c1", "-n", "5", &server.url("/")]);
    let s = text(&out.stdout);
    assert!(!s.contains("Warning: urk"), "{s}");
    let r = json(&["-t1", "-c1", "-n", "5", "--json", &server.url("/")]);
    assert_eq!(r["generator_bound"], false);
    for r in [r, json(&["-t2", "-c4", "-d1s", "--json", &server.url("/")])] {
        let busy = f(&r["generator_busy_pct"]);
        assert!((0.0..=100.0).contains(&busy), "{busy}");
        // Window CPU over threads x window can never exceed every thread,
        // give or take the thread clock's resolution: a -n 5 window of
        // 0.33 ms read 1.0-1.9 ms of thread time, before and after -R's
        // wake-up sharing (getrusage splits the thread's runtime into user
        // and system time by tick samples).
        let cpu = f(&r["generator_cpu_s"]);
        let cap = f(&r["duration_s"]) * u(&r["threads"]) as f64;
        assert!(
            cpu <= cap * 1.01 + 0.005,
            "{cpu} s of CPU in {cap} thread-seconds"
        );
    }
}

#[test]
fn merging_unlike_runs_keeps_no_rate_and_says_why() {
    let server = TestServer::start(ServerConfig::default());
    let dir = std::env::temp_dir();
    let path = |name: &str| {
        dir.join(format!("urk-truth-{name}-{}.json", std::process::id()))
            .display()
            .to_string()
    };
    let (closed, paced_a, paced_b) = (path("closed"), path("paced-a"), path("paced-b"));
    let url = server.url("/");
    // The two paced runs go at the same time (one --start-at), as runs
    // from several machines would; the closed-loop one overlaps them.
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 1.0;
    let at = format!("{at:.3}");
    let children: Vec<_> = [
        (&closed, vec!["-t1", "-c4", "-d1s"]),
        (&paced_a, vec!["-t1", "-c4", "-d1s", "-R", "300"]),
        (&paced_b, vec!["-t1", "-c4", "-d1s", "-R", "200"]),
    ]
    .into_iter()
    .map(|(file, args)| {
        let mut a = args.clone();
        a.extend(["--start-at", &at, "--json", &url]);
        let child = support::cli::command()
            .args(&a)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        (file, child)
    })
    .collect();
    for (file, child) in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        std::fs::write(file, &out.stdout).unwrap();
    }
    let out = urk(&["merge", "--json", &closed, &paced_a]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(m["rate"].is_null(), "{}", m["rate"]);
    assert!(
        text(&out.stderr).contains("differ in kind"),
        "{}",
        text(&out.stderr)
    );
    let out = urk(&["merge", &closed, &paced_a]);
    assert!(text(&out.stdout).contains("Note: the runs differ in kind"));
    // Two constant-rate runs: requested rates add, schedules add.
    let out = urk(&["merge", "--json", &paced_a, &paced_b]);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f(&m["rate"]["requested"]), 500.0);
    let read = |p: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (a, b) = (read(&paced_a), read(&paced_b));
    assert_eq!(
        u(&m["rate"]["scheduled"]),
        u(&a["rate"]["scheduled"]) + u(&b["rate"]["scheduled"])
    );
    for p in [closed, paced_a, paced_b] {
        let _ = std::fs::remove_file(p);
    }
}

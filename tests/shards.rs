//! Past one machine: a fleet of urk processes runs one load, each taking
//! its exact share (`--shard I/N`, or `--shard auto` from the job engine's
//! variables), and `urk merge` checks that the set is the whole fleet and
//! says which shard started late. `urk diff` compares two runs.

#[path = "support/schema.rs"]
mod schema;
mod support;

use std::collections::HashSet;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::cli::{command, refused, save_reports, text, urk};
use support::server::{ServerConfig, TestServer};

/// The tests that load a server with a fleet, or time its start, run one
/// at a time: a search's verdicts and a fleet's rate are the server's and
/// urk's, not another test's load beside them.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}

fn report(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema::validate(&v);
    v
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Runs `n` shards of one command at once (`--shard i/n` each) and
/// returns their reports, in order.
fn fleet(n: u32, args: &[&str]) -> Vec<serde_json::Value> {
    let children: Vec<_> = (0..n)
        .map(|i| {
            command()
                .args(["--shard", &format!("{i}/{n}")])
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a shard")
        })
        .collect();
    children
        .into_iter()
        .map(|c| report(&c.wait_with_output().unwrap()))
        .collect()
}

fn merge(extra: &[&str], files: &[String]) -> Output {
    let mut args = vec!["merge"];
    args.extend_from_slice(extra);
    args.extend(files.iter().map(String::as_str));
    urk(&args)
}

#[test]
fn a_fleet_splits_the_totals_exactly_and_its_numbers_never_repeat() {
    let _alone = alone();
    let server = TestServer::start(ServerConfig {
        record: true,
        ..Default::default()
    });
    let url = server.url("/item/{{seq}}");
    // Three shards of 7 connections and 3,001 requests, started together.
    let at = format!("{:.3}", now_s() + 1.5);
    let runs = fleet(
        3,
        &[
            "-t1",
            "-c7",
            "-n",
            "3001",
            "--json",
            "--start-at",
            &at,
            &url,
        ],
    );
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r["shard"]["index"], i);
        assert_eq!(r["shard"]["count"], 3);
        // 7 over 3: 3, 2, 2; 3,001 over 3: 1,001, 1,000, 1,000.
        assert_eq!(r["connections"], [3, 2, 2][i]);
        assert_eq!(r["requests"], [1001, 1000, 1000][i]);
        assert!(r["start_at"].as_f64().is_some());
    }
    let files = save_reports("fleet", &runs);
    let m = report(&merge(&["--json"], &files));
    assert_eq!(m["requests"], 3001);
    assert_eq!(m["connections"], 7);
    assert_eq!(m["fleet"]["count"], 3);
    assert_eq!(m["fleet"]["merged"], serde_json::json!([0, 1, 2]));
    assert!(m.get("shard").is_none());
    // The server saw every request the shards sent, each number once.
    let sent: u64 = runs
        .iter()
        .map(|r| r["requests_sent"].as_u64().unwrap())
        .sum();
    assert_eq!(server.settled(), sent);
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    let unique: HashSet<&String> = paths.iter().collect();
    assert_eq!(unique.len(), paths.len(), "a {{seq}} value came twice");
    assert_eq!(paths.len() as u64, sent);
    // The text merge names the fleet.
    let out = merge(&[], &files);
    assert!(
        text(&out.stdout).contains("3 of 3 shards"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_fleets_rate_is_the_total_asked() {
    let _alone = alone();
    let server = TestServer::start(ServerConfig::default());
    let at = format!("{:.3}", now_s() + 1.0);
    let url = server.url("/");
    let runs = fleet(
        2,
        &[
            "-t1",
            "-c4",
            "-d2s",
            "-R",
            "300",
            "--json",
            "--start-at",
            &at,
            &url,
        ],
    );
    for r in &runs {
        assert_eq!(r["rate"]["requested"], 150.0);
    }
    let files = save_reports("rate", &runs);
    let m = report(&merge(&["--json"], &files));
    assert_eq!(m["rate"]["requested"], 300.0);
    let achieved = m["requests_per_sec"].as_f64().unwrap();
    assert!(
        (achieved / 300.0 - 1.0).abs() < 0.05,
        "{achieved}/s of 300/s"
    );
}

#[test]
fn shard_auto_reads_each_job_engines_variables() {
    let server = TestServer::start(ServerConfig::default());
    let url = server.url("/");
    /// The variables set, the flags added, and the shard they make.
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
        (u64, u64),
    );
    let cases: [Case; 4] = [
        (&[("SLURM_PROCID", "1"), ("SLURM_NTASKS", "4")], &[], (1, 4)),
        (
            &[("OMPI_COMM_WORLD_RANK", "2"), ("OMPI_COMM_WORLD_SIZE", "3")],
            &[],
            (2, 3),
        ),
        (
            &[("JOB_COMPLETION_INDEX", "0")],
            &["--shard-count", "2"],
            (0, 2),
        ),
        (
            &[("NOMAD_ALLOC_INDEX", "4")],
            &["--shard-count", "5"],
            (4, 5),
        ),
    ];
    for (vars, extra, (i, n)) in cases {
        let out = command()
            .env_clear()
            .envs(vars.iter().copied())
            .args(["-t1", "-c10", "-n", "100", "--json", "--shard", "auto"])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        let r = report(&out);
        assert_eq!(
            (r["shard"]["index"].as_u64(), r["shard"]["count"].as_u64()),
            (Some(i), Some(n)),
            "{vars:?}"
        );
    }
    // None set, or an index without a count: one line, exit 2.
    for (vars, want) in [
        (&[][..], "no task index in the environment"),
        (&[("JOB_COMPLETION_INDEX", "1")][..], "how many tasks"),
    ] {
        let out = command()
            .env_clear()
            .envs(vars.iter().copied())
            .args(["-t1", "-c2", "-n", "10", "--shard", "auto", &url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(err.contains(want) && err.lines().count() == 1, "{err}");
    }
    // Bad shards and impossible splits: one line, exit 2, no load.
    for (args, want) in [
        (vec!["--shard", "3/3"], "below the count"),
        (vec!["--shard", "x"], "expected INDEX/COUNT"),
        (
            vec!["--shard", "1/2", "--shard-count", "2"],
            "--shard-count goes with --shard auto",
        ),
        (vec!["--shard", "3/4", "-c", "3"], "leave shard 3/4 none"),
        (
            vec!["--shard", "0/2", "--find-max", "p99<10ms"],
            "--find-max over shards needs --coordinator HOST:PORT",
        ),
        (
            vec!["--coordinator", "127.0.0.1:9"],
            "--coordinator is where a fleet's --find-max meets",
        ),
    ] {
        let mut a = vec!["-t1", "-n", "10"];
        a.extend(args);
        a.push(&url);
        refused(&a, want);
    }
}

#[test]
fn merge_refuses_an_incomplete_or_doubled_fleet_and_names_a_late_shard() {
    let _alone = alone();
    let server = TestServer::start(ServerConfig::default());
    let url = server.url("/");
    let at = now_s() + 1.0;
    let shard = |i: u32, delay: f64| {
        std::thread::sleep(Duration::from_secs_f64(delay));
        command()
            .args([
                "-t1",
                "-c3",
                "-d1s",
                "--json",
                "--start-at",
                &format!("{at:.3}"),
            ])
            .args(["--shard", &format!("{i}/3"), &url])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start a shard")
    };
    // Shards 0 and 1 on time; shard 2 launched 2 s after the moment, so
    // it starts at once, late.
    let on_time = [shard(0, 0.0), shard(1, 0.0)];
    let late = shard(2, 3.0);
    let mut runs: Vec<serde_json::Value> = on_time
        .into_iter()
        .map(|c| report(&c.wait_with_output().unwrap()))
        .collect();
    runs.push(report(&late.wait_with_output().unwrap()));
    let files = save_reports("late", &runs);
    let out = merge(&["--json"], &files);
    let m = report(&out);
    assert_eq!(m["fleet"]["latest"], 2);
    let late_s = m["fleet"]["start_late_max_s"].as_f64().unwrap();
    assert!(late_s > 1.5, "{late_s}");
    assert!(m["fleet"]["start_late_median_s"].as_f64().unwrap() < 0.1);
    assert!(
        text(&out.stderr).contains("shard 2/3 started"),
        "{}",
        text(&out.stderr)
    );
    // Without shard 1: refused, unless a part is asked for.
    let two = [files[0].clone(), files[2].clone()];
    let out = merge(&["--json"], &two);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("shard 1/3 is missing"),
        "{}",
        text(&out.stderr)
    );
    let m = report(&merge(&["--json", "--partial"], &two));
    assert_eq!(m["fleet"]["merged"], serde_json::json!([0, 2]));
    // Shard 0 twice: refused.
    let twice = [
        files[0].clone(),
        files[0].clone(),
        files[1].clone(),
        files[2].clone(),
    ];
    let out = merge(&[], &twice);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("shard 0/3 appears twice"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn diff_says_how_b_differs_from_a_and_gates_on_slower() {
    let fast = TestServer::start(ServerConfig::default());
    let slow = TestServer::start(ServerConfig {
        delay: Duration::from_millis(3),
        ..Default::default()
    });
    let run = |url: &str| report(&urk(&["-t1", "-c2", "-d1s", "--json", url]));
    let (a, b) = (run(&fast.url("/")), run(&slow.url("/")));
    let files = save_reports("diff", [&a, &b]);
    let (fa, fb) = (files[0].as_str(), files[1].as_str());
    // B is slower: exit 3 and a line naming what.
    let out = urk(&["diff", "--fail-if-slower", "5%", fa, fb]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains("is slower than") && err.contains("p50 +"),
        "{err}"
    );
    let table = text(&out.stdout);
    for row in ["requests/s", "p50", "p90", "p99", "p99.9", "max", "errors"] {
        assert!(table.lines().any(|l| l.starts_with(row)), "{row}: {table}");
    }
    // The other way round it is faster; without a bound nothing fails.
    assert_eq!(
        urk(&["diff", "--fail-if-slower", "5%", fb, fa])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(urk(&["diff", fa, fb]).status.code(), Some(0));
    // The JSON carries the exact figures.
    let out = urk(&["diff", "--json", fa, fb]);
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p50 = d["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "p50")
        .unwrap();
    assert_eq!(p50["a"], a["latency_us"]["p50"].as_f64().unwrap());
    assert_eq!(p50["b"], b["latency_us"]["p50"].as_f64().unwrap());
    assert_eq!(p50["beyond_noise"], true);
    // Bad input: one line, exit 2.
    for args in [
        vec!["diff", fa],
        vec!["diff", "--fail-if-slower", "lots", fa, fb],
        // 5 is not 500%.
        vec!["diff", "--fail-if-slower", "5", fa, fb],
    ] {
        refused(&args, "");
    }
}

/// The fleet as the issue runs it: three shards, each in a network
/// namespace of its own behind a veth pair, loading one nginx with one
/// `--start-at`; shard 1's clock is 3 s behind (`faketime`), so it
/// starts 3 s late and says, by its own clock, that it was on time. The
/// merged count is nginx's, and the merge finds the late shard on the
/// server's clock, which every shard read from nginx's `Date` headers.
#[test]
fn a_fleet_in_namespaces_is_counted_by_nginx_and_a_shard_whose_clock_is_off_is_caught() {
    let _alone = alone();
    let Some(nginx) = support::nginx::netns_nginx() else {
        return;
    };
    if !std::path::Path::new("/usr/bin/faketime").exists() {
        assert!(
            std::env::var("URK_REQUIRE_FAKETIME").as_deref() != Ok("1"),
            "faketime is required (URK_REQUIRE_FAKETIME=1) but not installed"
        );
        eprintln!("skipped: needs faketime (apt-get install faketime)");
        return;
    }
    let nginx = nginx.to_string();
    support::netns::in_own_netns(move || fleet_with_a_clock_off(&nginx));
}

fn fleet_with_a_clock_off(nginx: &str) {
    let fleet = support::netns::NsFleet::start(nginx, 199, 3);
    let at = format!("{}", now_s() as u64 + 2);
    let children: Vec<std::process::Child> = (0..3)
        .map(|i| {
            let mut c = fleet.exec(i);
            if i == 1 {
                c.args([
                    "env",
                    "FAKETIME_DONT_FAKE_MONOTONIC=1",
                    "faketime",
                    "-f",
                    "-3s",
                ]);
            }
            c.arg(support::cli::bin())
                .args(["-t1", "-c6", "-R300", "-d2s", "--json", "--start-at", &at])
                .args(["--shard", &format!("{i}/3"), &fleet.url(i)])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a shard")
        })
        .collect();
    let shards: Vec<serde_json::Value> = children
        .into_iter()
        .map(|c| report(&c.wait_with_output().unwrap()))
        .collect();
    // Each shard's clock against nginx's: two agree, one is 3 s behind.
    for (i, s) in shards.iter().enumerate() {
        let c = &s["server_clock"];
        let (offset, within) = (
            c["offset_s"].as_f64().unwrap(),
            c["within_s"].as_f64().unwrap(),
        );
        eprintln!("shard {i}: server clock {c}");
        let want = if i == 1 { 3.0 } else { 0.0 };
        assert!(
            (offset - want).abs() < 0.1 && within < 0.05,
            "shard {i}: server clock {c}"
        );
    }
    let files = save_reports("fleet-ns", &shards);
    let out = merge(&["--json"], &files);
    let m = report(&out);
    // nginx's own count, from its access log.
    let served = fleet.served();
    assert_eq!(m["requests"].as_u64().unwrap(), served);
    assert_eq!(
        m["requests"],
        shards
            .iter()
            .map(|s| s["requests"].as_u64().unwrap())
            .sum::<u64>()
    );
    // By their own clocks all three were on time; on the server's, shard
    // 1 started 3 s after the first.
    let f = &m["fleet"];
    eprintln!("fleet: {f}; nginx logged {served}");
    assert!(f["start_late_max_s"].as_f64().unwrap() < 0.5, "{f}");
    let spread = f["start_spread_server_s"].as_f64().unwrap();
    assert!((2.8..3.2).contains(&spread), "{f}");
    assert_eq!(f["latest_by_server"], 1);
    assert!(
        text(&out.stderr)
            .contains("on the server's clock (its Date headers), shard 1/3 started 3."),
        "{}",
        text(&out.stderr)
    );
}

/// `--find-max` over three shards: they meet at shard 0 (`--coordinator`),
/// probe together, and every step is a fleet total that each shard offers
/// its third of, judged by shard 0 on all the shards' seconds. Against a
/// server of exactly 500/s, every shard reports the same steps and the
/// same answer, and the server's count is the shards' sum.
#[test]
fn a_fleets_capacity_search_is_one_search() {
    let _alone = alone();
    let server = TestServer::start(ServerConfig {
        service_time: Some(Duration::from_millis(2)),
        ..Default::default()
    });
    let meet = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let url = server.url("/");
    let reports = fleet(
        3,
        &[
            "-t1",
            "-c21",
            "-d30s",
            "--step-duration",
            "2s",
            "--find-max",
            "p99<20ms",
            "--json",
            "--coordinator",
            &meet,
            &url,
        ],
    );
    let f: Vec<&serde_json::Value> = reports.iter().map(|r| &r["find_max"]).collect();
    let rates = |f: &serde_json::Value| -> Vec<f64> {
        f["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["rate"].as_f64().unwrap())
            .collect()
    };
    for k in 1..3 {
        assert_eq!(f[k]["rate"], f[0]["rate"], "shard {k}: {}", f[k]);
        assert_eq!(f[k]["probe_rps"], f[0]["probe_rps"]);
        assert_eq!(rates(f[k]), rates(f[0]));
        assert_eq!(f[k]["steps"], f[0]["steps"]);
    }
    let rate = f[0]["rate"].as_f64().expect("a rate passed");
    eprintln!(
        "fleet answer {rate}/s, probe {}/s, steps {:?}",
        f[0]["probe_rps"],
        rates(f[0])
    );
    assert!(
        (450.0..=500.0).contains(&rate),
        "found {rate}/s: {:#}",
        f[0]
    );
    // Each step's achieved rate is the fleet's: a third per shard would
    // have failed every step on "the schedule was not kept".
    let steps = f[0]["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["pass"] == true), "{:#}", f[0]);
    // Every shard offered a third of the load.
    let mine: Vec<u64> = reports
        .iter()
        .map(|r| r["requests"].as_u64().unwrap())
        .collect();
    let all: u64 = mine.iter().sum();
    for n in &mine {
        assert!(*n * 3 > all * 8 / 10 && *n * 3 < all * 12 / 10, "{mine:?}");
    }
    // (Responses after a window's end are in its count already.)
    assert_eq!(server.settled(), all);
}

/// A fleet's search whose shards do not all come: one line each, within
/// the search's budget, no load.
#[test]
fn a_fleets_search_without_all_its_shards_says_which() {
    let meet = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let server = TestServer::start(ServerConfig::default());
    let url = server.url("/");
    for (i, want) in [
        (0, "shard(s) 1/2 never joined"),
        (1, "the fleet's lead (shard 0) at"),
    ] {
        let shard = format!("{i}/2");
        refused(
            &[
                "-t1",
                "-c2",
                "-d2s",
                "--find-max",
                "p99<20ms",
                "--shard",
                &shard,
                "--coordinator",
                &meet,
                &url,
            ],
            want,
        );
    }
    assert_eq!(server.settled(), 0);
}

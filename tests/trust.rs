//! How far to trust a number: each percentile's confidence interval (and
//! the ones too few samples cannot bound), and Poisson arrivals, whose
//! queues even arrivals never build (M/D/1 against D/D/1).

#[path = "support/schema.rs"]
mod schema;
mod support;

use std::time::Duration;

use support::cli::{text, urk};
use support::server::{ServerConfig, TestServer};

fn json(args: &[&str]) -> serde_json::Value {
    let out = urk(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema::validate(&v);
    v
}

#[test]
fn every_percentile_says_how_sure_it_is() {
    let server = TestServer::start(ServerConfig::default());
    let url = server.url("/");
    // 2,000 responses: p99 is bounded, p99.99 cannot be.
    let v = json(&["-t1", "-c2", "-n", "2000", "--json", &url]);
    let ci = &v["latency_us"]["ci"];
    let p99 = v["latency_us"]["p99"].as_u64().unwrap();
    let [lo, hi] = [
        ci["p99"][0].as_u64().unwrap(),
        ci["p99"][1].as_u64().unwrap(),
    ];
    assert!(lo <= p99 && p99 <= hi, "{lo} <= {p99} <= {hi}");
    assert!(ci["p99_99"].is_null(), "{ci}");
    let out = urk(&["-t1", "-c2", "-n", "2000", "-L", &url]);
    let report = text(&out.stdout);
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with("99.99%"))
        .unwrap();
    assert!(line.contains("too few samples to bound"), "{report}");
    // Merging computes the intervals from the merged histogram: more
    // samples, and p99.99 still unbounded at 4,000.
    let dir = std::env::temp_dir().join(format!("urk-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("a.json");
    std::fs::write(&a, v.to_string()).unwrap();
    let m = json(&["merge", "--json", a.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(m["requests"], 4000);
    assert!(m["latency_us"]["ci"]["p99"].is_array());
}

/// Mean latency of a paced run, µs.
fn mean_at(url: &str, rate: f64, arrivals: &str) -> (f64, serde_json::Value) {
    let v = json(&[
        "-t1",
        "-c1",
        "-d3s",
        "-R",
        &format!("{rate:.0}"),
        "--arrivals",
        arrivals,
        "--seed",
        "7",
        "--json",
        url,
    ]);
    (v["latency_us"]["mean"].as_f64().unwrap(), v)
}

#[test]
fn poisson_arrivals_queue_as_m_d_1_says_and_uniform_ones_do_not() {
    // One connection to a server that takes a fixed time per request: a
    // single queue with a deterministic server.
    let server = TestServer::start(ServerConfig {
        delay: Duration::from_micros(400),
        ..Default::default()
    });
    let url = server.url("/");
    // Its service time as urk sees it (the delay, the round trip, the
    // server's wake-up), closed-loop.
    let closed = json(&["-t1", "-c1", "-d2s", "--json", &url]);
    let service = closed["latency_us"]["mean"].as_f64().unwrap();
    // Utilisation 0.5: M/D/1 waits rho*S/(2(1-rho)) = S/2 on average;
    // evenly spaced arrivals find the server free.
    let rate = 0.5 * 1e6 / service;
    let (uniform, u) = mean_at(&url, rate, "uniform");
    let (poisson, p) = mean_at(&url, rate, "poisson");
    assert_eq!(p["rate"]["arrivals"], "poisson");
    assert_eq!(u["rate"]["arrivals"], "uniform");
    assert_eq!(p["seed"], 7);
    let wait = poisson - uniform;
    eprintln!(
        "service {service:.0} us; mean at rho 0.5: uniform {uniform:.0} us, poisson {poisson:.0} us; M/D/1 wait {:.0} us",
        service / 2.0
    );
    assert!(
        wait > 0.2 * service && wait < 1.5 * service,
        "Poisson waited {wait:.0} us more than uniform; M/D/1 says {:.0} (service {service:.0} us)",
        service / 2.0
    );
    // The schedule was kept either way: sent about rate x 3 s.
    for v in [&u, &p] {
        let sent = v["requests_sent"].as_f64().unwrap();
        assert!(
            (sent / (rate * 3.0) - 1.0).abs() < 0.15,
            "{sent} at {rate:.0}/s"
        );
    }
    let out = urk(&[
        "-t1",
        "-c1",
        "-d1s",
        "-R",
        "100",
        "--arrivals",
        "poisson",
        &url,
    ]);
    assert!(text(&out.stdout).contains("(Poisson arrivals)"));
    let out = urk(&["-t1", "-c1", "-d1s", "--arrivals", "poisson", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--arrivals applies to paced runs"));
}

#[test]
fn a_paced_run_checks_itself() {
    let server = TestServer::start(ServerConfig::default());
    let url = server.url("/");
    // Slots far apart next to this machine's wake-up jitter (tens of µs):
    // the sends' gaps are the schedule's.
    let v = json(&[
        "-t1",
        "-c4",
        "-d4s",
        "-R",
        "200",
        "--arrivals",
        "poisson",
        "--seed",
        "11",
        "--json",
        &url,
    ]);
    let c = &v["rate"]["checks"];
    eprintln!("poisson at 200/s: {c}");
    assert_eq!(c["achieved_within_2pct"], true, "{c}");
    let gaps = &c["exponential_gaps"];
    assert!(gaps["n"].as_u64().unwrap() > 500, "{c}");
    // A test at 5% rejects one true null in twenty: the sends must stay
    // below the 1% critical value (1.959), whatever the machine's jitter.
    let a2 = gaps["a2"].as_f64().unwrap();
    assert!(a2 < 1.959, "the sends left as Poisson: {c}");
    // Measured, whatever it finds (this machine's noise correlates
    // neighbouring latencies).
    assert!(
        c["lag1_rank_correlation"]["n"].as_u64().unwrap() > 100,
        "{c}"
    );
    // Even arrivals are not tested against the exponential.
    let v = json(&["-t1", "-c4", "-d2s", "-R", "200", "--json", &url]);
    assert!(v["rate"]["checks"]["exponential_gaps"].is_null());
}

#[test]
fn a_starved_urk_says_its_lag_bounds_the_figures() {
    let server = TestServer::start(ServerConfig::default());
    // A CPU hog on urk's core: urk is not busy, but it sends late.
    let mut hog = std::process::Command::new("taskset")
        .args(["-c", "0", "sh", "-c", "while :; do :; done"])
        .spawn()
        .expect("start a CPU hog");
    let out = std::process::Command::new("taskset")
        .args(["-c", "0", support::cli::bin()])
        .args(["-t1", "-c4", "-d2s", "-R", "4000", &server.url("/")])
        .output()
        .expect("run urk");
    let _ = hog.kill();
    let _ = hog.wait();
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(report.contains("Warning: urk's own send lag"), "{report}");
    assert!(
        report.contains("other load on the machine starved it"),
        "{report}"
    );
}

#[test]
fn a_slow_server_is_not_blamed_on_urk() {
    // Two connections to a server that takes 2 ms: 1,000/s at most, and
    // 3,000/s asked. The sends wait for the server's responses (a long
    // send lag), but urk itself is never late once a connection is free.
    let server = TestServer::start(ServerConfig {
        delay: Duration::from_millis(2),
        ..Default::default()
    });
    let v = json(&[
        "-t1",
        "-c2",
        "-d2s",
        "-R",
        "3000",
        "--json",
        &server.url("/"),
    ]);
    let r = &v["rate"];
    assert_eq!(r["kept"], false, "{r}");
    let lag = r["send_lag_us"]["p99"].as_u64().unwrap();
    let own = r["own_lag_us"]["p99"].as_u64().unwrap();
    assert!(lag > 100_000, "the backlog's lag: {lag} us");
    assert!(own * 10 < lag, "urk's own lag {own} us of {lag} us");
    assert_eq!(r["bounded_by_urk"], false, "{r}");
}

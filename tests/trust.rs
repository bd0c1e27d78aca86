//! How far to trust a number: each percentile's confidence interval (and
//! the ones too few samples cannot bound), and Poisson arrivals, whose
//! queues even arrivals never build (M/D/1 against D/D/1).

#[path = "support/schema.rs"]
mod schema;
mod support;

use std::time::Duration;

use support::cli::{save_reports, text, urk};
use support::server::{ServerConfig, TestServer};

/// These tests time things, and two of them load urk's core with a CPU
/// hog: one at a time, so that none measures another's hog.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The calling thread (and the threads it starts) on one core until
/// dropped; nothing where the machine has no such core.
struct OnCore(Option<libc::cpu_set_t>);

impl OnCore {
    fn pin(core: usize) -> OnCore {
        // SAFETY: cpu_set_t is plain data; the calls read and write only
        // the sets passed, for the calling thread (pid 0).
        unsafe {
            let mut was: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            if libc::sched_getaffinity(0, size, &mut was) != 0 || !libc::CPU_ISSET(core, &was) {
                return OnCore(None);
            }
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(core, &mut one);
            if libc::sched_setaffinity(0, size, &one) != 0 {
                return OnCore(None);
            }
            OnCore(Some(was))
        }
    }
}

impl Drop for OnCore {
    fn drop(&mut self) {
        if let Some(was) = &self.0 {
            // SAFETY: as in `pin`.
            unsafe {
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), was);
            }
        }
    }
}

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = urk(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema::validate(&v);
    v
}

#[test]
fn every_percentile_says_how_sure_it_is() {
    let _alone = alone();
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
    let _alone = alone();
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
    let _alone = alone();
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
    let _alone = alone();
    // The server's threads on core 1, away from the hog: a starved
    // server would make the latency long and urk's lag a small share of
    // it (CI once saw no warning so).
    let server = {
        let _pinned = OnCore::pin(1);
        TestServer::start(ServerConfig::default())
    };
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
    let _alone = alone();
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

/// A run's user-space and kernel-stamped p50s and its receive lag p50, µs.
fn split(v: &serde_json::Value) -> (u64, u64, u64) {
    let k = &v["kernel_timestamps"];
    (
        v["latency_us"]["p50"].as_u64().unwrap(),
        k["latency_us"]["p50"].as_u64().unwrap(),
        k["receive_lag_us"]["p50"].as_u64().unwrap(),
    )
}

#[test]
fn kernel_timestamps_split_urks_wait_from_the_servers() {
    let _alone = alone();
    // A server with a fixed 1 ms service time, its threads on core 1
    // (they inherit this thread's CPUs).
    // SAFETY: a cpu_set_t is plain data; all-zero is the empty set, and
    // the call reads it for this thread only.
    unsafe {
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(1, &mut one);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one),
            0
        );
    }
    let server = TestServer::start(ServerConfig {
        delay: Duration::from_millis(1),
        ..Default::default()
    });
    let url = server.url("/");
    let run = |hogged: bool| {
        // urk on core 0, at the lowest priority: with a CPU hog there too
        // it gets the core for a few ms at a time, and what the kernel
        // received meanwhile waits for it.
        let mut hog = hogged.then(|| {
            std::process::Command::new("taskset")
                .args(["-c", "0", "sh", "-c", "while :; do :; done"])
                .spawn()
                .expect("start a CPU hog")
        });
        let out = std::process::Command::new("taskset")
            .args(["-c", "0", "nice", "-n", "19", support::cli::bin()])
            .args(["-t1", "-c2", "-d2s", "--kernel-timestamps", "--json", &url])
            .output()
            .expect("run urk");
        if let Some(h) = &mut hog {
            let _ = h.kill();
            let _ = h.wait();
        }
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        schema::validate(&v);
        // Every response over TCP has its stamp.
        let k = &v["kernel_timestamps"];
        assert_eq!(k["responses"], v["requests"], "{k}");
        v
    };
    let idle = run(false);
    let (user0, kernel0, lag0) = split(&idle);
    let hogged = run(true);
    let (user1, kernel1, lag1) = split(&hogged);
    eprintln!(
        "p50 user/kernel/receive lag: idle {user0}/{kernel0}/{lag0} us, hogged {user1}/{kernel1}/{lag1} us"
    );
    for (user, kernel, lag) in [(user0, kernel0, lag0), (user1, kernel1, lag1)] {
        // The server's time is in the kernel's figure, urk's wait is not.
        assert!(kernel >= 1000 && kernel <= user, "{kernel} us of {user} us");
        assert!(lag <= user - 1000, "{lag} us");
    }
    assert!(
        lag1 > lag0 + 200,
        "hogged: receive lag {lag1} us, idle {lag0} us"
    );
    assert!(
        user1 > user0 + 200,
        "hogged: p50 {user1} us, idle {user0} us"
    );
    assert!(
        kernel1.abs_diff(kernel0) * 2 < user1 - user0,
        "the kernel's p50 moved {kernel0} -> {kernel1} us, the user-space one {user0} -> {user1} us"
    );
}

#[test]
fn every_response_has_its_kernel_stamp_at_every_io_level() {
    let _alone = alone();
    // Short bodies, read whole; and 64 KiB ones, whose rest is discarded
    // unread (MSG_TRUNC): the discarding read brings the stamp too.
    for body in [12usize, 64 * 1024] {
        let server = TestServer::start(ServerConfig {
            body: vec![b'x'; body],
            ..Default::default()
        });
        let url = server.url("/");
        let mut runs = Vec::new();
        for io in ["full", "basic", "legacy", "epoll"] {
            let v = json(&[
                "-t1",
                "-c4",
                "-n",
                "2000",
                "--io",
                io,
                "--kernel-timestamps",
                "--json",
                &url,
            ]);
            let k = &v["kernel_timestamps"];
            assert_eq!(v["requests"], 2000, "{io}");
            assert_eq!(k["responses"], 2000, "{io}, {body}-byte bodies: {k}");
            let (user, kernel) = (
                v["latency_us"]["max"].as_u64().unwrap(),
                k["latency_us"]["max"].as_u64().unwrap(),
            );
            assert!(kernel <= user, "{io}: {kernel} us of {user} us");
            runs.push(v);
        }
        assert_eq!(
            server.settled(),
            8000 + runs
                .iter()
                .map(|v| v["requests_after_stop"].as_u64().unwrap())
                .sum::<u64>()
        );
        // urk merge adds them exactly.
        let files = save_reports(&format!("stamps-{body}"), &runs);
        let mut args = vec!["merge", "--json"];
        args.extend(files.iter().map(String::as_str));
        let m = json(&args);
        assert_eq!(m["kernel_timestamps"]["responses"], 8000);
    }
    // Without the flag the report has no such block; -L prints the line.
    let server = TestServer::start(ServerConfig::default());
    let v = json(&["-t1", "-c2", "-n", "200", "--json", &server.url("/")]);
    assert!(v.get("kernel_timestamps").is_none());
    let out = urk(&[
        "-t1",
        "-c2",
        "-n",
        "200",
        "-L",
        "--kernel-timestamps",
        &server.url("/"),
    ]);
    let report = text(&out.stdout);
    assert!(
        report.contains("Receive lag (kernel to urk): p50"),
        "{report}"
    );
}

#[test]
fn a_unix_socket_says_it_has_no_kernel_stamps() {
    let _alone = alone();
    let path = std::env::temp_dir().join(format!("urk-stamps-{}.sock", std::process::id()));
    let server = TestServer::start_unix(&path, ServerConfig::default());
    let sock = path.to_string_lossy().into_owned();
    let args = [
        "-t1",
        "-c2",
        "-n",
        "500",
        "--unix-socket",
        &sock,
        "--kernel-timestamps",
    ];
    let mut with_json = args.to_vec();
    with_json.extend(["--json", "http://localhost/"]);
    let v = json(&with_json);
    assert_eq!(v["requests"], 500);
    assert_eq!(v["kernel_timestamps"]["responses"], 0);
    let mut plain = args.to_vec();
    plain.push("http://localhost/");
    let out = urk(&plain);
    assert!(
        text(&out.stdout).contains("Kernel timestamps: the kernel gave none"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(server.settled(), 1000);
    let _ = std::fs::remove_file(&path);
}

//! Constant-rate mode (-R): latency from the intended send time, so a
//! stalled server shows as latency for every request the stall delayed.

mod support;

use std::sync::RwLock;
use std::time::Duration;

use support::server::{ServerConfig, TestServer};
use urk_engine::{run, Config, IoLevel};

/// The pacing test measures wake-ups to the microsecond: it runs alone,
/// the others (which only need their schedules kept) together.
static ALONE: RwLock<()> = RwLock::new(());

fn config(server: &TestServer, rate: f64) -> Config {
    Config::new(&server.url("/"))
        .unwrap()
        .threads(1)
        .connections(10)
        .rate(rate)
}

#[test]
fn fixed_service_time_is_the_corrected_median() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let delay = Duration::from_millis(10);
    let server = TestServer::start(ServerConfig {
        delay,
        ..Default::default()
    });
    for level in [IoLevel::Full, IoLevel::Legacy, IoLevel::Epoll] {
        // 500/s over 20 connections: each sends every 40 ms, served in 10 ms,
        // so nothing queues and the corrected median is the service time.
        let cfg = config(&server, 500.0)
            .connections(20)
            .duration(Duration::from_secs(2))
            .io(level);
        let r = run(&cfg).unwrap();
        let p50 = r.latency_us.p50;
        assert!((10_000..=12_000).contains(&p50), "{level}: p50 {p50} us");
        let rate = r.rate.clone().unwrap();
        assert!(rate.kept, "{level}: {rate:?}");
        assert!(
            (r.requests as f64 - 1000.0).abs() <= 20.0,
            "{level}: {} requests",
            r.requests
        );
    }
}

#[test]
fn a_stall_shows_in_corrected_latency_not_in_uncorrected() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let (rate, secs) = (1000.0, 5.0);
    let (stall_at, stall_len) = (Duration::from_secs(2), Duration::from_secs(1));
    let server = TestServer::start(ServerConfig {
        stall: Some((stall_at, stall_len)),
        ..Default::default()
    });
    let cfg = config(&server, rate).duration(Duration::from_secs_f64(secs));
    let r = run(&cfg).unwrap();
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);

    // From the schedule: the requests intended during the stall wait for its
    // end, so their corrected latencies spread evenly over (0, stall].
    let stall_s = stall_len.as_secs_f64();
    let intended_in_stall = rate * stall_s;
    let total = rate * secs;
    let share = intended_in_stall / total;
    // The corrected p99 lands inside that spread: the top 1% of all
    // requests is the top (0.01 / share) of the stalled ones.
    let expected_p99_us = stall_s * (1.0 - 0.01 / share) * 1e6;
    let corrected = r.latency_us.p99 as f64;
    eprintln!(
        "stall: corrected p90 {} p99 {} expected p99 {expected_p99_us}; uncorrected p99 {} max {}",
        r.latency_us.p90,
        r.latency_us.p99,
        r.latency_uncorrected_us.p99,
        r.latency_uncorrected_us.max
    );
    assert!(
        corrected >= 0.5 * expected_p99_us,
        "corrected p99 {corrected} us, expected about {expected_p99_us}"
    );
    // p90 too: the top 10% sits in the stalled fifth.
    let expected_p90_us = stall_s * (1.0 - 0.10 / share) * 1e6;
    assert!(
        r.latency_us.p90 as f64 >= 0.5 * expected_p90_us,
        "corrected p90 {} us",
        r.latency_us.p90
    );

    // Uncorrected: only the requests in flight when the stall began (one per
    // connection) saw it, far fewer than 1%, so its p99 stays small while
    // its max shows the stall.
    let in_flight = cfg.connections as f64;
    assert!(in_flight / total < 0.01);
    let u = &r.latency_uncorrected_us;
    assert!(
        (u.p99 as f64) < 0.1 * expected_p99_us,
        "uncorrected p99 {} us",
        u.p99
    );
    assert!(
        u.max as f64 >= 0.8 * stall_s * 1e6,
        "uncorrected max {} us",
        u.max
    );
    // And the schedule was kept overall: the backlog went out after the stall.
    let kept = r.rate.unwrap();
    assert!(kept.achieved > 0.95 * rate, "{kept:?}");
}

#[test]
fn short_runs_low_rates_and_request_counts_are_sane() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start(ServerConfig::default());
    // -R below -t and -c: one slot per second over 2 connections in 1 s.
    let r = run(&config(&server, 1.0)
        .threads(2)
        .connections(2)
        .duration(Duration::from_secs(1)))
    .unwrap();
    assert_eq!(r.requests, 1);
    assert!(r.rate.unwrap().kept);
    // -R with -n: exactly n, paced: 100 at 200/s take about half a second.
    let r = run(&config(&server, 200.0)
        .requests(100)
        .duration(Duration::from_secs(10)))
    .unwrap();
    assert_eq!(r.requests, 100);
    assert!((0.45..1.0).contains(&r.duration_s), "{}", r.duration_s);
    // A 1 s run at 2000/s: full rate from the first moment, no warm-up.
    let r = run(&config(&server, 2000.0).duration(Duration::from_secs(1))).unwrap();
    assert!((r.requests as f64 - 2000.0).abs() <= 40.0, "{}", r.requests);
}

#[test]
fn falling_behind_is_reported() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    // 5 ms per response on 2 connections caps the server at 400/s.
    let server = TestServer::start(ServerConfig {
        delay: Duration::from_millis(5),
        ..Default::default()
    });
    let r = run(&config(&server, 2000.0)
        .connections(2)
        .duration(Duration::from_secs(1)))
    .unwrap();
    let rate = r.rate.clone().unwrap();
    assert!(!rate.kept, "{rate:?}");
    assert!(rate.behind as f64 > 0.5 * rate.scheduled as f64, "{rate:?}");
    let text = r.to_text(Default::default());
    assert!(text.contains("fell behind the schedule"), "{text}");
}

#[test]
fn pacing_does_not_spin() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    // 1000/s for 2 s: the worker sleeps on the ring's timers between slots.
    let server = TestServer::start(ServerConfig::default());
    let r = run(&config(&server, 1000.0).duration(Duration::from_secs(2))).unwrap();
    let busy = r.generator_cpu_s / r.duration_s;
    assert!(busy < 0.25, "worker busy {:.0}% of the time", busy * 100.0);
}

#[test]
fn pacing_wakes_on_time_and_a_kept_schedule_is_not_behind() {
    let _alone = ALONE.write().unwrap_or_else(|e| e.into_inner());
    // On an idle server a send goes out when its slot comes: the mean lag
    // stays under 10 µs, so the corrected median is the uncorrected one,
    // not the server's time plus urk's wake-up latency. A noisy neighbour
    // can spoil one run; five tries give the machine its chances.
    let server = TestServer::start(ServerConfig::default());
    let mut seen = Vec::new();
    for _ in 0..5 {
        let r = run(&config(&server, 500.0)
            .connections(5)
            .duration(Duration::from_secs(2)))
        .unwrap();
        let rate = r.rate.clone().unwrap();
        // Every slot before the end of the window went out.
        assert!(rate.kept, "{rate:?}");
        assert_eq!(rate.behind, 0, "{rate:?}");
        assert_eq!(rate.sent, rate.scheduled, "{rate:?}");
        assert_eq!(rate.scheduled, 1000, "{rate:?}");
        let gap = r.latency_us.p50.abs_diff(r.latency_uncorrected_us.p50);
        if rate.mean_lag_us < 10.0 && gap <= 10 {
            return;
        }
        seen.push((
            rate.mean_lag_us,
            r.latency_us.p50,
            r.latency_uncorrected_us.p50,
        ));
    }
    panic!("late sends in every try (mean lag µs, p50, uncorrected p50): {seen:?}");
}

/// A linear ramp: each second's offered rate is the ramp's, and what
/// completed follows it, within 2% per second; latency still counts from
/// each request's intended send time.
#[test]
fn a_ramp_offers_and_achieves_its_rate_each_second() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start(ServerConfig::default());
    let plan = urk_engine::RatePlan::ramp(400.0, 1200.0, Duration::from_secs(4));
    let cfg = config(&server, 1.0)
        .connections(20)
        .rate_plan(plan.clone())
        .duration(Duration::from_secs(4))
        .intervals(true);
    let r = run(&cfg).unwrap();
    let rate = r.rate.clone().unwrap();
    assert_eq!(rate.plan.as_ref(), Some(&plan));
    assert_eq!(rate.behind, 0, "{rate:?}");
    // The ramp's mean over 4 s is 800/s.
    assert!((rate.requested - 800.0).abs() < 16.0, "{rate:?}");
    for (i, e) in r.timeline.iter().take(4).enumerate() {
        // The integral of the ramp over second i.
        let want = 400.0 + 200.0 * (i as f64 + 0.5);
        let offered = e.offered.unwrap();
        assert!(
            (offered - want).abs() <= 0.02 * want,
            "second {i}: offered {offered}, want {want}"
        );
        let got = e.requests as f64;
        assert!(
            (got - want).abs() <= 0.02 * want,
            "second {i}: achieved {got}, want {want}"
        );
    }
    // Stages: 300/s for 1 s, then up to 900/s over 1 s.
    let stages = urk_engine::RatePlan::stages(&[
        (300.0, Duration::from_secs(1)),
        (900.0, Duration::from_secs(1)),
    ]);
    let cfg = config(&server, 1.0)
        .connections(20)
        .rate_plan(stages)
        .duration(Duration::from_secs(2))
        .intervals(true);
    let r = run(&cfg).unwrap();
    let t: Vec<f64> = r
        .timeline
        .iter()
        .take(2)
        .map(|e| e.offered.unwrap())
        .collect();
    assert!(
        (t[0] - 300.0).abs() < 6.0 && (t[1] - 600.0).abs() < 12.0,
        "{t:?}"
    );
    let text = r.to_text(Default::default());
    assert!(
        text.contains("Offered rate: 300..300 over 1") && text.contains(", 300..900 over 1"),
        "{text}"
    );
}

/// Fast schedules share wake-ups (see the engine's `worker/pacing.rs`):
/// slots wait for the end of a window and go out together. Whatever the
/// window, no request leaves before its slot (the k-th request the server
/// reads arrives no earlier than slot k is due), every send's lateness is
/// in the send-lag histogram, and the corrected latency includes it.
#[test]
fn shared_wake_ups_never_send_early_and_account_every_lag() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start(ServerConfig {
        record: true,
        ..Default::default()
    });
    let rate = 10_000.0;
    for level in [IoLevel::Full, IoLevel::Epoll] {
        let before = server.seen().len();
        let r = run(&config(&server, rate)
            .connections(20)
            .duration(Duration::from_millis(1500))
            .io(level))
        .unwrap();
        let g = r.rate.clone().unwrap();
        let lag = g.send_lag_us;
        assert!(
            g.kept,
            "{level}: behind {} of {}, lag {lag:?}",
            g.behind, g.scheduled
        );
        assert_eq!(
            g.send_lag_histogram.len(),
            g.sent,
            "{level}: one lag per send"
        );
        assert_eq!(lag.max, g.max_lag_us, "{level}");
        assert!(
            g.window_us <= 1000,
            "{level}: the default cap: {}",
            g.window_us
        );
        // Corrected latency counts from the slot: never below the lag.
        assert!(
            r.latency_us.p99 >= lag.p50,
            "{level}: {:?} {lag:?}",
            r.latency_us
        );
        let start = std::time::UNIX_EPOCH + Duration::from_secs_f64(r.started_at);
        let mut at: Vec<Duration> = server.seen()[before..]
            .iter()
            .map(|s| s.at.duration_since(start).unwrap_or_default())
            .collect();
        at.sort_unstable();
        for (k, t) in at.iter().enumerate() {
            let due = Duration::from_secs_f64(k as f64 / rate);
            // 200 µs for the two clocks (the report's wall-clock start
            // against the server's reads).
            assert!(
                *t + Duration::from_micros(200) >= due,
                "{level}: request {k} read at {t:?}, before its slot at {due:?}"
            );
        }
    }
}

/// `pacing_window` 0: every slot gets its own wake-up, at any rate.
#[test]
fn a_zero_pacing_window_keeps_every_slot_on_its_own() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start(ServerConfig::default());
    let r = run(&config(&server, 20_000.0)
        .connections(20)
        .duration(Duration::from_secs(1))
        .pacing_window(Duration::ZERO))
    .unwrap();
    let g = r.rate.clone().unwrap();
    assert_eq!(g.window_us, 0, "{:?}", g.send_lag_us);
    assert_eq!(g.send_lag_histogram.len(), g.sent);
    let text = r.to_text(urk_engine::TextOptions {
        latency: true,
        ..Default::default()
    });
    assert!(
        text.contains("Send lag (after the slot): p50 ") && text.contains("every slot on time"),
        "{text}"
    );
}

/// Send lags of several runs add up exactly when merged, through the JSON
/// (each run's histogram spans only the lags it recorded).
#[test]
fn send_lags_merge_exactly() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start(ServerConfig::default());
    let through_json = |rate: f64| {
        let r = run(&config(&server, rate).duration(Duration::from_secs(1))).unwrap();
        serde_json::from_str::<urk_engine::Report>(&serde_json::to_string(&r).unwrap()).unwrap()
    };
    let (a, b) = (through_json(300.0), through_json(5000.0));
    let m = urk_engine::Report::merge(&[a.clone(), b.clone()]).unwrap();
    let (ra, rb, rm) = (a.rate.unwrap(), b.rate.unwrap(), m.rate.unwrap());
    assert_eq!(rm.send_lag_histogram.len(), ra.sent + rb.sent);
    assert_eq!(rm.sent, ra.sent + rb.sent);
    let top = ra.send_lag_histogram.max().max(rb.send_lag_histogram.max());
    assert_eq!(rm.send_lag_histogram.max(), top);
    assert_eq!(rm.window_us, ra.window_us.max(rb.window_us));
}

//! Phase timings: connect and time to first byte, against a server whose
//! phases are known (its head at once, its body later), in the text, the
//! JSON, thresholds and merges.

mod support;

use std::time::Duration;

use support::cli::{text, urk};
use support::server::{ServerConfig, TestServer};

fn json(args: &[&str]) -> serde_json::Value {
    let out = urk(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn decode(v: &serde_json::Value) -> hdrhistogram::Histogram<u64> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("a histogram"))
        .unwrap();
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap()
}

/// A server that sends each head at once and its body 30 ms later.
fn streaming() -> TestServer {
    TestServer::start(ServerConfig {
        body_delay: Duration::from_millis(30),
        ..Default::default()
    })
}

#[test]
fn first_byte_and_connect_split_the_latency() {
    let server = streaming();
    for extra in [
        &[][..],
        &["-R", "40"][..],
        &["--requests-per-conn", "2"][..],
        &["-R", "40", "--no-keepalive"][..],
    ] {
        let mut args = vec!["-t1", "-c2", "-n", "20", "-d5s", "--json"];
        args.extend_from_slice(extra);
        let url = server.url("/");
        args.push(&url);
        let r = json(&args);
        let p = &r["phases"];
        let ttfb = decode(&p["ttfb_histogram_v2"]);
        let latency = decode(&r["latency_histogram_v2"]);
        // One first byte per response, and each well before its last.
        assert_eq!(ttfb.len(), r["requests"].as_u64().unwrap(), "{extra:?}");
        assert!(
            p["ttfb_us"]["p99"].as_u64().unwrap() < 20_000,
            "{extra:?}: {p}"
        );
        assert!(latency.min() >= 30_000, "{extra:?}: {}", latency.min());
        assert_eq!(p["ttfb_us"]["max"].as_u64().unwrap(), ttfb.max());
        // One connect time per connection opened.
        let connects = decode(&p["connect_histogram_v2"]);
        assert_eq!(
            connects.len(),
            r["connections_opened"].as_u64().unwrap(),
            "{extra:?}"
        );
        assert!(
            connects.max() < 1_000_000,
            "a loopback connect took a second"
        );
    }
    // With --latency the text says it, a line a phase.
    let out = urk(&["-t1", "-c2", "-n", "10", "--latency", &server.url("/")]);
    let s = text(&out.stdout);
    let line = |name: &str| {
        s.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in\n{s}"))
            .to_string()
    };
    assert!(line("Connect:").ends_with("(2 connects)"), "{s}");
    assert!(line("First byte:").ends_with("(10 responses)"), "{s}");
    // Without it, the report stays wrk's.
    let out = urk(&["-t1", "-c2", "-n", "10", &server.url("/")]);
    assert!(!text(&out.stdout).contains("First byte:"));
}

#[test]
fn phase_thresholds_judge_their_own_phase() {
    let server = streaming();
    let run = |t: &str| {
        let out = urk(&["-t1", "-c2", "-n", "20", "--fail-if", t, &server.url("/")]);
        (out.status.code(), text(&out.stderr))
    };
    // A threshold that holds fails the run (exit 3). The whole response
    // takes 30 ms or more; its first byte far less.
    for (t, code) in [
        ("p50>=30ms", Some(3)),
        ("ttfb.p99>20ms", Some(0)),
        ("ttfb.p50<20ms", Some(3)),
        ("ttfb.max>=30ms", Some(0)),
        ("connect.p99>1s", Some(0)),
        ("connect.max<1s", Some(3)),
    ] {
        let (got, err) = run(t);
        assert_eq!(got, code, "{t}: {err}");
        if code == Some(3) {
            assert!(err.contains(&format!("threshold broken: {t}")), "{err}");
        }
    }
    for bad in ["ttfb.rps<5", "connect.p99", "dns.p99<1ms"] {
        let (got, err) = run(bad);
        assert_eq!(got, Some(2), "{bad}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn merge_adds_phases_exactly() {
    let server = streaming();
    let fast = TestServer::start(ServerConfig::default());
    let dir = std::env::temp_dir();
    let a_path = dir.join(format!("urk-phases-a-{}.json", std::process::id()));
    let b_path = dir.join(format!("urk-phases-b-{}.json", std::process::id()));
    let a = urk(&["-t1", "-c3", "-n", "30", "--json", &server.url("/")]);
    let b = urk(&["-t1", "-c4", "-n", "400", "--json", &fast.url("/")]);
    std::fs::write(&a_path, &a.stdout).unwrap();
    std::fs::write(&b_path, &b.stdout).unwrap();
    let m = json(&[
        "merge",
        "--json",
        a_path.to_str().unwrap(),
        b_path.to_str().unwrap(),
    ]);
    let a: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    for (phase, n) in [("ttfb", 430), ("connect", 7)] {
        let key = format!("{phase}_histogram_v2");
        let mut both = decode(&a["phases"][&key]);
        // Each run's encoding keeps only the range it needed.
        both.auto(true);
        both.add(decode(&b["phases"][&key])).unwrap();
        assert_eq!(both.len(), n, "{phase}");
        let merged = decode(&m["phases"][&key]);
        assert_eq!(merged.len(), n, "{phase}");
        for (field, q) in [("p50", 0.5), ("p99", 0.99)] {
            assert_eq!(
                m["phases"][format!("{phase}_us")][field],
                both.value_at_quantile(q),
                "{phase} {field}"
            );
        }
        assert_eq!(m["phases"][format!("{phase}_us")]["max"], both.max());
    }
    let _ = std::fs::remove_file(a_path);
    let _ = std::fs::remove_file(b_path);
}

/// Times past 2 ms are kept as they are: the histograms that grow with
/// their values once clamped every first byte, connect and send lag at
/// 2,047 µs, making a slow server look fast.
#[test]
fn long_phases_are_not_clamped() {
    let slow = TestServer::start(ServerConfig {
        delay: Duration::from_millis(6),
        ..Default::default()
    });
    let r = json(&["-t1", "-c2", "-n", "20", "--json", &slow.url("/")]);
    let ttfb = decode(&r["phases"]["ttfb_histogram_v2"]);
    assert!(
        ttfb.min() >= 6000,
        "first byte after a 6 ms wait: {}",
        ttfb.min()
    );
    assert_eq!(r["phases"]["ttfb_us"]["p50"], r["latency_us"]["p50"]);
    // One connection, a slot every 5 ms, 6 ms a response: every send is
    // later than the one before.
    let r = json(&["-t1", "-c1", "-d1s", "-R", "200", "--json", &slow.url("/")]);
    let lag = &r["rate"]["send_lag_us"];
    assert!(lag["max"].as_u64().unwrap() > 20_000, "{lag}");
    assert_eq!(r["rate"]["max_lag_us"], lag["max"]);
}

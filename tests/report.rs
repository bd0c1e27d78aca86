//! What users look at: the --json report against its schema, --plot,
//! --fail-if thresholds, `urk merge`, and live progress.

#[path = "support/schema.rs"]
mod schema;
mod support;
use schema::validate;

use std::process::{Command, Output, Stdio};

use support::cli::{text, urk};
use support::server::{ServerConfig, TestServer};

fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn json_reports_match_the_documented_schema() {
    let server = TestServer::start(ServerConfig::default());
    let closed = json(&urk(&[
        "-t2",
        "-c4",
        "-d1500ms",
        "--json",
        &server.url("/"),
    ]));
    validate(&closed);
    assert!(closed["rate"].is_null());
    assert!(closed["timeline"].as_array().unwrap().len() >= 2);
    let paced = json(&urk(&[
        "-t1",
        "-c4",
        "-d1s",
        "-R",
        "300",
        "--json",
        &server.url("/"),
    ]));
    validate(&paced);
    assert_eq!(paced["rate"]["requested"], 300.0);
    let warmed = json(&urk(&[
        "-t1",
        "-c2",
        "-d500ms",
        "--warmup",
        "1s",
        "--json",
        &server.url("/"),
    ]));
    validate(&warmed);
    assert_eq!(warmed["warmup"]["finished"], true);
    assert_eq!(warmed["timeline"][0]["warmup"], true);
    // A broken document is caught: the schema really checks.
    let mut broken = closed.clone();
    broken["errors"]["read"] = serde_json::json!(-1);
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../docs/report.schema.json")).unwrap();
    assert!(!jsonschema::is_valid(&schema, &broken));
}

#[test]
fn plot_writes_a_well_formed_svg() {
    let server = TestServer::start(ServerConfig::default());
    let path = std::env::temp_dir().join(format!("urk-plot-{}.svg", std::process::id()));
    let p = path.display().to_string();
    let out = urk(&[
        "-t1",
        "-c4",
        "-d2s",
        "-R",
        "400",
        "--plot",
        &p,
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let lines = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .count();
    assert!(
        lines >= 3,
        "corrected, uncorrected and req/s lines: {lines}"
    );
    assert!(svg.contains("Latency by percentile") && svg.contains("Requests per second"));
}

/// Runs with one threshold; returns the exit status and stderr.
fn with_threshold(url: &str, extra: &[&str], t: &str) -> (Option<i32>, String) {
    let mut args = vec!["-t1", "-c4", "-n", "300", "--fail-if", t];
    args.extend_from_slice(if extra.is_empty() {
        &["-d", "3s"]
    } else {
        extra
    });
    args.push(url);
    let out = urk(&args);
    (out.status.code(), text(&out.stderr))
}

#[test]
fn every_threshold_kind_passes_and_fails() {
    let ok = TestServer::start(ServerConfig::default());
    let failing = TestServer::start(ServerConfig {
        status: 500,
        ..Default::default()
    });
    let dead = format!(
        "http://127.0.0.1:{}/",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let (ok_url, failing_url) = (ok.url("/"), failing.url("/"));
    let cases: Vec<(&str, &str, &str, &[&str])> = vec![
        // (url, passes, fails, extra args)
        (&ok_url, "p99>1h", "p99>1us", &[]),
        (&ok_url, "p50>=10s", "p50>0ms", &[]),
        (&ok_url, "mean>1h", "mean>=1us", &[]),
        (&ok_url, "max>1h", "max>0", &[]),
        (&ok_url, "rps<1", "rps<1000000000", &[]),
        (&ok_url, "non2xx>0", "non2xx<1", &[]),
        (&failing_url, "non2xx>300", "non2xx>0", &[]),
        (&ok_url, "errors>0", "errors<1", &[]),
    ];
    for (url, pass, fail, extra) in cases {
        let (code, err) = with_threshold(url, extra, pass);
        assert_eq!(code, Some(0), "{pass} should pass: {err}");
        let (code, err) = with_threshold(url, extra, fail);
        assert_eq!(code, Some(3), "{fail} should fail: {err}");
        assert_eq!(
            err.lines()
                .filter(|l| l.contains("threshold broken"))
                .count(),
            1,
            "{err}"
        );
        assert!(err.contains(fail), "{err}");
    }
    // Against a dead target nothing completes: exit status 1, whatever the
    // thresholds say (a p99 of no samples would pass anything).
    for t in ["errors>100000", "p99<1h"] {
        let (code, err) = with_threshold(&dead, &["-d", "500ms"], t);
        assert_eq!(code, Some(1), "{t}: {err}");
        assert!(err.contains("no request completed"), "{err}");
    }
    // Two broken thresholds: two lines.
    let out = urk(&[
        "-t1",
        "-c2",
        "-n",
        "50",
        "--fail-if",
        "p99>1us",
        "--fail-if",
        "rps<1000000000",
        &ok.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stderr).lines().count(),
        2,
        "{}",
        text(&out.stderr)
    );
    // A malformed expression is refused before any load.
    let before = ok.settled();
    for bad in ["p99", "p99>>1ms", "latency>1ms", "rps<lots"] {
        let out = urk(&["-n", "10", "--fail-if", bad, &ok.url("/")]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert_eq!(text(&out.stderr).lines().count(), 1);
    }
    assert_eq!(ok.settled(), before);
}

fn decode(v: &serde_json::Value) -> hdrhistogram::Histogram<u64> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap();
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap()
}

#[test]
fn merging_two_runs_is_exact() {
    let fast = TestServer::start(ServerConfig::default());
    let slow = TestServer::start(ServerConfig {
        delay: std::time::Duration::from_millis(2),
        ..Default::default()
    });
    let dir = std::env::temp_dir();
    let a_path = dir.join(format!("urk-merge-a-{}.json", std::process::id()));
    let b_path = dir.join(format!("urk-merge-b-{}.json", std::process::id()));
    let a = urk(&["-t1", "-c4", "-n", "2000", "--json", &fast.url("/")]);
    let b = urk(&["-t2", "-c4", "-n", "500", "--json", &slow.url("/")]);
    std::fs::write(&a_path, &a.stdout).unwrap();
    std::fs::write(&b_path, &b.stdout).unwrap();
    let (a, b) = (json(&a), json(&b));
    let merged = json(&urk(&[
        "merge",
        "--json",
        &a_path.display().to_string(),
        &b_path.display().to_string(),
    ]));
    validate(&merged);
    assert_eq!(merged["requests"], 2500);
    assert_eq!(merged["status"]["200"], 2500);
    assert_eq!(merged["threads"], 3);
    assert_eq!(merged["connections"], 8);
    // One histogram fed both runs' samples gives the same percentiles.
    let mut both = decode(&a["latency_histogram_v2"]);
    both.add(decode(&b["latency_histogram_v2"])).unwrap();
    assert_eq!(both.len(), 2500);
    for (field, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99_9", 0.999)] {
        assert_eq!(
            merged["latency_us"][field],
            both.value_at_quantile(q),
            "{field}"
        );
    }
    assert_eq!(merged["latency_us"]["max"], both.max());
    // The slow run's 2 ms floor shows in the merged tail, not averaged away.
    assert!(merged["latency_us"]["p90"].as_u64().unwrap() >= 2000);
    // Text output works too.
    let t = urk(&[
        "merge",
        "-L",
        &a_path.display().to_string(),
        &b_path.display().to_string(),
    ]);
    let s = text(&t.stdout);
    assert!(
        s.starts_with("Merged 2 runs @ ") && s.contains("  2500 requests in "),
        "{s}"
    );
    let bad = urk(&["merge", "/nonexistent.json"]);
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_file(a_path);
    let _ = std::fs::remove_file(b_path);
}

#[test]
fn progress_shows_on_a_terminal_and_not_when_piped() {
    let server = TestServer::start(ServerConfig::default());
    let url = server.url("/");
    // Piped: nothing on stderr.
    let out = urk(&["-t1", "-c2", "-d1s", &url]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    // Under a pseudo-terminal (util-linux `script`): live req/s and errors.
    if Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("skipped: no `script` for a pseudo-terminal");
        return;
    }
    let cmd = format!("{} -t1 -c2 -d1500ms {url}", support::cli::bin());
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let s = text(&out.stdout);
    assert!(
        s.contains("req/s") && s.contains("errors") && s.contains("left"),
        "{s}"
    );
    // --quiet turns it off even on a terminal.
    let cmd = format!("{} -q -t1 -c2 -d700ms {url}", support::cli::bin());
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    assert!(
        !text(&out.stdout).contains(" left,"),
        "{}",
        text(&out.stdout)
    );
}

/// `--start-at`: connections open first, the load waits for the moment,
/// and the window (and timeline) start there; merges line runs up by it.
#[test]
fn start_at_holds_the_load_and_merge_lines_runs_up_by_it() {
    let server = TestServer::start(ServerConfig::default());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let at = now + 1.5;
    let began = std::time::Instant::now();
    let a = json(&urk(&[
        "-q",
        "--json",
        "-t1",
        "-c4",
        "-d1s",
        "--start-at",
        &format!("{at:.3}"),
        &server.url("/"),
    ]));
    validate(&a);
    assert!(
        began.elapsed().as_secs_f64() >= 2.4,
        "held, then loaded 1 s"
    );
    let started = a["started_at"].as_f64().unwrap();
    assert!(
        (started - at).abs() < 0.05,
        "window starts at the moment: {started} vs {at}"
    );
    // The hold is not in the window, its rate or its timeline.
    let d = a["duration_s"].as_f64().unwrap();
    assert!((d - 1.0).abs() < 0.05, "{d}");
    assert!(a["timeline"][0]["requests"].as_u64().unwrap() > 0);
    // A second run 3 s later: its timeline lands 3 s on in the merge, and
    // the merge says the two did not overlap.
    let b = json(&urk(&[
        "-q",
        "--json",
        "-t1",
        "-c4",
        "-d1s",
        &server.url("/"),
    ]));
    let b_start = b["started_at"].as_f64().unwrap();
    let dir = std::env::temp_dir();
    let paths: Vec<_> = [("a", &a), ("b", &b)]
        .iter()
        .map(|(n, r)| {
            let p = dir.join(format!("urk-start-at-{n}-{}.json", std::process::id()));
            std::fs::write(&p, r.to_string()).unwrap();
            p
        })
        .collect();
    let out = urk(&[
        "merge",
        "--json",
        paths[0].to_str().unwrap(),
        paths[1].to_str().unwrap(),
    ]);
    let m = json(&out);
    assert!(
        text(&out.stderr).contains("did not all overlap"),
        "{}",
        text(&out.stderr)
    );
    let shift = (b_start - started).round() as usize;
    let timeline = m["timeline"].as_array().unwrap();
    assert!(timeline.len() > shift, "{} <= {shift}", timeline.len());
    // b's first second lands at `shift` (a's last, grace-time responses
    // may share it); nothing is lost or counted twice.
    let reqs = |t: &serde_json::Value| t["requests"].as_u64().unwrap();
    assert!(reqs(&timeline[shift]) >= reqs(&b["timeline"][0]));
    let total =
        |r: &serde_json::Value| -> u64 { r["timeline"].as_array().unwrap().iter().map(reqs).sum() };
    assert_eq!(total(&m), total(&a) + total(&b));
    assert_eq!(m["started_at"], a["started_at"]);
    let out = urk(&["--start-at", "soon", &server.url("/")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("RFC 3339"));
}

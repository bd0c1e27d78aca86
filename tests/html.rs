//! The HTML report as a person sees it: headless Chromium (Debian's) opens
//! the file with the network off, and the test reads back what it drew:
//! no console errors, every chart's canvas inked, the headline's numbers
//! equal to the JSON's. A screenshot is kept in target/test-artifacts.
//! Without Chromium the browser half is skipped, unless
//! URK_REQUIRE_CHROMIUM=1 (CI sets it).

#[path = "support/schema.rs"]
mod schema;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cli::{text, urk};
use support::server::{ServerConfig, TestServer};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("urk-html-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert_ne!(
            std::env::var("URK_REQUIRE_CHROMIUM").as_deref(),
            Ok("1"),
            "chromium is required (URK_REQUIRE_CHROMIUM=1) but not installed"
        );
        eprintln!(
            "skipped the browser checks: chromium is not installed (apt-get install chromium)"
        );
    }
    found
}

/// The page as Chromium left it after running its scripts, and what it
/// logged to the console; a screenshot goes to target/test-artifacts.
fn open_in_browser(bin: &str, page: &Path, shot: &str) -> (String, String) {
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-extensions",
        "--no-first-run",
        // Nothing may be fetched: every request would go to a dead proxy.
        "--proxy-server=127.0.0.1:9",
        "--virtual-time-budget=5000",
    ];
    let url = format!("file://{}", page.display());
    let out = Command::new(bin)
        .args(common)
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom", &url])
        .output()
        .expect("run chromium");
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let _ = Command::new(bin)
        .args(common)
        .args(["--window-size=1200,2400"])
        .arg(format!("--screenshot={}", artifacts.join(shot).display()))
        .arg(&url)
        .output();
    (text(&out.stdout), text(&out.stderr))
}

/// The `data-value` of the headline card `key` of run `run`.
fn card(dom: &str, run: usize, key: &str) -> f64 {
    let needle = format!("data-run=\"{run}\" data-key=\"{key}\" data-value=\"");
    let at = dom
        .find(&needle)
        .unwrap_or_else(|| panic!("no card {key} for run {run}"))
        + needle.len();
    dom[at..dom[at..].find('"').unwrap() + at].parse().unwrap()
}

fn body_attr(dom: &str, name: &str) -> String {
    let needle = format!("{name}=\"");
    let at = dom
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} in the page"))
        + needle.len();
    dom[at..dom[at..].find('"').unwrap() + at].to_string()
}

/// No console message at all: the page logs only on failure.
fn quiet(console: &str) {
    let logged: Vec<&str> = console.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(logged.is_empty(), "{logged:#?}");
}

#[test]
fn a_runs_html_report_draws_every_chart_and_its_numbers_are_the_jsons() {
    let server = TestServer::start(ServerConfig::default());
    let dir = scratch("run");
    let page = dir.join("run.html");
    let out = urk(&[
        "-t1",
        "-c4",
        "-d1s",
        "--json",
        "--html",
        page.to_str().unwrap(),
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema::validate(&json);
    assert!(json["command"].as_str().unwrap().contains("--html"));
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: no script, style or image from anywhere else.
    for fetch in ["src=\"http", "href=\"http", "src=\"//", "@import"] {
        assert!(!html.contains(fetch), "{fetch}");
    }
    assert!(html.contains(&server.url("/")));
    let Some(bin) = chromium() else { return };
    let (dom, console) = open_in_browser(bin, &page, "html-run.png");
    quiet(&console);
    assert_eq!(
        body_attr(&dom, "data-charts"),
        "5",
        "rps, latency, errors, connections, spectrum"
    );
    assert_eq!(body_attr(&dom, "data-blank-charts"), "0");
    assert_eq!(
        card(&dom, 0, "requests"),
        json["requests"].as_f64().unwrap()
    );
    let rps = json["requests_per_sec"].as_f64().unwrap();
    assert!((card(&dom, 0, "requests_per_sec") - rps).abs() < 1e-6 * rps.max(1.0));
    for (key, field) in [("p50_ms", "p50"), ("p99_ms", "p99"), ("max_ms", "max")] {
        let us = json["latency_us"][field].as_f64().unwrap();
        assert!((card(&dom, 0, key) - us / 1000.0).abs() < 1e-9, "{key}");
    }
    assert_eq!(card(&dom, 0, "errors"), 0.0);
    // The text report is there whole.
    assert!(dom.contains("requests in"), "the text report");
}

#[test]
fn saved_reports_overlay_and_bad_ones_get_one_line() {
    let server = TestServer::start(ServerConfig::default());
    let dir = scratch("overlay");
    let mut files = Vec::new();
    let mut jsons = Vec::new();
    for (k, extra) in [[].as_slice(), ["-R", "2000"].as_slice()]
        .into_iter()
        .enumerate()
    {
        let mut args = vec!["-t1", "-c4", "-d1s", "--json"];
        args.extend_from_slice(extra);
        let url = server.url("/");
        args.push(&url);
        let out = urk(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let f = dir.join(format!("{k}.json"));
        std::fs::write(&f, &out.stdout).unwrap();
        jsons.push(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap());
        files.push(f.display().to_string());
    }
    let page = dir.join("overlay.html");
    let out = urk(&[
        "report",
        "--html",
        page.to_str().unwrap(),
        &files[0],
        &files[1],
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Not a report: one line, exit 2, no page.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"requests\": \"many\"}").unwrap();
    let none = dir.join("none.html");
    let out = urk(&[
        "report",
        "--html",
        none.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim().lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("is not an urk --json report"));
    assert!(!none.exists());
    let out = urk(&[
        "report",
        "--html",
        none.to_str().unwrap(),
        "/nonexistent.json",
    ]);
    assert_eq!(out.status.code(), Some(2));

    let Some(bin) = chromium() else { return };
    let (dom, console) = open_in_browser(bin, &page, "html-overlay.png");
    quiet(&console);
    assert_eq!(body_attr(&dom, "data-blank-charts"), "0");
    assert_eq!(body_attr(&dom, "data-charts"), "5");
    for (k, j) in jsons.iter().enumerate() {
        assert_eq!(card(&dom, k, "requests"), j["requests"].as_f64().unwrap());
    }
    // The paced run's offered rate is on the page, and its uncorrected
    // latency over time beside the corrected.
    assert_eq!(card(&dom, 1, "rate_requested"), 2000.0);
    assert!(
        dom.contains("p99 uncorrected ms (2)"),
        "the uncorrected series"
    );
    assert!(jsons[1]["timeline"][0]["uncorrected_histogram_v2"].is_string());
    assert!(jsons[0]["timeline"][0]["uncorrected_histogram_v2"].is_null());
}

#[test]
fn a_capacity_search_gets_its_latency_against_rate_chart() {
    let server = TestServer::start(ServerConfig::default());
    let dir = scratch("search");
    let page = dir.join("search.html");
    let out = urk(&[
        "-t1",
        "-c4",
        "-d6s",
        "--find-max",
        "p99<50ms",
        "--step-duration",
        "1s",
        "--html",
        page.to_str().unwrap(),
        &server.url("/"),
    ]);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        text(&out.stderr)
    );
    let Some(bin) = chromium() else { return };
    let (dom, console) = open_in_browser(bin, &page, "html-search.png");
    quiet(&console);
    assert_eq!(
        body_attr(&dom, "data-charts"),
        "6",
        "the search's chart too"
    );
    assert_eq!(body_attr(&dom, "data-blank-charts"), "0");
    assert!(dom.contains("Capacity search"));
}

//! `--metrics`: Debian's Prometheus scrapes three shards of one load, and
//! the fleet's figures from PromQL are the merged report's: the request
//! total exactly, and the p99 of the summed native histograms within one
//! of their buckets. Skipped without Prometheus unless
//! URK_REQUIRE_PROMETHEUS=1.

#[path = "support/schema.rs"]
mod schema;
mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::cli::{command, save_reports, text, urk};
use support::server::{ServerConfig, TestServer};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Prometheus scraping `targets` every second, with native histograms.
    fn start(targets: &[String]) -> Option<Prometheus> {
        if Command::new("prometheus")
            .arg("--version")
            .output()
            .is_err()
        {
            if std::env::var("URK_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
                panic!("prometheus is required (URK_REQUIRE_PROMETHEUS=1) but not installed");
            }
            eprintln!("skipped: prometheus is not installed (apt-get install prometheus)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("urk-prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let conf = dir.join("prometheus.yml");
        std::fs::write(
            &conf,
            format!(
                "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: urk\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=native-histograms")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while p.get("/-/ready").is_none() {
            assert!(Instant::now() < deadline, "prometheus did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(p)
    }

    /// A GET of `path` on its HTTP API, the body if 200.
    fn get(&self, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let (head, body) = out.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.0 200").then(|| body.to_string())
    }

    /// A range query's values by time (the first series), over the 30 s
    /// up to `end` in half-second steps: queries with one `end` share
    /// their moments.
    fn range(&self, query: &str, end: f64) -> BTreeMap<i64, f64> {
        let secs = 30.0;
        let enc: String = query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let body = self
            .get(&format!(
                "/api/v1/query_range?query={enc}&start={:.3}&end={end:.3}&step=0.5",
                end - secs
            ))
            .expect("a range query");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut out = BTreeMap::new();
        if let Some(series) = v["data"]["result"].as_array().and_then(|r| r.first()) {
            for pair in series["values"].as_array().unwrap() {
                let t = (pair[0].as_f64().unwrap() * 10.0) as i64;
                out.insert(t, pair[1].as_str().unwrap().parse::<f64>().unwrap());
            }
        }
        out
    }
}

/// Three shards of one load, each scraped by Prometheus; with root, each
/// shard in a network namespace of its own behind a veth pair, loading
/// one nginx whose access log counts what they sent.
#[test]
fn a_fleets_percentiles_from_prometheus_are_the_merged_ones() {
    match support::nginx::netns_nginx() {
        Some(nginx) => {
            let nginx = nginx.to_string();
            support::netns::in_own_netns(move || fleet_scraped(Some(&nginx)));
        }
        None => fleet_scraped(None),
    }
}

fn fleet_scraped(nginx: Option<&str>) {
    let fleet = nginx.map(|n| support::netns::NsFleet::start(n, 198, 3));
    // Where each shard serves its metrics, and the command it runs in.
    let ports = [free_port(), free_port(), free_port()];
    let targets: Vec<String> = (0..3)
        .map(|i| match &fleet {
            Some(f) => format!("{}:{}", f.addr(i), ports[i]),
            None => format!("127.0.0.1:{}", ports[i]),
        })
        .collect();
    let Some(prom) = Prometheus::start(&targets) else {
        return;
    };
    let server = fleet
        .is_none()
        .then(|| TestServer::start(ServerConfig::default()));
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3;
    let shards: Vec<Child> = (0..3)
        .map(|i| {
            let (mut c, url) = match (&fleet, &server) {
                (Some(f), _) => {
                    let mut c = f.exec(i);
                    c.arg(support::cli::bin());
                    (c, f.url(i))
                }
                (None, Some(s)) => (command(), s.url("/")),
                (None, None) => unreachable!("a server or a fleet"),
            };
            c.args([
                "-t1",
                "-c6",
                "-d3s",
                // A fleet total of 1,500/s: 500 each, so that the
                // uncorrected latency is exported too.
                "-R1500",
                "--json",
                "--start-at",
                &at.to_string(),
            ])
            .args(["--shard", &format!("{i}/3")])
            .args(["--metrics", &targets[i]])
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a shard")
        })
        .collect();
    let reports: Vec<serde_json::Value> = shards
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            assert!(text(&out.stderr).contains("urk: metrics at http://"));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            schema::validate(&v);
            v
        })
        .collect();
    let files = save_reports("metrics", &reports);
    let mut args = vec!["merge", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = urk(&args);
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let requests = merged["requests"].as_f64().unwrap();
    // While all three were scraped: the fleet's totals. The last such
    // scrape came after each shard's last second (they serve 3 s more).
    let all3 = "and on() count(urk_requests_total) == 3";
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let totals = prom.range(&format!("sum(urk_requests_total) {all3}"), end);
    let (&when, &total) = totals
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("Prometheus scraped all three shards");
    assert_eq!(total, requests, "the fleet's request total");
    if let Some(f) = &fleet {
        assert_eq!(f.served() as f64, requests, "nginx's count");
    }
    for direction in ["read", "written"] {
        let bytes = prom.range(
            &format!("sum(urk_bytes_total{{direction=\"{direction}\"}}) {all3}"),
            end,
        )[&when];
        assert_eq!(
            bytes,
            merged[format!("bytes_{direction}")].as_f64().unwrap(),
            "bytes {direction}"
        );
    }
    // Native buckets of schema 3 are 2^(1/8) wide: about 9%.
    let bucket = 2f64.powf(1.0 / 8.0);
    for (metric, figure) in [
        ("urk_latency_seconds", &merged["latency_us"]),
        (
            "urk_latency_uncorrected_seconds",
            &merged["latency_uncorrected_us"],
        ),
        ("urk_ttfb_seconds", &merged["phases"]["ttfb_us"]),
        ("urk_connect_seconds", &merged["phases"]["connect_us"]),
    ] {
        let sum = format!("sum({metric}) {all3}");
        let p99s = prom.range(&format!("histogram_quantile(0.99, {sum})"), end);
        let p99 = p99s.get(&when).copied().unwrap_or(f64::NAN) * 1e6;
        let want = figure["p99"].as_f64().unwrap();
        eprintln!("{metric}: p99 {p99:.1} us from Prometheus, {want} us merged");
        assert!(
            p99 <= want * bucket * 1.01 && p99 >= want / bucket / 1.01,
            "{metric}: fleet p99 from Prometheus {p99:.0} us, merged {want} us"
        );
        let count = prom.range(&format!("histogram_count({sum})"), end)[&when];
        let want = if metric == "urk_connect_seconds" {
            merged["connections_opened"].as_f64().unwrap()
        } else {
            requests
        };
        assert_eq!(count, want, "{metric}: observations");
    }
}

#[test]
fn a_bad_metrics_address_is_one_line() {
    let server = TestServer::start(ServerConfig::default());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for bad in [addr.as_str(), "nowhere"] {
        let out = urk(&["-t1", "-c1", "-d1s", "--metrics", bad, &server.url("/")]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("urk: cannot serve --metrics on") && err.lines().count() == 1,
            "{err}"
        );
    }
}

/// `--find-max` serves its steps' figures while it searches: the endpoint
/// answers with every histogram and the offered rate of the step under
/// way (Prometheus's protobuf names each metric in plain bytes).
#[test]
fn a_capacity_search_serves_its_metrics() {
    let server = TestServer::start(ServerConfig::default());
    let port = free_port();
    let child = command()
        .args(["-t1", "-c4", "-d5s", "--step-duration", "2s"])
        .args(["--find-max", "p99<1s", "--json"])
        .args(["--metrics", &format!("127.0.0.1:{port}")])
        .arg(server.url("/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start urk");
    // Into the steps (the probe takes the first second).
    std::thread::sleep(Duration::from_millis(3000));
    let body = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the endpoint");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut b = Vec::new();
        let _ = s.read_to_end(&mut b);
        b
    };
    let out = child.wait_with_output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        text(&out.stderr)
    );
    assert!(
        body.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&body[..body.len().min(200)])
    );
    let has = |name: &str| body.windows(name.len()).any(|w| w == name.as_bytes());
    for name in [
        "urk_requests",
        "urk_latency_seconds",
        "urk_latency_uncorrected_seconds",
        "urk_ttfb_seconds",
        "urk_connect_seconds",
        "urk_offered_rate",
    ] {
        assert!(has(name), "{name} missing");
    }
}

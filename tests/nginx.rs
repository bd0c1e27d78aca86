//! The real-world path: urk against nginx from Debian, counted against
//! nginx's own access log. Skipped (with a message) when nginx is not
//! installed, unless URK_REQUIRE_NGINX=1, which CI sets.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uring_engine::{run, Config, IoLevel};

struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Nginx {
    /// Starts nginx on a free port, or returns None when it is not installed
    /// (and not required).
    fn start(name: &str) -> Option<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        let Some(bin) = bin else {
            if std::env::var("URK_REQUIRE_NGINX").as_deref() == Ok("1") {
                panic!("nginx is required (URK_REQUIRE_NGINX=1) but not installed");
            }
            eprintln!("skipped: nginx is not installed (apt-get install nginx-light)");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("urk-nginx-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = include_str!("nginx.conf")
            .replace("@DIR@", dir.to_str().unwrap())
            .replace("@PORT@", &port.to_string());
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nginx { child, dir, port })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Status counts from the access log, once it has stopped growing.
    fn logged(&self) -> BTreeMap<u16, u64> {
        let path = self.dir.join("access.log");
        let mut last = String::new();
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(50));
            let now = std::fs::read_to_string(&path).unwrap_or_default();
            if now == last {
                break;
            }
            last = now;
        }
        let mut m = BTreeMap::new();
        for line in last.lines() {
            *m.entry(line.trim().parse::<u16>().expect("status_only log line"))
                .or_insert(0) += 1;
        }
        m
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const LEVELS: [IoLevel; 3] = [IoLevel::Full, IoLevel::Basic, IoLevel::Legacy];

fn cfg(url: &str, level: IoLevel) -> Config {
    Config::new(url)
        .unwrap()
        .io(level)
        .threads(2)
        .connections(20)
        .duration(Duration::from_secs(20))
}

#[test]
fn exact_count_matches_the_access_log() {
    for level in LEVELS {
        let Some(nginx) = Nginx::start(&format!("exact-{level}")) else {
            return;
        };
        let r = run(&cfg(&nginx.url("/"), level).requests(5000)).unwrap();
        assert_eq!(r.requests, 5000, "{level}");
        assert_eq!(r.errors.total(), 0, "{level}: {:?}", r.errors);
        let logged = nginx.logged();
        assert_eq!(logged, BTreeMap::from([(200, 5000)]), "{level}");
        assert_eq!(r.status, logged, "{level}");
    }
}

#[test]
fn status_breakdown_matches_the_access_log() {
    for level in LEVELS {
        let Some(nginx) = Nginx::start(&format!("status-{level}")) else {
            return;
        };
        let a = run(&cfg(&nginx.url("/missing"), level).requests(700)).unwrap();
        let b = run(&cfg(&nginx.url("/redirect"), level).requests(300)).unwrap();
        assert_eq!(a.non_2xx_3xx, 700, "{level}");
        assert_eq!(b.non_2xx_3xx, 0, "{level}");
        let mut ours = a.status.clone();
        for (k, v) in &b.status {
            *ours.entry(*k).or_insert(0) += v;
        }
        assert_eq!(ours, nginx.logged(), "{level}");
        assert_eq!(ours, BTreeMap::from([(302, 300), (404, 700)]), "{level}");
    }
}

#[test]
fn timed_run_is_within_in_flight_of_the_log() {
    for level in LEVELS {
        let Some(nginx) = Nginx::start(&format!("timed-{level}")) else {
            return;
        };
        let c = cfg(&nginx.url("/"), level)
            .duration(Duration::from_millis(1500))
            .pipeline(4);
        let r = run(&c).unwrap();
        let logged: u64 = nginx.logged().values().sum();
        assert!(r.requests > 1000, "{level}: {}", r.requests);
        assert!(
            r.requests <= logged,
            "{level}: urk {} log {logged}",
            r.requests
        );
        let in_flight = (c.connections as u64) * u64::from(c.pipeline);
        assert!(
            logged - r.requests <= in_flight,
            "{level}: urk {} log {logged}",
            r.requests
        );
        assert_eq!(r.errors.total(), 0, "{level}: {:?}", r.errors);
    }
}

#[test]
fn constant_rate_is_kept_within_one_percent() {
    let Some(nginx) = Nginx::start("rate") else {
        return;
    };
    let requested = 20_000.0;
    let c = cfg(&nginx.url("/"), IoLevel::Auto)
        .rate(requested)
        .duration(Duration::from_secs(5));
    let r = run(&c).unwrap();
    let rate = r.rate.unwrap();
    // Completed requests over the scheduled window, against the schedule.
    let achieved = r.requests as f64 / 5.0;
    assert!(
        (achieved - requested).abs() <= 0.01 * requested,
        "achieved {achieved} of {requested}: {rate:?}"
    );
    assert!(rate.kept, "{rate:?}");
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    assert_eq!(nginx.logged().values().sum::<u64>(), r.requests);
}

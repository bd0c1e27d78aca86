//! The real-world path: urk against nginx from Debian, counted against
//! nginx's own access log. Skipped (with a message) when nginx is not
//! installed, unless URK_REQUIRE_NGINX=1, which CI sets.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::nginx::Nginx;

use urk_engine::{run, Config, IoLevel};

const LEVELS: [IoLevel; 4] = [
    IoLevel::Full,
    IoLevel::Basic,
    IoLevel::Legacy,
    IoLevel::Epoll,
];

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

/// A static file long enough to be discarded unread: every response is
/// still counted against the log, and every body byte is accounted for.
#[test]
fn long_static_files_count_exactly_against_the_log() {
    use support::nginx::BIG_LEN;
    for level in LEVELS {
        let Some(nginx) = Nginx::start(&format!("big-{level}")) else {
            return;
        };
        let n = 1000;
        let r = run(&cfg(&nginx.url("/big"), level).requests(n)).unwrap();
        assert_eq!(r.requests, n, "{level}");
        assert_eq!(r.errors.total(), 0, "{level}: {:?}", r.errors);
        assert_eq!(nginx.logged(), BTreeMap::from([(200, n)]), "{level}");
        // Each response is the file plus a head of a few hundred bytes.
        let head = r.bytes_read / n - BIG_LEN;
        assert_eq!(r.bytes_read % n, 0, "{level}: {}", r.bytes_read);
        assert!((100..1000).contains(&head), "{level}: head {head}");
        assert!(r.io.skips_per_1000_requests >= 900.0, "{level}: {:?}", r.io);
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

/// https against nginx: the count equals its access log, trusting its CA
/// and with verification off; an untrusted certificate stops the run
/// before any request reaches the log.
#[test]
fn https_counts_match_the_access_log() {
    let Some(nginx) = Nginx::start("tls") else {
        return;
    };
    let url = nginx.tls_url("/");
    let mut total = 0;
    for level in LEVELS {
        for insecure in [false, true] {
            let mut c = cfg(&url, level).requests(3000);
            if insecure {
                c.tls.insecure = true;
            } else {
                c.tls.ca_file = Some(nginx.pki.ca_file.clone());
            }
            let r = run(&c).unwrap();
            total += 3000;
            assert_eq!(r.requests, 3000, "{level} insecure={insecure}");
            assert_eq!(r.errors.total(), 0, "{level}: {:?}", r.errors);
            let t = r.tls.unwrap();
            assert_eq!(t.handshakes, 20, "{level}");
            assert_eq!(nginx.logged(), BTreeMap::from([(200, total)]), "{level}");
        }
    }
    // Over TLS with Connection: close, every response is still one line.
    let c = cfg(&url, IoLevel::Auto)
        .requests(500)
        .header("Connection: close")
        .unwrap();
    let mut c = c;
    c.tls.insecure = true;
    let r = run(&c).unwrap();
    assert_eq!(r.requests, 500);
    assert!(r.tls.unwrap().resumed > 0);
    total += 500;
    assert_eq!(nginx.logged(), BTreeMap::from([(200, total)]));
    // The system's roots do not know the test CA: refused before any load.
    let err = urk_engine::Plan::new(&cfg(&url, IoLevel::Auto).requests(10)).unwrap_err();
    assert!(
        matches!(&err, urk_engine::EngineError::Tls(t) if t.problem == urk_engine::TlsProblem::Untrusted),
        "{err}"
    );
    assert_eq!(nginx.logged(), BTreeMap::from([(200, total)]));
}

/// nginx on a Unix socket (plain and TLS) and on [::1]: counts equal its
/// access log, on the ring and on epoll.
#[test]
fn unix_sockets_and_ipv6_count_against_the_log() {
    for level in [IoLevel::Full, IoLevel::Epoll] {
        let Some(nginx) = Nginx::start(&format!("unix-v6-{level}")) else {
            return;
        };
        let mut plain = cfg("http://localhost/", level).requests(1000);
        plain.unix_socket = Some(nginx.unix_socket(false));
        let a = run(&plain).unwrap();
        let mut tls = cfg("https://127.0.0.1/", level).requests(500);
        tls.unix_socket = Some(nginx.unix_socket(true));
        tls.tls.ca_file = Some(nginx.pki.ca_file.clone());
        let b = run(&tls).unwrap();
        let v6 = format!("http://[::1]:{}/missing", nginx.port);
        let c = run(&cfg(&v6, level).requests(700)).unwrap();
        assert_eq!(
            (a.requests, b.requests, c.requests),
            (1000, 500, 700),
            "{level}"
        );
        assert_eq!(
            a.errors.total() + b.errors.total() + c.errors.total(),
            0,
            "{level}"
        );
        assert_eq!(
            nginx.logged(),
            BTreeMap::from([(200, 1500), (404, 700)]),
            "{level}"
        );
    }
}

/// `requests_per_conn` (`--requests-per-conn N`, `--no-keepalive` for 1):
/// the client closes each connection after N responses, whatever the
/// server says, and opens a new one. nginx's own connection log shows
/// every connection serving exactly N, and the count is exact, at every
/// io level, pipelined, over TLS (sessions resumed) and a Unix socket.
#[test]
fn connections_are_replaced_after_n_responses() {
    for (name, level, tls, unix, pipeline, per) in [
        ("full", IoLevel::Full, false, false, 1, 5u32),
        ("epoll", IoLevel::Epoll, false, false, 1, 1),
        ("pipelined", IoLevel::Full, false, false, 2, 4),
        ("tls", IoLevel::Auto, true, false, 1, 3),
        ("unix", IoLevel::Epoll, false, true, 1, 1),
    ] {
        let Some(nginx) = Nginx::start(&format!("perconn-{name}")) else {
            return;
        };
        let url = if tls {
            nginx.tls_url("/")
        } else {
            nginx.url("/")
        };
        let mut c = cfg(&url, level)
            .threads(1)
            .connections(4)
            .pipeline(pipeline)
            .requests(600)
            .requests_per_conn(Some(per));
        if tls {
            c.tls.ca_file = Some(nginx.pki.ca_file.clone());
        }
        if unix {
            c.unix_socket = Some(nginx.unix_socket(tls));
        }
        let r = run(&c).unwrap();
        assert_eq!(r.requests, 600, "{name}");
        assert_eq!(r.errors.total(), 0, "{name}: {:?}", r.errors);
        let conns = nginx.connections();
        assert_eq!(conns.values().sum::<u64>(), 600, "{name}");
        // Every connection served its N, but those open when -n ran out
        // (at most one per connection slot).
        let short = conns.values().filter(|&&n| n != u64::from(per)).count();
        assert!(
            short <= 4 && conns.values().all(|&n| n <= u64::from(per)),
            "{name}: {short} short: {:?}",
            conns
                .values()
                .filter(|&&n| n != u64::from(per))
                .collect::<Vec<_>>()
        );
        assert!(conns.len() as u64 >= 600 / u64::from(per), "{name}");
        // Each connection urk opened served requests in nginx's log, but
        // a last one or two may have found -n used up by the others.
        let opened = r.connections_opened;
        assert!(
            (conns.len() as u64..=conns.len() as u64 + 4).contains(&opened),
            "{name}: opened {opened}, nginx saw {}",
            conns.len()
        );
        assert!(r.connects_per_sec > 0.0, "{name}");
        if tls {
            let t = r.tls.unwrap();
            assert!(
                (conns.len() as u64..=opened).contains(&t.handshakes),
                "{name}: {} handshakes",
                t.handshakes
            );
            assert!(t.resumed > 100, "{name}: {} resumed", t.resumed);
        }
    }
}

/// A connection's only request says `Connection: close`, so that the
/// server closes first and the TIME_WAIT is its own (a client closing
/// first keeps one per connection, and every connect's port search walks
/// them); a server that ignores it is closed on by the client, and
/// nothing is lost either way.
#[test]
fn one_request_connections_ask_the_server_to_close() {
    use support::server::{ServerConfig, TestServer};
    let server = TestServer::start(ServerConfig {
        record: true,
        ..Default::default()
    });
    for level in [IoLevel::Full, IoLevel::Epoll] {
        let r = run(&cfg(&server.url("/"), level)
            .threads(1)
            .connections(4)
            .requests(200)
            .requests_per_conn(Some(1)))
        .unwrap();
        assert_eq!(r.requests, 200);
        assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
        assert!((200..=204).contains(&r.connections_opened));
    }
    let seen = server.seen();
    assert_eq!(seen.len(), 400);
    assert!(seen.iter().all(|s| s.header("connection") == Some("close")));
    // A header given is kept, and a kept connection asks nothing.
    let r = run(&cfg(&server.url("/"), IoLevel::Full)
        .threads(1)
        .connections(2)
        .requests(20)
        .requests_per_conn(Some(2)))
    .unwrap();
    assert_eq!(r.requests, 20);
    assert!(server.seen()[400..]
        .iter()
        .all(|s| s.header("connection").is_none()));
    // nginx honours it: every connection closed by the server, after
    // exactly one response, none timed out waiting for it.
    let Some(nginx) = Nginx::start("ask-close") else {
        return;
    };
    let r = run(&cfg(&nginx.url("/"), IoLevel::Full)
        .threads(1)
        .connections(8)
        .requests(2000)
        .requests_per_conn(Some(1)))
    .unwrap();
    assert_eq!(r.requests, 2000);
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    let conns = nginx.connections();
    assert_eq!(conns.len(), 2000);
    assert!(
        r.duration_s < 10.0,
        "waits for the server's close took {}s",
        r.duration_s
    );
}

/// The self-signed certificate most READMEs make, served by nginx and
/// given as the CA file: `openssl req -x509` marks it `CA:TRUE`, which
/// the certificate check refused as a server's own (issue 24); curl and Go
/// trust it, and so does urk, for the names it carries.
#[test]
fn the_usual_self_signed_certificate_is_trusted_when_given() {
    let dir = std::env::temp_dir().join(format!("urk-selfsigned-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        _ if std::env::var("URK_REQUIRE_NGINX").as_deref() == Ok("1") => {
            panic!("openssl is required (URK_REQUIRE_NGINX=1): {made:?}")
        }
        _ => return eprintln!("skipped: no openssl"),
    }
    let Some(nginx) = Nginx::start_with_cert("selfsigned", &cert, &key) else {
        return;
    };
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/", nginx.tls_port);
        let mut c = cfg(&url, IoLevel::Auto).requests(200);
        c.tls.ca_file = Some(cert.clone());
        let r = run(&c).unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(r.requests, 200, "{host}");
        assert_eq!(r.errors.total(), 0, "{host}: {:?}", r.errors);
    }
    assert_eq!(nginx.logged().values().sum::<u64>(), 400);
    let _ = std::fs::remove_dir_all(&dir);
}

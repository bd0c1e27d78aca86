//! https:// against the in-repo TLS server (rustls, certificates made at
//! test time): exact counts at every io level, certificate checks before
//! any load, faults by cause, handshake timeouts and session resumption.

mod support;

use std::time::Duration;

use support::cli::{text, urk};
use support::server::{ServerConfig, TestServer, TlsMode};
use support::tls::{Leaf, Pki};
use urk_engine::{run, Config, IoLevel, Report};

fn tls_server(
    pki: &Pki,
    leaf: Leaf,
    f: impl FnOnce(&mut TlsMode),
    cfg: ServerConfig,
) -> TestServer {
    let mut mode = TlsMode::new(pki.server(leaf, false));
    f(&mut mode);
    TestServer::start(ServerConfig {
        tls: Some(mode),
        ..cfg
    })
}

fn good(pki: &Pki) -> TestServer {
    tls_server(pki, Leaf::Good, |_| {}, ServerConfig::default())
}

fn config(server: &TestServer, pki: &Pki) -> Config {
    let mut cfg = Config::new(&server.url("/"))
        .unwrap()
        .threads(1)
        .connections(4)
        .duration(Duration::from_secs(5));
    cfg.tls.ca_file = Some(pki.ca_file.clone());
    cfg
}

/// Every request sent is completed, lost or unfinished.
fn accounted(r: &Report) {
    assert_eq!(
        r.requests + r.requests_lost + r.requests_unfinished,
        r.requests_sent,
        "{r:?}"
    );
    assert_eq!(
        r.lost_causes.total(),
        r.requests_lost,
        "{:?}",
        r.lost_causes
    );
}

#[test]
fn https_counts_exactly_at_every_level() {
    let pki = Pki::new();
    let server = good(&pki);
    let mut expected = 0;
    for level in [
        IoLevel::Full,
        IoLevel::Basic,
        IoLevel::Legacy,
        IoLevel::Epoll,
    ] {
        for pipeline in [1, 4] {
            let cfg = config(&server, &pki)
                .io(level)
                .requests(2000)
                .pipeline(pipeline);
            let r = run(&cfg).unwrap();
            expected += 2000;
            assert_eq!(r.requests, 2000, "{level} -p{pipeline}");
            assert_eq!(server.settled(), expected, "{level} -p{pipeline}");
            assert_eq!(r.errors.total(), 0, "{level}: {:?}", r.errors);
            accounted(&r);
            let t = r.tls.as_ref().expect("a tls block");
            assert_eq!(t.version, "TLSv1.3");
            assert_eq!(t.alpn, "http/1.1");
            assert!(t.cipher.starts_with("TLS13_"), "{}", t.cipher);
            assert_eq!(t.handshakes, 4, "{level}");
            assert!(t.handshake_latency_us.max > 0);
        }
    }
    // Constant rate over TLS keeps its schedule too.
    let r = run(&config(&server, &pki)
        .rate(400.0)
        .duration(Duration::from_secs(1)))
    .unwrap();
    let rate = r.rate.unwrap();
    assert!(rate.kept && rate.behind == 0, "{rate:?}");
    assert!(r.requests >= 390, "{}", r.requests);
}

#[test]
fn bad_certificates_stop_the_run_before_any_request() {
    let pki = Pki::new();
    for (leaf, words) in [
        (Leaf::SelfSigned, "not trusted: no trusted CA issued it"),
        (
            Leaf::WrongName,
            "for another name (asked for 127.0.0.1, it names elsewhere.example)",
        ),
        (Leaf::Expired, "has expired"),
        (
            Leaf::SignedCa,
            "presents a CA certificate (CA:TRUE) as its own",
        ),
    ] {
        let server = tls_server(&pki, leaf, |_| {}, ServerConfig::default());
        let out = urk(&[
            "-t1",
            "-c2",
            "-d1s",
            "--cacert",
            &pki.ca(),
            &server.url("/"),
        ]);
        assert_eq!(out.status.code(), Some(2), "{leaf:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(words) && err.contains("nothing was sent"),
            "{leaf:?}: {err}"
        );
        assert!(err.contains("-k/--insecure"), "{err}");
        // Plain words, never rustls's debug text.
        assert!(
            !["Other(", "Context", "{", "Error"]
                .iter()
                .any(|d| err.contains(d)),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        assert_eq!(server.settled(), 0, "{leaf:?}");
        // -k accepts it, and counts exactly.
        let out = urk(&["-t1", "-c2", "-n", "300", "-k", &server.url("/")]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{leaf:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(server.settled(), 300, "{leaf:?}");
    }
    // A good certificate whose CA is not among the system's roots.
    let server = good(&pki);
    let out = urk(&["-t1", "-c2", "-d1s", &server.url("/")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--cacert FILE"));
    assert_eq!(server.settled(), 0);
    // Unusable files: one line, exit 2.
    for args in [
        vec!["--cacert", "/nonexistent/ca.pem"],
        vec![
            "--cert",
            "/nonexistent/c.pem",
            "--key",
            "/nonexistent/k.pem",
        ],
        vec!["--cert", "/etc/hostname"],
    ] {
        let mut a = vec!["-n", "10"];
        a.extend(&args);
        let url = server.url("/");
        a.push(&url);
        let out = urk(&a);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text(&out.stderr).lines().count(),
            1,
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_tls12_only_server_negotiates_12_and_refuses_13_only() {
    let pki = Pki::new();
    let server = TestServer::start(ServerConfig {
        tls: Some(TlsMode::new(pki.server(Leaf::Good, true))),
        ..Default::default()
    });
    let r = run(&config(&server, &pki).requests(500)).unwrap();
    assert_eq!(r.requests, 500);
    assert_eq!(r.tls.unwrap().version, "TLSv1.2");
    let out = urk(&[
        "-n",
        "10",
        "--cacert",
        &pki.ca(),
        "--tls-min",
        "1.3",
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("handshake failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn long_bodies_are_decrypted_whole_at_every_level() {
    // Bodies past the plain path's discard threshold: under TLS they are
    // read and decrypted, never skipped, and every byte is accounted for.
    let pki = Pki::new();
    for len in [64 * 1024, 300_000] {
        let server = tls_server(
            &pki,
            Leaf::Good,
            |_| {},
            ServerConfig {
                body: vec![b'x'; len],
                small_every: 3,
                ..Default::default()
            },
        );
        let mut answered = 0;
        for level in [
            IoLevel::Full,
            IoLevel::Basic,
            IoLevel::Legacy,
            IoLevel::Epoll,
        ] {
            let r = run(&config(&server, &pki).io(level).requests(300)).unwrap();
            answered += 300;
            assert_eq!(r.requests, 300, "{level} {len}");
            assert_eq!(r.errors.total(), 0, "{level} {len}: {:?}", r.errors);
            assert_eq!(server.settled(), answered, "{level} {len}");
            assert_eq!(
                r.io.skips_per_1000_requests, 0.0,
                "{level}: nothing skipped"
            );
            // Bytes on the wire (ciphertext): at least the bodies.
            assert!(
                r.bytes_read >= 200 * len as u64,
                "{level}: {}",
                r.bytes_read
            );
        }
    }
}

#[test]
fn sni_names_the_server_and_a_slow_server_times_out() {
    let pki = Pki::new();
    let server = good(&pki);
    // The certificate is for localhost and 127.0.0.1: --sni picks the name.
    let url = server.url("/");
    let ok = urk(&[
        "-n",
        "50",
        "--cacert",
        &pki.ca(),
        "--sni",
        "localhost",
        &url,
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let bad = urk(&[
        "-n",
        "50",
        "--cacert",
        &pki.ca(),
        "--sni",
        "other.example",
        &url,
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("for another name"),
        "{}",
        text(&bad.stderr)
    );
    // Responses slower than the timeout are timeouts, as on plain HTTP.
    let slow = tls_server(
        &pki,
        Leaf::Good,
        |_| {},
        ServerConfig {
            delay: Duration::from_millis(400),
            ..Default::default()
        },
    );
    let r = run(&config(&slow, &pki)
        .timeout(Duration::from_millis(150))
        .duration(Duration::from_secs(1)))
    .unwrap();
    assert!(r.errors.timeout >= 4, "{:?}", r.errors);
    assert_eq!(r.lost_causes.timeout, r.errors.timeout);
    accounted(&r);
}

#[test]
fn merging_tls_reports_adds_their_handshakes() {
    let pki = Pki::new();
    let server = good(&pki);
    let dir = std::env::temp_dir();
    let mut files = Vec::new();
    for n in ["3", "5"] {
        let out = urk(&[
            "-t1",
            "-c",
            n,
            "-n",
            "200",
            "--json",
            "--cacert",
            &pki.ca(),
            &server.url("/"),
        ]);
        assert_eq!(out.status.code(), Some(0));
        let f = dir.join(format!("urk-tls-merge-{n}-{}.json", std::process::id()));
        std::fs::write(&f, &out.stdout).unwrap();
        files.push(f.display().to_string());
    }
    let out = urk(&["merge", "--json", &files[0], &files[1]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["tls"]["handshakes"], 8);
    assert_eq!(m["requests"], 400);
    for f in files {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn faults_mid_stream_are_counted_by_cause() {
    for level in [
        IoLevel::Full,
        IoLevel::Basic,
        IoLevel::Legacy,
        IoLevel::Epoll,
    ] {
        faults_at(level);
    }
}

fn faults_at(level: IoLevel) {
    let pki = Pki::new();
    let config = |server: &TestServer, pki: &Pki| config(server, pki).io(level);
    // A fatal alert after every 50th response of a connection.
    let server = tls_server(
        &pki,
        Leaf::Good,
        |m| m.alert_after = 50,
        ServerConfig::default(),
    );
    let r = run(&config(&server, &pki).requests(1000)).unwrap();
    assert_eq!(r.requests, 1000);
    accounted(&r);
    let t = r.tls.as_ref().unwrap();
    assert!(t.errors.alert >= 15, "{:?} {:?}", r.errors, t.errors);
    assert_eq!(r.errors.tls, t.errors.total());
    // The response before each alert still counts; the requests sent
    // behind it are lost to TLS, and the server never answered them.
    assert_eq!(server.settled(), 1000);
    assert_eq!(r.lost_causes.tls, r.requests_lost);
    // A record that does not decrypt: a protocol error.
    let server = tls_server(
        &pki,
        Leaf::Good,
        |m| m.garbage_after = 30,
        ServerConfig::default(),
    );
    let r = run(&config(&server, &pki).requests(600)).unwrap();
    assert_eq!(r.requests, 600);
    accounted(&r);
    assert!(r.tls.as_ref().unwrap().errors.protocol >= 10, "{:?}", r.tls);
    assert!(r.lost_causes.tls > 0 || r.requests_lost == 0);
    // A record cut short by the close: the response never came, a read error.
    let server = tls_server(
        &pki,
        Leaf::Good,
        |m| m.truncate_after = 40,
        ServerConfig::default(),
    );
    let r = run(&config(&server, &pki).requests(400)).unwrap();
    assert_eq!(r.requests, 400);
    accounted(&r);
    assert!(r.errors.read >= 5, "{:?}", r.errors);
    // Closing without close_notify after a complete response is a normal end.
    let server = tls_server(
        &pki,
        Leaf::Good,
        |m| m.no_close_notify = true,
        ServerConfig {
            close_every: 10,
            ..Default::default()
        },
    );
    let r = run(&config(&server, &pki).requests(500)).unwrap();
    assert_eq!(r.requests, 500);
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    assert_eq!(server.settled(), 500);
    assert!(r.tls.unwrap().handshakes >= 50);
}

#[test]
fn handshakes_that_never_finish_time_out() {
    let pki = Pki::new();
    // The first connection (urk's probe) is served; the load's are not.
    let server = tls_server(
        &pki,
        Leaf::Good,
        |m| m.stall_handshakes_after = Some(1),
        ServerConfig::default(),
    );
    let r = run(&config(&server, &pki)
        .timeout(Duration::from_millis(200))
        .duration(Duration::from_millis(1500)))
    .unwrap();
    assert_eq!(r.requests, 0);
    let t = r.tls.unwrap();
    assert!(t.errors.handshake_timeout >= 4, "{:?}", t.errors);
    assert_eq!(r.errors.tls, t.errors.handshake_timeout);
    assert_eq!(r.requests_sent, 0);
}

#[test]
fn sessions_resume_on_reconnect_unless_told_not_to() {
    let pki = Pki::new();
    let server = tls_server(
        &pki,
        Leaf::Good,
        |_| {},
        ServerConfig {
            close_every: 1,
            ..Default::default()
        },
    );
    let r = run(&config(&server, &pki).requests(200)).unwrap();
    assert_eq!(r.requests, 200);
    let t = r.tls.unwrap();
    assert!(t.handshakes >= 200, "{}", t.handshakes);
    assert!(
        t.resumed >= t.handshakes / 2,
        "{} of {}",
        t.resumed,
        t.handshakes
    );
    let mut cfg = config(&server, &pki).requests(200);
    cfg.tls.resume = false;
    let r = run(&cfg).unwrap();
    assert_eq!(r.requests, 200);
    assert_eq!(r.tls.unwrap().resumed, 0);
    // The text report's TLS line, as h2load prints it.
    let out = urk(&[
        "-t1",
        "-c2",
        "-n",
        "100",
        "--cacert",
        &pki.ca(),
        &server.url("/"),
    ]);
    let s = text(&out.stdout);
    let line = s
        .lines()
        .find(|l| l.starts_with("  TLS: "))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        line.contains("TLSv1.3, TLS13_") && line.contains(" resumed, p99 "),
        "{line}"
    );
}

#[test]
fn the_json_report_carries_tls_and_matches_the_schema() {
    let pki = Pki::new();
    let server = good(&pki);
    let out = urk(&[
        "-t1",
        "-c3",
        "-n",
        "300",
        "--json",
        "--cacert",
        &pki.ca(),
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../docs/report.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&r).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(r["tls"]["handshakes"], 3);
    assert_eq!(r["tls"]["version"], "TLSv1.3");
    assert_eq!(r["errors"]["tls"], 0);
    // A plain run has no tls block.
    let plain = TestServer::start(ServerConfig::default());
    let out = urk(&["-t1", "-c1", "-n", "10", "--json", &plain.url("/")]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["tls"].is_null());
}

#[test]
fn a_client_certificate_is_presented_when_given() {
    let pki = Pki::new();
    let server = TestServer::start(ServerConfig {
        tls: Some(TlsMode::new(pki.server_requiring_client_cert())),
        ..Default::default()
    });
    let url = server.url("/");
    // Without one the server refuses the handshake: before any load.
    let out = urk(&["-t1", "-c2", "-n", "100", "--cacert", &pki.ca(), &url]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert_eq!(server.settled(), 0);
    let (cert, key) = (
        pki.client_cert.display().to_string(),
        pki.client_key.display().to_string(),
    );
    let out = urk(&[
        "-t1",
        "-c2",
        "-n",
        "100",
        "--cacert",
        &pki.ca(),
        "--cert",
        &cert,
        "--key",
        &key,
        &url,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(server.settled(), 100);
}

/// The self-signed certificate most READMEs make (`openssl req -x509`, so
/// `CA:TRUE`), given as the CA file, is trusted for the names it carries,
/// as curl and Go trust it; its name is still checked.
#[test]
fn a_self_signed_ca_certificate_given_as_the_ca_file_is_trusted() {
    let pki = Pki::new();
    let server = tls_server(&pki, Leaf::SelfSignedCa, |_| {}, ServerConfig::default());
    let dir = std::env::temp_dir().join(format!("urk-selfca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    pki.write_pem(Leaf::SelfSignedCa, &cert, &key);
    let cert = cert.display().to_string();
    let out = urk(&[
        "-t1",
        "-c2",
        "-n",
        "200",
        "--cacert",
        &cert,
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(server.settled(), 200);
    // Another name: refused, in words.
    let out = urk(&[
        "-t1",
        "-c2",
        "-n",
        "10",
        "--cacert",
        &cert,
        "--sni",
        "elsewhere.example",
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("for another name") && !err.contains("Other("),
        "{err}"
    );
    // Not given: an unknown issuer, as before.
    let out = urk(&[
        "-t1",
        "-c2",
        "-n",
        "10",
        "--cacert",
        &pki.ca(),
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

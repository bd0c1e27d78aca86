//! Misbehaving servers: every run ends on time, the fault lands in the
//! right error class, healthy connections keep loading, and every request
//! urk sent is accounted for against the server's own counts.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::fault::{Fault, FaultServer};
use support::server::{ServerConfig, TestServer};
use urk_engine::{run, Config, Errors, IoLevel, Report};

const LEVELS: [IoLevel; 4] = [
    IoLevel::Full,
    IoLevel::Basic,
    IoLevel::Legacy,
    IoLevel::Epoll,
];

fn config(url: &str, level: IoLevel) -> Config {
    Config::new(url)
        .unwrap()
        .io(level)
        .threads(2)
        .connections(8)
        .duration(Duration::from_secs(10))
}

/// Runs `cfg`, checking it ends within its duration plus the grace.
fn timed_run(cfg: &Config) -> Report {
    let started = Instant::now();
    let r = run(cfg).unwrap();
    let limit = cfg.duration + Duration::from_secs(3);
    assert!(
        started.elapsed() < limit,
        "run took {:?}",
        started.elapsed()
    );
    assert_eq!(
        r.requests_sent,
        r.requests + r.requests_lost + r.requests_unfinished,
        "accounting: {r:?}"
    );
    r
}

/// Every 5th response broken; 200 good ones asked for.
fn check_class(fault: Fault, class: fn(&Errors) -> u64) {
    for level in LEVELS {
        let server = FaultServer::start(fault, 5);
        let r = timed_run(&config(&server.url(), level).requests(200));
        let (received, ok, faulted) = server.settled();
        assert_eq!(
            r.requests, 200,
            "{fault:?} {level}: healthy connections keep loading"
        );
        assert_eq!(ok, 200, "{fault:?} {level}");
        assert!(faulted >= 40, "{fault:?} {level}: {faulted} faults");
        assert_eq!(
            class(&r.errors),
            faulted,
            "{fault:?} {level}: {:?}",
            r.errors
        );
        assert_eq!(
            r.errors.total(),
            faulted,
            "{fault:?} {level}: {:?}",
            r.errors
        );
        // The server read exactly what urk sent, and urk lost exactly the
        // requests whose responses were broken.
        assert_eq!(received, r.requests_sent, "{fault:?} {level}");
        assert_eq!(r.requests_lost, faulted, "{fault:?} {level}");
    }
}

#[test]
fn reset_mid_response_is_a_read_error() {
    check_class(Fault::ResetMidResponse, |e| e.read);
}

#[test]
fn close_without_response_is_a_read_error() {
    check_class(Fault::CloseWithoutResponse, |e| e.read);
}

#[test]
fn truncated_chunked_body_is_a_read_error() {
    check_class(Fault::TruncatedChunked, |e| e.read);
}

#[test]
fn lying_content_length_is_a_read_error() {
    check_class(Fault::LyingLength, |e| e.read);
}

/// A long body is discarded unread: a close or a reset in the middle of
/// it still ends as a read error for that response alone.
#[test]
fn a_long_body_cut_off_while_discarded_is_a_read_error() {
    check_class(Fault::LongBodyCut, |e| e.read);
    check_class(Fault::LongBodyReset, |e| e.read);
}

#[test]
fn garbage_is_a_parse_error() {
    check_class(Fault::Garbage, |e| e.parse);
}

#[test]
fn endless_chunk_line_is_a_parse_error() {
    check_class(Fault::EndlessChunkLine, |e| e.parse);
}

#[test]
fn huge_head_is_a_parse_error() {
    check_class(Fault::HugeHead, |e| e.parse);
}

#[test]
fn too_many_headers_is_a_parse_error() {
    check_class(Fault::TooManyHeaders, |e| e.parse);
}

#[test]
fn close_after_a_complete_response_loses_at_most_the_next_request() {
    for level in LEVELS {
        let server = FaultServer::start(Fault::CloseAfterResponse, 5);
        let r = timed_run(&config(&server.url(), level).requests(300));
        let (received, ok, faulted) = server.settled();
        // Every complete response counts, including those before a close.
        assert_eq!(r.requests, 300, "{level}");
        assert_eq!(ok, 300, "{level}");
        // A request sent before the close was seen is lost as a read error,
        // never silently: at most one per close.
        assert!(
            r.errors.read <= faulted,
            "{level}: {:?} for {faulted} closes",
            r.errors
        );
        assert_eq!(r.errors.total(), r.errors.read, "{level}: {:?}", r.errors);
        assert_eq!(r.requests_lost, r.errors.read, "{level}");
        assert_eq!(received + r.requests_lost, r.requests_sent, "{level}");
    }
}

#[test]
fn stalled_responses_time_out_and_the_rest_keep_going() {
    for fault in [Fault::EndlessBody, Fault::NeverAnswer] {
        for level in LEVELS {
            let server = FaultServer::start(fault, 5);
            let cfg = config(&server.url(), level)
                .duration(Duration::from_millis(1500))
                .timeout(Duration::from_millis(300));
            let r = timed_run(&cfg);
            let (received, ok, faulted) = server.settled();
            assert!(r.requests > 50, "{fault:?} {level}: {}", r.requests);
            assert!(r.errors.timeout > 0, "{fault:?} {level}: {:?}", r.errors);
            assert_eq!(
                r.errors.total(),
                r.errors.timeout,
                "{fault:?} {level}: {:?}",
                r.errors
            );
            // Stalls end as timeouts, or are cut off by the end of the run.
            assert_eq!(
                r.errors.timeout + r.requests_unfinished,
                faulted + (received - ok - faulted),
                "{fault:?} {level}: {r:?}"
            );
            assert_eq!(received, r.requests_sent, "{fault:?} {level}");
        }
    }
}

#[test]
fn a_full_backlog_is_a_connect_timeout() {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn,
    };
    // A listener that never accepts, with the smallest backlog: the first
    // connection or two complete, the rest wait in SYN_SENT.
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(127, 0, 0, 1, 0),
    )
    .unwrap();
    listen(&fd, Backlog::new(0).unwrap()).unwrap();
    let addr: SockaddrIn =
        nix::sys::socket::getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
    // Fill the queue first so every urk connect meets a full backlog.
    let _fill: Vec<TcpStream> = (0..4)
        .filter_map(|_| {
            TcpStream::connect_timeout(
                &std::net::SocketAddr::from(std::net::SocketAddrV4::new(addr.ip(), addr.port())),
                Duration::from_millis(100),
            )
            .ok()
        })
        .collect();
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let cfg = config(&url, IoLevel::Auto)
        .connections(4)
        .duration(Duration::from_millis(1200))
        .timeout(Duration::from_millis(300));
    let r = timed_run(&cfg);
    assert_eq!(r.requests, 0);
    assert!(
        r.connect_errors.timed_out > 0,
        "{:?} {:?}",
        r.errors,
        r.connect_errors
    );
    // The text report says what the connect errors were.
    let text = r.to_text(urk_engine::TextOptions::default());
    let line = format!("Connects timed out: {};", r.connect_errors.timed_out);
    assert!(text.contains(&line), "{text}");
}

#[test]
fn connect_refused_backs_off_instead_of_spinning() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config(&format!("http://127.0.0.1:{port}/"), IoLevel::Auto)
        .connections(50)
        .duration(Duration::from_secs(2));
    let r = timed_run(&cfg);
    assert_eq!(r.requests, 0);
    assert_eq!(
        r.connect_errors.refused, r.errors.connect,
        "{:?}",
        r.connect_errors
    );
    // Backoff doubles from 10 ms to 1 s: at most ~8 tries per connection in 2 s.
    assert!(r.errors.connect <= 50 * 9, "{:?}", r.errors);
    let busy = r.generator_cpu_s / (r.duration_s * r.threads as f64);
    assert!(
        busy < 0.2,
        "workers busy {:.0}% of the time against a dead target",
        busy * 100.0
    );
}

#[test]
fn a_killed_and_restarted_server_shows_an_outage_then_resumes() {
    let server = TestServer::start(ServerConfig {
        killable: true,
        ..Default::default()
    });
    let port = server.addr.port();
    let cfg = Config::new(&server.url("/"))
        .unwrap()
        .threads(1)
        .connections(4)
        .duration(Duration::from_millis(4500))
        .timeout(Duration::from_millis(500))
        .intervals(true);
    let runner = std::thread::spawn(move || timed_run(&cfg));
    std::thread::sleep(Duration::from_millis(1000));
    server.kill();
    drop(server);
    std::thread::sleep(Duration::from_millis(1500));
    let back = TestServer::start_on(port, ServerConfig::default());
    let r = runner.join().unwrap();
    let t: Vec<u64> = r.timeline.iter().map(|e| e.requests).collect();
    assert!(t.len() >= 4, "{t:?}");
    // Second 0 runs, second 1.5-2.5 is dark, the last full seconds resume.
    assert!(t[0] > 100, "{t:?}");
    assert!(t[2] < t[0] / 10, "{t:?}");
    assert!(t[3] > 100 || t.get(4).is_some_and(|&n| n > 100), "{t:?}");
    assert!(r.errors.connect + r.errors.read > 0, "{:?}", r.errors);
    assert!(back.settled() > 0);
}

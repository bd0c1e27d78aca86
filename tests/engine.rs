//! The engine against the in-repo test server, over real sockets on
//! 127.0.0.1, at every io level: exact counts against the server's own.

mod support;

use std::time::Duration;

use support::server::{ServerConfig, TestServer};
use urk_engine::{run, Config, IoLevel, Report};

const LEVELS: [IoLevel; 4] = [
    IoLevel::Full,
    IoLevel::Basic,
    IoLevel::Legacy,
    IoLevel::Epoll,
];

fn config(server: &TestServer, level: IoLevel) -> Config {
    Config::new(&server.url("/"))
        .unwrap()
        .io(level)
        .threads(2)
        .connections(8)
        .duration(Duration::from_secs(20))
}

/// Runs `-n n` against a fresh server answering per `sc`; asserts urk and
/// the server agree exactly and nothing failed.
fn exact(sc: ServerConfig, level: IoLevel, n: u64, tweak: impl Fn(Config) -> Config) -> Report {
    let server = TestServer::start(sc);
    let report = run(&tweak(config(&server, level).requests(n))).unwrap();
    assert_eq!(report.requests, n, "{level}: urk's count");
    assert_eq!(server.settled(), n, "{level}: server's count");
    assert_eq!(report.bytes_read, server.written(), "{level}: bytes");
    assert_eq!(
        report.errors.total(),
        0,
        "{level}: {:?} {:?}",
        report.errors,
        report.connect_errors
    );
    assert_eq!(report.io.level, level);
    assert_eq!(report.status.values().sum::<u64>(), n);
    report
}

#[test]
fn fixed_body_counts_exactly() {
    for level in LEVELS {
        let r = exact(ServerConfig::default(), level, 3000, |c| c);
        assert_eq!(r.status.get(&200), Some(&3000));
        assert_eq!(r.non_2xx_3xx, 0);
        // Every response is the same size: bytes read are exact too.
        let one = support::server::response_len(&ServerConfig::default(), false, false);
        assert_eq!(r.bytes_read, 3000 * one as u64, "{level}");
        assert!(r.latency_us.max >= r.latency_us.p50 && r.latency_us.p50 >= r.latency_us.min);
        // A closed loop sends every request when it is due: the uncorrected
        // distribution is the corrected one, over every response.
        assert_eq!(r.uncorrected_histogram.len(), 3000, "{level}");
        assert_eq!(r.uncorrected_histogram, r.latency_histogram, "{level}");
        // Every response needs at least one receive completion.
        assert!(
            r.io.completions_per_1000_requests >= 1000.0,
            "{level}: {:?}",
            r.io
        );
        // A multishot receive stays armed across responses (epoll's reads
        // go on until the socket is drained); a one-shot receive is armed
        // again for each.
        if matches!(level, IoLevel::Full | IoLevel::Epoll) {
            assert!(r.io.recv_arms_per_1000_requests < 100.0, "{:?}", r.io);
        } else {
            assert!(
                r.io.recv_arms_per_1000_requests >= 1000.0,
                "{level}: {:?}",
                r.io
            );
        }
    }
}

#[test]
fn chunked_bodies() {
    let sc = ServerConfig {
        chunked: true,
        body: vec![b'x'; 1234],
        ..Default::default()
    };
    for level in LEVELS {
        exact(sc.clone(), level, 1000, |c| c);
    }
}

#[test]
fn large_bodies_span_many_buffers() {
    // Just under the length from which bodies are discarded unread.
    let sc = ServerConfig {
        body: vec![b'y'; 30_000],
        ..Default::default()
    };
    for level in LEVELS {
        let r = exact(sc.clone(), level, 300, |c| c);
        assert!(r.bytes_read > 300 * 30_000);
        assert_eq!(r.io.skips_per_1000_requests, 0.0, "{level}: {:?}", r.io);
        if level != IoLevel::Full {
            continue;
        }
        // A 30 kB response takes at least 4 whole 8 KiB buffers, but one or
        // two receives into 64 KiB buffers filled incrementally; each
        // request also has one send completion.
        let per_1000 = r.io.completions_per_1000_requests;
        if r.io.incremental_buffers {
            assert!(per_1000 < 4000.0, "{:?}", r.io);
        } else {
            assert!(per_1000 >= 5000.0, "{:?}", r.io);
        }
    }
}

/// Long bodies are consumed with `MSG_TRUNC` receives that copy nothing,
/// after a short receive for the head; every byte is still counted, and
/// pipelined responses behind a discarded body are framed exactly.
#[test]
fn long_bodies_are_discarded_unread_and_counted_exactly() {
    let sc = ServerConfig {
        body: vec![b'd'; 200_000],
        ..Default::default()
    };
    let one = support::server::response_len(&sc, false, false) as u64;
    for level in LEVELS {
        for pipeline in [1, 4] {
            let n = 400;
            let r = exact(sc.clone(), level, n, |c| c.pipeline(pipeline));
            assert_eq!(r.bytes_read, n * one, "{level} -p{pipeline}");
            // Each connection copies its first response (it learns the
            // size from it); every later body is discarded, in one or more
            // receives.
            assert!(
                r.io.skips_per_1000_requests >= 900.0,
                "{level} -p{pipeline}: {:?}",
                r.io
            );
        }
    }
}

/// Body sizes that change under the client (every third response is
/// short; the server closes every tenth connection turn) move connections
/// in and out of discarding, without losing a byte.
#[test]
fn changing_body_sizes_switch_between_copying_and_discarding() {
    let sc = ServerConfig {
        body: vec![b'm'; 70_000],
        small_every: 3,
        close_every: 10,
        ..Default::default()
    };
    for level in LEVELS {
        let r = exact(sc.clone(), level, 1500, |c| c);
        // Of each connection's ten responses (long, long, short, ...) the
        // ones right after a long body are discarded: 3 in 10, in at least
        // one receive each (more when a body arrives in pieces), fewer in
        // a connection's last, unfinished turn. Copying only would be 0.
        assert!(r.io.skips_per_1000_requests > 250.0, "{level}: {:?}", r.io);
    }
}

/// Incremental buffers hand out a buffer piece by piece: responses that
/// straddle buffer ends, many responses per buffer, closes in between (a
/// 0-byte completion names the buffer still being filled) and many trips
/// round the ring must all come out byte-exact.
#[test]
fn incremental_buffers_split_and_pack_responses_exactly() {
    let k = urk_engine::KernelSupport::probe().unwrap();
    let sc = ServerConfig {
        body: vec![b'z'; 3001],
        close_every: 7,
        ..Default::default()
    };
    let n = 7000;
    let r = exact(sc.clone(), IoLevel::Full, n, |c| c);
    assert_eq!(r.io.incremental_buffers, k.buf_ring_inc, "{:?}", r.io);
    let keep = support::server::response_len(&sc, false, false) as u64;
    let close = support::server::response_len(&sc, false, true) as u64;
    // Every 7th response on a connection closes it; the 8 connections end
    // part-way through their last 7.
    let extra = r.bytes_read - n * keep;
    assert_eq!(extra % (close - keep), 0, "{}", r.bytes_read);
    let closing = extra / (close - keep);
    assert!((n / 7 - 8..=n / 7).contains(&closing), "{closing}");
    // 7000 responses of ~3 kB are ~21 MB: the ring went round many times.
    let ring_bytes = u64::from(r.io.buffers) * u64::from(r.io.buffer_size);
    assert!(r.bytes_read > 5 * ring_bytes, "{:?}", r.io);
}

#[test]
fn connection_close_every_n_reconnects_transparently() {
    let sc = ServerConfig {
        close_every: 3,
        ..Default::default()
    };
    for level in LEVELS {
        exact(sc.clone(), level, 900, |c| c);
    }
}

#[test]
fn http10_closes_after_each_response() {
    let sc = ServerConfig {
        http10: true,
        ..Default::default()
    };
    for level in LEVELS {
        exact(sc.clone(), level, 300, |c| c);
    }
}

/// A hundred connections, each closed after every response: a loop can
/// queue more reconnects than the submission queue holds, so a flush
/// submits part-way, and nothing may be lost or counted twice.
#[test]
fn mass_reconnects_lose_nothing() {
    let sc = ServerConfig {
        http10: true,
        ..Default::default()
    };
    for level in LEVELS {
        exact(sc.clone(), level, 20_000, |c| c.threads(1).connections(100));
    }
}

#[test]
fn no_body_statuses_and_head() {
    for level in LEVELS {
        for status in [204, 304] {
            let r = exact(
                ServerConfig {
                    status,
                    ..Default::default()
                },
                level,
                300,
                |c| c,
            );
            assert_eq!(r.status.get(&status), Some(&300));
        }
        // HEAD: the server announces a Content-Length but sends no body.
        let r = exact(ServerConfig::default(), level, 300, |c| c.method("HEAD"));
        assert_eq!(r.status.get(&200), Some(&300));
    }
}

#[test]
fn server_errors_are_counted_as_non_2xx() {
    for level in LEVELS {
        let r = exact(
            ServerConfig {
                status: 500,
                ..Default::default()
            },
            level,
            400,
            |c| c,
        );
        assert_eq!(r.non_2xx_3xx, 400);
        assert_eq!(r.status.get(&500), Some(&400));
    }
}

#[test]
fn pipelined_requests_count_per_response() {
    for level in LEVELS {
        // 1001 is not a multiple of 8: the last batch is short.
        let r = exact(ServerConfig::default(), level, 1001, |c| c.pipeline(8));
        assert_eq!(r.pipeline, 8);
    }
}

#[test]
fn post_bodies_are_sent() {
    for level in LEVELS {
        let r = exact(ServerConfig::default(), level, 200, |c| {
            c.method("POST").body(vec![b'b'; 5000])
        });
        assert!(r.bytes_written >= 200 * 5000);
    }
}

#[test]
fn slow_responses_show_in_latency() {
    let sc = ServerConfig {
        delay: Duration::from_millis(50),
        ..Default::default()
    };
    for level in LEVELS {
        let r = exact(sc.clone(), level, 16, |c| c.connections(4));
        assert!(
            r.latency_us.min >= 50_000,
            "{level}: min {} us",
            r.latency_us.min
        );
    }
}

#[test]
fn duration_runs_count_within_in_flight() {
    for level in LEVELS {
        let server = TestServer::start(ServerConfig::default());
        let cfg = config(&server, level).duration(Duration::from_millis(800));
        let r = run(&cfg).unwrap();
        let served = server.settled();
        assert!(r.requests > 0);
        assert!(
            r.requests <= served,
            "{level}: urk {} > server {served}",
            r.requests
        );
        assert!(
            served - r.requests <= cfg.connections as u64,
            "{level}: urk {} server {served}",
            r.requests
        );
        assert!(
            r.duration_s >= 0.8 && r.duration_s < 3.0,
            "{level}: {}",
            r.duration_s
        );
        assert!(r.thread_requests_per_sec.mean > 0.0);
    }
}

#[test]
fn timeouts_are_counted_and_the_run_ends() {
    let sc = ServerConfig {
        delay: Duration::from_secs(3),
        ..Default::default()
    };
    for level in LEVELS {
        let server = TestServer::start(sc.clone());
        let cfg = config(&server, level)
            .connections(2)
            .duration(Duration::from_millis(900))
            .timeout(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let r = run(&cfg).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{level}: run took {:?}",
            started.elapsed()
        );
        assert_eq!(r.requests, 0);
        assert!(r.errors.timeout >= 2, "{level}: {:?}", r.errors);
    }
}

#[test]
fn refused_connections_are_counted_without_a_hot_loop() {
    // Bind then drop a listener: the port is very likely closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for level in LEVELS {
        let cfg = Config::new(&format!("http://127.0.0.1:{port}/"))
            .unwrap()
            .io(level)
            .threads(1)
            .connections(10)
            .duration(Duration::from_millis(700));
        let r = run(&cfg).unwrap();
        assert_eq!(r.requests, 0);
        assert!(r.errors.connect >= 10, "{level}: {:?}", r.errors);
        // Backoff: 10 connections over 0.7 s retry at most ~7 times each.
        assert!(r.errors.connect <= 10 * 8, "{level}: {:?}", r.errors);
    }
}

#[test]
fn forced_levels_match_the_kernel() {
    let k = urk_engine::KernelSupport::probe().unwrap();
    for level in LEVELS {
        let ok = match level {
            IoLevel::Full => k.recv_multishot,
            IoLevel::Basic => k.buf_ring,
            _ => true,
        };
        assert_eq!(k.resolve(level).is_ok(), ok, "{level}");
    }
    // Incremental buffer consumption came with Linux 6.12.
    assert_eq!(k.buf_ring_inc, k.buf_ring && k.version >= (6, 12, 0));
    assert_eq!(k.resolve(IoLevel::Auto).unwrap(), k.best);
}

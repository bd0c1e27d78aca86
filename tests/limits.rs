//! The `urk` binary at the edges of its environment: io_uring refused by a
//! seccomp filter, too few descriptors, signals, and bounded memory.

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::cli::{command as urk, requests_in, text};
use support::nginx::netns_nginx;
use support::server::{ServerConfig, TestServer};

/// Installs a seccomp filter that answers io_uring_setup with EPERM, as
/// container runtimes' default profiles do, and allows everything else.
fn deny_io_uring_setup() -> std::io::Result<()> {
    use libc::{sock_filter, sock_fprog};
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let ld = |k| sock_filter {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k, jt, jf| sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ret = |k| sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        ld(4),                        // seccomp_data.arch
        jeq(AUDIT_ARCH_X86_64, 0, 3), // other arch: allow
        ld(0),                        // seccomp_data.nr
        jeq(libc::SYS_io_uring_setup as u32, 0, 1),
        ret(RET_ERRNO | libc::EPERM as u32),
        ret(RET_ALLOW),
    ];
    let prog = sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut sock_filter,
    };
    // SAFETY: called between fork and exec with a filter that lives on this
    // stack frame until the kernel has copied it.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const sock_fprog,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[test]
fn a_forced_io_uring_level_refused_by_seccomp_is_one_line_and_status_2() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let mut cmd = urk();
    cmd.args(["--io", "full", "-d1s", "http://127.0.0.1:9/"]);
    // SAFETY: the closure only makes async-signal-safe syscalls (prctl).
    unsafe { cmd.pre_exec(deny_io_uring_setup) };
    let out = cmd.output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("io_uring") && err.contains("seccomp"), "{err}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[test]
fn where_seccomp_refuses_io_uring_auto_runs_on_epoll_and_counts_exactly() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let server = TestServer::start(ServerConfig::default());
    let mut cmd = urk();
    cmd.args([
        "-q",
        "--json",
        "-t2",
        "-c8",
        "-p2",
        "-n",
        "3000",
        &server.url("/"),
    ]);
    // SAFETY: the closure only makes async-signal-safe syscalls (prctl).
    unsafe { cmd.pre_exec(deny_io_uring_setup) };
    let out = cmd.output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // One line: that it runs on epoll, why, and how to get io_uring back.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("running on epoll") && err.contains("seccomp"),
        "{err}"
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["io"]["level"], "epoll");
    assert!(r["io"]["fallback_reason"]
        .as_str()
        .unwrap()
        .contains("seccomp"));
    assert_eq!(r["requests"], 3000);
    assert_eq!(server.settled(), 3000);
}

fn with_nofile(cmd: &mut Command, soft: u64, hard: u64) {
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

#[test]
fn too_few_descriptors_is_one_line_before_any_load() {
    let server = TestServer::start(ServerConfig::default());
    let mut cmd = urk();
    cmd.args(["-t1", "-c500", "-d1s", &server.url("/")]);
    with_nofile(&mut cmd, 100, 100);
    let out = cmd.output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("file descriptors") && err.contains("ulimit -n"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(server.settled(), 0, "no load may start");
}

#[test]
fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
    let server = TestServer::start(ServerConfig::default());
    let mut cmd = urk();
    cmd.args(["-t1", "-c300", "-n", "600", "--json", &server.url("/")]);
    with_nofile(&mut cmd, 100, 4096);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["requests"], 600);
    assert_eq!(v["errors"]["connect"], 0);
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    // A TLS server that never answers: the probe handshake waits out its
    // 20 s timeout, so the first Ctrl-C cannot end the run; a second one a
    // second later quits at once.
    // A listener never accepted: the kernel completes the TCP handshake,
    // and the ClientHello waits in its queue.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    let child = urk()
        .args(["-t1", "-c4", "-d30s", "-T", "20s", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    drop(listener);
}

/// GNU `timeout` forwards SIGINT to urk and then to its process group:
/// two signals microseconds apart are one interrupt, and the report is
/// printed every time.
#[test]
fn two_interrupts_back_to_back_are_one() {
    let server = TestServer::start(ServerConfig::default());
    for round in 0..6 {
        let child = urk()
            .args(["-t1", "-c4", "-d30s", &server.url("/")])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        let out = child.wait_with_output().unwrap();
        let s = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "round {round}: {s}");
        assert!(
            s.contains("Interrupted") && s.contains("requests in"),
            "round {round}: {s}"
        );
    }
}

#[test]
fn sigterm_prints_the_report_so_far() {
    for io in ["auto", "epoll"] {
        sigterm_at(io);
    }
}

fn sigterm_at(io: &str) {
    let server = TestServer::start(ServerConfig::default());
    let child = urk()
        .args(["--io", io, "-t1", "-c4", "-d30s", &server.url("/")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    support::cli::signal(&child, nix::sys::signal::Signal::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{s}");
    assert!(
        s.contains("Interrupted") && s.contains("requests in"),
        "{s}"
    );
}

/// Runs the command and returns its output and its peak RSS (VmHWM, KiB),
/// read from /proc while it runs.
fn peak_rss(cmd: &mut Command) -> (Output, u64) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let (tx, rx) = std::sync::mpsc::channel();
    let watcher = std::thread::spawn(move || {
        let mut peak = 0;
        while rx.try_recv().is_err() {
            if let Ok(s) = std::fs::read_to_string(&status) {
                if let Some(kb) = s
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                {
                    peak = kb;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    (out, watcher.join().unwrap())
}

#[test]
fn a_100_mb_body_streams_through_without_growing_memory() {
    let server = TestServer::start(ServerConfig {
        body: vec![b'z'; 100 << 20],
        ..Default::default()
    });
    for io in ["auto", "epoll"] {
        let (out, peak_kib) = peak_rss(urk().args([
            "--io",
            io,
            "-t1",
            "-c2",
            "-n",
            "4",
            "--json",
            &server.url("/"),
        ]));
        assert_eq!(out.status.code(), Some(0), "{io}: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["requests"], 4, "{io}");
        assert!(v["bytes_read"].as_u64().unwrap() > 400 << 20, "{io}");
        assert!(
            peak_kib < 32 * 1024,
            "{io}: peak RSS {peak_kib} KiB while framing 100 MB bodies"
        );
    }
}

#[test]
fn ten_thousand_connections_stay_under_64_mb() {
    let Some(nginx) = support::nginx::Nginx::start("c10k") else {
        return;
    };
    for io in ["auto", "epoll"] {
        let (out, peak_kib) = peak_rss(urk().args([
            "--io",
            io,
            "-t1",
            "-c10000",
            "-d2s",
            "--json",
            &nginx.url("/"),
        ]));
        assert_eq!(out.status.code(), Some(0), "{io}: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["requests"].as_u64().unwrap() > 10_000, "{io}: {v}");
        assert_eq!(v["errors"]["connect"], 0, "{io}: {v}");
        assert!(
            peak_kib < 64 * 1024,
            "{io}: peak RSS {peak_kib} KiB at -c 10000"
        );
        // Let nginx close the last run's connections before the next.
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Local ports run out: in a network namespace of its own with only 10
/// ephemeral ports, 50 connections to one nginx cannot all open. The
/// failures are counted and the report names the cause.
#[test]
fn exhausted_local_ports_are_counted_and_explained() {
    let Some(nginx) = netns_nginx() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("urk-ports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _pki = support::nginx::write_config(&dir, [8080, 8443, 8081, 8444]);
    let script = format!(
        "ip link set lo up && sysctl -q -w net.ipv4.ip_local_port_range='40000 40009' && \
         ({nginx} -p {d} -c {d}/nginx.conf -e {d}/error.log & ) && sleep 0.5 && \
         {urk} -t1 -c50 -d1s -T 500ms http://127.0.0.1:8080/; rc=$?; kill $(cat {d}/nginx.pid) 2>/dev/null; exit $rc",
        d = dir.display(),
        urk = support::cli::bin(),
    );
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{s}{}", text(&out.stderr));
    assert!(s.contains("Local ports exhausted:"), "{s}");
    assert!(s.contains("Socket errors: connect "), "{s}");
    let n = requests_in(&s);
    assert!(n > 0, "the connections that did open keep loading: {s}");
}

/// `--bind`: in a network namespace with 1,000 ephemeral ports, 3,000
/// connections to one nginx open over four source addresses (the port
/// chosen at the connect, per address), nginx sees all four, and without
/// `--bind` the same run counts its connect failures by cause.
#[test]
fn source_addresses_multiply_the_ports() {
    let Some(nginx) = netns_nginx() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("urk-bind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _pki = support::nginx::write_config(&dir, [8080, 8443, 8081, 8444]);
    let run = "-t2 -c3000 -d1s -T 3s -q --json";
    let script = format!(
        "ip link set lo up && sysctl -q -w net.ipv4.ip_local_port_range='40000 40999' && \
         ({nginx} -p {d} -c {d}/nginx.conf -e {d}/error.log & ) && sleep 0.5 && \
         {urk} {run} --bind 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 http://127.0.0.1:8080/ > {d}/bound.json; a=$?; \
         {urk} {run} http://127.0.0.1:8080/ > {d}/unbound.json; b=$?; \
         kill $(cat {d}/nginx.pid) 2>/dev/null; echo $a $b",
        d = dir.display(),
        urk = support::cli::bin(),
    );
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .output()
        .unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let (bound, unbound, peers) = (read("bound.json"), read("unbound.json"), read("peers.log"));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(text(&out.stdout).trim(), "0 0", "{}", text(&out.stderr));
    let bound: serde_json::Value = serde_json::from_str(&bound).unwrap();
    assert_eq!(bound["errors"]["connect"], 0, "{bound:#}");
    assert!(bound["connections_opened"].as_u64().unwrap() >= 3000);
    // Every source address carried its share.
    for a in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        let n = peers.lines().filter(|l| *l == a).count();
        assert!(n >= 750, "{a}: {n} requests");
    }
    let unbound: serde_json::Value = serde_json::from_str(&unbound).unwrap();
    let lacking = unbound["connect_errors"]["no_local_ports"]
        .as_u64()
        .unwrap();
    assert!(lacking > 0, "{unbound:#}");
    assert!(peers.lines().any(|l| l == "127.0.0.1"));
}

#[test]
fn bad_source_addresses_are_refused_before_any_load() {
    let server = TestServer::start(ServerConfig::default());
    for (bind, says) in [
        ("10.255.255.1", "not an address of this machine"),
        ("::1", "not of the target's family"),
        ("127.0.0.0/8", "more than 65536 addresses"),
        ("nonsense", "not an IP address or a CIDR block"),
    ] {
        let out = support::cli::urk(&["-n", "10", "--bind", bind, &server.url("/")]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bind}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{bind}: {err}");
    }
    assert_eq!(server.settled(), 0);
    // A block on loopback: every connection gets one of its hosts, on
    // either backend.
    for io in ["full", "epoll"] {
        let out = support::cli::urk(&[
            "--io",
            io,
            "-t1",
            "-c6",
            "-n",
            "60",
            "--bind",
            "127.0.0.0/29",
            &server.url("/"),
        ]);
        assert_eq!(out.status.code(), Some(0), "{io}: {}", text(&out.stderr));
    }
    assert_eq!(server.settled(), 120);
}

/// `--connect-spread`: a name with four addresses, three of them served
/// (a namespace of its own, and a hosts file of its own mounted over
/// /etc/hosts): every served address gets its share of the connections,
/// the unserved one is left out and named; without the flag all go to
/// the first.
#[test]
fn connections_spread_over_a_names_addresses() {
    let Some(nginx) = netns_nginx() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("urk-spread-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("hosts"),
        "127.0.0.2 spread.test\n127.0.0.3 spread.test\n127.0.0.4 spread.test\n127.0.0.5 spread.test\n",
    )
    .unwrap();
    // Which of its addresses each request came in on.
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn; events {{ worker_connections 1000; }}\n\
             http {{ log_format dst '$server_addr'; access_log {d}/dst.log dst;\n\
             server {{ listen 127.0.0.2:8080; listen 127.0.0.3:8080; listen 127.0.0.4:8080;\n\
             location / {{ return 200 \"ok\\n\"; }} }} }}\n"
        ),
    )
    .unwrap();
    let script = format!(
        "mount --bind {d}/hosts /etc/hosts && ip link set lo up && \
         ({nginx} -p {d} -c {d}/nginx.conf & ) && sleep 0.5 && \
         {urk} -q --json -t2 -c12 -n 1200 --connect-spread http://spread.test:8080/ > {d}/spread.json 2> {d}/spread.err; a=$?; \
         {urk} -q --json -t2 -c12 -n 300 http://spread.test:8080/ > {d}/first.json; b=$?; \
         kill $(cat {d}/nginx.pid) 2>/dev/null; echo $a $b",
        urk = support::cli::bin(),
    );
    let out = Command::new("unshare")
        .args(["--net", "--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let (spread, err, log) = (read("spread.json"), read("spread.err"), read("dst.log"));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        text(&out.stdout).trim(),
        "0 0",
        "{}{err}",
        text(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(&spread).unwrap();
    assert_eq!(r["requests"], 1200);
    assert_eq!(r["errors"]["connect"], 0, "{r:#}");
    assert_eq!(
        r["addresses"],
        serde_json::json!(["127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.4:8080"])
    );
    assert!(
        err.contains("spread over 3 addresses")
            && err.contains("left out, no connection: 127.0.0.5:8080"),
        "{err}"
    );
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1500, "every request logged");
    // The spread run's 1200: 4 connections on each address.
    for a in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let n = lines[..1200].iter().filter(|l| **l == a).count();
        assert!((250..=550).contains(&n), "{a}: {n} of 1200");
    }
    // Without the flag, the first address takes them all.
    assert!(
        lines[1200..].iter().all(|l| *l == "127.0.0.2"),
        "{:?}",
        &lines[1200..1210]
    );
}

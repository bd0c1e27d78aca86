//! `--log`: a record per request, counted against the report; sampled;
//! lost requests with their fault; a writer that falls behind drops and
//! counts, never slows the load; memory stays bounded however long the
//! run.

#[path = "support/schema.rs"]
mod schema;
mod support;

use std::time::Duration;

use support::cli::{command, refused, text, urk};
use support::server::{ServerConfig, TestServer};

fn report(args: &[&str]) -> serde_json::Value {
    let out = urk(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema::validate(&v);
    v
}

fn temp(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("urk-log-{}-{name}", std::process::id()))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_response_has_its_record() {
    let server = TestServer::start(ServerConfig::default());
    let path = temp("all.csv");
    let v = report(&[
        "-t2",
        "-c6",
        "-n",
        "3000",
        "--log",
        &path,
        "--json",
        &server.url("/"),
    ]);
    let csv = std::fs::read_to_string(&path).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("intended_us,sent_us,latency_us,status,body_bytes,error,target,worker,connection")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let requests = v["requests"].as_u64().unwrap();
    assert_eq!(rows.len() as u64, requests);
    assert_eq!(v["log"]["records"], requests);
    assert_eq!(v["log"]["dropped"], 0);
    let started = (v["started_at"].as_f64().unwrap() * 1e6) as u64;
    for r in &rows {
        assert_eq!(r.len(), 9, "{r:?}");
        let (intended, sent): (u64, u64) = (r[0].parse().unwrap(), r[1].parse().unwrap());
        assert!(intended <= sent && intended + 1_000_000 >= started, "{r:?}");
        assert_eq!((r[3], r[4], r[5]), ("200", "12", ""));
        assert!(r[7] == "0" || r[7] == "1");
        assert!(r[8].parse::<u32>().unwrap() < 6);
    }
    // All six connections appear.
    let conns: std::collections::HashSet<&str> = rows.iter().map(|r| r[8]).collect();
    assert_eq!(conns.len(), 6);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_sample_as_json_lines_and_lost_requests_with_their_fault() {
    let server = TestServer::start(ServerConfig::default());
    let path = temp("sample.jsonl");
    let v = report(&[
        "-t1",
        "-c4",
        "-n",
        "20000",
        "--log",
        &path,
        "--log-sample",
        "10%",
        "--json",
        &server.url("/"),
    ]);
    let n = std::fs::read_to_string(&path).unwrap().lines().count() as f64;
    assert!((1500.0..2500.0).contains(&n), "{n} of 20,000 at 10%");
    assert_eq!(v["log"]["sample"], 0.1);
    assert_eq!(v["log"]["format"], "json");
    for l in std::fs::read_to_string(&path).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(r["status"], 200);
    }
    // A server that stalls past the timeout: the lost requests are there,
    // with "timeout".
    let stalling = TestServer::start(ServerConfig {
        stall: Some((Duration::from_millis(300), Duration::from_millis(800))),
        ..Default::default()
    });
    let path = temp("lost.jsonl");
    let v = report(&[
        "-t1",
        "-c2",
        "-d2s",
        "-T",
        "200ms",
        "--log",
        &path,
        "--json",
        &stalling.url("/"),
    ]);
    let lost = v["lost_causes"]["timeout"].as_u64().unwrap();
    assert!(lost > 0, "{}", v["lost_causes"]);
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let timeouts = records.iter().filter(|r| r["error"] == "timeout").count() as u64;
    assert_eq!(timeouts, lost);
    assert!(records
        .iter()
        .filter(|r| r["error"] == "timeout")
        .all(|r| r["status"] == 0));
    assert_eq!(records.len() as u64, v["requests"].as_u64().unwrap() + lost);
    // A log that cannot be written (a full disk): the run's report stands,
    // and says the log stopped.
    let out = urk(&[
        "-t1",
        "-c2",
        "-n",
        "5000",
        "--log",
        "/dev/full",
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report_text = text(&out.stdout);
    assert!(report_text.contains("5000 requests in"), "{report_text}");
    assert!(
        report_text.contains("Warning: the request log stopped early"),
        "{report_text}"
    );
    // Bad flags: one line, exit 2.
    for (args, want) in [
        (vec!["--log-sample", "10%"], "go with --log FILE"),
        (
            vec!["--log", "x.csv", "--log-format", "xml"],
            "expected csv or json",
        ),
        (
            vec!["--log", "x.csv", "--log-sample", "0"],
            "invalid --log-sample",
        ),
        (
            vec!["--log", "/nonexistent/dir/x.csv"],
            "cannot write the request log",
        ),
    ] {
        let mut a = vec!["-t1", "-c1", "-n", "10"];
        a.extend(args);
        let url = server.url("/");
        a.push(&url);
        refused(&a, want);
    }
}

#[test]
fn a_writer_that_falls_behind_drops_and_counts() {
    let server = TestServer::start(ServerConfig::default());
    // The log goes into a pipe read slowly: the writer blocks, its queue
    // fills, and the workers drop batches rather than wait.
    let fifo = temp("slow.fifo");
    let _ = std::fs::remove_file(&fifo);
    let c = std::ffi::CString::new(fifo.as_str()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut f = std::fs::File::open(&fifo).unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0usize;
            // Nothing while the run lasts (the queue of 32 batches of
            // 4,096 records and the writer's buffer hold about 150,000
            // records; the run makes far more), then as fast as it comes,
            // so that the last records get through.
            std::thread::sleep(Duration::from_secs(7));
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        })
    };
    let v = report(&[
        "-t1",
        "-c8",
        "-d6s",
        "--log",
        &fifo,
        "--log-format",
        "csv",
        "--json",
        &server.url("/"),
    ]);
    let _ = reader.join();
    let (records, dropped) = (
        v["log"]["records"].as_u64().unwrap(),
        v["log"]["dropped"].as_u64().unwrap(),
    );
    assert!(dropped > 0, "{}", v["log"]);
    assert_eq!(records + dropped, v["requests"].as_u64().unwrap());
    assert!(text(&urk(&["-t1", "-c1", "-n", "1", &server.url("/")]).stderr).is_empty());
    let _ = std::fs::remove_file(&fifo);
}

/// Peak RSS of a run, KiB.
// The child is reaped by wait4 (for its rusage), not Child::wait.
#[allow(clippy::zombie_processes)]
fn peak_rss(args: &[&str]) -> i64 {
    let child = command()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as i32;
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    usage.ru_maxrss
}

#[test]
fn memory_stays_bounded_however_long_the_run() {
    let server = TestServer::start(ServerConfig::default());
    let url = server.url("/");
    let (short, long) = (temp("5s.csv"), temp("60s.csv"));
    // A fifth of the requests: a million records in a minute, without
    // filling the disk.
    let a = peak_rss(&[
        "-t1",
        "-c8",
        "-d5s",
        "--log",
        &short,
        "--log-sample",
        "20%",
        &url,
    ]);
    let b = peak_rss(&[
        "-t1",
        "-c8",
        "-d60s",
        "--log",
        &long,
        "--log-sample",
        "20%",
        &url,
    ]);
    let lines = |p: &str| {
        use std::io::BufRead;
        std::io::BufReader::new(std::fs::File::open(p).unwrap())
            .lines()
            .count()
    };
    eprintln!(
        "peak RSS: 5 s {a} KiB ({} records), 60 s {b} KiB ({} records)",
        lines(&short),
        lines(&long)
    );
    assert!(lines(&long) > 5 * lines(&short), "the long run kept more");
    assert!(b < a + 16 * 1024, "peak RSS grew from {a} KiB to {b} KiB");
    let _ = (std::fs::remove_file(&short), std::fs::remove_file(&long));
}

/// `--find-max` logs its probe's requests and then its steps', into one
/// file with one header: every request of the search has its record, and
/// the steps' records follow the probe's in time.
#[test]
fn a_capacity_search_logs_its_probe_and_its_steps() {
    let server = TestServer::start(ServerConfig::default());
    let path = temp("search.csv");
    let out = urk(&[
        "-t1",
        "-c4",
        "-d5s",
        "--step-duration",
        "2s",
        "--find-max",
        "p99<1s",
        "--log",
        &path,
        "--json",
        &server.url("/"),
    ]);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        text(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema::validate(&v);
    let csv = std::fs::read_to_string(&path).unwrap();
    let headers = csv.lines().filter(|l| l.starts_with("intended_us")).count();
    assert_eq!(headers, 1);
    let rows = csv.lines().count() as u64 - 1;
    let requests = v["requests"].as_u64().unwrap();
    assert!(!v["find_max"]["steps"].as_array().unwrap().is_empty());
    assert_eq!(rows, requests, "{}", v["log"]);
    assert_eq!(v["log"]["records"], requests);
    assert_eq!(server.settled(), requests);
    let _ = std::fs::remove_file(&path);
}

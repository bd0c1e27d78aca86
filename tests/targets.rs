//! `--targets FILE` and placeholders, against the in-repo server, which
//! records every request it reads: what was sent is checked line by line,
//! header by header and body by body, and counts are exact with `-n`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use support::cli::{text, urk};
use support::server::{Seen, ServerConfig, TestServer};

fn recording() -> TestServer {
    TestServer::start(ServerConfig {
        record: true,
        ..Default::default()
    })
}

/// A file in a fresh directory of this test's own.
fn file(test: &str, name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("urk-targets-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// Runs urk with `args`, expects success, and returns its JSON report.
fn run_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-q", "--json"];
    all.extend_from_slice(args);
    let out = urk(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn paths(seen: &[Seen]) -> Vec<&str> {
    seen.iter().map(|s| s.path.as_str()).collect()
}

#[test]
fn url_lines_go_out_in_turn_and_counts_are_exact() {
    let server = recording();
    let t = file("lines", "t.txt", "# a comment\n/a\n\nb?x=1\n/c\n");
    let base = server.url("/p/");
    let r = run_json(&[
        "-t1",
        "-c1",
        "-n",
        "9",
        "--targets",
        t.to_str().unwrap(),
        &base,
    ]);
    assert_eq!(r["requests"], 9);
    let seen = server.seen();
    assert_eq!(
        paths(&seen),
        ["/a", "/p/b?x=1", "/c", "/a", "/p/b?x=1", "/c", "/a", "/p/b?x=1", "/c"]
    );
    assert!(seen.iter().all(|s| s.method == "GET" && s.body.is_empty()));
    let targets = r["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3);
    for (t, line) in targets.iter().zip([2, 4, 5]) {
        assert_eq!(
            (t["requests"].as_u64(), t["line"].as_u64()),
            (Some(3), Some(line))
        );
        assert_eq!(t["status"]["200"], 3);
    }
}

#[test]
fn blocks_send_their_methods_headers_and_bodies() {
    let server = recording();
    let body_file = file("blocks", "body.json", "{\"from\": \"file\"}");
    let t = file(
        "blocks",
        "t.txt",
        &format!(
            "POST /login\nContent-Type: text/plain\nX-A: b\n\nuser=a\nline two\n###\nPUT /doc\n\n@{}\n###\nHEAD /h\n###\nDELETE /x\n",
            body_file.display()
        ),
    );
    // -p 4 writes four different requests in one batch; the HEAD among
    // them is framed without a body although its response says 12 bytes.
    let r = run_json(&[
        "-t1",
        "-c2",
        "-p4",
        "-n",
        "400",
        "-H",
        "X-Every: 1",
        "--targets",
        t.to_str().unwrap(),
        &server.url("/"),
    ]);
    assert_eq!(r["requests"], 400);
    assert_eq!(r["errors"]["parse"], 0);
    assert_eq!(r["requests_lost"], 0);
    let seen = server.seen();
    assert_eq!(seen.len(), 400);
    let by_method: BTreeMap<&str, Vec<&Seen>> = seen.iter().fold(BTreeMap::new(), |mut m, s| {
        m.entry(s.method.as_str()).or_insert_with(Vec::new).push(s);
        m
    });
    assert_eq!(by_method.len(), 4);
    assert!(by_method.values().all(|v| v.len() == 100));
    let post = by_method["POST"][0];
    assert_eq!(post.path, "/login");
    assert_eq!(post.body, b"user=a\nline two");
    assert_eq!(post.header("content-type"), Some("text/plain"));
    assert_eq!(post.header("x-a"), Some("b"));
    assert_eq!(post.header("content-length"), Some("15"));
    assert_eq!(by_method["PUT"][0].body, b"{\"from\": \"file\"}");
    assert!(by_method["HEAD"][0].body.is_empty());
    assert!(seen.iter().all(|s| s.header("x-every") == Some("1")));
}

#[test]
fn json_lines_are_sent_as_written() {
    let server = recording();
    let url = server.url("/j");
    let t = file(
        "json",
        "t.jsonl",
        &format!(
            "{{\"method\": \"PATCH\", \"url\": \"{url}\", \"header\": {{\"X-K\": [\"1\", \"2\"]}}, \"body\": \"hi\"}}\n{{\"url\": \"/other\"}}\n"
        ),
    );
    // No URL on the command line: the file's full URL names the server.
    let r = run_json(&["-t1", "-c1", "-n", "4", "--targets", t.to_str().unwrap()]);
    assert_eq!(r["requests"], 4);
    let seen = server.seen();
    assert_eq!(paths(&seen), ["/j", "/other", "/j", "/other"]);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].body.as_slice()),
        ("PATCH", &b"hi"[..])
    );
    let ks: Vec<&str> = seen[0]
        .headers
        .iter()
        .filter(|(n, _)| n == "X-K")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(ks, ["1", "2"]);
}

#[test]
fn every_placeholder_is_filled_and_seq_is_unique_across_threads() {
    let server = recording();
    let t = file(
        "placeholders",
        "t.txt",
        "POST /u/{{seq}}?r={{rand:10:99}}\nX-Hex: {{hex:12}}\nX-Who: {{env:URK_TEST_WHO}}\n\n{\"id\": \"{{uuid}}\", \"n\": \"{{seq:6}}\"}\n",
    );
    let n = 3000u64;
    let out = support::cli::command()
        .env("URK_TEST_WHO", "tester")
        .args([
            "-q",
            "--json",
            "-t2",
            "-c8",
            "-n",
            &n.to_string(),
            "--targets",
            t.to_str().unwrap(),
            &server.url("/"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["requests"], n);
    let seen = server.seen();
    assert_eq!(seen.len() as u64, n);
    let mut seqs = BTreeSet::new();
    let mut uuids = BTreeSet::new();
    let mut rands = BTreeSet::new();
    for s in &seen {
        let (seq, rand) = s.path["/u/".len()..].split_once("?r=").unwrap();
        assert_eq!(seq.len(), 10, "{}", s.path);
        let seq: u64 = seq.parse().unwrap();
        seqs.insert(seq);
        let rand: u64 = rand.parse().unwrap();
        assert!((10..=99).contains(&rand), "{}", s.path);
        rands.insert(rand);
        let hex = s.header("x-hex").unwrap();
        assert!(
            hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{hex}"
        );
        assert_eq!(s.header("x-who"), Some("tester"));
        let body: serde_json::Value = serde_json::from_slice(&s.body).expect("the body is JSON");
        let uuid = body["id"].as_str().unwrap();
        assert_eq!((uuid.len(), &uuid[14..15]), (36, "4"), "{uuid}");
        uuids.insert(uuid.to_string());
        let n: u64 = body["n"].as_str().unwrap().parse().unwrap();
        assert_eq!(n, seq % 1_000_000, "one request, one sequence number");
        assert_eq!(
            s.header("content-length").unwrap(),
            s.body.len().to_string()
        );
    }
    // One sequence across both threads and all connections: exactly
    // 0..n, each once (-n is exact and nothing was lost).
    assert_eq!(seqs.len() as u64, n, "every {{seq}} is unique");
    assert_eq!((seqs.first(), seqs.last()), (Some(&0), Some(&(n - 1))));
    assert_eq!(uuids.len() as u64, n);
    assert!(rands.len() > 60, "rand covers its range: {}", rands.len());
}

#[test]
fn weights_hold_over_ten_thousand_requests() {
    let server = recording();
    let t = file(
        "weights",
        "t.txt",
        "# weight=1\nGET /one\n###\n# weight=3\nGET /three\n###\n# weight=6\nGET /six\n",
    );
    let n = 10_000u64;
    let r = run_json(&[
        "-t2",
        "-c8",
        "-n",
        &n.to_string(),
        "--seed",
        "42",
        "--targets",
        t.to_str().unwrap(),
        &server.url("/"),
    ]);
    assert_eq!(r["requests"], n);
    assert_eq!(r["seed"], 42);
    let seen = server.seen();
    assert_eq!(seen.len() as u64, n);
    for (path, weight) in [("/one", 1u64), ("/three", 3), ("/six", 6)] {
        let got = seen.iter().filter(|s| s.path == path).count() as f64;
        let want = (n * weight / 10) as f64;
        assert!(
            (got - want).abs() <= 0.03 * n as f64,
            "{path}: {got} of {n}, expected about {want}"
        );
    }
    let reported: u64 = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(reported, n);
}

#[test]
fn a_seed_repeats_the_sequence() {
    let t = file("seed", "t.txt", "/a\n/b\n/c\n/d\n/{{rand:0:999}}\n");
    let order = |seed: &str| {
        let server = recording();
        run_json(&[
            "-t1",
            "-c1",
            "-n",
            "200",
            "--order",
            "random",
            "--seed",
            seed,
            "--targets",
            t.to_str().unwrap(),
            &server.url("/"),
        ]);
        server
            .seen()
            .into_iter()
            .map(|s| s.path)
            .collect::<Vec<_>>()
    };
    let (a, b, c) = (order("7"), order("7"), order("8"));
    assert_eq!(a.len(), 200);
    assert_eq!(a, b, "the same seed gives the same sequence");
    assert_ne!(a, c, "another seed another");
    assert!(
        a.iter().collect::<BTreeSet<_>>().len() > 4,
        "random order visits every target"
    );
}

#[test]
fn statuses_and_latency_are_reported_per_target() {
    let server = TestServer::start(ServerConfig {
        status_by_path: vec![("/missing".into(), 404), ("/broken".into(), 500)],
        ..Default::default()
    });
    let t = file("status", "t.txt", "/ok\n/missing\n/broken\n");
    let r = run_json(&[
        "-t1",
        "-c3",
        "-n",
        "300",
        "--targets",
        t.to_str().unwrap(),
        &server.url("/"),
    ]);
    let targets = r["targets"].as_array().unwrap();
    let status_of = |i: usize| targets[i]["status"].as_object().unwrap().clone();
    assert_eq!(status_of(0).keys().collect::<Vec<_>>(), ["200"]);
    assert_eq!(status_of(1).keys().collect::<Vec<_>>(), ["404"]);
    assert_eq!(status_of(2).keys().collect::<Vec<_>>(), ["500"]);
    assert_eq!(r["non_2xx_3xx"], 200);
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../docs/report.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&r).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // Two runs of one file merge target by target.
    let dir = std::env::temp_dir().join(format!("urk-targets-{}-merge", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("a.json");
    std::fs::write(&a, r.to_string()).unwrap();
    let out = urk(&["merge", "--json", a.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["targets"][1]["requests"], 200);
    assert_eq!(m["targets"][1]["status"]["404"], 200);
    for t in targets {
        assert_eq!(t["requests"], 100);
        assert!(t["latency_us"]["p99"].as_u64().unwrap() > 0);
    }
    // The text report lists them with --latency.
    let out = urk(&[
        "-q",
        "-t1",
        "-c3",
        "-n",
        "30",
        "--latency",
        "--targets",
        t.to_str().unwrap(),
        &server.url("/"),
    ]);
    let s = text(&out.stdout);
    assert!(s.contains("  Targets "), "{s}");
    let line = s.lines().find(|l| l.contains("GET /missing")).expect(&s);
    assert!(line.contains("404:10"), "{line}");
}

#[test]
fn bad_targets_files_fail_with_one_line_naming_the_place_and_send_nothing() {
    let server = recording();
    let url = server.url("/");
    let cases = [
        ("empty", "", "no targets"),
        ("header", "POST /a\nnot a header\n", "line 2"),
        ("server", "/a\nhttp://127.0.0.2:1/b\n", "line 2"),
        ("placeholder", "/a\n/{{nope}}\n", "line 2"),
        (
            "env",
            "/{{env:URK_SURELY_UNSET_VAR}}\n",
            "URK_SURELY_UNSET_VAR",
        ),
        ("weight", "# weight=x\nGET /a\n", "line 1"),
    ];
    for (name, content, words) in cases {
        let t = file("bad", &format!("{name}.txt"), content);
        let out = urk(&["-q", "-n", "10", "--targets", t.to_str().unwrap(), &url]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(words), "{name}: {err}");
    }
    let out = urk(&["-q", "--targets", "/nonexistent/targets.txt", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read --targets"));
    let out = urk(&["-q", "--order", "random", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(server.seen().is_empty(), "nothing was sent");
}

#[test]
fn a_placeholder_in_the_url_needs_no_file() {
    let server = recording();
    let r = run_json(&["-t1", "-c2", "-n", "50", &server.url("/item/{{seq:3}}")]);
    assert_eq!(r["requests"], 50);
    assert!(r.get("targets").is_none());
    let ids: BTreeSet<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(ids.len(), 50);
    assert!(
        ids.contains("/item/000") && ids.contains("/item/049"),
        "{ids:?}"
    );
}

#[test]
fn targets_work_at_every_io_level() {
    for level in ["full", "basic", "legacy", "epoll"] {
        let server = recording();
        let t = file(
            "levels",
            &format!("{level}.txt"),
            "GET /a\n###\nPOST /b\n\nbody-{{seq:4}}\n###\nHEAD /c\n",
        );
        let r = run_json(&[
            "--io",
            level,
            "-t1",
            "-c4",
            "-p2",
            "-n",
            "600",
            "--targets",
            t.to_str().unwrap(),
            &server.url("/"),
        ]);
        assert_eq!(r["requests"], 600, "{level}");
        assert_eq!(r["errors"]["parse"], 0, "{level}");
        let seen = server.seen();
        assert_eq!(seen.len(), 600, "{level}");
        let bodies: BTreeSet<&[u8]> = seen
            .iter()
            .filter(|s| s.method == "POST")
            .map(|s| s.body.as_slice())
            .collect();
        assert_eq!(bodies.len(), 200, "{level}: every POST body unique");
    }
}

#[test]
fn targets_go_over_tls_too() {
    use support::server::TlsMode;
    use support::tls::{Leaf, Pki};
    let pki = Pki::new();
    let server = TestServer::start(ServerConfig {
        record: true,
        tls: Some(TlsMode::new(pki.server(Leaf::Good, false))),
        ..Default::default()
    });
    let t = file(
        "tls",
        "t.txt",
        "POST /a/{{seq:5}}\n\nsecret-{{hex:8}}\n###\nHEAD /b\n",
    );
    let r = run_json(&[
        "-t2",
        "-c4",
        "-p3",
        "-n",
        "300",
        "--cacert",
        &pki.ca(),
        "--targets",
        t.to_str().unwrap(),
        &server.url("/"),
    ]);
    assert_eq!(r["requests"], 300);
    assert_eq!(r["errors"]["parse"], 0);
    let seen = server.seen();
    assert_eq!(seen.len(), 300);
    let posts: BTreeSet<&str> = seen
        .iter()
        .filter(|s| s.method == "POST")
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(posts.len(), 150, "every POST path unique");
    assert!(seen
        .iter()
        .filter(|s| s.method == "POST")
        .all(|s| s.body.len() == 15 && s.body.starts_with(b"secret-")));
}

//! wrk's Lua API (`-s FILE`), hook by hook, against the in-repo server,
//! which records every request it reads: what the scripts made is checked
//! request by request, and what they printed line by line.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use support::cli::{requests_in, text, urk};
use support::server::{ServerConfig, TestServer};

fn recording() -> TestServer {
    TestServer::start(ServerConfig {
        record: true,
        ..Default::default()
    })
}

/// Writes `lua` to a file of this test's own.
fn script(test: &str, lua: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("urk-script-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{test}.lua"));
    std::fs::write(&p, lua).unwrap();
    p
}

/// Runs urk quietly with `args`; the script path goes in as `-s`.
fn run(path: &Path, args: &[&str]) -> Output {
    let mut all = vec!["-q", "-s", path.to_str().unwrap()];
    all.extend_from_slice(args);
    urk(&all)
}

fn ok(out: &Output) -> String {
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{s}{}", text(&out.stderr));
    s
}

/// The value printed after `key=` on a line of its own.
fn printed<'a>(out: &'a str, key: &str) -> Vec<&'a str> {
    out.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_wrk_table_has_wrks_fields_and_init_gets_the_arguments() {
    let server = recording();
    let s = script(
        "fields",
        r#"
function init(args)
  print("scheme=" .. wrk.scheme)
  print("host=" .. wrk.host)
  print("port=" .. tostring(wrk.port))
  print("method=" .. wrk.method)
  print("path=" .. wrk.path)
  print("header=" .. tostring(wrk.headers["X-From-Flag"]))
  print("hostheader=" .. wrk.headers["Host"])
  print("arg0=" .. args[0])
  print("args=" .. table.concat(args, ",", 1))
  print("thread=" .. tostring(wrk.thread ~= nil))
  print("fmt=" .. string.format("%d", 7 / 2) .. tostring(unpack ~= nil))
end
"#,
    );
    let url = server.url("/p?q=1");
    let out = run(
        &s,
        &[
            "-t1",
            "-c1",
            "-n",
            "3",
            "-H",
            "X-From-Flag: yes",
            &url,
            "--",
            "a",
            "b c",
        ],
    );
    let o = ok(&out);
    let port = server.addr.port().to_string();
    for (k, v) in [
        ("scheme", "http"),
        ("host", "127.0.0.1"),
        ("port", port.as_str()),
        ("method", "GET"),
        ("path", "/p?q=1"),
        ("header", "yes"),
        ("hostheader", &format!("127.0.0.1:{port}")),
        ("arg0", url.as_str()),
        ("args", "a,b c"),
        ("thread", "true"),
        ("fmt", "3true"),
    ] {
        assert_eq!(printed(&o, k), [v], "{k}\n{o}");
    }
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn a_static_script_sends_its_one_request() {
    let server = recording();
    let s = script(
        "static",
        r#"
wrk.method = "POST"
wrk.body   = "a=1&b=2"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"#,
    );
    let o = ok(&run(
        &s,
        &["-t2", "-c4", "-p2", "-n", "500", &server.url("/form")],
    ));
    assert_eq!(requests_in(&o), 500);
    let seen = server.seen();
    assert_eq!(seen.len(), 500);
    for r in &seen {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/form"));
        assert_eq!(r.body, b"a=1&b=2");
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(r.header("content-length"), Some("7"));
    }
}

#[test]
fn request_makes_each_request_and_n_stays_exact() {
    let server = recording();
    let s = script(
        "counter",
        r#"
counter = 0
request = function()
  local path = "/" .. counter
  wrk.headers["X-Counter"] = counter
  counter = counter + 1
  return wrk.format(nil, path)
end
"#,
    );
    let o = ok(&run(&s, &["-t1", "-c3", "-n", "300", &server.url("/")]));
    assert_eq!(requests_in(&o), 300);
    let seen = server.seen();
    assert_eq!(seen.len(), 300);
    let paths: BTreeSet<u64> = seen.iter().map(|r| r.path[1..].parse().unwrap()).collect();
    assert_eq!(paths, (0..300).collect(), "one request per call, none lost");
    assert!(seen
        .iter()
        .all(|r| r.header("x-counter") == Some(&r.path[1..])));
}

#[test]
fn pipelined_requests_from_one_call_are_each_counted_and_n_cuts_them_exactly() {
    let server = recording();
    let s = script(
        "pipeline",
        r#"
init = function(args)
  local r = {}
  r[1] = wrk.format(nil, "/?one")
  r[2] = wrk.format("HEAD", "/?two")
  r[3] = wrk.format(nil, "/?three")
  req = table.concat(r)
end
request = function() return req end
"#,
    );
    // 100 is not a multiple of 3: the last call's requests are cut.
    let out = run(&s, &["--json", "-t1", "-c2", "-n", "100", &server.url("/")]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["requests"], 100, "{}", text(&out.stderr));
    assert_eq!(r["errors"]["parse"], 0);
    assert_eq!(r["requests_sent"], 100);
    let seen = server.seen();
    assert_eq!(seen.len(), 100);
    assert_eq!(seen.iter().filter(|r| r.method == "HEAD").count(), 33);
    // One latency sample per response, not per call.
    let h = base64_len(&r);
    assert_eq!(h, 100);
}

/// Samples in the report's latency histogram.
fn base64_len(r: &serde_json::Value) -> u64 {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD
        .decode(r["latency_histogram_v2"].as_str().unwrap())
        .unwrap();
    let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut &b[..])
        .unwrap();
    h.len()
}

#[test]
fn response_gets_status_headers_and_body_only_when_it_takes_them() {
    let server = TestServer::start(ServerConfig {
        status_by_path: vec![("/missing".into(), 404)],
        ..Default::default()
    });
    let s = script(
        "response",
        r#"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n = 0; statuses = {}; server = ""; body = "" end
request = function()
  n = n + 1
  return wrk.format(nil, (n % 2 == 0) and "/missing" or "/ok")
end
function response(status, headers, b)
  statuses[status] = (statuses[status] or 0) + 1
  server = headers["Server"]
  body = b
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    print("200=" .. s[200])
    print("404=" .. s[404])
    print("server=" .. t:get("server"))
    print("body=" .. t:get("body"):gsub("\n", "\\n"))
  end
end
"#,
    );
    let o = ok(&run(&s, &["-t1", "-c1", "-n", "40", &server.url("/")]));
    assert_eq!(printed(&o, "200"), ["20"]);
    assert_eq!(printed(&o, "404"), ["20"]);
    assert_eq!(printed(&o, "server"), ["urk-test"]);
    assert_eq!(printed(&o, "body"), ["hello world\\n"]);

    // A hook that takes only the status is still called for every response.
    let s = script(
        "response-status",
        r#"
local threads = {}
function setup(thread) table.insert(threads, thread) end
got = 0
function response() got = got + 1 end
function done() print("got=" .. threads[1]:get("got")) end
"#,
    );
    let o = ok(&run(&s, &["-t1", "-c2", "-n", "77", &server.url("/")]));
    assert_eq!(printed(&o, "got"), ["77"]);
}

#[test]
fn setup_and_thread_values_cross_between_states() {
    let server = recording();
    let s = script(
        "setup",
        r#"
local counter = 1
local threads = {}
function setup(thread)
  thread:set("id", counter)
  thread:set("tags", {name = "t" .. counter, list = {1, 2}})
  table.insert(threads, thread)
  counter = counter + 1
end
function init(args)
  requests = 0
  responses = 0
  print("created=" .. id .. ":" .. tags.name .. ":" .. #tags.list)
end
function request()
  requests = requests + 1
  return wrk.request()
end
function response(status, headers, body) responses = responses + 1 end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    print("made=" .. t:get("id") .. ":" .. t:get("requests") .. ":" .. t:get("responses"))
  end
  print("summary=" .. summary.requests)
end
"#,
    );
    let o = ok(&run(&s, &["-t2", "-c4", "-n", "1000", &server.url("/")]));
    let created: BTreeSet<&str> = printed(&o, "created").into_iter().collect();
    assert_eq!(created, BTreeSet::from(["1:t1:2", "2:t2:2"]), "{o}");
    let made = printed(&o, "made");
    assert_eq!(made.len(), 2, "{o}");
    let mut total = 0;
    for (i, m) in made.iter().enumerate() {
        let f: Vec<u64> = m.split(':').map(|x| x.parse().unwrap()).collect();
        assert_eq!(f[0], i as u64 + 1);
        assert_eq!(f[1], f[2], "every request made got its response");
        total += f[1];
    }
    assert_eq!(total, 1000);
    assert_eq!(printed(&o, "summary"), ["1000"]);
    assert_eq!(server.seen().len(), 1000);
}

#[test]
fn thread_stop_ends_that_threads_load() {
    let server = recording();
    let s = script(
        "stop",
        r#"
local counter = 1
function response()
  if counter == 50 then wrk.thread:stop() end
  counter = counter + 1
end
"#,
    );
    let out = run(&s, &["--json", "-t2", "-c2", "-d5s", &server.url("/")]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = r["requests"].as_u64().unwrap();
    // 50 per thread, and whatever was in flight on its other connection.
    assert!((100..=102).contains(&n), "{n}");
    assert!(r["duration_s"].as_f64().unwrap() < 2.0);
    assert_eq!(r["stopped_by"], "script");
    assert!(r.get("script_error").is_none());
    assert_eq!(server.settled(), n);
}

#[test]
fn delay_spaces_the_requests_on_each_connection() {
    let server = recording();
    let s = script("delay", "function delay() return 25 end\n");
    let out = run(&s, &["--json", "-t1", "-c2", "-d1s", &server.url("/")]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = r["requests"].as_u64().unwrap();
    // Two connections, a request every 25 ms each: about 80 in a second.
    assert!((60..=82).contains(&n), "{n}");
}

#[test]
fn done_gets_wrks_summary_and_latency_objects() {
    let server = recording();
    let s = script(
        "done",
        r#"
done = function(summary, latency, requests)
  print("requests=" .. summary.requests)
  print("duration=" .. tostring(summary.duration > 0))
  print("errors=" .. summary.errors.connect + summary.errors.read + summary.errors.write
        + summary.errors.status + summary.errors.timeout)
  print("order=" .. tostring(latency.min <= latency:percentile(50)
        and latency:percentile(50) <= latency:percentile(99.9)
        and latency:percentile(99.9) <= latency.max))
  print("stats=" .. tostring(latency.mean > 0 and latency.stdev >= 0))
  local n = 0
  for i = 1, #latency do
    local value, count = latency(i)
    n = n + count
  end
  print("counted=" .. n)
  print("rates=" .. tostring(#requests >= 0))
end
"#,
    );
    let o = ok(&run(&s, &["-t1", "-c4", "-n", "2000", &server.url("/")]));
    assert_eq!(printed(&o, "requests"), ["2000"]);
    assert_eq!(printed(&o, "duration"), ["true"]);
    assert_eq!(printed(&o, "errors"), ["0"]);
    assert_eq!(printed(&o, "order"), ["true"]);
    assert_eq!(printed(&o, "stats"), ["true"]);
    assert_eq!(
        printed(&o, "counted"),
        ["2000"],
        "latency(i) walks every sample"
    );
    assert_eq!(printed(&o, "rates"), ["true"]);
}

#[test]
fn a_script_reads_a_file_with_io_lines() {
    let server = recording();
    let dir = std::env::temp_dir().join(format!("urk-script-{}-lines", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("paths.txt");
    std::fs::write(&list, "/a\n/b\n/c\n").unwrap();
    let s = script(
        "lines",
        r#"
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = 0
end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i - 1) % #paths + 1])
end
"#,
    );
    ok(&run(
        &s,
        &[
            "-t1",
            "-c1",
            "-n",
            "6",
            &server.url("/"),
            "--",
            list.to_str().unwrap(),
        ],
    ));
    let paths: Vec<String> = server.seen().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/a", "/b", "/c", "/a", "/b", "/c"]);
}

#[test]
fn bad_scripts_fail_with_one_line_naming_file_and_line() {
    let server = recording();
    let url = server.url("/");
    for (name, lua, words) in [
        ("syntax", "x = = 1\n", ":1:"),
        (
            "init",
            "function init(args)\n  error('no config')\nend\n",
            ":2: no config",
        ),
        (
            "setup",
            "function setup(t)\n  t:set('f', print)\nend\n",
            "cannot transfer",
        ),
        (
            "notstring",
            "function request() return 42 end\n",
            "not a string",
        ),
        (
            "badrequest",
            "function request() return 'nonsense\\r\\n\\r\\n' end\n",
            "invalid request",
        ),
    ] {
        let s = script(name, lua);
        let out = run(&s, &["-t1", "-c1", "-d2s", &url]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(words), "{name}: {err}");
        if name != "badrequest" {
            assert!(err.contains(&format!("{name}.lua")), "{name}: {err}");
        }
    }
    let out = urk(&["-q", "-s", "/nonexistent/script.lua", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read script"));
    assert!(server.seen().is_empty(), "nothing was sent");
}

#[test]
fn a_runtime_error_stops_the_run_after_the_report_so_far() {
    let server = recording();
    let s = script(
        "runtime",
        "n = 0\nfunction request()\n  n = n + 1\n  if n > 20 then error('out of ids') end\n  return wrk.format()\nend\n",
    );
    let out = run(&s, &["-t1", "-c1", "-d5s", &server.url("/")]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("runtime.lua:4: out of ids"), "{err}");
    let report = text(&out.stdout);
    assert_eq!(requests_in(&report), 20, "{report}");
    assert_eq!(server.settled(), 20);
}

#[test]
fn scripts_work_at_every_io_level_with_tls_and_at_a_constant_rate() {
    let lua = "counter = 0\nrequest = function()\n  counter = counter + 1\n  return wrk.format('POST', '/n/' .. counter, nil, 'body-' .. counter)\nend\n";
    for level in ["full", "basic", "legacy", "epoll"] {
        let server = recording();
        let s = script(&format!("levels-{level}"), lua);
        let o = ok(&run(
            &s,
            &[
                "--io",
                level,
                "-t1",
                "-c4",
                "-p3",
                "-n",
                "600",
                &server.url("/"),
            ],
        ));
        assert_eq!(requests_in(&o), 600, "{level}");
        let seen = server.seen();
        let bodies: BTreeSet<&[u8]> = seen.iter().map(|r| r.body.as_slice()).collect();
        assert_eq!(bodies.len(), 600, "{level}");
    }
    // https
    use support::server::TlsMode;
    use support::tls::{Leaf, Pki};
    let pki = Pki::new();
    let server = TestServer::start(ServerConfig {
        record: true,
        tls: Some(TlsMode::new(pki.server(Leaf::Good, false))),
        ..Default::default()
    });
    let s = script("tls", lua);
    let o = ok(&run(
        &s,
        &[
            "--cacert",
            &pki.ca(),
            "-t2",
            "-c4",
            "-n",
            "300",
            &server.url("/"),
        ],
    ));
    assert_eq!(requests_in(&o), 300);
    assert_eq!(server.seen().len(), 300);
    // -R: the schedule decides when requests go.
    let server = recording();
    let s = script("rate", lua);
    let out = run(
        &s,
        &[
            "--json",
            "-t1",
            "-c4",
            "-R",
            "200",
            "-d1s",
            &server.url("/"),
        ],
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = r["requests"].as_u64().unwrap();
    assert!((180..=205).contains(&n), "{n}");
    assert_eq!(r["rate"]["behind"], 0);
}

#[test]
fn setup_can_send_a_thread_elsewhere_with_lookup_and_connect() {
    let named = recording();
    let other = recording();
    let s = script(
        "addr",
        r#"
function setup(thread)
  local addrs = wrk.lookup("127.0.0.1", os.getenv("URK_TEST_OTHER_PORT"))
  assert(#addrs >= 1 and wrk.connect(addrs[1]), "the other server answers")
  thread.addr = addrs[1]
end
function init(args)
  print("addr=" .. tostring(wrk.thread.addr))
end
"#,
    );
    let port = other.addr.port().to_string();
    let out = support::cli::command()
        .env("URK_TEST_OTHER_PORT", &port)
        .args([
            "-q",
            "-s",
            s.to_str().unwrap(),
            "-t2",
            "-c2",
            "-n",
            "50",
            &named.url("/"),
        ])
        .output()
        .unwrap();
    let o = ok(&out);
    assert_eq!(
        printed(&o, "addr"),
        [format!("127.0.0.1:{port}"), format!("127.0.0.1:{port}")]
    );
    // wrk.connect's probe is a connection, not a request.
    assert_eq!(other.seen().len(), 50);
    assert!(
        named.seen().is_empty(),
        "every thread went where setup sent it"
    );
}

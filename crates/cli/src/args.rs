//! The command line: wrk's flags (and spellings such as `-t1 -c50 -d5s`),
//! plus urk's own, turned into an engine [`Config`].

use argh::FromArgs;
use urk_engine::proto::{self, targets::TargetEntry, Target};
use urk_engine::units::{parse_count, parse_duration};
use urk_engine::{Config, IoLevel, Order, TlsVersion};

/// urk: an HTTP/1.1 load generator on io_uring, with wrk's interface.
#[derive(FromArgs, Debug)]
pub struct Args {
    /// connections to keep open (default 10)
    #[argh(option, short = 'c')]
    pub connections: Option<String>,
    /// duration of the test, e.g. 10s, 2m (default 10s)
    #[argh(option, short = 'd')]
    pub duration: Option<String>,
    /// number of threads to use (default 2)
    #[argh(option, short = 't')]
    pub threads: Option<String>,
    /// add a header to the request, "Name: value" (repeatable)
    #[argh(option, short = 'H')]
    pub header: Vec<String>,
    /// print the latency distribution and a line per phase (connect, TLS
    /// handshake, time to first byte)
    #[argh(switch, short = 'L')]
    pub latency: bool,
    /// request timeout, e.g. 2s (default 2s)
    #[argh(option, short = 'T')]
    pub timeout: Option<String>,
    /// HTTP method (default GET)
    #[argh(option, short = 'm')]
    pub method: Option<String>,
    /// request body
    #[argh(option)]
    pub body: Option<String>,
    /// read the request body from a file
    #[argh(option)]
    pub body_file: Option<String>,
    /// stop after exactly N completed responses (-d is then an upper bound)
    #[argh(option, short = 'n')]
    pub requests: Option<String>,
    /// requests in flight per connection (default 1): pipelined on
    /// HTTP/1.1 (1-64), concurrent streams on HTTP/2 (1-1024, capped by
    /// the server's limit)
    #[argh(option, short = 'p')]
    pub pipeline: Option<String>,
    /// speak HTTP/2: h2 by ALPN for https://, h2c with prior knowledge
    /// for http:// and --unix-socket; a probe connection checks the
    /// server does before any load
    #[argh(switch)]
    pub http2: bool,
    /// a new connection for every request (--requests-per-conn 1): over
    /// http the request asks the server to close (Connection: close) and
    /// urk closes if it does not
    #[argh(switch)]
    pub no_keepalive: bool,
    /// close each connection after N responses and open a new one
    #[argh(option)]
    pub requests_per_conn: Option<String>,
    /// load for this long before the measured window starts, e.g. 5s: the
    /// report, its rates and --fail-if cover the window after it (the
    /// timeline keeps its seconds, marked)
    #[argh(option)]
    pub warmup: Option<String>,
    /// print the report as JSON on stdout instead of text
    #[argh(switch)]
    pub json: bool,
    /// io_uring level: auto, full, basic or legacy, or epoll (no io_uring);
    /// auto runs on epoll where io_uring is blocked (default auto)
    #[argh(option)]
    pub io: Option<String>,
    /// wait up to this long to reap completions in batches, e.g. 50us (up
    /// to 4x that with many requests in flight); 0 reaps each as it comes
    /// (default 50us)
    #[argh(option)]
    pub batch_wait: Option<String>,
    /// time each response's arrival by the kernel too (SO_TIMESTAMPING):
    /// reports how long responses waited for urk after the kernel had them
    /// (receive lag) and the latency without that wait
    #[argh(switch)]
    pub kernel_timestamps: bool,
    /// constant rate: total requests per second (latency then counts from
    /// each request's intended send time); A..B with --ramp for a linear
    /// ramp, or stages RATE:TIME,RATE:TIME,... (each from the rate before)
    #[argh(option, short = 'R')]
    pub rate: Option<String>,
    /// with -R A..B: how long the rate takes to go from A to B (B is held
    /// after it)
    #[argh(option)]
    pub ramp: Option<String>,
    /// with -R: the longest a request may be held after its slot to go out
    /// with later ones in one wake-up, when slots come faster than
    /// wake-ups are cheap (its lateness counts in its latency); 0 keeps
    /// every slot on time at a wake-up's CPU each (default 1ms)
    #[argh(option)]
    pub pacing_window: Option<String>,
    /// with -R, ramps, stages or --find-max: how requests arrive, uniform
    /// (evenly, as wrk2) or poisson (exponential gaps at the same mean
    /// rate, seeded by --seed); default uniform
    #[argh(option)]
    pub arrivals: Option<String>,
    /// with -R: also print the uncorrected latency distribution
    #[argh(switch, short = 'U')]
    pub u_latency: bool,
    /// write an HdrHistogram interval log (1 s intervals, values in µs)
    #[argh(option)]
    pub hdr_log: Option<String>,
    /// fail (exit status 3) when the run breaks this, e.g. p99>20ms,
    /// errors>0, rps<10000, non2xx>0, ttfb.p99>5ms (first byte),
    /// connect.p99>1ms (repeatable)
    #[argh(option)]
    pub fail_if: Vec<String>,
    /// find the highest constant rate at which EXPR holds, e.g. p99<50ms,
    /// ttfb.p99<20ms, errors<0.1%, non2xx=0 (repeatable: all must hold); -d is the
    /// search's time budget (default 60s)
    #[argh(option)]
    pub find_max: Vec<String>,
    /// with --find-max: stop when the answer is known to within this share
    /// (default 5%)
    #[argh(option)]
    pub precision: Option<String>,
    /// with --find-max: length of each step, warm-up included (default: long
    /// enough for the objectives' percentiles, 2 to 11 s)
    #[argh(option)]
    pub step_duration: Option<String>,
    /// draw the latency percentile spectrum and requests/s over time into
    /// this SVG file (with --find-max: latency against offered rate)
    #[argh(option)]
    pub plot: Option<String>,
    /// write a self-contained HTML report to FILE (charts, every figure,
    /// the command line; opens offline)
    #[argh(option)]
    pub html: Option<String>,
    /// https: accept any server certificate (self-signed test servers);
    /// the handshake's signatures are still checked
    #[argh(switch, short = 'k')]
    pub insecure: bool,
    /// https: trust the CA certificates in this PEM file instead of the
    /// system's
    #[argh(option)]
    pub cacert: Option<String>,
    /// https: present this client certificate chain (PEM; with --key)
    #[argh(option)]
    pub cert: Option<String>,
    /// https: the client certificate's private key (PEM; with --cert)
    #[argh(option)]
    pub key: Option<String>,
    /// https: server name for SNI and the certificate check (default: the
    /// URL's host)
    #[argh(option)]
    pub sni: Option<String>,
    /// https: lowest TLS version offered, 1.2 or 1.3 (default 1.2)
    #[argh(option)]
    pub tls_min: Option<String>,
    /// https: highest TLS version offered, 1.2 or 1.3 (default 1.3)
    #[argh(option)]
    pub tls_max: Option<String>,
    /// https: a full handshake for every new connection, no session
    /// resumption
    #[argh(switch)]
    pub no_tls_resume: bool,
    /// load a wrk Lua script (setup, init, request, response, delay, done);
    /// its arguments go after the URL and --
    #[argh(option, short = 's')]
    pub script: Option<String>,
    /// send the requests in this file instead of one: URLs or paths a
    /// line, "METHOD URL" blocks with headers and a body, or JSON lines
    /// (see README); placeholders such as {{seq}} are filled per request
    #[argh(option)]
    pub targets: Option<String>,
    /// with --targets: rr, random or weighted (default: weighted if the
    /// file gives weights, rr otherwise)
    #[argh(option)]
    pub order: Option<String>,
    /// seed for --order random/weighted and random placeholders, to repeat
    /// a run's sequence (default: random, printed in the JSON report)
    #[argh(option)]
    pub seed: Option<u64>,
    /// connect to HOST:PORT instead of the URL's host (an IPv6 address in
    /// brackets); Host, SNI and the certificate check still use the URL's
    #[argh(option)]
    pub connect_to: Option<String>,
    /// spread the connections over every address the host resolves to
    /// (A and AAAA records) that accepts a connection, round robin,
    /// instead of the first that does
    #[argh(switch)]
    pub connect_spread: bool,
    /// spread the connections over these source addresses, round robin:
    /// ADDR[,ADDR...] or CIDR blocks such as 127.0.0.0/28 (each address
    /// reaches the target from its own range of local ports)
    #[argh(option)]
    pub bind: Option<String>,
    /// connect to this Unix domain socket; the URL gives Host and path
    #[argh(option)]
    pub unix_socket: Option<String>,
    /// open the connections, then hold the load until this moment: a Unix
    /// time (1767225600) or an RFC 3339 time (2026-12-01T12:00:00Z), so
    /// that runs on several machines load together
    #[argh(option)]
    pub start_at: Option<String>,
    /// run as shard I/N (from 0) of a fleet running one load, or auto to
    /// take the index the job engine set (JOB_COMPLETION_INDEX,
    /// SLURM_PROCID, NOMAD_ALLOC_INDEX, OMPI_COMM_WORLD_RANK): -c, -R,
    /// ramps, stages and -n are then the fleet's totals, split exactly
    /// (-t stays this process's)
    #[argh(option)]
    pub shard: Option<String>,
    /// with --shard auto: how many shards, where the engine does not say
    /// (a Kubernetes Indexed Job's completions, a Nomad group's count)
    #[argh(option)]
    pub shard_count: Option<u32>,
    /// with --shard and --find-max: where the fleet's search meets
    /// (host:port): shard 0 listens there and judges every step on all
    /// the shards' seconds, the others connect to it
    #[argh(option)]
    pub coordinator: Option<String>,
    /// serve Prometheus metrics at ADDR (host:port) while the run lasts and
    /// 3 s after: counters (requests, errors, statuses, connects, bytes),
    /// and latency, TTFB and connect time as native histograms that add up
    /// over a fleet (scrape with --enable-feature=native-histograms)
    #[argh(option)]
    pub metrics: Option<String>,
    /// write a record per request to FILE: intended and actual send,
    /// latency, status, body bytes, error, target, worker, connection
    #[argh(option)]
    pub log: Option<String>,
    /// with --log: csv or json (one object per line); default json for a
    /// .json or .jsonl FILE, csv otherwise
    #[argh(option)]
    pub log_format: Option<String>,
    /// with --log: the share of requests kept, e.g. 10% or 0.1 (default all)
    #[argh(option)]
    pub log_sample: Option<String>,
    /// send one request (the run's first: the URL's, a targets file's or a
    /// script's), print it as sent and the response as received (the body
    /// up to 16 KiB; TLS: the version, cipher and ALPN), then exit
    #[argh(switch)]
    pub debug: bool,
    /// no live progress on stderr
    #[argh(switch, short = 'q')]
    pub quiet: bool,
    /// keep the one-line progress instead of the full-screen live view
    #[argh(switch)]
    pub no_tui: bool,
    /// print version details
    #[argh(switch, short = 'v')]
    pub version: bool,
    /// target URL, e.g. http://127.0.0.1:8080/; with -s, the script's
    /// arguments follow it (after --), for init(args)
    #[argh(positional, arg_name = "url")]
    pub positional: Vec<String>,
}

/// Short options that take a value and may be glued to it, as in `-t1`.
const GLUED: &[char] = &['c', 'd', 't', 'H', 'T', 'm', 'n', 'p', 'R', 's'];

/// Splits `-t1` into `-t 1` (argh wants them apart; wrk users type them together).
pub fn unglue(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    for a in args {
        let mut ch = a.chars();
        match (ch.next(), ch.next()) {
            (Some('-'), Some(c)) if GLUED.contains(&c) && a.len() > 2 => {
                out.push(format!("-{c}"));
                out.push(a[2..].to_string());
            }
            _ => out.push(a),
        }
    }
    out
}

fn count(flag: &str, v: &Option<String>) -> Result<Option<u64>, String> {
    v.as_deref()
        .map(|s| {
            parse_count(s)
                .ok_or_else(|| format!("invalid {flag} '{s}': expected a number such as 50 or 1k"))
        })
        .transpose()
}

/// A moment: Unix seconds (fractions allowed), or RFC 3339 with its
/// offset (`T` or a space between date and time).
fn moment(s: &str) -> Result<std::time::SystemTime, String> {
    let bad = || {
        format!("invalid --start-at '{s}': expected a Unix time such as 1767225600 or an RFC 3339 time such as 2026-12-01T12:00:00Z")
    };
    if let Ok(secs) = s.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) {
            return Err(bad());
        }
        return Ok(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs));
    }
    let mut t = s.to_string();
    if t.len() > 10 && t.as_bytes()[10] == b' ' {
        t.replace_range(10..11, "T");
    }
    let when = time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad())?;
    let nanos = when.unix_timestamp_nanos();
    if nanos < 0 {
        return Err(bad());
    }
    Ok(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos as u64))
}

/// What `-R` asks for.
enum Paced {
    Constant(f64),
    Plan(urk_engine::RatePlan),
}

/// `-R N`, `-R A..B` (with `--ramp`), or `-R RATE:TIME,RATE:TIME,...`.
fn rate_spec(s: &str, ramp: Option<std::time::Duration>) -> Result<Paced, String> {
    let number = |v: &str| {
        parse_count(v)
            .map(|n| n as f64)
            .ok_or_else(|| format!("invalid -R '{s}': '{v}' is not a rate such as 5000 or 20k"))
    };
    if let Some((a, b)) = s.split_once("..") {
        let d = ramp.ok_or_else(|| format!("-R {s} needs --ramp DURATION, e.g. --ramp 60s"))?;
        return Ok(Paced::Plan(urk_engine::RatePlan::ramp(
            number(a)?,
            number(b)?,
            d,
        )));
    }
    if ramp.is_some() {
        return Err("--ramp needs -R A..B, e.g. -R 1000..20000 --ramp 60s".into());
    }
    if s.contains(':') {
        let stages = s
            .split(',')
            .map(|st| {
                let (r, d) = st.split_once(':').ok_or_else(|| {
                    format!("invalid -R stage '{st}': expected RATE:TIME such as 5000:30s")
                })?;
                let d = parse_duration(d).ok_or_else(|| {
                    format!("invalid -R stage '{st}': '{d}' is not a time such as 30s")
                })?;
                Ok((number(r)?, d))
            })
            .collect::<Result<Vec<_>, String>>()?;
        return Ok(Paced::Plan(urk_engine::RatePlan::stages(&stages)));
    }
    Ok(Paced::Constant(number(s)?))
}

/// `HOST:PORT`, with brackets around an IPv6 address.
fn host_port(s: &str) -> Result<(String, u16), String> {
    let bad = || {
        format!("invalid --connect-to '{s}': expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse::<u16>().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

fn time(flag: &str, v: &Option<String>) -> Result<Option<std::time::Duration>, String> {
    v.as_deref()
        .map(|s| {
            parse_duration(s).ok_or_else(|| {
                format!("invalid {flag} '{s}': expected a time such as 500ms, 10s or 2m")
            })
        })
        .transpose()
}

impl Args {
    /// The URL: the first positional argument.
    pub fn url(&self) -> Option<&str> {
        self.positional.first().map(String::as_str)
    }

    /// The script's arguments: every positional argument after the URL.
    pub fn script_args(&self) -> &[String] {
        self.positional.get(1..).unwrap_or(&[])
    }
    fn tls_options(&self, t: &mut urk_engine::TlsOptions) -> Result<(), String> {
        t.insecure = self.insecure;
        t.ca_file = self.cacert.as_ref().map(Into::into);
        t.client_cert = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some((c.into(), k.into())),
            (None, None) => None,
            _ => return Err("--cert and --key go together".into()),
        };
        t.sni.clone_from(&self.sni);
        let version = |flag: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| {
                    s.parse::<TlsVersion>()
                        .map_err(|_| format!("invalid {flag} '{s}': expected 1.2 or 1.3"))
                })
                .transpose()
        };
        if let Some(v) = version("--tls-min", &self.tls_min)? {
            t.min_version = v;
        }
        if let Some(v) = version("--tls-max", &self.tls_max)? {
            t.max_version = v;
        }
        t.resume = !self.no_tls_resume;
        Ok(())
    }

    /// The `--find-max` search these flags describe, if any.
    pub fn search(&self) -> Result<Option<urk_engine::Search>, String> {
        if self.find_max.is_empty() {
            if self.precision.is_some() || self.step_duration.is_some() {
                return Err("--precision and --step-duration need --find-max".into());
            }
            if self.coordinator.is_some() {
                return Err("--coordinator is where a fleet's --find-max meets: give --find-max and --shard".into());
            }
            return Ok(None);
        }
        if self.coordinator.is_some() && self.shard.is_none() {
            return Err("--coordinator is where a fleet of shards meets: give --shard".into());
        }
        if self.shard.is_some() && self.coordinator.is_none() {
            return Err("--find-max over shards needs --coordinator HOST:PORT: shard 0 listens there and judges each step on the whole fleet (shards judging their own shares would part ways)".into());
        }
        if self.rate.is_some() || self.requests.is_some() {
            return Err("--find-max chooses the rates itself: drop -R and -n".into());
        }
        if self.warmup.is_some() {
            return Err(
                "--find-max warms each step up itself (its first second): drop --warmup".into(),
            );
        }
        let objectives = self
            .find_max
            .iter()
            .map(|t| {
                t.parse()
                    .map_err(|e: String| e.replace("--fail-if", "--find-max"))
            })
            .collect::<Result<Vec<urk_engine::Threshold>, String>>()?;
        let budget = time("-d", &self.duration)?.unwrap_or(std::time::Duration::from_secs(60));
        let mut s = urk_engine::Search::new(objectives, budget);
        if let Some(p) = &self.precision {
            let v = crate::share::share(p)
                .filter(|v| *v > 0.0 && *v < 1.0)
                .ok_or_else(|| {
                    format!("invalid --precision '{p}': expected a share such as 5% or 0.05")
                })?;
            s.precision = v;
        }
        s.step = time("--step-duration", &self.step_duration)?;
        s.coordinator.clone_from(&self.coordinator);
        Ok(Some(s))
    }

    /// The `--fail-if` thresholds, checked before anything runs.
    pub fn thresholds(&self) -> Result<Vec<urk_engine::Threshold>, String> {
        self.fail_if.iter().map(|t| t.parse()).collect()
    }

    /// A targets file's requests, resolved against the URL if one was
    /// given, and the URL to report (the file's first when none was).
    fn read_targets(&self, path: &str) -> Result<(String, Vec<TargetEntry>), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --targets '{path}': {e}"))?;
        let base = match self.url() {
            Some(u) => Some(Target::parse(u).map_err(|e| e.to_string())?),
            None => None,
        };
        let list = proto::targets::parse(&text, base.as_ref())
            .map_err(|e| format!("--targets '{path}': {e}"))?;
        let url = match (self.url(), list.first()) {
            (Some(u), _) => u.to_string(),
            (None, Some(first)) => first.spec.target.url.clone(),
            (None, None) => return Err(format!("--targets '{path}' has no targets")),
        };
        Ok((url, list))
    }

    /// The engine configuration these flags describe.
    pub fn to_config(&self) -> Result<Config, String> {
        let targets = self
            .targets
            .as_deref()
            .map(|p| self.read_targets(p))
            .transpose()?;
        let url = match (&targets, self.url()) {
            (Some((u, _)), _) => u.as_str(),
            (None, Some(u)) => u,
            (None, None) => {
                return Err("missing URL, e.g. urk -c 50 -d 10s http://127.0.0.1:8080/".into())
            }
        };
        let mut cfg = Config::new(url).map_err(|e| e.to_string())?;
        if let Some((_, mut list)) = targets {
            if self.method.is_some() || self.body.is_some() || self.body_file.is_some() {
                return Err(
                    "-m, --body and --body-file do not go with --targets: the file gives each request's method and body".into(),
                );
            }
            // -H adds to every target, unless the file sets that header.
            for h in &self.header {
                let (n, v) = proto::RequestSpec::parse_header(h).map_err(|e| e.to_string())?;
                for e in &mut list {
                    if !e
                        .spec
                        .headers
                        .iter()
                        .any(|(m, _)| m.eq_ignore_ascii_case(&n))
                    {
                        e.spec.headers.push((n.clone(), v.clone()));
                    }
                }
            }
            cfg = cfg.targets(list);
        }
        if let Some(o) = &self.order {
            if self.targets.is_none() {
                return Err("--order needs --targets".into());
            }
            cfg.order = Some(o.parse::<Order>().map_err(|e| e.to_string())?);
        }
        cfg.seed = self.seed;
        if self.script.is_some() && self.targets.is_some() {
            return Err(
                "-s and --targets cannot be combined: the script makes the requests".into(),
            );
        }
        if let (None, [first, ..]) = (&self.script, self.script_args()) {
            return Err(format!(
                "unexpected argument '{first}' after the URL (script arguments need -s FILE)"
            ));
        }
        if let Some(n) = count("-c", &self.connections)? {
            cfg = cfg.connections(usize::try_from(n).map_err(|_| "-c is too large")?);
        }
        if let Some(n) = count("-t", &self.threads)? {
            cfg = cfg.threads(usize::try_from(n).map_err(|_| "-t is too large")?);
        }
        if let Some(n) = count("-n", &self.requests)? {
            cfg = cfg.requests(n);
        }
        if let Some(spec) = &self.rate {
            let ramp = time("--ramp", &self.ramp)?;
            match rate_spec(spec, ramp)? {
                Paced::Constant(r) => cfg = cfg.rate(r),
                Paced::Plan(plan) => {
                    if self.duration.is_none() {
                        // The plan's length, unless -d says otherwise.
                        cfg = cfg.duration(plan.length());
                    }
                    cfg = cfg.rate_plan(plan);
                }
            }
        } else if self.ramp.is_some() {
            return Err("--ramp needs -R A..B, e.g. -R 1000..20000 --ramp 60s".into());
        }
        if let Some(a) = &self.arrivals {
            if self.rate.is_none() && self.find_max.is_empty() {
                return Err("--arrivals applies to paced runs: give -R or --find-max".into());
            }
            cfg.arrivals = a
                .parse()
                .map_err(|e: String| format!("invalid --arrivals: {e}"))?;
        }
        if self.hdr_log.is_some() || self.json || self.plot.is_some() {
            cfg = cfg.intervals(true);
        }
        cfg = cfg.http2(self.http2);
        if let Some(n) = count("-p", &self.pipeline)? {
            cfg = cfg.pipeline(u32::try_from(n).map_err(|_| "-p is out of range")?);
        }
        let per_conn = count("--requests-per-conn", &self.requests_per_conn)?;
        match (self.no_keepalive, per_conn) {
            (true, Some(_)) => {
                return Err("--no-keepalive is --requests-per-conn 1: give one of them".into())
            }
            (true, None) => cfg = cfg.requests_per_conn(Some(1)),
            (false, Some(n)) => {
                let n = u32::try_from(n)
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or("--requests-per-conn must be between 1 and 4294967295")?;
                cfg = cfg.requests_per_conn(Some(n));
            }
            (false, None) => {}
        }
        if let Some(d) = time("-d", &self.duration)? {
            cfg = cfg.duration(d);
        }
        if let Some(d) = time("--warmup", &self.warmup)? {
            cfg = cfg.warmup(d);
        }
        if let Some(d) = time("--timeout", &self.timeout)? {
            cfg = cfg.timeout(d);
        }
        if let Some(d) = time("--batch-wait", &self.batch_wait)? {
            cfg = cfg.batch_wait(d);
        }
        cfg = cfg.kernel_timestamps(self.kernel_timestamps);
        if let Some(d) = time("--pacing-window", &self.pacing_window)? {
            cfg = cfg.pacing_window(d);
        }
        if let Some(m) = &self.method {
            cfg = cfg.method(m);
        }
        if cfg.targets.is_empty() {
            for h in &self.header {
                cfg = cfg.header(h).map_err(|e| e.to_string())?;
            }
        }
        match (&self.body, &self.body_file) {
            (Some(_), Some(_)) => return Err("give --body or --body-file, not both".into()),
            (Some(b), None) => cfg = cfg.body(b.as_bytes()),
            (None, Some(path)) => {
                let b = std::fs::read(path)
                    .map_err(|e| format!("cannot read --body-file '{path}': {e}"))?;
                cfg = cfg.body(b);
            }
            (None, None) => {}
        }
        if let Some(level) = &self.io {
            cfg = cfg.io(level.parse::<IoLevel>().map_err(|e| e.to_string())?);
        }
        self.tls_options(&mut cfg.tls)?;
        if let Some(to) = &self.connect_to {
            cfg.connect_to = Some(host_port(to)?);
        }
        cfg.unix_socket = self.unix_socket.as_ref().map(Into::into);
        if self.connect_spread && self.unix_socket.is_some() {
            return Err(
                "--connect-spread spreads over a name's addresses, not a Unix socket".into(),
            );
        }
        cfg.connect_spread = self.connect_spread;
        if let Some(b) = &self.bind {
            cfg.bind = urk_engine::parse_sources(b).map_err(|e| format!("invalid --bind: {e}"))?;
        }
        if let Some(t) = &self.start_at {
            cfg.start_at = Some(moment(t)?);
        }
        cfg.shard = match (self.shard.as_deref(), self.shard_count) {
            (None, None) => None,
            (None, Some(_)) => return Err("--shard-count goes with --shard auto".into()),
            (Some("auto"), n) => Some(
                urk_engine::Shard::from_env(|k| std::env::var(k).ok(), n)
                    .map_err(|e| format!("--shard auto: {e} (or give --shard I/N)"))?
                    .0,
            ),
            (Some(_), Some(_)) => return Err("--shard-count goes with --shard auto".into()),
            (Some(s), None) => {
                Some(urk_engine::Shard::parse(s).map_err(|e| format!("invalid --shard: {e}"))?)
            }
        };
        cfg.log = match (&self.log, &self.log_format, &self.log_sample) {
            (None, None, None) => None,
            (None, _, _) => return Err("--log-format and --log-sample go with --log FILE".into()),
            (Some(path), format, sample) => {
                let format = match format.as_deref() {
                    Some("csv") => urk_engine::LogFormat::Csv,
                    Some("json") => urk_engine::LogFormat::Json,
                    Some(f) => {
                        return Err(format!("invalid --log-format '{f}': expected csv or json"))
                    }
                    None if path.ends_with(".json") || path.ends_with(".jsonl") => {
                        urk_engine::LogFormat::Json
                    }
                    None => urk_engine::LogFormat::Csv,
                };
                let sample = match sample.as_deref() {
                    None => 1.0,
                    Some(s) => {
                        let bad = || {
                            format!(
                                "invalid --log-sample '{s}': expected a share such as 10% or 0.1"
                            )
                        };
                        crate::share::share(s)
                            .filter(|v| *v > 0.0 && *v <= 1.0)
                            .ok_or_else(bad)?
                    }
                };
                Some(urk_engine::LogSpec {
                    path: path.into(),
                    format,
                    sample,
                })
            }
        };
        cfg.validate().map_err(|e| e.to_string())?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Config, String> {
        let argv = unglue(line.split_whitespace().map(String::from));
        let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let args = Args::from_args(&["urk"], &strs).map_err(|e| e.output)?;
        args.to_config()
    }

    #[test]
    fn wrk_spellings() {
        let c = parse("-t1 -c50 -d5s --latency http://127.0.0.1:8080/").unwrap();
        assert_eq!((c.threads, c.connections, c.duration.as_secs()), (1, 50, 5));
        let c = parse("-c 1k -t 4 -T 500ms -n 10k -p 16 http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            (c.connections, c.threads, c.requests, c.pipeline),
            (1000, 4, Some(10_000), 16)
        );
        assert_eq!(c.timeout.as_millis(), 500);
    }

    #[test]
    fn rates_ramps_and_stages() {
        let c = parse("-R 1k..5k --ramp 30s http://a/").unwrap();
        let plan = c.rate_plan.unwrap();
        assert_eq!((plan.stages[0].from, plan.stages[0].to), (1000.0, 5000.0));
        assert_eq!(
            c.duration.as_secs(),
            30,
            "the ramp's length when -d is not given"
        );
        let c = parse("-R 100:10s,200:5s -d 1m http://a/").unwrap();
        assert_eq!(c.rate_plan.unwrap().stages.len(), 2);
        assert_eq!(c.duration.as_secs(), 60);
        assert_eq!(parse("-R 300 http://a/").unwrap().rate, Some(300.0));
        for bad in [
            "-R 1..2 http://a/",
            "--ramp 5s http://a/",
            "-R 5:xs http://a/",
            "-R 0..10 --ramp 1s http://a/",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_at_takes_unix_and_rfc3339_times() {
        let at = |s: &str| {
            moment(s)
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
        };
        assert_eq!(at("1767225600").as_secs(), 1_767_225_600);
        assert_eq!(at("1767225600.5").as_millis(), 1_767_225_600_500);
        assert_eq!(at("2026-01-01T00:00:00Z").as_secs(), 1_767_225_600);
        assert_eq!(at("2026-01-01 01:00:00+01:00").as_secs(), 1_767_225_600);
        assert!(moment("tomorrow").is_err());
    }

    #[test]
    fn bad_values_are_one_line() {
        for line in [
            "-d xyz http://a/",
            "-c 0 http://a/",
            "-t 5 -c 2 http://a/",
            "127.0.0.1:8080",
            "ftp://a/",
            "--tls-min 1.1 https://a/",
            "--cert c.pem https://a/",
            "--tls-min 1.3 --tls-max 1.2 https://a/",
        ] {
            let e = parse(line).unwrap_err();
            assert!(!e.trim().contains('\n'), "{line}: {e}");
        }
    }
}

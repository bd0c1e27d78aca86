#!/usr/bin/env python3
"""urk vs wrk, side by side, on one machine.

nginx (one worker) is pinned to core 1 and the generator to core 0. For each
scenario the two tools run alternately, --rounds times, and we record per run:
requests/s, generator CPU-us per completed request ((user+sys)/requests, from
GNU time), nginx's own CPU-us per request (from /proc), peak RSS, and errors. A separate short run under
`strace -c -f` counts syscalls per 1000 requests. Results go to
bench-results/DATE-KERNEL[-runN].json and .md with machine, kernel, commit and
nginx version. Benchmarks are not tests: nothing here asserts.
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
URK = os.path.join(ROOT, "target", "release", "urk")
NGINX = "/usr/sbin/nginx"

# name, connections, path, pipeline depth, extra urk flags, network
SCENARIOS = [
    ("c50", 50, "/", 1, [], "lo"),
    ("c1000", 1000, "/", 1, [], "lo"),
    ("c10000", 10000, "/", 1, [], "lo"),
    ("pipeline16-c50", 50, "/", 16, [], "lo"),
    ("16KiB-c50", 50, "/16k", 1, [], "lo"),
    # Long bodies: urk discards them unread (MSG_TRUNC), wrk reads them.
    ("256KiB-c50", 50, "/256k", 1, [], "lo"),
    # Ablation: what batched waits buy (urk reaping each completion as it
    # comes, as wrk does).
    ("c50-batch-wait-0", 50, "/", 1, ["--batch-wait", "0"], "lo"),
    # What --kernel-timestamps costs: run with URK_BASELINE pointing at
    # bench/without-flag.sh (this build, the flag dropped) to have both in
    # the same rounds.
    ("c50-kernel-timestamps", 50, "/", 1, ["--kernel-timestamps"], "lo"),
    ("c50-veth-kernel-timestamps", 50, "/", 1, ["--kernel-timestamps"], "veth"),
    # Diagnostic, not issue 3's setup. On loopback a packet is delivered by
    # the core that sent it, so the generator's core runs the server's
    # receive-side TCP work (and nginx's core the generator's). Here each end
    # sits in a network namespace of its own, joined by a veth pair, and each
    # end's receive processing is steered (RPS) to its own core, where a real
    # network card's interrupts would put it. Needs root; skipped without.
    ("c50-veth", 50, "/", 1, [], "veth"),
    ("c10000-veth", 10000, "/", 1, [], "veth"),
    ("pipeline16-c50-veth", 50, "/", 16, [], "veth"),
    # https against nginx with TLS (OpenSSL on its side; wrk links OpenSSL
    # too, urk uses rustls with aws-lc-rs). A new connection per request
    # measures handshakes (resumed ones: every tool resumes sessions).
    ("https-c50", 50, "/", 1, [], "lo"),
    ("https-c1000", 1000, "/", 1, [], "lo"),
    ("https-c10000", 10000, "/", 1, [], "lo"),
    ("https-close-c20", 20, "/", 1, ["-H", "Connection: close"], "lo"),
    ("https-16KiB-c50", 50, "/16k", 1, [], "lo"),
    ("https-c50-veth", 50, "/", 1, [], "veth"),
    ("https-close-c20-veth", 20, "/", 1, ["-H", "Connection: close"], "veth"),
    # The client closes (issue 24): urk --no-keepalive against wrk with
    # -H 'Connection: close' (the server closes) and oha
    # --disable-keepalive.
    ("noka-c20", 20, "/", 1, ["--no-keepalive"], "lo"),
    ("https-noka-c20", 20, "/", 1, ["--no-keepalive"], "lo"),
    # Request variety (issue 17): a sequence number per request from a
    # targets file, against urk's fixed request in the same rounds
    # ("urk-fixed") and wrk building the same paths in Lua.
    ("targets-seq-c50", 50, "/", 1, ["--targets", os.path.join(ROOT, "bench", "targets-seq.txt")], "lo"),
    ("targets-seq-c50-veth", 50, "/", 1, ["--targets", os.path.join(ROOT, "bench", "targets-seq.txt")], "veth"),
    # wrk's scripts: a static one (post-like) against the same request from
    # flags, and a dynamic request() with wrk.format under both tools.
    ("script-static-c50", 50, "/", 1, ["-s", os.path.join(ROOT, "bench", "post.lua"), "--fixed", "-m", "POST",
                                       "--body", "foo=bar&baz=quux",
                                       "-H", "Content-Type: application/x-www-form-urlencoded"], "lo"),
    ("script-dynamic-c50", 50, "/", 1, ["-s", os.path.join(ROOT, "bench", "counter.lua")], "lo"),
    ("script-dynamic-c50-veth", 50, "/", 1, ["-s", os.path.join(ROOT, "bench", "counter.lua")], "veth"),
    # Constant rate (issue 23): urk -R against wrk2 -R and oha -q at the same
    # offered rate, and urk closed-loop on the same connections
    # ("urk-closed", at whatever rate the server gives it) in the same
    # rounds. Above the server's capacity every tool falls behind; the
    # achieved rate and the send lag say by how much.
    *[(f"R{r // 1000}k-c{c}{suffix}", c, "/", 1, ["-R", str(r)], net)
      for suffix, net in (("", "lo"), ("-veth", "veth"))
      for c in (50, 1000)
      for r in (20000, 50000, 100000)],
    # HTTP/2 (issue 25): urk --http2 -p M against h2load -m M and oha
    # --http2 -p M, streams per connection; h2c (prior knowledge) on its own
    # port, "h2s-" over TLS (ALPN h2).
    *[(f"{name}{suffix}", c, path, m, ["--http2"], net)
      for suffix, net in (("", "lo"), ("-veth", "veth"))
      for name, c, path, m in (("h2-c50-m10", 50, "/", 10), ("h2-c50-m100", 50, "/", 100),
                               ("h2-c1000-m1", 1000, "/", 1), ("h2-16KiB-c50-m10", 50, "/16k", 10),
                               ("h2s-c50-m10", 50, "/", 10))],
    ("h2-c10000-m1", 10000, "/", 1, ["--http2"], "lo"),
]

# The peers a user would pick instead, where installed (oha: cargo install
# oha; h2load: apt-get install nghttp2-client), each in the scenarios it
# supports: neither pipelines, and h2load has no new-connection-per-request
# mode.
# URK_BENCH_PEERS="oha" (or "") chooses among them.
PEERS = [t for t in os.environ.get("URK_BENCH_PEERS", "oha,h2load").split(",") if t and shutil.which(t)]
# URK_BASELINE=path/to/urk adds "urk-base", that build in the same rounds:
# an A/B of a change against the commit before it.
BASELINE = os.environ.get("URK_BASELINE")
if BASELINE:
    PEERS.insert(0, "urk-base")


def https(name):
    return name.startswith("https-")


def closing(extra):
    """A new connection per request: urk's --no-keepalive, wrk with
    -H 'Connection: close', oha --disable-keepalive."""
    return "Connection: close" in extra or "--no-keepalive" in extra


def varied(extra):
    """A scenario whose requests vary: urk against its own fixed request."""
    return "--targets" in extra or "-s" in extra


def fixed_equivalent(extra):
    """urk's flags for the fixed request a varied scenario is held against."""
    return list(extra[extra.index("--fixed") + 1:]) if "--fixed" in extra else []


def http2(extra):
    return "--http2" in extra


def paced(extra):
    return "-R" in extra


def offered(extra):
    return extra[extra.index("-R") + 1]


def reference(extra):
    """The tool every urk ratio is taken against: wrk, wrk2 under -R,
    h2load over HTTP/2."""
    if http2(extra):
        return "h2load"
    return "wrk2" if paced(extra) else "wrk"


def urk_flags(extra):
    return list(extra[:extra.index("--fixed")]) if "--fixed" in extra else list(extra)


# Scenarios that also run urk on its epoll backend ("urk-epoll"), the one
# it uses where io_uring is blocked.
EPOLL_SCENARIOS = {"c50", "c50-veth", "c1000", "pipeline16-c50", "https-c50"}


def tools_for(pipeline, extra, name=""):
    if http2(extra):
        peers = [t for t in ("h2load", "oha") if shutil.which(t)]
        return ["urk", *peers, *(["urk-base"] if BASELINE else [])]
    if paced(extra):
        # wrk2 is built from its repository (Debian does not ship it) and
        # put on PATH as wrk2; oha: cargo install oha.
        peers = [t for t in ("wrk2", "oha") if shutil.which(t)]
        return ["urk", *peers, "urk-closed", *(["urk-base"] if BASELINE else [])]
    if varied(extra):
        return ["urk", "wrk", "urk-fixed"]
    if name in EPOLL_SCENARIOS:
        return ["urk", "wrk", "urk-epoll", *tools_for(pipeline, extra)[2:]]
    peers = [t for t in PEERS if t == "urk-base"
             or (pipeline == 1 and not (t == "h2load" and closing(extra)))]
    return ["urk", "wrk", *peers]


class Veth:
    """The two namespaces of the -veth scenarios, made and removed by the bench.

    Addresses are from 198.18.0.0/15, the range RFC 2544 sets aside for
    benchmarks; nothing leaves the machine."""

    CLIENT_ADDR, SERVER_ADDR = "198.18.0.1", "198.18.0.2"

    def __init__(self):
        tag = f"urkbench{os.getpid()}"
        self.client, self.server = tag + "c", tag + "s"

    def client_prefix(self):
        return ["ip", "netns", "exec", self.client]

    def server_prefix(self):
        return ["ip", "netns", "exec", self.server]

    def __enter__(self):
        steps = [
            ["ip", "netns", "add", self.client],
            ["ip", "netns", "add", self.server],
            ["ip", "link", "add", "urk0", "netns", self.client, "type", "veth",
             "peer", "name", "urk1", "netns", self.server],
            ["ip", "-n", self.client, "addr", "add", self.CLIENT_ADDR + "/30", "dev", "urk0"],
            ["ip", "-n", self.server, "addr", "add", self.SERVER_ADDR + "/30", "dev", "urk1"],
            ["ip", "-n", self.client, "link", "set", "urk0", "up"],
            ["ip", "-n", self.server, "link", "set", "urk1", "up"],
            ["ip", "-n", self.client, "link", "set", "lo", "up"],
            ["ip", "-n", self.server, "link", "set", "lo", "up"],
            # Core 0 (mask 1) receives for the generator, core 1 (mask 2)
            # for nginx: the pinning of the loopback scenarios.
            self.client_prefix() + ["sh", "-c", "for q in /sys/class/net/urk0/queues/rx-*; do echo 1 > $q/rps_cpus; done"],
            self.server_prefix() + ["sh", "-c", "for q in /sys/class/net/urk1/queues/rx-*; do echo 2 > $q/rps_cpus; done"],
            # Loopback reuses TIME_WAIT ports by default (tcp_tw_reuse=2);
            # a veth does not, and back-to-back runs of 10000 connections
            # would run out of ports.
            ["ip", "netns", "exec", self.client, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1",
             "net.ipv4.ip_local_port_range=1024 65000"],
            # nginx.conf asks for a backlog of 16384. Here the handshakes'
            # server half runs on nginx's core, so 10000 connects complete
            # faster than one busy worker accepts them; with a new
            # namespace's somaxconn of 4096 the accept queue overflowed
            # (thousands of ListenOverflows, then timeouts).
            ["ip", "netns", "exec", self.server, "sysctl", "-q", "-w", "net.core.somaxconn=16384"],
        ]
        try:
            for step in steps:
                subprocess.run(step, check=True, capture_output=True)
        except subprocess.CalledProcessError as e:
            self.__exit__()
            raise RuntimeError(f"{' '.join(e.cmd)}: {e.stderr.decode(errors='replace').strip()}") from e
        except OSError as e:
            self.__exit__()
            raise RuntimeError(str(e)) from e
        return self

    def __exit__(self, *exc):
        # Removing a namespace removes its end of the veth pair, and with it
        # the other end.
        for ns in (self.client, self.server):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_nginx(tmp, addr="127.0.0.1", prefix=(), client_prefix=()):
    """Starts nginx on core 1 listening on addr, inside `prefix` (a namespace's
    `ip netns exec`) if given, and waits until it answers from `client_prefix`;
    returns (process, port)."""
    port, tls_port, h2_port, h2_tls_port = free_port(), free_port(), free_port(), free_port()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", os.path.join(tmp, "key.pem"), "-out", os.path.join(tmp, "cert.pem"),
                    "-days", "2", "-subj", "/CN=urk-bench"], check=True, capture_output=True)
    www = os.path.join(tmp, "www")
    os.makedirs(www, exist_ok=True)
    for name, size in (("16k", 16384), ("256k", 262144)):
        with open(os.path.join(www, name), "wb") as f:
            f.write(b"x" * size)
    conf = open(os.path.join(ROOT, "bench", "nginx.conf")).read()
    conf = (conf.replace("@DIR@", tmp).replace("@ADDR@", addr).replace("@PORT@", str(port))
            .replace("@TLSPORT@", str(tls_port)).replace("@H2PORT@", str(h2_port))
            .replace("@H2TLSPORT@", str(h2_tls_port)))
    path = os.path.join(tmp, "nginx.conf")
    open(path, "w").write(conf)
    proc = subprocess.Popen(
        [*prefix, "taskset", "-c", "1", NGINX, "-p", tmp, "-c", path, "-e", os.path.join(tmp, "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.1).close()"
    for _ in range(200):
        if subprocess.run([*client_prefix, sys.executable, "-c", probe, addr, str(port)], capture_output=True).returncode == 0:
            return proc, port, tls_port, h2_port, h2_tls_port
        time.sleep(0.05)
    proc.terminate()
    raise SystemExit("nginx did not start: " + open(os.path.join(tmp, "error.log")).read())


def timed(cmd):
    """Runs cmd under GNU time; returns (stdout, cpu seconds, peak RSS in KiB, wall seconds).

    GNU time, not wait4 from here: ru_maxrss survives exec, so a child forked
    from this Python process would report Python's own size."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", t.name] + cmd, capture_output=True)
        wall = time.monotonic() - t0
        user, sys_, rss = t.read().split()[-3:]
    if p.returncode != 0:
        print("command failed:", " ".join(cmd), p.stderr.decode(errors="replace"), file=sys.stderr)
    return p.stdout.decode(errors="replace"), float(user) + float(sys_), int(rss), wall


def urk_cmd(url, conns, pipeline, seconds, extra=(), binary=URK):
    tls = ["-k"] if url.startswith("https:") else []
    return [binary, "-t1", f"-c{conns}", f"-d{seconds}s", f"-p{pipeline}", "-q", "--json", *tls, *extra, url]


def oha_cmd(url, conns, seconds, extra=(), streams=1):
    close = ["--disable-keepalive"] if closing(extra) else []
    rate = ["-q", offered(extra)] if paced(extra) else []
    h2 = ["--http2", "-p", str(streams)] if http2(extra) else []
    return ["oha", "-z", f"{seconds}s", "-c", str(conns), "--no-tui", "--output-format", "json",
            "--insecure", *close, *rate, *h2, url]


def wrk2_cmd(url, conns, seconds, extra):
    return ["wrk2", "-t1", f"-c{conns}", f"-d{seconds}s", "-R", offered(extra), "--latency", url]


def parse_wrk2(out):
    reqs, rps, errs, rest = parse_wrk(out)
    m = re.search(r"^\s*99\.000%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if m:
        rest[1]["p99_us"] = float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
    return reqs, rps, errs, rest


def h2load_cmd(url, conns, seconds, extra=(), streams=1):
    proto = [f"-m{streams}"] if http2(extra) else ["--h1"]
    return ["h2load", *proto, "-t1", f"-c{conns}", "-D", str(seconds), url]


def parse_oha(out):
    r = json.loads(out)
    reqs = sum(r.get("statusCodeDistribution", {}).values())
    errs = sum(r.get("errorDistribution", {}).values())
    kinds = dict(r.get("errorDistribution", {}))
    p99 = (r.get("latencyPercentiles") or {}).get("p99")
    if p99 is not None:
        kinds["p99_us"] = p99 * 1e6
    return reqs, r["summary"]["requestsPerSec"], errs, (None, kinds)


def parse_h2load(out):
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    if not m or not rps:
        return 0, 0.0, 0, (None, {})
    done, failed, errored, timeout = int(m.group(4)), int(m.group(5)), int(m.group(6)), int(m.group(7))
    return done, float(rps.group(1)), failed + errored + timeout, (None, {})


def wrk_cmd(url, conns, pipeline, seconds, extra=()):
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s"]
    if closing(extra):
        cmd += ["-H", "Connection: close"]
    if pipeline > 1:
        cmd += ["-s", os.path.join(ROOT, "bench", "pipeline.lua")]
    if "--targets" in extra:
        cmd += ["-s", os.path.join(ROOT, "bench", "counter.lua")]
    if "-s" in extra:
        cmd += ["-s", extra[extra.index("-s") + 1]]
    cmd.append(url)
    if pipeline > 1:
        cmd += ["--", str(pipeline)]
    return cmd


def parse_urk(out):
    """(completed requests, req/s, errors, (io level, error kinds)). req/s is
    urk's own: the responses within the -d window over the window; the
    requests completed in the grace after it still count for CPU per request."""
    r = json.loads(out)
    kinds = {k: v for k, v in {**r["errors"], **r["connect_errors"]}.items() if v}
    kinds["p99_us"] = r["latency_us"]["p99"]
    if r.get("rate"):
        lag = r["rate"].get("send_lag_us") or {}
        kinds.update(send_lag_p50_us=lag.get("p50"), send_lag_p99_us=lag.get("p99"),
                     window_us=r["rate"].get("window_us"), enters_per_1000=r["io"]["enters_per_1000_requests"])
    return r["requests"], r["requests_per_sec"], sum(r["errors"].values()), (r["io"]["level"], kinds)


def parse_wrk(out):
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    reqs = int(m.group(1))
    val, unit = float(m.group(2)), m.group(3)
    secs = val * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errs = sum(int(x) for x in e.groups()) if e else 0
    kinds = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), e.groups()) if int(v)} if e else {}
    return reqs, reqs / secs if secs else 0.0, errs, (None, kinds)


def process_cpu_s(pid):
    """User plus system CPU seconds of a process so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces; fields count from after its ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tcp_segments(prefix=()):
    """TCP segments on the wire so far, as the generator's network namespace
    counts them: on loopback that namespace holds both ends, so each segment
    is counted once out and once in; in a namespace of its own, each is
    counted once. Under -R a connection idle for longer than TCP's delayed
    ACK (40 ms) acknowledges each response with a segment of its own: this
    shows it."""
    rows = [l.split() for l in subprocess.run([*prefix, "cat", "/proc/net/snmp"], capture_output=True,
                                              text=True).stdout.splitlines() if l.startswith("Tcp:")]
    if len(rows) < 2:
        return None
    tcp = dict(zip(rows[0][1:], rows[1][1:]))
    both = int(tcp["InSegs"]) + int(tcp["OutSegs"])
    return both if prefix else both / 2


def one_run(tool, url, conns, pipeline, seconds, server_pid, extra=(), prefix=()):
    if tool == "urk":
        cmd, parse = urk_cmd(url, conns, pipeline, seconds, urk_flags(extra)), parse_urk
    elif tool == "urk-epoll":
        cmd, parse = urk_cmd(url, conns, pipeline, seconds, ["--io", "epoll", *extra]), parse_urk
    elif tool == "urk-fixed":
        cmd, parse = urk_cmd(url, conns, pipeline, seconds, fixed_equivalent(extra)), parse_urk
    elif tool == "urk-base":
        cmd, parse = urk_cmd(url, conns, pipeline, seconds, extra, BASELINE), parse_urk
    elif tool == "urk-closed":
        cmd, parse = urk_cmd(url, conns, pipeline, seconds, [x for x in extra if x not in ("-R", offered(extra))]), parse_urk
    elif tool == "wrk2":
        cmd, parse = wrk2_cmd(url, conns, seconds, extra), parse_wrk2
    elif tool == "oha":
        cmd, parse = oha_cmd(url, conns, seconds, extra, pipeline), parse_oha
    elif tool == "h2load":
        cmd, parse = h2load_cmd(url, conns, seconds, extra, pipeline), parse_h2load
    else:
        cmd, parse = wrk_cmd(url, conns, pipeline, seconds, extra), parse_wrk
    server_before = process_cpu_s(server_pid)
    segs_before = tcp_segments(prefix)
    # `ip netns exec` execs the tool in its own process, so GNU time
    # measures the tool.
    out, cpu, rss, wall = timed(["taskset", "-c", "0", *prefix] + cmd)
    # nginx's CPU per request shows whether a req/s difference came from
    # the server working harder per request or from the machine (the
    # server is the bottleneck in most scenarios).
    server_cpu = process_cpu_s(server_pid) - server_before
    segs = tcp_segments(prefix)
    reqs, rps, errs, (level, kinds) = parse(out)
    figures = {k: kinds.pop(k) for k in ("p99_us", "send_lag_p50_us", "send_lag_p99_us", "window_us", "enters_per_1000")
               if k in kinds}
    return {
        **figures,
        "requests": reqs,
        "rps": rps,
        "cpu_us_per_req": cpu * 1e6 / reqs if reqs else None,
        "cpu_s": cpu,
        "server_cpu_us_per_req": server_cpu * 1e6 / reqs if reqs else None,
        "segments_per_req": (segs - segs_before) / reqs if reqs and segs is not None and segs_before is not None else None,
        "peak_rss_kib": rss,
        "errors": errs,
        "error_kinds": kinds,
        "io_level": level,
    }


def syscalls(tool, url, conns, pipeline):
    """Syscalls per 1000 requests from a short run under strace -c -f.

    Under strace, opening 10000 connections takes seconds (wrk completed no
    request at all in 2 s), so large connection counts get a longer run."""
    seconds = 2 if conns < 1000 else 8
    if tool == "urk":
        cmd = urk_cmd(url, conns, pipeline, seconds)
    elif tool == "urk-epoll":
        cmd = urk_cmd(url, conns, pipeline, seconds, ["--io", "epoll"])
    else:
        cmd = wrk_cmd(url, conns, pipeline, seconds)
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as f:
        out = subprocess.run(
            ["taskset", "-c", "0", "strace", "-c", "-f", "-o", f.name] + cmd,
            capture_output=True,
            text=True,
        ).stdout
        table = f.read()
    reqs = (parse_urk if tool.startswith("urk") else parse_wrk)(out)[0]
    calls = {}
    for line in table.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit():
            calls[parts[-1]] = int(parts[3])
    per_k = {k: round(v * 1000 / reqs, 1) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:6]} if reqs else {}
    return {"requests": reqs, "per_1000_requests": per_k}


def pacing(url, rounds, seconds):
    """How late urk's constant-rate sends go out on an idle server: -R 500
    over 5 connections, where nothing queues, so the corrected median should
    be the uncorrected one, and what keeping the slots cost (the pacer spins
    the last of each wait). urk only (wrk has no -R), and the baseline build
    in the same rounds when URK_BASELINE is set."""
    builds = {"urk": URK, **({"urk-base": BASELINE} if BASELINE else {})}
    runs = {b: [] for b in builds}
    for _ in range(rounds):
        for b, exe in builds.items():
            out, cpu, _, _ = timed(["taskset", "-c", "0", exe, "-t1", "-c5", f"-d{seconds}s", "-R", "500", "-q", "--json", url])
            r = json.loads(out)
            runs[b].append({"mean_lag_us": r["rate"]["mean_lag_us"], "max_lag_us": r["rate"]["max_lag_us"],
                            "p99_lag_us": (r["rate"].get("send_lag_us") or {}).get("p99"),
                            "behind": r["rate"]["behind"], "p50_us": r["latency_us"]["p50"],
                            "p50_uncorrected_us": r["latency_uncorrected_us"]["p50"], "cpu_s": cpu,
                            "cpu_us_per_req": cpu * 1e6 / max(r["requests"], 1)})
            x = runs[b][-1]
            print(f"pacing {b}: mean lag {x['mean_lag_us']:.1f} us, p99 lag {x['p99_lag_us']} us, p50 {x['p50_us']} us "
                  f"(uncorrected {x['p50_uncorrected_us']} us), behind {x['behind']}, "
                  f"{x['cpu_us_per_req']:.1f} CPU-us/req", flush=True)
    summary = {b: {k: median([x[k] for x in rs]) for k in rs[0]} for b, rs in runs.items()}
    return {"rate": 500, "connections": 5, "runs": runs["urk"], "median": summary["urk"],
            **({"baseline": {"runs": runs["urk-base"], "median": summary["urk-base"]}} if BASELINE else {})}


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def version_of(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except OSError:
        return "not found"


def start_server(stack, net):
    """Starts nginx for `net`; its teardown goes on `stack`. Returns (pid,
    host:port, prefix for the tools' commands), or None (with the reason
    printed) when the veth pair cannot be made here."""
    tmp = tempfile.mkdtemp(prefix=f"urk-bench-{net}-")
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    addr, server_prefix, client_prefix = "127.0.0.1", [], []
    if net == "veth":
        try:
            veth = stack.enter_context(Veth())
        except (RuntimeError, OSError) as e:
            print(f"skipped the -veth scenarios: could not make the namespaces ({e}); they need root and iproute2",
                  flush=True)
            return None
        addr, server_prefix, client_prefix = Veth.SERVER_ADDR, veth.server_prefix(), veth.client_prefix()
    proc, port, tls_port, h2_port, h2_tls_port = start_nginx(tmp, addr, server_prefix, client_prefix)

    def stop():
        proc.terminate()
        proc.wait()

    stack.callback(stop)
    return (proc.pid, f"{addr}:{port}", f"{addr}:{tls_port}", client_prefix,
            f"{addr}:{h2_port}", f"{addr}:{h2_tls_port}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--no-strace", action="store_true")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))

    results = []
    with contextlib.ExitStack() as stack:
        servers = {}

        def server(net):
            """nginx for a network ("lo" or "veth"), started on first use:
            (pid, host, tool prefix), or None when it cannot be had here."""
            if net not in servers:
                servers[net] = start_server(stack, net)
            return servers[net]

        for name, conns, path, pipeline, extra, net in SCENARIOS:
            if only and name not in only:
                continue
            srv = server(net)
            if srv is None:
                continue
            pid, host, tls_host, prefix, h2_host, h2_tls_host = srv
            if name.startswith("h2s-"):
                url = f"https://{h2_tls_host}{path}"
            elif name.startswith("h2-"):
                url = f"http://{h2_host}{path}"
            else:
                url = f"https://{tls_host}{path}" if https(name) else f"http://{host}{path}"
            tools = tools_for(pipeline, extra, name)
            runs = {t: [] for t in tools}
            for r in range(args.rounds):
                # Strictly alternating: a tool never follows itself, so
                # none inherits its own teardown twice in a row.
                for tool in tools:
                    # Let the server finish closing the previous run's
                    # connections (10000 of them at c10000) before the next
                    # run connects, so neither tool inherits the other's teardown.
                    time.sleep(3 if conns >= 1000 else 1)
                    res = one_run(tool, url, conns, pipeline, args.seconds, pid, extra, prefix)
                    runs[tool].append(res)
                    print(f"{name} round {r + 1} {tool}: {res['rps']:.0f} req/s, "
                          f"{res['cpu_us_per_req'] or 0:.2f} cpu-us/req, {res['peak_rss_kib'] / 1024:.1f} MB, "
                          f"{res['errors']} errors", flush=True)
            summary = {}
            for tool, rs in runs.items():
                summary[tool] = {
                    "rps": median([x["rps"] for x in rs]),
                    "cpu_us_per_req": median([x["cpu_us_per_req"] for x in rs]),
                    "server_cpu_us_per_req": median([x.get("server_cpu_us_per_req") for x in rs]),
                    "peak_rss_mb": median([x["peak_rss_kib"] / 1024 for x in rs]),
                    "errors": max(x["errors"] for x in rs),
                    **{k: median([x.get(k) for x in rs])
                       for k in ("p99_us", "send_lag_p50_us", "send_lag_p99_us", "window_us", "enters_per_1000",
                                 "segments_per_req")
                       if any(x.get(k) is not None for x in rs)},
                }
            # The ratio is the median of per-round ratios: each round's urk
            # and wrk runs sit next to each other in time, so the machine's
            # slow and fast phases cancel out.
            ref = reference(extra)

            def round_ratios(key):
                return [u[key] / w[key] for u, w in zip(runs["urk"], runs.get(ref, [])) if u[key] and w[key]]
            ratio = {k: median(round_ratios(k)) for k in ("rps", "cpu_us_per_req")}
            rps_ratios = round_ratios("rps")
            # urk against each peer, the same way (per-round ratios).
            peers = {t: median([u["cpu_us_per_req"] / p["cpu_us_per_req"] for u, p in zip(runs["urk"], runs[t])
                                if u["cpu_us_per_req"] and p["cpu_us_per_req"]])
                     for t in tools if t not in ("urk", ref)}
            # The spread says how far a single round can be trusted.
            ratio["rps_range"] = [min(rps_ratios), max(rps_ratios)] if rps_ratios else None
            if "urk-epoll" in runs:
                ratio["epoll_cpu_us_per_req"] = median([e["cpu_us_per_req"] / w["cpu_us_per_req"]
                                                        for e, w in zip(runs["urk-epoll"], runs["wrk"])
                                                        if e["cpu_us_per_req"] and w["cpu_us_per_req"]])
            entry = {"scenario": name, "connections": conns, "path": path, "pipeline": pipeline, "urk_flags": extra,
                     "reference": ref,
                     "network": net, "runs": runs, "median": summary, "urk_over_wrk": ratio,
                     "urk_over_peers_cpu_us_per_req": peers}
            if not args.no_strace and name in ("c50", "c10000", "pipeline16-c50", "https-c50"):
                entry["syscalls"] = {t: syscalls(t, url, conns, pipeline)
                                     for t in ("urk", "wrk", *(["urk-epoll"] if "urk-epoll" in tools else []))}
            results.append(entry)
            print(f"== {name}: urk/{ref} cpu-us/req {ratio['cpu_us_per_req'] or 0:.2f}, req/s {ratio['rps'] or 0:.2f}", flush=True)

        pace = None
        if not only or "pacing" in only:
            srv = server("lo")
            if srv is not None:
                pace = pacing(f"http://{srv[1]}/", args.rounds, args.seconds)

    kernel = platform.release()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "arch": platform.machine()},
        "kernel": kernel,
        "commit": commit + ("-dirty" if dirty else ""),
        "nginx": version_of([NGINX, "-v"]),
        "wrk": version_of(["wrk", "--version"]),
        "urk": version_of([URK, "-v"]),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "pinning": "nginx on core 1, generator on core 0, both -t1",
    }
    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    stem = os.path.join(ROOT, "bench-results", f"{datetime.date.today().isoformat()}-{kernel}")
    # A second run the same day on the same kernel gets its own file,
    # numbered after the highest one there (runs may have been renamed).
    if os.path.exists(stem + ".json"):
        taken = [int(m.group(1)) for f in os.listdir(os.path.dirname(stem))
                 if (m := re.fullmatch(re.escape(os.path.basename(stem)) + r"-run(\d+)\.json", f))]
        stem = f"{stem}-run{max(taken, default=1) + 1}"
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "results": results, "pacing": pace}, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(markdown(meta, results, pace))
    print(markdown(meta, results, pace))
    print("wrote", stem + ".json", "and .md")


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def fmt(x, spec):
    return format(x, spec) if x is not None else "-"


def markdown(meta, results, pace=None):
    lines = [
        f"# urk vs wrk — {meta['date']}",
        "",
        f"Machine: {meta['machine']['cpus']} cores, {meta['machine']['cpu_model']}; kernel {meta['kernel']}; "
        f"commit {meta['commit']}; {meta['nginx']}; {meta['wrk']}.",
        f"Medians of {meta['rounds']} alternating rounds of {meta['seconds']} s; {meta['pinning']}. "
        "The urk/wrk columns are medians of per-round ratios (each round runs urk then wrk back to back). "
        "nginx CPU-µs/req is the server's own user+system time per request during that tool's runs.",
        "",
        "Scenarios ending in -veth are a diagnostic, not issue 3's setup. On loopback the core that sends a packet "
        "also delivers it, so the generator's core runs the server's receive-side TCP work (and nginx's core the "
        "generator's). In the -veth scenarios each end sits in a network namespace of its own, joined by a veth pair, "
        "and each end's receive processing is steered (RPS) to its own core, as a network card's interrupts would put it.",
        "",
        "| scenario | tool | req/s | CPU-µs/req | nginx CPU-µs/req | peak RSS MB | errors | urk/tool CPU-µs/req | urk/wrk req/s (range over rounds) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in results:
        if paced(e["urk_flags"]):
            continue  # their own table, below
        for tool in e["median"]:
            m = e["median"][tool]
            ratio = e["urk_over_wrk"]
            spread = ratio.get("rps_range")
            rps = fmt(ratio["rps"], ".2f") + (f" ({spread[0]:.2f}-{spread[1]:.2f})" if spread else "")
            peer = e.get("urk_over_peers_cpu_us_per_req", {}).get(tool)
            extra = ((fmt(ratio["cpu_us_per_req"], ".2f") + " (vs wrk)", rps) if tool == "urk"
                     else (fmt(peer, ".2f") if peer is not None else "", ""))
            lines.append(f"| {e['scenario']} | {tool} | {fmt(m['rps'], ',.0f')} | {fmt(m['cpu_us_per_req'], '.2f')} | "
                         f"{fmt(m.get('server_cpu_us_per_req'), '.2f')} | "
                         f"{fmt(m['peak_rss_mb'], '.1f')} | {m['errors']} | {extra[0]} | {extra[1]} |")
    lines += paced_table(results)
    lines += h2_targets(results)
    lines += targets(results)
    sc = [e for e in results if "syscalls" in e]
    if sc:
        lines += ["", "Syscalls per 1000 requests (strace -c -f, separate run of 2 s, 8 s from 1000 connections):", ""]
        for e in sc:
            for tool in e["syscalls"]:
                calls = ", ".join(f"{k} {v}" for k, v in e["syscalls"][tool]["per_1000_requests"].items())
                lines.append(f"- {e['scenario']} {tool}: {calls}")
    if pace:
        m = pace["median"]
        lines += ["", f"Pacing (urk -t1 -c5 -R 500 against idle nginx, medians of {len(pace['runs'])} runs): "
                  f"mean lag of a send behind its slot {m['mean_lag_us']:.1f} µs (p99 {fmt(m.get('p99_lag_us'), '.0f')} µs, "
                  f"max {m['max_lag_us']:.0f} µs); "
                  f"corrected p50 {m['p50_us']:.0f} µs, uncorrected p50 {m['p50_uncorrected_us']:.0f} µs; "
                  f"behind {m['behind']:.0f}; {m['cpu_us_per_req']:.1f} CPU-µs per request."]
        if "baseline" in pace:
            b = pace["baseline"]["median"]
            lines += ["", f"Baseline build in the same rounds: mean lag {b['mean_lag_us']:.1f} µs "
                      f"(p99 {fmt(b.get('p99_lag_us'), '.0f')} µs, max {b['max_lag_us']:.0f} µs); "
                      f"{b['cpu_us_per_req']:.1f} CPU-µs per request."]
    return "\n".join(lines) + "\n"


# Issue 3's and the https issue's targets: scenario -> most urk/wrk CPU-us
# per request allowed.
CPU_TARGETS = {"c50": 0.85, "c10000": 0.6, "pipeline16-c50": 0.8, "16KiB-c50": 0.9,
               "https-c50": 0.85, "https-c1000": 0.85, "https-16KiB-c50": 0.85, "https-close-c20": 0.90}


# Issue 17's: scenario -> most urk CPU-us per request allowed, over urk's
# fixed request in the same rounds.
VARIED_TARGETS = {"targets-seq-c50": 1.05, "targets-seq-c50-veth": 1.05, "script-static-c50": 1.05}
# ... and over wrk on the same script.
SCRIPT_TARGETS = {"script-dynamic-c50": 1.0, "script-dynamic-c50-veth": 1.0}


def paced_table(results):
    """Constant-rate scenarios: what each tool cost and how it kept the
    schedule, and issue 23's targets."""
    rows = [e for e in results if paced(e["urk_flags"])]
    if not rows:
        return []
    out = ["", "Constant rate (issue 23): CPU-µs per completed request at the same offered rate; send lag is urk's "
           "(actual minus intended send, µs); p99 is each tool's corrected p99 (wrk2 and oha count from the intended "
           "send too); urk-closed is closed-loop on the same connections.", "",
           "| scenario | tool | achieved req/s | CPU-µs/req | urk/tool CPU-µs/req | p99 µs | send lag p50 / p99 µs | window µs | enters/1000 req | TCP segments/req |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for e in rows:
        for tool, m in e["median"].items():
            r = e["urk_over_peers_cpu_us_per_req"].get(tool) if tool != e["reference"] else e["urk_over_wrk"]["cpu_us_per_req"]
            lag = (f"{fmt(m.get('send_lag_p50_us'), '.0f')} / {fmt(m.get('send_lag_p99_us'), '.0f')}"
                   if tool.startswith("urk") and m.get("send_lag_p50_us") is not None else "")
            out.append(f"| {e['scenario']} | {tool} | {fmt(m['rps'], ',.0f')} | {fmt(m['cpu_us_per_req'], '.2f')} | "
                       f"{fmt(r, '.2f') if tool != 'urk' else ''} | {fmt(m.get('p99_us'), ',.0f')} | {lag} | "
                       f"{fmt(m.get('window_us'), '.0f') if tool.startswith('urk') else ''} | "
                       f"{fmt(m.get('enters_per_1000'), '.0f') if tool.startswith('urk') else ''} | "
                       f"{fmt(m.get('segments_per_req'), '.2f')} |")
    out += ["", "Targets (issue 23): urk -R no dearer per request than the cheapest of wrk2 and oha, and within 1.3x "
            "of urk's closed-loop cost on the same connections:", ""]
    for e in rows:
        ratios = e["urk_over_peers_cpu_us_per_req"]
        peers = [ratios.get(t) if t != e["reference"] else e["urk_over_wrk"]["cpu_us_per_req"] for t in ("wrk2", "oha")]
        peers = [p for p in peers if p is not None]
        if peers:
            worst = max(peers)
            out.append(f"- {'met' if worst <= 1.0 else 'NOT met'}: {e['scenario']} urk/best peer CPU-µs/req {worst:.2f} (target <= 1)")
        closed = ratios.get("urk-closed")
        if closed is not None:
            out.append(f"- {'met' if closed <= 1.3 else 'NOT met'}: {e['scenario']} urk -R / urk closed-loop CPU-µs/req "
                       f"{closed:.2f} (target <= 1.3)")
    return out


def h2_targets(results):
    """Issue 25's targets: urk's CPU-µs per request below every peer's in
    every HTTP/2 scenario, at most 0.85x the best peer's at h2c c50 with 10
    streams, and peak RSS at 10,000 connections below both."""
    rows = [e for e in results if http2(e["urk_flags"])]
    if not rows:
        return []
    out = ["", "Targets (issue 25, HTTP/2; urk/tool ratios are medians of per-round ratios, the reference being "
           "h2load):", ""]
    for e in rows:
        ratios = dict(e["urk_over_peers_cpu_us_per_req"])
        ratios[e["reference"]] = e["urk_over_wrk"]["cpu_us_per_req"]
        ratios = {t: r for t, r in ratios.items() if r is not None and t in ("h2load", "oha")}
        if not ratios:
            continue
        worst = max(ratios.values())
        limit = 0.85 if e["scenario"] == "h2-c50-m10" else 1.0
        each = ", ".join(f"urk/{t} {r:.2f}" for t, r in sorted(ratios.items()))
        out.append(f"- {'met' if worst <= limit else 'NOT met'}: {e['scenario']} CPU-µs/req {each} "
                   f"(target <= {limit} against every peer); urk errors {e['median']['urk']['errors']}")
        if e["connections"] >= 10000:
            m = e["median"]
            peers = {t: m[t]["peak_rss_mb"] for t in ("h2load", "oha") if t in m}
            ok = all(m["urk"]["peak_rss_mb"] < v for v in peers.values())
            out.append(f"- {'met' if ok else 'NOT met'}: {e['scenario']} peak RSS urk {m['urk']['peak_rss_mb']:.1f} MB vs "
                       + ", ".join(f"{t} {v:.1f} MB" for t, v in peers.items()))
    return out


def targets(results):
    """Each target, met or not, and by how much (medians from this run)."""
    by = {e["scenario"]: e for e in results}
    out = ["", "Targets (issue 3):", ""]

    def line(ok, text):
        out.append(f"- {'met' if ok else 'NOT met'}: {text}")

    for name in ("c50", "c50-veth"):
        r = by.get(name, {}).get("urk_over_wrk", {}).get("epoll_cpu_us_per_req")
        if r is not None:
            line(r <= 0.95, f"{name} urk --io epoll / wrk CPU-us/req {r:.2f} (target <= 0.95)")
    for name, limit in SCRIPT_TARGETS.items():
        r = by.get(name, {}).get("urk_over_wrk", {}).get("cpu_us_per_req")
        if r is not None:
            line(r <= limit, f"{name} urk/wrk CPU-us/req on the same script {r:.2f} (target <= {limit})")
    for name, limit in VARIED_TARGETS.items():
        r = by.get(name, {}).get("urk_over_peers_cpu_us_per_req", {}).get("urk-fixed")
        if r is not None:
            line(r <= limit, f"{name} urk/urk-fixed CPU-us/req {r:.2f} (target <= {limit})")

    for name, limit in CPU_TARGETS.items():
        r = by.get(name, {}).get("urk_over_wrk", {}).get("cpu_us_per_req")
        if r is not None:
            line(r <= limit, f"{name} urk/wrk CPU-us/req {r:.2f} (target <= {limit}"
                 + ("" if r <= limit else f", {100 * (r / limit - 1):.0f}% over") + ")")
    for e in results:
        if e["urk_flags"] or e.get("network") == "veth":
            continue
        r = e["urk_over_wrk"]["rps"]
        if r is not None:
            spread = e["urk_over_wrk"].get("rps_range")
            seen = f"; single rounds {spread[0]:.2f}-{spread[1]:.2f}" if spread else ""
            line(r >= 1.0, f"{e['scenario']} urk/wrk req/s {r:.2f} (target >= 1{seen})")
        errs = e["median"]["urk"]["errors"]
        worst = max(e["runs"]["urk"], key=lambda x: x["errors"])
        kinds = "".join(f", {k} {v}" for k, v in worst.get("error_kinds", {}).items())
        line(errs == 0, f"{e['scenario']} urk errors {errs} (most in any round{kinds}; target 0)")
    for name in ("c10000", "https-c10000"):
        if name in by:
            m = by[name]["median"]
            line(m["urk"]["peak_rss_mb"] <= m["wrk"]["peak_rss_mb"],
                 f"{name} peak RSS urk {m['urk']['peak_rss_mb']:.1f} MB vs wrk {m['wrk']['peak_rss_mb']:.1f} MB")
    if "c10000" in by and "c50" in by:
        hi, lo = by["c10000"]["median"]["urk"]["cpu_us_per_req"], by["c50"]["median"]["urk"]["cpu_us_per_req"]
        whi, wlo = by["c10000"]["median"]["wrk"]["cpu_us_per_req"], by["c50"]["median"]["wrk"]["cpu_us_per_req"]
        if hi and lo and whi and wlo:
            line(hi / lo <= 1.25, f"urk CPU-us/req c10000 / c50 = {hi / lo:.2f} (target <= 1.25; wrk's {whi / wlo:.2f})")
    veth = [e for e in results if e.get("network") == "veth" and not paced(e["urk_flags"])
            and not http2(e["urk_flags"])]
    if veth:
        out += ["", "Each end's receive work on its own core (-veth, diagnostic; the loopback figure in brackets):", ""]
        for e in veth:
            r = e["urk_over_wrk"]
            lo = by.get(e["scenario"].removesuffix("-veth"), {}).get("urk_over_wrk", {})
            out.append(f"- {e['scenario']}: urk/wrk CPU-us/req {fmt(r['cpu_us_per_req'], '.2f')} "
                       f"({fmt(lo.get('cpu_us_per_req'), '.2f')}), req/s {fmt(r['rps'], '.2f')} "
                       f"({fmt(lo.get('rps'), '.2f')}), urk errors {e['median']['urk']['errors']}")
    return out


if __name__ == "__main__":
    main()

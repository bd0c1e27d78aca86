//! `urk`: wrk's command line and report on the io_uring engine.

mod args;
mod debug;
mod diff;
mod hdr_log;
mod html;
mod merge;
mod metrics;
mod plot;
mod progress;
mod share;
mod tui;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use argh::FromArgs;

use args::{unglue, Args};

/// Set by the first Ctrl-C or SIGTERM; the engine stops and reports.
static STOP: AtomicBool = AtomicBool::new(false);
/// When the first one came (CLOCK_MONOTONIC, ns; 0: none yet).
static FIRST_SIGNAL_NS: AtomicU64 = AtomicU64::new(0);
/// stderr is a terminal: the first Ctrl-C says what a second one does.
static NOTICE: AtomicBool = AtomicBool::new(false);
/// A second interrupt quits at once only this long after the first:
/// GNU `timeout` (and a shell's job control) sends SIGINT to urk and then
/// to its whole process group, microseconds apart, and that is one
/// interrupt, not a user pressing Ctrl-C twice.
const SECOND_SIGNAL_NS: u64 = 500_000_000;

extern "C" fn on_signal(_: libc_int) {
    let now = monotonic_ns();
    let first = FIRST_SIGNAL_NS.load(Ordering::SeqCst);
    if first == 0 {
        FIRST_SIGNAL_NS.store(now.max(1), Ordering::SeqCst);
        STOP.store(true, Ordering::SeqCst);
        if NOTICE.load(Ordering::SeqCst) {
            let msg = b"\nurk: stopping; the report follows (Ctrl-C again to quit without it)\n";
            // SAFETY: write is async-signal-safe; the bytes are static.
            let _ = unsafe { nix::libc::write(2, msg.as_ptr().cast(), msg.len()) };
        }
    } else if now.saturating_sub(first) >= SECOND_SIGNAL_NS {
        // A second Ctrl-C, after the first's notice: the user wants out now.
        // SAFETY: _exit is async-signal-safe and takes no pointers.
        unsafe { nix::libc::_exit(130) };
    }
}

/// The monotonic clock, from a signal handler (clock_gettime is
/// async-signal-safe).
fn monotonic_ns() -> u64 {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec on this stack for the call.
    unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[allow(non_camel_case_types)]
type libc_int = nix::libc::c_int;

fn install_signal_handlers() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    NOTICE.store(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        Ordering::SeqCst,
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only touches atomics and calls clock_gettime,
        // write and _exit, all async-signal-safe.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    let line = msg
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("urk: {line}");
    ExitCode::from(2)
}

/// A failed probe handshake, with the flags that fix it.
fn tls_hint(t: &urk_engine::TlsFailure) -> String {
    use urk_engine::TlsProblem;
    let hint = match t.problem {
        TlsProblem::Untrusted => {
            "; trust its CA with --cacert FILE, or skip verification with -k/--insecure"
        }
        TlsProblem::Expired => {
            "; renew the server's certificate, or skip verification with -k/--insecure"
        }
        TlsProblem::NotValidYet => {
            "; check this machine's clock (and the server's), or skip verification with -k/--insecure"
        }
        TlsProblem::CaAsServerCert => {
            "; give that certificate itself with --cacert FILE, or serve a certificate it issued, or skip verification with -k/--insecure"
        }
        TlsProblem::UnsupportedSignature => {
            "; re-issue it with ECDSA, Ed25519 or RSA with SHA-256 or better, or skip verification with -k/--insecure"
        }
        TlsProblem::NameMismatch => {
            "; use the name it was issued for (or --sni NAME), or skip verification with -k/--insecure"
        }
        TlsProblem::Timeout => "; is it a TLS server? (-T raises the timeout)",
        _ => "",
    };
    format!("{t}{hint}; nothing was sent")
}

/// What the errors of a run with no response say, for its one line.
fn why_none(r: &urk_engine::Report) -> String {
    let e = &r.errors;
    let c = &r.connect_errors;
    if e.total() == 0 {
        return String::new();
    }
    let mut parts = Vec::new();
    if e.connect > 0 {
        let mut what = format!("{} failed connects", e.connect);
        if c.refused > 0 {
            what += &format!(" ({} refused: is the server listening?)", c.refused);
        }
        parts.push(what);
    }
    for (n, class) in [
        (e.read, "read"),
        (e.write, "write"),
        (e.timeout, "timeout"),
        (e.parse, "parse"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {class} errors"));
        }
    }
    format!(": {}", parts.join(", "))
}

/// A subcommand's flags, or the exit its parse ends in (`--help`
/// printed, or one line for bad flags).
fn sub_args<T: FromArgs>(name: &str, argv: &[String]) -> Result<T, ExitCode> {
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    T::from_args(&["urk", name], &strs).map_err(|early| {
        if early.status.is_ok() {
            print!("{}", early.output);
            ExitCode::SUCCESS
        } else {
            fail(format!("{} (see urk {name} --help)", early.output))
        }
    })
}

fn report_main(argv: &[String]) -> ExitCode {
    let args: html::ReportArgs = match sub_args("report", argv) {
        Ok(a) => a,
        Err(exit) => return exit,
    };
    match html::args::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn diff_main(argv: &[String]) -> ExitCode {
    let args: diff::DiffArgs = match sub_args("diff", argv) {
        Ok(a) => a,
        Err(exit) => return exit,
    };
    match diff::run(&args) {
        Ok(o) => {
            print!("{}", o.out);
            match o.slower {
                Some(why) => {
                    eprintln!("urk diff: {why}");
                    ExitCode::from(3)
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) => fail(e),
    }
}

fn merge_main(argv: &[String]) -> ExitCode {
    let args: merge::MergeArgs = match sub_args("merge", argv) {
        Ok(a) => a,
        Err(exit) => return exit,
    };
    match merge::run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Every metric's labels: the shard, and the run's id (the asked start,
/// which a fleet shares, or this process's start).
fn metric_labels(cfg: &urk_engine::Config, coordinator: Option<&str>) -> Vec<(String, String)> {
    let at = cfg.start_at.unwrap_or_else(std::time::SystemTime::now);
    let id = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // A fleet's search has no start moment its shards share, but one
    // place they meet.
    let id = coordinator.map_or_else(|| id.to_string(), str::to_string);
    let mut l = vec![("run_id".to_string(), id)];
    if let Some(s) = cfg.shard {
        l.push(("shard".to_string(), s.to_string()));
    }
    l
}

/// `--metrics`, when asked for: serving from now on. `paced`: the run
/// has an uncorrected latency of its own to export.
fn start_metrics(
    args: &Args,
    cfg: &urk_engine::Config,
    paced: bool,
) -> Result<Option<std::sync::Arc<metrics::Exporter>>, String> {
    let Some(addr) = &args.metrics else {
        return Ok(None);
    };
    let e = metrics::Exporter::start(addr, metric_labels(cfg, args.coordinator.as_deref()), paced)?;
    if !args.quiet {
        eprintln!("urk: metrics at http://{}/metrics", e.addr);
    }
    Ok(Some(std::sync::Arc::new(e)))
}

/// `--find-max`: the answer first, then the steps; the exit status says
/// whether any rate met the objectives.
fn search_main(
    args: &Args,
    cfg: &urk_engine::Config,
    search: &urk_engine::Search,
    live_view: bool,
) -> ExitCode {
    if !args.json {
        println!(
            "Finding the max rate under {} @ {} (within {})",
            search
                .objectives
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            cfg.request.target.url,
            urk_engine::units::format_time_s(search.budget.as_secs_f64())
        );
        println!(
            "  {} threads and {} connections",
            cfg.threads, cfg.connections
        );
    }
    // Every step follows a schedule: the uncorrected latency is its own.
    let exporter = match start_metrics(args, cfg, true) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let live = std::sync::Arc::new(urk_engine::Live::with_seconds());
    let tap = exporter.as_ref().map(|e| {
        // The step under way is a fleet total; this process offers its
        // share.
        let (l, share) = (live.clone(), cfg.shard.map_or(1.0, |s| s.rate(1.0)));
        e.tap(move |_| l.search().and_then(|p| p.current).unwrap_or(0.0) * share)
    });
    let result = if live_view {
        let facts = tui::Facts {
            url: cfg.request.target.url.clone(),
            threads: cfg.threads,
            connections: cfg.connections,
            duration: search.budget,
            requests: None,
            plan: None,
            corrected: true,
        };
        let view = tui::LiveView::start(live.clone(), facts, &STOP, tap.clone());
        let result = urk_engine::find_max_watched(cfg, search, &STOP, Some(&live));
        view.finish();
        if let Some(tap) = &tap {
            tap(&live.take_seconds());
        }
        result
    } else if let Some(tap) = tap {
        let poller = metrics::Poller::start(live.clone(), tap);
        let result = urk_engine::find_max_watched(cfg, search, &STOP, Some(&live));
        poller.finish();
        result
    } else {
        urk_engine::find_max(cfg, search, &STOP)
    };
    if let Some(e) = &exporter {
        // The last seconds are scraped before the endpoint goes.
        e.finish(metrics::LINGER);
    }
    let (found, mut merged) = match result {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    merged.command = Some(html::this_command());
    if args.json {
        match serde_json::to_string_pretty(&merged) {
            Ok(j) => println!("{j}"),
            Err(e) => return fail(e),
        }
    } else {
        print!("{}", found.to_text());
    }
    if let Some(path) = &args.plot {
        if let Err(e) = plot::write_search(path, &found) {
            return fail(format!("cannot write --plot '{path}': {e}"));
        }
    }
    if let Some(path) = &args.html {
        let run = html::Run {
            report: &merged,
            label: merged.url.clone(),
            command: merged.command.clone(),
        };
        if let Err(e) = html::write(path, &[run]) {
            return fail(format!("cannot write --html '{path}': {e}"));
        }
    }
    if found.rate.is_none() {
        eprintln!("urk: no rate met the objectives");
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

/// A report piped into `head` ends when the reader does, as a Unix
/// tool's output does (Rust ignores SIGPIPE, and `print!` then panics).
/// Sockets never raise it: every send passes MSG_NOSIGNAL.
fn die_quietly_on_closed_stdout() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: restoring the default disposition installs no handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

fn main() -> ExitCode {
    die_quietly_on_closed_stdout();
    let argv = unglue(std::env::args().skip(1));
    if argv.first().map(String::as_str) == Some("merge") {
        return merge_main(&argv[1..]);
    }
    if argv.first().map(String::as_str) == Some("diff") {
        return diff_main(&argv[1..]);
    }
    if argv.first().map(String::as_str) == Some("report") {
        return report_main(&argv[1..]);
    }
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let args = match Args::from_args(&["urk"], &strs) {
        Ok(a) => a,
        Err(early) if early.status.is_ok() => {
            print!("{}", early.output);
            return ExitCode::SUCCESS;
        }
        Err(early) => return fail(format!("{} (see urk --help)", early.output)),
    };
    if args.version {
        println!(
            "urk {} (HTTP/1.1 and HTTP/2 load generator on io_uring)",
            env!("CARGO_PKG_VERSION")
        );
        match urk_engine::KernelSupport::probe() {
            Ok(k) => println!("kernel {}: best io level {}", k.release, k.best),
            Err(e) => println!("io_uring: {e}"),
        }
        return ExitCode::SUCCESS;
    }
    let mut cfg = match args.to_config() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut script = match &args.script {
        Some(path) => match script::Script::load(path, &cfg.request, args.script_args()) {
            Ok(s) => Some(s),
            Err(e) => return fail(e),
        },
        None => None,
    };
    if let Some(s) = &script {
        cfg = cfg.script(s.engine_script());
    }
    let thresholds = match args.thresholds() {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let search = match args.search() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    // Before the checks: a TLS probe can take up to the timeout, and a
    // Ctrl-C during it should stop the run (and a second one quit).
    install_signal_handlers();
    let length = cfg.warmup + cfg.duration;
    let live_view = tui::wanted(args.quiet, args.no_tui, length);
    if live_view || args.metrics.is_some() {
        // The view draws the seconds the workers close, and the metrics
        // add them up.
        cfg = cfg.intervals(true);
    }
    let plan = match urk_engine::Plan::new(&cfg) {
        Ok(p) => p,
        Err(urk_engine::EngineError::Tls(t)) => return fail(tls_hint(&t)),
        Err(e) => return fail(e),
    };
    if let Some(why) = plan.fallback_reason() {
        eprintln!("urk: running on epoll: {why}");
    }
    if let (used @ [_, ..], dead) = plan.spread() {
        let list = |a: &[std::net::SocketAddr]| {
            a.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let left = match dead {
            [] => String::new(),
            d => format!("; left out, no connection: {}", list(d)),
        };
        eprintln!(
            "urk: connections spread over {} address{}: {}{left}",
            used.len(),
            if used.len() == 1 { "" } else { "es" },
            list(used)
        );
    }
    if let Some(s) = &mut script {
        if let Err(e) = s.setup(cfg.threads, plan.addr()) {
            return fail(e);
        }
    }
    if args.debug {
        return match plan.exchange(debug::BODY_SHOWN) {
            Ok(x) => {
                print!("{}", debug::show(&x));
                ExitCode::SUCCESS
            }
            Err(urk_engine::EngineError::Tls(t)) => fail(tls_hint(&t)),
            Err(e) => {
                eprintln!("urk: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(search) = search {
        return search_main(&args, &cfg, &search, live_view);
    }
    if !args.json {
        print!("{}", urk_engine::banner(&cfg));
    }
    let exporter = match start_metrics(&args, &cfg, cfg.plan().is_some()) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    // This process's own share, when it is one shard of a fleet.
    let own = plan.config().clone();
    let tap = exporter.as_ref().map(|e| {
        let plan = own.plan();
        e.tap(move |t| plan.as_ref().map_or(0.0, |p| p.rate_at(t)))
    });
    let result = if live_view {
        // The view reads each second as the workers close it.
        let live = std::sync::Arc::new(urk_engine::Live::with_seconds());
        let facts = tui::Facts {
            url: own.request.target.url.clone(),
            threads: own.threads,
            connections: own.connections,
            duration: length,
            requests: own.requests,
            plan: own.plan(),
            corrected: own.plan().is_some(),
        };
        let view = tui::LiveView::start(live.clone(), facts, &STOP, tap.clone());
        let result = plan.run_watched(&STOP, &live);
        view.finish();
        if let Some(tap) = &tap {
            tap(&live.take_seconds());
        }
        result
    } else {
        let live = std::sync::Arc::new(match tap {
            Some(_) => urk_engine::Live::with_seconds(),
            None => urk_engine::Live::default(),
        });
        let poller = tap.map(|t| metrics::Poller::start(live.clone(), t));
        let progress = progress::Progress::start(live.clone(), length, args.quiet);
        let result = plan.run_watched(&STOP, &live);
        progress.finish();
        if let Some(p) = poller {
            p.finish();
        }
        result
    };
    let mut report = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    report.command = Some(html::this_command());
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => return fail(e),
        }
    } else {
        let opts = urk_engine::TextOptions {
            latency: args.latency,
            uncorrected: args.u_latency,
        };
        print!("{}", report.to_text(opts));
    }
    if let Some(path) = &args.hdr_log {
        if let Err(e) = hdr_log::write(path, &report) {
            return fail(format!("cannot write --hdr-log '{path}': {e}"));
        }
    }
    if let Some(path) = &args.plot {
        if let Err(e) = plot::write(path, &report) {
            return fail(format!("cannot write --plot '{path}': {e}"));
        }
    }
    if let Some(path) = &args.html {
        let run = html::Run {
            report: &report,
            label: report.url.clone(),
            command: report.command.clone(),
        };
        if let Err(e) = html::write(path, &[run]) {
            return fail(format!("cannot write --html '{path}': {e}"));
        }
    }
    if let Some(e) = &exporter {
        // The last seconds are scraped before the endpoint goes.
        e.finish(metrics::LINGER);
    }
    if let Some(s) = &script {
        if let Err(e) = s.done(&report) {
            return fail(e);
        }
    }
    if let Some(e) = &report.script_error {
        // The report so far is out; the error that stopped it follows.
        return fail(format!("the script stopped the run: {e}"));
    }
    if report.requests == 0 {
        // Thresholds on an empty run would judge nothing (p99 of no
        // samples is 0): the run itself failed.
        eprintln!("urk: no request completed{}", why_none(&report));
        return ExitCode::from(1);
    }
    let broken: Vec<String> = thresholds
        .iter()
        .filter_map(|t| t.broken(&report))
        .collect();
    for b in &broken {
        eprintln!("urk: {b}");
    }
    if !broken.is_empty() {
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

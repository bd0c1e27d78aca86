//! `urk`: wrk's command line and report on the io_uring engine.

mod args;
mod hdr_log;
mod merge;
mod plot;
mod progress;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use argh::FromArgs;

use args::{unglue, Args};

/// Set by the first Ctrl-C or SIGTERM; the engine stops and reports.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // Second Ctrl-C: the user wants out now.
        // SAFETY: _exit is async-signal-safe and takes no pointers.
        unsafe { nix::libc::_exit(130) };
    }
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
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only touches an atomic and calls _exit, both
        // async-signal-safe.
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
        TlsProblem::Untrusted | TlsProblem::Expired => {
            "; trust its CA with --cacert FILE, or skip verification with -k/--insecure"
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

fn merge_main(argv: &[String]) -> ExitCode {
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let args = match merge::MergeArgs::from_args(&["urk", "merge"], &strs) {
        Ok(a) => a,
        Err(early) if early.status.is_ok() => {
            print!("{}", early.output);
            return ExitCode::SUCCESS;
        }
        Err(early) => return fail(format!("{} (see urk merge --help)", early.output)),
    };
    match merge::run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `--find-max`: the answer first, then the steps; the exit status says
/// whether any rate met the objectives.
fn search_main(args: &Args, cfg: &urk_engine::Config, search: &urk_engine::Search) -> ExitCode {
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
    let (found, merged) = match urk_engine::find_max(cfg, search, &STOP) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
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
    if found.rate.is_none() {
        eprintln!("urk: no rate met the objectives");
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let argv = unglue(std::env::args().skip(1));
    if argv.first().map(String::as_str) == Some("merge") {
        return merge_main(&argv[1..]);
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
            "urk {} (HTTP/1.1 load generator on io_uring)",
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
    let plan = match urk_engine::Plan::new(&cfg) {
        Ok(p) => p,
        Err(urk_engine::EngineError::Tls(t)) => return fail(tls_hint(&t)),
        Err(e) => return fail(e),
    };
    if let Some(why) = plan.fallback_reason() {
        eprintln!("urk: running on epoll: {why}");
    }
    if let Some(s) = &mut script {
        if let Err(e) = s.setup(cfg.threads, plan.addr()) {
            return fail(e);
        }
    }
    install_signal_handlers();
    if let Some(search) = search {
        return search_main(&args, &cfg, &search);
    }
    if !args.json {
        print!("{}", urk_engine::banner(&cfg));
    }
    let live = std::sync::Arc::new(urk_engine::Live::default());
    let progress = progress::Progress::start(live.clone(), cfg.duration, args.quiet);
    let result = plan.run_watched(&STOP, &live);
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
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

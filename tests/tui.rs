//! The live view as a person sees it: urk runs in a tmux pane, the test
//! reads the screen (`capture-pane`), sees numbers fill it and change,
//! resizes the pane, presses `q` (`send-keys`) and finds the report on
//! the terminal it got back. Without tmux the pane half is skipped,
//! unless URK_REQUIRE_TMUX=1 (CI sets it).

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::cli::{bin, text, urk};
use support::server::{ServerConfig, TestServer};

/// A tmux server of the test's own.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert_ne!(
                std::env::var("URK_REQUIRE_TMUX").as_deref(),
                Ok("1"),
                "tmux is required (URK_REQUIRE_TMUX=1) but not installed"
            );
            eprintln!("skipped: tmux is not installed (apt-get install tmux)");
            return None;
        }
        Some(Tmux {
            socket: format!("urk-{name}-{}", std::process::id()),
        })
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// The pane's screen, and its scrollback with `history`.
    fn screen(&self, history: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", "t"];
        if history {
            args.extend(["-S", "-200"]);
        }
        text(&self.run(&args).stdout)
    }

    /// Waits (bounded) until the screen has `what`.
    fn wait_for(&self, what: &str, history: bool) -> String {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen(history);
            if s.contains(what) || Instant::now() > end {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn the_live_view_fills_changes_redraws_and_q_gives_the_report() {
    let server = TestServer::start(ServerConfig::default());
    let Some(tmux) = Tmux::new("view") else {
        return;
    };
    let cmd = format!(
        "{} -t1 -c4 -d30s -R 2000 {}; echo URK-EXIT=$?; sleep 60",
        bin(),
        server.url("/")
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "36",
        &cmd,
    ]);
    assert!(started.status.success(), "{}", text(&started.stderr));

    // The screen fills: the chart, the latency table with numbers.
    let first = tmux.wait_for("last second", false);
    assert!(first.contains("Requests per second"), "{first}");
    assert!(first.contains("p99.9"), "{first}");
    let screen = tmux.wait_for("200: ", false);
    assert!(screen.contains("200: "), "{screen}");
    assert!(screen.contains("us  "), "latencies: {screen}");
    // ... and changes as the run goes.
    std::thread::sleep(Duration::from_millis(1500));
    let later = tmux.screen(false);
    assert_ne!(screen, later, "the view did not change");
    let artifacts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("tui.txt"), &later).unwrap();

    // A smaller pane is drawn again at its size.
    tmux.run(&["resize-window", "-t", "t", "-x", "90", "-y", "30"]);
    std::thread::sleep(Duration::from_millis(800));
    let small = tmux.screen(false);
    let widths: Vec<usize> = small.lines().map(|l| l.chars().count()).collect();
    assert!(widths.iter().all(|&w| w <= 90), "{small}");
    assert!(
        small.contains("last second") && small.contains("┐"),
        "{small}"
    );

    // q stops the run: the screen is left, the report printed on it.
    tmux.run(&["send-keys", "-t", "t", "q"]);
    let done = tmux.wait_for("URK-EXIT=", true);
    assert!(done.contains("URK-EXIT=0"), "{done}");
    assert!(done.contains("requests in"), "{done}");
    assert!(done.contains("Interrupted"), "{done}");
    let now = tmux.screen(false);
    assert!(
        !now.contains("Requests per second"),
        "the view is still up: {now}"
    );
}

#[test]
fn without_a_terminal_nothing_but_the_report_is_written() {
    let server = TestServer::start(ServerConfig::default());
    let out = urk(&["-t1", "-c2", "-d3s", &server.url("/")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !bytes.contains(&0x1b),
            "escape codes on {name}: {}",
            text(bytes)
        );
    }
    assert!(text(&out.stdout).contains("requests in"));
}

#[test]
fn a_capacity_search_shows_its_steps_and_bracket_live() {
    let server = TestServer::start(ServerConfig::default());
    let Some(tmux) = Tmux::new("search") else {
        return;
    };
    let cmd = format!(
        "{} -t1 -c4 -d8s --find-max 'p99<50ms' --step-duration 1s {}; echo URK-EXIT=$?; sleep 60",
        bin(),
        server.url("/")
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "40",
        &cmd,
    ]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    // The first step's verdict, in the search's panel.
    let screen = tmux.wait_for("rate/s", false);
    assert!(screen.contains("Capacity search: p99<50ms"), "{screen}");
    let step_row = |s: &str| {
        s.lines().any(|l| {
            !l.contains("Capacity search")
                && l.starts_with('│')
                && (l.contains(" pass ") || l.contains("fail: "))
        })
    };
    let end = std::time::Instant::now() + Duration::from_secs(15);
    let mut screen = tmux.screen(false);
    while !step_row(&screen) && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        screen = tmux.screen(false);
    }
    assert!(step_row(&screen), "no judged step: {screen}");
    // The search ends by itself; the view leaves and its report follows.
    let done = tmux.wait_for("URK-EXIT=", true);
    assert!(done.contains("closed-loop probe"), "{done}");
    assert!(
        done.contains("URK-EXIT=0") || done.contains("URK-EXIT=3"),
        "{done}"
    );
}

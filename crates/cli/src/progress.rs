//! Live progress on stderr while a run goes, only when stderr is a
//! terminal: elapsed and remaining time, current req/s, errors so far.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use urk_engine::Live;

pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts drawing from `live`, unless stderr is not a terminal or
    /// `quiet`; then it is a no-op.
    pub fn start(live: Arc<Live>, duration: Duration, quiet: bool) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { done, thread: None };
        }
        let bar = ProgressBar::with_draw_target(
            Some(duration.as_millis() as u64),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let stop = done.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let (mut last_n, mut last_t) = (0u64, start);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let (n, errors) = live.totals();
                let now = Instant::now();
                let rate = (n - last_n) as f64 / now.duration_since(last_t).as_secs_f64().max(1e-3);
                (last_n, last_t) = (n, now);
                let elapsed = start.elapsed();
                bar.set_position(elapsed.as_millis() as u64);
                bar.set_message(format!(
                    "{}s left, {rate:.0} req/s, {n} requests, {errors} errors",
                    duration.saturating_sub(elapsed).as_secs()
                ));
            }
            bar.finish_and_clear();
        });
        Progress {
            done,
            thread: Some(thread),
        }
    }

    /// Clears the display before the report is printed.
    pub fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! Where no live view drains the workers' seconds, a thread does, for
//! the exporter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Whoever drains the workers' seconds (the live view, or a [`Poller`])
/// hands them here too.
pub type Tap = Arc<dyn Fn(&[urk_engine::LiveSecond]) + Send + Sync>;

/// Drains the workers' seconds into a tap where no live view does.
pub struct Poller {
    live: Arc<urk_engine::Live>,
    tap: Tap,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    pub fn start(live: Arc<urk_engine::Live>, tap: Tap) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (live, tap, stop) = (live.clone(), tap.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    tap(&live.take_seconds());
                    std::thread::sleep(Duration::from_millis(250));
                }
            })
        };
        Poller {
            live,
            tap,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops polling, after the last seconds.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (self.tap)(&self.live.take_seconds());
    }
}

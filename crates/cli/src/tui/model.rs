//! What the live view knows: the workers' seconds gathered into the run's
//! seconds (a second is whole once every worker has published it), the
//! latency of the last whole second and of the run so far, and the
//! workers' latest running counts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use urk_engine::{ConnectCauses, Errors, LiveSecond, RatePlan, SearchProgress};

/// What the view shows that the run's configuration says.
pub struct Facts {
    pub url: String,
    pub threads: usize,
    pub connections: usize,
    /// The warm-up and the window.
    pub duration: Duration,
    pub requests: Option<u64>,
    /// Paced runs: the offered rate over time.
    pub plan: Option<RatePlan>,
    /// Every second's latency counts from its slot.
    pub corrected: bool,
}

/// One second of the run, over all workers.
pub struct Second {
    pub requests: u64,
    pub latency: Histogram<u64>,
    pub workers: usize,
    /// The busiest worker's share of it.
    pub busy: f64,
}

pub struct Model {
    pub facts: Facts,
    pub started: Instant,
    pub seconds: BTreeMap<u32, Second>,
    /// Every latency so far.
    pub run: Histogram<u64>,
    /// Each worker's latest second: its running counts.
    pub latest: Vec<Option<LiveSecond>>,
    /// Requests and errors so far (updated every 100 ms).
    pub totals: (u64, u64),
    /// `q` or Ctrl-C was pressed: the run is stopping.
    pub stopping: bool,
    /// A capacity search's progress.
    pub search: Option<SearchProgress>,
}

impl Model {
    pub fn new(facts: Facts, started: Instant) -> Model {
        let threads = facts.threads;
        Model {
            facts,
            started,
            seconds: BTreeMap::new(),
            run: new_histogram(),
            latest: vec![None; threads],
            totals: (0, 0),
            stopping: false,
            search: None,
        }
    }

    /// Takes what the workers published since the last frame.
    pub fn take(&mut self, seconds: Vec<LiveSecond>, totals: (u64, u64)) {
        self.totals = totals;
        let mut de = Deserializer::new();
        for s in seconds {
            let h: Option<Histogram<u64>> = de.deserialize(&mut s.histogram_v2.as_slice()).ok();
            let entry = self.seconds.entry(s.index).or_insert_with(|| Second {
                requests: 0,
                latency: new_histogram(),
                workers: 0,
                busy: 0.0,
            });
            entry.requests += s.requests;
            entry.workers += 1;
            entry.busy = entry.busy.max(s.busy);
            if let Some(h) = h {
                let _ = entry.latency.add(&h);
                let _ = self.run.add(&h);
            }
            if let Some(slot) = self.latest.get_mut(s.worker) {
                *slot = Some(s);
            }
        }
    }

    /// The last second every worker has published.
    pub fn last_whole(&self) -> Option<(u32, &Second)> {
        self.seconds
            .iter()
            .rev()
            .find(|(_, s)| s.workers >= self.facts.threads)
            .map(|(i, s)| (*i, s))
    }

    /// Running counts over the workers' latest seconds.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in self.latest.iter().flatten() {
            c.errors += s.errors;
            c.connect_errors += s.connect_errors;
            c.connects += s.connects;
            c.handshakes += s.handshakes;
            c.open += s.open;
            c.connecting += s.connecting;
            for &(code, n) in &s.status {
                *c.status.entry(code).or_insert(0) += n;
            }
        }
        c
    }
}

#[derive(Default)]
pub struct Counts {
    pub errors: Errors,
    pub connect_errors: ConnectCauses,
    pub status: BTreeMap<u16, u64>,
    pub connects: u64,
    pub handshakes: u64,
    pub open: u64,
    pub connecting: u64,
}

fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new(3).expect("3 significant digits is valid");
    h.auto(true);
    h
}

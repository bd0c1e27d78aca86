//! `--metrics ADDR`: the run's figures for Prometheus while it lasts.
//!
//! Latency is a *native* histogram (exponential buckets of one fixed
//! schema on every instance), never a per-instance quantile: quantiles of
//! several machines cannot be combined, while native histograms add, so
//! `histogram_quantile(0.99, sum(urk_latency_seconds))` over a fleet of
//! shards is the fleet's p99. Prometheus scrapes native histograms only in
//! its protobuf format (run it with `--enable-feature=native-histograms`).
//!
//! Fed from the seconds the workers publish as they close them (the ones
//! the live view draws): nothing on the hot path. Served by one blocking
//! thread, a response per connection.

mod poller;
mod serve;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use poller::{Poller, Tap};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, NativeHistogramConfig};
use prometheus_client::registry::Registry;

/// The native histograms' schema: buckets 2^(2^-3) ≈ 9% wide, on every
/// instance alike (sums of different schemas would be cut to the coarser).
pub const SCHEMA: i8 = 3;

/// How long the endpoint stays up after the run, so that the last
/// seconds are scraped.
pub const LINGER: Duration = Duration::from_secs(3);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Class {
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    code: String,
}

/// What a worker had counted at the end of its last second: the
/// counters export the differences.
#[derive(Default)]
struct Seen {
    errors: HashMap<&'static str, u64>,
    status: HashMap<u16, u64>,
    connects: u64,
    bytes: [u64; 2],
}

/// The times exported as native histograms, each fed from its own
/// histogram of the workers' seconds.
struct Times {
    corrected: Histogram,
    /// Only under a schedule: in a closed loop it is the one above.
    uncorrected: Option<Histogram>,
    ttfb: Histogram,
    connect: Histogram,
}

impl Times {
    fn new(paced: bool) -> Times {
        let native = || Histogram::new_native(NativeHistogramConfig::with_schema(SCHEMA));
        Times {
            corrected: native(),
            uncorrected: paced.then(native),
            ttfb: native(),
            connect: native(),
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "urk_latency_seconds",
            "Response latency (from the intended send under a schedule)",
            self.corrected.clone(),
        );
        if let Some(u) = &self.uncorrected {
            r.register(
                "urk_latency_uncorrected_seconds",
                "Response latency from the actual send (what a generator without correction would report)",
                u.clone(),
            );
        }
        r.register(
            "urk_ttfb_seconds",
            "Time to a response's first byte (from the intended send under a schedule)",
            self.ttfb.clone(),
        );
        r.register(
            "urk_connect_seconds",
            "Time for a connection to connect",
            self.connect.clone(),
        );
    }

    fn feed(&self, s: &urk_engine::LiveSecond) {
        observe(&self.corrected, &s.histogram_v2);
        if let Some(u) = &self.uncorrected {
            observe(u, &s.uncorrected_v2);
        }
        observe(&self.ttfb, &s.ttfb_v2);
        observe(&self.connect, &s.connect_v2);
    }
}

/// Adds a second's histogram of µs (V2; empty: none) to a native one.
fn observe(to: &Histogram, v2: &[u8]) {
    if v2.is_empty() {
        return;
    }
    let Ok(h) =
        hdrhistogram::serialization::Deserializer::new().deserialize::<u64, _>(&mut &v2[..])
    else {
        return;
    };
    for v in h.iter_recorded() {
        let secs = v.value_iterated_to() as f64 / 1e6;
        for _ in 0..v.count_at_value() {
            to.observe(secs);
        }
    }
}

struct Figures {
    requests: Counter,
    errors: Family<Class, Counter>,
    status: Family<Status, Counter>,
    connects: Counter,
    bytes: Family<Direction, Counter>,
    open: Gauge,
    offered: Gauge<f64, std::sync::atomic::AtomicU64>,
    latency: Times,
    seen: HashMap<usize, Seen>,
    open_by_worker: HashMap<usize, u64>,
}

/// The endpoint, serving until [`Exporter::finish`].
pub struct Exporter {
    figures: Arc<Mutex<Figures>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub addr: SocketAddr,
}

impl Exporter {
    /// Binds `addr` and starts serving; every metric carries `labels`
    /// (the shard, the run's id). `paced`: the run follows a schedule, so
    /// its latency from the actual send differs and is exported too.
    pub fn start(
        addr: &str,
        labels: Vec<(String, String)>,
        paced: bool,
    ) -> Result<Exporter, String> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| format!("cannot serve --metrics on {addr}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let labels = labels.into_iter().map(|(k, v)| (k.into(), v.into()));
        let mut registry = Registry::with_labels(labels);
        let f = Figures {
            requests: Counter::default(),
            errors: Family::default(),
            status: Family::default(),
            connects: Counter::default(),
            bytes: Family::default(),
            open: Gauge::default(),
            offered: Gauge::default(),
            latency: Times::new(paced),
            seen: HashMap::new(),
            open_by_worker: HashMap::new(),
        };
        registry.register("urk_requests", "Responses completed", f.requests.clone());
        registry.register("urk_errors", "Faults, by class", f.errors.clone());
        registry.register(
            "urk_responses",
            "Responses, by status code",
            f.status.clone(),
        );
        registry.register(
            "urk_connects",
            "Connections that connected",
            f.connects.clone(),
        );
        registry.register(
            "urk_bytes",
            "Bytes received (direction=read) and sent (direction=written)",
            f.bytes.clone(),
        );
        registry.register("urk_connections_open", "Connections open", f.open.clone());
        registry.register(
            "urk_offered_rate",
            "Requests per second the schedule offers (0 in a closed loop)",
            f.offered.clone(),
        );
        f.latency.register(&mut registry);
        let registry = Arc::new(registry);
        let stop = Arc::new(AtomicBool::new(false));
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let thread = {
            let (registry, stop) = (registry.clone(), stop.clone());
            std::thread::Builder::new()
                .name("urk-metrics".into())
                .spawn(move || serve::serve(listener, &registry, &stop))
                .map_err(|e| e.to_string())?
        };
        Ok(Exporter {
            figures: Arc::new(Mutex::new(f)),
            stop,
            thread: Mutex::new(Some(thread)),
            addr,
        })
    }

    /// A tap that feeds this exporter, with the rate `offered` gives for
    /// the time since the load began.
    pub fn tap(self: &Arc<Self>, offered: impl Fn(Duration) -> f64 + Send + Sync + 'static) -> Tap {
        let me = self.clone();
        let began = std::time::Instant::now();
        Arc::new(move |s: &[urk_engine::LiveSecond]| me.feed(s, offered(began.elapsed())))
    }

    /// Adds the seconds the workers closed; `offered` is the rate the
    /// schedule offers now.
    pub fn feed(&self, seconds: &[urk_engine::LiveSecond], offered: f64) {
        let mut f = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        f.offered.set(offered);
        for s in seconds {
            f.requests.inc_by(s.requests);
            f.latency.feed(s);
            let Figures {
                seen,
                errors,
                status,
                connects,
                bytes,
                ..
            } = &mut *f;
            let last = seen.entry(s.worker).or_default();
            // A worker's running counts start again with the measured
            // window after a warm-up: a count below the last one is a
            // fresh start, all of it new.
            let grown = |now: u64, before: u64| if now >= before { now - before } else { now };
            for (class, n) in s.errors.named() {
                let new = grown(n, last.errors.insert(class, n).unwrap_or(0));
                if new > 0 {
                    errors
                        .get_or_create(&Class {
                            class: class.to_string(),
                        })
                        .inc_by(new);
                }
            }
            for &(code, n) in &s.status {
                let new = grown(n, last.status.insert(code, n).unwrap_or(0));
                if new > 0 {
                    status
                        .get_or_create(&Status {
                            code: code.to_string(),
                        })
                        .inc_by(new);
                }
            }
            connects.inc_by(grown(s.connects, last.connects));
            last.connects = s.connects;
            for (k, (now, direction)) in [(s.bytes_read, "read"), (s.bytes_written, "written")]
                .into_iter()
                .enumerate()
            {
                bytes
                    .get_or_create(&Direction { direction })
                    .inc_by(grown(now, last.bytes[k]));
                last.bytes[k] = now;
            }
            f.open_by_worker.insert(s.worker, s.open);
            let open: u64 = f.open_by_worker.values().sum();
            f.open.set(open as i64);
        }
    }

    /// Serves a little longer, then stops.
    pub fn finish(&self, linger: Duration) {
        std::thread::sleep(linger);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

//! What kernel receive timestamps say of a run (see
//! [`crate::io::stamps`]): how long responses waited for urk after the
//! kernel had them, and the latency without that wait.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::report::LatencySummary;

/// urk's own lag (send or receive) as a share of the p99 latency past
/// which the report says the figures are bounded by urk.
pub(crate) const LAG_VERDICT: f64 = 0.1;

/// What kernel receive timestamps say of a run's responses. The kernel
/// stamps each segment as it takes it in; a response's receive lag runs
/// from the stamp of the read that brought its last byte to the moment
/// urk's worker reaped that read: batching (`batch_wait`), sleeping, a
/// busy thread, or one starved by other load on its core. What the server
/// and the network took is the rest, `latency_us`. Each an HdrHistogram
/// that `urk merge` adds exactly.
///
/// ```
/// # fn main() -> Result<(), urk_engine::EngineError> {
/// let cfg = urk_engine::Config::new("http://127.0.0.1:8080/")?.kernel_timestamps(true);
/// assert!(cfg.kernel_timestamps);
/// // After a run: report.kernel_timestamps.map(|k| k.receive_lag_us.p99)
/// # Ok(()) }
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct KernelTimestamps {
    /// Responses whose last read carried a kernel timestamp; 0 where the
    /// kernel gave none (a Unix socket, or a kernel without them).
    pub responses: u64,
    /// From the kernel's receipt of a response's last byte to urk's reap
    /// of it, µs.
    pub receive_lag_us: LatencySummary,
    /// Every receive lag (V2, base64).
    #[serde(
        default = "crate::report::stats::new_growing_histogram",
        rename = "receive_lag_histogram_v2",
        with = "crate::report::histogram_b64"
    )]
    pub receive_lag_histogram: Histogram<u64>,
    /// The latency up to the kernel's receipt of the last byte (each
    /// response's `latency_us` less its receive lag), µs.
    pub latency_us: LatencySummary,
    /// Every such latency (V2, base64).
    #[serde(
        default = "crate::report::stats::new_growing_histogram",
        rename = "latency_histogram_v2",
        with = "crate::report::histogram_b64"
    )]
    pub latency_histogram: Histogram<u64>,
}

impl KernelTimestamps {
    /// The receive lag's p99 as a share of a latency p99: past a tenth,
    /// urk's own delay is a visible part of the figures.
    pub fn lag_share(&self, latency_p99_us: u64) -> f64 {
        match latency_p99_us {
            0 => 0.0,
            p99 => self.receive_lag_us.p99 as f64 / p99 as f64,
        }
    }

    pub(crate) fn of(lag: &Histogram<u64>, latency: &Histogram<u64>) -> KernelTimestamps {
        KernelTimestamps {
            responses: lag.len(),
            receive_lag_us: LatencySummary::of(lag),
            receive_lag_histogram: lag.clone(),
            latency_us: LatencySummary::of(latency),
            latency_histogram: latency.clone(),
        }
    }

    /// Both runs' figures in histograms that span them both.
    pub(crate) fn merged(&self, o: &KernelTimestamps) -> KernelTimestamps {
        use crate::report::stats::sum;
        KernelTimestamps::of(
            &sum(&self.receive_lag_histogram, &o.receive_lag_histogram),
            &sum(&self.latency_histogram, &o.latency_histogram),
        )
    }
}

impl std::fmt::Debug for KernelTimestamps {
    /// The summaries, not the histograms' buckets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelTimestamps")
            .field("responses", &self.responses)
            .field("receive_lag_us", &self.receive_lag_us)
            .field("latency_us", &self.latency_us)
            .finish_non_exhaustive()
    }
}

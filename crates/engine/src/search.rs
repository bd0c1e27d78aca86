//! Finding the capacity: the highest constant rate at which every
//! objective holds (`p99<50ms`, `errors<0.1%`, ...), by a search over
//! constant-rate steps.
//!
//! A short closed-loop probe gives the throughput to start from. Steps then
//! bracket the answer (up by a quarter while they pass, down by half while
//! they fail) and bisect it to within the precision, inside a time budget.
//! Each step is a constant-rate run whose first part is discarded as
//! warm-up, long enough for the objective's percentile to rest on about
//! 100 samples beyond it. A step fails when an objective breaks or when
//! urk could not keep the schedule (it fell behind, or its busiest thread
//! was busy 90% of the step): then the answer is "urk could not go
//! higher", never a server limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::report::LatencySummary;
use crate::{Config, EngineError, Plan, Report, Threshold};

/// What to search for, and within what.
///
/// ```no_run
/// use std::time::Duration;
/// let cfg = urk_engine::Config::new("http://127.0.0.1:8080/")?.connections(50);
/// let search = urk_engine::Search::new(vec!["p99<50ms".parse().unwrap()], Duration::from_secs(120));
/// let (found, _all) = urk_engine::find_max(&cfg, &search, &Default::default())?;
/// match found.rate {
///     Some(r) => println!("max rate under p99<50ms: {r:.0} req/s"),
///     None => println!("no rate met it"),
/// }
/// # Ok::<(), urk_engine::EngineError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Search {
    /// Every one must hold for a rate to pass.
    pub objectives: Vec<Threshold>,
    /// Stop when the bracket is this narrow, as a share of its top (0.05:
    /// within 5%).
    pub precision: f64,
    /// Length of each step, warm-up included; `None`: long enough for the
    /// objectives' percentiles (1 to 10 s).
    pub step: Option<Duration>,
    /// The whole search's time budget.
    pub budget: Duration,
}

impl Search {
    /// A search for `objectives` within `budget`, to 5%.
    pub fn new(objectives: Vec<Threshold>, budget: Duration) -> Search {
        Search {
            objectives,
            precision: 0.05,
            step: None,
            budget,
        }
    }
}

/// The search's outcome: the answer first, then every step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchReport {
    /// The highest rate that passed (`None`: none did).
    pub rate: Option<f64>,
    /// The step above the answer failed because urk could not keep its
    /// schedule: the server may take more than urk could offer here.
    pub limited_by_generator: bool,
    /// The objectives, as given.
    pub objectives: Vec<String>,
    /// Step length and the warm-up discarded at its start, in seconds.
    pub step_s: f64,
    pub warmup_s: f64,
    /// The closed-loop probe's throughput, requests per second.
    pub probe_rps: f64,
    /// Every constant-rate step, in the order run.
    pub steps: Vec<SearchStep>,
}

/// One constant-rate step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchStep {
    /// Requests per second asked for.
    pub rate: f64,
    /// Responses per second after the warm-up.
    pub achieved: f64,
    /// Latency after the warm-up (corrected, µs).
    pub latency_us: LatencySummary,
    /// Responses after the warm-up.
    pub requests: u64,
    /// Faults and non-2xx/3xx responses over the whole step.
    pub errors: u64,
    pub non_2xx_3xx: u64,
    /// Every objective held and urk kept the schedule.
    pub pass: bool,
    /// What failed it.
    pub failed: Vec<String>,
    /// urk could not keep the schedule.
    pub generator_bound: bool,
}

/// Samples wanted beyond an objective's percentile.
const TAIL_SAMPLES: f64 = 100.0;

/// Runs the search. Returns its report and every step's report merged
/// (the load as a whole: counts, errors, histograms).
pub fn find_max(
    cfg: &Config,
    search: &Search,
    stop: &AtomicBool,
) -> Result<(SearchReport, Report), EngineError> {
    if search.objectives.is_empty() {
        return Err(EngineError::Config(
            "find_max needs at least one objective".into(),
        ));
    }
    let began = Instant::now();
    let left = || search.budget.saturating_sub(began.elapsed());
    let probe_len = (search.budget / 10).clamp(Duration::from_secs(1), Duration::from_secs(3));
    let mut probe_cfg = cfg.clone();
    probe_cfg.rate = None;
    probe_cfg.rate_plan = None;
    probe_cfg.requests = None;
    probe_cfg.intervals = true;
    probe_cfg.duration = probe_len;
    let probe = Plan::new(&probe_cfg)?.run_until(stop)?;
    let probe_rps = probe.requests_per_sec.max(1.0);
    let mut all = vec![probe];

    // The highest percentile asked for sets the samples a step needs.
    let tail = search
        .objectives
        .iter()
        .filter_map(Threshold::percentile)
        .fold(0.0, f64::max);
    let samples = if tail > 0.0 {
        TAIL_SAMPLES / (1.0 - tail / 100.0).max(1e-6)
    } else {
        1000.0
    };
    let step_for = |rate: f64| -> (Duration, Duration) {
        if let Some(s) = search.step {
            // Whole seconds of the timeline: one of warm-up when the step
            // has room for a measured second after it.
            let warm = if s >= Duration::from_secs(2) {
                Duration::from_secs(1)
            } else {
                Duration::ZERO
            };
            return (s, warm);
        }
        let measure = Duration::from_secs_f64((samples / rate).clamp(1.0, 10.0));
        (measure + Duration::from_secs(1), Duration::from_secs(1))
    };

    let mut steps: Vec<SearchStep> = Vec::new();
    let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
    let mut hi_generator = false;
    let mut rate = probe_rps * 0.8;
    let (mut step_s, mut warmup_s) = (0.0, 0.0);
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let (Some(l), Some(h)) = (lo, hi) {
            if (h - l) / h <= search.precision {
                break;
            }
        }
        let (len, warm) = step_for(rate);
        if len > left() {
            break;
        }
        step_s = len.as_secs_f64();
        warmup_s = warm.as_secs_f64();
        let mut step_cfg = cfg.clone();
        step_cfg.rate = Some(rate);
        step_cfg.rate_plan = None;
        step_cfg.requests = None;
        step_cfg.intervals = true;
        step_cfg.duration = len;
        let r = Plan::new(&step_cfg)?.run_until(stop)?;
        let step = judge(&r, rate, warm, &search.objectives);
        let passed = step.pass;
        if passed {
            lo = Some(lo.map_or(rate, |l: f64| l.max(rate)));
        } else if hi.is_none_or(|h| rate < h) {
            hi = Some(rate);
            hi_generator = step.generator_bound;
        }
        steps.push(step);
        all.push(r);
        rate = match (lo, hi) {
            (Some(l), Some(h)) => (l + h) / 2.0,
            (Some(l), None) => l * 1.25,
            (None, Some(h)) => h * 0.5,
            (None, None) => rate,
        };
        if rate < 1.0 {
            break;
        }
    }
    // The steps ran one after another: their counts and histograms add,
    // but not their rates.
    for r in &mut all {
        r.started_at = 0.0;
    }
    let mut merged =
        Report::merge(&all).ok_or_else(|| EngineError::Config("no step ran".into()))?;
    merged.rate = None;
    let report = SearchReport {
        rate: lo,
        limited_by_generator: hi_generator,
        objectives: search.objectives.iter().map(|o| o.to_string()).collect(),
        step_s,
        warmup_s,
        probe_rps,
        steps,
    };
    merged.find_max = Some(report.clone());
    Ok((report, merged))
}

/// A step's figures after its warm-up, held against the objectives.
fn judge(r: &Report, rate: f64, warm: Duration, objectives: &[Threshold]) -> SearchStep {
    let skip = warm.as_secs_f64().round() as usize;
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .expect("static histogram bounds are valid");
    let mut requests = 0;
    let kept: Vec<_> = r.timeline.iter().skip(skip).collect();
    for e in &kept {
        let _ = h.add(&e.histogram);
        requests += e.requests;
    }
    let secs = (r.duration_s - skip as f64).max(1e-3);
    // The figures the objectives look at: after the warm-up for latency
    // and rate, over the whole step for faults.
    let mut after = r.clone();
    after.latency_histogram = h.clone();
    after.latency_us = LatencySummary::of(&h);
    after.requests_per_sec = requests as f64 / secs;
    let mut failed: Vec<String> = objectives
        .iter()
        .filter(|o| !o.holds(&after))
        .map(|o| format!("{o} (was {})", o.shown(&after)))
        .collect();
    let fell_behind = r.rate.as_ref().is_some_and(|k| !k.kept);
    // Its busiest thread busy 90% of the step, or the schedule not kept
    // while urk was mostly busy: urk, not the server, set the limit (a
    // slow server leaves urk idle while its sends wait for responses).
    let generator_bound = r.generator_bound || (fell_behind && r.generator_busy_pct >= 75.0);
    if generator_bound {
        failed.push("urk could not keep the schedule".into());
    } else if fell_behind {
        failed.push("the schedule was not kept".into());
    }
    SearchStep {
        rate,
        achieved: after.requests_per_sec,
        latency_us: after.latency_us,
        requests,
        errors: r.errors.total(),
        non_2xx_3xx: r.non_2xx_3xx,
        pass: failed.is_empty(),
        failed,
        generator_bound,
    }
}

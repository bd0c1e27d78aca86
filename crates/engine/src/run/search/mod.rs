//! Finding the capacity: the highest constant rate at which every
//! objective holds (`p99<50ms`, `errors<0.1%`, ...), by a search over
//! constant-rate steps.
//!
//! A short closed-loop probe gives the throughput to start from. Steps then
//! bracket the answer (up by a quarter while they pass, down by half while
//! they fail) and bisect it to within the precision, inside a time budget.
//! Every step runs on one set of connections, kept open between steps:
//! a constant rate whose first second is discarded as warm-up, long
//! enough for the objective's percentile to rest on about 100 samples
//! beyond it. A step fails when an objective breaks or when
//! urk could not keep the schedule (it fell behind, or its busiest thread
//! was busy 90% of the step): then the answer is "urk could not go
//! higher", never a server limit.

pub(crate) mod fleet;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::report::threshold::Figures;
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
    /// A search over a fleet of shards ([`Config::shard`]): where they
    /// meet (`host:port`; shard 0 listens there, the others connect).
    /// Steps are then fleet totals, each shard offers its share, and
    /// shard 0 judges every step on all the shards' seconds.
    pub coordinator: Option<String>,
}

impl Search {
    /// A search for `objectives` within `budget`, to 5%.
    pub fn new(objectives: Vec<Threshold>, budget: Duration) -> Search {
        Search {
            objectives,
            precision: 0.05,
            step: None,
            budget,
            coordinator: None,
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
    /// 2xx/3xx responses per second after the warm-up: where a failing
    /// step says the limit is.
    #[serde(skip)]
    pub good_rps: f64,
}

/// The search's steps as the workers see them while one run goes on: the
/// current step (published by the search, picked up by each worker at its
/// next tick), and each worker's closed seconds (for the search to judge
/// steps while the connections stay open).
#[derive(Debug, Default)]
pub(crate) struct LiveSteps {
    pub version: AtomicU64,
    pub step: Mutex<Option<StepPlan>>,
    pub seconds: Mutex<Vec<Second>>,
}

/// One step of the run: `rate` requests/s from `start_us` to `end_us` (µs
/// since the run's start).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StepPlan {
    pub start_us: u64,
    pub end_us: u64,
    pub rate: f64,
}

/// One worker's closed second.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Second {
    pub worker: usize,
    pub index: u32,
    pub requests: u64,
    pub errors: u64,
    pub non_2xx_3xx: u64,
    /// The thread's CPU time within the second, seconds.
    pub cpu_s: f64,
    /// The second's latencies (V2).
    pub encoded: Vec<u8>,
    /// The second's times to first byte (V2).
    pub ttfb_encoded: Vec<u8>,
    /// The p99 of urk's own send lag in the second (see
    /// [`RateReport::own_lag_us`](crate::RateReport::own_lag_us)), or of
    /// its receive lag with kernel timestamps, whichever is larger, µs.
    pub own_lag_p99_us: u64,
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
    find_max_watched(cfg, search, stop, None)
}

/// [`find_max`], publishing its progress into `live` as it goes: each
/// second the workers close ([`Live::with_seconds`](crate::Live::with_seconds),
/// the probe's first, the steps' after them) and each step as it is
/// judged ([`Live::search`](crate::Live::search)).
pub fn find_max_watched(
    cfg: &Config,
    search: &Search,
    stop: &AtomicBool,
    watch: Option<&crate::Live>,
) -> Result<(SearchReport, Report), EngineError> {
    if search.objectives.is_empty() {
        return Err(EngineError::Config(
            "find_max needs at least one objective".into(),
        ));
    }
    if cfg.shard.is_some() && search.coordinator.is_none() {
        return Err(EngineError::Config(
            "find_max over shards needs a coordinator: shards judging their own shares would part ways at the first step near the answer".into(),
        ));
    }
    if cfg.start_at.is_some() {
        return Err(EngineError::Config(
            "find_max and start_at cannot be combined: the search decides when each step starts"
                .into(),
        ));
    }
    if !cfg.warmup.is_zero() {
        return Err(EngineError::Config(
            "find_max and warmup cannot be combined: each step's first second is its warm-up"
                .into(),
        ));
    }
    let probe_len = (search.budget / 10).clamp(Duration::from_secs(1), Duration::from_secs(3));
    let mut probe_cfg = cfg.clone();
    probe_cfg.rate = None;
    probe_cfg.rate_plan = None;
    probe_cfg.requests = None;
    probe_cfg.intervals = true;
    probe_cfg.duration = probe_len;
    let objectives: Vec<String> = search.objectives.iter().map(|o| o.to_string()).collect();
    let mut progress = crate::SearchProgress {
        objectives: objectives.clone(),
        ..Default::default()
    };
    let publish = |p: &crate::SearchProgress| {
        if let Some(w) = watch {
            w.set_search(p.clone());
        }
    };
    publish(&progress);
    let probe_plan = Plan::new(&probe_cfg)?;
    // A fleet meets, ready, and starts its probes together.
    let mut link = match (cfg.shard, &search.coordinator) {
        // Shards a job engine starts may come minutes apart: they wait
        // for each other up to the search's budget.
        (Some(shard), Some(addr)) => Some(fleet::Link::join(shard, addr, search.budget)?),
        _ => None,
    };
    let lead = matches!(link, None | Some(fleet::Link::Lead { .. }));
    // The budget counts from here: waiting for a fleet is not searching.
    let began = Instant::now();
    let left = || search.budget.saturating_sub(began.elapsed());
    let share = cfg.shard.map_or(1.0, |s| s.rate(1.0));
    let probe = match watch {
        Some(w) => probe_plan.run_watched(stop, w)?,
        None => probe_plan.run_until(stop)?,
    };
    if let Some(w) = watch {
        // The steps' seconds come after the probe's on the view's timeline.
        w.set_base(probe.timeline.len() as u32);
    }
    let probe_rps = match &mut link {
        Some(l) => l.probe_total(probe.requests_per_sec)?,
        None => probe.requests_per_sec,
    }
    .max(1.0);
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

    // Every step on one set of connections, kept open between steps: the
    // search below publishes each step and judges it from the seconds the
    // workers close, while the run goes on.
    let mut run_cfg = cfg.clone();
    run_cfg.rate = None;
    run_cfg.rate_plan = None;
    run_cfg.requests = None;
    run_cfg.intervals = true;
    run_cfg.duration = search.budget.saturating_sub(began.elapsed()) + Duration::from_secs(5);
    // The steps' requests go into the log after the probe's.
    let plan = Plan::new(&run_cfg)?.appending_log();
    let live = LiveSteps::default();
    let done = AtomicBool::new(false);
    let mut steps: Vec<SearchStep> = Vec::new();
    let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
    let mut hi_generator = false;
    let (mut step_s, mut warmup_s) = (0.0, 0.0);
    // A follower waits for the lead's next order about a step's length.
    let mut step_wait = fleet::PROBE_WAIT;
    let mut fault: Option<EngineError> = None;
    let workers = plan.config().threads;
    let mut control = |start: &std::sync::OnceLock<(Instant, std::time::SystemTime)>| {
        let t0 = loop {
            if let Some(s) = start.get() {
                break s.0;
            }
            if stop.load(Ordering::Relaxed) {
                done.store(true, Ordering::Relaxed);
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut rate = probe_rps * 0.8;
        // The lead's (or a lone search's) step just judged, for the
        // followers to book too.
        let mut judged: Option<SearchStep> = None;
        loop {
            let next = if lead {
                let next = (|| {
                    if stop.load(Ordering::Relaxed) || rate < 1.0 {
                        return None;
                    }
                    if let (Some(l), Some(h)) = (lo, hi) {
                        if (h - l) / h <= search.precision {
                            return None;
                        }
                    }
                    let (len, warm) = step_for(rate);
                    // Each step costs its length and a second for the
                    // responses still in flight at its end.
                    if len + Duration::from_millis(1500) > left() {
                        return None;
                    }
                    // Steps start on a whole second of the timeline, at
                    // least 200 ms (500 in a fleet, for the order to
                    // reach every shard; and, for the first, the
                    // connects) from now.
                    let now = t0.elapsed().as_micros() as u64;
                    let margin = if link.is_some() { 500_000 } else { 200_000 };
                    let first = u64::from(steps.is_empty()) * 1_000_000;
                    let begin_s = (now + margin + first).div_ceil(1_000_000);
                    Some(fleet::NextStep {
                        rate,
                        begin_s,
                        end_s: begin_s + len.as_secs().max(1),
                        warm_s: warm.as_secs(),
                    })
                })();
                if let Some(l) = &mut link {
                    let order = fleet::Order {
                        judged: judged.take(),
                        lo,
                        hi,
                        hi_generator,
                        next,
                    };
                    if let Err(e) = l.order(&order) {
                        fault = Some(e);
                        break;
                    }
                }
                next
            } else {
                let wait = step_wait;
                match link.as_mut().map(|l| l.next_order(wait)) {
                    Some(Ok(o)) => {
                        if let Some(s) = o.judged {
                            steps.push(s);
                        }
                        (lo, hi, hi_generator) = (o.lo, o.hi, o.hi_generator);
                        progress.steps.clone_from(&steps);
                        (progress.passed, progress.failed, progress.current) = (lo, hi, None);
                        publish(&progress);
                        o.next
                    }
                    Some(Err(e)) => {
                        fault = Some(e);
                        break;
                    }
                    None => None,
                }
            };
            let Some(next) = next else {
                break;
            };
            rate = next.rate;
            let (begin_s, end_s) = (next.begin_s, next.end_s);
            step_s = (end_s - begin_s) as f64;
            warmup_s = next.warm_s as f64;
            step_wait = Duration::from_secs(end_s - begin_s) + fleet::STEP_SLACK;
            progress.current = Some(rate);
            publish(&progress);
            *live.step.lock().unwrap_or_else(|e| e.into_inner()) = Some(StepPlan {
                start_us: begin_s * 1_000_000,
                end_us: end_s * 1_000_000,
                // This shard's share of the fleet's rate.
                rate: rate * share,
            });
            live.version.fetch_add(1, Ordering::AcqRel);
            // Wait for every worker's seconds through the one after the
            // step (its last responses), bounded.
            let deadline = t0 + Duration::from_secs(end_s + 4);
            loop {
                let have = {
                    let secs = live.seconds.lock().unwrap_or_else(|e| e.into_inner());
                    (0..workers).all(|w| {
                        secs.iter()
                            .any(|x| x.worker == w && u64::from(x.index) >= end_s)
                    })
                };
                if have || Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let window = (begin_s, begin_s + next.warm_s, end_s);
            let secs: Vec<Second> = live
                .seconds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|x| (window.0..=window.2).contains(&u64::from(x.index)))
                .cloned()
                .collect();
            // In a fleet, the lead judges on every shard's seconds.
            let secs = match &mut link {
                Some(l) => match l.step_seconds(secs, step_wait) {
                    Ok(all) => all,
                    Err(e) => {
                        fault = Some(e);
                        break;
                    }
                },
                None => secs,
            };
            if !lead {
                continue;
            }
            let step = judge_seconds(&secs, rate, window, &search.objectives);
            if step.pass {
                lo = Some(lo.map_or(rate, |l: f64| l.max(rate)));
            } else if hi.is_none_or(|h| rate < h) {
                hi = Some(rate);
                hi_generator = step.generator_bound;
            }
            judged = Some(step.clone());
            steps.push(step);
            progress.steps.clone_from(&steps);
            (progress.passed, progress.failed, progress.current) = (lo, hi, None);
            publish(&progress);
            let good = steps.last().map_or(0.0, |s| s.good_rps);
            rate = match (lo, hi) {
                (Some(l), Some(h)) => (l + h) / 2.0,
                (Some(l), None) => l * 1.25,
                // Down by half, or to just under what the failing step
                // still served well, if that is lower (a probe far above
                // a rate limit).
                (None, Some(h)) if good >= 1.0 => (h * 0.5).min(good * 0.9),
                (None, Some(h)) => h * 0.5,
                (None, None) => rate,
            };
        }
        done.store(true, Ordering::Relaxed);
    };
    let run = plan.run_steps(&done, watch, &live, &mut control)?;
    if let Some(e) = fault {
        return Err(e);
    }
    all.push(run);
    // The probe and the steps ran one after another: their counts and
    // histograms add, but not their rates.
    for r in &mut all {
        r.started_at = 0.0;
    }
    let mut merged =
        Report::merge(&all).ok_or_else(|| EngineError::Config("no step ran".into()))?;
    merged.rate = None;
    merged.interrupted = stop.load(Ordering::Relaxed);
    if !merged.interrupted {
        merged.stopped_by = crate::StopCause::Duration;
    }
    let report = SearchReport {
        rate: lo,
        limited_by_generator: hi_generator,
        objectives,
        step_s,
        warmup_s,
        probe_rps,
        steps,
    };
    merged.find_max = Some(report.clone());
    Ok((report, merged))
}

/// A step judged from the workers' seconds: latency and rate after its
/// warm-up (through the second after it, where its last responses land),
/// faults over all of it, and each thread's CPU within it.
fn judge_seconds(
    secs: &[Second],
    rate: f64,
    (begin, measured_from, end): (u64, u64, u64),
    objectives: &[Threshold],
) -> SearchStep {
    let mut h = crate::report::stats::new_latency_histogram();
    let mut ttfb = crate::report::stats::new_latency_histogram();
    let mut decoder = hdrhistogram::serialization::Deserializer::new();
    let (mut requests, mut errors, mut non2xx, mut bad_after) = (0, 0, 0, 0);
    let mut busy: std::collections::BTreeMap<usize, f64> = Default::default();
    let mut own_lag = 0;
    for s in secs {
        let i = u64::from(s.index);
        if i < begin || i > end {
            continue;
        }
        if i >= measured_from && i < end {
            own_lag = own_lag.max(s.own_lag_p99_us);
        }
        errors += s.errors;
        non2xx += s.non_2xx_3xx;
        if i < end {
            *busy.entry(s.worker).or_default() += s.cpu_s;
        }
        if i >= measured_from {
            requests += s.requests;
            bad_after += s.non_2xx_3xx;
            if let Ok(x) = decoder.deserialize::<u64, _>(&mut s.encoded.as_slice()) {
                let _ = h.add(&x);
            }
            if let Ok(x) = decoder.deserialize::<u64, _>(&mut s.ttfb_encoded.as_slice()) {
                let _ = ttfb.add(&x);
            }
        }
    }
    let measured = (end - measured_from).max(1) as f64;
    // Connections stay open from step to step: a step has no connects
    // of its own to judge.
    let no_connects = crate::report::stats::new_growing_histogram();
    let figures = Figures {
        latency: &h,
        ttfb: &ttfb,
        connect: &no_connects,
        errors,
        non_2xx_3xx: non2xx,
        requests,
        rps: requests as f64 / measured,
    };
    let mut failed: Vec<String> = objectives
        .iter()
        .filter(|o| !o.holds_for(&figures))
        .map(|o| format!("{o} (was {})", o.shown_for(&figures)))
        .collect();
    let busiest = busy.values().fold(0.0, |a: f64, &b| a.max(b)) / (end - begin).max(1) as f64;
    // Fewer responses than the schedule offered: the rate was not kept.
    let fell_behind = figures.rps < rate * 0.97;
    // Its busiest thread busy 90% of the step, or a failing step while
    // urk was busy three quarters of it (its own late sends then add to
    // the latency): urk, not the server, set the limit. A slow server
    // leaves urk idle while its sends wait for responses.
    let failing = fell_behind || !failed.is_empty();
    // Or urk's own lag, busy or not (a thread starved by other load on
    // the machine sends late without being busy), above a tenth of the
    // p99 it was judged by.
    let lagging = own_lag as f64 > 0.1 * h.value_at_quantile(0.99) as f64;
    let generator_bound = busiest >= 0.9 || (failing && (busiest >= 0.75 || lagging));
    if generator_bound {
        failed.push("urk could not keep the schedule".into());
    } else if fell_behind {
        failed.push(format!(
            "the schedule was not kept ({:.0} of {rate:.0} req/s)",
            figures.rps
        ));
    }
    SearchStep {
        rate,
        achieved: figures.rps,
        latency_us: LatencySummary::of(&h),
        requests,
        errors,
        non_2xx_3xx: non2xx,
        pass: failed.is_empty(),
        failed,
        generator_bound,
        good_rps: requests.saturating_sub(bad_after) as f64 / measured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer, V2Serializer};

    /// Three seconds of one worker: 1,000 responses of 2 ms each, the
    /// thread 10% busy, urk's own lag p99 `own_lag` µs.
    fn seconds(own_lag: u64) -> Vec<Second> {
        let mut h = crate::report::stats::new_latency_histogram();
        h.record_n(2_000, 1_000).unwrap();
        let mut encoded = Vec::new();
        V2Serializer::new().serialize(&h, &mut encoded).unwrap();
        (0..3)
            .map(|index| Second {
                worker: 0,
                index,
                requests: 1_000,
                errors: 0,
                non_2xx_3xx: 0,
                cpu_s: 0.1,
                encoded: encoded.clone(),
                ttfb_encoded: Vec::new(),
                own_lag_p99_us: own_lag,
            })
            .collect()
    }

    #[test]
    fn a_failing_step_with_urks_own_lag_is_urks_even_when_idle() {
        let objectives = ["p99<1ms".parse::<Threshold>().unwrap()];
        // urk's own lag 1 ms of a 2 ms p99: urk set the limit, though its
        // thread was barely busy (starved).
        let step = judge_seconds(&seconds(1_000), 1_000.0, (0, 1, 3), &objectives);
        assert!(!step.pass);
        assert!(step.generator_bound, "{:?}", step.failed);
        // 20 µs of it: the server's.
        let step = judge_seconds(&seconds(20), 1_000.0, (0, 1, 3), &objectives);
        assert!(!step.pass);
        assert!(!step.generator_bound, "{:?}", step.failed);
    }
}

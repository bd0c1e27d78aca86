//! The constant-rate schedule (`-R`), and rate ramps: every request has an
//! intended send time fixed before the run, so a stalled server shows up as
//! latency for every request that should have gone out during the stall,
//! not just for the few in flight (coordinated omission).
//!
//! Request slots are numbered globally. The rate over time is a
//! [`RatePlan`]: stages, each going linearly from one rate to another (a
//! constant rate is one stage from a rate to itself), the last rate held
//! after the last stage. Slot `m` is due when the integral of the rate
//! reaches `m`. Connection `j` of `c` owns slots `j, j + c, j + 2c, ...`,
//! so the connections interleave evenly, a run of any length starts at the
//! plan's first rate with no calibration, and a rate below the thread or
//! connection count simply leaves connections idle between their slots.

use std::time::Duration;

/// One stretch of a [`RatePlan`]: the rate goes linearly from `from` to
/// `to` requests per second over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stage {
    /// Requests per second at the stage's start.
    pub from: f64,
    /// Requests per second at its end.
    pub to: f64,
    /// How long it lasts.
    #[serde(with = "secs")]
    pub duration: Duration,
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v: f64 = serde::Deserialize::deserialize(d)?;
        Ok(Duration::from_secs_f64(v.max(0.0)))
    }
}

/// The offered rate over a run: stages one after another, the last rate
/// held after them.
///
/// ```
/// use std::time::Duration;
/// use urk_engine::RatePlan;
/// // 1000/s for 30 s, up to 5000/s over 30 s, then 5000/s for 60 s.
/// let plan = RatePlan::stages(&[(1000.0, Duration::from_secs(30)),
///     (5000.0, Duration::from_secs(30)), (5000.0, Duration::from_secs(60))]);
/// assert_eq!(plan.rate_at(Duration::from_secs(45)), 3000.0);
/// assert_eq!(plan.length(), Duration::from_secs(120));
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RatePlan {
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

impl RatePlan {
    /// The same plan with every rate times `k` (a shard's share).
    pub(crate) fn scaled(&self, k: f64) -> RatePlan {
        RatePlan {
            stages: self
                .stages
                .iter()
                .map(|s| Stage {
                    from: s.from * k,
                    to: s.to * k,
                    duration: s.duration,
                })
                .collect(),
        }
    }

    /// One constant rate.
    pub fn constant(rate: f64) -> RatePlan {
        RatePlan {
            stages: vec![Stage {
                from: rate,
                to: rate,
                duration: Duration::ZERO,
            }],
        }
    }

    /// A linear ramp from `from` to `to` over `duration`, `to` held after.
    pub fn ramp(from: f64, to: f64, duration: Duration) -> RatePlan {
        RatePlan {
            stages: vec![Stage { from, to, duration }],
        }
    }

    /// Stages of `(rate, duration)`: the first holds its rate; each later
    /// one goes linearly from the rate before it to its own (so a repeated
    /// rate holds it), as k6's stages do after the first.
    pub fn stages(list: &[(f64, Duration)]) -> RatePlan {
        let mut prev = list.first().map_or(0.0, |s| s.0);
        RatePlan {
            stages: list
                .iter()
                .map(|&(rate, duration)| {
                    let s = Stage {
                        from: prev,
                        to: rate,
                        duration,
                    };
                    prev = rate;
                    s
                })
                .collect(),
        }
    }

    /// The stages' total length.
    pub fn length(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The same plan after `lead` at its first rate (a warm-up).
    ///
    /// ```
    /// use std::time::Duration;
    /// let ramp = urk_engine::RatePlan::ramp(100.0, 200.0, Duration::from_secs(10));
    /// let warm = ramp.after(Duration::from_secs(5));
    /// assert_eq!(warm.rate_at(Duration::from_secs(4)), 100.0);
    /// assert_eq!(warm.rate_at(Duration::from_secs(10)), 150.0);
    /// ```
    pub fn after(&self, lead: Duration) -> RatePlan {
        let first = self.stages.first().map_or(0.0, |s| s.from);
        let mut stages = vec![Stage {
            from: first,
            to: first,
            duration: lead,
        }];
        stages.extend_from_slice(&self.stages);
        RatePlan { stages }
    }

    /// Whether the rate never changes.
    pub fn is_constant(&self) -> bool {
        self.stages.iter().all(|s| s.from == s.to) && {
            let first = self.stages.first().map_or(0.0, |s| s.from);
            self.stages.iter().all(|s| s.from == first)
        }
    }

    /// The rate at `t` after the start.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let mut start = Duration::ZERO;
        for s in &self.stages {
            let end = start + s.duration;
            if t < end {
                let f = (t - start).as_secs_f64() / s.duration.as_secs_f64();
                return s.from + (s.to - s.from) * f;
            }
            start = end;
        }
        self.stages.last().map_or(0.0, |s| s.to)
    }

    /// The highest rate anywhere in the plan.
    pub fn peak(&self) -> f64 {
        self.stages
            .iter()
            .flat_map(|s| [s.from, s.to])
            .fold(0.0, f64::max)
    }

    /// Checks that every rate is usable.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.stages.is_empty() {
            return Err("the rate plan has no stages".into());
        }
        for s in &self.stages {
            for r in [s.from, s.to] {
                if !(r.is_finite() && r > 0.0 && r <= 1e9) {
                    return Err("every rate must be above 0 requests per second".into());
                }
            }
        }
        Ok(())
    }
}

/// A stage in µs, with the slots due before it.
#[derive(Debug, Clone, Copy)]
struct Seg {
    start_us: f64,
    len_us: f64,
    /// Rates in slots per µs.
    from: f64,
    to: f64,
    slots_before: f64,
}

impl Seg {
    /// Slots due within the stage by `dt` µs into it.
    fn slots(&self, dt: f64) -> f64 {
        let dt = dt.clamp(0.0, self.len_us);
        let slope = if self.len_us > 0.0 {
            (self.to - self.from) / self.len_us
        } else {
            0.0
        };
        self.from * dt + slope * dt * dt / 2.0
    }

    /// µs into the stage at which `n` of its slots are due (`n` within it).
    fn time_of(&self, n: f64) -> f64 {
        let slope = if self.len_us > 0.0 {
            (self.to - self.from) / self.len_us
        } else {
            0.0
        };
        if slope.abs() < 1e-18 {
            return n / self.from;
        }
        // n = from*t + slope*t^2/2, in the form that stays exact when the
        // slope is small.
        2.0 * n / (self.from + (self.from * self.from + 2.0 * slope * n).max(0.0).sqrt())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    segs: Vec<Seg>,
    /// The last rate, held after the stages, in slots per µs.
    tail: f64,
    tail_start_us: f64,
    tail_slots_before: f64,
    connections: u64,
    constant: Option<f64>,
}

impl Schedule {
    pub(crate) fn new(plan: &RatePlan, connections: usize) -> Schedule {
        let mut segs = Vec::with_capacity(plan.stages.len());
        let (mut start, mut before) = (0.0, 0.0);
        for s in &plan.stages {
            let seg = Seg {
                start_us: start,
                len_us: s.duration.as_secs_f64() * 1e6,
                from: s.from / 1e6,
                to: s.to / 1e6,
                slots_before: before,
            };
            before += seg.slots(seg.len_us);
            start += seg.len_us;
            segs.push(seg);
        }
        let tail = plan.stages.last().map_or(1e-6, |s| s.to / 1e6);
        Schedule {
            segs,
            tail,
            tail_start_us: start,
            tail_slots_before: before,
            connections: connections as u64,
            constant: plan
                .is_constant()
                .then(|| plan.stages.first().map_or(1.0, |s| s.from)),
        }
    }

    /// The stage in force at `t_us` (before the tail).
    fn stage_at(&self, t_us: f64) -> &Seg {
        self.segs
            .iter()
            .rev()
            .find(|s| s.start_us <= t_us)
            .unwrap_or(&self.segs[0])
    }

    /// Slots due in `[0, t_us)` as a real number.
    pub(crate) fn slots_at(&self, t_us: f64) -> f64 {
        if let Some(rate) = self.constant {
            return t_us * rate / 1e6;
        }
        if t_us >= self.tail_start_us {
            return self.tail_slots_before + (t_us - self.tail_start_us) * self.tail;
        }
        let seg = self.stage_at(t_us);
        seg.slots_before + seg.slots(t_us - seg.start_us)
    }

    /// The rate at `t_us`, in slots per µs over all connections.
    pub(crate) fn rate_at(&self, t_us: f64) -> f64 {
        if let Some(rate) = self.constant {
            return rate / 1e6;
        }
        if t_us >= self.tail_start_us {
            return self.tail;
        }
        let seg = self.stage_at(t_us);
        let f = if seg.len_us > 0.0 {
            ((t_us - seg.start_us) / seg.len_us).clamp(0.0, 1.0)
        } else {
            0.0
        };
        seg.from + (seg.to - seg.from) * f
    }

    /// When global slot `m` (or, for Poisson arrivals, slot position) is
    /// due, in µs.
    pub(crate) fn time_of_slot(&self, m: f64) -> f64 {
        if let Some(rate) = self.constant {
            return m * 1e6 / rate;
        }
        if m >= self.tail_slots_before {
            return self.tail_start_us + (m - self.tail_slots_before) / self.tail;
        }
        let seg = self
            .segs
            .iter()
            .rev()
            .find(|s| s.slots_before <= m)
            .unwrap_or(&self.segs[0]);
        seg.start_us + seg.time_of(m - seg.slots_before)
    }

    /// When connection `conn` (global index) should send its `k`-th
    /// request, in µs since the start.
    pub(crate) fn due_us(&self, conn: usize, k: u64) -> u64 {
        let slot = conn as u64 + k * self.connections;
        self.time_of_slot(slot as f64) as u64
    }

    /// How many slots fall due in `[0, t_us)`.
    #[cfg(test)]
    pub(crate) fn slots_by(&self, t_us: u64) -> u64 {
        self.slots_at(t_us as f64).ceil() as u64
    }

    /// How many of connection `conn`'s slots fall due in `[0, t_us)`.
    pub(crate) fn conn_slots_by(&self, conn: usize, t_us: u64) -> u64 {
        let slots = self.slots_at(t_us as f64); // global slots before t
        let mine = (slots - conn as f64) / self.connections as f64;
        if mine <= 0.0 {
            0
        } else {
            mine.ceil() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constant(rate: f64, c: usize) -> Schedule {
        Schedule::new(&RatePlan::constant(rate), c)
    }

    #[test]
    fn connections_interleave_evenly() {
        let s = &constant(1000.0, 4);
        let mut due: Vec<u64> = (0..4)
            .flat_map(|j| (0..3).map(move |k| s.due_us(j, k)))
            .collect();
        due.sort_unstable();
        let expect: Vec<u64> = (0..12).map(|m| m * 1000).collect();
        assert_eq!(due, expect);
        assert_eq!(s.slots_by(11_999), 12);
        assert_eq!(s.slots_by(12_000), 12);
        assert_eq!(s.slots_by(12_001), 13);
        let per_conn: u64 = (0..4).map(|j| s.conn_slots_by(j, 12_001)).sum();
        assert_eq!(per_conn, 13);
        let per_conn: u64 = (0..4).map(|j| s.conn_slots_by(j, 12_000)).sum();
        assert_eq!(per_conn, 12);
    }

    #[test]
    fn slow_rates_leave_connections_idle() {
        // 1 request/s over 2 connections: slots at 0 s and 1 s.
        let s = constant(1.0, 2);
        assert_eq!(
            (s.due_us(0, 0), s.due_us(1, 0), s.due_us(0, 1)),
            (0, 1_000_000, 2_000_000)
        );
    }

    #[test]
    fn a_ramp_offers_its_integral_and_slots_follow_it() {
        // 1000/s to 3000/s over 2 s, then 3000/s: 4000 slots in the ramp.
        let s = Schedule::new(&RatePlan::ramp(1000.0, 3000.0, Duration::from_secs(2)), 5);
        assert!((s.slots_at(2e6) - 4000.0).abs() < 1e-6);
        assert!((s.slots_at(1e6) - 1500.0).abs() < 1e-6);
        assert!((s.slots_at(3e6) - 7000.0).abs() < 1e-6);
        // The rate follows the ramp, then holds.
        assert!((s.rate_at(1e6) * 1e6 - 2000.0).abs() < 1e-6);
        assert!((s.rate_at(5e6) * 1e6 - 3000.0).abs() < 1e-6);
        // Slot times invert the integral, and stay in order.
        for m in [0.0, 1.0, 1499.0, 1500.0, 3999.0, 4000.0, 6999.0] {
            let t = s.time_of_slot(m);
            assert!((s.slots_at(t) - m).abs() < 1e-3, "{m}: {t}");
        }
        let due: Vec<u64> = (0..5)
            .flat_map(|j| (0..400).map(move |k| (j, k)))
            .map(|(j, k)| s.due_us(j, k))
            .collect();
        assert_eq!(due.len(), 2000);
        assert!(
            due.iter().all(|&t| t < 2_000_000),
            "the first 2000 slots are in the ramp"
        );
        let total: u64 = (0..5).map(|j| s.conn_slots_by(j, 2_000_000)).sum();
        assert_eq!(total, 4000);
    }

    #[test]
    fn stages_ramp_from_the_rate_before_them() {
        let plan = RatePlan::stages(&[
            (1000.0, Duration::from_secs(1)),
            (2000.0, Duration::from_secs(1)),
            (2000.0, Duration::from_secs(1)),
        ]);
        let s = Schedule::new(&plan, 3);
        // 1000 + 1500 + 2000 slots, then 2000/s.
        assert!((s.slots_at(3e6) - 4500.0).abs() < 1e-6);
        assert!((s.slots_at(4e6) - 6500.0).abs() < 1e-6);
        assert!(!plan.is_constant());
        assert!(RatePlan::constant(5.0).is_constant());
        assert_eq!(plan.peak(), 2000.0);
    }
}

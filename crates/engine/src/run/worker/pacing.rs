//! Sleeping until the next slot of a constant-rate schedule, and waking on
//! time.
//!
//! A timed wait ends late by the platform's wake-up latency: measured here
//! (a 2-core VM, kernel 6.18) at 46 µs on average for a 2 ms sleep even
//! with 1 ns of timer slack, and more on a loaded host. Every µs of it
//! would be added to every corrected latency, so an idle server would look
//! slower than it is. The pacer learns that latency from its own timed-out
//! waits, wakes that much before the slot and spins the rest, within a CPU
//! budget: pacing must not turn into a busy loop at high rates, where the
//! loop is awake for completions anyway. The margin is a high quantile of
//! the lateness, not its mean: wake-ups here are 46 µs late at the median
//! and 88 µs at p99 (`clock_nanosleep` with 1 ns slack, 2 ms sleeps), so a
//! margin of the mean and half again left one send in a hundred 40-100 µs
//! late, where the tail of the lateness is what a p99 send lag shows.
//!
//! A wake-up also costs CPU: 21 µs of this thread's time per timed sleep
//! on the same VM (a timer that ends a sleep is an exit to the host and
//! back), whatever the sleep's length; the pacer times a few at the start.
//! Kept for every slot, it made `-R` at 20,000/s cost seven times what the
//! same requests cost closed-loop (37.6 against 5.4 CPU-µs per request),
//! and capped one thread at a third of its closed-loop rate. So when slots
//! come faster than a wake-up is worth, they share one: slots that fall
//! due within a *window* wait for its end and go out together, in one
//! submit, and the window's responses are reaped together, when the last
//! of them is in (or the next window ends). The window is sized so that a
//! wake-up adds about `WAKE_SHARE_US` to each request it serves, within
//! `Config::pacing_window`, and so that a connection's response is in
//! before its next slot: an HTTP/1.1 connection sends its next request
//! only once it has the last one's answer, so a window that holds a send
//! for longer than the connection's gap less the round trip makes its
//! next slot late.
//!
//! Once the schedule is behind (the server slower than the rate for a
//! while), windows would keep it behind: a windowed loop reaps a window's
//! responses together and sends the next slots together, in lockstep with
//! the server, and that lockstep is slower than closed loop. So a slot
//! whose connection the server kept busy past it goes out at once (holding
//! it would only add to its lateness), and once one is a whole
//! connection's gap late, no slot is held for a connection's gap: the loop
//! sends each slot as its connection frees, as fast as closed loop, until
//! it is back on time, reaping as closed loop does. At 100,000/s on 50
//! connections over loopback (closed loop: 121,600/s) that kept 99,300/s
//! with the median send 0.26 ms behind its slot, against 95,700/s and
//! 138 ms before (bench-results run27, 3 alternating rounds). Where the
//! server cannot reach the rate at all, it keeps a little less than the
//! lockstep did: over veth at 100,000/s (closed loop 81,300/s) 78,500/s
//! against 83,900/s.
//!
//! No request ever leaves before its slot; a held one is late,
//! and its corrected latency (from the slot) says so, as does the send-lag
//! histogram. When slots are sparse the window is zero and every slot is
//! kept to the microsecond, as before.

use super::*;

/// The share of a slot's gap the pacer means to spend spinning before it
/// (the margin is cut to fit): 1/10.
const SPIN_SHARE: u64 = 10;
/// Most of each `SPIN_SPAN_US` the pacer may spend spinning, whatever the
/// margin: 1/5, which spells of late wake-ups may reach.
const SPIN_CAP_SHARE: u64 = 5;
/// The span the spin cap is counted over: a quiet stretch earns no
/// credit to spin through later.
const SPIN_SPAN_US: u64 = 1_000_000;
/// Longest early wake-up, whatever the measured latency.
const MAX_MARGIN_US: u64 = 200;
/// Width of a lateness bucket, in µs.
const LATE_BUCKET_US: u64 = 2;
/// Lateness buckets: up to `MAX_MARGIN_US`, and one for all beyond.
const LATE_BUCKETS: usize = (MAX_MARGIN_US / LATE_BUCKET_US) as usize + 1;
/// The share of wake-ups the margin covers, in parts per thousand: the
/// rest are the host's preemptions (milliseconds), which no margin that
/// spins within budget could cover.
const MARGIN_QUANTILE_PERMILLE: u64 = 995;
/// Wake-ups the margin learns from before it trusts its counts; until
/// then it is `MAX_MARGIN_US` (within the spin share): starting from no
/// margin left the first slots of a run late while it grew.
const LATE_LEARNING: u32 = 32;
/// Wake-ups' worth of counts at which they are halved (so every 512
/// wake-ups once full), so that the margin follows a host whose load
/// changes.
const LATE_WINDOW: u32 = 1024;
/// What one wake-up adds to its bucket: counts in 256ths, so that halving
/// keeps a tail of single wake-ups for several halvings instead of
/// flooring it away at the first.
const LATE_ONE: u32 = 256;
/// Timed sleeps the pacer takes at the start to learn what a wake-up costs.
const CALIBRATION_SLEEPS: usize = 15;
/// How long each of them is.
const CALIBRATION_SLEEP_US: u64 = 20;
/// Slots this many wake-up costs apart or more each get their own
/// wake-up: the wake-ups then take at most a tenth of the thread, and
/// precision is worth more than that.
const SPARSE_GAPS: f64 = 10.0;
/// The CPU a wake-up may add to each request it sends, in µs (a tenth of
/// what a request costs closed-loop): a wake-up that costs `cost` µs is
/// shared by `cost / WAKE_SHARE_US` slots, as far as the window allows.
/// Measured at 20,000/s and 50,000/s on c50 (3 rounds, against closed
/// loop's 5.5-6.3): 1 µs gave 7.8-8.7 and 7.6-7.7 CPU-µs per request with
/// a mean send lag of 290-340 and 140-150 µs; 0.5 µs gives 6.8-7.2 and
/// 6.3, with 515 and 270 µs.
const WAKE_SHARE_US: f64 = 0.5;

/// A paced request's round trip, from its send to its response: TCP's
/// smoothed mean and mean deviation (RFC 6298's gains, 1/8 and 1/4).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct RoundTrip {
    /// Smoothed round trip, µs (0: none seen yet).
    mean_us: f64,
    /// Smoothed mean deviation, µs.
    dev_us: f64,
}

impl RoundTrip {
    pub(super) fn observe(&mut self, us: u64) {
        let r = us as f64;
        if self.mean_us == 0.0 {
            self.mean_us = r.max(1.0);
            self.dev_us = r / 2.0;
        } else {
            self.dev_us += ((self.mean_us - r).abs() - self.dev_us) / 4.0;
            self.mean_us += (r - self.mean_us) / 8.0;
        }
    }

    /// A round trip that most responses come within: the mean and two
    /// deviations (0 before any response).
    fn high_us(&self) -> f64 {
        self.mean_us + 2.0 * self.dev_us
    }
}

/// What the pacer has learnt about this thread's wake-ups.
#[derive(Debug)]
pub(super) struct Pacer {
    /// Timed waits by how late they ended, in `LATE_BUCKET_US` buckets
    /// (in `LATE_ONE`s, halved at `LATE_WINDOW` waits' worth).
    late: [u32; LATE_BUCKETS],
    /// Waits counted in `late`.
    late_n: u32,
    /// The margin the counts give, kept between waits.
    margin_us: u64,
    /// The gap between this thread's slots at the rate in force, in µs.
    gap_us: u64,
    /// The gap between each connection's slots, in µs.
    conn_gap_us: u64,
    /// This thread's CPU time per wake-up from a timed sleep, in µs.
    wake_cpu_us: u64,
    /// Time spent spinning in the current span, in µs.
    spun_us: u64,
    /// When the current span of the spin cap began, in µs.
    span_from: u64,
    /// This thread's recent round trips.
    pub(super) round_trip: RoundTrip,
    /// When a slot last went out a whole connection's gap late because
    /// the server still had its connection busy: for a connection's gap
    /// from then (every connection has had a slot since), no slot is held
    /// (see the module's account of falling behind).
    slipped_at: Option<u64>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            late: [0; LATE_BUCKETS],
            late_n: 0,
            margin_us: MAX_MARGIN_US,
            gap_us: 0,
            conn_gap_us: 0,
            wake_cpu_us: 0,
            spun_us: 0,
            span_from: 0,
            round_trip: RoundTrip::default(),
            slipped_at: None,
        }
    }
}

impl Pacer {
    /// How long before a slot to wake: the lateness that
    /// `MARGIN_QUANTILE_PERMILLE` of the waits kept within, and a little
    /// more, as far as spinning the rest fits `SPIN_SHARE` of the gap (a
    /// wake-up of typical lateness spins the margin less that lateness).
    fn margin_us(&self) -> u64 {
        if self.gap_us == 0 {
            // No rate in force (a script's delay()s): the cap alone.
            return self.margin_us;
        }
        let fits = self.late_quantile_us(500) + self.gap_us / SPIN_SHARE;
        self.margin_us.min(fits)
    }

    /// The gaps between this thread's slots, and between each
    /// connection's, at the rate in force, µs.
    pub(super) fn set_gaps(&mut self, gap_us: f64, conn_gap_us: f64) {
        self.gap_us = gap_us as u64;
        self.conn_gap_us = conn_gap_us as u64;
    }

    /// Whether the schedule slipped within the last connection's gap
    /// before `now`: no slot is held then.
    pub(super) fn slipping(&self, now: u64) -> bool {
        self.slipped_at
            .is_some_and(|t| now < t.saturating_add(self.conn_gap_us))
    }

    /// A slot whose connection the server kept busy past it went out
    /// `late_us` after it was due, at `now`: a whole connection's gap late,
    /// the schedule is slipping.
    pub(super) fn kept_late(&mut self, late_us: u64, now: u64) {
        if late_us > self.conn_gap_us {
            self.slipped_at = Some(now);
        }
    }

    /// Whether the pacer may spin at `now`: within the cap of the current
    /// span.
    fn may_spin(&mut self, now: u64) -> bool {
        if now.saturating_sub(self.span_from) >= SPIN_SPAN_US {
            self.span_from = now;
            self.spun_us = 0;
        }
        self.spun_us * SPIN_CAP_SHARE < SPIN_SPAN_US.min(now - self.span_from + SPIN_SPAN_US / 10)
    }

    /// The lateness most waits kept within, in µs; a median stands for
    /// the lateness's typical size where a wake-up's cost was not measured.
    fn late_quantile_us(&self, permille: u64) -> u64 {
        let want = (u64::from(self.late_n) * permille).div_ceil(1000);
        let mut seen = 0u64;
        for (i, &c) in self.late.iter().enumerate() {
            seen += c as u64;
            if seen >= want && seen > 0 {
                return (i as u64 + 1) * LATE_BUCKET_US;
            }
        }
        0
    }

    fn learn(&mut self, late_us: u64) {
        let bucket = ((late_us / LATE_BUCKET_US) as usize).min(LATE_BUCKETS - 1);
        self.late[bucket] += LATE_ONE;
        self.late_n += LATE_ONE;
        if self.late_n >= LATE_WINDOW * LATE_ONE {
            self.late.iter_mut().for_each(|c| *c /= 2);
            self.late_n = self.late.iter().sum();
        }
        self.margin_us = if self.late_n < LATE_LEARNING * LATE_ONE {
            MAX_MARGIN_US
        } else {
            (self.late_quantile_us(MARGIN_QUANTILE_PERMILLE) + 2).min(MAX_MARGIN_US)
        };
    }

    /// How long a slot may be held so that the slots after it share its
    /// wake-up, with slots `gap_us` apart on this thread, each connection's
    /// `conn_gap_us` apart, `depth` of a connection's slots in flight at
    /// once (HTTP/2's streams; 1 otherwise), and at most `cap_us`: zero
    /// (every slot on time) when slots are sparse, or when fewer than two
    /// would share a wake-up. A connection sends at most once per window
    /// (its response is reaped with the window's), so the window stays
    /// within half of a connection's gap: it keeps up with its slots. And
    /// a held send's answer must be in before the connection's slot
    /// `depth` slots later: the window leaves the round trip free.
    pub(super) fn window_us(&self, gap_us: f64, conn_gap_us: f64, depth: u32, cap_us: u64) -> u64 {
        // A wake-up that seemed free was not measured well: its lateness
        // (about its cost here) stands in.
        let cost = self.wake_cpu_us.max(self.late_quantile_us(500)).max(1) as f64;
        if cap_us == 0 || gap_us >= SPARSE_GAPS * cost {
            return 0;
        }
        let window = (cost / WAKE_SHARE_US * gap_us)
            .min(cap_us as f64)
            .min(conn_gap_us / 2.0)
            .min(conn_gap_us * f64::from(depth.max(1)) - self.round_trip.high_us());
        if window < 2.0 * gap_us {
            0
        } else {
            window as u64
        }
    }
}

impl<B: Backend> Worker<'_, B> {
    /// Before a paced run, with nothing in flight: a few short timed sleeps
    /// on the backend tell what a wake-up costs this thread in CPU.
    pub(super) fn calibrate_pacer(&mut self) -> Result<(), EngineError> {
        let mut cpu = [0u64; CALIBRATION_SLEEPS];
        for c in &mut cpu {
            let t = thread_cpu_seconds();
            self.io.wait(CALIBRATION_SLEEP_US, 1, None)?;
            *c = ((thread_cpu_seconds() - t).max(0.0) * 1e6) as u64;
        }
        // The median: the first sleeps may pay for page faults (1.2 ms
        // seen), and a wait that took no CPU did not sleep. Their lateness
        // is not taken: seeding the margin from these short sleeps left 1%
        // of the sends at -R 500 30 µs late, against 15-20 µs when the
        // margin learns from the run's own waits alone.
        cpu.sort_unstable();
        let slept: Vec<u64> = cpu.into_iter().filter(|&c| c > 0).collect();
        self.pacer.wake_cpu_us = slept.get(slept.len() / 2).copied().unwrap_or(0);
        Ok(())
    }

    /// Submits what is queued and waits for completions, until the next
    /// slot (or the end of its window), the end of the run's window or a
    /// tick, whichever comes first.
    pub(super) fn sleep(&mut self) -> Result<(), EngineError> {
        let now = self.now();
        if self.batch_at > now && self.stop.is_none() {
            // Slots share wake-ups: sleep until the window's slots go out,
            // reaping responses in batches meanwhile.
            let budget = self.wait_budget(now, Some(self.batch_at));
            return self.wait(budget, true).map(drop);
        }
        let due = match self.due.peek() {
            Some((due, _)) if self.shared.io.use_ext_arg && self.stop.is_none() => due,
            _ => return self.wait(self.wait_budget(now, None), false).map(drop),
        };
        let margin = self.pacer.margin_us();
        let budget = self.wait_budget(now, None);
        if due.saturating_sub(now) <= margin {
            // Behind the schedule, a slot on the microsecond is not worth
            // a spin.
            if !self.pacer.slipping(now) && self.pacer.may_spin(now) {
                // Too close to sleep: the wake-up would come after the slot.
                // A completion ends the spin too, so that a response is
                // timed when it arrives, not when the slot comes.
                self.submit_only()?;
                let mut t = self.now();
                while t < due && !self.io.has_completions() {
                    std::hint::spin_loop();
                    t = self.now();
                }
                self.pacer.spun_us += t - now;
                return Ok(());
            }
            return self.wait(budget, false).map(drop);
        }
        // Wake early by the margin, unless something else ends the wait first.
        let early = budget.min(due - margin - now).max(1);
        let target = now + early;
        if self.wait(early, false)? {
            // Timed out: the wait's own lateness, with nothing else in it.
            self.pacer.learn(self.now().saturating_sub(target));
        }
        Ok(())
    }

    /// The pacer's window at `now` for this thread's share of the rate in
    /// force (the schedule's, or the search step's); the longest is kept
    /// for the report.
    pub(super) fn window_us(&mut self, now: u64) -> u64 {
        let share = self.conns.len() as f64 / self.shared.connections.max(1) as f64;
        let rate = if let Some(s) = &self.shared.schedule {
            s.rate_at(now.saturating_sub(self.schedule_start) as f64)
        } else if let Some(st) = self.step {
            st.rate / 1e6
        } else {
            return 0;
        };
        let per_us = rate * share;
        if per_us <= 0.0 {
            return 0;
        }
        let gap = 1.0 / per_us;
        let conn_gap = gap * self.conns.len() as f64;
        self.pacer.set_gaps(gap, conn_gap);
        if self.pacer.slipping(now) {
            return 0;
        }
        let depth = if self.shared.http2 {
            self.shared.pipeline
        } else {
            1
        };
        let w = self
            .pacer
            .window_us(gap, conn_gap, depth, self.shared.pacing_window_us);
        self.stats.pacing_window_us = self.stats.pacing_window_us.max(w);
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(wake_cpu_us: u64) -> Pacer {
        Pacer {
            wake_cpu_us,
            ..Pacer::default()
        }
    }

    #[test]
    fn the_margin_covers_the_lateness_tail() {
        let mut p = Pacer {
            gap_us: 2000,
            ..Pacer::default()
        };
        // Nothing learnt: the longest margin that fits the spin share.
        assert_eq!(p.margin_us(), MAX_MARGIN_US);
        p.gap_us = 1000;
        assert_eq!(p.margin_us(), 100);
        p.gap_us = 2000;
        // 1,000 wake-ups: most 40-50 µs late, 1% at 120 µs, 0.3% at 5 ms.
        for i in 0..1000u64 {
            let late = match i % 1000 {
                0..=2 => 5000,
                3..=12 => 120,
                _ => 40 + i % 10,
            };
            p.learn(late);
        }
        // The margin covers the 120s (99.5% of the waits), not the
        // preemptions, and stays within its bound.
        assert_eq!(p.margin_us(), 124);
        assert_eq!(p.late_quantile_us(500), 46);
        // The host calms down: after two half-lives of 10 µs wake-ups the
        // old tail weighs too little to set the margin.
        for _ in 0..4 * LATE_WINDOW {
            p.learn(10);
        }
        assert_eq!(p.margin_us(), 14);
        // Slots 400 µs apart spin at most 40 µs past a typical wake-up.
        for i in 0..2 * LATE_WINDOW {
            p.learn(if i % 100 == 0 { 120 } else { 40 });
        }
        p.gap_us = 400;
        assert_eq!(p.margin_us(), 42 + 40);
    }

    #[test]
    fn sparse_slots_keep_their_time() {
        // 500/s on one thread: 2 ms apart, far more than a wake-up.
        assert_eq!(pacer(21).window_us(2000.0, 1e5, 1, 1000), 0);
        // A cheap bare-metal wake-up keeps even 20,000/s on time.
        assert_eq!(pacer(4).window_us(50.0, 2500.0, 1, 1000), 0);
        // No window asked for.
        assert_eq!(pacer(21).window_us(10.0, 500.0, 1, 0), 0);
    }

    #[test]
    fn dense_slots_share_wake_ups_up_to_the_cap() {
        // 100,000/s with a wake-up of 20 CPU-µs: 40 slots share one.
        assert_eq!(pacer(20).window_us(10.0, 5000.0, 1, 1000), 400);
        // 20,000/s: the cap holds the window to 1 ms (20 slots).
        assert_eq!(pacer(21).window_us(50.0, 2500.0, 1, 1000), 1000);
        // A cap below two slots' gap: no window.
        assert_eq!(pacer(21).window_us(50.0, 2500.0, 1, 90), 0);
        // Ten connections at 10,000/s: each sends every 1 ms, so the
        // window stays within 500 µs.
        assert_eq!(pacer(21).window_us(100.0, 1000.0, 1, 1000), 500);
    }

    #[test]
    fn a_schedule_that_slips_turns_the_window_off_for_a_while() {
        let mut p = pacer(21);
        p.set_gaps(10.0, 500.0);
        // Late by less than a connection's gap: jitter, not slipping.
        p.kept_late(400, 10_000);
        assert_eq!(p.slipped_at, None);
        assert!(!p.slipping(10_000));
        p.kept_late(501, 10_000);
        assert!(p.slipping(10_000) && p.slipping(10_499));
        // Every connection has had a slot since: windows again.
        assert!(!p.slipping(10_500));
    }

    #[test]
    fn the_window_leaves_room_for_the_response() {
        // 100,000/s on 50 connections: each sends every 500 µs. Responses
        // taking 300 µs (± 25) leave 150 µs to hold a send for.
        let mut p = pacer(21);
        for k in 0..64 {
            p.round_trip.observe(if k % 2 == 0 { 275 } else { 325 });
        }
        let w = p.window_us(10.0, 500.0, 1, 1000);
        assert!((140..=160).contains(&w), "{w}");
        // Round trips as long as the gap: every slot on time.
        for _ in 0..64 {
            p.round_trip.observe(500);
        }
        assert_eq!(p.window_us(10.0, 500.0, 1, 1000), 0);
        // Ten HTTP/2 streams a connection: ten gaps for the answer.
        assert_eq!(p.window_us(10.0, 500.0, 10, 1000), 250);
        // Sparse per connection (1,000 connections at 20,000/s): the
        // round trip is no bound.
        assert_eq!(p.window_us(50.0, 50_000.0, 1, 1000), 1000);
    }
}

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
//! loop is awake for completions anyway.

use super::*;

/// Most of the run's wall time the pacer may spend spinning.
const SPIN_SHARE: u64 = 20; // 1/20: 5%
/// Longest early wake-up, whatever the measured latency.
const MAX_MARGIN_US: u64 = 200;

/// What the pacer has learnt about this thread's wake-ups.
#[derive(Debug, Default)]
pub(super) struct Pacer {
    /// Smoothed lateness of timed waits, in µs × 8 (an 1/8 EWMA in integers).
    late_x8: u64,
    /// Time spent spinning so far, in µs.
    spun_us: u64,
}

impl Pacer {
    /// How long before a slot to wake: the measured lateness and half again
    /// (its spread), and a little more.
    fn margin_us(&self) -> u64 {
        let late = self.late_x8 / 8;
        (late + late / 2 + 2).min(MAX_MARGIN_US)
    }

    fn learn(&mut self, late_us: u64) {
        let late_us = late_us.min(10 * MAX_MARGIN_US);
        self.late_x8 = self.late_x8 - self.late_x8 / 8 + late_us;
    }
}

impl<B: Backend> Worker<'_, B> {
    /// Submits what is queued and waits for completions, until the next
    /// slot, the end of the window or a tick, whichever comes first.
    pub(super) fn sleep(&mut self) -> Result<(), EngineError> {
        let now = self.now();
        let budget = self.wait_budget(now);
        let due = match self.due.peek() {
            Some(&Reverse((due, _))) if self.shared.use_ext_arg && self.stop.is_none() => due,
            _ => return self.wait(budget).map(drop),
        };
        let margin = self.pacer.margin_us();
        if due.saturating_sub(now) <= margin {
            if self.pacer.spun_us * SPIN_SHARE < now {
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
            return self.wait(budget).map(drop);
        }
        // Wake early by the margin, unless something else ends the wait first.
        let early = budget.min(due - margin - now).max(1);
        let target = now + early;
        if self.wait(early)? {
            // Timed out: the wait's own lateness, with nothing else in it.
            self.pacer.learn(self.now().saturating_sub(target));
        }
        Ok(())
    }
}

//! Timers: the stop, samples, timeouts, reconnects and the rate schedule.

use super::*;

impl Worker<'_> {
    pub(super) fn tick(&mut self, now: u64) {
        // Warm-up: every connection gets its first connect outcome before
        // any request goes out, as wrk opens all its connections first; a
        // server busy serving early connections would otherwise fall behind
        // accepting the rest and overflow its listen backlog.
        let stalled = now.saturating_sub(self.last_connect_outcome) > WARMUP_STALL_US;
        let cap = WARMUP_MAX_US.min(self.shared.timeout_us);
        if self.warming && (self.untried == 0 || stalled || now >= cap) {
            self.warming = false;
            self.schedule_start = now;
            for i in 0..self.conns.len() {
                self.try_send(i, now);
            }
        }
        if self.interval.is_some() && now >= u64::from(self.interval_index + 1) * INTERVAL_US {
            self.close_interval();
        }
        if self.stop_at.is_none() {
            if now >= self.shared.duration_us {
                self.stop_at = Some(now);
            } else if self.shared.stop.load(Ordering::Relaxed) {
                self.interrupted = true;
                self.grace_us = self.grace_us.min(INTERRUPT_GRACE_US);
                self.stop_at = Some(now);
            } else if self.quota.is_some_and(|q| self.stats.requests >= q) {
                self.stop_at = Some(now);
            }
        }
        // Constant-rate mode: connections whose next slot has come.
        while let Some(&Reverse((due, i))) = self.due.peek() {
            if due > now {
                break;
            }
            self.due.pop();
            self.conns[i as usize].queued = false;
            self.try_send(i as usize, now);
        }
        if now >= self.next_sample {
            if self.stop_at.is_none() {
                let elapsed = now - (self.next_sample - SAMPLE_US);
                let n = self.stats.requests - self.sampled_requests;
                let rate = n * 1_000_000 / elapsed.max(1);
                self.stats.rate.saturating_record(rate);
            }
            if let Some(live) = self.shared.live {
                let errors = self.stats.errors.total();
                live.add(
                    self.stats.requests - self.sampled_requests,
                    errors - self.sampled_errors,
                );
                self.sampled_errors = errors;
            }
            self.sampled_requests = self.stats.requests;
            self.next_sample = now + SAMPLE_US;
        }
        if self.deferred_connects && self.connecting < MAX_CONNECTING && self.stop_at.is_none() {
            self.start_deferred_connects(now);
        }
        if now < self.next_scan {
            return;
        }
        // The scan touches every connection, so it runs only as often as
        // timeouts need (a twentieth of the timeout, 10 to 100 ms), when a
        // backoff expires, or when connects were held back.
        self.next_scan = now + (self.shared.timeout_us / 20).clamp(TICK_US, 10 * TICK_US);
        self.deferred_connects = false;
        let timeout = self.shared.timeout_us;
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            match c.phase {
                Phase::Down { at } if at <= now && self.stop_at.is_none() => {
                    if self.connecting < MAX_CONNECTING {
                        self.connect(i, now);
                    } else {
                        self.deferred_connects = true;
                    }
                }
                Phase::Down { at } if self.stop_at.is_none() => {
                    self.next_scan = self.next_scan.min(at);
                }
                Phase::Connecting { since }
                    if c.throttled && now - since > CONNECT_STALE_US && now - since <= timeout =>
                {
                    c.throttled = false;
                    self.connecting -= 1;
                }
                Phase::Connecting { since } if now - since > timeout => {
                    self.stats.errors.connect += 1;
                    self.stats.connect_causes.timed_out += 1;
                    c.failures += 1;
                    let at = now + c.backoff_us();
                    self.close(i, at, now);
                }
                Phase::Open if c.outstanding > 0 && now.saturating_sub(c.sent_at) > timeout => {
                    self.stats.errors.timeout += u64::from(c.outstanding);
                    self.fail(i, now);
                }
                _ => {}
            }
        }
    }

    /// Fills free connect slots with connections that are due. A pass
    /// resumes where the last one stopped, so opening n connections reads
    /// each one about once, not once per completed connect (which made the
    /// warm-up quadratic: 3.5% of the CPU of opening 10,000).
    pub(super) fn start_deferred_connects(&mut self, now: u64) {
        let n = self.conns.len();
        let mut seen = 0;
        while seen < n && self.connecting < MAX_CONNECTING {
            let i = self.connect_cursor;
            self.connect_cursor = if i + 1 == n { 0 } else { i + 1 };
            seen += 1;
            if matches!(self.conns[i].phase, Phase::Down { at } if at <= now) {
                self.connect(i, now);
            }
        }
        if seen == n {
            // A whole lap: nothing due is left waiting.
            self.deferred_connects = false;
        }
    }

    /// Files the current one-second interval and starts the next.
    pub(super) fn close_interval(&mut self) {
        let Some(h) = &mut self.interval else { return };
        let mut encoded = Vec::new();
        let _ = hdrhistogram::serialization::V2Serializer::new().serialize(h, &mut encoded);
        h.reset();
        let errors = self.stats.errors.total();
        self.stats.intervals.push(Interval {
            index: self.interval_index,
            requests: self.stats.requests - self.interval_requests,
            errors: errors - self.interval_errors,
            encoded,
        });
        self.interval_requests = self.stats.requests;
        self.interval_errors = errors;
        self.interval_index += 1;
    }

    /// How long the next wait may last: until the next slot is due, at
    /// most a tick.
    pub(super) fn wait_budget(&self, now: u64) -> u64 {
        match self.due.peek() {
            Some(&Reverse((due, _))) => due.saturating_sub(now).clamp(1, TICK_US),
            None => TICK_US,
        }
    }

    pub(super) fn finished(&self, now: u64) -> bool {
        match self.stop_at {
            Some(at) => self.in_flight == 0 || now >= at + self.grace_us,
            None => false,
        }
    }
}

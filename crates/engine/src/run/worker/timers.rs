//! Timers: the stop, samples, timeouts, reconnects and the rate schedule.

use super::*;

impl<B: Backend> Worker<'_, B> {
    /// Ends the window at the duration, or at the caller's stop, before
    /// anything is reaped: a response reaped at or after the end is in the
    /// grace, not in the window.
    pub(super) fn check_stop(&mut self, now: u64) {
        if self.stop.is_some() {
            return;
        }
        if self.in_warmup && now >= self.window_at_us {
            self.begin_window(now);
        }
        let end = self.end_us();
        if now >= end {
            // Slots that fell due before the end go out first (late, and
            // counted so): the schedule is every slot before the end.
            self.batch_at = 0;
            self.send_due(end, now);
            self.stop = Some(self.window_until(end, now, StopCause::Duration));
        } else if self.shared.stop.load(Ordering::Relaxed) {
            self.grace_us = self.grace_us.min(INTERRUPT_GRACE_US);
            self.stop = Some(self.window_until(now, now, StopCause::Interrupted));
        } else if let Some(s) = self.source.script() {
            // A failed hook stops every worker (the report so far, then
            // the error); thread:stop() only this one.
            let failed = s.error.is_some();
            if failed || s.stopped() || self.shared.halt.load(Ordering::Relaxed) {
                if failed {
                    self.shared.halt.store(true, Ordering::Relaxed);
                    self.grace_us = self.grace_us.min(INTERRUPT_GRACE_US);
                }
                self.stop = Some(self.window_until(now, now, StopCause::Script));
            }
        }
    }

    /// Constant-rate mode: sends for the connections whose slot is due
    /// before `before`.
    fn send_due(&mut self, before: u64, now: u64) {
        while let Some((due, i)) = self.due.peek() {
            if due >= before {
                break;
            }
            self.due.pop();
            self.conns[i as usize].queued = false;
            self.try_send(i as usize, now);
        }
    }

    pub(super) fn tick(&mut self, now: u64) {
        // Warm-up: every connection gets its first connect outcome before
        // any request goes out, as wrk opens all its connections first; a
        // server busy serving early connections would otherwise fall behind
        // accepting the rest and overflow its listen backlog.
        let stalled = now.saturating_sub(self.last_connect_outcome) > WARMUP_STALL_US;
        let cap = WARMUP_MAX_US.min(self.shared.timeout_us);
        if self.warming && (self.untried == 0 || stalled || now >= cap) && now >= self.load_at_us {
            self.warming = false;
            self.schedule_start = now;
            for i in 0..self.conns.len() {
                self.try_send(i, now);
            }
        }
        if self.interval.is_some()
            && now >= self.load_at_us + u64::from(self.interval_index + 1) * INTERVAL_US
        {
            self.close_interval();
        }
        if self.stop.is_none()
            && !self.in_warmup
            && self.quota.is_some_and(|q| self.stats.requests >= q)
        {
            self.stop = Some(self.window_until(now, now, StopCause::Requests));
        }
        // Constant-rate mode: connections whose next slot has come.
        if let Some(live) = self.shared.steps {
            let v = live.version.load(Ordering::Acquire);
            if v != self.step_version {
                self.step = *live.step.lock().unwrap_or_else(|e| e.into_inner());
                self.step_version = v;
                for i in 0..self.conns.len() {
                    self.try_send(i, now);
                }
            }
        }
        if now >= self.batch_at {
            // The slots due by now go out, and the next ones wait for the
            // end of the pacer's window (none when slots are sparse, or in
            // a closed loop, where the due queue only holds a script's
            // delay()s).
            self.send_due(now + 1, now);
            if self.shared.paced() {
                self.batch_at = now + self.window_us(now);
            }
        }
        if now >= self.next_sample {
            if self.stop.is_none() && !self.warming {
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
        if self.deferred_connects && self.connecting < MAX_CONNECTING && self.stop.is_none() {
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
        let reconnect = self.can_issue();
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            match c.phase {
                Phase::Down { at } if at <= now && reconnect => {
                    if self.connecting < MAX_CONNECTING {
                        self.connect(i, now);
                    } else {
                        self.deferred_connects = true;
                    }
                }
                Phase::Down { at } if self.stop.is_none() => {
                    self.next_scan = self.next_scan.min(at);
                }
                Phase::Connecting {
                    since,
                    throttled: true,
                } if now - since > CONNECT_STALE_US && now - since <= timeout => {
                    c.phase = Phase::Connecting {
                        since,
                        throttled: false,
                    };
                    self.connecting -= 1;
                }
                Phase::Connecting { since, .. } if now - since > timeout => {
                    self.stats.errors.connect += 1;
                    self.stats.connect_causes.timed_out += 1;
                    c.failures += 1;
                    let at = now + c.backoff_us();
                    self.close(i, at, now);
                }
                Phase::Handshaking { since } if now - since > timeout => {
                    self.fail(i, now, Fault::Tls(TlsCause::HandshakeTimeout));
                }
                // HTTP/2 times streams, not the connection (`last` is
                // never set on one, so the arms below never take it).
                Phase::Open if c.h2.is_some() && c.life.outstanding > 0 => {
                    self.expire_streams(i, now);
                }
                Phase::Open
                    if c.life.outstanding > 0 && now.saturating_sub(c.life.sent_at) > timeout =>
                {
                    self.fail(i, now, Fault::Timeout);
                }
                Phase::Open if c.life.last && now.saturating_sub(c.life.sent_at) > timeout => {
                    // It said it would close and did not: the client does,
                    // and nothing is lost.
                    self.close(i, now, now);
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
        let (carried_requests, carried_errors) = std::mem::take(&mut self.interval_carry);
        let requests = self.stats.requests - self.interval_requests + carried_requests;
        // Once a second: the status array is read, never per response.
        let non2xx: u64 = self
            .stats
            .status
            .iter()
            .enumerate()
            .filter(|(c, _)| !(200..400).contains(c))
            .map(|(_, n)| n)
            .sum();
        let non_2xx_3xx = non2xx.saturating_sub(self.interval_non2xx);
        self.interval_non2xx = non2xx;
        let connects = self.stats.connects.saturating_sub(self.interval_connects);
        self.interval_connects = self.stats.connects;
        let [ttfb, uncorrected, connect] = [
            &mut self.interval_ttfb,
            &mut self.interval_uncorrected,
            &mut self.interval_connect,
        ]
        .map(|h| h.as_mut().map_or(Vec::new(), take_encoded));
        if let Some(live) = self.shared.steps {
            // The search judges steps from these while the run goes on.
            let cpu = thread_cpu_seconds();
            let second = crate::run::search::Second {
                worker: self.index,
                index: self.interval_index,
                requests,
                errors: errors - self.interval_errors + carried_errors,
                non_2xx_3xx,
                cpu_s: (cpu - self.interval_cpu).max(0.0),
                encoded: encoded.clone(),
                // urk's own lag on either side: sends after their slot and
                // a free connection, and reads after the kernel had them.
                own_lag_p99_us: [&mut self.interval_own_lag, &mut self.interval_rx_lag]
                    .into_iter()
                    .flatten()
                    .map(|h| {
                        let p99 = h.value_at_quantile(0.99);
                        h.reset();
                        p99
                    })
                    .max()
                    .unwrap_or(0),
                ttfb_encoded: ttfb.clone(),
            };
            self.interval_cpu = cpu;
            live.seconds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(second);
        }
        if let Some(live) = self.shared.live.filter(|l| l.wants_seconds()) {
            let cpu = thread_cpu_seconds();
            let (mut open, mut connecting) = (0, 0);
            for c in &self.conns {
                match c.phase {
                    Phase::Open | Phase::Handshaking { .. } => open += 1,
                    Phase::Connecting { .. } => connecting += 1,
                    _ => {}
                }
            }
            let s = &self.stats;
            live.publish(crate::LiveSecond {
                worker: self.index,
                index: self.interval_index + live.base(),
                requests,
                histogram_v2: encoded.clone(),
                uncorrected_v2: uncorrected.clone(),
                ttfb_v2: ttfb,
                connect_v2: connect,
                busy: (cpu - self.live_cpu).clamp(0.0, 1.0),
                errors: s.errors,
                connect_errors: s.connect_causes,
                status: (0..s.status.len())
                    .filter(|&c| s.status[c] > 0)
                    .map(|c| (c as u16, s.status[c]))
                    .collect(),
                connects: s.connects,
                handshakes: s.tls.handshakes,
                bytes_read: s.bytes_read,
                bytes_written: s.bytes_written,
                open,
                connecting,
            });
            self.live_cpu = cpu;
        }
        self.stats.intervals.push(Interval {
            index: self.interval_index,
            requests,
            errors: errors - self.interval_errors + carried_errors,
            non_2xx_3xx,
            connects,
            encoded,
            uncorrected,
        });
        self.interval_requests = self.stats.requests;
        self.interval_errors = errors;
        self.interval_index += 1;
    }

    /// How long the next wait may last: until the next slot is due (or
    /// `wake`, where the pacer holds slots for a shared wake-up) or the
    /// window ends, at most a tick.
    pub(super) fn wait_budget(&self, now: u64, wake: Option<u64>) -> u64 {
        let mut until = now + TICK_US;
        if let Some(at) = wake.or(self.due.peek().map(|(due, _)| due)) {
            until = until.min(at);
        }
        if self.stop.is_none() {
            until = until.min(self.end_us());
            if self.in_warmup {
                until = until.min(self.window_at_us);
            }
            if self.warming && self.load_at_us > now {
                // Held for --start-at: wake at the moment.
                until = until.min(self.load_at_us);
            }
        }
        until.saturating_sub(now).max(1)
    }

    pub(super) fn finished(&self, now: u64) -> bool {
        match self.stop {
            Some(w) => self.in_flight == 0 || now >= w.end_us + self.grace_us,
            None => false,
        }
    }
}

/// A second's histogram, encoded (V2) and emptied for the next.
fn take_encoded(h: &mut Histogram<u64>) -> Vec<u8> {
    let mut e = Vec::new();
    let _ = hdrhistogram::serialization::V2Serializer::new().serialize(h, &mut e);
    h.reset();
    e
}

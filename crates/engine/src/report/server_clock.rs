//! This machine's clock against the server's, from the server's `Date`
//! headers.
//!
//! A fleet's shards each say when they started by their own clock, so a
//! shard whose clock is seconds off starts seconds late and still reports
//! itself on time. The server is the one party every shard talks to: its
//! `Date` header is whole seconds, but a response sent at `s` and
//! received at `r` (this machine's clock) carrying date `D` was made at
//! a server time in `[D, D + 1)` and a local time in `[s, r]`, so the
//! offset (server minus here) is above `D - r` and below `D + 1 - s`.
//! Over responses on either side of the server's second boundaries the
//! two bounds close to about a round trip, and every shard's start can
//! be put on the server's clock.

use serde::{Deserialize, Serialize};

/// What one worker has learnt of the offset, in µs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClockBounds {
    /// The offset is above this...
    lo: i64,
    /// ... and below this.
    hi: i64,
    /// The date of the latest responses and the last send among them: a
    /// date's upper bound is tightest at its last send, taken when the
    /// date changes.
    run: Option<(u64, i64)>,
    responses: u64,
}

impl Default for ClockBounds {
    fn default() -> ClockBounds {
        ClockBounds {
            lo: i64::MIN,
            hi: i64::MAX,
            run: None,
            responses: 0,
        }
    }
}

impl ClockBounds {
    /// A response dated `date_s` (the server's Unix seconds), sent and
    /// received at `sent_us` and `received_us` (Unix µs, this machine's).
    pub(crate) fn observe(&mut self, date_s: u64, sent_us: u64, received_us: u64) {
        self.responses += 1;
        let (date_us, sent, received) = (
            date_s.saturating_mul(1_000_000) as i64,
            sent_us as i64,
            received_us as i64,
        );
        match &mut self.run {
            Some((d, last_sent)) if *d == date_s => *last_sent = (*last_sent).max(sent),
            _ => {
                self.close_run();
                // The first response of a date bounds from below best.
                self.lo = self.lo.max(date_us - received);
                self.run = Some((date_s, sent));
            }
        }
    }

    fn close_run(&mut self) {
        if let Some((d, last_sent)) = self.run.take() {
            let next_us = (d.saturating_add(1)).saturating_mul(1_000_000) as i64;
            self.hi = self.hi.min(next_us - last_sent);
        }
    }

    /// Both workers' bounds: each is true, so both hold.
    pub(crate) fn merge(&mut self, o: &ClockBounds) {
        let mut o = *o;
        o.close_run();
        self.close_run();
        self.lo = self.lo.max(o.lo);
        self.hi = self.hi.min(o.hi);
        self.responses += o.responses;
    }

    /// The offset, once responses bounded it on both sides.
    pub(crate) fn summary(&self) -> Option<ServerClock> {
        let mut b = *self;
        b.close_run();
        (b.lo != i64::MIN && b.hi != i64::MAX).then(|| ServerClock {
            offset_s: (b.lo as f64 + b.hi as f64) / 2.0 / 1e6,
            // Crossed bounds (a server whose Date lags its clock) are as
            // uncertain as they are crossed.
            within_s: (b.hi as f64 - b.lo as f64).abs() / 2.0 / 1e6,
            responses: b.responses,
        })
    }
}

/// The server's clock against this machine's, learnt from its `Date`
/// headers (asked for by runs of a fleet: shards, or a `start_at`).
///
/// ```
/// # fn demo(r: &urk_engine::Report) {
/// if let Some(c) = &r.server_clock {
///     println!("the server's clock is {:+.3} s (± {:.3}) from ours", c.offset_s, c.within_s);
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServerClock {
    /// The server's clock minus this machine's, seconds.
    pub offset_s: f64,
    /// How far the true offset may be from `offset_s`, seconds.
    pub within_s: f64,
    /// Responses whose `Date` was read.
    pub responses: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Responses every `gap_us` taking `rtt_us`, against a server whose
    /// clock is `offset_us` ahead; the server stamps halfway.
    fn run(offset_us: i64, rtt_us: u64, gap_us: u64, n: u64) -> ClockBounds {
        let mut b = ClockBounds::default();
        let start = 1_800_000_000_000_000u64 + 123_457;
        for k in 0..n {
            let sent = start + k * gap_us;
            let made = (sent + rtt_us / 2) as i64 + offset_us;
            b.observe((made / 1_000_000) as u64, sent, sent + rtt_us);
        }
        b
    }

    #[test]
    fn bounds_close_to_a_round_trip_and_hold_the_offset() {
        for offset in [-3_000_000, -250, 0, 777_777, 42_000_000] {
            let c = run(offset, 100, 37, 200_000).summary().unwrap();
            let truth = offset as f64 / 1e6;
            assert!(
                (c.offset_s - truth).abs() <= c.within_s,
                "{c:?} for {offset}"
            );
            assert!(c.within_s <= 100e-6, "{c:?}");
        }
        // Workers' bounds together are as tight as the tighter.
        let (mut a, b) = (run(5_000, 100, 1_000, 5_000), run(5_000, 100, 37, 200_000));
        a.merge(&b);
        assert!(a.summary().unwrap().within_s <= 100e-6);
    }

    #[test]
    fn no_bound_on_one_side_is_no_figure() {
        assert_eq!(ClockBounds::default().summary(), None);
        // One date only: bounded both ways already by [D, D+1).
        let c = run(0, 100, 1, 10).summary().unwrap();
        assert!(c.within_s < 0.51, "{c:?}");
    }
}

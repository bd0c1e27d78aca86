//! The constant-rate schedule (`-R`): every request has an intended send
//! time fixed before the run, so a stalled server shows up as latency for
//! every request that should have gone out during the stall, not just for
//! the few in flight (coordinated omission).
//!
//! Request slots are numbered globally: slot `m` is due at `m / rate`
//! seconds. Connection `j` of `c` owns slots `j, j + c, j + 2c, ...`, so
//! the connections interleave evenly, a run of any length starts at full
//! rate with no calibration, and a rate below the thread or connection
//! count simply leaves connections idle between their slots.

#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    rate: f64,
    connections: u64,
}

impl Schedule {
    pub(crate) fn new(rate: f64, connections: usize) -> Schedule {
        Schedule {
            rate,
            connections: connections as u64,
        }
    }

    /// When connection `conn` (global index) should send its `k`-th
    /// request, in µs since the start.
    pub(crate) fn due_us(&self, conn: usize, k: u64) -> u64 {
        let slot = conn as u64 + k * self.connections;
        (slot as f64 * 1e6 / self.rate) as u64
    }

    /// How many slots fall due in `[0, t_us)`.
    #[cfg(test)]
    pub(crate) fn slots_by(&self, t_us: u64) -> u64 {
        (t_us as f64 * self.rate / 1e6).ceil() as u64
    }

    /// How many of connection `conn`'s slots fall due in `[0, t_us)`.
    pub(crate) fn conn_slots_by(&self, conn: usize, t_us: u64) -> u64 {
        let slots = t_us as f64 * self.rate / 1e6; // global slots before t
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

    #[test]
    fn connections_interleave_evenly() {
        let s = Schedule::new(1000.0, 4);
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
        let s = Schedule::new(1.0, 2);
        assert_eq!(
            (s.due_us(0, 0), s.due_us(1, 0), s.due_us(0, 1)),
            (0, 1_000_000, 2_000_000)
        );
    }
}

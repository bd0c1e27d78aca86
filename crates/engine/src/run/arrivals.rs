//! How a schedule's requests arrive: evenly (every slot at its place, as
//! wrk2 does), or as a Poisson process (exponential gaps, as Treadmill,
//! mutilate and Lancet send: a server sees bursts and lulls at the same
//! mean rate, and queues form that even arrivals never build).
//!
//! Poisson arrivals are made by time rescaling: a connection's arrivals
//! are a rate-1/c Poisson process in the schedule's slot space (c
//! connections; their union is the whole schedule's Poisson process), and
//! slot positions become times through the schedule's integral, so ramps
//! and stages stay Poisson at every rate. Gaps come from a hash of the
//! seed, the connection and the arrival's index: a run is repeatable, and
//! no generator state is shared between threads.

use serde::{Deserialize, Serialize};

/// The arrival process of a paced run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// Every request at its slot: evenly spaced at the rate in force.
    #[default]
    Uniform,
    /// Exponential gaps with the rate in force as their mean rate.
    Poisson,
}

impl std::fmt::Display for Arrivals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arrivals::Uniform => "uniform",
            Arrivals::Poisson => "poisson",
        })
    }
}

impl std::str::FromStr for Arrivals {
    type Err = String;
    fn from_str(s: &str) -> Result<Arrivals, String> {
        match s {
            "uniform" => Ok(Arrivals::Uniform),
            "poisson" => Ok(Arrivals::Poisson),
            other => Err(format!(
                "'{other}' is not an arrival process: uniform or poisson"
            )),
        }
    }
}

/// Poisson gaps for one run: each connection's, in slots of the whole
/// schedule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoissonGaps {
    seed: u64,
    connections: f64,
}

impl PoissonGaps {
    pub(crate) fn new(seed: u64, connections: usize) -> PoissonGaps {
        PoissonGaps {
            seed,
            connections: connections.max(1) as f64,
        }
    }

    /// The gap before connection `conn`'s `k`-th arrival (the first's is
    /// from the start), in slots: exponential with mean `c`.
    pub(crate) fn gap(&self, conn: usize, k: u64) -> f64 {
        let h = mix(self.seed
            ^ mix(conn as u64 ^ 0x9e37_79b9_7f4a_7c15)
            ^ k.wrapping_mul(0xd1b5_4a32_d192_ed03));
        // A uniform in (0, 1]: never 0, whose logarithm is infinite.
        let u = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        -u.ln() * self.connections
    }

    /// How many of connection `conn`'s arrivals lie before slot position
    /// `slots` (replayed: once per connection at the end of a run).
    pub(crate) fn count_before(&self, conn: usize, slots: f64) -> u64 {
        let (mut pos, mut k) = (self.gap(conn, 0), 0u64);
        while pos < slots {
            k += 1;
            pos += self.gap(conn, k);
        }
        k
    }
}

/// splitmix64's finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_exponential_with_the_connections_share_of_the_rate() {
        let g = PoissonGaps::new(42, 10);
        let gaps: Vec<f64> = (0..200_000).map(|k| g.gap(3, k)).collect();
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let var = gaps.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        // Mean c = 10 slots, coefficient of variation 1.
        assert!((mean - 10.0).abs() < 0.1, "{mean}");
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.02,
            "{}",
            var.sqrt() / mean
        );
        // Memoryless: P(X > 2c) = e^-2.
        let over = gaps.iter().filter(|&&x| x > 20.0).count() as f64 / n;
        assert!((over - (-2f64).exp()).abs() < 0.005, "{over}");
        // Repeatable, and another seed or connection gives other gaps.
        assert_eq!(g.gap(3, 7), PoissonGaps::new(42, 10).gap(3, 7));
        assert_ne!(g.gap(3, 7), PoissonGaps::new(43, 10).gap(3, 7));
        assert_ne!(g.gap(3, 7), g.gap(4, 7));
    }

    #[test]
    fn counts_replay_the_arrivals() {
        let g = PoissonGaps::new(1, 4);
        // Over 4 connections, 40,000 slots of schedule hold about 40,000
        // arrivals.
        let total: u64 = (0..4).map(|c| g.count_before(c, 40_000.0)).sum();
        assert!((39_000..=41_000).contains(&total), "{total}");
        assert_eq!(g.count_before(0, 0.0), 0);
        assert!("poisson".parse::<Arrivals>() == Ok(Arrivals::Poisson));
        assert!("even".parse::<Arrivals>().is_err());
    }
}

//! One instance's place in a fleet that runs one load together.
//!
//! When one machine is not enough, the same command runs on N machines
//! (a Kubernetes Indexed Job, Slurm's `srun`, Nomad, pdsh), each told its
//! index. The totals asked for (connections, rate, requests) are the
//! fleet's: each instance takes its exact share, the remainders spread
//! over the first instances rather than dropped, so that the shares add up
//! to the total. `{{seq}}` interleaves (instance `i` of `N` takes `i`,
//! `i + N`, `i + 2N`, ...), so the fleet's numbers never repeat, and
//! random values and Poisson arrivals draw from streams of their own: N
//! instances with one seed would otherwise send the same bursts at the
//! same moments. `urk merge` checks that a set of reports is the whole
//! fleet, each instance once.

use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Instance `index` (from 0) of `count`.
///
/// ```
/// let s = urk_engine::Shard::parse("1/3").unwrap();
/// // 10 connections over 3 instances: 4, 3, 3.
/// assert_eq!(s.part(10), 3);
/// assert_eq!(urk_engine::Shard::parse("0/3").unwrap().part(10), 4);
/// assert_eq!(s.to_string(), "1/3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// This instance, from 0.
    pub index: u32,
    /// Instances in the fleet.
    pub count: u32,
}

/// Where `Shard::from_env` found an instance's index: the variables each
/// engine sets for its tasks, in the order they are looked at. The count
/// comes from the second variable, when the engine sets one.
pub const SHARD_ENV: [(&str, Option<&str>); 4] = [
    ("JOB_COMPLETION_INDEX", None),
    ("SLURM_PROCID", Some("SLURM_NTASKS")),
    ("NOMAD_ALLOC_INDEX", None),
    ("OMPI_COMM_WORLD_RANK", Some("OMPI_COMM_WORLD_SIZE")),
];

impl Shard {
    /// Instance `index` of `count`, checked.
    pub fn new(index: u32, count: u32) -> Result<Shard, EngineError> {
        if count == 0 || index >= count {
            return Err(EngineError::Config(format!(
                "shard {index}/{count}: the index must be below the count (from 0), and the count at least 1"
            )));
        }
        Ok(Shard { index, count })
    }

    /// `I/N`, as written on a command line.
    pub fn parse(s: &str) -> Result<Shard, EngineError> {
        let bad = || {
            EngineError::Config(format!(
                "shard '{s}': expected INDEX/COUNT, e.g. 0/4 for the first of four"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (i, n) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        Shard::new(i, n)
    }

    /// This task's shard from the variables its engine set (`env` looks
    /// one up), with `count` when the engine does not say how many tasks
    /// there are (a Kubernetes Indexed Job, Nomad). Returns the shard and
    /// the variable that gave its index.
    pub fn from_env(
        env: impl Fn(&str) -> Option<String>,
        count: Option<u32>,
    ) -> Result<(Shard, &'static str), EngineError> {
        for (index_var, count_var) in SHARD_ENV {
            let Some(i) = env(index_var) else { continue };
            let i: u32 = i.trim().parse().map_err(|_| {
                EngineError::Config(format!("{index_var}='{i}' is not a task index"))
            })?;
            let n = match (count, count_var.and_then(&env)) {
                (Some(n), _) => n,
                (None, Some(n)) => n.trim().parse().map_err(|_| {
                    EngineError::Config(format!(
                        "{}='{n}' is not a task count",
                        count_var.unwrap_or_default()
                    ))
                })?,
                (None, None) => {
                    return Err(EngineError::Config(format!(
                        "{index_var} gives this task's index but nothing says how many tasks there are: give the shard count"
                    )))
                }
            };
            return Shard::new(i, n).map(|s| (s, index_var));
        }
        Err(EngineError::Config(format!(
            "no task index in the environment (looked for {})",
            SHARD_ENV.map(|(v, _)| v).join(", ")
        )))
    }

    /// This instance's share of `total` whole things: the quotient, and
    /// one more for each of the first `total % count` instances.
    pub fn part(&self, total: u64) -> u64 {
        let (n, i) = (u64::from(self.count), u64::from(self.index));
        total / n + u64::from(i < total % n)
    }

    /// This instance's share of a rate.
    pub fn rate(&self, total: f64) -> f64 {
        total / f64::from(self.count)
    }

    /// The `k`th number of this instance's part of a sequence shared by
    /// the fleet: interleaved, so no two instances draw the same.
    pub fn seq(&self, k: u64) -> u64 {
        k.wrapping_mul(u64::from(self.count))
            .wrapping_add(u64::from(self.index))
    }

    /// A seed of this instance's own, from the fleet's.
    pub fn seed(&self, seed: u64) -> u64 {
        seed ^ u64::from(self.index).wrapping_mul(0xd1b5_4a32_d192_ed03)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_total() {
        for n in 1..=7u32 {
            for total in [0u64, 1, 5, 10, 1000, 1001] {
                let parts: Vec<u64> = (0..n)
                    .map(|i| Shard::new(i, n).unwrap().part(total))
                    .collect();
                assert_eq!(parts.iter().sum::<u64>(), total, "{total} over {n}");
                assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
            }
        }
    }

    #[test]
    fn sequences_never_meet() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..3 {
            let s = Shard::new(i, 3).unwrap();
            for k in 0..100 {
                assert!(seen.insert(s.seq(k)));
            }
        }
        assert_eq!(seen.len(), 300);
        assert_eq!((0..300).filter(|v| !seen.contains(v)).count(), 0);
    }

    #[test]
    fn parsing_and_the_environment() {
        assert_eq!(Shard::parse(" 2/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["4/4", "1/0", "1", "a/b", "-1/3", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            Shard::from_env(env(&[("SLURM_PROCID", "3"), ("SLURM_NTASKS", "8")]), None).unwrap(),
            (Shard { index: 3, count: 8 }, "SLURM_PROCID")
        );
        assert_eq!(
            Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "1")]), Some(2))
                .unwrap()
                .0,
            Shard { index: 1, count: 2 }
        );
        // An index with no count, none at all, or nonsense: one line each.
        let e = Shard::from_env(env(&[("NOMAD_ALLOC_INDEX", "0")]), None).unwrap_err();
        assert!(e.to_string().contains("how many tasks"), "{e}");
        let e = Shard::from_env(env(&[]), Some(3)).unwrap_err();
        assert!(
            e.to_string().contains("JOB_COMPLETION_INDEX, SLURM_PROCID"),
            "{e}"
        );
        let e = Shard::from_env(env(&[("OMPI_COMM_WORLD_RANK", "x")]), None).unwrap_err();
        assert!(e.to_string().contains("not a task index"), "{e}");
        let e = Shard::from_env(env(&[("SLURM_PROCID", "5"), ("SLURM_NTASKS", "5")]), None)
            .unwrap_err();
        assert!(e.to_string().contains("below the count"), "{e}");
    }
}

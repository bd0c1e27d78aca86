//! A fleet's reports taken together: whether a set is the whole fleet,
//! each instance once, and how late each instance started against the
//! moment they were all asked to start. A missing instance would make
//! the merged totals quietly short, a doubled one quietly long, and one
//! that started late ran its load beside the others' for less than its
//! whole window: each is said before any figure is believed.

use serde::{Deserialize, Serialize};

use crate::report::Report;
use crate::Shard;

/// How late an instance may start after the asked moment before a merge
/// says so, in seconds: clocks kept by NTP agree within milliseconds, and
/// an instance starts within a few of the moment it waited for.
pub const LATE_START_S: f64 = 0.1;

/// The fleet a merged report came from.
///
/// ```
/// # fn demo(reports: Vec<urk_engine::Report>) -> Result<(), urk_engine::FleetError> {
/// if let Some(f) = urk_engine::Fleet::of(&reports, false)? {
///     println!("{} instances, the latest started {:?} s late", f.count, f.start_late_max_s);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    /// Instances in the fleet.
    pub count: u32,
    /// The instances merged, by index: all of them, unless a partial
    /// merge was asked for.
    pub merged: Vec<u32>,
    /// How long after the asked moment (`start_at`) the instances started,
    /// seconds: the latest and the median; `None` when none was asked.
    pub start_late_max_s: Option<f64>,
    pub start_late_median_s: Option<f64>,
    /// The instance that started latest.
    pub latest: Option<u32>,
    /// The instances' starts on the server's clock (each one's own start
    /// moved by its clock's offset from the server's): the latest less
    /// the earliest, seconds. An instance whose clock is off starts off
    /// and still reports itself on time by its own clock; on the one
    /// clock they all share it does not. `None` unless every instance
    /// read the server's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_spread_server_s: Option<f64>,
    /// How far that spread may be off: the two widest offsets' doubt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_spread_within_s: Option<f64>,
    /// The instance that started latest on the server's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_by_server: Option<u32>,
}

/// Why a set of reports is not one whole fleet.
#[derive(Debug, Clone, PartialEq)]
pub enum FleetError {
    /// Some reports are instances of a fleet and some are not.
    Mixed,
    /// Reports of fleets of different sizes.
    Counts(u32, u32),
    /// The same instance twice (`1`, `2`: the positions in the set).
    Twice(Shard, usize, usize),
    /// These instances are missing.
    Missing(Vec<u32>, u32),
    /// A report names a shard that cannot be (an index past the count).
    Invalid(Shard, usize),
    /// Shards asked to start at different moments: not one run.
    Runs(usize, usize),
}

impl std::fmt::Display for FleetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FleetError::Mixed => write!(
                f,
                "some reports are shards of a fleet and some are not: merge one fleet's reports"
            ),
            FleetError::Counts(a, b) => write!(
                f,
                "reports of fleets of {a} and of {b} shards: merge one fleet's reports"
            ),
            FleetError::Twice(s, a, b) => write!(
                f,
                "shard {s} appears twice (reports {} and {}): each shard once",
                a + 1,
                b + 1
            ),
            FleetError::Invalid(s, k) => write!(
                f,
                "report {} names shard {}/{}, which cannot be: the index must be below the count",
                k + 1,
                s.index,
                s.count
            ),
            FleetError::Runs(a, b) => write!(
                f,
                "reports {} and {} are shards asked to start at different moments (--start-at): merge one run's shards",
                a + 1,
                b + 1
            ),
            FleetError::Missing(m, n) => {
                let list: Vec<String> = m.iter().map(|i| format!("{i}/{n}")).collect();
                let (noun, verb) = if m.len() == 1 {
                    ("shard", "is")
                } else {
                    ("shards", "are")
                };
                write!(
                    f,
                    "{noun} {} {verb} missing: the totals would be short (merge a part of the fleet only on purpose)",
                    list.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for FleetError {}

impl Fleet {
    /// The fleet `reports` are from, checked: `None` when none is a
    /// shard. With `partial`, missing instances are allowed (the totals
    /// are then the part's).
    pub fn of(reports: &[Report], partial: bool) -> Result<Option<Fleet>, FleetError> {
        let shards: Vec<Option<Shard>> = reports.iter().map(|r| r.shard).collect();
        if shards.iter().all(Option::is_none) {
            return Ok(None);
        }
        let Some(shards) = shards.into_iter().collect::<Option<Vec<Shard>>>() else {
            return Err(FleetError::Mixed);
        };
        if let Some(k) = shards
            .iter()
            .position(|s| Shard::new(s.index, s.count).is_err())
        {
            return Err(FleetError::Invalid(shards[k], k));
        }
        let count = shards[0].count;
        if let Some(other) = shards.iter().find(|s| s.count != count) {
            return Err(FleetError::Counts(count, other.count));
        }
        if let Some(k) = reports
            .iter()
            .position(|r| r.start_at != reports[0].start_at)
        {
            return Err(FleetError::Runs(0, k));
        }
        // By index; a huge count in a report costs nothing here.
        let mut at: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
        for (k, s) in shards.iter().enumerate() {
            if let Some(&first) = at.get(&s.index) {
                return Err(FleetError::Twice(*s, first, k));
            }
            at.insert(s.index, k);
        }
        // Named up to 16: a report claiming a million shards is not listed.
        let missing: Vec<u32> = (0..count)
            .filter(|i| !at.contains_key(i))
            .take(16)
            .collect();
        if !missing.is_empty() && !partial {
            return Err(FleetError::Missing(missing, count));
        }
        let mut late: Vec<(f64, u32)> = reports
            .iter()
            .zip(&shards)
            .filter_map(|(r, s)| {
                let asked = r.start_at?;
                let warm = r.warmup.as_ref().map_or(0.0, |w| w.seconds);
                (r.started_at > 0.0).then(|| ((r.started_at - warm - asked).max(0.0), s.index))
            })
            .collect();
        late.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Each start on the server's clock, with its doubt.
        let on_server: Option<Vec<(f64, f64, u32)>> = reports
            .iter()
            .zip(&shards)
            .map(|(r, s)| {
                let c = r.server_clock?;
                let warm = r.warmup.as_ref().map_or(0.0, |w| w.seconds);
                Some((r.started_at - warm + c.offset_s, c.within_s, s.index))
            })
            .collect();
        let spread = on_server.filter(|v| v.len() > 1).map(|mut v| {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut doubt: Vec<f64> = v.iter().map(|x| x.1).collect();
            doubt.sort_by(|a, b| b.total_cmp(a));
            let (first, last) = (v[0], v[v.len() - 1]);
            (last.0 - first.0, doubt[0] + doubt[1], last.2)
        });
        Ok(Some(Fleet {
            count,
            merged: at.keys().copied().collect(),
            start_late_max_s: late.last().map(|l| l.0),
            start_late_median_s: (!late.is_empty()).then(|| late[late.len() / 2].0),
            latest: late.last().map(|l| l.1),
            start_spread_server_s: spread.map(|s| s.0),
            start_spread_within_s: spread.map(|s| s.1),
            latest_by_server: spread.map(|s| s.2),
        }))
    }

    /// What a reader should know: instances missing from a partial
    /// merge, and one that started past [`LATE_START_S`].
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.merged.len() < self.count as usize {
            w.push(format!(
                "{} of {} shards merged: the totals are the part's, not the fleet's",
                self.merged.len(),
                self.count
            ));
        }
        if let (Some(max), Some(i)) = (self.start_late_max_s, self.latest) {
            if max > LATE_START_S {
                w.push(format!(
                    "shard {i}/{} started {max:.3} s after the asked moment (median {:.3} s): its load overlapped the others' for less than the whole window",
                    self.count,
                    self.start_late_median_s.unwrap_or(0.0)
                ));
            }
        }
        if let (Some(spread), Some(within), Some(i)) = (
            self.start_spread_server_s,
            self.start_spread_within_s,
            self.latest_by_server,
        ) {
            if spread - within > LATE_START_S {
                w.push(format!(
                    "on the server's clock (its Date headers), shard {i}/{} started {spread:.3} s (± {within:.3}) after the first: its clock is off, or it started late",
                    self.count
                ));
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of shard `i` of `n` that started `late` s after the
    /// asked moment.
    fn report(shard: Option<(u32, u32)>, late: f64) -> Report {
        let mut r: Report = serde_json::from_str(include_str!("fixtures/min-report.json"))
            .expect("the minimal report parses");
        r.shard = shard.map(|(i, n)| Shard::new(i, n).unwrap());
        r.start_at = Some(1_800_000_000.0);
        r.started_at = 1_800_000_000.0 + late;
        r
    }

    #[test]
    fn a_shard_whose_clock_is_off_is_late_on_the_servers() {
        // Shard 1's clock is 3 s behind: it started 3 s late and says it
        // was on time; the server's clock is 3 s ahead of its.
        let mut all: Vec<Report> = (0..3).map(|i| report(Some((i, 3)), 0.001)).collect();
        for (k, r) in all.iter_mut().enumerate() {
            r.server_clock = Some(crate::ServerClock {
                offset_s: if k == 1 { 3.0 } else { 0.0 } + 0.0002,
                within_s: 0.0001,
                responses: 100,
            });
        }
        let f = Fleet::of(&all, false).unwrap().unwrap();
        assert!(f.start_late_max_s.unwrap() < LATE_START_S);
        assert!(
            (f.start_spread_server_s.unwrap() - 3.0).abs() < 1e-6,
            "{f:?}"
        );
        assert_eq!(f.latest_by_server, Some(1));
        let w = f.warnings();
        assert!(
            w.len() == 1 && w[0].contains("shard 1/3 started 3.000 s"),
            "{w:?}"
        );
        // Clocks that agree: no word.
        all[1].server_clock.as_mut().unwrap().offset_s = 0.0003;
        assert!(Fleet::of(&all, false)
            .unwrap()
            .unwrap()
            .warnings()
            .is_empty());
    }

    #[test]
    fn a_whole_fleet_once_each() {
        let all: Vec<Report> = (0..3)
            .map(|i| report(Some((i, 3)), 0.001 * f64::from(i)))
            .collect();
        let f = Fleet::of(&all, false).unwrap().unwrap();
        assert_eq!(f.merged, [0, 1, 2]);
        assert!((f.start_late_max_s.unwrap() - 0.002).abs() < 1e-6, "{f:?}");
        assert_eq!(f.latest, Some(2));
        assert!(f.warnings().is_empty());
        // Unsharded reports are no fleet.
        assert_eq!(Fleet::of(&[report(None, 0.0)], false).unwrap(), None);
    }

    #[test]
    fn missing_doubled_mixed_and_late_shards_are_named() {
        let r = |i, n| report(Some((i, n)), 0.0);
        let e = Fleet::of(&[r(0, 3), r(2, 3)], false).unwrap_err();
        assert_eq!(e, FleetError::Missing(vec![1], 3));
        assert!(e.to_string().starts_with("shard 1/3 is missing"), "{e}");
        let e = Fleet::of(&[r(1, 3)], false).unwrap_err();
        assert!(
            e.to_string().starts_with("shards 0/3, 2/3 are missing"),
            "{e}"
        );
        let e = Fleet::of(&[r(0, 2), r(0, 2)], false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shard 0/2 appears twice (reports 1 and 2): each shard once"
        );
        assert_eq!(
            Fleet::of(&[r(0, 2), r(1, 3)], false).unwrap_err(),
            FleetError::Counts(2, 3)
        );
        assert_eq!(
            Fleet::of(&[r(0, 2), report(None, 0.0)], false).unwrap_err(),
            FleetError::Mixed
        );
        // A partial merge on purpose says what it is.
        let f = Fleet::of(&[r(0, 3), r(2, 3)], true).unwrap().unwrap();
        assert_eq!(f.merged, [0, 2]);
        assert!(f.warnings()[0].contains("2 of 3 shards merged"));
        // A shard that cannot be, and shards of two runs.
        let e = Fleet::of(&[report(Some((0, 2)), 0.0)], false);
        let mut bad = r(0, 2);
        bad.shard = Some(Shard { index: 5, count: 2 });
        assert_eq!(
            Fleet::of(&[r(0, 2), bad], false).unwrap_err(),
            FleetError::Invalid(Shard { index: 5, count: 2 }, 1)
        );
        assert!(e.is_err());
        let mut other = r(1, 2);
        other.start_at = Some(1_900_000_000.0);
        assert_eq!(
            Fleet::of(&[r(0, 2), other], false).unwrap_err(),
            FleetError::Runs(0, 1)
        );
        // One shard three seconds late.
        let f = Fleet::of(&[r(0, 2), report(Some((1, 2)), 3.0)], false)
            .unwrap()
            .unwrap();
        assert_eq!(f.latest, Some(1));
        assert!(
            f.warnings()[0].starts_with("shard 1/2 started 3.000 s after"),
            "{:?}",
            f.warnings()
        );
    }
}

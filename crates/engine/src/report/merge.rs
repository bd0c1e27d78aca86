//! Reports from runs that went at the same time (several machines against
//! one target) combined exactly: counts add and histograms merge, so the
//! percentiles are those of all samples together, never averages.

use crate::report::{LatencySummary, RateReport, RateSummary, Report, TargetReport, TimelineEntry};

impl Report {
    /// Combines reports of concurrent runs. Rates add (the runs overlapped);
    /// the duration is the longest; latency percentiles come from the
    /// merged histograms. The `rate` block is kept only when every run was
    /// at a constant rate (requested rates then add); see
    /// [`Report::merge_caveats`] for what a merge of unlike runs leaves out.
    /// `None` for an empty slice.
    ///
    /// ```
    /// # fn demo(a: urk_engine::Report, b: urk_engine::Report) {
    /// let all = urk_engine::Report::merge(&[a, b]).unwrap();
    /// println!("p99 over both runs: {} us", all.latency_us.p99);
    /// # }
    /// ```
    pub fn merge(reports: &[Report]) -> Option<Report> {
        let (first, rest) = reports.split_first()?;
        // Timelines line up by the wall clock: second 0 is the earliest
        // start of a load, warm-up included (reports without one count as
        // starting with it).
        let warm = |r: &Report| r.warmup.as_ref().map_or(0.0, |w| w.seconds);
        let base = reports
            .iter()
            .filter(|r| r.started_at > 0.0)
            .map(|r| r.started_at - warm(r))
            .fold(f64::INFINITY, f64::min);
        let offset = |r: &Report| -> usize {
            if r.started_at > 0.0 && base.is_finite() {
                (r.started_at - warm(r) - base).round().max(0.0) as usize
            } else {
                0
            }
        };
        let mut m = first.clone();
        m.timeline.clear();
        // One instance's place is not the merge's; the caller checks the
        // set and says what fleet it was (`Fleet::of`).
        m.shard = None;
        if reports.iter().any(|r| r.start_at != first.start_at) {
            m.start_at = None;
        }
        if let Some(start) = reports
            .iter()
            .map(|r| r.started_at)
            .filter(|&t| t > 0.0)
            .reduce(f64::min)
        {
            m.started_at = start;
        }
        for r in reports {
            for e in &r.timeline {
                let i = e.second as usize + offset(r);
                while m.timeline.len() <= i {
                    m.timeline
                        .push(TimelineEntry::empty(m.timeline.len() as u32));
                }
                let t = &mut m.timeline[i];
                t.warmup |= e.warmup;
                t.requests += e.requests;
                t.errors += e.errors;
                t.non_2xx_3xx += e.non_2xx_3xx;
                t.connects += e.connects;
                if let Some(o) = e.offered {
                    t.offered = Some(t.offered.unwrap_or(0.0) + o);
                }
                let _ = t.histogram.add(&e.histogram);
                if let Some(u) = &e.uncorrected {
                    let mine = t
                        .uncorrected
                        .get_or_insert_with(crate::report::stats::new_latency_histogram);
                    let _ = mine.add(u);
                }
            }
        }
        for r in rest {
            if !m.url.split(" + ").any(|u| u == r.url) {
                m.url = format!("{} + {}", m.url, r.url);
            }
            m.threads += r.threads;
            m.connections += r.connections;
            m.pipeline = m.pipeline.max(r.pipeline);
            m.duration_s = m.duration_s.max(r.duration_s);
            m.stopped_by = m.stopped_by.max(r.stopped_by);
            m.requests += r.requests;
            m.requests_after_stop += r.requests_after_stop;
            m.grace_s = m.grace_s.max(r.grace_s);
            m.requests_asked = m.requests_asked.zip(r.requests_asked).map(|(a, b)| a + b);
            m.requests_sent += r.requests_sent;
            m.requests_lost += r.requests_lost;
            m.lost_causes += r.lost_causes;
            m.requests_unfinished += r.requests_unfinished;
            m.bytes_read += r.bytes_read;
            m.bytes_read_after_stop += r.bytes_read_after_stop;
            m.bytes_written += r.bytes_written;
            m.requests_per_sec += r.requests_per_sec;
            m.bytes_read_per_sec += r.bytes_read_per_sec;
            for (code, n) in &r.status {
                *m.status.entry(*code).or_insert(0) += n;
            }
            m.non_2xx_3xx += r.non_2xx_3xx;
            m.errors += r.errors;
            m.connect_errors += r.connect_errors;
            m.connections_opened += r.connections_opened;
            m.connects_per_sec += r.connects_per_sec;
            let _ = m.latency_histogram.add(&r.latency_histogram);
            let _ = m.uncorrected_histogram.add(&r.uncorrected_histogram);
            let _ = m.rate_histogram.add(&r.rate_histogram);
            m.phases = m.phases.merged(&r.phases);
            m.log = match (m.log.take(), &r.log) {
                (Some(mut a), Some(b)) => {
                    a.records += b.records;
                    a.dropped += b.dropped;
                    if a.path != b.path {
                        a.path = format!("{} + {}", a.path, b.path);
                    }
                    a.error = a.error.or_else(|| b.error.clone());
                    Some(a)
                }
                (a, b) => a.or_else(|| b.clone()),
            };
            // Machines' clocks each against the server: one per machine,
            // nothing to add (the fleet's start spread uses them).
            m.server_clock = None;
            m.kernel_timestamps = match (m.kernel_timestamps.take(), &r.kernel_timestamps) {
                (Some(a), Some(b)) => Some(a.merged(b)),
                (a, b) => a.or_else(|| b.clone()),
            };
            m.tls = match (m.tls.take(), &r.tls) {
                (Some(mut a), Some(b)) => {
                    a.handshakes += b.handshakes;
                    a.resumed += b.resumed;
                    a.errors += b.errors;
                    let _ = a.handshake_histogram.add(&b.handshake_histogram);
                    a.handshake_latency_us = LatencySummary::of(&a.handshake_histogram);
                    Some(a)
                }
                (a, b) => a.or_else(|| b.clone()),
            };
            m.http2_only |= r.http2_only;
            if m.command != r.command {
                m.command = None;
            }
            m.http2 = match (m.http2.take(), &r.http2) {
                (Some(mut a), Some(b)) => {
                    a.merge(b);
                    Some(a)
                }
                (a, b) => a.or_else(|| b.clone()),
            };
            // A closed-loop run has no schedule to add to another's.
            m.rate = m
                .rate
                .take()
                .zip(r.rate.as_ref())
                .map(|(a, b)| merge_rate(&a, b));
            if same_targets(&m.targets, &r.targets) {
                for (a, b) in m.targets.iter_mut().zip(&r.targets) {
                    a.requests += b.requests;
                    for (code, n) in &b.status {
                        *a.status.entry(*code).or_insert(0) += n;
                    }
                    let _ = a.latency_histogram.add(&b.latency_histogram);
                    a.latency_us = LatencySummary::of(&a.latency_histogram);
                }
            } else {
                m.targets.clear();
            }
            for a in &r.addresses {
                if !m.addresses.contains(a) {
                    m.addresses.push(a.clone());
                }
            }
            if m.seed != r.seed {
                m.seed = None;
            }
            m.warmup = match (m.warmup.take(), &r.warmup) {
                (Some(mut a), Some(b)) => {
                    a.seconds = a.seconds.max(b.seconds);
                    a.requests += b.requests;
                    a.errors += b.errors;
                    a.connections_opened += b.connections_opened;
                    a.finished &= b.finished;
                    Some(a)
                }
                (a, b) => a.or_else(|| b.clone()),
            };
            m.generator_cpu_s += r.generator_cpu_s;
            m.generator_busy_pct = m.generator_busy_pct.max(r.generator_busy_pct);
            m.generator_bound |= r.generator_bound;
            m.interrupted |= r.interrupted;
        }
        m.latency_us = LatencySummary::of(&m.latency_histogram);
        m.latency_uncorrected_us = LatencySummary::of(&m.uncorrected_histogram);
        m.thread_requests_per_sec = RateSummary::of(&m.rate_histogram);
        for t in &mut m.timeline {
            t.p99_us = t.histogram.value_at_quantile(0.99);
        }
        if let Some(w) = &mut m.warmup {
            w.timeline_seconds = m.timeline.iter().take_while(|t| t.warmup).count() as u32;
        }
        Some(m)
    }

    /// What [`Report::merge`] of these reports cannot say, one line each:
    /// empty when the runs are alike.
    ///
    /// ```
    /// # fn demo(reports: &[urk_engine::Report]) {
    /// for line in urk_engine::Report::merge_caveats(reports) {
    ///     eprintln!("note: {line}");
    /// }
    /// # }
    /// ```
    pub fn merge_caveats(reports: &[Report]) -> Vec<String> {
        let paced = reports.iter().filter(|r| r.rate.is_some()).count();
        let mut out = Vec::new();
        if paced > 0 && paced < reports.len() {
            out.push(format!(
                "the runs differ in kind ({} at a constant rate, {} closed-loop): the merged report has no rate figures",
                paced,
                reports.len() - paced
            ));
        }
        let (first, rest) = match reports.split_first() {
            Some(x) => x,
            None => return out,
        };
        // Runs that did not overlap in time loaded the server one after
        // the other: their rates do not add up to one load.
        let span = |r: &Report| (r.started_at, r.started_at + r.duration_s);
        let timed: Vec<(f64, f64)> = reports
            .iter()
            .filter(|r| r.started_at > 0.0)
            .map(span)
            .collect();
        let apart = timed
            .iter()
            .enumerate()
            .any(|(i, a)| timed[i + 1..].iter().any(|b| a.1 <= b.0 || b.1 <= a.0));
        if apart {
            let first_start = timed.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
            let last_start = timed.iter().map(|t| t.0).fold(0.0, f64::max);
            out.push(format!(
                "the runs did not all overlap in time (starts {:.1} s apart): their rates do not add up to one load; use --start-at to start them together",
                last_start - first_start
            ));
        }
        if rest
            .iter()
            .any(|r| !same_targets(&first.targets, &r.targets))
        {
            out.push(
                "the runs sent different targets: the merged report has no per-target figures"
                    .into(),
            );
        }
        out
    }
}

/// The same targets files (or none): per-target figures add up.
fn same_targets(a: &[TargetReport], b: &[TargetReport]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x.line, &x.method, &x.url) == (y.line, &y.method, &y.url))
}

fn merge_rate(a: &RateReport, b: &RateReport) -> RateReport {
    // Each side's histogram only spans the lags it recorded: add both into
    // one that spans them all.
    use crate::report::stats::sum;
    let lag = sum(&a.send_lag_histogram, &b.send_lag_histogram);
    let own = sum(&a.own_lag_histogram, &b.own_lag_histogram);
    let scheduled = a.scheduled + b.scheduled;
    let behind = a.behind + b.behind;
    let sent = a.sent + b.sent;
    RateReport {
        requested: a.requested + b.requested,
        achieved: a.achieved + b.achieved,
        scheduled,
        sent,
        behind,
        max_lag_us: a.max_lag_us.max(b.max_lag_us),
        mean_lag_us: (a.mean_lag_us * a.sent as f64 + b.mean_lag_us * b.sent as f64)
            / sent.max(1) as f64,
        send_lag_us: LatencySummary::of(&lag),
        send_lag_histogram: lag,
        own_lag_us: LatencySummary::of(&own),
        own_lag_histogram: own,
        window_us: a.window_us.max(b.window_us),
        kept: behind <= (scheduled / 100).max(1),
        plan: a.plan.clone().or_else(|| b.plan.clone()),
        arrivals: a.arrivals,
        checks: None,
        lag_share: a.lag_share.max(b.lag_share),
        bounded_by_urk: a.bounded_by_urk || b.bounded_by_urk,
    }
}

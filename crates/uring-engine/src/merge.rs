//! Reports from runs that went at the same time (several machines against
//! one target) combined exactly: counts add and histograms merge, so the
//! percentiles are those of all samples together, never averages.

use crate::report::{LatencySummary, RateReport, RateSummary, Report, TimelineEntry};

impl Report {
    /// Combines reports of concurrent runs. Rates add (the runs overlapped);
    /// the duration is the longest; latency percentiles come from the
    /// merged histograms. `None` for an empty slice.
    ///
    /// ```
    /// # fn demo(a: uring_engine::Report, b: uring_engine::Report) {
    /// let all = uring_engine::Report::merge(&[a, b]).unwrap();
    /// println!("p99 over both runs: {} us", all.latency_us.p99);
    /// # }
    /// ```
    pub fn merge(reports: &[Report]) -> Option<Report> {
        let (first, rest) = reports.split_first()?;
        let mut m = first.clone();
        for r in rest {
            if !m.url.split(" + ").any(|u| u == r.url) {
                m.url = format!("{} + {}", m.url, r.url);
            }
            m.threads += r.threads;
            m.connections += r.connections;
            m.pipeline = m.pipeline.max(r.pipeline);
            m.duration_s = m.duration_s.max(r.duration_s);
            m.requests += r.requests;
            m.requests_sent += r.requests_sent;
            m.requests_lost += r.requests_lost;
            m.requests_unfinished += r.requests_unfinished;
            m.bytes_read += r.bytes_read;
            m.bytes_written += r.bytes_written;
            m.requests_per_sec += r.requests_per_sec;
            m.bytes_read_per_sec += r.bytes_read_per_sec;
            for (code, n) in &r.status {
                *m.status.entry(*code).or_insert(0) += n;
            }
            m.non_2xx_3xx += r.non_2xx_3xx;
            m.errors.add(&r.errors);
            m.connect_errors.add(&r.connect_errors);
            let _ = m.latency_histogram.add(&r.latency_histogram);
            let _ = m.uncorrected_histogram.add(&r.uncorrected_histogram);
            let _ = m.rate_histogram.add(&r.rate_histogram);
            m.rate = match (m.rate, r.rate) {
                (Some(a), Some(b)) => Some(merge_rate(&a, &b)),
                (a, b) => a.or(b),
            };
            for e in &r.timeline {
                let i = e.second as usize;
                while m.timeline.len() <= i {
                    m.timeline.push(TimelineEntry {
                        second: m.timeline.len() as u32,
                        requests: 0,
                        errors: 0,
                        p99_us: 0,
                        histogram: crate::stats::new_latency_histogram(),
                    });
                }
                let t = &mut m.timeline[i];
                t.requests += e.requests;
                t.errors += e.errors;
                let _ = t.histogram.add(&e.histogram);
            }
            m.generator_cpu_s += r.generator_cpu_s;
            m.generator_bound |= r.generator_bound;
            m.interrupted |= r.interrupted;
        }
        m.latency_us = LatencySummary::of(&m.latency_histogram);
        m.latency_uncorrected_us = LatencySummary::of(&m.uncorrected_histogram);
        m.thread_requests_per_sec = RateSummary::of(&m.rate_histogram);
        for t in &mut m.timeline {
            t.p99_us = t.histogram.value_at_quantile(0.99);
        }
        Some(m)
    }
}

fn merge_rate(a: &RateReport, b: &RateReport) -> RateReport {
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
        kept: behind <= (scheduled / 100).max(1),
    }
}

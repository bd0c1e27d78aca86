//! `--hdr-log`: the run's per-second latency histograms as an HdrHistogram
//! interval log, which HdrHistogram's log processors and plotters read.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use urk_engine::Report;

/// Writes one interval per second of `report.timeline` (values in µs).
pub fn write(path: &str, report: &Report) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut serializer = V2DeflateSerializer::new();
    let end = SystemTime::now();
    let start = end - Duration::from_secs_f64(report.duration_s);
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment(&format!("urk {} {}", report.urk_version, report.url))
        .add_comment(
            "values are latencies in microseconds, corrected for coordinated omission under -R",
        )
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut out, &mut serializer)
        .map_err(io::Error::other)?;
    for e in &report.timeline {
        let from = Duration::from_secs(u64::from(e.second));
        let len = Duration::from_secs_f64((report.duration_s - from.as_secs_f64()).clamp(0.0, 1.0));
        log.write_histogram(&e.histogram, from, len, Tag::new("latency"))
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
    }
    drop(log);
    out.flush()
}

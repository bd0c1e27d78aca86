//! What `done(summary, latency, requests)` gets: wrk's summary table and
//! its two statistics objects, over urk's HdrHistograms.
//!
//! `latency` is in microseconds, one value per response (wrk records one
//! per pipelined batch); `requests` holds each thread's request rate,
//! sampled every 100 ms, as wrk's does.

use hdrhistogram::Histogram;
use mlua::{Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods};

/// `summary`: duration (µs), requests, bytes, errors by wrk's classes.
pub(crate) fn summary(lua: &Lua, r: &urk_engine::Report) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("duration", (r.duration_s * 1e6).round() as u64)?;
    t.set("requests", r.requests)?;
    t.set("bytes", r.bytes_read)?;
    let e = lua.create_table()?;
    e.set("connect", r.errors.connect)?;
    e.set("read", r.errors.read + r.errors.parse + r.errors.tls)?;
    e.set("write", r.errors.write)?;
    // wrk counts responses with a status above 399 here.
    let status: u64 = r
        .status
        .iter()
        .filter(|(&c, _)| c > 399)
        .map(|(_, n)| n)
        .sum();
    e.set("status", status)?;
    e.set("timeout", r.errors.timeout)?;
    t.set("errors", e)?;
    Ok(t)
}

/// wrk's statistics object: `min`, `max`, `mean`, `stdev`,
/// `:percentile(p)` (p in percent), `#s` distinct values, `s(i)` the i-th
/// distinct value and its count.
pub(crate) struct Stats(pub Histogram<u64>);

impl Stats {
    fn nth(&self, i: usize) -> Option<(u64, u64)> {
        self.0.iter_recorded().nth(i).map(|v| {
            (
                self.0.highest_equivalent(v.value_iterated_to()),
                v.count_at_value(),
            )
        })
    }
}

impl UserData for Stats {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("min", |_, s| Ok(s.0.min()));
        f.add_field_method_get("max", |_, s| Ok(s.0.max()));
        f.add_field_method_get("mean", |_, s| Ok(s.0.mean()));
        f.add_field_method_get("stdev", |_, s| Ok(s.0.stdev()));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("percentile", |_, s, p: f64| {
            Ok(s.0.value_at_quantile((p / 100.0).clamp(0.0, 1.0)))
        });
        m.add_meta_method(MetaMethod::Len, |_, s, ()| Ok(s.0.iter_recorded().count()));
        m.add_meta_method(MetaMethod::Call, |_, s, i: usize| {
            Ok(match i.checked_sub(1).and_then(|i| s.nth(i)) {
                Some((v, n)) => (v, n),
                None => (0, 0),
            })
        });
    }
}

//! `--html FILE` and `urk report RUN.json... --html FILE`: one
//! self-contained page (uPlot, its styles, the page's code and the data
//! inline; nothing fetched) with the headline, every figure of the text
//! report, and charts that zoom and show values on hover: latency over
//! time, the percentile spectrum with every run overlaid, requests/s
//! achieved and offered, errors over time, and a capacity search's
//! latency against offered rate.
//!
//! The figures are worked out here, from the report's histograms; the
//! page only draws them, so what it shows is what `--json` says.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use urk_engine::{Report, TextOptions};

pub mod args;
pub use args::ReportArgs;

const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");
const PAGE: &str = include_str!("page.html");
const PAGE_JS: &str = include_str!("page.js");

/// One run on the page: its report, what to call it, and the command that
/// made it when known.
pub struct Run<'a> {
    pub report: &'a Report,
    pub label: String,
    pub command: Option<String>,
}

/// The page for `runs`.
pub fn page(runs: &[Run<'_>]) -> String {
    let data = json!({
        "spectrum_x": spectrum_x(),
        "runs": runs.iter().map(run_data).collect::<Vec<_>>(),
    });
    // `</` cannot end the script element the data sits in.
    let data = data.to_string().replace("</", "<\\/");
    let title = match runs {
        [one] => format!("urk: {}", one.report.url),
        many => format!("urk: {} runs", many.len()),
    };
    PAGE.replace("{{TITLE}}", &escape(&title))
        .replace("/*{{UPLOT_CSS}}*/", UPLOT_CSS)
        .replace("/*{{UPLOT_JS}}*/", UPLOT_JS)
        .replace("/*{{PAGE_JS}}*/", PAGE_JS)
        .replace("{{DATA}}", &data)
}

/// Writes the page for `runs` to `path`.
pub fn write(path: &str, runs: &[Run<'_>]) -> std::io::Result<()> {
    std::fs::write(path, page(runs))
}

/// The shell-quoted command line of this process.
pub fn this_command() -> String {
    std::env::args()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Latency at quantile `q` in ms, or null for an empty histogram.
fn ms(h: &Histogram<u64>, q: f64) -> Value {
    if h.is_empty() {
        Value::Null
    } else {
        json!(h.value_at_quantile(q) as f64 / 1000.0)
    }
}

/// Where the percentile spectrum is drawn: 1/(1-p) from 1 to 10^6, ten
/// points a decade, the same for every run so that runs overlay.
fn spectrum_x() -> Vec<f64> {
    (0..=60).map(|k| 10f64.powf(f64::from(k) / 10.0)).collect()
}

/// Latency (ms) at each of [`spectrum_x`]'s points; null past the
/// run's count (a percentile it has too few samples to tell).
fn spectrum(h: &Histogram<u64>) -> Value {
    let n = h.len() as f64;
    let ys: Vec<Value> = spectrum_x()
        .into_iter()
        .map(|x| {
            if h.is_empty() || x > n.max(1.0) {
                Value::Null
            } else {
                json!(h.value_at_quantile(1.0 - 1.0 / x) as f64 / 1000.0)
            }
        })
        .collect();
    json!(ys)
}

fn run_data(run: &Run<'_>) -> Value {
    let r = run.report;
    let text = r.to_text(TextOptions {
        latency: true,
        uncorrected: r.rate.is_some(),
    });
    let t = &r.timeline;
    let offered = t.iter().any(|e| e.offered.is_some());
    let timeline = json!({
        "second": t.iter().map(|e| e.second).collect::<Vec<_>>(),
        "rps": t.iter().map(|e| e.requests).collect::<Vec<_>>(),
        "offered": if offered { json!(t.iter().map(|e| e.offered).collect::<Vec<_>>()) } else { Value::Null },
        "errors": t.iter().map(|e| e.errors).collect::<Vec<_>>(),
        "non_2xx_3xx": t.iter().map(|e| e.non_2xx_3xx).collect::<Vec<_>>(),
        "connects": t.iter().map(|e| e.connects).collect::<Vec<_>>(),
        "p50": t.iter().map(|e| ms(&e.histogram, 0.5)).collect::<Vec<_>>(),
        "p99": t.iter().map(|e| ms(&e.histogram, 0.99)).collect::<Vec<_>>(),
        "max": t.iter().map(|e| ms(&e.histogram, 1.0)).collect::<Vec<_>>(),
        "p99_uncorrected": if t.iter().any(|e| e.uncorrected.is_some()) {
            json!(t.iter().map(|e| e.uncorrected.as_ref().map_or(Value::Null, |h| ms(h, 0.99))).collect::<Vec<_>>())
        } else {
            Value::Null
        },
        "warmup": t.iter().map(|e| e.warmup).collect::<Vec<_>>(),
    });
    let l = &r.latency_us;
    let mut details: Vec<(String, String)> = vec![
        ("URL".into(), r.url.clone()),
        (
            "Threads, connections, in flight each".into(),
            format!("{}, {}, {}", r.threads, r.connections, r.pipeline),
        ),
        ("io level".into(), r.io.level.to_string()),
        ("Kernel".into(), r.io.kernel.clone()),
        ("urk".into(), r.urk_version.clone()),
        (
            "Generator busy".into(),
            format!(
                "{:.0}%{}",
                r.generator_busy_pct,
                if r.generator_bound {
                    " (urk was the limit)"
                } else {
                    ""
                }
            ),
        ),
    ];
    if let Some(tls) = &r.tls {
        details.push((
            "TLS".into(),
            format!(
                "{}, {}, {}; ALPN {}; {} handshakes, {} resumed",
                tls.version,
                tls.cipher,
                tls.group,
                if tls.alpn.is_empty() {
                    "none"
                } else {
                    &tls.alpn
                },
                tls.handshakes,
                tls.resumed
            ),
        ));
    }
    if let Some(h) = &r.http2 {
        details.push((
            "HTTP/2".into(),
            format!(
                "up to {} streams per connection (server allows {}), {} GOAWAYs, {} retried, {} reset",
                h.streams_peak,
                h.server_max_streams
                    .map_or("any number".to_string(), |n| n.to_string()),
                h.goaways,
                h.retried,
                h.resets.total()
            ),
        ));
    }
    if let Some(c) = &run.command {
        details.push(("Command".into(), c.clone()));
    }
    let mut status = String::new();
    for (code, n) in &r.status {
        let _ = write!(status, "{code}: {n}  ");
    }
    details.push(("Status codes".into(), status.trim_end().to_string()));
    details.push((
        "Errors".into(),
        format!(
            "connect {}, read {}, write {}, timeout {}, parse {}, tls {}, reset {}",
            r.errors.connect,
            r.errors.read,
            r.errors.write,
            r.errors.timeout,
            r.errors.parse,
            r.errors.tls,
            r.errors.reset
        ),
    ));
    details.push((
        "Connections opened".into(),
        format!("{} ({:.2}/s)", r.connections_opened, r.connects_per_sec),
    ));
    let targets: Vec<Value> = r
        .targets
        .iter()
        .map(|t| {
            json!({
                "method": t.method, "url": t.url, "requests": t.requests,
                "status": t.status.iter().map(|(c, n)| format!("{c}: {n}")).collect::<Vec<_>>().join(", "),
                "p50": t.latency_us.p50 as f64 / 1000.0, "p99": t.latency_us.p99 as f64 / 1000.0,
            })
        })
        .collect();
    let search = r.find_max.as_ref().map(|s| {
        json!({
            "rate": s.rate,
            "objectives": s.objectives,
            "steps": s.steps.iter().map(|st| json!({
                "rate": st.rate, "achieved": st.achieved,
                "p50": st.latency_us.p50 as f64 / 1000.0, "p99": st.latency_us.p99 as f64 / 1000.0,
                "pass": st.pass,
            })).collect::<Vec<_>>(),
        })
    });
    json!({
        "label": run.label,
        "headline": {
            "requests": r.requests,
            "requests_per_sec": r.requests_per_sec,
            "duration_s": r.duration_s,
            "errors": r.errors.total(),
            "non_2xx_3xx": r.non_2xx_3xx,
            "p50_ms": l.p50 as f64 / 1000.0,
            "p99_ms": l.p99 as f64 / 1000.0,
            "p99_9_ms": l.p99_9 as f64 / 1000.0,
            "max_ms": l.max as f64 / 1000.0,
            "rate": r.rate.as_ref().map(|x| json!({"requested": x.requested, "achieved": x.achieved})),
        },
        "text": text,
        "timeline": timeline,
        "spectrum": spectrum(&r.latency_histogram),
        "spectrum_uncorrected": if r.rate.is_some() { spectrum(&r.uncorrected_histogram) } else { Value::Null },
        "details": details,
        "targets": targets,
        "search": search,
    })
}

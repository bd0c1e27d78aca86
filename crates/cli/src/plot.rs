//! `--plot FILE.svg`: the latency percentile spectrum, log-scaled as
//! HdrHistogram's plotter draws it, above requests/s over time.

use plotters::prelude::*;
use urk_engine::Report;

/// Percentiles on a log axis: x = 1/(1-p), so 90% is 10, 99% is 100, ...
fn spectrum(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
    h.iter_quantiles(5)
        .map(|v| {
            (
                1.0 / (1.0 - v.quantile_iterated_to()).max(1e-6),
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .filter(|(x, _)| x.is_finite())
        .collect()
}

pub fn write(path: &str, r: &Report) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::new(path, (1000, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(480);

    let corrected = spectrum(&r.latency_histogram);
    let uncorrected = spectrum(&r.uncorrected_histogram);
    let x_max = corrected.iter().map(|p| p.0).fold(10.0, f64::max) * 2.0;
    let y_max = corrected
        .iter()
        .chain(&uncorrected)
        .map(|p| p.1)
        .fold(0.001, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("Latency by percentile: {}", r.url),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1.0..x_max).log_scale(), 0.0..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| format!("{}%", 100.0 - 100.0 / x))
        .draw()
        .map_err(|e| err(&e))?;
    let label = if r.rate.is_some() {
        "corrected (from intended send)"
    } else {
        "latency"
    };
    chart
        .draw_series(LineSeries::new(corrected, &BLUE))
        .map_err(|e| err(&e))?
        .label(label)
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    if r.rate.is_some() {
        chart
            .draw_series(LineSeries::new(uncorrected, &RED))
            .map_err(|e| err(&e))?
            .label("uncorrected (from actual send)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;

    // Whole seconds only: the last interval is usually cut short by the stop.
    let whole = r.duration_s.floor() as u32;
    let points: Vec<(f64, f64)> = r
        .timeline
        .iter()
        .filter(|e| e.second < whole.max(1))
        .map(|e| (f64::from(e.second) + 0.5, e.requests as f64))
        .collect();
    let t_max = points.len().max(1) as f64;
    let n_max = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&bottom)
        .caption("Requests per second", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..n_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("requests/s")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(points, &GREEN))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// `--find-max` with `--plot`: latency percentiles against offered rate,
/// one point per step, so the knee shows.
pub fn write_search(path: &str, s: &urk_engine::SearchReport) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut steps = s.steps.clone();
    steps.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let x_max = steps.iter().map(|t| t.rate).fold(1.0, f64::max) * 1.05;
    let y_max = steps
        .iter()
        .map(|t| t.latency_us.p99_9 as f64 / 1000.0)
        .fold(0.001, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Latency against offered rate ({})", s.objectives.join(", ")),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("offered rate (requests/s)")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    type Pick = fn(&urk_engine::LatencySummary) -> u64;
    let lines: [(&str, Pick, RGBColor); 3] = [
        ("p50", |l| l.p50, GREEN),
        ("p99", |l| l.p99, BLUE),
        ("p99.9", |l| l.p99_9, RED),
    ];
    for (name, pick, color) in lines {
        let pts: Vec<(f64, f64)> = steps
            .iter()
            .map(|t| (t.rate, pick(&t.latency_us) as f64 / 1000.0))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(&e))?;
    }
    if let Some(r) = s.rate {
        chart
            .draw_series(LineSeries::new([(r, 0.0), (r, y_max)], BLACK))
            .map_err(|e| err(&e))?
            .label(format!("max rate {r:.0}/s"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

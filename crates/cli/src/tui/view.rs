//! Drawing one frame of the live view from the model.

use std::time::Instant;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Row, Table};
use ratatui::Frame;
use urk_engine::units::{format_count as group, format_time_us};

use super::model::Model;

/// The busy share past which urk says it may be the limit.
const BUSY_WARNING: f64 = 0.9;

/// Narrower than this, the latency table and the counts are stacked
/// instead of side by side.
const SIDE_BY_SIDE: u16 = 110;

pub fn draw(f: &mut Frame, m: &Model, now: Instant) {
    let area = f.area();
    let wide = area.width >= SIDE_BY_SIDE;
    let [top, chart, bottom] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(6),
        Constraint::Length(if wide { 8 } else { 14 }),
    ])
    .areas(area);
    f.render_widget(header(m, now), top);
    let chart = match &m.search {
        Some(s) => {
            let [chart, steps] =
                Layout::vertical([Constraint::Min(6), Constraint::Length(10)]).areas(chart);
            f.render_widget(search(s), steps);
            chart
        }
        None => chart,
    };
    draw_chart(f, m, chart);
    let [first, second] = if wide {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(bottom)
    } else {
        Layout::vertical([Constraint::Length(6), Constraint::Length(8)]).areas(bottom)
    };
    f.render_widget(latency(m), first);
    f.render_widget(counts(m), second);
}

fn header(m: &Model, now: Instant) -> Paragraph<'static> {
    let elapsed = now.duration_since(m.started);
    let total = m.facts.duration;
    let progress = match m.facts.requests {
        Some(n) => format!("{} of {} requests", group(m.totals.0), group(n)),
        None => format!(
            "{} of {}, {} left",
            clock(elapsed.as_secs()),
            clock(total.as_secs()),
            clock(total.saturating_sub(elapsed).as_secs())
        ),
    };
    let state = if m.stopping {
        Span::styled("  stopping...", Style::new().fg(Color::Yellow))
    } else {
        Span::styled(
            "  q stops, with the report",
            Style::new().fg(Color::DarkGray),
        )
    };
    let busy = m.last_whole().map_or(0.0, |(_, s)| s.busy);
    let busy = if busy >= BUSY_WARNING {
        Span::styled(
            format!("urk busy {:.0}%: urk may be the limit", busy * 100.0),
            Style::new().fg(Color::Red),
        )
    } else {
        Span::raw(format!("urk busy {:.0}%", busy * 100.0))
    };
    Paragraph::new(vec![
        Line::from(vec![
            Span::styled("urk ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(m.facts.url.clone()),
            state,
        ]),
        Line::from(vec![
            Span::raw(format!(
                "{progress}  |  {} threads, {} connections  |  {} requests, {} errors  |  ",
                m.facts.threads,
                m.facts.connections,
                group(m.totals.0),
                group(m.totals.1)
            )),
            busy,
        ]),
    ])
    .block(Block::bordered())
}

fn draw_chart(f: &mut Frame, m: &Model, area: Rect) {
    let achieved: Vec<(f64, f64)> = m
        .seconds
        .iter()
        .filter(|(_, s)| s.workers >= m.facts.threads)
        .map(|(i, s)| (f64::from(*i), s.requests as f64))
        .collect();
    let last = achieved.last().map_or(1.0, |p| p.0).max(1.0);
    let offered: Vec<(f64, f64)> = match &m.facts.plan {
        Some(p) => (0..=last as u32)
            .map(|i| {
                let t = std::time::Duration::from_secs(u64::from(i));
                (f64::from(i), p.rate_at(t))
            })
            .collect(),
        None => Vec::new(),
    };
    let top = achieved
        .iter()
        .chain(&offered)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.1;
    let mut sets = vec![Dataset::default()
        .name("achieved")
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(Color::Cyan))
        .data(&achieved)];
    if !offered.is_empty() {
        sets.push(
            Dataset::default()
                .name("offered")
                .marker(Marker::Dot)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Yellow))
                .data(&offered),
        );
    }
    let chart = Chart::new(sets)
        .block(Block::bordered().title(" Requests per second "))
        .x_axis(
            Axis::default()
                .bounds([0.0, last])
                .labels(vec![Line::from("0s"), Line::from(format!("{last:.0}s"))]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(vec![Line::from("0"), Line::from(group(top as u64))]),
        );
    f.render_widget(chart, area);
}

fn latency(m: &Model) -> Table<'static> {
    let qs = [0.5, 0.9, 0.99, 0.999, 1.0];
    let row = |name: &str, h: Option<&hdrhistogram::Histogram<u64>>| {
        let mut cells = vec![name.to_string()];
        for q in qs {
            cells.push(match h.filter(|h| !h.is_empty()) {
                Some(h) => format_time_us(h.value_at_quantile(q) as f64),
                None => "-".into(),
            });
        }
        Row::new(cells)
    };
    let last = m.last_whole();
    let title = match (last, m.facts.corrected) {
        (_, true) => " Latency (corrected: from each request's slot) ",
        _ => " Latency ",
    };
    let rows = vec![
        row("last second", last.map(|(_, s)| &s.latency)),
        row("so far", Some(&m.run)),
    ];
    Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new(vec!["", "p50", "p90", "p99", "p99.9", "max"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(Block::bordered().title(title))
}

/// A capacity search's steps so far, newest last, and its bracket.
fn search(s: &urk_engine::SearchProgress) -> Table<'static> {
    let rate = |r: Option<f64>| r.map_or("-".to_string(), |r| group(r as u64));
    let title = format!(
        " Capacity search: {}  |  passed up to {}, failed from {}{} ",
        s.objectives.join(", "),
        rate(s.passed),
        rate(s.failed),
        s.current
            .map_or(String::new(), |c| format!("  |  now {}/s", group(c as u64)))
    );
    let rows: Vec<Row> = s
        .steps
        .iter()
        .rev()
        .take(8)
        .rev()
        .map(|st| {
            Row::new(vec![
                group(st.rate as u64),
                group(st.achieved as u64),
                format_time_us(st.latency_us.p50 as f64),
                format_time_us(st.latency_us.p99 as f64),
                if st.pass {
                    "pass".to_string()
                } else {
                    format!("fail: {}", st.failed.join(", "))
                },
            ])
            .style(if st.pass {
                Style::new().fg(Color::Green)
            } else {
                Style::new().fg(Color::Red)
            })
        })
        .collect();
    Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(vec!["rate/s", "achieved", "p50", "p99", "verdict"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(Block::bordered().title(title))
}

fn counts(m: &Model) -> Paragraph<'static> {
    let c = m.counts();
    let status: Vec<String> = c
        .status
        .iter()
        .map(|(code, n)| format!("{code}: {}", group(*n)))
        .collect();
    let e = &c.errors;
    let k = &c.connect_errors;
    let mut lines = vec![
        Line::from(format!(
            "status  {}",
            if status.is_empty() {
                "-".into()
            } else {
                status.join("  ")
            }
        )),
        Line::from(format!(
            "errors  connect {} read {} write {} timeout {}",
            e.connect, e.read, e.write, e.timeout
        )),
        Line::from(format!(
            "        parse {} tls {} reset {}",
            e.parse, e.tls, e.reset
        )),
        Line::from(format!(
            "conns   {} open, {} connecting, {} made",
            c.open, c.connecting, c.connects
        )),
        Line::from(format!(
            "failed  refused {} timeout {} ports {} fds {} other {}",
            k.refused, k.timed_out, k.no_local_ports, k.no_descriptors, k.other
        )),
    ];
    if c.handshakes > 0 {
        lines.push(Line::from(format!(
            "tls     {} handshakes",
            group(c.handshakes)
        )));
    }
    Paragraph::new(lines).block(Block::bordered().title(" Responses and connections "))
}

fn clock(s: u64) -> String {
    format!("{:02}:{:02}", s / 60, s % 60)
}

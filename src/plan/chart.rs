//! The plan as an SVG chart: records/s per minute (forecast, and actual when known) under the
//! planned capacity (shards times what a shard takes), hour by hour.

use std::fmt::Write;

use super::forecast::History;
use super::schedule::Plan;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// A polyline's points for `values` (one a minute) on the chart's scales.
fn points(values: impl Iterator<Item = f64>, minutes: usize, top: f64) -> String {
    let (w, h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    values
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", LEFT + w * i as f64 / minutes.max(1) as f64, TOP + h * (1.0 - v / top)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `capacity_per_shard`: user records/s one shard takes.
pub fn svg(plan: &Plan, forecast: &History, actual: Option<&History>, capacity_per_shard: f64) -> String {
    let minutes = forecast.per_minute.len();
    let capacity: Vec<f64> = (0..minutes)
        .map(|m| plan.hours.get(m / 60).map_or(0.0, |h| f64::from(h.shards) * capacity_per_shard))
        .collect();
    let rate = |h: &History| h.per_minute.iter().map(|c| c / 60.0).collect::<Vec<_>>();
    let forecast_rate = rate(forecast);
    let actual_rate = actual.map(rate);
    let top =
        capacity.iter().chain(&forecast_rate).chain(actual_rate.iter().flatten()).copied().fold(1.0, f64::max) * 1.05;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="18">records/s per minute: forecast (blue), actual (grey), planned capacity (red)</text>"#
    );
    // Axes: records/s at 0, half and top; hours along the bottom.
    for share in [0.0, 0.5, 1.0] {
        let y = TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - share);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{:.0}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            top * share
        );
    }
    let hours = minutes / 60;
    let step = (hours / 12).max(1);
    for h in (0..=hours).step_by(step) {
        let x = LEFT + (WIDTH - LEFT - RIGHT) * (h * 60) as f64 / minutes.max(1) as f64;
        let label = model::format_millis(forecast.start_ms + h as i64 * 3_600_000);
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            HEIGHT - BOTTOM + 16.0,
            &label[5..16].replace('T', " ")
        );
    }
    if let Some(actual) = &actual_rate {
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="#999" stroke-width="1" points="{}"/>"##,
            points(actual.iter().copied(), minutes, top)
        );
    }
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/>"##,
        points(forecast_rate.into_iter(), minutes, top)
    );
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#d62728" stroke-width="2" points="{}"/>"##,
        points(capacity.into_iter(), minutes, top)
    );
    out.push_str("</svg>\n");
    out
}

//! A traced request's waterfall, as SVG written directly (plotters has no Gantt chart):
//! one row per span, depth-first, indented by depth; a bar from its start to its end
//! coloured by unit (the driver grey, a unit's calls lighter than its serving), its work
//! dark, the network model's delay and the driver's wait to send hatched; a µs axis below.

use super::super::model::colour;
use super::Chart;
use crate::results::{RunResults, SpanRole, Waterfall, WaterfallPick, WaterfallSpan};
use std::fmt::Write as _;

const WIDTH: f64 = 1100.0;
const LABEL_W: f64 = 300.0;
const ROW_H: f64 = 18.0;
const TOP: f64 = 8.0;
const AXIS_H: f64 = 34.0;
const FONT_PX: f64 = 12.0;
/// Most rows drawn (a wide fan-out's last spans are summed up in one line).
const MOST_ROWS: usize = 60;

/// One waterfall of the page: a cut's median or p99 traced request of an entrypoint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WaterfallChart {
    pub deployment: String,
    pub entrypoint: String,
    pub chart: Chart,
}

/// Every deployment's median and p99 waterfall of each entrypoint at `rate`, an
/// entrypoint's together (the page shows each entrypoint's cuts side by side).
pub fn waterfalls(results: &RunResults, rate: u32) -> Vec<WaterfallChart> {
    let rate = f64::from(rate);
    let mut out = Vec::new();
    for arch in &results.architectures {
        let Some(traces) = &arch.traces else { continue };
        for w in traces.waterfalls.iter().filter(|w| w.rate_rps == rate) {
            let which = match w.pick {
                WaterfallPick::Median => "median",
                WaterfallPick::P99 => "p99",
            };
            out.push(WaterfallChart {
                deployment: arch.label(),
                entrypoint: w.entrypoint.clone(),
                chart: Chart {
                    title: format!(
                        "{}, {}: the {which} traced request ({:.0} µs)",
                        arch.label(),
                        w.entrypoint,
                        w.latency_us
                    ),
                    caption: format!("trace {}", w.trace_id),
                    svg: svg(w),
                },
            });
        }
    }
    let mut entrypoints: Vec<String> = Vec::new();
    for w in &out {
        if !entrypoints.contains(&w.entrypoint) {
            entrypoints.push(w.entrypoint.clone());
        }
    }
    // Stable: within an entrypoint, the deployments keep the run's order.
    out.sort_by_key(|w| entrypoints.iter().position(|e| *e == w.entrypoint));
    out
}

/// The waterfall's SVG.
pub fn svg(w: &Waterfall) -> String {
    let shown = &w.spans[..w.spans.len().min(MOST_ROWS)];
    let hidden = w.spans.len() - shown.len();
    let rows = shown.len() + usize::from(hidden > 0);
    let height = TOP + rows as f64 * ROW_H + AXIS_H;
    let end = w
        .spans
        .iter()
        .map(|s| s.end_us)
        .fold(w.latency_us, f64::max)
        .max(1.0);
    let plot_w = WIDTH - LABEL_W - 16.0;
    let x = |us: f64| LABEL_W + (us / end).clamp(0.0, 1.0) * plot_w;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" font-family="sans-serif" font-size="{FONT_PX}"><defs><pattern id="held" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#fff" fill-opacity="0.7"/></pattern></defs>"##
    );
    for (i, span) in shown.iter().enumerate() {
        let y = TOP + i as f64 * ROW_H;
        row(&mut out, span, y, &x);
    }
    if hidden > 0 {
        let y = TOP + shown.len() as f64 * ROW_H + ROW_H * 0.7;
        let _ = write!(
            out,
            r##"<text x="4" y="{y:.1}" fill="#495057">… {hidden} more spans</text>"##
        );
    }
    axis(&mut out, TOP + rows as f64 * ROW_H, end, &x);
    out.push_str("</svg>");
    out
}

fn row(out: &mut String, span: &WaterfallSpan, y: f64, x: &dyn Fn(f64) -> f64) {
    let (fill, opacity, label) = match span.role {
        SpanRole::Driver => ("#868e96", 1.0, format!("driver: {}", span.name)),
        SpanRole::Server => (
            colour(&span.unit),
            1.0,
            format!("{} {}", span.unit, span.name),
        ),
        SpanRole::Client => (
            colour(&span.unit),
            0.45,
            format!("{} → {}", span.unit, span.name),
        ),
    };
    let indent = 4.0 + 10.0 * span.depth.min(12) as f64;
    let room = ((LABEL_W - indent - 6.0) / (FONT_PX * 0.55)) as usize;
    let label = clip(&label, room);
    let text_y = y + ROW_H * 0.7;
    let _ = write!(
        out,
        r##"<text x="{indent:.1}" y="{text_y:.1}" fill="#212529">{}</text>"##,
        escape(&label)
    );
    let (a, b) = (x(span.start_us), x(span.end_us).max(x(span.start_us) + 1.0));
    let (top, h) = (y + 3.0, ROW_H - 6.0);
    let stroke = if span.error {
        r##" stroke="#c92a2a" stroke-width="2""##
    } else {
        ""
    };
    let _ = write!(
        out,
        r##"<rect x="{a:.1}" y="{top:.1}" width="{:.1}" height="{h:.1}" fill="{fill}" fill-opacity="{opacity}"{stroke}><title>{} — {:.0}–{:.0} µs</title></rect>"##,
        b - a,
        escape(&label),
        span.start_us,
        span.end_us
    );
    for [from, until] in &span.shaded {
        let (c, d) = (x(*from), x(*until));
        if d - c < 0.3 {
            continue;
        }
        let paint = match span.role {
            SpanRole::Server => r##"fill="#000" fill-opacity="0.35""##,
            _ => r##"fill="url(#held)""##,
        };
        let _ = write!(
            out,
            r##"<rect x="{c:.1}" y="{top:.1}" width="{:.1}" height="{h:.1}" {paint}/>"##,
            d - c
        );
    }
}

/// A µs axis under the rows, ticked at a 1-2-5 step.
fn axis(out: &mut String, y: f64, end: f64, x: &dyn Fn(f64) -> f64) {
    let _ = write!(
        out,
        r##"<line x1="{LABEL_W}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#495057"/>"##,
        x(end)
    );
    let step = nice_step(end / 6.0);
    let mut tick = 0.0;
    while tick <= end + step * 1e-6 {
        let tx = x(tick);
        let _ = write!(
            out,
            r##"<line x1="{tx:.1}" y1="{y:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#495057"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#495057">{tick:.0}</text>"##,
            y + 4.0,
            y + 17.0
        );
        tick += step;
    }
    let _ = write!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#495057">µs from the intended send time</text>"##,
        x(end),
        y + 31.0
    );
}

/// The 1-2-5 step at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn clip(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let kept: String = text.chars().take(chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(role: SpanRole, depth: usize, start: f64, end: f64) -> WaterfallSpan {
        WaterfallSpan {
            unit: if role == SpanRole::Driver {
                "grainbench-driver"
            } else {
                "a<b>"
            }
            .into(),
            name: "/op/x".into(),
            role,
            depth,
            start_us: start,
            end_us: end,
            shaded: vec![[start + 1.0, start + 5.0]],
            error: false,
        }
    }

    #[test]
    fn a_row_per_span_with_its_shading_and_an_axis() {
        let w = Waterfall {
            entrypoint: "buy".into(),
            rate_rps: 50.0,
            pick: WaterfallPick::Median,
            trace_id: "ab".into(),
            latency_us: 100.0,
            spans: vec![
                span(SpanRole::Driver, 0, 0.0, 100.0),
                span(SpanRole::Server, 1, 10.0, 90.0),
                span(SpanRole::Client, 2, 20.0, 80.0),
            ],
        };
        let svg = svg(&w);
        assert_eq!(svg.matches("<title>").count(), 3, "one bar per span");
        assert!(svg.contains("url(#held)"), "the client's hold is hatched");
        assert!(
            svg.contains(r##"fill="#000" fill-opacity="0.35""##),
            "the work is dark"
        );
        assert!(svg.contains("a&lt;b&gt; /op/x"), "labels are escaped");
        assert!(svg.contains(">100</text>"), "the axis reaches the end");
        assert_eq!(nice_step(17.0), 20.0);
        assert_eq!(nice_step(0.3), 1.0);
    }

    #[test]
    fn a_wide_fan_out_is_cut_at_the_row_limit() {
        let mut w = Waterfall {
            entrypoint: "buy".into(),
            rate_rps: 50.0,
            pick: WaterfallPick::P99,
            trace_id: "ab".into(),
            latency_us: 100.0,
            spans: vec![span(SpanRole::Driver, 0, 0.0, 100.0)],
        };
        w.spans
            .extend((0..100).map(|i| span(SpanRole::Server, 1, i as f64, 100.0)));
        let svg = svg(&w);
        assert_eq!(svg.matches("<title>").count(), MOST_ROWS);
        assert!(svg.contains("… 41 more spans"));
    }
}

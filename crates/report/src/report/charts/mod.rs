//! The report's charts, drawn with plotters' SVG backend into strings (no fonts or files
//! needed) and inlined in the page. A chart whose data this run did not measure is `None`,
//! and the page says so instead of drawing an empty frame.

mod bars;
mod draw;
mod faults;
pub mod waterfall;

pub use faults::FaultCharts;

use bars::{bar_chart, Bar};
use draw::{line_chart, log_y_chart, rgb, short_number, IntoRgb, Series};

use super::model::{colour, valid_step_at, ReportModel};
use crate::analysis::Analysis;
use crate::results::{decode_histogram, ArchitectureResult, RunResults, StepMode};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 340;
const FONT: &str = "sans-serif";
/// Chart text size asked of plotters, which writes 0.8 of it as the SVG's font size: a
/// chart is drawn 640 wide and shown about 530 wide in a 1200 px window (two per row), so
/// 17 here is 13.6 in the SVG and about 11.3 px on screen.
const LABEL_PX: u32 = 17;

/// One titled chart, as inline SVG. Latency axes are logarithmic.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub title: String,
    pub caption: String,
    pub svg: String,
}

/// Every chart of the page; empty lists and `None` mean "not measured in this run".
#[derive(Debug, Clone, Default, Serialize)]
pub struct Charts {
    pub spectrum: Option<Chart>,
    pub rate_curve: Option<Chart>,
    pub timelines: Vec<Chart>,
    pub hops: Option<Chart>,
    pub deploy: Vec<Chart>,
    pub redeploy: Option<Chart>,
    /// p99 against CPU per request, one point per cut, the front joined.
    pub front: Option<Chart>,
    /// What one hop adds, per cut, beside this machine's floor.
    pub ledger: Option<Chart>,
    /// Per fault: success ratio and p99 per second of every cut, the fault shaded.
    pub faults: Vec<FaultCharts>,
    /// Under `--trace`: each cut's median and p99 traced request of each entrypoint.
    pub waterfalls: Vec<waterfall::WaterfallChart>,
}

/// Draws every chart of the analysed run, at the comparison rate and with the summaries,
/// front and ledger the analysis computed (never recomputed here).
pub fn draw(analysis: &Analysis, model: &ReportModel) -> Charts {
    let (results, rate) = (analysis.results, analysis.rate);
    Charts {
        spectrum: rate.and_then(|rate| spectrum(results, rate)),
        rate_curve: rate_curve(analysis),
        timelines: timelines(results),
        hops: hops(results, rate),
        deploy: deploy(results, rate),
        redeploy: redeploy(results),
        front: model.front.as_ref().and_then(front),
        ledger: model
            .ledger
            .as_ref()
            .zip(analysis.hop_costs.as_ref())
            .and_then(|(l, c)| ledger(l, c)),
        faults: faults::faults(results),
        waterfalls: model
            .traces
            .as_ref()
            .map_or_else(Vec::new, |t| waterfall::waterfalls(results, t.rate)),
    }
}

/// "Nines" of a quantile: 0.9 → 1, 0.99 → 2, 0.999 → 3.
fn nines(q: f64) -> f64 {
    -(1.0 - q).log10()
}

fn spectrum(results: &RunResults, rate: u32) -> Option<Chart> {
    let quantiles = [0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999];
    let series: Vec<Series> = results
        .architectures
        .iter()
        .filter_map(|a| {
            let step = valid_step_at(a, rate)?;
            let h = decode_histogram(&step.histograms.corrected).ok()?;
            let mut points: Vec<(f64, f64)> = quantiles
                .iter()
                .map(|&q| (nines(q), h.value_at_quantile(q) as f64 / 1e3))
                .collect();
            points.push((4.5, h.max() as f64 / 1e3));
            Some(Series {
                name: a.label(),
                colour: rgb(colour(a.label())),
                points,
                thin: false,
                bars: Vec::new(),
            })
        })
        .collect();
    let svg = line_chart(&series, "percentile", "latency (ms, log)", |x| {
        match (x * 10.0).round() as i64 {
            3 => "p50".into(),
            10 => "p90".into(),
            20 => "p99".into(),
            30 => "p99.9".into(),
            40 => "p99.99".into(),
            45 => "max".into(),
            _ => String::new(),
        }
    })?;
    Some(Chart {
        title: format!("Latency percentile spectrum at {rate} req/s"),
        caption: "Corrected latency (from intended send time) of all entrypoints together, from the HdrHistograms; x axis in nines (p90, p99, p99.9, …), the last point is the maximum.".into(),
        svg,
    })
}

fn rate_curve(analysis: &Analysis) -> Option<Chart> {
    let mut series = Vec::new();
    for (a, summary) in analysis
        .results
        .architectures
        .iter()
        .zip(&analysis.summaries)
    {
        if summary.len() < 2 {
            continue;
        }
        let name = a.label();
        for (label, thin) in [("p99", false), ("p50", true)] {
            let pick = |s: &crate::results::RateSummary| if thin { s.p50_us } else { s.p99_us };
            series.push(Series {
                name: format!("{name} {label}"),
                colour: rgb(colour(&name)),
                points: summary
                    .iter()
                    .map(|s| (f64::from(s.target_rps), pick(s).point / 1e3))
                    .collect(),
                thin,
                bars: summary
                    .iter()
                    .filter_map(|s| {
                        let (low, high) = pick(s).interval()?;
                        // A low end at or below zero cannot sit on a log axis: the bar is
                        // cut at a tenth of the point (the table gives the whole interval).
                        let low = low.max(pick(s).point / 10.0);
                        Some((f64::from(s.target_rps), low / 1e3, high / 1e3))
                    })
                    .collect(),
            });
        }
    }
    if series.is_empty() {
        return None;
    }
    let svg = line_chart(&series, "offered rate (req/s)", "latency (ms, log)", |x| {
        format!("{x:.0}")
    })?;
    Some(Chart {
        title: "p50 and p99 against offered rate".into(),
        caption: "Thick lines p99, thin lines p50: geometric means over the valid rounds, with error bars for their 95 % intervals. Where a curve bends up, the architecture nears saturation (the knee).".into(),
        svg,
    })
}

fn timelines(results: &RunResults) -> Vec<Chart> {
    let Some(first) = results.architectures.first() else {
        return Vec::new();
    };
    first
        .steps
        .iter()
        .filter(|s| s.mode == StepMode::Open && s.round == 0)
        .filter_map(|step| {
            let rate = step.target_rps;
            let series: Vec<Series> = results
                .architectures
                .iter()
                .filter_map(|a| {
                    let s = a.steps.iter().find(|s| {
                        s.mode == StepMode::Open && s.round == 0 && s.target_rps == rate
                    })?;
                    let name = a.label();
                    Some(Series {
                        name: name.clone(),
                        colour: rgb(colour(&name)),
                        points: s
                            .timeline
                            .iter()
                            .filter(|t| t.ok > 0)
                            .map(|t| (t.second as f64, t.p99_us.max(1) as f64 / 1e3))
                            .collect(),
                        thin: false,
                        bars: Vec::new(),
                    })
                })
                .collect();
            let warmup = step.warmup_s;
            let svg = line_chart(&series, "second of the step", "p99 per second (ms, log)", |x| format!("{x:.1}"))?;
            Some(Chart {
                title: format!("Per-second p99 at {rate} req/s (round 1)"),
                caption: format!("Each point is one second of the step by intended send time; the first {warmup:.1} s are warm-up (not in the other figures)."),
                svg,
            })
        })
        .collect()
}

/// A bar: label, value, colour, and an optional lighter part stacked on top.
fn hops(results: &RunResults, rate: Option<u32>) -> Option<Chart> {
    let rate = rate.or_else(|| {
        results
            .architectures
            .first()?
            .steps
            .first()
            .map(|s| s.target_rps)
    })?;
    let mut bars = Vec::new();
    let first = results
        .architectures
        .first()?
        .steps
        .iter()
        .find(|s| s.target_rps == rate)?;
    for entry in &first.entrypoints {
        for a in &results.architectures {
            let Some(e) = a.steps.iter().find(|s| s.target_rps == rate).and_then(|s| {
                s.entrypoints
                    .iter()
                    .find(|x| x.entrypoint == entry.entrypoint)
            }) else {
                continue;
            };
            bars.push(Bar {
                label: format!("{} {}", entry.entrypoint, a.label()),
                value: e.hops.mean_service,
                stacked: e.hops.mean_state,
                colour: rgb(colour(a.label())),
                interval: None,
            });
        }
    }
    let svg = bar_chart(&bars, "hops per request")?;
    Some(Chart {
        title: format!("Hops per request at {rate} req/s"),
        caption: "Measured from response headers: solid = service hops (driver → entry included), light = state hops (nano units to their services' state units).".into(),
        svg,
    })
}

fn deploy(results: &RunResults, rate: Option<u32>) -> Vec<Chart> {
    let deployed: Vec<_> = results
        .architectures
        .iter()
        .filter(|a| a.deploy.is_some())
        .collect();
    if deployed.is_empty() {
        return Vec::new();
    }
    let bars = |f: &dyn Fn(&ArchitectureResult) -> (f64, f64)| -> Vec<Bar> {
        deployed
            .iter()
            .map(|a| {
                let (value, stacked) = f(a);
                Bar {
                    label: a.label(),
                    value,
                    stacked,
                    colour: rgb(colour(a.label())),
                    interval: None,
                }
            })
            .collect()
    };
    // The same estimate as the tables: the mean over the rounds at the verdict rate.
    let cpu = |a: &ArchitectureResult| {
        rate.and_then(|r| super::model::units_cpu(a, r))
            .map_or(0.0, |c| c.point)
    };
    // Title, axis, caption (the axis's words unless they need more), bars.
    let charts: [(&str, &str, &str, Vec<Bar>); 4] = [
        (
            "Deployable units",
            "units (light = state units)",
            "",
            bars(&|a| {
                let d = a
                    .deploy
                    .as_ref()
                    .map_or((0, 0), |d| (d.service_units, d.state_units));
                (d.0 as f64, d.1 as f64)
            }),
        ),
        (
            "Idle memory",
            "RSS after readiness (MiB)",
            "",
            bars(&|a| {
                (
                    a.deploy
                        .as_ref()
                        .map_or(0.0, |d| d.idle_rss_bytes_total as f64 / 1048576.0),
                    0.0,
                )
            }),
        ),
        (
            "Cold start",
            "spawn → all ready, median (ms)",
            "",
            bars(&|a| {
                (
                    a.deploy.as_ref().map_or(0.0, |d| d.cold_start.median_ms),
                    0.0,
                )
            }),
        ),
        (
            "Unit CPU per request",
            "units' CPU µs per request",
            "µs of CPU, all units, at the verdict rate (geometric mean over the rounds)",
            bars(&|a| (cpu(a), 0.0)),
        ),
    ];
    charts
        .into_iter()
        .filter_map(|(title, y, caption, bars)| {
            Some(Chart {
                title: title.into(),
                caption: if caption.is_empty() { y } else { caption }.into(),
                svg: bar_chart(&bars, y)?,
            })
        })
        .collect()
}

fn redeploy(results: &RunResults) -> Option<Chart> {
    let mut bars = Vec::new();
    for a in &results.architectures {
        let Some(r) = a.deploy.as_ref().and_then(|d| d.redeploy.as_ref()) else {
            continue;
        };
        let c = rgb(colour(a.label()));
        bars.push(Bar {
            label: format!("{} before", a.label()),
            value: r.latency_before_us.p99 as f64 / 1e3,
            stacked: 0.0,
            colour: c.mix(0.5).to_rgba().into_rgb(),
            interval: None,
        });
        bars.push(Bar {
            label: format!("{} during", a.label()),
            value: r.latency_during_us.p99 as f64 / 1e3,
            stacked: 0.0,
            colour: c,
            interval: None,
        });
    }
    if bars.is_empty() {
        return None;
    }
    Some(Chart {
        title: "Redeploy under load: p99 before and during".into(),
        caption: "p99 of requests due before the redeploy and during its window (ms); failed requests are in the table.".into(),
        svg: bar_chart(&bars, "p99 (ms)")?,
    })
}

fn front(front: &super::model::front::Front) -> Option<Chart> {
    let points: Vec<(&super::model::front::FrontRow, f64)> = front
        .rows
        .iter()
        .filter_map(|r| Some((r, r.cpu.as_ref()?.point)))
        .collect();
    if points.len() < 2 {
        return None;
    }
    let ms = |us: f64| us / 1e3;
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
    for (r, cpu) in &points {
        x0 = x0.min(*cpu);
        x1 = x1.max(*cpu);
        // The axis follows the points; an interval reaching towards 0 is cut at its edge.
        y0 = y0.min(ms(r.p99.point));
        y1 = y1.max(ms(r.p99.high.unwrap_or(r.p99.point)));
    }
    let x_pad = ((x1 - x0) * 0.12).max(1.0);
    let (y0, y1) = ((y0 * 0.5).max(0.001), (y1 * 1.4).max(y0 * 2.0));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let x = (x0 - x_pad).max(0.0)..x1 + x_pad;
        let y_desc = format!("p99 ms at {} req/s", front.rate);
        let descs = ("units' CPU µs per request", y_desc.as_str());
        let mut chart = log_y_chart(&root, x, (y0, y1), descs, &|v: &f64| short_number(*v))?;
        let mut on_front: Vec<(f64, f64)> = points
            .iter()
            .filter(|(r, _)| r.on_front)
            .map(|(r, cpu)| (*cpu, ms(r.p99.point)))
            .collect();
        on_front.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(on_front, BLACK.mix(0.5).stroke_width(2)))
            .ok()?;
        for (r, cpu) in &points {
            let c = rgb(&r.colour);
            let y = ms(r.p99.point);
            if let Some((low, high)) = r.p99.interval() {
                chart
                    .draw_series(std::iter::once(ErrorBar::new_vertical(
                        *cpu,
                        ms(low).max(y0),
                        y,
                        ms(high),
                        c.stroke_width(2),
                        8,
                    )))
                    .ok()?;
            }
            let marker = if r.on_front { 6 } else { 4 };
            chart
                .draw_series(std::iter::once(Circle::new((*cpu, y), marker, c.filled())))
                .ok()?;
        }
        let labels = points.iter().map(|(r, cpu)| {
            let at = chart.backend_coord(&(*cpu, ms(r.p99.point)));
            (at, format!("{} ({}u)", r.arch, r.service_units))
        });
        let style = (FONT, LABEL_PX)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for ((x, y), text) in place_labels(labels.collect()) {
            root.draw(&Text::new(text, (x, y), style.clone())).ok()?;
        }
        root.present().ok()?;
    }
    Some(Chart {
        title: format!("Cuts at {} req/s: p99 against CPU per request", front.rate),
        caption: "One point per cut, labelled with its service units (u); bars: 95 % interval of the p99 over the rounds. The grey line joins the front: the cuts no other cut beats on p99, CPU per request and units at once (geometric means over the rounds).".into(),
        svg,
    })
}

/// Where each point's label goes, in pixels: right of its point (left where it would leave
/// the chart), moved down just enough that no two labels whose spans meet overlap.
fn place_labels(mut labels: Vec<((i32, i32), String)>) -> Vec<((i32, i32), String)> {
    labels.sort_by_key(|((_, y), _)| *y);
    let line = (f64::from(LABEL_PX) * 0.8).ceil() as i32 + 3;
    let mut placed: Vec<(i32, i32, i32)> = Vec::new();
    let mut out = Vec::new();
    for ((px, py), text) in labels {
        let w = draw::text_px(text.chars().count()) as i32;
        let x0 = if px + 10 + w < WIDTH as i32 - 4 {
            px + 10
        } else {
            px - 10 - w
        };
        let mut y = py;
        // Each step moves the label below one it meets, so y only grows and this ends.
        while let Some(&(_, _, above)) = placed
            .iter()
            .find(|(a0, a1, ay)| *a0 < x0 + w && x0 < *a1 && (ay - y).abs() < line)
        {
            y = above + line;
        }
        placed.push((x0, x0 + w, y));
        out.push(((x0, y), text));
    }
    out
}

/// Per cut, the p50 latency and the units' CPU one hop adds (with their intervals), beside
/// the bare hop's round trip and the least hop's CPU.
fn ledger(
    ledger: &super::model::ledger::HopLedger,
    costs: &crate::analysis::ledger::HopCosts,
) -> Option<Chart> {
    let mut bars = Vec::new();
    for row in &ledger.rows {
        let colour = rgb(colour(&row.cut));
        let figures = [
            ("p50", &row.latency_us, colour),
            ("CPU", &row.cpu_us, colour.mix(0.5).to_rgba().into_rgb()),
        ];
        for (what, estimate, colour) in figures {
            if let Some(e) = estimate {
                bars.push(Bar {
                    label: format!("{} {what}", row.cut),
                    value: e.point.max(0.0),
                    stacked: 0.0,
                    colour,
                    interval: e.interval(),
                });
            }
        }
    }
    let grey = rgb("#868e96");
    let floors = [
        ("bare hop", costs.round_trip_floor_us),
        ("least hop CPU", costs.cpu_floor_us),
        ("least exchange CPU", costs.exchange_floor_us),
        ("across cores CPU", costs.across_floor_us),
    ];
    for (label, floor) in floors {
        if let Some(floor) = floor {
            bars.push(Bar {
                label: label.into(),
                value: floor.point,
                stacked: 0.0,
                colour: grey,
                interval: floor.interval(),
            });
        }
    }
    let svg = bar_chart(&bars, "µs per hop")?;
    Some(Chart {
        svg,
        title: format!(
            "What one hop adds at {} req/s ({})",
            ledger.rate, ledger.transport
        ),
        caption: "Per cut, against the cut of its mode with the fewest hops: the p50 latency (dark) and the units' CPU per request (light) one more hop adds, arithmetic means over the rounds (a difference can be near zero) with 95 % intervals; grey, this machine's floor from the same run, measured at the start of every round (geometric means with 95 % intervals): the bare hop's round trip p50, the CPU one request costs the least client and the least server, and of it the least exchange's (without the least client's timer wake-up), and the least hop with its two ends pinned to two cores (across cores).".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three cuts at one point (monolith over three transports) and one at the right
    /// edge: no two labels overlap, and the edge's stays inside the chart.
    #[test]
    fn labels_of_points_that_meet_do_not_overlap() {
        let labels = vec![
            ((100, 200), "monolith (1u)".to_string()),
            ((101, 201), "monolith+grpc (1u)".to_string()),
            ((100, 199), "monolith+binary (1u)".to_string()),
            ((WIDTH as i32 - 20, 50), "nano+grpc (17u)".to_string()),
        ];
        let placed = place_labels(labels);
        let line = (f64::from(LABEL_PX) * 0.8).ceil() as i32;
        for (i, ((x, y), text)) in placed.iter().enumerate() {
            let w = draw::text_px(text.chars().count()) as i32;
            assert!(*x >= 0 && x + w <= WIDTH as i32, "{text} at {x}");
            for ((x2, y2), text2) in &placed[i + 1..] {
                let w2 = draw::text_px(text2.chars().count()) as i32;
                let apart = x + w <= *x2 || x2 + w2 <= *x || (y - y2).abs() >= line;
                assert!(apart, "{text} and {text2} overlap");
            }
        }
    }

    #[test]
    fn nines_map_percentiles_to_a_log_axis() {
        assert!((nines(0.9) - 1.0).abs() < 1e-9);
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
    }
}

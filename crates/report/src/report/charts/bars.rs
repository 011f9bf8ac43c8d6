//! Bar charts: one bar per figure, an interval's whisker on it, and its label upright
//! above it (or level, when few enough fit side by side).

use super::draw::{short_number, IntoRgb};
use super::{FONT, HEIGHT, LABEL_PX, WIDTH};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub(super) struct Bar {
    pub(super) label: String,
    pub(super) value: f64,
    pub(super) stacked: f64,
    pub(super) colour: RGBColor,
    /// A 95 % interval drawn as a whisker on the bar.
    pub(super) interval: Option<(f64, f64)>,
}

/// The plot's height in a bar chart, pixels: the chart less its margins and x label area.
const BAR_PLOT_PX: f64 = HEIGHT as f64 - 2.0 * 12.0 - 12.0;

/// How far above the tallest of `bars` (`top`) the axis reaches so that every upright
/// label fits above its bar (a label is as tall as it is long); at most 4× (very long
/// labels over tall bars then reach the frame rather than flatten every bar).
fn upright_headroom(bars: &[Bar], top: f64) -> f64 {
    bars.iter()
        .map(|b| {
            let end = (b.value + b.stacked).max(b.interval.map_or(0.0, |i| i.1));
            // Upright labels measured as the browser draws them (about 0.62 em a character:
            // `text_px`'s half an em left the longest above the plot, cut off).
            let label = b.label.chars().count() as f64 * f64::from(LABEL_PX) * 0.62;
            let room = BAR_PLOT_PX - 8.0 - label;
            end * BAR_PLOT_PX / room.max(BAR_PLOT_PX / 4.0) / top
        })
        .fold(1.15, f64::max)
}

/// Most bars whose labels fit side by side above them.
const MAX_LEVEL_LABELS: usize = 8;

pub(super) fn bar_chart(bars: &[Bar], y_label: &str) -> Option<String> {
    if bars.is_empty() {
        return None;
    }
    let top = bars
        .iter()
        .map(|b| (b.value + b.stacked).max(b.interval.map_or(0.0, |i| i.1)))
        .fold(0.0, f64::max);
    if top <= 0.0 {
        return None;
    }
    // Many bars: their labels stand upright above them (side by side they would overlap),
    // and the axis leaves room for them.
    let upright = bars.len() > MAX_LEVEL_LABELS;
    let headroom = if upright {
        upright_headroom(bars, top)
    } else {
        1.15
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let n = bars.len();
        // Counts (hops, units) get integer ticks.
        let integer = bars
            .iter()
            .all(|b| b.value.fract() == 0.0 && b.stacked.fract() == 0.0);
        let ticks = if integer {
            ((top * headroom) as usize + 1).min(11)
        } else {
            10
        };
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(12)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..n as f64, 0.0..top * headroom)
            .ok()?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(ticks)
            .y_label_formatter(&|v: &f64| {
                if integer {
                    format!("{v:.0}")
                } else {
                    short_number(*v)
                }
            })
            .y_desc(y_label)
            .label_style((FONT, LABEL_PX))
            .axis_desc_style((FONT, LABEL_PX))
            .draw()
            .ok()?;
        for (i, bar) in bars.iter().enumerate() {
            let x0 = i as f64 + 0.15;
            let x1 = i as f64 + 0.85;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, bar.value)],
                    bar.colour.filled(),
                )))
                .ok()?;
            let font = (FONT, LABEL_PX).into_font();
            let label_style = if upright {
                font.transform(FontTransform::Rotate270)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center))
            } else {
                font.color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom))
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    bar.label.clone(),
                    (
                        i as f64 + 0.5,
                        (bar.value + bar.stacked).max(bar.interval.map_or(0.0, |i| i.1))
                            + if upright { top * headroom * 0.02 } else { 0.0 },
                    ),
                    label_style,
                )))
                .ok()?;
            if let Some((low, high)) = bar.interval {
                let x = i as f64 + 0.5;
                chart
                    .draw_series(std::iter::once(ErrorBar::new_vertical(
                        x,
                        low.max(0.0),
                        bar.value,
                        high,
                        BLACK.stroke_width(1),
                        8,
                    )))
                    .ok()?;
            }
            if bar.stacked > 0.0 {
                let light = bar.colour.mix(0.45).to_rgba().into_rgb();
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, bar.value), (x1, bar.value + bar.stacked)],
                        light.filled(),
                    )))
                    .ok()?;
            }
        }
        root.present().ok()?;
    }
    Some(svg)
}

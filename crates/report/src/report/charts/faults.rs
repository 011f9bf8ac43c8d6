//! The fault section's charts: per second of each fault step, the success ratio (linear)
//! and the p99 of the successful requests (log) of every cut, the fault's window shaded.

use super::draw::{draw_lines_legend_at, line_chart_with, rgb, shade, Series};
use super::{Chart, FONT, HEIGHT, LABEL_PX, WIDTH};
use crate::report::model::colour;
use crate::results::{FaultResult, RunResults};
use plotters::prelude::*;
use serde::Serialize;

/// The two charts of one fault.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FaultCharts {
    pub success: Option<Chart>,
    pub p99: Option<Chart>,
}

/// One pair per fault, in the run's order (the first cut with faults sets it).
pub fn faults(results: &RunResults) -> Vec<FaultCharts> {
    let count = results
        .architectures
        .iter()
        .map(|a| a.faults.len())
        .max()
        .unwrap_or(0);
    (0..count).map(|i| fault_charts(results, i)).collect()
}

fn fault_charts(results: &RunResults, index: usize) -> FaultCharts {
    let steps: Vec<(String, &FaultResult)> = results
        .architectures
        .iter()
        .filter_map(|a| Some((a.label(), a.faults.get(index)?)))
        .collect();
    let Some((_, first)) = steps.first() else {
        return FaultCharts::default();
    };
    // The widest window over the cuts: each injection's clock differs by a few ms.
    let window = steps
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(from, to), (_, f)| {
            (from.min(f.started_s), to.max(f.ended_s))
        });
    let series = |value: &dyn Fn(&crate::results::FaultSecond) -> Option<f64>| -> Vec<Series> {
        steps
            .iter()
            .map(|(name, f)| Series {
                name: name.clone(),
                colour: rgb(colour(name)),
                // Each second's point sits at its middle.
                points: f
                    .timeline
                    .iter()
                    .filter_map(|t| Some((t.t_s + 0.5, value(t)?)))
                    .collect(),
                thin: false,
                bars: Vec::new(),
            })
            .collect()
    };
    let fault = &first.fault;
    let success = series(&|t| t.success_ratio().map(|r| r * 100.0));
    let p99 = series(&|t| t.p99_us.map(|us| us.max(1) as f64 / 1e3));
    FaultCharts {
        success: success_chart(&success, window).map(|svg| Chart {
            title: format!("Success ratio per second under {fault}"),
            caption: format!("Requests that succeeded, per second of the measured window by intended send time; shaded: the fault, {:.2} s to {:.2} s (a kill lasts until its replacement is ready and routed).", window.0, window.1),
            svg,
        }),
        p99: line_chart_with(&p99, "second of the measured window", "p99 of successes (ms, log)", |x| format!("{x:.1}"), Some(window)).map(|svg| Chart {
            title: format!("p99 per second under {fault}"),
            caption: "p99 of the requests that succeeded in each second (failed ones are in the success ratio); shaded: the fault.".into(),
            svg,
        }),
    }
}

/// A linear 0–100 % chart of `series` with `window` shaded.
fn success_chart(series: &[Series], window: (f64, f64)) -> Option<String> {
    let x1 = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(0.0f64, f64::max)
        + 0.5;
    if series.iter().all(|s| s.points.is_empty()) {
        return None;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..x1, 0.0..105.0)
            .ok()?;
        chart
            .configure_mesh()
            .x_desc("second of the measured window")
            .y_desc("requests that succeeded (%)")
            .x_label_formatter(&|x: &f64| format!("{x:.0}"))
            .label_style((FONT, LABEL_PX))
            .axis_desc_style((FONT, LABEL_PX))
            .draw()
            .ok()?;
        shade(&mut chart, window, (0.0, 105.0))?;
        // Success sits near 100 % most of the time: the legend goes below it.
        draw_lines_legend_at(&mut chart, series, Some(SeriesLabelPosition::LowerLeft))?;
        root.present().ok()?;
    }
    Some(svg)
}

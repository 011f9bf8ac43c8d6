//! The drawing under every chart: line charts on a log axis (each series wider than those
//! drawn over it and marked with its own shape, so series with equal values stay visible),
//! their legend, and the tick labels every chart uses (bar charts are [`super::bars`]).

use super::{FONT, HEIGHT, LABEL_PX, WIDTH};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub(super) fn rgb(hex: &str) -> RGBColor {
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    RGBColor(byte(1), byte(3), byte(5))
}

pub(super) struct Series {
    pub(super) name: String,
    pub(super) colour: RGBColor,
    pub(super) points: Vec<(f64, f64)>,
    pub(super) thin: bool,
    /// Error bars: x, low, high (a 95 % interval over the rounds).
    pub(super) bars: Vec<(f64, f64, f64)>,
}

pub(super) fn line_chart(
    series: &[Series],
    x_label: &str,
    y_label: &str,
    x_format: impl Fn(&f64) -> String,
) -> Option<String> {
    line_chart_with(series, x_label, y_label, x_format, None)
}

/// A line chart with a log y axis, `shaded` (an x window) drawn under the lines.
pub(super) fn line_chart_with(
    series: &[Series],
    x_label: &str,
    y_label: &str,
    x_format: impl Fn(&f64) -> String,
    shaded: Option<(f64, f64)>,
) -> Option<String> {
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    let bar_ends = series.iter().flat_map(|s| {
        s.bars
            .iter()
            .flat_map(|&(x, low, high)| [(x, low), (x, high)])
    });
    for (x, y) in points.copied().chain(bar_ends).filter(|(_, y)| *y > 0.0) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() || !y0.is_finite() {
        return None;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y0 = (y0 * 0.8).max(0.001);
    let y1 = (y1 * 1.25).max(y0 * 2.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        // The legend has its own panel on the right, off the data however many series.
        let (plot, legend) = root.split_horizontally(WIDTH - legend_width(series));
        let x_pad = (x1 - x0) * 0.03;
        let x = x0 - x_pad..x1 + x_pad;
        let mut chart = log_y_chart(&plot, x, (y0, y1), (x_label, y_label), &x_format)?;
        if let Some(window) = shaded {
            shade(&mut chart, window, (y0, y1))?;
        }
        draw_lines(&mut chart, series)?;
        legend_panel(&legend, series)?;
        root.present().ok()?;
    }
    Some(svg)
}

/// The charts' plot over `x` and a log y axis from `y0` to `y1` (bold and light ticks),
/// on `area`, its mesh drawn: `x_desc` and `y_desc`, x labels by `x_format`, y labels as
/// log ticks.
pub(super) fn log_y_chart<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    x: std::ops::Range<f64>,
    (y0, y1): (f64, f64),
    (x_desc, y_desc): (&str, &str),
    x_format: &dyn Fn(&f64) -> String,
) -> Option<
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, LogYAxis>>,
> {
    let (bold, light) = log_key_points(y0, y1);
    let y_axis = (y0..y1)
        .log_scale()
        .with_key_points(bold)
        .with_light_points(light);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y_axis)
        .ok()?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_format)
        .y_label_formatter(&|v: &f64| log_tick(*v))
        .max_light_lines(LIGHT_LINES)
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, LABEL_PX))
        .draw()
        .ok()?;
    Some(chart)
}

/// A log y axis with its bold and light tick points.
type LogYAxis =
    plotters::coord::combinators::WithKeyPoints<plotters::coord::combinators::LogCoord<f64>>;

/// Text width in SVG pixels of `chars` characters at the label size (an average glyph).
pub(super) fn text_px(chars: usize) -> u32 {
    (chars as f64 * f64::from(LABEL_PX) * 0.5).ceil() as u32
}

/// The width of the legend panel of `series`: a 26 px line sample, a gap and the longest
/// name, within a third of the chart.
fn legend_width(series: &[Series]) -> u32 {
    let longest = series
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    (text_px(longest) + 40).clamp(80, WIDTH / 3)
}

/// The cuts' colours of `series` in order of first appearance: a cut's p50 and p99 share
/// one colour, width and mark.
fn cut_colours(series: &[Series]) -> Vec<RGBColor> {
    let mut cuts: Vec<RGBColor> = Vec::new();
    for s in series {
        if !cuts.contains(&s.colour) {
            cuts.push(s.colour);
        }
    }
    cuts
}

/// One row per series in `area`: its line sample with its mark, then its name.
fn legend_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Series],
) -> Option<()> {
    let cuts = cut_colours(series);
    let row = (LABEL_PX + 6) as i32;
    let style = (FONT, LABEL_PX)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, s) in series.iter().enumerate() {
        let cut = cuts.iter().position(|c| *c == s.colour).unwrap_or(0);
        let width = stroke_width(cut, cuts.len(), s.thin);
        let y = 18 + row * i as i32;
        area.draw(
            &(EmptyElement::at((6, y))
                + PathElement::new(vec![(0, 0), (26, 0)], s.colour.stroke_width(width))
                + Mark::of(cut).element((13, 0), s.colour)),
        )
        .ok()?;
        area.draw(&Text::new(s.name.clone(), (38, y), style.clone()))
            .ok()?;
    }
    Some(())
}

/// Minor grid lines between two labelled ones on a linear axis (more read as a band).
pub(super) const LIGHT_LINES: usize = 1;

/// A log axis's ticks from `low` to `high`: 1, 2 and 5 of every decade (labelled), and 3,
/// 4 and 6 to 9 (grid lines only), so a figure below 1 ms always has a labelled tick near.
pub(super) fn log_key_points(low: f64, high: f64) -> (Vec<f64>, Vec<f64>) {
    let (mut bold, mut light) = (Vec::new(), Vec::new());
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    for decade in first..=last {
        for m in 1..=9 {
            // Divided below 1 so 0.3 is the 0.3 a reader types, not 0.30000000000000004.
            let v = if decade < 0 {
                f64::from(m) / 10f64.powi(-decade)
            } else {
                f64::from(m) * 10f64.powi(decade)
            };
            if v < low || v > high {
                continue;
            }
            if matches!(m, 1 | 2 | 5) {
                bold.push(v);
            } else {
                light.push(v);
            }
        }
    }
    (bold, light)
}

/// A log axis's label: 1, 2 and 5 of every decade (so 0.2 and 0.5 ms are readable below
/// 1 ms), nothing at the other key points, which keep their tick.
pub(super) fn log_tick(v: f64) -> String {
    if v <= 0.0 {
        return String::new();
    }
    let decade = 10f64.powf(v.log10().floor());
    let mantissa = v / decade;
    let labelled = [1.0, 2.0, 5.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 0.01 * m);
    if labelled {
        short_number(v)
    } else {
        String::new()
    }
}

pub(super) fn draw_lines<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    series: &[Series],
) -> Option<()>
where
    DB: DrawingBackend + 'a,
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    draw_lines_legend_at(chart, series, None)
}

/// [`draw_lines`] with the legend inside the plot at `legend` (`None`: drawn apart).
pub(super) fn draw_lines_legend_at<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    series: &[Series],
    legend: Option<SeriesLabelPosition>,
) -> Option<()>
where
    DB: DrawingBackend + 'a,
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    // A cut's series (p50 and p99 of one colour) share its width and its mark.
    let cuts = cut_colours(series);
    for s in series {
        let cut = cuts.iter().position(|c| *c == s.colour).unwrap_or(0);
        let width = stroke_width(cut, cuts.len(), s.thin);
        let style = s.colour.stroke_width(width);
        let (colour, mark) = (s.colour, Mark::of(cut));
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), style))
            .ok()?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (22, 0)], colour.stroke_width(width))
                    + mark.element((11, 0), colour)
            });
        chart
            .draw_series(
                s.points
                    .iter()
                    .map(|&p| EmptyElement::at(p) + mark.element((0, 0), colour)),
            )
            .ok()?;
        let bar_style = s.colour.stroke_width(2);
        chart
            .draw_series(s.bars.iter().map(|&(x, low, high)| {
                ErrorBar::new_vertical(x, low.max(1e-6), (low + high) / 2.0, high, bar_style, 8)
            }))
            .ok()?;
    }
    let Some(legend) = legend else {
        return Some(());
    };
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, LABEL_PX))
        .position(legend)
        .draw()
        .ok()
}

/// The stroke of the lines of the `index`-th of `count` cuts: each is drawn 2 px wider than the one
/// drawn over it (at most 4 px more than the top one), so a line hidden by an equal one
/// still shows as its border.
fn stroke_width(index: usize, count: usize, thin: bool) -> u32 {
    if thin {
        return 1;
    }
    let above = count.saturating_sub(index + 1).min(2) as u32;
    3 + 2 * above
}

/// The shape each cut's series mark their points with, by the cut's place in the legend,
/// so equal series still show each other's points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Circle,
    Square,
    Triangle,
    Cross,
}

impl Mark {
    fn of(index: usize) -> Mark {
        [Mark::Circle, Mark::Square, Mark::Triangle, Mark::Cross][index % 4]
    }

    /// The mark at `at` (pixels from its anchor), hollow for every shape but the circle
    /// so one drawn over another leaves it visible.
    fn element<DB: DrawingBackend>(
        self,
        at: (i32, i32),
        colour: RGBColor,
    ) -> DynElement<'static, DB, (i32, i32)> {
        let outline = colour.stroke_width(2);
        match self {
            Mark::Circle => Circle::new(at, 4, colour.filled()).into_dyn(),
            Mark::Square => {
                Rectangle::new([(at.0 - 5, at.1 - 5), (at.0 + 5, at.1 + 5)], outline).into_dyn()
            }
            Mark::Triangle => TriangleMarker::new(at, 7, outline).into_dyn(),
            Mark::Cross => Cross::new(at, 5, outline).into_dyn(),
        }
    }
}

/// A tick label with at most three significant digits and no float noise: `0.9`, `12`,
/// `0.25`, `1200`.
pub(super) fn short_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

pub(super) trait IntoRgb {
    fn into_rgb(self) -> RGBColor;
}

impl IntoRgb for RGBAColor {
    fn into_rgb(self) -> RGBColor {
        // Blend with white by the alpha, so the lighter shade needs no transparency.
        let blend = |c: u8| (f64::from(c) * self.3 + 255.0 * (1.0 - self.3)).round() as u8;
        RGBColor(blend(self.0), blend(self.1), blend(self.2))
    }
}

/// Shades `window` (x) across `span` (y).
pub(super) fn shade<'a, DB, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    window: (f64, f64),
    span: (f64, f64),
) -> Option<()>
where
    DB: DrawingBackend + 'a,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    let fill = RGBColor(250, 82, 82).mix(0.15).filled();
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(window.0, span.0), (window.1, span.1)],
            fill,
        )))
        .ok()?;
    Some(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_log_axis_below_one_ms_gets_labelled_ticks() {
        let (bold, light) = log_key_points(0.24, 2.5);
        assert_eq!(bold, [0.5, 1.0, 2.0]);
        assert!(light.iter().all(|v| (0.24..=2.5).contains(v)));
        assert!(light.contains(&0.3) && light.contains(&0.9));
    }

    #[test]
    fn log_axes_label_one_two_and_five_of_every_decade() {
        let labelled: Vec<String> = [0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 2.0, 3.0, 5.0, 10.0]
            .iter()
            .map(|&v| log_tick(v))
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(labelled, ["0.1", "0.2", "0.5", "1", "2", "5", "10"]);
    }

    /// Nine series (three cuts over three transports): every name is written in the
    /// legend's own panel, right of the plot, so none covers a line (in the plot, nine
    /// rows took 60 % of its height).
    #[test]
    fn the_legend_stands_beside_the_plot() {
        let series: Vec<Series> = (0..9)
            .map(|i| Series {
                name: format!("cut{i}+transport"),
                colour: RGBColor(20 * i as u8, 0, 0),
                points: vec![(0.0, 1.0 + i as f64), (1.0, 2.0 + i as f64)],
                thin: false,
                bars: Vec::new(),
            })
            .collect();
        let svg = line_chart(&series, "x", "y", |x| format!("{x}")).unwrap();
        let split = f64::from(WIDTH - legend_width(&series));
        for s in &series {
            let at = svg
                .find(&format!(">\n{}\n<", s.name))
                .unwrap_or_else(|| panic!("{}", s.name));
            let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
            let x: f64 = tag
                .split("x=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(x >= split, "{} at x={x}, plot ends at {split}", s.name);
        }
    }

    use super::*;

    #[test]
    fn tick_labels_have_no_float_noise() {
        assert_eq!(short_number(0.9000000001), "0.9");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(12.0), "12");
        assert_eq!(short_number(1234.0), "1234");
        assert_eq!(short_number(0.0), "0");
    }

    #[test]
    fn lower_lines_are_wider_and_every_series_has_its_own_mark() {
        let widths: Vec<u32> = (0..4).map(|i| stroke_width(i, 4, false)).collect();
        assert_eq!(widths, [7, 7, 5, 3]);
        assert_eq!(stroke_width(0, 1, false), 3, "a lone line is not widened");
        assert_eq!(stroke_width(0, 3, true), 1);
        let marks: Vec<Mark> = (0..4).map(Mark::of).collect();
        assert!(marks
            .iter()
            .enumerate()
            .all(|(i, m)| !marks[..i].contains(m)));
    }

    #[test]
    fn colours_parse() {
        assert_eq!(rgb("#d9480f"), RGBColor(0xd9, 0x48, 0x0f));
    }
}

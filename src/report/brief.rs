//! The terminal's default summary: the answer, short, and last. What ran, one compact table
//! per question (the cuts at the comparison rate; deploy cost), the load generator's health
//! in one line when every step is valid, and the verdict as the final lines, so it is what
//! stays on screen. Every line fits the terminal (at most [`MAX_WIDTH`] columns): tables
//! drop their least needed columns, sentences wrap. The full tables are `-v` and the page.
//!
//! Laid out from the same view model as the page and the full summary, so each quantity is
//! the one estimate they show (the geometric mean over the rounds with its interval).

use super::model::{self, ReportModel};
use crate::results::RunResults;
use std::fmt::Write;

/// The widest the brief summary gets, whatever the terminal.
pub const MAX_WIDTH: usize = 100;
/// The narrowest it lays out for.
const MIN_WIDTH: usize = 40;

/// Renders the brief summary of `results` for a terminal `width` columns wide.
pub fn render_brief(results: &RunResults, baseline: Option<&RunResults>, width: usize) -> String {
    render(&model::build(results, baseline), width)
}

/// Lays out `m` in at most `width` columns (clamped to 40–100).
pub fn render(m: &ReportModel, width: usize) -> String {
    let width = width.clamp(MIN_WIDTH, MAX_WIDTH);
    let mut out = String::new();
    let rounds = m
        .generator_rows
        .iter()
        .filter_map(|r| r.step.strip_prefix("round "))
        .filter_map(|r| r.split(',').next()?.parse::<usize>().ok())
        .max()
        .unwrap_or(1);
    let quick = if m.quick { ", quick run" } else { "" };
    let title = format!(
        "{} — {} cut(s), {rounds} round(s){quick}; network: {}",
        m.scenario,
        m.architectures.len(),
        m.network.model
    );
    para(&mut out, &title, width);
    if let Some(hop) = &m.network.hop {
        para(&mut out, hop, width);
    }
    cuts_table(&mut out, m, width);
    deploy_table(&mut out, m, width);
    sections(&mut out, m, width);
    generator_line(&mut out, m, width);
    para(&mut out, &format!("Equivalence: {}", m.equivalence), width);
    baseline_lines(&mut out, m, width);
    for error in &m.errors {
        para(&mut out, &format!("Run stopped early: {error}"), width);
    }
    out.push('\n');
    let recommendation = m.front.as_ref().and_then(|f| f.recommendation.as_ref());
    for sentence in m.verdict.sentences.iter().chain(recommendation) {
        para(&mut out, sentence, width);
    }
    out
}

/// `text` word-wrapped to `width` columns, as lines.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && needed > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` wrapped to `width`, keeping its indentation; an indented item's continuation
/// lines are indented two more, so each item stays one block.
fn para(out: &mut String, text: &str, width: usize) {
    let body = text.trim_start();
    let indent = &text[..text.len() - body.len()];
    let more = if indent.is_empty() { "" } else { "  " };
    let room = width
        .saturating_sub(indent.len() + more.len())
        .max(MIN_WIDTH / 2);
    for (i, line) in wrap(body, room).into_iter().enumerate() {
        let lead = if i == 0 { "" } else { more };
        let _ = writeln!(out, "{indent}{lead}{line}");
    }
}

/// A column of a table: its header, cells, whether right-aligned, and how much it is
/// needed (the lowest go first when the terminal is narrow).
struct Column {
    header: String,
    cells: Vec<String>,
    right: bool,
    need: u8,
}

impl Column {
    fn new(header: &str, cells: Vec<String>, right: bool, need: u8) -> Self {
        Column {
            header: header.to_string(),
            cells,
            right,
            need,
        }
    }

    fn width(&self) -> usize {
        self.cells
            .iter()
            .chain(std::iter::once(&self.header))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
    }
}

/// Lays out `columns` in at most `width` columns, dropping the least needed ones that do
/// not fit; a line in parentheses below names what was left out.
fn table(out: &mut String, mut columns: Vec<Column>, width: usize) {
    let total = |cols: &[Column]| cols.iter().map(|c| c.width() + 2).sum::<usize>();
    let mut dropped = Vec::new();
    while total(&columns) > width && columns.len() > 1 {
        let Some((i, _)) = columns
            .iter()
            .enumerate()
            .skip(1)
            .min_by_key(|(i, c)| (c.need, std::cmp::Reverse(*i)))
        else {
            break;
        };
        dropped.push(columns.remove(i).header);
    }
    let rows = columns.first().map_or(0, |c| c.cells.len());
    let line = |cells: Vec<(&str, &Column)>| {
        let mut line = String::new();
        for (cell, column) in cells {
            let w = column.width();
            let pad = w.saturating_sub(cell.chars().count());
            if column.right {
                line.push_str(&" ".repeat(pad + 2));
                line.push_str(cell);
            } else {
                line.push_str("  ");
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        line.trim_end().to_string()
    };
    let _ = writeln!(
        out,
        "{}",
        line(columns.iter().map(|c| (c.header.as_str(), c)).collect())
    );
    for row in 0..rows {
        let cells = columns.iter().map(|c| (c.cells[row].as_str(), c)).collect();
        let _ = writeln!(out, "{}", line(cells));
    }
    if !dropped.is_empty() {
        para(
            out,
            &format!("  (too narrow for: {}; widen, or -v)", dropped.join(", ")),
            width,
        );
    }
}

/// The cuts at the comparison rate: units, p99 and units' CPU per request, means over the
/// rounds with their 95 % intervals, and whether each is on the front.
fn cuts_table(out: &mut String, m: &ReportModel, width: usize) {
    let Some(front) = &m.front else {
        return;
    };
    let rows = &front.rows;
    let _ = writeln!(
        out,
        "\ncuts at {} req/s (geometric mean over the rounds [95 % CI]):",
        front.rate
    );
    let columns = vec![
        Column::new(
            "cut",
            rows.iter().map(|r| r.arch.clone()).collect(),
            false,
            9,
        ),
        Column::new(
            "units",
            rows.iter()
                .map(|r| format!("{}+{}", r.service_units, r.state_units))
                .collect(),
            true,
            6,
        ),
        Column::new(
            "p99 µs",
            rows.iter().map(|r| r.p99_us.clone()).collect(),
            true,
            8,
        ),
        Column::new(
            "units' CPU µs/req",
            rows.iter().map(|r| r.cpu_us_per_request.clone()).collect(),
            true,
            7,
        ),
        Column::new(
            "front",
            rows.iter()
                .map(|r| if r.on_front { "yes" } else { "no" }.to_string())
                .collect(),
            false,
            3,
        ),
    ];
    table(out, columns, width);
    if rows.len() > crate::report::model::MAX_UNCORRECTED_CUTS {
        para(out, &front.rule, width);
    }
}

/// Deploy cost per cut: cold start, idle memory, and what the redeploy under load failed.
fn deploy_table(out: &mut String, m: &ReportModel, width: usize) {
    if m.deploy_rows.is_empty() {
        return;
    }
    let rows = &m.deploy_rows;
    let redeploy: Vec<String> = rows
        .iter()
        .map(|d| {
            m.redeploy_rows
                .iter()
                .find(|r| r.arch == d.arch)
                .map_or("-".to_string(), |r| format!("{} failed", r.window_failed))
        })
        .collect();
    let _ = writeln!(out, "\ndeploy cost:");
    let columns = vec![
        Column::new(
            "cut",
            rows.iter().map(|d| d.arch.clone()).collect(),
            false,
            9,
        ),
        Column::new(
            "cold start ms med [range]",
            rows.iter().map(|d| d.cold_start_ms.clone()).collect(),
            true,
            7,
        ),
        Column::new(
            "idle RSS MiB",
            rows.iter().map(|d| d.idle_rss_mib.clone()).collect(),
            true,
            6,
        ),
        Column::new(
            "artifact MiB",
            rows.iter().map(|d| d.artifact_mib.clone()).collect(),
            true,
            2,
        ),
        Column::new("redeploy", redeploy, true, 5),
    ];
    table(out, columns, width);
}

/// Security and fault comparisons: what was compared, one line each; the tables are `-v`.
fn sections(out: &mut String, m: &ReportModel, width: usize) {
    for section in [&m.security, &m.transport, &m.mesh].into_iter().flatten() {
        out.push('\n');
        for sentence in &section.sentences {
            para(out, sentence, width);
        }
    }
    if let Some(faults) = &m.faults {
        let text = format!(
            "faults: {} injected under load ({}); the table is on the page and under -v.",
            faults.groups.len(),
            faults.policy
        );
        para(out, &text, width);
    }
}

/// The load generator in one line when every step is valid; else the invalid steps.
fn generator_line(out: &mut String, m: &ReportModel, width: usize) {
    let rows = &m.generator_rows;
    if rows.is_empty() {
        return;
    }
    let valid = rows.iter().filter(|r| r.valid).count();
    let lag = rows
        .iter()
        .filter(|r| r.valid)
        .map(|r| r.send_lag_p99_us)
        .max()
        .unwrap_or(0);
    out.push('\n');
    let line = format!(
        "load generator: {valid}/{} steps valid; send lag p99 ≤ {lag} µs.",
        rows.len()
    );
    para(out, &line, width);
    let invalid: Vec<_> = rows.iter().filter(|r| !r.valid).collect();
    for r in invalid.iter().take(3) {
        let text = format!("  invalid: {} {}: {}", r.arch, r.step, r.invalid_reason);
        para(out, &text, width);
    }
    if invalid.len() > 3 {
        para(
            out,
            &format!("  and {} more (-v for the table)", invalid.len() - 3),
            width,
        );
    }
}

/// What changed since the baseline: how many figures were compared and how many changed,
/// then the changes (discoveries first), the first few.
fn baseline_lines(out: &mut String, m: &ReportModel, width: usize) {
    let Some(b) = &m.baseline else {
        return;
    };
    out.push('\n');
    let head = format!(
        "since the baseline ({}, commit {}): {}",
        b.started_at, b.git_commit, b.summary
    );
    para(out, &head, width);
    let mut shown: Vec<_> = b.changes.iter().filter(|c| c.significant).collect();
    shown.extend(b.changes.iter().filter(|c| !c.significant));
    for c in shown.iter().take(5) {
        para(
            out,
            &format!("  {} {}: {}", c.arch, c.figure, c.change),
            width,
        );
    }
    if shown.len() > 5 {
        para(out, &format!("  and {} more (-v)", shown.len() - 5), width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_wrap_at_the_width() {
        let lines = wrap("one two three four five six", 9);
        assert_eq!(lines, ["one two", "three", "four five", "six"]);
        assert!(wrap("", 10).is_empty());
    }

    #[test]
    fn an_indented_item_stays_indented_when_wrapped() {
        let mut out = String::new();
        para(&mut out, &format!("  invalid: {}", "word ".repeat(20)), 40);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1);
        assert!(lines[0].starts_with("  invalid:"));
        assert!(
            lines[1..]
                .iter()
                .all(|l| l.starts_with("    ") && l.len() <= 40),
            "{out}"
        );
    }

    #[test]
    fn a_narrow_table_drops_its_least_needed_columns() {
        let columns = vec![
            Column::new("cut", vec!["nano".into()], false, 9),
            Column::new("wide but unneeded", vec!["x".repeat(30)], true, 1),
            Column::new("p99", vec!["1288 [794–1782]".into()], true, 8),
        ];
        let mut out = String::new();
        table(&mut out, columns, 40);
        assert!(out.lines().all(|l| l.chars().count() <= 40), "{out}");
        assert!(out.contains("p99") && out.contains("too narrow for: wide but unneeded"));
    }
}

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
    let deployed = match m.architectures.len() {
        n if m.verdict.mechanism.is_some() => format!("{n} deployments"),
        1 => "1 cut".to_string(),
        n => format!("{n} cuts"),
    };
    let title = format!(
        "{} — {deployed}, {rounds} round(s){quick}; network: {}",
        m.scenario, m.network.model
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

/// A table's title after a blank line, wrapped to `width`.
fn heading(out: &mut String, title: &str, width: usize) {
    out.push('\n');
    para(out, title, width);
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

/// Whether `label` is among the deployments the verdict compares (every one, unless
/// several mechanisms ran: then those of the verdict's mechanism; the others are set
/// against the same cut in their dimension's table).
fn in_verdict(m: &ReportModel, label: &str) -> bool {
    m.verdict.mechanism.is_none() || m.verdict.compared.iter().any(|c| c == label)
}

/// ` over HTTP/1.1 + JSON` when several mechanisms ran, else nothing.
fn over_mechanism(m: &ReportModel) -> String {
    m.verdict
        .mechanism
        .as_ref()
        .map_or(String::new(), |mechanism| format!(" over {mechanism}"))
}

/// The cuts at the comparison rate: units, p99 and units' CPU per request, means over the
/// rounds with their 95 % intervals, and whether each is on the front. With several
/// mechanisms, the verdict's cuts, and the front's members over every deployment.
fn cuts_table(out: &mut String, m: &ReportModel, width: usize) {
    let Some(front) = &m.front else {
        return;
    };
    let rows: Vec<&model::front::FrontRow> = front
        .rows
        .iter()
        .filter(|r| in_verdict(m, &r.arch))
        .collect();
    let title = format!(
        "cuts{} at {} req/s (geometric mean over rounds, 95 % CI):",
        over_mechanism(m),
        front.rate
    );
    heading(out, &title, width);
    let cells = |f: &dyn Fn(&model::front::FrontRow) -> String| rows.iter().map(|r| f(r)).collect();
    let columns = vec![
        Column::new("cut", cells(&|r| r.arch.clone()), false, 9),
        Column::new(
            "units",
            cells(&|r| format!("{}+{}", r.service_units, r.state_units)),
            true,
            6,
        ),
        Column::new("p99 µs", cells(&|r| r.p99_us.clone()), true, 8),
        Column::new(
            "units' CPU µs/req",
            cells(&|r| r.cpu_us_per_request.clone()),
            true,
            7,
        ),
        Column::new(
            "front",
            cells(&|r| if r.on_front { "yes" } else { "no" }.into()),
            false,
            3,
        ),
    ];
    table(out, columns, width);
    let corrected = front.rows.len() > crate::report::model::MAX_UNCORRECTED_CUTS;
    if rows.len() < front.rows.len() {
        let members: Vec<&str> = front
            .rows
            .iter()
            .filter(|r| r.on_front)
            .map(|r| r.arch.as_str())
            .collect();
        let text = format!(
            "front of all {} deployments{}: {}.",
            front.rows.len(),
            if corrected {
                " (beyond noise; the rule: -v)"
            } else {
                ""
            },
            members.join(", ")
        );
        para(out, &text, width);
    } else if corrected {
        para(out, &front.rule, width);
    }
}

/// Deploy cost per cut: cold start, idle memory, and what the redeploy under load failed.
fn deploy_table(out: &mut String, m: &ReportModel, width: usize) {
    if m.deploy_rows.is_empty() {
        return;
    }
    // With several mechanisms, the deploy cost of the cuts the verdict compares; the
    // others' is `-v` and the page (a mesh's sidecars are in its own table).
    let rows: Vec<&model::DeployRow> = m
        .deploy_rows
        .iter()
        .filter(|d| in_verdict(m, &d.arch))
        .collect();
    let left_out = m.deploy_rows.len() - rows.len();
    let redeploy: Vec<String> = rows
        .iter()
        .map(|d| {
            m.redeploy_rows
                .iter()
                .find(|r| r.arch == d.arch)
                .map_or("-".to_string(), |r| format!("{} failed", r.window_failed))
        })
        .collect();
    let others = if left_out > 0 {
        " (the others: -v)"
    } else {
        ""
    };
    heading(
        out,
        &format!("deploy cost{}{others}:", over_mechanism(m)),
        width,
    );
    let mut columns = vec![
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
    // Files from before private memory was read have none: no column of dashes.
    if rows.iter().any(|d| d.idle_private_mib != "–") {
        let private = rows.iter().map(|d| d.idle_private_mib.clone()).collect();
        columns.insert(3, Column::new("private MiB", private, true, 4));
    }
    table(out, columns, width);
}

/// Each mechanism set against its base (security modes, transports, the mesh): one
/// compact table per dimension, a row per variant; the sentences and the full tables are
/// `-v` and the page. Then the faults, in one line.
fn sections(out: &mut String, m: &ReportModel, width: usize) {
    for section in [&m.security, &m.transport, &m.mesh, &m.tracing]
        .into_iter()
        .flatten()
    {
        variant_table(out, section, width);
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

/// One dimension's variants against the same cut on its base: the added p50 (paired over
/// the rounds), whether it is beyond noise, the units' CPU ratio and, behind sidecars,
/// the sidecars' own CPU and memory.
fn variant_table(out: &mut String, section: &model::variants::VariantSection, width: usize) {
    use model::variants::Dimension;
    let rows = &section.rows;
    let title = format!(
        "vs the same cut on {} at {} req/s (paired by round, 95 % CI):",
        section.base, section.rate
    );
    heading(out, &title, width);
    let cells = |f: &dyn Fn(&model::variants::VariantRow) -> String| rows.iter().map(f).collect();
    let mut columns = vec![
        Column::new("deployment", cells(&|r| r.arch.clone()), false, 9),
        Column::new("p50 added", cells(&|r| r.added_p50_us.clone()), true, 8),
        Column::new(
            "beyond noise",
            cells(&|r| if r.p50_changed { "yes" } else { "no" }.into()),
            false,
            7,
        ),
        Column::new(
            "units' CPU",
            cells(&|r| {
                r.units_cpu_ratio_estimate
                    .as_ref()
                    .map_or("–".into(), crate::report::format::ratio_compact)
            }),
            true,
            6,
        ),
    ];
    if section.dimension == Dimension::Mesh {
        let sidecar = |f: fn(&model::variants::SidecarFigures) -> &String| {
            cells(&|r| r.sidecars.as_ref().map_or("–".into(), |s| f(s).clone()))
        };
        columns.push(Column::new(
            "sidecars µs/req",
            sidecar(|s| &s.cpu_us_per_request),
            true,
            5,
        ));
        columns.push(Column::new(
            "sidecars MiB",
            sidecar(|s| &s.idle_rss_mib),
            true,
            4,
        ));
    }
    table(out, columns, width);
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

//! Renders the report model and charts into one self-contained HTML page (inline CSS and
//! SVG, nothing fetched) with minijinja, which escapes every value from the scenario file
//! automatically; only the SVG plotters drew is inserted as markup.

use super::charts::{self, Charts};
use super::model::{self, ReportModel};
use crate::results::{ResultsError, RunResults};
use std::path::{Path, PathBuf};

const TEMPLATE: &str = include_str!("page.html");

/// Why the page could not be rendered or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("cannot render the report: {0}")]
    Render(#[from] minijinja::Error),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Renders the page for `results`, with changes since `baseline` if given.
pub fn render(results: &RunResults, baseline: Option<&RunResults>) -> Result<String, ReportError> {
    let analysis = crate::analysis::Analysis::of(results, baseline);
    let model: ReportModel = model::of(&analysis);
    let charts: Charts = charts::draw(&analysis, &model);
    let mut env = minijinja::Environment::new();
    // `.html` templates get HTML auto-escaping of every interpolated value.
    env.add_template("page.html", TEMPLATE)?;
    let html = env
        .get_template("page.html")?
        .render(minijinja::context! { m => model, charts => charts })?;
    Ok(html)
}

/// Renders and writes the page to `out`, atomically (a reader never sees half a page).
pub fn write(
    results: &RunResults,
    baseline: Option<&RunResults>,
    out: &Path,
) -> Result<PathBuf, ReportError> {
    let html = render(results, baseline)?;
    crate::results::write_atomic(out, html.as_bytes()).map_err(|source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(out.to_path_buf())
}

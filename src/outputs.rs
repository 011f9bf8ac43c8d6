//! Where a run's results go: results.json after every step (a checkpoint), and the HTML
//! page beside it at the end, set against a baseline when there is one. This is the one
//! place that joins [`crate::run`] to [`crate::report`]: the run reports its events, the
//! report reads only results.
//!
//! The binary adds its progress display to these ([`crate::run::report::Fanout`]); tests
//! and benches use [`run`] as it is.

use crate::report::write_html;
use crate::results::{ResultsError, RunResults};
use crate::run::report::{Fanout, ResultsFile, RunReport};
use crate::run::{self, OptionsError, Resolved, RunError, RunOptions};
use crate::scenario::ScenarioSource;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// The HTML page under a directory, written once the run is over (complete or not).
pub struct PageFile<'a> {
    path: PathBuf,
    baseline: Option<&'a RunResults>,
    written: RefCell<Option<Result<PathBuf, String>>>,
}

impl<'a> PageFile<'a> {
    /// `index.html` under `dir`, each figure set against `baseline` when given.
    pub fn new(dir: &Path, baseline: Option<&'a RunResults>) -> Self {
        PageFile {
            path: dir.join("index.html"),
            baseline,
            written: RefCell::new(None),
        }
    }

    /// Where the page was written, or why it could not be (`None` before the run's end).
    pub fn outcome(self) -> Option<Result<PathBuf, String>> {
        self.written.into_inner()
    }
}

impl RunReport for PageFile<'_> {
    fn run_done(&self, results: &RunResults) {
        let written = write_html(results, self.baseline, &self.path).map_err(|e| e.to_string());
        *self.written.borrow_mut() = Some(written);
    }
}

/// What a run produced: results (complete or partial), where they were written, and the
/// error that stopped it, if any.
pub struct RunOutcome {
    pub results: RunResults,
    pub results_path: Option<PathBuf>,
    pub write_error: Option<ResultsError>,
    /// The HTML report written beside results.json, or why it could not be.
    pub report_path: Option<PathBuf>,
    pub report_error: Option<String>,
    pub error: Option<RunError>,
}

/// Runs `resolved` with its results and page written under its output directory, every
/// event also told to `also` (a progress display).
pub async fn run_resolved(
    source: &ScenarioSource,
    resolved: &Resolved,
    baseline: Option<&RunResults>,
    also: &dyn RunReport,
    cancel: &CancellationToken,
) -> RunOutcome {
    let dir = &resolved.options.out_dir;
    let file = ResultsFile::new(dir);
    let page = PageFile::new(dir, baseline);
    let ran = run::run(source, resolved, &Fanout(vec![also, &file, &page]), cancel).await;
    let (results, error) = match ran {
        Ok(results) => (results, None),
        Err(failure) => (*failure.partial, Some(failure.error)),
    };
    let (results_path, write_error) = match file.outcome() {
        Ok(path) => (path, None),
        Err(error) => (None, Some(error)),
    };
    let (report_path, report_error) = match page.outcome() {
        Some(Ok(path)) => (Some(path), None),
        Some(Err(error)) => (None, Some(error)),
        None => (None, None),
    };
    RunOutcome {
        results,
        results_path,
        write_error,
        report_path,
        report_error,
        error,
    }
}

/// Resolves `options` against `source` and runs them, writing results and page, silently.
pub async fn run(
    source: &ScenarioSource,
    options: &RunOptions,
    cancel: &CancellationToken,
) -> Result<RunOutcome, OptionsError> {
    let resolved = options.resolve(&source.scenario)?;
    Ok(run_resolved(source, &resolved, None, &run::report::Silent, cancel).await)
}

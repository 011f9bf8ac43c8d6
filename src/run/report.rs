//! What a run tells its outputs as it goes ([`RunReport`]), and the one output every run
//! has: the results file ([`ResultsFile`]), written atomically after every step, every
//! architecture and at the end, so that even an exit that skips every cleanup (a second
//! Ctrl-C, SIGKILL) keeps every finished step.
//!
//! The run knows nothing of pages, terminals or gates: the binary and the `outputs`
//! module above it fan these events out to them.

use crate::driver::engine::Schedule;
use crate::driver::Progress;
use crate::results::{ResultsError, RunResults};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A load step about to start, for a progress display.
#[derive(Debug, Clone)]
pub struct StepStart {
    /// The deployment's label (`nano`, `micro+mtls`).
    pub label: String,
    /// Its round (from 1) of `rounds`.
    pub round: usize,
    pub rounds: usize,
    pub schedule: Schedule,
    /// Warm-up and measured time together.
    pub total: Duration,
    /// Its place among the run's measured steps (from 1), of how many when known.
    pub step: usize,
    pub steps: Option<usize>,
}

/// The events of a run. Every method has a default that ignores the event; the results
/// passed are the run's so far (a step's figures are in its architecture's `steps`).
pub trait RunReport {
    /// Something with no load step to show is under way (deploying and timing cold
    /// starts, the equivalence check); `None` once it is over.
    fn activity(&self, _what: Option<&str>) {}
    /// A load step starts; what is returned is told how far into the step the load is.
    fn step_started(&self, _step: &StepStart) -> Option<Progress> {
        None
    }
    /// A step (load or fault) finished and is in `results`.
    fn step_done(&self, _results: &RunResults) {}
    /// An architecture's round finished (its units still run); summaries are up to date.
    fn architecture_done(&self, _results: &RunResults) {}
    /// The run ended, complete or not: `results` are final.
    fn run_done(&self, _results: &RunResults) {}
}

/// Reports nothing.
pub struct Silent;

impl RunReport for Silent {}

/// Every event to each of several reports, in order.
pub struct Fanout<'a>(pub Vec<&'a dyn RunReport>);

impl RunReport for Fanout<'_> {
    fn activity(&self, what: Option<&str>) {
        self.0.iter().for_each(|r| r.activity(what));
    }

    fn step_started(&self, step: &StepStart) -> Option<Progress> {
        // One progress display per step: the first report that wants one.
        self.0.iter().find_map(|r| r.step_started(step))
    }

    fn step_done(&self, results: &RunResults) {
        self.0.iter().for_each(|r| r.step_done(results));
    }

    fn architecture_done(&self, results: &RunResults) {
        self.0.iter().for_each(|r| r.architecture_done(results));
    }

    fn run_done(&self, results: &RunResults) {
        self.0.iter().for_each(|r| r.run_done(results));
    }
}

/// results.json under a directory, rewritten atomically on every event: after a step
/// marked incomplete, at the end as the run says.
pub struct ResultsFile {
    dir: PathBuf,
    written: RefCell<Result<Option<PathBuf>, ResultsError>>,
}

impl ResultsFile {
    pub fn new(dir: &Path) -> Self {
        ResultsFile {
            dir: dir.to_path_buf(),
            written: RefCell::new(Ok(None)),
        }
    }

    /// Where the file was last written, or why the last write failed.
    pub fn outcome(self) -> Result<Option<PathBuf>, ResultsError> {
        self.written.into_inner()
    }

    fn write(&self, results: &RunResults) {
        let written = results.write(&self.dir);
        if let Err(error) = &written {
            tracing::warn!(%error, "cannot write the results so far");
        }
        *self.written.borrow_mut() = written.map(Some);
    }
}

impl RunReport for ResultsFile {
    fn step_done(&self, results: &RunResults) {
        self.write(results);
    }

    fn architecture_done(&self, results: &RunResults) {
        self.write(results);
    }

    fn run_done(&self, results: &RunResults) {
        self.write(results);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_results_file_holds_the_last_event_s_results_and_says_why_a_write_failed() {
        let dir = tempfile::tempdir().unwrap();
        let file = ResultsFile::new(dir.path());
        let mut results = RunResults {
            schema_version: crate::results::SCHEMA_VERSION,
            ..RunResults::default()
        };
        results.errors.push("first".into());
        file.step_done(&results);
        results.errors.push("second".into());
        Fanout(vec![&Silent, &file]).run_done(&results);
        let path = file.outcome().unwrap().unwrap();
        let read = RunResults::read(&path).unwrap();
        assert_eq!(read.errors, ["first", "second"]);

        let blocked = dir.path().join("a-file");
        std::fs::write(&blocked, "").unwrap();
        let file = ResultsFile::new(&blocked.join("out"));
        file.run_done(&results);
        assert!(file.outcome().is_err());
    }
}

//! The run's progress on stderr: a spinner while a deployment starts or the equivalence
//! check runs, and a bar per load step ("nano round 1/3   400 req/s [=====>  ] 2s/3s").
//! The library only reports events ([`RunReport`]); drawing them is the binary's.

use grainbench::driver::engine::Schedule;
use grainbench::driver::Progress;
use grainbench::run::{RunReport, StepStart};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use std::cell::RefCell;
use std::time::Duration;

/// Progress bars and spinners on stderr.
#[derive(Default)]
pub(crate) struct Bars {
    spinner: RefCell<Option<ProgressBar>>,
}

impl RunReport for Bars {
    fn activity(&self, what: Option<&str>) {
        let mut spinner = self.spinner.borrow_mut();
        if let Some(old) = spinner.take() {
            old.finish_and_clear();
        }
        *spinner = what.map(new_spinner);
    }

    fn step_started(&self, step: &StepStart) -> Option<Progress> {
        // Cleared when the driver drops it, at the step's end.
        let bar = step_bar(step);
        Some(Box::new(move |elapsed: Duration| {
            bar.set_position(elapsed.as_millis() as u64);
        }))
    }
}

fn new_spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn step_bar(step: &StepStart) -> ProgressBar {
    let total_ms = step.total.as_millis() as u64;
    let bar = ProgressBar::with_draw_target(Some(total_ms), ProgressDrawTarget::stderr())
        .with_finish(ProgressFinish::AndClear);
    let style =
        ProgressStyle::with_template("{prefix:>18} {msg:>12} [{bar:30}] {elapsed}/{duration}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!(
        "{} round {}/{}",
        step.label, step.round, step.rounds
    ));
    bar.set_message(match step.schedule {
        Schedule::OpenLoop { rate } => format!("{rate} req/s"),
        Schedule::ClosedLoop { connections } => format!("{connections} conns"),
    });
    bar
}

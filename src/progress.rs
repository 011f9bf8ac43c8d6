//! The run's progress on stderr: a spinner while a deployment starts or the equivalence
//! check runs, and a bar per load step with the whole run's place and pace
//! ("nano round 1/3 400 req/s step 4/27, ~1m 20s left [=====>    ] 2s/3s").
//! The library only reports events ([`RunReport`]); drawing them is the binary's.

use grainbench::driver::engine::Schedule;
use grainbench::driver::Progress;
use grainbench::run::{RunReport, StepStart};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Progress bars and spinners on stderr.
#[derive(Default)]
pub(crate) struct Bars {
    spinner: RefCell<Option<ProgressBar>>,
    /// When the first step started: the run's pace, for its ETA.
    first_step: RefCell<Option<Instant>>,
}

impl Bars {
    /// "step 4/27, ~1m 20s left": the steps still to come at the pace of those done
    /// (deploys and checks included); no guess before a step has finished.
    fn whole_run(&self, step: &StepStart) -> String {
        let Some(steps) = step.steps else {
            return format!("step {}", step.step);
        };
        let first = *self
            .first_step
            .borrow_mut()
            .get_or_insert_with(Instant::now);
        let done = step.step.saturating_sub(1);
        if done == 0 {
            return format!("step {}/{steps}", step.step);
        }
        let per_step = first.elapsed().as_secs_f64() / done as f64;
        let left = per_step * (steps.saturating_sub(done)) as f64;
        format!("step {}/{steps}, ~{} left", step.step, duration_words(left))
    }
}

/// `1m 20s`, `45s`.
fn duration_words(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        _ => format!("{}m {:02}s", s / 60, s % 60),
    }
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
        let bar = step_bar(step, &self.whole_run(step));
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

fn step_bar(step: &StepStart, whole_run: &str) -> ProgressBar {
    let total_ms = step.total.as_millis() as u64;
    let bar = ProgressBar::with_draw_target(Some(total_ms), ProgressDrawTarget::stderr())
        .with_finish(ProgressFinish::AndClear);
    let style = ProgressStyle::with_template("{prefix} {msg} [{bar:16}] {elapsed}/{duration}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    let load = match step.schedule {
        Schedule::OpenLoop { rate } => format!("{rate} req/s"),
        Schedule::ClosedLoop { connections } => format!("{connections} conns"),
    };
    bar.set_prefix(format!(
        "{} round {}/{} {load}",
        step.label, step.round, step.rounds
    ));
    bar.set_message(whole_run.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: usize, steps: Option<usize>) -> StepStart {
        StepStart {
            label: "nano".into(),
            round: 1,
            rounds: 3,
            schedule: Schedule::OpenLoop { rate: 400 },
            total: Duration::from_secs(3),
            step,
            steps,
        }
    }

    #[test]
    fn the_whole_run_s_place_and_pace() {
        let bars = Bars::default();
        assert_eq!(bars.whole_run(&step(1, Some(27))), "step 1/27");
        *bars.first_step.borrow_mut() = Some(Instant::now() - Duration::from_secs(30));
        // 3 steps done in 30 s: 24 to go at 10 s each.
        assert_eq!(
            bars.whole_run(&step(4, Some(27))),
            "step 4/27, ~4m 00s left"
        );
        assert_eq!(bars.whole_run(&step(5, None)), "step 5");
        assert_eq!(duration_words(59.4), "59s");
    }
}

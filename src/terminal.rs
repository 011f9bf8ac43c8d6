//! Where the binary meets the terminal: log output, signals (Ctrl-C / SIGTERM cancel the
//! run; a second Ctrl-C quits), and errors printed with each cause said once.

use tokio_util::sync::CancellationToken;

/// `eprintln!` that never panics: a closed or broken stderr (a pipe whose reader left)
/// must not take the run down with it, so what cannot be written is dropped.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that never panics (see [`note!`]).
macro_rules! note_part {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that never panics: the summary is lost, not the run's cleanup, when stdout
/// is closed.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub(crate) use {note, note_part, say};

pub fn init_tracing(env_var: &str, verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(env_var)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Cancels `token` on the first Ctrl-C or SIGTERM, then says so (cancelling comes first: a
/// print to a closed stderr must not stop the cancellation, nor the task). A second signal
/// quits at once, but still removes the run's containers and networks first (a frozen
/// container would outlive the harness); units that are processes die with the harness,
/// and every finished step is already on disk.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        use std::io::Write as _;
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        let Ok(mut int) = signal(SignalKind::interrupt()) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        token.cancel();
        let _ = writeln!(
            std::io::stderr(),
            "\ninterrupted: writing partial results and stopping units (Ctrl-C again to quit now)"
        );
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        grainbench::launch::container::remove_live_runs();
        std::process::exit(130);
    });
}

/// An error and its causes, each said once: a cause whose text the message already
/// contains (thiserror's `{source}` in a Display) is not repeated.
pub fn render_error(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Prints the summary of `results`: the brief one for this terminal's width, or with
/// `verbose` every table.
pub fn print_summary(
    results: &grainbench::results::RunResults,
    baseline: Option<&grainbench::results::RunResults>,
    verbose: bool,
) {
    let text = if verbose {
        grainbench::report::render_summary(results, baseline)
    } else {
        grainbench::report::render_brief(results, baseline, width())
    };
    say!("{text}");
}

/// The terminal's width for the summary: stdout's columns when it is a terminal, else
/// `$COLUMNS`, else the summary's widest, [`grainbench::report::MAX_WIDTH`].
pub fn width() -> usize {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize we own; a failure leaves it zeroed.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        return usize::from(size.ws_col).min(grainbench::report::MAX_WIDTH);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&c| c > 0)
        .map_or(grainbench::report::MAX_WIDTH, |c| {
            c.min(grainbench::report::MAX_WIDTH)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write x: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::other("File name too long (os error 36)");
        let error = anyhow::Error::from(Outer { source: io });
        let text = render_error(&error);
        assert_eq!(text.matches("os error 36").count(), 1, "{text}");
        let wrapped = anyhow::anyhow!("inner cause").context("outer");
        assert_eq!(render_error(&wrapped), "outer: inner cause");
    }
}

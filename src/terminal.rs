//! Where the binary meets the terminal: log output, signals (Ctrl-C / SIGTERM cancel the
//! run; a second Ctrl-C quits), and errors printed with each cause said once.

use tokio_util::sync::CancellationToken;

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

/// Cancels `token` on the first Ctrl-C or SIGTERM. A second Ctrl-C exits at once; every
/// finished step is already on disk by then (results are written after each architecture
/// and before any teardown).
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!(
            "\ninterrupted: writing partial results and stopping units (Ctrl-C again to quit now)"
        );
        token.cancel();
        let _ = tokio::signal::ctrl_c().await;
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

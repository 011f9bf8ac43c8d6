//! `grainbench-unit`: the binary every unit runs, and the sidecar's supervisor inside a
//! container. The harness starts it from beside its own binary (`grainbench`), and a
//! containerised run or an export builds the units' image from it.
//!
//! It is its own binary so that a unit maps only a unit's code: started from the harness's
//! binary, each unit's resident set counted pages of the harness's own code (the report,
//! the charts, the exporters) that the kernel maps around the pages a unit touches, and its
//! image carried all of it. For the same reason its few arguments are read by hand, and its
//! log level is one level, not a filter.
//!
//! - `grainbench-unit unit --spec SPEC [--routes FILE] [--run-id ID] [--unit NAME]`: serve
//!   one unit ([`grainbench::unit::serve`]; the run id and name are for `ps` and tests);
//! - `grainbench-unit sidecar-proxy [--run-id ID]`: supervise a pod's HAProxy, its
//!   configuration on stdin, stopped when stdin closes;
//! - `grainbench-unit --help`: this usage;
//! - `grainbench-unit --build-id`: which sources it was built from, so the harness never
//!   starts units built from other sources than its own.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Help,
    BuildId,
    Unit {
        spec: String,
        routes: Option<PathBuf>,
    },
    SidecarProxy,
}

const USAGE: &str = "usage: grainbench-unit unit --spec SPEC [--routes FILE] [--run-id ID] \
                     [--unit NAME] | sidecar-proxy [--run-id ID] | --build-id | --help";

/// Reads the arguments after the program's name.
fn parse(args: &[String]) -> Result<Command, String> {
    let (first, rest) = args.split_first().ok_or("no command")?;
    let mut values = std::collections::BTreeMap::new();
    let allowed: &[&str] = match first.as_str() {
        "--build-id" if rest.is_empty() => return Ok(Command::BuildId),
        "--help" | "-h" => return Ok(Command::Help),
        "unit" => &["--spec", "--routes", "--run-id", "--unit"],
        "sidecar-proxy" => &["--run-id"],
        other => return Err(format!("unknown command `{other}`")),
    };
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        if !allowed.contains(&flag.as_str()) {
            return Err(format!("`{first}` takes no `{flag}`"));
        }
        let value = rest
            .next()
            .ok_or_else(|| format!("`{flag}` needs a value"))?;
        values.insert(flag.as_str(), value.clone());
    }
    if first == "sidecar-proxy" {
        return Ok(Command::SidecarProxy);
    }
    Ok(Command::Unit {
        spec: values.remove("--spec").ok_or("`unit` needs `--spec`")?,
        routes: values.remove("--routes").map(PathBuf::from),
    })
}

/// Logs at the level `GRAINBENCH_UNIT_LOG` names (`warn` when unset or not a level).
fn init_logging() {
    let level = std::env::var("GRAINBENCH_UNIT_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::WARN);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
}

/// A line on stderr that never panics (the harness may be gone).
fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(command) => command,
        Err(error) => {
            note(&format!("grainbench-unit: {error}\n{USAGE}"));
            return ExitCode::from(2);
        }
    };
    if matches!(command, Command::Unit { .. } | Command::SidecarProxy) {
        init_logging();
    }
    let outcome = match command {
        Command::Help => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            Ok(())
        }
        Command::BuildId => {
            let _ = writeln!(std::io::stdout(), "{}", grainbench::unit::BUILD_ID);
            Ok(())
        }
        Command::Unit { spec, routes } => {
            grainbench::unit::serve(&spec, routes.as_deref()).map_err(|e| format!("unit: {e}"))
        }
        Command::SidecarProxy => {
            grainbench::launch::sidecar::pod::supervise().map_err(|e| format!("sidecar-proxy: {e}"))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            note(&format!("grainbench-unit {error}"));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn reads_what_the_harness_and_the_exports_pass() {
        assert_eq!(
            parse(&args("unit --run-id r1 --spec - --unit c1")),
            Ok(Command::Unit {
                spec: "-".into(),
                routes: None
            })
        );
        assert_eq!(
            parse(&args("unit --spec @/s.json --routes /r.json")),
            Ok(Command::Unit {
                spec: "@/s.json".into(),
                routes: Some("/r.json".into())
            })
        );
        assert_eq!(
            parse(&args("sidecar-proxy --run-id r1")),
            Ok(Command::SidecarProxy)
        );
        assert_eq!(parse(&args("--build-id")), Ok(Command::BuildId));
        assert_eq!(parse(&args("--help")), Ok(Command::Help));
    }

    #[test]
    fn says_what_is_wrong_with_the_arguments() {
        assert_eq!(parse(&[]), Err("no command".into()));
        assert_eq!(parse(&args("serve")), Err("unknown command `serve`".into()));
        assert_eq!(
            parse(&args("unit --unit c1")),
            Err("`unit` needs `--spec`".into())
        );
        assert_eq!(
            parse(&args("unit --spec")),
            Err("`--spec` needs a value".into())
        );
        assert_eq!(
            parse(&args("sidecar-proxy --spec x")),
            Err("`sidecar-proxy` takes no `--spec`".into())
        );
        assert_eq!(
            parse(&args("--build-id x")),
            Err("unknown command `--build-id`".into())
        );
    }
}

//! What the units run: [`serve`] serves one unit from its JSON spec (the `grainbench-unit
//! unit` entry, `src/bin/grainbench-unit.rs`: one build ships every unit of every
//! architecture), and [`binary_beside`] finds that binary for the harness, built from the
//! same sources as the harness itself.

use grain_runtime::host::HostError;
use grain_runtime::model::{Routes, UnitRole, UnitSpec};
use grain_service_unit::ServiceUnit;

/// Why a unit could not be served.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("no unit spec on stdin")]
    NoSpec,
    #[error("malformed unit spec: {0}")]
    Spec(#[from] serde_json::Error),
    #[error("cannot start the unit's async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Trace(#[from] grain_runtime::trace::TraceError),
}

/// Which sources this build was made from (a hash `build.rs` takes of the workspace's
/// sources): the harness and the units' binary of one build carry the same.
pub const BUILD_ID: &str = env!("GRAINBENCH_BUILD_ID");

/// The units' binary's file name, beside the harness's.
pub const BINARY_NAME: &str = "grainbench-unit";

/// Why the units' binary cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UnitBinaryError {
    #[error(
        "{path} is missing: units run from it, beside grainbench. `cargo build --release` \
         (or `cargo build` for a debug build) builds both; `cargo run` builds only grainbench"
    )]
    Missing { path: String },
    #[error(
        "{path} was built from other sources than this grainbench (build {theirs}, \
         grainbench {BUILD_ID}): `cargo build --release` (or `cargo build`) builds both \
         again; `cargo run` builds only grainbench"
    )]
    Stale { path: String, theirs: String },
    #[error("cannot run {path} --build-id: {source}")]
    Run {
        path: String,
        source: std::io::Error,
    },
}

/// The units' binary beside `harness` (the running `grainbench`), once it says it was
/// built from the same sources ([`BUILD_ID`]).
pub fn binary_beside(harness: &std::path::Path) -> Result<std::path::PathBuf, UnitBinaryError> {
    let path = harness.with_file_name(BINARY_NAME);
    let shown = path.display().to_string();
    if !path.is_file() {
        return Err(UnitBinaryError::Missing { path: shown });
    }
    let output = std::process::Command::new(&path)
        .arg("--build-id")
        .output()
        .map_err(|source| UnitBinaryError::Run {
            path: shown.clone(),
            source,
        })?;
    let theirs = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || theirs != BUILD_ID {
        let theirs = if theirs.is_empty() {
            "unknown".into()
        } else {
            theirs
        };
        return Err(UnitBinaryError::Stale {
            path: shown,
            theirs,
        });
    }
    Ok(path)
}

/// Worker threads per unit: units share the machine's cores, so each gets few.
const UNIT_WORKER_THREADS: usize = 2;

fn read(path: &std::path::Path) -> Result<String, UnitError> {
    std::fs::read_to_string(path).map_err(|source| UnitError::File {
        path: path.display().to_string(),
        source,
    })
}

/// Parses the spec (`spec_arg`: JSON, `-` for stdin's first line, or `@FILE`) and serves
/// the unit until it is told to stop. With `routes_file`, the unit stands alone (an
/// exported deployment): routes from the file, stdin ignored, only SIGTERM stops it.
pub fn serve(spec_arg: &str, routes_file: Option<&std::path::Path>) -> Result<(), UnitError> {
    let standalone = match routes_file {
        Some(path) => Some(serde_json::from_str::<Routes>(&read(path)?)?),
        None => {
            // First of all: notice the harness going away, even while the store is seeded.
            grain_runtime::host::watch_stdin();
            None
        }
    };
    let from_elsewhere;
    let spec_json = if spec_arg == crate::launch::SPEC_ON_STDIN {
        // The harness writes the spec as stdin's first line (argv is too small for it).
        from_elsewhere = grain_runtime::host::next_stdin_line().ok_or(UnitError::NoSpec)?;
        from_elsewhere.as_str()
    } else if let Some(path) = spec_arg.strip_prefix('@') {
        from_elsewhere = read(std::path::Path::new(path))?;
        from_elsewhere.as_str()
    } else {
        spec_arg
    };
    let mut spec: UnitSpec = serde_json::from_str(spec_json)?;
    spec.listen.routes = standalone;
    grain_runtime::host::raise_open_files_limit();
    if let Some(export) = &spec.trace {
        grain_runtime::trace::install(&spec.name, export)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            spec.worker_threads
                .unwrap_or(UNIT_WORKER_THREADS)
                .clamp(1, 256),
        )
        .enable_all()
        .build()
        .map_err(UnitError::Runtime)?;
    let served = runtime.block_on(async move {
        match &spec.role {
            UnitRole::Service {
                operations,
                embedded_stores,
                remote_request_bytes,
            } => {
                let unit = ServiceUnit::new(
                    &spec.name,
                    operations,
                    embedded_stores,
                    remote_request_bytes,
                    spec.work_iterations_per_us,
                )
                .with_calls(
                    spec.security.clone(),
                    spec.keepalive,
                    spec.resilience.clone(),
                    spec.transport,
                )
                .map_err(|source| HostError::Security {
                    unit: spec.name.clone(),
                    source,
                })?;
                unit.run(&spec.listen).await
            }
            UnitRole::State { store } => {
                let security = spec.security.as_ref();
                grain_state_unit::run(&spec.name, store, security, spec.transport, &spec.listen)
                    .await
            }
        }
    });
    // The stdin watcher is a blocking read that only ends at EOF; after a SIGTERM drain
    // it would keep the runtime's drop (and so the process) waiting for it.
    runtime.shutdown_background();
    // The last batch of spans goes out before the process does.
    grain_runtime::trace::shutdown();
    served?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A `grainbench-unit` beside a harness in a fresh directory, answering `--build-id`
    /// with `says`.
    fn beside(says: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join(BINARY_NAME);
        std::fs::write(&unit, format!("#!/bin/sh\necho '{says}'\n")).unwrap();
        std::fs::set_permissions(&unit, std::fs::Permissions::from_mode(0o755)).unwrap();
        let harness = dir.path().join("grainbench");
        (dir, harness)
    }

    #[test]
    fn the_units_binary_of_the_same_sources_is_used() {
        let (_dir, harness) = beside(BUILD_ID);
        assert_eq!(
            binary_beside(&harness).unwrap(),
            harness.with_file_name(BINARY_NAME)
        );
    }

    #[test]
    fn a_units_binary_of_other_sources_is_refused_and_says_how_to_mend_it() {
        let (_dir, harness) = beside("0123456789abcdef");
        let error = binary_beside(&harness).unwrap_err();
        assert!(
            matches!(&error, UnitBinaryError::Stale { theirs, .. } if theirs == "0123456789abcdef")
        );
        let text = error.to_string();
        assert!(
            text.contains("other sources") && text.contains("cargo build --release"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_units_binary_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = binary_beside(&dir.path().join("grainbench")).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, UnitBinaryError::Missing { .. }));
        assert!(
            text.contains("grainbench-unit is missing") && text.contains("cargo run` builds only"),
            "{text}"
        );
    }

    /// The test build's own `grainbench-unit` carries this library's build id (the two are
    /// built from the same sources in one build).
    #[test]
    fn the_build_id_is_a_hash_of_the_sources() {
        assert_eq!(BUILD_ID.len(), 16);
        assert!(
            BUILD_ID.chars().all(|c| c.is_ascii_hexdigit()),
            "{BUILD_ID}"
        );
    }
}

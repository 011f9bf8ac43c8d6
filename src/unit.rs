//! The hidden `grainbench unit` entry: serves one unit from its JSON spec. The harness
//! starts every unit this way, so one build ships every unit of every architecture.

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

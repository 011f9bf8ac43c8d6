//! The hidden `grainbench unit` entry: serves one unit from its JSON spec. The harness
//! starts every unit this way, so one build ships every unit of every architecture.

use grain_runtime::host::HostError;
use grain_runtime::model::{UnitRole, UnitSpec};
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
    #[error(transparent)]
    Host(#[from] HostError),
}

/// Worker threads per unit: units share the machine's cores, so each gets few.
const UNIT_WORKER_THREADS: usize = 2;

/// Parses `spec_json` and serves the unit until it is told to stop.
pub fn serve(spec_json: &str) -> Result<(), UnitError> {
    // First of all: notice the harness going away, even while the store is seeded.
    grain_runtime::host::watch_stdin();
    let from_stdin;
    let spec_json = if spec_json == crate::launch::SPEC_ON_STDIN {
        // The harness writes the spec as stdin's first line (argv is too small for it).
        from_stdin = grain_runtime::host::next_stdin_line().ok_or(UnitError::NoSpec)?;
        from_stdin.as_str()
    } else {
        spec_json
    };
    let spec: UnitSpec = serde_json::from_str(spec_json)?;
    grain_runtime::host::raise_open_files_limit();
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
                )
                .map_err(|source| HostError::Security {
                    unit: spec.name.clone(),
                    source,
                })?;
                unit.run(&spec.listen).await
            }
            UnitRole::State { store } => {
                let security = spec.security.as_ref();
                grain_state_unit::run(&spec.name, store, security, &spec.listen).await
            }
        }
    });
    // The stdin watcher is a blocking read that only ends at EOF; after a SIGTERM drain
    // it would keep the runtime's drop (and so the process) waiting for it.
    runtime.shutdown_background();
    served?;
    Ok(())
}

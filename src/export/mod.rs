//! `grainbench export compose|k8s`: a cut written out for an engine that runs it elsewhere,
//! built as a [`DeploySpec`] like every deployment `run` and `up` start, so the same knobs
//! (replicas, network, resilience, keep-alive) apply.
//!
//! - this file: the command ([`ExportRequest`] → [`export`]): the image to name or build,
//!   and a run's measured figures for resource requests;
//! - `manifests.rs`: the Kubernetes objects and the compose file themselves.

mod manifests;

pub use manifests::*;

use crate::deploy::{DeployEnv, DeployOverrides, DeploySpec};
use crate::launch::container::{self, ContainerError};
use crate::plan::{Architecture, PlanError, SecurityMode};
use crate::results::{ResultsError, RunResults};
use crate::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `export` was asked for.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub format: Format,
    pub cut: Architecture,
    pub dir: PathBuf,
    pub overrides: DeployOverrides,
    /// A results.json whose plaintext run of this cut gives resource requests.
    pub results: Option<PathBuf>,
    /// The image the units run; `None`: this binary's tag.
    pub image: Option<String>,
    /// Build that tag now from the units' binary (`grainbench-unit`).
    pub build_image: bool,
}

/// What `export` wrote.
#[derive(Debug)]
pub struct Exported {
    pub files: Vec<PathBuf>,
    pub image: String,
    /// The image's size, when it was built now.
    pub built_bytes: Option<u64>,
    /// Set when `results` held no plaintext run of the cut (so no resource requests).
    pub no_measured_run: bool,
}

/// Why a cut could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportCommandError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(
        "export writes plaintext hops only (a run's PKI lives in its memory); drop --security {0}"
    )]
    Secured(SecurityMode),
    #[error(transparent)]
    Image(#[from] ContainerError),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Write(#[from] ExportError),
}

impl ExportCommandError {
    /// Whether the request itself is wrong (rather than the machine).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Plan(_) | Self::Secured(_))
    }
}

/// Exports `request.cut` of `scenario`, its units served by `unit_binary`'s image.
pub fn export(
    scenario: &Scenario,
    request: &ExportRequest,
    unit_binary: &Path,
) -> Result<Exported, ExportCommandError> {
    if let Some(&mode) = request
        .overrides
        .security
        .iter()
        .find(|m| **m != SecurityMode::None)
    {
        return Err(ExportCommandError::Secured(mode));
    }
    let scenario = Arc::new(request.overrides.apply(scenario));
    let spec = DeploySpec::new(scenario, &request.cut, SecurityMode::None)?;
    let env = DeployEnv::new(unit_binary.to_path_buf(), "export".into());
    let (image, built_bytes) = match (&request.image, request.build_image) {
        (Some(image), _) => (image.clone(), None),
        (None, true) => {
            let tag = container::image_tag(unit_binary);
            let (image, bytes) = container::build_image(unit_binary, &tag, "export", None)?;
            (image, Some(bytes))
        }
        (None, false) => (
            format!("grainbench-unit:{}", container::image_tag(unit_binary)),
            None,
        ),
    };
    let measured = request
        .results
        .as_deref()
        .map(RunResults::read)
        .transpose()?;
    let arch = measured.as_ref().and_then(|r| {
        r.architectures
            .iter()
            .find(|a| a.architecture == request.cut && a.security == SecurityMode::None)
    });
    let export = Export {
        spec: &spec,
        image: image.clone(),
        work_iterations_per_us: env.work_iterations_per_us,
        measured: arch,
    };
    let files = export.write(request.format, &request.dir)?;
    Ok(Exported {
        files,
        image,
        built_bytes,
        no_measured_run: request.results.is_some() && arch.is_none(),
    })
}

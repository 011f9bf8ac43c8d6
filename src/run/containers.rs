//! A run whose units are containers (`--target compose`): Docker checked, the units' image
//! built from this binary (tagged with the commit and the binary's hash), the run's bridge
//! network created; all of it held by one guard that removes the containers and the network
//! (and the image, if asked) however the run ends.

use super::options::{DeployTarget, RunOptions};
use crate::launch::container::{self, ContainerError, ContainerTarget, RunNetwork};
use crate::results::ContainerInfo;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// What a container run holds until it ends.
pub(super) struct Prepared {
    pub target: Arc<ContainerTarget>,
    remove_image: bool,
    // Dropped after the image is removed: containers and network go last.
    _network: RunNetwork,
}

impl Prepared {
    pub fn info(&self) -> ContainerInfo {
        ContainerInfo {
            image: self.target.image.clone(),
            image_bytes: self.target.image_bytes,
            network: self.target.network.clone(),
            cpus: self.target.cpus,
            memory: self.target.memory.clone(),
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        container::remove_run(&self.target.run_id, None);
        if self.remove_image {
            if let Err(error) = container::docker(&["rmi", "-f", &self.target.image]) {
                tracing::warn!(%error, "cannot remove the run's image");
            }
        }
    }
}

/// Prepares a container run, or nothing for local processes.
pub(super) fn prepare(options: &RunOptions) -> Result<Option<Prepared>, ContainerError> {
    let DeployTarget::Compose {
        cpus,
        memory,
        remove_image,
    } = &options.target
    else {
        return Ok(None);
    };
    container::docker_available()?;
    let tag = image_tag(&options.unit_binary);
    let (image, image_bytes) = container::build_image(&options.unit_binary, &tag, &options.run_id)?;
    let network = RunNetwork::create(&options.run_id)?;
    tracing::info!(%image, image_bytes, network = %network.name, "units run as containers");
    Ok(Some(Prepared {
        target: Arc::new(ContainerTarget {
            image,
            image_bytes,
            network: network.name.clone(),
            run_id: options.run_id.clone(),
            cpus: *cpus,
            memory: memory.clone(),
        }),
        remove_image: *remove_image,
        _network: network,
    }))
}

/// `<commit>-<binary hash>`: the commit it was built from, and which build exactly.
fn image_tag(binary: &std::path::Path) -> String {
    let commit =
        super::meta::git_commit().map_or("nogit".to_string(), |c| c.chars().take(12).collect());
    let hash = std::fs::read(binary)
        .map(|bytes| super::meta::hex(&Sha256::digest(&bytes)[..4]))
        .unwrap_or_else(|_| "unknown".into());
    format!("{commit}-{hash}")
}

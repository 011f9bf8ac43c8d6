//! The images a containerised run uses, built offline from the units' binary: `FROM
//! scratch` with `grainbench-unit` and exactly the shared libraries `ldd` says it
//! needs (plus glibc's name-service modules and an `nsswitch.conf`), and for a mesh a
//! second one with HAProxy beside it. Nothing is pulled from a registry.

use super::{docker, BuiltImage, ContainerError, RUN_LABEL, UNIT_USER};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared libraries `binary` loads, by absolute path (empty for a static binary).
fn libraries(binary: &Path) -> Result<Vec<PathBuf>, ContainerError> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(ContainerError::Context)?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter_map(|line| {
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux… (0x…)`
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// Builds the units' image from `binary`, tagged `grainbench-unit:<tag>` (and `also`, in
/// the same build, so both name this very image even while another run builds), offline.
pub fn build_image(
    binary: &Path,
    tag: &str,
    run_id: &str,
    also: Option<&str>,
) -> Result<(String, u64), ContainerError> {
    build_image_with(binary, &[], &format!("grainbench-unit:{tag}"), run_id, also)
}

/// Builds the sidecar image: the unit's (`binary`, its supervisor) with `proxy` (HAProxy)
/// and its libraries beside it, as `/haproxy`; tagged `grainbench-sidecar:<tag>` only.
pub fn build_sidecar_image(
    binary: &Path,
    proxy: &Path,
    tag: &str,
    run_id: &str,
) -> Result<BuiltImage, ContainerError> {
    let image = format!("grainbench-sidecar:{tag}");
    let (tag, bytes) = build_image_with(binary, &[(proxy, "haproxy")], &image, run_id, None)?;
    Ok(BuiltImage { tag, bytes })
}

/// A `FROM scratch` image of `binary` (its entry point) and `extra` files (each copied to
/// the root under its name), with every shared library they load, tagged `image` (and
/// `also`).
fn build_image_with(
    binary: &Path,
    extra: &[(&Path, &str)],
    image: &str,
    run_id: &str,
    also: Option<&str>,
) -> Result<(String, u64), ContainerError> {
    let context = tempfile::tempdir().map_err(ContainerError::Context)?;
    let root = context.path().join("root");
    let copy = |from: &Path| -> Result<(), ContainerError> {
        let to = root.join(from.strip_prefix("/").unwrap_or(from));
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(ContainerError::Context)?;
        }
        std::fs::copy(from, &to)
            .map(|_| ())
            .map_err(ContainerError::Context)
    };
    std::fs::create_dir_all(root.join("etc")).map_err(ContainerError::Context)?;
    std::fs::copy(binary, root.join("grainbench-unit")).map_err(ContainerError::Context)?;
    let mut libs = libraries(binary)?;
    for (path, name) in extra {
        std::fs::copy(path, root.join(name)).map_err(ContainerError::Context)?;
        for lib in libraries(path)? {
            if !libs.contains(&lib) {
                libs.push(lib);
            }
        }
    }
    if !libs.is_empty() {
        // Name resolution by files, then DNS (Docker's, which knows the containers' names).
        for module in ["libnss_files.so.2", "libnss_dns.so.2"] {
            if let Some(dir) = libs.iter().find_map(|l| {
                (l.file_name()? == "libc.so.6").then(|| l.parent().map(Path::to_path_buf))?
            }) {
                let path = dir.join(module);
                if path.exists() {
                    libs.push(path);
                }
            }
        }
    }
    for lib in &libs {
        copy(lib)?;
    }
    std::fs::write(root.join("etc/nsswitch.conf"), "hosts: files dns\n")
        .map_err(ContainerError::Context)?;
    let dockerfile = format!(
        "FROM scratch\nCOPY root/ /\nUSER {UNIT_USER}:{UNIT_USER}\nENTRYPOINT [\"/grainbench-unit\"]\n"
    );
    std::fs::write(context.path().join("Dockerfile"), dockerfile)
        .map_err(ContainerError::Context)?;
    let label = format!("{RUN_LABEL}={run_id}");
    let dir = context.path().to_string_lossy().to_string();
    let mut args = vec!["build", "-q", "--label", &label, "-t", image];
    if let Some(also) = also {
        args.extend(["-t", also]);
    }
    args.push(&dir);
    docker(&args)?;
    // This build's own tag, if any: the shared one may already name another run's build.
    let built = also.unwrap_or(image);
    let bytes = docker(&["image", "inspect", "--format", "{{.Size}}", built])?
        .parse()
        .unwrap_or(0);
    Ok((image.to_string(), bytes))
}

/// `<commit>-<binary hash>`: the commit it was built from, and which build exactly.
pub fn image_tag(binary: &Path) -> String {
    // The build's own commit: the same binary gets the same tag from any directory.
    let commit = crate::BUILD_COMMIT.map_or("nogit", |c| &c[..c.len().min(12)]);
    let hash = std::fs::read(binary)
        .map(|bytes| grain_runtime::digest::hex(&Sha256::digest(&bytes)[..4]))
        .unwrap_or_else(|_| "unknown".into());
    format!("{commit}-{hash}")
}

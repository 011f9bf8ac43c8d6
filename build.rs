//! Embeds the commit this binary was built from (`GRAINBENCH_COMMIT`), so results and the
//! units' image tag name the build itself, not whatever repository the run is started in;
//! and which sources it was built from (`GRAINBENCH_BUILD_ID`, a hash of every source file
//! of the workspace), so the harness can tell a `grainbench-unit` built from other sources
//! than its own (`cargo run` builds only `grainbench`).

use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the build id covers: every file under these (the crates both binaries link).
const SOURCES: [&str; 6] = [
    "src",
    "impls",
    "crates",
    "build.rs",
    "Cargo.toml",
    "Cargo.lock",
];

/// Every file under `path`, recursively.
fn files(path: &Path, out: &mut Vec<PathBuf>) {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            for entry in entries.flatten() {
                files(&entry.path(), out);
            }
        }
        Err(_) => {
            if path.is_file() {
                out.push(path.to_path_buf());
            }
        }
    }
}

/// A hash of the sources' paths and contents (std's SipHash with its fixed keys: the same
/// sources give the same id under one toolchain, which is all the harness compares).
fn build_id() -> String {
    let mut paths = Vec::new();
    for source in SOURCES {
        files(Path::new(source), &mut paths);
        println!("cargo:rerun-if-changed={source}");
    }
    paths.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for path in &paths {
        path.hash(&mut hasher);
        std::fs::read(path).unwrap_or_default().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn main() {
    println!("cargo:rustc-env=GRAINBENCH_BUILD_ID={}", build_id());
    // The units' binary packs its relative relocations (DT_RELR, glibc 2.36+): the loader
    // reads a few KiB instead of a 220 KiB table at every unit's start, and that table's
    // pages stay out of every unit's resident set.
    println!("cargo:rustc-link-arg-bin=grainbench-unit=-Wl,-z,pack-relative-relocs");
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty());
    if let Some(commit) = commit {
        println!("cargo:rustc-env=GRAINBENCH_COMMIT={commit}");
    }
    // Built again when HEAD moves; only paths that exist (a missing one reruns every build).
    let head = Path::new(".git/HEAD");
    if head.exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        if let Ok(text) = std::fs::read_to_string(head) {
            if let Some(reference) = text.trim().strip_prefix("ref: ") {
                let path = Path::new(".git").join(reference);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
        if Path::new(".git/packed-refs").exists() {
            println!("cargo:rerun-if-changed=.git/packed-refs");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

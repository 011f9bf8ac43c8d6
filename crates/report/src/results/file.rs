//! Reading and writing results.json: atomic writes (a unique temp file beside the target,
//! fsync, rename), and a read that refuses a file of another schema version with a clear
//! error instead of misreading it.

use super::{RunResults, OLDEST_READ_VERSION, SCHEMA_VERSION};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why results could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a grainbench results file: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{} has results schema version {found}; this grainbench reads versions \
         {OLDEST_READ_VERSION} to {SCHEMA_VERSION} (use the grainbench that wrote it, or rerun)",
        path.display()
    )]
    Version { path: PathBuf, found: u64 },
}

/// Writes `bytes` to `path` atomically: a uniquely named temp file in the same directory
/// (created exclusively, so two writers never share one), fsynced, then renamed over
/// `path`. Readers see the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut attempt = 0u32;
    let (temp, mut file) = loop {
        let temp = dir.join(format!(
            ".{name}.{}.{}.{attempt}.tmp",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
        {
            Ok(file) => break (temp, file),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Checks before anything is deployed that results can be written under `dir`: creates
/// it, and writes and removes a probe file.
pub fn check_out_dir(dir: &Path) -> Result<(), ResultsError> {
    let probe = dir.join("results.json");
    let error = |source| ResultsError::Write {
        path: probe.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(error)?;
    let temp = dir.join(format!(".write-probe.{}.tmp", std::process::id()));
    std::fs::write(&temp, b"").map_err(error)?;
    std::fs::remove_file(&temp).map_err(error)
}

impl RunResults {
    /// Writes `dir/results.json` atomically, creating `dir`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ResultsError> {
        let path = dir.join("results.json");
        let write_error = |source| ResultsError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(write_error)?;
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| write_error(std::io::Error::other(e)))?;
        write_atomic(&path, &json).map_err(write_error)?;
        Ok(path)
    }

    /// Reads a results file, refusing any schema version but this one.
    pub fn read(path: &Path) -> Result<Self, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parse_error = |source| ResultsError::Parse {
            path: path.to_path_buf(),
            source,
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(parse_error)?;
        if let Some(found) = value.get("schema_version").and_then(|v| v.as_u64()) {
            if !(u64::from(OLDEST_READ_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&found) {
                return Err(ResultsError::Version {
                    path: path.to_path_buf(),
                    found,
                });
            }
        }
        serde_json::from_value(value).map_err(parse_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.html");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("index.html")]);
    }

    #[test]
    fn another_schema_version_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        std::fs::write(&path, r#"{"schema_version": 99}"#).unwrap();
        let error = RunResults::read(&path).unwrap_err().to_string();
        assert!(error.contains("schema version 99"), "{error}");
        assert!(error.contains(&format!("to {SCHEMA_VERSION}")), "{error}");
    }
}

//! wrk beside the driver: the same endpoint driven closed loop by `wrk` (when it is
//! installed), with its CPU per request from the kernel's accounting of waited-for
//! children, for a like-for-like ratio with the driver's closed loop.

use crate::deploy::probe::{ping_body, PING};
use crate::floor::round2;
use grain_runtime::wire::op_path;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, serde::Serialize)]
pub struct WrkFigures {
    pub connections: usize,
    /// wrk's threads: the same as the driver's closed loop.
    pub threads: usize,
    pub requests: u64,
    pub rps: f64,
    pub cpu_us_per_request: f64,
    /// Our closed-loop CPU per request divided by wrk's (1.0 = as cheap as wrk).
    pub driver_to_wrk_cpu_ratio: f64,
}

/// Runs wrk against the ping endpoint with as many threads as the driver's closed loop had
/// (at most one per connection); returns its figures or why it could not.
pub(super) fn run_wrk(
    addr: &str,
    connections: usize,
    threads: usize,
    duration: Duration,
) -> Result<WrkFigures, String> {
    let threads = threads.clamp(1, connections.max(1));
    let wrk = find_on_path("wrk")
        .ok_or("wrk is not installed (apt-get install wrk, or scripts/install-wrk.sh)")?;
    let dir = private_dir()?;
    let script = dir.path().join("post.lua");
    let body = String::from_utf8_lossy(&ping_body()).into_owned();
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = [[{body}]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
    );
    std::fs::write(&script, lua).map_err(|e| format!("cannot write the wrk script: {e}"))?;
    let seconds = duration.as_secs().max(1);
    let before = children_cpu();
    let started = Instant::now();
    let output = std::process::Command::new(wrk)
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://{addr}{}", op_path(PING)))
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    drop(dir);
    let cpu = children_cpu().saturating_sub(before);
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let requests =
        parse_wrk_requests(&stdout).ok_or_else(|| format!("cannot read wrk's output: {stdout}"))?;
    Ok(WrkFigures {
        connections,
        threads,
        requests,
        rps: round2(requests as f64 / elapsed.as_secs_f64()),
        cpu_us_per_request: round2(cpu.as_secs_f64() * 1e6 / requests.max(1) as f64),
        driver_to_wrk_cpu_ratio: 0.0,
    })
}

/// "  123456 requests in 5.00s, ..." → 123456.
fn parse_wrk_requests(output: &str) -> Option<u64> {
    output
        .lines()
        .find(|line| line.contains(" requests in "))
        .and_then(|line| line.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// User + system CPU of all waited-for children of this process.
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// A directory of our own under the temp dir (tempfile: a name nobody can predict, created
/// exclusively; mode 0700 asked for, tempfile's default follows the umask), removed with everything in it when dropped, on every path
/// out.
fn private_dir() -> Result<tempfile::TempDir, String> {
    use std::os::unix::fs::PermissionsExt as _;
    tempfile::Builder::new()
        .prefix("grainbench-wrk-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|e| format!("cannot create a private temp directory: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_temp_dirs_are_unique_owner_only_and_removed() {
        use std::os::unix::fs::PermissionsExt as _;
        let (a, b) = (private_dir().unwrap(), private_dir().unwrap());
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = a.path().to_path_buf();
        std::fs::write(path.join("post.lua"), "x").unwrap();
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    fn reads_wrk_request_count() {
        let out = "Running 5s test @ http://127.0.0.1:1/op/ping\n  1 threads and 16 connections\n  98765 requests in 5.00s, 12.3MB read\nRequests/sec:  19753.00\n";
        assert_eq!(parse_wrk_requests(out), Some(98765));
        assert_eq!(parse_wrk_requests("nothing"), None);
    }
}

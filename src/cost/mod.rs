//! Deploy cost, from the kernel's own accounting (`/proc`, read with the `procfs` crate):
//! unit counts and endpoints, artifact bytes, cold start over repeated deployments, idle
//! and peak RSS per unit, CPU time of the units per request, and the blast radius of a
//! change to one operation.

use crate::launch::{self, LaunchError, LaunchOptions, LiveDeployment};
use crate::plan::Deployment;
pub use crate::results::{ColdStart, UnitsUsage};
use crate::results::{StepNoise, StepResult};
use grain_runtime::model::UnitRole;
use procfs::WithCurrentSystemInfo;
pub use sampler::{Sampler, UnitPids};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

mod sampler;

/// How often unit memory is sampled while load runs.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// CPU time and resident memory of one process, now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// User + system.
    pub cpu: Duration,
    /// System (kernel) time alone.
    pub system: Duration,
    pub rss_bytes: u64,
}

/// Reads `/proc/<pid>/stat`: user + system CPU of the whole process, its system CPU and
/// its RSS (the kernel counts CPU in clock ticks, 10 ms on most systems).
pub fn usage(pid: u32) -> Option<Usage> {
    let stat = procfs::process::Process::new(pid as i32)
        .ok()?
        .stat()
        .ok()?;
    let ticks = procfs::ticks_per_second().max(1);
    let time = |t: u64| Duration::from_nanos(t.saturating_mul(1_000_000_000) / ticks);
    Some(Usage {
        cpu: time(stat.utime + stat.stime),
        system: time(stat.stime),
        rss_bytes: stat.rss_bytes().get(),
    })
}

/// A process's memory as the kernel splits it (`/proc/<pid>/smaps_rollup`), bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Every page it maps that is in memory, shared ones counted whole (RSS).
    pub rss: u64,
    /// Each page divided among the processes that map it (PSS): over every process of a
    /// machine, these add up to the memory in use.
    pub pss: u64,
    /// Pages no other process maps (USS: private clean + private dirty).
    pub private: u64,
}

/// Parses a `smaps_rollup` (fields in kB).
fn parse_rollup(text: &str) -> Memory {
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| {
                let rest = line.strip_prefix(name)?.strip_prefix(':')?;
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
            .unwrap_or(0)
            * 1024
    };
    Memory {
        rss: field("Rss"),
        pss: field("Pss"),
        private: field("Private_Clean") + field("Private_Dirty"),
    }
}

/// The memory of every unit right now, split (unit → memory); a process whose
/// `smaps_rollup` cannot be read is left out.
pub fn memory_now(units: &[(String, u32)]) -> BTreeMap<String, Memory> {
    units
        .iter()
        .filter_map(|(name, pid)| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
            Some((name.clone(), parse_rollup(&text)))
        })
        .collect()
}

/// Resident memory of every unit right now (unit → bytes).
pub fn rss_now(units: &[(String, u32)]) -> BTreeMap<String, u64> {
    units
        .iter()
        .map(|(name, pid)| (name.clone(), usage(*pid).map_or(0, |u| u.rss_bytes)))
        .collect()
}

/// A deployment's cold start from its samples (ms), overall and per unit.
pub fn cold_start(samples_ms: Vec<f64>, per_unit: BTreeMap<String, Vec<f64>>) -> ColdStart {
    ColdStart {
        median_ms: median(&samples_ms),
        min_ms: samples_ms.iter().copied().fold(f64::INFINITY, f64::min),
        max_ms: samples_ms.iter().copied().fold(0.0, f64::max),
        per_unit_median_ms: per_unit
            .into_iter()
            .map(|(unit, s)| (unit, median(&s)))
            .collect(),
        samples_ms,
    }
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// Deploys `plan` `repeats` times, timing each deployment, and keeps the last one running
/// (the earlier ones are stopped as soon as they are ready).
pub async fn deploy_timed(
    plan: &Deployment,
    options: &LaunchOptions,
    repeats: usize,
) -> Result<(LiveDeployment, ColdStart), LaunchError> {
    let mut samples = Vec::with_capacity(repeats);
    let mut per_unit: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut remaining = repeats.max(1);
    loop {
        let live = launch::launch(plan, options).await?;
        samples.push(live.cold_start.as_secs_f64() * 1e3);
        for unit in &live.units {
            let ms = unit.listening_after.as_secs_f64() * 1e3;
            per_unit.entry(unit.name.clone()).or_default().push(ms);
        }
        remaining -= 1;
        if remaining == 0 {
            return Ok((live, cold_start(samples, per_unit)));
        }
        live.shutdown().await;
    }
}

/// The units that must restart when `op`'s code changes: every unit whose process runs
/// that operation's code (nano: its own unit; micro: its service's unit; monolith: all).
pub fn blast_radius(plan: &Deployment, op: &str) -> Vec<usize> {
    plan.units
        .iter()
        .enumerate()
        .filter(|(_, unit)| match &unit.role {
            UnitRole::Service { operations, .. } => operations.iter().any(|o| o.name == op),
            UnitRole::State { .. } => false,
        })
        .map(|(index, _)| index)
        .collect()
}

/// Business endpoints a unit exposes (operations, or a state unit's get and put).
pub fn endpoints(role: &UnitRole) -> usize {
    match role {
        UnitRole::Service { operations, .. } => operations.len(),
        UnitRole::State { .. } => 2,
    }
}

/// Every unit's body codec time since it was last taken (which resets it), added up; or
/// the unit that could not say.
pub async fn take_codec_time(
    live: &LiveDeployment,
) -> Result<grain_runtime::transport::codec::CodecTime, String> {
    use grain_runtime::transport::codec::CodecTime;
    let client = live
        .options
        .client(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let mut total = CodecTime::default();
    for unit in &live.units {
        let path = grain_runtime::wire::CODEC_TIME_PATH;
        let reply = client
            .post(&unit.endpoint(), path, bytes::Bytes::new())
            .await
            .map_err(|e| format!("unit {}: {e}", unit.name))?;
        let time: CodecTime = serde_json::from_slice(&reply.body)
            .map_err(|e| format!("unit {}: malformed codec time: {e}", unit.name))?;
        total.calls += time.calls;
        total.timed += time.timed;
        total.timed_ns += time.timed_ns;
    }
    Ok(total)
}

/// `usage` parted into the units' and, if any were sampled, their sidecars'.
pub fn split_sidecars(usage: UnitsUsage) -> (UnitsUsage, Option<UnitsUsage>) {
    use crate::launch::sidecar::SIDECAR_PREFIX;
    let is_sidecar = |name: &String| name.starts_with(SIDECAR_PREFIX);
    if !usage.cpu_ms.keys().any(is_sidecar) && !usage.peak_rss_bytes.keys().any(is_sidecar) {
        return (usage, None);
    }
    let pick = |want: bool| {
        let of = |map: &BTreeMap<String, f64>| -> BTreeMap<String, f64> {
            map.iter()
                .filter(|(k, _)| is_sidecar(k) == want)
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        };
        let peak_rss_bytes: BTreeMap<String, u64> = usage
            .peak_rss_bytes
            .iter()
            .filter(|(k, _)| is_sidecar(k) == want)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let (cpu_ms, system_cpu_ms) = (of(&usage.cpu_ms), of(&usage.system_cpu_ms));
        UnitsUsage {
            cpu_ms_total: cpu_ms.values().sum(),
            system_cpu_ms_total: (!system_cpu_ms.is_empty()).then(|| system_cpu_ms.values().sum()),
            peak_rss_bytes_total: peak_rss_bytes.values().sum(),
            cpu_ms,
            system_cpu_ms,
            peak_rss_bytes,
        }
    };
    (pick(false), Some(pick(true)))
}

/// Size of the artifact every unit ships: the `grainbench` binary itself.
pub fn artifact_bytes(binary: &Path) -> u64 {
    std::fs::metadata(binary).map_or(0, |m| m.len())
}

/// Attaches the units' body codec time during this step, per completed request.
pub fn with_codec_time(
    mut step: StepResult,
    time: grain_runtime::transport::codec::CodecTime,
) -> StepResult {
    let completed = step.ok + step.error_total;
    step.units_codec_cpu_us_per_request = time
        .estimated_ns()
        .filter(|_| completed > 0)
        .map(|ns| ((ns / 1e3 / completed as f64) * 100.0).round() / 100.0);
    step
}

/// Attaches the units' CPU and memory during this step, and their sidecars' apart
/// (sampled together, named `sidecar:<process>`).
pub fn with_units(mut step: StepResult, usage: UnitsUsage) -> StepResult {
    let (usage, sidecars) = split_sidecars(usage);
    let completed = step.ok + step.error_total;
    let per_request = |ms: f64| ((ms * 1e3 / completed as f64) * 100.0).round() / 100.0;
    if let Some(sidecars) = sidecars {
        step.sidecars_cpu_us_per_request =
            (completed > 0).then(|| per_request(sidecars.cpu_ms_total));
        step.sidecars = Some(sidecars);
    }
    step.units_cpu_us_per_request = (completed > 0).then(|| per_request(usage.cpu_ms_total));
    step.units_system_cpu_us_per_request = (completed > 0)
        .then_some(usage.system_cpu_ms_total)
        .flatten()
        .map(per_request);
    step.units = Some(usage);
    step
}

/// The machine's CPU time (all cores, from `/proc/stat`) and this process's own, at one
/// instant: two of them bracket a step to say what else the machine did meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct MachineTimes {
    at: std::time::Instant,
    /// Busy time of all cores (everything but idle and iowait), including steal, in ticks.
    busy_ticks: u64,
    steal_ticks: u64,
    total_ticks: u64,
    /// This process's CPU time (the harness: driver included).
    own: Duration,
}

impl MachineTimes {
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let get = |i: usize| fields.get(i).copied().unwrap_or(0);
        let total: u64 = (0..8).map(get).sum();
        let idle = get(3) + get(4);
        Some(MachineTimes {
            at: std::time::Instant::now(),
            busy_ticks: total.saturating_sub(idle),
            steal_ticks: get(7),
            total_ticks: total,
            own: usage(std::process::id())?.cpu,
        })
    }

    /// What the machine did since `self` besides grainbench: steal as a share of all CPU
    /// time, and the cores other processes kept busy (busy time less steal, less this
    /// process's and the units' CPU time, `units_cpu_ms`).
    pub fn noise_since(&self, units_cpu_ms: f64) -> Option<StepNoise> {
        let now = MachineTimes::now()?;
        let ticks = procfs::ticks_per_second().max(1) as f64;
        let elapsed = now.at.duration_since(self.at).as_secs_f64();
        let total = now.total_ticks.saturating_sub(self.total_ticks) as f64;
        if elapsed <= 0.0 || total <= 0.0 {
            return None;
        }
        let steal = now.steal_ticks.saturating_sub(self.steal_ticks) as f64;
        let busy_s = (now.busy_ticks.saturating_sub(self.busy_ticks) as f64 - steal) / ticks;
        let ours_s = now.own.saturating_sub(self.own).as_secs_f64() + units_cpu_ms / 1e3;
        Some(StepNoise {
            steal_share: (steal / total * 1000.0).round() / 1000.0,
            other_cores: (((busy_s - ours_s) / elapsed).max(0.0) * 100.0).round() / 100.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, Architecture};

    /// Of this process's resident memory, the private part and the proportional share are
    /// each at most the whole, and a copy of the kernel's fields parses to the same
    /// figures.
    #[test]
    fn memory_splits_into_shared_and_private_from_the_kernel() {
        let pid = std::process::id();
        let mine = memory_now(&[("me".into(), pid)]);
        let m = mine["me"];
        assert!(m.rss > 0 && m.pss > 0 && m.private > 0, "{m:?}");
        assert!(m.private <= m.pss && m.pss <= m.rss, "{m:?}");
        let text = "55d1-7ffd ---p 00000000 00:00 0 [rollup]\nRss:  9452 kB\nPss:  1200 kB\nPss_Anon:  800 kB\nShared_Clean:  8612 kB\nPrivate_Clean:  4 kB\nPrivate_Dirty:  836 kB\n";
        assert_eq!(
            parse_rollup(text),
            Memory {
                rss: 9452 * 1024,
                pss: 1200 * 1024,
                private: 840 * 1024
            }
        );
    }

    #[test]
    fn usage_of_this_process_is_real() {
        let mine = usage(std::process::id()).expect("our own /proc entry");
        assert!(mine.rss_bytes > 0);
        assert!(usage(u32::MAX).is_none());
    }

    #[test]
    fn median_of_odd_and_even_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn blast_radius_is_one_unit_the_service_or_everything() {
        let s = crate::scenario::checkout_for_tests();
        let nano = plan(&s, &Architecture::Nano).unwrap();
        let micro = plan(&s, &Architecture::Micro).unwrap();
        let mono = plan(&s, &Architecture::Monolith).unwrap();
        for op in &s.operations {
            let n = blast_radius(&nano, &op.name);
            assert_eq!(n.len(), 1);
            assert_eq!(nano.units[n[0]].hosts, vec![op.name.clone()]);
            let m = blast_radius(&micro, &op.name);
            assert_eq!(m.len(), 1);
            assert_eq!(micro.units[m[0]].name, format!("micro-{}", op.service));
            assert_eq!(blast_radius(&mono, &op.name), vec![0]);
        }
    }
}

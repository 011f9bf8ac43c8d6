//! The units' CPU and memory while a step runs: RSS sampled several times a second, CPU
//! time from the start of the step to its end, per unit. A unit whose process is replaced
//! mid-step (a fault's restart, a redeploy) counts both processes: the old one up to its
//! last sample, the new one from its start.

use super::{usage, UnitsUsage, SAMPLE_INTERVAL};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The process of each unit a step samples, shared with whoever replaces one mid-step.
#[derive(Debug, Clone, Default)]
pub struct UnitPids(Arc<Mutex<Vec<(String, u32)>>>);

impl UnitPids {
    pub fn new(units: Vec<(String, u32)>) -> Self {
        UnitPids(Arc::new(Mutex::new(units)))
    }

    /// Every unit's process now (same units, same order; some pids new).
    pub fn set_all(&self, units: Vec<(String, u32)>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = units;
    }

    fn get(&self) -> Vec<(String, u32)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A process's CPU time: all of it, and the kernel's part.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    total: Duration,
    system: Duration,
}

impl Cpu {
    fn of(usage: &crate::cost::Usage) -> Self {
        Cpu {
            total: usage.cpu,
            system: usage.system,
        }
    }

    fn since(self, start: Cpu) -> Cpu {
        Cpu {
            total: self.total.saturating_sub(start.total),
            system: self.system.saturating_sub(start.system),
        }
    }

    fn plus(self, other: Cpu) -> Cpu {
        Cpu {
            total: self.total + other.total,
            system: self.system + other.system,
        }
    }
}

/// One unit, sampled.
#[derive(Debug, Clone, Copy)]
struct Track {
    pid: u32,
    /// The process's CPU time when this track began following it.
    start_cpu: Cpu,
    /// Its CPU time at the last sample.
    last_cpu: Cpu,
    /// CPU of the unit's earlier processes during the step.
    earlier_cpu: Cpu,
    peak_rss: u64,
}

impl Track {
    fn observe(&mut self, pid: u32) {
        if pid != self.pid {
            // Replaced: the old process's share up to its last sample; the new one's whole
            // life is within the step.
            self.earlier_cpu = self.earlier_cpu.plus(self.last_cpu.since(self.start_cpu));
            (self.pid, self.start_cpu, self.last_cpu) = (pid, Cpu::default(), Cpu::default());
        }
        if let Some(now) = usage(pid) {
            self.last_cpu = Cpu::of(&now);
            self.peak_rss = self.peak_rss.max(now.rss_bytes);
        }
    }

    fn cpu(&self) -> Cpu {
        self.earlier_cpu.plus(self.last_cpu.since(self.start_cpu))
    }
}

/// Samples every unit's process until stopped.
pub struct Sampler {
    pids: UnitPids,
    tracks: Arc<Mutex<Vec<Track>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(pids: UnitPids) -> Self {
        let tracks: Vec<Track> = pids
            .get()
            .iter()
            .map(|(_, pid)| {
                let now = usage(*pid).unwrap_or_default();
                Track {
                    pid: *pid,
                    start_cpu: Cpu::of(&now),
                    last_cpu: Cpu::of(&now),
                    earlier_cpu: Cpu::default(),
                    peak_rss: now.rss_bytes,
                }
            })
            .collect();
        let tracks = Arc::new(Mutex::new(tracks));
        let task = tokio::spawn(sample(pids.clone(), tracks.clone()));
        Sampler { pids, tracks, task }
    }

    /// Stops sampling and returns what each unit used since `start`.
    pub fn stop(self) -> UnitsUsage {
        self.task.abort();
        tick(&self.pids, &self.tracks);
        let tracks = self.tracks.lock().map(|t| t.clone()).unwrap_or_default();
        let mut result = UnitsUsage::default();
        for ((name, _), track) in self.pids.get().iter().zip(tracks) {
            let cpu = track.cpu();
            result
                .cpu_ms
                .insert(name.clone(), cpu.total.as_secs_f64() * 1e3);
            result
                .system_cpu_ms
                .insert(name.clone(), cpu.system.as_secs_f64() * 1e3);
            result.peak_rss_bytes.insert(name.clone(), track.peak_rss);
        }
        result.cpu_ms_total = result.cpu_ms.values().sum();
        result.system_cpu_ms_total = Some(result.system_cpu_ms.values().sum());
        result.peak_rss_bytes_total = result.peak_rss_bytes.values().sum();
        result
    }
}

fn tick(pids: &UnitPids, tracks: &Mutex<Vec<Track>>) {
    let current = pids.get();
    if let Ok(mut tracks) = tracks.lock() {
        for (track, (_, pid)) in tracks.iter_mut().zip(&current) {
            track.observe(*pid);
        }
    }
}

async fn sample(pids: UnitPids, tracks: Arc<Mutex<Vec<Track>>>) {
    let mut interval = tokio::time::interval(SAMPLE_INTERVAL);
    loop {
        interval.tick().await;
        tick(&pids, &tracks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit restarted mid-step counts its new process's CPU too (the step read the pids
    /// taken before the fault, so a restarted process's CPU was missed).
    #[tokio::test]
    async fn a_replaced_process_counts_both_processes() {
        let mut old = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pids = UnitPids::new(vec![("u".into(), old.id())]);
        let sampler = Sampler::start(pids.clone());
        // The replacement burns CPU; the old one idles.
        let mut new = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .spawn()
            .unwrap();
        pids.set_all(vec![("u".into(), new.id())]);
        tokio::time::sleep(SAMPLE_INTERVAL * 2).await;
        while usage(new.id()).is_some_and(|u| u.cpu < Duration::from_millis(50)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let used = sampler.stop();
        let _ = (old.kill(), new.kill(), old.wait(), new.wait());
        assert!(used.cpu_ms["u"] >= 40.0, "{:?}", used.cpu_ms);
    }
}

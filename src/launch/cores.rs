//! The cores a deployment's units may run on (`--unit-cpus 0` or `0,2-3`): each unit
//! process (and its sidecar) is confined to them before it execs, so every thread it makes
//! is too; a unit's container (`--target compose`) gets them as its cpuset instead. The
//! driver's load threads run on the cores left ([`UnitCores::rest`]), so neither competes
//! with the other for a core; the harness stays where it was. Where a hop's time goes
//! depends on it: on a virtual machine, waking a process on another, idle core can cost
//! several times a wake-up on the waker's own core (the floor's least hop across two cores
//! measures it), so units confined to one core pay much less per hop than units spread
//! over two, and the comparison says which was measured.

use std::fmt;
use std::str::FromStr;

/// A set of cores, in order, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCores(Vec<usize>);

/// The highest core number a set may name (the kernel's `CPU_SETSIZE`, less one).
const MAX_CORE: usize = libc::CPU_SETSIZE as usize - 1;

impl FromStr for UnitCores {
    type Err = String;

    /// `0`, `0,2`, `0-3`, `0,2-3`: as `taskset -c` reads them.
    fn from_str(text: &str) -> Result<Self, String> {
        let core = |part: &str| -> Result<usize, String> {
            let core: usize = part.trim().parse().map_err(|_| {
                format!("'{part}' in '{text}' is not a core number (a list such as 0 or 0,2-3)")
            })?;
            if core > MAX_CORE {
                return Err(format!("core {core} is above {MAX_CORE}"));
            }
            Ok(core)
        };
        let mut cores = Vec::new();
        for part in text.split(',') {
            match part.split_once('-') {
                Some((first, last)) => {
                    let (first, last) = (core(first)?, core(last)?);
                    if first > last {
                        return Err(format!("'{part}' in '{text}' runs backwards"));
                    }
                    cores.extend(first..=last);
                }
                None => cores.push(core(part)?),
            }
        }
        cores.sort_unstable();
        cores.dedup();
        Ok(UnitCores(cores))
    }
}

impl fmt::Display for UnitCores {
    /// The shortest list that reads back the same: `0,2-3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut rest = self.0.iter().copied().peekable();
        while let Some(first) = rest.next() {
            let mut last = first;
            while rest.peek() == Some(&(last + 1)) {
                last = rest.next().unwrap_or(last);
            }
            parts.push(match last == first {
                true => first.to_string(),
                false => format!("{first}-{last}"),
            });
        }
        f.write_str(&parts.join(","))
    }
}

impl UnitCores {
    /// An error naming the cores this process may not use (so neither may its units).
    pub fn check_available(&self) -> Result<(), String> {
        let allowed = allowed_cores()
            .map_err(|e| format!("cannot read which cores this process may use: {e}"))?;
        let missing: Vec<String> = self
            .0
            .iter()
            .filter(|core| !allowed.contains(core))
            .map(ToString::to_string)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let allowed = UnitCores(allowed);
        Err(format!(
            "core(s) {} are not among the ones this process may use ({allowed})",
            missing.join(", ")
        ))
    }

    /// The cores this process may use outside the set, where the load driver runs so that
    /// it never competes with the units for theirs; none when the set leaves none (or the
    /// process cannot tell which it may use).
    pub fn rest(&self) -> Option<UnitCores> {
        let rest: Vec<usize> = allowed_cores()
            .ok()?
            .into_iter()
            .filter(|core| !self.0.contains(core))
            .collect();
        (!rest.is_empty()).then_some(UnitCores(rest))
    }

    /// One core.
    pub fn one(core: usize) -> Self {
        UnitCores(vec![core.min(MAX_CORE)])
    }

    /// Confines the calling thread, and every thread it makes from then on, to the set.
    pub fn confine_this_thread(&self) -> std::io::Result<()> {
        confine(&self.cpu_set())
    }

    /// The kernel's form of the set, made before a fork (building it allocates nothing,
    /// but it is built once, not in the child).
    pub(crate) fn cpu_set(&self) -> libc::cpu_set_t {
        // SAFETY: cpu_set_t is plain data, and CPU_SET only writes bits within it (every
        // core is at most MAX_CORE).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &core in &self.0 {
                libc::CPU_SET(core, &mut set);
            }
            set
        }
    }
}

/// The cores the calling thread may run on, in order.
pub fn allowed_cores() -> std::io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size into it.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        set
    };
    // SAFETY: CPU_ISSET only reads the set.
    Ok((0..=MAX_CORE)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Confines the calling thread (and every thread it makes from then on) to `set`; in a
/// child before exec, that is the whole process. Async-signal-safe: one system call.
pub(crate) fn confine(set: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: sched_setaffinity only reads the set.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_list_reads_as_taskset_reads_it_and_prints_back_the_same() {
        let parsed: UnitCores = "3,0-1,1".parse().unwrap();
        assert_eq!(parsed.0, [0, 1, 3]);
        assert_eq!(parsed.to_string(), "0-1,3");
        assert_eq!("0".parse::<UnitCores>().unwrap().to_string(), "0");
        for (bad, says) in [
            ("", "not a core number"),
            ("a", "not a core number"),
            ("3-1", "runs backwards"),
            ("0,", "not a core number"),
            ("99999", "above"),
        ] {
            let error = bad.parse::<UnitCores>().unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }

    #[test]
    fn the_rest_is_every_core_this_process_may_use_outside_the_set() {
        let allowed = allowed_cores().unwrap();
        let first = UnitCores::one(allowed[0]);
        match first.rest() {
            Some(rest) => assert_eq!(rest.0, allowed[1..]),
            None => assert_eq!(allowed.len(), 1, "cores were left: {allowed:?}"),
        }
        assert_eq!(
            UnitCores(allowed).rest(),
            None,
            "the whole machine leaves none"
        );
    }

    #[test]
    fn cores_this_process_may_not_use_are_named() {
        let allowed = allowed_cores().unwrap();
        let first = UnitCores(vec![allowed[0]]);
        assert_eq!(first.check_available(), Ok(()));
        let error = UnitCores(vec![allowed[0], MAX_CORE])
            .check_available()
            .unwrap_err();
        assert!(
            error.contains(&format!("core(s) {MAX_CORE} are not")),
            "{error}"
        );
    }
}

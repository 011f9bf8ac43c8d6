//! Where the least hop's two threads run: as the scheduler places them, both pinned to one
//! core, or pinned to two different cores. A wake-up that crosses cores (an interrupt to the
//! other core, which may sit idle) can cost far more than one on the waker's own core,
//! above all on a virtual machine, where waking an idle virtual core is a trip through the
//! hypervisor. Two threads that only talk to each other are often placed on one core by the
//! scheduler; a unit's threads among many units' are not, so the two pinned floors bound what
//! a hop between units pays for its wake-ups on this machine.

pub(super) use crate::launch::cores::allowed_cores;
use crate::launch::cores::{confine, UnitCores};
use serde::{Deserialize, Serialize};

/// Where the least hop's client and server run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Wherever the scheduler puts them (the least hop of every round).
    Free,
    /// Both on the first core this process may use.
    OneCore,
    /// The client on the first core this process may use, the server on the second.
    AcrossCores,
}

impl Placement {
    /// The cores (client's, server's) this placement pins to, from the cores the calling
    /// thread may use; none for [`Placement::Free`]. An error when the placement needs more
    /// cores than there are.
    pub(super) fn cores(self) -> Result<Option<(usize, usize)>, String> {
        if self == Placement::Free {
            return Ok(None);
        }
        let allowed =
            allowed_cores().map_err(|e| format!("cannot read this thread's cores: {e}"))?;
        match (self, allowed.as_slice()) {
            (Placement::OneCore, [first, ..]) => Ok(Some((*first, *first))),
            (Placement::AcrossCores, [first, second, ..]) => Ok(Some((*first, *second))),
            (_, _) => Err(format!(
                "{} core(s) to run on: too few to place the least hop {}",
                allowed.len(),
                self.describe()
            )),
        }
    }

    /// Whether this thread has the cores the placement needs.
    pub fn possible(self) -> bool {
        self.cores().is_ok()
    }

    /// How the placement reads in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Placement::Free => "where the scheduler puts it",
            Placement::OneCore => "on one core",
            Placement::AcrossCores => "across two cores",
        }
    }
}

/// Pins the calling thread to `core`.
pub(super) fn pin_this_thread(core: usize) -> Result<(), String> {
    confine(&UnitCores::one(core).cpu_set())
        .map_err(|e| format!("cannot pin a thread to core {core}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_thread_runs_on_its_core_only() {
        let first = allowed_cores().unwrap()[0];
        std::thread::spawn(move || {
            pin_this_thread(first).unwrap();
            assert_eq!(allowed_cores().unwrap(), vec![first]);
            // Pinned to one core, the thread has too few cores to place a hop across two.
            let error = Placement::AcrossCores.cores().unwrap_err();
            assert!(error.contains("1 core(s)"), "{error}");
            assert_eq!(Placement::OneCore.cores().unwrap(), Some((first, first)));
        })
        .join()
        .unwrap();
    }
}

//! Calibrated CPU work: a busy loop whose iteration count per microsecond is measured once
//! by the harness and handed to every unit, so all architectures burn identical CPU.

use std::hint::black_box;
use std::time::Instant;

/// Runs `iterations` rounds of integer mixing and returns the final state (so the loop
/// cannot be optimised away).
pub fn spin(iterations: u64) -> u64 {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..iterations {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state = black_box(state.wrapping_add(i));
    }
    state
}

/// Burns `cpu_us` microseconds of CPU at the given calibration.
pub fn burn(cpu_us: u64, iterations_per_us: f64) -> u64 {
    spin(iterations_for(cpu_us, iterations_per_us))
}

/// Number of loop iterations equal to `cpu_us` microseconds at the given calibration.
pub fn iterations_for(cpu_us: u64, iterations_per_us: f64) -> u64 {
    (cpu_us as f64 * iterations_per_us).round() as u64
}

/// Measures loop iterations per microsecond on this machine: the fastest of several
/// rounds, so that a round slowed down by another process does not skew the figure.
pub fn measure_iterations_per_us() -> f64 {
    const ROUND_ITERATIONS: u64 = 2_000_000;
    const ROUNDS: usize = 7;
    spin(ROUND_ITERATIONS / 4); // warm the core's frequency and caches
    let fastest_us = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            spin(ROUND_ITERATIONS);
            start.elapsed().as_secs_f64() * 1e6
        })
        .fold(f64::INFINITY, f64::min);
    ROUND_ITERATIONS as f64 / fastest_us.max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_is_positive_and_scales_iterations() {
        let per_us = measure_iterations_per_us();
        assert!(per_us > 0.0);
        assert_eq!(iterations_for(10, per_us), (10.0 * per_us).round() as u64);
        assert_eq!(iterations_for(0, per_us), 0);
    }

    #[test]
    fn spin_is_deterministic() {
        assert_eq!(spin(1000), spin(1000));
        assert_ne!(spin(1000), spin(1001));
    }
}

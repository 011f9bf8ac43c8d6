//! What every bench shares: `GRAINBENCH_BENCH_QUICK=1` shortens it (for CI or a smoke
//! test), and criterion's settings for a quick and a full run.

use criterion::Criterion;
use std::time::Duration;

/// Whether `GRAINBENCH_BENCH_QUICK` asks for a short run.
pub fn quick() -> bool {
    std::env::var("GRAINBENCH_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Criterion with 10 samples and the `quick` warm-up and measurement times under
/// `GRAINBENCH_BENCH_QUICK`, else 50 samples and the `full` ones.
pub fn config(quick_times: [Duration; 2], full_times: [Duration; 2]) -> Criterion {
    let (samples, [warm_up, measurement]) = if quick() {
        (10, quick_times)
    } else {
        (50, full_times)
    };
    Criterion::default()
        .sample_size(samples)
        .warm_up_time(warm_up)
        .measurement_time(measurement)
}

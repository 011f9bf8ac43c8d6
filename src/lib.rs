//! # grainbench — what does the finer cut cost?
//!
//! One scenario file is deployed as nanoservices, microservices and a monolith on real
//! processes, driven with open-loop load, and measured side by side.
//!
//! # Layout
//!
//! - [`scenario`]: the scenario file model, parsing, validation (errors point at file:line)
//! - [`plan`]: cut × scenario → deployment (units, routes, state placement, static hops);
//!   named cuts, the generated sweep between nano and monolith, static outlines
//! - [`launch`]: start units as OS processes (or containers on a network made for the run),
//!   wait for readiness, tear down, never orphan; the run's throw-away PKI (in memory only)
//!   when hops are secured
//! - [`cost`]: deploy cost from /proc (cold start, RSS, CPU per request, blast radius)
//! - [`driver`]: open-loop load, HdrHistogram latencies, hop counts, equivalence check
//! - [`delays`]: what the network model did in a run (a bare hop measured with and without it, the injected delays. errors)
//! - [`results`]: the results.json contract (plain, versioned data; read by `report`)
//! - [`report`]: one view model of the results, rendered as the terminal's brief summary (the
//!   default), its full tables (`-v`) and the HTML page
//! - [`stats`]: confidence intervals over repeated rounds (figures, ratios, changes)
//! - [`calibrate`]: the driver's efficiency benchmark (send lag, CPU per request, wrk beside it,
//!   and this machine's floor: a bare wake-up and the least client at the same rate)
//! - [`capacity`]: the driver's own capacity, the highest open-loop rate it holds (a ramp)
//! - [`run`]: the whole pipeline for one scenario, architecture by architecture
//! - [`export`]: a cut written as Kubernetes manifests or a compose file, to run elsewhere
//! - [`unit`]: the hidden `grainbench unit` entry that serves one unit
//! - [`up`]: deploy one architecture and keep it running for outside tools

/// The commit this binary was built from (embedded by `build.rs`; none outside a git
/// checkout).
pub const BUILD_COMMIT: Option<&str> = option_env!("GRAINBENCH_COMMIT");

pub mod calibrate;
pub mod capacity;
pub mod cost;
pub mod delays;
pub mod deploy;
pub mod driver;
pub mod export;
pub mod launch;
pub mod outputs;
pub mod plan;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod unit;
pub mod up;

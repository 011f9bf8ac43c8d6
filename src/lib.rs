//! # grainbench — what does the finer cut cost?
//!
//! One scenario file is deployed as nanoservices, microservices and a monolith on real
//! processes, driven with open-loop load, and measured side by side.
//!
//! # Layout
//!
//! Listed top to bottom in import order: each module uses only those below it (no import
//! cycles; `run` never imports `report`, and `report`, in its own crate, cannot import
//! the measuring modules).
//!
//! - [`outputs`]: where a run's events go: results.json after every step, the HTML page at
//!   the end (the one place `run` meets `report`)
//! - [`up`]: deploy one cut and keep it running for outside tools
//! - [`export`]: a cut written as Kubernetes manifests or a compose file, to run elsewhere
//! - [`calibrate`]: the driver's efficiency benchmark (send lag, CPU per request, wrk beside it,
//!   and this machine's floor: a bare wake-up and the least client at the same rate)
//! - [`run`]: the whole pipeline for one scenario, deployment by deployment; options resolved
//!   once; it reports its events ([`run::RunReport`]) and writes nothing itself
//! - [`traces`]: under `--trace`, the run's loopback OTLP receiver (`traces.jsonl`, and
//!   `--otlp` forwarding), the driver's span of each traced request, and what the spans
//!   say: one tree per request, hops that match the measured hops, the latency's split
//!   along the critical path, waterfalls
//! - [`capacity`]: the driver's own capacity, the highest open-loop rate it holds (a ramp)
//! - [`floor`]: this machine's floor: a bare wake-up, the least client, the least hop
//!   (least client against least server; of it the least exchange, without the client's
//!   timer), the same hop on two event loops, and pinned on one core or across two
//!   (`floor::placement`); the denominators of the driver's and a hop's cost
//! - [`delays`]: what the network model did in a run (a bare hop measured with and without
//!   it, the injected delays' errors)
//! - [`deploy`]: one deployment built once for every command: the scenario with its
//!   overrides, the cut, the security mode, transport and mesh ([`deploy::DeploySpec`]), and what a command's
//!   deployments share (binary, work calibration, PKIs, containers); the calibrations' probe
//! - [`cost`]: deploy cost from /proc (cold start, RSS, CPU per request, blast radius)
//! - [`driver`]: open-loop load, HdrHistogram latencies, hop counts, equivalence check
//! - [`unit`]: what `grainbench-unit` (the units' binary, `src/bin`) runs to serve one
//!   unit, and where the harness finds that binary
//! - [`launch`]: start units as OS processes (or containers on a network made for the run),
//!   wait for readiness, tear down, never orphan; the run's throw-away PKI (in memory only)
//!   when hops are secured; an HAProxy sidecar beside every unit under `--mesh sidecar`
//!   (as containers, a pod: the sidecar container owns the unit's network namespace, and
//!   `grainbench-unit sidecar-proxy` supervises HAProxy inside it)
//! - [`report`], [`analysis`], [`stats`], [`results`]: re-exported from the `grain-report`
//!   crate (`crates/report`), which cannot see any module of this one: one view model of
//!   the results rendered as the brief, the tables and the page; the run in numbers, built
//!   once (the comparison rate, summaries, variants, baseline changes); the intervals over
//!   rounds; the results.json contract (plain, versioned data, with its own types for the run's
//!   settings). The names of cuts and modes are that crate's `modes`, which [`scenario`]
//!   and [`plan`] re-export
//! - [`plan`]: cut × scenario → deployment (units, routes, state placement, static hops);
//!   the generated sweep between nano and monolith, static outlines
//! - [`scenario`]: the scenario file model, parsing, validation (errors point at file:line),
//!   and the names of cuts

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
pub mod floor;
pub mod launch;
pub mod outputs;
pub mod plan;
pub use grain_report::{analysis, report, results, stats};
pub mod run;
pub mod scenario;
pub mod traces;
pub mod unit;
pub mod up;

//! # grain-report — grainbench's results, their statistics and the reports
//!
//! The half of grainbench that reads: the results.json contract, the statistics over its
//! rounds, and everything rendered from it (the terminal brief and tables, the HTML page,
//! the regression gate). It is a crate of its own so that the compiler holds the line the
//! design draws: a report reads results and nothing else. This crate cannot see the
//! driver, the launcher, the cost probes or the scenario file's model; grainbench depends
//! on it, writes [`results::RunResults`] and hands them over.
//!
//! # Layout
//!
//! Top to bottom in import order: each module uses only those below it.
//!
//! - [`report`]: one view model of the results ([`report::model`]), rendered as the
//!   terminal's brief summary (the default), its full tables (`-v`) and the HTML page; the
//!   `--fail-if` gate
//! - [`analysis`]: the run in numbers, built once: the comparison rate, each deployment's
//!   summaries, each mechanism's variants against their bases, the changes against a
//!   baseline (estimates, never words)
//! - [`stats`]: confidence intervals over repeated rounds (figures, ratios, changes), the
//!   summaries of a run, the comparison rate, Stein's rounds for `--precision`
//! - [`results`]: the results.json contract (plain, versioned data), with plain types of
//!   its own for the run's settings (network model, resilience, faults)
//! - [`modes`]: the names of what a deployment is (cut, security, transport, mesh,
//!   tracing) and its label, shared with the scenario and the plan

pub mod analysis;
pub mod modes;
pub mod report;
pub mod results;
pub mod stats;

//! The integration tests, one binary (as ripgrep does): each module drives real processes
//! of the `grainbench` binary. One link instead of thirteen keeps the test build short; the
//! timing comparisons are their own binary (`tests/comparative.rs`).

#[path = "../common/mod.rs"]
mod common;

mod containers;
mod cores;
mod deploy_cost;
mod driver;
mod endpoints;
mod export;
mod faults;
mod hostile_scenarios;
mod layout;
mod mesh;
mod network;
mod new_scenario;
mod pipeline;
mod report;
mod scenario_errors;
mod security;
mod traces;
mod transport;

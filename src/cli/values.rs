//! The value parsers of the command line's flags: each checks its range and format, so a
//! bad value is refused, named, before anything runs.

use grain_runtime::network::NetworkModel;
use grainbench::launch::cores::UnitCores;
use grainbench::plan::{Mesh, SecurityMode, Transport};
use grainbench::run::{LoadMode, SweepLimits};
use grainbench::scenario::fault::{Fault, FaultSyntaxError};
use grainbench::scenario::limits::MAX_RATE;
use std::time::Duration;

/// `--retry-budget`: a share of calls, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget(pub Option<f64>);

pub(super) fn retry_budget_arg(text: &str) -> Result<RetryBudget, String> {
    grainbench::scenario::fault::parse_budget(text).map(RetryBudget)
}

/// `--unit-cpus`: a core list, every core one this process may use.
pub(super) fn unit_cores_arg(text: &str) -> Result<UnitCores, String> {
    let cores: UnitCores = text.parse()?;
    cores.check_available()?;
    Ok(cores)
}

pub(super) fn fault_arg(text: &str) -> Result<Fault, String> {
    text.parse().map_err(|e: FaultSyntaxError| e.to_string())
}

pub(super) fn precision_arg(text: &str) -> Result<f64, String> {
    let number = text.trim().strip_suffix('%').unwrap_or(text.trim());
    match number.trim().parse::<f64>() {
        Ok(percent) if (0.5..=100.0).contains(&percent) => Ok(percent / 100.0),
        Ok(percent) => Err(format!("{percent} % is out of range: 0.5 % to 100 %")),
        Err(_) => Err(format!("'{text}' is not a percentage such as 10%")),
    }
}

/// Parses the share of requests `--trace` traces: `1%`, `100%`, or a fraction `0.05`.
pub(super) fn trace_sample_arg(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let share = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    match share {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        Ok(_) => Err(format!(
            "{text} is out of range: more than 0 %, at most 100 %"
        )),
        Err(_) => Err(format!("'{text}' is not a share such as 1% or 0.01")),
    }
}

pub(super) fn time_budget_arg(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("a time such as 45m, 2h or 600s, not {text:?}")),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if (60.0..=86_400.0).contains(&(n * scale)) => Ok(Duration::from_secs_f64(n * scale)),
        Ok(_) => Err(format!("{text} is out of range: 1 min to 24 h")),
        Err(_) => Err(format!("a time such as 45m, 2h or 600s, not {text:?}")),
    }
}

pub(super) fn security_arg(text: &str) -> Result<SecurityMode, String> {
    text.parse()
}

pub(super) fn transport_arg(text: &str) -> Result<Transport, String> {
    text.parse()
}

pub(super) fn mesh_arg(text: &str) -> Result<Mesh, String> {
    text.parse()
}

/// Parses `--network` (boxed: the model is large next to the other arguments).
pub(super) fn network_arg(text: &str) -> Result<Box<NetworkModel>, String> {
    grainbench::scenario::presets::parse(text).map(Box::new)
}

/// Parses `--rates`: `auto`, or req/s separated by commas, each 1 to the scenario limit.
pub(super) fn rates_arg(text: &str) -> Result<LoadMode, String> {
    if text == "auto" {
        return Ok(LoadMode::Sweep(SweepLimits::default()));
    }
    let max = MAX_RATE;
    let rates: Option<Vec<u32>> = text
        .split(',')
        .map(|r| r.trim().parse().ok().filter(|r| (1..=max).contains(r)))
        .collect();
    match rates {
        Some(rates) if !rates.is_empty() => Ok(LoadMode::Rates(rates)),
        _ => Err(format!(
            "takes `auto` or req/s from 1 to {max} separated by commas, not {text:?}"
        )),
    }
}

/// Parses a latency budget: `3ms`, `800us`, `0.5s`.
pub(super) fn budget_arg(text: &str) -> Result<Duration, String> {
    grainbench::report::gate::duration_us(text)
        .map(|us| Duration::from_secs_f64(us / 1e6))
        .ok_or_else(|| format!("a duration such as 3ms, 800us or 0.5s, not {text:?}"))
}

pub(super) fn seconds_arg(text: &str, min: f64) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= min && v <= 3600.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("seconds from {min} to 3600, not {text:?}")),
    }
}

pub(super) fn measured_seconds_arg(text: &str) -> Result<Duration, String> {
    seconds_arg(text, 0.001)
}

pub(super) fn warmup_seconds_arg(text: &str) -> Result<Duration, String> {
    seconds_arg(text, 0.0)
}

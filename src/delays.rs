//! The network model in a run: measuring a bare hop's round trip without and with the
//! model (so the report can put modelled beside measured), and collecting from the units
//! the errors of the delays they injected during a step.
//!
//! The delays themselves are injected where messages are sent: by the load engine for the
//! driver's requests ([`crate::driver::engine`]) and by every unit's HTTP client for the
//! requests between units ([`grain_runtime::client`]).

use crate::deploy::probe::{launch_ping, ping_step_config, run_ping_step};
use crate::driver;
use crate::driver::engine::Schedule;
use crate::launch::cores::UnitCores;
use crate::launch::{LaunchError, LiveDeployment};
use crate::results::{DelayErrorSummary, HopCalibration, Percentiles, StepResult};
use bytes::Bytes;
use grain_runtime::client::CallError;
use grain_runtime::network::{new_error_histogram, NetworkModel};
use grain_runtime::wire::{DelayErrorsReply, DELAY_ERRORS_PATH};
use hdrhistogram::Histogram;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rate of the bare-hop calibration: low enough for a quiet hop, high enough for p99.
pub const HOP_CALIBRATION_RATE: u32 = 200;
/// Measured time of each of the calibration's two steps.
pub const HOP_CALIBRATION_DURATION: Duration = Duration::from_secs(2);

/// Why a network measurement could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("bare-hop calibration: {0}")]
    Launch(#[from] LaunchError),
    #[error("bare-hop calibration: {0}")]
    Driver(#[from] driver::DriverError),
    #[error("unit {unit}: cannot collect its injected-delay errors: {source}")]
    Collect { unit: String, source: CallError },
    #[error("unit {unit}: malformed injected-delay errors: {detail}")]
    Malformed { unit: String, detail: String },
    #[error("bare-hop calibration interrupted")]
    Interrupted,
}

/// Starts a unit that answers at once, measures its round trip open loop on raw loopback
/// and then under `model` (skipped when the model adds nothing), and stops it; on `unit_cores`
/// when given, as the run's units are (`--unit-cpus`), its load from the cores left, as the
/// run's load is.
pub async fn measure_bare_hop(
    model: &NetworkModel,
    unit_binary: &Path,
    run_id: &str,
    unit_cores: Option<&UnitCores>,
    cancel: &CancellationToken,
) -> Result<HopCalibration, NetworkError> {
    let live = launch_ping(unit_binary, run_id, unit_cores).await?;
    let load_cores = unit_cores.and_then(UnitCores::rest);
    let measured = measure_hop(&live, model, load_cores, cancel).await;
    live.shutdown().await;
    measured
}

async fn measure_hop(
    live: &LiveDeployment,
    model: &NetworkModel,
    load_cores: Option<UnitCores>,
    cancel: &CancellationToken,
) -> Result<HopCalibration, NetworkError> {
    let addr = &live.units[0].addr;
    let run = |network: &NetworkModel, seed| {
        let mut config = ping_step_config(
            Schedule::OpenLoop {
                rate: HOP_CALIBRATION_RATE,
            },
            HOP_CALIBRATION_DURATION,
            driver::DEFAULT_SPIN,
            network.clone(),
        );
        config.load_cores = load_cores.clone();
        async move { run_ping_step(addr, &config, seed, cancel).await }
    };
    let loopback = run(&NetworkModel::loopback(), 1).await?;
    let modelled = if model.adds_delay() {
        Some(run(model, 2).await?)
    } else {
        None
    };
    let modelled = modelled
        .as_ref()
        .map(|m| (&m.overall.corrected, &m.delay_error));
    Ok(hop_calibration(
        model,
        &loopback.overall.corrected,
        modelled,
    ))
}

/// The calibration from the loopback step's latencies and the modelled step's latencies
/// and delay errors.
fn hop_calibration(
    model: &NetworkModel,
    loopback: &Histogram<u64>,
    modelled: Option<(&Histogram<u64>, &Histogram<u64>)>,
) -> HopCalibration {
    let loopback_us = Percentiles::of(loopback);
    let modelled_us = modelled.map(|(latency, _)| Percentiles::of(latency));
    HopCalibration {
        rate_rps: HOP_CALIBRATION_RATE,
        duration_s: HOP_CALIBRATION_DURATION.as_secs_f64(),
        expected_added_us: 2.0 * crate::results::NetworkModel::from(model).mean_one_way_us(),
        measured_added_p50_us: modelled_us
            .as_ref()
            .map(|m| m.p50 as f64 - loopback_us.p50 as f64),
        delay_error: modelled.and_then(|(_, errors)| DelayErrorSummary::of(errors)),
        loopback_us,
        modelled_us,
        loopback_p50_over_rounds: None,
        added_p50_over_rounds: None,
        floor: None,
    }
}

/// Takes every unit's injected-delay errors recorded since the last take (which resets
/// them) and adds them up.
pub async fn take_unit_delay_errors(live: &LiveDeployment) -> Result<Histogram<u64>, NetworkError> {
    let client =
        live.options
            .client(Duration::from_secs(5))
            .map_err(|e| NetworkError::Malformed {
                unit: "harness".into(),
                detail: e.to_string(),
            })?;
    let mut total = new_error_histogram();
    for unit in &live.units {
        let reply = client
            .post(&unit.endpoint(), DELAY_ERRORS_PATH, Bytes::new())
            .await
            .map_err(|source| NetworkError::Collect {
                unit: unit.name.clone(),
                source,
            })?;
        let malformed = |detail: String| NetworkError::Malformed {
            unit: unit.name.clone(),
            detail,
        };
        let parsed: DelayErrorsReply =
            serde_json::from_slice(&reply.body).map_err(|e| malformed(e.to_string()))?;
        let histogram = grain_runtime::histogram::decode(&parsed.histogram)
            .map_err(|e| malformed(e.to_string()))?;
        total
            .add(&histogram)
            .map_err(|e| malformed(format!("{e:?}")))?;
    }
    Ok(total)
}

/// Adds to `step` the units' injected-delay errors since they were last taken (or why
/// they could not be collected).
pub async fn attach_unit_delay_errors(step: &mut StepResult, live: &LiveDeployment) {
    let injected = step
        .injected_delay_error
        .get_or_insert_with(Default::default);
    match take_unit_delay_errors(live).await {
        Ok(errors) => injected.units = DelayErrorSummary::of(&errors),
        Err(error) => injected.units_error = Some(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latencies(micros: &[u64]) -> Histogram<u64> {
        let mut histogram = driver::new_histogram();
        for &us in micros {
            histogram.record(us).unwrap();
        }
        histogram
    }

    #[test]
    fn calibration_compares_medians_and_expects_two_one_way_delays() {
        let model = NetworkModel::fixed("250us", Duration::from_micros(250));
        let loopback = latencies(&[50, 60, 70]);
        let modelled = latencies(&[550, 560, 570]);
        let mut errors = new_error_histogram();
        errors.record(3_000).unwrap();
        let calibration = hop_calibration(&model, &loopback, Some((&modelled, &errors)));
        assert_eq!(calibration.expected_added_us, 500.0);
        assert_eq!(calibration.loopback_us.p50, 60);
        assert_eq!(calibration.measured_added_p50_us, Some(500.0));
        assert_eq!(calibration.delay_error.unwrap().p50_us, 3.0);
        let bare = hop_calibration(&NetworkModel::loopback(), &loopback, None);
        assert_eq!(bare.measured_added_p50_us, None);
        assert_eq!(bare.expected_added_us, 0.0);
    }
}

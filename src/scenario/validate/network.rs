//! Checks of the scenario's `[network]` section: a preset, explicit numbers that override
//! it (each within its range), and a jitter distribution when jitter is set.

use super::Checker;
use crate::scenario::file::RawNetwork;
use grain_runtime::network::{JitterDistribution, NetworkModel};
use toml::Spanned;

/// `[network]`: the preset (loopback if none) with every explicit field laid over it.
pub(super) fn network(checker: &mut Checker, raw: &RawNetwork) -> NetworkModel {
    let mut model = match &raw.preset {
        None => NetworkModel::loopback(),
        Some(name) => crate::scenario::presets::parse(name.get_ref()).unwrap_or_else(|message| {
            checker.flag(name.span(), "network.preset", message);
            NetworkModel::loopback()
        }),
    };
    let mut overridden = Vec::new();
    for field in network_numbers(raw) {
        if let Some(value) = checked_number(checker, &field) {
            (field.apply)(&mut model, value);
            overridden.push(field.name);
        }
    }
    if let Some(jitter) = &raw.jitter {
        if let Some(distribution) = jitter_distribution(checker, jitter) {
            model.jitter = distribution;
            overridden.push("jitter");
        }
    }
    if model.jitter_us > 0.0 && model.jitter == JitterDistribution::None {
        if let Some(jitter_us) = &raw.jitter_us {
            checker.flag(
                jitter_us.span(),
                "network.jitter_us",
                "jitter needs a distribution: add jitter = \"uniform\", \"normal\" or \"exponential\"",
            );
        }
    }
    if !overridden.is_empty() {
        let preset = raw.preset.as_ref().map(|p| p.get_ref().as_str());
        name_overrides(&mut model, preset, &overridden);
    }
    model
}

/// One numeric `[network]` field: where it is, what it may be, and what it sets.
struct NumberField<'a> {
    value: Option<&'a Spanned<f64>>,
    name: &'static str,
    /// Allowed: `min <= value < below`.
    min: f64,
    below: f64,
    allowed: &'static str,
    apply: fn(&mut NetworkModel, f64),
}

fn network_numbers(raw: &RawNetwork) -> [NumberField<'_>; 4] {
    const MICROS: &str = "0 to 10000000 µs";
    [
        NumberField {
            value: raw.one_way_us.as_ref(),
            name: "one_way_us",
            min: 0.0,
            below: 10_000_001.0,
            allowed: MICROS,
            apply: |model, v| model.one_way_us = v,
        },
        NumberField {
            value: raw.jitter_us.as_ref(),
            name: "jitter_us",
            min: 0.0,
            below: 10_000_001.0,
            allowed: MICROS,
            apply: |model, v| model.jitter_us = v,
        },
        NumberField {
            value: raw.loss.as_ref(),
            name: "loss",
            min: 0.0,
            below: 1.0,
            allowed: "a probability, at least 0 and below 1",
            apply: |model, v| model.loss = v,
        },
        NumberField {
            value: raw.retransmit_ms.as_ref(),
            name: "retransmit_ms",
            min: 0.001,
            below: 60_001.0,
            allowed: "more than 0 and at most 60000 ms",
            apply: |model, v| model.retransmit_us = v * 1000.0,
        },
    ]
}

/// The field's value if it is given and allowed; flags it if it is not allowed.
fn checked_number(checker: &mut Checker, field: &NumberField) -> Option<f64> {
    let value = field.value?;
    let v = *value.get_ref();
    if v.is_finite() && v >= field.min && v < field.below {
        return Some(v);
    }
    checker.flag(
        value.span(),
        format!("network.{}", field.name),
        format!("must be {}; got {v}", field.allowed),
    );
    None
}

fn jitter_distribution(
    checker: &mut Checker,
    jitter: &Spanned<String>,
) -> Option<JitterDistribution> {
    let found = JitterDistribution::ALL
        .into_iter()
        .find(|d| d.name() == jitter.get_ref());
    if found.is_none() {
        let names: Vec<&str> = JitterDistribution::ALL.iter().map(|d| d.name()).collect();
        checker.flag(
            jitter.span(),
            "network.jitter",
            format!(
                "unknown distribution {:?}: use {}",
                jitter.get_ref(),
                names.join(", ")
            ),
        );
    }
    found
}

/// Names a model the scenario adjusted and says which fields it declared.
fn name_overrides(model: &mut NetworkModel, preset: Option<&str>, overridden: &[&str]) {
    let declared = format!(
        "declared in the scenario's [network] section: {}",
        overridden.join(", ")
    );
    match preset {
        Some(preset) => {
            model.name = format!("{preset}, adjusted");
            model.source = format!("{declared}; the rest from the preset: {}", model.source);
        }
        None => {
            model.name = "scenario".into();
            model.source = declared;
        }
    }
}

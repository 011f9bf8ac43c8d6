//! Network models by name: the presets a scenario's `[network]` section or `--network`
//! can name, each citing where its numbers come from, and plain fixed delays written as a
//! duration (`250us`, `1ms`, `0.5ms`).

use grain_runtime::network::{JitterDistribution, NetworkModel, DEFAULT_RETRANSMIT_US};
use std::time::Duration;

/// A named network model.
pub struct Preset {
    pub name: &'static str,
    pub summary: &'static str,
    build: fn() -> NetworkModel,
}

impl Preset {
    pub fn model(&self) -> NetworkModel {
        (self.build)()
    }
}

/// Every preset, in the order help texts list them.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "loopback",
        summary: "no added delay (the default)",
        build: NetworkModel::loopback,
    },
    Preset {
        name: "dc",
        summary: "one data centre: 250 µs one way, exponential jitter of mean 25 µs",
        build: data_centre,
    },
    Preset {
        name: "cross-zone",
        summary: "across availability zones of one region: 1 ms one way, exponential jitter of mean 100 µs",
        build: cross_zone,
    },
];

fn data_centre() -> NetworkModel {
    NetworkModel {
        name: "dc".into(),
        one_way_us: 250.0,
        jitter_us: 25.0,
        jitter: JitterDistribution::Exponential,
        loss: 0.0,
        retransmit_us: DEFAULT_RETRANSMIT_US,
        source:
            "round trip within the same data centre: 500 µs (Jeff Dean, \"Designs, Lessons and \
                 Advice from Building Large Distributed Systems\", LADIS 2009 — the \"latency \
                 numbers every programmer should know\"), halved for one way; the jitter is an \
                 assumption of grainbench, not from the source"
                .into(),
    }
}

fn cross_zone() -> NetworkModel {
    NetworkModel {
        name: "cross-zone".into(),
        one_way_us: 1000.0,
        jitter_us: 100.0,
        jitter: JitterDistribution::Exponential,
        loss: 0.0,
        retransmit_us: DEFAULT_RETRANSMIT_US,
        source: "round trip between availability zones of one region: \"less than approximately \
                 2 ms\" (Microsoft Azure documentation, availability zones overview); AWS \
                 inter-AZ round trips measured at 0.3–1.5 ms (FlashGrid, \"Latencies between AWS \
                 availability zones\", 2023); halved for one way; the jitter is an assumption of \
                 grainbench, not from the sources"
            .into(),
    }
}

/// The preset called `name`.
pub fn preset(name: &str) -> Option<NetworkModel> {
    PRESETS
        .iter()
        .find(|preset| preset.name == name)
        .map(Preset::model)
}

/// What `--network` and `[network] preset` accept, for error messages.
pub fn accepted_names() -> String {
    let names: Vec<&str> = PRESETS.iter().map(|preset| preset.name).collect();
    format!(
        "{}, or a fixed one-way delay such as 250us or 1ms",
        names.join(", ")
    )
}

/// Parses a preset name or a fixed one-way delay (`250us`, `1ms`, `0.5ms`, `0`).
pub fn parse(text: &str) -> Result<NetworkModel, String> {
    let text = text.trim();
    if let Some(model) = preset(text) {
        return Ok(model);
    }
    let delay = parse_delay(text)
        .ok_or_else(|| format!("unknown network {text:?}: use {}", accepted_names()))?;
    if delay.is_zero() {
        return Ok(NetworkModel::loopback());
    }
    Ok(NetworkModel::fixed(text, delay))
}

/// `250us`, `250µs`, `1ms`, `0.5ms` or `0` → a duration of at most 10 s.
fn parse_delay(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let (number, unit_us) = if let Some(n) = text.strip_suffix("us").or(text.strip_suffix("µs")) {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1000.0)
    } else {
        return None;
    };
    let value: f64 = number.trim().parse().ok()?;
    let micros = value * unit_us;
    (micros.is_finite() && (0.0..=10_000_000.0).contains(&micros))
        .then(|| Duration::from_nanos((micros * 1000.0).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_presets_and_fixed_delays() {
        assert_eq!(parse("loopback").unwrap(), NetworkModel::loopback());
        assert_eq!(parse("0").unwrap(), NetworkModel::loopback());
        let dc = parse("dc").unwrap();
        assert_eq!(dc.one_way_us, 250.0);
        assert!(dc.source.contains("LADIS 2009"));
        assert_eq!(parse("cross-zone").unwrap().one_way_us, 1000.0);
        let fixed = parse("250us").unwrap();
        assert_eq!((fixed.name.as_str(), fixed.one_way_us), ("250us", 250.0));
        assert_eq!(parse("0.5ms").unwrap().one_way_us, 500.0);
        assert_eq!(parse("40µs").unwrap().one_way_us, 40.0);
    }

    #[test]
    fn rejects_unknown_names_listing_what_is_accepted() {
        for bad in ["lan", "250", "-1ms", "1s", "ms", "20000s"] {
            let error = parse(bad).unwrap_err();
            assert!(
                error.contains("cross-zone") && error.contains("250us"),
                "{error}"
            );
        }
    }

    #[test]
    fn every_preset_names_its_source() {
        for preset in PRESETS {
            let model = preset.model();
            assert_eq!(model.name, preset.name);
            assert!(!model.source.is_empty());
        }
    }
}

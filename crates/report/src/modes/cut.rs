//! Which cut a deployment is: the three built-in cuts, a `[[cut]]` the scenario names, or
//! one of the generated series between nano and monolith. A cut is written as its name
//! everywhere (command line, results.json, the report): `nano`, `micro`, `monolith`, the
//! scenario's cut name, `sweep-K` (the hop-greedy series' cut with K service units) or
//! `sweep-svc-K` (the service-respecting series' cut with K service units).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// How finely the scenario is cut into deployable units.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Architecture {
    /// One unit per operation; stateless, data in one state unit per service.
    Nano,
    /// One unit per service, embedding that service's store.
    Micro,
    /// One unit for everything, one embedded store per service.
    Monolith,
    /// A `[[cut]]` of the scenario, by name.
    Named(String),
    /// A cut of a generated series, by its number of service units.
    Sweep { series: Series, units: usize },
}

/// How a generated series merges units, one merge per cut, from nano to monolith.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Series {
    /// Always the merge that removes the most traffic-weighted hops per request.
    Hops,
    /// The same, but inside services first (nano → micro), then between them.
    Services,
}

impl Series {
    pub const ALL: [Series; 2] = [Series::Hops, Series::Services];

    pub fn name(self) -> &'static str {
        match self {
            Series::Hops => "hops",
            Series::Services => "services",
        }
    }

    /// The prefix of this series' cut names.
    pub fn prefix(self) -> &'static str {
        match self {
            Series::Hops => "sweep-",
            Series::Services => "sweep-svc-",
        }
    }
}

grain_runtime::named_modes!(Series, "series");

/// Names a scenario's `[[cut]]` may not take: the built-ins, and the generated series'.
pub const RESERVED_NAMES: [&str; 3] = ["nano", "micro", "monolith"];

impl Architecture {
    /// The built-in cuts, finest first.
    pub const ALL: [Architecture; 3] = [
        Architecture::Nano,
        Architecture::Micro,
        Architecture::Monolith,
    ];

    pub fn name(&self) -> String {
        self.to_string()
    }

    /// Whether a scenario may call one of its cuts `name`: not a built-in's name, and not
    /// one a generated series uses.
    pub fn is_reserved(name: &str) -> bool {
        RESERVED_NAMES.contains(&name) || name.starts_with(Series::Hops.prefix())
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Architecture::Nano => f.write_str("nano"),
            Architecture::Micro => f.write_str("micro"),
            Architecture::Monolith => f.write_str("monolith"),
            Architecture::Named(name) => f.write_str(name),
            Architecture::Sweep { series, units } => write!(f, "{}{units}", series.prefix()),
        }
    }
}

/// A cut name that is empty or holds characters a unit name cannot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cut name {0:?}: nano, micro, monolith, sweep-K, sweep-svc-K or a [[cut]] name (letters, digits, `_` and `-`)")]
pub struct BadCutName(pub String);

impl FromStr for Architecture {
    type Err = BadCutName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let sweep = |series: Series| {
            name.strip_prefix(series.prefix())
                .and_then(|k| k.parse::<usize>().ok())
                .filter(|&units| units > 0)
                .map(|units| Architecture::Sweep { series, units })
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        match name {
            "nano" => Ok(Architecture::Nano),
            "micro" => Ok(Architecture::Micro),
            "monolith" => Ok(Architecture::Monolith),
            _ if name.starts_with(Series::Hops.prefix()) => sweep(Series::Services)
                .or_else(|| sweep(Series::Hops))
                .ok_or_else(|| BadCutName(name.to_string())),
            _ if valid => Ok(Architecture::Named(name.to_string())),
            _ => Err(BadCutName(name.to_string())),
        }
    }
}

impl Serialize for Architecture {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Architecture {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Operations restarted per changed operation, on average over the operations, for units
/// hosting `sizes` operations each: changing any operation restarts its whole unit.
pub fn mean_blast_radius(sizes: impl IntoIterator<Item = usize>) -> f64 {
    let (squares, operations) = sizes.into_iter().fold((0u64, 0u64), |(sq, n), size| {
        let size = size as u64;
        (sq.saturating_add(size * size), n + size)
    });
    if operations == 0 {
        0.0
    } else {
        squares as f64 / operations as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "nano",
            "micro",
            "monolith",
            "fast-path",
            "sweep-7",
            "sweep-svc-3",
        ] {
            let cut: Architecture = name.parse().unwrap();
            assert_eq!(cut.to_string(), name);
            let json = serde_json::to_string(&cut).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Architecture>(&json).unwrap(), cut);
        }
        assert_eq!(
            "sweep-svc-3".parse::<Architecture>().unwrap(),
            Architecture::Sweep {
                series: Series::Services,
                units: 3
            }
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for name in [
            "",
            "sweep-",
            "sweep-0",
            "sweep-x",
            "sweep-svc-",
            "a b",
            "a/b",
        ] {
            assert!(name.parse::<Architecture>().is_err(), "{name:?}");
        }
        assert!(Architecture::is_reserved("micro"));
        assert!(Architecture::is_reserved("sweep-anything"));
        assert!(!Architecture::is_reserved("fast-path"));
    }
}

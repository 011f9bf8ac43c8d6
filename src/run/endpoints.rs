//! `run --endpoints FILE`: drive a deployment grainbench did not start (units started with
//! `up`, or a cut deployed on a cluster). The file names the cut it deploys, so hops are
//! compared with that cut's static hops, and maps each entrypoint to a URL:
//!
//! ```toml
//! cut = "micro"                 # nano, micro, monolith, a [[cut]] or sweep-K
//! label = "micro-on-k8s"        # how reports name it (default: "<cut>-external")
//! [entrypoints]
//! checkout = "http://127.0.0.1:40123"
//! view_cart = "http://127.0.0.1:40124"
//! ```
//!
//! Latency, hops, equivalence and the report work as usual. What only the machine running
//! the units can see (cold start, memory, the units' CPU, a redeploy) is not measured, and
//! the report says so instead of guessing.

use crate::plan::Architecture;
use crate::scenario::Scenario;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// A deployment to drive, read from an endpoints file.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoints {
    pub file: PathBuf,
    /// The cut the deployment runs (its plan gives the static hops).
    pub cut: Architecture,
    /// What reports call it.
    pub label: String,
    /// Entrypoint → the address its requests go to.
    pub addrs: BTreeMap<String, SocketAddr>,
    /// Entrypoint → the `Host` its requests carry: the URL's own `host:port`, so an ingress
    /// or a virtual host routes them (it was always `127.0.0.1`, and they answered 404).
    pub hosts: BTreeMap<String, String>,
}

/// Why an endpoints file cannot be used; names the file and the entry.
#[derive(Debug, thiserror::Error)]
pub enum EndpointsError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {detail}", file.display())]
    Parse { file: PathBuf, detail: String },
    #[error("{}: entrypoint {entrypoint}: {detail}", file.display())]
    Entry {
        file: PathBuf,
        entrypoint: String,
        detail: String,
    },
    #[error("{}: cut {cut}: {detail}", file.display())]
    Cut {
        file: PathBuf,
        cut: String,
        detail: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoints {
    cut: String,
    #[serde(default)]
    label: Option<String>,
    entrypoints: BTreeMap<String, String>,
}

impl Endpoints {
    /// Reads `file` for `scenario`: every entrypoint of the scenario needs a URL, and
    /// every URL is `http://host:port` (TLS to an outside deployment is not supported).
    pub fn read(file: &Path, scenario: &Scenario) -> Result<Self, EndpointsError> {
        let text = std::fs::read_to_string(file).map_err(|source| EndpointsError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        Self::parse(&text, file, scenario)
    }

    fn parse(text: &str, file: &Path, scenario: &Scenario) -> Result<Self, EndpointsError> {
        let raw: RawEndpoints = toml::from_str(text).map_err(|e| EndpointsError::Parse {
            file: file.to_path_buf(),
            detail: e.to_string(),
        })?;
        let cut_error = |detail: String| EndpointsError::Cut {
            file: file.to_path_buf(),
            cut: raw.cut.clone(),
            detail,
        };
        let cut: Architecture = raw
            .cut
            .parse()
            .map_err(|e: crate::plan::cut::BadCutName| cut_error(e.to_string()))?;
        crate::plan::plan(scenario, &cut).map_err(|e| cut_error(e.to_string()))?;
        let entry_error = |entrypoint: &str, detail: String| EndpointsError::Entry {
            file: file.to_path_buf(),
            entrypoint: entrypoint.to_string(),
            detail,
        };
        for name in raw.entrypoints.keys() {
            if !scenario.entrypoints.iter().any(|e| &e.op == name) {
                return Err(entry_error(
                    name,
                    format!("scenario {} has no such entrypoint", scenario.name),
                ));
            }
        }
        let (mut addrs, mut hosts) = (BTreeMap::new(), BTreeMap::new());
        for entry in &scenario.entrypoints {
            let url = raw.entrypoints.get(&entry.op).ok_or_else(|| {
                entry_error(&entry.op, "no URL given; every entrypoint needs one".into())
            })?;
            let (addr, host) = address(url).map_err(|detail| entry_error(&entry.op, detail))?;
            addrs.insert(entry.op.clone(), addr);
            hosts.insert(entry.op.clone(), host);
        }
        let label = raw.label.unwrap_or_else(|| format!("{}-external", raw.cut));
        // Reports read a label back as a cut's name: `nano` would become the built-in nano.
        let names_a_cut = !matches!(label.parse::<Architecture>(), Ok(Architecture::Named(_)))
            || scenario.cuts.iter().any(|c| c.name == label);
        if names_a_cut {
            return Err(EndpointsError::Parse {
                file: file.to_path_buf(),
                detail: format!(
                    "label `{label}`: must be letters, digits, `_` or `-`, and not the name of \
                     a cut (nano, micro, monolith, sweep-K, sweep-svc-K or a [[cut]] of the \
                     scenario); the default is `{}-external`",
                    raw.cut
                ),
            });
        }
        Ok(Endpoints {
            file: file.to_path_buf(),
            label,
            cut,
            addrs,
            hosts,
        })
    }
}

/// `http://host:port[/]` → the first address `host` resolves to, and `host:port` as the
/// URL gives it (the requests' `Host`).
fn address(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!("{url}: only http:// is supported, not {scheme}://"))
        }
        None => return Err(format!("{url}: expected http://host:port")),
    };
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') {
        return Err(format!(
            "{url}: give the unit's address only; grainbench adds /op/<entrypoint>"
        ));
    }
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: resolves to no address"))?;
    if addr.port() == 0 {
        return Err(format!(
            "{url}: port 0 is no unit's port; give the port the entrypoint listens on (1-65535)"
        ));
    }
    Ok((addr, authority.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        crate::scenario::parse(include_str!("../../tests/fixtures/tiny.toml")).unwrap()
    }

    #[test]
    fn a_file_maps_every_entrypoint_to_an_address() {
        let text = "cut = \"micro\"\n[entrypoints]\nbuy = \"http://127.0.0.1:4000\"\nbrowse = \"http://127.0.0.1:4001/\"\n";
        let e = Endpoints::parse(text, Path::new("e.toml"), &scenario()).unwrap();
        assert_eq!(e.cut, Architecture::Micro);
        assert_eq!(e.label, "micro-external");
        assert_eq!(e.addrs["browse"].port(), 4001);
        assert_eq!(e.hosts["browse"], "127.0.0.1:4001");
    }

    #[test]
    fn requests_carry_the_urls_host() {
        let text = "cut = \"micro\"\n[entrypoints]\nbuy = \"http://localhost:4000\"\nbrowse = \"http://localhost:4001/\"\n";
        let e = Endpoints::parse(text, Path::new("e.toml"), &scenario()).unwrap();
        assert_eq!(e.hosts["buy"], "localhost:4000");
    }

    #[test]
    fn bad_files_name_the_file_and_the_entry() {
        let s = scenario();
        let cases = [
            ("cut = \"micro\"\n[entrypoints]\nbuy = \"http://127.0.0.1:4000\"\n", "entrypoint browse: no URL given"),
            ("cut = \"micro\"\n[entrypoints]\nbuy = \"https://127.0.0.1:1\"\nbrowse = \"http://127.0.0.1:2\"\n", "only http:// is supported"),
            ("cut = \"micro\"\n[entrypoints]\nbuy = \"http://127.0.0.1:1/op/buy\"\nbrowse = \"http://127.0.0.1:2\"\n", "grainbench adds /op/"),
            ("cut = \"micro\"\n[entrypoints]\nsell = \"http://127.0.0.1:1\"\n", "entrypoint sell: scenario tiny has no such entrypoint"),
            ("cut = \"sweep-99\"\n[entrypoints]\n", "cut sweep-99"),
            ("cut = 3\n", "e.toml"),
            ("cut = \"micro\"\n[entrypoints]\nbuy = \"http://127.0.0.1:0\"\nbrowse = \"http://127.0.0.1:2\"\n", "port 0 is no unit's port"),
            ("cut = \"micro\"\nlabel = \"nano\"\n[entrypoints]\nbuy = \"http://127.0.0.1:1\"\nbrowse = \"http://127.0.0.1:2\"\n", "label `nano`: must be"),
            ("cut = \"micro\"\nlabel = \"sweep-3\"\n[entrypoints]\nbuy = \"http://127.0.0.1:1\"\nbrowse = \"http://127.0.0.1:2\"\n", "not the name of a cut"),
        ];
        for (text, expected) in cases {
            let error = Endpoints::parse(text, Path::new("e.toml"), &s)
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("e.toml: "), "{error}");
            assert!(error.contains(expected), "{expected:?} not in {error}");
        }
    }
}

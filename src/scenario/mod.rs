//! Scenario files: the model of one business scenario, parsed from TOML and validated.
//! Every error names the file, the line and column, the field, and what is allowed.

pub use grain_report::modes::cut;
pub mod fault;
mod file;
pub mod graph;
pub mod limits;
pub use grain_report::modes::mesh;
pub mod presets;
mod validate;
pub mod words;

use grain_runtime::model::{DataSeed, OperationDef};
use grain_runtime::network::NetworkModel;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a request parameter's values are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "dist")]
pub enum Distribution {
    /// Uniform over `0..count`.
    Uniform { count: u64 },
    /// Zipf over `0..count` with the given exponent (a few hot keys, a long tail).
    Zipf { count: u64, exponent: f64 },
    /// 0, 1, 2, … one per request (unique ids).
    Sequence,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    #[serde(flatten)]
    pub distribution: Distribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub operations: Vec<String>,
    pub data: Vec<DataSeed>,
    /// Processes per unit hosting its operations (1 unless the file or `--replicas` says).
    #[serde(default = "one")]
    pub replicas: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entrypoint {
    pub op: String,
    pub weight: u32,
}

/// The load profile: one step per rate, each a warm-up then a measured period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadProfile {
    pub rates: Vec<u32>,
    pub duration: Duration,
    pub warmup: Duration,
    pub timeout: Duration,
    /// The p99 a cut must meet at the comparison rate (`[load] p99_budget_ms`).
    #[serde(default)]
    pub p99_budget: Option<Duration>,
}

impl LoadProfile {
    /// The shortened profile of `--quick`: same rates, 2 s measured after 1 s of warm-up
    /// (in each of the run's rounds).
    pub fn quick(&self) -> LoadProfile {
        LoadProfile {
            duration: self.duration.min(Duration::from_secs(2)),
            warmup: self.warmup.min(Duration::from_secs(1)),
            ..self.clone()
        }
    }
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub params: Vec<Param>,
    pub services: Vec<Service>,
    pub operations: Vec<OperationDef>,
    pub entrypoints: Vec<Entrypoint>,
    pub load: LoadProfile,
    /// The network every hop crosses (raw loopback unless the file says otherwise).
    pub network: NetworkModel,
    /// The file's `[[cut]]`s, each a complete grouping of the operations into units.
    pub cuts: Vec<CutDef>,
    /// The file's `[security]`: the modes to compare (plaintext alone by default).
    pub security: SecurityProfile,
    /// The file's `[transport] modes`: what unit-to-unit hops speak, each cut deployed
    /// once per transport, in this order (HTTP/1.1 + JSON alone by default).
    #[serde(default = "default_transports")]
    pub transports: Vec<grain_runtime::transport::Transport>,
    /// The file's `[mesh] modes`: whether units run behind sidecar proxies, each cut
    /// deployed once per mode, in this order (no mesh by default).
    #[serde(default = "default_meshes")]
    pub meshes: Vec<mesh::Mesh>,
    /// The file's `[resilience]`: how units call each other.
    #[serde(default)]
    pub resilience: grain_runtime::resilience::Resilience,
    /// The file's `[[fault]]`s, run in a fault step of every cut.
    #[serde(default)]
    pub faults: Vec<fault::Fault>,
}

fn default_transports() -> Vec<grain_runtime::transport::Transport> {
    vec![grain_runtime::transport::Transport::default()]
}

fn default_meshes() -> Vec<mesh::Mesh> {
    vec![mesh::Mesh::default()]
}

/// What every hop speaks, and whether units reuse connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityProfile {
    /// Each cut is deployed once per mode, in this order.
    pub modes: Vec<grain_runtime::security::SecurityMode>,
    pub keepalive: bool,
}

impl Default for SecurityProfile {
    fn default() -> Self {
        SecurityProfile {
            modes: vec![grain_runtime::security::SecurityMode::None],
            keepalive: true,
        }
    }
}

/// A named cut: every operation in exactly one group, one unit per group (the file's
/// groups in order, then a unit for each operation no group listed, in file order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutDef {
    pub name: String,
    pub units: Vec<Vec<String>>,
}

impl Scenario {
    /// `3 services, 4 operations, 1 entrypoint, 3 load steps`.
    pub fn outline(&self) -> String {
        let count =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        [
            count(self.services.len(), "service", "services"),
            count(self.operations.len(), "operation", "operations"),
            count(self.entrypoints.len(), "entrypoint", "entrypoints"),
            count(self.load.rates.len(), "load step", "load steps"),
        ]
        .join(", ")
    }
}

#[cfg(test)]
mod outline_tests {
    #[test]
    fn the_outline_counts_in_words_that_agree_with_the_number() {
        let scenario =
            crate::scenario::parse(include_str!("../../tests/fixtures/tiny.toml")).unwrap();
        let mut one = scenario.clone();
        one.entrypoints.truncate(1);
        one.services.truncate(1);
        assert!(
            scenario.outline().contains("2 entrypoints"),
            "{}",
            scenario.outline()
        );
        assert!(
            one.outline().starts_with("1 service, "),
            "{}",
            one.outline()
        );
        assert!(
            one.outline().contains(", 1 entrypoint, 1 load step"),
            "{}",
            one.outline()
        );
    }
}

impl Scenario {
    pub fn operation(&self, name: &str) -> Option<&OperationDef> {
        self.operations.iter().find(|op| op.name == name)
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|service| service.name == name)
    }

    pub fn cut(&self, name: &str) -> Option<&CutDef> {
        self.cuts.iter().find(|cut| cut.name == name)
    }
}

/// A scenario together with the file it came from.
#[derive(Debug, Clone)]
pub struct ScenarioSource {
    pub path: PathBuf,
    pub text: String,
    pub scenario: Scenario,
}

/// One problem found in a scenario file, located precisely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub line: usize,
    pub column: usize,
    /// Path of the offending field, e.g. `operation[place_order].calls[1].op`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read scenario file: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render_issues(file, issues))]
    Invalid { file: PathBuf, issues: Vec<Issue> },
}

impl ScenarioError {
    /// The issues found, empty for a read error.
    pub fn issues(&self) -> &[Issue] {
        match self {
            ScenarioError::Read { .. } => &[],
            ScenarioError::Invalid { issues, .. } => issues,
        }
    }
}

fn render_issues(file: &Path, issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|issue| {
            format!(
                "{}:{}:{}: field `{}`: {}",
                file.display(),
                issue.line,
                issue.column,
                issue.field,
                issue.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The JSON Schema of the scenario file format, derived from the parser's own types.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(file::RawScenario);
    schema.insert("title".into(), "grainbench scenario".into());
    serde_json::to_value(&schema).unwrap_or_default()
}

/// Why a new scenario could not be written.
#[derive(Debug, thiserror::Error)]
pub enum NewScenarioError {
    #[error("invalid scenario name {0:?}: use letters, digits, `_` and `-` only")]
    Name(String),
    #[error("{} already exists; choose another name or delete it first", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The commented starting point `grainbench new NAME` writes.
pub fn template(name: &str) -> String {
    include_str!("template.toml").replace("{{NAME}}", name)
}

/// Writes `dir/NAME.toml` from the template, refusing to overwrite.
pub fn write_new(dir: &Path, name: &str) -> Result<PathBuf, NewScenarioError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(NewScenarioError::Name(name.to_string()));
    }
    let path = dir.join(format!("{name}.toml"));
    if path.exists() {
        return Err(NewScenarioError::Exists(path));
    }
    let write = |source| NewScenarioError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write)?;
    std::fs::write(&path, template(name)).map_err(write)?;
    Ok(path)
}

/// Every `*.toml` file in `dir`, sorted (what `run --all` and `cargo bench` pick up).
pub fn discover(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads, parses and validates a scenario file.
pub fn load(path: &Path) -> Result<ScenarioSource, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let scenario = parse(&text).map_err(|issues| ScenarioError::Invalid {
        file: path.to_path_buf(),
        issues,
    })?;
    Ok(ScenarioSource {
        path: path.to_path_buf(),
        text,
        scenario,
    })
}

/// Parses and validates scenario text; on failure returns every issue found.
pub fn parse(text: &str) -> Result<Scenario, Vec<Issue>> {
    let (raw, mut patched) = parse_raw_all(text);
    let Some(raw) = raw else {
        patched.sort_by_key(|i| (i.line, i.column));
        return Err(patched);
    };
    let validated = validate::validate(raw, text);
    if patched.is_empty() {
        return validated;
    }
    // A value stood in for each ill-typed one; what validation says of it is not news.
    let mut issues = patched.clone();
    if let Err(more) = validated {
        issues.extend(more.into_iter().filter(|i| {
            !patched
                .iter()
                .any(|p| (p.line, p.column) == (i.line, i.column))
        }));
    }
    issues.sort_by_key(|i| (i.line, i.column));
    Err(issues)
}

/// At most this many ill-typed values are reported from one file.
const MAX_TYPE_ISSUES: usize = 50;

/// Stand-ins tried, in order, for an ill-typed value so that parsing can go on to the
/// next one: each no longer than the value it replaces (padded with spaces), so every
/// later issue's line and column are the file's own.
const STAND_INS: [&str; 5] = ["1", "1.0", "\"x\"", "[]", "{}"];

/// The raw scenario, and every value of the wrong type or range in the file, not just the
/// first: each issue is recorded, its value replaced by a stand-in of the same length at
/// most, and the text parsed again. `None` when a stand-in could not get past an issue
/// (the issues so far are all reported).
fn parse_raw_all(text: &str) -> (Option<file::RawScenario>, Vec<Issue>) {
    let mut text = text.to_string();
    let mut issues: Vec<Issue> = Vec::new();
    loop {
        let (issue, span) = match parse_raw(&text) {
            Ok(raw) => return (Some(raw), issues),
            Err(failure) => failure,
        };
        let stuck = issues.len() >= MAX_TYPE_ISSUES
            || issues
                .iter()
                .any(|i| (i.line, i.column) == (issue.line, issue.column));
        issues.push(issue);
        let Some(span) = span.filter(|_| !stuck) else {
            issues.dedup_by_key(|i| (i.line, i.column));
            return (None, issues);
        };
        match stand_in(&text, span) {
            Some(patched) => text = patched,
            None => return (None, issues),
        }
    }
}

/// `text` with the value at `span` replaced by the first stand-in that parses past it.
fn stand_in(text: &str, span: std::ops::Range<usize>) -> Option<String> {
    let width = span.len();
    STAND_INS
        .iter()
        .filter(|s| s.len() <= width)
        .map(|s| format!("{}{s:<width$}{}", &text[..span.start], &text[span.end..]))
        .find(|patched| match parse_raw(patched) {
            Ok(_) => true,
            Err((_, next)) => next.is_none_or(|n| n.start != span.start),
        })
}

/// The raw scenario, or the first issue and the span of the value it is about.
fn parse_raw(text: &str) -> Result<file::RawScenario, (Issue, Option<std::ops::Range<usize>>)> {
    let deserializer = toml::Deserializer::parse(text).map_err(|error| {
        (
            issue_from_toml(text, &error, String::from("(document)")),
            None,
        )
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        // `Spanned` fields add a private segment to the path; users never wrote it.
        let field = error
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        // In the user's words: the item by its name, and what the value may be.
        let field = words::named_path(text, &field);
        let mut issue = issue_from_toml(text, error.inner(), field);
        let leaf = issue.field.rsplit('.').next().unwrap_or("");
        let leaf = leaf.split('[').next().unwrap_or(leaf);
        if let Some(range) = words::allowed(leaf) {
            issue.message = format!("{}; allowed: {range}", issue.message);
        }
        (issue, error.inner().span())
    })
}

fn issue_from_toml(text: &str, error: &toml::de::Error, field: String) -> Issue {
    let (line, column) = error
        .span()
        .map(|span| line_column(text, span.start))
        .unwrap_or((1, 1));
    let field = if field == "." {
        "(document)".into()
    } else {
        field
    };
    Issue {
        line,
        column,
        field,
        message: error.message().trim().to_string(),
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

/// The shipped checkout scenario, for unit tests across the crate.
#[cfg(test)]
pub(crate) fn checkout_for_tests() -> Scenario {
    parse(include_str!("../../scenarios/checkout.toml")).expect("checkout parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ill-typed value is reported, not only the first, each at its own line and
    /// column, with what validation finds beside them (the stand-ins add nothing).
    #[test]
    fn every_ill_typed_value_is_reported_at_once() {
        let text = include_str!("../../scenarios/checkout.toml")
            .replacen("cpu_us = 30", "cpu_us = -60", 1)
            .replacen("cpu_us = 60 ", "cpu_us = \"x\"", 1)
            .replacen("rates = [100, 200, 400]", "rates = [100, 0.5, 400]", 1)
            .replacen("{ op = \"get_cart\" }", "{ op = \"get_crt\" }", 1);
        let issues = parse(&text).unwrap_err();
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "operation[checkout].cpu_us",
                "operation[checkout].calls[1].op",
                "operation[authorize_payment].cpu_us",
                "load.rates[1]",
            ],
            "{issues:#?}"
        );
        assert!(issues[0].message.contains("`-60`") && issues[0].message.contains("0 to 1000000"));
        assert!(
            issues[1].message.contains("did you mean \"get_cart\""),
            "{}",
            issues[1].message
        );
        let (line, _) = line_column(&text, text.find("cpu_us = \"x\"").unwrap());
        assert_eq!(issues[2].line, line, "lines are the file's own");
    }

    #[test]
    fn the_template_is_a_valid_scenario() {
        let scenario = parse(&template("my-shop")).expect("template parses");
        assert_eq!(scenario.name, "my-shop");
    }

    #[test]
    fn line_column_counts_from_one() {
        let text = "a = 1\nbc = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 9), (2, 4));
    }

    #[test]
    fn quick_profile_shortens_steps_but_keeps_rates() {
        let load = LoadProfile {
            rates: vec![100, 200],
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
            p99_budget: None,
        };
        let quick = load.quick();
        assert_eq!(quick.rates, load.rates);
        assert_eq!(quick.duration, Duration::from_secs(2));
        assert_eq!(quick.warmup, Duration::from_secs(1));
    }
}

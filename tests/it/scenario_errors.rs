//! Malformed scenarios: every one is rejected with an error naming the line and the field,
//! and none panics.

use grainbench::scenario::{self, Issue};

/// A valid scenario, as lines, that each case breaks in one place.
const VALID: &str = r#"name = "tiny"
[[param]]
name = "user"
dist = "uniform"
count = 10
[[service]]
name = "front"
operations = ["entry"]
[[service]]
name = "back"
operations = ["leaf", "other"]
data = [{ key_prefix = "k:", count = 10 }]
[[operation]]
name = "entry"
calls = [{ op = "leaf" }, { parallel = ["leaf", "other"] }]
[[operation]]
name = "leaf"
reads = ["k:{user}"]
[[operation]]
name = "other"
writes = ["k:{user}"]
[[entrypoint]]
op = "entry"
weight = 1
[load]
rates = [10]
duration_s = 1
"#;

/// Replaces line `line` (1-based) of VALID with `with`.
fn replace_line(line: usize, with: &str) -> String {
    let mut lines: Vec<&str> = VALID.lines().collect();
    lines[line - 1] = with;
    lines.join("\n") + "\n"
}

/// VALID with a `[[cut]]` named `name` whose `units` line (the cut's second line, at
/// [`cut_line`] + 1) is `units`.
fn with_cut(name: &str, units: &str) -> String {
    format!("{VALID}[[cut]]\nname = \"{name}\"\nunits = {units}\n")
}

/// The line of the `name` field `with_cut` adds.
fn cut_line() -> usize {
    VALID.lines().count() + 2
}

/// The line of the field `with_network` adds.
fn network_line() -> usize {
    VALID.lines().count() + 2
}

/// VALID with a `[network]` section holding the one line `field`.
fn with_network(field: &str) -> String {
    format!("{VALID}[network]\n{field}\n")
}

fn errors_of(text: &str) -> Vec<Issue> {
    match scenario::parse(text) {
        Ok(_) => Vec::new(),
        Err(issues) => issues,
    }
}

#[test]
fn the_base_scenario_is_valid() {
    assert!(scenario::parse(VALID).is_ok(), "{:?}", errors_of(VALID));
}

#[test]
fn malformed_scenarios_name_line_and_field() {
    // (what is wrong, scenario text, expected line, expected field substring, expected message substring)
    let cases: Vec<(&str, String, usize, &str, &str)> = vec![
        (
            "unknown top-level field",
            replace_line(1, "nam = \"tiny\""),
            1,
            "nam",
            "unknown field",
        ),
        (
            "unknown operation field",
            replace_line(17, "nme = \"leaf\""),
            17,
            "nme",
            "unknown field",
        ),
        (
            "negative cpu",
            replace_line(18, "cpu_us = -3"),
            18,
            "cpu_us",
            "-3",
        ),
        (
            "string where a number goes",
            replace_line(26, "rates = [\"fast\"]"),
            26,
            "load.rates",
            "expected",
        ),
        (
            "unknown distribution",
            replace_line(4, "dist = \"gauss\""),
            4,
            "dist",
            "gauss",
        ),
        (
            "zero key space",
            replace_line(5, "count = 0"),
            5,
            "param[user].count",
            "at least 1",
        ),
        (
            "duplicate service",
            replace_line(10, "name = \"front\""),
            10,
            "service.name",
            "duplicate",
        ),
        (
            "duplicate operation",
            replace_line(17, "name = \"entry\""),
            17,
            "operation.name",
            "duplicate",
        ),
        (
            "empty service",
            replace_line(8, "operations = []"),
            8,
            "service[front].operations",
            "at least one",
        ),
        (
            "service lists undefined op",
            replace_line(8, "operations = [\"entry\", \"ghost\"]"),
            8,
            "service[front].operations",
            "unknown operation",
        ),
        (
            "operation in two services",
            replace_line(8, "operations = [\"entry\", \"leaf\"]"),
            11,
            "service[back].operations",
            "already in service",
        ),
        (
            "operation in no service",
            replace_line(11, "operations = [\"leaf\"]"),
            20,
            "operation[other]",
            "in no service",
        ),
        (
            "call to undefined op",
            replace_line(15, "calls = [{ op = \"nowhere\" }]"),
            15,
            "operation[entry].calls[0].op",
            "undefined",
        ),
        (
            "call cycle",
            replace_line(18, "calls = [{ op = \"entry\" }]"),
            18,
            "operation[leaf].calls",
            "cycle",
        ),
        (
            "call with both forms",
            replace_line(15, "calls = [{ op = \"leaf\", parallel = [\"other\"] }]"),
            15,
            "operation[entry].calls[0]",
            "exactly one",
        ),
        (
            "empty parallel",
            replace_line(15, "calls = [{ parallel = [] }]"),
            15,
            "operation[entry].calls[0].parallel",
            "at least one",
        ),
        (
            "undeclared key placeholder",
            replace_line(18, "reads = [\"k:{cart}\"]"),
            18,
            "operation[leaf].reads",
            "{cart}",
        ),
        (
            "entrypoint to undefined op",
            replace_line(23, "op = \"ghost\""),
            23,
            "entrypoint.op",
            "unknown operation",
        ),
        (
            "weights sum to zero",
            replace_line(24, "weight = 0"),
            24,
            "entrypoint.weight",
            "sum to zero",
        ),
        (
            "zero rate",
            replace_line(26, "rates = [10, 0]"),
            26,
            "load.rates",
            "positive",
        ),
        (
            "no rates",
            replace_line(26, "rates = []"),
            26,
            "load.rates",
            "at least one rate",
        ),
        (
            "zero duration",
            replace_line(27, "duration_s = 0"),
            27,
            "load.duration_s",
            "from 0.001 to 3600 seconds",
        ),
        (
            "negative duration",
            replace_line(27, "duration_s = -2.5"),
            27,
            "load.duration_s",
            "from 0.001 to 3600 seconds",
        ),
        (
            "missing duration",
            replace_line(27, ""),
            25,
            "load",
            "duration_s",
        ),
        (
            "name unusable in a URL",
            replace_line(14, "name = \"en try\""),
            14,
            "operation[en try].name",
            "invalid name",
        ),
        (
            "TOML syntax error",
            replace_line(19, "[[operation]"),
            19,
            "(document)",
            "",
        ),
        (
            "zero data count",
            replace_line(12, "data = [{ key_prefix = \"k:\", count = 0 }]"),
            12,
            "service[back].data.count",
            "at least 1",
        ),
        (
            "unknown transport",
            format!("{VALID}[transport]\nmodes = [\"http1-json\", \"http3\"]\n"),
            network_line(),
            "transport.modes[1]",
            "unknown transport 'http3': one of http1-json, grpc, binary",
        ),
        (
            "a transport listed twice",
            format!("{VALID}[transport]\nmodes = [\"grpc\", \"grpc\"]\n"),
            network_line(),
            "transport.modes[1]",
            "grpc is listed twice",
        ),
        (
            "unknown network preset",
            with_network("preset = \"lan\""),
            network_line(),
            "network.preset",
            "cross-zone",
        ),
        (
            "negative one-way delay",
            with_network("one_way_us = -5"),
            network_line(),
            "network.one_way_us",
            "-5",
        ),
        (
            "loss probability of 1",
            with_network("loss = 1.0"),
            network_line(),
            "network.loss",
            "below 1",
        ),
        (
            "unknown jitter distribution",
            with_network("jitter = \"gauss\""),
            network_line(),
            "network.jitter",
            "exponential",
        ),
        (
            "jitter without a distribution",
            with_network("jitter_us = 20"),
            network_line(),
            "network.jitter_us",
            "distribution",
        ),
        (
            "unknown network field",
            with_network("delay_us = 20"),
            network_line(),
            "delay_us",
            "unknown field",
        ),
        (
            "cut naming an unknown operation",
            with_cut("pair", r#"[["entry", "leaf"], ["nope"]]"#),
            cut_line() + 1,
            "cut[pair].units[1]",
            "unknown operation \"nope\"",
        ),
        (
            "cut listing an operation twice",
            with_cut("pair", r#"[["entry", "leaf"], ["leaf"]]"#),
            cut_line() + 1,
            "cut[pair].units[1]",
            "already in group 0",
        ),
        (
            "cut with an empty group",
            with_cut("pair", r#"[["entry"], []]"#),
            cut_line() + 1,
            "cut[pair].units[1]",
            "empty group",
        ),
        (
            "cut with no groups",
            with_cut("pair", "[]"),
            cut_line() + 1,
            "cut[pair].units",
            "at least one group",
        ),
        (
            "cut taking a built-in name",
            with_cut("micro", r#"[["entry", "leaf"]]"#),
            cut_line(),
            "cut[micro].name",
            "reserved",
        ),
        (
            "cut taking a generated name",
            with_cut("sweep-3", r#"[["entry", "leaf"]]"#),
            cut_line(),
            "cut[sweep-3].name",
            "reserved",
        ),
        (
            "p99 budget of zero",
            replace_line(27, "duration_s = 1\np99_budget_ms = 0"),
            28,
            "load.p99_budget_ms",
            "from 0.001",
        ),
        (
            "no replicas",
            replace_line(8, "operations = [\"entry\"]\nreplicas = 0"),
            9,
            "service[front].replicas",
            "1 to 16",
        ),
        (
            "too many retries",
            format!("{VALID}[resilience]\nretries = 11\n"),
            network_line(),
            "resilience.retries",
            "0 to 10",
        ),
        (
            "a retry budget that is not one",
            format!("{VALID}[resilience]\nretry_budget = \"ten\"\n"),
            network_line(),
            "resilience.retry_budget",
            "\"none\"",
        ),
        (
            "a fault of an unknown kind",
            format!("{VALID}[[fault]]\nkind = \"melt\"\noperation = \"leaf\"\nat_s = 1\n"),
            network_line(),
            "fault[0].kind",
            "kill, freeze, slow or fail",
        ),
        (
            "a fault on an operation the scenario lacks",
            format!("{VALID}[[fault]]\nkind = \"kill\"\noperation = \"leef\"\nat_s = 1\n"),
            network_line() + 1,
            "fault[0].operation",
            "no operation \"leef\"",
        ),
        (
            "a slow fault without its delay",
            format!("{VALID}[[fault]]\nkind = \"slow\"\noperation = \"leaf\"\nat_s = 1\n"),
            network_line(),
            "fault[0].delay_ms",
            "needs `delay_ms`",
        ),
        (
            "a fault failing more than always",
            format!("{VALID}[[fault]]\nkind = \"fail\"\noperation = \"leaf\"\nat_s = 1\nprobability = 1.5\n"),
            // The line and field that are wrong (it pointed at `at_s` for every field).
            network_line() + 3,
            "fault[0].probability",
            "probability, 0 to 1",
        ),
        (
            "a negative cpu_us, named by its operation and with its range",
            replace_line(18, "cpu_us = -60"),
            18,
            "operation[leaf].cpu_us",
            "allowed: a whole number of µs, 0 to 1000000",
        ),
        (
            "a call to a misspelt operation",
            replace_line(15, r#"calls = [{ op = "lef" }]"#),
            15,
            "operation[entry].calls[0]",
            "did you mean \"leaf\"?",
        ),
        (
            "a fault lasting longer than allowed",
            format!("{VALID}[[fault]]\nkind = \"freeze\"\noperation = \"leaf\"\nat_s = 1\nfor_s = 99999\n"),
            network_line() + 3,
            "fault[0].for_s",
            "FOR must be",
        ),
        (
            "a slow fault slower than allowed",
            format!("{VALID}[[fault]]\nkind = \"slow\"\noperation = \"leaf\"\nat_s = 1\ndelay_ms = 1e9\n"),
            network_line() + 3,
            "fault[0].delay_ms",
            "slow's AMOUNT",
        ),
    ];
    assert!(cases.len() >= 20);
    for (what, text, line, field, message) in cases {
        let issues = errors_of(&text);
        assert!(!issues.is_empty(), "{what}: accepted\n{text}");
        let hit = issues
            .iter()
            .any(|i| i.line == line && i.field.contains(field) && i.message.contains(message));
        assert!(hit, "{what}: expected line {line}, field containing {field:?}, message containing {message:?}; got {issues:#?}");
    }
}

#[test]
fn a_cut_places_every_operation_once_and_omitted_ones_alone() {
    let scenario = scenario::parse(&with_cut("pair", r#"[["entry", "leaf"]]"#)).unwrap();
    let cut = scenario.cut("pair").unwrap();
    assert_eq!(
        cut.units,
        vec![
            vec!["entry".to_string(), "leaf".into()],
            vec!["other".into()]
        ]
    );
    let plan = grainbench::plan::plan(&scenario, &"pair".parse().unwrap()).unwrap();
    // back's operations are split over two units: its data lives in a state unit.
    assert_eq!(plan.units.len(), 3);
    assert!(plan.store_unit.contains_key("back"));
    let whole = scenario::parse(&with_cut("whole", r#"[["entry"], ["leaf", "other"]]"#)).unwrap();
    let plan = grainbench::plan::plan(&whole, &"whole".parse().unwrap()).unwrap();
    assert!(
        plan.store_unit.is_empty(),
        "back is whole: its store is embedded"
    );
    let error = grainbench::plan::plan(&whole, &"pair".parse().unwrap()).unwrap_err();
    assert!(
        error.to_string().contains("nano, micro, monolith, whole"),
        "{error}"
    );
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, replace_line(24, "weight = 0")).unwrap();
    let error = scenario::load(&path).unwrap_err().to_string();
    assert!(error.contains("broken.toml:24:"), "{error}");
    assert!(error.contains("entrypoint.weight"), "{error}");
    let missing = scenario::load(&dir.path().join("absent.toml"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("absent.toml"), "{missing}");
}

#[test]
fn shipped_scenarios_are_valid() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn a_network_section_sets_the_model_and_explicit_fields_override_the_preset() {
    let plain = scenario::parse(VALID).unwrap();
    assert!(
        !plain.network.adds_delay(),
        "no [network] means raw loopback"
    );
    let dc = scenario::parse(&with_network("preset = \"dc\"")).unwrap();
    assert_eq!(
        (dc.network.name.as_str(), dc.network.one_way_us),
        ("dc", 250.0)
    );
    let text = format!(
        "{VALID}[network]\npreset = \"dc\"\none_way_us = 100\njitter = \"normal\"\nloss = 0.01\n"
    );
    let adjusted = scenario::parse(&text).unwrap().network;
    assert_eq!(adjusted.one_way_us, 100.0);
    assert_eq!(adjusted.jitter_us, 25.0, "kept from the preset");
    assert_eq!(adjusted.jitter.name(), "normal");
    assert_eq!(adjusted.loss, 0.01);
    assert_eq!(adjusted.name, "dc, adjusted");
    for field in ["one_way_us", "jitter", "loss", "from the preset"] {
        assert!(adjusted.source.contains(field), "{}", adjusted.source);
    }
    let own = scenario::parse(&with_network("hop_latency_us = 300")).unwrap();
    assert_eq!(
        (own.network.name.as_str(), own.network.one_way_us),
        ("scenario", 300.0)
    );
}

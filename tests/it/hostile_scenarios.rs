//! Hostile scenario files, generated: deep call chains, deep diamonds, very wide scenarios
//! and huge numbers. Each is either rejected with a located message that names the limit,
//! or validated and planned in every architecture with exact hop counts; never a stack
//! overflow, a hang, a wrapped count or an allocation the machine cannot make. (Each case
//! prints how long it took; the graph walks are linear, so none takes long, but no test
//! here asserts a duration.)

use grainbench::plan::{self, Architecture};
use grainbench::scenario::{self, limits, Issue};
use std::fmt::Write as _;
use std::time::Instant;

/// A scenario whose operations `op0..opN` all belong to one service, `op0` the entrypoint;
/// `calls(i)` is operation i's `calls = [...]` list (TOML).
fn chain_scenario(ops: usize, calls: impl Fn(usize) -> String) -> String {
    let mut text = String::from(
        "name = \"hostile\"\n[load]\nrates = [10]\nduration_s = 1\n\n[[entrypoint]]\nop = \"op0\"\n",
    );
    let names: Vec<String> = (0..ops).map(|i| format!("\"op{i}\"")).collect();
    let _ = writeln!(
        text,
        "\n[[service]]\nname = \"s\"\noperations = [{}]",
        names.join(", ")
    );
    for i in 0..ops {
        let _ = writeln!(
            text,
            "\n[[operation]]\nname = \"op{i}\"\ncalls = [{}]",
            calls(i)
        );
    }
    text
}

/// Operation i calls i+1 by `call` (`{next}` stands for its name); the last calls nothing.
fn linear(ops: usize, call: &str) -> String {
    chain_scenario(ops, |i| {
        if i + 1 < ops {
            call.replace("{next}", &format!("op{}", i + 1))
        } else {
            String::new()
        }
    })
}

/// Operation i calls i+1 once: a chain `ops` long.
fn chain(ops: usize) -> String {
    linear(ops, "{ op = \"{next}\" }")
}

/// Operation i calls i+1 twice in parallel: 2^levels calls at the bottom.
fn diamond(levels: usize) -> String {
    linear(levels, "{ parallel = [\"{next}\", \"{next}\"] }")
}

/// `services` services of one operation each; the entrypoint calls every one of them.
fn wide(services: usize) -> String {
    let mut text = String::from(
        "name = \"wide\"\n[load]\nrates = [10]\nduration_s = 1\n\n[[entrypoint]]\nop = \"op0\"\n",
    );
    for i in 0..services {
        let calls = if i == 0 {
            (1..services.min(2_000))
                .map(|c| format!("{{ op = \"op{c}\" }}"))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            String::new()
        };
        let _ = writeln!(
            text,
            "\n[[service]]\nname = \"s{i}\"\noperations = [\"op{i}\"]\ndata = [{{ key_prefix = \"k\", count = 2 }}]\n\n[[operation]]\nname = \"op{i}\"\nreads = [\"k1\"]\ncalls = [{calls}]"
        );
    }
    text
}

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = f();
    eprintln!("{label}: {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    value
}

fn issues(text: &str) -> Vec<Issue> {
    scenario::parse(text).expect_err("rejected")
}

#[test]
fn deep_chains_and_diamonds_are_rejected_past_the_hop_limit_and_planned_below_it() {
    // (scenario, hops a request makes as nano, or None if past the limit)
    let cases: Vec<(&str, String, Option<u32>)> = vec![
        ("chain of 100 000", chain(100_000), None),
        ("diamond of 26 levels", diamond(26), None),
        ("diamond of 64 levels (2^64 calls)", diamond(64), None),
        ("chain of 5 000", chain(5_000), Some(5_000)),
        ("diamond of 12 levels", diamond(12), Some((1 << 12) - 1)),
    ];
    for (label, text, nano_hops) in cases {
        let parsed = timed(label, || scenario::parse(&text));
        match nano_hops {
            None => {
                let issues = parsed.expect_err(label);
                let hops = issues
                    .iter()
                    .find(|i| i.message.contains("hops as nano"))
                    .unwrap_or_else(|| panic!("{label}: {issues:?}"));
                assert_eq!(hops.field, "entrypoint.op");
                assert!(
                    hops.message
                        .contains(&format!("limit is {}", limits::MAX_HOPS_PER_REQUEST)),
                    "{label}: {}",
                    hops.message
                );
            }
            Some(expected) => {
                let scenario = parsed.unwrap_or_else(|e| panic!("{label}: {e:?}"));
                let deployments = timed(&format!("{label}: plan"), || {
                    Architecture::ALL.map(|a| plan::plan(&scenario, &a).unwrap())
                });
                assert_eq!(
                    deployments[0].static_hops["op0"].total(),
                    expected,
                    "{label}"
                );
                assert_eq!(deployments[2].static_hops["op0"].total(), 1, "{label}");
                assert!(
                    deployments[0].critical_path_hops["op0"] <= expected,
                    "{label}"
                );
            }
        }
    }
}

#[test]
fn a_cycle_deep_in_a_long_chain_is_named_without_recursion() {
    let ops = 50_000;
    let text = chain_scenario(ops, |i| {
        let next = if i + 1 < ops { i + 1 } else { ops / 2 };
        format!("{{ op = \"op{next}\" }}")
    });
    let issues = timed("cycle at 50 000", || issues(&text));
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(
        issues[0]
            .message
            .starts_with("call cycle: op25000 → op25001"),
        "{}",
        &issues[0].message[..80]
    );
    assert_eq!(issues[0].field, format!("operation[op{}].calls", ops - 1));
}

#[test]
fn wide_scenarios_validate_and_plan() {
    for services in [3_000, 20_000] {
        let text = wide(services);
        let scenario = timed(&format!("{services} services: validate"), || {
            scenario::parse(&text).unwrap_or_else(|e| panic!("{:?}", &e[..e.len().min(3)]))
        });
        for architecture in Architecture::ALL {
            let deployment = timed(&format!("{services} services: plan {architecture}"), || {
                plan::plan(&scenario, &architecture).unwrap()
            });
            let expected_units = match architecture {
                Architecture::Nano => 2 * services,
                Architecture::Micro => services,
                _ => 1,
            };
            assert_eq!(deployment.units.len(), expected_units, "{architecture}");
        }
        let sweep = timed(&format!("{services} services: sweep"), || {
            plan::sweep::SweepSeries::generate(&scenario, plan::Series::Hops)
        });
        match sweep {
            Ok(sweep) => {
                assert!(services <= plan::sweep::MAX_SWEEP_OPERATIONS);
                assert_eq!(sweep.partition(1).unwrap().len(), 1);
                // op0 calls the next 1 999 operations: merging them first removes hops.
                assert!(sweep.gains[..1_999].iter().all(|&g| g > 0));
                assert!(sweep.gains[1_999..].iter().all(|&g| g == 0));
            }
            Err(error) => {
                assert!(services > plan::sweep::MAX_SWEEP_OPERATIONS);
                assert!(error.to_string().contains("at most"), "{error}");
            }
        }
    }
}

/// The base scenario with one line replaced; each case's issue must name the field and
/// the limit.
#[test]
fn huge_numbers_are_rejected_with_the_limit_they_passed() {
    let base = |load: &str, op: &str, data: &str, entry: &str| {
        format!(
            "name = \"huge\"\n[load]\n{load}\n\n[[entrypoint]]\nop = \"a\"\n{entry}\n\n[[entrypoint]]\nop = \"b\"\nweight = 1\n\n\
             [[service]]\nname = \"s\"\noperations = [\"a\", \"b\"]\n{data}\n\n[[operation]]\nname = \"a\"\n{op}\n\n[[operation]]\nname = \"b\"\n"
        )
    };
    let load = "rates = [10]\nduration_s = 1";
    let cases: Vec<(&str, String, &str, String)> = vec![
        (
            "rate",
            base("rates = [4000000000]\nduration_s = 1", "", "", ""),
            "load.rates",
            limits::MAX_RATE.to_string(),
        ),
        (
            "requests per step",
            base("rates = [100000]\nduration_s = 3600", "", "", ""),
            "load.rates",
            limits::MAX_REQUESTS_PER_STEP.to_string(),
        ),
        (
            "tiny duration",
            base("rates = [10]\nduration_s = 1e-10", "", "", ""),
            "load.duration_s",
            limits::MIN_DURATION_S.to_string(),
        ),
        (
            "timeout",
            base(
                "rates = [10]\nduration_s = 1\ntimeout_ms = 18446744073709551615",
                "",
                "",
                "",
            ),
            "load.timeout_ms",
            limits::MAX_TIMEOUT_MS.to_string(),
        ),
        (
            "cpu",
            base(load, "cpu_us = 18446744073709551615", "", ""),
            "operation[a].cpu_us",
            limits::MAX_CPU_US.to_string(),
        ),
        (
            "request bytes",
            base(load, "request_bytes = 10000000000", "", ""),
            "operation[a].request_bytes",
            limits::MAX_PAYLOAD_BYTES.to_string(),
        ),
        (
            "response bytes",
            base(load, "response_bytes = 20000000", "", ""),
            "operation[a].response_bytes",
            limits::MAX_PAYLOAD_BYTES.to_string(),
        ),
        (
            "keys",
            base(
                load,
                "",
                "data = [{ key_prefix = \"k\", count = 1000000000000000000 }]",
                "",
            ),
            "service[s].data.count",
            limits::MAX_KEYS.to_string(),
        ),
        (
            "value size",
            base(
                load,
                "",
                "data = [{ key_prefix = \"k\", count = 10, value_bytes = 100000000000 }]",
                "",
            ),
            "service[s].data.value_bytes",
            limits::MAX_VALUE_BYTES.to_string(),
        ),
        (
            "store",
            base(
                load,
                "",
                "data = [{ key_prefix = \"k\", count = 9000000, value_bytes = 1000000 }]",
                "",
            ),
            "service[s].data.count",
            "MiB".into(),
        ),
        (
            "weights",
            base(load, "", "", "weight = 4294967295"),
            "entrypoint.weight",
            limits::MAX_WEIGHT_SUM.to_string(),
        ),
    ];
    for (label, text, field, limit) in cases {
        let issues = timed(label, || issues(&text));
        let issue = issues
            .iter()
            .find(|i| i.field == field)
            .unwrap_or_else(|| panic!("{label}: no issue on {field}: {issues:?}"));
        assert!(issue.line > 1, "{label}: located at line {}", issue.line);
        assert!(issue.message.contains(&limit), "{label}: {}", issue.message);
    }
}

#[test]
fn weights_summing_exactly_to_the_limit_are_accepted_and_both_entrypoints_get_traffic() {
    let text = "name = \"w\"\n[load]\nrates = [10]\nduration_s = 1\n\n[[entrypoint]]\nop = \"a\"\nweight = 2147483648\n\n[[entrypoint]]\nop = \"b\"\nweight = 2147483647\n\n[[service]]\nname = \"s\"\noperations = [\"a\", \"b\"]\n\n[[operation]]\nname = \"a\"\n\n[[operation]]\nname = \"b\"\n";
    let scenario = scenario::parse(text).expect("weights summing to u32::MAX are fine");
    let mut generator = grainbench::driver::requests::RequestGen::new(&scenario, 1);
    let mut seen = [0u32; 2];
    for _ in 0..200 {
        seen[generator.next_request().entry] += 1;
    }
    assert!(seen[0] > 50 && seen[1] > 50, "{seen:?}");
}

//! Adding a scenario with no code: `grainbench new` writes a file that validates and runs,
//! and the JSON Schema (`grainbench schema`) accepts every shipped scenario and rejects a
//! malformed one.

use crate::common::*;
use std::process::Command;

fn grainbench(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(grainbench_binary())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("grainbench runs")
}

#[test]
fn new_then_validate_then_a_tiny_run() {
    let dir = tempfile::tempdir().unwrap();
    let new = grainbench(&["new", "my-shop"], dir.path());
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    let file = dir.path().join("scenarios/my-shop.toml");
    assert!(file.is_file());
    // The hint names a command that exists: the binary as it was called (here by its
    // path; no `grainbench` need be on the PATH).
    let hint = String::from_utf8_lossy(&new.stdout);
    let called = grainbench_binary();
    assert!(
        hint.contains(&format!("next: {} validate", called.display())),
        "{hint}"
    );

    let validate = grainbench(&["validate", "scenarios/my-shop.toml"], dir.path());
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );

    let run_id = unique_run_id("new-scenario");
    let run = grainbench(
        &[
            "run",
            "--all",
            "--rates",
            "40",
            "--duration",
            "0.5",
            "--warmup",
            "0.2",
            "--cold-starts",
            "1",
            "--no-redeploy",
            "--run-id",
            &run_id,
        ],
        dir.path(),
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let results =
        grainbench::results::RunResults::read(&dir.path().join("reports/my-shop/results.json"))
            .unwrap();
    assert!(results.complete);
    assert_eq!(results.architectures.len(), 3);
    assert!(results
        .architectures
        .iter()
        .all(|a| a.steps.len() == results.meta.rounds && a.steps.iter().all(|s| s.ok > 0)));
    assert_eq!(results.meta.rounds, 3, "the default is three rounds");

    let again = grainbench(&["new", "my-shop"], dir.path());
    assert!(
        !again.status.success(),
        "never overwrites an existing scenario"
    );
    assert_eq!(
        wait_for_no_processes(&run_id, std::time::Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

fn schema_validator() -> jsonschema::Validator {
    let out = Command::new(grainbench_binary())
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

fn toml_as_json(text: &str) -> serde_json::Value {
    toml::from_str(text).expect("TOML parses")
}

#[test]
fn the_schema_accepts_every_shipped_scenario_and_rejects_a_malformed_one() {
    let validator = schema_validator();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let files = grainbench::scenario::discover(&dir).unwrap();
    assert!(files.len() >= 3);
    for file in files {
        let value = toml_as_json(&std::fs::read_to_string(&file).unwrap());
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
    let template = toml_as_json(&grainbench::scenario::template("x"));
    assert!(validator.is_valid(&template));

    let malformed = toml_as_json(
        "name = \"x\"\nmystery = 1\n[load]\nrates = [\"fast\"]\nduration_s = 1\n[[operation]]\nname = \"a\"\ncpu_us = \"lots\"\n",
    );
    assert!(!validator.is_valid(&malformed));
    let missing_load = toml_as_json("name = \"x\"\n");
    assert!(!validator.is_valid(&missing_load));
}

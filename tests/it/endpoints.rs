//! `run --endpoints`: driving units this run did not start gives the same digests and
//! hops as a normal run, and says what it could not measure.

use crate::common::*;
use grainbench::plan::Architecture;
use grainbench::run::endpoints::Endpoints;
use grainbench::scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driving_units_started_by_up_matches_a_normal_run() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let request = grainbench::up::UpRequest {
        cut: Architecture::Micro,
        overrides: Default::default(),
        security: Default::default(),
        target: Default::default(),
        unit_cores: None,
    };
    let up = grainbench::up::Up::start(&source, &request, unit_binary())
        .await
        .expect("up starts micro");
    let live = &up.live;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("endpoints.toml");
    let urls: String = source
        .scenario
        .entrypoints
        .iter()
        .map(|e| format!("{} = \"http://{}\"\n", e.op, live.addr_of(&e.op).unwrap()))
        .collect();
    std::fs::write(
        &file,
        format!("cut = \"micro\"\nlabel = \"micro-up\"\n[entrypoints]\n{urls}"),
    )
    .unwrap();

    let mut external = short_run_options("endpoints-external", &dir.path().join("external"));
    external.endpoints = Some(Endpoints::read(&file, &source.scenario).unwrap());
    let outside = run_ok(&source, &external).await;
    up.stop().await;

    let mut normal = short_run_options("endpoints-normal", &dir.path().join("normal"));
    normal.architectures = vec![Architecture::Micro];
    let inside = run_ok(&source, &normal).await;

    assert_eq!(outside.architectures.len(), 1);
    let driven = &outside.architectures[0];
    assert_eq!(driven.label(), "micro-up");
    assert_eq!(
        outside.equivalence.as_ref().unwrap().digests,
        inside.equivalence.as_ref().unwrap().digests,
        "the same business results"
    );
    let measured = &inside.architectures[0];
    assert_eq!(driven.static_hops, measured.static_hops);
    for (d, m) in driven.steps.iter().zip(&measured.steps) {
        assert!(d.ok > 0 && d.error_total == 0, "{d:?}");
        for (de, me) in d.entrypoints.iter().zip(&m.entrypoints) {
            assert!(de.hops_match_static, "{}", de.entrypoint);
            assert_eq!(de.hops.mean_total, me.hops.mean_total, "{}", de.entrypoint);
        }
        assert!(
            d.units.is_none() && d.units_cpu_us_per_request.is_none(),
            "not measured, not guessed"
        );
    }
    assert!(driven.deploy.is_none() && driven.cold_start_ms.is_none());
    assert_eq!(outside.meta.endpoints.as_deref(), Some(file.as_path()));
    let summary = grainbench::report::render_summary(&outside, None);
    assert!(summary.contains("did not start"), "{summary}");
    let model = grainbench::report::model::build(&outside, None);
    assert!(
        model
            .missing
            .iter()
            .any(|m| m.contains("did not start") && m.contains("not measured")),
        "{:?}",
        model.missing
    );
}

//! The scenario corpus is the main test suite: each file under `scenarios/` is one test of
//! behaviour. Goal: every file loads, every `expect:` holds over every explored order, and the
//! rfc5321 trace of each file stays byte-for-byte what was reviewed.

use std::sync::Arc;

use mxsim_lab::check::check_scenario;
use mxsim_policy::registry;
use mxsim_sim::{Choices, Prepared, Runner, SimWorld};
use mxsim_tests::{load, scenario_files};

/// Pins the rfc5321 trace of every scenario, at the file's seed (default 0).
#[test]
fn traces() {
    let runner = Runner::new();
    let policy = registry::get::<SimWorld>("rfc5321").expect("rfc5321 is registered");
    insta::glob!("../../scenarios", "**/*.yaml", |path| {
        let scenario = load(path);
        let prepared = Arc::new(Prepared::new(scenario.clone()));
        let seed = scenario.seed.unwrap_or(0);
        let run = runner.run(&prepared, policy.as_ref(), Choices::Seed(seed));
        let text = format!(
            "{}\npolicy rfc5321, seed {seed}\n\n{}",
            scenario.title, run.trace
        );
        insta::assert_snapshot!(text);
    });
}

/// Checks every expectation of every scenario; reports all failures at once.
#[test]
fn expectations() {
    let runner = Runner::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in scenario_files() {
        let scenario = load(&path);
        for result in check_scenario(&runner, &scenario) {
            checked += 1;
            let verdict = &result.verdict;
            if let Some((label, fault)) = &verdict.first_fault {
                failures.push(format!(
                    "{} {} {label}: {fault}",
                    path.display(),
                    result.policy
                ));
            }
            if let Some((label, problems)) = &verdict.first_failure {
                failures.push(format!(
                    "{} {} {label}: {}",
                    path.display(),
                    result.policy,
                    problems.join("; ")
                ));
            }
        }
    }
    assert!(
        checked >= 20,
        "only {checked} expectations found; the corpus should have at least 20"
    );
    assert!(
        failures.is_empty(),
        "{} broken expectations:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every scenario has an expectation for the baseline, so the baseline is pinned everywhere.
#[test]
fn every_scenario_expects_rfc5321() {
    let missing: Vec<String> = scenario_files()
        .into_iter()
        .filter(|path| {
            !load(path)
                .expectations
                .iter()
                .any(|expectation| expectation.policy == "rfc5321")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "scenarios without an rfc5321 expectation:\n{}",
        missing.join("\n")
    );
}

//! Fuzz target: load a scenario and, when it loads, run it once under the `rfc5321` preset.
//!
//! This reaches what the loaders alone cannot: a scenario the loader accepts must also run to
//! an end in virtual time without panicking (the simulated world trusts what the loader let
//! through). One `Runner` per process: building its runtime costs more than a run.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mxsim_model::{expect, scenario};
use mxsim_policy::registry;
use mxsim_sim::{Choices, Prepared, Runner, SimWorld};

thread_local! {
    static RUNNER: Runner = Runner::new();
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let scenario = match scenario::load(text, &registry::is_known) {
        Ok(scenario) => scenario,
        Err(diagnostics) => {
            std::hint::black_box(diagnostics.render("fuzz.yaml", text));
            return;
        }
    };
    let scenario = Arc::new(scenario);
    let policy = registry::get::<SimWorld>("rfc5321").expect("rfc5321 is a shipped preset");
    let prepared = Arc::new(Prepared::new(scenario.clone()));
    let run = RUNNER.with(|runner| runner.run(&prepared, policy.as_ref(), Choices::Seed(0)));
    // The trace's text form is what users read, and `expect:` is judged on every run: both see
    // whatever the loader let through.
    std::hint::black_box(run.trace.to_string());
    if let Some(expectation) = scenario
        .expectations
        .iter()
        .find(|expectation| expectation.policy == "rfc5321")
    {
        std::hint::black_box(expect::violations(expectation, &run.trace, &run.outcomes));
    }
});

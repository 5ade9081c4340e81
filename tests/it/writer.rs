//! The scenario writer: loading what it writes gives back the same scenario, for every shipped
//! file and for generated worlds, and writing is idempotent.

use mxsim_model::scenario::{Scenario, load, same, write};
use mxsim_policy::registry;
use proptest::prelude::*;

use mxsim_tests::{load as load_file, scenario_files};

/// Writes `scenario`, loads the text, and checks both round trips.
fn round_trip(scenario: &Scenario, what: &str) {
    let written = write(scenario);
    let back = match load(&written, &registry::is_known) {
        Ok(back) => back,
        Err(diagnostics) => panic!(
            "{what}: the written text does not load:\n{}\n{written}",
            diagnostics.render("written.yaml", &written)
        ),
    };
    assert!(
        same(scenario, &back),
        "{what}: loading the written text gives another scenario:\n{written}"
    );
    assert_eq!(write(&back), written, "{what}: writing is not idempotent");
}

#[test]
fn every_shipped_scenario_round_trips() {
    for path in scenario_files() {
        round_trip(&load_file(&path), &path.display().to_string());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every generated spec is a valid scenario: what the writer makes of it loads back the
    /// same.
    #[test]
    fn generated_specs_are_valid_scenarios(spec in mxsim_lab::generate::any_spec()) {
        round_trip(&spec.scenario("generated"), &format!("{spec:?}"));
    }
}

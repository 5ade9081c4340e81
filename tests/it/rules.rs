//! The rules table as the project sees it: `docs/rules.md` is what `mxsim rules` prints, and the
//! catalog's checkers hold for the RFC baseline over the whole corpus, so a checker that fires
//! there is either a bug in the checker or a departure to document.

use std::sync::Arc;

use mxsim_cli::{EXIT_OK, main_with};
use mxsim_model::rules::{Level, RULES, Subject};
use mxsim_policy::registry;
use mxsim_sim::{Choices, Prepared, Runner, SimWorld};
use mxsim_tests::{load, root, scenario_files};

/// `docs/rules.md` is generated from the table; this fails when it is stale.
#[test]
fn docs_rules_md_is_what_mxsim_rules_prints() {
    let output = main_with(["mxsim", "rules"].map(Into::into));
    assert_eq!(output.code, EXIT_OK);
    let on_disk = std::fs::read_to_string(root().join("docs/rules.md")).unwrap_or_default();
    assert!(
        on_disk == output.stdout,
        "docs/rules.md is stale: run `cargo run -p mxsim-cli -- rules > docs/rules.md`"
    );
}

/// Every judged MUST and SHOULD rule holds for rfc5321 on every scenario at its seed.
#[test]
fn the_baseline_keeps_every_judged_rule_on_the_corpus() {
    let runner = Runner::new();
    let policy = registry::get::<SimWorld>("rfc5321").expect("registered");
    let mut broken = Vec::new();
    for path in scenario_files() {
        let scenario = load(&path);
        let prepared = Arc::new(Prepared::new(scenario.clone()));
        let run = runner.run(
            &prepared,
            policy.as_ref(),
            Choices::Seed(scenario.seed.unwrap_or(0)),
        );
        let queue = policy.queue();
        let subject = Subject {
            trace: &run.trace,
            outcomes: &run.outcomes,
            messages: &scenario.messages,
            queue: scenario.queue.then_some(&queue),
        };
        for rule in RULES
            .iter()
            .filter(|rule| matches!(rule.level, Level::Must | Level::Should))
        {
            for violation in rule.check(&subject) {
                broken.push(format!("{}: {violation}", path.display()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

//! The rules table as the project sees it: `docs/rules.md` is what `mxsim rules` prints, and the
//! catalog's checkers hold for the RFC baseline over the whole corpus, so a checker that fires
//! there is either a bug in the checker or a departure to document.

use std::sync::Arc;

use mxsim_cli::{EXIT_OK, main_with};
use mxsim_model::rules::{Level, Memo, RULES, Subject, check_rules};
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

/// The SHOULD rules the baseline breaks by a decision of its contract, with where the decision
/// is written. The baseline has no `departures:` (a MUST it broke would be a FAIL); these show
/// as NON-STRICT in `compare`, and each must still fire somewhere in the corpus, so the list
/// cannot outlive the decision.
const BASELINE_SHOULD_BREAKS: &[(&str, &str)] = &[(
    "Q5",
    "docs/rfc5321-baseline.md, Decisions: no memory across attempts or messages, so a later message waits out a dead host's connect timeout again",
)];

/// Every judged MUST and SHOULD rule holds for rfc5321 on every scenario at its seed, apart from
/// the SHOULDs of [`BASELINE_SHOULD_BREAKS`].
#[test]
fn the_baseline_keeps_every_judged_rule_on_the_corpus() {
    let mut decided: Vec<&str> = Vec::new();
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
            client: Some(&scenario.client),
            memo: &Default::default(),
        };
        for rule in RULES
            .iter()
            .filter(|rule| matches!(rule.level, Level::Must | Level::Should))
        {
            for violation in rule.check(&subject) {
                let exempt = rule.level == Level::Should
                    && BASELINE_SHOULD_BREAKS.iter().any(|(id, _)| *id == rule.id);
                if exempt {
                    decided.push(rule.id);
                } else {
                    broken.push(format!("{}: {violation}", path.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    for (id, why) in BASELINE_SHOULD_BREAKS {
        assert!(
            decided.contains(id),
            "{id} no longer fires for the baseline anywhere: drop it from BASELINE_SHOULD_BREAKS ({why})"
        );
    }
}

/// Each open question with a detector is met on a scenario, as an INFO verdict line naming the
/// alternative taken, and never changes the exit code: (question, scenario, policy, the
/// alternative's words).
const MET: &[(&str, &str, &str, &str)] = &[
    (
        "O9",
        "scenarios/mta/tls-handshake-fails-opportunistic.yaml",
        "stalwart",
        "taken: the next host (mx2.foo.example)",
    ),
    (
        "O9",
        "scenarios/regressions/starttls-refused-opportunistic.yaml",
        "postfix-3.11",
        "taken: reconnected to the same address",
    ),
    (
        "O10",
        "scenarios/mta/greeting-5yz-backup-accepts.yaml",
        "rfc5321",
        "taken: the next host (mx2.foo.example)",
    ),
    (
        "O11",
        "scenarios/rfc5321/end-of-data-5yz-bounced.yaml",
        "rfc5321",
        "taken: bounced",
    ),
    (
        "O12",
        "scenarios/rfc5321/failed-address-lookup-host-skipped.yaml",
        "rfc5321",
        "taken: the next host",
    ),
    (
        "O13",
        "scenarios/mta/mx-target-cname.yaml",
        "rfc5321",
        "taken: followed it: connected to mx1.foo.example (192.0.2.1)",
    ),
    (
        "O14",
        "scenarios/mta/null-mx.yaml",
        "rfc5321",
        "taken: used the other records",
    ),
    (
        "O14",
        "scenarios/mta/null-mx.yaml",
        "postfix-3.11",
        "taken: bounced",
    ),
    (
        "O20",
        "scenarios/mta/end-of-data-reply-lost.yaml",
        "postfix-3.11",
        "a second copy was accepted by mx2.foo.example (a duplicate)",
    ),
    (
        "O20",
        "scenarios/mta/end-of-data-reply-lost.yaml",
        "rfc5321",
        "taken: deferred, and no second copy was accepted",
    ),
];

#[test]
fn each_open_question_detector_names_the_alternative_taken() {
    use mxsim_model::rules::QUESTIONS;
    for question in QUESTIONS
        .iter()
        .filter(|question| question.detector.is_some())
    {
        assert!(
            MET.iter().any(|(id, ..)| *id == question.id),
            "{}: a detector with no scenario in MET",
            question.id
        );
    }
    for (id, scenario, policy, taken) in MET {
        let path = root().join(scenario);
        let output = main_with(
            [
                "mxsim".as_ref(),
                "run".as_ref(),
                path.as_os_str(),
                "--policy".as_ref(),
                policy.as_ref(),
            ]
            .map(Into::into),
        );
        let line = output
            .stdout
            .lines()
            .find(|line| line.starts_with(&format!("verdict {policy}: INFO {id} OPEN: ")));
        assert!(
            line.is_some_and(|line| line.contains(taken)),
            "{id} on {scenario} with {policy}: no INFO line with {taken:?}:\n{}",
            output.stdout
        );
        assert_eq!(
            output.code, EXIT_OK,
            "an INFO verdict changed the exit code of {scenario} with {policy}"
        );
    }
}

/// `mxsim rules --coverage`: the corpus meets at least 18 of the 21 open questions on a scenario
/// where the policies differ (issue #9's target), and coverage is a figure, never a failure.
#[test]
fn the_corpus_meets_most_open_questions_where_policies_differ() {
    let scenarios = root().join("scenarios");
    let output = main_with(
        [
            "mxsim".as_ref(),
            "rules".as_ref(),
            "--coverage".as_ref(),
            scenarios.as_os_str(),
        ]
        .map(Into::into),
    );
    assert_eq!(output.code, EXIT_OK, "{}", output.stderr);
    let line = output
        .stdout
        .lines()
        .find(|line| {
            line.contains(" of 21 open questions are met on a scenario where the policies differ")
        })
        .unwrap_or_else(|| panic!("no open-question count:\n{}", output.stdout));
    let met: usize = line
        .split_whitespace()
        .next()
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    assert!(met >= 18, "{line}");
    assert!(output.stdout.contains("  O13 "), "{}", output.stdout);
}

/// `check_rules` walks a trace once per module (the checkers share a `Memo`) instead of once per
/// rule: on every shipped scenario and every registered policy it gives exactly what calling
/// each judged rule's checker in turn, each with a fresh memo, gives, in the same order.
#[test]
fn check_rules_is_each_checker_in_turn() {
    let runner = Runner::new();
    let mut differ = Vec::new();
    for path in scenario_files() {
        let scenario = load(&path);
        let prepared = Arc::new(Prepared::new(scenario.clone()));
        for name in registry::names() {
            let policy = registry::get::<SimWorld>(name).expect("registered");
            let run = runner.run(
                &prepared,
                policy.as_ref(),
                Choices::Seed(scenario.seed.unwrap_or(0)),
            );
            let queue = policy.queue();
            let queue = scenario.queue.then_some(&queue);
            let mut one_by_one = Vec::new();
            for rule in RULES.iter().filter(|rule| rule.judged()) {
                let fresh = Memo::default();
                one_by_one.extend(rule.check(&Subject {
                    trace: &run.trace,
                    outcomes: &run.outcomes,
                    messages: &scenario.messages,
                    queue,
                    client: Some(&scenario.client),
                    memo: &fresh,
                }));
            }
            let shared = Memo::default();
            let subject = Subject {
                trace: &run.trace,
                outcomes: &run.outcomes,
                messages: &scenario.messages,
                queue,
                client: Some(&scenario.client),
                memo: &shared,
            };
            if check_rules(&subject, |_| true) != one_by_one {
                differ.push(format!("{} {name}", path.display()));
            }
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

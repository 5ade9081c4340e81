//! Generated worlds (`mxsim_lab::generate`) and the search over them: every preset keeps every
//! MUST and its claims apart from documented departures; runs are deterministic; four
//! metamorphic relations hold; and `explore` and `diff` from the command line write scenario
//! files that `run` and `check` accept, with the exit codes they document.
//!
//! proptest keeps the seeds of failures it found next to this file
//! (`search.proptest-regressions`), committed, so that a fixed failure is replayed first.

use std::collections::BTreeSet;
use std::sync::Arc;

use mxsim_cli::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main_with};
use mxsim_lab::generate::{
    Addresses, DomainSpec, Fault, HostSpec, MxAnswer, Spec, any_spec, renamed,
};
use mxsim_lab::judge::Judge;
use mxsim_lab::search::{self, Cases};
use mxsim_lab::spec::PolicySpec;
use mxsim_model::outcome::{Disposition, DispositionKind};
use mxsim_model::rules::Grade;
use mxsim_model::scenario::{RecordSet, Scenario, ZoneName};
use mxsim_policy::registry;
use mxsim_sim::{Choices, Prepared, Run, Runner};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

fn run(scenario: &Scenario, policy: &str, seed: u64) -> Run {
    let policy = registry::get(policy).expect("registered");
    let prepared = Arc::new(Prepared::new(Arc::new(scenario.clone())));
    Runner::new().run(&prepared, policy.as_ref(), Choices::Seed(seed))
}

/// Each recipient, its outcome and the host delivered through.
type Reached = Vec<(String, DispositionKind, Option<String>)>;

/// Each recipient's outcome and the host delivered through, in order.
fn reached(run: &Run) -> Reached {
    run.outcomes
        .iter()
        .map(|outcome| {
            let via = match &outcome.disposition {
                Disposition::Delivered { host, .. } => Some(host.to_string()),
                _ => None,
            };
            (
                outcome.recipient.to_string(),
                outcome.disposition.kind(),
                via,
            )
        })
        .collect()
}

/// The FAIL verdicts of `policy` on a run.
fn fails(scenario: &Scenario, policy: &str, run: &Run) -> Vec<String> {
    let spec = PolicySpec::Named(policy.to_owned());
    let claims = spec.claims();
    let departures = spec.departures();
    let built = spec.build();
    let judge = Judge::new(
        None,
        &claims,
        &departures,
        scenario.queue.then(|| built.queue()),
        &scenario.messages,
        Some(&scenario.client),
    );
    judge
        .graded(run)
        .into_iter()
        .filter(|(grade, _)| *grade == Some(Grade::Fail))
        .map(|(grade, violation)| judge.line(grade, &violation))
        .collect()
}

proptest! {
    #![proptest_config(config(48))]

    /// Every preset keeps every MUST and its own claims on generated worlds, apart from the
    /// departures it documents.
    #[test]
    fn every_preset_keeps_every_must_and_its_claims(spec in any_spec(), seed in 0u64..1_000) {
        let scenario = spec.scenario("generated");
        for policy in registry::names() {
            let run = run(&scenario, policy, seed);
            prop_assert!(run.fault.is_none(), "{policy} faulted: {:?}", run.fault);
            let failed = fails(&scenario, policy, &run);
            prop_assert!(failed.is_empty(), "{policy}:\n{}\n{}", failed.join("\n"), mxsim_model::scenario::write(&scenario));
        }
    }

    /// Same world, same seed: the same trace, byte for byte.
    #[test]
    fn generated_worlds_are_deterministic(spec in any_spec(), seed in 0u64..1_000) {
        let scenario = spec.scenario("generated");
        for policy in ["rfc5321", "postfix-3.11", "exim-4", "maddy"] {
            let first = run(&scenario, policy, seed);
            let again = run(&scenario, policy, seed);
            prop_assert_eq!(first.trace.to_string(), again.trace.to_string());
        }
    }

    /// A policy that delivered every recipient delivers them the same way when an unreachable
    /// host is added at a worse preference than any the domain has.
    #[test]
    fn an_unreachable_worse_host_changes_nothing_for_a_delivery(spec in mxsim_lab::generate::spec(false), seed in 0u64..1_000) {
        let before = spec.scenario("generated");
        let mut worse = spec.clone();
        let domain = &mut worse.domains[0];
        prop_assume!(domain.answer == MxAnswer::Records && !domain.alias);
        let last = domain.hosts.iter().map(|host| host.preference).max().unwrap_or(0);
        domain.hosts.push(HostSpec {
            preference: last + 10,
            addresses: Addresses::One,
            cname: false,
            fault: Fault::Connect(mxsim_model::scenario::ConnectMode::Refuse),
            windowed: false,
            greylist: false,
            offers: 0,
            offers_after_tls: 0,
        });
        let after = worse.scenario("generated");
        for policy in registry::names() {
            let first = run(&before, policy, seed);
            let delivered = !first.outcomes.is_empty()
                && first.outcomes.iter().all(|o| o.disposition.kind() == DispositionKind::Delivered);
            if !delivered {
                continue;
            }
            let second = run(&after, policy, seed);
            prop_assert_eq!(reached(&first), reached(&second), "{}", policy);
        }
    }

    /// Renaming every host consistently changes only names.
    #[test]
    fn renaming_hosts_changes_only_names(spec in any_spec(), seed in 0u64..1_000) {
        let scenario = spec.scenario("generated");
        let other = renamed(&scenario);
        for policy in registry::names() {
            let first = reached(&run(&scenario, policy, seed));
            let second: Vec<_> = reached(&run(&other, policy, seed))
                .into_iter()
                .map(|(to, kind, via)| (to, kind, via.map(|host| host.replace("relay", "mx"))))
                .collect();
            prop_assert_eq!(first, second, "{}", policy);
        }
    }

    /// Adding a recipient at an accepting domain changes no other recipient's outcome.
    #[test]
    fn a_recipient_at_an_accepting_domain_changes_no_other(spec in any_spec(), seed in 0u64..1_000) {
        let scenario = spec.scenario("generated");
        let mut more = spec.clone();
        more.domains.push(DomainSpec {
            answer: MxAnswer::Records,
            alias: false,
            hosts: vec![HostSpec {
                preference: 10,
                addresses: Addresses::One,
                cname: false,
                fault: Fault::None,
                windowed: false,
                greylist: false,
                offers: 0,
                offers_after_tls: 0,
            }],
            recipients: 1,
        });
        let added = more.scenario("generated");
        for policy in registry::names() {
            let first = reached(&run(&scenario, policy, seed));
            let second: Vec<_> = reached(&run(&added, policy, seed))
                .into_iter()
                .filter(|(to, _, _)| !to.ends_with(&format!("@{}", Spec::domain_name(spec.domains.len()))))
                .collect();
            prop_assert_eq!(first, second, "{}", policy);
        }
    }
}

/// Every result (outcomes and hosts) over every order of a world, when the exploration is
/// exhaustive.
fn every_result(scenario: &Scenario, policy: &str) -> Option<BTreeSet<Reached>> {
    let built = registry::get(policy).expect("registered");
    let prepared = Arc::new(Prepared::new(Arc::new(scenario.clone())));
    let mut runs: Vec<Run> = Vec::new();
    let exploration = Runner::new().explore(&prepared, built.as_ref(), &mut runs);
    exploration
        .exhaustive
        .then(|| runs.iter().map(reached).collect())
}

/// The world with every MX answer's records in reverse zone order.
fn reversed(scenario: &Scenario) -> Scenario {
    let mut out = scenario.clone();
    for value in out.zone.names.values_mut() {
        if let ZoneName::Records(records) = value
            && let Some(RecordSet::Records(list)) = &records.base.mx
        {
            let mut list = list.to_vec();
            list.reverse();
            records.base.mx = Some(RecordSet::Records(list.into()));
        }
    }
    out
}

proptest! {
    #![proptest_config(config(32))]

    /// Reordering equal-preference records in the zone changes only the order a randomising
    /// policy draws: over every order, the same results.
    #[test]
    fn reordering_equal_preferences_changes_only_the_draw(spec in mxsim_lab::generate::spec(false)) {
        prop_assume!(spec.domains.iter().map(|d| d.hosts.len()).sum::<usize>() <= 5);
        let scenario = spec.scenario("generated");
        let other = reversed(&scenario);
        for policy in ["rfc5321", "klensin-strict", "whole-list", "exim-4", "postfix-3.11"] {
            if let (Some(first), Some(second)) = (every_result(&scenario, policy), every_result(&other, policy)) {
                prop_assert_eq!(first, second, "{}", policy);
            }
        }
    }
}

#[test]
fn explore_finds_shrinks_and_writes_a_world_that_run_and_check_accept() {
    let out = std::env::temp_dir().join(format!("mxsim-explore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let breaker = mxsim_tests::root().join("tests/it/breakers/x8-smtputf8-ignored.yaml");
    let output = main_with([
        "mxsim".into(),
        "explore".into(),
        "--policy".into(),
        breaker.clone().into_os_string(),
        "--cases".into(),
        "400".into(),
        "--out".into(),
        out.clone().into_os_string(),
    ]);
    assert_eq!(
        output.code, EXIT_FAILED,
        "{}{}",
        output.stdout, output.stderr
    );
    assert!(output.stdout.contains("FAIL X8 MUST"), "{}", output.stdout);
    let written: Vec<_> = std::fs::read_dir(&out)
        .expect("written")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert!(!written.is_empty());
    for path in &written {
        let text = std::fs::read_to_string(path).expect("readable");
        assert!(text.starts_with("# Found by `mxsim explore"), "{text}");
        let run = main_with([
            "mxsim".into(),
            "run".into(),
            path.clone().into_os_string(),
            "--policy".into(),
            breaker.clone().into_os_string(),
        ]);
        assert_eq!(run.code, EXIT_FAILED, "{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("FAIL X8"), "{}", run.stdout);
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn explore_exits_0_when_nothing_fails_and_2_on_bad_input() {
    let out = std::env::temp_dir().join(format!("mxsim-explore-ok-{}", std::process::id()));
    let ok = main_with(
        [
            "mxsim", "explore", "--policy", "rfc5321", "--cases", "200", "--out",
        ]
        .map(Into::into)
        .into_iter()
        .chain([out.clone().into_os_string()]),
    );
    assert_eq!(ok.code, EXIT_OK, "{}{}", ok.stdout, ok.stderr);
    assert!(!out.exists(), "nothing is written when nothing fails");
    for bad in [
        vec!["mxsim", "explore", "--policy", "no-such-policy"],
        vec!["mxsim", "explore", "--policy", "rfc5321", "--shard", "3/3"],
        vec!["mxsim", "explore", "--policy", "rfc5321", "--shard", "x"],
        vec!["mxsim", "diff", "--policy", "rfc5321"],
    ] {
        let output = main_with(bad.clone().into_iter().map(Into::into));
        assert_eq!(
            output.code, EXIT_BAD_INPUT,
            "{bad:?}: {}{}",
            output.stdout, output.stderr
        );
    }
}

/// Shards split the case space: their findings together are the whole search's.
#[test]
fn shards_partition_the_cases() {
    let runner = Runner::new();
    let policy = PolicySpec::File(Box::new(
        registry::load_file(
            &std::fs::read_to_string(
                mxsim_tests::root().join("tests/it/breakers/x8-smtputf8-ignored.yaml"),
            )
            .expect("readable"),
        )
        .expect("loads"),
    ));
    let whole = Cases {
        count: 300,
        seed: 7,
        shard: 0,
        shards: 1,
    };
    let all = search::explore(&runner, &policy, &whole, &mut |_, _| {});
    let mut cases = 0;
    let mut failing = 0;
    for shard in 0..3 {
        let part = Cases {
            shard,
            shards: 3,
            ..whole
        };
        let seen = search::explore(&runner, &policy, &part, &mut |_, _| {});
        cases += seen.cases;
        failing += seen.graded.get(&(Grade::Fail, "X8")).copied().unwrap_or(0);
    }
    assert_eq!(cases, all.cases);
    assert_eq!(
        failing,
        all.graded.get(&(Grade::Fail, "X8")).copied().unwrap_or(0)
    );
    assert!(failing > 0);
}

#[test]
fn diff_writes_both_outcomes_and_where_the_traces_part() {
    let out = std::env::temp_dir().join(format!("mxsim-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = main_with(
        [
            "mxsim",
            "diff",
            "--policy",
            "rfc5321",
            "--policy",
            "whole-list",
            "--out",
        ]
        .map(Into::into)
        .into_iter()
        .chain([out.clone().into_os_string()]),
    );
    assert_eq!(
        output.code, EXIT_FAILED,
        "{}{}",
        output.stdout, output.stderr
    );
    assert!(
        output.stdout.contains("first event where the traces part"),
        "{}",
        output.stdout
    );
    for entry in std::fs::read_dir(&out).expect("written") {
        let path = entry.expect("entry").path();
        let check = main_with([
            "mxsim".into(),
            "check".into(),
            path.clone().into_os_string(),
        ]);
        assert_eq!(check.code, EXIT_OK, "{}{}", check.stdout, check.stderr);
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_generated_world_is_the_same_for_a_case_whatever_the_shard() {
    let whole = Cases {
        count: 10,
        seed: 3,
        shard: 0,
        shards: 1,
    };
    let part = Cases {
        shard: 1,
        shards: 2,
        ..whole
    };
    assert_eq!(whole.case_seed(5), part.case_seed(5));
    assert_eq!(part.numbers().collect::<Vec<_>>(), [1, 3, 5, 7, 9]);
}

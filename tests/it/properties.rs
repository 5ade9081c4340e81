//! Properties over generated worlds (the lab's generator, `mxsim_lab::generate`). Each
//! property runs the real world and policy on the `Scenario` a spec is; a failing case prints
//! the world as a scenario file (the scenario writer), ready to be saved under
//! `scenarios/regressions/`. The rules of the catalog, D10 among them, are held on generated
//! worlds by `search::every_preset_keeps_every_must_and_its_claims`.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use mxsim_lab::generate::{Addresses, DomainSpec, Fault, HostSpec, MxAnswer, Spec, any_spec, spec};
use mxsim_model::invariants;
use mxsim_model::name::Name;
use mxsim_model::outcome::Disposition;
use mxsim_model::scenario::{Scenario, write};
use mxsim_model::trace::EventKind;
use mxsim_policy::registry;
use mxsim_sim::{Choices, Prepared, Run, Runner, SimWorld};
use proptest::prelude::*;

/// A plain host at `preference` with `fault`, offering the keywords of `offers` (a bit per
/// entry of `mxsim_lab::generate::KEYWORDS`: 1 is FOOBAR).
pub(crate) fn host(preference: u16, fault: Fault, offers: u8) -> HostSpec {
    HostSpec {
        preference,
        addresses: Addresses::One,
        cname: false,
        fault,
        windowed: false,
        greylist: false,
        offers,
        offers_after_tls: 0,
    }
}

/// One domain with these hosts and one recipient, one message that wants `wants`.
fn world(hosts: Vec<HostSpec>, wants: u8) -> Spec {
    Spec {
        domains: vec![DomainSpec {
            answer: MxAnswer::Records,
            alias: false,
            hosts,
            recipients: 1,
        }],
        queue: false,
        messages: 1,
        requires: 0,
        wants,
        client_is: None,
        utf8_recipient: false,
    }
}

fn prepare(world: &Spec) -> Arc<Prepared> {
    Arc::new(Prepared::new(Arc::new(world.scenario("generated world"))))
}

fn run_with(world: &Spec, seed: u64, policy: &str) -> Run {
    let policy = registry::get::<SimWorld>(policy).expect("the strategy picks registered names");
    Runner::new().run(&prepare(world), policy.as_ref(), Choices::Seed(seed))
}

fn any_policy() -> impl Strategy<Value = &'static str> {
    prop::sample::select(registry::names())
}

/// The outcomes a run owes: one per recipient per message.
fn owed(scenario: &Scenario) -> usize {
    scenario
        .messages
        .iter()
        .map(|message| message.to.len())
        .sum()
}

/// 128 cases by default; `PROPTEST_CASES` raises it for a longer hunt.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(128);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Same world, policy and seed: byte-identical trace text, for every policy.
    #[test]
    fn same_seed_same_trace(world in any_spec(), seed in 0u64..1_000, policy in any_policy()) {
        let first = run_with(&world, seed, policy).trace.to_string();
        let second = run_with(&world, seed, policy).trace.to_string();
        prop_assert_eq!(first, second, "policy {}, world:\n{}", policy, write(&world.scenario("generated world")));
    }

    /// Queue worlds (several messages, faults that end, greylisting, a two-day horizon): for
    /// every policy the run is the same bytes twice, no fault and no spent budget, one final
    /// outcome per recipient per message, and the queue rules hold (retry spacing, lifetime,
    /// DSNs, duplicates).
    #[test]
    fn queue_worlds_keep_the_queue_rules(world in spec(true), seed in 0u64..1_000, policy in any_policy()) {
        let prepared = prepare(&world);
        let policy_object = registry::get::<SimWorld>(policy).expect("the strategy picks registered names");
        let runner = Runner::new();
        let run = runner.run(&prepared, policy_object.as_ref(), Choices::Seed(seed));
        let again = runner.run(&prepared, policy_object.as_ref(), Choices::Seed(seed));
        prop_assert_eq!(run.trace.to_string(), again.trace.to_string());
        prop_assert_eq!(&run.fault, &None);
        prop_assert_eq!(run.outcomes.len(), owed(&prepared.scenario), "policy {}:\n{}", policy, run.trace);
        prop_assert!(
            !run.trace.events.iter().any(|event| matches!(event.kind, EventKind::BudgetSpent { .. })),
            "policy {} spent a budget", policy
        );
        let problems = invariants::queue_rules(&run.trace, &policy_object.queue(), &prepared.scenario.messages);
        prop_assert!(problems.is_empty(), "policy {}: {:?}\n{}", policy, problems, write(&prepared.scenario));
    }

    /// Every policy gives every recipient exactly one outcome, ends without a fault or a spent
    /// budget, and every delivery it claims is backed by a copy of that message, for that
    /// recipient, that a server accepted at that host and address.
    #[test]
    fn every_policy_settles_every_recipient_truthfully(world in spec(false), seed in 0u64..1_000, policy in any_policy()) {
        let prepared = prepare(&world);
        let policy_object = registry::get::<SimWorld>(policy).expect("registered");
        let run = Runner::new().run(&prepared, policy_object.as_ref(), Choices::Seed(seed));
        prop_assert_eq!(run.outcomes.len(), owed(&prepared.scenario));
        // No honest policy ends in a fault or spends a counted budget on a generated world.
        prop_assert_eq!(&run.fault, &None);
        prop_assert!(
            !run.trace.events.iter().any(|event| matches!(event.kind, EventKind::BudgetSpent { .. })),
            "policy {} spent a budget:\n{}", policy, run.trace
        );
        let accepted: BTreeSet<(Name, IpAddr, usize, String)> = run
            .trace
            .accepted()
            .flat_map(|(host, address, message, to)| to.iter().map(move |to| (host.clone(), address, message, to.to_string())))
            .collect();
        for outcome in &run.outcomes {
            if let Disposition::Delivered { host, address, .. } = &outcome.disposition {
                let copy = (host.clone(), *address, outcome.message, outcome.recipient.to_string());
                prop_assert!(accepted.contains(&copy), "policy {}: no accepted copy {:?}; world:\n{}", policy, copy, write(&prepared.scenario));
            }
        }
    }

    /// A runner that has already run other worlds gives the same trace as a fresh one: the CLI
    /// reuses one paused runtime for every run, so nothing may leak from run to run.
    #[test]
    fn reusing_a_runner_changes_no_trace(first in any_spec(), second in any_spec(), seed in 0u64..1_000, policy in any_policy()) {
        let fresh = run_with(&first, seed, policy).trace.to_string();
        let runner = Runner::new();
        let policy_object = registry::get::<SimWorld>(policy).expect("the strategy picks registered names");
        let _ = runner.explore(&prepare(&second), policy_object.as_ref(), &mut Vec::new());
        let _ = runner.run(&prepare(&first), policy_object.as_ref(), Choices::Seed(seed ^ 1));
        let reused = runner.run(&prepare(&first), policy_object.as_ref(), Choices::Seed(seed)).trace.to_string();
        prop_assert_eq!(fresh, reused, "policy {}", policy);
    }

    /// Every invariant a preset claims holds on every generated world.
    #[test]
    fn claims_hold_on_generated_worlds(world in any_spec(), seed in 0u64..1_000) {
        for preset in registry::presets().iter().filter(|preset| !preset.settings.claims.is_empty()) {
            let run = run_with(&world, seed, &preset.settings.name);
            let broken = invariants::never_worse_preference_after_ehlo(&run.trace);
            prop_assert!(broken.is_empty(), "{} broke its claim: {:?}\nworld:\n{}", preset.settings.name, broken, write(&world.scenario("generated world")));
        }
    }

    /// A preset with parallel connections (`parallel:`) paces them: within one attempt, a
    /// connection to another address never starts sooner than `delay` after the last one to a
    /// new address began (a plaintext reconnect to the same address is the same slot), and the
    /// preferences of the connection starts never go back to a better one (a parallel start
    /// stays at the preference in flight).
    #[test]
    fn parallel_connections_are_paced_and_stay_at_their_preference(mut world in spec(false), seed in 0u64..1_000) {
        // One domain, so the whole trace is one attempt.
        world.domains.truncate(1);
        world.client_is = world.client_is.filter(|(domain, _)| *domain == 0);
        for preset in registry::presets().iter().filter(|preset| preset.settings.parallel.is_some()) {
            let parallel = preset.settings.parallel.expect("filtered");
            let run = run_with(&world, seed, &preset.settings.name);
            let scenario = world.scenario("generated world");
            let mut last: Option<(mxsim_model::time::Instant, IpAddr)> = None;
            for (at, address, _) in run.trace.connection_attempts() {
                if let Some((before, previous)) = last {
                    if previous == address {
                        continue;
                    }
                    prop_assert!(at.since(before) >= parallel.delay, "{}: {} started {} after {}\nworld:\n{}", preset.settings.name, address, at.since(before), previous, write(&scenario));
                }
                last = Some((at, address));
            }
            // The preferences of the connection starts never go back to a better one.
            let preferences: std::collections::BTreeMap<String, u16> = world.domains[0]
                .hosts
                .iter()
                .enumerate()
                .map(|(index, host)| (Spec::host_name(0, index), host.preference))
                .collect();
            let mut seen: Option<u16> = None;
            for (_, _, host) in run.trace.connection_attempts() {
                let Some(&preference) = preferences.get(host.as_str()) else { continue };
                prop_assert!(seen.is_none_or(|seen| preference >= seen), "{}: went back to preference {} after {:?}\nworld:\n{}", preset.settings.name, preference, seen, write(&scenario));
                seen = Some(preference);
            }
        }
    }

    /// `join: domain` (opensmtpd-7) on queue worlds whose messages are all submitted at once, so
    /// their attempts overlap: the run ends with every recipient settled (no attempt waits
    /// forever, whatever the leader did), and the connections to one domain's hosts come from one
    /// attempt at a time (an attempt that joined another never connects while it runs).
    #[test]
    fn joined_attempts_take_turns_and_every_message_is_settled(world in spec(true), seed in 0u64..1_000) {
        let mut scenario = world.scenario("generated world");
        for message in &mut scenario.messages {
            message.at = mxsim_model::time::Instant::START;
        }
        let text = write(&scenario);
        let recipients: usize = scenario.messages.iter().map(|message| message.to.len()).sum();
        let prepared = Arc::new(Prepared::new(Arc::new(scenario)));
        let policy = registry::get::<SimWorld>("opensmtpd-7").expect("a preset");
        let run = Runner::new().run(&prepared, policy.as_ref(), Choices::Seed(seed));
        let stopped = run.trace.events.iter().any(|event| matches!(event.kind, EventKind::RunLimit { .. } | EventKind::BudgetSpent { .. }));
        prop_assert!(!stopped, "a run limit or budget stopped the run\nworld:\n{}", text);
        let settled = run.trace.events.iter().filter(|event| matches!(event.kind, EventKind::Outcome { .. })).count();
        prop_assert_eq!(settled, recipients, "world:\n{}", text);
        for domain in 0..world.domains.len() {
            let name = Spec::domain_name(domain);
            let suffix = format!(".{name}");
            let mut current = None;
            let mut done = Vec::new();
            for event in &run.trace.events {
                let EventKind::Connecting { host, .. } = &event.kind else { continue };
                if host.as_str() != name && !host.as_str().ends_with(&suffix) {
                    continue;
                }
                if current != event.attempt {
                    prop_assert!(!done.contains(&event.attempt), "{name}: attempt {:?} connected again after another's turn\nworld:\n{}", event.attempt, text);
                    done.push(current);
                    current = event.attempt;
                }
            }
        }
    }

    /// Over seeds, every host of the best preference is tried first at least once
    /// (equal-preference randomisation, RFC 5321 §5.1 MUST).
    #[test]
    fn every_equal_preference_host_is_tried_first(count in 2usize..6) {
        let world = world((0..count).map(|_| host(10, Fault::None, 0)).collect(), 0);
        let mut first = BTreeSet::new();
        for seed in 0..64 {
            let run = run_with(&world, seed, "rfc5321");
            let (_, _, host) = run.trace.connection_attempts().next().expect("a good world gets a connection");
            first.insert(host.clone());
        }
        prop_assert_eq!(first.len(), count);
    }
}

/// The trace's order events name hosts the same way over repeated runs of a whole exploration.
#[test]
fn exploration_is_deterministic() {
    let world = world(
        vec![
            host(10, Fault::Rcpt(450), 1),
            host(10, Fault::None, 0),
            host(
                10,
                Fault::Connect(mxsim_model::scenario::ConnectMode::Refuse),
                0,
            ),
            host(20, Fault::None, 1),
        ],
        1,
    );
    let prepared = prepare(&world);
    let policy = registry::get::<SimWorld>("rfc5321").expect("rfc5321 is registered");
    let runner = Runner::new();
    let texts = |runs: Vec<Run>| {
        runs.into_iter()
            .map(|run| run.trace.to_string())
            .collect::<Vec<_>>()
    };
    let mut first = Vec::new();
    let exploration = runner.explore(&prepared, policy.as_ref(), &mut first);
    assert!(exploration.exhaustive);
    assert_eq!(exploration.runs, first.len());
    assert_eq!(
        first.len(),
        6,
        "three equal-preference hosts have six orders"
    );
    let orders: BTreeSet<String> = first
        .iter()
        .map(|run| {
            run.trace
                .events
                .iter()
                .find_map(|event| match &event.kind {
                    EventKind::Shuffled { order, .. } => Some(format!("{order:?}")),
                    _ => None,
                })
                .expect("each run shuffles")
        })
        .collect();
    assert_eq!(orders.len(), 6, "each run explores a different order");
    let mut again = Vec::new();
    runner.explore(&prepared, policy.as_ref(), &mut again);
    assert_eq!(texts(first), texts(again));
}

/// The negative space: the claim checker fires on a policy that does go to a worse preference
/// after a good EHLO (rfc5321 after MAIL 451 at both preference-10 hosts), and stays silent for
/// klensin-strict on the same world.
#[test]
fn claim_checker_fires_on_a_policy_that_breaks_the_rule() {
    let world = world(
        vec![
            host(10, Fault::Mail(451), 0),
            host(10, Fault::Mail(451), 0),
            host(20, Fault::None, 0),
        ],
        0,
    );
    let broken =
        invariants::never_worse_preference_after_ehlo(&run_with(&world, 0, "rfc5321").trace);
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(
        broken[0].message.contains("mx3.d1.example (preference 20)"),
        "{}",
        broken[0]
    );
    assert!(
        invariants::never_worse_preference_after_ehlo(&run_with(&world, 0, "klensin-strict").trace)
            .is_empty()
    );
}

/// Applies line and character edits to `text`.
fn mutate(text: &str, edits: Vec<(u8, usize, usize, char)>) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (kind, at, other, character) in edits {
        if lines.is_empty() {
            break;
        }
        let (at, other) = (at % lines.len(), other % lines.len());
        match kind {
            0 => drop(lines.remove(at)),
            1 => lines.insert(other, lines[at].clone()),
            2 => lines.swap(at, other),
            _ => {
                let mut chars: Vec<char> = lines[at].chars().collect();
                if !chars.is_empty() {
                    let position = other % chars.len();
                    chars[position] = character;
                }
                lines[at] = chars.into_iter().collect();
            }
        }
    }
    lines.join("\n")
}

/// Mutations are cheap: four times the usual number of cases.
fn mutation_runner() -> proptest::test_runner::TestRunner {
    let config = ProptestConfig {
        cases: config().cases * 4,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest::test_runner::TestRunner::new(config)
}

fn edits() -> impl Strategy<Value = Vec<(u8, usize, usize, char)>> {
    prop::collection::vec(
        (0u8..4, any::<usize>(), any::<usize>(), any::<char>()),
        1..6,
    )
}

/// Mutations of every shipped scenario (lines dropped, duplicated or swapped, characters
/// replaced) never panic the loader, and whatever still loads runs to the end without a panic:
/// bad input is a located error, never a crash.
#[test]
fn mutated_scenarios_never_panic() {
    let texts: Vec<String> = mxsim_tests::scenario_files()
        .iter()
        .map(|path| std::fs::read_to_string(path).expect("readable"))
        .collect();
    mutation_runner()
        .run(&(0..texts.len(), edits()), |(index, edits)| {
            let text = mutate(&texts[index], edits);
            if let Ok(scenario) = mxsim_model::scenario::load(&text, &registry::is_known) {
                let prepared = Arc::new(Prepared::new(Arc::new(scenario)));
                let policy = registry::get::<SimWorld>("rfc5321").expect("registered");
                let _ = Runner::new().run(&prepared, policy.as_ref(), Choices::Seed(0));
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

/// The same for every preset file: a mutated policy loads or is refused with located errors,
/// and one that loads runs the seed's base case and a failing world to the end.
#[test]
fn mutated_policies_never_panic() {
    let texts: Vec<&str> = registry::presets()
        .iter()
        .map(|preset| preset.text)
        .collect();
    let worlds: Vec<Arc<Prepared>> = [
        "seed/base-case.yaml",
        "seed/backup-after-ehlo-mail-4yz.yaml",
        "mta/starttls-required-missing-at-best-mx.yaml",
    ]
    .iter()
    .map(|name| {
        Arc::new(Prepared::new(mxsim_tests::load(
            &mxsim_tests::root().join("scenarios").join(name),
        )))
    })
    .collect();
    mutation_runner()
        .run(&(0..texts.len(), edits()), |(index, edits)| {
            let text = mutate(texts[index], edits);
            let preset = |name: &str| {
                registry::preset(name)
                    .map(|preset| preset.settings.clone())
                    .ok_or_else(|| mxsim_policy::file::Extends {
                        message: format!("no preset `{name}`"),
                        help: String::new(),
                    })
            };
            if let Ok(settings) = mxsim_policy::file::load(&text, &preset, &|_| false) {
                let policy = mxsim_policy::engine::Engine { settings };
                let runner = Runner::new();
                for world in &worlds {
                    let _ = runner.explore(world, &policy, &mut Vec::new());
                }
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

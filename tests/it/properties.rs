//! Properties over generated worlds. Each property runs the real loader, world and policy.
//! A failing case prints the generated world as a scenario file, ready to be saved under
//! `scenarios/regressions/`.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use mxsim_model::name::Name;
use mxsim_model::outcome::Disposition;
use mxsim_model::trace::EventKind;
use mxsim_policy::registry;
use mxsim_sim::{Choices, Prepared, Run, Runner, SimWorld};
use mxsim_tests::{Behaviour, GeneratedHost, GeneratedWorld, load_text};
use proptest::prelude::*;

fn host() -> impl Strategy<Value = GeneratedHost> {
    (
        prop::sample::select(vec![10u16, 10, 20, 30]),
        prop::sample::select(Behaviour::ALL.to_vec()),
        any::<bool>(),
    )
        .prop_map(|(preference, behaviour, foobar)| GeneratedHost {
            preference,
            behaviour,
            foobar,
        })
}

fn world() -> impl Strategy<Value = GeneratedWorld> {
    (prop::collection::vec(host(), 1..6), any::<bool>()).prop_map(|(hosts, wants_foobar)| {
        GeneratedWorld {
            hosts,
            wants_foobar,
        }
    })
}

fn run(world: &GeneratedWorld, seed: u64) -> Run {
    let scenario = load_text(&world.to_yaml());
    let prepared = Arc::new(Prepared::new(scenario));
    let policy = registry::get::<SimWorld>("rfc5321").expect("rfc5321 is registered");
    Runner::new().run(&prepared, policy.as_ref(), Choices::Seed(seed))
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Same world, same seed: byte-identical trace text.
    #[test]
    fn same_seed_same_trace(world in world(), seed in 0u64..1_000) {
        let first = run(&world, seed).trace.to_string();
        let second = run(&world, seed).trace.to_string();
        prop_assert_eq!(first, second, "world:\n{}", world.to_yaml());
    }

    /// Within one attempt the preferences of connected hosts never decrease (RFC 5321 §5.1, D10).
    #[test]
    fn preferences_never_decrease(world in world(), seed in 0u64..1_000) {
        let run = run(&world, seed);
        let preferences: Vec<u16> = run.trace.connection_attempts().map(|(_, _, host)| preference_of(&world, host)).collect();
        prop_assert!(preferences.windows(2).all(|pair| pair[0] <= pair[1]), "order {:?} in world:\n{}", preferences, world.to_yaml());
    }

    /// Every recipient gets one outcome, and a delivery is backed by a copy a server accepted.
    #[test]
    fn deliveries_are_backed_by_accepted_copies(world in world(), seed in 0u64..1_000) {
        let run = run(&world, seed);
        prop_assert_eq!(run.outcomes.len(), 1);
        let accepted: BTreeSet<(Name, IpAddr)> = run.trace.accepted().map(|(host, address, _, _)| (host.clone(), address)).collect();
        for outcome in &run.outcomes {
            if let Disposition::Delivered { host, address, .. } = &outcome.disposition {
                prop_assert!(accepted.contains(&(host.clone(), *address)), "world:\n{}", world.to_yaml());
            }
        }
    }

    /// Over seeds, every host of the best preference is tried first at least once
    /// (equal-preference randomisation, RFC 5321 §5.1 MUST).
    #[test]
    fn every_equal_preference_host_is_tried_first(count in 2usize..6) {
        let world = GeneratedWorld {
            hosts: (0..count).map(|_| GeneratedHost { preference: 10, behaviour: Behaviour::Good, foobar: false }).collect(),
            wants_foobar: false,
        };
        let mut first = BTreeSet::new();
        for seed in 0..64 {
            let run = run(&world, seed);
            let (_, _, host) = run.trace.connection_attempts().next().expect("a good world gets a connection");
            first.insert(host.clone());
        }
        prop_assert_eq!(first.len(), count);
    }
}

fn preference_of(world: &GeneratedWorld, host: &Name) -> u16 {
    let index: usize = host
        .as_str()
        .trim_start_matches("mx")
        .split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("generated host names are mxN.foo.example");
    world.hosts[index - 1].preference
}

/// The trace's order events name hosts the same way over repeated runs of a whole exploration.
#[test]
fn exploration_is_deterministic() {
    let world = GeneratedWorld {
        hosts: vec![
            GeneratedHost {
                preference: 10,
                behaviour: Behaviour::Rcpt450,
                foobar: true,
            },
            GeneratedHost {
                preference: 10,
                behaviour: Behaviour::Good,
                foobar: false,
            },
            GeneratedHost {
                preference: 10,
                behaviour: Behaviour::Refuse,
                foobar: false,
            },
            GeneratedHost {
                preference: 20,
                behaviour: Behaviour::Good,
                foobar: true,
            },
        ],
        wants_foobar: true,
    };
    let scenario = load_text(&world.to_yaml());
    let prepared = Arc::new(Prepared::new(scenario));
    let policy = registry::get::<SimWorld>("rfc5321").expect("rfc5321 is registered");
    let runner = Runner::new();
    let texts = |runs: Vec<Run>| {
        runs.into_iter()
            .map(|run| run.trace.to_string())
            .collect::<Vec<_>>()
    };
    let first = runner.explore(&prepared, policy.as_ref());
    assert!(first.exhaustive);
    assert_eq!(
        first.runs.len(),
        6,
        "three equal-preference hosts have six orders"
    );
    let orders: BTreeSet<String> = first
        .runs
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
    assert_eq!(
        texts(first.runs),
        texts(runner.explore(&prepared, policy.as_ref()).runs)
    );
}

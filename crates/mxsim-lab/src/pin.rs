//! Pinning: what holds over every explored order of a scenario, as an `expect:` entry.
//!
//! `mxsim pin` writes it into a file, and `explore` and `diff` pin the worlds they find with it,
//! so `check` accepts what they write. Only what every run agrees on is pinned: the outcome
//! (for all recipients, else per recipient), the hosts delivered through (over all orders
//! together), the MX hosts never
//! connected to, and the number of connection attempts.

use std::sync::Arc;

use mxsim_model::name::{Mailbox, Name};
use mxsim_model::outcome::{Disposition, DispositionKind};
use mxsim_model::scenario::{Expectation, ExpectedOutcome, HostRef, RecordSet, Scenario, ZoneName};
use mxsim_model::trace::EventKind;
use mxsim_model::yaml::Position;
use mxsim_sim::{Prepared, Run, Runner};

use crate::spec::PolicySpec;

/// What pinning one policy on one scenario found.
#[derive(Clone, Debug)]
pub struct Pinned {
    /// The expectation that holds over every run made.
    pub expectation: Expectation,
    /// Runs made.
    pub runs: usize,
    /// True when every order was enumerated; false when seeds were sampled (as `check` samples
    /// them, so `check` sees the same runs).
    pub exhaustive: bool,
    /// True when the exploration's work budget cut it short.
    pub cut: bool,
}

/// Explores `policy` on `scenario` over every order `check` explores, and pins what holds in
/// all of them; `never` lists the scenario's MX hosts that no run connected to.
pub fn pin(runner: &Runner, scenario: &Arc<Scenario>, policy: &PolicySpec) -> Pinned {
    let prepared = Arc::new(Prepared::new(scenario.clone()));
    let built = policy.build();
    let mut runs: Vec<Run> = Vec::new();
    let exploration = runner.explore(&prepared, built.as_ref(), &mut runs);
    let hosts = mx_hosts(scenario);
    Pinned {
        expectation: expectation(policy.name(), &runs, &hosts),
        runs: runs.len(),
        exhaustive: exploration.exhaustive,
        cut: exploration.cut.is_some(),
    }
}

/// Every MX target of the zone (base records and windows), in zone order, without the null MX.
pub fn mx_hosts(scenario: &Scenario) -> Vec<Name> {
    let mut hosts: Vec<Name> = Vec::new();
    for records in scenario.zone.names.values() {
        let ZoneName::Records(records) = records else {
            continue;
        };
        let sets = std::iter::once(&records.base).chain(records.during.iter().map(|w| &w.patch));
        for set in sets {
            if let Some(RecordSet::Records(mx)) = &set.mx {
                for record in mx.iter() {
                    if record.exchange.as_str() != "." && !hosts.contains(&record.exchange) {
                        hosts.push(record.exchange.clone());
                    }
                }
            }
        }
    }
    hosts
}

/// What every run agrees on, as an expectation for `policy`. `never_candidates` are the hosts
/// `never` may list: those no run connected to on their behalf; `never` is left out when it
/// would add nothing (no candidate left, or no connection at all, which `connections: 0` says).
pub fn expectation(policy: &str, runs: &[Run], never_candidates: &[Name]) -> Expectation {
    let mut pinned = Expectation {
        policy: policy.to_owned(),
        at: Position::default(),
        outcome: None,
        via: None,
        never: Vec::new(),
        connections: None,
        within: None,
        duplicates: None,
        after: None,
    };
    let Some(first_run) = runs.first() else {
        return pinned;
    };
    let kinds = |run: &Run| -> Vec<(Mailbox, DispositionKind)> {
        run.outcomes
            .iter()
            .map(|outcome| (outcome.recipient.clone(), outcome.disposition.kind()))
            .collect()
    };
    let first = kinds(first_run);
    let agreed = runs.iter().all(|run| kinds(run) == first);
    pinned.outcome = match first.first() {
        Some((_, kind)) if agreed && first.iter().all(|(_, other)| other == kind) => {
            Some(ExpectedOutcome::All(*kind))
        }
        Some(_) if agreed => {
            let mut per: Vec<(Mailbox, DispositionKind)> = Vec::new();
            let mut twice: Vec<Mailbox> = Vec::new();
            for (mailbox, kind) in first {
                match per.iter().find(|(seen, _)| *seen == mailbox) {
                    Some((_, seen)) if *seen != kind => twice.push(mailbox),
                    Some(_) => {}
                    None => per.push((mailbox, kind)),
                }
            }
            // A recipient that ended two ways over several messages is left unpinned.
            per.retain(|(mailbox, _)| !twice.contains(mailbox));
            (!per.is_empty()).then_some(ExpectedOutcome::PerRecipient(per))
        }
        _ => None,
    };
    let via_of = |run: &Run| -> Option<Vec<HostRef>> {
        let all_delivered = !run.outcomes.is_empty()
            && run
                .outcomes
                .iter()
                .all(|outcome| outcome.disposition.kind() == DispositionKind::Delivered);
        all_delivered.then(|| {
            let mut hosts: Vec<HostRef> = Vec::new();
            for outcome in &run.outcomes {
                if let Disposition::Delivered { host, .. } = &outcome.disposition {
                    let host = HostRef::Name(host.clone());
                    if !hosts.contains(&host) {
                        hosts.push(host);
                    }
                }
            }
            hosts.sort();
            hosts
        })
    };
    // `via` holds when each recipient went through one of the hosts listed: the hosts of every
    // run together, when every run delivered every recipient.
    pinned.via = runs
        .iter()
        .map(via_of)
        .collect::<Option<Vec<Vec<HostRef>>>>()
        .map(|all| {
            let mut hosts: Vec<HostRef> = all.into_iter().flatten().collect();
            hosts.sort();
            hosts.dedup();
            hosts
        });
    let connections_of = |run: &Run| {
        run.trace
            .events
            .iter()
            .filter(|event| matches!(event.kind, EventKind::Connecting { .. }))
            .count() as u64
    };
    pinned.connections = Some(connections_of(first_run))
        .filter(|count| runs.iter().all(|run| connections_of(run) == *count));
    let connected_somewhere = runs.iter().any(|run| connections_of(run) > 0);
    if connected_somewhere {
        pinned.never = never_candidates
            .iter()
            .filter(|host| {
                !runs.iter().any(|run| {
                    run.trace.events.iter().any(|event| {
                        matches!(&event.kind, EventKind::Connecting { host: to, .. } if to == *host)
                    })
                })
            })
            .map(|host| HostRef::Name(host.clone()))
            .collect();
    }
    pinned
}

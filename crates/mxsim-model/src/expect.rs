//! Checking one run against one `expect:` entry. Pure: it reads the scenario, the trace and the
//! outcomes, and returns what broke as violations at level EXPECT ([`crate::rules`]).

use std::collections::BTreeMap;

use crate::name::Mailbox;
use crate::outcome::{Disposition, DispositionKind, RecipientOutcome};
use crate::rules::Violation;
use crate::scenario::{Expectation, ExpectedOutcome, HostRef};
use crate::trace::Trace;

/// Every way the run breaks the expectation; empty when it holds.
pub fn violations(
    expectation: &Expectation,
    trace: &Trace,
    outcomes: &[RecipientOutcome],
) -> Vec<Violation> {
    sentences(expectation, trace, outcomes)
        .into_iter()
        .map(|message| Violation::expect(message, None))
        .collect()
}

fn sentences(
    expectation: &Expectation,
    trace: &Trace,
    outcomes: &[RecipientOutcome],
) -> Vec<String> {
    let mut broken = Vec::new();
    if let Some(expected) = &expectation.outcome {
        check_outcome(&mut broken, expected, outcomes);
    }
    if let Some(via) = &expectation.via {
        check_via(&mut broken, via, outcomes);
    }
    for host in &expectation.never {
        let touched = trace
            .connection_attempts()
            .find(|(_, address, name)| match host {
                HostRef::Name(expected) => *name == expected,
                HostRef::Address(expected) => address == expected,
            });
        if let Some((at, address, name)) = touched {
            broken.push(format!(
                "connected to {name} [{address}] at {at}, which `never` forbids"
            ));
        }
    }
    if let Some(expected) = expectation.connections {
        let count = trace.connection_attempts().count() as u64;
        if count != expected {
            broken.push(format!(
                "made {count} connection attempts, expected {expected}"
            ));
        }
    }
    if let Some(within) = expectation.within
        && let Some(late) = outcomes
            .iter()
            .filter(|outcome| outcome.at.since_start() > within)
            .max_by_key(|outcome| outcome.at)
    {
        broken.push(format!(
            "{} reached its outcome at {}, after the `within` limit of {within}",
            late.recipient, late.at
        ));
    }
    if let Some(after) = expectation.after
        && let Some(early) = outcomes
            .iter()
            .filter(|outcome| outcome.at.since_start() < after)
            .min_by_key(|outcome| outcome.at)
    {
        broken.push(format!(
            "{} reached its outcome at {}, before the `after` limit of {after}",
            early.recipient, early.at
        ));
    }
    if let Some(expected) = expectation.duplicates {
        let count = duplicates(trace);
        if count != expected {
            broken.push(format!(
                "servers accepted {count} duplicate copies, expected {expected}"
            ));
        }
    }
    broken
}

/// Extra accepted copies: for each (message, recipient), the copies beyond the first.
pub fn duplicates(trace: &Trace) -> u64 {
    let mut copies: BTreeMap<(usize, &Mailbox), u64> = BTreeMap::new();
    for (_, _, message, recipients) in trace.accepted() {
        for recipient in recipients.iter() {
            *copies.entry((message, recipient)).or_default() += 1;
        }
    }
    copies.values().map(|count| count.saturating_sub(1)).sum()
}

fn check_outcome(
    broken: &mut Vec<String>,
    expected: &ExpectedOutcome,
    outcomes: &[RecipientOutcome],
) {
    let expect_for = |recipient: &Mailbox| -> Option<DispositionKind> {
        match expected {
            ExpectedOutcome::All(kind) => Some(*kind),
            ExpectedOutcome::PerRecipient(per) => per
                .iter()
                .find(|(mailbox, _)| mailbox == recipient)
                .map(|(_, kind)| *kind),
        }
    };
    for outcome in outcomes {
        let Some(kind) = expect_for(&outcome.recipient) else {
            continue;
        };
        if outcome.disposition.kind() != kind {
            broken.push(format!(
                "{}{} was {}, expected {kind}",
                which(outcomes, outcome),
                outcome.recipient,
                outcome.disposition
            ));
        }
    }
}

fn check_via(broken: &mut Vec<String>, via: &[HostRef], outcomes: &[RecipientOutcome]) {
    for outcome in outcomes {
        match &outcome.disposition {
            Disposition::Delivered { host, address, .. } => {
                let allowed = via.iter().any(|expected| match expected {
                    HostRef::Name(name) => name == host,
                    HostRef::Address(expected) => expected == address,
                });
                if !allowed {
                    broken.push(format!(
                        "{}{} was delivered via {host} [{address}], which `via` does not list",
                        which(outcomes, outcome),
                        outcome.recipient
                    ));
                }
            }
            other => broken.push(format!(
                "{}{} was {}, but `via` expects a delivery",
                which(outcomes, outcome),
                outcome.recipient,
                other.kind()
            )),
        }
    }
}

/// `message N: ` when the run has several messages (a recipient may be in more than one),
/// else nothing.
fn which(outcomes: &[RecipientOutcome], outcome: &RecipientOutcome) -> String {
    if outcomes
        .iter()
        .any(|other| other.message != outcome.message)
    {
        format!("message {}: ", outcome.message)
    } else {
        String::new()
    }
}

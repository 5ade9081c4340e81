//! Invariant checkers: pure functions of a trace, the checkers of the rules table
//! ([`crate::rules`]) for the property policies claim (P1) and the queue rules (Q2, Q3, Q6, R3).
//! A policy that claims an invariant has it checked on every run `mxsim check` makes; a policy
//! that breaks a claim fails the check even where no `expect:` asks about it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::dns::{DnsAnswer, RecordType};
use crate::name::{Mailbox, Name};
use crate::outcome::Disposition;
use crate::queue::{LAST_ATTEMPT_ALLOWANCE, QueueSettings};
use crate::rules::{Subject, Violation};
use crate::scenario::Message;
use crate::smtp::{Command, ReplyClass};
use crate::time::Instant;
use crate::trace::{AttemptId, EventKind, Trace};

/// P1 as a checker of the rules table.
pub fn p1_never_worse_preference_after_ehlo(subject: &Subject<'_>) -> Vec<Violation> {
    never_worse_preference_after_ehlo(subject.trace)
}

/// After a connection to a host of preference p received a 2yz greeting and any reply to EHLO,
/// no later connection in the same attempt (one message, one recipient domain) goes to a host
/// worse than p.
/// The seed's reading of RFC 2821 (the 2007 ietf-smtp question the README opens with, and
/// `scenarios/seed/`): such a session "is not permitted to fall back to backup.foo.example
/// under any circumstances".
pub fn never_worse_preference_after_ehlo(trace: &Trace) -> Vec<Violation> {
    // In a queue run attempts of different messages interleave: each attempt is judged on its
    // own events (a single pass has one scope, `None`).
    let mut scopes: BTreeMap<Option<AttemptId>, Scope> = BTreeMap::new();
    let mut broken = Vec::new();
    for (index, event) in trace.events.iter().enumerate() {
        let scope = scopes.entry(event.attempt).or_default();
        match &event.kind {
            EventKind::Submitted { .. } => scope.ceiling = None,
            // Each recipient domain is its own attempt and starts with its MX lookups, before any
            // connection: the rule applies within one domain's list.
            EventKind::Dns {
                record_type: RecordType::Mx,
                answer,
                ..
            } => {
                scope.ceiling = None;
                if let DnsAnswer::Mx(records) = answer {
                    // A host may serve several domains at different preferences: use this
                    // domain's list only.
                    scope.preferences.clear();
                    for record in records.iter() {
                        scope
                            .preferences
                            .entry(record.exchange.clone())
                            .or_insert(record.preference);
                    }
                }
            }
            EventKind::Connecting { address, host } => {
                let arrived = scope.arrive(*address, host, false);
                if let Some((preference, limit, at)) = arrived {
                    broken.push(Violation::of(
                        "P1",
                        format!("connected to {host} (preference {preference}) at {} after EHLO at {at} (preference {limit})", event.at),
                        Some(index),
                    ));
                }
            }
            // A cached session was greeted and answered EHLO when it was opened: taking it is a
            // connection to its host, after EHLO.
            EventKind::Reused { address, host } => {
                let arrived = scope.arrive(*address, host, true);
                if let Some((preference, limit, at)) = arrived {
                    broken.push(Violation::of(
                        "P1",
                        format!("reused a connection to {host} (preference {preference}) at {} after EHLO at {at} (preference {limit})", event.at),
                        Some(index),
                    ));
                }
                let preference = scope.preferences.get(host).copied().unwrap_or(0);
                scope.lower_ceiling(preference, host);
            }
            EventKind::Sent { address, command } => {
                scope.last_sent.insert(*address, command.command());
            }
            EventKind::Replied { address, reply, .. } => {
                let Some((host, greeted)) = scope.hosts.get_mut(address) else {
                    continue;
                };
                match scope.last_sent.get(address) {
                    None if reply.class() == ReplyClass::Positive => *greeted = true,
                    Some(Command::Ehlo) if *greeted => {
                        let (host, preference) = (
                            host.clone(),
                            scope.preferences.get(host).copied().unwrap_or(0),
                        );
                        scope.lower_ceiling(preference, &host);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    broken
}

/// What [`never_worse_preference_after_ehlo`] tracks within one attempt.
#[derive(Default)]
struct Scope {
    preferences: BTreeMap<Name, u16>,
    hosts: BTreeMap<IpAddr, (Name, bool)>,
    last_sent: BTreeMap<IpAddr, Command>,
    ceiling: Option<(u16, Name)>,
}

impl Scope {
    /// A session to `host` at `address` begins (`greeted` when it is a cached one, past EHLO).
    /// Returns its preference, the ceiling and the host that set it, when the session goes
    /// above the ceiling.
    fn arrive(&mut self, address: IpAddr, host: &Name, greeted: bool) -> Option<(u16, u16, Name)> {
        let preference = self.preferences.get(host).copied().unwrap_or(0);
        let above = self
            .ceiling
            .as_ref()
            .filter(|(limit, _)| preference > *limit)
            .map(|(limit, at)| (preference, *limit, at.clone()));
        self.hosts.insert(address, (host.clone(), greeted));
        self.last_sent.remove(&address);
        above
    }

    /// A good EHLO at `host` of `preference`: later sessions of the attempt stay at or below it.
    fn lower_ceiling(&mut self, preference: u16, host: &Name) {
        if self
            .ceiling
            .as_ref()
            .is_none_or(|(limit, _)| preference < *limit)
        {
            self.ceiling = Some((preference, host.clone()));
        }
    }
}

/// The queue rules every queue run is held to, Q2, Q3, Q6 and R3, against the policy's own
/// queue settings and the scenario's messages.
pub fn queue_rules(
    trace: &Trace,
    settings: &QueueSettings,
    messages: &[Message],
) -> Vec<Violation> {
    let subject = Subject {
        trace,
        outcomes: &[],
        messages,
        queue: Some(settings),
        client: None,
        memo: &Default::default(),
    };
    QUEUE_RULES
        .iter()
        .filter_map(|id| crate::rules::find(id))
        .flat_map(|rule| rule.check(&subject))
        .collect()
}

/// The ids of the rules [`queue_rules`] checks.
pub const QUEUE_RULES: [&str; 4] = ["Q2", "Q3", "Q6", "R3"];

/// Q2 (RFC 5321 §4.5.4.1): in a queue run, a retry comes no sooner than the policy's
/// shortest delay after the attempt before it.
pub fn q2_retry_delay(subject: &Subject<'_>) -> Vec<Violation> {
    let Some(settings) = subject.queue else {
        return Vec::new();
    };
    let min_delay = settings.schedule.min_delay();
    let mut broken = Vec::new();
    // Message → the time its last attempt ended with a retry scheduled.
    let mut retried_at: BTreeMap<usize, Instant> = BTreeMap::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        match &event.kind {
            EventKind::Retry { message, .. } => {
                retried_at.insert(*message, event.at);
            }
            EventKind::AttemptStarted {
                message, attempt, ..
            } => {
                if let Some(ended) = retried_at.remove(message)
                    && event.at.since(ended) < min_delay
                {
                    broken.push(Violation::of(
                        "Q2",
                        format!(
                            "message {message} attempt {attempt} at {} comes {} after the attempt before it, sooner than the policy's shortest retry delay of {min_delay}",
                            event.at,
                            event.at.since(ended)
                        ),
                        Some(index),
                    ));
                }
            }
            _ => {}
        }
    }
    broken
}

/// Q3 (RFC 5321 §4.5.4.1): in a queue run, no attempt starts once the message's lifetime has
/// ended, the message does not expire before its lifetime, and it does not stay queued long
/// past it.
pub fn q3_lifetime(subject: &Subject<'_>) -> Vec<Violation> {
    let Some(settings) = subject.queue else {
        return Vec::new();
    };
    let messages = subject.messages;
    let deadline = |message: usize| messages.get(message).map(|m| m.at.after(settings.lifetime));
    let mut broken = Vec::new();
    let mut stopped = None;
    let mut still_queued = std::collections::BTreeSet::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        match &event.kind {
            EventKind::AttemptStarted {
                message, attempt, ..
            } => {
                if let Some(deadline) = deadline(*message)
                    && event.at >= deadline
                {
                    broken.push(Violation::of(
                        "Q3",
                        format!(
                            "message {message} attempt {attempt} starts at {}, after its lifetime ended at {deadline}",
                            event.at
                        ),
                        Some(index),
                    ));
                }
            }
            EventKind::Expired { message, .. } => {
                if let Some(deadline) = deadline(*message)
                    && event.at < deadline
                {
                    broken.push(Violation::of(
                        "Q3",
                        format!(
                            "message {message} expired at {}, before its lifetime ends at {deadline}",
                            event.at
                        ),
                        Some(index),
                    ));
                }
            }
            EventKind::Horizon { horizon, .. } => stopped = Some((*horizon, index)),
            // The horizon's deferrals come right after its line: a message still queued there.
            EventKind::Outcome {
                message,
                disposition: Disposition::Deferred { .. },
                ..
            } if stopped.is_some() => {
                still_queued.insert(*message);
            }
            _ => {}
        }
    }
    if let Some((horizon, at)) = stopped {
        for index in still_queued {
            let Some(message) = messages.get(index) else {
                continue;
            };
            let overdue = message
                .at
                .after(settings.lifetime)
                .after(LAST_ATTEMPT_ALLOWANCE);
            if overdue.since_start() < horizon {
                broken.push(Violation::of(
                    "Q3",
                    format!(
                        "message {index} is still queued at the {horizon} horizon, more than {LAST_ATTEMPT_ALLOWANCE} past its lifetime"
                    ),
                    Some(at),
                ));
            }
        }
    }
    broken
}

/// Q6 (RFC 5321 §4.5.4): no DSN goes to a null reverse-path, nor is sent for a message that has
/// one.
pub fn q6_no_dsn_for_dsn(subject: &Subject<'_>) -> Vec<Violation> {
    let mut broken = Vec::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        match &event.kind {
            EventKind::Dsn { message, to, .. } if to.is_null() => {
                broken.push(Violation::of(
                    "Q6",
                    format!("a DSN for message {message} went to the null reverse-path"),
                    Some(index),
                ));
            }
            EventKind::Dsn { message, .. }
                if subject
                    .messages
                    .get(*message)
                    .is_some_and(|m| m.from.is_null()) =>
            {
                broken.push(Violation::of(
                    "Q6",
                    format!("message {message} has a null reverse-path, yet a DSN was sent for it"),
                    Some(index),
                ));
            }
            _ => {}
        }
    }
    broken
}

/// R3 (RFC 5321 §4.2.5, §6.1): at most one accepted copy per message and recipient, unless an
/// end-of-data reply was lost: then the duplicate is expected (R8), and counted by
/// `expect::duplicates`, not broken.
pub fn r3_one_accepted_copy(subject: &Subject<'_>) -> Vec<Violation> {
    let mut copies: BTreeMap<(usize, &Mailbox), (u64, bool, usize)> = BTreeMap::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        if let EventKind::Accepted {
            message,
            recipients,
            reply_lost,
            ..
        } = &event.kind
        {
            for recipient in recipients.iter() {
                let entry = copies.entry((*message, recipient)).or_default();
                entry.0 += 1;
                entry.1 |= *reply_lost;
                entry.2 = index;
            }
        }
    }
    let mut broken = Vec::new();
    for ((message, recipient), (count, lost, last)) in copies {
        if count > 1 && !lost {
            broken.push(Violation::of(
                "R3",
                format!(
                    "message {message} was accepted {count} times for {recipient}, and no end-of-data reply was lost"
                ),
                Some(last),
            ));
        }
    }
    broken
}

#[cfg(test)]
mod tests {
    //! The negative space of the queue rules: a trace built to break each rule makes its checker
    //! fire, and the rule's id is in the message.

    use std::sync::Arc;

    use super::*;
    use crate::queue::Schedule;
    use crate::time::Duration;
    use crate::trace::{DsnKind, Event};

    fn settings() -> QueueSettings {
        QueueSettings {
            schedule: Schedule::Fixed(Duration::minutes(30)),
            scan: None,
            lifetime: Duration::hours(5),
            warn_after: None,
        }
    }

    fn message(from: Mailbox) -> Message {
        Message {
            at: Instant::START,
            from,
            to: Arc::from([Mailbox::parse("a@foo.example").expect("valid")]),
            size: None,
            requires: Vec::new(),
            wants: Vec::new(),
        }
    }

    fn event(minutes: u64, kind: EventKind) -> Event {
        Event {
            at: Instant::START.after(Duration::minutes(minutes)),
            attempt: None,
            kind,
        }
    }

    fn started(minutes: u64, attempt: u32) -> Event {
        event(
            minutes,
            EventKind::AttemptStarted {
                message: 0,
                attempt,
                recipients: Arc::from([]),
            },
        )
    }

    fn retry(minutes: u64) -> Event {
        event(
            minutes,
            EventKind::Retry {
                message: 0,
                deferred: 1,
                next: Instant::START,
                reason: Arc::from("refused"),
            },
        )
    }

    /// Every queue rule's violations, as `rule ID: message` lines.
    fn broken(events: Vec<Event>, from: Mailbox) -> Vec<String> {
        let trace = Trace { events };
        let settings = settings();
        let messages = [message(from)];
        let subject = Subject {
            trace: &trace,
            outcomes: &[],
            messages: &messages,
            queue: Some(&settings),
            client: None,
            memo: &Default::default(),
        };
        [
            q2_retry_delay,
            q3_lifetime,
            q6_no_dsn_for_dsn,
            r3_one_accepted_copy,
        ]
        .iter()
        .flat_map(|checker| checker(&subject))
        .map(|violation| violation.to_string())
        .collect()
    }

    fn sender() -> Mailbox {
        Mailbox::parse("s@sender.example").expect("valid")
    }

    #[test]
    fn each_queue_rule_fires_on_a_trace_that_breaks_it() {
        let early_retry = broken(vec![started(0, 1), retry(0), started(10, 2)], sender());
        assert!(early_retry[0].starts_with("rule Q2:"), "{early_retry:?}");
        let late_attempt = broken(vec![started(300, 1)], sender());
        assert!(late_attempt[0].starts_with("rule Q3:"), "{late_attempt:?}");
        let early_expiry = broken(
            vec![event(
                60,
                EventKind::Expired {
                    message: 0,
                    lifetime: Duration::hours(5),
                },
            )],
            sender(),
        );
        assert!(early_expiry[0].starts_with("rule Q3:"), "{early_expiry:?}");
        let dsn = |to: Mailbox| {
            event(
                0,
                EventKind::Dsn {
                    message: 0,
                    kind: DsnKind::Failure,
                    to,
                    recipients: Arc::from([]),
                },
            )
        };
        let to_null = broken(vec![dsn(Mailbox::null())], Mailbox::null());
        assert!(to_null[0].starts_with("rule Q6:"), "{to_null:?}");
        let for_null = broken(vec![dsn(sender())], Mailbox::null());
        assert!(for_null[0].starts_with("rule Q6:"), "{for_null:?}");
        let copy = |lost| {
            event(
                0,
                EventKind::Accepted {
                    address: "192.0.2.1".parse().expect("valid"),
                    host: Name::parse("mx.foo.example").expect("valid"),
                    message: 0,
                    recipients: Arc::from([Mailbox::parse("a@foo.example").expect("valid")]),
                    reply_lost: lost,
                },
            )
        };
        let duplicate = broken(vec![copy(false), copy(false)], sender());
        assert!(duplicate[0].starts_with("rule R3:"), "{duplicate:?}");
        assert!(broken(vec![copy(true), copy(false)], sender()).is_empty());
        let never_gave_up = broken(
            vec![
                event(
                    3 * 24 * 60,
                    EventKind::Horizon {
                        horizon: Duration::days(3),
                        queued: 1,
                    },
                ),
                event(
                    3 * 24 * 60,
                    EventKind::Outcome {
                        message: 0,
                        recipient: Mailbox::parse("a@foo.example").expect("valid"),
                        disposition: Disposition::Deferred {
                            reason: "horizon".to_owned(),
                        },
                    },
                ),
            ],
            sender(),
        );
        assert!(
            never_gave_up[0].starts_with("rule Q3:"),
            "{never_gave_up:?}"
        );
        let good = broken(vec![started(0, 1), retry(0), started(30, 2)], sender());
        assert!(good.is_empty(), "{good:?}");
    }
}

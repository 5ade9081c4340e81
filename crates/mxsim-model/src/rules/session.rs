//! Checkers for the session rules (RFC 5321 §3.2, §4.1.4, §4.2.1; RFC 3207 §4.2): pure
//! functions of the trace, following each connection from its connect to its close.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::name::{Mailbox, Name};
use crate::smtp::{Command, ReplyClass};
use crate::trace::{AttemptId, Closer, EventKind, Sent};

use super::{Subject, Violation};

/// One open connection as the session rules see it.
#[derive(Default)]
struct Connection {
    /// Commands sent so far.
    sent: usize,
    /// EHLO or HELO sent since the connection opened or TLS came up.
    hello: bool,
    /// TLS came up on this connection.
    tls: bool,
    /// The last command sent.
    last: Option<Sent>,
    /// Commands answered with 5yz.
    rejected: Vec<Sent>,
    /// The host the connection was opened for.
    host: Option<Name>,
    /// The last 2yz EHLO reply since the connection opened or TLS came up offered SMTPUTF8.
    smtputf8: bool,
    /// Recipients accepted (2yz to RCPT) in the current transaction.
    accepted: Vec<Mailbox>,
    /// The last reply was 500 or 502 to EHLO, and nothing has been sent since.
    ehlo_refused: bool,
}

/// A rule broken on one connection: its id and the sentence.
type Found = (&'static str, String);

/// Walks every connection, calling `visit` at each command sent, each reply, TLS coming up and
/// each close; `visit` adds what it finds broken there.
fn walk(
    subject: &Subject<'_>,
    mut visit: impl FnMut(&mut Connection, &EventKind, &mut Vec<Found>),
) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut open: BTreeMap<(Option<AttemptId>, IpAddr), Connection> = BTreeMap::new();
    // Address → the key of the latest connection opened or reused there.
    let mut latest: BTreeMap<IpAddr, Option<AttemptId>> = BTreeMap::new();
    let mut broken = Vec::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        let address = match &event.kind {
            EventKind::Connecting { address, host } => {
                let connection = Connection {
                    host: Some(host.clone()),
                    ..Connection::default()
                };
                open.insert((event.attempt, *address), connection);
                latest.insert(*address, event.attempt);
                continue;
            }
            // A cached connection taken by another attempt: the same connection, re-keyed.
            EventKind::Reused { address, .. } => {
                if let Some(&owner) = latest.get(address)
                    && let Some(connection) = open.remove(&(owner, *address))
                {
                    open.insert((event.attempt, *address), connection);
                    latest.insert(*address, event.attempt);
                }
                continue;
            }
            EventKind::Sent { address, .. }
            | EventKind::Replied { address, .. }
            | EventKind::TlsEstablished { address }
            | EventKind::Closed { address, .. } => *address,
            _ => continue,
        };
        // A line of a connection another attempt opened (the close of a cached one, say):
        // the latest connection at that address.
        let key = match open.contains_key(&(event.attempt, address)) {
            true => (event.attempt, address),
            false => match latest.get(&address) {
                Some(&owner) => (owner, address),
                None => continue,
            },
        };
        let connection = open.get_mut(&key);
        let Some(connection) = connection else {
            continue;
        };
        visit(connection, &event.kind, &mut found);
        for (rule, message) in found.drain(..) {
            broken.push(Violation::of(rule, message, Some(index)));
        }
        match &event.kind {
            EventKind::Sent { command, .. } => {
                connection.sent += 1;
                connection.ehlo_refused = false;
                match command {
                    Sent::Ehlo(_) | Sent::Helo(_) => {
                        connection.hello = true;
                        connection.smtputf8 = false;
                    }
                    Sent::Mail(..) => connection.accepted.clear(),
                    _ => {}
                }
                connection.last = Some(command.clone());
            }
            EventKind::Replied {
                reply, keywords, ..
            } => match reply.class() {
                ReplyClass::Permanent
                    if matches!(connection.last, Some(Sent::Ehlo(_)))
                        && matches!(reply.code.get(), 500 | 502) =>
                {
                    connection.ehlo_refused = true;
                    if let Some(last) = connection.last.clone() {
                        connection.rejected.push(last);
                    }
                }
                ReplyClass::Permanent => {
                    if let Some(last) = connection.last.clone() {
                        connection.rejected.push(last);
                    }
                }
                ReplyClass::Positive => match (&connection.last, keywords) {
                    (Some(Sent::Ehlo(_)), Some(keywords)) => {
                        connection.smtputf8 =
                            keywords.iter().any(|keyword| &*keyword.name == "SMTPUTF8");
                    }
                    (Some(Sent::Rcpt(recipient)), _) => {
                        connection.accepted.push(recipient.clone());
                    }
                    _ => {}
                },
                _ => {}
            },
            EventKind::TlsEstablished { .. } => {
                connection.tls = true;
                connection.hello = false;
                connection.smtputf8 = false;
            }
            _ => {}
        }
    }
    broken
}

/// Every violation of the session rules in one walk, memoized per run: each checker below
/// keeps its own rule's.
fn all(subject: &Subject<'_>) -> Vec<Violation> {
    // (message, host, recipient) whose transaction got a 5yz to its end of data (R5).
    let mut refused: BTreeSet<(usize, Name, Mailbox)> = BTreeSet::new();
    let mut broken = walk(subject, |connection, kind, found| {
        found.extend(s1(connection, kind));
        found.extend(s2(connection, kind));
        found.extend(s3(connection, kind));
        found.extend(s4(connection, kind));
        found.extend(r2(connection, kind));
        found.extend(r5(&mut refused, connection, kind));
        found.extend(x8(connection, kind));
    });
    // S2 does not hold a message that needs an extension HELO cannot negotiate.
    let needs_extension = |attempt: Option<AttemptId>| {
        let index = attempt.map_or(0, |attempt| attempt.message as usize);
        subject.messages.get(index).is_some_and(|message| {
            !message.requires.is_empty()
                || message.from.is_internationalized()
                || message.to.iter().any(Mailbox::is_internationalized)
        })
    };
    broken.retain(|violation| {
        violation.rule != "S2"
            || !needs_extension(
                violation
                    .event
                    .and_then(|index| subject.trace.events.get(index))
                    .and_then(|event| event.attempt),
            )
    });
    broken
}

/// The violations of `rule` among the session rules' (walked once per run).
fn of_rule(subject: &Subject<'_>, rule: &str) -> Vec<Violation> {
    subject
        .memo
        .session
        .get_or_init(|| all(subject))
        .iter()
        .filter(|violation| violation.rule == rule)
        .cloned()
        .collect()
}

/// S1: the first command of a connection is EHLO, not HELO.
pub fn s1_ehlo_first(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "S1")
}

fn s1(connection: &Connection, kind: &EventKind) -> Option<Found> {
    match kind {
        EventKind::Sent {
            command: Sent::Helo(_),
            address,
        } if connection.sent == 0 => Some((
            "S1",
            format!("the first command to {address} was HELO, not EHLO"),
        )),
        _ => None,
    }
}

/// S2: after EHLO is answered 500 or 502, the next thing the client does on that connection is
/// HELO, not another command or its own close, unless the message requires an extension (which
/// HELO cannot negotiate). A server that closes first leaves nothing to judge.
pub fn s2_helo_after_ehlo_refused(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "S2")
}

fn s2(connection: &Connection, kind: &EventKind) -> Option<Found> {
    if !connection.ehlo_refused {
        return None;
    }
    let address = match kind {
        EventKind::Sent {
            command: Sent::Helo(_),
            ..
        } => return None,
        EventKind::Sent { address, command } => {
            format!("sent {} to {address}", command.command().label())
        }
        EventKind::Closed {
            address,
            by: Closer::Client,
        } => format!("closed the connection to {address}"),
        _ => return None,
    };
    Some((
        "S2",
        format!("{address} after its EHLO was answered 500 or 502, instead of HELO"),
    ))
}

/// S3: EHLO or HELO precedes the first MAIL of a connection (S4 covers the one after TLS).
pub fn s3_hello_before_mail(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "S3")
}

fn s3(connection: &Connection, kind: &EventKind) -> Option<Found> {
    match kind {
        EventKind::Sent {
            command: Sent::Mail(..),
            address,
        } if !connection.hello && !connection.tls => {
            Some(("S3", format!("MAIL to {address} before any EHLO or HELO")))
        }
        _ => None,
    }
}

/// S4: after STARTTLS succeeds, the client sends EHLO again before MAIL.
pub fn s4_ehlo_after_tls(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "S4")
}

fn s4(connection: &Connection, kind: &EventKind) -> Option<Found> {
    match kind {
        EventKind::Sent {
            command: Sent::Mail(..),
            address,
        } if connection.tls && !connection.hello => Some((
            "S4",
            format!("MAIL to {address} after TLS came up, without a new EHLO"),
        )),
        _ => None,
    }
}

/// R2: on one connection, a request answered 5yz is not sent again unchanged.
pub fn r2_no_repeat_after_5yz(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "R2")
}

fn r2(connection: &Connection, kind: &EventKind) -> Option<Found> {
    match kind {
        EventKind::Sent { command, address }
            if !matches!(command.command(), Command::Quit | Command::Rset)
                && connection.rejected.contains(command) =>
        {
            Some((
                "R2",
                format!(
                    "sent {} to {address} again after a 5yz reply to it",
                    command.command().label()
                ),
            ))
        }
        _ => None,
    }
}

/// R5: after a 5yz reply to the end of data, the message is not sent again to that host for the
/// recipients of that transaction (no automatic resend without user review).
pub fn r5_no_resend_after_5yz_to_data(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "R5")
}

fn r5(
    refused: &mut BTreeSet<(usize, Name, Mailbox)>,
    connection: &Connection,
    kind: &EventKind,
) -> Option<Found> {
    let host = connection.host.as_ref()?;
    match kind {
        EventKind::Replied { reply, .. } if reply.class() == ReplyClass::Permanent => {
            if let Some(Sent::EndOfData(message)) = connection.last {
                for recipient in &connection.accepted {
                    refused.insert((message, host.clone(), recipient.clone()));
                }
            }
            None
        }
        EventKind::Sent {
            command: Sent::EndOfData(message),
            ..
        } => connection
            .accepted
            .iter()
            .find(|recipient| refused.contains(&(*message, host.clone(), (*recipient).clone())))
            .map(|recipient| {
                (
                    "R5",
                    format!(
                        "sent message {message} for {recipient} to {host} again after a 5yz reply to its end of data there"
                    ),
                )
            }),
        _ => None,
    }
}

/// X8: no internationalized mailbox in MAIL or RCPT to a host whose EHLO reply (the last one on
/// the connection) did not offer SMTPUTF8.
pub fn x8_no_utf8_address_without_smtputf8(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "X8")
}

fn x8(connection: &Connection, kind: &EventKind) -> Option<Found> {
    let (mailbox, address) = match kind {
        EventKind::Sent {
            command: Sent::Mail(mailbox, _) | Sent::Rcpt(mailbox),
            address,
        } => (mailbox, address),
        _ => return None,
    };
    (mailbox.is_internationalized() && !connection.smtputf8).then(|| {
        (
            "X8",
            format!(
                "sent {} <{mailbox}> to {address}, which did not offer SMTPUTF8",
                kind_label(kind)
            ),
        )
    })
}

fn kind_label(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Sent { command, .. } => command.command().label(),
        _ => "",
    }
}

/// The minimum wait RFC 5321 §4.5.3.2 sets for the reply to `command`, where it sets one.
fn minimum_wait(command: Command) -> Option<crate::time::Duration> {
    let minutes = match command {
        Command::Greeting | Command::Mail | Command::Rcpt => 5,
        Command::Data => 2,
        Command::EndOfData => 10,
        _ => return None,
    };
    Some(crate::time::Duration::minutes(minutes))
}

/// S6: the client waits for a reply at least the minimum of RFC 5321 §4.5.3.2 before it gives
/// up (greeting, MAIL, RCPT 5 minutes; DATA 2; end of data 10).
pub fn s6_minimum_timeouts(subject: &Subject<'_>) -> Vec<Violation> {
    let mut broken = Vec::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        if let EventKind::ReplyGaveUp {
            address,
            command,
            waited,
        } = &event.kind
            && let Some(minimum) = minimum_wait(*command)
            && *waited < minimum
        {
            broken.push(Violation::of(
                "S6",
                format!(
                    "waited {waited} for {address}'s reply ({}), below the minimum of {minimum}",
                    command.label()
                ),
                Some(index),
            ));
        }
    }
    broken
}

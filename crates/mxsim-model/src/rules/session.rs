//! Checkers for the session rules (RFC 5321 §3.2, §4.1.4, §4.2.1; RFC 3207 §4.2): pure
//! functions of the trace, following each connection from its connect to its close.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::smtp::{Command, ReplyClass};
use crate::trace::{AttemptId, EventKind, Sent};

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
}

/// A rule broken on one connection: its id and the sentence.
type Found = (&'static str, String);

/// Walks every connection, calling `visit` at each command sent and each reply.
fn walk(
    subject: &Subject<'_>,
    mut visit: impl FnMut(&mut Connection, &EventKind) -> Option<Found>,
) -> Vec<Violation> {
    let mut open: BTreeMap<(Option<AttemptId>, IpAddr), Connection> = BTreeMap::new();
    let mut broken = Vec::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        let address = match &event.kind {
            EventKind::Connecting { address, .. } => {
                open.insert((event.attempt, *address), Connection::default());
                continue;
            }
            EventKind::Sent { address, .. }
            | EventKind::Replied { address, .. }
            | EventKind::TlsEstablished { address } => *address,
            _ => continue,
        };
        // A reused connection may carry another attempt's id: look it up by address too.
        let key = (event.attempt, address);
        let connection = match open.contains_key(&key) {
            true => open.get_mut(&key),
            false => open
                .iter_mut()
                .rev()
                .find(|((_, other), _)| *other == address)
                .map(|(_, connection)| connection),
        };
        let Some(connection) = connection else {
            continue;
        };
        if let Some((rule, message)) = visit(connection, &event.kind) {
            broken.push(Violation::of(rule, message, Some(index)));
        }
        match &event.kind {
            EventKind::Sent { command, .. } => {
                connection.sent += 1;
                if matches!(command, Sent::Ehlo(_) | Sent::Helo(_)) {
                    connection.hello = true;
                }
                connection.last = Some(command.clone());
            }
            EventKind::Replied { reply, .. } if reply.class() == ReplyClass::Permanent => {
                if let Some(last) = connection.last.clone() {
                    connection.rejected.push(last);
                }
            }
            EventKind::TlsEstablished { .. } => {
                connection.tls = true;
                connection.hello = false;
            }
            _ => {}
        }
    }
    broken
}

/// S1: the first command of a connection is EHLO, not HELO.
pub fn s1_ehlo_first(subject: &Subject<'_>) -> Vec<Violation> {
    walk(subject, |connection, kind| match kind {
        EventKind::Sent {
            command: Sent::Helo(_),
            address,
        } if connection.sent == 0 => Some((
            "S1",
            format!("the first command to {address} was HELO, not EHLO"),
        )),
        _ => None,
    })
}

/// S3: EHLO or HELO precedes the first MAIL of a connection (S4 covers the one after TLS).
pub fn s3_hello_before_mail(subject: &Subject<'_>) -> Vec<Violation> {
    walk(subject, |connection, kind| match kind {
        EventKind::Sent {
            command: Sent::Mail(..),
            address,
        } if !connection.hello && !connection.tls => {
            Some(("S3", format!("MAIL to {address} before any EHLO or HELO")))
        }
        _ => None,
    })
}

/// S4: after STARTTLS succeeds, the client sends EHLO again before MAIL.
pub fn s4_ehlo_after_tls(subject: &Subject<'_>) -> Vec<Violation> {
    walk(subject, |connection, kind| match kind {
        EventKind::Sent {
            command: Sent::Mail(..),
            address,
        } if connection.tls && !connection.hello => Some((
            "S4",
            format!("MAIL to {address} after TLS came up, without a new EHLO"),
        )),
        _ => None,
    })
}

/// R2: on one connection, a request answered 5yz is not sent again unchanged.
pub fn r2_no_repeat_after_5yz(subject: &Subject<'_>) -> Vec<Violation> {
    walk(subject, |connection, kind| match kind {
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
    })
}

//! Checkers for the rules judged on where recipients end (RFC 5321 §3.8, §4.2.1, §4.3.2,
//! §4.5.3.1.10, §4.5.4.1; RFC 8689 §4.2.1): what a reply or a lost connection says a recipient's
//! fate may be, held against the outcome the policy gave it in the same attempt.
//!
//! One walk over the trace follows every connection's transaction and every recipient's fate
//! within its attempt (a single pass is one attempt); each checker keeps the violations of its
//! own rule. An outcome in a queue run has no attempt tag of its own: it belongs to its message's
//! latest attempt, or, after the message's `expired` line, to the end of its lifetime, which no
//! rule here judges (a bounce at expiry is the queue giving up, not a reply misread).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::dns::{DnsAnswer, RecordType};
use crate::name::{Mailbox, Name};
use crate::outcome::Disposition;
use crate::smtp::{Reply, ReplyClass};
use crate::trace::{AttemptId, Closer, Event, EventKind, Sent};
use crate::world::HintKey;

use super::{Subject, Violation};

/// Where an event's recipients are judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    /// One attempt; a single pass is the attempt `None`.
    Attempt(Option<AttemptId>),
    /// The end of a message's lifetime (its `expired` line and the bounces after it).
    Expiry,
}

impl Scope {
    /// The message the scope delivers: an attempt's, or message 0 in a single pass.
    fn message(self) -> Option<usize> {
        match self {
            Scope::Attempt(Some(attempt)) => Some(attempt.message as usize),
            Scope::Attempt(None) => Some(0),
            Scope::Expiry => None,
        }
    }
}

/// Tells each event's scope, from the queue's own lines.
#[derive(Default)]
struct Scopes {
    /// Message → its latest attempt.
    current: BTreeMap<usize, AttemptId>,
    /// Messages whose lifetime has ended.
    expired: BTreeSet<usize>,
}

impl Scopes {
    fn step(&mut self, event: &Event) -> Scope {
        match &event.kind {
            EventKind::AttemptStarted {
                message, attempt, ..
            } => {
                let id = AttemptId {
                    message: *message as u32,
                    number: *attempt,
                };
                self.current.insert(*message, id);
            }
            EventKind::Expired { message, .. } => {
                self.expired.insert(*message);
            }
            _ => {}
        }
        if event.attempt.is_some() {
            return Scope::Attempt(event.attempt);
        }
        match &event.kind {
            EventKind::Outcome { message, .. } | EventKind::Expired { message, .. }
                if self.expired.contains(message) =>
            {
                Scope::Expiry
            }
            EventKind::Outcome { message, .. } => {
                Scope::Attempt(self.current.get(message).copied())
            }
            _ => Scope::Attempt(None),
        }
    }
}

/// The reply codes RFC 5321 §4.2.3 lists, and those of the extensions the simulated servers
/// speak (454 of RFC 3207, 521 of RFC 7504, 556 of RFC 7505, 530 and 535 of RFC 4954). Any
/// other code is read by its first digit alone (rule S8).
const LISTED: [u16; 29] = [
    211, 214, 220, 221, 250, 251, 252, 354, 421, 450, 451, 452, 454, 455, 500, 501, 502, 503, 504,
    521, 530, 535, 550, 551, 552, 553, 554, 555, 556,
];

/// True when a reply's code is not one the standards list.
fn unlisted(reply: &Reply) -> bool {
    !LISTED.contains(&reply.code.get())
}

/// A 452, or a 552 with the enhanced status 5.5.3: too many recipients (RFC 5321 §4.5.3.1.10,
/// RFC 3463 X.5.3).
fn too_many_recipients(reply: &Reply) -> bool {
    match reply.code.get() {
        452 => true,
        552 => reply.text.starts_with("5.5.3"),
        _ => false,
    }
}

/// One open connection's transaction.
#[derive(Default)]
struct Transaction {
    /// The scope of the attempt that opened or last took the connection.
    scope: Option<Scope>,
    /// The last command sent.
    last: Option<Sent>,
    /// MAIL was sent and the end-of-data reply has not come: a transaction is open.
    open: bool,
    /// Recipients sent RCPT in the open transaction, with their reply class once it came.
    rcpts: Vec<(Mailbox, Option<ReplyClass>)>,
    /// TLS came up on this connection.
    tls: bool,
    /// The last 2yz EHLO reply offered REQUIRETLS.
    requiretls: bool,
    /// The last 2yz EHLO reply lacked a keyword the scope's message wants, and no MAIL has been
    /// sent since: the event index of that reply.
    lacked_wanted: Option<usize>,
    /// The last reply on the connection was a 5yz to MAIL.
    mail_refused: bool,
}

/// What an attempt did with one recipient, for the outcome to be held against.
#[derive(Default)]
struct Fate {
    /// A connection was lost with the recipient in its open transaction, and it was not sent
    /// RCPT again since: the event index of the loss.
    lost: Option<usize>,
    /// The last RCPT reply for it said too many recipients: its event index.
    too_many: Option<usize>,
    /// The last RCPT reply for it had an unlisted code: the reply, its address and event index.
    unlisted: Option<(Reply, IpAddr, usize)>,
    /// A server took a copy for it with its end-of-data reply seen: the address.
    taken: Option<IpAddr>,
}

/// What one scope saw of the DNS and the connections, for X5.
#[derive(Default)]
struct Seen {
    /// Domain → the exchanges of its last MX answer (a CNAME's target's answer counts for it).
    lists: BTreeMap<Name, Vec<Name>>,
    /// Alias target → the name asked about, for an MX query answered with a CNAME.
    aliases: BTreeMap<Name, Name>,
    /// Host → the addresses its answers gave.
    addresses: BTreeMap<Name, Vec<IpAddr>>,
    /// Hosts connected to.
    connected: BTreeSet<Name>,
    /// Addresses a retry record made the attempt skip.
    held: BTreeSet<IpAddr>,
}

/// The rules whose checkers each keep their own share of [`walk`]'s violations.
pub(crate) const WALKED: [&str; 7] = ["S7", "S8", "R1", "R6", "R7", "Q7", "X5"];

/// Every violation of the rules this module judges, in trace order.
pub(crate) fn walk(subject: &Subject<'_>) -> Vec<Violation> {
    let mut broken = Vec::new();
    let mut scopes = Scopes::default();
    let mut open: BTreeMap<(Option<AttemptId>, IpAddr), Transaction> = BTreeMap::new();
    let mut fates: BTreeMap<(Scope, Mailbox), Fate> = BTreeMap::new();
    let mut seen: BTreeMap<Scope, Seen> = BTreeMap::new();
    // Hint records made right after a 5yz to MAIL: the message whose attempt made them.
    let mut mail_cached: BTreeMap<HintKey, usize> = BTreeMap::new();
    // Messages that passed over a host lacking a keyword they want: the event index.
    let mut passed_over: BTreeMap<usize, usize> = BTreeMap::new();
    let message = |scope: Scope| {
        scope
            .message()
            .and_then(|index| subject.messages.get(index))
    };
    let requires = |scope: Scope, keyword: &str| {
        message(scope).is_some_and(|m| m.requires.iter().any(|k| &**k == keyword))
    };
    for (index, event) in subject.trace.events.iter().enumerate() {
        let scope = scopes.step(event);
        let address = match &event.kind {
            EventKind::Connecting { address, host } => {
                let seen = seen.entry(scope).or_default();
                seen.connected.insert(host.clone());
                let transaction = Transaction {
                    scope: Some(scope),
                    ..Transaction::default()
                };
                if let Some(old) = open.insert((event.attempt, *address), transaction) {
                    close(old, &mut passed_over);
                }
                continue;
            }
            EventKind::Reused { address, host } => {
                seen.entry(scope)
                    .or_default()
                    .connected
                    .insert(host.clone());
                if let Some(transaction) = find(&mut open, event.attempt, *address) {
                    transaction.scope = Some(scope);
                }
                continue;
            }
            EventKind::Sent { address, .. }
            | EventKind::Replied { address, .. }
            | EventKind::TlsEstablished { address }
            | EventKind::Closed { address, .. }
            | EventKind::Accepted { address, .. } => *address,
            EventKind::Dns {
                name,
                record_type,
                answer,
            } => {
                let seen = seen.entry(scope).or_default();
                match (record_type, answer) {
                    (RecordType::Mx, DnsAnswer::Cname(target)) => {
                        seen.aliases.insert(target.clone(), name.clone());
                    }
                    (RecordType::Mx, DnsAnswer::Mx(records)) => {
                        let domain = seen.aliases.get(name).cloned().unwrap_or(name.clone());
                        let exchanges = records
                            .iter()
                            .filter(|mx| !mx.is_null())
                            .map(|mx| mx.exchange.clone())
                            .collect();
                        seen.lists.insert(domain, exchanges);
                    }
                    (RecordType::A | RecordType::Aaaa, DnsAnswer::Addresses(list)) => {
                        seen.addresses
                            .entry(name.clone())
                            .or_default()
                            .extend(list.iter().copied());
                    }
                    _ => {}
                }
                continue;
            }
            EventKind::HintSet { key, .. } => {
                let address = match key {
                    HintKey::Host(address) | HintKey::HostMessage(address, _) => Some(*address),
                    HintKey::Recipient(..) | HintKey::Domain(_) => None,
                };
                let refused = address.and_then(|address| find(&mut open, event.attempt, address));
                match (refused, scope.message()) {
                    (Some(transaction), Some(message)) if transaction.mail_refused => {
                        mail_cached.insert(key.clone(), message);
                    }
                    _ => {
                        mail_cached.remove(key);
                    }
                }
                continue;
            }
            EventKind::HintCleared { key } => {
                mail_cached.remove(key);
                continue;
            }
            EventKind::HintHeld { key, .. } => {
                if let HintKey::Host(address) | HintKey::HostMessage(address, _) = key {
                    seen.entry(scope).or_default().held.insert(*address);
                }
                if let (Some(&made_by), Some(message)) = (mail_cached.get(key), scope.message())
                    && made_by != message
                {
                    broken.push(Violation::of(
                        "R7",
                        format!(
                            "message {message} skipped {key} on a record made when message {made_by} got a 5yz reply to MAIL there"
                        ),
                        Some(index),
                    ));
                }
                continue;
            }
            EventKind::Outcome {
                recipient,
                disposition,
                message,
            } => {
                let fate = fates
                    .remove(&(scope, recipient.clone()))
                    .unwrap_or_default();
                judge_outcome(
                    subject,
                    &seen,
                    scope,
                    *message,
                    recipient,
                    disposition,
                    fate,
                    index,
                    &mut broken,
                );
                continue;
            }
            EventKind::Expired { message, .. } => {
                if let Some(&passed) = passed_over.get(message) {
                    let wanted = subject
                        .messages
                        .get(*message)
                        .map(|m| m.wants.join(", "))
                        .unwrap_or_default();
                    broken.push(Violation::of(
                        "Q7",
                        format!(
                            "message {message} expired still waiting for a host with {wanted}, though a host without it answered EHLO (event {passed}) and could have taken it"
                        ),
                        Some(index),
                    ));
                }
                continue;
            }
            _ => continue,
        };
        let Some(transaction) = find(&mut open, event.attempt, address) else {
            continue;
        };
        let scope = transaction.scope.unwrap_or(scope);
        match &event.kind {
            EventKind::Sent { command, .. } => {
                match command {
                    Sent::Mail(..) => {
                        transaction.open = true;
                        transaction.rcpts.clear();
                        transaction.lacked_wanted = None;
                        if requires(scope, "REQUIRETLS")
                            && !(transaction.tls && transaction.requiretls)
                        {
                            let why = match transaction.tls {
                                false => "without TLS",
                                true => "whose EHLO after TLS did not offer REQUIRETLS",
                            };
                            broken.push(Violation::of(
                                "X5",
                                format!(
                                    "sent MAIL for a message that requires REQUIRETLS to {address}, {why}"
                                ),
                                Some(index),
                            ));
                        }
                    }
                    Sent::Rcpt(recipient) => {
                        transaction.rcpts.push((recipient.clone(), None));
                        let fate = fates.entry((scope, recipient.clone())).or_default();
                        fate.lost = None;
                        fate.too_many = None;
                        fate.unlisted = None;
                    }
                    _ => {}
                }
                transaction.last = Some(command.clone());
            }
            EventKind::Replied {
                reply, keywords, ..
            } => {
                transaction.mail_refused = matches!(transaction.last, Some(Sent::Mail(..)))
                    && reply.class() == ReplyClass::Permanent;
                match &transaction.last {
                    Some(Sent::Ehlo(_)) if reply.class() == ReplyClass::Positive => {
                        let offered = |name: &str| {
                            keywords
                                .as_ref()
                                .is_some_and(|list| list.iter().any(|keyword| keyword.is(name)))
                        };
                        transaction.requiretls = offered("REQUIRETLS");
                        let lacks = message(scope)
                            .is_some_and(|m| m.wants.iter().any(|wanted| !offered(wanted)));
                        transaction.lacked_wanted = lacks.then_some(index);
                    }
                    Some(Sent::Rcpt(recipient)) => {
                        if let Some(slot) = transaction
                            .rcpts
                            .iter_mut()
                            .rev()
                            .find(|(sent, class)| sent == recipient && class.is_none())
                        {
                            slot.1 = Some(reply.class());
                        }
                        let fate = fates.entry((scope, recipient.clone())).or_default();
                        if too_many_recipients(reply) {
                            fate.too_many = Some(index);
                        }
                        if unlisted(reply) {
                            fate.unlisted = Some((reply.clone(), address, index));
                        }
                    }
                    Some(Sent::EndOfData(_)) => transaction.open = false,
                    _ => {}
                }
            }
            EventKind::TlsEstablished { .. } => {
                transaction.tls = true;
                transaction.requiretls = false;
            }
            EventKind::Accepted {
                recipients,
                reply_lost: false,
                ..
            } => {
                for recipient in recipients.iter() {
                    fates.entry((scope, recipient.clone())).or_default().taken = Some(address);
                }
            }
            EventKind::Closed { by, .. } => {
                // A server that closes with a transaction open loses it: RFC 5321 §3.8 reads
                // that as a 451 for its recipients (those not already refused with 5yz).
                if transaction.open && matches!(by, Closer::Server | Closer::ServerIdle) {
                    for (recipient, class) in &transaction.rcpts {
                        if *class != Some(ReplyClass::Permanent) {
                            fates.entry((scope, recipient.clone())).or_default().lost = Some(index);
                        }
                    }
                }
                transaction.open = false;
                // Only the client's own close passes a host over; a server that hangs up
                // decided for it.
                if let Some(passed) = transaction.lacked_wanted.take()
                    && *by == Closer::Client
                    && let Some(message) = scope.message()
                {
                    passed_over.entry(message).or_insert(passed);
                }
            }
            _ => {}
        }
    }
    broken
}

/// A connection replaced by a new one at the same key: a host passed over for a wanted keyword
/// counts as it would at its close.
fn close(transaction: Transaction, passed_over: &mut BTreeMap<usize, usize>) {
    if let (Some(passed), Some(message)) = (
        transaction.lacked_wanted,
        transaction.scope.and_then(Scope::message),
    ) {
        passed_over.entry(message).or_insert(passed);
    }
}

/// The open connection at `address` of this attempt, or, for a connection reused by another
/// attempt, the latest one at that address.
fn find(
    open: &mut BTreeMap<(Option<AttemptId>, IpAddr), Transaction>,
    attempt: Option<AttemptId>,
    address: IpAddr,
) -> Option<&mut Transaction> {
    if open.contains_key(&(attempt, address)) {
        return open.get_mut(&(attempt, address));
    }
    open.iter_mut()
        .rev()
        .find(|((_, other), _)| *other == address)
        .map(|(_, transaction)| transaction)
}

/// Holds one outcome against the recipient's fate in its attempt.
#[allow(clippy::too_many_arguments)]
fn judge_outcome(
    subject: &Subject<'_>,
    seen: &BTreeMap<Scope, Seen>,
    scope: Scope,
    message: usize,
    recipient: &Mailbox,
    disposition: &Disposition,
    fate: Fate,
    index: usize,
    broken: &mut Vec<Violation>,
) {
    if scope == Scope::Expiry {
        return;
    }
    let mut push = |rule: &'static str, message: String| {
        broken.push(Violation::of(rule, message, Some(index)));
    };
    // S8: an unlisted code read by its first digit.
    if let Some((reply, address, at)) = &fate.unlisted {
        let misread = match (disposition, reply.class()) {
            (Disposition::Delivered { address: via, .. }, class) => {
                via == address && class != ReplyClass::Positive
            }
            (Disposition::Bounced { .. } | Disposition::Deferred { .. }, ReplyClass::Positive) => {
                fate.taken == Some(*address)
            }
            _ => false,
        };
        if misread {
            push(
                "S8",
                format!(
                    "{recipient} ended {} although its RCPT at {address} got `{reply}` (event {at}), whose first digit says otherwise",
                    disposition.kind()
                ),
            );
        }
    }
    let Disposition::Bounced { reply, .. } = disposition else {
        return;
    };
    if let Some(reply) = reply
        && unlisted(reply)
        && reply.class() != ReplyClass::Permanent
    {
        push(
            "S8",
            format!(
                "{recipient} bounced on `{reply}`, whose first digit is not 5: not a permanent failure"
            ),
        );
    }
    // S7: a lost transaction is a 451.
    if let Some(lost) = fate.lost {
        push(
            "S7",
            format!(
                "{recipient} bounced after its transaction was lost with the connection (event {lost}), which counts as a 451: it stays queued"
            ),
        );
    }
    // R6: too many recipients means later.
    if let Some(at) = fate.too_many {
        push(
            "R6",
            format!(
                "{recipient} bounced after a too-many-recipients reply to its RCPT (event {at}): the rest are sent later"
            ),
        );
    } else if let Some(reply) = reply
        && reply.class() == ReplyClass::Transient
        && !unlisted(reply)
    {
        // R1: a 4yz is transient; no failure before the give-up time.
        let before_lifetime = match subject.queue {
            None => true,
            Some(settings) => subject
                .messages
                .get(message)
                .is_none_or(|m| subject.trace.events[index].at < m.at.after(settings.lifetime)),
        };
        if before_lifetime {
            push(
                "R1",
                format!(
                    "{recipient} bounced on the transient reply `{reply}` before its give-up time"
                ),
            );
        }
    }
    // X5: a REQUIRETLS message bounced by the client itself (no server's 5yz) only after every
    // MX was tried.
    let requires_tls = subject
        .messages
        .get(message)
        .is_some_and(|m| m.requires.iter().any(|k| &**k == "REQUIRETLS"));
    if requires_tls
        && reply.is_none()
        && let Some(seen) = seen.get(&scope)
        && let Some(list) = seen.lists.get(recipient.domain())
    {
        let untried: Vec<&Name> = list
            .iter()
            .filter(|host| {
                let addresses = seen.addresses.get(*host);
                !seen.connected.contains(*host)
                    && addresses.is_some_and(|addresses| {
                        !addresses.is_empty()
                            && !addresses.iter().all(|address| seen.held.contains(address))
                    })
            })
            .collect();
        if let Some(first) = untried.first() {
            push(
                "X5",
                format!(
                    "{recipient} bounced for REQUIRETLS with {} of its MX hosts not tried ({first} first)",
                    untried.len()
                ),
            );
        }
    }
}

/// Keeps the violations of one rule.
fn of_rule(subject: &Subject<'_>, rule: &str) -> Vec<Violation> {
    walk(subject)
        .into_iter()
        .filter(|violation| violation.rule == rule)
        .collect()
}

/// S7 (RFC 5321 §3.8): a connection the server closes with a transaction open is read as a 451:
/// its recipients (those not refused with 5yz) are not bounced in that attempt unless a later
/// transaction refuses them. A client that times out and closes is not judged here (O20 for the
/// end of data).
pub fn s7_lost_connection_is_451(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "S7")
}

/// S8 (RFC 5321 §4.3.2): a reply code the standards do not list is read by its first digit. Judged
/// at RCPT, where the outcome shows the reading: a recipient delivered by a host whose unlisted
/// RCPT reply was not 2yz, one not counted delivered after an unlisted 2yz and an accepted copy,
/// and a bounce on an unlisted reply that is not 5yz.
pub fn s8_unknown_codes_by_first_digit(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "S8")
}

/// R1 (RFC 5321 §4.2.1): a bounce whose cause is a listed 4yz reply, before the message's give-up
/// time (in a single pass there is none: every such bounce). Too many recipients is R6's; an
/// unlisted 4yz is S8's.
pub fn r1_transient_is_not_a_failure(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "R1")
}

/// R6 (RFC 5321 §4.5.3.1.10): a recipient answered 452 (or 552 5.5.3) at RCPT, and not sent RCPT
/// again since, is not bounced in that attempt.
pub fn r6_too_many_recipients_later(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "R6")
}

/// R7 (RFC 5321 §4.5.4.1): a retry record made right after a 5yz reply to MAIL is never what
/// makes another message skip that host.
pub fn r7_no_cached_mail_5yz(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "R7")
}

/// Q7 (RFC 5321 §2.2.3): a message that wants a keyword does not expire waiting for a host that
/// offers it when a host without it answered EHLO and was passed over: the wait for the
/// extension ends before the bounce timeout.
pub fn q7_wanted_wait_before_bounce(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "Q7")
}

/// X5 (RFC 8689 §4.2.1): for a message that requires REQUIRETLS, no MAIL goes over a connection
/// without TLS or whose EHLO after TLS lacked REQUIRETLS, and the client bounces it on its own
/// (no server's 5yz) only once every MX host with an address was tried (connected to, or skipped
/// on a retry record).
pub fn x5_requiretls(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "X5")
}

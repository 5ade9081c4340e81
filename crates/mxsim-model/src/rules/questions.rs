//! The open questions of the standards (the project's standards notes, §3: O1–O21), and the
//! detectors that notice, in one run, that a question was met and name the alternative the
//! client took. A met question is an INFO verdict: never a failure, something to compare.
//!
//! A detector is a pure function of the run's data, like a checker; it finds the event that
//! raises the question (a 5yz greeting, a 454 to STARTTLS, a lost end-of-data reply) and reads
//! what the client did next in the same attempt ([`next_move`]).

use crate::dns::{DnsAnswer, RecordType};
use crate::name::Name;
use crate::smtp::{Command, ReplyClass};
use crate::trace::{EventKind, Sent};

use super::{Subject, Violation};

/// A detector: every place a run met its question, as INFO violations.
pub type Detector = fn(&Subject<'_>) -> Vec<Violation>;

/// One open question of the standards.
#[derive(Clone, Copy, Debug)]
pub struct Question {
    /// `O1` … `O21`.
    pub id: &'static str,
    /// The question in one line.
    pub question: &'static str,
    /// Its detector, when one is written.
    pub detector: Option<Detector>,
}

impl Question {
    /// Every place `subject` met the question; nothing without a detector.
    pub fn detect(&self, subject: &Subject<'_>) -> Vec<Violation> {
        self.detector
            .map(|detector| detector(subject))
            .unwrap_or_default()
    }
}

const fn question(
    id: &'static str,
    question: &'static str,
    detector: Option<Detector>,
) -> Question {
    Question {
        id,
        question,
        detector,
    }
}

/// Every open question of the standards notes §3, in order.
#[rustfmt::skip]
pub static QUESTIONS: &[Question] = &[
    question("O1", "When has a delivery attempt succeeded: connect, 220, EHLO, MAIL/RCPT accepted, or 250 to the end of data?", None),
    question("O2", "A desired (not required) extension: who decides, and may the client look for it elsewhere?", None),
    question("O3", "Does \"an alternate MX host\" (RFC 5321 §2.2.3) mean equal preference only, or worse ones too?", None),
    question("O4", "How long to wait for an extension-capable host, and how?", None),
    question("O5", "Capabilities split across equal-preference hosts: best match, partial use, requeue?", None),
    question("O6", "Equal-preference randomization and retries: stick to a host, or re-randomize?", None),
    question("O7", "Queued messages sharing a connection: per-message host choice, or per connection?", None),
    question("O8", "A missing extension: bounce now, try another MX, or requeue?", None),
    question("O9", "STARTTLS refused (454) or the TLS handshake failed: plaintext, next host, defer or return?", Some(o9_starttls_failed)),
    question("O10", "A host rejects the session (5yz greeting, EHLO or MAIL; 421 greeting): next MX, or bounce?", Some(o10_session_rejected)),
    question("O11", "5yz to the end of data at one MX: may another MX be tried?", Some(o11_end_of_data_rejected)),
    question("O12", "One MX target's address lookup fails temporarily: skip the host, or defer?", Some(o12_address_lookup_failed)),
    question("O13", "An MX target that is a CNAME: follow it, or treat the host as unusable?", Some(o13_mx_target_cname)),
    question("O14", "A null MX beside real MX records: ignore the null MX, or fail?", Some(o14_null_mx_beside_others)),
    question("O15", "The \"destination\" of the retry rule: host, address or domain; how long do records live?", None),
    question("O16", "Multihoming and dual stack: how many addresses per host, in which order?", None),
    question("O17", "The sender's own host in the MX list: are its equal-preference peers dropped too?", None),
    question("O18", "REQUIRETLS when every MX fails: a non-delivery notice at once, or after requeueing?", None),
    question("O19", "DANE and MTA-STS together, and downgrade between MX hosts", None),
    question("O20", "The end-of-data reply lost or timed out: wait, resend to the same host, or elsewhere (duplicates)?", Some(o20_end_of_data_reply_lost)),
    question("O21", "Caching capabilities across messages: may a host be skipped for what it lacked before?", None),
];

/// The question with this id.
pub fn find(id: &str) -> Option<&'static Question> {
    QUESTIONS.iter().find(|question| question.id == id)
}

/// A met question: `id`, what raised it, and the alternative taken.
fn met(id: &'static str, raised: String, taken: String, event: usize) -> Violation {
    Violation::met(id, format!("{raised}; taken: {taken}"), Some(event))
}

/// The recipient domain an event at `index` belongs to: the name of the last MX query before it
/// in its attempt (the domain itself, not the target of a CNAME at it).
fn domain_at(subject: &Subject<'_>, index: usize) -> Option<Name> {
    let events = &subject.trace.events;
    let scope = events.get(index)?.attempt;
    let mut domain = None;
    let mut after_cname = false;
    for event in events[..index]
        .iter()
        .filter(|event| event.attempt == scope)
    {
        match &event.kind {
            EventKind::Dns {
                name,
                record_type: RecordType::Mx,
                answer,
            } => {
                if !after_cname {
                    domain = Some(name.clone());
                }
                after_cname = matches!(answer, DnsAnswer::Cname(_));
            }
            EventKind::Submitted { .. } | EventKind::AttemptStarted { .. } => domain = None,
            _ => {}
        }
    }
    domain
}

/// What the client did next after the event at `index`, which happened at `host` (and
/// `address`, when there was a connection), in the same attempt: the next connection, the same
/// session going on, or the fate of the recipients of that domain.
pub fn next_move(
    subject: &Subject<'_>,
    index: usize,
    host: &Name,
    address: Option<std::net::IpAddr>,
) -> String {
    let events = &subject.trace.events;
    let Some(scope) = events.get(index).map(|event| event.attempt) else {
        return "nothing".to_owned();
    };
    let domain = domain_at(subject, index);
    let mut same_domain = true;
    for event in events[index + 1..]
        .iter()
        .filter(|event| event.attempt == scope)
    {
        match &event.kind {
            EventKind::Dns {
                record_type: RecordType::Mx,
                ..
            } => same_domain = false,
            EventKind::Sent {
                address: at,
                command,
            } if same_domain
                && Some(*at) == address
                && !matches!(command.command(), Command::Quit | Command::Rset) =>
            {
                return format!(
                    "went on in the same session ({})",
                    command.command().label()
                );
            }
            EventKind::Connecting {
                address: next,
                host: other,
            }
            | EventKind::Reused {
                address: next,
                host: other,
            } if same_domain => {
                return if Some(*next) == address {
                    format!("reconnected to the same address {next}")
                } else if other == host && address.is_none() {
                    format!("connected to {other} ({next})")
                } else if other == host {
                    format!("the next address of the same host ({next})")
                } else {
                    format!("the next host ({other})")
                };
            }
            EventKind::Outcome {
                recipient,
                disposition,
                ..
            } if domain
                .as_ref()
                .is_none_or(|domain| recipient.domain() == domain) =>
            {
                return disposition.kind().key().to_owned();
            }
            EventKind::Retry { .. } if same_domain => return "deferred".to_owned(),
            _ => {}
        }
    }
    "nothing more".to_owned()
}

/// The host of each open connection, by address, as connections open.
fn host_of(subject: &Subject<'_>, index: usize, address: std::net::IpAddr) -> Option<Name> {
    subject.trace.events[..index]
        .iter()
        .rev()
        .find_map(|event| match &event.kind {
            EventKind::Connecting { address: at, host }
            | EventKind::Reused { address: at, host }
                if *at == address =>
            {
                Some(host.clone())
            }
            _ => None,
        })
}

/// The last command sent on `address` before `index`, in the same connection: `None` right
/// after the connection opened (the reply is the greeting).
fn last_sent(subject: &Subject<'_>, index: usize, address: std::net::IpAddr) -> Option<Command> {
    for event in subject.trace.events[..index].iter().rev() {
        match &event.kind {
            EventKind::Sent {
                address: at,
                command,
            } if *at == address => {
                return Some(command.command());
            }
            EventKind::Connecting { address: at, .. } if *at == address => return None,
            _ => {}
        }
    }
    None
}

/// Every 4yz and 5yz reply, with the command it answered (`None`: the greeting) and the host.
fn replies<'s>(
    subject: &'s Subject<'_>,
) -> impl Iterator<
    Item = (
        usize,
        Option<Command>,
        &'s crate::smtp::Reply,
        std::net::IpAddr,
        Name,
    ),
> + 's {
    subject
        .trace
        .events
        .iter()
        .enumerate()
        .filter_map(move |(index, event)| match &event.kind {
            // Every question a reply raises is about a refusal: skip the 2yz and 3yz ones
            // before looking back through the trace.
            EventKind::Replied { address, reply, .. }
                if matches!(reply.class(), ReplyClass::Transient | ReplyClass::Permanent) =>
            {
                let host = host_of(subject, index, *address)?;
                Some((
                    index,
                    last_sent(subject, index, *address),
                    reply,
                    *address,
                    host,
                ))
            }
            _ => None,
        })
}

/// O9: STARTTLS answered 4yz/5yz, or the handshake failed or timed out.
pub fn o9_starttls_failed(subject: &Subject<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    for (index, command, reply, address, host) in replies(subject) {
        if command == Some(Command::Starttls)
            && matches!(reply.class(), ReplyClass::Transient | ReplyClass::Permanent)
        {
            let taken = next_move(subject, index, &host, Some(address));
            found.push(met(
                "O9",
                format!("STARTTLS answered {reply} at {host}"),
                taken,
                index,
            ));
        }
    }
    for (index, event) in subject.trace.events.iter().enumerate() {
        let address = match &event.kind {
            EventKind::TlsFailed { address } | EventKind::HandshakeGaveUp { address, .. } => {
                *address
            }
            _ => continue,
        };
        if let Some(host) = host_of(subject, index, address) {
            let taken = next_move(subject, index, &host, Some(address));
            found.push(met(
                "O9",
                format!("the TLS handshake with {host} failed"),
                taken,
                index,
            ));
        }
    }
    found.sort_by_key(|violation| violation.event);
    found
}

/// O10: a 5yz greeting, a 5yz to EHLO other than 500/502 (those ask for HELO, S2), a 5yz to
/// MAIL, or a 421 greeting.
pub fn o10_session_rejected(subject: &Subject<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    for (index, command, reply, address, host) in replies(subject) {
        let code = reply.code.get();
        let rejected = match command {
            None => reply.class() == ReplyClass::Permanent || code == 421,
            Some(Command::Ehlo) => {
                reply.class() == ReplyClass::Permanent && code != 500 && code != 502
            }
            Some(Command::Mail) => reply.class() == ReplyClass::Permanent,
            _ => false,
        };
        if rejected {
            let what = command.map_or("greeting".to_owned(), |command| {
                format!("reply to {}", command.label())
            });
            let taken = next_move(subject, index, &host, Some(address));
            found.push(met(
                "O10",
                format!("{host} rejected the session ({what}: {reply})"),
                taken,
                index,
            ));
        }
    }
    found
}

/// O11: a 5yz reply to the end of data.
pub fn o11_end_of_data_rejected(subject: &Subject<'_>) -> Vec<Violation> {
    replies(subject)
        .filter(|(_, command, reply, ..)| {
            *command == Some(Command::EndOfData) && reply.class() == ReplyClass::Permanent
        })
        .map(|(index, _, reply, address, host)| {
            let taken = next_move(subject, index, &host, Some(address));
            met(
                "O11",
                format!("{host} answered {reply} to the end of data"),
                taken,
                index,
            )
        })
        .collect()
}

/// The MX exchanges of the last MX answer before `index` in its attempt.
fn exchanges_at(subject: &Subject<'_>, index: usize) -> Vec<Name> {
    let events = &subject.trace.events;
    let scope = events[index].attempt;
    events[..index]
        .iter()
        .rev()
        .filter(|event| event.attempt == scope)
        .find_map(|event| match &event.kind {
            EventKind::Dns {
                record_type: RecordType::Mx,
                answer: DnsAnswer::Mx(records),
                ..
            } => Some(records.iter().map(|mx| mx.exchange.clone()).collect()),
            _ => None,
        })
        .unwrap_or_default()
}

/// O12: an address lookup of an MX target failed temporarily (SERVFAIL, a timeout, or the
/// client gave up waiting).
pub fn o12_address_lookup_failed(subject: &Subject<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        let (name, record_type) = match &event.kind {
            EventKind::Dns {
                name,
                record_type: record_type @ (RecordType::A | RecordType::Aaaa),
                answer: DnsAnswer::ServFail | DnsAnswer::Timeout,
            }
            | EventKind::DnsGaveUp {
                name,
                record_type: record_type @ (RecordType::A | RecordType::Aaaa),
                ..
            } => (name, record_type),
            _ => continue,
        };
        if exchanges_at(subject, index).contains(name) {
            let taken = next_move(subject, index, name, None);
            found.push(met(
                "O12",
                format!("the {record_type} lookup of MX target {name} failed temporarily"),
                taken,
                index,
            ));
        }
    }
    found
}

/// O13: an address lookup of an MX target answered with a CNAME.
pub fn o13_mx_target_cname(subject: &Subject<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        let EventKind::Dns {
            name,
            record_type: RecordType::A | RecordType::Aaaa,
            answer: DnsAnswer::Cname(target),
        } = &event.kind
        else {
            continue;
        };
        if !exchanges_at(subject, index).contains(name) {
            continue;
        }
        // Once per host: the A and AAAA lookups both meet it.
        if found
            .iter()
            .any(|(host, _): &(Name, Violation)| host == name)
        {
            continue;
        }
        let taken = match next_move(subject, index, name, None) {
            next if next.starts_with(&format!("connected to {name} ")) => {
                format!("followed it: {next}")
            }
            next => next,
        };
        found.push((
            name.clone(),
            met(
                "O13",
                format!("MX target {name} is a CNAME for {target}"),
                taken,
                index,
            ),
        ));
    }
    found.into_iter().map(|(_, violation)| violation).collect()
}

/// O14: an MX answer with a null MX beside other records.
pub fn o14_null_mx_beside_others(subject: &Subject<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        let EventKind::Dns {
            name,
            record_type: RecordType::Mx,
            answer: DnsAnswer::Mx(records),
        } = &event.kind
        else {
            continue;
        };
        if records.len() > 1 && records.iter().any(|mx| mx.is_null()) {
            let taken = match next_move(subject, index, name, None) {
                next if next.starts_with("the next host") => {
                    format!("used the other records: {next}")
                }
                next => next,
            };
            found.push(met(
                "O14",
                format!("{name} publishes a null MX beside other records"),
                taken,
                index,
            ));
        }
    }
    found
}

/// O20: the end of data was sent and no reply came (the client gave up, or the connection
/// was lost); the alternative says whether a copy was accepted again later.
pub fn o20_end_of_data_reply_lost(subject: &Subject<'_>) -> Vec<Violation> {
    let events = &subject.trace.events;
    let mut found = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let EventKind::Sent {
            address,
            command: Sent::EndOfData(message),
        } = &event.kind
        else {
            continue;
        };
        // The first event of that connection after the dot: a reply, or the loss of it.
        let lost = events[index + 1..]
            .iter()
            .enumerate()
            .find_map(|(offset, later)| match &later.kind {
                EventKind::Replied { address: at, .. } if at == address => Some(None),
                EventKind::ReplyGaveUp { address: at, .. } => {
                    (at == address).then_some(Some((index + 1 + offset, "timed out")))
                }
                EventKind::Closed { address: at, .. } | EventKind::Reset { address: at }
                    if at == address =>
                {
                    Some(Some((index + 1 + offset, "was lost with the connection")))
                }
                _ => None,
            });
        let Some(Some((at, how))) = lost else {
            continue;
        };
        let Some(host) = host_of(subject, index, *address) else {
            continue;
        };
        let mut taken = next_move(subject, at, &host, Some(*address));
        let again = events[at + 1..].iter().find_map(|later| match &later.kind {
            EventKind::Accepted {
                message: m, host, ..
            } if m == message => Some(host.clone()),
            _ => None,
        });
        taken.push_str(&match again {
            Some(other) => format!(", and a second copy was accepted by {other} (a duplicate)"),
            None => ", and no second copy was accepted".to_owned(),
        });
        found.push(met(
            "O20",
            format!("the end-of-data reply from {host} {how}"),
            taken,
            at,
        ));
    }
    found
}

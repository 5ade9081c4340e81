//! Checkers for the DNS and candidate-list rules (RFC 5321 §5.1, RFC 7505): pure functions of
//! the trace. Each attempt is judged on its own events, and each recipient domain's list starts
//! at its MX answer, as in the P1 checker.
//!
//! D3, D5, D8, D12 and D14–D16 read more of a list than its connections (its address answers,
//! its retry records, how its recipients ended): [`walk`] gathers that, once, into one [`Span`]
//! per list.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::dns::{DnsAnswer, Mx, RecordType};
use crate::name::Name;
use crate::outcome::DispositionKind;
use crate::trace::{AttemptId, EventKind};

use super::{Subject, Violation};

/// What the last MX answer of an attempt said, and the preferences it gave.
#[derive(Default)]
struct List {
    /// The domain asked about and what came back.
    answer: Option<(Name, Answer)>,
    /// The records of the answer.
    records: Option<Arc<[Mx]>>,
    /// Exchange → preference, built on the first lookup past [`SCAN_LOOKUPS`]: an answer of
    /// ten thousand records that is looked up once must not cost a map.
    preferences: Option<BTreeMap<Name, u16>>,
    /// Lookups made by scanning `records`.
    scans: u32,
    /// The best preference of the answer.
    best: Option<u16>,
    /// The preference of the last connection, for D10.
    last: Option<u16>,
}

/// A list is scanned this many times before it gets a map, so the cost stays linear both for
/// one connection into a huge answer and for thousands of connections into one.
const SCAN_LOOKUPS: u32 = 8;

impl List {
    /// Starts the list of a new MX answer.
    fn reset(&mut self, answer: Option<(Name, Answer)>, records: Option<Arc<[Mx]>>) {
        self.best = records
            .as_ref()
            .and_then(|records| records.iter().map(|mx| mx.preference).min());
        self.answer = answer;
        self.records = records;
        self.preferences = None;
        self.scans = 0;
        self.last = None;
    }

    /// The preference of `host` in the answer (the first record naming it), if it is listed.
    fn preference(&mut self, host: &Name) -> Option<u16> {
        let records = self.records.as_ref()?;
        if self.preferences.is_none() && self.scans < SCAN_LOOKUPS {
            self.scans += 1;
            return records
                .iter()
                .find(|mx| mx.exchange == *host)
                .map(|mx| mx.preference);
        }
        let preferences = self.preferences.get_or_insert_with(|| {
            let mut map = BTreeMap::new();
            for record in records.iter() {
                map.entry(record.exchange.clone())
                    .or_insert(record.preference);
            }
            map
        });
        preferences.get(host).copied()
    }
}

/// The MX answers the DNS rules care about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Records,
    NullMx,
    NxDomain,
    /// NODATA, or an empty list: the implicit MX.
    NoData,
    Temporary,
    Other,
}

impl Answer {
    /// The kind of an MX answer.
    fn of(answer: &DnsAnswer) -> Answer {
        match answer {
            // A null MX beside other records is the publisher's error (D17), and what a client
            // does then is open (O14): only a lone null MX is judged.
            DnsAnswer::Mx(records) if records.len() == 1 && records[0].is_null() => Answer::NullMx,
            DnsAnswer::Mx(records) if records.iter().any(|mx| mx.is_null()) => Answer::Other,
            DnsAnswer::Mx(records) if !records.is_empty() => Answer::Records,
            DnsAnswer::Mx(_) | DnsAnswer::NoData => Answer::NoData,
            DnsAnswer::NxDomain => Answer::NxDomain,
            DnsAnswer::ServFail | DnsAnswer::Timeout => Answer::Temporary,
            DnsAnswer::Addresses(_) | DnsAnswer::Cname(_) => Answer::Other,
        }
    }
}

/// Walks the trace, calling `visit` at each connection with the attempt's list.
fn each_connection(subject: &Subject<'_>, mut visit: impl FnMut(&mut List, usize, &Name)) {
    let mut lists: BTreeMap<Option<AttemptId>, List> = BTreeMap::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        let list = lists.entry(event.attempt).or_default();
        match &event.kind {
            EventKind::Dns {
                name,
                record_type: RecordType::Mx,
                answer,
            } => {
                let kind = Answer::of(answer);
                // A CNAME answer is followed by the target's MX answer: keep the list open.
                if matches!(answer, DnsAnswer::Cname(_)) {
                    continue;
                }
                let records = match answer {
                    DnsAnswer::Mx(records) => Some(records.clone()),
                    _ => None,
                };
                list.reset(Some((name.clone(), kind)), records);
            }
            EventKind::DnsGaveUp {
                name,
                record_type: RecordType::Mx,
                ..
            } => {
                list.reset(Some((name.clone(), Answer::Temporary)), None);
            }
            EventKind::Connecting { host, .. } => visit(list, index, host),
            _ => {}
        }
    }
}

/// The rules judged at each connection against the attempt's current list (D1, D2, D4, D6,
/// D10), in one walk per run.
fn per_connection(subject: &Subject<'_>) -> Vec<Violation> {
    let mut broken = Vec::new();
    each_connection(subject, |list, index, host| {
        let answer = list.answer.clone();
        if let Some((domain, answer)) = &answer {
            let (rule, what) = match answer {
                Answer::NxDomain => ("D1", Some("NXDOMAIN")),
                Answer::NullMx => ("D6", Some("a null MX")),
                _ => ("", None),
            };
            if let Some(what) = what {
                broken.push(Violation::of(
                    rule,
                    format!("connected to {host} after {what} for the MX records of {domain}"),
                    Some(index),
                ));
            }
            if *answer == Answer::Temporary && host == domain {
                broken.push(Violation::of(
                    "D2",
                    format!(
                        "connected to {host}'s own address after a temporary failure of its MX query"
                    ),
                    Some(index),
                ));
            }
            if *answer == Answer::Records && host == domain && list.preference(host).is_none() {
                broken.push(Violation::of(
                    "D4",
                    format!("connected to {host}'s own address although it has MX records"),
                    Some(index),
                ));
            }
        }
        // D10: the preferences of connected hosts never decrease, except a restart at the best.
        let Some(preference) = list.preference(host) else {
            return;
        };
        let best = list.best.unwrap_or(0);
        if let Some(last) = list.last
            && preference < last
            && preference != best
        {
            broken.push(Violation::of(
                "D10",
                format!("connected to {host} (preference {preference}) after a host of preference {last}"),
                Some(index),
            ));
        }
        list.last = Some(preference);
    });
    broken
}

fn per_connection_rule(subject: &Subject<'_>, rule: &str) -> Vec<Violation> {
    subject
        .memo
        .lists
        .get_or_init(|| per_connection(subject))
        .iter()
        .filter(|violation| violation.rule == rule)
        .cloned()
        .collect()
}

/// D1: after an NXDOMAIN answer to the MX query, the attempt connects nowhere.
pub fn d1_nxdomain_no_connection(subject: &Subject<'_>) -> Vec<Violation> {
    per_connection_rule(subject, "D1")
}

/// D6: after a null MX answer, the attempt connects nowhere.
pub fn d6_null_mx_no_connection(subject: &Subject<'_>) -> Vec<Violation> {
    per_connection_rule(subject, "D6")
}

/// D2: after a temporary failure of the MX query, the attempt never connects to the domain's own
/// address records (the message is queued instead).
pub fn d2_temporary_no_implicit_mx(subject: &Subject<'_>) -> Vec<Violation> {
    per_connection_rule(subject, "D2")
}

/// D4: when MX records exist, the attempt never connects to the domain's own address records
/// (unless the domain is one of its own exchanges).
pub fn d4_mx_present_no_implicit_mx(subject: &Subject<'_>) -> Vec<Violation> {
    per_connection_rule(subject, "D4")
}

/// D10: within one domain's list, the preferences of connected hosts never decrease, except a
/// restart at the best preference.
pub fn d10_ascending_preference(subject: &Subject<'_>) -> Vec<Violation> {
    per_connection_rule(subject, "D10")
}

/// What the address lookups of one type for one host said, as far as the rules care.
enum Lookup {
    /// Addresses, in the answer's order.
    Addresses(Positions),
    /// NXDOMAIN, NODATA or an empty answer: no address of this type, for good.
    Permanent,
    /// SERVFAIL, no answer, the client giving up, or a CNAME chain not followed to its end.
    Temporary,
}

/// An address answer, and the position of each address in it: found by scanning, then, past
/// [`SCAN_LOOKUPS`] lookups, by a map (as [`List::preference`]).
struct Positions {
    addresses: Arc<[IpAddr]>,
    map: Option<BTreeMap<IpAddr, usize>>,
    scans: u32,
}

impl Positions {
    fn new(addresses: Arc<[IpAddr]>) -> Positions {
        Positions {
            addresses,
            map: None,
            scans: 0,
        }
    }

    /// The position of `address` in the answer (its first occurrence).
    fn position(&mut self, address: IpAddr) -> Option<usize> {
        if self.map.is_none() && self.scans < SCAN_LOOKUPS {
            self.scans += 1;
            return self.addresses.iter().position(|found| *found == address);
        }
        let addresses = &self.addresses;
        let map = self.map.get_or_insert_with(|| {
            let mut map = BTreeMap::new();
            for (position, found) in addresses.iter().enumerate() {
                map.entry(*found).or_insert(position);
            }
            map
        });
        map.get(&address).copied()
    }
}

/// Where the connections to one host in one address family have got to (D12).
struct Cursor {
    /// The position in the answer of the last connection, and its address.
    at: usize,
    address: IpAddr,
    /// True once the first address of the answer was connected to: a later return to it is a
    /// restart, not a step back.
    first_tried: bool,
}

/// One recipient domain's list in one attempt, from its MX answer to the next MX answer of the
/// attempt (a CNAME at the domain is followed into the same list, as [`each_connection`] does).
struct Span {
    /// The index of the final MX answer (the one after any CNAMEs).
    answered: usize,
    /// The recipient domain: the name of the list's first MX query.
    domain: Name,
    /// The names whose MX answer was a CNAME (the domain first), if any was.
    aliases: Option<BTreeSet<Name>>,
    /// The target of the last CNAME, while its MX answer is awaited.
    awaiting: Option<Name>,
    /// The final MX answer: its name, its kind, and its records (the null MX left out).
    list: List,
    /// Address lookups, credited to the host asked about (through CNAMEs): (host, type) → the
    /// latest answer.
    lookups: BTreeMap<(Name, RecordType), Lookup>,
    /// The CNAME targets of address lookups → the host asked about.
    aliased: BTreeMap<(Name, RecordType), Name>,
    /// D12: the connections so far to each host in each family.
    cursors: BTreeMap<(Name, RecordType), Cursor>,
    /// The best preference of a record naming the client, by its name or one of its addresses.
    own: Option<u16>,
    /// Connections opened or reused in the list.
    connections: usize,
    /// True once a connection went to the final name itself (the implicit MX).
    implicit_connected: bool,
    /// Retry records in force that made the client skip something in the list (`HintHeld`).
    held: usize,
    /// How the domain's recipients in the message ended: how many there are, how many bounced,
    /// the first other end, and whether the queue deferred those not settled (`Retry`).
    expected: usize,
    bounced: usize,
    other: Option<DispositionKind>,
    deferred_rest: bool,
}

impl Span {
    /// How the domain's recipients ended the attempt: bounced when every one did, else the
    /// first other end; `None` when the trace does not tell.
    fn fate(&self) -> Option<DispositionKind> {
        if self.expected == 0 {
            return None;
        }
        if let Some(other) = self.other {
            return Some(other);
        }
        // Every recipient settled bounced before the queue deferred the message's others (a
        // second domain of the same message, say): bounced.
        if self.bounced >= self.expected {
            return Some(DispositionKind::Bounced);
        }
        self.deferred_rest.then_some(DispositionKind::Deferred)
    }

    /// The final MX answer's name and kind.
    fn answer(&self) -> Option<&(Name, Answer)> {
        self.list.answer.as_ref()
    }

    /// What the lookups of `host`'s addresses said: `None` when none was made, `Some(true)` when
    /// one gave an address, `Some(false)` when every one made gave none.
    fn has_address(&self, host: &Name) -> Option<bool> {
        let mut asked = false;
        for record_type in [RecordType::A, RecordType::Aaaa] {
            match self.lookups.get(&(host.clone(), record_type)) {
                Some(Lookup::Addresses(_)) => return Some(true),
                Some(_) => asked = true,
                None => {}
            }
        }
        asked.then_some(false)
    }

    /// True when every address lookup made for `host` said NXDOMAIN or NODATA (at least one).
    fn permanently_without_address(&self, host: &Name) -> bool {
        let mut asked = false;
        for record_type in [RecordType::A, RecordType::Aaaa] {
            match self.lookups.get(&(host.clone(), record_type)) {
                Some(Lookup::Permanent) => asked = true,
                Some(_) => return false,
                None => {}
            }
        }
        asked
    }
}

/// Every list of the trace, and the index of the last run limit or spent budget, if any.
struct Walk {
    spans: Vec<Span>,
    limit: Option<usize>,
}

impl Walk {
    /// True when the run was stopped (virtual-time limit, spent budget) after `index`.
    fn stopped_after(&self, index: usize) -> bool {
        self.limit.is_some_and(|limit| limit > index)
    }
}

/// The family of an address, as the record type that gives it.
fn family(address: IpAddr) -> RecordType {
    if address.is_ipv4() {
        RecordType::A
    } else {
        RecordType::Aaaa
    }
}

/// Walks the trace once, gathering each list into a [`Span`], and calls `visit` at each
/// connection (`Connecting`) with the list as it stands then. Linear in the trace: every event
/// costs a few map operations on the attempt's current list.
fn walk(subject: &Subject<'_>, mut visit: impl FnMut(&mut Span, usize, &Name, IpAddr)) -> Walk {
    let client = subject.client;
    let mut spans: Vec<Span> = Vec::new();
    // The current list of each attempt, as an index into `spans`.
    let mut current: BTreeMap<Option<AttemptId>, usize> = BTreeMap::new();
    // Message → recipient domain → how many of its recipients are pending.
    let mut pending: BTreeMap<usize, BTreeMap<Name, usize>> = BTreeMap::new();
    // Message → recipient domain → the lists whose end is not known yet.
    let mut waiting: BTreeMap<usize, BTreeMap<Name, Vec<usize>>> = BTreeMap::new();
    // The message of the events without an attempt (a single pass has one).
    let mut single = 0;
    let mut limit = None;
    for (index, event) in subject.trace.events.iter().enumerate() {
        match &event.kind {
            EventKind::Submitted {
                message,
                recipients,
            }
            | EventKind::AttemptStarted {
                message,
                recipients,
                ..
            } => {
                if event.attempt.is_none() && matches!(event.kind, EventKind::Submitted { .. }) {
                    single = *message;
                }
                let mut counts: BTreeMap<Name, usize> = BTreeMap::new();
                for recipient in recipients.iter() {
                    *counts.entry(recipient.domain().clone()).or_default() += 1;
                }
                pending.insert(*message, counts);
                if matches!(event.kind, EventKind::AttemptStarted { .. }) {
                    waiting.remove(message);
                }
            }
            EventKind::Dns {
                name,
                record_type: RecordType::Mx,
                answer,
            } => {
                let at = open(
                    &mut spans,
                    &mut current,
                    &mut waiting,
                    &pending,
                    event.attempt,
                    event
                        .attempt
                        .map_or(single, |attempt| attempt.message as usize),
                    name,
                    index,
                );
                let span = &mut spans[at];
                if let DnsAnswer::Cname(target) = answer {
                    span.aliases
                        .get_or_insert_with(BTreeSet::new)
                        .insert(name.clone());
                    span.awaiting = Some(target.clone());
                    span.list.reset(None, None);
                    continue;
                }
                span.awaiting = None;
                span.answered = index;
                let records = match answer {
                    DnsAnswer::Mx(records) if records.iter().any(|mx| mx.is_null()) => {
                        let usable: Arc<[Mx]> =
                            records.iter().filter(|mx| !mx.is_null()).cloned().collect();
                        (!usable.is_empty()).then_some(usable)
                    }
                    DnsAnswer::Mx(records) if !records.is_empty() => Some(records.clone()),
                    _ => None,
                };
                span.own = client.and_then(|client| {
                    records.as_ref().and_then(|records| {
                        records
                            .iter()
                            .filter(|mx| mx.exchange == client.name)
                            .map(|mx| mx.preference)
                            .min()
                    })
                });
                span.list
                    .reset(Some((name.clone(), Answer::of(answer))), records);
            }
            EventKind::DnsGaveUp {
                name,
                record_type: RecordType::Mx,
                ..
            } => {
                let at = open(
                    &mut spans,
                    &mut current,
                    &mut waiting,
                    &pending,
                    event.attempt,
                    event
                        .attempt
                        .map_or(single, |attempt| attempt.message as usize),
                    name,
                    index,
                );
                let span = &mut spans[at];
                span.awaiting = None;
                span.answered = index;
                span.own = None;
                span.list
                    .reset(Some((name.clone(), Answer::Temporary)), None);
            }
            EventKind::Dns {
                name,
                record_type: record_type @ (RecordType::A | RecordType::Aaaa),
                answer,
            } => {
                let Some(span) = current.get(&event.attempt).map(|&at| &mut spans[at]) else {
                    continue;
                };
                let key = (name.clone(), *record_type);
                let host = span
                    .aliased
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| name.clone());
                let lookup = match answer {
                    DnsAnswer::Cname(target) => {
                        span.aliased
                            .insert((target.clone(), *record_type), host.clone());
                        Lookup::Temporary
                    }
                    DnsAnswer::Addresses(addresses) if !addresses.is_empty() => {
                        if let Some(client) = client
                            && client.addresses.iter().any(|own| addresses.contains(own))
                            && let Some(preference) = span.list.preference(&host)
                        {
                            span.own = Some(span.own.map_or(preference, |own| own.min(preference)));
                        }
                        Lookup::Addresses(Positions::new(addresses.clone()))
                    }
                    DnsAnswer::Addresses(_) | DnsAnswer::NoData | DnsAnswer::NxDomain => {
                        Lookup::Permanent
                    }
                    DnsAnswer::ServFail | DnsAnswer::Timeout | DnsAnswer::Mx(_) => {
                        Lookup::Temporary
                    }
                };
                let key = (host, *record_type);
                span.cursors.remove(&key);
                span.lookups.insert(key, lookup);
            }
            EventKind::DnsGaveUp {
                name,
                record_type: record_type @ (RecordType::A | RecordType::Aaaa),
                ..
            } => {
                if let Some(span) = current.get(&event.attempt).map(|&at| &mut spans[at]) {
                    let key = (name.clone(), *record_type);
                    let host = span
                        .aliased
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| name.clone());
                    span.lookups.insert((host, *record_type), Lookup::Temporary);
                }
            }
            EventKind::Connecting { address, host } => {
                if let Some(span) = current.get(&event.attempt).map(|&at| &mut spans[at]) {
                    span.connections += 1;
                    span.implicit_connected |= span.answer().is_some_and(|(name, _)| name == host);
                    visit(span, index, host, *address);
                }
            }
            EventKind::Reused { host, .. } => {
                if let Some(span) = current.get(&event.attempt).map(|&at| &mut spans[at]) {
                    span.connections += 1;
                    span.implicit_connected |= span.answer().is_some_and(|(name, _)| name == host);
                }
            }
            EventKind::HintHeld { .. } => {
                if let Some(span) = current.get(&event.attempt).map(|&at| &mut spans[at]) {
                    span.held += 1;
                }
            }
            EventKind::RunLimit { .. } | EventKind::BudgetSpent { .. } => limit = Some(index),
            EventKind::Outcome {
                message,
                recipient,
                disposition,
            } => {
                let lists = waiting
                    .get(message)
                    .and_then(|domains| domains.get(recipient.domain()));
                for &at in lists.into_iter().flatten() {
                    let span = &mut spans[at];
                    match disposition.kind() {
                        DispositionKind::Bounced => span.bounced += 1,
                        kind => {
                            span.other.get_or_insert(kind);
                        }
                    }
                }
            }
            EventKind::Retry { message, .. } => {
                // The attempt ended; its recipients without a `done` line stay queued.
                for lists in waiting
                    .remove(message)
                    .into_iter()
                    .flat_map(BTreeMap::into_values)
                {
                    for at in lists {
                        spans[at].deferred_rest = true;
                    }
                }
            }
            _ => {}
        }
    }
    Walk { spans, limit }
}

/// The list an MX answer at `index` belongs to: the attempt's current one when it awaits this
/// name's answer (a CNAME target), else a new one.
#[allow(clippy::too_many_arguments)]
fn open(
    spans: &mut Vec<Span>,
    current: &mut BTreeMap<Option<AttemptId>, usize>,
    waiting: &mut BTreeMap<usize, BTreeMap<Name, Vec<usize>>>,
    pending: &BTreeMap<usize, BTreeMap<Name, usize>>,
    attempt: Option<AttemptId>,
    message: usize,
    name: &Name,
    index: usize,
) -> usize {
    if let Some(&at) = current.get(&attempt)
        && spans[at].awaiting.as_ref() == Some(name)
    {
        return at;
    }
    let at = spans.len();
    spans.push(Span {
        answered: index,
        domain: name.clone(),
        aliases: None,
        awaiting: None,
        list: List::default(),
        lookups: BTreeMap::new(),
        aliased: BTreeMap::new(),
        cursors: BTreeMap::new(),
        own: None,
        connections: 0,
        implicit_connected: false,
        held: 0,
        expected: pending
            .get(&message)
            .and_then(|domains| domains.get(name))
            .copied()
            .unwrap_or(0),
        bounced: 0,
        other: None,
        deferred_rest: false,
    });
    current.insert(attempt, at);
    waiting
        .entry(message)
        .or_default()
        .entry(name.clone())
        .or_default()
        .push(at);
    at
}

/// D3: after a NODATA answer (or an empty list) for the MX records of d, the list connects to
/// d's own address (the implicit MX, RFC 5321 §5.1). Not broken when d's address lookups were
/// made and gave no address (NXDOMAIN, NODATA, a failure: D5 and O12 judge those), when a retry
/// record in force made the client skip something in the list (`HintHeld`), when the run was
/// stopped (run limit, spent budget) after the answer, or when d is the client itself (D14).
/// A client that bounces or defers without looking up d's addresses, or looks them up, gets
/// some and never connects, breaks it. Which of d's addresses is tried is not judged here.
pub fn d3_nodata_implicit_mx(subject: &Subject<'_>) -> Vec<Violation> {
    let walked = &shared(subject).walk;
    let mut broken = Vec::new();
    for span in &walked.spans {
        let Some((domain, Answer::NoData)) = span.answer() else {
            continue;
        };
        if span.implicit_connected
            || span.held > 0
            || walked.stopped_after(span.answered)
            || subject.client.is_some_and(|client| client.name == *domain)
        {
            continue;
        }
        let message = match span.has_address(domain) {
            Some(false) => continue,
            Some(true) => format!(
                "{domain} has no MX records (NODATA) and has an address, yet the attempt never connected to it (the implicit MX)"
            ),
            None => format!(
                "{domain} has no MX records (NODATA), yet the attempt never looked up its own address (the implicit MX)"
            ),
        };
        broken.push(Violation::of("D3", message, Some(span.answered)));
    }
    broken
}

/// D5: when every exchange of an MX list (the null MX left out) got a permanent no-address
/// answer in the attempt, and the list made no connection, the domain's recipients end the
/// attempt bounced (the error is reported), not deferred nor delivered.
///
/// "Permanent" means every address lookup the trace shows for the exchange (A, AAAA, through
/// CNAMEs) said NXDOMAIN or NODATA, and at least one was made: a client that asks only A reads
/// NODATA for A as no address at all, and is judged on what it asked; a type it never asked is
/// not held against it. An exchange with a temporary failure (SERVFAIL, no answer, the client
/// giving up: O12), or never looked up, keeps the list out of this rule. Not judged when the
/// trace does not show how the recipients ended, or when the run was stopped after the answer.
pub fn d5_no_usable_mx_bounces(subject: &Subject<'_>) -> Vec<Violation> {
    let walked = &shared(subject).walk;
    let mut broken = Vec::new();
    for span in &walked.spans {
        let (Some((_, Answer::Records | Answer::Other)), Some(records)) =
            (span.answer(), span.list.records.as_ref())
        else {
            continue;
        };
        if span.connections > 0
            || walked.stopped_after(span.answered)
            || !records
                .iter()
                .all(|mx| span.permanently_without_address(&mx.exchange))
        {
            continue;
        }
        if let Some(fate) = span.fate()
            && fate != DispositionKind::Bounced
        {
            broken.push(Violation::of(
                "D5",
                format!(
                    "no MX host of {} has an address (every lookup said NXDOMAIN or NODATA), yet its recipients ended {fate}, not bounced",
                    span.domain
                ),
                Some(span.answered),
            ));
        }
    }
    broken
}

/// D8: after the MX query for d answered a CNAME to t, the list's connections go only to t's
/// exchanges, or to t itself when t has no MX records (its implicit MX); never to d or another
/// name of the chain, nor to a host t's answer does not list (a stale list). When t's answer is
/// an error (NXDOMAIN, a failure, a null MX), only a connection to a name of the chain is
/// judged here; D1, D2 and D6 judge the rest.
pub fn d8_cname_uses_target(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "D8")
}

fn d8(span: &mut Span, index: usize, host: &Name, broken: &mut Vec<Violation>) {
    {
        let Some(aliases) = &span.aliases else {
            return;
        };
        let target = span.answer().map(|(name, kind)| (name.clone(), *kind));
        let wrong = if aliases.contains(host) {
            true
        } else {
            match &target {
                Some((_, Answer::Records | Answer::Other)) => span.list.preference(host).is_none(),
                Some((name, Answer::NoData)) => name != host,
                _ => false,
            }
        };
        if wrong {
            let domain = &span.domain;
            let to = target.map_or_else(|| "its target".to_owned(), |(name, _)| name.to_string());
            broken.push(Violation::of(
                "D8",
                format!("connected to {host}, which is not an MX host of {to}, after {domain} answered its MX query with a CNAME"),
                Some(index),
            ));
        }
    }
}

/// D12: within one list, the connections to one host in one address family go in the order of
/// that family's address answer: a connection to an address earlier in the answer than the
/// last one connected breaks it, unless it is a return to the first address after that was
/// tried (a restart, as D10 allows). Skipping forward (a limit, a retry record) and connecting
/// to the same address again are allowed. How A and AAAA addresses are interleaved is a policy
/// setting (O16) and is not judged; an address no answer of the list gave is not judged.
pub fn d12_addresses_in_order(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "D12")
}

fn d12(span: &mut Span, index: usize, host: &Name, address: IpAddr, broken: &mut Vec<Violation>) {
    {
        let key = (host.clone(), family(address));
        let Some(Lookup::Addresses(positions)) = span.lookups.get_mut(&key) else {
            return;
        };
        let Some(at) = positions.position(address) else {
            return;
        };
        match span.cursors.get_mut(&key) {
            None => {
                span.cursors.insert(
                    key,
                    Cursor {
                        at,
                        address,
                        first_tried: at == 0,
                    },
                );
            }
            Some(cursor) => {
                if at < cursor.at && !(at == 0 && cursor.first_tried) {
                    broken.push(Violation::of(
                        "D12",
                        format!(
                            "connected to {address} of {host} after {}, against the order of its {} answer",
                            cursor.address, key.1
                        ),
                        Some(index),
                    ));
                }
                cursor.at = at;
                cursor.address = address;
                cursor.first_tried |= at == 0;
            }
        }
    }
}

/// D14: when a record of an MX list names the client (its name, or an exchange whose address
/// answer holds one of the client's addresses), no connection of that list goes to a host
/// whose preference is that record's or worse. Not judged without the scenario's client, nor
/// for a host the list does not name (D4 judges those).
pub fn d14_self_mx_discards(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "D14")
}

fn d14(span: &mut Span, index: usize, host: &Name, broken: &mut Vec<Violation>) {
    {
        let Some(own) = span.own else {
            return;
        };
        if let Some(preference) = span.list.preference(host)
            && preference >= own
        {
            broken.push(Violation::of(
                "D14",
                format!(
                    "connected to {host} (preference {preference}) although the client is listed for {} at preference {own}: that preference and worse are discarded",
                    span.domain
                ),
                Some(index),
            ));
        }
    }
}

/// D15: when the client's own record has the best preference of an MX list, nothing is left
/// after D14, and the domain's recipients end the attempt bounced (returned as undeliverable),
/// not deferred nor delivered. Not judged when the trace does not show how they ended, or when
/// the run was stopped after the answer.
pub fn d15_self_best_bounces(subject: &Subject<'_>) -> Vec<Violation> {
    let walked = &shared(subject).walk;
    let mut broken = Vec::new();
    for span in &walked.spans {
        let (Some(own), Some(best)) = (span.own, span.list.best) else {
            continue;
        };
        if own > best || walked.stopped_after(span.answered) {
            continue;
        }
        if let Some(fate) = span.fate()
            && fate != DispositionKind::Bounced
        {
            broken.push(Violation::of(
                "D15",
                format!(
                    "the client is the best MX of {} (preference {own}), so nothing is left, yet its recipients ended {fate}, not bounced",
                    span.domain
                ),
                Some(span.answered),
            ));
        }
    }
    broken
}

/// D16: when records better than the client's own are left after D14, the list's first
/// connection goes to a host of the best preference (unless a retry record in force made the
/// client skip something first, `HintHeld`), and the list does not end without any connection
/// while a remaining host had an address (unless a retry record held one, or the run was
/// stopped). The order after the first connection is D10's.
pub fn d16_rest_best_first(subject: &Subject<'_>) -> Vec<Violation> {
    of_rule(subject, "D16")
}

fn d16_first(span: &mut Span, index: usize, host: &Name, broken: &mut Vec<Violation>) {
    {
        let (Some(own), Some(best)) = (span.own, span.list.best) else {
            return;
        };
        if own <= best || span.connections != 1 || span.held > 0 {
            return;
        }
        // A host of the best preference whose lookups gave no address cannot be first (found
        // by `mxsim explore`: the best MX's A lookup SERVFAILed).
        let unusable_best = span.list.records.as_ref().is_some_and(|records| {
            records
                .iter()
                .any(|mx| mx.preference == best && span.has_address(&mx.exchange) == Some(false))
        });
        if unusable_best {
            return;
        }
        if let Some(preference) = span.list.preference(host)
            && preference != best
        {
            broken.push(Violation::of(
                "D16",
                format!(
                    "the first connection for {} went to {host} (preference {preference}), not to a host of the best preference {best}",
                    span.domain
                ),
                Some(index),
            ));
        }
    }
}

/// D16's second half, from the finished walk: a list left without any connection.
fn d16_rest(walked: &Walk, broken: &mut Vec<Violation>) {
    for span in &walked.spans {
        let (Some(own), Some(best), Some(records)) =
            (span.own, span.list.best, span.list.records.as_ref())
        else {
            continue;
        };
        if own <= best
            || span.connections > 0
            || span.held > 0
            || walked.stopped_after(span.answered)
        {
            continue;
        }
        if let Some(left) = records
            .iter()
            .find(|mx| mx.preference < own && span.has_address(&mx.exchange) == Some(true))
        {
            broken.push(Violation::of(
                "D16",
                format!(
                    "no connection for {} although {} (preference {}) is left after the client's own record and has an address",
                    span.domain, left.exchange, left.preference
                ),
                Some(span.answered),
            ));
        }
    }
}

/// The walk the list rules share (D3, D5, D15 and D16 read its lists), and what the rules
/// judged connection by connection (D8, D12, D14, D16) found on it: walked once per run.
pub(super) struct Shared {
    walk: Walk,
    found: Vec<Violation>,
}

fn shared<'s>(subject: &'s Subject<'_>) -> &'s Shared {
    subject.memo.dns.get_or_init(|| {
        let mut found = Vec::new();
        let walk = walk(subject, |span, index, host, address| {
            d8(span, index, host, &mut found);
            d12(span, index, host, address, &mut found);
            d14(span, index, host, &mut found);
            d16_first(span, index, host, &mut found);
        });
        d16_rest(&walk, &mut found);
        Shared { walk, found }
    })
}

/// The violations of `rule` among those the shared walk found.
fn of_rule(subject: &Subject<'_>, rule: &str) -> Vec<Violation> {
    shared(subject)
        .found
        .iter()
        .filter(|violation| violation.rule == rule)
        .cloned()
        .collect()
}

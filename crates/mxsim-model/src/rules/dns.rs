//! Checkers for the DNS and candidate-list rules (RFC 5321 §5.1, RFC 7505): pure functions of
//! the trace. Each attempt is judged on its own events, and each recipient domain's list starts
//! at its MX answer, as in the P1 checker.

use std::collections::BTreeMap;

use std::sync::Arc;

use crate::dns::{DnsAnswer, Mx, RecordType};
use crate::name::Name;
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
    Temporary,
    Other,
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
                let kind = match answer {
                    // A null MX beside other records is the publisher's error (D17), and what a
                    // client does then is open (O14): only a lone null MX is judged.
                    DnsAnswer::Mx(records) if records.len() == 1 && records[0].is_null() => {
                        Answer::NullMx
                    }
                    DnsAnswer::Mx(records) if records.iter().any(|mx| mx.is_null()) => {
                        Answer::Other
                    }
                    DnsAnswer::Mx(records) if !records.is_empty() => Answer::Records,
                    DnsAnswer::NxDomain => Answer::NxDomain,
                    DnsAnswer::ServFail | DnsAnswer::Timeout => Answer::Temporary,
                    _ => Answer::Other,
                };
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

/// D1: after an NXDOMAIN answer to the MX query, the attempt connects nowhere.
pub fn d1_nxdomain_no_connection(subject: &Subject<'_>) -> Vec<Violation> {
    no_connection_after(subject, Answer::NxDomain, "D1", "NXDOMAIN")
}

/// D6: after a null MX answer, the attempt connects nowhere.
pub fn d6_null_mx_no_connection(subject: &Subject<'_>) -> Vec<Violation> {
    no_connection_after(subject, Answer::NullMx, "D6", "a null MX")
}

fn no_connection_after(
    subject: &Subject<'_>,
    wanted: Answer,
    rule: &'static str,
    what: &str,
) -> Vec<Violation> {
    let mut broken = Vec::new();
    each_connection(subject, |list, index, host| {
        if let Some((domain, answer)) = &list.answer
            && *answer == wanted
        {
            broken.push(Violation::of(
                rule,
                format!("connected to {host} after {what} for the MX records of {domain}"),
                Some(index),
            ));
        }
    });
    broken
}

/// D2: after a temporary failure of the MX query, the attempt never connects to the domain's own
/// address records (the message is queued instead).
pub fn d2_temporary_no_implicit_mx(subject: &Subject<'_>) -> Vec<Violation> {
    let mut broken = Vec::new();
    each_connection(subject, |list, index, host| {
        if let Some((domain, Answer::Temporary)) = &list.answer
            && host == domain
        {
            broken.push(Violation::of(
                "D2",
                format!(
                    "connected to {host}'s own address after a temporary failure of its MX query"
                ),
                Some(index),
            ));
        }
    });
    broken
}

/// D4: when MX records exist, the attempt never connects to the domain's own address records
/// (unless the domain is one of its own exchanges).
pub fn d4_mx_present_no_implicit_mx(subject: &Subject<'_>) -> Vec<Violation> {
    let mut broken = Vec::new();
    each_connection(subject, |list, index, host| {
        if let Some((domain, Answer::Records)) = &list.answer
            && host == domain
            && list.preference(host).is_none()
        {
            broken.push(Violation::of(
                "D4",
                format!("connected to {host}'s own address although it has MX records"),
                Some(index),
            ));
        }
    });
    broken
}

/// D10: within one domain's list, the preferences of connected hosts never decrease, except a
/// restart at the best preference.
pub fn d10_ascending_preference(subject: &Subject<'_>) -> Vec<Violation> {
    let mut broken = Vec::new();
    each_connection(subject, |list, index, host| {
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

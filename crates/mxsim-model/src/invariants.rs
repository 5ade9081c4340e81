//! Invariant checkers: pure functions of a trace. A policy that claims an invariant has it
//! checked on every run `mxsim check` makes; a policy that breaks a claim fails the check even
//! where no `expect:` asks about it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::dns::{DnsAnswer, RecordType};
use crate::name::Name;
use crate::smtp::{Command, ReplyClass};
use crate::trace::{EventKind, Trace};

/// After a connection to a host of preference p received a 2yz greeting and any reply to EHLO,
/// no later connection in the same attempt (one message, one recipient domain) goes to a host
/// worse than p.
/// The seed's reading of RFC 2821 (../shared/seeds): such a session "is not permitted to fall
/// back to backup.foo.example under any circumstances".
pub fn never_worse_preference_after_ehlo(trace: &Trace) -> Vec<String> {
    let mut preferences: BTreeMap<Name, u16> = BTreeMap::new();
    let mut hosts: BTreeMap<IpAddr, (Name, bool)> = BTreeMap::new();
    let mut last_sent: BTreeMap<IpAddr, Command> = BTreeMap::new();
    let mut ceiling: Option<(u16, Name)> = None;
    let mut broken = Vec::new();
    for event in &trace.events {
        match &event.kind {
            EventKind::Submitted { .. } => ceiling = None,
            // Each recipient domain is its own attempt and starts with its MX lookups, before any
            // connection: the rule applies within one domain's list.
            EventKind::Dns {
                record_type: RecordType::Mx,
                answer,
                ..
            } => {
                ceiling = None;
                if let DnsAnswer::Mx(records) = answer {
                    // A host may serve several domains at different preferences: use this
                    // domain's list only.
                    preferences.clear();
                    for record in records.iter() {
                        preferences
                            .entry(record.exchange.clone())
                            .or_insert(record.preference);
                    }
                }
            }
            EventKind::Connecting { address, host } => {
                let preference = preferences.get(host).copied().unwrap_or(0);
                if let Some((limit, at)) = &ceiling
                    && preference > *limit
                {
                    broken.push(format!("connected to {host} (preference {preference}) at {} after EHLO at {at} (preference {limit})", event.at));
                }
                hosts.insert(*address, (host.clone(), false));
                last_sent.remove(address);
            }
            EventKind::Sent { address, command } => {
                last_sent.insert(*address, command.command());
            }
            EventKind::Replied { address, reply, .. } => {
                let Some((host, greeted)) = hosts.get_mut(address) else {
                    continue;
                };
                match last_sent.get(address) {
                    None if reply.class() == ReplyClass::Positive => *greeted = true,
                    Some(Command::Ehlo) if *greeted => {
                        let preference = preferences.get(host).copied().unwrap_or(0);
                        if ceiling
                            .as_ref()
                            .is_none_or(|(limit, _)| preference < *limit)
                        {
                            ceiling = Some((preference, host.clone()));
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    broken
}

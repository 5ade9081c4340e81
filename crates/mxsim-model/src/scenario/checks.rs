//! Semantic checks that need the whole file: reachability of servers, default addresses,
//! recipients named by server scripts and expectations.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::{
    ClientIdentity, HostRef, Loader, Message, NameRecords, RecordSet, RecordSets, Server,
    ServerKey, Zone, ZoneName,
};
use crate::diag::Suggester;
use crate::name::{Mailbox, Name};
use crate::schema::Reader;
use crate::yaml::{Node, Position};

/// What expectations may refer to.
pub(super) struct Known {
    names: BTreeSet<Name>,
    addresses: BTreeSet<IpAddr>,
    pub(super) recipients: BTreeSet<Mailbox>,
    /// Built once, so a hint costs a bounded scan instead of a pass over every name.
    hints: Suggester,
}

impl Known {
    pub(super) fn new(zone: &Zone, servers: &[Server], messages: &[Message]) -> Known {
        let mut names: BTreeSet<Name> = zone.names.keys().cloned().collect();
        let mut addresses = zone_addresses(zone);
        for server in servers {
            match &server.key {
                ServerKey::Name(name) => {
                    names.insert(name.clone());
                }
                ServerKey::Address(address) => {
                    addresses.insert(*address);
                }
            }
            addresses.extend(server.addresses.iter().copied());
        }
        let recipients = messages
            .iter()
            .flat_map(|message| message.to.iter().cloned())
            .collect();
        let hints = Suggester::new(names.iter().map(Name::as_str));
        Known {
            names,
            addresses,
            recipients,
            hints,
        }
    }

    /// An expectation naming a host the world does not have can never fail: refuse it.
    pub(super) fn check_host(
        &self,
        reader: &mut Reader<'_>,
        at: Position,
        what: &str,
        host: &HostRef,
    ) {
        match host {
            HostRef::Name(name) if !self.names.contains(name) => {
                let message =
                    format!("{what} names {name}, which is neither in dns nor in servers");
                match self.hints.suggest(name.as_str()) {
                    Some(suggestion) => {
                        reader.error_with_help(at, message, format!("did you mean `{suggestion}`?"))
                    }
                    None => reader.error(at, message),
                }
            }
            HostRef::Address(address) if !self.addresses.contains(address) => {
                reader.error(
                    at,
                    format!("{what} names {address}, which no record or server has"),
                );
            }
            _ => {}
        }
    }
}

fn zone_addresses(zone: &Zone) -> BTreeSet<IpAddr> {
    let mut addresses = BTreeSet::new();
    for entry in zone.names.values() {
        if let ZoneName::Records(records) = entry {
            for sets in records.all_sets() {
                for set in [&sets.a, &sets.aaaa].into_iter().flatten() {
                    if let RecordSet::Records(list) = set {
                        addresses.extend(list.iter().copied());
                    }
                }
            }
        }
    }
    addresses
}

/// Names reachable from the recipient domains through CNAMEs and MX targets, in any window.
fn reachable(zone: &Zone, messages: &[Message]) -> BTreeSet<Name> {
    let mut pending: Vec<Name> = messages
        .iter()
        .flat_map(|message| message.to.iter().map(|to| to.domain().clone()))
        .collect();
    let mut reached = BTreeSet::new();
    // Bounded: each name is expanded once, and the zone is finite.
    while let Some(name) = pending.pop() {
        if !reached.insert(name.clone()) {
            continue;
        }
        let Some(ZoneName::Records(records)) = zone.names.get(&name) else {
            continue;
        };
        for sets in records.all_sets() {
            if let Some(Ok(target)) = &sets.cname {
                pending.push(target.clone());
            }
            if let Some(RecordSet::Records(mx)) = &sets.mx {
                pending.extend(
                    mx.iter()
                        .filter(|record| !record.is_null())
                        .map(|record| record.exchange.clone()),
                );
            }
        }
    }
    reached
}

fn host_addresses(records: &NameRecords) -> Vec<IpAddr> {
    let mut addresses = Vec::new();
    let mut seen = BTreeSet::new();
    for sets in records.all_sets() {
        for set in [&sets.a, &sets.aaaa].into_iter().flatten() {
            if let RecordSet::Records(list) = set {
                for address in list.iter() {
                    if seen.insert(*address) {
                        addresses.push(*address);
                    }
                }
            }
        }
    }
    addresses
}

fn mentions_addresses(records: &NameRecords) -> bool {
    records
        .all_sets()
        .any(|sets| sets.a.is_some() || sets.aaaa.is_some())
}

/// The documentation ranges of RFC 5737, in the order the format promises.
fn documentation_addresses() -> impl Iterator<Item = IpAddr> {
    [[192, 0, 2], [198, 51, 100], [203, 0, 113]]
        .into_iter()
        .flat_map(|[a, b, c]| (1..=254u8).map(move |d| IpAddr::V4(Ipv4Addr::new(a, b, c, d))))
}

impl Loader<'_> {
    pub(super) fn check_servers(
        &mut self,
        report_unreachable: bool,
        zone: &mut Zone,
        servers: &mut [Server],
        messages: &[Message],
        client: Option<&ClientIdentity>,
    ) {
        let reached = reachable(zone, messages);
        let mut used = zone_addresses(zone);
        used.extend(servers.iter().filter_map(|server| match server.key {
            ServerKey::Address(address) => Some(address),
            ServerKey::Name(_) => None,
        }));
        used.extend(
            client
                .iter()
                .flat_map(|client| client.addresses.iter().copied()),
        );
        let mut free = documentation_addresses().filter(|address| !used.contains(address));
        let hints = Suggester::new(reached.iter().map(Name::as_str));
        let reached_addresses = addresses_of(zone, &reached);
        for server in servers.iter_mut() {
            match server.key.clone() {
                ServerKey::Name(name) => {
                    if report_unreachable && !messages.is_empty() && !reached.contains(&name) {
                        let message = format!(
                            "server {name} is unreachable: no recipient domain, MX record or CNAME leads to it"
                        );
                        match hints.suggest(name.as_str()) {
                            Some(suggestion) => self.reader.error_with_help(
                                server.at,
                                message,
                                format!("did you mean `{suggestion}`?"),
                            ),
                            None => self.reader.error(server.at, message),
                        }
                        continue;
                    }
                    server.addresses = self.server_addresses(zone, &name, server.at, &mut free);
                }
                ServerKey::Address(address) => {
                    if report_unreachable && !reached_addresses.contains(&address) {
                        self.reader.error(server.at, format!("server {address} is unreachable: no A or AAAA record of a reachable name has this address"));
                    }
                    server.addresses = vec![address];
                }
            }
        }
        self.check_shared_addresses(servers);
    }

    fn server_addresses(
        &mut self,
        zone: &mut Zone,
        name: &Name,
        at: Position,
        free: &mut impl Iterator<Item = IpAddr>,
    ) -> Vec<IpAddr> {
        match zone.names.get_mut(name) {
            Some(ZoneName::NxDomain) => {
                self.reader.error(
                    at,
                    format!("server {name} can never be reached: dns says the name is nxdomain"),
                );
                Vec::new()
            }
            Some(ZoneName::Records(records))
                if records.all_sets().any(|sets| sets.cname.is_some()) =>
            {
                self.reader.error(
                    at,
                    format!(
                        "server {name} is keyed by an alias (CNAME): key it by the alias target"
                    ),
                );
                Vec::new()
            }
            Some(ZoneName::Records(records)) if mentions_addresses(records) => {
                host_addresses(records)
            }
            entry => {
                let Some(address) = free.next() else {
                    self.reader.error(
                        at,
                        "no documentation address left to give this server: list its `a` records",
                    );
                    return Vec::new();
                };
                let set = Some(RecordSet::Records(Arc::from(vec![address])));
                match entry {
                    Some(ZoneName::Records(records)) => records.base.a = set,
                    _ => {
                        let base = RecordSets {
                            a: set,
                            ..RecordSets::default()
                        };
                        zone.names.insert(
                            name.clone(),
                            ZoneName::Records(NameRecords {
                                base,
                                during: Vec::new(),
                            }),
                        );
                    }
                }
                vec![address]
            }
        }
    }

    /// Two name-keyed servers on one address, with no address-keyed server to settle it, are
    /// ambiguous. Each later server is reported once per address, against the first server on
    /// it, so the work and the output stay linear however many servers share an address.
    fn check_shared_addresses(&mut self, servers: &[Server]) {
        let keyed: BTreeSet<IpAddr> = servers
            .iter()
            .filter_map(|server| match server.key {
                ServerKey::Address(address) => Some(address),
                ServerKey::Name(_) => None,
            })
            .collect();
        let mut first: BTreeMap<IpAddr, &Name> = BTreeMap::new();
        for server in servers {
            let ServerKey::Name(name) = &server.key else {
                continue;
            };
            for address in &server.addresses {
                match first.get(address) {
                    None => {
                        first.insert(*address, name);
                    }
                    Some(other_name) if !keyed.contains(address) => {
                        self.reader.error_with_help(
                            server.at,
                            format!("servers {other_name} and {name} share address {address}, so its behaviour is ambiguous"),
                            format!("add a server keyed by `{address}` to say how that address behaves"),
                        );
                    }
                    Some(_) => {}
                }
            }
        }
    }

    pub(super) fn check_rcpt_keys(
        &mut self,
        servers_node: Option<&Node>,
        servers: &[Server],
        messages: &[Message],
    ) {
        if servers_node.is_none() || messages.is_empty() {
            return;
        }
        let recipients: BTreeSet<&Mailbox> = messages
            .iter()
            .flat_map(|message| message.to.iter())
            .collect();
        for server in servers {
            let windows = std::iter::once(&server.base)
                .chain(server.during.iter().map(|window| &window.patch));
            for behaviour in windows {
                let Some(rcpt) = &behaviour.rcpt else {
                    continue;
                };
                for (mailbox, _) in &rcpt.by_recipient {
                    if !recipients.contains(mailbox) {
                        self.reader.error(server.at, format!("server {} scripts a RCPT reply for {mailbox}, who is not a recipient of any message", server.label()));
                    }
                }
            }
        }
    }
}

/// Every address of an A or AAAA record of the names in `reached`, in one pass.
fn addresses_of(zone: &Zone, reached: &BTreeSet<Name>) -> BTreeSet<IpAddr> {
    reached
        .iter()
        .filter_map(|name| match zone.names.get(name) {
            Some(ZoneName::Records(records)) => Some(host_addresses(records)),
            _ => None,
        })
        .flatten()
        .collect()
}

//! Generated worlds: small plain data ([`Spec`]) that proptest draws and shrinks, and the
//! [`Scenario`] value each one is. A shrunk counterexample is therefore a real scenario, and the
//! scenario writer turns it into a file that `run` and `check` accept.
//!
//! The space spans what the search issue asks for: one to eight MX hosts with tied and distinct
//! preferences; CNAMEs at the recipient domain and at MX targets; multihomed, dual-stack and
//! IPv6-only hosts; every DNS failure at the MX and the address lookups; a fault at every stage
//! of a session (connect, greeting, EHLO, STARTTLS and the handshake, MAIL, RCPT, DATA, the end
//! of data, slow replies, drops); the client as one of the MX hosts; required and wanted
//! keywords; one or two recipients at one or two domains; and, as queue worlds, several
//! messages, faults that last a time window, and greylisting.
//!
//! Every spec makes a valid scenario: the writer's round trip (write, load, same) is a property
//! test over generated specs.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use mxsim_model::dns::{DnsFailure, Mx};
use mxsim_model::name::{Mailbox, Name};
use mxsim_model::scenario::{
    Behaviour, ClientIdentity, ConnectMode, DEFAULT_CLIENT_NAME, DEFAULT_FROM, EndOfData, Greeting,
    Greylist, Message, NameRecords, RcptReplies, RecordSet, RecordSets, Scenario, Server,
    ServerKey, StartTls, Window, Zone, ZoneName,
};
use mxsim_model::smtp::{Command, Keyword, Reply};
use mxsim_model::time::{Duration, Instant};
use mxsim_model::yaml::Position;
use proptest::prelude::*;

/// The keywords a generated server may offer and a generated message may require or want.
pub const KEYWORDS: [&str; 4] = ["FOOBAR", "STARTTLS", "SMTPUTF8", "REQUIRETLS"];

/// What the MX query of a recipient domain answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MxAnswer {
    /// The domain's hosts.
    Records,
    /// A lone null MX (RFC 7505).
    NullMx,
    /// No MX records: the implicit MX, the domain's own address (the first host's behaviour).
    NoData,
    /// The domain does not exist.
    NxDomain,
    /// SERVFAIL.
    ServFail,
    /// No answer.
    Timeout,
}

/// How a host's address lookups answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// One IPv4 address.
    One,
    /// Two IPv4 addresses (multihomed).
    Two,
    /// One IPv6 address and nothing else.
    V6Only,
    /// One IPv4 and one IPv6 address.
    Dual,
    /// The A lookup fails with SERVFAIL.
    ServFail,
    /// The name does not exist.
    NxDomain,
}

/// The one thing a generated server does wrong, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing.
    None,
    /// The address refuses, drops the SYN, or resets.
    Connect(ConnectMode),
    /// The greeting is this code.
    Greeting(u16),
    /// No greeting, ever.
    SilentGreeting,
    /// EHLO is answered with this code.
    Ehlo(u16),
    /// STARTTLS is answered with this code.
    StartTls(u16),
    /// The TLS handshake fails.
    Handshake,
    /// MAIL is answered with this code.
    Mail(u16),
    /// Every RCPT is answered with this code.
    Rcpt(u16),
    /// DATA is answered with this code.
    Data(u16),
    /// The end of data is answered with this code.
    EndOfData(u16),
    /// The message is accepted but the end-of-data reply is lost.
    Lost,
    /// The reply to this command comes six minutes late.
    Slow(Command),
    /// The server closes the connection right after replying to this command.
    Drop(Command),
}

/// One generated MX host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// Its MX preference.
    pub preference: u16,
    /// How its address lookups answer.
    pub addresses: Addresses,
    /// The MX target is a CNAME to the host's real name.
    pub cname: bool,
    /// What it does wrong.
    pub fault: Fault,
    /// In a queue world, the fault lasts only its first three hours.
    pub windowed: bool,
    /// Greylisting, for 5 minutes (queue worlds).
    pub greylist: bool,
    /// The keywords its EHLO offers: a bit per entry of [`KEYWORDS`].
    pub offers: u8,
    /// The keywords its EHLO offers after TLS, when it offers STARTTLS.
    pub offers_after_tls: u8,
}

/// One generated recipient domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainSpec {
    /// What its MX query answers.
    pub answer: MxAnswer,
    /// The recipient domain is a CNAME to the name that holds the MX records.
    pub alias: bool,
    /// Its hosts, at least one.
    pub hosts: Vec<HostSpec>,
    /// Recipients at this domain (1 or 2).
    pub recipients: u8,
}

/// A generated world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The recipient domains (1 or 2).
    pub domains: Vec<DomainSpec>,
    /// A queue world: several messages, windows and greylisting come into play.
    pub queue: bool,
    /// Messages, submitted 20 minutes apart (1 unless a queue world).
    pub messages: u8,
    /// Keywords the message requires: a bit per entry of [`KEYWORDS`].
    pub requires: u8,
    /// Keywords the message wants.
    pub wants: u8,
    /// The client is this host (domain index, host index).
    pub client_is: Option<(u8, u8)>,
    /// The first recipient has an internationalized local part.
    pub utf8_recipient: bool,
}

fn fault() -> impl Strategy<Value = Fault> {
    use Command::*;
    prop_oneof![
        8 => Just(Fault::None),
        1 => prop::sample::select(vec![ConnectMode::Refuse, ConnectMode::Timeout, ConnectMode::Reset]).prop_map(Fault::Connect),
        1 => prop::sample::select(vec![421u16, 554, 450]).prop_map(Fault::Greeting),
        1 => Just(Fault::SilentGreeting),
        1 => prop::sample::select(vec![502u16, 500, 421, 554]).prop_map(Fault::Ehlo),
        1 => prop::sample::select(vec![454u16, 501]).prop_map(Fault::StartTls),
        1 => Just(Fault::Handshake),
        1 => prop::sample::select(vec![451u16, 550, 421, 552]).prop_map(Fault::Mail),
        1 => prop::sample::select(vec![450u16, 452, 550, 459]).prop_map(Fault::Rcpt),
        1 => prop::sample::select(vec![451u16, 554]).prop_map(Fault::Data),
        1 => prop::sample::select(vec![451u16, 554, 552]).prop_map(Fault::EndOfData),
        1 => Just(Fault::Lost),
        1 => prop::sample::select(vec![Greeting, Mail, Rcpt, Data, EndOfData]).prop_map(Fault::Slow),
        1 => prop::sample::select(vec![Ehlo, Mail, Rcpt, Data]).prop_map(Fault::Drop),
    ]
}

fn host(queue: bool) -> impl Strategy<Value = HostSpec> {
    let addresses = prop_oneof![
        6 => Just(Addresses::One),
        1 => Just(Addresses::Two),
        1 => Just(Addresses::V6Only),
        1 => Just(Addresses::Dual),
        1 => Just(Addresses::ServFail),
        1 => Just(Addresses::NxDomain),
    ];
    (
        prop::sample::select(vec![10u16, 10, 20, 30, 0]),
        addresses,
        prop::bool::weighted(0.1),
        fault(),
        prop::bool::weighted(if queue { 0.5 } else { 0.0 }),
        prop::bool::weighted(if queue { 0.15 } else { 0.0 }),
        0u8..16,
        0u8..16,
    )
        .prop_map(
            |(preference, addresses, cname, fault, windowed, greylist, offers, after)| HostSpec {
                preference,
                addresses,
                cname,
                fault,
                windowed,
                greylist,
                offers,
                offers_after_tls: after,
            },
        )
}

fn domain(queue: bool) -> impl Strategy<Value = DomainSpec> {
    let answer = prop_oneof![
        20 => Just(MxAnswer::Records),
        1 => Just(MxAnswer::NullMx),
        1 => Just(MxAnswer::NoData),
        1 => Just(MxAnswer::NxDomain),
        1 => Just(MxAnswer::ServFail),
        1 => Just(MxAnswer::Timeout),
    ];
    (
        answer,
        prop::bool::weighted(0.1),
        prop::collection::vec(host(queue), 1..=8),
        1u8..=2,
    )
        .prop_map(|(answer, alias, hosts, recipients)| DomainSpec {
            answer,
            alias,
            hosts,
            recipients,
        })
}

/// A generated world; `queue` makes it a queue world.
pub fn spec(queue: bool) -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec(domain(queue), 1..=2),
        if queue { 1u8..=3 } else { 1u8..=1 },
        prop_oneof![6 => Just(0u8), 1 => 0u8..16],
        prop_oneof![3 => Just(0u8), 1 => 0u8..16],
        prop::option::weighted(0.1, (0u8..2, 0u8..8)),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            move |(domains, messages, requires, wants, client_is, utf8_recipient)| {
                let client_is = client_is.and_then(|(d, h)| {
                    let domain = domains.get(usize::from(d))?;
                    (usize::from(h) < domain.hosts.len()).then_some((d, h))
                });
                Spec {
                    domains,
                    queue,
                    messages,
                    requires,
                    wants,
                    client_is,
                    utf8_recipient,
                }
            },
        )
}

/// A generated world, single-pass or queue, in proportions the search uses.
pub fn any_spec() -> impl Strategy<Value = Spec> {
    prop_oneof![3 => spec(false), 1 => spec(true)]
}

fn name(text: &str) -> Name {
    Name::parse(text).expect("generated names are valid")
}

fn mailbox(text: &str) -> Mailbox {
    Mailbox::parse(text).expect("generated mailboxes are valid")
}

fn reply(code: u16) -> Reply {
    Reply::parse(&code.to_string()).expect("generated codes lie in 200-599")
}

fn keywords(bits: u8) -> Arc<[Keyword]> {
    KEYWORDS
        .iter()
        .enumerate()
        .filter(|(index, _)| bits & (1 << index) != 0)
        .map(|(_, keyword)| Keyword::parse(keyword).expect("generated keywords are valid"))
        .collect()
}

fn keyword_names(bits: u8) -> Vec<Arc<str>> {
    KEYWORDS
        .iter()
        .enumerate()
        .filter(|(index, _)| bits & (1 << index) != 0)
        .map(|(_, keyword)| Arc::from(*keyword))
        .collect()
}

impl Spec {
    /// Every spec one step simpler than this one, most simplifying first: fewer messages,
    /// domains, hosts and recipients; then each host's fault, window, greylisting, CNAME,
    /// addresses, keywords and preference back to the plain default; then the message's
    /// keywords, the self-MX client and the internationalized recipient. The search's
    /// minimizer tries them in order after proptest's shrinking, so a written world keeps only
    /// what its failure needs.
    pub fn simpler(&self) -> Vec<Spec> {
        let mut out = Vec::new();
        let mut push = |mut spec: Spec| {
            if let Some((d, h)) = spec.client_is
                && spec
                    .domains
                    .get(usize::from(d))
                    .is_none_or(|domain| usize::from(h) >= domain.hosts.len())
            {
                spec.client_is = None;
            }
            if spec != *self {
                out.push(spec);
            }
        };
        if self.queue {
            push(Spec {
                queue: false,
                messages: 1,
                ..self.clone()
            });
        }
        if self.messages > 1 {
            push(Spec {
                messages: self.messages - 1,
                ..self.clone()
            });
        }
        for d in 0..self.domains.len() {
            if self.domains.len() > 1 {
                let mut spec = self.clone();
                spec.domains.remove(d);
                spec.client_is = None;
                push(spec);
            }
            let domain = &self.domains[d];
            for h in 0..domain.hosts.len() {
                if domain.hosts.len() > 1 {
                    let mut spec = self.clone();
                    spec.domains[d].hosts.remove(h);
                    if spec
                        .client_is
                        .is_some_and(|(cd, ch)| usize::from(cd) == d && usize::from(ch) >= h)
                    {
                        spec.client_is = None;
                    }
                    push(spec);
                }
            }
            let mut with = |change: &dyn Fn(&mut DomainSpec)| {
                let mut spec = self.clone();
                change(&mut spec.domains[d]);
                push(spec);
            };
            with(&|domain| domain.recipients = 1);
            with(&|domain| domain.alias = false);
            with(&|domain| domain.answer = MxAnswer::Records);
            for h in 0..domain.hosts.len() {
                let mut host = |change: &dyn Fn(&mut HostSpec)| {
                    let mut spec = self.clone();
                    change(&mut spec.domains[d].hosts[h]);
                    push(spec);
                };
                host(&|host| host.fault = Fault::None);
                host(&|host| host.windowed = false);
                host(&|host| host.greylist = false);
                host(&|host| host.cname = false);
                host(&|host| host.addresses = Addresses::One);
                host(&|host| host.offers = 0);
                host(&|host| host.offers_after_tls = 0);
                for bit in 0..KEYWORDS.len() {
                    host(&|host| host.offers &= !(1 << bit));
                    host(&|host| host.offers_after_tls &= !(1 << bit));
                }
                host(&|host| host.preference = 10);
            }
        }
        let mut message = |change: &dyn Fn(&mut Spec)| {
            let mut spec = self.clone();
            change(&mut spec);
            push(spec);
        };
        message(&|spec| spec.requires = 0);
        message(&|spec| spec.wants = 0);
        for bit in 0..KEYWORDS.len() {
            message(&|spec| spec.requires &= !(1 << bit));
            message(&|spec| spec.wants &= !(1 << bit));
        }
        message(&|spec| spec.client_is = None);
        message(&|spec| spec.utf8_recipient = false);
        out
    }

    /// The recipient domain `index` (`d1.example`, …).
    pub fn domain_name(index: usize) -> String {
        format!("d{}.example", index + 1)
    }

    /// The MX target name of host `host` of domain `domain`.
    pub fn host_name(domain: usize, host: usize) -> String {
        format!("mx{}.d{}.example", host + 1, domain + 1)
    }

    /// The world as a scenario. `title` is its one line.
    pub fn scenario(&self, title: &str) -> Scenario {
        let mut zone = Zone::default();
        let mut servers = Vec::new();
        let mut recipients = Vec::new();
        let mut client_name = DEFAULT_CLIENT_NAME.to_owned();
        let mut next_v4 = 0u32;
        let mut next_v6 = 0u16;
        let mut v4 = || {
            next_v4 += 1;
            let [a, b, c] = match next_v4 {
                1..=254 => [192, 0, 2],
                255..=508 => [198, 51, 100],
                _ => [203, 0, 113],
            };
            let d = ((next_v4 - 1) % 254 + 1) as u8;
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        };
        let mut v6 = || {
            next_v6 += 1;
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, next_v6))
        };
        for (d, domain) in self.domains.iter().enumerate() {
            let domain_name = Spec::domain_name(d);
            for r in 0..domain.recipients {
                let local = if d == 0 && r == 0 && self.utf8_recipient {
                    "δοκιμή"
                } else if r == 0 {
                    "user"
                } else {
                    "other"
                };
                recipients.push(mailbox(&format!("{local}@{domain_name}")));
            }
            // The name that holds the MX records: the domain, or its alias target.
            let holder = if domain.alias {
                let target = format!("mail.d{}.example", d + 1);
                zone.names.insert(
                    name(&domain_name),
                    ZoneName::Records(NameRecords {
                        base: RecordSets {
                            cname: Some(Ok(name(&target))),
                            ..RecordSets::default()
                        },
                        during: Vec::new(),
                    }),
                );
                target
            } else {
                domain_name.clone()
            };
            let mut holder_sets = RecordSets::default();
            match domain.answer {
                MxAnswer::Records => {
                    let records: Vec<Mx> = domain
                        .hosts
                        .iter()
                        .enumerate()
                        .map(|(h, host)| {
                            Mx::parse(&format!("{} {}", host.preference, Spec::host_name(d, h)))
                                .expect("generated MX records are valid")
                        })
                        .collect();
                    holder_sets.mx = Some(RecordSet::Records(records.into()));
                }
                MxAnswer::NullMx => {
                    holder_sets.mx = Some(RecordSet::Records(
                        vec![Mx::parse("0 .").expect("the null MX is valid")].into(),
                    ));
                }
                MxAnswer::NoData => {}
                MxAnswer::NxDomain => {
                    holder_sets.mx = Some(RecordSet::Failure(DnsFailure::NxDomain));
                }
                MxAnswer::ServFail => {
                    holder_sets.mx = Some(RecordSet::Failure(DnsFailure::ServFail));
                }
                MxAnswer::Timeout => {
                    holder_sets.mx = Some(RecordSet::Failure(DnsFailure::Timeout));
                }
            }
            // Under the implicit MX the domain's own address is the first host's server.
            let hosts: Vec<(String, &HostSpec)> = match domain.answer {
                MxAnswer::Records => domain
                    .hosts
                    .iter()
                    .enumerate()
                    .map(|(h, host)| (Spec::host_name(d, h), host))
                    .collect(),
                MxAnswer::NoData => vec![(holder.clone(), &domain.hosts[0])],
                _ => Vec::new(),
            };
            let mut holder_written = false;
            for (h, (target, host)) in hosts.into_iter().enumerate() {
                // An MX target that is a CNAME points at the host's real name.
                let real = if host.cname && target != holder {
                    let real = format!("real-{target}");
                    zone.names.insert(
                        name(&target),
                        ZoneName::Records(NameRecords {
                            base: RecordSets {
                                cname: Some(Ok(name(&real))),
                                ..RecordSets::default()
                            },
                            during: Vec::new(),
                        }),
                    );
                    real
                } else {
                    target.clone()
                };
                let mut sets = if real == holder {
                    holder_written = true;
                    std::mem::take(&mut holder_sets)
                } else {
                    RecordSets::default()
                };
                let mut listen = Vec::new();
                match host.addresses {
                    Addresses::One => listen.push(v4()),
                    Addresses::Two => listen.extend([v4(), v4()]),
                    Addresses::V6Only => listen.push(v6()),
                    Addresses::Dual => listen.extend([v4(), v6()]),
                    Addresses::ServFail => sets.a = Some(RecordSet::Failure(DnsFailure::ServFail)),
                    Addresses::NxDomain if real != holder => {
                        zone.names.insert(name(&real), ZoneName::NxDomain);
                        continue;
                    }
                    Addresses::NxDomain => sets.a = Some(RecordSet::Records(Arc::from([]))),
                }
                let (a, aaaa): (Vec<IpAddr>, Vec<IpAddr>) =
                    listen.iter().partition(|address| address.is_ipv4());
                if !a.is_empty() {
                    sets.a = Some(RecordSet::Records(a.into()));
                }
                if !aaaa.is_empty() {
                    sets.aaaa = Some(RecordSet::Records(aaaa.into()));
                }
                zone.names.insert(
                    name(&real),
                    ZoneName::Records(NameRecords {
                        base: sets,
                        during: Vec::new(),
                    }),
                );
                if self.client_is == Some((d as u8, h as u8)) {
                    client_name = real.clone();
                }
                if listen.is_empty() {
                    continue;
                }
                servers.push(self.server(&real, listen, host));
            }
            if !holder_written {
                zone.names.insert(
                    name(&holder),
                    ZoneName::Records(NameRecords {
                        base: holder_sets,
                        during: Vec::new(),
                    }),
                );
            }
            if domain.answer == MxAnswer::NxDomain {
                zone.names.insert(name(&holder), ZoneName::NxDomain);
            }
        }
        let to: Arc<[Mailbox]> = recipients.into();
        let messages = (0..self.messages.max(1))
            .map(|index| Message {
                at: Instant::START.after(Duration::minutes(20 * u64::from(index))),
                from: mailbox(DEFAULT_FROM),
                to: to.clone(),
                size: None,
                requires: keyword_names(self.requires),
                wants: keyword_names(self.wants & !self.requires),
            })
            .collect();
        Scenario {
            title: title.to_owned(),
            refs: Vec::new(),
            description: None,
            seed: None,
            client: ClientIdentity {
                name: name(&client_name),
                addresses: Vec::new(),
            },
            messages,
            queue: self.queue,
            horizon: self.queue.then_some(Duration::days(2)),
            zone,
            servers,
            expectations: Vec::new(),
            warnings: Default::default(),
        }
    }

    fn server(&self, real: &str, addresses: Vec<IpAddr>, host: &HostSpec) -> Server {
        let mut fault = Behaviour::default();
        match host.fault {
            Fault::None => {}
            Fault::Connect(mode) => fault.connect = Some(mode),
            Fault::Greeting(code) => fault.greeting = Some(Greeting::Reply(reply(code))),
            Fault::SilentGreeting => fault.greeting = Some(Greeting::Silent),
            Fault::Ehlo(code) => fault.ehlo_reply = Some(reply(code)),
            Fault::StartTls(code) => fault.starttls = Some(StartTls::Reply(reply(code))),
            Fault::Handshake => fault.starttls = Some(StartTls::HandshakeFail),
            Fault::Mail(code) => fault.mail = Some(reply(code)),
            Fault::Rcpt(code) => {
                fault.rcpt = Some(RcptReplies {
                    by_recipient: Vec::new(),
                    default: Some(reply(code)),
                });
            }
            Fault::Data(code) => fault.data = Some(reply(code)),
            Fault::EndOfData(code) => fault.end_of_data = Some(EndOfData::Reply(reply(code))),
            Fault::Lost => fault.end_of_data = Some(EndOfData::Lost),
            Fault::Slow(command) => fault.delays[command as usize] = Some(Duration::minutes(6)),
            Fault::Drop(command) => fault.drop_after = Some(command),
        }
        let mut base = Behaviour::default();
        let offers = keywords(host.offers);
        if !offers.is_empty() {
            base.ehlo = Some(offers.clone());
        }
        if offers.iter().any(|keyword| keyword.is("STARTTLS")) {
            base.ehlo_after_tls = Some(keywords(host.offers_after_tls & !0b10));
        }
        if host.greylist && self.queue {
            base.greylist = Some(Greylist {
                delay: Duration::minutes(5),
            });
        }
        let during = if host.windowed && self.queue && host.fault != Fault::None {
            vec![Window {
                from: Instant::START,
                until: Some(Instant::START.after(Duration::hours(3))),
                patch: fault,
            }]
        } else {
            merge(&mut base, fault);
            Vec::new()
        };
        Server {
            key: ServerKey::Name(name(real)),
            at: Position::default(),
            addresses,
            base,
            during,
        }
    }
}

/// Puts the fault's fields into the base behaviour (they never overlap: the base sets only
/// keywords and greylisting).
fn merge(base: &mut Behaviour, fault: Behaviour) {
    let Behaviour {
        connect,
        greeting,
        ehlo_reply,
        starttls,
        mail,
        rcpt,
        data,
        end_of_data,
        delays,
        drop_after,
        ..
    } = fault;
    base.connect = connect;
    base.greeting = greeting;
    base.ehlo_reply = ehlo_reply;
    base.starttls = starttls;
    base.mail = mail;
    base.rcpt = rcpt;
    base.data = data;
    base.end_of_data = end_of_data;
    base.delays = delays;
    base.drop_after = drop_after;
}

/// Renames every generated host consistently: `mx3.d1.example` becomes `relay3.d1.example`, and
/// a real name behind a CNAME likewise. A metamorphic relation: only names may change.
pub fn renamed(scenario: &Scenario) -> Scenario {
    let rename = |text: &str| text.replace("mx", "relay");
    let rename_name = |n: &Name| name(&rename(n.as_str()));
    let mut out = scenario.clone();
    out.client.name = rename_name(&scenario.client.name);
    let mut names = BTreeMap::new();
    for (key, value) in &scenario.zone.names {
        let value = match value {
            ZoneName::NxDomain => ZoneName::NxDomain,
            ZoneName::Records(records) => {
                let mut records = records.clone();
                if let Some(RecordSet::Records(list)) = &records.base.mx {
                    let list: Vec<Mx> = list
                        .iter()
                        .map(|mx| Mx {
                            preference: mx.preference,
                            exchange: if mx.is_null() {
                                mx.exchange.clone()
                            } else {
                                rename_name(&mx.exchange)
                            },
                        })
                        .collect();
                    records.base.mx = Some(RecordSet::Records(list.into()));
                }
                if let Some(Ok(target)) = &records.base.cname {
                    records.base.cname = Some(Ok(rename_name(target)));
                }
                ZoneName::Records(records)
            }
        };
        names.insert(rename_name(key), value);
    }
    out.zone.names = names;
    for server in &mut out.servers {
        if let ServerKey::Name(n) = &server.key {
            server.key = ServerKey::Name(rename_name(n));
        }
    }
    out
}

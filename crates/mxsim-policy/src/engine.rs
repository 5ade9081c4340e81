//! The one engine that runs any [`Settings`]: find the candidates, then try them in order.
//!
//! A session has two halves. [`Attempt::open`] connects, waits for the greeting, says EHLO
//! (or HELO) and negotiates TLS; it has no effect on recipients, so the same code probes other
//! hosts while a session is parked (the search for wanted keywords). [`Attempt::use_session`]
//! checks required keywords and SIZE, then runs the transaction, applying the action map to
//! every failure.
//!
//! It is ordinary client code: it sees the world only through the model's traits and chooses
//! its own timeouts, each through `World::timeout` (virtual under the simulator's paused clock).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use mxsim_model::dns::{DnsAnswer, Mx, RecordType};
use mxsim_model::name::{Mailbox, Name};
use mxsim_model::outcome::{Disposition, RecipientOutcome};
use mxsim_model::smtp::{Keyword, Reply, ReplyClass};
use mxsim_model::time::{Duration, Instant};
use mxsim_model::world::{Job, LocalFuture, OrderLabel, Policy, Response, World};

use crate::settings::{
    Action, AddressOrder, EqualOrder, Failure, Final, Join, NoAddress, SelfMx, Settings, Stage,
};

/// A policy run by the engine.
#[derive(Clone, Debug)]
pub struct Engine {
    /// What it does.
    pub settings: Settings,
}

impl<W: World> Policy<W> for Engine {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn deliver<'a>(&'a self, world: &'a W, job: Job<'a>) -> LocalFuture<'a, Vec<RecipientOutcome>> {
        Box::pin(deliver(&self.settings, world, job))
    }

    fn queue(&self) -> mxsim_model::queue::QueueSettings {
        self.settings.queue.clone()
    }
}

/// One address to try.
#[derive(Clone, Debug)]
struct Candidate {
    host: Name,
    preference: u16,
    address: IpAddr,
}

impl Candidate {
    fn describe(&self) -> String {
        format!("{} [{}]", self.host, self.address)
    }
}

/// Where each recipient of the message stands.
struct Ledger {
    message: usize,
    recipients: Arc<[Mailbox]>,
    results: Vec<Option<RecipientOutcome>>,
}

async fn deliver<W: World>(settings: &Settings, world: &W, job: Job<'_>) -> Vec<RecipientOutcome> {
    let message = job.message;
    let mut ledger = Ledger {
        message: job.message_index,
        recipients: message.to.clone(),
        results: vec![None; message.to.len()],
    };
    // The recipient domains in order of first appearance, each with its recipients: one pass,
    // indexed by domain, so a message with many recipients or many domains stays linear.
    let mut domains: Vec<(&Name, Vec<usize>)> = Vec::new();
    let mut one_domain = None;
    if let Some(first) = message.to.first()
        && message.to.iter().all(|to| to.domain() == first.domain())
    {
        one_domain = Some((first.domain(), (0..message.to.len()).collect()));
    } else {
        let mut slots: BTreeMap<&Name, usize> = BTreeMap::new();
        for (index, recipient) in message.to.iter().enumerate() {
            let slot = *slots.entry(recipient.domain()).or_insert_with(|| {
                domains.push((recipient.domain(), Vec::new()));
                domains.len() - 1
            });
            domains[slot].1.push(index);
        }
    }
    for (domain, pending) in one_domain.into_iter().chain(domains) {
        // `join: domain`: wait for another attempt for this domain in flight to end, and hold
        // the domain while this one runs (dropped at the end of this domain's turn, before the
        // next domain is joined, so no attempt ever waits while holding one).
        let _in_flight = match settings.join {
            Join::Domain => Some(world.join(domain, job.message_index).await),
            Join::None => None,
        };
        // `reuse: {on_demand: true}`: the attempt counts busy for its domain while it runs, and
        // takes and parks cached sessions only when back-to-back attempts turned caching on.
        let (_busy, caching) = match settings.reuse {
            Some(reuse) if reuse.on_demand => {
                let (busy, caching) = world.dispatch(domain);
                (Some(busy), caching)
            }
            _ => (None, true),
        };
        let ceiling = Cell::new(None);
        let mut attempt = Attempt {
            settings,
            world,
            job,
            ledger: &mut ledger,
            pending,
            last_error: String::new(),
            sessions: 0,
            ceiling: &ceiling,
            missing: None,
            same_preference_only: None,
            unasked: false,
            capable: false,
            current: None,
            connected: false,
            domain: domain.clone(),
            reusable: false,
            reused: None,
            caching,
        };
        attempt.run(domain).await;
    }
    ledger
        .results
        .into_iter()
        .map(|outcome| outcome.expect("every recipient is settled by its domain's attempt"))
        .collect()
}

/// What a failed lookup means for the attempt.
enum Stop {
    Bounce(String),
    Defer(String),
}

/// What a session tells the candidate loop; when recipients disagree, the larger wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Flow {
    NextAddress,
    NextHost,
    Stop,
}

/// Whether the current candidate is the last one, and whether its host is the last host.
#[derive(Clone, Copy, Debug)]
struct Last {
    candidate: bool,
    host: bool,
}

/// Why opening a session failed, before any recipient was touched.
struct Failed {
    stage: Stage,
    failure: Failure,
    reason: String,
    reply: Option<Reply>,
    /// True when only optional (opportunistic) TLS failed.
    tls_optional: bool,
}

/// An open session past EHLO (and TLS).
struct Opened<S> {
    session: S,
    keywords: Arc<[Keyword]>,
    index: usize,
}

/// A step's result: a reply, or why there is none.
enum Got<R> {
    Reply(R),
    Timeout,
    Closed,
}

async fn ask<R>(
    world: &impl World,
    limit: Duration,
    future: impl Future<Output = Response<R>>,
) -> Got<R> {
    match world.timeout(limit, future).await {
        Some(Response::Reply(reply)) => Got::Reply(reply),
        Some(Response::Closed) => Got::Closed,
        None => Got::Timeout,
    }
}

fn classify(reply: &Reply, expected: ReplyClass) -> Result<(), Failure> {
    match reply.class() {
        class if class == expected => Ok(()),
        ReplyClass::Permanent => Err(Failure::Permanent),
        _ => Err(Failure::Transient),
    }
}

/// The delivery attempt for one recipient domain.
struct Attempt<'a, 'j, W: World> {
    settings: &'a Settings,
    world: &'a W,
    job: Job<'j>,
    ledger: &'a mut Ledger,
    /// Recipients of this domain not yet settled.
    pending: Vec<usize>,
    last_error: String,
    /// Sessions that reached MAIL.
    sessions: u32,
    /// With `same_or_better_after_ehlo`: the best preference that answered EHLO (a cell, so
    /// that sessions opened in parallel can lower it while the attempt uses another).
    ceiling: &'a Cell<Option<u16>>,
    /// The last candidate lacked a required keyword: what to do if nothing better follows.
    missing: Option<(Final, String)>,
    /// A `same-preference` keyword search confines the loop to this preference.
    same_preference_only: Option<u16>,
    /// Some host could not be asked for its keywords: it failed before its EHLO was answered.
    unasked: bool,
    /// Some host offered every required keyword, and the walk went on past it (it failed
    /// transiently, or its session ended early): a later host's missing keyword does not make
    /// the recipients still pending undeliverable.
    capable: bool,
    /// The address of the candidate in use, for retry records.
    current: Option<IpAddr>,
    /// Some session reached EHLO in this domain's attempt.
    connected: bool,
    /// The recipient domain of this attempt.
    domain: Name,
    /// The last transaction ended well and its session may go to the connection cache.
    reusable: bool,
    /// The address of a session taken from the cache by domain that did not settle everyone:
    /// the MX walk after it does not try that address again.
    reused: Option<IpAddr>,
    /// Whether this attempt may take cached sessions and park its own (always, unless
    /// `reuse.on_demand` and the world's `dispatch` said otherwise).
    caching: bool,
}

impl<W: World> Attempt<'_, '_, W> {
    async fn run(&mut self, domain: &Name) {
        if self.held_back(domain) {
            return;
        }
        if self.reuse_for_domain().await {
            return;
        }
        let candidates = match self.candidates(domain).await {
            Ok(candidates) => candidates,
            Err(Stop::Bounce(reason)) => {
                return self.settle_pending(|| Disposition::Bounced {
                    reason: reason.clone(),
                    reply: None,
                });
            }
            Err(Stop::Defer(reason)) => {
                return self.settle_pending(|| Disposition::Deferred {
                    reason: reason.clone(),
                });
            }
        };
        let mut tried = Tried::new(&candidates);
        if let Some(address) = self.reused {
            for (index, candidate) in candidates.iter().enumerate() {
                if candidate.address == address {
                    tried.mark(index);
                }
            }
        }
        let (attempts, stopped) = match self.settings.parallel {
            Some(parallel) => self.walk_parallel(&candidates, &mut tried, parallel).await,
            None => self.walk(&candidates, &mut tried).await,
        };
        self.settle_destination(domain, attempts, self.connected);
        if self.pending.is_empty() {
            // Everyone is settled: no reason to write for anyone.
            return;
        }
        let reason = match (&self.missing, stopped) {
            // Found by `mxsim explore`: a host that offers the keyword answered RCPT 452, then
            // another lacked the keyword; bouncing then breaks R6/R1 (a 4yz is transient).
            (Some((_, reason)), false) if self.capable => {
                format!(
                    "{reason}; a host that offers it failed transiently, so the message stays queued"
                )
            }
            (Some((Final::Bounce, reason)), false) => {
                let reason = reason.clone();
                return self.settle_pending(|| Disposition::Bounced {
                    reason: reason.clone(),
                    reply: None,
                });
            }
            (Some((Final::Defer, reason)), false) => reason.clone(),
            (Some((Final::Requeue, reason)), false) if self.unasked => {
                format!("{reason}; some host could not be asked, so the message is requeued")
            }
            (Some((Final::Requeue, reason)), false) => {
                let reason = format!("{reason}; every host that answered lacks it");
                return self.settle_pending(|| Disposition::Bounced {
                    reason: reason.clone(),
                    reply: None,
                });
            }
            (_, true) => format!("attempt stopped: {}", self.last_error),
            _ if candidates.is_empty() => "no address to try".to_owned(),
            _ => format!(
                "tried {attempts} of {} addresses; last error: {}",
                candidates.len(),
                self.last_error
            ),
        };
        self.settle_pending(|| Disposition::Deferred {
            reason: reason.clone(),
        });
    }

    /// The candidate loop, one connection at a time. Returns the connection attempts made and
    /// whether an action stopped the attempt.
    async fn walk(&mut self, candidates: &[Candidate], tried: &mut Tried) -> (usize, bool) {
        let mut stopped = false;
        let mut attempts = 0;
        while !self.pending.is_empty() {
            let Some(index) = self.next_candidate(candidates, tried) else {
                break;
            };
            tried.mark(index);
            // A retry record in force skips the address without a connection: it was not
            // asked, and it does not count as an attempt (Exim: hosts in backoff do not count
            // towards `hosts_max_try`).
            if self.skip_held(&candidates[index]) {
                continue;
            }
            self.current = Some(candidates[index].address);
            attempts += 1;
            // The wanted-keyword search may have moved the transaction to another host: a
            // `next-host` skips the host actually used.
            let (flow, used) = self.try_candidate(candidates, index, tried).await;
            match flow {
                Flow::NextAddress => {}
                Flow::NextHost => tried.mark_host(candidates, &candidates[used].host),
                Flow::Stop => {
                    stopped = true;
                    break;
                }
            }
            if self
                .settings
                .limits
                .sessions
                .is_some_and(|limit| self.sessions >= limit)
            {
                break;
            }
        }
        (attempts, stopped)
    }

    /// The next candidate the loop may use: not tried, within the ceiling and any
    /// same-preference search.
    fn next_candidate(&self, candidates: &[Candidate], tried: &Tried) -> Option<usize> {
        tried
            .untried()
            .find(|&index| self.eligible(&candidates[index]))
    }

    fn eligible(&self, candidate: &Candidate) -> bool {
        self.ceiling
            .get()
            .is_none_or(|ceiling| candidate.preference <= ceiling)
            && self
                .same_preference_only
                .is_none_or(|preference| candidate.preference == preference)
    }

    /// Whether any candidate, and any candidate of another host, may follow. With `session`,
    /// this candidate's session counts towards `limits.sessions` (it reached MAIL); handshake
    /// failures do not count, so the session limit cannot make them final.
    fn last(&self, candidates: &[Candidate], tried: &Tried, host: &Name, session: bool) -> Last {
        let sessions_full = session
            && self
                .settings
                .limits
                .sessions
                .is_some_and(|limit| self.sessions + 1 >= limit);
        let remaining = |other_host_only: bool| {
            tried.untried().any(|index| {
                self.eligible(&candidates[index])
                    && (!other_host_only || candidates[index].host != *host)
            })
        };
        Last {
            candidate: sessions_full || !remaining(false),
            host: sessions_full || !remaining(true),
        }
    }

    fn settle_pending(&mut self, disposition: impl Fn() -> Disposition) {
        let everyone = std::mem::take(&mut self.pending);
        self.settle(&everyone, disposition);
    }

    fn settle(&mut self, indices: &[usize], disposition: impl Fn() -> Disposition) {
        if indices.is_empty() {
            return;
        }
        let at = self.world.now();
        for &index in indices {
            if self.ledger.results[index].is_none() {
                let outcome = RecipientOutcome {
                    message: self.ledger.message,
                    recipient: self.ledger.recipients[index].clone(),
                    at,
                    disposition: disposition(),
                };
                self.ledger.results[index] = Some(outcome);
            }
        }
        // Every index in `indices` now has its result: pending keeps those without one, which
        // is one look-up per pending recipient instead of a scan of `indices` for each.
        let results = &self.ledger.results;
        self.pending.retain(|&index| results[index].is_none());
    }

    /// Applies the action for a failure to `affected` and says what the loop does next.
    fn fail(&mut self, failed: Failed, affected: &[usize], last: Last) -> Flow {
        if let Some(address) = self.current {
            self.remember(address, &failed, affected);
        }
        let action = self.settings.actions.action(failed.stage, failed.failure);
        self.last_error = failed.reason.clone();
        self.missing = None;
        let Failed { reason, reply, .. } = failed;
        match action {
            Action::NextAddress => Flow::NextAddress,
            Action::NextOrBounce if !last.candidate => Flow::NextAddress,
            Action::NextHost => Flow::NextHost,
            Action::NextHostOrBounce if !last.host => Flow::NextHost,
            Action::Defer => {
                self.settle(affected, || Disposition::Deferred {
                    reason: reason.clone(),
                });
                Flow::Stop
            }
            Action::Bounce | Action::NextOrBounce | Action::NextHostOrBounce => {
                self.settle(affected, || Disposition::Bounced {
                    reason: reason.clone(),
                    reply: reply.clone(),
                });
                Flow::NextAddress
            }
        }
    }

    /// A step's wait, cut to what is left before `deadline`.
    fn wait(&self, step: Duration, deadline: Option<Instant>) -> Duration {
        match deadline {
            Some(deadline) => step.min(deadline.since(self.world.now())),
            None => step,
        }
    }
}

/// Finding the candidates: steps 1–9 of docs/rfc5321-baseline.md, with the policy's variations.
impl<W: World> Attempt<'_, '_, W> {
    async fn lookup(&self, name: &Name, record_type: RecordType) -> DnsAnswer {
        self.world
            .timeout(
                self.settings.timeouts.dns,
                self.world.lookup(name, record_type),
            )
            .await
            .unwrap_or(DnsAnswer::Timeout)
    }

    /// Follows CNAMEs from `name` for `record_type`, at most `cname_chain_max` of them.
    async fn resolve(&self, name: &Name, record_type: RecordType) -> DnsAnswer {
        let mut current = name.clone();
        for _ in 0..=self.settings.cname_chain_max {
            match self.lookup(&current, record_type).await {
                DnsAnswer::Cname(target) => current = target,
                answer => return answer,
            }
        }
        DnsAnswer::ServFail
    }

    /// The MX records of `domain`, and whether they are the implicit MX (the name itself).
    async fn mx_records(&self, domain: &Name) -> Result<(Vec<Mx>, bool), Stop> {
        let mut current = domain.clone();
        let mut chain = 0;
        loop {
            match self.lookup(&current, RecordType::Mx).await {
                DnsAnswer::Cname(target) if chain < self.settings.cname_chain_max => {
                    chain += 1;
                    current = target;
                }
                DnsAnswer::Cname(_) => {
                    return Err(Stop::Defer(format!(
                        "CNAME chain from {domain} is longer than {}",
                        self.settings.cname_chain_max
                    )));
                }
                DnsAnswer::NxDomain if !self.settings.implicit_mx_on_nxdomain => {
                    return Err(Stop::Bounce(format!("{domain} does not exist (NXDOMAIN)")));
                }
                DnsAnswer::ServFail => {
                    return Err(Stop::Defer(format!(
                        "MX lookup for {current} failed (SERVFAIL)"
                    )));
                }
                DnsAnswer::Timeout => {
                    return Err(Stop::Defer(format!("MX lookup for {current} timed out")));
                }
                DnsAnswer::NoData | DnsAnswer::NxDomain => {
                    let implicit = Mx {
                        preference: 0,
                        exchange: current,
                    };
                    return Ok((vec![implicit], true));
                }
                DnsAnswer::Addresses(_) => {
                    return Err(Stop::Defer(format!(
                        "MX lookup for {current} returned addresses"
                    )));
                }
                DnsAnswer::Mx(records) => {
                    if records.len() == 1 && records[0].is_null() {
                        if self.settings.null_mx_alone_defers {
                            return Err(Stop::Defer(format!(
                                "{domain} accepts no mail (null MX, RFC 7505), but this client dials the host \".\", which fails"
                            )));
                        }
                        return Err(Stop::Bounce(format!(
                            "{domain} accepts no mail (null MX, RFC 7505)"
                        )));
                    }
                    let usable: Vec<Mx> = records
                        .iter()
                        .filter(|record| !record.is_null())
                        .cloned()
                        .collect();
                    if usable.len() < records.len() && !self.settings.null_mx_beside_others_ignored
                    {
                        return Err(Stop::Bounce(format!(
                            "{domain} publishes a null MX (RFC 7505)"
                        )));
                    }
                    return Ok((usable, false));
                }
            }
        }
    }

    async fn candidates(&mut self, domain: &Name) -> Result<Vec<Candidate>, Stop> {
        let (records, implicit) = self.mx_records(domain).await?;
        let ordered = self.order(records);
        let mut hosts: Vec<(Mx, Vec<IpAddr>)> = Vec::with_capacity(ordered.len());
        let mut temporary_failure = false;
        if self.settings.equal_order == EqualOrder::FewestConnections {
            for (_, record, (addresses, temporary)) in self.addresses_by_completion(ordered).await {
                temporary_failure |= temporary;
                hosts.push((record, addresses));
            }
        } else {
            for record in ordered {
                let (addresses, temporary) = self.addresses(&record.exchange).await;
                temporary_failure |= temporary;
                hosts.push((record, addresses));
            }
        }
        // The client recognises itself by any of its addresses in the whole list (RFC 5321 §5.1
        // MUST) before any limit cuts hosts or addresses away.
        self.drop_self(&mut hosts)?;
        if let Some(limit) = self.settings.limits.hosts {
            hosts.truncate(limit as usize);
        }
        if let Some(limit) = self.settings.limits.addresses_per_host {
            for (_, addresses) in &mut hosts {
                addresses.truncate(limit as usize);
            }
        }
        let mut candidates: Vec<Candidate> = hosts
            .iter()
            .flat_map(|(record, addresses)| {
                addresses.iter().map(|address| Candidate {
                    host: record.exchange.clone(),
                    preference: record.preference,
                    address: *address,
                })
            })
            .collect();
        if let Some(limit) = self.settings.limits.addresses {
            candidates.truncate(limit as usize);
        }
        if candidates.is_empty() {
            let reason = format!("no MX host of {domain} has an address");
            let bounce = match self.settings.no_address {
                NoAddress::BounceIfPermanent => !temporary_failure,
                NoAddress::Defer => false,
                NoAddress::BounceIfImplicit => implicit,
            };
            return Err(if bounce {
                Stop::Bounce(reason)
            } else {
                Stop::Defer(reason)
            });
        }
        Ok(candidates)
    }

    /// Step 7: sort by preference; order each group of equal preference per the policy.
    fn order(&self, mut records: Vec<Mx>) -> Vec<Mx> {
        records.sort_by_key(|record| record.preference);
        let mut start = 0;
        while start < records.len() {
            let preference = records[start].preference;
            let end = start
                + records[start..]
                    .iter()
                    .take_while(|record| record.preference == preference)
                    .count();
            let group = &mut records[start..end];
            match self.settings.equal_order {
                EqualOrder::Random if group.len() > 1 => {
                    // Every record of the group has the same preference: ordering the records
                    // orders their hosts.
                    self.world
                        .shuffle(OrderLabel::Preference(preference), group);
                }
                EqualOrder::StableHash => {
                    group.sort_by_key(|record| stable_hash(record.exchange.as_str()))
                }
                EqualOrder::Random | EqualOrder::Dns | EqualOrder::FewestConnections => {}
            }
            start = end;
        }
        records
    }

    /// Step 9 for `fewest-connections` (OpenSMTPD): each group of equal preference in the order
    /// its hosts' address lookups completed, ties in DNS order. OpenSMTPD sends them all at once
    /// (dns.c `dns_dispatch_mx()` starts a `getaddrinfo_async()` per MX record) and mta.c
    /// (`IMSG_MTA_DNS_HOST`) inserts each resolved host after those of its preference already
    /// known; here the lookups are made one after the other, as for every policy (the trace
    /// and the time they take are the sequential ones), and each host is placed by how long its
    /// own lookups took: the order they would have completed in had they been sent together.
    async fn addresses_by_completion(
        &self,
        records: Vec<Mx>,
    ) -> Vec<(Duration, Mx, (Vec<IpAddr>, bool))> {
        let mut timed: Vec<(Duration, Mx, (Vec<IpAddr>, bool))> = Vec::with_capacity(records.len());
        for record in records {
            let start = self.world.now();
            let answer = self.addresses(&record.exchange).await;
            timed.push((self.world.now().since(start), record, answer));
        }
        // A stable sort: equal lookup times keep the sending (DNS) order.
        timed.sort_by_key(|(took, record, _)| (record.preference, *took));
        timed
    }

    /// Step 9: a host's addresses, and whether a lookup failed temporarily.
    async fn addresses(&self, host: &Name) -> (Vec<IpAddr>, bool) {
        let families = match self.settings.address_order {
            AddressOrder::Ipv4First => [RecordType::A, RecordType::Aaaa],
            AddressOrder::Ipv6First => [RecordType::Aaaa, RecordType::A],
        };
        let mut addresses = Vec::new();
        let mut temporary = false;
        for family in families {
            match self.resolve(host, family).await {
                DnsAnswer::Addresses(list) => addresses.extend(list.iter().copied()),
                DnsAnswer::ServFail | DnsAnswer::Timeout => temporary = true,
                _ => {}
            }
        }
        let temporary = temporary && addresses.is_empty();
        (addresses, temporary)
    }

    /// Step 8: the client's own host in the list, per the policy's `self_mx`.
    fn drop_self(&self, hosts: &mut Vec<(Mx, Vec<IpAddr>)>) -> Result<(), Stop> {
        let client = self.job.client;
        let is_self = |(record, addresses): &(Mx, Vec<IpAddr>)| {
            record.exchange == client.name
                || addresses
                    .iter()
                    .any(|address| client.addresses.contains(address))
        };
        let Some(own) = hosts
            .iter()
            .filter(|host| is_self(host))
            .map(|(record, _)| record.preference)
            .min()
        else {
            return Ok(());
        };
        match self.settings.self_mx {
            SelfMx::Ignore => return Ok(()),
            SelfMx::SkipSelf => hosts.retain(|host| !is_self(host)),
            SelfMx::Truncate | SelfMx::TruncateOrDefer => {
                hosts.retain(|(record, _)| record.preference < own)
            }
        }
        if !hosts.is_empty() {
            return Ok(());
        }
        let reason = format!(
            "{} is itself the best MX: mail would loop (RFC 5321 §5.1)",
            client.name
        );
        Err(if self.settings.self_mx == SelfMx::TruncateOrDefer {
            Stop::Defer(reason)
        } else {
            Stop::Bounce(reason)
        })
    }
}

/// FNV-1a: a fixed, portable hash, so a `stable-hash` order is the same on every machine.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

mod memory;
mod parallel;
mod session;

/// Which candidates an attempt has used, kept so that every question about them costs what it
/// answers, not the length of the list: a world with thousands of MX hosts must cost linear
/// time per attempt (issue 6). Marks only ever go from untried to tried, so the first untried
/// index only moves forward.
pub(crate) struct Tried {
    flags: Vec<bool>,
    first_untried: usize,
    /// The candidates of each host, for `next-host`; built on first use, so a run that never
    /// skips a host allocates nothing for it.
    by_host: Option<BTreeMap<Name, Vec<usize>>>,
}

impl Tried {
    fn new(candidates: &[Candidate]) -> Tried {
        Tried {
            flags: vec![false; candidates.len()],
            first_untried: 0,
            by_host: None,
        }
    }

    /// True when candidate `index` was used (or skipped with its host).
    pub(crate) fn is_tried(&self, index: usize) -> bool {
        self.flags[index]
    }

    /// Marks candidate `index` used.
    pub(crate) fn mark(&mut self, index: usize) {
        self.flags[index] = true;
        while self.flags.get(self.first_untried) == Some(&true) {
            self.first_untried += 1;
        }
    }

    /// Marks every candidate of `host` used.
    fn mark_host(&mut self, candidates: &[Candidate], host: &Name) {
        let by_host = self.by_host.get_or_insert_with(|| {
            let mut by_host: BTreeMap<Name, Vec<usize>> = BTreeMap::new();
            for (index, candidate) in candidates.iter().enumerate() {
                by_host
                    .entry(candidate.host.clone())
                    .or_default()
                    .push(index);
            }
            by_host
        });
        let indices = by_host.get(host).cloned().unwrap_or_default();
        for index in indices {
            self.mark(index);
        }
    }

    /// The untried candidates, in order.
    fn untried(&self) -> impl Iterator<Item = usize> + '_ {
        (self.first_untried..self.flags.len()).filter(|&index| !self.flags[index])
    }
}

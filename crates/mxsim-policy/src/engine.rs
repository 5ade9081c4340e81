//! The one engine that runs any [`Settings`]: find the candidates, then try them in order,
//! one SMTP session each, applying the action map to every failure.
//!
//! It is ordinary client code: it sees the world only through the model's traits and chooses
//! its own timeouts with `tokio::time::timeout` (virtual under the simulator's paused clock).

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use mxsim_model::dns::{DnsAnswer, Mx, RecordType};
use mxsim_model::name::{Mailbox, Name};
use mxsim_model::outcome::{Disposition, RecipientOutcome};
use mxsim_model::scenario::Message;
use mxsim_model::smtp::{Command, Keyword, Reply, ReplyClass, find_keyword};
use mxsim_model::time::Duration;
use mxsim_model::world::{
    Connect, Handshake, Job, LocalFuture, MailParameters, Policy, Response, Session, World,
};

use crate::settings::{
    Action, AddressOrder, EqualOrder, Failure, MissingRequired, MissingWanted, Settings, Stage,
    TlsUse,
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
}

/// One host of the candidate list with its addresses.
struct Host {
    name: Name,
    preference: u16,
    addresses: Vec<IpAddr>,
}

/// One address to try.
#[derive(Clone)]
struct Candidate {
    host: Name,
    address: IpAddr,
}

/// Where each recipient of the message stands.
struct Ledger {
    message: usize,
    recipients: Arc<[Mailbox]>,
    results: Vec<Option<RecipientOutcome>>,
}

impl Ledger {
    fn settle<W: World>(&mut self, world: &W, index: usize, disposition: Disposition) {
        if self.results[index].is_none() {
            let outcome = RecipientOutcome {
                message: self.message,
                recipient: self.recipients[index].clone(),
                at: world.now(),
                disposition,
            };
            self.results[index] = Some(outcome);
        }
    }
}

async fn deliver<W: World>(settings: &Settings, world: &W, job: Job<'_>) -> Vec<RecipientOutcome> {
    let message = job.message;
    let mut ledger = Ledger {
        message: job.message_index,
        recipients: message.to.clone(),
        results: vec![None; message.to.len()],
    };
    let mut domains: Vec<&Name> = Vec::new();
    for recipient in message.to.iter() {
        if !domains.contains(&recipient.domain()) {
            domains.push(recipient.domain());
        }
    }
    for domain in domains {
        let pending: Vec<usize> = (0..message.to.len())
            .filter(|&index| message.to[index].domain() == domain)
            .collect();
        let mut attempt = Attempt {
            settings,
            world,
            job,
            ledger: &mut ledger,
            pending,
            last_error: String::new(),
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

/// What a session tells the candidate loop; when several recipients disagree, the larger wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Flow {
    NextAddress,
    NextHost,
    Stop,
}

/// The delivery attempt for one recipient domain.
struct Attempt<'a, 'j, W: World> {
    settings: &'a Settings,
    world: &'a W,
    job: Job<'j>,
    ledger: &'a mut Ledger,
    pending: Vec<usize>,
    last_error: String,
}

/// A step's result: a reply, or why there is none.
enum Got<R> {
    Reply(R),
    Timeout,
    Closed,
}

async fn ask<R>(limit: Duration, future: impl Future<Output = Response<R>>) -> Got<R> {
    match tokio::time::timeout(limit.to_std(), future).await {
        Ok(Response::Reply(reply)) => Got::Reply(reply),
        Ok(Response::Closed) => Got::Closed,
        Err(_) => Got::Timeout,
    }
}

impl<W: World> Attempt<'_, '_, W> {
    async fn run(&mut self, domain: &Name) {
        let hosts = match self.candidates(domain).await {
            Ok(hosts) => hosts,
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
        let candidates: Vec<Candidate> = hosts
            .iter()
            .flat_map(|host| {
                host.addresses.iter().map(|address| Candidate {
                    host: host.name.clone(),
                    address: *address,
                })
            })
            .collect();
        let limit = self
            .settings
            .addresses_max
            .map_or(candidates.len(), |max| (max as usize).min(candidates.len()));
        let mut index = 0;
        while index < limit && !self.pending.is_empty() {
            let candidate = &candidates[index];
            let last = index + 1 == limit;
            match self.session(candidate, last).await {
                Flow::NextAddress => index += 1,
                Flow::NextHost => {
                    index += 1;
                    while index < limit && candidates[index].host == candidate.host {
                        index += 1;
                    }
                }
                Flow::Stop => {
                    let reason = format!("attempt stopped: {}", self.last_error);
                    return self.settle_pending(|| Disposition::Deferred {
                        reason: reason.clone(),
                    });
                }
            }
        }
        let reason = format!(
            "tried {index} of {} addresses; last error: {}",
            candidates.len(),
            self.last_error
        );
        self.settle_pending(|| Disposition::Deferred {
            reason: reason.clone(),
        });
    }

    fn settle_pending(&mut self, disposition: impl Fn() -> Disposition) {
        for index in std::mem::take(&mut self.pending) {
            self.ledger.settle(self.world, index, disposition());
        }
    }

    fn settle(&mut self, indices: &[usize], disposition: impl Fn() -> Disposition) {
        for &index in indices {
            self.ledger.settle(self.world, index, disposition());
        }
        self.pending.retain(|index| !indices.contains(index));
    }

    async fn lookup(&self, name: &Name, record_type: RecordType) -> DnsAnswer {
        match tokio::time::timeout(
            self.settings.timeouts.dns.to_std(),
            self.world.lookup(name, record_type),
        )
        .await
        {
            Ok(answer) => answer,
            Err(_) => DnsAnswer::Timeout,
        }
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

    /// Steps 1–9 of the candidate list.
    async fn candidates(&mut self, domain: &Name) -> Result<Vec<Host>, Stop> {
        let mut current = domain.clone();
        let mut chain = 0;
        let records: Vec<Mx> = loop {
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
                DnsAnswer::NxDomain => {
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
                DnsAnswer::NoData => {
                    break vec![Mx {
                        preference: 0,
                        exchange: current.clone(),
                    }];
                }
                DnsAnswer::Addresses(_) => {
                    return Err(Stop::Defer(format!(
                        "MX lookup for {current} returned addresses"
                    )));
                }
                DnsAnswer::Mx(records) => {
                    if records.len() == 1 && records[0].is_null() {
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
                    break usable;
                }
            }
        };
        let ordered = self.order(records);
        let mut hosts = Vec::with_capacity(ordered.len());
        let mut temporary_failure = false;
        for record in ordered {
            let (addresses, temporary) = self.addresses(&record.exchange).await;
            temporary_failure |= temporary;
            hosts.push(Host {
                name: record.exchange,
                preference: record.preference,
                addresses,
            });
        }
        self.drop_self(&mut hosts)?;
        hosts.retain(|host| !host.addresses.is_empty());
        if hosts.is_empty() {
            let reason = format!("no MX host of {domain} has an address");
            return Err(
                if self.settings.no_address_bounces_if_permanent && !temporary_failure {
                    Stop::Bounce(reason)
                } else {
                    Stop::Defer(reason)
                },
            );
        }
        Ok(hosts)
    }

    /// Step 7: sort by preference; shuffle each group of equal preference.
    fn order(&self, mut records: Vec<Mx>) -> Vec<Mx> {
        records.sort_by_key(|record| record.preference);
        if self.settings.equal_order == EqualOrder::Random {
            let mut start = 0;
            while start < records.len() {
                let preference = records[start].preference;
                let end = start
                    + records[start..]
                        .iter()
                        .take_while(|record| record.preference == preference)
                        .count();
                if end - start > 1 {
                    let mut group: Vec<Name> = records[start..end]
                        .iter()
                        .map(|record| record.exchange.clone())
                        .collect();
                    self.world
                        .shuffle(&format!("preference {preference}"), &mut group);
                    for (record, name) in records[start..end].iter_mut().zip(group) {
                        record.exchange = name;
                    }
                }
                start = end;
            }
        }
        records
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

    /// Step 8: drop every host at or above the preference at which the client finds itself.
    fn drop_self(&self, hosts: &mut Vec<Host>) -> Result<(), Stop> {
        let client = self.job.client;
        let is_self = |host: &Host| {
            host.name == client.name
                || host
                    .addresses
                    .iter()
                    .any(|address| client.addresses.contains(address))
        };
        let Some(own) = hosts
            .iter()
            .filter(|host| is_self(host))
            .map(|host| host.preference)
            .min()
        else {
            return Ok(());
        };
        hosts.retain(|host| host.preference < own);
        if hosts.is_empty() {
            return Err(Stop::Bounce(format!(
                "{} is itself the best MX: mail would loop (RFC 5321 §5.1)",
                client.name
            )));
        }
        Ok(())
    }

    /// Applies the action for a failure to `affected` and says what the loop does next.
    fn fail(
        &mut self,
        stage: Stage,
        failure: Failure,
        affected: &[usize],
        last: bool,
        reason: String,
        reply: Option<&Reply>,
    ) -> Flow {
        let action = self.settings.actions.action(stage, failure);
        self.last_error = reason.clone();
        let bounce = |this: &mut Self| {
            this.settle(affected, || Disposition::Bounced {
                reason: reason.clone(),
                reply: reply.cloned(),
            })
        };
        match action {
            Action::NextAddress => Flow::NextAddress,
            Action::NextHost => Flow::NextHost,
            Action::NextOrBounce if last => {
                bounce(self);
                Flow::NextAddress
            }
            Action::NextOrBounce => Flow::NextAddress,
            Action::Bounce => {
                bounce(self);
                Flow::NextAddress
            }
            Action::Defer => {
                self.settle(affected, || Disposition::Deferred {
                    reason: reason.clone(),
                });
                Flow::Stop
            }
        }
    }
}

fn describe(candidate: &Candidate) -> String {
    format!("{} [{}]", candidate.host, candidate.address)
}

fn classify(reply: &Reply, expected: ReplyClass) -> Result<(), Failure> {
    match reply.class() {
        class if class == expected => Ok(()),
        ReplyClass::Permanent => Err(Failure::Permanent),
        _ => Err(Failure::Transient),
    }
}

/// Sends QUIT unless the connection is known to be gone; the reply does not matter.
async fn quit<S: Session>(session: &mut S, limit: Duration) {
    let _ = tokio::time::timeout(limit.to_std(), session.quit()).await;
}

impl<W: World> Attempt<'_, '_, W> {
    /// One session with one address.
    async fn session(&mut self, candidate: &Candidate, last: bool) -> Flow {
        let timeouts = self.settings.timeouts;
        let everyone = self.pending.clone();
        let mut session = match tokio::time::timeout(
            timeouts.connect.to_std(),
            self.world.connect(candidate.address, &candidate.host),
        )
        .await
        {
            Ok(Connect::Connected(session)) => session,
            Ok(_) => {
                return self.fail(
                    Stage::Connect,
                    Failure::Dropped,
                    &everyone,
                    last,
                    format!("{}: connection refused or reset", describe(candidate)),
                    None,
                );
            }
            Err(_) => {
                return self.fail(
                    Stage::Connect,
                    Failure::Timeout,
                    &everyone,
                    last,
                    format!("{}: connection timed out", describe(candidate)),
                    None,
                );
            }
        };
        if let Err(flow) = self
            .step(
                &mut session,
                candidate,
                last,
                Command::Greeting,
                ReplyClass::Positive,
                &everyone,
            )
            .await
        {
            return flow;
        }
        let keywords = match self.hello(&mut session, candidate, last).await {
            Ok(keywords) => keywords,
            Err(flow) => return flow,
        };
        if let Err(flow) = self
            .check_extensions(&mut session, candidate, &keywords)
            .await
        {
            return flow;
        }
        self.transaction(&mut session, candidate, last, &keywords)
            .await
    }

    /// Sends a simple command (or waits for the greeting) under its timeout.
    async fn send<S: Session>(&self, session: &mut S, command: Command) -> Got<Reply> {
        let limit = self.settings.timeouts.for_command(command);
        match command {
            Command::Greeting => ask(limit, session.greeting()).await,
            Command::Helo => ask(limit, session.helo(&self.job.client.name)).await,
            Command::Starttls => ask(limit, session.starttls()).await,
            Command::Data => ask(limit, session.data()).await,
            Command::EndOfData => ask(limit, session.end_of_data(self.job.message_index)).await,
            Command::Quit => ask(limit, session.quit()).await,
            Command::Ehlo | Command::Mail | Command::Rcpt => {
                unreachable!("EHLO, MAIL and RCPT carry arguments and have their own steps")
            }
        }
    }

    /// Sends a simple command and applies the action map to a failure, for `affected`.
    /// QUIT follows a refusal where the connection is still there.
    async fn step<S: Session>(
        &mut self,
        session: &mut S,
        candidate: &Candidate,
        last: bool,
        command: Command,
        expected: ReplyClass,
        affected: &[usize],
    ) -> Result<Reply, Flow> {
        let got = self.send(session, command).await;
        self.judge(session, candidate, last, command, expected, got, affected)
            .await
    }

    /// Turns a step's result into a reply or a flow, for the recipients `affected`.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site per step kind; a struct would only rename them"
    )]
    async fn judge<S: Session>(
        &mut self,
        session: &mut S,
        candidate: &Candidate,
        last: bool,
        command: Command,
        expected: ReplyClass,
        got: Got<Reply>,
        affected: &[usize],
    ) -> Result<Reply, Flow> {
        let stage = Stage::Command(command);
        let what = command_name(command);
        match got {
            Got::Reply(reply) => match classify(&reply, expected) {
                Ok(()) => Ok(reply),
                Err(failure) => {
                    if reply.code.get() != 421 {
                        quit(session, self.settings.timeouts.quit).await;
                    }
                    Err(self.fail(
                        stage,
                        failure,
                        affected,
                        last,
                        format!("{}: {what} answered {reply}", describe(candidate)),
                        Some(&reply),
                    ))
                }
            },
            Got::Timeout => Err(self.fail(
                stage,
                Failure::Timeout,
                affected,
                last,
                format!("{}: no reply to {what}", describe(candidate)),
                None,
            )),
            Got::Closed => Err(self.fail(
                stage,
                Failure::Dropped,
                affected,
                last,
                format!("{}: connection lost at {what}", describe(candidate)),
                None,
            )),
        }
    }

    /// EHLO, or HELO after a 500/502 to EHLO; then STARTTLS when required. Returns the
    /// keywords in force.
    async fn hello<S: Session>(
        &mut self,
        session: &mut S,
        candidate: &Candidate,
        last: bool,
    ) -> Result<Arc<[Keyword]>, Flow> {
        let keywords = self.ehlo(session, candidate, last).await?;
        let needs_tls = self.settings.tls == TlsUse::WhenRequired
            && self
                .job
                .message
                .requires
                .iter()
                .any(|keyword| matches!(&**keyword, "STARTTLS" | "REQUIRETLS"));
        if !needs_tls || find_keyword(&keywords, "STARTTLS").is_none() {
            return Ok(keywords);
        }
        let everyone = self.pending.clone();
        self.step(
            session,
            candidate,
            last,
            Command::Starttls,
            ReplyClass::Positive,
            &everyone,
        )
        .await?;
        let handshake =
            tokio::time::timeout(self.settings.timeouts.tls.to_std(), session.handshake()).await;
        match handshake {
            Ok(Handshake::Established) => {}
            Ok(Handshake::Failed) => {
                let everyone = self.pending.clone();
                return Err(self.fail(
                    Stage::Tls,
                    Failure::Dropped,
                    &everyone,
                    last,
                    format!("{}: TLS handshake failed", describe(candidate)),
                    None,
                ));
            }
            Err(_) => {
                let everyone = self.pending.clone();
                return Err(self.fail(
                    Stage::Tls,
                    Failure::Timeout,
                    &everyone,
                    last,
                    format!("{}: TLS handshake timed out", describe(candidate)),
                    None,
                ));
            }
        }
        let mut keywords = self.ehlo(session, candidate, last).await?;
        // STARTTLS is satisfied by the TLS session itself (RFC 3207 §4.2).
        let mut with_tls: Vec<Keyword> = keywords.to_vec();
        with_tls.push(Keyword::parse("STARTTLS").expect("STARTTLS is a keyword"));
        keywords = Arc::from(with_tls);
        Ok(keywords)
    }

    async fn ehlo<S: Session>(
        &mut self,
        session: &mut S,
        candidate: &Candidate,
        last: bool,
    ) -> Result<Arc<[Keyword]>, Flow> {
        let got = ask(
            self.settings.timeouts.ehlo,
            session.ehlo(&self.job.client.name),
        )
        .await;
        let everyone = self.pending.clone();
        let got = match got {
            Got::Reply(ehlo) if ehlo.reply.class() == ReplyClass::Positive => {
                return Ok(ehlo.keywords);
            }
            Got::Reply(ehlo)
                if self
                    .settings
                    .helo_fallback_codes
                    .contains(&ehlo.reply.code.get()) =>
            {
                self.step(
                    session,
                    candidate,
                    last,
                    Command::Helo,
                    ReplyClass::Positive,
                    &everyone,
                )
                .await?;
                return Ok(Arc::from([]));
            }
            Got::Reply(ehlo) => Got::Reply(ehlo.reply),
            Got::Timeout => Got::Timeout,
            Got::Closed => Got::Closed,
        };
        self.judge(
            session,
            candidate,
            last,
            Command::Ehlo,
            ReplyClass::Positive,
            got,
            &everyone,
        )
        .await
        .map(|_| Arc::from([]))
    }

    /// Required keywords and SIZE.
    async fn check_extensions<S: Session>(
        &mut self,
        session: &mut S,
        candidate: &Candidate,
        keywords: &[Keyword],
    ) -> Result<(), Flow> {
        let message = self.job.message;
        let missing: Vec<&str> = message
            .requires
            .iter()
            .filter(|keyword| find_keyword(keywords, keyword).is_none())
            .map(|keyword| &**keyword)
            .collect();
        let size_limit = size_limit(keywords);
        let too_big =
            matches!((message.size, size_limit), (Some(size), Some(limit)) if size > limit);
        if missing.is_empty() && !too_big {
            return Ok(());
        }
        quit(session, self.settings.timeouts.quit).await;
        let reason = if !missing.is_empty() {
            format!(
                "{} does not offer required {}",
                describe(candidate),
                missing.join(", ")
            )
        } else {
            format!(
                "message of {} bytes exceeds the SIZE limit {} of {} (RFC 1870)",
                message.size.unwrap_or(0),
                size_limit.unwrap_or(0),
                describe(candidate)
            )
        };
        match self.settings.missing_required {
            MissingRequired::Bounce => {
                self.last_error = reason.clone();
                let everyone = self.pending.clone();
                self.settle(&everyone, || Disposition::Bounced {
                    reason: reason.clone(),
                    reply: None,
                });
                Err(Flow::Stop)
            }
        }
    }

    /// MAIL, RCPT for each pending recipient, DATA, the message, QUIT.
    async fn transaction<S: Session>(
        &mut self,
        session: &mut S,
        candidate: &Candidate,
        last: bool,
        keywords: &[Keyword],
    ) -> Flow {
        let limits = self.settings.timeouts;
        let parameters = mail_parameters(self.job.message, keywords, self.settings.missing_wanted);
        let got = ask(
            limits.mail,
            session.mail(&self.job.message.from, &parameters),
        )
        .await;
        let everyone = self.pending.clone();
        if let Err(flow) = self
            .judge(
                session,
                candidate,
                last,
                Command::Mail,
                ReplyClass::Positive,
                got,
                &everyone,
            )
            .await
        {
            return flow;
        }
        let mut accepted = Vec::with_capacity(everyone.len());
        let mut flow = Flow::NextAddress;
        for (position, &index) in everyone.iter().enumerate() {
            let recipient = self.job.message.to[index].clone();
            let got = ask(limits.rcpt, session.rcpt(&recipient)).await;
            let broken = matches!(got, Got::Timeout | Got::Closed);
            let affected: Vec<usize> = if broken {
                everyone[position..].to_vec()
            } else {
                vec![index]
            };
            match self.judge_rcpt(candidate, last, got, &affected) {
                Ok(()) => accepted.push(index),
                Err(next) if broken => return next,
                Err(next) => flow = flow.max(next),
            }
        }
        if accepted.is_empty() {
            quit(session, limits.quit).await;
            return flow;
        }
        if let Err(flow) = self
            .step(
                session,
                candidate,
                last,
                Command::Data,
                ReplyClass::Intermediate,
                &accepted,
            )
            .await
        {
            return flow;
        }
        match self
            .step(
                session,
                candidate,
                last,
                Command::EndOfData,
                ReplyClass::Positive,
                &accepted,
            )
            .await
        {
            Ok(reply) => {
                let host = candidate.host.clone();
                let address = candidate.address;
                self.settle(&accepted, || Disposition::Delivered {
                    host: host.clone(),
                    address,
                    reply: reply.clone(),
                });
            }
            Err(flow) => return flow,
        }
        quit(session, limits.quit).await;
        flow
    }

    fn judge_rcpt(
        &mut self,
        candidate: &Candidate,
        last: bool,
        got: Got<Reply>,
        affected: &[usize],
    ) -> Result<(), Flow> {
        let stage = Stage::Command(Command::Rcpt);
        match got {
            Got::Reply(reply) => match classify(&reply, ReplyClass::Positive) {
                Ok(()) => Ok(()),
                Err(failure) => {
                    let reason = format!("{}: RCPT answered {reply}", describe(candidate));
                    Err(self.fail(stage, failure, affected, last, reason, Some(&reply)))
                }
            },
            Got::Timeout => Err(self.fail(
                stage,
                Failure::Timeout,
                affected,
                last,
                format!("{}: no reply to RCPT", describe(candidate)),
                None,
            )),
            Got::Closed => Err(self.fail(
                stage,
                Failure::Dropped,
                affected,
                last,
                format!("{}: connection lost at RCPT", describe(candidate)),
                None,
            )),
        }
    }
}

fn command_name(command: Command) -> &'static str {
    match command {
        Command::Greeting => "the greeting",
        Command::Ehlo => "EHLO",
        Command::Helo => "HELO",
        Command::Starttls => "STARTTLS",
        Command::Mail => "MAIL",
        Command::Rcpt => "RCPT",
        Command::Data => "DATA",
        Command::EndOfData => "the end of data",
        Command::Quit => "QUIT",
    }
}

/// The SIZE limit a server advertised, if it gave a positive one (0 means no limit).
fn size_limit(keywords: &[Keyword]) -> Option<u64> {
    let parameter = find_keyword(keywords, "SIZE")?.parameter.as_ref()?;
    parameter.parse::<u64>().ok().filter(|limit| *limit > 0)
}

/// MAIL parameters: SIZE when advertised, and every required or wanted keyword the server
/// offers (a used extension is shown as a bare parameter).
fn mail_parameters(
    message: &Message,
    keywords: &[Keyword],
    _wanted: MissingWanted,
) -> MailParameters {
    let size = message
        .size
        .filter(|_| find_keyword(keywords, "SIZE").is_some());
    let extensions = message
        .requires
        .iter()
        .chain(message.wants.iter())
        .filter(|keyword| !matches!(&***keyword, "STARTTLS" | "SIZE"))
        .filter(|keyword| find_keyword(keywords, keyword).is_some())
        .cloned()
        .collect();
    MailParameters { size, extensions }
}

//! The scripted SMTP server as a pure state machine: what a scenario's server answers, and when
//! it closes, for every request that reaches it.
//!
//! The simulator's world (`mxsim-sim`) and a live mode (real sockets, a real MTA talking to our
//! listeners) answer through this one implementation. The caller owns the network, the clock and
//! the trace: it hands each request to [`Conversation::step`] with the time it arrived, waits the
//! [`Action::delay`], and then sends the [`Action::answer`] (or nothing), records what the
//! action says, and closes when [`Action::close`] says so.
//!
//! Everything here is decided at the time a request arrives (`now`), from the server's base
//! behaviour and the `during` windows containing `now`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::name::{Mailbox, Name};
use crate::scenario::{ConnectMode, EndOfData, Greeting, Scenario, Server, ServerKey, StartTls};
use crate::smtp::{Command, Keyword, Reply, ReplyClass, ReplyCode};
use crate::time::{Duration, Instant};
use crate::trace::Closer;
use crate::world::MailParameters;

/// A scenario's servers made ready to answer: which server listens at each address, and each
/// server's default replies (a well-behaved server's, with texts that name it).
pub struct Script {
    scenario: Arc<Scenario>,
    servers_by_address: BTreeMap<IpAddr, usize>,
    defaults: Vec<Defaults>,
    fixed: Fixed,
}

/// The replies of a well-behaved server, with texts that name it.
struct Defaults {
    greeting: Reply,
    ehlo: Reply,
    helo: Reply,
    starttls: Reply,
    starttls_missing: Reply,
    mail: Reply,
    rcpt: Reply,
    data: Reply,
    end_of_data: Reply,
    quit: Reply,
    rset: Reply,
}

/// Replies no script sets: to commands out of sequence, NOOP and lines that are no command.
struct Fixed {
    no_sender: Reply,
    no_recipients: Reply,
    unknown: Reply,
    noop: Reply,
}

fn reply(code: u16, text: &str) -> Reply {
    let code = ReplyCode::new(code).expect("the script's reply codes are valid");
    Reply::new(code, text)
}

impl Defaults {
    fn new(label: &str) -> Defaults {
        Defaults {
            greeting: reply(220, &format!("{label} ESMTP mxsim")),
            ehlo: reply(250, label),
            helo: reply(250, label),
            starttls: reply(220, "2.0.0 ready to start TLS"),
            starttls_missing: reply(502, "5.5.1 STARTTLS not implemented"),
            mail: reply(250, "2.1.0 sender ok"),
            rcpt: reply(250, "2.1.5 recipient ok"),
            data: reply(354, "end data with <CR><LF>.<CR><LF>"),
            end_of_data: reply(250, "2.0.0 queued"),
            quit: reply(221, "2.0.0 bye"),
            rset: reply(250, "2.0.0 reset"),
        }
    }
}

impl Fixed {
    fn new() -> Fixed {
        Fixed {
            no_sender: reply(503, "5.5.1 sender not yet given"),
            no_recipients: reply(554, "5.5.1 no valid recipients"),
            unknown: reply(500, "5.5.2 command not recognized"),
            noop: reply(250, "2.0.0 ok"),
        }
    }
}

/// What happens to a SYN: how the address answers it, after how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectAction {
    /// Accept, refuse (RST), reset (accept, then close at once) or timeout (the SYN is dropped:
    /// no answer ever, and `latency` does not apply).
    pub mode: ConnectMode,
    /// How long the answer takes.
    pub latency: Duration,
}

impl Script {
    /// Indexes a loaded scenario's servers. A server keyed by address wins over one keyed by
    /// name at the same address.
    pub fn new(scenario: Arc<Scenario>) -> Script {
        let mut servers_by_address = BTreeMap::new();
        for pass_by_address in [false, true] {
            for (index, server) in scenario.servers.iter().enumerate() {
                let by_address = matches!(server.key, ServerKey::Address(_));
                if by_address == pass_by_address {
                    for address in &server.addresses {
                        servers_by_address.insert(*address, index);
                    }
                }
            }
        }
        let defaults = scenario
            .servers
            .iter()
            .map(|server| Defaults::new(&server.label()))
            .collect();
        Script {
            scenario,
            servers_by_address,
            defaults,
            fixed: Fixed::new(),
        }
    }

    /// The scenario the script answers for.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Which server answers at `address` (index into the scenario's servers), or `None`:
    /// nothing listens there, and a SYN is refused.
    pub fn server_at(&self, address: IpAddr) -> Option<usize> {
        self.servers_by_address.get(&address).copied()
    }

    /// What happens to a SYN reaching `server` at `now`.
    pub fn connect(&self, server: usize, now: Instant) -> ConnectAction {
        let server = self.server(server);
        ConnectAction {
            mode: server
                .field(now, |b| b.connect.as_ref())
                .copied()
                .unwrap_or(ConnectMode::Accept),
            latency: latency(server, now),
        }
    }

    fn server(&self, index: usize) -> &Server {
        &self.scenario.servers[index]
    }
}

fn latency(server: &Server, now: Instant) -> Duration {
    server
        .field(now, |b| b.latency.as_ref())
        .copied()
        .unwrap_or_default()
}

/// The servers' memory across connections and messages.
#[derive(Debug, Default)]
pub struct ServerState {
    /// Greylisting: (server, client address, sender, recipient) → the time of the triplet's
    /// first RCPT.
    triplets: BTreeMap<(usize, Option<IpAddr>, Mailbox, Mailbox), Instant>,
}

/// One request reaching a server: an SMTP command line, or one of the connection's events that
/// the server answers (the greeting when the connection opens, the TLS handshake, the end of a
/// message's data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The connection opened: the server greets (or stays silent).
    Greeting,
    /// `EHLO name`.
    Ehlo(Name),
    /// `HELO name`.
    Helo(Name),
    /// `STARTTLS`.
    Starttls,
    /// The TLS handshake after a 220 to STARTTLS. The action's answer is
    /// [`Answer::Silent`] without an idle timeout (a handshake has no reply line); it closes
    /// ([`Closer::Server`]) when the handshake fails, and TLS is up when it does not close.
    Handshake,
    /// `MAIL FROM:<sender> parameters`; `<>` is [`Mailbox::null`].
    Mail(Mailbox, MailParameters),
    /// `RCPT TO:<recipient>` (parameters are not kept).
    Rcpt(Mailbox),
    /// `DATA`.
    Data,
    /// The message's data and its final dot, after a 354 to DATA.
    EndOfData {
        /// The scenario's index of the message.
        message: usize,
    },
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
    /// `NOOP`.
    Noop,
    /// A line that is no command the script knows, as received.
    Unknown(String),
}

impl Request {
    /// Parses one SMTP command line as a real client sends it, without its CRLF (a trailing
    /// CRLF is ignored): `EHLO name`, `HELO name`, `MAIL FROM:<a@b> SIZE=12 BODY=8BITMIME`,
    /// `RCPT TO:<x@y> NOTIFY=NEVER`, `DATA`, `RSET`, `QUIT`, `NOOP`, `STARTTLS`. Verbs are
    /// case-insensitive; `MAIL FROM:<>` is the null reverse-path. `SIZE=n` fills
    /// [`MailParameters::size`] and every other MAIL parameter is kept as written in
    /// [`MailParameters::extensions`]; RCPT parameters are ignored.
    ///
    /// Anything else, including a name or mailbox that does not parse (an address literal
    /// `EHLO [192.0.2.1]`, `RCPT TO:<postmaster>`), is [`Request::Unknown`] with the line.
    /// Never panics.
    pub fn parse(line: &str) -> Request {
        let line = line.trim_end_matches(['\r', '\n']);
        parse_command(line).unwrap_or_else(|| Request::Unknown(line.to_owned()))
    }

    /// The command the scenario's scripts name this request by (for delays and `drop_after`),
    /// or `None` for one they cannot name (NOOP, an unknown line, the handshake).
    pub fn command(&self) -> Option<Command> {
        Some(match self {
            Request::Greeting => Command::Greeting,
            Request::Ehlo(_) => Command::Ehlo,
            Request::Helo(_) => Command::Helo,
            Request::Starttls => Command::Starttls,
            Request::Mail(..) => Command::Mail,
            Request::Rcpt(_) => Command::Rcpt,
            Request::Data => Command::Data,
            Request::EndOfData { .. } => Command::EndOfData,
            Request::Rset => Command::Rset,
            Request::Quit => Command::Quit,
            Request::Handshake | Request::Noop | Request::Unknown(_) => return None,
        })
    }
}

/// `line` as a command, if it is one the script knows.
fn parse_command(line: &str) -> Option<Request> {
    let (verb, argument) = match line.split_once(' ') {
        Some((verb, argument)) => (verb, argument.trim()),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    let bare = |request: Request| argument.is_empty().then_some(request);
    match verb.as_str() {
        "EHLO" => Name::parse(argument).ok().map(Request::Ehlo),
        "HELO" => Name::parse(argument).ok().map(Request::Helo),
        "STARTTLS" => bare(Request::Starttls),
        "DATA" => bare(Request::Data),
        "RSET" => bare(Request::Rset),
        "QUIT" => bare(Request::Quit),
        // NOOP may carry a string, which the server ignores (RFC 5321 §4.1.1.9).
        "NOOP" => Some(Request::Noop),
        "MAIL" => {
            let (path, parameters) = path_after(argument, "FROM:")?;
            let from = if path.is_empty() {
                Mailbox::null()
            } else {
                Mailbox::parse(path).ok()?
            };
            Some(Request::Mail(from, mail_parameters(parameters)?))
        }
        "RCPT" => {
            let (path, _parameters) = path_after(argument, "TO:")?;
            Mailbox::parse(path).ok().map(Request::Rcpt)
        }
        _ => None,
    }
}

/// Splits `FROM:<path> parameters` (or `TO:`) into the path inside the angle brackets and the
/// parameters after it. A source route (`<@a,@b:u@d>`) is dropped, as RFC 5321 §4.1.1.3 asks.
fn path_after<'a>(argument: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let head = argument.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = argument[prefix.len()..].trim_start().strip_prefix('<')?;
    let (path, parameters) = rest.split_once('>')?;
    let path = match path.strip_prefix('@') {
        Some(routed) => routed.split_once(':')?.1,
        None => path,
    };
    Some((path, parameters.trim()))
}

/// MAIL's parameters: `SIZE=n` and the rest as written; `None` if SIZE is no number.
fn mail_parameters(text: &str) -> Option<MailParameters> {
    let mut parameters = MailParameters::default();
    for parameter in text.split_ascii_whitespace() {
        match parameter.split_once('=') {
            Some((key, value)) if key.eq_ignore_ascii_case("SIZE") => {
                parameters.size = Some(value.parse().ok()?);
            }
            _ => parameters.extensions.push(Arc::from(parameter)),
        }
    }
    Some(parameters)
}

/// What the server does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// How long after the request arrived the server answers: its latency plus the script's
    /// delay for the command.
    pub delay: Duration,
    /// The answer, after the delay.
    pub answer: Answer,
    /// Set when the connection closes right after the answer (a 421, `drop_after`, QUIT's
    /// 2yz, a failed handshake), with who closed it.
    pub close: Option<Closer>,
    /// Set when the server took responsibility for a message at the end of its data.
    pub accepted: Option<Accepted>,
    /// For an EHLO reply: the keywords it advertises (empty unless the reply is 2yz).
    pub keywords: Option<Arc<[Keyword]>>,
}

/// What the server says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// This reply.
    Reply(Reply),
    /// Nothing. With `idle_timeout`, the server closes the connection that long after the
    /// delay ([`Closer::ServerIdle`]); without, the connection stays silent until the client
    /// gives up.
    Silent {
        /// How long until the server closes the silent connection, if ever.
        idle_timeout: Option<Duration>,
    },
}

/// A message the server took at the end of its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The scenario's index of the message.
    pub message: usize,
    /// The recipients this copy is for: those the transaction's RCPTs got a 2yz for.
    pub recipients: Arc<[Mailbox]>,
    /// True when the server took it but its reply never reaches the client
    /// (`end_of_data: lost`).
    pub reply_lost: bool,
}

impl Action {
    /// No answer and no delay: what a closed conversation does with any request.
    fn nothing() -> Action {
        Action {
            delay: Duration::ZERO,
            answer: Answer::Silent { idle_timeout: None },
            close: None,
            accepted: None,
            keywords: None,
        }
    }
}

/// One connection as the server sees it.
#[derive(Clone, Debug)]
pub struct Conversation {
    server: usize,
    client: Option<IpAddr>,
    open: bool,
    tls: bool,
    /// Whether the TLS handshake will fail: decided when STARTTLS is answered, so a `during`
    /// window that starts in between does not change it.
    handshake_fails: bool,
    /// The transaction in progress: its reverse-path once MAIL got a 2yz, and the recipients
    /// RCPT got a 2yz for.
    sender: Option<Mailbox>,
    recipients: Vec<Mailbox>,
    /// When the server last answered (or the connection opened): its idle timer starts there.
    idle_since: Instant,
}

impl Conversation {
    /// A connection to `server` from `client`, established at `now`. The greeting is the
    /// answer to [`Request::Greeting`].
    pub fn open(script: &Script, server: usize, client: Option<IpAddr>, now: Instant) -> Self {
        debug_assert!(server < script.scenario.servers.len());
        Conversation {
            server,
            client,
            open: true,
            tls: false,
            handshake_fails: false,
            sender: None,
            recipients: Vec::new(),
            idle_since: now,
        }
    }

    /// The server this connection reached (index into the scenario's servers).
    pub fn server(&self) -> usize {
        self.server
    }

    /// True until the server closes the connection or learns it closed.
    pub fn open_now(&self) -> bool {
        self.open
    }

    /// True once a TLS handshake succeeded.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The recipients of the transaction in progress that RCPT accepted.
    pub fn recipients(&self) -> &[Mailbox] {
        &self.recipients
    }

    /// The connection ended from outside the script (the client closed it, or the caller
    /// closed it at the end of a silent answer's idle timeout): later requests get nothing.
    pub fn close(&mut self) {
        self.open = false;
    }

    /// True when the server's idle timer (`idle_timeout`, as set at `now`) ran out before
    /// `now`, counted from its last answer; the conversation is then closed
    /// ([`Closer::ServerIdle`]). A caller asks before handing the server a request.
    pub fn idle_expired(&mut self, script: &Script, now: Instant) -> bool {
        let server = script.server(self.server);
        let expired = server
            .field(now, |b| b.idle_timeout.as_ref())
            .is_some_and(|idle| now.since(self.idle_since) >= *idle);
        if expired {
            self.open = false;
        }
        expired
    }

    /// The server's answer to `request` arriving at `now`. Pure: it changes only `self` and
    /// `state`. A closed conversation answers nothing.
    pub fn step(
        &mut self,
        script: &Script,
        state: &mut ServerState,
        request: &Request,
        now: Instant,
    ) -> Action {
        if !self.open {
            return Action::nothing();
        }
        let server = script.server(self.server);
        let latency = latency(server, now);
        if *request == Request::Handshake {
            return self.handshake(latency, now);
        }
        let delay = match request.command() {
            Some(command) => Duration(
                latency
                    .as_millis()
                    .saturating_add(server.delay(now, command).as_millis()),
            ),
            None => latency,
        };
        let mut action = Action {
            delay,
            ..Action::nothing()
        };
        action.answer = match self.answer(script, state, request, now, &mut action) {
            Some(reply) => {
                self.idle_since = now.after(delay);
                action.close = closer(server, request.command(), &reply, now);
                Answer::Reply(reply)
            }
            None => Answer::Silent {
                idle_timeout: server.field(now, |b| b.idle_timeout.as_ref()).copied(),
            },
        };
        if action.close.is_some() {
            self.open = false;
        }
        action
    }

    /// The reply to `request` (`None`: silence), filling the action's keywords and accepted
    /// message.
    fn answer(
        &mut self,
        script: &Script,
        state: &mut ServerState,
        request: &Request,
        now: Instant,
        action: &mut Action,
    ) -> Option<Reply> {
        let server = script.server(self.server);
        let defaults = &script.defaults[self.server];
        let fixed = &script.fixed;
        let scripted = |field: fn(&crate::scenario::Behaviour) -> Option<&Reply>, default| {
            Some(server.field(now, field).unwrap_or(default).clone())
        };
        match request {
            Request::Greeting => match server.field(now, |b| b.greeting.as_ref()) {
                Some(Greeting::Silent) => None,
                Some(Greeting::Reply(reply)) => Some(reply.clone()),
                None => Some(defaults.greeting.clone()),
            },
            Request::Ehlo(_) => {
                let reply = server
                    .field(now, |b| b.ehlo_reply.as_ref())
                    .unwrap_or(&defaults.ehlo)
                    .clone();
                let positive = reply.class() == ReplyClass::Positive;
                action.keywords = Some(if positive {
                    self.keywords(server, now)
                } else {
                    Arc::from([])
                });
                if positive {
                    self.reset();
                }
                Some(reply)
            }
            Request::Helo(_) => {
                let reply = scripted(|b| b.helo_reply.as_ref(), &defaults.helo)?;
                if reply.class() == ReplyClass::Positive {
                    self.reset();
                }
                Some(reply)
            }
            Request::Starttls => {
                let mode = starttls_mode(server, now);
                self.handshake_fails = matches!(mode, Some(StartTls::HandshakeFail));
                Some(match mode {
                    Some(StartTls::Reply(reply)) => reply.clone(),
                    Some(_) => defaults.starttls.clone(),
                    None => defaults.starttls_missing.clone(),
                })
            }
            Request::Mail(from, _) => {
                let reply = scripted(|b| b.mail.as_ref(), &defaults.mail)?;
                self.reset();
                if reply.class() == ReplyClass::Positive {
                    self.sender = Some(from.clone());
                }
                Some(reply)
            }
            Request::Rcpt(to) => {
                let Some(sender) = &self.sender else {
                    return Some(fixed.no_sender.clone());
                };
                if let Some(reply) = greylisted(server, state, self, sender, to, now) {
                    return Some(reply);
                }
                let reply = server
                    .field(now, |b| b.rcpt.as_ref())
                    .and_then(|rcpt| {
                        rcpt.by_recipient
                            .iter()
                            .find(|(mailbox, _)| mailbox == to)
                            .map(|(_, reply)| reply)
                            .or(rcpt.default.as_ref())
                    })
                    .unwrap_or(&defaults.rcpt)
                    .clone();
                if reply.class() == ReplyClass::Positive {
                    self.recipients.push(to.clone());
                }
                Some(reply)
            }
            Request::Data => {
                if self.sender.is_none() {
                    Some(fixed.no_sender.clone())
                } else if self.recipients.is_empty() {
                    Some(fixed.no_recipients.clone())
                } else {
                    scripted(|b| b.data.as_ref(), &defaults.data)
                }
            }
            Request::EndOfData { message } => {
                let (reply, accepted, lost) = match server.field(now, |b| b.end_of_data.as_ref()) {
                    None => (Some(defaults.end_of_data.clone()), true, false),
                    Some(EndOfData::Reply(reply)) => (
                        Some(reply.clone()),
                        reply.class() == ReplyClass::Positive,
                        false,
                    ),
                    Some(EndOfData::Silent) => (None, false, false),
                    Some(EndOfData::Lost) => (None, true, true),
                };
                if accepted {
                    action.accepted = Some(Accepted {
                        message: *message,
                        recipients: Arc::from(self.recipients.as_slice()),
                        reply_lost: lost,
                    });
                }
                // The end of data ends the transaction, whatever its reply.
                self.reset();
                reply
            }
            Request::Rset => {
                let reply = scripted(|b| b.rset.as_ref(), &defaults.rset)?;
                if reply.class() == ReplyClass::Positive {
                    self.reset();
                }
                Some(reply)
            }
            Request::Quit => scripted(|b| b.quit.as_ref(), &defaults.quit),
            Request::Noop => Some(fixed.noop.clone()),
            Request::Unknown(_) => Some(fixed.unknown.clone()),
            // `step` answers the handshake itself, before asking here.
            Request::Handshake => None,
        }
    }

    /// The TLS handshake: it fails (and the server closes) when STARTTLS said it would; else
    /// TLS is up and the transaction state is discarded (RFC 3207 §4.2).
    fn handshake(&mut self, latency: Duration, now: Instant) -> Action {
        let mut action = Action {
            delay: latency,
            ..Action::nothing()
        };
        if self.handshake_fails {
            self.open = false;
            action.close = Some(Closer::Server);
        } else {
            self.tls = true;
            self.reset();
            self.idle_since = now.after(latency);
        }
        action
    }

    /// Ends the transaction in progress (RSET, a new MAIL, EHLO, TLS, the end of data).
    fn reset(&mut self) {
        self.sender = None;
        self.recipients.clear();
    }

    /// The EHLO keywords in force: after TLS, `ehlo_after_tls`, else `ehlo` without STARTTLS.
    fn keywords(&self, server: &Server, now: Instant) -> Arc<[Keyword]> {
        let plain = server
            .field(now, |b| b.ehlo.as_ref())
            .cloned()
            .unwrap_or_else(|| Arc::from([]));
        if !self.tls {
            return plain;
        }
        match server.field(now, |b| b.ehlo_after_tls.as_ref()) {
            Some(keywords) => keywords.clone(),
            None => plain
                .iter()
                .filter(|keyword| !keyword.is("STARTTLS"))
                .cloned()
                .collect(),
        }
    }
}

/// Who closes the connection after `reply` to `command`, if anyone: the client after QUIT's
/// 2yz (unless the server drops the connection after QUIT itself), the server after a 421 or
/// the command named by `drop_after`.
fn closer(
    server: &Server,
    command: Option<Command>,
    reply: &Reply,
    now: Instant,
) -> Option<Closer> {
    let drop_after = server.field(now, |b| b.drop_after.as_ref()).copied();
    if command == Some(Command::Quit)
        && reply.class() == ReplyClass::Positive
        && drop_after != Some(Command::Quit)
    {
        Some(Closer::Client)
    } else if reply.code.get() == 421 || (command.is_some() && drop_after == command) {
        Some(Closer::Server)
    } else {
        None
    }
}

/// How STARTTLS is answered: the script, else `ok` when advertised, else `None` (502).
fn starttls_mode(server: &Server, now: Instant) -> Option<&StartTls> {
    const OK: &StartTls = &StartTls::Ok;
    match server.field(now, |b| b.starttls.as_ref()) {
        Some(mode) => Some(mode),
        None => {
            let advertised = server
                .field(now, |b| b.ehlo.as_ref())
                .is_some_and(|keywords| keywords.iter().any(|k| k.is("STARTTLS")));
            advertised.then_some(OK)
        }
    }
}

/// With `greylist:`, the reply to RCPT for a triplet that has not waited long enough:
/// `451 4.7.1` for its first RCPT (which starts its clock) and for any before `delay` has
/// passed since then; `None` once it has, and the script answers as usual.
fn greylisted(
    server: &Server,
    state: &mut ServerState,
    conversation: &Conversation,
    sender: &Mailbox,
    to: &Mailbox,
    now: Instant,
) -> Option<Reply> {
    let greylist = server.field(now, |b| b.greylist.as_ref()).copied()?;
    let key = (
        conversation.server,
        conversation.client,
        sender.clone(),
        to.clone(),
    );
    let first = *state.triplets.entry(key).or_insert(now);
    (now.since(first) < greylist.delay).then(|| {
        reply(
            451,
            &format!("4.7.1 greylisted: please try again in {}", greylist.delay),
        )
    })
}

/// A reply as the lines a server writes: `CODE text\r\n`, or for an EHLO reply with keywords
/// `250-text\r\n250-KW1\r\n250 KW2\r\n`. Line breaks inside a text are written as spaces, so a
/// reply is always the lines it says it is.
pub fn wire(reply: &Reply, keywords: Option<&[Keyword]>) -> String {
    let code = reply.code.get();
    let mut lines: Vec<String> = vec![reply.text.to_string()];
    lines.extend(keywords.unwrap_or_default().iter().map(Keyword::to_string));
    let last = lines.len() - 1;
    let mut wire = String::new();
    for (index, line) in lines.iter().enumerate() {
        let separator = if index == last { ' ' } else { '-' };
        let line = line.replace(['\r', '\n'], " ");
        if line.is_empty() && index == last {
            wire.push_str(&format!("{code}\r\n"));
        } else {
            wire.push_str(&format!("{code}{separator}{line}\r\n"));
        }
    }
    wire
}

#[cfg(test)]
mod tests;

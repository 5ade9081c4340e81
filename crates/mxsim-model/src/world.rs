//! The client↔world boundary: the traits a client policy is written against.
//!
//! A policy sees the world only through [`World`] and [`Session`]. The simulator implements
//! them over scripted servers in virtual time; a later live mode can implement them over real
//! sockets. Either way the *world* records the trace: a policy has no way to write to it.
//!
//! Failures of the world are values ([`DnsAnswer::ServFail`], [`Connect::Refused`],
//! [`Response::Closed`], a 421 [`Reply`]). A policy chooses its own timeouts by wrapping these
//! futures in `tokio::time::timeout`; when it stops waiting, the dropped future tells the world,
//! which records that the client gave up.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::dns::{DnsAnswer, RecordType};
use crate::name::{Mailbox, Name};
use crate::outcome::RecipientOutcome;
use crate::queue::{Backoff, QueueSettings};
use crate::scenario::{ClientIdentity, Message};
use crate::smtp::{Keyword, Reply};
use crate::time::{Duration, Instant};

/// The result of opening a TCP connection to port 25.
pub enum Connect<S> {
    /// The three-way handshake completed.
    Connected(S),
    /// The server answered the SYN with RST.
    Refused,
    /// The server accepted, then closed the connection at once.
    Reset,
}

/// What comes back after a command: a reply, or a closed connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response<R = Reply> {
    /// The server replied.
    Reply(R),
    /// The server closed the connection (or it broke) before replying.
    Closed,
}

/// A reply to EHLO: the reply line and, for 2yz, the keywords it advertised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EhloReply {
    /// Code and first line.
    pub reply: Reply,
    /// The advertised keywords; empty unless the reply is 2yz.
    pub keywords: Arc<[Keyword]>,
}

/// How a STARTTLS negotiation ended after a 220 reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// TLS is up; EHLO must be sent again (RFC 3207 §4.2).
    Established,
    /// The handshake failed; the connection is unusable.
    Failed,
}

/// Parameters of the MAIL command beyond the reverse path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParameters {
    /// `SIZE=` (RFC 1870), sent only when the server advertised SIZE.
    pub size: Option<u64>,
    /// Extensions the client uses for this transaction, written as bare parameters
    /// (`SMTPUTF8`, `REQUIRETLS`, `FOOBAR`).
    pub extensions: Vec<Arc<str>>,
}

/// One SMTP connection. Dropping it closes the connection from the client's side.
pub trait Session {
    /// Waits for the greeting.
    fn greeting(&mut self) -> impl Future<Output = Response>;
    /// Sends EHLO.
    fn ehlo(&mut self, name: &Name) -> impl Future<Output = Response<EhloReply>>;
    /// Sends HELO.
    fn helo(&mut self, name: &Name) -> impl Future<Output = Response>;
    /// Sends STARTTLS.
    fn starttls(&mut self) -> impl Future<Output = Response>;
    /// Runs the TLS handshake after a 220 to STARTTLS.
    fn handshake(&mut self) -> impl Future<Output = Handshake>;
    /// Sends MAIL FROM.
    fn mail(
        &mut self,
        from: &Mailbox,
        parameters: &MailParameters,
    ) -> impl Future<Output = Response>;
    /// Sends RCPT TO.
    fn rcpt(&mut self, to: &Mailbox) -> impl Future<Output = Response>;
    /// Sends DATA.
    fn data(&mut self) -> impl Future<Output = Response>;
    /// Sends the message (scenario message index `message`) and the final dot.
    fn end_of_data(&mut self, message: usize) -> impl Future<Output = Response>;
    /// Sends QUIT.
    fn quit(&mut self) -> impl Future<Output = Response>;
    /// Sends RSET.
    fn rset(&mut self) -> impl Future<Output = Response>;
}

/// What a shuffle orders, as the trace names it: a value, formatted only when the trace is
/// printed, so a shuffle formats nothing in the hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderLabel {
    /// The MX hosts of one preference: `preference 10`.
    Preference(u16),
}

impl fmt::Display for OrderLabel {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderLabel::Preference(preference) => write!(formatter, "preference {preference}"),
        }
    }
}

/// Something a policy may order at random: a host or an address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pick {
    /// A host name.
    Host(Name),
    /// An address.
    Address(IpAddr),
}

impl From<Name> for Pick {
    fn from(name: Name) -> Pick {
        Pick::Host(name)
    }
}

impl From<crate::dns::Mx> for Pick {
    fn from(record: crate::dns::Mx) -> Pick {
        Pick::Host(record.exchange)
    }
}

impl From<IpAddr> for Pick {
    fn from(address: IpAddr) -> Pick {
        Pick::Address(address)
    }
}

impl fmt::Display for Pick {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pick::Host(name) => write!(formatter, "{name}"),
            Pick::Address(address) => write!(formatter, "{address}"),
        }
    }
}

/// Everything outside the client: DNS, the network, the servers, time and chance.
pub trait World {
    /// An open connection.
    type Session: Session;

    /// An attempt for a recipient domain in flight: held while the attempt runs, dropped when it
    /// ends (see [`World::join`]).
    type InFlight;

    /// An attempt for a recipient domain counted busy by an on-demand connection cache: held
    /// while the attempt runs, dropped when it ends (see [`World::dispatch`]).
    type Busy;

    /// The current virtual time.
    fn now(&self) -> Instant;

    /// Asks DNS for records of `record_type` at `name`. An answer that never comes stays pending:
    /// the client decides how long to wait.
    fn lookup(&self, name: &Name, record_type: RecordType) -> impl Future<Output = DnsAnswer>;

    /// Opens a connection to `address` port 25 on behalf of `host` (for the trace). A SYN that is
    /// dropped stays pending: the client decides how long to wait.
    fn connect(&self, address: IpAddr, host: &Name)
    -> impl Future<Output = Connect<Self::Session>>;

    /// Waits for `future` for at most `limit` of the world's time: `Some` of its output when it
    /// finished in time, `None` when the limit passed first (the future is then dropped, which
    /// the world records as the client giving up). As with `tokio::time::timeout`, the limit
    /// runs from this call and the future is polled before the limit is checked, so a reply due
    /// exactly at the limit still arrives. Every wait of a policy goes through here: the world
    /// owns time, and a future that is ready at once costs no timer.
    fn timeout<F: Future>(
        &self,
        limit: Duration,
        future: F,
    ) -> impl Future<Output = Option<F::Output>>;

    /// Puts `items` in an order drawn by the world: from the run's seeded RNG, or forced by an
    /// explorer that enumerates every order. `label` says what is being ordered, for the trace
    /// (`preference 10`). Equal-preference randomisation (RFC 5321 §5.1) goes through here so
    /// that it is reproducible and explorable.
    fn shuffle<T: Clone + Into<Pick>>(&self, label: OrderLabel, items: &mut [T]);

    /// The client's record under `key`, if it has one, whether or not it is in force; reading
    /// it is not an event.
    fn hint(&self, key: &HintKey) -> Option<Hint>;

    /// Stores (or with `None` clears) the client's record under `key`. The world keeps it for
    /// every later attempt of every message of the run, and records the change in the trace.
    fn set_hint(&self, key: HintKey, hint: Option<Hint>);

    /// The record under `key` when it is in force (its retry time is after now): the client
    /// consulted it to skip something, and the world records that. `None` otherwise.
    fn consult(&self, key: &HintKey) -> Option<Hint>;

    /// Keeps an open session for later reuse under `key`, for at most `keep` (a connection
    /// cache). The world holds it for every later attempt of every message; one never reused
    /// is closed when its time runs out or the run ends.
    fn park(&self, key: ReuseKey, session: Self::Session, keywords: Arc<[Keyword]>, keep: Duration);

    /// A session kept under `key` that is still within its time, if any; the world records the
    /// reuse. Whether the server still has it open shows at the next command.
    fn reuse(&self, key: &ReuseKey) -> Option<Reused<Self::Session>>;

    /// Marks message `message`'s attempt for `domain` in flight until the returned value is
    /// dropped (OpenSMTPD's relay, one per destination domain, shared by every message to it).
    /// Ready at once when no other attempt for `domain` is in flight; otherwise the world records
    /// that the message joins the attempt in flight, and the future is ready when that attempt
    /// and every one that joined before it have ended (first come, first served). An attempt
    /// holds at most one domain at a time, so waits cannot form a cycle; each wait lasts as long
    /// as the attempts ahead of it, which the client's own timeouts bound.
    fn join(&self, domain: &Name, message: usize) -> impl Future<Output = Self::InFlight>;

    /// Counts an attempt for `domain` busy until the returned value is dropped, and says whether
    /// an on-demand connection cache is on for it: whether it may take cached sessions and park
    /// its own (Postfix's queue manager, qmgr_entry.c `qmgr_entry_select`, the flags
    /// `DEL_REQ_FLAG_CONN_LOAD` and `DEL_REQ_FLAG_CONN_STORE`). The client keeps, per domain, an
    /// in-core queue that lives while an attempt for the domain is busy and is forgotten when the
    /// last one ends. An attempt that starts no later than 1 s after an earlier attempt for the
    /// domain ended, while that queue lived (back-to-back), turns caching on for itself and every
    /// later attempt while the queue lives. Attempts that merely start together never turn it on.
    fn dispatch(&self, domain: &Name) -> (Self::Busy, bool);
}

/// What a cached connection is kept under.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReuseKey {
    /// Its address: reused only by a later attempt that chose the same address (Postfix's
    /// connection cache, Exim passing a connection to waiting messages).
    Address(IpAddr),
    /// The recipient domain it served: reused by a later message to that domain before any MX
    /// selection (maddy's connection pool).
    Domain(Name),
}

/// A session taken back from the connection cache.
pub struct Reused<S> {
    /// The session.
    pub session: S,
    /// The EHLO keywords in force on it.
    pub keywords: Arc<[Keyword]>,
    /// The host it was opened for.
    pub host: Name,
    /// Its address.
    pub address: IpAddr,
}

/// What a client remembers across attempts and messages: Exim's retry hints, Sendmail's host
/// status, a queue manager's dead destinations. The world owns these records and hands them to
/// every attempt, so a run stays a pure function of (scenario, policy, choices).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HintKey {
    /// A host address that failed at connection level; every message skips it until then.
    Host(IpAddr),
    /// A host address that failed for one message (a 4yz to MAIL, say); only that message skips
    /// it.
    HostMessage(IpAddr, usize),
    /// A recipient, from a sender, that got a transient failure at RCPT (Exim's
    /// `R:address:<sender>`): every message from that sender to that recipient shares it.
    Recipient(Mailbox, Mailbox),
    /// A destination domain whose every host failed at connection level.
    Domain(Name),
}

impl fmt::Display for HintKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HintKey::Host(address) => write!(formatter, "host {address}"),
            HintKey::HostMessage(address, message) => {
                write!(formatter, "host {address} for message {message}")
            }
            HintKey::Recipient(recipient, sender) => {
                write!(formatter, "recipient {recipient} from <{sender}>")
            }
            HintKey::Domain(domain) => write!(formatter, "destination {domain}"),
        }
    }
}

/// One record: when it may be tried again, the backoff it has reached, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    /// Not tried again before this time.
    pub until: Instant,
    /// Failures so far and the last delay, for the next retry time.
    pub backoff: Backoff,
    /// The failure that made or renewed it.
    pub reason: Arc<str>,
}

/// One message to deliver, and who is sending it.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    /// The sending MTA's identity.
    pub client: &'a ClientIdentity,
    /// The message; on a retry, only the recipients still pending.
    pub message: &'a Message,
    /// Its index in the scenario.
    pub message_index: usize,
    /// Which attempt this is for the message: 1 for the first.
    pub attempt: u32,
    /// When the message entered the queue.
    pub submitted: Instant,
    /// True in a queue scenario (`messages:`), where a deferral is retried by the policy's
    /// schedule; false for a single pass (`message:`), where a deferral is final.
    pub queued: bool,
}

/// A boxed future that need not be `Send`: the simulator runs on one thread.
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A client policy: how an MTA picks among MX hosts and falls back from one to another.
///
/// One call is one delivery attempt for one message: one pass over the candidate list of each
/// recipient domain. The result must hold exactly one outcome per recipient.
pub trait Policy<W: World> {
    /// The name scenario files use in `expect:`.
    fn name(&self) -> &str;
    /// Runs one delivery attempt.
    fn deliver<'a>(&'a self, world: &'a W, job: Job<'a>) -> LocalFuture<'a, Vec<RecipientOutcome>>;
    /// How the client's queue retries deferred messages, in queue scenarios. The default is the
    /// RFC 5321 baseline's ([`QueueSettings::rfc5321`]).
    fn queue(&self) -> QueueSettings {
        QueueSettings::rfc5321()
    }
}

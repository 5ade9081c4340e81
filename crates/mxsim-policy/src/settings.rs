//! Policy settings: every choice an SMTP client makes that the RFCs leave open, as data.
//!
//! One engine (`engine.rs`) runs any [`Settings`]. Settings come from policy files
//! (docs/policy-format.md, loaded by `file.rs`); the presets, `rfc5321` among them, are files
//! under `policies/`. Another policy is a different value of this type, not different code.

use std::sync::Arc;

use mxsim_model::smtp::{Command, ReplyClass, ReplyCode};
use mxsim_model::time::Duration;

/// How hosts of equal MX preference are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EqualOrder {
    /// Shuffled per attempt from the run's seeded RNG (RFC 5321 §5.1 MUST).
    Random,
    /// As the DNS answer lists them.
    Dns,
    /// By a fixed hash of the host name: the same order every attempt. No preset uses it:
    /// Sendmail's `mxrand` reseeds per delivery process, which `Random` models.
    StableHash,
    /// Fewest open connections first, ties in the order the hosts' address lookups completed
    /// (lookups sent together, in DNS order; ties in completion keep DNS order): OpenSMTPD,
    /// whose `mta.c` inserts each resolved host after those of its preference already known
    /// and whose `mta_find_route()` takes the first route with the fewest connections.
    FewestConnections,
}

/// Which address family is tried first for each host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressOrder {
    /// A records, then AAAA records, each in zone order.
    Ipv4First,
    /// AAAA records, then A records.
    Ipv6First,
}

/// What a failure at some stage of a session does to the recipients it affects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// They go on to the next address (of this host or the next).
    NextAddress,
    /// They go on to the next host, skipping this host's other addresses.
    NextHost,
    /// They go on to the next address; at the final candidate, they bounce.
    NextOrBounce,
    /// They go on to the next host; at the last host, they bounce (Stalwart, maddy: the last
    /// host's status decides).
    NextHostOrBounce,
    /// They stay queued and this attempt ends: no other address is tried.
    Defer,
    /// They bounce.
    Bounce,
}

/// The ways a step can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A 4yz reply (or a reply of the wrong positive class).
    Transient,
    /// A 5yz reply.
    Permanent,
    /// No reply within the step's timeout.
    Timeout,
    /// The connection was refused, reset, closed or broke.
    Dropped,
    /// The server closed the connection before replying to a command (an orderly close: after
    /// its last reply, or with no greeting at all). A client may treat it apart from a reset
    /// or a timeout (maddy: go-smtp returns `io.EOF`, which is not temporary). Optional in the
    /// action map: left out, the stage's `dropped` action applies.
    Closed,
}

impl Failure {
    /// Every failure of a command stage, in file order.
    pub const ALL: [Failure; 5] = [
        Failure::Transient,
        Failure::Permanent,
        Failure::Timeout,
        Failure::Dropped,
        Failure::Closed,
    ];

    /// The key used in policy files.
    pub const fn key(self) -> &'static str {
        match self {
            Failure::Transient => "4yz",
            Failure::Permanent => "5yz",
            Failure::Timeout => "timeout",
            Failure::Dropped => "dropped",
            Failure::Closed => "closed",
        }
    }
}

/// The stages of a session, for the action map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Opening TCP.
    Connect,
    /// An SMTP command (or the greeting).
    Command(Command),
    /// The TLS handshake after STARTTLS.
    Tls,
}

impl Stage {
    /// Every stage a policy file maps, in file order.
    pub const ALL: [Stage; 10] = [
        Stage::Connect,
        Stage::Command(Command::Greeting),
        Stage::Command(Command::Ehlo),
        Stage::Command(Command::Helo),
        Stage::Command(Command::Starttls),
        Stage::Tls,
        Stage::Command(Command::Mail),
        Stage::Command(Command::Rcpt),
        Stage::Command(Command::Data),
        Stage::Command(Command::EndOfData),
    ];

    /// The key used in policy files.
    pub const fn key(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Tls => "tls",
            Stage::Command(command) => command.key(),
        }
    }

    /// The failures this stage can have: no reply classes before there is a server to reply.
    pub fn failures(self) -> &'static [Failure] {
        match self {
            Stage::Connect | Stage::Tls => &[Failure::Timeout, Failure::Dropped],
            Stage::Command(_) => &Failure::ALL,
        }
    }
}

/// What each failure at each stage does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionMap {
    /// `(stage, failure, action)`; the loader guarantees every pair of [`Stage::ALL`] ×
    /// [`Stage::failures`] is present exactly once, except [`Failure::Closed`], present only
    /// where a policy file gave it (or inherited it).
    pub entries: Vec<(Stage, Failure, Action)>,
}

impl ActionMap {
    /// The action for a failure; a `closed` without an entry of its own takes `dropped`'s.
    pub fn action(&self, stage: Stage, failure: Failure) -> Action {
        match self
            .entries
            .iter()
            .find(|(s, f, _)| *s == stage && *f == failure)
        {
            Some((_, _, action)) => *action,
            None if failure == Failure::Closed => self.action(stage, Failure::Dropped),
            // QUIT failures are never mapped: the session is over either way.
            None if stage == Stage::Command(Command::Quit) => Action::NextAddress,
            None => panic!(
                "action map has no entry for {stage:?} {failure:?}; the loader should have refused it"
            ),
        }
    }
}

/// An EHLO reply that makes the client fall back to HELO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMatch {
    /// Exactly this code.
    Code(ReplyCode),
    /// Any code of this class.
    Class(ReplyClass),
}

impl ReplyMatch {
    /// True when `code` matches.
    pub fn matches(self, code: ReplyCode) -> bool {
        match self {
            ReplyMatch::Code(expected) => expected == code,
            ReplyMatch::Class(class) => code.class() == class,
        }
    }
}

/// When the client negotiates STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsUse {
    /// Never (a message that requires TLS then lacks STARTTLS at every host).
    Never,
    /// Only when the message requires STARTTLS or REQUIRETLS.
    WhenRequired,
    /// Whenever the server offers STARTTLS.
    Opportunistic,
}

/// What follows a failed opportunistic STARTTLS or handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFallback {
    /// Reconnect to the same address and go on without STARTTLS.
    Plaintext,
    /// Go on to the next address.
    NextAddress,
    /// Go on to the next host.
    NextHost,
}

/// What a refused opportunistic STARTTLS (a 4yz or 5yz reply) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StarttlsRefused {
    /// `tls_fallback` decides, as for a failed handshake.
    Fallback,
    /// Go on in plaintext on the same session (Stalwart's `StartTlsResult::Unavailable`);
    /// `tls_fallback` is then for a failed handshake only.
    Continue,
    /// The `on.starttls` entry decides, as when TLS is required (maddy: no fallback after a
    /// rejected command; Haraka: a 4yz is a temp_fail of the message).
    OnStarttls,
}

/// What to do when a host lacks a required keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeywordAction {
    /// Send anyway, without the extension.
    Ignore,
    /// Convert the message so it no longer needs the extension, then send (Exim's
    /// `utf8_downconvert`). An SMTPUTF8 message whose addresses have non-ASCII local parts
    /// cannot be converted (RFC 6531 §3.2) and bounces.
    Downgrade,
    /// QUIT and bounce at once.
    Bounce,
    /// QUIT and defer; the attempt ends.
    Defer,
    /// QUIT and try the other hosts of the same preference, then `final`.
    SamePreference(Final),
    /// QUIT and go on down the whole list, then `final`.
    WholeList(Final),
}

impl KeywordAction {
    /// How strongly this action ends the search, for a host that lacks several keywords.
    pub fn strictness(self) -> u8 {
        match self {
            KeywordAction::Ignore => 0,
            KeywordAction::Downgrade => 1,
            KeywordAction::WholeList(_) => 2,
            KeywordAction::SamePreference(_) => 3,
            KeywordAction::Defer => 4,
            KeywordAction::Bounce => 5,
        }
    }
}

/// What happens when no host had the keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Final {
    /// Bounce.
    Bounce,
    /// Defer.
    Defer,
    /// RFC 5321 §2.2.3's requeue: defer when some host could not be asked (unreachable, or a
    /// failure before its EHLO was answered), so the queue asks again later; bounce when every
    /// host answered without the keyword.
    Requeue,
}

/// Which keyword a rule is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeywordPattern {
    /// This keyword (uppercase).
    Named(Arc<str>),
    /// Every keyword without a rule of its own (`"*"`).
    Any,
}

/// Searching for hosts that offer wanted keywords.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WantedAction {
    /// Use what the host offers.
    Ignore,
    /// Look at the other hosts of the same preference, then use the best session.
    SamePreference,
    /// Look at every candidate, then use the best session.
    WholeList,
}

/// Retry records a client keeps across attempts and messages (its hints), each with the
/// schedule that sets its retry time; `None` keeps no such record. The world stores them
/// (`World::set_hint`), so every later attempt of every message sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Host records: an address that fails at connection level (connect, greeting, EHLO or
    /// HELO, STARTTLS or TLS, or a 421 anywhere) is skipped by every message until its retry
    /// time; a transient failure of MAIL, DATA or the end of data is kept for that message
    /// only (Exim's `T:host:ip` and `T:host:ip:msgid`, Sendmail's host status).
    pub hosts: Option<mxsim_model::queue::Schedule>,
    /// Recipient records: after a transient failure at RCPT, later attempts of the message
    /// (queue runs) do not route the recipient until its retry time; a first attempt ignores
    /// them (Exim's `R:` records, deliver.c "ignore retry data when not in a queue run").
    pub recipients: Option<mxsim_model::queue::Schedule>,
    /// Destination records: when every host of a domain failed at connection level, later
    /// attempts for that domain are deferred at once until the retry time (Postfix's queue
    /// manager marking a destination dead, "delivery temporarily suspended").
    pub destinations: Option<mxsim_model::queue::Schedule>,
}

/// A connection cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reuse {
    /// What a cached session is found by.
    pub by: ReuseBy,
    /// How long an unused session stays cached.
    pub keep: Duration,
    /// Caching on demand (Postfix's `smtp_connection_cache_on_demand`): an attempt takes and
    /// parks sessions only while back-to-back attempts for its domain turned caching on
    /// (`World::dispatch`); otherwise every session is parked after a delivery.
    pub on_demand: bool,
}

/// What a cached session is found by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReuseBy {
    /// Its address: an attempt that chose that address reuses it (Postfix's connection cache;
    /// Exim passing an open connection to messages waiting for the host).
    Address,
    /// The recipient domain it delivered to: a later message to that domain reuses it before
    /// any MX selection (maddy's connection pool).
    Domain,
}

/// Whether an attempt for a recipient domain joins another attempt for that domain in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Join {
    /// Every attempt runs on its own, whatever else is in flight.
    #[default]
    None,
    /// One relay per recipient domain, shared by every message to it (OpenSMTPD's `mta_relay`):
    /// an attempt for a domain that already has an attempt in flight waits for it to end, then
    /// takes the session it parked (`reuse:`), if any, else goes on with its own attempt, with
    /// whatever records the first left.
    Domain,
}

/// Parallel connection attempts (RFC 8305 §5, "Connection Attempt Delay"): while no session
/// of the attempt is usable yet, the next candidate is started beside the one in flight, without
/// abandoning it (OpenSMTPD's connector, `mta.c` `mta_connect()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parallel {
    /// How long after the last connection began the next one may start, when none in flight
    /// has become usable (reached the end of EHLO, and TLS); also the least time between two
    /// connection starts of the attempt, after a failure too (the pacing of OpenSMTPD's
    /// `conndelay_relay`).
    pub delay: Duration,
    /// At most this many connections in flight at once (not yet usable), the first included.
    pub max: u32,
}

/// Limits per delivery attempt; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Connection attempts.
    pub addresses: Option<u32>,
    /// Sessions that reached MAIL (handshake and keyword failures do not count).
    pub sessions: Option<u32>,
    /// Distinct MX host names, best first.
    pub hosts: Option<u32>,
    /// Addresses of one host.
    pub addresses_per_host: Option<u32>,
}

/// Per-step waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Each DNS question.
    pub dns: Duration,
    /// The TCP handshake.
    pub connect: Duration,
    /// The 220 greeting (RFC 5321 §4.5.3.2.1: 5 min).
    pub greeting: Duration,
    /// The EHLO reply.
    pub ehlo: Duration,
    /// The HELO reply.
    pub helo: Duration,
    /// The STARTTLS reply.
    pub starttls: Duration,
    /// The TLS handshake.
    pub tls: Duration,
    /// The MAIL reply (§4.5.3.2.2: 5 min).
    pub mail: Duration,
    /// Each RCPT reply (§4.5.3.2.3: 5 min).
    pub rcpt: Duration,
    /// The DATA reply (§4.5.3.2.4: 2 min).
    pub data: Duration,
    /// The reply after the final dot (§4.5.3.2.6: 10 min).
    pub end_of_data: Duration,
    /// The QUIT reply.
    pub quit: Duration,
}

impl Timeouts {
    /// The policy-file keys, in the order of [`Timeouts::to_array`].
    pub const KEYS: [&'static str; 12] = [
        "dns",
        "connect",
        "greeting",
        "ehlo",
        "helo",
        "starttls",
        "tls",
        "mail",
        "rcpt",
        "data",
        "end_of_data",
        "quit",
    ];

    /// Every wait, in the order of [`Timeouts::KEYS`].
    pub const fn to_array(&self) -> [Duration; 12] {
        [
            self.dns,
            self.connect,
            self.greeting,
            self.ehlo,
            self.helo,
            self.starttls,
            self.tls,
            self.mail,
            self.rcpt,
            self.data,
            self.end_of_data,
            self.quit,
        ]
    }

    /// The waits from an array in the order of [`Timeouts::KEYS`].
    pub const fn from_array(values: [Duration; 12]) -> Timeouts {
        let [
            dns,
            connect,
            greeting,
            ehlo,
            helo,
            starttls,
            tls,
            mail,
            rcpt,
            data,
            end_of_data,
            quit,
        ] = values;
        Timeouts {
            dns,
            connect,
            greeting,
            ehlo,
            helo,
            starttls,
            tls,
            mail,
            rcpt,
            data,
            end_of_data,
            quit,
        }
    }

    /// The wait for a command's reply.
    pub fn for_command(&self, command: Command) -> Duration {
        match command {
            Command::Greeting => self.greeting,
            Command::Ehlo => self.ehlo,
            Command::Helo => self.helo,
            Command::Starttls => self.starttls,
            Command::Mail => self.mail,
            Command::Rcpt => self.rcpt,
            Command::Data => self.data,
            Command::EndOfData => self.end_of_data,
            // RSET, before a cached session carries another transaction, waits as long as QUIT.
            Command::Quit | Command::Rset => self.quit,
        }
    }
}

/// The client's own host in the MX list (RFC 5321 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfMx {
    /// Drop records at and above its own preference; bounce when none remain (§5.1 MUST).
    Truncate,
    /// As `Truncate`, but defer instead of bouncing when none remain (Exim's `self = freeze`).
    TruncateOrDefer,
    /// Skip only the hosts that are the client itself (Haraka's `local_mx_ok = false`).
    SkipSelf,
    /// Do nothing: the client may connect to itself.
    Ignore,
}

/// What the client does when no MX host (or the implicit MX) has an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoAddress {
    /// Bounce if every lookup failed permanently (NXDOMAIN/NODATA; RFC 5321 §5.1 "MUST be
    /// reported as an error"), else defer.
    BounceIfPermanent,
    /// Defer, whatever the lookups said.
    Defer,
    /// Bounce when the list was the implicit MX (the domain's own name), however its lookups
    /// failed; defer when it came from MX records (Haraka: `get_implicit_mx()` returns an
    /// empty list, which hmail.js bounces, while MX hosts without addresses are a temp_fail).
    BounceIfImplicit,
}

/// A rule a policy claims to keep, by its id in the rules table (`mxsim_model::rules`): the
/// judge holds every run of the policy to it, whatever the rule's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim(pub &'static str);

impl Claim {
    /// P1: after a greeting and a reply to EHLO at preference p, never a host worse than p.
    pub const NEVER_WORSE_PREFERENCE_AFTER_EHLO: Claim = Claim("P1");

    /// The rule's id.
    pub const fn key(self) -> &'static str {
        self.0
    }
}

/// A whole policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The name `expect:` uses.
    pub name: String,
    /// One line for listings.
    pub summary: String,
    /// What it models, cited.
    pub source: String,
    /// Equal-preference order.
    pub equal_order: EqualOrder,
    /// Longest CNAME chain followed before the lookup counts as failed (RFC 5321 baseline: 8).
    pub cname_chain_max: u32,
    /// Address family order per host.
    pub address_order: AddressOrder,
    /// Per-attempt limits.
    pub limits: Limits,
    /// Parallel connection attempts; `None` tries one connection at a time.
    pub parallel: Option<Parallel>,
    /// Per-step waits.
    pub timeouts: Timeouts,
    /// What failures do.
    pub actions: ActionMap,
    /// EHLO replies answered with HELO on the same connection.
    pub helo_fallback: Vec<ReplyMatch>,
    /// When to use STARTTLS.
    pub tls: TlsUse,
    /// After a failed opportunistic STARTTLS.
    pub tls_fallback: Option<TlsFallback>,
    /// A message that requires TLS, at a host that does not advertise STARTTLS: send STARTTLS
    /// anyway and let the reply decide through `on.starttls` (mox), instead of treating the
    /// host as lacking the required keyword STARTTLS.
    pub starttls_unadvertised_sent: bool,
    /// What a 4yz or 5yz reply to opportunistic STARTTLS does.
    pub starttls_refused: StarttlsRefused,
    /// Missing required keywords, by keyword; [`KeywordPattern::Any`] for the rest.
    pub required: Vec<(KeywordPattern, KeywordAction)>,
    /// When two or more recipients were sent RCPT in a session and none was accepted, every
    /// refusal counts as a 4yz for `on.rcpt` (mox: `errNoRecipients` is not permanent); a lone
    /// recipient keeps its own reply's class.
    pub rcpt_none_accepted_transient: bool,
    /// A message larger than the host's SIZE: bounce (true) or send and let the server decide.
    pub size_exceeded_bounces: bool,
    /// Missing wanted keywords.
    pub wanted: WantedAction,
    /// How long a search for wanted keywords may take.
    pub search_limit: Option<Duration>,
    /// In a queue scenario, a message whose wanted keywords no host offered is requeued until it
    /// has been queued this long, then sent without them (RFC 5321 §2.2.3); `None`: sent at
    /// once with the best session.
    pub wanted_send_without_after: Option<Duration>,
    /// The queue: retry schedule, scans, lifetime, delay warnings.
    pub queue: mxsim_model::queue::QueueSettings,
    /// What the client remembers across attempts and messages.
    pub memory: Memory,
    /// The connection cache: after a delivery the session is kept open for another
    /// transaction instead of QUIT; `None` closes it.
    pub reuse: Option<Reuse>,
    /// Whether an attempt joins another attempt for the same recipient domain in flight.
    pub join: Join,
    /// After a greeting and a reply to EHLO at preference p, never a host worse than p.
    pub same_or_better_after_ehlo: bool,
    /// What the client does when it finds itself in the MX list.
    pub self_mx: SelfMx,
    /// NXDOMAIN on the MX query falls back to the domain's own addresses, like NODATA.
    pub implicit_mx_on_nxdomain: bool,
    /// A lone null MX (`0 .`) defers instead of bouncing: a client with no null-MX handling
    /// dials the host "." and fails transiently (chasquid). RFC 7505 §3 says bounce.
    pub null_mx_alone_defers: bool,
    /// Ignore `0 .` when other MX records sit beside it (RFC 7505 forbids publishing both).
    pub null_mx_beside_others_ignored: bool,
    /// When no MX host has an address.
    pub no_address: NoAddress,
    /// Invariants claimed.
    pub claims: Vec<Claim>,
    /// The rules this policy documents that it departs from, each with its reason and
    /// source: a broken rule listed here is graded DEPARTS, not FAIL or NON-STRICT. Never
    /// inherited through `extends`.
    pub departures: Vec<mxsim_model::rules::Departure>,
}

impl Settings {
    /// True when this client knows REQUIRETLS: any rule for it but `ignore`. Such a client
    /// treats a REQUIRETLS message as also requiring STARTTLS (RFC 8689 §4.2.1).
    pub fn knows_requiretls(&self) -> bool {
        self.required_action("REQUIRETLS") != KeywordAction::Ignore
    }

    /// The rule for a missing required keyword.
    pub fn required_action(&self, keyword: &str) -> KeywordAction {
        let named = self.required.iter().find(|(pattern, _)| matches!(pattern, KeywordPattern::Named(name) if name.eq_ignore_ascii_case(keyword)));
        let any = self
            .required
            .iter()
            .find(|(pattern, _)| *pattern == KeywordPattern::Any);
        named
            .or(any)
            .map(|(_, action)| *action)
            .unwrap_or(KeywordAction::Bounce)
    }
}

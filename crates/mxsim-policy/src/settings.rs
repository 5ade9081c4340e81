//! Policy settings: every choice an SMTP client makes that the RFCs leave open, as data.
//!
//! One engine (`engine.rs`) runs any [`Settings`]. The `rfc5321` baseline is one value of this
//! type ([`Settings::rfc5321`]); every *(choice)* of docs/rfc5321-baseline.md is a named field
//! here, so another policy is a different value, not different code.

use mxsim_model::smtp::Command;
use mxsim_model::time::Duration;

/// How hosts of equal MX preference are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EqualOrder {
    /// Shuffled per attempt from the run's seeded RNG (RFC 5321 §5.1 MUST).
    Random,
    /// As the DNS answer lists them.
    Dns,
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
    /// They go on to the next address; if there is none, they bounce.
    NextOrBounce,
    /// They stay queued and this attempt ends: no other address is tried.
    Defer,
    /// They bounce.
    Bounce,
}

/// The four ways a step can fail.
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

/// What each failure at each stage does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionMap {
    /// `(stage, failure, action)`, looked up first match; every stage must be covered.
    pub entries: Vec<(Stage, Failure, Action)>,
}

impl ActionMap {
    /// The action for a failure.
    pub fn action(&self, stage: Stage, failure: Failure) -> Action {
        self.entries
            .iter()
            .find(|(s, f, _)| *s == stage && *f == failure)
            .map(|(_, _, action)| *action)
            .unwrap_or_else(|| panic!("action map has no entry for {stage:?} {failure:?}"))
    }
}

/// What to do when a host lacks a keyword the message requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingRequired {
    /// QUIT and bounce at once; no other host is tried.
    Bounce,
}

/// What to do when a host lacks a keyword the message merely wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingWanted {
    /// Send without it.
    Ignore,
}

/// When the client negotiates STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsUse {
    /// Only when the message requires STARTTLS or REQUIRETLS.
    WhenRequired,
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
            Command::Quit => self.quit,
        }
    }
}

/// A whole policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The name `expect:` uses.
    pub name: String,
    /// Equal-preference order.
    pub equal_order: EqualOrder,
    /// Longest CNAME chain followed before the lookup counts as failed.
    pub cname_chain_max: u32,
    /// Address family order per host.
    pub address_order: AddressOrder,
    /// At most this many connection attempts per delivery attempt; `None`: no limit.
    pub addresses_max: Option<u32>,
    /// Per-step waits.
    pub timeouts: Timeouts,
    /// What failures do.
    pub actions: ActionMap,
    /// EHLO reply codes that make the client send HELO on the same connection.
    pub helo_fallback_codes: Vec<u16>,
    /// A required keyword is missing.
    pub missing_required: MissingRequired,
    /// A wanted keyword is missing.
    pub missing_wanted: MissingWanted,
    /// When to use STARTTLS.
    pub tls: TlsUse,
    /// Ignore `0 .` when other MX records sit beside it (RFC 7505 forbids publishing both).
    pub null_mx_beside_others_ignored: bool,
    /// When no MX host has an address: bounce if every lookup failed permanently
    /// (NXDOMAIN/NODATA; RFC 5321 §5.1 "MUST be reported as an error"), else defer.
    pub no_address_bounces_if_permanent: bool,
}

fn map(rows: &[(Stage, [Action; 4])]) -> ActionMap {
    let failures = [
        Failure::Transient,
        Failure::Permanent,
        Failure::Timeout,
        Failure::Dropped,
    ];
    let entries = rows
        .iter()
        .flat_map(|(stage, actions)| {
            failures
                .iter()
                .zip(actions)
                .map(move |(failure, action)| (*stage, *failure, *action))
        })
        .collect();
    ActionMap { entries }
}

impl Settings {
    /// The `rfc5321` baseline, step by step as docs/rfc5321-baseline.md gives it.
    pub fn rfc5321() -> Settings {
        use Action::{Bounce, Defer, NextAddress as Next};
        use Command as C;
        // Columns: 4yz, 5yz, timeout, dropped.
        let actions = map(&[
            (Stage::Connect, [Next, Next, Next, Next]),
            // (choice) A 5yz greeting is this host's refusal, not the domain's.
            (Stage::Command(C::Greeting), [Next, Next, Next, Next]),
            (Stage::Command(C::Ehlo), [Next, Next, Next, Next]),
            // (choice) HELO failures are handled like EHLO failures.
            (Stage::Command(C::Helo), [Next, Next, Next, Next]),
            (Stage::Command(C::Starttls), [Next, Next, Next, Next]),
            (Stage::Tls, [Next, Next, Next, Next]),
            // (choice) A MAIL timeout is handled like a dropped connection (§3.8: as if 451).
            (Stage::Command(C::Mail), [Next, Bounce, Next, Next]),
            (Stage::Command(C::Rcpt), [Next, Bounce, Next, Next]),
            (Stage::Command(C::Data), [Next, Bounce, Next, Next]),
            // (choice) 4yz after the dot goes on to the next address. No reply or a drop after
            // the dot defers with no other address tried (§4.5.3.2.6: duplicates).
            (Stage::Command(C::EndOfData), [Next, Bounce, Defer, Defer]),
            (Stage::Command(C::Quit), [Next, Next, Next, Next]),
        ]);
        Settings {
            name: "rfc5321".to_owned(),
            equal_order: EqualOrder::Random,
            cname_chain_max: 8,
            // (choice) A records, then AAAA, each in zone order.
            address_order: AddressOrder::Ipv4First,
            // (choice) No limit on addresses (§5.1 allows one and asks for at least two).
            addresses_max: None,
            timeouts: Timeouts {
                // (choice) The RFC sets no DNS timeout.
                dns: Duration::seconds(30),
                // (choice) The RFC sets no connect timeout.
                connect: Duration::seconds(30),
                greeting: Duration::minutes(5),
                // (choice) The RFC sets no EHLO/HELO/STARTTLS/QUIT timeouts.
                ehlo: Duration::minutes(5),
                helo: Duration::minutes(5),
                starttls: Duration::minutes(5),
                tls: Duration::minutes(5),
                mail: Duration::minutes(5),
                rcpt: Duration::minutes(5),
                data: Duration::minutes(2),
                end_of_data: Duration::minutes(10),
                quit: Duration::minutes(5),
            },
            actions,
            helo_fallback_codes: vec![500, 502],
            // (choice) No looking elsewhere for a required keyword (§2.2.3 would allow it).
            missing_required: MissingRequired::Bounce,
            missing_wanted: MissingWanted::Ignore,
            // (choice) RFC 5321 has no TLS; STARTTLS only when the message requires it.
            tls: TlsUse::WhenRequired,
            // (choice) RFC 7505 forbids publishing null MX beside others; if it happens anyway,
            // the usable records are used.
            null_mx_beside_others_ignored: true,
            no_address_bounces_if_permanent: true,
        }
    }
}

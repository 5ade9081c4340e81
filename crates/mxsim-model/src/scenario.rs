//! Scenario files: the typed model and its loader.
//!
//! The shape is the contract in docs/scenario-format.md. Loading walks the located YAML tree,
//! records every problem it finds (unknown keys with the nearest known key, bad values, semantic
//! contradictions), and returns either a complete [`Scenario`] or all the problems.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::diag::Diagnostics;
use crate::dns::{DnsAnswer, DnsFailure, Mx, RecordType};
use crate::name::{Mailbox, Name};
use crate::outcome::DispositionKind;
use crate::schema::{Fields, Reader, printable};
use crate::smtp::{Command, Keyword, Reply};
use crate::time::{Duration, Instant};
use crate::yaml::{self, Node, Position, Value};

/// A whole scenario: one world, the mail to send, and what each policy must do.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// One line.
    pub title: String,
    /// Rules or questions exercised.
    pub refs: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// Default seed for runs of this file.
    pub seed: Option<u64>,
    /// The sending MTA.
    pub client: ClientIdentity,
    /// The mail, in submission order.
    pub messages: Vec<Message>,
    /// True when written as `messages:` (a queue scenario).
    pub queue: bool,
    /// `horizon:`: a queue scenario ends here for every policy; `None`: each policy's own
    /// lifetime after the last submission, plus a day for its last attempt.
    pub horizon: Option<Duration>,
    /// DNS.
    pub zone: Zone,
    /// SMTP servers, in file order.
    pub servers: Vec<Server>,
    /// What policies must do, in file order.
    pub expectations: Vec<Expectation>,
    /// What loads but is likely a mistake (an MX target nothing answers for, no `expect:`),
    /// in file order; shown as warnings, never a reason to refuse the file.
    pub warnings: Diagnostics,
}

/// The sending MTA's identity.
#[derive(Clone, Debug)]
pub struct ClientIdentity {
    /// EHLO name; matched against MX targets (self-MX, RFC 5321 §5.1).
    pub name: Name,
    /// Own addresses; matched against MX targets' addresses.
    pub addresses: Vec<IpAddr>,
}

/// One message.
#[derive(Clone, Debug)]
pub struct Message {
    /// Submission time.
    pub at: Instant,
    /// Reverse path.
    pub from: Mailbox,
    /// Recipients, in file order.
    pub to: Arc<[Mailbox]>,
    /// Size in bytes, compared with SIZE values.
    pub size: Option<u64>,
    /// Keywords without which the message must not go to a host (uppercase).
    pub requires: Vec<Arc<str>>,
    /// Keywords used when offered (uppercase).
    pub wants: Vec<Arc<str>>,
}

/// The DNS zone: every name the world knows.
#[derive(Clone, Debug, Default)]
pub struct Zone {
    /// Names in canonical order.
    pub names: BTreeMap<Name, ZoneName>,
}

/// One owner name.
#[derive(Clone, Debug)]
pub enum ZoneName {
    /// The whole name does not exist.
    NxDomain,
    /// Records, possibly changing over time.
    Records(NameRecords),
}

/// The records of a name, and windows of time in which some of them differ.
#[derive(Clone, Debug, Default)]
pub struct NameRecords {
    /// Records outside every window.
    pub base: RecordSets,
    /// Overrides; later entries win.
    pub during: Vec<Window<RecordSets>>,
}

/// Records by type; `None` means the file did not mention the type.
#[derive(Clone, Debug, Default)]
pub struct RecordSets {
    /// MX records or a failure.
    pub mx: Option<RecordSet<Mx>>,
    /// A records or a failure.
    pub a: Option<RecordSet<IpAddr>>,
    /// AAAA records or a failure.
    pub aaaa: Option<RecordSet<IpAddr>>,
    /// An alias target or a failure.
    pub cname: Option<Result<Name, DnsFailure>>,
    /// Time every answer for this name takes.
    pub latency: Option<Duration>,
}

/// Records of one type, or the failure the type answers with.
#[derive(Clone, Debug)]
pub enum RecordSet<T> {
    /// Records in zone order.
    Records(Arc<[T]>),
    /// A failure.
    Failure(DnsFailure),
}

/// A stretch of virtual time `[from, until)` with overrides.
#[derive(Clone, Debug)]
pub struct Window<T> {
    /// Start, inclusive.
    pub from: Instant,
    /// End, exclusive; `None` runs to the end.
    pub until: Option<Instant>,
    /// What differs inside the window.
    pub patch: T,
}

/// A value at `now`: the last window containing `now` whose patch sets it, else the base's.
fn windowed<'s, P, T>(
    base: &'s P,
    during: &'s [Window<P>],
    now: Instant,
    get: impl Fn(&'s P) -> Option<&'s T>,
) -> Option<&'s T> {
    during
        .iter()
        .rev()
        .filter(|window| window.contains(now))
        .find_map(|window| get(&window.patch))
        .or_else(|| get(base))
}

impl<T> Window<T> {
    /// True when `now` lies in the window.
    pub fn contains(&self, now: Instant) -> bool {
        now >= self.from && self.until.is_none_or(|until| now < until)
    }
}

impl Zone {
    /// The answer to `record_type` at `name` at virtual time `now`, and its latency.
    /// [`DnsAnswer::Timeout`] means the answer never comes.
    pub fn answer(
        &self,
        name: &Name,
        record_type: RecordType,
        now: Instant,
    ) -> (DnsAnswer, Duration) {
        let Some(ZoneName::Records(records)) = self.names.get(name) else {
            return (DnsAnswer::NxDomain, Duration::ZERO);
        };
        let latency = records
            .field(now, |sets| sets.latency.as_ref())
            .copied()
            .unwrap_or_default();
        if let Some(cname) = records.field(now, |sets| sets.cname.as_ref()) {
            return (
                match cname {
                    Ok(target) => DnsAnswer::Cname(target.clone()),
                    Err(failure) => failure_answer(*failure),
                },
                latency,
            );
        }
        let answer = match record_type {
            RecordType::Mx => match records.field(now, |sets| sets.mx.as_ref()) {
                Some(RecordSet::Records(mx)) if !mx.is_empty() => DnsAnswer::Mx(mx.clone()),
                Some(RecordSet::Failure(failure)) => failure_answer(*failure),
                _ => DnsAnswer::NoData,
            },
            RecordType::A | RecordType::Aaaa => {
                let set = if record_type == RecordType::A {
                    records.field(now, |sets| sets.a.as_ref())
                } else {
                    records.field(now, |sets| sets.aaaa.as_ref())
                };
                match set {
                    Some(RecordSet::Records(addresses)) if !addresses.is_empty() => {
                        DnsAnswer::Addresses(addresses.clone())
                    }
                    Some(RecordSet::Failure(failure)) => failure_answer(*failure),
                    _ => DnsAnswer::NoData,
                }
            }
        };
        (answer, latency)
    }
}

fn failure_answer(failure: DnsFailure) -> DnsAnswer {
    match failure {
        DnsFailure::ServFail => DnsAnswer::ServFail,
        DnsFailure::Timeout => DnsAnswer::Timeout,
        DnsFailure::NxDomain => DnsAnswer::NxDomain,
        DnsFailure::NoData => DnsAnswer::NoData,
    }
}

impl NameRecords {
    /// A field's value at `now`: the last window containing `now` that sets it, else the base.
    pub fn field<'s, T>(
        &'s self,
        now: Instant,
        get: impl Fn(&'s RecordSets) -> Option<&'s T>,
    ) -> Option<&'s T> {
        windowed(&self.base, &self.during, now, get)
    }

    fn all_sets(&self) -> impl Iterator<Item = &RecordSets> {
        std::iter::once(&self.base).chain(self.during.iter().map(|window| &window.patch))
    }
}

/// What a server is keyed by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerKey {
    /// Every address of this host name.
    Name(Name),
    /// One address.
    Address(IpAddr),
}

/// One simulated SMTP server.
#[derive(Clone, Debug)]
pub struct Server {
    /// What the file keyed it by.
    pub key: ServerKey,
    /// Where the key is, for diagnostics.
    pub at: Position,
    /// The addresses it listens on, filled in by the loader.
    pub addresses: Vec<IpAddr>,
    /// Behaviour outside every window; unset fields take the defaults of a well-behaved server.
    pub base: Behaviour,
    /// Overrides; later entries win.
    pub during: Vec<Window<Behaviour>>,
}

impl Server {
    /// A behaviour field at `now`: the last window containing `now` that sets it, else the base.
    pub fn field<'s, T>(
        &'s self,
        now: Instant,
        get: impl Fn(&'s Behaviour) -> Option<&'s T>,
    ) -> Option<&'s T> {
        windowed(&self.base, &self.during, now, get)
    }

    /// The delay before replying to `command` at `now`.
    pub fn delay(&self, now: Instant, command: Command) -> Duration {
        let index = command as usize;
        self.field(now, |behaviour| behaviour.delays[index].as_ref())
            .copied()
            .unwrap_or_default()
    }

    /// The name used in default reply texts.
    pub fn label(&self) -> String {
        match &self.key {
            ServerKey::Name(name) => name.to_string(),
            ServerKey::Address(address) => address.to_string(),
        }
    }
}

/// How the server's address answers a SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectMode {
    /// Handshake completes.
    Accept,
    /// RST.
    Refuse,
    /// SYN dropped: no answer ever.
    Timeout,
    /// Accepted, then closed at once.
    Reset,
}

/// What the server says first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Greeting {
    /// This reply.
    Reply(Reply),
    /// Nothing; the connection stays silent.
    Silent,
}

/// How the server answers STARTTLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartTls {
    /// 220, then a good handshake.
    Ok,
    /// This reply instead of 220.
    Reply(Reply),
    /// 220, then the handshake fails.
    HandshakeFail,
}

/// How the server answers the end of data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndOfData {
    /// This reply.
    Reply(Reply),
    /// No reply, ever.
    Silent,
    /// The server accepts the message (2yz) but the reply never reaches the client.
    Lost,
}

/// RCPT replies: one for all, or per recipient with a default.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RcptReplies {
    /// Per recipient.
    pub by_recipient: Vec<(Mailbox, Reply)>,
    /// For recipients not listed (`"*"`, or the single code).
    pub default: Option<Reply>,
}

/// One server's behaviour, or a window's override of it: every field optional.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// `connect:`.
    pub connect: Option<ConnectMode>,
    /// `latency:`, added to every reply and to the handshake.
    pub latency: Option<Duration>,
    /// `greeting:`.
    pub greeting: Option<Greeting>,
    /// `ehlo:` keywords.
    pub ehlo: Option<Arc<[Keyword]>>,
    /// `ehlo_reply:`.
    pub ehlo_reply: Option<Reply>,
    /// `helo_reply:`.
    pub helo_reply: Option<Reply>,
    /// `starttls:`.
    pub starttls: Option<StartTls>,
    /// `ehlo_after_tls:`.
    pub ehlo_after_tls: Option<Arc<[Keyword]>>,
    /// `mail:`.
    pub mail: Option<Reply>,
    /// `rcpt:`.
    pub rcpt: Option<RcptReplies>,
    /// `data:`.
    pub data: Option<Reply>,
    /// `end_of_data:`.
    pub end_of_data: Option<EndOfData>,
    /// `quit:`.
    pub quit: Option<Reply>,
    /// `rset:`.
    pub rset: Option<Reply>,
    /// `delays:` and `greeting_delay:`, indexed by [`Command`].
    pub delays: [Option<Duration>; 10],
    /// `drop_after:`.
    pub drop_after: Option<Command>,
    /// `idle_timeout:`.
    pub idle_timeout: Option<Duration>,
    /// `greylist:`: the first RCPT of a (client address, sender, recipient) triplet gets
    /// `451 4.7.1`; the same triplet is accepted from `delay` after that first RCPT on.
    pub greylist: Option<Greylist>,
}

/// Greylisting as postgrey and RFC 6647 describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Greylist {
    /// How long a triplet must wait after its first RCPT.
    pub delay: Duration,
}

/// A host named by an expectation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostRef {
    /// A host name.
    Name(Name),
    /// An address.
    Address(IpAddr),
}

impl std::fmt::Display for HostRef {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostRef::Name(name) => write!(formatter, "{name}"),
            HostRef::Address(address) => write!(formatter, "{address}"),
        }
    }
}

/// The outcome a policy must reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedOutcome {
    /// Every recipient.
    All(DispositionKind),
    /// Per recipient.
    PerRecipient(Vec<(Mailbox, DispositionKind)>),
}

/// What one policy must do on this scenario, over every explored order.
#[derive(Clone, Debug)]
pub struct Expectation {
    /// The policy's name.
    pub policy: String,
    /// Where the policy's key is.
    pub at: Position,
    /// `outcome:`.
    pub outcome: Option<ExpectedOutcome>,
    /// `via:` delivered through one of these.
    pub via: Option<Vec<HostRef>>,
    /// `never:` never connected to.
    pub never: Vec<HostRef>,
    /// `connections:` exact number of connection attempts.
    pub connections: Option<u64>,
    /// `within:` every final outcome reached by then.
    pub within: Option<Duration>,
    /// `duplicates:` extra accepted copies.
    pub duplicates: Option<u64>,
    /// `after:` every final outcome reached no earlier than this.
    pub after: Option<Duration>,
}

/// A run stops here even if a policy is still waiting: 30 virtual days. Every loop has a
/// bound, and a policy with no timeout on a silent server must not hang the harness.
pub const RUN_LIMIT: Duration = Duration::days(30);

/// The default sender when `message.from` is left out.
pub const DEFAULT_FROM: &str = "sender@sender.example";
/// The default EHLO name when `client.name` is left out.
pub const DEFAULT_CLIENT_NAME: &str = "mta.sender.example";

const TOP_KEYS: &[&str] = &[
    "title",
    "refs",
    "description",
    "seed",
    "horizon",
    "client",
    "message",
    "messages",
    "dns",
    "servers",
    "expect",
];
const CLIENT_KEYS: &[&str] = &["name", "addresses"];
const MESSAGE_KEYS: &[&str] = &["from", "to", "size", "requires", "wants"];
const QUEUED_MESSAGE_KEYS: &[&str] = &["at", "from", "to", "size", "requires", "wants"];
const NAME_KEYS: &[&str] = &["mx", "a", "aaaa", "cname", "latency", "during"];
const NAME_WINDOW_KEYS: &[&str] = &["from", "until", "mx", "a", "aaaa", "cname", "latency"];
const SERVER_KEYS: &[&str] = &[
    "connect",
    "latency",
    "greeting",
    "greeting_delay",
    "ehlo",
    "ehlo_reply",
    "helo_reply",
    "starttls",
    "ehlo_after_tls",
    "mail",
    "rcpt",
    "data",
    "end_of_data",
    "quit",
    "rset",
    "delays",
    "drop_after",
    "idle_timeout",
    "greylist",
    "during",
];
const DELAY_KEYS: &[&str] = &[
    "greeting",
    "ehlo",
    "helo",
    "starttls",
    "mail",
    "rcpt",
    "data",
    "end_of_data",
    "quit",
    "rset",
];
const EXPECT_KEYS: &[&str] = &[
    "outcome",
    "via",
    "never",
    "connections",
    "within",
    "after",
    "duplicates",
];
const FAILURE_WORDS: &[&str] = &["servfail", "timeout", "nxdomain", "nodata"];
const OUTCOME_WORDS: &[&str] = &["delivered", "bounced", "deferred"];

/// Loads a scenario from YAML text. `is_policy` says which names `expect:` may use.
pub fn load(source: &str, is_policy: &dyn Fn(&str) -> bool) -> Result<Scenario, Diagnostics> {
    load_named(source, is_policy, &[])
}

/// [`load`], with the policy names an unknown name in `expect:` is compared with for a "did
/// you mean".
pub fn load_named(
    source: &str,
    is_policy: &dyn Fn(&str) -> bool,
    policies: &[&str],
) -> Result<Scenario, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let root = match yaml::parse(source) {
        Ok(root) => root,
        Err(errors) => {
            diagnostics.syntax(errors);
            return Err(diagnostics);
        }
    };
    let scenario = Loader {
        reader: Reader {
            diagnostics: &mut diagnostics,
        },
        policies: policies.iter().map(|name| (*name).to_owned()).collect(),
        mx_targets: Vec::new(),
        warnings: Diagnostics::default(),
    }
    .scenario(&root, is_policy);
    diagnostics.finish();
    match scenario {
        Some(scenario) if diagnostics.is_empty() => Ok(scenario),
        _ => {
            if diagnostics.is_empty() {
                diagnostics.error(root.at, "scenario could not be read");
            }
            Err(diagnostics)
        }
    }
}

struct Loader<'d> {
    reader: Reader<'d>,
    /// The known policy names, for a "did you mean" in `expect:`.
    policies: Vec<String>,
    /// Every MX target with the position of its `mx:` list, for the warnings.
    mx_targets: Vec<(Name, Position)>,
    /// Warnings, in the order found.
    warnings: Diagnostics,
}

impl Loader<'_> {
    fn scenario(&mut self, root: &Node, is_policy: &dyn Fn(&str) -> bool) -> Option<Scenario> {
        if matches!(root.value, Value::Null) {
            self.reader.error(
                root.at,
                "empty scenario: a file needs at least `title`, a message and `dns`",
            );
            return None;
        }
        let fields = self.reader.fields(root, "the scenario", TOP_KEYS)?;
        let title = self.title(&fields);
        let refs = self.strings(fields.get("refs"), "refs");
        // A description may span lines, so LF is its one allowed control character.
        let description = fields.get("description").and_then(|node| {
            let text = self.reader.string(node, "description")?;
            let lines = text.replace('\n', " ");
            self.reader
                .convert(node.at, "description", printable(&lines, "a description"))?;
            Some(text.to_owned())
        });
        let seed = fields
            .get("seed")
            .and_then(|node| self.reader.unsigned(node, "seed"));
        let horizon = fields.get("horizon").and_then(|node| self.horizon(node));
        let client = self.client(fields.get("client"));
        let (messages, queue) = self.messages(&fields);
        if let Some(node) = fields.get("horizon")
            && !queue
        {
            self.reader.error(
                node.at,
                "horizon ends a queue scenario, and `message:` makes one pass: write `messages:` for a queue",
            );
        }
        let mut zone = match fields.get("dns") {
            Some(node) => self.zone(node),
            None => {
                self.reader
                    .error(fields.at, "missing key `dns`: a scenario needs a zone");
                Zone::default()
            }
        };
        let mut servers = fields
            .get("servers")
            .map(|node| self.servers(node))
            .unwrap_or_default();
        let messages = messages.unwrap_or_default();
        // A message submitted at or after the horizon would never be attempted.
        if let (Some(horizon), Some(node)) = (horizon, fields.get("horizon"))
            && let Some((index, last)) = messages
                .iter()
                .enumerate()
                .max_by_key(|(_, message)| message.at)
            && last.at.since_start() >= horizon
        {
            self.reader.error(
                node.at,
                format!(
                    "horizon {horizon} comes at or before message {index} is submitted (at {}): it would never be attempted",
                    last.at
                ),
            );
        }
        // Cross-reference checks on a file that already has errors only repeat them in other
        // words (an MX list that failed to parse makes every server look unreachable).
        let clean = self.reader.diagnostics.is_empty();
        if clean {
            self.warn_unanswered_targets(&zone, &servers);
        }
        self.check_servers(clean, &mut zone, &mut servers, &messages, client.as_ref());
        self.check_rcpt_keys(fields.get("servers"), &servers, &messages);
        let known = Known::new(&zone, &servers, &messages);
        let expectations = fields
            .get("expect")
            .map(|node| self.expectations(node, is_policy, &known))
            .unwrap_or_default();
        if messages.is_empty() {
            return None;
        }
        let client = client?;
        if !fields.has("expect") {
            self.warnings.push(
                crate::diag::Diagnostic::new(
                    fields.at,
                    "no `expect:`: the scenario runs, but `check` has nothing to hold it to",
                )
                .with_help("pin what each policy should do, e.g. `expect: {rfc5321: {outcome: delivered}}`"),
            );
        }
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.finish();
        Some(Scenario {
            title: title?,
            refs,
            description,
            seed,
            client,
            messages,
            horizon: if queue { horizon } else { None },
            queue,
            zone,
            servers,
            expectations,
            warnings,
        })
    }

    /// Warns of each MX target that has no records in `dns:` and no server of its name: the
    /// world answers NXDOMAIN for it, which a scenario means rarely and a typo often.
    fn warn_unanswered_targets(&mut self, zone: &Zone, servers: &[Server]) {
        let served: BTreeSet<&Name> = servers
            .iter()
            .filter_map(|server| match &server.key {
                ServerKey::Name(name) => Some(name),
                ServerKey::Address(_) => None,
            })
            .collect();
        let known: Vec<&str> = zone
            .names
            .keys()
            .chain(served.iter().copied())
            .map(Name::as_str)
            .collect();
        let hints = crate::diag::Suggester::new(known);
        let mut warned = BTreeSet::new();
        for (target, at) in &self.mx_targets {
            if target.as_str() == "."
                || zone.names.contains_key(target)
                || served.contains(target)
                || !warned.insert(target.clone())
            {
                continue;
            }
            let message = format!(
                "MX target {target} has no records in `dns:` and no server: every lookup of it answers NXDOMAIN"
            );
            let help = match hints.suggest(target.as_str()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => {
                    format!("if that is the point, say so under `dns:` with `{target}: nxdomain`")
                }
            };
            self.warnings
                .push(crate::diag::Diagnostic::new(*at, message).with_help(help));
        }
    }

    fn title(&mut self, fields: &Fields<'_>) -> Option<String> {
        let Some(node) = fields.get("title") else {
            self.reader.error(
                fields.at,
                "missing key `title`: every scenario has a one-line title",
            );
            return None;
        };
        let title = self.reader.string(node, "title")?;
        if title.contains('\n') || title.trim().is_empty() {
            self.reader
                .error(node.at, "title must be one non-empty line");
            return None;
        }
        self.reader
            .convert(node.at, "title", printable(title, "a title"))?;
        Some(title.to_owned())
    }

    fn strings(&mut self, node: Option<&Node>, what: &str) -> Vec<String> {
        let Some(items) = node.and_then(|node| self.reader.list(node, what)) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| {
                let text = self.reader.string(item, what)?;
                self.reader
                    .convert(item.at, what, printable(text, "an entry"))?;
                Some(text.to_owned())
            })
            .collect()
    }

    fn client(&mut self, node: Option<&Node>) -> Option<ClientIdentity> {
        let mut client = ClientIdentity {
            name: Name::parse(DEFAULT_CLIENT_NAME).ok()?,
            addresses: Vec::new(),
        };
        let Some(node) = node else {
            return Some(client);
        };
        let fields = self.reader.fields(node, "client", CLIENT_KEYS)?;
        if let Some(name) = fields.get("name") {
            client.name = self.reader.name(name, "client.name")?;
            if client.name.is_root() {
                self.reader.error(
                    name.at,
                    "client.name: `.` is the root of the DNS, not a host name the client could say in EHLO",
                );
                return None;
            }
        }
        if let Some(list) = fields
            .get("addresses")
            .and_then(|node| self.reader.list(node, "client.addresses"))
        {
            client.addresses = list
                .iter()
                .filter_map(|item| self.reader.address(item, "client.addresses"))
                .collect();
        }
        Some(client)
    }

    fn messages(&mut self, fields: &Fields<'_>) -> (Option<Vec<Message>>, bool) {
        match (fields.entry("message"), fields.entry("messages")) {
            (Some((_, one)), None) => (
                self.message(one, "message", MESSAGE_KEYS).map(|m| vec![m]),
                false,
            ),
            (None, Some((_, many))) => {
                let Some(items) = self.reader.list(many, "messages") else {
                    return (None, true);
                };
                if items.is_empty() {
                    self.reader
                        .error(many.at, "messages must list at least one message");
                    return (None, true);
                }
                let messages: Vec<Option<Message>> = items
                    .iter()
                    .map(|item| self.message(item, "messages[]", QUEUED_MESSAGE_KEYS))
                    .collect();
                (messages.into_iter().collect(), true)
            }
            (Some(_), Some((key, _))) => {
                self.reader.error(
                    key.at,
                    "`message` and `messages` cannot both be given: use one",
                );
                (None, false)
            }
            (None, None) => {
                self.reader.error(
                    fields.at,
                    "missing key `message` (or `messages` for a queue scenario)",
                );
                (None, false)
            }
        }
    }

    fn message(&mut self, node: &Node, what: &str, keys: &[&str]) -> Option<Message> {
        let fields = self.reader.fields(node, what, keys)?;
        let at = match fields.get("at") {
            Some(node) => {
                let at = self.reader.duration(node, "at")?;
                if at >= RUN_LIMIT {
                    self.reader.error(
                        node.at,
                        format!("at {at} is past the {RUN_LIMIT} run limit"),
                    );
                    return None;
                }
                Instant(at.as_millis())
            }
            None => Instant::START,
        };
        let from = match fields.get("from") {
            // The null reverse-path of a DSN (RFC 5321 §4.5.5): no DSN is ever sent for it.
            Some(node) if matches!(&node.value, Value::String(text) if text == "<>") => {
                Some(Mailbox::null())
            }
            Some(node) => self.reader.mailbox(node, "from"),
            None => Mailbox::parse(DEFAULT_FROM).ok(),
        };
        let Some(to_node) = fields.get("to") else {
            self.reader.error(
                fields.at,
                format!("{what} is missing `to`: list at least one recipient"),
            );
            return None;
        };
        let items = self.reader.list(to_node, "to")?;
        if items.is_empty() {
            self.reader
                .error(to_node.at, "to must list at least one recipient");
        }
        let mut to = Vec::with_capacity(items.len());
        let mut seen = BTreeSet::new();
        for item in items {
            let Some(mailbox) = self.reader.mailbox(item, "recipient") else {
                continue;
            };
            if !seen.insert(mailbox.clone()) {
                self.reader
                    .error(item.at, format!("recipient {mailbox} is listed twice"));
            }
            to.push(mailbox);
        }
        let size = fields
            .get("size")
            .and_then(|node| self.reader.unsigned(node, "size"));
        let requires = fields
            .get("requires")
            .and_then(|node| self.reader.keyword_names(node, "requires"))
            .unwrap_or_default();
        let wants = fields
            .get("wants")
            .and_then(|node| self.reader.keyword_names(node, "wants"))
            .unwrap_or_default();
        Some(Message {
            at,
            from: from?,
            to: Arc::from(to),
            size,
            requires,
            wants,
        })
    }

    fn zone(&mut self, node: &Node) -> Zone {
        let mut zone = Zone::default();
        let Some(entries) = self.reader.mapping(node, "dns") else {
            return zone;
        };
        for (key, value) in entries {
            let Some(name) = self
                .reader
                .convert(key.at, "dns name", Name::parse(&key.text))
            else {
                continue;
            };
            if zone.names.contains_key(&name) {
                self.reader.error(
                    key.at,
                    format!("name {name} appears twice in dns (names are case-insensitive)"),
                );
                continue;
            }
            let entry = match &value.value {
                Value::String(word) if word == "nxdomain" => ZoneName::NxDomain,
                Value::String(word) => {
                    self.reader.error_with_help(
                        value.at,
                        format!("dns name {name}: `{word}` is not a record mapping"),
                        "the only word a whole name takes is `nxdomain`; per type: `mx: servfail`",
                    );
                    continue;
                }
                _ => {
                    let Some(records) = self.name_records(value, &name) else {
                        continue;
                    };
                    ZoneName::Records(records)
                }
            };
            zone.names.insert(name, entry);
        }
        zone
    }

    fn name_records(&mut self, node: &Node, name: &Name) -> Option<NameRecords> {
        let what = format!("dns name {name}");
        let fields = self.reader.fields(node, &what, NAME_KEYS)?;
        let base = self.record_sets(&fields, &what);
        let mut during = Vec::new();
        if let Some(list) = fields
            .get("during")
            .and_then(|node| self.reader.list(node, "during"))
        {
            for item in list {
                let window_what = format!("a `during` window of {name}");
                let Some(window_fields) = self.reader.fields(item, &window_what, NAME_WINDOW_KEYS)
                else {
                    continue;
                };
                let Some((from, until)) = self.window_bounds(&window_fields) else {
                    continue;
                };
                let patch = self.record_sets(&window_fields, &window_what);
                during.push(Window { from, until, patch });
            }
        }
        let records = NameRecords { base, during };
        let has_cname = records.all_sets().any(|sets| sets.cname.is_some());
        for other in ["mx", "a", "aaaa"] {
            let has_other = records.all_sets().any(|sets| match other {
                "mx" => sets.mx.is_some(),
                "a" => sets.a.is_some(),
                _ => sets.aaaa.is_some(),
            });
            if has_cname && has_other {
                let at = fields.entry("cname").map_or(fields.at, |(key, _)| key.at);
                self.reader.error(at, format!("{name} has a CNAME (in its records or a window), so it cannot also have `{other}` records (RFC 1034 §3.6.2)"));
            }
        }
        Some(records)
    }

    fn window_bounds(&mut self, fields: &Fields<'_>) -> Option<(Instant, Option<Instant>)> {
        if !fields.has_other_than(&["from", "until"]) {
            self.reader.error(
                fields.at,
                "a `during` window sets nothing: give at least one key it changes",
            );
            return None;
        }
        for key in ["from", "until"] {
            if let Some(node) = fields.get(key)
                && let Value::String(text) = &node.value
                && let Ok(time) = Duration::parse(text)
                && time > RUN_LIMIT
            {
                self.reader.error(
                    node.at,
                    format!("window {key} {time} is past the {RUN_LIMIT} run limit, so the run never reaches it"),
                );
                return None;
            }
        }
        let from = match fields.get("from") {
            Some(node) => Instant(self.reader.duration(node, "from")?.as_millis()),
            None => {
                self.reader
                    .error(fields.at, "a `during` window needs `from`");
                return None;
            }
        };
        let until = match fields.get("until") {
            Some(node) => Some(Instant(self.reader.duration(node, "until")?.as_millis())),
            None => None,
        };
        if let (Some(until), Some(node)) = (until, fields.get("until"))
            && until <= from
        {
            self.reader.error(
                node.at,
                format!(
                    "window ends ({}) before it starts ({})",
                    until.since_start(),
                    from.since_start()
                ),
            );
            return None;
        }
        Some((from, until))
    }

    fn record_sets(&mut self, fields: &Fields<'_>, what: &str) -> RecordSets {
        let mut sets = RecordSets::default();
        if let Some(node) = fields.get("mx") {
            sets.mx = self.record_set(node, &format!("{what}: mx"), |text| {
                let record = Mx::parse(text)?;
                // MX targets are domain names (RFC 5321 §5.1, RFC 7505); an address here is a
                // common slip that would only ever answer NXDOMAIN.
                if record.exchange.as_str().parse::<IpAddr>().is_ok() {
                    return Err(format!(
                        "MX target `{}` is an IP address, but an MX target must be a host name (RFC 5321 §5.1): give a name an `a` record and use the name",
                        record.exchange
                    ));
                }
                Ok(record)
            });
            if let Some(RecordSet::Records(records)) = &sets.mx {
                let mut seen = BTreeSet::new();
                for record in records.iter() {
                    if !record.is_null() {
                        self.mx_targets.push((record.exchange.clone(), node.at));
                    }
                    if !seen.insert(record.exchange.clone()) {
                        self.reader.error(
                            node.at,
                            format!("{what}: MX target {} is listed twice", record.exchange),
                        );
                    }
                }
            }
        }
        if let Some(node) = fields.get("a") {
            sets.a = self.record_set(node, &format!("{what}: a"), |text| {
                match text.parse::<IpAddr>() {
                    Ok(address @ IpAddr::V4(_)) => Ok(address),
                    _ => Err(format!("`{text}` is not an IPv4 address")),
                }
            });
        }
        if let Some(node) = fields.get("aaaa") {
            sets.aaaa = self.record_set(node, &format!("{what}: aaaa"), |text| {
                match text.parse::<IpAddr>() {
                    Ok(address @ IpAddr::V6(_)) => Ok(address),
                    _ => Err(format!("`{text}` is not an IPv6 address")),
                }
            });
        }
        if let Some(node) = fields.get("cname") {
            sets.cname = match &node.value {
                Value::String(word) if FAILURE_WORDS.contains(&word.as_str()) => {
                    DnsFailure::from_key(word).map(Err)
                }
                _ => self.reader.name(node, &format!("{what}: cname")).map(Ok),
            };
        }
        if let Some(node) = fields.get("latency") {
            sets.latency = self.reader.duration(node, "latency");
        }
        sets
    }

    fn record_set<T: Ord + Clone>(
        &mut self,
        node: &Node,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<RecordSet<T>> {
        match &node.value {
            Value::String(word) => match DnsFailure::from_key(word) {
                Some(failure) => Some(RecordSet::Failure(failure)),
                None => {
                    self.reader.error_with_help(
                        node.at,
                        format!("{what}: `{word}` is neither a list of records nor a failure word"),
                        format!(
                            "write a list (`[{word}]`) or one of {}",
                            FAILURE_WORDS.join(", ")
                        ),
                    );
                    None
                }
            },
            _ => {
                let items = self.reader.list(node, what)?;
                let mut records = Vec::with_capacity(items.len());
                let mut seen = BTreeSet::new();
                for item in items {
                    if let Some(text) = self.reader.scalar_text(item, what)
                        && let Some(record) = self.reader.convert(item.at, what, parse(&text))
                    {
                        // A record listed twice would be tried twice: almost always a typo.
                        if !seen.insert(record.clone()) {
                            self.reader
                                .error(item.at, format!("{what}: `{text}` is listed twice"));
                            continue;
                        }
                        records.push(record);
                    }
                }
                Some(RecordSet::Records(Arc::from(records)))
            }
        }
    }

    fn servers(&mut self, node: &Node) -> Vec<Server> {
        let mut servers: Vec<Server> = Vec::new();
        let Some(entries) = self.reader.mapping(node, "servers") else {
            return servers;
        };
        let mut seen = BTreeSet::new();
        for (key, value) in entries {
            let server_key = match key.text.parse::<IpAddr>() {
                Ok(address) => ServerKey::Address(address),
                Err(_) => match self
                    .reader
                    .convert(key.at, "server", Name::parse(&key.text))
                {
                    Some(name) => ServerKey::Name(name),
                    None => continue,
                },
            };
            if !seen.insert(server_key.clone()) {
                self.reader.error(
                    key.at,
                    format!(
                        "server {} appears twice (names are case-insensitive)",
                        key.text
                    ),
                );
                continue;
            }
            let what = format!("server {}", key.text);
            let base = match &value.value {
                Value::Null => Some((Behaviour::default(), Vec::new())),
                _ => self.server(value, &what),
            };
            if let Some((base, during)) = base {
                servers.push(Server {
                    key: server_key,
                    at: key.at,
                    addresses: Vec::new(),
                    base,
                    during,
                });
            }
        }
        servers
    }

    fn server(&mut self, node: &Node, what: &str) -> Option<(Behaviour, Vec<Window<Behaviour>>)> {
        let fields = self.reader.fields(node, what, SERVER_KEYS)?;
        let base = self.behaviour(&fields, what);
        let mut during = Vec::new();
        if let Some(list) = fields
            .get("during")
            .and_then(|node| self.reader.list(node, "during"))
        {
            let mut window_keys: Vec<&str> = vec!["from", "until"];
            window_keys.extend(SERVER_KEYS.iter().filter(|key| **key != "during"));
            for item in list {
                let window_what = format!("a `during` window of {what}");
                let Some(window_fields) = self.reader.fields(item, &window_what, &window_keys)
                else {
                    continue;
                };
                let Some((from, until)) = self.window_bounds(&window_fields) else {
                    continue;
                };
                let patch = self.behaviour(&window_fields, &window_what);
                during.push(Window { from, until, patch });
            }
        }
        Some((base, during))
    }

    fn behaviour(&mut self, fields: &Fields<'_>, what: &str) -> Behaviour {
        let mut behaviour = Behaviour::default();
        let reader = &mut self.reader;
        if let Some(node) = fields.get("connect") {
            let modes = [
                ("accept", ConnectMode::Accept),
                ("refuse", ConnectMode::Refuse),
                ("timeout", ConnectMode::Timeout),
                ("reset", ConnectMode::Reset),
            ];
            behaviour.connect = reader.choice_of(node, "connect", &modes);
        }
        if let Some(node) = fields.get("latency") {
            behaviour.latency = reader.duration(node, "latency");
        }
        if let Some(node) = fields.get("greeting") {
            behaviour.greeting = match &node.value {
                Value::String(word) if word == "none" => Some(Greeting::Silent),
                _ => reader.reply(node, "greeting").map(Greeting::Reply),
            };
        }
        if let Some(node) = fields.get("greeting_delay") {
            behaviour.delays[Command::Greeting as usize] = reader.duration(node, "greeting_delay");
        }
        if let Some(node) = fields.get("ehlo") {
            behaviour.ehlo = reader.keywords(node, "ehlo").map(Arc::from);
        }
        if let Some(node) = fields.get("ehlo_after_tls") {
            behaviour.ehlo_after_tls = reader.keywords(node, "ehlo_after_tls").map(Arc::from);
        }
        for (key, slot) in [
            ("ehlo_reply", &mut behaviour.ehlo_reply),
            ("helo_reply", &mut behaviour.helo_reply),
            ("mail", &mut behaviour.mail),
            ("data", &mut behaviour.data),
            ("quit", &mut behaviour.quit),
            ("rset", &mut behaviour.rset),
        ] {
            if let Some(node) = fields.get(key) {
                *slot = reader.reply(node, key);
            }
        }
        if let Some(node) = fields.get("starttls") {
            behaviour.starttls = match &node.value {
                Value::String(word) if word == "ok" => Some(StartTls::Ok),
                Value::String(word) if word == "handshake-fail" => Some(StartTls::HandshakeFail),
                _ => match reader
                    .scalar_text(node, "starttls")
                    .map(|text| Reply::parse(&text))
                {
                    Some(Ok(reply)) => Some(StartTls::Reply(reply)),
                    Some(Err(message)) => {
                        reader.error_with_help(
                            node.at,
                            format!("starttls: {message}"),
                            "use `ok`, `handshake-fail` or a reply code such as 454",
                        );
                        None
                    }
                    None => None,
                },
            };
        }
        if let Some(node) = fields.get("end_of_data") {
            behaviour.end_of_data = match &node.value {
                Value::String(word) if word == "none" => Some(EndOfData::Silent),
                Value::String(word) if word == "lost" => Some(EndOfData::Lost),
                _ => reader.reply(node, "end_of_data").map(EndOfData::Reply),
            };
        }
        if let Some(node) = fields.get("rcpt") {
            behaviour.rcpt = self.rcpt(node);
        }
        if let Some(node) = fields.get("delays") {
            self.delays(
                node,
                what,
                &mut behaviour.delays,
                fields.has("greeting_delay"),
            );
        }
        let reader = &mut self.reader;
        if let Some(node) = fields.get("drop_after") {
            behaviour.drop_after = reader
                .choice(node, "drop_after", DELAY_KEYS)
                .and_then(Command::from_key);
        }
        if let Some(node) = fields.get("idle_timeout") {
            behaviour.idle_timeout = reader.duration(node, "idle_timeout");
        }
        if let Some(node) = fields.get("greylist") {
            behaviour.greylist = self.greylist(node);
        }
        behaviour
    }

    fn horizon(&mut self, node: &Node) -> Option<Duration> {
        let horizon = self.reader.duration(node, "horizon")?;
        if horizon == Duration::ZERO || horizon > RUN_LIMIT {
            self.reader.error(
                node.at,
                format!("horizon must be more than 0s and at most the {RUN_LIMIT} run limit"),
            );
            return None;
        }
        Some(horizon)
    }

    fn greylist(&mut self, node: &Node) -> Option<Greylist> {
        let fields = self.reader.fields(node, "greylist", &["delay"])?;
        let Some(delay) = fields.get("delay") else {
            self.reader.error(
                fields.at,
                "greylist is missing `delay`: how long a triplet waits",
            );
            return None;
        };
        let delay = self.reader.duration(delay, "greylist.delay")?;
        Some(Greylist { delay })
    }

    fn rcpt(&mut self, node: &Node) -> Option<RcptReplies> {
        if !matches!(node.value, Value::Mapping(_)) {
            return self.reader.reply(node, "rcpt").map(|reply| RcptReplies {
                by_recipient: Vec::new(),
                default: Some(reply),
            });
        }
        let entries = self.reader.mapping(node, "rcpt")?;
        let mut replies = RcptReplies::default();
        let mut seen = BTreeSet::new();
        for (key, value) in entries {
            let Some(reply) = self.reader.reply(value, "rcpt") else {
                continue;
            };
            if key.text == "*" {
                replies.default = Some(reply);
                continue;
            }
            let Some(mailbox) = self
                .reader
                .convert(key.at, "rcpt", Mailbox::parse(&key.text))
            else {
                continue;
            };
            if !seen.insert(mailbox.clone()) {
                self.reader
                    .error(key.at, format!("rcpt lists {mailbox} twice"));
                continue;
            }
            replies.by_recipient.push((mailbox, reply));
        }
        Some(replies)
    }

    fn delays(
        &mut self,
        node: &Node,
        what: &str,
        delays: &mut [Option<Duration>; 10],
        has_greeting_delay: bool,
    ) {
        let Some(fields) = self
            .reader
            .fields(node, &format!("delays of {what}"), DELAY_KEYS)
        else {
            return;
        };
        for key in DELAY_KEYS {
            let Some((key_node, value)) = fields.entry(key) else {
                continue;
            };
            if *key == "greeting" && has_greeting_delay {
                self.reader.error(
                    key_node.at,
                    "give the greeting delay once: `greeting_delay` or `delays: {greeting: ..}`",
                );
                continue;
            }
            if let Some(command) = Command::from_key(key) {
                delays[command as usize] = self.reader.duration(value, &format!("delays.{key}"));
            }
        }
    }

    fn expectations(
        &mut self,
        node: &Node,
        is_policy: &dyn Fn(&str) -> bool,
        known: &Known,
    ) -> Vec<Expectation> {
        let mut expectations = Vec::new();
        let Some(entries) = self.reader.mapping(node, "expect") else {
            return expectations;
        };
        for (key, value) in entries {
            if !is_policy(&key.text) {
                let names: Vec<&str> = self.policies.iter().map(String::as_str).collect();
                let help = match crate::diag::nearest(&key.text, &names) {
                    Some(near) => format!("did you mean `{near}`? `mxsim policies` lists them"),
                    None => "`mxsim policies` lists the known policies".to_owned(),
                };
                self.reader.error_with_help(
                    key.at,
                    format!("expect names unknown policy `{}`", key.text),
                    help,
                );
            }
            let Some(fields) =
                self.reader
                    .fields(value, &format!("expect.{}", key.text), EXPECT_KEYS)
            else {
                continue;
            };
            let mut expectation = Expectation {
                policy: key.text.clone(),
                at: key.at,
                outcome: None,
                via: None,
                never: Vec::new(),
                connections: None,
                within: None,
                duplicates: None,
                after: None,
            };
            if let Some(node) = fields.get("outcome") {
                expectation.outcome = self.expected_outcome(node, known);
            }
            if let Some(node) = fields.get("via") {
                if matches!(&node.value, Value::Sequence(items) if items.is_empty()) {
                    self.reader.error(
                        node.at,
                        "via lists no host, so it could never hold: list at least one",
                    );
                }
                expectation.via = Some(self.host_refs(node, "via", known));
            }
            if let Some(node) = fields.get("never") {
                expectation.never = self.host_refs(node, "never", known);
            }
            if let Some(node) = fields.get("connections") {
                expectation.connections = self.reader.unsigned(node, "connections");
            }
            if let Some(node) = fields.get("after") {
                expectation.after = self.reader.duration(node, "after");
            }
            if let Some(node) = fields.get("within") {
                expectation.within = self.reader.duration(node, "within");
            }
            if let Some(node) = fields.get("duplicates") {
                expectation.duplicates = self.reader.unsigned(node, "duplicates");
            }
            if let (Some(after), Some(within)) = (expectation.after, expectation.within)
                && after > within
                && let Some(node) = fields.get("after")
            {
                self.reader.error(
                    node.at,
                    format!("after ({after}) is later than within ({within}): no outcome time could meet both"),
                );
            }
            expectations.push(expectation);
        }
        expectations
    }

    fn expected_outcome(&mut self, node: &Node, known: &Known) -> Option<ExpectedOutcome> {
        if !matches!(node.value, Value::Mapping(_)) {
            let word = self.reader.choice(node, "outcome", OUTCOME_WORDS)?;
            return DispositionKind::from_key(word).map(ExpectedOutcome::All);
        }
        let entries = self.reader.mapping(node, "outcome")?;
        if entries.is_empty() {
            self.reader.error(node.at, "outcome names no recipient: give a word (delivered, bounced, deferred) or at least one recipient");
            return None;
        }
        let mut per = Vec::new();
        for (key, value) in entries {
            let mailbox = self
                .reader
                .convert(key.at, "outcome", Mailbox::parse(&key.text));
            if let Some(mailbox) = &mailbox
                && !known.recipients.contains(mailbox)
            {
                self.reader.error(
                    key.at,
                    format!("outcome names {mailbox}, who is not a recipient of any message"),
                );
            }
            let kind = self
                .reader
                .choice(value, "outcome", OUTCOME_WORDS)
                .and_then(DispositionKind::from_key);
            if let (Some(mailbox), Some(kind)) = (mailbox, kind) {
                per.push((mailbox, kind));
            }
        }
        Some(ExpectedOutcome::PerRecipient(per))
    }

    fn host_refs(&mut self, node: &Node, what: &str, known: &Known) -> Vec<HostRef> {
        let Some(items) = self.reader.list(node, what) else {
            return Vec::new();
        };
        let mut hosts = Vec::with_capacity(items.len());
        for item in items {
            let Some(text) = self.reader.string(item, what) else {
                continue;
            };
            let host = match text.parse::<IpAddr>() {
                Ok(address) => Some(HostRef::Address(address)),
                Err(_) => self
                    .reader
                    .convert(item.at, what, Name::parse(text))
                    .map(HostRef::Name),
            };
            if let Some(host) = &host {
                known.check_host(&mut self.reader, item.at, what, host);
            }
            hosts.extend(host);
        }
        hosts
    }
}

mod checks;
pub mod json_schema;
mod write;

use checks::Known;
pub use write::{expectation_text, same, write};

//! The trace: one event per line, each with its virtual time, in fixed columns.
//!
//! The text form is a product, not a debug dump: it is what `mxsim run` prints, what insta
//! snapshots pin, and what people diff. docs/trace-format.md is its legend. Events are recorded
//! as structured values (cheap to push in the hot path) and only rendered when printed.
//!
//! Any source of events can fill a [`Trace`]: the simulator today, real listeners in live mode.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::Arc;

use crate::dns::{DnsAnswer, RecordType};
use crate::name::{Mailbox, Name};
use crate::outcome::Disposition;
use crate::smtp::{Command, Keyword, Reply};
use crate::time::{Duration, Instant};
use crate::world::{HintKey, MailParameters, OrderLabel, Pick};

/// One thing that happened, and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Virtual time.
    pub at: Instant,
    /// The delivery attempt it belongs to, in a queue scenario; `None` in a single pass and for
    /// the queue's own lines (submission, retry scheduling, expiry, DSNs, the horizon).
    pub attempt: Option<AttemptId>,
    /// What happened.
    pub kind: EventKind,
}

/// One delivery attempt of one message: `m0#2` is message 0's second attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AttemptId {
    /// Message index.
    pub message: u32,
    /// Attempt number, 1 for the first.
    pub number: u32,
}

impl fmt::Display for AttemptId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "m{}#{}", self.message, self.number)
    }
}

/// What a DSN reports (RFC 3464 actions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsnKind {
    /// `failed`: the recipients bounced or expired.
    Failure,
    /// `delayed`: a delay warning; the message stays queued.
    Delay,
}

/// A command as sent on the wire, for the trace.
#[derive(Clone, Debug, PartialEq)]
pub enum Sent {
    /// `EHLO name`.
    Ehlo(Name),
    /// `HELO name`.
    Helo(Name),
    /// `STARTTLS`.
    Starttls,
    /// `MAIL FROM:<from> params`.
    Mail(Mailbox, MailParameters),
    /// `RCPT TO:<to>`.
    Rcpt(Mailbox),
    /// `DATA`.
    Data,
    /// The message body and its final dot.
    EndOfData(usize),
    /// `QUIT`.
    Quit,
    /// `RSET`.
    Rset,
}

impl Sent {
    /// The command this is.
    pub fn command(&self) -> Command {
        match self {
            Sent::Ehlo(_) => Command::Ehlo,
            Sent::Helo(_) => Command::Helo,
            Sent::Starttls => Command::Starttls,
            Sent::Mail(..) => Command::Mail,
            Sent::Rcpt(_) => Command::Rcpt,
            Sent::Data => Command::Data,
            Sent::EndOfData(_) => Command::EndOfData,
            Sent::Quit => Command::Quit,
            Sent::Rset => Command::Rset,
        }
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closer {
    /// The client closed it (after QUIT, or by giving up).
    Client,
    /// The server closed it after replying to a command (`drop_after`, a 421, QUIT).
    Server,
    /// The server closed it because it had been idle too long (`idle_timeout`).
    ServerIdle,
}

/// Everything the world can observe.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// A scenario message entered the client's queue.
    Submitted {
        /// Message index.
        message: usize,
        /// Its recipients.
        recipients: Arc<[Mailbox]>,
    },
    /// A DNS answer reached the client.
    Dns {
        /// The name asked about.
        name: Name,
        /// The type asked for.
        record_type: RecordType,
        /// The answer.
        answer: DnsAnswer,
    },
    /// The client stopped waiting for a DNS answer.
    DnsGaveUp {
        /// The name asked about.
        name: Name,
        /// The type asked for.
        record_type: RecordType,
        /// How long it waited.
        waited: Duration,
    },
    /// The world drew an order for the client.
    Shuffled {
        /// What was ordered.
        label: OrderLabel,
        /// The order drawn.
        order: Vec<Pick>,
    },
    /// A TCP connection attempt began.
    Connecting {
        /// Destination.
        address: IpAddr,
        /// The host it belongs to.
        host: Name,
    },
    /// The handshake completed.
    Connected {
        /// Destination.
        address: IpAddr,
    },
    /// RST in answer to SYN.
    Refused {
        /// Destination.
        address: IpAddr,
    },
    /// Accepted, then closed at once.
    Reset {
        /// Destination.
        address: IpAddr,
    },
    /// The client stopped waiting for the handshake.
    ConnectGaveUp {
        /// Destination.
        address: IpAddr,
        /// How long it waited.
        waited: Duration,
    },
    /// The client sent a command.
    Sent {
        /// Server address.
        address: IpAddr,
        /// The command.
        command: Sent,
    },
    /// The server replied.
    Replied {
        /// Server address.
        address: IpAddr,
        /// The reply.
        reply: Reply,
        /// EHLO keywords, for a 2yz EHLO reply.
        keywords: Option<Arc<[Keyword]>>,
    },
    /// TLS came up after STARTTLS.
    TlsEstablished {
        /// Server address.
        address: IpAddr,
    },
    /// The TLS handshake failed.
    TlsFailed {
        /// Server address.
        address: IpAddr,
    },
    /// The client stopped waiting for the TLS handshake to finish.
    HandshakeGaveUp {
        /// Server address.
        address: IpAddr,
        /// How long it waited.
        waited: Duration,
    },
    /// The client stopped waiting for a reply.
    ReplyGaveUp {
        /// Server address.
        address: IpAddr,
        /// What it was waiting for.
        command: Command,
        /// How long it waited.
        waited: Duration,
    },
    /// The connection ended.
    Closed {
        /// Server address.
        address: IpAddr,
        /// Who ended it.
        by: Closer,
    },
    /// A server took responsibility for a message: it replied 2yz to the end of data, or
    /// would have, had the reply not been lost.
    Accepted {
        /// Server address.
        address: IpAddr,
        /// The server's host name.
        host: Name,
        /// Message index.
        message: usize,
        /// The recipients this copy is for.
        recipients: Arc<[Mailbox]>,
        /// True when the client never saw the 2yz (`end_of_data: lost`).
        reply_lost: bool,
    },
    /// The policy's final word on a recipient.
    Outcome {
        /// Message index.
        message: usize,
        /// The recipient.
        recipient: Mailbox,
        /// The state.
        disposition: Disposition,
    },
    /// The run hit its virtual-time limit with the policy still working: a policy that waits
    /// forever somewhere.
    RunLimit {
        /// The limit.
        limit: Duration,
    },
    /// The client stored a record in its hints (retry records, host status).
    HintSet {
        /// The record.
        key: HintKey,
        /// Its retry time.
        until: Instant,
        /// Why.
        reason: Arc<str>,
    },
    /// The client cleared a record: the host or recipient worked again.
    HintCleared {
        /// The record.
        key: HintKey,
    },
    /// The client found a record in force and skipped what it names.
    HintHeld {
        /// The record.
        key: HintKey,
        /// Its retry time.
        until: Instant,
        /// The failure it remembers.
        reason: Arc<str>,
    },
    /// The client kept an open connection in its cache instead of closing it.
    Parked {
        /// The connection's address.
        address: IpAddr,
        /// Until when it may be reused.
        until: Instant,
    },
    /// The client took a cached connection for another transaction.
    Reused {
        /// The connection's address.
        address: IpAddr,
        /// The host it was opened for.
        host: Name,
    },
    /// An attempt for a recipient domain found another attempt for that domain in flight and
    /// waits for it to end before going on (`join: domain`, OpenSMTPD's shared relay).
    Joined {
        /// The message that waits.
        message: usize,
        /// The recipient domain.
        domain: Name,
        /// The message whose attempt is in flight.
        leader: usize,
    },
    /// A queued message's attempt began (queue scenarios only).
    AttemptStarted {
        /// Message index.
        message: usize,
        /// Attempt number, 1 for the first.
        attempt: u32,
        /// The recipients still pending.
        recipients: Arc<[Mailbox]>,
    },
    /// An attempt ended with recipients deferred: the queue will try again at `next`.
    Retry {
        /// Message index.
        message: usize,
        /// Recipients still pending.
        deferred: usize,
        /// When the next attempt is due (on a queue scan).
        next: Instant,
        /// Why the first of them was deferred.
        reason: Arc<str>,
    },
    /// A queued message reached the end of its lifetime undelivered; its pending recipients
    /// bounce.
    Expired {
        /// Message index.
        message: usize,
        /// The policy's maximum lifetime.
        lifetime: Duration,
    },
    /// The client sent a DSN to the message's sender.
    Dsn {
        /// Message index.
        message: usize,
        /// What it reports.
        kind: DsnKind,
        /// The sender it goes to.
        to: Mailbox,
        /// The recipients it reports on.
        recipients: Arc<[Mailbox]>,
    },
    /// No DSN was sent because the message's reverse-path is null (RFC 5321 §6.1).
    DsnSuppressed {
        /// Message index.
        message: usize,
        /// What it would have reported.
        kind: DsnKind,
    },
    /// A queue scenario reached its horizon with messages still queued.
    Horizon {
        /// The horizon.
        horizon: Duration,
        /// Messages still queued.
        queued: usize,
    },
    /// The run spent one of its counted budgets with the policy still working: a policy that
    /// loops (reconnecting at zero virtual time, say) is stopped here instead of running forever.
    BudgetSpent {
        /// Which budget.
        budget: Budget,
        /// Its size for this run.
        limit: u64,
    },
}

/// The counted budgets of a run, sized from the scenario (see `mxsim_sim::world::Budgets`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Trace events.
    Events,
    /// Connection attempts.
    Connections,
}

impl Budget {
    /// The plural noun of what it counts.
    pub fn unit(self) -> &'static str {
        match self {
            Budget::Events => "events",
            Budget::Connections => "connection attempts",
        }
    }
}

/// The events of one run, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// The events.
    pub events: Vec<Event>,
}

impl Trace {
    /// Every connection attempt, in order.
    pub fn connection_attempts(&self) -> impl Iterator<Item = (Instant, IpAddr, &Name)> {
        self.events.iter().filter_map(|event| match &event.kind {
            EventKind::Connecting { address, host } => Some((event.at, *address, host)),
            _ => None,
        })
    }

    /// Every accepted copy of a message.
    pub fn accepted(&self) -> impl Iterator<Item = (&Name, IpAddr, usize, &Arc<[Mailbox]>)> {
        self.events.iter().filter_map(|event| match &event.kind {
            EventKind::Accepted {
                host,
                address,
                message,
                recipients,
                ..
            } => Some((host, *address, *message, recipients)),
            _ => None,
        })
    }
}

/// Width of the time column: fits `99d 23:59:59.999`.
const TIME_WIDTH: usize = 16;
/// Width of the address column: fits every IPv4 address.
const ADDRESS_WIDTH: usize = 15;

impl fmt::Display for Trace {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::with_capacity(128);
        // A queue trace gets one more column after the time: the attempt each line belongs to.
        let tag_width = self
            .events
            .iter()
            .filter_map(|event| event.attempt)
            .map(|attempt| attempt.to_string().len())
            .max();
        let mut tagged = String::with_capacity(128);
        for event in &self.events {
            line.clear();
            render(&mut line, event);
            if let Some(width) = tag_width {
                let split = TIME_WIDTH + 2;
                let tag = event
                    .attempt
                    .map(|attempt| attempt.to_string())
                    .unwrap_or_default();
                tagged.clear();
                let _ = write!(tagged, "{}{tag:<width$} {}", &line[..split], &line[split..]);
                std::mem::swap(&mut line, &mut tagged);
            }
            // Names, reply texts and reasons come from input files: escape them here, at the
            // one place a trace becomes text, so nothing can forge a line or drive a terminal.
            formatter.write_str(&crate::escape::terminal(line.trim_end()))?;
            formatter.write_char('\n')?;
        }
        Ok(())
    }
}

fn column(line: &mut String, at: Instant, kind: &str) {
    let time = at.to_string();
    let _ = write!(line, "{time:>TIME_WIDTH$}  {kind:<5} ");
}

fn address_column(line: &mut String, address: &IpAddr, arrow: &str) {
    let address = address.to_string();
    let _ = write!(line, "{address:<ADDRESS_WIDTH$} {arrow} ");
}

fn render(line: &mut String, event: &Event) {
    let at = event.at;
    match &event.kind {
        EventKind::Submitted {
            message,
            recipients,
        } => {
            column(line, at, "queue");
            let _ = write!(line, "message {message} submitted for ");
            join(line, recipients.iter());
        }
        EventKind::Dns {
            name,
            record_type,
            answer,
        } => {
            column(line, at, "dns");
            let _ = write!(line, "{record_type} {name} -> {answer}");
        }
        EventKind::DnsGaveUp {
            name,
            record_type,
            waited,
        } => {
            column(line, at, "dns");
            let _ = write!(
                line,
                "{record_type} {name} -> no answer; client gave up after {waited}"
            );
        }
        EventKind::Shuffled { label, order } => {
            column(line, at, "order");
            let _ = write!(line, "{label}: ");
            join(line, order.iter());
        }
        EventKind::Connecting { address, host } => {
            column(line, at, "tcp");
            address_column(line, address, ">");
            let _ = write!(line, "connect to port 25 ({host})");
        }
        EventKind::Connected { address } => tcp(line, at, address, "connected"),
        EventKind::Refused { address } => tcp(line, at, address, "refused (RST)"),
        EventKind::Reset { address } => tcp(line, at, address, "reset right after accept"),
        EventKind::ConnectGaveUp { address, waited } => {
            tcp(line, at, address, "");
            let _ = write!(line, "no answer to SYN; client gave up after {waited}");
        }
        EventKind::Sent { address, command } => {
            column(line, at, "smtp");
            address_column(line, address, ">");
            render_sent(line, command);
        }
        EventKind::Replied {
            address,
            reply,
            keywords,
        } => {
            column(line, at, "smtp");
            address_column(line, address, "<");
            let _ = write!(line, "{reply}");
            if let Some(keywords) = keywords.as_ref().filter(|keywords| !keywords.is_empty()) {
                line.push_str(" [");
                join(line, keywords.iter());
                line.push(']');
            }
        }
        EventKind::TlsEstablished { address } => tcp(line, at, address, "TLS established"),
        EventKind::TlsFailed { address } => tcp(line, at, address, "TLS handshake failed"),
        EventKind::HandshakeGaveUp { address, waited } => {
            tcp(line, at, address, "");
            let _ = write!(
                line,
                "TLS handshake unfinished; client gave up after {waited}"
            );
        }
        EventKind::ReplyGaveUp {
            address,
            command,
            waited,
        } => {
            column(line, at, "smtp");
            address_column(line, address, "!");
            let _ = write!(
                line,
                "no reply to {}; client gave up after {waited}",
                command.label()
            );
        }
        EventKind::Closed { address, by } => tcp(
            line,
            at,
            address,
            match by {
                Closer::Client => "closed by client",
                Closer::Server => "closed by server",
                Closer::ServerIdle => "closed by server (idle timeout)",
            },
        ),
        EventKind::Accepted {
            address,
            host,
            message,
            recipients,
            reply_lost,
        } => {
            column(line, at, "store");
            address_column(line, address, "*");
            let _ = write!(line, "{host} took message {message} for ");
            join(line, recipients.iter());
            if *reply_lost {
                line.push_str(" (its reply is lost)");
            }
        }
        EventKind::Outcome {
            message,
            recipient,
            disposition,
        } => {
            column(line, at, "done");
            let _ = write!(line, "message {message} to {recipient}: {disposition}");
        }
        EventKind::RunLimit { limit } => {
            column(line, at, "limit");
            let _ = write!(
                line,
                "run stopped at its {limit} virtual-time limit with the client still waiting"
            );
        }
        EventKind::Parked { address, until } => {
            tcp(line, at, address, "");
            let _ = write!(line, "kept open for reuse until {until}");
        }
        EventKind::Reused { address, host } => {
            tcp(line, at, address, "");
            let _ = write!(line, "reused from the connection cache ({host})");
        }
        EventKind::HintSet { key, until, reason } => {
            column(line, at, "hint");
            let _ = write!(line, "{key}: retry record until {until} ({reason})");
        }
        EventKind::HintCleared { key } => {
            column(line, at, "hint");
            let _ = write!(line, "{key}: retry record cleared");
        }
        EventKind::HintHeld { key, until, reason } => {
            column(line, at, "hint");
            let _ = write!(
                line,
                "{key}: skipped, retry time {until} not reached ({reason})"
            );
        }
        EventKind::Joined {
            message,
            domain,
            leader,
        } => {
            column(line, at, "queue");
            let _ = write!(
                line,
                "message {message} joins message {leader}'s attempt in flight to {domain}: waits for it to end"
            );
        }
        EventKind::AttemptStarted {
            message,
            attempt,
            recipients,
        } => {
            column(line, at, "queue");
            let _ = write!(line, "message {message} attempt {attempt} for ");
            join(line, recipients.iter());
        }
        EventKind::Retry {
            message,
            deferred,
            next,
            reason,
        } => {
            column(line, at, "queue");
            let noun = if *deferred == 1 {
                "recipient"
            } else {
                "recipients"
            };
            let _ = write!(
                line,
                "message {message}: {deferred} {noun} deferred, next attempt at {next}: {reason}"
            );
        }
        EventKind::Expired { message, lifetime } => {
            column(line, at, "queue");
            let _ = write!(
                line,
                "message {message} expired: still undelivered {lifetime} after submission"
            );
        }
        EventKind::Dsn {
            message,
            kind,
            to,
            recipients,
        } => {
            column(line, at, "dsn");
            let what = match kind {
                DsnKind::Failure => "failure",
                DsnKind::Delay => "delay warning",
            };
            let _ = write!(line, "{what} for message {message} to <{to}> about ");
            join(line, recipients.iter());
        }
        EventKind::DsnSuppressed { message, kind } => {
            column(line, at, "dsn");
            let what = match kind {
                DsnKind::Failure => "failure",
                DsnKind::Delay => "delay warning",
            };
            let _ = write!(
                line,
                "no {what} for message {message}: its reverse-path is null"
            );
        }
        EventKind::Horizon { horizon, queued } => {
            column(line, at, "limit");
            let noun = if *queued == 1 { "message" } else { "messages" };
            let _ = write!(
                line,
                "queue stopped at its {horizon} horizon with {queued} {noun} still queued"
            );
        }
        EventKind::BudgetSpent { budget, limit } => {
            column(line, at, "limit");
            let _ = write!(
                line,
                "run stopped: its budget of {limit} {} is spent with the client still working",
                budget.unit()
            );
        }
    }
}

fn tcp(line: &mut String, at: Instant, address: &IpAddr, text: &str) {
    column(line, at, "tcp");
    address_column(line, address, "-");
    line.push_str(text);
}

fn render_sent(line: &mut String, command: &Sent) {
    let _ = match command {
        Sent::Ehlo(name) => write!(line, "EHLO {name}"),
        Sent::Helo(name) => write!(line, "HELO {name}"),
        Sent::Starttls => write!(line, "STARTTLS"),
        Sent::Mail(from, parameters) => {
            let _ = write!(line, "MAIL FROM:<{from}>");
            if let Some(size) = parameters.size {
                let _ = write!(line, " SIZE={size}");
            }
            for extension in &parameters.extensions {
                let _ = write!(line, " {extension}");
            }
            Ok(())
        }
        Sent::Rcpt(to) => write!(line, "RCPT TO:<{to}>"),
        Sent::Data => write!(line, "DATA"),
        Sent::EndOfData(message) => write!(line, "(message {message}) ."),
        Sent::Quit => write!(line, "QUIT"),
        Sent::Rset => write!(line, "RSET"),
    };
}

fn join<T: fmt::Display>(line: &mut String, items: impl Iterator<Item = T>) {
    for (index, item) in items.enumerate() {
        if index > 0 {
            line.push_str(", ");
        }
        let _ = write!(line, "{item}");
    }
}

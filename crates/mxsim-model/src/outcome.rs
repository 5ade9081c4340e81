//! What happened to each recipient: the policy's final word, recorded by the world.

use std::fmt;
use std::net::IpAddr;

use crate::name::{Mailbox, Name};
use crate::smtp::Reply;
use crate::time::Instant;

/// The three final states of a recipient after one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DispositionKind {
    /// A server replied 2yz to the end of data.
    Delivered,
    /// The client gave up for good and returns the message (a DSN).
    Bounced,
    /// Neither: the message stays queued for a later attempt.
    Deferred,
}

impl DispositionKind {
    /// The word used in scenario files and tables.
    pub const fn key(self) -> &'static str {
        match self {
            DispositionKind::Delivered => "delivered",
            DispositionKind::Bounced => "bounced",
            DispositionKind::Deferred => "deferred",
        }
    }

    /// The kind a scenario-file word names.
    pub fn from_key(word: &str) -> Option<DispositionKind> {
        [
            DispositionKind::Delivered,
            DispositionKind::Bounced,
            DispositionKind::Deferred,
        ]
        .into_iter()
        .find(|kind| kind.key() == word)
    }
}

impl fmt::Display for DispositionKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.key())
    }
}

/// A recipient's final state with its details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Accepted by `host` at `address` with `reply`.
    Delivered {
        /// The MX host name (or the domain itself under implicit MX).
        host: Name,
        /// The address the session ran over.
        address: IpAddr,
        /// The 2yz reply to the end of data.
        reply: Reply,
    },
    /// Returned to the sender.
    Bounced {
        /// Why, in a few words.
        reason: String,
        /// The server reply that caused it, if one did.
        reply: Option<Reply>,
    },
    /// Left in the queue.
    Deferred {
        /// Why, in a few words.
        reason: String,
    },
}

impl Disposition {
    /// The kind without details.
    pub fn kind(&self) -> DispositionKind {
        match self {
            Disposition::Delivered { .. } => DispositionKind::Delivered,
            Disposition::Bounced { .. } => DispositionKind::Bounced,
            Disposition::Deferred { .. } => DispositionKind::Deferred,
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disposition::Delivered {
                host,
                address,
                reply,
            } => {
                write!(formatter, "delivered via {host} [{address}] ({reply})")
            }
            Disposition::Bounced {
                reason,
                reply: Some(reply),
            } => write!(formatter, "bounced: {reason} ({reply})"),
            Disposition::Bounced {
                reason,
                reply: None,
            } => write!(formatter, "bounced: {reason}"),
            Disposition::Deferred { reason } => write!(formatter, "deferred: {reason}"),
        }
    }
}

/// One recipient's outcome in one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// Index of the message in the scenario.
    pub message: usize,
    /// The recipient.
    pub recipient: Mailbox,
    /// When the policy reached this state (virtual time).
    pub at: Instant,
    /// The state.
    pub disposition: Disposition,
}

//! The rules table: one row per rule of the catalog (the project's standards notes, §2), in
//! catalog order. A new rule is one row here and, when it can be judged, one checker.

use super::{Judged, Level, Rule};
use crate::invariants;

/// Every rule, in catalog order: D, S, R, Q, X, then the project's properties.
pub static RULES: &[Rule] = &[
    Rule {
        id: "R3",
        alias: None,
        level: Level::Must,
        source: "RFC 5321 §4.2.5, §6.1",
        quote: "the SMTP server has accepted responsibility for the message",
        statement: "After 250 to end-of-data, never send the same message for those recipients to another host: at most one accepted copy per message and recipient, unless an end-of-data reply was lost (R8).",
        judged: Judged::By(invariants::r3_one_accepted_copy),
    },
    Rule {
        id: "R8",
        alias: None,
        level: Level::May,
        source: "RFC 5321 §4.5.3.2.6",
        quote: "may result in duplicate delivery",
        statement: "A timeout waiting for the end-of-data reply risks duplicate delivery.",
        judged: Judged::Not(
            "descriptive, a metric and not pass/fail: duplicates after a lost end-of-data reply are counted (`expect: duplicates`), not a violation of R3",
        ),
    },
    Rule {
        id: "Q2",
        alias: None,
        level: Level::Must,
        source: "RFC 5321 §4.5.4.1",
        quote: "the sender MUST delay retrying a particular destination after one attempt has failed",
        statement: "In a queue run, a retry comes no sooner than the policy's shortest retry delay after the attempt before it.",
        judged: Judged::By(invariants::q2_retry_delay),
    },
    Rule {
        id: "Q3",
        alias: None,
        level: Level::Should,
        source: "RFC 5321 §4.5.4.1",
        quote: "the give-up time generally needs to be at least 4-5 days",
        statement: "In a queue run, a message is retried until its lifetime ends, not past it, and expires when it ends.",
        judged: Judged::By(invariants::q3_lifetime),
    },
    Rule {
        id: "Q6",
        alias: None,
        level: Level::Must,
        source: "RFC 5321 §4.5.4",
        quote: "error messages MUST NOT be sent in response to error messages",
        statement: "No DSN goes to a null reverse-path, nor is sent for a message that has one.",
        judged: Judged::By(invariants::q6_no_dsn_for_dsn),
    },
    Rule {
        id: "P1",
        alias: Some("never-worse-preference-after-ehlo"),
        level: Level::Policy,
        source: "none (Klensin 2007, ietf-smtp)",
        quote: "is not permitted to fall back to backup.foo.example under any circumstances",
        statement: "After a 2yz greeting and a reply to EHLO at preference p, no later connection of the attempt goes to a host worse than p.",
        judged: Judged::By(invariants::p1_never_worse_preference_after_ehlo),
    },
];

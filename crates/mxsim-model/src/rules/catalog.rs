//! The rules table: one row per rule of the catalog (the project's standards notes, §2), in
//! catalog order. A new rule is one row here and, when it can be judged, one checker.
//!
//! Levels follow the RFC keyword; a rule derived with MUST strength is MUST; a rule for
//! publishers or servers, or a descriptive one, keeps the nearest level and is not judged on a
//! client's trace (its reason says why).

use super::{Judged, Level, Rule, dns, outcomes, queue, session};
use crate::invariants;

/// A row: the alias is rare, so it is set apart.
const fn row(
    id: &'static str,
    level: Level,
    source: &'static str,
    quote: &'static str,
    statement: &'static str,
    judged: Judged,
) -> Rule {
    Rule {
        id,
        alias: None,
        level,
        source,
        quote,
        statement,
        judged,
    }
}

use Judged::{By, Not};
use Level::{May, Must, Policy, Should};

/// Why the publisher rules are not judged on a client's trace.
const PUBLISHER: &str =
    "a rule for the zone's publisher, not the client: the scenario loader flags it";

/// Every rule, in catalog order: D, S, R, Q, X, then the project's properties. One row a line,
/// so the table reads as one.
#[rustfmt::skip]
pub static RULES: &[Rule] = &[
    row("D1", Must, "RFC 5321 §5.1", "If a non-existent domain error is returned, this situation MUST be reported as an error", "NXDOMAIN for the MX query: no SMTP connection in that attempt.", By(dns::d1_nxdomain_no_connection)),
    row("D2", Must, "RFC 5321 §5.1", "If a temporary error is returned, the message MUST be queued and retried later", "A temporary failure of the MX query: never the domain's own address records.", By(dns::d2_temporary_no_implicit_mx)),
    row("D3", Must, "RFC 5321 §5.1", "treated as if it was associated with an implicit MX RR, with a preference of 0", "An empty MX list (NODATA) means the implicit MX: the domain's own address records.", By(dns::d3_nodata_implicit_mx)),
    row("D4", Must, "RFC 5321 §5.1", "SMTP systems MUST NOT utilize any address RRs associated with that name unless they are located using the MX RRs", "When MX records exist, never connect to the domain's own address records.", By(dns::d4_mx_present_no_implicit_mx)),
    row("D5", Must, "RFC 5321 §5.1", "none of them are usable, or the implicit MX is unusable, this situation MUST be reported as an error", "MX records exist but none is usable: report an error.", By(dns::d5_no_usable_mx_bounces)),
    row("D6", Must, "RFC 7505 §1, §3; RFC 5321 §5.1", "cause all mail delivery attempts to a domain to fail immediately", "A null MX: no connection in that attempt.", By(dns::d6_null_mx_no_connection)),
    row("D7", Should, "RFC 7505 §4.1", "it SHOULD use a 556 reply code", "Rejecting a recipient for a null MX uses 556 and 5.1.10.", Not("a rule for the submission server's reply; the simulated client's bounce has no reply code of its own")),
    row("D8", Must, "RFC 5321 §5.1", "If a CNAME record is found, the resulting name is processed as if it were the initial name", "A CNAME at the recipient domain: use the target's MX records.", By(dns::d8_cname_uses_target)),
    row("D9", Must, "RFC 2181 §10.3", "must not be an alias", "An MX target must not be a CNAME (publisher rule; client behaviour is O13).", Not(PUBLISHER)),
    row("D10", Must, "RFC 5321 §5.1", "Lower numbers are more preferred than higher ones", "Within one domain's list, connected hosts go by ascending preference (a restart at the best is allowed).", By(dns::d10_ascending_preference)),
    row("D11", Must, "RFC 5321 §5.1", "the sender-SMTP MUST randomize them", "Hosts of equal preference are randomized.", Not("a property of many runs, not of one trace: checked over seeds by the property test every_equal_preference_host_is_tried_first")),
    row("D12", Must, "RFC 5321 §5.1", "the SMTP sender MUST try them in the order presented", "A multihomed host's addresses are tried in resolver order.", By(dns::d12_addresses_in_order)),
    row("D13", Must, "RFC 5321 §5.1", "MUST be able to try (and retry) each of the relevant addresses in this list in order", "Able to try every address until a delivery attempt succeeds; a cap MAY be set, SHOULD be at least two.", Not("an ability and a configured cap, not an event: a cap is a policy setting; what a cap does on a scenario is compared, not judged")),
    row("D14", Must, "RFC 5321 §5.1", "all records at that preference level and higher-numbered ones MUST be discarded", "Own host in the MX list: drop its preference and all worse ones.", By(dns::d14_self_mx_discards)),
    row("D15", Must, "RFC 5321 §5.1", "the message MUST be returned as undeliverable", "Nothing left after D14: return the message as undeliverable.", By(dns::d15_self_best_bounces)),
    row("D16", Should, "RFC 5321 §5.1", "they SHOULD be tried, best preference first", "Records left after D14 are tried best first.", By(dns::d16_rest_best_first)),
    row("D17", Must, "RFC 7505 §3", "A domain that advertises a null MX MUST NOT advertise any other MX RR", "No null MX beside other MX records (publisher rule; client behaviour is O14).", Not(PUBLISHER)),
    row("S1", Should, "RFC 5321 §2.2.1", "clients SHOULD preferentially utilize EHLO rather than HELO", "The first command of a connection is EHLO.", By(session::s1_ehlo_first)),
    row("S2", Should, "RFC 5321 §3.2", "the client SHOULD be able to fall back and send HELO", "EHLO answered 500/502: HELO on the same connection.", By(session::s2_helo_after_ehlo_refused)),
    row("S3", Must, "RFC 5321 §4.1.4", "MUST first be initialized by the use of the EHLO command", "EHLO or HELO precedes the first MAIL of a connection.", By(session::s3_hello_before_mail)),
    row("S4", Must, "RFC 3207 §4.2", "The client MUST discard any knowledge obtained from the server", "After STARTTLS, EHLO again before MAIL.", By(session::s4_ehlo_after_tls)),
    row("S5", Must, "RFC 5321 §4.5.3.2", "It MUST use per-command timeouts", "Per-command timeouts, never one transaction-wide timer.", Not("a property of the client's code: every wait in the trace ends by its own timeout or a reply, so one trace cannot tell a transaction timer apart")),
    row("S6", Should, "RFC 5321 §4.5.3.2", "the minimum per-command timeout values SHOULD be as follows", "Minimum waits: greeting, MAIL, RCPT 5 min; DATA 2; data block 3; end of data 10.", By(session::s6_minimum_timeouts)),
    row("S7", Should, "RFC 5321 §3.8", "treat the mail transaction as if a 451 response had been received", "A connection lost mid-transaction is a 451: recipients stay queued.", By(outcomes::s7_lost_connection_is_451)),
    row("S8", Must, "RFC 5321 §4.3.2", "MUST be prepared to deal with unrecognized reply codes by interpreting the first digit only", "Unknown reply codes are read by their first digit.", By(outcomes::s8_unknown_codes_by_first_digit)),
    row("S9", Must, "RFC 5321 §4.2.4; RFC 3207 §4", "MUST NOT list capabilities in response to EHLO for which they will return 502", "Servers do not advertise what they refuse (a rule for the simulated servers).", Not("a rule for servers: the scenario's scripts, not the client")),
    row("R1", Should, "RFC 5321 §4.2.1", "the error condition is temporary, and the action may be requested again", "A 4yz reply is transient: no failure DSN before the give-up time.", By(outcomes::r1_transient_is_not_a_failure)),
    row("R2", Should, "RFC 5321 §4.2.1", "The SMTP client SHOULD NOT repeat the exact request (in the same sequence)", "After 5yz, the same request is not sent again on the same connection.", By(session::r2_no_repeat_after_5yz)),
    Rule {
        id: "R3",
        alias: None,
        level: Must,
        source: "RFC 5321 §4.2.5, §6.1",
        quote: "it is accepting responsibility for delivering or relaying the message",
        statement: "After 250 to end-of-data, never send the same message for those recipients to another host: at most one accepted copy per message and recipient, unless an end-of-data reply was lost (R8).",
        judged: By(invariants::r3_one_accepted_copy),
    },
    row("R4", Must, "RFC 5321 §4.2.5", "The SMTP client retains responsibility for the delivery of that message", "After 4yz to end-of-data the client keeps the message: it requeues or returns it, never drops it.", Not("every recipient ends in an outcome by construction of the runner, so dropping cannot show in a trace; the server side is the simulated server's")),
    row("R5", Should, "RFC 5321 §4.2.5", "SHOULD not again attempt delivery to the same server without user review", "After 5yz to end-of-data, no automatic resend to that host.", By(session::r5_no_resend_after_5yz_to_data)),
    row("R6", Should, "RFC 5321 §4.5.3.1.10", "Clients SHOULD treat a 552 code in this case as a temporary", "A 452 (or 552) for too many recipients: the rest are sent later, not bounced.", By(outcomes::r6_too_many_recipients_later)),
    row("R7", Must, "RFC 5321 §4.5.4.1", "5yz responses to the MAIL command MUST NOT be cached", "Never cache a 5yz reply to MAIL.", By(outcomes::r7_no_cached_mail_5yz)),
    row("R8", May, "RFC 5321 §4.5.3.2.6", "would typically result in delivery of multiple copies of the message", "A timeout waiting for the end-of-data reply risks duplicate delivery.", Not("descriptive, a metric and not pass/fail: a duplicate after a lost end-of-data reply is counted (`expect: duplicates`), not a violation of R3")),
    row("Q1", Must, "RFC 5321 §4.5.4.1", "mail that cannot be transmitted immediately MUST be queued and periodically retried", "Mail that cannot be sent now is queued and retried.", By(queue::q1_queued_and_retried)),
    row("Q2", Must, "RFC 5321 §4.5.4.1", "The sender MUST delay retrying a particular destination after one attempt has failed", "In a queue run, a retry comes no sooner than the policy's shortest retry delay after the attempt before it.", By(invariants::q2_retry_delay)),
    row("Q3", Should, "RFC 5321 §4.5.4.1", "the give-up time generally needs to be at least 4-5 days", "In a queue run, a message is retried until its lifetime ends, not past it, and expires when it ends.", By(invariants::q3_lifetime)),
    row("Q4", Must, "RFC 5321 §4.5.4.1", "The parameters to the retry algorithm MUST be configurable", "Retry parameters are configurable.", Not("a property of the client's configuration (`queue:` in a policy file), not of a run")),
    row("Q5", Should, "RFC 5321 §4.5.4.1", "A client SHOULD keep a list of hosts it cannot reach", "Keep a list of unreachable hosts across queued messages.", By(queue::q5_unreachable_hosts_remembered)),
    row("Q6", Must, "RFC 5321 §4.5.4", "A queuing strategy MUST NOT send error messages in response to error messages", "No DSN goes to a null reverse-path, nor is sent for a message that has one.", By(invariants::q6_no_dsn_for_dsn)),
    row("Q7", Should, "RFC 5321 §2.2.3", "SHOULD be less than the normal timeout for bouncing as undeliverable", "Waiting for an extension-capable host ends before the bounce timeout.", By(outcomes::q7_wanted_wait_before_bounce)),
    row("X1", May, "RFC 5321 §2.2.3", "it MAY choose … to requeue the message and try later and/or try an alternate MX host", "Next hop lacks a required extension: MAY requeue and/or try an alternate MX.", Not("a MAY: nothing to break; policies are compared on it (O2–O5)")),
    row("X2", May, "RFC 8461 §5", "messages may be delivered as though there were no MTA-STS validation failure", "MTA-STS testing mode delivers as if no failure.", Not("MTA-STS policies are not modelled in scenarios yet")),
    row("X3", Must, "RFC 8461 §5", "Sending MTAs MUST NOT deliver the message to hosts that fail MX matching or certificate validation", "MTA-STS enforce: never deliver to an invalid MX; go on to the next.", Not("MTA-STS policies are not modelled in scenarios yet")),
    row("X4", Must, "RFC 8461 §5", "MUST NOT permanently fail to deliver messages before checking, via DNS", "MTA-STS enforce: no permanent failure before re-checking the policy.", Not("MTA-STS policies are not modelled in scenarios yet")),
    row("X5", Must, "RFC 8689 §4.2.1", "MUST issue a QUIT to the server and repeat steps 2-5 with each host", "REQUIRETLS: a host without REQUIRETLS after TLS gets no transaction; every MX is tried before the non-delivery notice.", By(outcomes::x5_requiretls)),
    row("X6", May, "RFC 8689 §4.2.1", "The client MAY send other, unprotected messages to that server", "Other, unprotected messages MAY use that connection before the QUIT.", Not("a MAY: nothing to break")),
    row("X7", Must, "RFC 7672 [S]", "MUST NOT deliver mail via the corresponding host unless a TLS session is negotiated via STARTTLS", "DANE: a host with a secure TLSA RRset gets mail only over STARTTLS.", Not("TLSA records are not modelled in scenarios yet")),
    row("X8", Must, "RFC 6531 §3.2", "MUST NOT transmit an internationalized email address", "SMTPUTF8 missing: no internationalized address on the wire to that host.", By(session::x8_no_utf8_address_without_smtputf8)),
    row("X9", Should, "RFC 6531 §3.2", "it SHOULD reject the message", "SMTPUTF8 missing: reject (bounce), or MAY requeue or try an alternate MX.", Not("the SHOULD and the MAY cover every choice; policies are compared on it (O8)")),
    row("X10", Must, "RFC 1652 §3", "the client SMTP must not, under any circumstances, attempt to transfer", "8BITMIME missing: never send 8-bit octets.", Not("message bodies are not modelled: the trace carries a body's size, not its bytes")),
    row("X11", Must, "RFC 3030 §3", "the sender-SMTP MUST NOT, under any circumstances, send binary data", "BINARYMIME missing: never send binary data.", Not("message bodies and BDAT are not modelled")),
    row("X12", Must, "RFC 3461 §5.2.2", "ENVID, NOTIFY, RET, or ORCPT parameters MUST NOT be issued", "DSN missing on the next hop: strip its parameters.", Not("DSN parameters are not modelled on MAIL and RCPT")),
    row("X13", Should, "RFC 1870 §6.2", "The client should then declare the message undeliverable", "SIZE: 552 for an oversize message means undeliverable; 452 means later.", Not("the lower-case should and O8 leave the choice open: policies are compared on it")),
    row("X14", May, "RFC 3207 §4, §6", "Such a decision is based on local policy", "STARTTLS 454 or TLS failure: local choice.", Not("local policy: compared (O9), not judged")),
    row("X15", Must, "RFC 3207 §6", "MUST be able to be configured to require successful TLS negotiation", "The client can be configured to require TLS for selected hosts.", Not("a configuration ability (`tls: required`), not an event")),
    Rule {
        id: "P1",
        alias: Some("never-worse-preference-after-ehlo"),
        level: Policy,
        source: "none (Klensin 2007, ietf-smtp)",
        quote: "is not permitted to fall back to backup.foo.example under any circumstances",
        statement: "After a 2yz greeting and a reply to EHLO at preference p, no later connection of the attempt goes to a host worse than p.",
        judged: By(invariants::p1_never_worse_preference_after_ehlo),
    },
];

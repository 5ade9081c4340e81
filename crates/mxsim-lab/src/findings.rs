//! The findings page (`docs/findings.md`, printed by `mxsim findings`): the seed's six
//! questions, each with the scenarios that answer it, the compare table across every policy,
//! the RFC text that bears on it, and which of its rows the project has checked against real
//! MTAs. The scenarios are mapped to questions by [`QUESTIONS`], a table in code; a seed
//! scenario no question names is an error, so a new seed file cannot be left off the page.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use mxsim_model::scenario::Scenario;
use mxsim_policy::registry;

use crate::compare::{self, Format, Report};
use crate::spec::PolicySpec;

/// What `mxsim findings` reads by default: every seed scenario, and the queue scenario that
/// answers the seed's last question with a required keyword.
pub const SOURCES: &[&str] = &[
    "scenarios/seed",
    "scenarios/queue/seed-queued-required-keyword.yaml",
];

/// One of the seed's questions.
#[derive(Clone, Copy, Debug)]
pub struct Question {
    /// The question in one line.
    pub line: &'static str,
    /// The seed's own words, short.
    pub seed: &'static str,
    /// The scenarios that answer it, as compare labels (the path below `scenarios/`).
    pub scenarios: &'static [&'static str],
    /// What the table shows, in two or three sentences.
    pub answer: &'static str,
    /// The RFC text that bears on it: (document and section, short quote).
    pub rfc: &'static [(&'static str, &'static str)],
    /// Which rows were checked against real MTAs, as the repository records it.
    pub live: &'static str,
}

const NO_LIVE: &str = "None of these rows has been checked against a real MTA: the MTA columns are presets built from each MTA's source and documentation (each file under `policies/` names its sources).";

/// The seed's six questions (ietf-smtp, May 2007), in the seed's order.
pub const QUESTIONS: &[Question] = &[
    Question {
        line: "FOOBAR is wanted and smtp2 (MX 10) lacks it: go on without it, or try smtp1 (MX 10)?",
        seed: "Is it required to proceed using the non-FOOBAR behavior, or may it (should it?) close the connection to smtp2, open one to smtp1.foo.example, and see if *it* supports FOOBAR?",
        scenarios: &["seed/base-case"],
        answer: "Every deployed MTA modelled here, and the RFC baseline, sends through whichever preference-10 host it reaches first, without FOOBAR. Only a policy that searches the equal-preference hosts (same-preference, seed-literal) moves to smtp1, at the cost of a second connection.",
        rfc: &[
            (
                "RFC 5321 §2.2.3",
                "\"… it MAY choose, based on the specific extension and circumstances, to requeue the message and try later and/or try an alternate MX host.\"",
            ),
            (
                "RFC 5321 §5.1",
                "\"… the sender-SMTP MUST randomize them to spread the load across multiple mail exchangers …\"",
            ),
        ],
        live: "No real MTA knows FOOBAR, so these rows cannot be run live. The order among equal preferences, which decides them, was (`mxsim live`, [live-agreement.md](live-agreement.md), 2026-12-02): real OpenSMTPD 6.8.0p2 takes the preference-10 host whose address lookup completes first (`scenarios/live/equal-preference-lookup-order.yaml`), as the opensmtpd-7 row now does; real Postfix 3.7.11 and Exim 4.96 each made one of the orders their presets draw at random.",
    },
    Question {
        line: "If smtp1 cannot be reached at once, how long may the client wait before going back to smtp2?",
        seed: "If a connection to smtp1 cannot be opened immediately, how long should it wait (for a timeout) before giving up and going back to smtp2?",
        scenarios: &[
            "seed/wanted-smtp1-slow",
            "seed/wanted-smtp1-unreachable",
            "seed/wanted-parked-session-closes",
        ],
        answer: "No RFC sets the wait; each client's own connect and greeting timeouts decide it (30 seconds to 5 minutes among the MTAs). A client that parks smtp2's session while it waits can lose it to smtp2's idle timeout.",
        rfc: &[
            (
                "RFC 5321 §2.2.3",
                "\"… the timeout to fall back to an unextended format (if one is available) SHOULD be less than the normal timeout for bouncing as undeliverable …\"",
            ),
            (
                "RFC 5321 §4.5.3.2",
                "minimum per-command timeouts: \"Initial 220 message: 5 minutes\".",
            ),
            (
                "RFC 5321 §4.5.3.2.1",
                "\"An SMTP client process needs to distinguish between a failed TCP connection and a delay in receiving the initial 220 greeting message.\"",
            ),
        ],
        live: "No real MTA knows FOOBAR, so these rows cannot be run live. The wait they turn on was (`mxsim live`, [live-agreement.md](live-agreement.md), 2026-12-02): at a host that accepts the connection and never greets, real Postfix 3.7.11 and Exim 4.96 wait out their greeting timeouts (5 minutes by default) before the next host, while real OpenSMTPD 6.8.0p2 opens a second connection to the other preference-10 host 2 seconds later and delivers there (`scenarios/live/silent-greeting.yaml`, `silent-greeting-equal-preference.yaml`); the presets agree with all three.",
    },
    Question {
        line: "Does the answer change when the message is rejected or returned without FOOBAR?",
        seed: "See if the answer changes if the nature of the FOOBAR extension is such that, if that service is not available, the message will be rejected or returned, not forwarded with some restricted capabilities.",
        scenarios: &[
            "seed/required-foobar",
            "seed/required-foobar-only-backup",
            "seed/diff-postfix-310-exim-4",
            "seed/diff-rfc5321-whole-list",
        ],
        answer: "It does: a policy that looks elsewhere for a required keyword delivers via smtp1 in every order, while the baseline bounces when smtp2 comes first. When only the backup has it, only whole-list (the MTA-STS and REQUIRETLS reading) reaches it. Real MTAs do not know FOOBAR and send without it; for SMTPUTF8 they part (Postfix returns the message, Exim sends it).",
        rfc: &[
            (
                "RFC 5321 §2.2.3",
                "\"… an intermediate SMTP system finds a next hop that does not support the required extension, it MAY choose … to requeue the message and try later and/or try an alternate MX host.\"",
            ),
            (
                "RFC 8689 §4.2.1",
                "\"… the client MUST issue a QUIT to the server and repeat steps 2-5 with each host on the recipient domain's list of MX hosts …\"",
            ),
            (
                "RFC 8461 §5.1",
                "\"If a candidate fails validation, continue to the next candidate (if there is one).\"",
            ),
            (
                "RFC 6531 §3.2",
                "\"… the SMTPUTF8-aware SMTP client MUST NOT transmit an internationalized email address …\"",
            ),
        ],
        live: NO_LIVE,
    },
    Question {
        line: "FOOBAR and BARFOO both needed; smtp1 offers only FOOBAR, smtp2 only BARFOO: what then?",
        seed: "If they client believes that it needs both the FOOBAR and BARFOO extensions, and smtp2 offers only BARFOO while smtp1 offers only FOOBAR, things get even more interesting.",
        scenarios: &[
            "seed/split-extensions-required",
            "seed/split-extensions-wanted",
        ],
        answer: "No host can take the message with both. When both are required, the baseline bounces at the first host and the searching policies bounce after trying every host they may; when both are merely wanted, every policy delivers via the first host it reaches, since neither host is better.",
        rfc: &[
            (
                "RFC 6531 §3.7.2",
                "\"… it is strongly advised that all or none of them SHOULD support the SMTPUTF8 extension. Otherwise, unexpected rejections can happen …\" (for SMTPUTF8 only; no RFC speaks to extensions split across hosts in general).",
            ),
            (
                "RFC 5321 §2.2.3",
                "\"… requeue the message and try later and/or try an alternate MX host.\"",
            ),
        ],
        live: NO_LIVE,
    },
    Question {
        line: "After a good greeting and EHLO at smtp1 or smtp2, may the client ever fall back to backup (MX 20)?",
        seed: "A client that is successful in opening an SMTP session (getting the 220 greeting, sending an EHLO command, and getting a response) to at least one of smtp1 or smtp2 is not permitted to fall back to backup.foo.example under any circumstances.",
        scenarios: &[
            "seed/backup-after-ehlo-mail-4yz",
            "seed/backup-after-ehlo-421",
            "seed/backup-after-ehlo-drop",
            "seed/diff-klensin-strict-same-preference",
            "seed/required-foobar-only-backup",
        ],
        answer: "The MTAs split: Exim, Sendmail, mox and chasquid go on to the backup after a transient failure at both preference-10 hosts; Postfix stops at its two-session limit; OpenSMTPD, Stalwart, maddy and Haraka queue. Only klensin-strict, the seed's reading, never reaches the backup. No RFC text found forbids it.",
        rfc: &[
            (
                "RFC 5321 §5.1",
                "\"… the SMTP client MUST be able to try (and retry) each of the relevant addresses in this list in order, until a delivery attempt succeeds.\"",
            ),
            (
                "RFC 5321 §3.8",
                "a client that loses the connection \"SHOULD … treat the mail transaction as if a 451 response had been received and act accordingly.\"",
            ),
            (
                "RFC 974",
                "\"… try the MXs in order until one of the MXs accepts the message, or all the MXs have been tried.\"",
            ),
        ],
        live: "No real MTA knows FOOBAR, so these rows cannot be run live. Falling back to the backup after a good EHLO was (`mxsim live`, [live-agreement.md](live-agreement.md), 2026-12-02): after a 452 to MAIL, a 451 to the end of data, a connection dropped at DATA or a lost end-of-data reply at the primary, real Postfix 3.7.11 and Exim 4.96 deliver through the backup, and real OpenSMTPD 6.8.0p2 defers without trying it; when both preference-10 hosts answer 451 to RCPT, Exim delivers through the backup, Postfix defers after the two and never tries it, and OpenSMTPD defers after the first. The presets agree with all three on each case.",
    },
    Question {
        line: "What changes once the message is queued?",
        seed: "But, even there, odd cases exist if the message is queued.",
        scenarios: &[
            "seed/queued-wanted-keyword",
            "queue/seed-queued-required-keyword",
        ],
        answer: "A policy that requeues for a wanted or required FOOBAR waits for smtp1 to come back and delivers there, hours later, never touching the backup; the RFC baseline and the MTAs send through smtp2 at once without a wanted FOOBAR, and the baseline bounces when FOOBAR is required.",
        rfc: &[
            (
                "RFC 5321 §2.2.3",
                "\"… if normal timeout is three days, the requeue timeout before attempting to transmit the mail without the extension might be one day\".",
            ),
            (
                "RFC 5321 §4.5.4.1",
                "\"The sender MUST delay retrying a particular destination after one attempt has failed. In general, the retry interval SHOULD be at least 30 minutes …\"",
            ),
        ],
        live: "None of these rows has been checked against a real MTA. The queue was, on a smaller world (`mxsim live`, [live-agreement.md](live-agreement.md), 2026-12-02): a second message a minute after the first, whose primary refused connections, goes straight to the backup on real Exim 4.96 (its retry hints) and tries the primary again on real Postfix 3.7.11 and OpenSMTPD 6.8.0p2 (`scenarios/live/second-message-after-refusals.yaml`); earlier, on real Exim 4.96, a second message skipped the hosts that had just greeted 421 (`scenarios/queue/retry-hints-second-message.yaml`).",
    },
];

/// The findings page: every question with its scenarios run by every registered policy.
/// `files` must include every scenario the questions name; a seed scenario (`seed/…`) that no
/// question names, or a named scenario missing from `files`, is an error.
pub fn render(files: &[(PathBuf, Arc<Scenario>)]) -> Result<String, String> {
    let policies: Vec<PolicySpec> = registry::names()
        .into_iter()
        .map(|name| PolicySpec::Named(name.to_owned()))
        .collect();
    let report = compare::build(files, &policies);
    let named: Vec<&str> = QUESTIONS
        .iter()
        .flat_map(|question| question.scenarios.iter().copied())
        .collect();
    let unmapped: Vec<&str> = report
        .scenarios
        .iter()
        .map(|row| row.label.as_str())
        .filter(|label| !named.contains(label))
        .collect();
    if !unmapped.is_empty() {
        return Err(format!(
            "no question of the findings page names {}: add it to QUESTIONS in crates/mxsim-lab/src/findings.rs",
            unmapped.join(", ")
        ));
    }
    let mut out = String::new();
    out.push_str("# Findings: the seed's questions, answered by running them\n\n");
    out.push_str("<!-- Generated by `mxsim findings > docs/findings.md`; a test fails when it is stale. -->\n\n");
    out.push_str(&wrap(
        "In May 2007 John Klensin asked on the ietf-smtp list what an SMTP client may do when the hosts of one MX preference differ in the extensions they offer. His example: `foo.example` has `MX 10 smtp1`, `MX 10 smtp2` and `MX 20 backup`, and the client would like extension FOOBAR, which smtp2 does not offer. This page takes his six questions one by one. For each it gives the scenario files of mxsim that pose it (a DNS zone and scripted SMTP servers, in virtual time), what every modelled client does there (the RFC 5321 baseline, four readings of the standards, ten deployed MTAs), and the RFC text that bears on it. Each section stands alone and can be pasted into a mail.",
    ));
    out.push_str(&wrap(
        "Reading a table: one row per policy. `result` is the outcome over every order of the equal-preference hosts the policy could draw (`delivered smtp1 ½ · smtp2 ½` means half the orders delivered through each); `conn` counts connection attempts, `time` is virtual time to the outcome, and `att` counts attempts in a queue scenario. Tags after a result are verdicts against the rules catalog (`DEPARTS` a documented departure, `INFO` an open question met); the legend under each table lists them.",
    ));
    out.push('\n');
    out.push_str(&wrap(
        "The policies: `rfc5321` is the baseline (the RFC's MUSTs, and no search for extensions); `klensin-strict` never uses a worse preference after a good EHLO; `same-preference` searches the hosts of the same preference for a missing keyword; `whole-list` searches the whole list; `seed-literal` reads the seed literally; `first-mx-only` is a deliberately naive client. The other columns are presets of deployed MTAs (Postfix, Exim, Sendmail, OpenSMTPD, Stalwart, maddy, Haraka, mox, chasquid), each built from the MTA's source and documentation with its defaults.",
    ));
    out.push('\n');
    for (index, question) in QUESTIONS.iter().enumerate() {
        let _ = writeln!(out, "## Question {}: {}\n", index + 1, question.line);
        out.push_str(&wrap(&format!("The seed: \"{}\"", question.seed)));
        out.push_str(&wrap(&format!("What the runs show: {}", question.answer)));
        out.push_str(
            "Scenarios (under `scenarios/`; run one with `mxsim run FILE --all-orders`):\n\n",
        );
        for label in question.scenarios {
            let row = report
                .scenarios
                .iter()
                .find(|row| row.label == *label)
                .ok_or_else(|| {
                    format!("question {} names {label}, which was not given", index + 1)
                })?;
            out.push_str(&wrap_item(&format!("`{label}.yaml`: {}", row.title)));
        }
        out.push('\n');
        let mut part: Report = report.clone();
        part.scenarios
            .retain(|row| question.scenarios.contains(&row.label.as_str()));
        part.scenarios.sort_by_key(|row| {
            question
                .scenarios
                .iter()
                .position(|label| *label == row.label)
        });
        let table = compare::render(&part, Format::Markdown);
        for line in table.lines() {
            if line.starts_with("Made by mxsim") {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        while out.ends_with("\n\n") {
            out.pop();
        }
        out.push_str("\n\nThe RFC text that bears on it:\n\n");
        for (section, quote) in question.rfc {
            out.push_str(&wrap_item(&format!("{section}: {quote}")));
        }
        out.push('\n');
        out.push_str(&wrap(&format!(
            "Checked against real MTAs: {}",
            question.live
        )));
    }
    out.push_str("## How this page is made\n\n");
    out.push_str(&wrap(
        "`mxsim findings > docs/findings.md` runs every registered policy on every scenario above over every equal-preference order, in virtual time, and prints this page; the same scenarios, policies and version always give the same bytes. `mxsim compare FILE --format markdown` prints one table on its own, with the build that made it. The quotes are short extracts; the section numbers point to the full text.",
    ));
    // One blank line between blocks, however the pieces ended.
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    Ok(out)
}

/// A paragraph wrapped to 72 columns, with a blank line after it.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    for line in compare::wrap(text, 72, "", "") {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    out
}

/// A list item wrapped to 72 columns.
fn wrap_item(text: &str) -> String {
    let mut out = String::new();
    for line in compare::wrap(text, 72, "- ", "  ") {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

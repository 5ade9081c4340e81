//! Check results as data: one table of rules and one violation value.
//!
//! Every rule a run can be judged by is a row of [`RULES`]: its id (the rule catalog of the
//! project's standards notes: D, S, R, Q, X rows and the project property P1), its level, its
//! source with a short quote, a one-line statement, and how it is judged: a checker, a pure
//! function of the run's data, or the reason it cannot be judged from a scenario and its trace.
//! A policy's `claims:` are ids of this table; a scenario's own `expect:` is checked by
//! [`crate::expect`] into the same [`Violation`] value, at level [`Level::Expect`].
//! `docs/rules.md` is generated from the table ([`markdown`]); a test fails when it is stale.

use std::fmt;

use crate::outcome::RecipientOutcome;
use crate::queue::QueueSettings;
use crate::scenario::{ClientIdentity, Message};
use crate::trace::Trace;

mod catalog;
mod dns;
mod outcomes;
pub mod questions;
mod queue;
mod session;

pub use catalog::RULES;
pub use questions::{QUESTIONS, Question};

/// How binding a rule is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// An RFC's MUST, MUST NOT or REQUIRED (or a rule derived with that strength).
    Must,
    /// An RFC's SHOULD or SHOULD NOT.
    Should,
    /// An RFC's MAY: nothing to break, something to compare.
    May,
    /// Not required by any standard: held only by policies that claim it.
    Policy,
    /// A scenario file's own `expect:` entry.
    Expect,
    /// An open question of the standards ([`QUESTIONS`]): met, never broken.
    Open,
}

impl Level {
    /// Every level, in table order.
    pub const ALL: [Level; 6] = [
        Level::Must,
        Level::Should,
        Level::May,
        Level::Policy,
        Level::Expect,
        Level::Open,
    ];

    /// The word verdict lines and `docs/rules.md` print.
    pub const fn word(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
            Level::Policy => "POLICY",
            Level::Expect => "EXPECT",
            Level::Open => "OPEN",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// One thing a run broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule's id in [`RULES`], or [`EXPECT`] for the scenario's own `expect:`.
    pub rule: &'static str,
    /// The rule's level.
    pub level: Level,
    /// What happened, in a sentence without the rule id.
    pub message: String,
    /// The index in `trace.events` of the event it points at, when there is one.
    pub event: Option<usize>,
}

/// The rule id of a violation of a scenario's own `expect:`.
pub const EXPECT: &str = "expect";

impl Violation {
    /// A violation of `rule` (an id of [`RULES`]), at that rule's level.
    pub fn of(rule: &'static str, message: String, event: Option<usize>) -> Violation {
        let level = find(rule).map_or(Level::Must, |found| found.level);
        Violation {
            rule,
            level,
            message,
            event,
        }
    }

    /// An open question of [`QUESTIONS`] met: what raised it and the alternative taken. Graded
    /// INFO, never a failure.
    pub fn met(question: &'static str, message: String, event: Option<usize>) -> Violation {
        Violation {
            rule: question,
            level: Level::Open,
            message,
            event,
        }
    }

    /// A violation of the scenario's own `expect:`.
    pub fn expect(message: String, event: Option<usize>) -> Violation {
        Violation {
            rule: EXPECT,
            level: Level::Expect,
            message,
            event,
        }
    }
}

impl fmt::Display for Violation {
    /// `rule Q2: …` for a rule, `claim NAME: …` for a claimed property, the bare sentence for
    /// an `expect:` entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            Level::Expect => f.write_str(&self.message),
            Level::Open => write!(f, "question {}: {}", self.rule, self.message),
            Level::Policy => {
                let name = find(self.rule)
                    .and_then(|rule| rule.alias)
                    .unwrap_or(self.rule);
                write!(f, "claim {name}: {}", self.message)
            }
            _ => write!(f, "rule {}: {}", self.rule, self.message),
        }
    }
}

/// A policy's documented departure from a rule: the rule's id and why, with the source (a
/// policy file's `departures:`, or a Rust policy's registry entry). A broken rule the policy
/// departs from is graded [`Grade::Departs`]: shown, never a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departure {
    /// The rule's id in [`RULES`].
    pub rule: &'static str,
    /// Why the policy departs from it, with the source.
    pub reason: String,
}

/// A verdict on one rule, as conformance suites give them; ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grade {
    /// Nothing the checkers judge was broken.
    Pass,
    /// An open question of the standards was met; the alternative taken is named.
    Info,
    /// A rule was broken, and the policy documents that it departs from it.
    Departs,
    /// A SHOULD was broken.
    NonStrict,
    /// A MUST was broken, or a rule the policy claims.
    Fail,
}

impl Grade {
    /// Every grade, best first.
    pub const ALL: [Grade; 5] = [
        Grade::Pass,
        Grade::Info,
        Grade::Departs,
        Grade::NonStrict,
        Grade::Fail,
    ];

    /// The word verdict lines print.
    pub const fn word(self) -> &'static str {
        match self {
            Grade::Pass => "PASS",
            Grade::Info => "INFO",
            Grade::Departs => "DEPARTS",
            Grade::NonStrict => "NON-STRICT",
            Grade::Fail => "FAIL",
        }
    }

    /// The grade of `violation` for a policy that documents `departures`; `None` for a
    /// violation of the scenario's own `expect:`, which is not a verdict on a rule.
    pub fn of(violation: &Violation, departures: &[Departure]) -> Option<Grade> {
        if violation.level == Level::Expect {
            return None;
        }
        if violation.level != Level::Open
            && departures
                .iter()
                .any(|departure| departure.rule == violation.rule)
        {
            return Some(Grade::Departs);
        }
        Some(match violation.level {
            Level::Must | Level::Policy => Grade::Fail,
            Level::Should => Grade::NonStrict,
            Level::May | Level::Expect | Level::Open => Grade::Info,
        })
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// Work the checkers of one module share over one run, done once: a module whose rules read
/// the same walk over the trace keeps it here instead of walking once per rule. Start each run
/// with a fresh one (`Memo::default()`).
#[derive(Default)]
pub struct Memo {
    session: std::cell::OnceCell<Vec<Violation>>,
    outcomes: std::cell::OnceCell<Vec<Violation>>,
    dns: std::cell::OnceCell<dns::Shared>,
    lists: std::cell::OnceCell<Vec<Violation>>,
}

impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Memo")
    }
}

/// What a checker reads: one run's data and what the scenario and the policy say about it.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The run's events.
    pub trace: &'a Trace,
    /// The run's per-recipient outcomes.
    pub outcomes: &'a [RecipientOutcome],
    /// The scenario's messages.
    pub messages: &'a [Message],
    /// In a queue scenario, the policy's queue settings; `None` for a single pass.
    pub queue: Option<&'a QueueSettings>,
    /// The scenario's client (its names and addresses, for the self-MX rules D14–D16); `None`
    /// when unknown, and then those rules are not judged.
    pub client: Option<&'a ClientIdentity>,
    /// Shared work of the run's checkers; a fresh [`Memo`] per run.
    pub memo: &'a Memo,
}

/// Every violation of the judged rules that `applies` selects, rule by rule in table order:
/// the same as calling each rule's checker in turn. The checkers of one module share one walk
/// over the trace through the subject's [`Memo`], so a module is walked once per run, not once
/// per rule.
pub fn check_rules(subject: &Subject<'_>, applies: impl Fn(&Rule) -> bool) -> Vec<Violation> {
    RULES
        .iter()
        .filter(|rule| rule.judged() && applies(rule))
        .flat_map(|rule| rule.check(subject))
        .collect()
}

/// A checker: a pure function of a run's data, returning every violation it finds.
pub type Checker = fn(&Subject<'_>) -> Vec<Violation>;

/// How a rule is judged.
#[derive(Clone, Copy, Debug)]
pub enum Judged {
    /// By this checker, on every run it applies to.
    By(Checker),
    /// Not from a scenario and its trace, for this reason.
    Not(&'static str),
    /// From a trace, but no checker is written yet: what it would take.
    Pending(&'static str),
}

/// One row of the rules table.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// The id: `D1`, `Q2`, `P1`.
    pub id: &'static str,
    /// Another name a policy file may use for it in `claims:`.
    pub alias: Option<&'static str>,
    /// How binding it is.
    pub level: Level,
    /// The RFC and section it comes from.
    pub source: &'static str,
    /// A short quote from that section.
    pub quote: &'static str,
    /// The rule in one line.
    pub statement: &'static str,
    /// Its checker, or why it has none.
    pub judged: Judged,
}

impl Rule {
    /// Runs the rule's checker on `subject`; nothing for a rule that cannot be judged.
    pub fn check(&self, subject: &Subject<'_>) -> Vec<Violation> {
        match self.judged {
            Judged::By(checker) => checker(subject),
            Judged::Not(_) | Judged::Pending(_) => Vec::new(),
        }
    }

    /// True when a checker judges it.
    pub fn judged(&self) -> bool {
        matches!(self.judged, Judged::By(_))
    }
}

/// The rule with this id or alias.
pub fn find(id: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|rule| rule.id == id || rule.alias == Some(id))
}

/// `docs/rules.md`: the table, generated.
pub fn markdown() -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "# Rules\n\n<!-- Generated from crates/mxsim-model/src/rules/catalog.rs: `mxsim rules > docs/rules.md`. A test fails when this file is stale. -->\n\n",
    );
    out.push_str("Every rule of the rule catalog of the standards notes (D: DNS and the candidate list, S: session, R: replies and responsibility, Q: queue, X: extensions, P: the project's properties), with how a run is judged by it.\n");
    out.push_str("A POLICY rule is held only by the policies that claim it (`claims:`); a scenario's own `expect:` is level EXPECT.\n\n");
    let count =
        |judged: fn(&Judged) -> bool| RULES.iter().filter(|rule| judged(&rule.judged)).count();
    let _ = writeln!(
        out,
        "{} rules: {} judged by a checker, {} judgeable from a trace with no checker yet, {} not judgeable from a scenario and its trace.\n",
        RULES.len(),
        count(|judged| matches!(judged, Judged::By(_))),
        count(|judged| matches!(judged, Judged::Pending(_))),
        count(|judged| matches!(judged, Judged::Not(_))),
    );
    out.push_str("| level | rules | judged |\n|---|---|---|\n");
    for level in Level::ALL {
        let of_level = RULES.iter().filter(|rule| rule.level == level);
        let total = of_level.clone().count();
        if total > 0 {
            let judged = of_level.filter(|rule| rule.judged()).count();
            let _ = writeln!(out, "| {level} | {total} | {judged} |");
        }
    }
    out.push_str("\n## Judged\n\n| id | level | rule | source |\n|---|---|---|---|\n");
    for rule in RULES.iter().filter(|rule| rule.judged()) {
        let _ = writeln!(
            out,
            "| {}{} | {} | {} | {}: “{}” |",
            rule.id,
            rule.alias
                .map_or(String::new(), |alias| format!(" ({alias})")),
            rule.level,
            rule.statement,
            rule.source,
            rule.quote
        );
    }
    for (title, pending) in [
        ("No checker yet", true),
        ("Not judgeable from a trace", false),
    ] {
        let rows = RULES.iter().filter(|rule| match rule.judged {
            Judged::Pending(_) => pending,
            Judged::Not(_) => !pending,
            Judged::By(_) => false,
        });
        if rows.count() == 0 {
            continue;
        }
        let _ = write!(
            out,
            "\n## {title}\n\n| id | level | rule | source | why |\n|---|---|---|---|---|\n"
        );
        for rule in RULES {
            let reason = match (rule.judged, pending) {
                (Judged::Pending(reason), true) | (Judged::Not(reason), false) => reason,
                _ => continue,
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {reason} |",
                rule.id, rule.level, rule.statement, rule.source
            );
        }
    }
    let detected = QUESTIONS
        .iter()
        .filter(|question| question.detector.is_some())
        .count();
    let _ = write!(
        out,
        "\n## Open questions\n\nThe open questions of the standards notes (§3): where the standards leave the client a choice. A detector notices, in one run, that a question was met, and names the alternative the client took: an `INFO` verdict, never a failure (`INFO O10 OPEN: … ; taken: the next host (…)`). {detected} of {} questions have a detector.\n\n| id | question | detected |\n|---|---|---|\n",
        QUESTIONS.len()
    );
    for question in QUESTIONS {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            question.id,
            question.question,
            if question.detector.is_some() {
                "yes"
            } else {
                "no"
            }
        );
    }
    out
}

#[cfg(test)]
mod outcome_tests;
#[cfg(test)]
mod tests;

//! The agreement view: a real MTA's run (live mode) next to its preset's prediction on the same
//! world. Pure: it takes the live trace and outcomes as data, runs the preset in the simulator,
//! and says where the two agree (outcome, hosts, connection count) and the first step where
//! they part.
//!
//! Both traces are reduced to **steps**: what crossed the wire, host by host (a connection
//! attempt and how it ended, each command and reply code, what a server accepted, who closed,
//! each recipient's outcome). DNS queries, the simulator's order draws, retry records and times
//! are left out: resolvers differ in what they ask and when, and the question is what the
//! client did with the answers. Among the preset's runs (every equal-preference order it can
//! draw) the one that agrees with reality the longest is the prediction shown, so an MTA that
//! picks randomly among equal hosts is compared with the order it actually drew.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use mxsim_model::name::Name;
use mxsim_model::outcome::{Disposition, RecipientOutcome};
use mxsim_model::scenario::Scenario;
use mxsim_model::trace::{Closer, EventKind, Sent, Trace};
use mxsim_sim::{Observer, Prepared, Run, Runner};

use crate::judge::choices_label;
use crate::spec::PolicySpec;

/// What one side did, in three words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Each recipient's outcome, `delivered via HOST`, `bounced` or `deferred`, joined.
    pub outcome: String,
    /// The host of every connection attempt, in order.
    pub hosts: Vec<String>,
    /// Connection attempts.
    pub connections: usize,
}

/// The first step where prediction and reality differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parted {
    /// Its index among the steps (0-based).
    pub step: usize,
    /// The preset's step there, if it had one.
    pub predicted: Option<String>,
    /// The real MTA's step there, if it had one.
    pub observed: Option<String>,
}

/// A real run held against its preset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// The preset.
    pub preset: String,
    /// Which of the preset's runs is shown (`seed 0`, `order [1,0]`).
    pub order: String,
    /// The prediction.
    pub predicted: Summary,
    /// The observation.
    pub observed: Summary,
    /// Same outcome for every recipient (and the same host for a delivery).
    pub outcome: bool,
    /// The same hosts in the same order.
    pub hosts: bool,
    /// The same number of connection attempts.
    pub connections: bool,
    /// The first step where they part; `None` when every step agrees.
    pub parted: Option<Parted>,
}

impl Agreement {
    /// Outcome, hosts and connection count all agree.
    pub fn agrees(&self) -> bool {
        self.outcome && self.hosts && self.connections
    }
}

/// Holds a real run (`trace`, `outcomes`) against `preset` on `scenario`.
pub fn agree(
    runner: &Runner,
    scenario: &Arc<Scenario>,
    preset: &PolicySpec,
    trace: &Trace,
    outcomes: &[RecipientOutcome],
) -> Agreement {
    let observed_steps = steps(trace);
    let prepared = Arc::new(Prepared::new(scenario.clone()));
    let policy = preset.build();
    let mut best = Best {
        observed: &observed_steps,
        run: None,
        common: 0,
    };
    runner.explore(&prepared, policy.as_ref(), &mut best);
    let run = best.run.expect("an exploration makes at least one run");
    let predicted_steps = steps(&run.trace);
    let common = best.common;
    let parted = (common < predicted_steps.len().max(observed_steps.len())).then(|| Parted {
        step: common,
        predicted: predicted_steps.get(common).cloned(),
        observed: observed_steps.get(common).cloned(),
    });
    let predicted = summary(&run.trace, &run.outcomes);
    let observed = summary(trace, outcomes);
    Agreement {
        preset: preset.name().to_owned(),
        order: choices_label(&run),
        outcome: predicted.outcome == observed.outcome,
        hosts: predicted.hosts == observed.hosts,
        connections: predicted.connections == observed.connections,
        predicted,
        observed,
        parted,
    }
}

/// How long `preset` predicts a live run of `scenario` lasts, in scenario time: the latest time,
/// over every order the preset draws, at which the last recipient's outcome is known. Live mode
/// skips a file whose MTA cannot shorten its own timers when this is too long to wait in real
/// time.
pub fn predicted_length(
    runner: &Runner,
    scenario: &Arc<Scenario>,
    preset: &PolicySpec,
) -> mxsim_model::time::Duration {
    struct Latest(mxsim_model::time::Instant);
    impl Observer for Latest {
        fn observe(&mut self, run: Run) {
            for outcome in &run.outcomes {
                self.0 = self.0.max(outcome.at);
            }
        }
        fn restart(&mut self) {
            self.0 = mxsim_model::time::Instant::START;
        }
    }
    let prepared = Arc::new(Prepared::new(scenario.clone()));
    let policy = preset.build();
    let mut latest = Latest(mxsim_model::time::Instant::START);
    runner.explore(&prepared, policy.as_ref(), &mut latest);
    latest.0.since_start()
}

/// Keeps the run whose steps share the longest prefix with the observation (the first such).
struct Best<'a> {
    observed: &'a [String],
    run: Option<Run>,
    common: usize,
}

impl Observer for Best<'_> {
    fn observe(&mut self, run: Run) {
        let candidate = steps(&run.trace);
        let common = candidate
            .iter()
            .zip(self.observed)
            .take_while(|(a, b)| a == b)
            .count();
        if self.run.is_none() || common > self.common {
            self.common = common;
            self.run = Some(run);
        }
    }

    fn restart(&mut self) {
        self.run = None;
        self.common = 0;
    }
}

/// A run's outcome, hosts and connection count.
pub fn summary(trace: &Trace, outcomes: &[RecipientOutcome]) -> Summary {
    let outcome = outcomes
        .iter()
        .map(|outcome| {
            let state = match &outcome.disposition {
                Disposition::Delivered { host, .. } => format!("delivered via {host}"),
                other => other.kind().to_string(),
            };
            format!("m{} {}: {state}", outcome.message, outcome.recipient)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let hosts: Vec<String> = trace
        .connection_attempts()
        .map(|(_, _, host)| host.as_str().to_owned())
        .collect();
    Summary {
        outcome,
        connections: hosts.len(),
        hosts,
    }
}

/// The steps of a trace: what crossed the wire, host by host.
pub fn steps(trace: &Trace) -> Vec<String> {
    let mut hosts: BTreeMap<IpAddr, Name> = BTreeMap::new();
    let mut steps = Vec::new();
    for event in &trace.events {
        let host = |address: &IpAddr, hosts: &BTreeMap<IpAddr, Name>| {
            hosts
                .get(address)
                .map(|name| name.as_str().to_owned())
                .unwrap_or_else(|| address.to_string())
        };
        let step = match &event.kind {
            EventKind::Connecting { address, host } => {
                hosts.insert(*address, host.clone());
                format!("{host}: connect")
            }
            EventKind::Connected { address } => format!("{}: connected", host(address, &hosts)),
            EventKind::Refused { address } => format!("{}: refused", host(address, &hosts)),
            EventKind::Reset { address } => format!("{}: reset", host(address, &hosts)),
            EventKind::ConnectGaveUp { address, .. } => {
                format!("{}: connect timed out", host(address, &hosts))
            }
            EventKind::Sent { address, command } => {
                let mut line = format!("{}: > ", host(address, &hosts));
                let _ = match command {
                    Sent::Ehlo(_) => write!(line, "EHLO"),
                    Sent::Helo(_) => write!(line, "HELO"),
                    Sent::Starttls => write!(line, "STARTTLS"),
                    Sent::Mail(from, _) => write!(line, "MAIL FROM:<{from}>"),
                    Sent::Rcpt(to) => write!(line, "RCPT TO:<{to}>"),
                    Sent::Data => write!(line, "DATA"),
                    Sent::EndOfData(message) => write!(line, "(message {message}) ."),
                    Sent::Quit => write!(line, "QUIT"),
                    Sent::Rset => write!(line, "RSET"),
                };
                line
            }
            EventKind::Replied { address, reply, .. } => {
                format!("{}: < {}", host(address, &hosts), reply.code.get())
            }
            EventKind::TlsEstablished { address } => format!("{}: TLS up", host(address, &hosts)),
            EventKind::TlsFailed { address } => format!("{}: TLS failed", host(address, &hosts)),
            EventKind::ReplyGaveUp {
                address, command, ..
            } => format!("{}: no reply to {}", host(address, &hosts), command.key()),
            EventKind::HandshakeGaveUp { address, .. } => {
                format!("{}: TLS handshake timed out", host(address, &hosts))
            }
            EventKind::Closed { address, by } => {
                let by = match by {
                    Closer::Client => "client",
                    Closer::Server | Closer::ServerIdle => "server",
                };
                format!("{}: closed by {by}", host(address, &hosts))
            }
            EventKind::Accepted {
                host: name,
                message,
                recipients,
                ..
            } => format!(
                "{name}: took message {message} for {}",
                recipients
                    .iter()
                    .map(|recipient| recipient.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            // Outcomes are compared as such (`Summary::outcome`): when an MTA writes its verdict
            // relative to its last commands is not a step of the conversation.
            _ => continue,
        };
        steps.push(step);
    }
    steps
}

/// The agreement table: one row per (scenario, MTA), as Markdown for the findings or a
/// mailing-list post. Cells are escaped for Markdown.
pub fn markdown(rows: &[(String, String, Agreement)]) -> String {
    let escape = mxsim_model::escape::markdown;
    let mut out = String::from(
        "| scenario | MTA | preset | agrees | outcome (preset / real) | connections | first step where they part |\n|---|---|---|---|---|---|---|\n",
    );
    for (file, mta, agreement) in rows {
        let mark = |same: bool| if same { "" } else { " **≠**" };
        let outcome = if agreement.outcome {
            escape(&agreement.observed.outcome)
        } else {
            format!(
                "{} / {}{}",
                escape(&agreement.predicted.outcome),
                escape(&agreement.observed.outcome),
                mark(false)
            )
        };
        let connections = if agreement.connections {
            agreement.observed.connections.to_string()
        } else {
            format!(
                "{} / {}{}",
                agreement.predicted.connections,
                agreement.observed.connections,
                mark(false)
            )
        };
        let parted = match &agreement.parted {
            None => "none".to_owned(),
            Some(parted) => format!(
                "step {}: preset {}, real {}",
                parted.step + 1,
                code(parted.predicted.as_deref().unwrap_or("(end)")),
                code(parted.observed.as_deref().unwrap_or("(end)"))
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {outcome} | {connections} | {parted} |",
            escape(file),
            escape(mta),
            escape(&agreement.preset),
            if agreement.agrees() {
                "yes".to_owned()
            } else {
                let mut parts = Vec::new();
                if !agreement.outcome {
                    parts.push("outcome");
                }
                if !agreement.hosts {
                    parts.push("hosts");
                }
                if !agreement.connections {
                    parts.push("connections");
                }
                format!("**no** ({})", parts.join(", "))
            },
        );
    }
    out
}

/// `text` as a Markdown code span inside a table cell: a backtick cannot end the span early,
/// a pipe cannot end the cell, and no control character or line break gets through.
fn code(text: &str) -> String {
    let text: String = mxsim_model::escape::terminal(text)
        .chars()
        .map(|c| if c == '`' { '\'' } else { c })
        .collect();
    format!("`{}`", text.replace('|', "\\|"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxsim_sim::Choices;

    fn scenario(text: &str) -> Arc<Scenario> {
        Arc::new(
            mxsim_model::scenario::load(text, &mxsim_policy::registry::is_known)
                .expect("the test scenario loads"),
        )
    }

    const TWO_PRIMARIES: &str = "title: t\nmessage:\n  to: [user@foo.example]\ndns:\n  foo.example: {mx: [10 smtp1.foo.example, 10 smtp2.foo.example, 20 backup.foo.example]}\nservers:\n  smtp1.foo.example: {rcpt: 451}\n  smtp2.foo.example: {rcpt: 451}\n  backup.foo.example: {}\n";

    /// A run of `policy` in the simulator stands in for a real one.
    fn simulated(scenario: &Arc<Scenario>, policy: &str, seed: u64) -> Run {
        let prepared = Arc::new(Prepared::new(scenario.clone()));
        let policy = PolicySpec::Named(policy.to_owned()).build();
        Runner::new().run(&prepared, policy.as_ref(), Choices::Seed(seed))
    }

    #[test]
    fn a_run_of_the_preset_itself_agrees_in_every_step() {
        let scenario = scenario(TWO_PRIMARIES);
        for seed in 0..4 {
            let real = simulated(&scenario, "postfix-3.10", seed);
            let agreement = agree(
                &Runner::new(),
                &scenario,
                &PolicySpec::Named("postfix-3.10".to_owned()),
                &real.trace,
                &real.outcomes,
            );
            assert!(agreement.agrees(), "{agreement:?}");
            assert_eq!(agreement.parted, None, "{agreement:?}");
        }
    }

    #[test]
    fn another_policy_parts_where_it_first_differs() {
        let scenario = scenario(TWO_PRIMARIES);
        // Exim goes on to the backup after both 451s; Postfix stops at its session limit.
        let real = simulated(&scenario, "exim-4", 0);
        let agreement = agree(
            &Runner::new(),
            &scenario,
            &PolicySpec::Named("postfix-3.10".to_owned()),
            &real.trace,
            &real.outcomes,
        );
        assert!(!agreement.outcome);
        assert!(!agreement.connections);
        assert_eq!(agreement.observed.connections, 3);
        assert_eq!(agreement.predicted.connections, 2);
        let parted = agreement.parted.clone().expect("they part");
        assert_eq!(
            parted.observed.as_deref(),
            Some("backup.foo.example: connect")
        );
        let table = markdown(&[("f.yaml".to_owned(), "exim".to_owned(), agreement)]);
        assert!(
            table.contains("**no** (outcome, hosts, connections)"),
            "{table}"
        );
        assert!(
            table.contains("real `backup.foo.example: connect`"),
            "{table}"
        );
        assert_eq!(code("a|b`c"), "`a\\|b'c`");
    }

    #[test]
    fn steps_leave_out_dns_and_times() {
        let scenario = scenario(TWO_PRIMARIES);
        let run = simulated(&scenario, "rfc5321", 0);
        let steps = steps(&run.trace);
        assert!(steps.iter().all(|step| !step.contains("MX")));
        assert!(
            steps
                .first()
                .is_some_and(|step| step.ends_with(": connect"))
        );
        assert!(steps.iter().all(|step| !step.starts_with("outcome")));
    }

    /// The predicted length is the latest settling time over every order: a silent greeting at
    /// the only primary costs OpenSMTPD its 5-minute timeout; beside a second preference-10
    /// host it opens a parallel connection and settles at 2 s, though the silent connection
    /// runs on to its timeout; Postfix, drawing the silent host first in one of its orders,
    /// settles at 5 minutes.
    #[test]
    fn the_predicted_length_is_the_latest_settling_time() {
        let length = |text: &str, preset: &str| {
            predicted_length(
                &Runner::new(),
                &scenario(text),
                &PolicySpec::Named(preset.to_owned()),
            )
        };
        let alone = "title: t\nmessage:\n  to: [user@foo.example]\ndns:\n  foo.example: {mx: [10 smtp1.foo.example, 20 backup.foo.example]}\nservers:\n  smtp1.foo.example: {greeting: none}\n  backup.foo.example: {}\n";
        let beside = "title: t\nmessage:\n  to: [user@foo.example]\ndns:\n  foo.example: {mx: [10 smtp1.foo.example, 10 smtp2.foo.example, 20 backup.foo.example]}\nservers:\n  smtp1.foo.example: {greeting: none}\n  smtp2.foo.example: {}\n  backup.foo.example: {}\n";
        use mxsim_model::time::Duration;
        assert_eq!(length(alone, "opensmtpd-7"), Duration::minutes(5));
        assert_eq!(length(beside, "opensmtpd-7"), Duration::seconds(2));
        assert_eq!(length(beside, "postfix-3.10"), Duration::minutes(5));
        assert_eq!(length(TWO_PRIMARIES, "rfc5321"), Duration::ZERO);
    }
}

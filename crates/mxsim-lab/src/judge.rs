//! Judging an exploration run by run: each run is checked against the file's `expect:` and the
//! policy's claims as it ends, summarised, and dropped. Only what `check`, `compare` and `run`
//! report is kept (the first failing run with its problems, the first fault, the distribution of
//! results, spans of connections and time), so memory stays flat however many runs an
//! exploration makes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mxsim_model::expect;
use mxsim_model::invariants;
use mxsim_model::outcome::{Disposition, DispositionKind};
use mxsim_model::queue::QueueSettings;
use mxsim_model::rules::{self, Subject, Violation};
use mxsim_model::scenario::{Expectation, Message};
use mxsim_policy::settings::Claim;
use mxsim_sim::{
    AttemptRecord, Choices, Cut, Exploration, Fault, Observer, Prepared, Run, Runner, SimWorld,
};
use serde::Serialize;

/// At most this many problems are kept from one run; the rest are counted in a last line.
pub const PROBLEMS_MAX: usize = 20;

/// A run's result as `compare` groups them: outcome, hosts delivered through, and for `mixed`
/// the count of each outcome.
pub type ResultKey = (String, Vec<String>, Option<String>);

/// The smallest and largest value over the runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Smallest.
    pub min: u64,
    /// Largest.
    pub max: u64,
}

impl Span {
    fn widen(span: Option<Span>, value: u64) -> Option<Span> {
        Some(span.map_or(
            Span {
                min: value,
                max: value,
            },
            |span| Span {
                min: span.min.min(value),
                max: span.max.max(value),
            },
        ))
    }
}

/// What one policy did on one scenario over an exploration.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Runs made.
    pub runs: usize,
    /// True when every order was enumerated.
    pub exhaustive: bool,
    /// Set when the exploration's work budget stopped it early.
    pub cut: Option<Cut>,
    /// Runs that broke the expectation or a claim.
    pub failing: usize,
    /// The first failing run: its label and what broke (at most [`PROBLEMS_MAX`] lines).
    pub first_failure: Option<(String, Vec<String>)>,
    /// Runs that ended with a fault of the policy.
    pub faulted: usize,
    /// The first fault, with the label of its run.
    pub first_fault: Option<(String, Fault)>,
    /// How many runs had each result.
    pub results: BTreeMap<ResultKey, usize>,
    /// Connection attempts per run.
    pub connections: Option<Span>,
    /// Per run, the latest virtual time at which a recipient was settled, in milliseconds.
    pub time_ms: Option<Span>,
    /// Delivery attempts per run (one per message in a single pass).
    pub attempts: Option<Span>,
    /// DSNs sent per run (failures and delay warnings).
    pub dsns: Option<Span>,
    /// The attempts of the first run that ended well, for reports.
    pub first_attempts: Vec<AttemptRecord>,
}

impl Verdict {
    /// True when a run broke an expectation or a claim.
    pub fn broken(&self) -> bool {
        self.failing > 0
    }
}

/// Judges runs as they end; see the module documentation.
pub struct Judge<'a> {
    expectation: Option<&'a Expectation>,
    claims: &'a [Claim],
    /// In a queue scenario: the policy's queue settings and the messages, for the queue rules.
    queue: Option<(QueueSettings, &'a [Message])>,
    /// What was seen so far.
    pub verdict: Verdict,
}

impl<'a> Judge<'a> {
    /// A judge for one cell. In a queue scenario, pass the policy's queue settings: every run is
    /// then also held to the queue rules (RFC 5321 §4.5.4), whatever `expect:` says.
    pub fn new(
        expectation: Option<&'a Expectation>,
        claims: &'a [Claim],
        queue: Option<(QueueSettings, &'a [Message])>,
    ) -> Judge<'a> {
        Judge {
            expectation,
            claims,
            queue,
            verdict: Verdict::default(),
        }
    }

    /// True when runs are judged: there is an expectation, a claim, or queue rules.
    pub fn judges(&self) -> bool {
        self.expectation.is_some() || !self.claims.is_empty() || self.queue.is_some()
    }

    /// Every violation in `run`: the expectation's, the claimed rules', and in a queue scenario
    /// the queue rules'.
    pub fn violations(&self, run: &Run) -> Vec<Violation> {
        let mut broken = self
            .expectation
            .map(|expectation| expect::violations(expectation, &run.trace, &run.outcomes))
            .unwrap_or_default();
        let (messages, settings) = match &self.queue {
            Some((settings, messages)) => (*messages, Some(settings)),
            None => (&[][..], None),
        };
        let subject = Subject {
            trace: &run.trace,
            outcomes: &run.outcomes,
            messages,
            queue: settings,
        };
        for rule in rules::RULES {
            let claimed = self.claims.iter().any(|claim| claim.key() == rule.id);
            let queue_rule = settings.is_some() && invariants::QUEUE_RULES.contains(&rule.id);
            if claimed || queue_rule {
                broken.extend(rule.check(&subject));
            }
        }
        broken
    }

    /// What broke in `run`, one line each, capped at [`PROBLEMS_MAX`] lines.
    pub fn problems(&self, run: &Run) -> Vec<String> {
        let mut broken: Vec<String> = self
            .violations(run)
            .iter()
            .map(ToString::to_string)
            .collect();
        if broken.len() > PROBLEMS_MAX {
            let more = broken.len() - PROBLEMS_MAX;
            broken.truncate(PROBLEMS_MAX);
            broken.push(format!("and {more} more"));
        }
        broken
    }
}

impl Observer for Judge<'_> {
    fn observe(&mut self, run: Run) {
        let verdict = &mut self.verdict;
        verdict.runs += 1;
        if let Some(fault) = &run.fault {
            verdict.faulted += 1;
            if verdict.first_fault.is_none() {
                verdict.first_fault = Some((choices_label(&run), fault.clone()));
            }
            return;
        }
        let problems = self.problems(&run);
        let verdict = &mut self.verdict;
        if !problems.is_empty() {
            verdict.failing += 1;
            if verdict.first_failure.is_none() {
                verdict.first_failure = Some((choices_label(&run), problems));
            }
        }
        *verdict.results.entry(result_of(&run)).or_default() += 1;
        verdict.connections = Span::widen(
            verdict.connections,
            run.trace.connection_attempts().count() as u64,
        );
        let settled = run
            .outcomes
            .iter()
            .map(|outcome| outcome.at.0)
            .max()
            .unwrap_or(0);
        verdict.time_ms = Span::widen(verdict.time_ms, settled);
        verdict.attempts = Span::widen(verdict.attempts, run.attempts.len() as u64);
        let dsns = run
            .trace
            .events
            .iter()
            .filter(|event| matches!(event.kind, mxsim_model::trace::EventKind::Dsn { .. }))
            .count();
        verdict.dsns = Span::widen(verdict.dsns, dsns as u64);
        if verdict.first_attempts.is_empty() {
            verdict.first_attempts = run.attempts;
        }
    }

    fn restart(&mut self) {
        self.verdict = Verdict::default();
    }
}

/// Explores every order of `policy` on `prepared` and judges each run as it ends.
pub fn explore(
    runner: &Runner,
    prepared: &std::sync::Arc<Prepared>,
    policy: &dyn mxsim_model::world::Policy<SimWorld>,
    expectation: Option<&Expectation>,
    claims: &[Claim],
) -> Verdict {
    let scenario = &prepared.scenario;
    let queue = scenario
        .queue
        .then(|| (policy.queue(), scenario.messages.as_slice()));
    let mut judge = Judge::new(expectation, claims, queue);
    let Exploration {
        exhaustive, cut, ..
    } = runner.explore(prepared, policy, &mut judge);
    judge.verdict.exhaustive = exhaustive;
    judge.verdict.cut = cut;
    judge.verdict
}

/// A one-line label for how a run's orders were chosen; `run --seed` or `run --order`
/// reproduces the run from it.
pub fn choices_label(run: &Run) -> String {
    match &run.choices {
        Choices::Seed(seed) => format!("seed {seed}"),
        Choices::Forced(_) if run.taken.is_empty() => "the only order".to_owned(),
        Choices::Forced(_) => format!("order {}", order_argument(&run.taken)),
    }
}

/// The choices of a run as `run --order` takes them: `[0,1]`.
pub fn order_argument(taken: &[u64]) -> String {
    let mut text = String::from("[");
    for (index, value) in taken.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        let _ = write!(text, "{value}");
    }
    text.push(']');
    text
}

/// How many runs made, and how: `2 orders`, `256 sampled seeds`, `11 runs, cut by …`.
pub fn runs_text(verdict: &Verdict) -> String {
    let noun = match (verdict.exhaustive, verdict.runs) {
        (true, 1) => "order",
        (true, _) => "orders",
        (false, 1) => "sampled seed",
        (false, _) => "sampled seeds",
    };
    match &verdict.cut {
        Some(cut) => {
            let noun = if verdict.runs == 1 { "run" } else { "runs" };
            format!("{} {noun}, {cut}", verdict.runs)
        }
        None => format!("{} {noun}", verdict.runs),
    }
}

/// The result of a run as `compare` groups them.
fn result_of(run: &Run) -> ResultKey {
    let mut kinds: BTreeMap<DispositionKind, usize> = BTreeMap::new();
    // Hosts in first-delivery order, deduplicated through an index: thousands of recipients
    // must not cost a scan each.
    let mut via: Vec<String> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for outcome in &run.outcomes {
        *kinds.entry(outcome.disposition.kind()).or_default() += 1;
        if let Disposition::Delivered { host, .. } = &outcome.disposition
            && seen.insert(host)
        {
            via.push(host.to_string());
        }
    }
    if kinds.len() == 1 {
        let kind = kinds
            .keys()
            .next()
            .copied()
            .unwrap_or(DispositionKind::Deferred);
        return (kind.key().to_owned(), via, None);
    }
    let detail = kinds
        .iter()
        .map(|(kind, count)| format!("{count} {kind}"))
        .collect::<Vec<_>>()
        .join(", ");
    ("mixed".to_owned(), via, Some(detail))
}

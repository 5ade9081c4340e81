//! Judging an exploration run by run: each run is checked against the file's `expect:`, the
//! policy's claims and every rule of the table that has a checker, each broken rule graded
//! (FAIL, NON-STRICT, DEPARTS, INFO) as it ends, summarised, and dropped. Only what `check`, `compare` and `run`
//! report is kept (the first failing run with its problems, the first fault, the distribution of
//! results, spans of connections and time), so memory stays flat however many runs an
//! exploration makes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mxsim_model::expect;
use mxsim_model::invariants;
use mxsim_model::outcome::{Disposition, DispositionKind};
use mxsim_model::queue::QueueSettings;
use mxsim_model::rules::{self, Departure, Grade, Level, Subject, Violation};
use mxsim_model::scenario::{ClientIdentity, Expectation, Message, Scenario};
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
    /// Every rule broken in some run, by grade (worst last) and rule id: how many runs broke
    /// it, and the first of them.
    pub graded: BTreeMap<(Grade, &'static str), Tally>,
}

/// One rule broken over the runs of an exploration, at one grade.
#[derive(Clone, Debug)]
pub struct Tally {
    /// Runs that broke it.
    pub runs: usize,
    /// The rule's level.
    pub level: Level,
    /// The first such run's label and its verdict line.
    pub first: (String, String),
}

impl Verdict {
    /// True when a run broke an expectation, a MUST or a claim.
    pub fn broken(&self) -> bool {
        self.failing > 0
    }

    /// The worst verdict over the runs: PASS when no rule was broken.
    pub fn grade(&self) -> Grade {
        self.graded
            .keys()
            .map(|(grade, _)| *grade)
            .max()
            .unwrap_or(Grade::Pass)
    }
}

/// A verdict line: `FAIL D1 MUST: …`, `DEPARTS S1 SHOULD: … (departs: why)`, or for a claim
/// `FAIL P1 POLICY (claimed): …`.
pub fn verdict_line(grade: Grade, violation: &Violation, departures: &[Departure]) -> String {
    let mut line = format!("{grade} {} {}", violation.rule, violation.level);
    if violation.level == Level::Policy {
        line.push_str(" (claimed)");
    }
    let _ = write!(line, ": {}", violation.message);
    if grade == Grade::Departs
        && let Some(departure) = departures
            .iter()
            .find(|departure| departure.rule == violation.rule)
    {
        let _ = write!(line, " (departs: {})", departure.reason);
    }
    line
}

/// Judges runs as they end; see the module documentation.
pub struct Judge<'a> {
    expectation: Option<&'a Expectation>,
    claims: &'a [Claim],
    departures: &'a [Departure],
    /// In a queue scenario: the policy's queue settings, for the queue rules.
    queue: Option<QueueSettings>,
    /// The scenario's messages: what the rules read of what was asked of the client.
    messages: &'a [Message],
    /// The scenario's client, for the self-MX rules.
    client: Option<&'a ClientIdentity>,
    /// What was seen so far.
    pub verdict: Verdict,
}

impl<'a> Judge<'a> {
    /// A judge for one cell. In a queue scenario, pass the policy's queue settings: every run is
    /// then also held to the queue rules (RFC 5321 §4.5.4), whatever `expect:` says; pass the
    /// scenario's client for the self-MX rules (D14–D16).
    pub fn new(
        expectation: Option<&'a Expectation>,
        claims: &'a [Claim],
        departures: &'a [Departure],
        queue: Option<QueueSettings>,
        messages: &'a [Message],
        client: Option<&'a ClientIdentity>,
    ) -> Judge<'a> {
        Judge {
            expectation,
            claims,
            departures,
            queue,
            messages,
            client,
            verdict: Verdict::default(),
        }
    }

    /// True when there is an expectation to hold runs to (the rules always are).
    pub fn expects(&self) -> bool {
        self.expectation.is_some()
    }

    /// Every violation in `run`: the expectation's, and every rule's that has a checker and
    /// applies: the claimed POLICY rules, the queue rules in a queue scenario, and every other
    /// judged rule always, at its level; then every open question met (level OPEN, graded INFO).
    pub fn violations(&self, run: &Run) -> Vec<Violation> {
        let mut broken = self
            .expectation
            .map(|expectation| expect::violations(expectation, &run.trace, &run.outcomes))
            .unwrap_or_default();
        let settings = self.queue.as_ref();
        let subject = Subject {
            trace: &run.trace,
            outcomes: &run.outcomes,
            messages: self.messages,
            queue: settings,
            client: self.client,
            memo: &Default::default(),
        };
        broken.extend(rules::check_rules(&subject, |rule| {
            if rule.level == Level::Policy {
                self.claims.iter().any(|claim| claim.key() == rule.id)
            } else if invariants::QUEUE_RULES.contains(&rule.id) {
                settings.is_some()
            } else {
                true
            }
        }));
        for question in rules::QUESTIONS {
            broken.extend(question.detect(&subject));
        }
        broken
    }

    /// Every violation in `run` with its grade (`None` for the scenario's own `expect:`).
    pub fn graded(&self, run: &Run) -> Vec<(Option<Grade>, Violation)> {
        self.violations(run)
            .into_iter()
            .map(|violation| (Grade::of(&violation, self.departures), violation))
            .collect()
    }

    /// A verdict line for a graded violation, the bare sentence for an `expect:` one.
    pub fn line(&self, grade: Option<Grade>, violation: &Violation) -> String {
        match grade {
            Some(grade) => verdict_line(grade, violation, self.departures),
            None => violation.to_string(),
        }
    }

    /// What broke in `run` that fails it (the expectation, a MUST, a claim), one line each,
    /// capped at [`PROBLEMS_MAX`] lines.
    pub fn problems(&self, run: &Run) -> Vec<String> {
        let graded = self.graded(run);
        self.failures(&graded)
    }

    /// The failing lines of graded violations, capped at [`PROBLEMS_MAX`] lines.
    pub fn failures(&self, graded: &[(Option<Grade>, Violation)]) -> Vec<String> {
        let mut broken: Vec<String> = graded
            .iter()
            .filter(|(grade, _)| matches!(grade, None | Some(Grade::Fail)))
            .map(|(grade, violation)| self.line(*grade, violation))
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
        let graded = self.graded(&run);
        let problems = self.failures(&graded);
        let label = choices_label(&run);
        let mut seen = std::collections::BTreeSet::new();
        for (grade, violation) in &graded {
            let Some(grade) = *grade else { continue };
            if !seen.insert((grade, violation.rule)) {
                continue;
            }
            let line = self.line(Some(grade), violation);
            self.verdict
                .graded
                .entry((grade, violation.rule))
                .and_modify(|tally| tally.runs += 1)
                .or_insert_with(|| Tally {
                    runs: 1,
                    level: violation.level,
                    first: (label.clone(), line),
                });
        }
        let verdict = &mut self.verdict;
        if !problems.is_empty() {
            verdict.failing += 1;
            if verdict.first_failure.is_none() {
                verdict.first_failure = Some((label, problems));
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
    departures: &[Departure],
) -> Verdict {
    let mut judge = judge_for(&prepared.scenario, policy, expectation, claims, departures);
    let Exploration {
        exhaustive, cut, ..
    } = runner.explore(prepared, policy, &mut judge);
    judge.verdict.exhaustive = exhaustive;
    judge.verdict.cut = cut;
    judge.verdict
}

/// The judge of `policy` on `scenario`: with the policy's queue settings in a queue scenario,
/// and the scenario's messages and client.
pub fn judge_for<'a>(
    scenario: &'a Scenario,
    policy: &dyn mxsim_model::world::Policy<SimWorld>,
    expectation: Option<&'a Expectation>,
    claims: &'a [Claim],
    departures: &'a [Departure],
) -> Judge<'a> {
    let queue = scenario.queue.then(|| policy.queue());
    Judge::new(
        expectation,
        claims,
        departures,
        queue,
        &scenario.messages,
        Some(&scenario.client),
    )
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

//! Search over generated worlds: `explore` runs one policy on many of them and shrinks every
//! world on which it FAILs a rule to a minimal one; `diff` looks for a world on which two
//! policies reach different outcomes and shrinks it likewise.
//!
//! A case is one generated world run once. Case `i` of seed `s` is the same world and the same
//! order whatever else runs: its generator and its run draw from the case's own seed (a
//! SplitMix64 step of `s` and `i`), so `--shard I/N` splits the case space between machines
//! and their findings merge. Shrinking uses proptest's value trees: simplify while the failure
//! holds, complicate when it stops holding, within a counted budget of steps.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use mxsim_model::name::Mailbox;
use mxsim_model::outcome::{Disposition, DispositionKind};
use mxsim_model::rules::{Departure, Grade, Level, Violation};
use mxsim_model::scenario::{Scenario, write};
use mxsim_model::world::Policy;
use mxsim_policy::settings::Claim;
use mxsim_sim::{Choices, Prepared, Run, Runner, SimWorld};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::generate::{Spec, any_spec};
use crate::judge::Judge;
use crate::spec::PolicySpec;

/// At most this many shrinking steps per finding: each is one run (two for `diff`).
pub const SHRINK_STEPS_MAX: u32 = 2_000;

/// Which cases to run.
#[derive(Clone, Copy, Debug)]
pub struct Cases {
    /// Cases `0..count` of the search…
    pub count: u64,
    /// …drawn from this seed…
    pub seed: u64,
    /// …of which this shard runs those with `case % shards == shard`.
    pub shard: u64,
    /// Shards in all (1: no sharding).
    pub shards: u64,
}

impl Cases {
    /// The case numbers this shard runs, in order.
    pub fn numbers(&self) -> impl Iterator<Item = u64> + use<> {
        let (shard, shards) = (self.shard, self.shards.max(1));
        (0..self.count).filter(move |case| case % shards == shard)
    }

    /// The seed of case `case`: its world and its order both come from it.
    pub fn case_seed(&self, case: u64) -> u64 {
        splitmix64(self.seed ^ splitmix64(case))
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a portable, well-mixed step.
pub fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The value tree of case `seed`'s world.
fn tree(seed: u64) -> impl ValueTree<Value = Spec> {
    let mut bytes = [0u8; 32];
    for (index, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&splitmix64(seed.wrapping_add(index as u64)).to_le_bytes());
    }
    // proptest's default configuration reads the environment: build it once.
    static CONFIG: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| Config {
        failure_persistence: None,
        ..Config::default()
    });
    let mut runner = TestRunner::new_with_rng(
        config.clone(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    any_spec()
        .new_tree(&mut runner)
        .expect("the generator never rejects")
}

/// One world, prepared and run once with the case's order.
struct Trial {
    prepared: Arc<Prepared>,
    run: Run,
}

/// A policy as the search runs it, built once per search with what its judge needs.
struct Searched<'p> {
    spec: &'p PolicySpec,
    policy: Box<dyn Policy<SimWorld>>,
    claims: Vec<Claim>,
    departures: Vec<Departure>,
}

impl<'p> Searched<'p> {
    fn new(spec: &'p PolicySpec) -> Searched<'p> {
        Searched {
            spec,
            policy: spec.build(),
            claims: spec.claims(),
            departures: spec.departures(),
        }
    }
}

fn trial(runner: &Runner, spec: &Spec, policy: &Searched<'_>, seed: u64) -> Trial {
    let prepared = Arc::new(Prepared::new(Arc::new(spec.scenario("generated"))));
    let run = runner.run(&prepared, policy.policy.as_ref(), Choices::Seed(seed));
    Trial { prepared, run }
}

/// Every graded violation of `policy` in a trial.
fn graded(trial: &Trial, policy: &Searched<'_>) -> Vec<(Grade, Violation)> {
    let scenario = &trial.prepared.scenario;
    let judge = Judge::new(
        None,
        &policy.claims,
        &policy.departures,
        scenario.queue.then(|| policy.policy.queue()),
        &scenario.messages,
        Some(&scenario.client),
    );
    judge
        .graded(&trial.run)
        .into_iter()
        .filter_map(|(grade, violation)| grade.map(|grade| (grade, violation)))
        .collect()
}

/// A world on which the policy FAILs a rule, shrunk.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The case number.
    pub case: u64,
    /// The case's seed: its world before shrinking, and the order of its run.
    pub seed: u64,
    /// The rule broken.
    pub rule: &'static str,
    /// Its level.
    pub level: Level,
    /// The verdict line on the shrunk world.
    pub line: String,
    /// The shrunk world.
    pub scenario: Scenario,
    /// Shrinking steps taken.
    pub steps: u32,
    /// Hosts in the shrunk world.
    pub hosts: usize,
}

/// What `explore` saw.
#[derive(Clone, Debug, Default)]
pub struct Exploration {
    /// Cases run.
    pub cases: u64,
    /// Runs made, shrinking included.
    pub runs: u64,
    /// Cases with a fault of the policy (a panic, wrong outcomes): counted, not shrunk.
    pub faults: u64,
    /// Cases that broke each rule, by grade: FAILs are shrunk and written; the rest are counted.
    pub graded: BTreeMap<(Grade, &'static str), u64>,
    /// One shrunk world per rule FAILed, the first case that failed it.
    pub findings: Vec<Finding>,
}

/// Runs `policy` on the cases and shrinks the first world that FAILs each rule. `progress` is
/// called after each case with (cases done, cases in all).
pub fn explore(
    runner: &Runner,
    policy: &PolicySpec,
    cases: &Cases,
    progress: &mut dyn FnMut(u64, u64),
) -> Exploration {
    let policy = &Searched::new(policy);
    let mut seen = Exploration::default();
    let total = cases.numbers().count() as u64;
    for case in cases.numbers() {
        let seed = cases.case_seed(case);
        let mut tree = tree(seed);
        let spec = tree.current();
        let first = trial(runner, &spec, policy, seed);
        seen.cases += 1;
        seen.runs += 1;
        if first.run.fault.is_some() {
            seen.faults += 1;
            progress(seen.cases, total);
            continue;
        }
        let verdicts = graded(&first, policy);
        let mut rules_here: Vec<(Grade, &'static str)> = verdicts
            .iter()
            .map(|(grade, violation)| (*grade, violation.rule))
            .collect();
        rules_here.sort_unstable();
        rules_here.dedup();
        for key in &rules_here {
            *seen.graded.entry(*key).or_default() += 1;
        }
        for (grade, rule) in rules_here {
            if grade != Grade::Fail || seen.findings.iter().any(|found| found.rule == rule) {
                continue;
            }
            let fails = |spec: &Spec| {
                let again = trial(runner, spec, policy, seed);
                again.run.fault.is_none()
                    && graded(&again, policy)
                        .iter()
                        .any(|(grade, violation)| *grade == Grade::Fail && violation.rule == rule)
            };
            let (smallest, steps) = shrink(&mut tree, spec.clone(), &fails);
            seen.runs += u64::from(steps);
            let last = trial(runner, &smallest, policy, seed);
            let Some((_, violation)) = graded(&last, policy)
                .into_iter()
                .find(|(grade, violation)| *grade == Grade::Fail && violation.rule == rule)
            else {
                continue;
            };
            seen.findings.push(Finding {
                case,
                seed,
                rule,
                level: violation.level,
                line: crate::judge::verdict_line(Grade::Fail, &violation, &policy.departures),
                scenario: pinned(runner, &last, seed, &[(policy.spec, &last.run)]),
                steps,
                hosts: smallest.domains.iter().map(|d| d.hosts.len()).sum(),
            });
            // A fresh tree for the next rule of the same case.
            tree = self::tree(seed);
        }
        progress(seen.cases, total);
    }
    seen
}

/// Shrinks from `start` while `fails` holds: proptest's value tree first, then the spec's own
/// one-step simplifications ([`Spec::simpler`]) until none keeps the failure; within
/// [`SHRINK_STEPS_MAX`] steps in all. The smallest failing spec found and the steps taken.
fn shrink(
    tree: &mut impl ValueTree<Value = Spec>,
    start: Spec,
    fails: &dyn Fn(&Spec) -> bool,
) -> (Spec, u32) {
    let (mut smallest, mut steps) = shrink_tree(tree, start, fails);
    'outer: while steps < SHRINK_STEPS_MAX {
        for candidate in smallest.simpler() {
            steps += 1;
            if fails(&candidate) {
                smallest = candidate;
                continue 'outer;
            }
            if steps >= SHRINK_STEPS_MAX {
                break 'outer;
            }
        }
        break;
    }
    (smallest, steps)
}

/// proptest's shrinking: simplify while the failure holds, complicate when it stops.
fn shrink_tree(
    tree: &mut impl ValueTree<Value = Spec>,
    start: Spec,
    fails: &dyn Fn(&Spec) -> bool,
) -> (Spec, u32) {
    let mut smallest = start;
    let mut steps = 0;
    if !tree.simplify() {
        return (smallest, steps);
    }
    while steps < SHRINK_STEPS_MAX / 2 {
        steps += 1;
        let current = tree.current();
        if fails(&current) {
            smallest = current;
            if !tree.simplify() {
                break;
            }
        } else if !tree.complicate() {
            break;
        }
    }
    (smallest, steps)
}

/// The scenario of a trial, with the order's seed as its `seed:` and an `expect:` entry per
/// policy that pins what holds over every order of the world (what `check` holds a file to):
/// the outcome when every order reaches the same one, the hosts delivered through when they
/// are the same, and the connection attempts when their count is. An exploration too large
/// to enumerate pins the run's own order.
fn pinned(runner: &Runner, trial: &Trial, seed: u64, policies: &[(&PolicySpec, &Run)]) -> Scenario {
    let mut scenario = (*trial.prepared.scenario).clone();
    scenario.seed = Some(seed);
    scenario.expectations = policies
        .iter()
        .map(|(policy, run)| {
            let built = policy.build();
            let mut runs: Vec<Run> = Vec::new();
            let exploration = runner.explore(&trial.prepared, built.as_ref(), &mut runs);
            if !exploration.exhaustive || runs.is_empty() {
                runs = vec![(*run).clone()];
            }
            crate::pin::expectation(policy.name(), &runs, &[])
        })
        .collect();
    scenario
}

/// The text of a found world: a comment header (what found it, what broke, how to reproduce),
/// then the scenario with its `seed:` and the `expect:` that pins today's behaviour.
pub fn finding_file(header: &[String], scenario: &Scenario) -> String {
    let mut text = String::new();
    for line in header {
        for part in line.lines() {
            let _ = writeln!(text, "# {}", mxsim_model::escape::terminal(part));
        }
    }
    text.push_str(&write(scenario));
    text
}

/// A world on which two policies reach different outcomes, shrunk.
#[derive(Clone, Debug)]
pub struct Difference {
    /// The case number.
    pub case: u64,
    /// The case's seed, the order of both runs.
    pub seed: u64,
    /// Cases run until it was found.
    pub cases: u64,
    /// The shrunk world, with both policies' outcomes pinned.
    pub scenario: Scenario,
    /// Shrinking steps taken.
    pub steps: u32,
    /// Hosts in the shrunk world.
    pub hosts: usize,
    /// The first event where the two traces part: its index and each trace's line there.
    pub parting: Option<(usize, String, String)>,
}

/// What a run reached, per recipient, in order: the outcome and the host delivered through.
fn reached(run: &Run) -> Vec<(Mailbox, DispositionKind, Option<String>)> {
    run.outcomes
        .iter()
        .map(|outcome| {
            let via = match &outcome.disposition {
                Disposition::Delivered { host, .. } => Some(host.to_string()),
                _ => None,
            };
            (outcome.recipient.clone(), outcome.disposition.kind(), via)
        })
        .collect()
}

/// Searches the cases for a world on which `a` and `b` reach different outcomes (a recipient
/// ends another way, or is delivered through another host), and shrinks the first one found.
pub fn diff(
    runner: &Runner,
    a: &PolicySpec,
    b: &PolicySpec,
    cases: &Cases,
    progress: &mut dyn FnMut(u64, u64),
) -> (Option<Difference>, u64) {
    let (a, b) = (&Searched::new(a), &Searched::new(b));
    let total = cases.numbers().count() as u64;
    let mut done = 0;
    let mut runs = 0u64;
    for case in cases.numbers() {
        let seed = cases.case_seed(case);
        let mut tree = tree(seed);
        let spec = tree.current();
        done += 1;
        runs += 2;
        let differs = |spec: &Spec| {
            let left = trial(runner, spec, a, seed);
            let right = trial(runner, spec, b, seed);
            left.run.fault.is_none()
                && right.run.fault.is_none()
                && reached(&left.run) != reached(&right.run)
        };
        if differs(&spec) {
            let (smallest, steps) = shrink(&mut tree, spec, &differs);
            runs += 2 * u64::from(steps);
            let left = trial(runner, &smallest, a, seed);
            let right = trial(runner, &smallest, b, seed);
            let parting = parting(&left.run, &right.run);
            let scenario = pinned(
                runner,
                &left,
                seed,
                &[(a.spec, &left.run), (b.spec, &right.run)],
            );
            progress(done, total);
            return (
                Some(Difference {
                    case,
                    seed,
                    cases: done,
                    scenario,
                    steps,
                    hosts: smallest.domains.iter().map(|d| d.hosts.len()).sum(),
                    parting,
                }),
                runs,
            );
        }
        progress(done, total);
    }
    (None, runs)
}

/// The first event where two traces part, rendered as their trace lines.
fn parting(left: &Run, right: &Run) -> Option<(usize, String, String)> {
    let render = |run: &Run, index: usize| {
        run.trace.events.get(index).map_or_else(
            || "(the trace ends)".to_owned(),
            |event| {
                let one = mxsim_model::trace::Trace {
                    events: vec![event.clone()],
                };
                one.to_string().trim_end().to_owned()
            },
        )
    };
    let longest = left.trace.events.len().max(right.trace.events.len());
    (0..longest)
        .find(|&index| left.trace.events.get(index) != right.trace.events.get(index))
        .map(|index| (index, render(left, index), render(right, index)))
}

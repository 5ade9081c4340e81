//! Runs a policy in a simulated world: one run for one choice of orders, or an exploration of
//! every equal-preference order.
//!
//! One [`Runner`] owns one current-thread tokio runtime with paused time and reuses it for
//! every run: building a runtime costs more than a whole simulated delivery.

use std::collections::BTreeMap;
use std::sync::Arc;

use mxsim_model::outcome::{Disposition, RecipientOutcome};
use mxsim_model::time::Duration;
use mxsim_model::trace::{AttemptId, Budget, EventKind, Trace};
use mxsim_model::world::{Job, Policy};

use crate::choice::{Choices, Chooser, next_leaf};
use crate::world::{Prepared, SimWorld, State};

/// A run stops here even if the policy is still waiting: 30 virtual days. Every loop has a
/// bound, and a policy with no timeout on a silent server must not hang the harness.
pub const RUN_LIMIT: Duration = mxsim_model::scenario::RUN_LIMIT;

/// Exploration enumerates every order when there are at most this many; beyond, it samples.
pub const ORDERS_EXHAUSTIVE_MAX: usize = 720;

/// How many seeds exploration samples when the orders are too many to enumerate.
pub const ORDERS_SAMPLED: u64 = 256;

/// Exploration stops making runs once the runs it made recorded this many trace events in all
/// (a counted work budget, never a clock). No shipped scenario comes near it: the largest
/// enumerates 720 orders of about 100 events. A queue of 12,000 messages (about 200,000 events a
/// run) is cut after about ten runs, and the output says so.
pub const EXPLORE_EVENTS_MAX: u64 = 2_000_000;

/// What one run produced.
#[derive(Clone, Debug)]
pub struct Run {
    /// How its choices were made.
    pub choices: Choices,
    /// The values taken at each choice point.
    pub taken: Vec<u64>,
    /// The number of options at each choice point.
    pub arities: Vec<u64>,
    /// Everything the world saw.
    pub trace: Trace,
    /// One final outcome per recipient per message; when the run has a [`Fault`], only those
    /// settled before it.
    pub outcomes: Vec<RecipientOutcome>,
    /// Every delivery attempt, in the order they began: one per message in a single pass, as
    /// many as the queue made in a queue scenario.
    pub attempts: Vec<AttemptRecord>,
    /// A bug in the policy that ended the run early; `None` for a run that ended well (whether
    /// or not a limit or a budget stopped it: those are outcomes, recorded in the trace).
    pub fault: Option<Fault>,
}

/// One delivery attempt of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Which attempt.
    pub id: AttemptId,
    /// When it began.
    pub started: mxsim_model::time::Instant,
    /// When it ended (the policy returned, or the run stopped it).
    pub ended: mxsim_model::time::Instant,
    /// Recipients it delivered.
    pub delivered: u32,
    /// Recipients it bounced.
    pub bounced: u32,
    /// Recipients it deferred.
    pub deferred: u32,
}

impl AttemptRecord {
    /// Counts the dispositions of `outcomes` into a record.
    pub(crate) fn new(
        id: AttemptId,
        started: mxsim_model::time::Instant,
        ended: mxsim_model::time::Instant,
        outcomes: &[RecipientOutcome],
    ) -> AttemptRecord {
        let mut record = AttemptRecord {
            id,
            started,
            ended,
            delivered: 0,
            bounced: 0,
            deferred: 0,
        };
        for outcome in outcomes {
            match outcome.disposition.kind() {
                mxsim_model::outcome::DispositionKind::Delivered => record.delivered += 1,
                mxsim_model::outcome::DispositionKind::Bounced => record.bounced += 1,
                mxsim_model::outcome::DispositionKind::Deferred => record.deferred += 1,
            }
        }
        record
    }
}

/// A policy that broke the [`Policy`] contract. It is reported in its own cell, and the rest of
/// a `compare` or `check` goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The policy panicked, with this message.
    Panicked(String),
    /// The policy returned outcomes that do not match the message's recipients.
    Outcomes(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Panicked(message) => write!(formatter, "the policy panicked: {message}"),
            Fault::Outcomes(message) => {
                write!(formatter, "the policy broke its contract: {message}")
            }
        }
    }
}

/// Receives the runs of an exploration one by one, as each ends, and keeps only what it will
/// report: memory stays flat however many runs there are.
pub trait Observer {
    /// A run ended.
    fn observe(&mut self, run: Run);
    /// Forget every run observed so far: the exploration found more orders than it enumerates and
    /// starts again by sampling seeds.
    fn restart(&mut self);
}

/// Keeps every run: for tests and small explorations only.
impl Observer for Vec<Run> {
    fn observe(&mut self, run: Run) {
        self.push(run);
    }
    fn restart(&mut self) {
        self.clear();
    }
}

/// How an exploration went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exploration {
    /// Runs made (after a restart, since it).
    pub runs: usize,
    /// True when every order was enumerated; false when orders were sampled by seed.
    pub exhaustive: bool,
    /// Set when the work budget stopped the exploration before it was complete.
    pub cut: Option<Cut>,
}

/// The exploration's work budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Events the runs recorded in all.
    pub events: u64,
    /// The budget ([`EXPLORE_EVENTS_MAX`] unless the runner was given another).
    pub events_max: u64,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "cut by the exploration budget of {} trace events",
            self.events_max
        )
    }
}

/// Owns the paused runtime.
pub struct Runner {
    runtime: tokio::runtime::Runtime,
    explore_events_max: u64,
}

impl Default for Runner {
    fn default() -> Runner {
        Runner::new()
    }
}

impl Runner {
    /// A runner with its own current-thread runtime, time paused from the start.
    pub fn new() -> Runner {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime with only a timer cannot fail to build");
        Runner {
            runtime,
            explore_events_max: EXPLORE_EVENTS_MAX,
        }
    }

    /// The same runner with another exploration work budget (tests use a small one).
    pub fn with_explore_events_max(mut self, events_max: u64) -> Runner {
        self.explore_events_max = events_max;
        self
    }

    /// Runs every message of the scenario through `policy` once, with `choices`. A policy that
    /// panics or breaks its contract ends the run with a [`Fault`]; the runner stays usable.
    pub fn run(
        &self,
        prepared: &Arc<Prepared>,
        policy: &dyn Policy<SimWorld>,
        choices: Choices,
    ) -> Run {
        let chooser = Chooser::new(&choices);
        let scenario = &prepared.scenario;
        let queue = scenario.queue.then(|| policy.queue());
        let budgets = match &queue {
            Some(queue) => prepared.budgets.times(queue.attempts_within_lifetime()),
            None => prepared.budgets,
        };
        // The world lives outside `block_on`, so its trace survives a panic in the policy. It
        // reads the paused clock, hence the runtime context.
        let world = {
            let _context = self.runtime.enter();
            SimWorld::new(prepared.clone(), chooser, budgets)
        };
        let mut outcomes = Vec::new();
        let mut attempts = Vec::new();
        let driven = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.runtime.block_on(world.polled(async {
                let driven = match &queue {
                    Some(settings) => {
                        crate::queue::drive(&world, policy, settings, &mut outcomes, &mut attempts)
                            .await
                    }
                    None => drive(&world, policy, &mut outcomes, &mut attempts).await,
                };
                world.close_parked(true);
                driven
            }))
        }));
        let fault = match driven {
            Ok(result) => result.err(),
            Err(payload) => Some(Fault::Panicked(panic_message(payload.as_ref()))),
        };
        let inner = std::mem::replace(&mut *world.inner.state.borrow_mut(), State::empty());
        Run {
            choices,
            taken: inner.chooser.taken,
            arities: inner.chooser.arities,
            trace: Trace {
                events: inner.events,
            },
            outcomes,
            attempts,
            fault,
        }
    }

    /// tokio's own floor for one run, which `mxsim bench --floor` sets beside a policy's
    /// figures: `timeouts` `tokio::time::timeout` wraps of a future that is ready at once, in
    /// one `block_on` on this runner's reused paused runtime, with no world and no policy.
    pub fn floor(&self, timeouts: u32) {
        self.runtime.block_on(async {
            for _ in 0..timeouts {
                let wrapped = tokio::time::timeout(
                    std::time::Duration::from_secs(300),
                    std::future::ready(std::hint::black_box(0u8)),
                );
                let _ = std::hint::black_box(wrapped.await);
            }
        });
    }

    /// Runs every equal-preference order the policy draws (all of them up to
    /// [`ORDERS_EXHAUSTIVE_MAX`], else [`ORDERS_SAMPLED`] seeds), handing each run to `observer`
    /// as it ends, until the runs have recorded [`EXPLORE_EVENTS_MAX`] events.
    pub fn explore(
        &self,
        prepared: &Arc<Prepared>,
        policy: &dyn Policy<SimWorld>,
        observer: &mut dyn Observer,
    ) -> Exploration {
        let mut budget = WorkBudget::new(self.explore_events_max);
        let first = self.run(prepared, policy, Choices::Forced(Vec::new()));
        let product = first
            .arities
            .iter()
            .try_fold(1usize, |acc, &arity| acc.checked_mul(arity as usize));
        if product.is_some_and(|count| count <= ORDERS_EXHAUSTIVE_MAX) {
            // When the orders turn out too many to enumerate, sampling starts over, but the work
            // already spent still counts: the whole exploration stays within one budget.
            match self.enumerate(prepared, policy, first, observer, &mut budget) {
                Some(exploration) => return exploration,
                None => observer.restart(),
            }
        }
        let mut runs = 0;
        for seed in 0..ORDERS_SAMPLED {
            if budget.is_spent() {
                return Exploration {
                    runs,
                    exhaustive: false,
                    cut: Some(budget.cut()),
                };
            }
            let run = self.run(prepared, policy, Choices::Seed(seed));
            budget.spend(&run);
            observer.observe(run);
            runs += 1;
        }
        Exploration {
            runs,
            exhaustive: false,
            cut: None,
        }
    }

    /// Walks the choice tree depth-first; `None` if it turns out larger than the bound.
    fn enumerate(
        &self,
        prepared: &Arc<Prepared>,
        policy: &dyn Policy<SimWorld>,
        first: Run,
        observer: &mut dyn Observer,
        budget: &mut WorkBudget,
    ) -> Option<Exploration> {
        let mut next = next_leaf(&first.taken, &first.arities);
        budget.spend(&first);
        observer.observe(first);
        let mut runs = 1;
        while let Some(values) = next {
            if runs >= ORDERS_EXHAUSTIVE_MAX {
                return None;
            }
            if budget.is_spent() {
                return Some(Exploration {
                    runs,
                    exhaustive: false,
                    cut: Some(budget.cut()),
                });
            }
            let run = self.run(prepared, policy, Choices::Forced(values));
            next = next_leaf(&run.taken, &run.arities);
            budget.spend(&run);
            observer.observe(run);
            runs += 1;
        }
        Some(Exploration {
            runs,
            exhaustive: true,
            cut: None,
        })
    }
}

/// Events recorded by an exploration's runs so far.
struct WorkBudget {
    events: u64,
    events_max: u64,
}

impl WorkBudget {
    fn new(events_max: u64) -> WorkBudget {
        WorkBudget {
            events: 0,
            events_max,
        }
    }
    fn spend(&mut self, run: &Run) {
        self.events = self.events.saturating_add(run.trace.events.len() as u64);
    }
    fn is_spent(&self) -> bool {
        self.events >= self.events_max
    }
    fn cut(&self) -> Cut {
        Cut {
            events: self.events,
            events_max: self.events_max,
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Why the runner stopped a run before its messages were all attempted.
#[derive(Clone, Copy)]
enum Stopped {
    /// The 30-day virtual-time limit.
    TimeLimit,
    /// A counted budget.
    Budget(Budget),
}

/// Submits each message at its time and lets the policy make one attempt for it, pushing the
/// outcomes with the times the policy settled each recipient (the `done` lines come later, when
/// the whole attempt ends). A policy that breaks its contract ends the drive with a [`Fault`].
async fn drive(
    world: &SimWorld,
    policy: &dyn Policy<SimWorld>,
    all: &mut Vec<RecipientOutcome>,
    attempts: &mut Vec<AttemptRecord>,
) -> Result<(), Fault> {
    let inner = &world.inner;
    let scenario = inner.prepared.scenario.clone();
    // Messages in order of submission; most scenarios list them so, and then need no sort.
    let messages = &scenario.messages;
    let order: Vec<usize> = if messages.is_sorted_by_key(|message| message.at) {
        Vec::new()
    } else {
        let mut order: Vec<usize> = (0..messages.len()).collect();
        order.sort_by_key(|&index| messages[index].at);
        order
    };
    let order =
        (0..messages.len()).map(|position| order.get(position).copied().unwrap_or(position));
    let (origin, _) = inner.clock();
    let mut budget_spent = None;
    for index in order {
        let message = &scenario.messages[index];
        if budget_spent.is_none() {
            // A message already due is submitted at once: a timer would only fire at once.
            let due = origin + message.at.since_start().to_std();
            if due > inner.clock().0 {
                tokio::time::sleep_until(due).await;
            }
            inner.record(EventKind::Submitted {
                message: index,
                recipients: message.to.clone(),
            });
        }
        let started = mxsim_model::world::World::now(world);
        let attempted = match budget_spent {
            Some(budget) => Err(Stopped::Budget(budget)),
            None => attempt(world, policy, index).await,
        };
        let outcomes = match attempted {
            Ok(outcomes) => outcomes,
            Err(stopped) => {
                let reason = match stopped {
                    Stopped::TimeLimit => {
                        inner.record_closing(EventKind::RunLimit { limit: RUN_LIMIT });
                        format!("run stopped at the {RUN_LIMIT} limit")
                    }
                    Stopped::Budget(budget) => {
                        let limit = match budget {
                            Budget::Events => inner.budgets().events_max,
                            Budget::Connections => inner.budgets().connections_max,
                        };
                        if budget_spent.is_none() {
                            inner.record_closing(EventKind::BudgetSpent { budget, limit });
                            budget_spent = Some(budget);
                        }
                        format!(
                            "run stopped: its budget of {limit} {} is spent",
                            budget.unit()
                        )
                    }
                };
                deferred_all(world, index, &message.to, &reason)
            }
        };
        let id = AttemptId {
            message: index as u32,
            number: 1,
        };
        let ended = mxsim_model::world::World::now(world);
        attempts.push(AttemptRecord::new(id, started, ended, &outcomes));
        settle(world, policy, index, &message.to, outcomes, all)?;
    }
    Ok(())
}

/// One attempt at message `index`, stopped at the run limit or when a budget is spent.
async fn attempt(
    world: &SimWorld,
    policy: &dyn Policy<SimWorld>,
    index: usize,
) -> Result<Vec<RecipientOutcome>, Stopped> {
    let inner = &world.inner;
    let scenario = &inner.prepared.scenario;
    let job = Job {
        client: &scenario.client,
        message: &scenario.messages[index],
        message_index: index,
        attempt: 1,
        submitted: scenario.messages[index].at,
        queued: false,
    };
    let left = RUN_LIMIT.as_millis().saturating_sub(world_now(world));
    // A message reached only at the limit (earlier ones ran long) is not attempted at all:
    // even a zero timeout would poll the policy once.
    if left == 0 {
        return Err(Stopped::TimeLimit);
    }
    // The policy is polled before the limit, like `tokio::time::timeout`, so a reply due exactly
    // at the limit still arrives. When the limit wins, or a budget is spent (every world call
    // then stays pending, so the policy yields), the world learns that the harness is stopping
    // before the policy's future (and its pending waits) is dropped.
    let mut deliver = policy.deliver(world, job);
    let limit = tokio::time::sleep(Duration(left).to_std());
    let mut limit = std::pin::pin!(limit);
    let finished = std::future::poll_fn(|context| {
        if let std::task::Poll::Ready(outcomes) = deliver.as_mut().poll(context) {
            return std::task::Poll::Ready(Ok(outcomes));
        }
        if let Some(budget) = inner.spent() {
            return std::task::Poll::Ready(Err(Stopped::Budget(budget)));
        }
        limit
            .as_mut()
            .poll(context)
            .map(|()| Err(Stopped::TimeLimit))
    })
    .await;
    if finished.is_err() {
        inner.state.borrow_mut().stopped = true;
    }
    drop(deliver);
    inner.state.borrow_mut().stopped = false;
    finished
}

pub(crate) fn deferred_all(
    world: &SimWorld,
    index: usize,
    recipients: &[mxsim_model::name::Mailbox],
    reason: &str,
) -> Vec<RecipientOutcome> {
    let at = mxsim_model::world::World::now(world);
    recipients
        .iter()
        .map(|recipient| RecipientOutcome {
            message: index,
            recipient: recipient.clone(),
            at,
            disposition: Disposition::Deferred {
                reason: reason.to_owned(),
            },
        })
        .collect()
}

/// Records the `done` line of each recipient, in the message's recipient order, and keeps the
/// outcomes; outcomes that do not match the recipients one to one are a [`Fault`].
pub(crate) fn settle(
    world: &SimWorld,
    policy: &dyn Policy<SimWorld>,
    index: usize,
    recipients: &[mxsim_model::name::Mailbox],
    outcomes: Vec<RecipientOutcome>,
    all: &mut Vec<RecipientOutcome>,
) -> Result<(), Fault> {
    for outcome in in_recipient_order(policy, index, recipients, outcomes)? {
        world.inner.record_closing(EventKind::Outcome {
            message: index,
            recipient: outcome.recipient.clone(),
            disposition: outcome.disposition.clone(),
        });
        all.push(outcome);
    }
    Ok(())
}

/// The outcomes in the order of `recipients`, one each; anything else is a [`Fault`].
pub(crate) fn in_recipient_order(
    policy: &dyn Policy<SimWorld>,
    index: usize,
    recipients: &[mxsim_model::name::Mailbox],
    outcomes: Vec<RecipientOutcome>,
) -> Result<Vec<RecipientOutcome>, Fault> {
    if outcomes.len() != recipients.len() {
        return Err(Fault::Outcomes(format!(
            "{} returned {} outcomes for the {} recipients of message {index}",
            policy.name(),
            outcomes.len(),
            recipients.len()
        )));
    }
    // The engine returns its outcomes in recipient order: then they are taken as they are, one
    // comparison per recipient (a message's recipients are distinct: the loader refuses one
    // listed twice).
    if outcomes
        .iter()
        .zip(recipients)
        .all(|(outcome, recipient)| outcome.recipient == *recipient)
    {
        return Ok(outcomes);
    }
    // Else index the outcomes by recipient once: a message may have thousands of recipients.
    let mut by_recipient: BTreeMap<mxsim_model::name::Mailbox, RecipientOutcome> = BTreeMap::new();
    for outcome in outcomes {
        if !by_recipient.contains_key(&outcome.recipient) {
            by_recipient.insert(outcome.recipient.clone(), outcome);
        }
    }
    recipients
        .iter()
        .map(|recipient| {
            by_recipient.remove(recipient).ok_or_else(|| {
                Fault::Outcomes(format!(
                    "{} gave no outcome for {recipient} in message {index}",
                    policy.name()
                ))
            })
        })
        .collect()
}

fn world_now(world: &SimWorld) -> u64 {
    mxsim_model::world::World::now(world).0
}

//! The queue scheduler: mail over days, in virtual time (queue scenarios, `messages:`).
//!
//! Each message is submitted at its `at:` and attempted at once; a deferred recipient is tried
//! again when the policy's [`QueueSettings`] schedule says (rounded up to its next queue scan),
//! until it is delivered or bounced, the message expires at the end of its lifetime, or the run
//! reaches its horizon. Bounces and expiries send a DSN to the sender, delay warnings too where
//! the policy sends them, and a null reverse-path never gets one (RFC 5321 §6.1).
//!
//! Attempts of different messages overlap: a message due at 1 s does not wait for another
//! message's attempt sitting in a 5-minute timeout. Nothing is spawned. Due work sits in an
//! ordered agenda keyed by (time, sequence), so ties go to what was scheduled first; running
//! attempts are futures in a `Vec`, polled in the order they began, and only when their own
//! waker fired. Every event an attempt records carries its [`AttemptId`]. Same seed, same bytes.

use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use mxsim_model::name::Mailbox;
use mxsim_model::outcome::{Disposition, RecipientOutcome};
use mxsim_model::queue::{Backoff, QueueSettings};
use mxsim_model::scenario::Message;
use mxsim_model::time::{Duration, Instant};
use mxsim_model::trace::{AttemptId, Budget, DsnKind, EventKind};
use mxsim_model::world::{Job, LocalFuture, Policy, World};

use crate::runner::{AttemptRecord, Fault, RUN_LIMIT, in_recipient_order};
use crate::world::SimWorld;

pub use mxsim_model::queue::LAST_ATTEMPT_ALLOWANCE;

/// The horizon of a queue run: the file's `horizon:`, else the last submission plus the
/// policy's lifetime plus [`LAST_ATTEMPT_ALLOWANCE`]; never past the run limit. It depends on
/// the policy alone, so a cell prints the same bytes whichever other policies run beside it.
pub fn horizon(scenario: &mxsim_model::scenario::Scenario, settings: &QueueSettings) -> Duration {
    let horizon = scenario.horizon.unwrap_or_else(|| {
        let last = scenario
            .messages
            .iter()
            .map(|message| message.at.since_start())
            .max()
            .unwrap_or(Duration::ZERO);
        Duration(
            last.as_millis()
                .saturating_add(settings.lifetime.as_millis())
                .saturating_add(LAST_ATTEMPT_ALLOWANCE.as_millis()),
        )
    });
    horizon.min(RUN_LIMIT)
}

/// What is due on the agenda.
#[derive(Clone, Copy, Debug)]
enum Task {
    /// The message enters the queue.
    Submit(usize),
    /// Its next attempt.
    Attempt(usize),
    /// Its delay warning, if it is still queued.
    Warn(usize),
    /// The end of its lifetime.
    Expire(usize),
}

/// A queued message.
struct Entry {
    /// Recipients neither delivered nor bounced yet, in file order.
    pending: Vec<Mailbox>,
    attempts: u32,
    backoff: Backoff,
    /// The last deferral's reason, for the expiry bounce.
    last_reason: String,
    /// True once no recipient is pending.
    done: bool,
    /// True while an attempt runs.
    running: bool,
    /// The agenda key of its pending delay warning, removed once the message is done, so a
    /// finished run does not wait for it.
    warning: Option<(Instant, u64)>,
}

/// A running attempt.
struct Active<'a> {
    id: AttemptId,
    entry: usize,
    started: Instant,
    future: LocalFuture<'a, Vec<RecipientOutcome>>,
    woken: Arc<Flag>,
    /// A waker over `woken`, handed to the attempt's future.
    waker: Waker,
}

/// A waker per attempt: it marks its attempt for polling and wakes the one task.
struct Flag {
    set: AtomicBool,
    parent: Waker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.set.store(true, Ordering::Relaxed);
        self.parent.wake_by_ref();
    }
}

/// Why the wait in the loop ended.
enum Woke {
    /// The attempt at this index in `active` returned.
    Finished(usize, Vec<RecipientOutcome>),
    /// The next agenda item, or the horizon, is due.
    Timer,
    /// A counted budget is spent.
    Spent(Budget),
}

/// The scheduler of one queue run.
struct Scheduler<'a> {
    world: &'a SimWorld,
    policy: &'a dyn Policy<SimWorld>,
    settings: &'a QueueSettings,
    entries: Vec<Entry>,
    agenda: BTreeMap<(Instant, u64), Task>,
    sequence: u64,
    active: Vec<Active<'a>>,
    horizon: Instant,
}

/// Runs a queue scenario: see the module documentation. Final outcomes go to `all`, one per
/// recipient, in the order they were settled; every attempt to `attempts`.
pub(crate) async fn drive(
    world: &SimWorld,
    policy: &dyn Policy<SimWorld>,
    settings: &QueueSettings,
    all: &mut Vec<RecipientOutcome>,
    attempts: &mut Vec<AttemptRecord>,
) -> Result<(), Fault> {
    let scenario = &*world.inner.prepared.scenario;
    let mut scheduler = Scheduler {
        world,
        policy,
        settings,
        entries: scenario
            .messages
            .iter()
            .map(|message| Entry {
                pending: message.to.to_vec(),
                attempts: 0,
                backoff: Backoff::default(),
                last_reason: String::new(),
                done: false,
                running: false,
                warning: None,
            })
            .collect(),
        agenda: BTreeMap::new(),
        sequence: 0,
        active: Vec::new(),
        horizon: Instant::START.after(horizon(scenario, settings)),
    };
    for (index, message) in scenario.messages.iter().enumerate() {
        let _ = scheduler.schedule(message.at, Task::Submit(index));
    }
    let origin = tokio::time::Instant::now();
    let result = scheduler.turn_until_done(origin, attempts, all).await;
    // Attempts are recorded as they end; reports list them in the order they began.
    attempts.sort_by_key(|attempt| (attempt.started, attempt.id));
    result
}

impl Drop for Scheduler<'_> {
    /// However the run ends (a fault, a panic unwinding through it, or the end of the queue),
    /// the attempts still running are dropped as the harness stopping, not as clients giving
    /// up, and no later event carries an attempt's tag.
    fn drop(&mut self) {
        self.world.inner.state.borrow_mut().attempt = None;
        self.drop_running();
    }
}

impl<'a> Scheduler<'a> {
    /// The loop: every turn either handles one agenda item or ends one attempt, and each
    /// message has at most `ATTEMPTS_MAX` attempts, so it is bounded; the budgets bound it again.
    async fn turn_until_done(
        &mut self,
        origin: tokio::time::Instant,
        attempts: &mut Vec<AttemptRecord>,
        all: &mut Vec<RecipientOutcome>,
    ) -> Result<(), Fault> {
        let world = self.world;
        let messages = &world.inner.prepared.scenario.messages;
        loop {
            if let Some(budget) = world.inner.spent() {
                self.stop(Some(budget), attempts, all);
                return Ok(());
            }
            world.close_parked(false);
            let now = world.now();
            if let Some((&(due, _), _)) = self.agenda.first_key_value()
                && due <= now
                && due < self.horizon
            {
                let (_, task) = self
                    .agenda
                    .pop_first()
                    .expect("the agenda has a first item");
                self.handle(task, messages, all)?;
                continue;
            }
            if self.agenda.is_empty() && self.active.is_empty() {
                return Ok(());
            }
            if now >= self.horizon {
                self.stop(None, attempts, all);
                return Ok(());
            }
            let wake_at = self
                .agenda
                .first_key_value()
                .map_or(self.horizon, |(&(due, _), _)| due.min(self.horizon));
            // A cached connection closes when its time runs out, not later.
            let wake_at = world
                .next_parked_expiry()
                .map_or(wake_at, |expiry| expiry.max(now).min(wake_at));
            let sleep = tokio::time::sleep_until(origin + wake_at.since_start().to_std());
            let mut sleep = std::pin::pin!(sleep);
            let woke = std::future::poll_fn(|context| self.poll(context, sleep.as_mut())).await;
            match woke {
                Woke::Finished(index, outcomes) => self.finish(index, outcomes, attempts, all)?,
                Woke::Timer => {}
                Woke::Spent(budget) => {
                    self.stop(Some(budget), attempts, all);
                    return Ok(());
                }
            }
        }
    }
    /// Drops the running attempts as the harness stopping: their pending waits record no
    /// "gave up" line.
    fn drop_running(&mut self) {
        self.world.inner.state.borrow_mut().stopped = true;
        self.active.clear();
        self.world.inner.state.borrow_mut().stopped = false;
    }

    fn schedule(&mut self, at: Instant, task: Task) -> (Instant, u64) {
        self.sequence += 1;
        self.agenda.insert((at, self.sequence), task);
        (at, self.sequence)
    }

    /// Message `index` is settled for good: its pending warning goes off the agenda.
    fn done(&mut self, index: usize) {
        let entry = &mut self.entries[index];
        entry.done = true;
        if let Some(key) = entry.warning.take() {
            self.agenda.remove(&key);
        }
    }

    fn now(&self) -> Instant {
        self.world.now()
    }

    /// Polls the attempts whose waker fired, in the order they began; then the budgets; then the
    /// timer of the next agenda item or the horizon.
    fn poll(
        &mut self,
        context: &mut Context<'_>,
        sleep: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Poll<Woke> {
        for (index, active) in self.active.iter_mut().enumerate() {
            if !active.woken.set.swap(false, Ordering::Relaxed) {
                continue;
            }
            // The flag's waker holds the task's waker; it is made again only when that changes
            // (once, at the attempt's first poll), not on every poll.
            if !active.woken.parent.will_wake(context.waker()) {
                active.woken = Arc::new(Flag {
                    set: AtomicBool::new(false),
                    parent: context.waker().clone(),
                });
                active.waker = Waker::from(active.woken.clone());
            }
            let mut own = Context::from_waker(&active.waker);
            self.world.inner.state.borrow_mut().attempt = Some(active.id);
            let polled = active.future.as_mut().poll(&mut own);
            self.world.inner.state.borrow_mut().attempt = None;
            if let Poll::Ready(outcomes) = polled {
                return Poll::Ready(Woke::Finished(index, outcomes));
            }
        }
        if let Some(budget) = self.world.inner.spent() {
            return Poll::Ready(Woke::Spent(budget));
        }
        sleep.poll(context).map(|()| Woke::Timer)
    }

    fn handle(
        &mut self,
        task: Task,
        messages: &'a [Message],
        all: &mut Vec<RecipientOutcome>,
    ) -> Result<(), Fault> {
        let now = self.now();
        match task {
            Task::Submit(index) => {
                let message = &messages[index];
                self.world.inner.record(EventKind::Submitted {
                    message: index,
                    recipients: message.to.clone(),
                });
                if let Some(warn) = self.settings.warn_after {
                    let key = self.schedule(now.after(warn), Task::Warn(index));
                    self.entries[index].warning = Some(key);
                }
                self.start(index, message, now);
            }
            Task::Attempt(index) => self.start(index, &messages[index], now),
            Task::Warn(index) => {
                self.entries[index].warning = None;
                let entry = &self.entries[index];
                if !entry.done && !entry.pending.is_empty() {
                    let recipients: Arc<[Mailbox]> = Arc::from(entry.pending.as_slice());
                    self.dsn(index, &messages[index], DsnKind::Delay, recipients);
                }
            }
            // Scheduled only when no attempt runs (from `finish`), and no attempt starts
            // after the deadline, so the message is idle here.
            Task::Expire(index) => self.expire(index, &messages[index], all),
        }
        Ok(())
    }

    /// Starts the next attempt of message `index` with its pending recipients.
    fn start(&mut self, index: usize, message: &'a Message, now: Instant) {
        let entry = &mut self.entries[index];
        if entry.done || entry.running || entry.pending.is_empty() {
            return;
        }
        entry.attempts += 1;
        entry.running = true;
        let id = AttemptId {
            message: index as u32,
            number: entry.attempts,
        };
        let recipients: Arc<[Mailbox]> = Arc::from(entry.pending.as_slice());
        self.world.inner.record(EventKind::AttemptStarted {
            message: index,
            attempt: id.number,
            recipients: recipients.clone(),
        });
        // A retry carries only the recipients still pending.
        let retry = Rc::new(Message {
            to: recipients,
            ..message.clone()
        });
        let world = self.world;
        let policy = self.policy;
        let client = &world.inner.prepared.scenario.client;
        let submitted = message.at;
        let future: LocalFuture<'a, Vec<RecipientOutcome>> = Box::pin(async move {
            let job = Job {
                client,
                message: &retry,
                message_index: index,
                attempt: id.number,
                submitted,
                queued: true,
            };
            policy.deliver(world, job).await
        });
        let woken = Arc::new(Flag {
            set: AtomicBool::new(true),
            parent: Waker::noop().clone(),
        });
        self.active.push(Active {
            id,
            entry: index,
            started: now,
            future,
            waker: Waker::from(woken.clone()),
            woken,
        });
    }

    /// An attempt returned: settle what it settled, and schedule the next one or the expiry.
    fn finish(
        &mut self,
        active_index: usize,
        outcomes: Vec<RecipientOutcome>,
        attempts: &mut Vec<AttemptRecord>,
        all: &mut Vec<RecipientOutcome>,
    ) -> Result<(), Fault> {
        let active = self.active.remove(active_index);
        drop(active.future);
        let index = active.entry;
        let now = self.now();
        let scenario = self.world.inner.prepared.scenario.clone();
        let message = &scenario.messages[index];
        let pending = std::mem::take(&mut self.entries[index].pending);
        let outcomes = in_recipient_order(self.policy, index, &pending, outcomes)?;
        attempts.push(AttemptRecord::new(
            active.id,
            active.started,
            now,
            &outcomes,
        ));
        let mut bounced = Vec::new();
        let mut still = Vec::new();
        for outcome in outcomes {
            match &outcome.disposition {
                Disposition::Deferred { reason } => {
                    if still.is_empty() {
                        self.entries[index].last_reason.clone_from(reason);
                    }
                    still.push(outcome.recipient);
                }
                disposition => {
                    if matches!(disposition, Disposition::Bounced { .. }) {
                        bounced.push(outcome.recipient.clone());
                    }
                    self.settle(index, outcome, all);
                }
            }
        }
        let entry = &mut self.entries[index];
        entry.running = false;
        entry.pending = still;
        if !bounced.is_empty() {
            self.dsn(index, message, DsnKind::Failure, Arc::from(bounced));
        }
        if self.entries[index].pending.is_empty() {
            self.done(index);
            return Ok(());
        }
        let entry = &mut self.entries[index];
        let deadline = message.at.after(self.settings.lifetime);
        let next = self
            .settings
            .schedule
            .next_delay(&mut entry.backoff, now)
            .map(|delay| self.settings.on_scan(now.after(delay.max(Duration(1)))));
        match next {
            Some(next) if next < deadline => {
                self.world.inner.record(EventKind::Retry {
                    message: index,
                    deferred: entry.pending.len(),
                    next,
                    reason: Arc::from(entry.last_reason.as_str()),
                });
                let _ = self.schedule(next, Task::Attempt(index));
            }
            _ if now >= deadline => self.expire(index, message, all),
            _ => {
                let _ = self.schedule(deadline, Task::Expire(index));
            }
        }
        Ok(())
    }

    /// The message reached the end of its lifetime: its pending recipients bounce.
    fn expire(&mut self, index: usize, message: &Message, all: &mut Vec<RecipientOutcome>) {
        if self.entries[index].done || self.entries[index].pending.is_empty() {
            return;
        }
        self.done(index);
        let entry = &mut self.entries[index];
        let pending = std::mem::take(&mut entry.pending);
        let reason = format!(
            "expired after {} in the queue; last error: {}",
            self.settings.lifetime, entry.last_reason
        );
        self.world.inner.record(EventKind::Expired {
            message: index,
            lifetime: self.settings.lifetime,
        });
        let now = self.now();
        for recipient in &pending {
            let outcome = RecipientOutcome {
                message: index,
                recipient: recipient.clone(),
                at: now,
                disposition: Disposition::Bounced {
                    reason: reason.clone(),
                    reply: None,
                },
            };
            self.settle(index, outcome, all);
        }
        self.dsn(index, message, DsnKind::Failure, Arc::from(pending));
    }

    fn settle(&mut self, index: usize, outcome: RecipientOutcome, all: &mut Vec<RecipientOutcome>) {
        self.world.inner.record_closing(EventKind::Outcome {
            message: index,
            recipient: outcome.recipient.clone(),
            disposition: outcome.disposition.clone(),
        });
        all.push(outcome);
    }

    /// A DSN to the sender, or a note that the null reverse-path gets none.
    fn dsn(&mut self, index: usize, message: &Message, kind: DsnKind, recipients: Arc<[Mailbox]>) {
        let event = if message.from.is_null() {
            EventKind::DsnSuppressed {
                message: index,
                kind,
            }
        } else {
            EventKind::Dsn {
                message: index,
                kind,
                to: message.from.clone(),
                recipients,
            }
        };
        self.world.inner.record_closing(event);
    }

    /// The horizon (or a spent budget) stops the run: running attempts are dropped, and every
    /// pending recipient is deferred.
    fn stop(
        &mut self,
        spent: Option<Budget>,
        attempts: &mut Vec<AttemptRecord>,
        all: &mut Vec<RecipientOutcome>,
    ) {
        // The running attempts end here: each gets its record, its recipients counted as
        // deferred (they are, below).
        let now = self.now();
        for active in &self.active {
            let deferred = self.entries[active.entry].pending.len() as u32;
            attempts.push(AttemptRecord {
                id: active.id,
                started: active.started,
                ended: now,
                delivered: 0,
                bounced: 0,
                deferred,
            });
        }
        self.drop_running();
        let queued = self
            .entries
            .iter()
            .filter(|entry| !entry.done && !entry.pending.is_empty())
            .count();
        let reason = match spent {
            Some(budget) => {
                let budgets = self.world.inner.budgets();
                let limit = match budget {
                    Budget::Events => budgets.events_max,
                    Budget::Connections => budgets.connections_max,
                };
                self.world
                    .inner
                    .record_closing(EventKind::BudgetSpent { budget, limit });
                format!(
                    "run stopped: its budget of {limit} {} is spent",
                    budget.unit()
                )
            }
            None => {
                let horizon = self.horizon.since_start();
                if queued > 0 {
                    self.world
                        .inner
                        .record_closing(EventKind::Horizon { horizon, queued });
                }
                format!("still queued at the {horizon} horizon")
            }
        };
        let now = self.now();
        for index in 0..self.entries.len() {
            if self.entries[index].done {
                continue;
            }
            self.done(index);
            let pending = std::mem::take(&mut self.entries[index].pending);
            for recipient in pending {
                let outcome = RecipientOutcome {
                    message: index,
                    recipient,
                    at: now,
                    disposition: Disposition::Deferred {
                        reason: reason.clone(),
                    },
                };
                self.settle(index, outcome, all);
            }
        }
    }
}

//! The simulated world: DNS from the scenario's zone, the network, and scripted SMTP servers,
//! all in virtual time. It implements the model's [`World`] and [`Session`] traits and records
//! every observable event in the trace.
//!
//! What a server answers, and when it closes, is decided by the model's pure state machine
//! ([`mxsim_model::script`]), which a live mode answers through too; this module carries the
//! requests there, sleeps the delays it asks for, keeps the give-up guards and records the trace.
//!
//! Waiting is `tokio::time::sleep` on a paused current-thread runtime, so a five-minute
//! greeting delay costs no real time. Something that never happens (a dropped SYN, a silent
//! server) is a future that stays pending; the client's own timeout drops it, and a guard in the
//! dropped future records that the client gave up.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use mxsim_model::dns::{DnsAnswer, RecordType};
use mxsim_model::name::{Mailbox, Name};
use mxsim_model::scenario::{ConnectMode, Scenario};
use mxsim_model::script::{Answer, ConnectAction, Conversation, Request, Script, ServerState};
use mxsim_model::smtp::{Command, Keyword, Reply};
use mxsim_model::time::{Duration, Instant};
use mxsim_model::trace::{Budget, Closer, Event, EventKind, Sent};
use mxsim_model::world::{
    Connect, EhloReply, Handshake, Hint, HintKey, MailParameters, OrderLabel, Pick, Response,
    ReuseKey, Reused, Session, World,
};

use crate::choice::Chooser;

/// A scenario made ready to simulate: its servers' script (which server listens where, and what
/// each answers) and the run's budgets.
pub struct Prepared {
    /// The scenario.
    pub scenario: Arc<Scenario>,
    /// The counted budgets of every run of this scenario.
    pub budgets: Budgets,
    /// The trace's first capacity: about what a run that delivers at the first host records
    /// (the queue and DNS lines, one session, three lines per recipient), so most runs neither
    /// grow their trace nor reserve far more than they use. Sized from the scenario alone:
    /// nothing is carried from one run to the next.
    events_capacity: usize,
    script: Script,
}

/// The counted budgets of one run (TIGER_STYLE: a limit on everything). Virtual time alone does
/// not bound a run: a policy that reconnects in a loop at zero virtual time never reaches the
/// 30-day limit. Each budget is sized from the scenario so that every honest policy fits with a
/// wide margin and a queue of thousands of messages fits too, while a runaway loop stops after
/// a few thousand events per message.
///
/// Per message with `r` recipients, in a world with `a` addresses and `n` DNS names:
/// - connection attempts: `r × (a + 1) × 4`: every address, for every recipient (one connection
///   per recipient is the most a policy opens), four times (plain, after a failed STARTTLS, with
///   HELO after a refused EHLO, and one spare);
/// - events: `16 + 2r + 24n` for the queue and DNS lines, plus 40 per connection attempt allowed
///   (a session is about 20 lines plus two per recipient in it).
///
/// In a queue scenario both are multiplied by the attempts the policy's retry schedule allows
/// within its lifetime ([`Budgets::times`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    /// Trace events a run may record.
    pub events_max: u64,
    /// Connection attempts a run may make.
    pub connections_max: u64,
}

/// The most events a trace reserves before its first event ([`Prepared`]'s `events_capacity`);
/// a longer run grows its trace as it goes.
const EVENTS_CAPACITY_MAX: u64 = 1 << 16;

/// The trace capacity of a run of `scenario` under `budgets`: per message the queue lines
/// and a session's (16) and three per recipient (RCPT, its reply, its outcome); then two per
/// DNS name (its lookups) and two per address record (a connection that fails).
fn events_capacity(scenario: &Scenario, budgets: Budgets) -> usize {
    let names = scenario.zone.names.len() as u64;
    let addresses = address_records(&scenario.zone);
    let wanted = scenario
        .messages
        .iter()
        .map(|message| EVENTS_PER_MESSAGE + 3 * message.to.len() as u64)
        .fold(2 * (names + addresses), u64::saturating_add);
    wanted.min(budgets.events_max).min(EVENTS_CAPACITY_MAX) as usize
}

/// Allowances behind [`Budgets`]; see its documentation.
const CONNECTIONS_PER_ADDRESS: u64 = 4;
const EVENTS_PER_CONNECTION: u64 = 40;
const EVENTS_PER_NAME: u64 = 24;
const EVENTS_PER_MESSAGE: u64 = 16;

/// How many A and AAAA records the zone holds, windows included: an upper bound on the
/// addresses a policy can learn from DNS.
fn address_records(zone: &mxsim_model::scenario::Zone) -> u64 {
    use mxsim_model::scenario::{RecordSet, RecordSets, ZoneName};
    fn count(sets: &RecordSets) -> u64 {
        [&sets.a, &sets.aaaa]
            .into_iter()
            .map(|set| match set {
                Some(RecordSet::Records(records)) => records.len() as u64,
                _ => 0,
            })
            .sum()
    }
    zone.names
        .values()
        .map(|name| match name {
            ZoneName::NxDomain => 0,
            ZoneName::Records(records) => {
                count(&records.base)
                    + records
                        .during
                        .iter()
                        .map(|window| count(&window.patch))
                        .sum::<u64>()
            }
        })
        .sum()
}

impl Budgets {
    /// The same budgets for a queue that may attempt each message `attempts` times.
    pub fn times(self, attempts: u32) -> Budgets {
        Budgets {
            events_max: self.events_max.saturating_mul(u64::from(attempts)),
            connections_max: self.connections_max.saturating_mul(u64::from(attempts)),
        }
    }

    /// The budgets of a run of `scenario`.
    pub fn of(scenario: &Scenario) -> Budgets {
        let names = scenario.zone.names.len() as u64;
        let addresses = address_records(&scenario.zone)
            + scenario
                .servers
                .iter()
                .map(|server| server.addresses.len() as u64)
                .sum::<u64>();
        let mut budgets = Budgets {
            events_max: 0,
            connections_max: 0,
        };
        for message in &scenario.messages {
            let recipients = message.to.len() as u64;
            let connections = recipients
                .saturating_mul(addresses + 1)
                .saturating_mul(CONNECTIONS_PER_ADDRESS);
            let events = (EVENTS_PER_MESSAGE + 2 * recipients)
                .saturating_add(names.saturating_mul(EVENTS_PER_NAME))
                .saturating_add(connections.saturating_mul(EVENTS_PER_CONNECTION));
            budgets.connections_max = budgets.connections_max.saturating_add(connections);
            budgets.events_max = budgets.events_max.saturating_add(events);
        }
        budgets
    }
}

impl Prepared {
    /// Indexes a loaded scenario. A server keyed by address wins over one keyed by name.
    pub fn new(scenario: Arc<Scenario>) -> Prepared {
        let budgets = Budgets::of(&scenario);
        Prepared {
            events_capacity: events_capacity(&scenario, budgets),
            budgets,
            script: Script::new(scenario.clone()),
            scenario,
        }
    }

    /// What the scenario's servers answer: the world asks it for every decision a server makes.
    pub fn script(&self) -> &Script {
        &self.script
    }
}

/// Per-connection state the world keeps: the network's side of it (open until either side
/// closes it, abandoned once the client gave up waiting on it) and the server's
/// [`Conversation`].
struct Connection {
    address: IpAddr,
    host: Name,
    open: bool,
    abandoned: bool,
    conversation: Conversation,
}

/// A connection in the client's cache: its id, the keywords in force on it, and the time
/// after which it is not reused.
type Cached = (usize, Arc<[Keyword]>, Instant);

/// Mutable state of one run.
pub(crate) struct State {
    pub(crate) events: Vec<Event>,
    pub(crate) chooser: Chooser,
    connections: Vec<Connection>,
    /// Set by the runner when the run limit stops the policy: dropped waits are then the
    /// harness stopping, not the client giving up.
    pub(crate) stopped: bool,
    /// The budget that ran out, if one did. From then on every world call stays pending, so the
    /// policy's future yields and the runner stops the run.
    pub(crate) spent: Option<Budget>,
    budgets: Budgets,
    n_connects: u64,
    /// The servers' memory across connections and messages (greylisting triplets).
    servers: ServerState,
    /// The client's hints (retry records), kept for the whole run.
    hints: BTreeMap<HintKey, Hint>,
    /// The client's connection cache: open connections kept for reuse, with their keywords and
    /// the time after which they are not reused, oldest first.
    parked: BTreeMap<ReuseKey, Vec<Cached>>,
    /// The recipient domains with an attempt in flight (`World::join`), in the order they began.
    relays: Vec<Relay>,
    /// The next ticket handed to an attempt that joins a domain.
    tickets: u64,
    /// The recipient domains with an attempt counted busy by an on-demand connection cache
    /// (`World::dispatch`), in the order their in-core queue began.
    destinations: Vec<Destination>,
    /// The attempt whose future is being polled, in a queue run: its events carry it.
    pub(crate) attempt: Option<mxsim_model::trace::AttemptId>,
}

impl State {
    /// A state with nothing in it, left behind when a finished run's state is taken out.
    pub(crate) fn empty() -> State {
        let budgets = Budgets {
            events_max: 0,
            connections_max: 0,
        };
        State::new(
            Chooser::new(&crate::choice::Choices::Forced(Vec::new())),
            budgets,
            0,
        )
    }

    /// The state of a fresh run.
    fn new(chooser: Chooser, budgets: Budgets, events_capacity: usize) -> State {
        State {
            events: Vec::with_capacity(events_capacity),
            chooser,
            connections: Vec::new(),
            stopped: false,
            spent: None,
            budgets,
            n_connects: 0,
            servers: ServerState::default(),
            hints: BTreeMap::new(),
            parked: BTreeMap::new(),
            relays: Vec::new(),
            tickets: 0,
            destinations: Vec::new(),
            attempt: None,
        }
    }
}

/// A recipient domain with an attempt in flight: the attempt that holds it and those that joined
/// it, first come, first served.
struct Relay {
    domain: Name,
    /// The ticket of the attempt in flight.
    holder: u64,
    /// Its message.
    leader: usize,
    /// The attempts waiting for it: ticket, message, and the waker of their last poll.
    waiting: Vec<(u64, usize, Waker)>,
}

impl State {
    /// Ends the attempt holding `ticket` for `domain`: the first waiting attempt takes over, and
    /// its waker is returned to be woken once the state is no longer borrowed.
    fn release(&mut self, domain: &Name, ticket: u64) -> Option<Waker> {
        let index = self
            .relays
            .iter()
            .position(|relay| relay.domain == *domain)?;
        let relay = &mut self.relays[index];
        if relay.holder != ticket {
            // Still waiting: it leaves the line.
            relay.waiting.retain(|(waiting, _, _)| *waiting != ticket);
            return None;
        }
        if relay.waiting.is_empty() {
            self.relays.remove(index);
            return None;
        }
        let (next, message, waker) = relay.waiting.remove(0);
        relay.holder = next;
        relay.leader = message;
        Some(waker)
    }
}

/// A recipient domain's in-core queue for an on-demand connection cache (Postfix's `QMGR_QUEUE`:
/// `busy_refcount`, `last_done`, `dflags`), kept while an attempt for it is busy.
struct Destination {
    domain: Name,
    /// The attempts busy.
    busy: usize,
    /// When the last attempt ended, if one did while the queue lived.
    last_done: Option<Instant>,
    /// Whether attempts may take cached sessions and park their own.
    caching: bool,
}

/// How long after an attempt ended the next one counts as back-to-back (qmgr_entry.c
/// `BACK_TO_BACK_DELIVERY`: `queue->last_done + 1 >= event_time()`, in seconds).
const BACK_TO_BACK: Duration = Duration::seconds(1);

impl State {
    /// An attempt for `domain` starts (qmgr_entry.c `qmgr_entry_select`): whether caching is on
    /// for it. Postfix also turns parking off for an attempt that starts neither back-to-back
    /// nor beside another busy one; here the queue lives only while an attempt is busy (there
    /// are no attempts queued but not started), so that never happens.
    fn dispatch(&mut self, domain: &Name, now: Instant) -> bool {
        let index = match self
            .destinations
            .iter()
            .position(|destination| destination.domain == *domain)
        {
            Some(index) => index,
            None => {
                self.destinations.push(Destination {
                    domain: domain.clone(),
                    busy: 0,
                    last_done: None,
                    caching: false,
                });
                self.destinations.len() - 1
            }
        };
        let destination = &mut self.destinations[index];
        destination.busy += 1;
        if destination
            .last_done
            .is_some_and(|done| now <= done.after(BACK_TO_BACK))
        {
            destination.caching = true;
        }
        destination.caching
    }

    /// An attempt for `domain` ends (qmgr_entry.c `qmgr_entry_done`): the queue notes when, and
    /// is forgotten when no attempt for it is busy any more (qmgr_queue.c `qmgr_queue_done`).
    fn done(&mut self, domain: &Name, now: Instant) {
        let Some(index) = self
            .destinations
            .iter()
            .position(|destination| destination.domain == *domain)
        else {
            return;
        };
        let destination = &mut self.destinations[index];
        destination.busy -= 1;
        destination.last_done = Some(now);
        if destination.busy == 0 {
            self.destinations.remove(index);
        }
    }
}

/// An attempt for a recipient domain counted busy by an on-demand connection cache
/// (`World::dispatch`); dropping it ends the attempt.
pub struct Busy {
    world: SimWorld,
    domain: Name,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let inner = &*self.world.inner;
        let now = inner.now();
        inner.state.borrow_mut().done(&self.domain, now);
    }
}

/// A recipient domain's attempt in flight (`World::join`); dropping it ends the attempt, and
/// the next attempt that joined it goes on.
pub struct InFlight {
    world: SimWorld,
    domain: Name,
    ticket: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let next = self
            .world
            .inner
            .state
            .borrow_mut()
            .release(&self.domain, self.ticket);
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

/// The future of `World::join`: takes a ticket at its first poll, and is ready when its ticket
/// holds the domain. Dropped while waiting, it leaves the line (or hands the domain on).
struct Joining {
    world: SimWorld,
    domain: Name,
    message: usize,
    ticket: Option<u64>,
    done: bool,
}

impl Future for Joining {
    type Output = InFlight;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<InFlight> {
        let this = &mut *self;
        let inner = &*this.world.inner;
        let mut state = inner.state.borrow_mut();
        let ticket = match this.ticket {
            Some(ticket) => ticket,
            None => {
                let ticket = state.tickets;
                state.tickets += 1;
                this.ticket = Some(ticket);
                let relay = state
                    .relays
                    .iter_mut()
                    .find(|relay| relay.domain == this.domain);
                match relay {
                    None => {
                        state.relays.push(Relay {
                            domain: this.domain.clone(),
                            holder: ticket,
                            leader: this.message,
                            waiting: Vec::new(),
                        });
                    }
                    Some(relay) => {
                        let leader = relay.leader;
                        relay
                            .waiting
                            .push((ticket, this.message, context.waker().clone()));
                        drop(state);
                        inner.record(EventKind::Joined {
                            message: this.message,
                            domain: this.domain.clone(),
                            leader,
                        });
                        return std::task::Poll::Pending;
                    }
                }
                ticket
            }
        };
        let Some(relay) = state
            .relays
            .iter_mut()
            .find(|relay| relay.domain == this.domain)
        else {
            unreachable!("a domain with a ticket waiting has an attempt in flight");
        };
        if relay.holder != ticket {
            if let Some(entry) = relay.waiting.iter_mut().find(|entry| entry.0 == ticket) {
                entry.2.clone_from(context.waker());
            }
            return std::task::Poll::Pending;
        }
        drop(state);
        this.done = true;
        std::task::Poll::Ready(InFlight {
            world: this.world.clone(),
            domain: this.domain.clone(),
            ticket,
        })
    }
}

impl Drop for Joining {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Some(ticket) = self.ticket else {
            return;
        };
        let next = self
            .world
            .inner
            .state
            .borrow_mut()
            .release(&self.domain, ticket);
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

pub(crate) struct Inner {
    pub(crate) prepared: Arc<Prepared>,
    origin: tokio::time::Instant,
    pub(crate) state: RefCell<State>,
    /// tokio's clock during the poll in progress, read once. The paused clock moves only while
    /// the runtime parks, between two polls of the run's future, never during one; so one read
    /// serves every event, `now` and timeout of a poll. `None` outside a poll.
    /// Kept with the virtual time it gives, so that is computed once too.
    clock: std::cell::Cell<Option<(tokio::time::Instant, Instant)>>,
    /// Set while the runner polls the run's future ([`SimWorld::polled`]).
    polling: std::cell::Cell<bool>,
}

impl Inner {
    fn now(&self) -> Instant {
        self.clock().1
    }

    /// tokio's paused clock and the virtual time it gives, read at most once per poll.
    pub(crate) fn clock(&self) -> (tokio::time::Instant, Instant) {
        if let Some(now) = self.clock.get() {
            // The assumption the cache rests on, checked wherever debug assertions are on (every
            // test run): tokio's clock has not moved since the poll read it.
            debug_assert_eq!(now.0, tokio::time::Instant::now());
            return now;
        }
        let tokio_now = tokio::time::Instant::now();
        let now = (
            tokio_now,
            Instant(tokio_now.duration_since(self.origin).as_millis() as u64),
        );
        if self.polling.get() {
            self.clock.set(Some(now));
        }
        now
    }

    /// Records an event the world observed, within the events budget. The event that would
    /// overflow the budget is not recorded: it marks the budget spent instead.
    pub(crate) fn record(&self, kind: EventKind) {
        let at = self.now();
        let mut state = self.state.borrow_mut();
        if state.spent.is_some() {
            return;
        }
        if state.events.len() as u64 >= state.budgets.events_max {
            state.spent = Some(Budget::Events);
            return;
        }
        let attempt = state.attempt;
        state.events.push(Event { at, attempt, kind });
    }

    /// Records one of the runner's own closing lines (outcomes, limits): outside every budget,
    /// since they are bounded by the scenario's recipients.
    pub(crate) fn record_closing(&self, kind: EventKind) {
        let at = self.now();
        self.state.borrow_mut().events.push(Event {
            at,
            attempt: None,
            kind,
        });
    }

    /// The budgets of this run.
    pub(crate) fn budgets(&self) -> Budgets {
        self.state.borrow().budgets
    }

    /// The budget that ran out, if any.
    pub(crate) fn spent(&self) -> Option<Budget> {
        self.state.borrow().spent
    }

    /// Stays pending once a budget is spent: the policy then yields, and the runner ends the run.
    async fn within_budget(&self) {
        if self.spent().is_some() {
            std::future::pending::<()>().await;
        }
    }
}

/// The world of one run. Cheap to clone: sessions hold a handle to it.
#[derive(Clone)]
pub struct SimWorld {
    pub(crate) inner: Rc<Inner>,
}

impl SimWorld {
    /// Closes the connections in the client's cache whose time has run out (all of them with
    /// `everything`, when the run is over).
    pub(crate) fn close_parked(&self, everything: bool) {
        let now = self.inner.now();
        let mut closing = Vec::new();
        {
            let mut state = self.inner.state.borrow_mut();
            for entries in state.parked.values_mut() {
                entries.retain(|(id, _, until)| {
                    // Reusable up to and including `until`, closed right after it.
                    let expired = everything || *until < now;
                    if expired {
                        closing.push(*id);
                    }
                    !expired
                });
            }
            state.parked.retain(|_, entries| !entries.is_empty());
        }
        for id in closing {
            drop(SimSession {
                world: self.clone(),
                id,
                parked: false,
            });
        }
    }

    /// When the next cached connection runs out of time (a millisecond after its `until`), if
    /// any is cached.
    pub(crate) fn next_parked_expiry(&self) -> Option<Instant> {
        let state = self.inner.state.borrow();
        state
            .parked
            .values()
            .flatten()
            .map(|(_, _, until)| until.after(mxsim_model::time::Duration(1)))
            .min()
    }

    /// Polls `future` with the world's clock read at most once per poll (see `Inner::clock`):
    /// the runner wraps the whole run in it.
    pub(crate) async fn polled<F: Future>(&self, future: F) -> F::Output {
        let inner = &*self.inner;
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|context| {
            inner.clock.set(None);
            inner.polling.set(true);
            let polled = future.as_mut().poll(context);
            inner.polling.set(false);
            inner.clock.set(None);
            polled
        })
        .await
    }

    /// A fresh world whose virtual clock starts now.
    pub(crate) fn new(prepared: Arc<Prepared>, chooser: Chooser, budgets: Budgets) -> SimWorld {
        let state = State::new(chooser, budgets, prepared.events_capacity);
        SimWorld {
            inner: Rc::new(Inner {
                prepared,
                origin: tokio::time::Instant::now(),
                state: RefCell::new(state),
                clock: std::cell::Cell::new(None),
                polling: std::cell::Cell::new(false),
            }),
        }
    }
}

/// Records that the client stopped waiting, if the future holding it is dropped unfinished.
struct GiveUpGuard<'a> {
    inner: &'a Inner,
    since: Instant,
    what: Waiting,
    armed: bool,
}

enum Waiting {
    Dns(Name, RecordType),
    Connect(IpAddr),
    Reply(usize, Command),
    Handshake(usize),
}

impl GiveUpGuard<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for GiveUpGuard<'_> {
    fn drop(&mut self) {
        // At the run limit the runner drops the policy's future: that is the harness stopping,
        // not the client giving up, and the trace says so in its own `limit` line.
        if !self.armed || self.inner.state.borrow().stopped {
            return;
        }
        let waited = self.inner.now().since(self.since);
        let kind = match &self.what {
            Waiting::Dns(name, record_type) => EventKind::DnsGaveUp {
                name: name.clone(),
                record_type: *record_type,
                waited,
            },
            Waiting::Connect(address) => EventKind::ConnectGaveUp {
                address: *address,
                waited,
            },
            Waiting::Handshake(connection) => {
                let mut state = self.inner.state.borrow_mut();
                let connection = &mut state.connections[*connection];
                connection.abandoned = true;
                let address = connection.address;
                drop(state);
                EventKind::HandshakeGaveUp { address, waited }
            }
            Waiting::Reply(connection, command) => {
                let mut state = self.inner.state.borrow_mut();
                let connection = &mut state.connections[*connection];
                connection.abandoned = true;
                let address = connection.address;
                drop(state);
                EventKind::ReplyGaveUp {
                    address,
                    command: *command,
                    waited,
                }
            }
        };
        self.inner.record(kind);
    }
}

async fn sleep(duration: Duration) {
    if duration > Duration::ZERO {
        tokio::time::sleep(duration.to_std()).await;
    }
}

pin_project_lite::pin_project! {
    /// A future under a time limit ([`World::timeout`]): polled first, like
    /// `tokio::time::timeout`, and given a tokio timer only once it has been pending. Most of
    /// the world's answers are ready at once, and then no timer is made at all.
    struct Limited<F> {
        #[pin]
        future: F,
        deadline: tokio::time::Instant,
        #[pin]
        timer: Option<tokio::time::Sleep>,
    }
}

impl<F: Future> Future for Limited<F> {
    type Output = Option<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let mut this = self.project();
        if let std::task::Poll::Ready(output) = this.future.poll(context) {
            return std::task::Poll::Ready(Some(output));
        }
        if this.timer.is_none() {
            this.timer
                .set(Some(tokio::time::sleep_until(*this.deadline)));
        }
        match this.timer.as_pin_mut() {
            Some(timer) => timer.poll(context).map(|()| None),
            None => std::task::Poll::Pending,
        }
    }
}

/// The deadline of a limit too far to add to the clock: what `tokio::time::timeout` takes then
/// (about 30 years).
const FAR_FUTURE: std::time::Duration = std::time::Duration::from_secs(86_400 * 365 * 30);

impl World for SimWorld {
    type Session = SimSession;
    type InFlight = InFlight;
    type Busy = Busy;

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn timeout<F: Future>(
        &self,
        limit: Duration,
        future: F,
    ) -> impl Future<Output = Option<F::Output>> {
        // The deadline is fixed now, as `tokio::time::timeout` fixes it.
        let (now, _) = self.inner.clock();
        Limited {
            future,
            deadline: now
                .checked_add(limit.to_std())
                .unwrap_or_else(|| now + FAR_FUTURE),
            timer: None,
        }
    }

    fn lookup(&self, name: &Name, record_type: RecordType) -> impl Future<Output = DnsAnswer> {
        let inner = &*self.inner;
        async move {
            inner.within_budget().await;
            let since = inner.now();
            let guard = GiveUpGuard {
                inner,
                since,
                what: Waiting::Dns(name.clone(), record_type),
                armed: true,
            };
            let (answer, latency) = inner
                .prepared
                .scenario
                .zone
                .answer(name, record_type, since);
            if answer == DnsAnswer::Timeout {
                std::future::pending::<()>().await;
            }
            sleep(latency).await;
            guard.disarm();
            inner.record(EventKind::Dns {
                name: name.clone(),
                record_type,
                answer: answer.clone(),
            });
            answer
        }
    }

    fn connect(&self, address: IpAddr, host: &Name) -> impl Future<Output = Connect<SimSession>> {
        let world = self.clone();
        let host = host.clone();
        async move {
            let inner = &*world.inner;
            inner.within_budget().await;
            {
                let mut state = inner.state.borrow_mut();
                if state.n_connects >= state.budgets.connections_max {
                    state.spent = Some(Budget::Connections);
                }
                state.n_connects += 1;
            }
            inner.within_budget().await;
            inner.record(EventKind::Connecting {
                address,
                host: host.clone(),
            });
            let since = inner.now();
            let script = &inner.prepared.script;
            let Some(index) = script.server_at(address) else {
                // Nothing listens on port 25 at an address no server entry covers.
                inner.record(EventKind::Refused { address });
                return Connect::Refused;
            };
            let ConnectAction { mode, latency } = script.connect(index, since);
            let guard = GiveUpGuard {
                inner,
                since,
                what: Waiting::Connect(address),
                armed: true,
            };
            if mode == ConnectMode::Timeout {
                std::future::pending::<()>().await;
            }
            sleep(latency).await;
            guard.disarm();
            match mode {
                ConnectMode::Refuse => {
                    inner.record(EventKind::Refused { address });
                    Connect::Refused
                }
                ConnectMode::Reset => {
                    inner.record(EventKind::Reset { address });
                    Connect::Reset
                }
                _ => {
                    inner.record(EventKind::Connected { address });
                    let now = inner.now();
                    let client = script.scenario().client.addresses.first().copied();
                    let conversation = Conversation::open(script, index, client, now);
                    let mut state = inner.state.borrow_mut();
                    let id = state.connections.len();
                    state.connections.push(Connection {
                        address,
                        host,
                        open: true,
                        abandoned: false,
                        conversation,
                    });
                    drop(state);
                    Connect::Connected(SimSession {
                        world: world.clone(),
                        id,
                        parked: false,
                    })
                }
            }
        }
    }

    fn hint(&self, key: &HintKey) -> Option<Hint> {
        self.inner.state.borrow().hints.get(key).cloned()
    }

    fn set_hint(&self, key: HintKey, hint: Option<Hint>) {
        let mut state = self.inner.state.borrow_mut();
        let kind = match hint {
            Some(hint) => {
                let kind = EventKind::HintSet {
                    key: key.clone(),
                    until: hint.until,
                    reason: hint.reason.clone(),
                };
                state.hints.insert(key, hint);
                kind
            }
            None => {
                if state.hints.remove(&key).is_none() {
                    return;
                }
                EventKind::HintCleared { key }
            }
        };
        drop(state);
        self.inner.record(kind);
    }

    fn consult(&self, key: &HintKey) -> Option<Hint> {
        let hint = self
            .hint(key)
            .filter(|hint| hint.until > self.inner.now())?;
        self.inner.record(EventKind::HintHeld {
            key: key.clone(),
            until: hint.until,
            reason: hint.reason.clone(),
        });
        Some(hint)
    }

    fn park(
        &self,
        key: ReuseKey,
        mut session: SimSession,
        keywords: Arc<[Keyword]>,
        keep: Duration,
    ) {
        let inner = &*self.inner;
        let until = inner.now().after(keep);
        let mut state = inner.state.borrow_mut();
        let connection = &state.connections[session.id];
        if !connection.open || connection.abandoned {
            return;
        }
        let address = connection.address;
        state
            .parked
            .entry(key)
            .or_default()
            .push((session.id, keywords, until));
        drop(state);
        session.parked = true;
        inner.record(EventKind::Parked { address, until });
    }

    fn reuse(&self, key: &ReuseKey) -> Option<Reused<SimSession>> {
        let inner = &*self.inner;
        let now = inner.now();
        // Bounded by the connections parked under the key: each is taken out once.
        loop {
            let mut state = inner.state.borrow_mut();
            let entries = state.parked.get_mut(key)?;
            if entries.is_empty() {
                return None;
            }
            let (id, keywords, until) = entries.remove(0);
            let connection = &state.connections[id];
            let (open, address, host) =
                (connection.open, connection.address, connection.host.clone());
            drop(state);
            let session = SimSession {
                world: self.clone(),
                id,
                parked: false,
            };
            if !open || until < now {
                // Past its time (or closed by the server meanwhile): the client closes it.
                drop(session);
                continue;
            }
            inner.record(EventKind::Reused {
                address,
                host: host.clone(),
            });
            return Some(Reused {
                session,
                keywords,
                host,
                address,
            });
        }
    }

    fn join(&self, domain: &Name, message: usize) -> impl Future<Output = InFlight> {
        Joining {
            world: self.clone(),
            domain: domain.clone(),
            message,
            ticket: None,
            done: false,
        }
    }

    fn dispatch(&self, domain: &Name) -> (Busy, bool) {
        let inner = &*self.inner;
        let now = inner.now();
        let caching = inner.state.borrow_mut().dispatch(domain, now);
        let busy = Busy {
            world: self.clone(),
            domain: domain.clone(),
        };
        (busy, caching)
    }

    fn shuffle<T: Clone + Into<Pick>>(&self, label: OrderLabel, items: &mut [T]) {
        if items.len() < 2 {
            return;
        }
        self.inner.state.borrow_mut().chooser.shuffle(items);
        let order = items.iter().cloned().map(Into::into).collect();
        self.inner.record(EventKind::Shuffled { label, order });
    }
}

/// One simulated SMTP connection. Dropping it closes the connection from the client's side,
/// unless the client parked it in its connection cache.
pub struct SimSession {
    world: SimWorld,
    id: usize,
    parked: bool,
}

impl SimSession {
    fn inner(&self) -> &Inner {
        &self.world.inner
    }

    fn usable(&self) -> bool {
        let state = self.inner().state.borrow();
        let connection = &state.connections[self.id];
        connection.open && !connection.abandoned
    }

    /// Closes the connection if the server's idle timer ran out before `now`.
    fn check_idle(&self, now: Instant) {
        let inner = self.inner();
        let mut state = inner.state.borrow_mut();
        let connection = &mut state.connections[self.id];
        if connection.open
            && connection
                .conversation
                .idle_expired(&inner.prepared.script, now)
        {
            connection.open = false;
            let address = connection.address;
            drop(state);
            inner.record(EventKind::Closed {
                address,
                by: Closer::ServerIdle,
            });
        }
    }

    /// One exchange: send `request`, wait the server's delay, and answer as the script says.
    /// The reply comes with the keywords of an EHLO reply.
    async fn exchange(&mut self, request: Request) -> Response<(Reply, Option<Arc<[Keyword]>>)> {
        let inner = &*self.world.inner;
        inner.within_budget().await;
        let now = inner.now();
        self.check_idle(now);
        if !self.usable() {
            return Response::Closed;
        }
        let command = request
            .command()
            .expect("the client sends only commands the script names");
        let (address, action) = {
            let mut state = inner.state.borrow_mut();
            let State {
                connections,
                servers,
                ..
            } = &mut *state;
            let connection = &mut connections[self.id];
            let action =
                connection
                    .conversation
                    .step(&inner.prepared.script, servers, &request, now);
            (connection.address, action)
        };
        if let Some(sent) = sent(request) {
            inner.record(EventKind::Sent {
                address,
                command: sent,
            });
        }
        let guard = GiveUpGuard {
            inner,
            since: now,
            what: Waiting::Reply(self.id, command),
            armed: true,
        };
        sleep(action.delay).await;
        if let Some(accepted) = action.accepted {
            let host = inner.state.borrow().connections[self.id].host.clone();
            inner.record(EventKind::Accepted {
                address,
                host,
                message: accepted.message,
                recipients: accepted.recipients,
                reply_lost: accepted.reply_lost,
            });
        }
        let reply = match action.answer {
            Answer::Reply(reply) => reply,
            Answer::Silent {
                idle_timeout: Some(idle),
            } => {
                sleep(idle).await;
                guard.disarm();
                self.close(Closer::ServerIdle);
                return Response::Closed;
            }
            Answer::Silent { idle_timeout: None } => std::future::pending().await,
        };
        guard.disarm();
        inner.record(EventKind::Replied {
            address,
            reply: reply.clone(),
            keywords: action.keywords.clone(),
        });
        if let Some(by) = action.close {
            self.close(by);
        }
        Response::Reply((reply, action.keywords))
    }

    /// An exchange whose reply carries no keywords.
    async fn command(&mut self, request: Request) -> Response {
        match self.exchange(request).await {
            Response::Reply((reply, _)) => Response::Reply(reply),
            Response::Closed => Response::Closed,
        }
    }

    fn close(&mut self, by: Closer) {
        let inner = self.inner();
        let mut state = inner.state.borrow_mut();
        let connection = &mut state.connections[self.id];
        if !connection.open {
            return;
        }
        connection.open = false;
        connection.conversation.close();
        let address = connection.address;
        drop(state);
        inner.record(EventKind::Closed { address, by });
    }
}

/// What the trace shows the client sending for `request`.
fn sent(request: Request) -> Option<Sent> {
    Some(match request {
        Request::Ehlo(name) => Sent::Ehlo(name),
        Request::Helo(name) => Sent::Helo(name),
        Request::Starttls => Sent::Starttls,
        Request::Mail(from, parameters) => Sent::Mail(from, parameters),
        Request::Rcpt(to) => Sent::Rcpt(to),
        Request::Data => Sent::Data,
        Request::EndOfData { message } => Sent::EndOfData(message),
        Request::Rset => Sent::Rset,
        Request::Quit => Sent::Quit,
        Request::Greeting | Request::Handshake | Request::Noop | Request::Unknown(_) => {
            return None;
        }
    })
}

impl Drop for SimSession {
    fn drop(&mut self) {
        if !self.parked {
            self.close(Closer::Client);
        }
    }
}

impl Session for SimSession {
    async fn greeting(&mut self) -> Response {
        self.command(Request::Greeting).await
    }

    async fn ehlo(&mut self, name: &Name) -> Response<EhloReply> {
        match self.exchange(Request::Ehlo(name.clone())).await {
            Response::Reply((reply, keywords)) => Response::Reply(EhloReply {
                reply,
                keywords: keywords.unwrap_or_else(|| Arc::from([])),
            }),
            Response::Closed => Response::Closed,
        }
    }

    async fn helo(&mut self, name: &Name) -> Response {
        self.command(Request::Helo(name.clone())).await
    }

    async fn starttls(&mut self) -> Response {
        self.command(Request::Starttls).await
    }

    async fn handshake(&mut self) -> Handshake {
        self.inner().within_budget().await;
        let now = self.inner().now();
        if !self.usable() {
            return Handshake::Failed;
        }
        let inner = self.inner();
        let (address, action) = {
            let mut state = inner.state.borrow_mut();
            let State {
                connections,
                servers,
                ..
            } = &mut *state;
            let connection = &mut connections[self.id];
            let action = connection.conversation.step(
                &inner.prepared.script,
                servers,
                &Request::Handshake,
                now,
            );
            (connection.address, action)
        };
        let guard = GiveUpGuard {
            inner,
            since: now,
            what: Waiting::Handshake(self.id),
            armed: true,
        };
        sleep(action.delay).await;
        guard.disarm();
        if let Some(by) = action.close {
            inner.record(EventKind::TlsFailed { address });
            self.close(by);
            return Handshake::Failed;
        }
        inner.record(EventKind::TlsEstablished { address });
        Handshake::Established
    }

    async fn mail(&mut self, from: &Mailbox, parameters: &MailParameters) -> Response {
        self.command(Request::Mail(from.clone(), parameters.clone()))
            .await
    }

    async fn rcpt(&mut self, to: &Mailbox) -> Response {
        self.command(Request::Rcpt(to.clone())).await
    }

    async fn data(&mut self) -> Response {
        self.command(Request::Data).await
    }

    async fn end_of_data(&mut self, message: usize) -> Response {
        self.command(Request::EndOfData { message }).await
    }

    async fn rset(&mut self) -> Response {
        self.command(Request::Rset).await
    }

    async fn quit(&mut self) -> Response {
        self.command(Request::Quit).await
    }
}

#[cfg(test)]
mod tests;

//! The trace of a live run, recorded as things happen: the listeners' and the DNS server's
//! events, the MTA's own lines for what no listener sees (a refused or timed-out connection),
//! and the MTA's verdict per recipient.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use mxsim_model::name::Name;
use mxsim_model::outcome::RecipientOutcome;
use mxsim_model::scenario::{Scenario, ZoneName};
use mxsim_model::time::Instant;
use mxsim_model::trace::{Event, EventKind, Trace};

use crate::clock::Clock;

/// Shared by the DNS server, the listeners and the driver's log reader.
#[derive(Clone)]
pub struct Recorder {
    clock: Arc<Mutex<Clock>>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    /// An empty trace on `clock`.
    pub fn new(clock: Clock) -> Recorder {
        Recorder {
            clock: Arc::new(Mutex::new(clock)),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The clock.
    pub fn clock(&self) -> Clock {
        *self.clock.lock().expect("no recorder user panics")
    }

    /// Starts scenario time again from now, and forgets what was recorded before: the MTA
    /// has started, and time zero is the moment before the first submission.
    pub fn restart(&self) {
        let scale = self.clock().scale();
        *self.clock.lock().expect("no recorder user panics") = Clock::start(scale);
        self.events.lock().expect("no recorder user panics").clear();
    }

    /// Records `kind` now.
    pub fn record(&self, kind: EventKind) {
        self.record_at(self.clock().now(), kind);
    }

    /// Records `kind` at `at` (an MTA's line that reports something that began earlier).
    pub fn record_at(&self, at: Instant, kind: EventKind) {
        let mut events = self.events.lock().expect("no recorder user panics");
        events.push(Event {
            at,
            attempt: None,
            kind,
        });
    }

    /// Records a connection attempt the MTA's log reports and no listener saw, read at `now`
    /// with the previous read at `since`: the line was written in between. If a listener saw a
    /// connection begin in that window, the attempt the line reports came first (an MTA tries
    /// one address after another), so its events go just before that connection; else at
    /// `now`. `began` dates the attempt's start when it is known (a timeout's length before).
    pub fn record_reported(
        &self,
        since: Instant,
        now: Instant,
        began: Option<Instant>,
        start: EventKind,
        end: EventKind,
    ) {
        let mut events = self.events.lock().expect("no recorder user panics");
        let next = events
            .iter()
            .filter(|event| event.at > since && matches!(event.kind, EventKind::Connecting { .. }))
            .map(|event| event.at)
            .min();
        let at = match next {
            Some(next) => Instant(next.0.saturating_sub(1).max(since.0)),
            None => now,
        };
        let began = began.map_or(at, |began| began.min(at));
        events.push(Event {
            at: began,
            attempt: None,
            kind: start,
        });
        events.push(Event {
            at,
            attempt: None,
            kind: end,
        });
    }

    /// The trace so far, in time order (events recorded at the same time keep their order).
    pub fn trace(&self) -> Trace {
        let mut events = self.events.lock().expect("no recorder user panics").clone();
        events.sort_by_key(|event| event.at);
        Trace { events }
    }

    /// Records the verdicts as outcome events, at their times.
    pub fn outcomes(&self, outcomes: &[RecipientOutcome]) {
        for outcome in outcomes {
            self.record_at(
                outcome.at,
                EventKind::Outcome {
                    message: outcome.message,
                    recipient: outcome.recipient.clone(),
                    disposition: outcome.disposition.clone(),
                },
            );
        }
    }
}

/// The host name a listener at `address` stands for: the first MX target (in zone order) with
/// `address` among its address records, else any name with it, else the server's own name.
pub fn host_at(scenario: &Scenario, address: IpAddr) -> Option<Name> {
    let has = |name: &Name| match scenario.zone.names.get(name) {
        Some(ZoneName::Records(records)) => {
            let sets = std::iter::once(&records.base)
                .chain(records.during.iter().map(|window| &window.patch));
            sets.flat_map(|sets| [sets.a.as_ref(), sets.aaaa.as_ref()])
                .flatten()
                .any(|set| match set {
                    mxsim_model::scenario::RecordSet::Records(addresses) => {
                        addresses.contains(&address)
                    }
                    mxsim_model::scenario::RecordSet::Failure(_) => false,
                })
        }
        _ => false,
    };
    let targets = scenario.zone.names.values().filter_map(|name| match name {
        ZoneName::Records(records) => Some(records),
        ZoneName::NxDomain => None,
    });
    for records in targets {
        let sets =
            std::iter::once(&records.base).chain(records.during.iter().map(|window| &window.patch));
        for set in sets.filter_map(|sets| sets.mx.as_ref()) {
            if let mxsim_model::scenario::RecordSet::Records(mx) = set
                && let Some(found) = mx.iter().find(|mx| has(&mx.exchange))
            {
                return Some(found.exchange.clone());
            }
        }
    }
    if let Some(name) = scenario.zone.names.keys().find(|name| has(name)) {
        return Some(name.clone());
    }
    scenario
        .servers
        .iter()
        .find_map(|server| match &server.key {
            mxsim_model::scenario::ServerKey::Name(name) if server.addresses.contains(&address) => {
                Some(name.clone())
            }
            _ => None,
        })
}

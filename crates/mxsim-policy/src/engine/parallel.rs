//! Parallel connection attempts (`parallel:`, docs/policy-format.md): while no session of the
//! attempt is usable yet, the next candidate of the same preference is started `delay` after the
//! last one began, beside those in flight, which are not abandoned (RFC 8305 §5's "Connection
//! Attempt Delay"; OpenSMTPD's connector, `mta.c` `mta_connect()` and `mta_find_route()`).
//!
//! Nothing is spawned: the sessions in flight are futures in a `Vec`, polled in the order they
//! began, by the one task that runs the attempt, and alongside the transaction of the session
//! that won. A session still in flight when the attempt is over is waited for until it ends by
//! its own timeouts, as OpenSMTPD leaves a session without a task to its I/O timeout; one that
//! opens after the recipients were settled is sent QUIT.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use mxsim_model::time::Instant;
use mxsim_model::world::World;

use super::session::{Opener, quit};
use super::{Attempt, Candidate, Failed, Flow, Opened, Tried};
use crate::settings::{Parallel, ReuseBy, TlsFallback};

/// Opening one candidate's session, boxed so that several can be kept in one `Vec`.
type Opening<'x, S> = Pin<Box<dyn Future<Output = Result<Opened<S>, Failed>> + 'x>>;

/// A session being opened, or opened (or failed) and not yet looked at.
enum Flight<'x, S> {
    Running(usize, Opening<'x, S>),
    Done(usize, Result<Opened<S>, Failed>),
}

impl<S> Flight<'_, S> {
    /// The candidate it is for.
    fn index(&self) -> usize {
        match self {
            Flight::Running(index, _) | Flight::Done(index, _) => *index,
        }
    }
}

/// Polls every running flight once, in the order they began; true when one finished.
fn poll_flights<S>(flights: &mut [Flight<'_, S>], cx: &mut Context<'_>) -> bool {
    let mut finished = false;
    for flight in flights.iter_mut() {
        if let Flight::Running(index, future) = flight
            && let Poll::Ready(result) = future.as_mut().poll(cx)
        {
            *flight = Flight::Done(*index, result);
            finished = true;
        }
    }
    finished
}

/// Runs `main` to its end while the flights go on; their results wait in the `Vec`.
async fn alongside<F: Future, S>(main: F, flights: &mut [Flight<'_, S>]) -> F::Output {
    let mut main = pin!(main);
    poll_fn(|cx| {
        if let Poll::Ready(output) = main.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        poll_flights(flights, cx);
        Poll::Pending
    })
    .await
}

/// Opens a candidate's session, with the plaintext retry of `tls_fallback: plaintext` (on the
/// same connection slot: OpenSMTPD's `MTA_DOWNGRADE_PLAIN` reconnects within the session).
async fn open_with_fallback<W: World>(
    opener: Opener<'_, '_, W>,
    candidates: &[Candidate],
    index: usize,
) -> Result<Opened<W::Session>, Failed> {
    let mut plaintext = false;
    loop {
        match opener.open(candidates, index, plaintext, None).await {
            Err(failed)
                if failed.tls_optional
                    && !plaintext
                    && opener.settings.tls_fallback == Some(TlsFallback::Plaintext) =>
            {
                plaintext = true;
            }
            result => return result,
        }
    }
}

impl<W: World> Attempt<'_, '_, W> {
    /// The candidate loop with `parallel:`. Returns the connection attempts made and whether an
    /// action stopped the attempt.
    pub(super) async fn walk_parallel(
        &mut self,
        candidates: &[Candidate],
        tried: &mut Tried,
        parallel: Parallel,
    ) -> (usize, bool) {
        let opener = self.opener();
        let mut flights: Vec<Flight<'_, W::Session>> = Vec::new();
        let mut last_start: Option<Instant> = None;
        let mut attempts = 0;
        let mut stopped = false;
        while !self.pending.is_empty() {
            // A flight that finished is looked at first, in the order they began.
            if let Some(position) = flights
                .iter()
                .position(|flight| matches!(flight, Flight::Done(..)))
            {
                let Flight::Done(index, result) = flights.remove(position) else {
                    unreachable!("the position of a finished flight");
                };
                let flow = self
                    .landed(candidates, tried, &mut flights, index, result)
                    .await;
                if flow == Flow::Stop {
                    stopped = true;
                    break;
                }
                if self
                    .settings
                    .limits
                    .sessions
                    .is_some_and(|limit| self.sessions >= limit)
                {
                    break;
                }
                continue;
            }
            let next = self.startable(candidates, tried, &flights, parallel.max);
            if flights.is_empty() && next.is_none() {
                break;
            }
            let now = self.world.now();
            // Every start waits `delay` after the last one (OpenSMTPD's `conndelay_relay`).
            let due = next.map(|_| last_start.map_or(now, |start| start.after(parallel.delay)));
            if let (Some(index), Some(due)) = (next, due)
                && due <= now
            {
                tried.mark(index);
                // A retry record in force skips the address without a connection, as in the
                // sequential walk: not asked, not an attempt, and no start to pace.
                if self.skip_held(&candidates[index]) {
                    continue;
                }
                attempts += 1;
                if flights.is_empty()
                    && self
                        .settings
                        .reuse
                        .is_some_and(|reuse| reuse.by == ReuseBy::Address)
                    && let Some(opened) = self.reuse_for_address(candidates, index).await
                {
                    // A cached session is usable at once: nothing to race it against.
                    flights.push(Flight::Done(index, Ok(opened)));
                    continue;
                }
                last_start = Some(now);
                flights.push(Flight::Running(
                    index,
                    Box::pin(open_with_fallback(opener, candidates, index)),
                ));
                continue;
            }
            wait_for(self.world, &mut flights, due).await;
        }
        self.drain(candidates, flights).await;
        (attempts, stopped)
    }

    /// The next candidate to start, if the limits allow one: with nothing in flight, the next
    /// one the sequential walk would take; beside sessions in flight, only one of their
    /// preference and only below `max` in flight (OpenSMTPD's `mta_find_route()` does not go
    /// on to the next preference while a route of this one waits to be validated).
    fn startable<S>(
        &self,
        candidates: &[Candidate],
        tried: &Tried,
        flights: &[Flight<'_, S>],
        max: u32,
    ) -> Option<usize> {
        let Some(first) = flights.first() else {
            return self.next_candidate(candidates, tried);
        };
        if flights.len() >= max as usize {
            return None;
        }
        let preference = candidates[first.index()].preference;
        tried.untried().find(|&index| {
            candidates[index].preference == preference && self.eligible(&candidates[index])
        })
    }

    /// A flight's result, as the sequential walk's `try_candidate` takes it: a session is used
    /// (while the other flights go on), a failure goes to the action map.
    async fn landed(
        &mut self,
        candidates: &[Candidate],
        tried: &mut Tried,
        flights: &mut [Flight<'_, W::Session>],
        index: usize,
        result: Result<Opened<W::Session>, Failed>,
    ) -> Flow {
        let candidate = &candidates[index];
        self.current = Some(candidate.address);
        match result {
            Ok(opened) => {
                self.connected = true;
                self.reached(candidate.address);
                let (flow, used) =
                    alongside(self.use_session(candidates, opened, tried), flights).await;
                if flow == Flow::NextHost {
                    tried.mark_host(candidates, &candidates[used].host);
                }
                flow
            }
            Err(failed) if failed.tls_optional => {
                self.last_error = failed.reason;
                if self.settings.tls_fallback == Some(TlsFallback::NextHost) {
                    tried.mark_host(candidates, &candidate.host);
                    return Flow::NextHost;
                }
                Flow::NextAddress
            }
            Err(failed) => {
                self.unasked = true;
                let mut last = self.last(candidates, tried, &candidate.host, false);
                // A session still in flight may yet take the recipients.
                last.candidate &= flights.is_empty();
                last.host &= flights
                    .iter()
                    .all(|flight| candidates[flight.index()].host == candidate.host);
                let everyone = self.pending.clone();
                let flow = self.fail(failed, &everyone, last);
                if flow == Flow::NextHost {
                    tried.mark_host(candidates, &candidate.host);
                }
                flow
            }
        }
    }

    /// The sessions still in flight when the attempt is over: each goes on until it opens (then
    /// QUIT: it has no recipient left) or fails by its own timeouts, which the client remembers
    /// as the sequential walk would (`memory:`), for no recipient.
    async fn drain(&mut self, candidates: &[Candidate], mut flights: Vec<Flight<'_, W::Session>>) {
        poll_fn(|cx| {
            poll_flights(&mut flights, cx);
            if flights
                .iter()
                .all(|flight| matches!(flight, Flight::Done(..)))
            {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        for flight in flights {
            let Flight::Done(index, result) = flight else {
                unreachable!("every flight finished");
            };
            match result {
                Ok(mut opened) => {
                    quit(self.world, &mut opened.session, self.settings.timeouts.quit).await;
                }
                Err(failed) if !failed.tls_optional => {
                    self.remember(candidates[index].address, &failed, &[]);
                }
                Err(_) => {}
            }
        }
    }
}

/// Waits until a flight finishes or `due` comes (never, without one).
async fn wait_for<W: World, S>(world: &W, flights: &mut [Flight<'_, S>], due: Option<Instant>) {
    let sleep = async {
        match due {
            Some(due) => {
                let _ = world
                    .timeout(due.since(world.now()), std::future::pending::<()>())
                    .await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let mut sleep = pin!(sleep);
    poll_fn(|cx| {
        if poll_flights(flights, cx) {
            return Poll::Ready(());
        }
        sleep.as_mut().poll(cx).map(|_| ())
    })
    .await;
}

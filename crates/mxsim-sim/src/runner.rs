//! Runs a policy in a simulated world: one run for one choice of orders, or an exploration of
//! every equal-preference order.
//!
//! One [`Runner`] owns one current-thread tokio runtime with paused time and reuses it for
//! every run: building a runtime costs more than a whole simulated delivery.

use std::sync::Arc;

use mxsim_model::outcome::{Disposition, RecipientOutcome};
use mxsim_model::time::Duration;
use mxsim_model::trace::{EventKind, Trace};
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
    /// One outcome per recipient per message.
    pub outcomes: Vec<RecipientOutcome>,
}

/// All the runs of one exploration.
#[derive(Clone, Debug)]
pub struct Exploration {
    /// The runs, in the order made.
    pub runs: Vec<Run>,
    /// True when every order was enumerated; false when orders were sampled by seed.
    pub exhaustive: bool,
}

/// Owns the paused runtime.
pub struct Runner {
    runtime: tokio::runtime::Runtime,
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
        Runner { runtime }
    }

    /// Runs every message of the scenario through `policy` once, with `choices`.
    pub fn run(
        &self,
        prepared: &Arc<Prepared>,
        policy: &dyn Policy<SimWorld>,
        choices: Choices,
    ) -> Run {
        let chooser = Chooser::new(&choices);
        let (world, outcomes) = self.runtime.block_on(async {
            let world = SimWorld::new(prepared.clone(), chooser);
            let outcomes = drive(&world, policy).await;
            (world, outcomes)
        });
        let inner = std::mem::replace(&mut *world.inner.state.borrow_mut(), State::empty());
        Run {
            choices,
            taken: inner.chooser.taken,
            arities: inner.chooser.arities,
            trace: Trace {
                events: inner.events,
            },
            outcomes,
        }
    }

    /// Runs every equal-preference order the policy draws (all of them up to
    /// [`ORDERS_EXHAUSTIVE_MAX`], else [`ORDERS_SAMPLED`] seeds).
    pub fn explore(&self, prepared: &Arc<Prepared>, policy: &dyn Policy<SimWorld>) -> Exploration {
        let first = self.run(prepared, policy, Choices::Forced(Vec::new()));
        let product = first
            .arities
            .iter()
            .try_fold(1usize, |acc, &arity| acc.checked_mul(arity as usize));
        if product.is_some_and(|count| count <= ORDERS_EXHAUSTIVE_MAX)
            && let Some(runs) = self.enumerate(prepared, policy, first)
        {
            return Exploration {
                runs,
                exhaustive: true,
            };
        }
        let runs = (0..ORDERS_SAMPLED)
            .map(|seed| self.run(prepared, policy, Choices::Seed(seed)))
            .collect();
        Exploration {
            runs,
            exhaustive: false,
        }
    }

    /// Walks the choice tree depth-first; `None` if it turns out larger than the bound.
    fn enumerate(
        &self,
        prepared: &Arc<Prepared>,
        policy: &dyn Policy<SimWorld>,
        first: Run,
    ) -> Option<Vec<Run>> {
        let mut next = next_leaf(&first.taken, &first.arities);
        let mut runs = vec![first];
        while let Some(values) = next {
            if runs.len() >= ORDERS_EXHAUSTIVE_MAX {
                return None;
            }
            let run = self.run(prepared, policy, Choices::Forced(values));
            next = next_leaf(&run.taken, &run.arities);
            runs.push(run);
        }
        Some(runs)
    }
}

/// Submits each message at its time and lets the policy make one attempt for it. Returns the
/// outcomes with the times the policy settled each recipient (the `done` lines come later, when
/// the whole attempt ends).
async fn drive(world: &SimWorld, policy: &dyn Policy<SimWorld>) -> Vec<RecipientOutcome> {
    let mut all = Vec::new();
    let inner = &world.inner;
    let scenario = inner.prepared.scenario.clone();
    let mut order: Vec<usize> = (0..scenario.messages.len()).collect();
    order.sort_by_key(|&index| scenario.messages[index].at);
    let origin = tokio::time::Instant::now();
    for index in order {
        let message = &scenario.messages[index];
        tokio::time::sleep_until(origin + message.at.since_start().to_std()).await;
        inner.record(EventKind::Submitted {
            message: index,
            recipients: message.to.clone(),
        });
        let job = Job {
            client: &scenario.client,
            message,
            message_index: index,
        };
        let left = RUN_LIMIT.as_millis().saturating_sub(world_now(world));
        // A message reached only at the limit (earlier ones ran long) is not attempted at all:
        // even a zero timeout would poll the policy once.
        let attempt = async {
            if left == 0 {
                return Err(());
            }
            // The policy is polled before the limit, like `tokio::time::timeout`, so a reply due
            // exactly at the limit still arrives. When the limit wins, the world learns that the
            // harness is stopping before the policy's future (and its pending waits) is dropped.
            let mut deliver = policy.deliver(world, job);
            let limit = tokio::time::sleep(Duration(left).to_std());
            let mut limit = std::pin::pin!(limit);
            let finished = std::future::poll_fn(|context| {
                if let std::task::Poll::Ready(outcomes) = deliver.as_mut().poll(context) {
                    return std::task::Poll::Ready(Some(outcomes));
                }
                limit.as_mut().poll(context).map(|()| None)
            })
            .await;
            if finished.is_none() {
                inner.state.borrow_mut().stopped = true;
            }
            drop(deliver);
            finished.ok_or(())
        };
        let outcomes = match attempt.await {
            Ok(outcomes) => outcomes,
            Err(()) => {
                inner.record(EventKind::RunLimit { limit: RUN_LIMIT });
                let reason = format!("run stopped at the {RUN_LIMIT} limit");
                message
                    .to
                    .iter()
                    .map(|recipient| RecipientOutcome {
                        message: index,
                        recipient: recipient.clone(),
                        at: mxsim_model::world::World::now(world),
                        disposition: Disposition::Deferred {
                            reason: reason.clone(),
                        },
                    })
                    .collect()
            }
        };
        assert_eq!(
            outcomes.len(),
            message.to.len(),
            "policy {} returned {} outcomes for {} recipients of message {index}",
            policy.name(),
            outcomes.len(),
            message.to.len()
        );
        for recipient in message.to.iter() {
            let outcome = outcomes
                .iter()
                .find(|outcome| outcome.recipient == *recipient);
            let outcome = outcome.unwrap_or_else(|| {
                panic!("policy {} gave no outcome for {recipient}", policy.name())
            });
            inner.record(EventKind::Outcome {
                message: index,
                recipient: recipient.clone(),
                disposition: outcome.disposition.clone(),
            });
            all.push(outcome.clone());
        }
    }
    all
}

fn world_now(world: &SimWorld) -> u64 {
    mxsim_model::world::World::now(world).0
}

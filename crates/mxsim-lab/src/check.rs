//! Checking a scenario's expectations: each policy its `expect:` names, over every explored
//! order, judged run by run.

use std::sync::Arc;

use mxsim_model::scenario::Scenario;
use mxsim_sim::{Prepared, Runner};

use crate::judge::{self, Verdict};
use crate::spec::PolicySpec;

/// The result of checking one policy's expectation on one scenario over every explored order.
#[derive(Clone, Debug)]
pub struct PolicyCheck {
    /// The policy.
    pub policy: String,
    /// What the exploration found.
    pub verdict: Verdict,
}

/// Checks every expectation of `scenario`, judging each run as it ends.
pub fn check_scenario(runner: &Runner, scenario: &Arc<Scenario>) -> Vec<PolicyCheck> {
    let prepared = Arc::new(Prepared::new(scenario.clone()));
    let mut checks = Vec::with_capacity(scenario.expectations.len());
    for expectation in &scenario.expectations {
        let spec = PolicySpec::Named(expectation.policy.clone());
        let policy = spec.build();
        let claims = spec.claims();
        let departures = spec.departures();
        let verdict = judge::explore(
            runner,
            &prepared,
            policy.as_ref(),
            Some(expectation),
            &claims,
            &departures,
        );
        checks.push(PolicyCheck {
            policy: expectation.policy.clone(),
            verdict,
        });
    }
    checks
}

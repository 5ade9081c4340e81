//! A policy to run: a registered name, or settings loaded from a policy file. Reading the file
//! is the CLI's job; the lab gets the settings.

use mxsim_model::rules::Departure;
use mxsim_model::world::Policy;
use mxsim_policy::engine::Engine;
use mxsim_policy::registry;
use mxsim_policy::settings::{Claim, Settings};
use mxsim_sim::SimWorld;

/// A policy to run: registered by name, or loaded from a file the user gave.
#[derive(Clone, Debug)]
pub enum PolicySpec {
    /// A registered policy.
    Named(String),
    /// Settings from a policy file.
    File(Box<Settings>),
}

impl PolicySpec {
    /// The name `expect:` uses.
    pub fn name(&self) -> &str {
        match self {
            PolicySpec::Named(name) => name,
            PolicySpec::File(settings) => &settings.name,
        }
    }

    /// A runnable policy.
    pub fn build(&self) -> Box<dyn Policy<SimWorld>> {
        match self {
            PolicySpec::Named(name) => {
                registry::get::<SimWorld>(name).expect("named specs are registered")
            }
            PolicySpec::File(settings) => Box::new(Engine {
                settings: (**settings).clone(),
            }),
        }
    }

    /// The invariants the policy claims.
    pub fn claims(&self) -> Vec<Claim> {
        match self {
            PolicySpec::Named(name) => registry::entry(name)
                .map(|entry| entry.claims.clone())
                .unwrap_or_default(),
            PolicySpec::File(settings) => settings.claims.clone(),
        }
    }
}

impl PolicySpec {
    /// The rules the policy documents that it departs from.
    pub fn departures(&self) -> Vec<Departure> {
        match self {
            PolicySpec::Named(name) => registry::entry(name)
                .map(|entry| entry.departures.clone())
                .unwrap_or_default(),
            PolicySpec::File(settings) => settings.departures.clone(),
        }
    }
}

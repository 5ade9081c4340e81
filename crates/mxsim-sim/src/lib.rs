//! The simulated world and the runner.
//!
//! Module map:
//! - [`world`]: DNS, network and scripted SMTP servers in virtual time; implements the model's
//!   `World` and `Session` traits and records the trace.
//! - [`choice`]: choice points, the run's only entropy (seeded ChaCha8, or forced by exploration).
//! - [`queue`]: the queue scheduler of queue scenarios: retries, expiry, DSNs, the horizon.
//! - [`runner`]: the paused current-thread runtime, one run, and exploration of every
//!   equal-preference order.
//!
//! This crate never names a concrete policy: it runs any `dyn Policy<SimWorld>`.

pub mod choice;
pub mod queue;
pub mod runner;
pub mod world;

pub use choice::Choices;
pub use runner::{AttemptRecord, Cut, Exploration, Fault, Observer, Run, Runner};
pub use world::{Prepared, SimSession, SimWorld};

//! The vocabulary of mxsim. Every other crate speaks it; it imports none of them.
//!
//! Module map:
//! - [`yaml`]: the one facade over the YAML library; located nodes under a tight budget.
//! - [`diag`]: located problems and their rendering with snippets.
//! - [`escape`]: text from input files made safe for a terminal, Markdown and HTML.
//! - [`schema`]: readers over located nodes that record every problem.
//! - [`scenario`]: the scenario model and its loader (and its JSON Schema).
//! - [`json`]: a small ordered JSON value, for the file formats' JSON Schemas.
//! - [`time`], [`name`], [`dns`], [`smtp`]: value types.
//! - [`world`]: the client↔world traits a policy is written against.
//! - [`script`]: the scripted server as a pure state machine: what a scenario's server answers.
//! - [`trace`]: events and their text form.
//! - [`outcome`]: per-recipient results.
//! - [`queue`]: a client's retry schedule, queue scans, lifetime and delay warnings, as data.
//! - [`rules`]: the rules table and the violation value every check returns.
//! - [`expect`]: checking a run against a scenario's `expect:`.
//! - [`invariants`]: checkers for the invariants policies claim, as pure functions of a trace.
//!
//! No tokio, no rand, no file system: this crate is data and pure functions.

pub mod diag;
pub mod dns;
pub mod escape;
pub mod expect;
pub mod invariants;
pub mod json;
pub mod name;
pub mod outcome;
pub mod queue;
pub mod rules;
pub mod scenario;
pub mod schema;
pub mod script;
pub mod smtp;
pub mod time;
pub mod trace;
pub mod world;
pub mod yaml;

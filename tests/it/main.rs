//! The one integration-test binary of mxsim (matklad's "one binary" rule: one link step, one
//! process, shared fixtures).
//!
//! - `corpus`: every shipped scenario: its trace pinned by insta, its `expect:` checked over
//!   every explored order.
//! - `properties`: proptest properties over the lab's generated worlds (determinism,
//!   equal-preference coverage, one truthful outcome per recipient, claims, the queue rules).
//! - `authoring`: the JSON Schemas (fresh, shipped files valid, bad fixtures invalid), `new`,
//!   `pin` and docs/findings.md.
//! - `bad_input`: every bad file in `bad/` is rejected with a located error and exit code 2;
//!   hostile files are stopped by counted bounds.
//! - `breakers`: proof that each checker can fire: every MUST rule with a checker and the
//!   claim P1, broken by a test-only policy file or, where no setting can, a test-only client.
//! - `cli`: the command line, called in-process.
//! - `cost`: allocations per run, counted per thread by the test binary's allocator, under a
//!   budget for every policy.
//! - `queue`: queue runs: linear cost, determinism, the queue rules on every policy.
//! - `limits`: budgets on runs and explorations, faulty policies, file-system edges, escaping.
//! - `live`: `mxsim live`: argument checks everywhere; with `MXSIM_LIVE_TESTS=1`, real Postfix
//!   on the live corpus and the teardown check.
//! - `policies`: the preset files and the pinned `compare` output for the seed scenarios.
//! - `report`: `mxsim report`'s HTML page: cells, links, escaping, determinism, reproduce
//!   commands, the pinned timeline of the base case; in Chromium when `MXSIM_BROWSER_TESTS=1`.
//! - `tidy`: the project's own rules (file headers, scenario comments, banned test tricks).
//! - `writer`: the scenario writer round-trips every shipped file and generated worlds.
//! - `search`: generated worlds: every preset keeps its MUSTs, determinism, metamorphic
//!   relations; `explore` and `diff` from the command line.

/// Counts allocations per thread for `cost` (and `mxsim bench` called in-process); every call
/// goes to the system allocator.
#[global_allocator]
static ALLOCATOR: mxsim_meter::Counting = mxsim_meter::Counting;

mod authoring;
mod bad_input;
mod breakers;
mod cli;
mod corpus;
mod cost;
mod limits;
mod live;
mod policies;
mod properties;
mod queue;
mod report;
mod rules;
mod search;
mod tidy;
mod writer;

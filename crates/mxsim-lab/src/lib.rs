//! The lab: what the `mxsim` command does, as library code between the command line and the
//! simulator. It judges runs, explores orders and builds the scenarios × policies report with
//! its renderers; the CLI only parses arguments, reads files and prints.
//!
//! Module map:
//! - [`spec`]: a policy to run, registered by name or loaded from a file's settings.
//! - [`judge`]: judging an exploration run by run, keeping only what is reported.
//! - [`check`]: every `expect:` of a scenario, each over every explored order.
//! - [`compare`]: the scenarios × policies matrix and its text, Markdown and JSON forms.
//! - [`report`]: the matrix as one self-contained HTML page, each cell with a run's trace and
//!   timeline picture.
//! - [`coverage`]: which rules and open questions a corpus exercises, and where policies differ.
//! - [`pin`]: what holds over every explored order, as an `expect:` entry (`mxsim pin`).
//! - [`findings`]: the seed's questions answered from the seed scenarios (docs/findings.md).
//! - [`generate`]: generated worlds, as shrinkable specs and the scenarios they are.
//! - [`search`]: `explore` (shrunk worlds on which a policy FAILs a rule) and `diff` (shrunk
//!   worlds on which two policies part).
//!
//! Like the model, the lab reads no files and prints nothing: it returns values and text.

pub mod agree;
pub mod check;
pub mod compare;
pub mod coverage;
pub mod findings;
pub mod generate;
pub mod judge;
pub mod pin;
pub mod report;
pub mod search;
pub mod spec;

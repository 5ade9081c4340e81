//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Deterministic simulation of SMTP clients choosing among MX hosts.
#[derive(Debug, Parser)]
#[command(name = "mxsim", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one scenario with one policy and print the trace and the outcome.
    Run {
        /// The scenario file.
        file: PathBuf,
        /// The policy to run: a name or a policy file.
        #[arg(long, default_value = "rfc5321")]
        policy: String,
        /// The seed for equal-preference orders; default: the file's `seed`, else 0.
        #[arg(long)]
        seed: Option<u64>,
        /// The choice values of one enumerated order, as a run label shows them: `[1,0]`.
        #[arg(long, conflicts_with = "seed")]
        order: Option<String>,
        /// Run every equal-preference order instead of one seed.
        #[arg(long, conflicts_with_all = ["seed", "order"])]
        all_orders: bool,
    },
    /// Put policies side by side on the same scenarios: a matrix of outcomes.
    Compare {
        /// Files or folders (searched recursively for .yaml files); default: scenarios.
        paths: Vec<PathBuf>,
        /// A policy name or a policy file; repeat for several; default: every policy.
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List the policies, or print one preset file.
    Policies {
        /// The preset to print.
        name: Option<String>,
    },
    /// Check every scenario's `expect:` (and every claim of the policies it names) over every
    /// explored order.
    Check {
        /// Files or folders (searched recursively for .yaml files); default: scenarios.
        paths: Vec<PathBuf>,
    },
    /// Print the rules table (docs/rules.md): every rule, its level and source, and how it is
    /// judged; with `--coverage`, which rules and open questions a corpus exercises.
    Rules {
        /// Run every policy on the scenarios and report which rules and open questions they
        /// exercise, and on which scenarios the policies differ.
        #[arg(long)]
        coverage: bool,
        /// With `--coverage`: files or folders (searched recursively for .yaml files);
        /// default: scenarios.
        #[arg(requires = "coverage")]
        paths: Vec<PathBuf>,
    },
    /// Measure the cost of a run on one thread: seeds 0..N of one scenario, repeated; thread CPU
    /// time and wall time per run (medians), allocations and bytes per run (counted).
    Bench {
        /// The scenario file (not with `--floor`).
        #[arg(required_unless_present = "floor")]
        file: Option<PathBuf>,
        /// The policy to run: a name or a policy file.
        #[arg(long, default_value = "rfc5321")]
        policy: String,
        /// How many runs per repeat.
        #[arg(long, default_value_t = 100_000)]
        runs: u64,
        /// How many times to repeat the runs; the figures are the medians.
        #[arg(long, default_value_t = 5)]
        repeat: u32,
        /// Measure tokio's floor instead of a policy: N `timeout` wraps of a ready future per
        /// run, on the same reused paused runtime, with no world and no policy.
        #[arg(long, value_name = "TIMEOUTS", conflicts_with_all = ["file", "policy"])]
        floor: Option<u32>,
    },
}

/// Output formats of `compare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Text,
    /// A Markdown table for an issue or a mailing-list post.
    Markdown,
    /// A stable JSON document for tools (docs/compare-json.md).
    Json,
}

impl From<Format> for mxsim_lab::compare::Format {
    fn from(format: Format) -> Self {
        match format {
            Format::Text => mxsim_lab::compare::Format::Text,
            Format::Markdown => mxsim_lab::compare::Format::Markdown,
            Format::Json => mxsim_lab::compare::Format::Json,
        }
    }
}

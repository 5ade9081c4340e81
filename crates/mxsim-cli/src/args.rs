//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
        /// The policy to run.
        #[arg(long, default_value = "rfc5321")]
        policy: String,
        /// The seed for equal-preference orders; default: the file's `seed`, else 0.
        #[arg(long)]
        seed: Option<u64>,
        /// Run every equal-preference order instead of one seed.
        #[arg(long, conflicts_with = "seed")]
        all_orders: bool,
    },
    /// Check every scenario's `expect:` over every explored order.
    Check {
        /// Files or folders (searched recursively for .yaml files); default: scenarios.
        paths: Vec<PathBuf>,
    },
    /// Measure runs per second on one core: seeds 0..N of one scenario.
    Bench {
        /// The scenario file.
        file: PathBuf,
        /// The policy to run.
        #[arg(long, default_value = "rfc5321")]
        policy: String,
        /// How many runs.
        #[arg(long, default_value_t = 100_000)]
        runs: u64,
    },
}

//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Deterministic simulation of SMTP clients choosing among MX hosts.
#[derive(Debug, Parser)]
#[command(name = "mxsim", version = crate::VERSION, about, long_about = None)]
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
        /// Width of the text output in terminal columns; default: the terminal's width when
        /// standard output is one, else 100.
        #[arg(long, value_parser = clap::value_parser!(u16).range(40..))]
        width: Option<u16>,
        /// Only the scenarios where the policies differ (in results or connections), and
        /// those with a broken or error cell.
        #[arg(long)]
        only_differences: bool,
    },
    /// Write the matrix as a self-contained HTML page, DIR/index.html: each cell with a run's
    /// trace, its timeline and the command that reproduces it.
    Report {
        /// Files or folders (searched recursively for .yaml files); default: scenarios.
        paths: Vec<PathBuf>,
        /// A policy name or a policy file; repeat for several; default: every policy.
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// The folder to write index.html into (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// List the policies, print one preset file, or print a policy file resolved after
    /// `extends`.
    Policies {
        /// A preset's name, or the path of a policy file.
        name: Option<String>,
    },
    /// Check every scenario's `expect:` (and every claim of the policies it names) over every
    /// explored order.
    Check {
        /// Files or folders (searched recursively for .yaml files); default: scenarios.
        paths: Vec<PathBuf>,
        /// Output format: text for people, json, junit (XML) or tap (version 14) for CI.
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
        /// Text: print only the problems (FAIL, ERROR, files that cannot be loaded) and the
        /// summary.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Serve scenarios to a real MTA inside Linux namespaces and check their `expect:` with the
    /// MTA standing in for a preset (root; the MTAs from crates/mxsim-live/mta/install.sh; see
    /// docs/live.md). Exit codes as `check`.
    Live {
        /// Scenario files or folders (searched recursively for .yaml files).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The MTA to run; repeat for several (each file runs against each, in this order).
        #[arg(long, value_enum, required = true)]
        mta: Vec<LiveMta>,
        /// The preset whose `expect:` entries the MTA is held to; default: each MTA's own
        /// preset (postfix-3.10, exim-4, opensmtpd-7).
        #[arg(long)]
        policy: Option<String>,
        /// Output: each file's trace, verdict and agreement with the preset (text), only the
        /// agreement table (agreement), that table as Markdown (markdown), or every file's
        /// report as JSON (json).
        #[arg(long, value_enum, default_value_t = LiveFormat::Text)]
        format: LiveFormat,
        /// Real seconds per scenario second: scenario delays, and the timeouts and retry
        /// intervals written into the MTA's configuration, are multiplied by it; the trace's
        /// times are divided by it. From 0.001 to 1.
        #[arg(long, default_value_t = mxsim_live::DEFAULT_SCALE)]
        time_scale: f64,
        /// At this scenario time, make the MTA try its deferred mail at once (Postfix:
        /// `postqueue -f`), besides its own schedule; repeat for several (`--retry-at 2m`).
        #[arg(long, value_parser = parse_duration)]
        retry_at: Vec<mxsim_model::time::Duration>,
        /// Internal: this process is the run inside the namespaces.
        #[arg(long, hide = true)]
        inside: bool,
    },
    /// Print a completion script for a shell (`mxsim completions bash > …`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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
    /// Run one policy on generated worlds; shrink every world on which it FAILs a rule and
    /// write it as a scenario file.
    Explore {
        /// The policy: a registered name or a policy file.
        #[arg(long)]
        policy: String,
        /// How many cases (generated worlds, each run once).
        #[arg(long, default_value_t = 10_000)]
        cases: u64,
        /// The search's seed: case i is the same world and order for the same seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where found worlds are written.
        #[arg(long, default_value = "explore-findings")]
        out: PathBuf,
        /// Run only the cases i with i % N == I: `--shard I/N` (0-based) splits one search
        /// between machines.
        #[arg(long)]
        shard: Option<String>,
    },
    /// Search generated worlds for one on which two policies reach different outcomes, shrink
    /// it, and write it with both outcomes pinned.
    Diff {
        /// The two policies: names or policy files (give `--policy` twice).
        #[arg(long = "policy", required = true)]
        policies: Vec<String>,
        /// How many cases at most.
        #[arg(long, default_value_t = 10_000)]
        cases: u64,
        /// The search's seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where the found world is written.
        #[arg(long, default_value = "diff-findings")]
        out: PathBuf,
    },
    /// Write a scenario skeleton that loads, from a one-line MX description such as
    /// `10 smtp1, 10 smtp2, 20 backup`.
    New {
        /// The MX records: `PREFERENCE HOST`, separated by commas; a host without a dot is
        /// qualified under `--domain`.
        description: String,
        /// The recipient domain.
        #[arg(long, default_value = "foo.example")]
        domain: String,
        /// Write the skeleton to this file (never overwritten) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fill or update a scenario's `expect:` from runs: what holds over every explored order.
    Pin {
        /// The scenario file, rewritten in place (only its `expect:` block changes).
        file: PathBuf,
        /// A registered policy; repeat for several; default: those the file's `expect:`
        /// names, else every registered policy.
        #[arg(long = "policy")]
        policies: Vec<String>,
    },
    /// Print the JSON Schema (draft 2020-12) of scenario or policy files.
    Schema {
        /// Which files.
        #[arg(value_enum)]
        kind: crate::authoring::SchemaKind,
    },
    /// Print the findings page (docs/findings.md): the seed's questions, answered by running
    /// the seed scenarios with every policy.
    Findings {
        /// Scenario files or folders; default: scenarios/seed and the queue scenario of the
        /// seed's last question.
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

/// Output formats of `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// A line per file and policy, the problems under them, then a summary.
    Text,
    /// One JSON document (docs/check-formats.md).
    Json,
    /// JUnit XML: a test suite per file, a test case per policy.
    Junit,
    /// The Test Anything Protocol, version 14: a test point per file and policy.
    Tap,
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

impl Format {
    /// The lab's format, text at `width` columns.
    pub fn with_width(self, width: usize) -> mxsim_lab::compare::Format {
        match self {
            Format::Text => mxsim_lab::compare::Format::Text { width },
            Format::Markdown => mxsim_lab::compare::Format::Markdown,
            Format::Json => mxsim_lab::compare::Format::Json,
        }
    }
}

/// The outputs of `mxsim live`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LiveFormat {
    /// Each file's trace, the MTA's verdict, the expectation and the agreement.
    Text,
    /// One table, scenario × MTA: the preset's prediction next to the observation.
    Agreement,
    /// The agreement table as Markdown.
    Markdown,
    /// Every file's report as JSON.
    Json,
}

/// The MTAs of `mxsim live`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LiveMta {
    /// Postfix 3.7 (Debian bookworm).
    Postfix,
    /// Exim 4.96 (Debian's exim4-daemon-light).
    Exim,
    /// OpenSMTPD 6.8 (Debian bookworm).
    Opensmtpd,
}

impl LiveMta {
    /// The live crate's name for it.
    pub fn mta(self) -> mxsim_live::Mta {
        match self {
            LiveMta::Postfix => mxsim_live::Mta::Postfix,
            LiveMta::Exim => mxsim_live::Mta::Exim,
            LiveMta::Opensmtpd => mxsim_live::Mta::Opensmtpd,
        }
    }
}

/// A duration as scenario files write it (`90s`, `2m`, `1h30m`).
fn parse_duration(text: &str) -> Result<mxsim_model::time::Duration, String> {
    mxsim_model::time::Duration::parse(text)
}

//! The `mxsim` command. The only crate that reads files, prints and sets exit codes; all of it
//! is in functions that return text and a code, so tests call them in-process. Judging,
//! exploring and the compare report are library code in `mxsim-lab`; this crate parses
//! arguments, reads files, calls the lab and prints.
//!
//! Module map:
//! - [`args`]: the command line (clap).
//! - [`files`]: finding and loading scenario files, with located errors.
//! - [`commands`]: `run`, `check`, `bench`, `compare`, `policies`, `rules`, `completions`.
//! - [`check_formats`]: `check`'s report as text, JSON, JUnit XML and TAP.
//! - [`authoring`]: `new`, `pin`, `schema` and `findings`: writing scenarios and pages.
//! - [`report`]: `report`, the matrix as a self-contained HTML page.
//! - [`search`]: `explore` and `diff`, the search over generated worlds.
//!
//! Exit codes: 0 every expectation holds, 1 an expectation failed, 2 bad input or usage.

pub mod args;
pub mod authoring;
pub mod check_formats;
pub mod commands;
pub mod files;
pub mod live;
pub mod report;
pub mod search;

use std::ffi::OsString;

use clap::Parser;

/// What a command produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Text for standard output.
    pub stdout: String,
    /// Text for standard error.
    pub stderr: String,
    /// The exit code.
    pub code: u8,
}

/// Every expectation held.
pub const EXIT_OK: u8 = 0;
/// An expectation failed.
pub const EXIT_FAILED: u8 = 1;
/// Bad input or usage.
pub const EXIT_BAD_INPUT: u8 = 2;

/// The commit this binary was built from: `git rev-parse --short HEAD`, `-dirty` when tracked
/// files had changed, or `unknown` when it was built without git (see `build.rs`).
pub const COMMIT: &str = env!("MXSIM_COMMIT");

/// What `mxsim --version` prints after the name, and what reports carry.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MXSIM_COMMIT"),
    ")"
);

/// The build, as reports carry it.
pub fn build() -> mxsim_lab::compare::Build {
    mxsim_lab::compare::Build {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        commit: COMMIT.to_owned(),
    }
}

/// What the binary knows of where it prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    /// The width of standard output in columns, when it is a terminal.
    pub terminal_width: Option<usize>,
}

/// Text is this wide when standard output is not a terminal and `--width` is not given.
pub const DEFAULT_WIDTH: usize = 100;

/// Parses `arguments` (program name first) and runs the command, as if standard output were
/// not a terminal (tests, pipes).
pub fn main_with(arguments: impl IntoIterator<Item = OsString>) -> Output {
    main_in(arguments, Environment::default())
}

/// Parses `arguments` (program name first) and runs the command in `environment`.
pub fn main_in(arguments: impl IntoIterator<Item = OsString>, environment: Environment) -> Output {
    match args::Cli::try_parse_from(arguments) {
        Ok(cli) => commands::dispatch(cli.command, environment),
        Err(error) => {
            let text = error.render().to_string();
            if error.use_stderr() {
                Output {
                    stdout: String::new(),
                    stderr: text,
                    code: EXIT_BAD_INPUT,
                }
            } else {
                Output {
                    stdout: text,
                    stderr: String::new(),
                    code: EXIT_OK,
                }
            }
        }
    }
}

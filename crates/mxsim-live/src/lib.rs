//! Live mode: a scenario served inside Linux namespaces to a real MTA, graded with the same
//! expectations as the simulator's runs.
//!
//! This crate is the one place in the workspace with real time, sockets, processes and mounts
//! (docs/architecture.md, "Where the rules bend"). Everything it decides about the world it asks
//! the model: the zone's answers ([`mxsim_model::scenario::Zone::answer`]) and the servers'
//! scripts ([`mxsim_model::script`]), the same code the simulator runs. What is left here is the
//! plumbing: namespaces ([`namespace`]), a DNS server ([`dns`]), SMTP listeners ([`listen`]),
//! one driver per MTA ([`mta`]), the clock and its scale ([`clock`]), the trace ([`record`]) and
//! the run ([`run`]).

pub mod clock;
pub mod dns;
pub mod listen;
pub mod mta;
pub mod namespace;
pub mod record;
pub mod run;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use mxsim_model::escape;
use mxsim_model::scenario::Scenario;

pub use clock::DEFAULT_SCALE;
pub use mta::Mta;
pub use run::{LiveRun, Options};

/// Runs `scenario` inside this process's namespaces (the re-executed `mxsim live --inside`)
/// and renders the result: standard output, standard error and the exit code (0 when the
/// expectation holds, 1 when it breaks or the file has none for the policy, 2 when the run
/// itself failed).
pub fn inside(scenario: Arc<Scenario>, shown: &str, options: &Options) -> (String, String, u8) {
    let root = mta::install_root().join(options.mta.key()).join("root");
    let result = match options.mta {
        Mta::Postfix => match mta::installed(options.mta) {
            Ok(version) => run::inside(
                scenario,
                options,
                mta::postfix::Postfix::new(version, root.clone()),
                &root,
            ),
            Err(error) => Err(error),
        },
        Mta::Exim | Mta::Opensmtpd => mta::installed(options.mta).map(|_| unreachable!()),
    };
    match result {
        Ok(run) => render(&run, shown, options),
        Err(error) => (
            String::new(),
            format!(
                "{}: live run failed: {}\n",
                escape::terminal(shown),
                error
                    .lines()
                    .map(escape::terminal)
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            2,
        ),
    }
}

/// The text of a live run and its exit code.
pub fn render(run: &LiveRun, shown: &str, options: &Options) -> (String, String, u8) {
    let mut out = String::new();
    let _ = writeln!(out, "== {}", escape::terminal(shown));
    for line in &run.header {
        let _ = writeln!(out, "# {}", escape::terminal(line));
    }
    for note in &run.notes {
        let _ = writeln!(out, "# note: {}", escape::terminal(note));
    }
    out.push_str(&run.trace.to_string());
    let _ = writeln!(out, "verdict ({}'s own log):", options.mta.key());
    for outcome in &run.outcomes {
        let _ = writeln!(
            out,
            "  message {} {}: {}",
            outcome.message,
            escape::terminal(outcome.recipient.as_str()),
            escape::terminal(&outcome.disposition.to_string())
        );
    }
    let code = match &run.violations {
        None => {
            let _ = writeln!(
                out,
                "expect {}: the file has no expectation for this policy",
                escape::terminal(&options.policy)
            );
            1
        }
        Some(violations) if violations.is_empty() => {
            let _ = writeln!(out, "expect {}: holds", escape::terminal(&options.policy));
            0
        }
        Some(violations) => {
            let _ = writeln!(out, "expect {}: BROKEN", escape::terminal(&options.policy));
            for violation in violations {
                let _ = writeln!(out, "  - {}", escape::terminal(&violation.to_string()));
            }
            1
        }
    };
    (out, String::new(), code)
}

/// The command that runs one file in fresh namespaces: `mxsim live --inside …` under
/// `unshare`. Its standard output, error and exit code are the file's.
pub fn command(file: &Path, options: &Options) -> std::process::Command {
    let arguments: Vec<std::ffi::OsString> = vec![
        "live".into(),
        "--inside".into(),
        "--mta".into(),
        options.mta.key().into(),
        "--policy".into(),
        options.policy.clone().into(),
        "--time-scale".into(),
        options.scale.to_string().into(),
        file.as_os_str().to_owned(),
    ];
    namespace::reexec(&arguments)
}

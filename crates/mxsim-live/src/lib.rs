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

use std::path::Path;
use std::sync::Arc;

use mxsim_model::scenario::Scenario;

pub use clock::DEFAULT_SCALE;
pub use mta::Mta;
pub use run::{LiveRun, Options};

/// Runs `scenario` inside this process's namespaces (the re-executed `mxsim live --inside`).
/// `Err` is a run that could not be made (a command that failed, an MTA that would not start),
/// with the MTA's log attached.
pub fn inside(scenario: Arc<Scenario>, options: &Options) -> Result<LiveRun, String> {
    let root = mta::install_root().join(options.mta.key()).join("root");
    let version = mta::installed(options.mta)?;
    match options.mta {
        Mta::Postfix => run::inside(
            scenario,
            options,
            mta::postfix::Postfix::new(version, root.clone()),
            &root,
        ),
        Mta::Exim => run::inside(
            scenario,
            options,
            mta::exim::Exim::new(version, root.clone()),
            &root,
        ),
        Mta::Opensmtpd => run::inside(
            scenario,
            options,
            mta::opensmtpd::Opensmtpd::new(version, root.clone()),
            &root,
        ),
    }
}

/// The command that runs one file in fresh namespaces: `mxsim live --inside …` under
/// `unshare`. Its standard output, error and exit code are the file's.
pub fn command(file: &Path, options: &Options) -> std::process::Command {
    let mut arguments: Vec<std::ffi::OsString> = vec![
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
    for at in &options.retry_at {
        arguments.push("--retry-at".into());
        arguments.push(at.to_string().into());
    }
    namespace::reexec(&arguments)
}

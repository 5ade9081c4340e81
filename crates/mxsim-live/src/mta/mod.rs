//! One driver per MTA behind one interface: configure, start, inject, force a retry, read what
//! it did, stop. Adding an MTA is one template under `crates/mxsim-live/mta/` and one module
//! here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use mxsim_model::name::{Mailbox, Name};
use mxsim_model::outcome::DispositionKind;
use mxsim_model::scenario::Scenario;
use mxsim_model::smtp::Reply;

pub mod exim;
pub mod opensmtpd;
pub mod postfix;

/// The MTAs live mode knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mta {
    /// Postfix 3.7 (Debian bookworm's `postfix`).
    Postfix,
    /// Exim 4.96 (Debian's `exim4-daemon-light`).
    Exim,
    /// OpenSMTPD 6.8 (Debian's `opensmtpd`).
    Opensmtpd,
}

impl Mta {
    /// Every MTA, in the order of `--mta`'s help.
    pub const ALL: [Mta; 3] = [Mta::Postfix, Mta::Exim, Mta::Opensmtpd];

    /// The name `--mta` takes, and the folder of its private root.
    pub fn key(self) -> &'static str {
        match self {
            Mta::Postfix => "postfix",
            Mta::Exim => "exim",
            Mta::Opensmtpd => "opensmtpd",
        }
    }

    /// The preset that models this MTA: the default `--policy` of a live run.
    pub fn preset(self) -> &'static str {
        match self {
            Mta::Postfix => "postfix-3.10",
            Mta::Exim => "exim-4",
            Mta::Opensmtpd => "opensmtpd-7",
        }
    }

    /// Whether `--time-scale` reaches the MTA's own timeouts and retry times. OpenSMTPD 6.8 has
    /// no settings for them: it runs in real time (scale 1) whatever the flag says.
    pub fn scales(self) -> bool {
        !matches!(self, Mta::Opensmtpd)
    }

    /// The MTA named `key`.
    pub fn from_key(key: &str) -> Option<Mta> {
        Mta::ALL.into_iter().find(|mta| mta.key() == key)
    }
}

/// Where `install.sh` unpacks the MTAs: `$MXSIM_LIVE_ROOT`, else `/opt/mxsim-live`.
pub fn install_root() -> PathBuf {
    std::env::var_os("MXSIM_LIVE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/mxsim-live"))
}

/// The installed version of `mta`, or why it is missing (exit code 2 with the text).
pub fn installed(mta: Mta) -> Result<String, String> {
    let base = install_root().join(mta.key());
    let version = std::fs::read_to_string(base.join("version")).map_err(|_| {
        format!(
            "{} is not installed under {}: run `sudo bash crates/mxsim-live/mta/install.sh {}` (docs/live.md)",
            mta.key(),
            base.display(),
            mta.key()
        )
    })?;
    Ok(version.lines().next().unwrap_or("").trim().to_owned())
}

/// What a driver is given to set the MTA up.
pub struct Setup<'a> {
    /// The world.
    pub scenario: &'a Scenario,
    /// A private folder for configuration, logs and the queue (a tmpfs inside the namespace).
    pub work: &'a Path,
    /// Where the MTA's package is unpacked (`…/root`).
    pub root: PathBuf,
    /// Real seconds per scenario second.
    pub scale: f64,
}

/// What the MTA reported, parsed from its log.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// The MTA took message `message` into its queue under `queue_id`.
    Queued {
        /// Message index.
        message: usize,
        /// The MTA's queue id.
        queue_id: String,
    },
    /// A connection attempt the MTA reports and no listener saw.
    ConnectFailed {
        /// The host it was for.
        host: Name,
        /// The address.
        address: IpAddr,
        /// Refused (RST) or timed out (the SYN was dropped).
        refused: bool,
    },
    /// The MTA's word on one recipient after an attempt.
    Status {
        /// The MTA's queue id.
        queue_id: String,
        /// The recipient.
        recipient: Mailbox,
        /// Delivered, bounced or deferred (still queued).
        kind: DispositionKind,
        /// The relay, for a delivery: host and address.
        relay: Option<(Name, IpAddr)>,
        /// The server reply the MTA quotes, if any.
        reply: Option<Reply>,
        /// The MTA's words.
        reason: String,
    },
    /// The MTA returned the whole message (its queue lifetime ran out).
    Expired {
        /// The MTA's queue id.
        queue_id: String,
    },
}

/// One MTA under test. Every method runs inside the namespace.
#[allow(
    async_fn_in_trait,
    reason = "used generically, never as a trait object"
)]
pub trait Driver {
    /// The package version, for the header.
    fn version(&self) -> &str;
    /// How long (scenario time) the MTA waits for a TCP handshake: a timed-out attempt the
    /// MTA's log reports began this long before the line.
    fn connect_timeout(&self) -> mxsim_model::time::Duration;
    /// Mounts the private root, the queue and the configuration, from the template.
    async fn configure(&mut self, setup: &Setup<'_>) -> Result<(), String>;
    /// Starts the MTA's daemons.
    async fn start(&mut self) -> Result<(), String>;
    /// Hands message `index` to the MTA as its local submission command would.
    async fn inject(
        &mut self,
        index: usize,
        from: &Mailbox,
        to: &[Mailbox],
        text: &str,
    ) -> Result<(), String>;
    /// Makes the MTA try its deferred mail now.
    async fn force_retry(&mut self) -> Result<(), String>;
    /// What the MTA logged since the last call.
    fn observations(&mut self) -> Vec<Observation>;
    /// The whole log so far, for a failure report.
    fn log(&self) -> String;
    /// Stops the MTA (the PID namespace ends whatever is left).
    async fn stop(&mut self);
}

/// Lays the private root's `dirs` over the host's, inside the mount namespace only: an overlay
/// whose lower layers are the root's folder, then the host's own (so the MTA's files appear at
/// their usual paths and everything else stays as it is), with a writable upper layer on the
/// run's tmpfs.
pub fn overlay(root: &Path, dirs: &[&str]) -> Result<(), String> {
    for dir in dirs {
        let lower = root.join(dir);
        if !lower.is_dir() {
            continue;
        }
        let target = Path::new("/").join(dir);
        if !target.is_dir() {
            return Err(format!(
                "{} does not exist on this machine: nothing to lay {} over",
                target.display(),
                lower.display()
            ));
        }
        let scratch = Path::new("/tmp/mxsim-live/overlay").join(dir.replace('/', "-"));
        let (upper, work) = (scratch.join("upper"), scratch.join("work"));
        for folder in [&upper, &work] {
            std::fs::create_dir_all(folder)
                .map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
        }
        let options = format!(
            "lowerdir={}:{},upperdir={},workdir={}",
            lower.display(),
            target.display(),
            upper.display(),
            work.display()
        );
        crate::namespace::run(
            "mount",
            &[
                "-t",
                "overlay",
                "overlay",
                "-o",
                &options,
                &target.to_string_lossy(),
            ],
        )?;
    }
    Ok(())
}

/// Runs `program` with `input` on its standard input and waits for it.
pub async fn pipe(program: &str, arguments: &[String], input: &str) -> Result<(), String> {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(program)
        .args(arguments)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run `{program}`: {error}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(|error| format!("cannot write to `{program}`: {error}"))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|error| format!("`{program}` failed: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            arguments.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The complete lines appended to `file` since `read` bytes; a partial last line waits in
/// `pending` for its end.
pub fn new_lines(file: &Path, read: &mut usize, pending: &mut String) -> Vec<String> {
    use std::io::{Read as _, Seek as _};
    let Ok(mut handle) = std::fs::File::open(file) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    let start = u64::try_from(*read).unwrap_or(u64::MAX);
    if handle.seek(std::io::SeekFrom::Start(start)).is_err()
        || handle.read_to_end(&mut bytes).is_err()
        || bytes.is_empty()
    {
        return Vec::new();
    }
    *read += bytes.len();
    pending.push_str(&String::from_utf8_lossy(&bytes));
    let mut lines = Vec::new();
    while let Some(end) = pending.find('\n') {
        lines.push(pending[..end].to_owned());
        pending.drain(..=end);
    }
    lines
}

/// `template` with every `{{key}}` replaced; a placeholder left over is our bug.
pub fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.to_owned();
    for (key, value) in values {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    assert!(
        !text.contains("{{"),
        "a template placeholder has no value: {}",
        text.lines().find(|line| line.contains("{{")).unwrap_or("")
    );
    text
}

/// The domains an MTA under test must keep its bounce notices in: the senders' domains and the
/// client's own name, less any domain the scenario sends to (never empty: `mxsim.invalid` when
/// nothing is left). Delivered there, a notice would add DNS queries and connections that are
/// not the scenario's.
pub fn sink_domains(scenario: &Scenario) -> Vec<String> {
    let mut sinks: Vec<String> = scenario
        .messages
        .iter()
        .filter(|message| !message.from.is_null())
        .map(|message| message.from.domain().as_str().to_owned())
        .collect();
    sinks.push(scenario.client.name.as_str().to_owned());
    sinks.sort();
    sinks.dedup();
    let recipients: Vec<&str> = scenario
        .messages
        .iter()
        .flat_map(|message| message.to.iter().map(|to| to.domain().as_str()))
        .collect();
    sinks.retain(|domain| !recipients.contains(&domain.as_str()));
    if sinks.is_empty() {
        sinks.push("mxsim.invalid".to_owned());
    }
    sinks
}

/// The submission command's arguments: `options`, then `-f SENDER --` and the recipients (`<>`
/// for the null sender).
pub fn submission(options: &[&str], from: &Mailbox, to: &[Mailbox]) -> Vec<String> {
    let sender = if from.is_null() {
        "<>".to_owned()
    } else {
        from.as_str().to_owned()
    };
    let mut arguments: Vec<String> = options.iter().map(|option| (*option).to_owned()).collect();
    arguments.extend(["-f".to_owned(), sender, "--".to_owned()]);
    arguments.extend(to.iter().map(|to| to.as_str().to_owned()));
    arguments
}

/// The value named `key` in a driver's table of scaled times; a missing key is our bug.
pub fn lookup(
    table: &[(&str, mxsim_model::time::Duration)],
    key: &str,
) -> mxsim_model::time::Duration {
    table
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, value)| *value)
        .unwrap_or_else(|| panic!("no time named {key} in the driver's table"))
}

/// A one-server scenario and the setup a driver is given for it, for the drivers' tests.
#[cfg(test)]
pub fn with_test_setup<T>(scale: f64, test: impl FnOnce(&Setup<'_>) -> T) -> T {
    let scenario = mxsim_model::scenario::load(
        "title: t\nmessage:\n  to: [u@foo.example]\ndns:\n  foo.example: {mx: [10 mx.foo.example]}\nservers:\n  mx.foo.example: {}\n",
        &|_| true,
    )
    .expect("loads");
    let setup = Setup {
        scenario: &scenario,
        work: Path::new("/tmp/mxsim-live"),
        root: PathBuf::from("/nonexistent"),
        scale,
    };
    test(&setup)
}

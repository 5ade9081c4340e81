//! Support for the integration tests in `it/`: loading the shipped scenarios, and generated
//! worlds for property tests.
//!
//! Generated worlds are rendered as scenario YAML and loaded through the real loader, so a
//! counterexample that proptest shrinks is already a scenario file: paste it under
//! `scenarios/regressions/` and it becomes a permanent test.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxsim_model::scenario::Scenario;
use mxsim_policy::registry;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Loads a scenario file, panicking with the rendered diagnostics if it is bad.
pub fn load(path: &Path) -> Arc<Scenario> {
    match mxsim_cli::files::load(path, &registry::is_known) {
        Ok(scenario) => scenario,
        Err(bad) => panic!("{}", bad.text),
    }
}

/// Loads scenario text, panicking with the diagnostics if it is bad.
pub fn load_text(text: &str) -> Arc<Scenario> {
    match mxsim_model::scenario::load(text, &registry::is_known) {
        Ok(scenario) => Arc::new(scenario),
        Err(diagnostics) => panic!("{}\n{}", diagnostics.render("generated.yaml", text), text),
    }
}

/// Every shipped scenario file, sorted.
pub fn scenario_files() -> Vec<PathBuf> {
    mxsim_cli::files::collect(&[root().join("scenarios")])
        .expect("scenarios/ exists")
        .files
}

/// One way a generated host can behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Accepts everything.
    Good,
    /// Refuses the connection.
    Refuse,
    /// Drops the SYN.
    ConnectTimeout,
    /// Greets with 421.
    Greeting421,
    /// Greets with 554.
    Greeting554,
    /// Answers EHLO with 502 (the client falls back to HELO).
    Ehlo502,
    /// 451 to MAIL.
    Mail451,
    /// 450 to RCPT.
    Rcpt450,
    /// 550 to RCPT.
    Rcpt550,
    /// 451 to DATA.
    Data451,
    /// 451 after the dot.
    EndOfData451,
    /// 554 after the dot.
    EndOfData554,
    /// Accepts the message but the reply is lost.
    EndOfDataLost,
    /// Closes the connection after MAIL.
    DropAfterMail,
    /// Delays the greeting by 6 minutes (past the 5-minute timeout).
    SlowGreeting,
}

impl Behaviour {
    /// Every behaviour, for strategies.
    pub const ALL: [Behaviour; 15] = [
        Behaviour::Good,
        Behaviour::Refuse,
        Behaviour::ConnectTimeout,
        Behaviour::Greeting421,
        Behaviour::Greeting554,
        Behaviour::Ehlo502,
        Behaviour::Mail451,
        Behaviour::Rcpt450,
        Behaviour::Rcpt550,
        Behaviour::Data451,
        Behaviour::EndOfData451,
        Behaviour::EndOfData554,
        Behaviour::EndOfDataLost,
        Behaviour::DropAfterMail,
        Behaviour::SlowGreeting,
    ];

    fn yaml(self) -> &'static str {
        match self {
            Behaviour::Good => "",
            Behaviour::Refuse => "connect: refuse",
            Behaviour::ConnectTimeout => "connect: timeout",
            Behaviour::Greeting421 => "greeting: 421",
            Behaviour::Greeting554 => "greeting: 554",
            Behaviour::Ehlo502 => "ehlo_reply: 502",
            Behaviour::Mail451 => "mail: 451",
            Behaviour::Rcpt450 => "rcpt: 450",
            Behaviour::Rcpt550 => "rcpt: 550",
            Behaviour::Data451 => "data: 451",
            Behaviour::EndOfData451 => "end_of_data: 451",
            Behaviour::EndOfData554 => "end_of_data: 554",
            Behaviour::EndOfDataLost => "end_of_data: lost",
            Behaviour::DropAfterMail => "drop_after: mail",
            Behaviour::SlowGreeting => "greeting_delay: 6m",
        }
    }
}

/// One generated MX host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedHost {
    /// MX preference.
    pub preference: u16,
    /// How it behaves.
    pub behaviour: Behaviour,
    /// Whether it advertises FOOBAR.
    pub foobar: bool,
    /// How many A records it has (1 or 2; both addresses behave alike).
    pub addresses: u8,
}

/// A generated world: one domain, some MX hosts, one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedWorld {
    /// The hosts, `mx1.foo.example`, `mx2.foo.example`, … in order.
    pub hosts: Vec<GeneratedHost>,
    /// Whether the message wants FOOBAR.
    pub wants_foobar: bool,
    /// A second recipient, `other@foo.example`, beside `user@foo.example`.
    pub two_recipients: bool,
}

impl GeneratedWorld {
    /// The world as a scenario file.
    pub fn to_yaml(&self) -> String {
        let to = if self.two_recipients {
            "[user@foo.example, other@foo.example]"
        } else {
            "[user@foo.example]"
        };
        let mut text = format!("title: generated world\nmessage:\n  to: {to}\n");
        if self.wants_foobar {
            text.push_str("  wants: [FOOBAR]\n");
        }
        text.push_str("dns:\n  foo.example:\n    mx: [");
        let records: Vec<String> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(index, host)| format!("{} mx{}.foo.example", host.preference, index + 1))
            .collect();
        text.push_str(&records.join(", "));
        text.push_str("]\n");
        for (index, host) in self.hosts.iter().enumerate() {
            let addresses: Vec<String> = (0..host.addresses.max(1))
                .map(|n| format!("192.0.2.{}", 10 * (index + 1) + usize::from(n)))
                .collect();
            let _ = writeln!(
                text,
                "  mx{}.foo.example: {{a: [{}]}}",
                index + 1,
                addresses.join(", ")
            );
        }
        text.push_str("servers:\n");
        for (index, host) in self.hosts.iter().enumerate() {
            let mut keys: Vec<String> = Vec::new();
            if !host.behaviour.yaml().is_empty() {
                keys.push(host.behaviour.yaml().to_owned());
            }
            if host.foobar {
                keys.push("ehlo: [FOOBAR]".to_owned());
            }
            let _ = writeln!(
                text,
                "  mx{}.foo.example: {{{}}}",
                index + 1,
                keys.join(", ")
            );
        }
        text
    }
}

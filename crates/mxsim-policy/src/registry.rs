//! Policies by name: the preset files under `policies/` (compiled in), run by the engine, and
//! policies written in Rust against the traits, side by side. Both are an [`Entry`]: name,
//! summary, source, claims, departures and a constructor; [`entries`] lists them in listing order.

use std::sync::OnceLock;

use mxsim_model::diag::Diagnostics;
use mxsim_model::rules::Departure;
use mxsim_model::world::{Policy, World};

use crate::engine::Engine;
use crate::file;
use crate::rust::FirstMxOnly;
use crate::settings::{Claim, Settings};

/// A preset file shipped with mxsim.
#[derive(Clone, Debug)]
pub struct Preset {
    /// The preset's name.
    pub name: &'static str,
    /// The file's text, as `mxsim policies NAME` prints it.
    pub text: &'static str,
    /// The settings it loads to.
    pub settings: Settings,
}

/// The preset files, in listing order: the baseline and the standards readings, the seed read
/// literally, then the MTAs.
const FILES: &[(&str, &str)] = &[
    ("rfc5321", include_str!("../../../policies/rfc5321.yaml")),
    (
        "klensin-strict",
        include_str!("../../../policies/klensin-strict.yaml"),
    ),
    (
        "same-preference",
        include_str!("../../../policies/same-preference.yaml"),
    ),
    (
        "whole-list",
        include_str!("../../../policies/whole-list.yaml"),
    ),
    (
        "seed-literal",
        include_str!("../../../policies/seed-literal.yaml"),
    ),
    (
        "postfix-3.10",
        include_str!("../../../policies/postfix-3.10.yaml"),
    ),
    (
        "postfix-3.11",
        include_str!("../../../policies/postfix-3.11.yaml"),
    ),
    ("exim-4", include_str!("../../../policies/exim-4.yaml")),
    (
        "sendmail-8",
        include_str!("../../../policies/sendmail-8.yaml"),
    ),
    (
        "opensmtpd-7",
        include_str!("../../../policies/opensmtpd-7.yaml"),
    ),
    ("stalwart", include_str!("../../../policies/stalwart.yaml")),
    ("maddy", include_str!("../../../policies/maddy.yaml")),
    ("mox", include_str!("../../../policies/mox.yaml")),
    ("chasquid", include_str!("../../../policies/chasquid.yaml")),
    ("haraka", include_str!("../../../policies/haraka.yaml")),
];

/// A Rust policy's documented departures: rule id and why, with the source.
pub type RustDepartures = &'static [(&'static str, &'static str)];

/// Policies written in Rust: name, one-line summary, source, and the rules it departs from on
/// purpose (a policy file's `departures:`).
pub const RUST_POLICIES: &[(&str, &str, &str, RustDepartures)] = &[(
    FirstMxOnly::NAME,
    "A naive client: the best MX in DNS order, its first address, one try, no fallback (Rust, not a file)",
    "crates/mxsim-policy/src/rust.rs",
    &[
        (
            "S1",
            "the naive client of many scripts greets with HELO only, never EHLO (crates/mxsim-policy/src/rust.rs: the HELO step)",
        ),
        (
            "D11",
            "equal preferences are taken in DNS order, never randomised (crates/mxsim-policy/src/rust.rs: the best MX in DNS order)",
        ),
        (
            "D13",
            "one address of one host, one try: no second address (crates/mxsim-policy/src/rust.rs)",
        ),
        (
            "S6",
            "waits five minutes for every reply, the end-of-data reply included, below its ten minutes (crates/mxsim-policy/src/rust.rs: WAIT)",
        ),
        (
            "X8",
            "greets with HELO and never reads EHLO keywords, so it sends an internationalized address whatever the host offers (crates/mxsim-policy/src/rust.rs: the HELO step)",
        ),
        (
            "X5",
            "greets with HELO and never reads EHLO keywords, so a REQUIRETLS message goes to the best MX without TLS (crates/mxsim-policy/src/rust.rs: the HELO step)",
        ),
        (
            "Q5",
            "remembers nothing across messages: each message waits out a dead host's connect timeout again (crates/mxsim-policy/src/rust.rs: one try)",
        ),
        (
            "D5",
            "asks only the A record of the first MX and defers when it gives no address, whatever the other hosts have (crates/mxsim-policy/src/rust.rs: deliver_one, \"no address for the first MX\")",
        ),
        (
            "D14",
            "knows nothing of its own name: the best MX is taken even when it is the client itself (crates/mxsim-policy/src/rust.rs: deliver_one, the best MX in DNS order)",
        ),
        (
            "D15",
            "as the best MX it connects to itself instead of returning the message (crates/mxsim-policy/src/rust.rs: deliver_one, no self check)",
        ),
    ],
)];

/// A registered policy, a preset file or a Rust policy alike.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name `--policy` and `expect:` use.
    pub name: &'static str,
    /// One line on what it models.
    pub summary: &'static str,
    /// Where its behaviour comes from: documentation, source code, or the Rust file.
    pub source: &'static str,
    /// The rules it claims to keep beyond the RFCs.
    pub claims: Vec<Claim>,
    /// The rules it documents that it departs from, with reason and source.
    pub departures: Vec<Departure>,
    /// How to build it.
    constructor: Constructor,
}

/// How an [`Entry`] is built.
#[derive(Clone, Copy, Debug)]
enum Constructor {
    /// The engine over a preset's settings.
    Preset(&'static Preset),
    /// [`FirstMxOnly`].
    FirstMxOnly,
}

impl Entry {
    /// The policy, ready to run in any world.
    pub fn build<W: World + 'static>(&self) -> Box<dyn Policy<W>> {
        match self.constructor {
            Constructor::Preset(preset) => Box::new(Engine {
                settings: preset.settings.clone(),
            }),
            Constructor::FirstMxOnly => Box::new(FirstMxOnly),
        }
    }

    /// The preset file behind it, for a preset.
    pub fn preset(&self) -> Option<&'static Preset> {
        match self.constructor {
            Constructor::Preset(preset) => Some(preset),
            Constructor::FirstMxOnly => None,
        }
    }
}

/// Every registered policy, in listing order: the presets, then the Rust policies.
pub fn entries() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let presets = presets().iter().map(|preset| Entry {
            name: preset.name,
            summary: &preset.settings.summary,
            source: &preset.settings.source,
            claims: preset.settings.claims.clone(),
            departures: preset.settings.departures.clone(),
            constructor: Constructor::Preset(preset),
        });
        let rust = RUST_POLICIES
            .iter()
            .map(|&(name, summary, source, departures)| Entry {
                name,
                summary,
                source,
                claims: Vec::new(),
                departures: departures
                    .iter()
                    .map(|&(rule, reason)| Departure {
                        rule: mxsim_model::rules::find(rule)
                            .map(|found| found.id)
                            .expect("a Rust policy departs from rules of the table"),
                        reason: reason.to_owned(),
                    })
                    .collect(),
                constructor: match name {
                    FirstMxOnly::NAME => Constructor::FirstMxOnly,
                    _ => unreachable!("every Rust policy has a constructor"),
                },
            });
        presets.chain(rust).collect()
    })
}

/// The registered policy called `name`.
pub fn entry(name: &str) -> Option<&'static Entry> {
    entries().iter().find(|entry| entry.name == name)
}

/// Every preset, loaded once. A shipped preset that does not load is a bug in mxsim.
pub fn presets() -> &'static [Preset] {
    static PRESETS: OnceLock<Vec<Preset>> = OnceLock::new();
    PRESETS.get_or_init(|| {
        let mut loaded: Vec<Preset> = Vec::with_capacity(FILES.len());
        for (name, text) in FILES {
            let find = |wanted: &str| {
                loaded
                    .iter()
                    .find(|preset| preset.settings.name == wanted)
                    .map(|preset| preset.settings.clone())
                    .ok_or_else(|| file::Extends {
                        message: format!("extends `{wanted}`, which is not a preset before it"),
                        help: "presets extend presets listed before them".to_owned(),
                    })
            };
            let settings = file::load(text, &find, &|_| false).unwrap_or_else(|diagnostics| {
                panic!(
                    "preset {name} does not load:\n{}",
                    diagnostics.render(&format!("policies/{name}.yaml"), text)
                )
            });
            assert_eq!(
                settings.name, *name,
                "policies/{name}.yaml names itself {}",
                settings.name
            );
            loaded.push(Preset {
                name,
                text,
                settings,
            });
        }
        loaded
    })
}

/// The names of every policy, in listing order.
pub fn names() -> Vec<&'static str> {
    FILES
        .iter()
        .map(|(name, _)| *name)
        .chain(RUST_POLICIES.iter().map(|(name, _, _, _)| *name))
        .collect()
}

/// True when `name` is a known policy.
pub fn is_known(name: &str) -> bool {
    names().contains(&name)
}

/// The preset called `name`.
pub fn preset(name: &str) -> Option<&'static Preset> {
    presets().iter().find(|preset| preset.settings.name == name)
}

/// The policy called `name`, ready to run in any world.
pub fn get<W: World + 'static>(name: &str) -> Option<Box<dyn Policy<W>>> {
    entry(name).map(Entry::build)
}

/// Loads a policy file the user wrote; `extends` may name any preset. A policy written in
/// Rust has no settings to start from, and `extends` says so; an unknown name gets a "did you
/// mean".
pub fn load_file(text: &str) -> Result<Settings, Diagnostics> {
    file::load(text, &extends, &is_known)
}

/// The settings `extends: name` starts from, or why there are none.
fn extends(name: &str) -> Result<Settings, file::Extends> {
    let presets: Vec<&str> = presets()
        .iter()
        .map(|preset| preset.settings.name.as_str())
        .collect();
    match entry(name) {
        Some(entry) if let Some(preset) = entry.preset() => Ok(preset.settings.clone()),
        Some(_) => Err(file::Extends {
            message: format!(
                "`extends: {name}` cannot start from `{name}`: it is written in Rust (crates/mxsim-policy/src/rust.rs), with no settings to inherit"
            ),
            help: format!("extend a preset file instead: {}", presets.join(", ")),
        }),
        None => {
            let escaped = mxsim_model::escape::terminal(name);
            let help = match mxsim_model::diag::nearest(name, &presets) {
                Some(near) => format!("did you mean `{near}`? `mxsim policies` lists them"),
                None => format!("the presets: {}", presets.join(", ")),
            };
            Err(file::Extends {
                message: format!("extends unknown policy `{escaped}`"),
                help,
            })
        }
    }
}

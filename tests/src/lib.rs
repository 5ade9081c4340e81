//! Support for the integration tests in `it/`: loading the shipped scenarios, hostile
//! documents and queue loads. Generated worlds live in the lab (`mxsim_lab::generate`), as
//! `Scenario` values the scenario writer turns into files.

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
        Ok((scenario, _warnings)) => scenario,
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

/// Hostile documents of legal size: each is under the 1 MiB input budget and the node budget,
/// and each once made the loader do quadratic work (hints over thousands of names, thousands
/// of rendered errors, duplicate checks over long lists). The test in `it/bad_input.rs` writes
/// them under the target dir as `hostile-<name>.yaml` so the release binary can be timed on them.
pub mod hostile {
    use std::fmt::Write as _;

    /// One generated document: a stable name and its bytes.
    pub struct Document {
        /// A stable name, used in the file name.
        pub name: &'static str,
        /// The YAML text.
        pub text: String,
        /// True when the document must load; false when it must be rejected.
        pub loads: bool,
        /// A phrase the output must contain.
        pub says: &'static str,
    }

    /// Every hostile document.
    pub fn documents() -> Vec<Document> {
        vec![
            unreachable_servers("unreachable-10000-mx-8000-servers", 10_000, 8_000),
            // 25,000 × 12,400 fits the 1 MiB budget.
            unreachable_servers("unreachable-25000-mx-12400-servers", 25_000, 12_400),
            unknown_never_names(),
            many_errors(),
            long_mx_list_with_duplicates(),
            equal_preference(),
        ]
    }

    fn mx_list(text: &mut String, count: usize, name: impl Fn(usize) -> String) {
        text.push_str("    mx: [");
        for index in 0..count {
            if index > 0 {
                text.push_str(", ");
            }
            let _ = write!(text, "10 {}", name(index));
        }
        text.push_str("]\n");
    }

    /// Many MX names and many servers nothing leads to, each wanting a "did you mean".
    fn unreachable_servers(name: &'static str, mx: usize, servers: usize) -> Document {
        let mut text =
            String::from("title: t\nmessage: {to: [u@foo.example]}\ndns:\n  foo.example:\n");
        mx_list(&mut text, mx, |index| format!("mx{index:05}.foo.example"));
        text.push_str("servers:\n");
        for index in 0..servers {
            let _ = writeln!(text, "  sv{index:05}.bar.example:");
        }
        Document {
            name,
            text,
            loads: false,
            says: "is unreachable",
        }
    }

    /// 2,000 unknown names in `never:` against 10,000 known ones.
    fn unknown_never_names() -> Document {
        let mut text = String::from("title: t\nmessage: {to: [u@foo.example]}\ndns:\n");
        for index in 0..10_000 {
            let _ = writeln!(text, "  h{index:05}.foo.example: nxdomain");
        }
        text.push_str("expect:\n  rfc5321:\n    never: [");
        for index in 0..2_000 {
            if index > 0 {
                text.push_str(", ");
            }
            let _ = write!(text, "x{index:05}.bar.example");
        }
        text.push_str("]\n");
        Document {
            name: "never-2000-unknown-of-10000",
            text,
            loads: false,
            says: "which is neither in dns nor in servers",
        }
    }

    /// 45,000 bad recipients, one per line: 45,000 errors to sort and render, each on its own
    /// line, so rendering that rescans the file per error is quadratic.
    fn many_errors() -> Document {
        let mut text = String::from("title: t\nmessage:\n  to:\n");
        for _ in 0..45_000 {
            text.push_str("  - x\n");
        }
        text.push_str("dns: {}\n");
        Document {
            name: "errors-45000",
            text,
            loads: false,
            says: "is not a mailbox",
        }
    }

    /// 45,000 distinct MX records and a few repeated at the end.
    fn long_mx_list_with_duplicates() -> Document {
        let mut text =
            String::from("title: t\nmessage: {to: [u@foo.example]}\ndns:\n  foo.example:\n");
        mx_list(&mut text, 45_000, |index| {
            format!(
                "m{}.e",
                if index >= 44_990 {
                    index - 44_990
                } else {
                    index
                }
            )
        });
        Document {
            name: "mx-45000-with-duplicates",
            text,
            loads: false,
            says: "is listed twice",
        }
    }

    /// 10,000 MX hosts of equal preference, the first 5,000 with an address and a server: the
    /// equal-preference set with that many servers (each host with an `a` record and a server
    /// costs eight nodes). It must load.
    fn equal_preference() -> Document {
        let mut text =
            String::from("title: t\nmessage: {to: [u@foo.example]}\ndns:\n  foo.example:\n");
        mx_list(&mut text, 10_000, |index| {
            format!("m{index:05}.foo.example")
        });
        for index in 0..5_000 {
            let _ = writeln!(
                text,
                "  m{index:05}.foo.example: {{a: [10.{}.{}.1]}}",
                index / 250,
                index % 250
            );
        }
        text.push_str("servers:\n");
        for index in 0..5_000 {
            let _ = writeln!(text, "  m{index:05}.foo.example: {{}}");
        }
        Document {
            name: "equal-preference-10000",
            text,
            loads: true,
            says: "1 file:",
        }
    }
}

/// Queue worlds for the cost figures of a queue run (issue 7): `messages` messages to 50
/// domains, submitted evenly over 5 virtual days, with outages that end and greylisting, so
/// that retries happen. Written out by a test and timed with the release binary.
pub mod queue_load {
    use std::fmt::Write as _;

    /// The number of recipient domains.
    pub const DOMAINS: usize = 50;

    /// A queue scenario with `messages` messages; every seventh has a second recipient.
    pub fn world(messages: usize) -> String {
        let mut text = format!(
            "title: {messages} messages to {DOMAINS} domains over 5 days, with outages\nmessages:\n"
        );
        let spacing_ms = 5 * 24 * 3_600_000 / messages.max(1) as u64;
        for index in 0..messages {
            let at = index as u64 * spacing_ms;
            let _ = write!(
                text,
                "  - {{at: {at}ms, to: [u{index}@d{}.example",
                index % DOMAINS
            );
            if index % 7 == 0 {
                let _ = write!(text, ", v{index}@d{}.example", (index + 13) % DOMAINS);
            }
            text.push_str("]}\n");
        }
        text.push_str("dns:\n");
        for domain in 0..DOMAINS {
            let _ = writeln!(
                text,
                "  d{domain}.example: {{mx: [10 a.d{domain}.example, 20 b.d{domain}.example]}}"
            );
        }
        text.push_str("servers:\n");
        for domain in 0..DOMAINS {
            // Every fifth domain loses its primary for six hours, every tenth both hosts for
            // twelve, at a time that moves with the domain; one in 25 greylists.
            let start = domain * 2;
            let primary = match domain % 5 {
                0 => format!(
                    "{{during: [{{from: {start}h, until: {}h, connect: refuse}}]}}",
                    start + 6
                ),
                _ if domain % 25 == 3 => "{greylist: {delay: 10m}}".to_owned(),
                _ => "{}".to_owned(),
            };
            let backup = if domain % 10 == 0 {
                format!(
                    "{{during: [{{from: {start}h, until: {}h, connect: refuse}}]}}",
                    start + 12
                )
            } else {
                "{}".to_owned()
            };
            let _ = writeln!(text, "  a.d{domain}.example: {primary}");
            let _ = writeln!(text, "  b.d{domain}.example: {backup}");
        }
        text
    }
}

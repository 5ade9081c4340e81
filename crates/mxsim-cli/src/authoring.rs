//! Authoring from the command line: `mxsim new` (a scenario skeleton from a one-line MX
//! description), `mxsim pin` (fill or update `expect:` from runs over every explored order),
//! `mxsim schema` (the JSON Schemas of scenario and policy files) and `mxsim findings` (the
//! seed's questions answered, as Markdown: docs/findings.md).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxsim_lab::pin;
use mxsim_lab::spec::PolicySpec;
use mxsim_model::name::Name;
use mxsim_model::scenario::json_schema::SERVER_KEY_DOCS;
use mxsim_model::scenario::{self, Expectation, expectation_text};
use mxsim_model::yaml::{self, Value};
use mxsim_policy::registry;
use mxsim_sim::Runner;

use crate::commands::bad;
use crate::files::{self, BadInput, shown};
use crate::{EXIT_OK, Output};

/// Which schema `mxsim schema` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    /// Scenario files (docs/schemas/scenario.schema.json).
    Scenario,
    /// Policy files (docs/schemas/policy.schema.json).
    Policy,
}

/// The JSON Schema of scenario files, with the registered policies as `expect:` keys.
pub fn scenario_schema() -> String {
    scenario::json_schema::scenario_schema(&registry::names())
}

/// The JSON Schema of policy files.
pub fn policy_schema() -> String {
    mxsim_policy::json_schema::policy_schema()
}

/// `mxsim schema KIND`.
pub fn schema(kind: SchemaKind) -> Output {
    ok(match kind {
        SchemaKind::Scenario => scenario_schema(),
        SchemaKind::Policy => policy_schema(),
    })
}

fn ok(stdout: String) -> Output {
    Output {
        stdout,
        stderr: String::new(),
        code: EXIT_OK,
    }
}

/// One MX record of a `new` description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxEntry {
    /// The preference.
    pub preference: u16,
    /// The host, qualified.
    pub host: Name,
}

/// Parses `10 smtp1, 10 smtp2, 20 backup`: bare names (without a dot) are qualified under
/// `domain`.
pub fn parse_mx_description(description: &str, domain: &Name) -> Result<Vec<MxEntry>, String> {
    let mut entries: Vec<MxEntry> = Vec::new();
    if description.trim().is_empty() {
        return Err(
            "the MX description is empty: write records as `10 smtp1, 10 smtp2, 20 backup`"
                .to_owned(),
        );
    }
    for (index, part) in description.split(',').enumerate() {
        let part = part.trim();
        let words: Vec<&str> = part.split_whitespace().collect();
        let [preference, host] = words[..] else {
            return Err(format!(
                "MX record {} `{part}` is not `<preference> <host>`: write records as `10 smtp1, 10 smtp2, 20 backup`",
                index + 1
            ));
        };
        let preference: u16 = preference.parse().map_err(|_| {
            format!(
                "MX record {} `{part}`: preference `{preference}` is not a number in 0–65535",
                index + 1
            )
        })?;
        if host == "." {
            return Err(format!(
                "MX record {} `{part}` is a null MX (RFC 7505): a domain with a null MX has no servers to sketch; write that file by hand",
                index + 1
            ));
        }
        let qualified = if host.contains('.') {
            host.to_owned()
        } else {
            format!("{host}.{domain}")
        };
        let host = Name::parse(&qualified)
            .map_err(|message| format!("MX record {} `{part}`: {message}", index + 1))?;
        if entries.iter().any(|entry| entry.host == host) {
            return Err(format!(
                "MX record {} `{part}`: {host} is listed twice",
                index + 1
            ));
        }
        entries.push(MxEntry { preference, host });
    }
    Ok(entries)
}

/// The skeleton `mxsim new` writes: it loads as it is.
pub fn skeleton(entries: &[MxEntry], domain: &Name) -> String {
    let mx: Vec<String> = entries
        .iter()
        .map(|entry| format!("{} {}", entry.preference, entry.host))
        .collect();
    let short: Vec<String> = entries
        .iter()
        .map(|entry| {
            let host = entry.host.as_str();
            let short = host.strip_suffix(&format!(".{domain}")).unwrap_or(host);
            format!("{} {short}", entry.preference)
        })
        .collect();
    let mut out = String::new();
    out.push_str("# A new scenario (`mxsim new`). Describe how the servers misbehave, then run\n");
    out.push_str(
        "# `mxsim pin FILE` to fill `expect:` from runs over every order, and review the diff.\n",
    );
    out.push_str("# Every key: docs/scenario-format.md. For completion in editors, add the line\n");
    out.push_str("# `# yaml-language-server: $schema=PATH/docs/schemas/scenario.schema.json`.\n");
    let _ = writeln!(
        out,
        "title: \"MX {}\"   # one line: what this world tests",
        short.join(", ")
    );
    out.push_str("# refs: [\"RFC 5321 §5.1\"]          # the rules or questions it exercises\n");
    out.push('\n');
    out.push_str("message:\n");
    let _ = writeln!(out, "  to: [user@{domain}]");
    out.push_str("  # from: sender@sender.example    # the reverse path; \"<>\" for a DSN\n");
    out.push_str("  # size: 20480                    # bytes; compared with SIZE\n");
    out.push_str("  # requires: [FOOBAR]             # without these keywords the message must not go to a host\n");
    out.push_str(
        "  # wants: [FOOBAR]                # used when offered; the message can go without them\n",
    );
    out.push('\n');
    out.push_str("dns:\n");
    let _ = writeln!(out, "  {domain}:");
    let _ = writeln!(out, "    mx: [{}]", mx.join(", "));
    out.push_str(
        "    # latency: 40ms                # every answer for this name takes this long\n",
    );
    out.push('\n');
    out.push_str("servers:\n");
    out.push_str(
        "  # A server with no keys accepts, greets 220 and accepts every command. Its keys:\n",
    );
    let width = SERVER_KEY_DOCS
        .iter()
        .map(|(_, example, _)| example.chars().count())
        .max()
        .unwrap_or(0);
    for (_, example, meaning) in SERVER_KEY_DOCS {
        let pad = width - example.chars().count();
        let _ = writeln!(out, "  #   {example}{}  # {meaning}", " ".repeat(pad));
    }
    for entry in entries {
        let _ = writeln!(out, "  {}: {{}}", entry.host);
    }
    out.push('\n');
    let best = entries
        .iter()
        .map(|entry| entry.preference)
        .min()
        .unwrap_or(0);
    let via: Vec<String> = entries
        .iter()
        .filter(|entry| entry.preference == best)
        .map(|entry| entry.host.to_string())
        .collect();
    let never: Vec<String> = entries
        .iter()
        .filter(|entry| entry.preference != best)
        .map(|entry| entry.host.to_string())
        .collect();
    out.push_str(
        "# expect:                          # `mxsim pin FILE` fills it; by hand, for example:\n",
    );
    out.push_str("#   rfc5321:\n");
    out.push_str("#     outcome: delivered           # delivered | bounced | deferred\n");
    let _ = writeln!(out, "#     via: [{}]", via.join(", "));
    if !never.is_empty() {
        let _ = writeln!(out, "#     never: [{}]", never.join(", "));
    }
    out.push_str("#     connections: 1               # connection attempts, exactly\n");
    out
}

/// `mxsim new DESCRIPTION [--domain D] [--out FILE]`.
pub fn new(description: &str, domain: &str, out: Option<&Path>) -> Output {
    let domain = match Name::parse(domain) {
        Ok(domain) => domain,
        Err(message) => return bad(format!("error: --domain: {message}\n")),
    };
    let entries = match parse_mx_description(description, &domain) {
        Ok(entries) => entries,
        Err(message) => return bad(format!("error: {message}\n")),
    };
    let text = skeleton(&entries, &domain);
    if let Err(diagnostics) = scenario::load(&text, &registry::is_known) {
        // A bug of ours, not the user's: say so rather than write a file that does not load.
        return bad(format!(
            "error: the skeleton does not load (a bug in mxsim new):\n{}",
            diagnostics.render("skeleton", &text)
        ));
    }
    match out {
        None => ok(text),
        Some(path) => {
            if path.symlink_metadata().is_ok() {
                return bad(format!(
                    "error: {} exists; mxsim new does not overwrite files\n",
                    shown(path)
                ));
            }
            match std::fs::write(path, &text) {
                Ok(()) => ok(format!("wrote {}\n", shown(path))),
                Err(error) => bad(format!("error: {}: {error}\n", shown(path))),
            }
        }
    }
}

/// Where the top-level `expect:` block is in `source`: its first and last line (0-based,
/// inclusive), or `None` when the file has none. Column-0 comments and blank lines at the end
/// of the block belong to what follows, and are kept.
fn expect_block(source: &str, lines: &[&str]) -> Result<Option<(usize, usize)>, String> {
    let root = yaml::parse(source).map_err(|_| "the file is not valid YAML".to_owned())?;
    let Value::Mapping(entries) = &root.value else {
        return Err("the file is not a YAML mapping".to_owned());
    };
    let Some(index) = entries.iter().position(|(key, _)| key.text == "expect") else {
        return Ok(None);
    };
    let key = &entries[index].0;
    if key.at.column != 1 || key.at.line == 0 {
        return Err("`expect:` must be a block key at the start of a line".to_owned());
    }
    let start = key.at.line as usize - 1;
    let mut end = match entries.get(index + 1) {
        Some((next, _)) if next.at.line as usize > start + 1 => next.at.line as usize - 2,
        Some(_) => return Err("`expect:` must be a block key on lines of its own".to_owned()),
        None => lines.len().saturating_sub(1),
    };
    while end > start && {
        let line = lines[end];
        line.trim().is_empty() || line.starts_with('#')
    } {
        end -= 1;
    }
    Ok(Some((start, end)))
}

/// `mxsim pin FILE [--policy P]...`.
pub fn pin(file: &Path, arguments: &[String]) -> Output {
    let source = match files::read_text(file) {
        Ok(source) => source,
        Err(BadInput { text }) => return bad(text),
    };
    let scenario = match files::load(file, &registry::is_known) {
        Ok((scenario, _)) => scenario,
        Err(BadInput { text }) => return bad(text),
    };
    for argument in arguments {
        if !registry::is_known(argument) {
            let hint = if Path::new(argument).exists() {
                "`expect:` names registered policies only, so a policy file cannot be pinned"
                    .to_owned()
            } else {
                "`mxsim policies` lists them".to_owned()
            };
            return bad(format!(
                "error: --policy: `{argument}` is not a registered policy; {hint}\n"
            ));
        }
    }
    let mut names: Vec<String> = arguments.to_vec();
    if names.is_empty() {
        names = scenario
            .expectations
            .iter()
            .map(|expectation| expectation.policy.clone())
            .collect();
    }
    if names.is_empty() {
        names = registry::names().into_iter().map(str::to_owned).collect();
    }
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|name| seen.insert(name.clone()));
    let runner = Runner::new();
    let mut report = String::new();
    let mut entries: Vec<Expectation> = scenario.expectations.clone();
    for name in &names {
        let pinned = pin::pin(&runner, &scenario, &PolicySpec::Named(name.clone()));
        let mut expectation = pinned.expectation;
        // What pin does not compute is kept from the entry it replaces.
        if let Some(old) = entries.iter().find(|old| old.policy == *name) {
            expectation.within = old.within;
            expectation.after = old.after;
            expectation.duplicates = old.duplicates;
        }
        let how = match (pinned.exhaustive, pinned.cut) {
            (_, true) => format!("{} runs, cut by the work budget", pinned.runs),
            (true, false) if pinned.runs == 1 => "1 order".to_owned(),
            (true, false) => format!("every order ({})", pinned.runs),
            (false, false) => format!("{} sampled seeds", pinned.runs),
        };
        let _ = writeln!(
            report,
            "  {name}: {} over {how}",
            expectation_text(&expectation)
        );
        match entries.iter_mut().find(|old| old.policy == *name) {
            Some(slot) => *slot = expectation,
            None => entries.push(expectation),
        }
    }
    let mut block = String::from("expect:\n");
    for entry in &entries {
        let _ = writeln!(block, "  {}: {}", entry.policy, expectation_text(entry));
    }
    let lines: Vec<&str> = source.split_inclusive('\n').collect();
    let text = match expect_block(&source, &lines) {
        Err(message) => return bad(format!("{}: error: {message}\n", shown(file))),
        Ok(Some((start, end))) => {
            let mut text: String = lines[..start].concat();
            text.push_str(&block);
            text.push_str(&lines[end + 1..].concat());
            text
        }
        Ok(None) => {
            let mut text = source.clone();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            if !text.is_empty() && !text.ends_with("\n\n") {
                text.push('\n');
            }
            text.push_str(&block);
            text
        }
    };
    if let Err(diagnostics) = scenario::load(&text, &registry::is_known) {
        return bad(format!(
            "error: the pinned file would not load (a bug in mxsim pin); {} is unchanged:\n{}",
            shown(file),
            diagnostics.render(&shown(file), &text)
        ));
    }
    let verb = if text == source {
        "unchanged"
    } else {
        if let Err(error) = std::fs::write(file, &text) {
            return bad(format!("error: {}: {error}\n", shown(file)));
        }
        "written"
    };
    ok(format!(
        "{}: expect: {verb} ({} pinned; review with `git diff`)\n{report}",
        shown(file),
        names.len()
    ))
}

/// `mxsim findings [PATH...]`: the seed's questions, answered from the seed scenarios.
pub fn findings(paths: &[PathBuf]) -> Output {
    let paths = if paths.is_empty() {
        mxsim_lab::findings::SOURCES
            .iter()
            .map(PathBuf::from)
            .collect()
    } else {
        paths.to_vec()
    };
    let (loaded, _notes) = match crate::commands::load_all(&paths) {
        Ok(loaded) => loaded,
        Err(output) => return output,
    };
    let loaded: Vec<(PathBuf, Arc<scenario::Scenario>)> = loaded;
    match mxsim_lab::findings::render(&loaded) {
        Ok(text) => ok(text),
        Err(message) => bad(format!("error: {message}\n")),
    }
}

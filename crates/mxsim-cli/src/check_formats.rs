//! `mxsim check`'s report as data, and its four renderings: text for people, and JSON, JUnit
//! XML and TAP 14 for CI (docs/check-formats.md). Every rendering gives each file in order
//! with its problems in place, located errors included, and the summary last.

use std::fmt::Write as _;

use mxsim_model::escape;
use mxsim_model::rules::Grade;
use serde::Serialize;

/// What `check` found, in file order.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// Schema name and version of the JSON document.
    pub schema: &'static str,
    /// The build that made the report.
    pub mxsim: mxsim_lab::compare::Build,
    /// One entry per scenario file.
    pub files: Vec<FileCheck>,
    /// The counts.
    pub summary: Summary,
}

/// One scenario file.
#[derive(Clone, Debug, Serialize)]
pub struct FileCheck {
    /// The file, as given or found.
    pub file: String,
    /// `ok`, `fail` (an expectation or claim broken), `error` (a policy panicked or broke its
    /// contract), `bad-input` (the file cannot be loaded) or `no-expectations`.
    pub status: &'static str,
    /// For `bad-input`: the located errors, rendered as on a terminal.
    pub diagnostics: Option<String>,
    /// Located warnings of a file that loaded (an MX target nothing answers for, no
    /// `expect:`), rendered as on a terminal.
    pub warnings: Option<String>,
    /// One entry per policy the file's `expect:` names, in file order.
    pub policies: Vec<PolicyResult>,
}

/// One policy's expectation on one file, over every explored order.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyResult {
    /// The policy.
    pub policy: String,
    /// `ok`, `fail` or `error`.
    pub status: &'static str,
    /// How many runs, and how they were chosen: `4 orders`, `256 sampled seeds`.
    pub runs: String,
    /// Runs that broke the expectation or a claim (`fail`) or ended in a policy error
    /// (`error`); 0 for `ok`.
    pub bad_runs: usize,
    /// The worst verdict over the runs: `PASS`, `INFO`, `DEPARTS`, `NON-STRICT`, `FAIL`.
    pub verdict: &'static str,
    /// For `fail` and `error`: what went wrong in the first such run, each line prefixed by its
    /// order.
    pub problems: Vec<String>,
    /// Every verdict other than PASS and FAIL, worst first, with its first run.
    pub verdicts: Vec<String>,
    /// The command that replays every order.
    pub reproduce: String,
}

/// The counts of a check.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Scenario files found.
    pub files: usize,
    /// Expectations that hold over every order.
    pub held: usize,
    /// Expectations broken in some order.
    pub broken: usize,
    /// Expectations whose policy panicked or broke its contract in some order.
    pub errors: usize,
    /// Files that cannot be loaded.
    pub bad_files: usize,
    /// Files without `expect:`.
    pub without_expectations: usize,
    /// How many expectations got each verdict, in [`Grade::ALL`] order.
    pub verdicts: Vec<VerdictCount>,
}

/// How many expectations got one verdict.
#[derive(Clone, Debug, Serialize)]
pub struct VerdictCount {
    /// `PASS`, `INFO`, `DEPARTS`, `NON-STRICT` or `FAIL`.
    pub verdict: &'static str,
    /// Expectations whose worst verdict it is.
    pub expectations: usize,
}

/// `n noun` with the noun's plural when `n` is not 1: `1 file`, `2 files`.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

impl Summary {
    /// The summary lines of the text format.
    pub fn text(&self) -> String {
        let verdicts = self
            .verdicts
            .iter()
            .map(|count| format!("{} {}", count.expectations, count.verdict))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{}: {}, {} broken, {}, {}, {} without expectations\nverdicts: {verdicts}\n",
            count(self.files, "file", "files"),
            count(self.held, "expectation holds", "expectations hold"),
            self.broken,
            count(self.errors, "policy error", "policy errors"),
            count(self.bad_files, "file with errors", "files with errors"),
            self.without_expectations,
        )
    }

    /// A summary of `files` files, every count at 0.
    pub fn new(files: usize) -> Summary {
        Summary {
            files,
            verdicts: Grade::ALL
                .iter()
                .map(|grade| VerdictCount {
                    verdict: grade.word(),
                    expectations: 0,
                })
                .collect(),
            ..Summary::default()
        }
    }

    /// Counts `grade` once.
    pub fn grade(&mut self, grade: Grade) {
        if let Some(count) = self
            .verdicts
            .iter_mut()
            .find(|count| count.verdict == grade.word())
        {
            count.expectations += 1;
        }
    }
}

/// Text: a line per file and policy with its problems under it, then the summary. A file that
/// cannot be loaded gets a line here; its located errors are for standard error, which the
/// binary prints before standard output, so they come before the summary. `quiet` keeps only the problems and the summary.
pub fn text(report: &CheckReport, quiet: bool) -> String {
    let mut out = String::new();
    for file in &report.files {
        let name = &file.file;
        if file.diagnostics.is_some() {
            // The located errors go to standard error, which `mxsim` prints first.
            let _ = writeln!(
                out,
                "error {name}: cannot be loaded (its errors are above, on standard error)"
            );
            continue;
        }
        if file.status == "no-expectations" && !quiet {
            let _ = writeln!(out, "none  {name}: no expectations");
        }
        for policy in &file.policies {
            match policy.status {
                "error" => {
                    let _ = writeln!(
                        out,
                        "ERROR {name} {} ({} of {} {} in a policy error)",
                        policy.policy,
                        policy.bad_runs,
                        policy.runs,
                        if policy.bad_runs == 1 { "ends" } else { "end" }
                    );
                }
                "fail" => {
                    let _ = writeln!(
                        out,
                        "FAIL  {name} {} ({} of {} {} it)",
                        policy.policy,
                        policy.bad_runs,
                        policy.runs,
                        if policy.bad_runs == 1 {
                            "breaks"
                        } else {
                            "break"
                        }
                    );
                }
                _ if quiet => continue,
                _ => {
                    let _ = writeln!(
                        out,
                        "ok    {name} {} ({}) · {}",
                        policy.policy, policy.runs, policy.verdict
                    );
                }
            }
            for line in &policy.problems {
                let _ = writeln!(out, "        {line}");
            }
            if policy.status != "ok" {
                let _ = writeln!(out, "        reproduce: {}", policy.reproduce);
            }
            for line in &policy.verdicts {
                let _ = writeln!(out, "        {line}");
            }
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&report.summary.text());
    out
}

/// JSON: the report as one document.
pub fn json(report: &CheckReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("the report is plain data");
    text.push('\n');
    text
}

/// JUnit XML: a test suite per file, a test case per policy its `expect:` names; a file that
/// cannot be loaded is a case `load` with an `<error>`, one without `expect:` a skipped case.
pub fn junit(report: &CheckReport) -> String {
    let summary = &report.summary;
    let tests: usize = report
        .files
        .iter()
        .map(|file| file.policies.len().max(1))
        .sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"mxsim check\" tests=\"{tests}\" failures=\"{}\" errors=\"{}\">",
        summary.broken,
        summary.errors + summary.bad_files
    );
    for file in &report.files {
        let name = xml(&file.file);
        let failures = file.policies.iter().filter(|p| p.status == "fail").count();
        let errors = file.policies.iter().filter(|p| p.status == "error").count()
            + usize::from(file.diagnostics.is_some());
        let skipped = usize::from(file.status == "no-expectations");
        let _ = writeln!(
            out,
            "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\">",
            file.policies.len().max(1)
        );
        if let Some(diagnostics) = &file.diagnostics {
            let _ = writeln!(
                out,
                "    <testcase name=\"load\" classname=\"{name}\">\n      <error message=\"cannot be loaded\">{}</error>\n    </testcase>",
                xml(diagnostics)
            );
        } else if skipped == 1 {
            let _ = writeln!(
                out,
                "    <testcase name=\"expect\" classname=\"{name}\">\n      <skipped message=\"no expectations\"/>\n    </testcase>"
            );
        }
        for policy in &file.policies {
            let _ = writeln!(
                out,
                "    <testcase name=\"{}\" classname=\"{name}\">",
                xml(&policy.policy)
            );
            let mut body = policy.problems.join("\n");
            if policy.status != "ok" {
                let _ = write!(body, "\nreproduce: {}", policy.reproduce);
            }
            match policy.status {
                "fail" => {
                    let _ = writeln!(
                        out,
                        "      <failure message=\"{} of {} break the expectation\">{}</failure>",
                        policy.bad_runs,
                        xml(&policy.runs),
                        xml(&body)
                    );
                }
                "error" => {
                    let _ = writeln!(
                        out,
                        "      <error message=\"{} of {} end in a policy error\">{}</error>",
                        policy.bad_runs,
                        xml(&policy.runs),
                        xml(&body)
                    );
                }
                _ => {}
            }
            let mut system_out = format!("{} · {}", policy.runs, policy.verdict);
            for line in &policy.verdicts {
                let _ = write!(system_out, "\n{line}");
            }
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>\n    </testcase>",
                xml(&system_out)
            );
        }
        if let Some(warnings) = &file.warnings {
            let _ = writeln!(out, "    <system-err>{}</system-err>", xml(warnings));
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Text for XML element content or a quoted attribute: line breaks kept, other control
/// characters escaped as on a terminal (XML 1.0 cannot carry most of them), markup characters
/// as entities.
fn xml(text: &str) -> String {
    text.split('\n')
        .map(escape::html)
        .collect::<Vec<_>>()
        .join("\n")
}

/// TAP version 14: a test point per file and policy (a file that cannot be loaded or has no
/// `expect:` is one point), problems in a YAML block under a failing point.
pub fn tap(report: &CheckReport) -> String {
    let points: usize = report
        .files
        .iter()
        .map(|file| file.policies.len().max(1))
        .sum();
    let mut out = format!("TAP version 14\n1..{points}\n");
    let mut number = 0;
    for file in &report.files {
        if let Some(diagnostics) = &file.diagnostics {
            number += 1;
            let _ = writeln!(
                out,
                "not ok {number} - {} cannot be loaded",
                tap_description(&file.file)
            );
            out.push_str("  ---\n  diagnostics: |\n");
            for line in diagnostics.lines() {
                let _ = writeln!(out, "    {}", escape::terminal(line));
            }
            out.push_str("  ...\n");
            continue;
        }
        if file.policies.is_empty() {
            number += 1;
            let _ = writeln!(
                out,
                "ok {number} - {} # SKIP no expectations",
                tap_description(&file.file)
            );
            tap_warnings(&mut out, file);
            continue;
        }
        for policy in &file.policies {
            number += 1;
            let description = tap_description(&format!("{} {}", file.file, policy.policy));
            if policy.status == "ok" {
                let _ = writeln!(out, "ok {number} - {description}");
            } else {
                let _ = writeln!(out, "not ok {number} - {description}");
            }
            out.push_str("  ---\n");
            let _ = writeln!(out, "  runs: {}", yaml_string(&policy.runs));
            let _ = writeln!(out, "  verdict: {}", policy.verdict);
            if policy.status != "ok" {
                let _ = writeln!(out, "  bad_runs: {}", policy.bad_runs);
                list(&mut out, "problems", &policy.problems);
                let _ = writeln!(out, "  reproduce: {}", yaml_string(&policy.reproduce));
            }
            list(&mut out, "verdicts", &policy.verdicts);
            out.push_str("  ...\n");
            // A file's warnings go with its last point.
            if std::ptr::eq(policy, file.policies.last().expect("not empty")) {
                tap_warnings(&mut out, file);
            }
        }
    }
    out
}

/// A file's warnings as TAP comment lines (`# …`), which harnesses show and never count.
fn tap_warnings(out: &mut String, file: &FileCheck) {
    for line in file.warnings.iter().flat_map(|text| text.lines()) {
        let _ = writeln!(out, "# {}", escape::terminal(line));
    }
}

fn list(out: &mut String, key: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {key}:");
    for item in items {
        let _ = writeln!(out, "    - {}", yaml_string(item));
    }
}

/// A YAML scalar that is always a string: JSON's quoted form, which YAML reads the same.
fn yaml_string(text: &str) -> String {
    serde_json::to_string(&escape::terminal(text)).expect("a string serializes")
}

/// A TAP description: one line, `#` (a directive) and `\` escaped with a backslash.
fn tap_description(text: &str) -> String {
    let mut out = String::new();
    for c in escape::terminal(text).chars() {
        if c == '#' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

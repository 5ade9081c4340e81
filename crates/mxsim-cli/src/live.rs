//! `mxsim live`: check the arguments, load every file, check the machine, then run each file
//! against each MTA in its own namespaces (this binary re-executed under `unshare` with the
//! hidden `--inside`), and show what came back.
//!
//! The inner run writes one JSON report on standard output ([`FileReport`]): the trace as text,
//! the MTA's verdict, the expectation's result and the agreement with the preset, which the
//! inner run computes with the lab (it has the scenario and the preset at hand). The outer
//! process renders the reports as text as each comes in (a live corpus takes minutes), or
//! gathers them into the agreement table.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use mxsim_lab::agree::{self, Agreement, Parted, Summary};
use mxsim_lab::spec::PolicySpec;
use mxsim_live::{Options, clock::SCALE_RANGE, mta, namespace};
use mxsim_model::escape;
use mxsim_model::scenario::Scenario;
use mxsim_policy::registry;
use mxsim_sim::Runner;
use serde::{Deserialize, Serialize};

use crate::args::{LiveFormat, LiveMta};
use crate::files::{self, BadInput, shown};
use crate::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, Output};

/// What one file's run against one MTA reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileReport {
    /// The file as given.
    pub file: String,
    /// The MTA (`postfix`, `exim`, `opensmtpd`).
    pub mta: String,
    /// Its package version.
    pub version: String,
    /// The preset it stands in for.
    pub policy: String,
    /// Real seconds per scenario second.
    pub scale: f64,
    /// The run's header: the MTA and where each server listens.
    pub header: Vec<String>,
    /// What the run could not do exactly as the simulator does.
    pub notes: Vec<String>,
    /// The trace, in scenario time, as text.
    pub trace: String,
    /// The MTA's verdict, one line per recipient.
    pub verdict: Vec<String>,
    /// `holds`, `broken`, `none` (no expectation for the policy), `skipped` or `error`.
    pub expectation: String,
    /// What broke, or why it was skipped, or the error.
    pub problems: Vec<String>,
    /// The run held against the preset's prediction.
    pub agreement: Option<AgreementReport>,
}

/// [`Agreement`] as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgreementReport {
    /// The preset.
    pub preset: String,
    /// Which of its runs is shown.
    pub order: String,
    /// Predicted outcome, hosts and connections.
    pub predicted: SummaryReport,
    /// Observed outcome, hosts and connections.
    pub observed: SummaryReport,
    /// Whether the outcome, the hosts and the connection count agree.
    pub agrees: [bool; 3],
    /// The first step where they part: its number, the preset's and the real MTA's step.
    pub parted: Option<(usize, Option<String>, Option<String>)>,
}

/// [`Summary`] as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SummaryReport {
    /// Outcomes.
    pub outcome: String,
    /// Hosts in attempt order.
    pub hosts: Vec<String>,
    /// Connection attempts.
    pub connections: usize,
}

impl AgreementReport {
    fn of(agreement: &Agreement) -> AgreementReport {
        let summary = |summary: &Summary| SummaryReport {
            outcome: summary.outcome.clone(),
            hosts: summary.hosts.clone(),
            connections: summary.connections,
        };
        AgreementReport {
            preset: agreement.preset.clone(),
            order: agreement.order.clone(),
            predicted: summary(&agreement.predicted),
            observed: summary(&agreement.observed),
            agrees: [agreement.outcome, agreement.hosts, agreement.connections],
            parted: agreement.parted.as_ref().map(|parted| {
                (
                    parted.step,
                    parted.predicted.clone(),
                    parted.observed.clone(),
                )
            }),
        }
    }

    fn agreement(&self) -> Agreement {
        let summary = |summary: &SummaryReport| Summary {
            outcome: summary.outcome.clone(),
            hosts: summary.hosts.clone(),
            connections: summary.connections,
        };
        Agreement {
            preset: self.preset.clone(),
            order: self.order.clone(),
            predicted: summary(&self.predicted),
            observed: summary(&self.observed),
            outcome: self.agrees[0],
            hosts: self.agrees[1],
            connections: self.agrees[2],
            parted: self
                .parted
                .clone()
                .map(|(step, predicted, observed)| Parted {
                    step,
                    predicted,
                    observed,
                }),
        }
    }
}

/// Runs `mxsim live`.
pub fn live(
    files: &[PathBuf],
    mtas: &[LiveMta],
    policy: Option<String>,
    format: LiveFormat,
    (scale, retry_at): (f64, Vec<mxsim_model::time::Duration>),
    inside: bool,
) -> Output {
    if let Err(text) = check_arguments(policy.as_deref(), scale) {
        return bad(text);
    }
    if inside {
        let ([file], [mta]) = (files, mtas) else {
            return bad("mxsim live --inside takes one file and one MTA\n".to_owned());
        };
        let mta = mta.mta();
        let options = Options {
            mta,
            policy: policy.unwrap_or_else(|| mta.preset().to_owned()),
            scale,
            retry_at,
        };
        return run_inside(file, &options);
    }
    // Every file loads before any runs: bad input costs no MTA time.
    let found = match files::collect(files) {
        Ok(found) => found,
        Err(BadInput { text }) => return bad(text),
    };
    let files = &found.files;
    let mut warnings = found
        .notes
        .iter()
        .map(|note| format!("{note}\n"))
        .collect::<String>();
    let mut scenarios = Vec::with_capacity(files.len());
    for file in files {
        match files::load(file, &|name| registry::is_known(name)) {
            Ok((scenario, text)) => {
                warnings.push_str(&text);
                scenarios.push(scenario);
            }
            Err(BadInput { text }) => return bad(text),
        }
    }
    let mut problems = Vec::new();
    if let Err(text) = namespace::preflight() {
        problems.push(text);
    }
    for mta in mtas {
        if let Err(text) = mta::installed(mta.mta()) {
            problems.push(text);
        }
    }
    if !problems.is_empty() {
        return bad(format!("mxsim live: {}\n", problems.join("\nmxsim live: ")));
    }
    write_now(&warnings, true);
    let mut code = EXIT_OK;
    let mut counts = [0usize; 4];
    let mut reports = Vec::new();
    for mta in mtas {
        let mta = mta.mta();
        let options = Options {
            mta,
            policy: policy.clone().unwrap_or_else(|| mta.preset().to_owned()),
            scale: if mta.scales() { scale } else { 1.0 },
            retry_at: retry_at.clone(),
        };
        for (file, scenario) in files.iter().zip(&scenarios) {
            let report = match too_long(scenario, &options) {
                Some(reason) => skipped(file, &options, reason),
                None => run_outside(file, &options),
            };
            let file_code = match report.expectation.as_str() {
                "holds" | "skipped" => EXIT_OK,
                "broken" | "none" => EXIT_FAILED,
                _ => EXIT_BAD_INPUT,
            };
            counts[match report.expectation.as_str() {
                "holds" => 0,
                "skipped" => 1,
                "broken" | "none" => 2,
                _ => 3,
            }] += 1;
            code = code.max(file_code);
            if format == LiveFormat::Text {
                write_now(&render(&report), false);
            }
            reports.push(report);
        }
    }
    let stdout = match format {
        LiveFormat::Text => String::new(),
        LiveFormat::Json => {
            let mut text = serde_json::to_string_pretty(&reports).expect("reports serialize");
            text.push('\n');
            text
        }
        LiveFormat::Agreement => table(&reports),
        LiveFormat::Markdown => {
            let mut text = agree::markdown(&rows(&reports));
            let others: Vec<&FileReport> = reports
                .iter()
                .filter(|report| report.agreement.is_none())
                .collect();
            if !others.is_empty() {
                text.push_str("\nNot compared:\n\n");
                for report in others {
                    let _ = writeln!(
                        text,
                        "- {} ({}): {}: {}",
                        escape::markdown(&report.file),
                        escape::markdown(&report.mta),
                        escape::markdown(&report.expectation),
                        escape::markdown(&report.problems.join("; "))
                    );
                }
            }
            text
        }
    };
    Output {
        stdout,
        stderr: format!(
            "mxsim live: {} runs: {} held, {} skipped, {} broke, {} could not run\n",
            reports.len(),
            counts[0],
            counts[1],
            counts[2],
            counts[3]
        ),
        code,
    }
}

/// The most real time live mode spends on one file against an MTA whose own timeouts and retry
/// intervals cannot be scaled (OpenSMTPD 6.8, [`mta::Mta::scales`]).
pub const REAL_TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(90);

/// Why `scenario` is not run against `options.mta`: its MTA runs in real time and the MTA's
/// preset predicts the run lasts longer than [`REAL_TIME_BUDGET`]. `--retry-at` times count too.
fn too_long(scenario: &Arc<Scenario>, options: &Options) -> Option<String> {
    if options.mta.scales() {
        return None;
    }
    let preset = PolicySpec::Named(options.mta.preset().to_owned());
    let predicted = agree::predicted_length(&Runner::new(), scenario, &preset);
    let retries = options.retry_at.iter().copied().max().unwrap_or_default();
    let length = predicted.max(retries);
    let real = mxsim_live::clock::scaled(length, options.scale);
    (real > REAL_TIME_BUDGET).then(|| {
        format!(
            "{} cannot shorten its timeouts or retry intervals (it runs at time scale 1), and its preset {} predicts this file lasts {length}, more than live mode's budget of {}s per file",
            options.mta.key(),
            options.mta.preset(),
            REAL_TIME_BUDGET.as_secs()
        )
    })
}

/// The report of a file not run against an MTA, with the reason.
fn skipped(file: &std::path::Path, options: &Options, reason: String) -> FileReport {
    let mut report = FileReport::blank(file, options);
    report.expectation = "skipped".to_owned();
    report.problems.push(reason);
    report
}

impl FileReport {
    /// A report with nothing in it yet, its expectation `error` until the run says otherwise.
    fn blank(file: &std::path::Path, options: &Options) -> FileReport {
        FileReport {
            file: shown(file),
            mta: options.mta.key().to_owned(),
            version: mta::installed(options.mta).unwrap_or_default(),
            policy: options.policy.clone(),
            scale: options.scale,
            header: Vec::new(),
            notes: Vec::new(),
            trace: String::new(),
            verdict: Vec::new(),
            expectation: "error".to_owned(),
            problems: Vec::new(),
            agreement: None,
        }
    }
}

/// Runs one file against one MTA in fresh namespaces and reads its report back.
fn run_outside(file: &std::path::Path, options: &Options) -> FileReport {
    let failed = |problem: String| {
        let mut report = FileReport::blank(file, options);
        report.problems.push(problem);
        report
    };
    let output = match mxsim_live::command(file, options).output() {
        Ok(output) => output,
        Err(error) => return failed(format!("cannot run setpriv and unshare: {error}")),
    };
    match serde_json::from_slice::<FileReport>(&output.stdout) {
        Ok(report) => report,
        Err(_) => failed(format!(
            "the run inside the namespace ended with {} and no report: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

/// The inner run: one file against one MTA, in this process's namespaces; its report as JSON.
fn run_inside(file: &std::path::Path, options: &Options) -> Output {
    let (scenario, _) = match files::load(file, &|name| registry::is_known(name)) {
        Ok(loaded) => loaded,
        Err(BadInput { text }) => return bad(text),
    };
    let mut report = FileReport::blank(file, options);
    let code = match mxsim_live::inside(Arc::clone(&scenario), options) {
        Err(error) => {
            report.problems.push(error);
            EXIT_BAD_INPUT
        }
        Ok(run) => {
            report.header = run.header;
            report.notes = run.notes;
            report.trace = run.trace.to_string();
            report.verdict = run
                .outcomes
                .iter()
                .map(|outcome| {
                    format!(
                        "message {} {}: {}",
                        outcome.message, outcome.recipient, outcome.disposition
                    )
                })
                .collect();
            let agreement = agree::agree(
                &Runner::new(),
                &scenario,
                &PolicySpec::Named(options.policy.clone()),
                &run.trace,
                &run.outcomes,
            );
            report.agreement = Some(AgreementReport::of(&agreement));
            match run.violations {
                None => {
                    report.expectation = "none".to_owned();
                    EXIT_FAILED
                }
                Some(violations) if violations.is_empty() => {
                    report.expectation = "holds".to_owned();
                    EXIT_OK
                }
                Some(violations) => {
                    report.expectation = "broken".to_owned();
                    report.problems = violations.iter().map(ToString::to_string).collect();
                    EXIT_FAILED
                }
            }
        }
    };
    Output {
        stdout: serde_json::to_string(&report).expect("a report serializes") + "\n",
        stderr: String::new(),
        code,
    }
}

/// One file's report as text: header, trace, verdict, expectation and agreement. Everything
/// that came from the scenario file is escaped for the terminal.
pub fn render(report: &FileReport) -> String {
    let term = escape::terminal;
    let mut out = String::new();
    let _ = writeln!(out, "== {} ({})", term(&report.file), term(&report.mta));
    for line in &report.header {
        let _ = writeln!(out, "# {}", term(line));
    }
    for note in &report.notes {
        let _ = writeln!(out, "# note: {}", term(note));
    }
    // The trace text was escaped when it was rendered.
    out.push_str(&report.trace);
    if !report.verdict.is_empty() {
        let _ = writeln!(out, "verdict ({}'s own log):", term(&report.mta));
        for line in &report.verdict {
            let _ = writeln!(out, "  {}", term(line));
        }
    }
    let policy = term(&report.policy);
    match report.expectation.as_str() {
        "holds" => {
            let _ = writeln!(out, "expect {policy}: holds");
        }
        "none" => {
            let _ = writeln!(
                out,
                "expect {policy}: the file has no expectation for this policy"
            );
        }
        "skipped" => {
            let _ = writeln!(
                out,
                "expect {policy}: skipped: {}",
                term(&report.problems.join("; "))
            );
        }
        "broken" => {
            let _ = writeln!(out, "expect {policy}: BROKEN");
            for problem in &report.problems {
                let _ = writeln!(out, "  - {}", term(problem));
            }
        }
        _ => {
            let _ = writeln!(out, "live run failed:");
            for problem in &report.problems {
                for line in problem.lines() {
                    let _ = writeln!(out, "  {}", term(line));
                }
            }
        }
    }
    if let Some(agreement) = &report.agreement {
        let word = |same: bool| if same { "agrees" } else { "DIFFERS" };
        let _ = writeln!(
            out,
            "agreement with {} ({}): outcome {}, hosts {}, connections {}",
            term(&agreement.preset),
            term(&agreement.order),
            word(agreement.agrees[0]),
            word(agreement.agrees[1]),
            word(agreement.agrees[2]),
        );
        if !agreement.agrees.iter().all(|same| *same) {
            let _ = writeln!(
                out,
                "  preset: {}; {} connections: {}",
                term(&agreement.predicted.outcome),
                agreement.predicted.connections,
                term(&agreement.predicted.hosts.join(", "))
            );
            let _ = writeln!(
                out,
                "  real:   {}; {} connections: {}",
                term(&agreement.observed.outcome),
                agreement.observed.connections,
                term(&agreement.observed.hosts.join(", "))
            );
        }
        match &agreement.parted {
            None => {
                let _ = writeln!(out, "  every step agrees");
            }
            Some((step, predicted, observed)) => {
                let _ = writeln!(
                    out,
                    "  first step where they part, step {}: preset `{}`, real `{}`",
                    step + 1,
                    term(predicted.as_deref().unwrap_or("(end)")),
                    term(observed.as_deref().unwrap_or("(end)"))
                );
            }
        }
    }
    out.push('\n');
    out
}

/// The rows of the agreement table: runs that have an agreement.
fn rows(reports: &[FileReport]) -> Vec<(String, String, Agreement)> {
    reports
        .iter()
        .filter_map(|report| {
            let agreement = report.agreement.as_ref()?.agreement();
            Some((report.file.clone(), report.mta.clone(), agreement))
        })
        .collect()
}

/// The agreement table as text for a terminal, with the runs that have none listed after it.
fn table(reports: &[FileReport]) -> String {
    let term = escape::terminal;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<48} {:<10} {:<14} {:<7} {:<11} first step where they part",
        "scenario", "mta", "preset", "agrees", "connections"
    );
    for (file, mta, agreement) in rows(reports) {
        let connections = format!(
            "{}/{}",
            agreement.predicted.connections, agreement.observed.connections
        );
        let parted = agreement.parted.as_ref().map_or("-".to_owned(), |parted| {
            format!(
                "{}: `{}` / `{}`",
                parted.step + 1,
                parted.predicted.as_deref().unwrap_or("(end)"),
                parted.observed.as_deref().unwrap_or("(end)")
            )
        });
        let _ = writeln!(
            out,
            "{:<48} {:<10} {:<14} {:<7} {:<11} {}",
            term(&file),
            term(&mta),
            term(&agreement.preset),
            if agreement.agrees() { "yes" } else { "NO" },
            connections,
            term(&parted)
        );
    }
    for report in reports.iter().filter(|report| report.agreement.is_none()) {
        let _ = writeln!(
            out,
            "{:<48} {:<10} {}: {}",
            term(&report.file),
            term(&report.mta),
            term(&report.expectation),
            term(&report.problems.join("; "))
        );
    }
    out
}

fn check_arguments(policy: Option<&str>, scale: f64) -> Result<(), String> {
    let (low, high) = SCALE_RANGE;
    if !(low..=high).contains(&scale) {
        return Err(format!(
            "mxsim live: --time-scale {scale} is outside {low}..={high} (real seconds per scenario second)\n"
        ));
    }
    if let Some(policy) = policy
        && !registry::is_known(policy)
    {
        return Err(format!(
            "mxsim live: --policy {policy}: no such preset (`mxsim policies` lists them); live runs are held to a preset's `expect:` entries\n"
        ));
    }
    Ok(())
}

/// Writes `text` at once: a live corpus takes minutes, and each file's result is shown as it
/// comes in rather than all at the end.
fn write_now(text: &str, to_stderr: bool) {
    if to_stderr {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    } else {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
}

fn bad(text: String) -> Output {
    Output {
        stdout: String::new(),
        stderr: text,
        code: EXIT_BAD_INPUT,
    }
}

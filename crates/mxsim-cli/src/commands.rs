//! `run`, `check`, `bench`, `compare`, `policies` and `rules`: arguments in, the lab called, text out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxsim_lab::check::check_scenario;
use mxsim_lab::compare;
use mxsim_lab::judge::{Judge, choices_label, runs_text};
use mxsim_lab::spec::PolicySpec;
use mxsim_model::rules::Grade;
use mxsim_model::world::Policy;
use mxsim_policy::registry;
use mxsim_policy::settings::Claim;
use mxsim_sim::{Choices, Observer, Prepared, Run, Runner, SimWorld};

use crate::args::{CheckFormat, Command};
use crate::check_formats::{self, CheckReport, FileCheck, PolicyResult, Summary};
use crate::files::{self, BadInput, shown};
use crate::{DEFAULT_WIDTH, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, Environment, Output};

/// Resolves a `--policy` argument: a registered name, else a policy file, read under the same
/// budget as scenarios (regular files only, at most one byte past the size limit, UTF-8).
pub fn parse_policy(argument: &str) -> Result<PolicySpec, String> {
    if registry::is_known(argument) {
        return Ok(PolicySpec::Named(argument.to_owned()));
    }
    let path = Path::new(argument);
    if path.symlink_metadata().is_err() {
        return Err(unknown_policy(argument));
    }
    let text = files::read_text(path).map_err(|BadInput { text }| text)?;
    registry::load_file(&text)
        .map(|settings| PolicySpec::File(Box::new(settings)))
        .map_err(|diagnostics| diagnostics.render(&shown(path), &text))
}

/// Runs one parsed command.
pub fn dispatch(command: Command, environment: Environment) -> Output {
    match command {
        Command::Run {
            file,
            policy,
            seed,
            order,
            all_orders,
        } => {
            let how = match (seed, order, all_orders) {
                (_, _, true) => RunHow::AllOrders,
                (_, Some(order), _) => RunHow::Order(order),
                (seed, None, false) => RunHow::Seed(seed),
            };
            run(&file, &policy, how)
        }
        Command::Explore {
            policy,
            cases,
            seed,
            out,
            shard,
        } => crate::search::explore(&policy, cases, seed, &out, shard.as_deref()),
        Command::Bench {
            file,
            policy,
            runs,
            repeat,
            floor,
        } => match (floor, file) {
            (Some(timeouts), _) => bench_floor(timeouts, runs, repeat),
            (None, Some(file)) => bench(&file, &policy, runs, repeat),
            (None, None) => bad("bench needs a scenario file or --floor\n".to_owned()),
        },
        Command::Diff {
            policies,
            cases,
            seed,
            out,
        } => crate::search::diff(&policies, cases, seed, &out),
        Command::Check {
            paths,
            format,
            quiet,
        } => {
            let paths = if paths.is_empty() {
                vec![PathBuf::from("scenarios")]
            } else {
                paths
            };
            check(&paths, format, quiet)
        }
        Command::Live {
            files,
            mta,
            policy,
            format,
            time_scale,
            retry_at,
            inside,
        } => crate::live::live(&files, &mta, policy, format, (time_scale, retry_at), inside),
        Command::Completions { shell } => {
            let mut command = <crate::args::Cli as clap::CommandFactory>::command();
            let mut bytes = Vec::new();
            clap_complete::generate(shell, &mut command, "mxsim", &mut bytes);
            Output {
                stdout: String::from_utf8(bytes).expect("completion scripts are UTF-8"),
                stderr: String::new(),
                code: EXIT_OK,
            }
        }
        Command::New {
            description,
            domain,
            out,
        } => crate::authoring::new(&description, &domain, out.as_deref()),
        Command::Pin { file, policies } => crate::authoring::pin(&file, &policies),
        Command::Schema { kind } => crate::authoring::schema(kind),
        Command::Findings { paths } => crate::authoring::findings(&paths),
        Command::Compare {
            paths,
            policies,
            format,
            width,
            only_differences,
        } => {
            let paths = if paths.is_empty() {
                vec![PathBuf::from("scenarios")]
            } else {
                paths
            };
            let width = width
                .map(usize::from)
                .or(environment.terminal_width)
                .unwrap_or(DEFAULT_WIDTH);
            compare_command(
                &paths,
                &policies,
                format.with_width(width),
                only_differences,
            )
        }
        Command::Report {
            paths,
            policies,
            out,
        } => crate::report::report_command(&paths, &policies, &out),
        Command::Policies { name } => policies(name.as_deref()),
        Command::Rules {
            coverage: true,
            paths,
        } => {
            let paths = if paths.is_empty() {
                vec![PathBuf::from("scenarios")]
            } else {
                paths
            };
            coverage_command(&paths)
        }
        Command::Rules { .. } => Output {
            stdout: mxsim_model::rules::markdown(),
            stderr: String::new(),
            code: EXIT_OK,
        },
    }
}

fn policies(name: Option<&str>) -> Output {
    let Some(name) = name else {
        let mut out = String::new();
        let width = registry::names()
            .iter()
            .map(|name| name.len())
            .max()
            .unwrap_or(0);
        for entry in registry::entries() {
            let _ = writeln!(
                out,
                "{:<width$}  {}\n{:<width$}  source: {}",
                entry.name, entry.summary, "", entry.source
            );
        }
        return Output {
            stdout: out,
            stderr: String::new(),
            code: EXIT_OK,
        };
    };
    match registry::entry(name) {
        Some(entry) if let Some(preset) = entry.preset() => Output {
            stdout: preset.text.to_owned(),
            stderr: String::new(),
            code: EXIT_OK,
        },
        Some(_) => Output {
            stdout: format!("{name} is written in Rust: crates/mxsim-policy/src/rust.rs\n"),
            stderr: String::new(),
            code: EXIT_OK,
        },
        None if Path::new(name).symlink_metadata().is_ok() => match parse_policy(name) {
            Ok(PolicySpec::File(settings)) => Output {
                stdout: format!(
                    "# {} resolved after `extends`: every setting, as mxsim runs it.\n# Digest (what compare reports carry): {}\n{}",
                    shown(Path::new(name)),
                    digest(&settings),
                    resolved_text(&settings)
                        .lines()
                        .map(|line| format!("{}\n", mxsim_model::escape::terminal(line)))
                        .collect::<String>()
                ),
                stderr: String::new(),
                code: EXIT_OK,
            },
            Ok(PolicySpec::Named(_)) => unreachable!("a registered name is handled above"),
            Err(text) => bad(text),
        },
        None => bad(unknown_policy(name)),
    }
}

/// An unknown policy name: a "did you mean" when a registered name is close, and the list.
fn unknown_policy(argument: &str) -> String {
    let names = registry::names();
    let hint = match mxsim_model::diag::nearest(argument, &names) {
        Some(near) => format!("did you mean `{near}`? "),
        None => String::new(),
    };
    format!(
        "unknown policy `{}`: not a policy name nor a policy file; {hint}known: {}\n",
        mxsim_model::escape::terminal(argument),
        names.join(", ")
    )
}

/// The canonical form of resolved settings: every field of the value the engine runs, after
/// `extends`, in Rust's pretty debug notation (fields in declaration order, lists in file
/// order, no maps with unordered keys). It names no file, comment or key order, so two files
/// that resolve to the same settings print the same text.
pub fn resolved_text(settings: &mxsim_policy::settings::Settings) -> String {
    format!("{settings:#?}\n")
}

/// `sha256:` and the hex SHA-256 of [`resolved_text`].
pub fn digest(settings: &mxsim_policy::settings::Settings) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(resolved_text(settings).as_bytes());
    let mut out = String::from("sha256:");
    for byte in hash.iter() {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The policies of `--policy` arguments (every registered one when there are none), each
/// name once, in order, and for each given as a file its name, path and settings digest, as
/// reports carry them; `compare` and `report` take their policies this way.
pub(crate) fn resolve_policies(
    arguments: &[String],
) -> Result<(Vec<PolicySpec>, Vec<compare::PolicyFile>), Output> {
    // Each policy with the argument that named it (the name itself by default).
    let mut specs: Vec<(String, PolicySpec)> = if arguments.is_empty() {
        registry::names()
            .into_iter()
            .map(|name| (name.to_owned(), PolicySpec::Named(name.to_owned())))
            .collect()
    } else {
        arguments
            .iter()
            .map(|argument| Ok((argument.clone(), parse_policy(argument)?)))
            .collect::<Result<_, String>>()
            .map_err(bad)?
    };
    // A policy named twice gets one column.
    let mut seen = std::collections::BTreeSet::new();
    specs.retain(|(_, spec)| seen.insert(spec.name().to_owned()));
    let policy_files = specs
        .iter()
        .filter_map(|(argument, spec)| match spec {
            PolicySpec::File(settings) => Some(compare::PolicyFile {
                name: spec.name().to_owned(),
                path: mxsim_model::escape::terminal(argument).into_owned(),
                digest: digest(settings),
            }),
            PolicySpec::Named(_) => None,
        })
        .collect();
    Ok((
        specs.into_iter().map(|(_, spec)| spec).collect(),
        policy_files,
    ))
}

fn compare_command(
    paths: &[PathBuf],
    arguments: &[String],
    format: compare::Format,
    only_differences: bool,
) -> Output {
    let (specs, policy_files) = match resolve_policies(arguments) {
        Ok(resolved) => resolved,
        Err(output) => return output,
    };
    let (loaded, found_notes) = match load_all(paths) {
        Ok(loaded) => loaded,
        Err(output) => return output,
    };
    let mut report = compare::build(&loaded, &specs);
    report.mxsim = crate::build();
    report.policy_files = policy_files;
    let broken = report.scenarios.iter().any(|row| {
        row.cells
            .iter()
            .any(|cell| matches!(cell.expect, "broken" | "error"))
    });
    if only_differences {
        compare::only_differences(&mut report);
    }
    Output {
        stdout: compare::render(&report, format),
        stderr: notes(&found_notes),
        code: if broken { EXIT_FAILED } else { EXIT_OK },
    }
}

/// A loaded scenario file.
pub(crate) type Loaded = (PathBuf, Arc<mxsim_model::scenario::Scenario>);

/// Every scenario file under `paths`, loaded, and the notes of the walk; a bad file, or none at
/// all, is bad input.
pub(crate) fn load_all(paths: &[PathBuf]) -> Result<(Vec<Loaded>, Vec<String>), Output> {
    let found = match files::collect(paths) {
        Ok(found) => found,
        Err(BadInput { text }) => return Err(bad(text)),
    };
    let mut loaded = Vec::with_capacity(found.files.len());
    let mut errors = String::new();
    let mut notes = found.notes;
    for path in found.files {
        match files::load(&path, &registry::is_known) {
            Ok((scenario, warnings)) => {
                if !warnings.is_empty() {
                    notes.push(warnings.trim_end().to_owned());
                }
                loaded.push((path, scenario));
            }
            Err(BadInput { text }) => errors.push_str(&text),
        }
    }
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    if loaded.is_empty() {
        return Err(bad("no scenario files found\n".to_owned()));
    }
    Ok((loaded, notes))
}

/// `mxsim rules --coverage`: every registered policy on the scenarios, and which rules and open
/// questions they exercise. Always exit 0 on good input: coverage is a figure, not a verdict.
fn coverage_command(paths: &[PathBuf]) -> Output {
    let (loaded, found_notes) = match load_all(paths) {
        Ok(loaded) => loaded,
        Err(output) => return output,
    };
    let specs: Vec<PolicySpec> = registry::names()
        .into_iter()
        .map(|name| PolicySpec::Named(name.to_owned()))
        .collect();
    let report = compare::build(&loaded, &specs);
    let scenarios: Vec<_> = loaded
        .iter()
        .map(|(_, scenario)| scenario.clone())
        .collect();
    let coverage = mxsim_lab::coverage::coverage(&report, &scenarios);
    Output {
        stdout: mxsim_lab::coverage::render(&coverage),
        stderr: notes(&found_notes),
        code: EXIT_OK,
    }
}

pub(crate) fn notes(notes: &[String]) -> String {
    notes.iter().map(|note| format!("{note}\n")).collect()
}

pub(crate) fn bad(text: String) -> Output {
    Output {
        stdout: String::new(),
        stderr: text,
        code: EXIT_BAD_INPUT,
    }
}

/// A resolved `--policy`: its name, the runnable policy, and its claims.
type Resolved = (String, Box<dyn Policy<SimWorld>>, Vec<Claim>);

fn policy_named(argument: &str) -> Result<Resolved, String> {
    let spec = parse_policy(argument)?;
    Ok((spec.name().to_owned(), spec.build(), spec.claims()))
}

/// Which runs `run` makes.
enum RunHow {
    /// One run from this seed (default: the file's `seed`, else 0).
    Seed(Option<u64>),
    /// One run with these choices, as a label `order [1,0]` shows them.
    Order(String),
    /// Every order.
    AllOrders,
}

/// `run` prints whole traces until they hold this many events in all; later runs of
/// `--all-orders` get one line each. 4,000 messages over every order once printed 1.67 GB.
pub const RUN_EVENTS_PRINTED_MAX: usize = 200_000;

/// Prints each run of `run` as it ends, judging it, within [`RUN_EVENTS_PRINTED_MAX`].
struct Printer<'a> {
    judge: Judge<'a>,
    policy: &'a str,
    judged: bool,
    out: String,
    printed_events: usize,
    summarised: usize,
    failed: bool,
}

impl Observer for Printer<'_> {
    fn observe(&mut self, run: Run) {
        let label = choices_label(&run);
        let whole = self.printed_events == 0
            || self.printed_events + run.trace.events.len() <= RUN_EVENTS_PRINTED_MAX;
        let graded = match &run.fault {
            Some(_) => Vec::new(),
            None => self.judge.graded(&run),
        };
        let problems = match &run.fault {
            Some(fault) => vec![fault.to_string()],
            None => self.judge.failures(&graded),
        };
        self.failed |= !problems.is_empty();
        let grade = graded
            .iter()
            .filter_map(|(grade, _)| *grade)
            .max()
            .unwrap_or(Grade::Pass);
        if !whole {
            self.summarised += 1;
            let verdict = match (&run.fault, problems.first()) {
                (Some(fault), _) => format!("error: {fault}"),
                (None, Some(first)) => format!("BROKEN: {first}"),
                (None, None) if self.judged => format!("holds · {grade}"),
                (None, None) => grade.to_string(),
            };
            let _ = writeln!(
                self.out,
                "{label}: {}{}",
                summary(&run),
                mxsim_model::escape::terminal(&verdict)
            );
            return;
        }
        self.printed_events += run.trace.events.len();
        let _ = writeln!(self.out, "\n## {label}");
        if run.trace.events.iter().any(|event| event.attempt.is_some()) {
            timeline(&mut self.out, &run);
        }
        self.out.push_str(&run.trace.to_string());
        if let Some(fault) = &run.fault {
            let fault = mxsim_model::escape::terminal(&fault.to_string()).into_owned();
            let _ = writeln!(self.out, "error {}: {fault}", self.policy);
        } else {
            let broken: Vec<&mxsim_model::rules::Violation> = graded
                .iter()
                .filter(|(grade, _)| grade.is_none())
                .map(|(_, violation)| violation)
                .collect();
            if self.judged && broken.is_empty() {
                let _ = writeln!(self.out, "expect {}: holds", self.policy);
            }
            for violation in broken {
                let problem = mxsim_model::escape::terminal(&violation.to_string()).into_owned();
                let _ = writeln!(self.out, "expect {}: BROKEN: {problem}", self.policy);
            }
            let mut lines: Vec<(Grade, String)> = graded
                .iter()
                .filter_map(|(grade, violation)| {
                    grade.map(|grade| (grade, self.judge.line(Some(grade), violation)))
                })
                .collect();
            // Worst first; within a grade, in trace order.
            lines.sort_by_key(|line| std::cmp::Reverse(line.0));
            if lines.is_empty() {
                let _ = writeln!(self.out, "verdict {}: PASS", self.policy);
            }
            for (_, line) in lines {
                let line = mxsim_model::escape::terminal(&line).into_owned();
                let _ = writeln!(self.out, "verdict {}: {line}", self.policy);
            }
        }
    }

    fn restart(&mut self) {
        let _ = writeln!(
            self.out,
            "\n(more orders than can be enumerated: sampling seeds instead)"
        );
    }
}

/// A queue run's attempts, one line each, before its trace: when each ran and what it settled.
fn timeline(out: &mut String, run: &Run) {
    let _ = writeln!(out, "attempts:");
    for attempt in &run.attempts {
        let mut settled = Vec::new();
        for (count, word) in [
            (attempt.delivered, "delivered"),
            (attempt.bounced, "bounced"),
            (attempt.deferred, "deferred"),
        ] {
            if count > 0 {
                settled.push(format!("{count} {word}"));
            }
        }
        let _ = writeln!(
            out,
            "  {:<8} {:>16} – {:<16} {}",
            attempt.id.to_string(),
            attempt.started.to_string(),
            attempt.ended.to_string(),
            settled.join(", ")
        );
    }
    let _ = writeln!(out);
}

/// A run's outcomes in one line: `12000 delivered, 3 deferred · 2 conn · `.
fn summary(run: &Run) -> String {
    let mut kinds = std::collections::BTreeMap::new();
    for outcome in &run.outcomes {
        *kinds.entry(outcome.disposition.kind()).or_insert(0usize) += 1;
    }
    let mut text = kinds
        .iter()
        .map(|(kind, count)| format!("{count} {kind}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        text,
        " · {} conn · ",
        run.trace.connection_attempts().count()
    );
    text
}

fn run(file: &Path, policy_name: &str, how: RunHow) -> Output {
    if file.is_dir() {
        return bad(format!(
            "{} is a folder: `run` takes one scenario file (`check` and `compare` take folders)\n",
            shown(file)
        ));
    }
    let (scenario, warnings) = match files::load(file, &registry::is_known) {
        Ok(loaded) => loaded,
        Err(BadInput { text }) => return bad(text),
    };
    let spec = match parse_policy(policy_name) {
        Ok(spec) => spec,
        Err(text) => return bad(text),
    };
    let (policy_name, policy, claims, departures) = (
        spec.name().to_owned(),
        spec.build(),
        spec.claims(),
        spec.departures(),
    );
    let policy_name = policy_name.as_str();
    let runner = Runner::new();
    let prepared = Arc::new(Prepared::new(scenario.clone()));
    let expectation = scenario
        .expectations
        .iter()
        .find(|expectation| expectation.policy == policy_name);
    let queue = scenario.queue.then(|| policy.queue());
    let judge = Judge::new(
        expectation,
        &claims,
        &departures,
        queue,
        &scenario.messages,
        Some(&scenario.client),
    );
    let mut printer = Printer {
        judged: judge.expects(),
        judge,
        policy: policy_name,
        out: String::new(),
        printed_events: 0,
        summarised: 0,
        failed: false,
    };
    let _ = writeln!(
        printer.out,
        "# {}\n# {} · policy {policy_name}",
        mxsim_model::escape::terminal(&scenario.title),
        shown(file)
    );
    match how {
        RunHow::AllOrders => {
            let exploration = runner.explore(&prepared, policy.as_ref(), &mut printer);
            if printer.summarised > 0 {
                let _ = writeln!(
                    printer.out,
                    "\n{} of {} {} shown in one line each: whole traces stop at {RUN_EVENTS_PRINTED_MAX} events in all; `--seed N` or `--order [..]` prints one run whole",
                    printer.summarised,
                    check_formats::count(exploration.runs, "run", "runs"),
                    if printer.summarised == 1 { "is" } else { "are" }
                );
            }
            if let Some(cut) = exploration.cut {
                let _ = writeln!(
                    printer.out,
                    "\nmade {}, not one for every order: {cut}",
                    check_formats::count(exploration.runs, "run", "runs")
                );
            }
        }
        RunHow::Order(text) => {
            let values = match parse_order(&text) {
                Ok(values) => values,
                Err(message) => return bad(format!("--order {message}\n")),
            };
            let run = runner.run(&prepared, policy.as_ref(), Choices::Forced(values));
            printer.observe(run);
        }
        RunHow::Seed(seed) => {
            let seed = seed.or(scenario.seed).unwrap_or(0);
            let run = runner.run(&prepared, policy.as_ref(), Choices::Seed(seed));
            printer.observe(run);
        }
    }
    Output {
        stdout: printer.out,
        stderr: warnings,
        code: if printer.failed { EXIT_FAILED } else { EXIT_OK },
    }
}

/// `[1,0]` or `1,0` as choice values. A value can still be out of range for its choice point;
/// the run then takes the last option instead (see `Chooser::choose`).
fn parse_order(text: &str) -> Result<Vec<u64>, String> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    if inner.split(',').nth(10_000).is_some() {
        return Err(
            "takes at most 10000 choice values; a run has one per equal-preference choice"
                .to_owned(),
        );
    }
    inner
        .split(',')
        .map(|value| {
            value.trim().parse::<u64>().map_err(|_| {
                format!(
                    "takes choice values as a run label shows them, like [1,0]; `{}` is not one",
                    mxsim_model::escape::terminal(value.trim())
                )
            })
        })
        .collect()
}

fn check(paths: &[PathBuf], format: CheckFormat, quiet: bool) -> Output {
    let found = match files::collect(paths) {
        Ok(found) => found,
        Err(BadInput { text }) => return bad(text),
    };
    let runner = Runner::new();
    let mut summary = Summary::new(found.files.len());
    let mut checked = Vec::with_capacity(found.files.len());
    for file in &found.files {
        let name = shown(file);
        let (scenario, warnings) = match files::load(file, &registry::is_known) {
            Ok(loaded) => loaded,
            Err(BadInput { text }) => {
                summary.bad_files += 1;
                checked.push(FileCheck {
                    file: name,
                    status: "bad-input",
                    diagnostics: Some(text),
                    warnings: None,
                    policies: Vec::new(),
                });
                continue;
            }
        };
        let mut policies = Vec::new();
        for result in check_scenario(&runner, &scenario) {
            let verdict = &result.verdict;
            let reproduce = format!("mxsim run {name} --policy {} --all-orders", result.policy);
            let (status, bad_runs, problems) = if let Some((label, fault)) = &verdict.first_fault {
                summary.errors += 1;
                let fault = mxsim_model::escape::terminal(&fault.to_string()).into_owned();
                ("error", verdict.faulted, vec![format!("{label}: {fault}")])
            } else if let Some((label, problems)) = &verdict.first_failure {
                summary.broken += 1;
                let problems = problems
                    .iter()
                    .map(|problem| format!("{label}: {}", mxsim_model::escape::terminal(problem)))
                    .collect();
                ("fail", verdict.failing, problems)
            } else {
                summary.held += 1;
                ("ok", 0, Vec::new())
            };
            summary.grade(verdict.grade());
            // Every verdict other than PASS, worst first, with its first run (a FAIL's lines
            // are the problems).
            let verdicts = verdict
                .graded
                .iter()
                .rev()
                .filter(|((grade, _), _)| *grade != Grade::Fail)
                .map(|(_, tally)| {
                    format!(
                        "{}: {}",
                        tally.first.0,
                        mxsim_model::escape::terminal(&tally.first.1)
                    )
                })
                .collect();
            policies.push(PolicyResult {
                policy: result.policy.clone(),
                status,
                runs: runs_text(verdict),
                bad_runs,
                verdict: verdict.grade().word(),
                problems,
                verdicts,
                reproduce,
            });
        }
        if scenario.expectations.is_empty() {
            summary.without_expectations += 1;
        }
        let status = if policies.iter().any(|policy| policy.status == "error") {
            "error"
        } else if policies.iter().any(|policy| policy.status == "fail") {
            "fail"
        } else if scenario.expectations.is_empty() {
            "no-expectations"
        } else {
            "ok"
        };
        checked.push(FileCheck {
            file: name,
            status,
            diagnostics: None,
            warnings: (!warnings.is_empty()).then_some(warnings),
            policies,
        });
    }
    let code = if summary.bad_files > 0 || summary.files == 0 {
        EXIT_BAD_INPUT
    } else if summary.broken > 0 || summary.errors > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    };
    let mut err = notes(&found.notes);
    if format == CheckFormat::Text {
        for file in &checked {
            for text in [&file.diagnostics, &file.warnings].into_iter().flatten() {
                err.push_str(text);
            }
        }
    }
    if summary.files == 0 {
        err.push_str("no scenario files found\n");
    }
    let report = CheckReport {
        schema: "mxsim-check/1",
        mxsim: crate::build(),
        files: checked,
        summary,
    };
    let stdout = match format {
        CheckFormat::Text => check_formats::text(&report, quiet),
        CheckFormat::Json => check_formats::json(&report),
        CheckFormat::Junit => check_formats::junit(&report),
        CheckFormat::Tap => check_formats::tap(&report),
    };
    Output {
        stdout,
        stderr: err,
        code,
    }
}

fn bench(file: &Path, policy_name: &str, runs: u64, repeat: u32) -> Output {
    let (scenario, warnings) = match files::load(file, &registry::is_known) {
        Ok(loaded) => loaded,
        Err(BadInput { text }) => return bad(text),
    };
    let (policy_name, policy, _) = match policy_named(policy_name) {
        Ok(resolved) => resolved,
        Err(text) => return bad(text),
    };
    if runs == 0 || repeat == 0 {
        return bad("--runs and --repeat must be at least 1\n".to_owned());
    }
    let runner = Runner::new();
    let prepared = Arc::new(Prepared::new(scenario));
    let mut events = 0usize;
    let measured = measure(runs, repeat, || {
        for seed in 0..runs {
            let run = runner.run(&prepared, policy.as_ref(), Choices::Seed(seed));
            events += run.trace.events.len();
        }
    });
    let heading = format!("{} · policy {policy_name}", file.display());
    let events = format!(
        "events:      {:.1}/run\n",
        events as f64 / (runs * u64::from(repeat)) as f64
    );
    Output {
        stdout: measured.text(&heading, &events),
        stderr: warnings,
        code: EXIT_OK,
    }
}

/// tokio's floor beside a policy's figures: the same number of `timeout` wraps as a run makes,
/// on the same kind of reused paused runtime, with no world and no policy.
fn bench_floor(timeouts: u32, runs: u64, repeat: u32) -> Output {
    if runs == 0 || repeat == 0 {
        return bad("--runs and --repeat must be at least 1\n".to_owned());
    }
    let runner = Runner::new();
    let measured = measure(runs, repeat, || {
        for _ in 0..runs {
            runner.floor(timeouts);
        }
    });
    let heading = format!("tokio floor · {timeouts} timeout wraps per run");
    Output {
        stdout: measured.text(&heading, ""),
        stderr: String::new(),
        code: EXIT_OK,
    }
}

/// What `repeat` repeats of `runs` runs cost.
struct Measured {
    runs: u64,
    /// Thread CPU time of each repeat, sorted; empty where the clock is missing.
    cpu: Vec<f64>,
    /// Wall time of each repeat, sorted.
    wall: Vec<f64>,
    /// Allocations over every repeat, when the counting allocator is installed.
    allocations: Option<mxsim_meter::Allocations>,
}

#[allow(
    clippy::disallowed_methods,
    reason = "bench measures real time on purpose; it never feeds a trace"
)]
fn measure(runs: u64, repeat: u32, mut body: impl FnMut()) -> Measured {
    let counting = mxsim_meter::counting();
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    let allocations_before = mxsim_meter::Allocations::now();
    for _ in 0..repeat {
        let cpu_started = mxsim_meter::thread_cpu_time();
        let started = std::time::Instant::now();
        body();
        wall.push(started.elapsed().as_secs_f64());
        if let (Some(started), Some(ended)) = (cpu_started, mxsim_meter::thread_cpu_time()) {
            cpu.push(ended.saturating_sub(started).as_secs_f64());
        }
    }
    let allocations = counting.then(|| mxsim_meter::Allocations::now().since(allocations_before));
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    Measured {
        runs,
        cpu,
        wall,
        allocations,
    }
}

impl Measured {
    fn line(&self, label: &str, times: &[f64]) -> String {
        let per_run = |seconds: f64| seconds * 1e6 / self.runs as f64;
        let median = times[times.len() / 2];
        format!(
            "{label} {:.3} µs/run, {:.0} runs/s (median of {}; min {:.3}, max {:.3} µs/run)\n",
            per_run(median),
            self.runs as f64 / median,
            times.len(),
            per_run(times[0]),
            per_run(times[times.len() - 1]),
        )
    }

    fn text(&self, heading: &str, extra: &str) -> String {
        let repeats = self.wall.len() as u64;
        let mut out = format!(
            "{heading}\n{} runs × {repeats} repeats on one thread\n",
            self.runs
        );
        if self.cpu.is_empty() {
            out.push_str("thread CPU:  not available on this system\n");
        } else {
            out.push_str(&self.line("thread CPU: ", &self.cpu));
        }
        out.push_str(&self.line("wall:       ", &self.wall));
        match self.allocations {
            Some(counted) => {
                let total = (self.runs * repeats) as f64;
                let _ = writeln!(
                    out,
                    "allocations: {:.1}/run, {:.0} bytes/run (counted)",
                    counted.count as f64 / total,
                    counted.bytes as f64 / total
                );
            }
            None => {
                out.push_str("allocations: not counted (the counting allocator is not installed)\n")
            }
        }
        out.push_str(extra);
        out
    }
}

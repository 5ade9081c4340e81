//! `run`, `check` and `bench`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxsim_model::expect;
use mxsim_model::invariants;
use mxsim_model::scenario::{Expectation, Scenario};
use mxsim_model::world::Policy;
use mxsim_policy::engine::Engine;
use mxsim_policy::registry;
use mxsim_policy::settings::{Claim, Settings};
use mxsim_sim::{Choices, Prepared, Run, Runner, SimWorld};

use crate::args::{Command, Format};
use crate::files::{self, BadInput};
use crate::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, Output, compare};

/// A policy to run: registered by name, or loaded from a file the user gave.
#[derive(Clone, Debug)]
pub enum PolicySpec {
    /// A registered policy.
    Named(String),
    /// Settings from a policy file.
    File(Box<Settings>),
}

impl PolicySpec {
    /// Resolves a `--policy` argument: a registered name, else a policy file.
    pub fn parse(argument: &str) -> Result<PolicySpec, String> {
        if registry::is_known(argument) {
            return Ok(PolicySpec::Named(argument.to_owned()));
        }
        let path = Path::new(argument);
        if !path.is_file() {
            return Err(format!(
                "unknown policy `{argument}`: not a policy name nor a policy file; known: {}\n",
                registry::names().join(", ")
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{argument}: cannot read: {error}\n"))?;
        registry::load_file(&text)
            .map(|settings| PolicySpec::File(Box::new(settings)))
            .map_err(|diagnostics| diagnostics.render(argument, &text))
    }

    /// The name `expect:` uses.
    pub fn name(&self) -> &str {
        match self {
            PolicySpec::Named(name) => name,
            PolicySpec::File(settings) => &settings.name,
        }
    }

    /// A runnable policy.
    pub fn build(&self) -> Box<dyn Policy<SimWorld>> {
        match self {
            PolicySpec::Named(name) => {
                registry::get::<SimWorld>(name).expect("named specs are registered")
            }
            PolicySpec::File(settings) => Box::new(Engine {
                settings: (**settings).clone(),
            }),
        }
    }

    /// The invariants the policy claims.
    pub fn claims(&self) -> Vec<Claim> {
        match self {
            PolicySpec::Named(name) => registry::preset(name)
                .map(|preset| preset.settings.claims.clone())
                .unwrap_or_default(),
            PolicySpec::File(settings) => settings.claims.clone(),
        }
    }
}

/// Every run that breaks the expectation (if any) or a claim, with its label and what broke.
pub fn judge_runs(
    runs: &[Run],
    expectation: Option<&Expectation>,
    claims: &[Claim],
) -> Vec<(String, Vec<String>)> {
    runs.iter()
        .filter_map(|run| {
            let mut broken = expectation
                .map(|expectation| expect::violations(expectation, &run.trace, &run.outcomes))
                .unwrap_or_default();
            for claim in claims {
                match claim {
                    Claim::NeverWorsePreferenceAfterEhlo => {
                        broken.extend(
                            invariants::never_worse_preference_after_ehlo(&run.trace)
                                .into_iter()
                                .map(|problem| format!("claim {}: {problem}", claim.key())),
                        );
                    }
                }
            }
            (!broken.is_empty()).then(|| (choices_label(run), broken))
        })
        .collect()
}

/// Runs one parsed command.
pub fn dispatch(command: Command) -> Output {
    match command {
        Command::Run {
            file,
            policy,
            seed,
            all_orders,
        } => run(&file, &policy, seed, all_orders),
        Command::Check { paths } => {
            let paths = if paths.is_empty() {
                vec![PathBuf::from("scenarios")]
            } else {
                paths
            };
            check(&paths)
        }
        Command::Bench { file, policy, runs } => bench(&file, &policy, runs),
        Command::Compare {
            paths,
            policies,
            format,
        } => {
            let paths = if paths.is_empty() {
                vec![PathBuf::from("scenarios")]
            } else {
                paths
            };
            compare_command(&paths, &policies, format)
        }
        Command::Policies { name } => policies(name.as_deref()),
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
        for preset in registry::presets() {
            let settings = &preset.settings;
            let _ = writeln!(
                out,
                "{:<width$}  {}\n{:<width$}  source: {}",
                settings.name, settings.summary, "", settings.source
            );
        }
        for (name, summary, source) in registry::RUST_POLICIES {
            let _ = writeln!(
                out,
                "{name:<width$}  {summary}\n{:<width$}  source: {source}",
                ""
            );
        }
        return Output {
            stdout: out,
            stderr: String::new(),
            code: EXIT_OK,
        };
    };
    match registry::preset(name) {
        Some(preset) => Output {
            stdout: preset.text.to_owned(),
            stderr: String::new(),
            code: EXIT_OK,
        },
        None if registry::is_known(name) => Output {
            stdout: format!("{name} is written in Rust: crates/mxsim-policy/src/rust.rs\n"),
            stderr: String::new(),
            code: EXIT_OK,
        },
        None => bad(format!(
            "unknown policy `{name}`; known: {}\n",
            registry::names().join(", ")
        )),
    }
}

fn compare_command(paths: &[PathBuf], arguments: &[String], format: Format) -> Output {
    let specs: Result<Vec<PolicySpec>, String> = if arguments.is_empty() {
        Ok(registry::names()
            .into_iter()
            .map(|name| PolicySpec::Named(name.to_owned()))
            .collect())
    } else {
        arguments
            .iter()
            .map(|argument| PolicySpec::parse(argument))
            .collect()
    };
    let specs = match specs {
        Ok(specs) => specs,
        Err(text) => return bad(text),
    };
    // A policy named twice gets one column.
    let mut specs = specs;
    let mut seen = std::collections::BTreeSet::new();
    specs.retain(|spec| seen.insert(spec.name().to_owned()));
    let paths = match files::collect(paths) {
        Ok(paths) => paths,
        Err(BadInput { text }) => return bad(text),
    };
    let mut loaded = Vec::with_capacity(paths.len());
    let mut errors = String::new();
    for path in paths {
        match files::load(&path, &registry::is_known) {
            Ok(scenario) => loaded.push((path, scenario)),
            Err(BadInput { text }) => errors.push_str(&text),
        }
    }
    if !errors.is_empty() {
        return bad(errors);
    }
    if loaded.is_empty() {
        return bad("no scenario files found\n".to_owned());
    }
    let report = compare::build(&loaded, &specs);
    let broken = report
        .scenarios
        .iter()
        .any(|row| row.cells.iter().any(|cell| cell.expect == "broken"));
    Output {
        stdout: compare::render(&report, format),
        stderr: String::new(),
        code: if broken { EXIT_FAILED } else { EXIT_OK },
    }
}

fn bad(text: String) -> Output {
    Output {
        stdout: String::new(),
        stderr: text,
        code: EXIT_BAD_INPUT,
    }
}

/// A resolved `--policy`: its name, the runnable policy, and its claims.
type Resolved = (String, Box<dyn Policy<SimWorld>>, Vec<Claim>);

fn policy_named(argument: &str) -> Result<Resolved, String> {
    let spec = PolicySpec::parse(argument)?;
    Ok((spec.name().to_owned(), spec.build(), spec.claims()))
}

/// A one-line label for how a run's orders were chosen.
pub fn choices_label(run: &Run) -> String {
    match &run.choices {
        Choices::Seed(seed) => format!("seed {seed}"),
        Choices::Forced(_) if run.taken.is_empty() => "the only order".to_owned(),
        Choices::Forced(_) => {
            let taken: Vec<String> = run.taken.iter().map(u64::to_string).collect();
            format!("order [{}]", taken.join(","))
        }
    }
}

fn run(file: &Path, policy_name: &str, seed: Option<u64>, all_orders: bool) -> Output {
    let scenario = match files::load(file, &registry::is_known) {
        Ok(scenario) => scenario,
        Err(BadInput { text }) => return bad(text),
    };
    let (policy_name, policy, claims) = match policy_named(policy_name) {
        Ok(resolved) => resolved,
        Err(text) => return bad(text),
    };
    let policy_name = policy_name.as_str();
    let runner = Runner::new();
    let prepared = Arc::new(Prepared::new(scenario.clone()));
    let runs = if all_orders {
        runner.explore(&prepared, policy.as_ref()).runs
    } else {
        let seed = seed.or(scenario.seed).unwrap_or(0);
        vec![runner.run(&prepared, policy.as_ref(), Choices::Seed(seed))]
    };
    let expectation = scenario
        .expectations
        .iter()
        .find(|expectation| expectation.policy == policy_name);
    let mut out = String::new();
    let mut failed = false;
    let _ = writeln!(
        out,
        "# {}\n# {} · policy {policy_name}",
        scenario.title,
        file.display()
    );
    for run in &runs {
        let _ = writeln!(out, "\n## {}", choices_label(run));
        out.push_str(&run.trace.to_string());
        if expectation.is_none() && claims.is_empty() {
            continue;
        }
        let broken = judge_runs(std::slice::from_ref(run), expectation, &claims);
        match broken.first() {
            None => {
                let _ = writeln!(out, "expect {policy_name}: holds");
            }
            Some((_, problems)) => {
                failed = true;
                for problem in problems {
                    let _ = writeln!(out, "expect {policy_name}: BROKEN: {problem}");
                }
            }
        }
    }
    Output {
        stdout: out,
        stderr: String::new(),
        code: if failed { EXIT_FAILED } else { EXIT_OK },
    }
}

/// The result of checking one policy's expectation on one scenario over every explored order.
#[derive(Clone, Debug)]
pub struct PolicyCheck {
    /// The policy.
    pub policy: String,
    /// How many runs were made.
    pub runs: usize,
    /// True when every order was enumerated.
    pub exhaustive: bool,
    /// Runs that broke the expectation: their label and what broke.
    pub failures: Vec<(String, Vec<String>)>,
}

/// Checks every expectation of `scenario`.
pub fn check_scenario(runner: &Runner, scenario: &Arc<Scenario>) -> Vec<PolicyCheck> {
    let prepared = Arc::new(Prepared::new(scenario.clone()));
    let mut checks = Vec::with_capacity(scenario.expectations.len());
    for expectation in &scenario.expectations {
        let spec = PolicySpec::Named(expectation.policy.clone());
        let policy = spec.build();
        let exploration = runner.explore(&prepared, policy.as_ref());
        let failures = judge_runs(&exploration.runs, Some(expectation), &spec.claims());
        checks.push(PolicyCheck {
            policy: expectation.policy.clone(),
            runs: exploration.runs.len(),
            exhaustive: exploration.exhaustive,
            failures,
        });
    }
    checks
}

fn check(paths: &[PathBuf]) -> Output {
    let files = match files::collect(paths) {
        Ok(files) => files,
        Err(BadInput { text }) => return bad(text),
    };
    let runner = Runner::new();
    let mut out = String::new();
    let mut err = String::new();
    let (mut held, mut broken, mut bad_files, mut without) = (0, 0, 0, 0);
    for file in &files {
        let scenario = match files::load(file, &registry::is_known) {
            Ok(scenario) => scenario,
            Err(BadInput { text }) => {
                bad_files += 1;
                err.push_str(&text);
                let _ = writeln!(
                    out,
                    "error {}: cannot be loaded (see above)",
                    file.display()
                );
                continue;
            }
        };
        if scenario.expectations.is_empty() {
            without += 1;
            let _ = writeln!(out, "none  {}: no expectations", file.display());
        }
        for result in check_scenario(&runner, &scenario) {
            let orders = format!(
                "{} {}",
                result.runs,
                if result.exhaustive {
                    "orders"
                } else {
                    "sampled seeds"
                }
            );
            if result.failures.is_empty() {
                held += 1;
                let _ = writeln!(out, "ok    {} {} ({orders})", file.display(), result.policy);
            } else {
                broken += 1;
                let _ = writeln!(
                    out,
                    "FAIL  {} {} ({} of {orders} break it)",
                    file.display(),
                    result.policy,
                    result.failures.len()
                );
                for (label, problems) in result.failures.iter().take(3) {
                    for problem in problems {
                        let _ = writeln!(out, "        {label}: {problem}");
                    }
                }
                let _ = writeln!(
                    out,
                    "        reproduce: mxsim run {} --policy {} --all-orders",
                    file.display(),
                    result.policy
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} files: {held} expectations hold, {broken} broken, {bad_files} files with errors, {without} without expectations",
        files.len()
    );
    let code = if bad_files > 0 || files.is_empty() {
        if files.is_empty() {
            err.push_str("no scenario files found\n");
        }
        EXIT_BAD_INPUT
    } else if broken > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    };
    Output {
        stdout: out,
        stderr: err,
        code,
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "bench measures real time on purpose; it never feeds a trace"
)]
fn bench(file: &Path, policy_name: &str, runs: u64) -> Output {
    let scenario = match files::load(file, &registry::is_known) {
        Ok(scenario) => scenario,
        Err(BadInput { text }) => return bad(text),
    };
    let (policy_name, policy, _) = match policy_named(policy_name) {
        Ok(resolved) => resolved,
        Err(text) => return bad(text),
    };
    if runs == 0 {
        return bad("--runs must be at least 1\n".to_owned());
    }
    let runner = Runner::new();
    let prepared = Arc::new(Prepared::new(scenario));
    let mut events = 0usize;
    let started = std::time::Instant::now();
    for seed in 0..runs {
        let run = runner.run(&prepared, policy.as_ref(), Choices::Seed(seed));
        events += run.trace.events.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let per_second = runs as f64 / elapsed;
    let stdout = format!(
        "{} · policy {policy_name}\n{runs} runs in {elapsed:.3} s on one thread: {per_second:.0} runs/s, {:.2} µs/run, {:.1} events/run\n",
        file.display(),
        elapsed * 1e6 / runs as f64,
        events as f64 / runs as f64
    );
    Output {
        stdout,
        stderr: String::new(),
        code: EXIT_OK,
    }
}

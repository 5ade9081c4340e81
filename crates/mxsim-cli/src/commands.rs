//! `run`, `check` and `bench`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxsim_model::expect;
use mxsim_model::scenario::Scenario;
use mxsim_model::world::Policy;
use mxsim_policy::registry;
use mxsim_sim::{Choices, Prepared, Run, Runner, SimWorld};

use crate::args::Command;
use crate::files::{self, BadInput};
use crate::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, Output};

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
    }
}

fn bad(text: String) -> Output {
    Output {
        stdout: String::new(),
        stderr: text,
        code: EXIT_BAD_INPUT,
    }
}

fn policy_named(name: &str) -> Result<Box<dyn Policy<SimWorld>>, String> {
    registry::get::<SimWorld>(name).ok_or_else(|| {
        format!(
            "unknown policy `{name}`; known: {}\n",
            registry::names().join(", ")
        )
    })
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
    let policy = match policy_named(policy_name) {
        Ok(policy) => policy,
        Err(text) => return bad(text),
    };
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
        if let Some(expectation) = expectation {
            let broken = expect::violations(expectation, &run.trace, &run.outcomes);
            if broken.is_empty() {
                let _ = writeln!(out, "expect {policy_name}: holds");
            } else {
                failed = true;
                for problem in broken {
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
        let policy = registry::get::<SimWorld>(&expectation.policy)
            .expect("the loader accepts only registered policy names");
        let exploration = runner.explore(&prepared, policy.as_ref());
        let failures = exploration
            .runs
            .iter()
            .filter_map(|run| {
                let broken = expect::violations(expectation, &run.trace, &run.outcomes);
                (!broken.is_empty()).then(|| (choices_label(run), broken))
            })
            .collect();
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
    let policy = match policy_named(policy_name) {
        Ok(policy) => policy,
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

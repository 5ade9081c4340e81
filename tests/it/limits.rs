//! Hardening: every run and every exploration is bounded by counted budgets, a policy that
//! misbehaves becomes an error in its own cell, file-system oddities are reported instead of
//! blocking or looping, and nothing from a file reaches the terminal raw.
//!
//! Each test builds the hostile thing (a looping policy, a FIFO, a link loop) and asserts what
//! the harness reports; no test reads a clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxsim_cli::{EXIT_BAD_INPUT, main_with};
use mxsim_lab::compare::{self, Column};
use mxsim_lab::judge;
use mxsim_model::dns::RecordType;
use mxsim_model::name::Name;
use mxsim_model::outcome::{DispositionKind, RecipientOutcome};
use mxsim_model::trace::{Budget, EventKind};
use mxsim_model::world::{Job, LocalFuture, Policy, World};
use mxsim_policy::registry;
use mxsim_sim::{Choices, Fault, Prepared, Runner, SimWorld};
use mxsim_tests::{load, root};

/// How a test policy misbehaves.
#[derive(Clone, Copy)]
enum Misbehaviour {
    /// Connects to the best MX again and again at zero virtual time, never returning.
    Reconnect,
    /// Asks DNS again and again at zero virtual time, never returning.
    Requery,
    /// Panics in the middle of its attempt.
    Panic,
    /// Returns no outcome at all.
    NoOutcomes,
    /// Waits forever on a DNS answer for message 0, and panics for every later message.
    WaitThenPanic,
}

struct Misbehaving(Misbehaviour);

impl Policy<SimWorld> for Misbehaving {
    fn name(&self) -> &str {
        "test-misbehaving"
    }

    fn deliver<'a>(
        &'a self,
        world: &'a SimWorld,
        job: Job<'a>,
    ) -> LocalFuture<'a, Vec<RecipientOutcome>> {
        Box::pin(async move {
            let host = Name::parse("smtp1.foo.example").expect("a valid name");
            let address = "192.0.2.1".parse().expect("a valid address");
            match self.0 {
                // These loops are the runaways under test: only the world's budgets end them.
                Misbehaviour::Reconnect => loop {
                    let _ = world.connect(address, &host).await;
                },
                Misbehaviour::Requery => loop {
                    let _ = world
                        .lookup(job.message.to[0].domain(), RecordType::Mx)
                        .await;
                },
                Misbehaviour::Panic => {
                    let _ = world.connect(address, &host).await;
                    panic!("deliberately, for the test");
                }
                Misbehaviour::NoOutcomes => Vec::new(),
                Misbehaviour::WaitThenPanic if job.message_index == 0 => {
                    let silent = Name::parse("silent.foo.example").expect("a valid name");
                    let _ = world.lookup(&silent, RecordType::A).await;
                    Vec::new()
                }
                Misbehaviour::WaitThenPanic => panic!("deliberately, for the test"),
            }
        })
    }
}

fn base_case() -> Arc<Prepared> {
    let scenario = load(&root().join("scenarios/seed/base-case.yaml"));
    Arc::new(Prepared::new(scenario))
}

/// A policy that reconnects forever at 00:00:00.000 (4,000,002 events in the review, and no end)
/// is stopped by the connection budget; one that re-asks DNS forever by the events budget. Both
/// runs end with a `limit` line and every recipient deferred with the reason.
#[test]
fn runaway_policies_are_stopped_by_a_counted_budget() {
    let prepared = base_case();
    let runner = Runner::new();
    for (misbehaviour, budget, limit) in [
        (
            Misbehaviour::Reconnect,
            Budget::Connections,
            prepared.budgets.connections_max,
        ),
        (
            Misbehaviour::Requery,
            Budget::Events,
            prepared.budgets.events_max,
        ),
    ] {
        let run = runner.run(&prepared, &Misbehaving(misbehaviour), Choices::Seed(0));
        assert_eq!(run.fault, None);
        let spent = run.trace.events.iter().find_map(|event| match event.kind {
            EventKind::BudgetSpent { budget, limit } => Some((budget, limit)),
            _ => None,
        });
        assert_eq!(spent, Some((budget, limit)), "{}", run.trace);
        let connections = run.trace.connection_attempts().count() as u64;
        assert!(connections <= prepared.budgets.connections_max);
        // The budget's events plus the closing lines: one limit line, one outcome per recipient.
        assert!(run.trace.events.len() as u64 <= prepared.budgets.events_max + 2);
        assert_eq!(run.outcomes.len(), 1);
        assert_eq!(
            run.outcomes[0].disposition.kind(),
            DispositionKind::Deferred
        );
        let text = run.trace.to_string();
        assert!(
            text.contains(&format!("its budget of {limit} {}", budget.unit())),
            "{text}"
        );
    }
}

/// The budgets are sized so that no shipped scenario comes near them under any registered
/// policy: a spent budget in the corpus would mean the sizing is wrong, not the policy.
#[test]
fn no_shipped_scenario_spends_a_budget() {
    let runner = Runner::new();
    let mut spent = Vec::new();
    for path in mxsim_tests::scenario_files() {
        let prepared = Arc::new(Prepared::new(load(&path)));
        for name in registry::names() {
            let policy = registry::get::<SimWorld>(name).expect("registered");
            let run = runner.run(&prepared, policy.as_ref(), Choices::Seed(0));
            // A queue run's budgets scale with the attempts its schedule allows.
            let budgets = match prepared.scenario.queue {
                true => prepared
                    .budgets
                    .times(policy.queue().attempts_within_lifetime()),
                false => prepared.budgets,
            };
            let connections = run.trace.connection_attempts().count() as u64;
            if run.trace.events.len() as u64 * 4 > budgets.events_max
                || connections * 4 > budgets.connections_max
            {
                spent.push(format!(
                    "{} {name}: {} events of {}, {connections} connections of {} (over a quarter)",
                    path.display(),
                    run.trace.events.len(),
                    budgets.events_max,
                    budgets.connections_max
                ));
            }
        }
    }
    assert!(spent.is_empty(), "{}", spent.join("\n"));
}

/// A policy that panics, or returns the wrong outcomes, is a fault of that run: the runner
/// survives and gives the same trace afterwards, and the verdict carries the fault.
#[test]
fn a_faulty_policy_is_a_value_not_a_crash() {
    let prepared = base_case();
    let runner = Runner::new();
    let rfc5321 = registry::get::<SimWorld>("rfc5321").expect("registered");
    let before = runner
        .run(&prepared, rfc5321.as_ref(), Choices::Seed(3))
        .trace
        .to_string();
    let panicked = runner.run(
        &prepared,
        &Misbehaving(Misbehaviour::Panic),
        Choices::Seed(0),
    );
    assert_eq!(
        panicked.fault,
        Some(Fault::Panicked("deliberately, for the test".to_owned()))
    );
    assert!(
        panicked.trace.connection_attempts().count() == 1,
        "the trace up to the panic survives:\n{}",
        panicked.trace
    );
    let empty = runner.run(
        &prepared,
        &Misbehaving(Misbehaviour::NoOutcomes),
        Choices::Seed(0),
    );
    assert!(
        matches!(&empty.fault, Some(Fault::Outcomes(text)) if text.contains("returned 0 outcomes for the 1 recipients")),
        "{:?}",
        empty.fault
    );
    let after = runner
        .run(&prepared, rfc5321.as_ref(), Choices::Seed(3))
        .trace
        .to_string();
    assert_eq!(before, after, "a panic leaves nothing behind in the runner");
    let verdict = judge::explore(
        &runner,
        &prepared,
        &Misbehaving(Misbehaviour::Panic),
        None,
        &[],
        &[],
    );
    assert_eq!(verdict.faulted, verdict.runs);
    assert!(verdict.first_fault.is_some());
}

/// In `compare`, the faulty policy's cell says `error` and the legend says why; the column
/// beside it and the other scenarios are compared as usual, and the exit code is 1.
#[test]
fn compare_gives_a_faulty_policy_its_own_error_cell() {
    let files: Vec<(PathBuf, _)> = [
        "scenarios/seed/base-case.yaml",
        "scenarios/mta/null-mx.yaml",
    ]
    .iter()
    .map(|file| (PathBuf::from(file), load(&root().join(file))))
    .collect();
    let names = vec!["rfc5321".to_owned(), "test-misbehaving".to_owned()];
    let report = compare::build_with(&files, names, &|| {
        vec![
            Column {
                name: "rfc5321".to_owned(),
                claims: Vec::new(),
                departures: Vec::new(),
                policy: registry::get::<SimWorld>("rfc5321").expect("registered"),
            },
            Column {
                name: "test-misbehaving".to_owned(),
                claims: Vec::new(),
                departures: Vec::new(),
                policy: Box::new(Misbehaving(Misbehaviour::Panic)),
            },
        ]
    });
    for row in &report.scenarios {
        assert_eq!(row.cells[0].expect, "holds", "{}", row.label);
        assert!(row.cells[0].error.is_none());
        assert_eq!(row.cells[1].expect, "error", "{}", row.label);
    }
    let text = compare::render(&report, compare::Format::Text { width: 100 });
    assert!(
        text.contains(
            "seed/base-case × test-misbehaving: the only order: the policy panicked: deliberately, for the test"
        ),
        "{text}"
    );
}

/// The work budget of an exploration cuts it short and says so: with a budget smaller than one
/// run, one run is made, and the verdict says why the rest were not.
#[test]
fn an_exploration_stops_at_its_work_budget() {
    let prepared = base_case();
    let runner = Runner::new().with_explore_events_max(5);
    let rfc5321 = registry::get::<SimWorld>("rfc5321").expect("registered");
    let verdict = judge::explore(&runner, &prepared, rfc5321.as_ref(), None, &[], &[]);
    assert_eq!(verdict.runs, 1);
    assert!(!verdict.exhaustive);
    let cut = verdict.cut.expect("the budget cut the exploration");
    assert_eq!(cut.events_max, 5);
    assert_eq!(
        judge::runs_text(&verdict),
        "1 run, cut by the exploration budget of 5 trace events"
    );
}

fn check(path: &Path) -> mxsim_cli::Output {
    main_with(["mxsim".into(), "check".into(), path.as_os_str().to_owned()])
}

fn scratch(name: &str) -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).expect("the target tmp dir is writable");
    folder
}

/// A FIFO named `*.yaml` used to block `check` forever; now it is reported as not a regular file,
/// whether named or found in a folder, and the rest of the folder is checked.
#[test]
fn a_fifo_is_reported_not_opened() {
    let folder = scratch("fifo");
    std::fs::copy(
        root().join("scenarios/seed/base-case.yaml"),
        folder.join("a.yaml"),
    )
    .expect("copied");
    let fifo = folder.join("b.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    for path in [&fifo, &folder] {
        let output = check(path);
        assert_eq!(output.code, EXIT_BAD_INPUT, "{output:?}");
        assert!(
            output
                .stderr
                .contains("b.yaml:1:1: error: not a regular file (a FIFO)"),
            "{output:?}"
        );
    }
    assert!(
        check(&folder).stdout.contains("ok    "),
        "a.yaml is still checked"
    );
}

/// A folder that links back to itself is read once, with a note; nothing is read twice.
#[test]
fn a_link_loop_is_read_once() {
    let folder = scratch("loop");
    std::fs::copy(
        root().join("scenarios/seed/base-case.yaml"),
        folder.join("a.yaml"),
    )
    .expect("copied");
    std::os::unix::fs::symlink(&folder, folder.join("again")).expect("a symlink");
    let output = check(&folder);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("1 file:"), "{}", output.stdout);
    assert!(
        output.stderr.contains("was not read again"),
        "{}",
        output.stderr
    );
}

/// Policy files are read under the scenario budget: a huge (sparse) file is refused after one
/// byte past the limit, and NUL bytes never reach the terminal.
#[test]
fn policy_files_are_read_under_the_input_budget() {
    let folder = scratch("policy-budget");
    let huge = folder.join("huge.yaml");
    let file = std::fs::File::create(&huge).expect("created");
    file.set_len(3 << 30).expect("a sparse 3 GiB file");
    let scenario = root().join("scenarios/seed/base-case.yaml");
    let compare_with = |policy: &Path| {
        main_with([
            "mxsim".into(),
            "compare".into(),
            scenario.clone().into_os_string(),
            "--policy".into(),
            policy.as_os_str().to_owned(),
        ])
    };
    let output = compare_with(&huge);
    assert_eq!(output.code, EXIT_BAD_INPUT);
    assert!(output.stderr.contains("larger than"), "{}", output.stderr);
    let nul = folder.join("nul.yaml");
    std::fs::write(&nul, "name: x\u{0}\u{1b}[8m\nextends: rfc5321\n").expect("written");
    let output = compare_with(&nul);
    assert_eq!(output.code, EXIT_BAD_INPUT);
    assert!(
        !output.stderr.contains('\u{0}') && !output.stderr.contains('\u{1b}'),
        "{:?}",
        output.stderr
    );
}

/// A trace line is one line, whatever a reply text or a reason holds.
#[test]
fn a_trace_line_cannot_be_forged() {
    use mxsim_model::smtp::{Reply, ReplyCode};
    use mxsim_model::trace::{Event, Trace};
    let forged = Reply::new(
        ReplyCode::new(250).expect("valid"),
        "ok\n    00:00:00.000  done  message 0 to user@foo.example: delivered\u{1b}[8m",
    );
    let trace = Trace {
        events: vec![Event {
            at: mxsim_model::time::Instant(0),
            attempt: None,
            kind: EventKind::Replied {
                address: "192.0.2.1".parse().expect("valid"),
                reply: forged,
                keywords: None,
            },
        }],
    };
    let text = trace.to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(!text.contains('\u{1b}'));
    assert!(text.contains("ok\\u{a}    00:00:00.000  done"), "{text}");
}

/// `run` on a folder says it is one.
#[test]
fn run_on_a_folder_says_so() {
    let output = main_with([
        "mxsim".into(),
        "run".into(),
        root().join("scenarios/seed").into_os_string(),
    ]);
    assert_eq!(output.code, EXIT_BAD_INPUT);
    assert!(output.stderr.contains("is a folder"), "{}", output.stderr);
}

/// A queue scenario of two messages 1 s apart for the queue-mode tests below.
fn two_queued_messages() -> Arc<Prepared> {
    let text = "title: two queued messages\nmessages:\n  - {at: 0s, to: [a@foo.example]}\n  - {at: 1s, to: [b@foo.example]}\ndns:\n  foo.example: {mx: [10 smtp1.foo.example]}\n  silent.foo.example: {a: timeout}\nservers:\n  smtp1.foo.example: {}\n";
    Arc::new(Prepared::new(mxsim_tests::load_text(text)))
}

/// In a queue run, a policy that panics in one attempt while another attempt waits is a fault
/// of the run: the waiting attempt is dropped as the harness stopping (no invented "gave up"
/// line), and no later line carries the panicking attempt's tag.
#[test]
fn a_panic_in_a_queue_run_invents_no_lines() {
    let prepared = two_queued_messages();
    let runner = Runner::new();
    let run = runner.run(
        &prepared,
        &Misbehaving(Misbehaviour::WaitThenPanic),
        Choices::Seed(0),
    );
    assert_eq!(
        run.fault,
        Some(Fault::Panicked("deliberately, for the test".to_owned()))
    );
    let text = run.trace.to_string();
    assert!(!text.contains("gave up"), "{text}");
    // The runner is still good for the next run.
    let rfc5321 = registry::get::<SimWorld>("rfc5321").expect("registered");
    let after = runner.run(&prepared, rfc5321.as_ref(), Choices::Seed(0));
    assert_eq!(after.fault, None);
    assert_eq!(after.outcomes.len(), 2);
}

/// A runaway in a queue run is stopped by the connection budget, scaled by the attempts its
/// schedule allows: one `limit` line, every recipient deferred, the running attempts recorded.
#[test]
fn a_runaway_in_a_queue_run_is_stopped_by_its_budget() {
    let prepared = two_queued_messages();
    let policy = Misbehaving(Misbehaviour::Reconnect);
    let run = Runner::new().run(&prepared, &policy, Choices::Seed(0));
    assert_eq!(run.fault, None);
    let limit = prepared
        .budgets
        .times(mxsim_model::world::Policy::<SimWorld>::queue(&policy).attempts_within_lifetime())
        .connections_max;
    let limits: Vec<_> = run
        .trace
        .events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::BudgetSpent { .. }))
        .collect();
    assert_eq!(limits.len(), 1, "{}", run.trace);
    assert!(run.trace.connection_attempts().count() as u64 <= limit);
    assert_eq!(run.outcomes.len(), 2);
    assert!(
        run.outcomes
            .iter()
            .all(|outcome| outcome.disposition.kind() == DispositionKind::Deferred)
    );
    assert!(
        !run.attempts.is_empty(),
        "the stopped attempts are recorded"
    );
}

//! Queue runs: cost that grows linearly with the messages, every message settled, the same
//! bytes on every run, and the queue rules holding on every policy.
//!
//! The worlds come from `mxsim_tests::queue_load` and are written to the target's tmp folder
//! (`queue-<n>.yaml`) so that `mxsim run` can time them in release builds; the tests count
//! events, never time.

use std::sync::Arc;

use mxsim_model::outcome::DispositionKind;
use mxsim_policy::registry;
use mxsim_sim::{Choices, Prepared, Runner, SimWorld};
use mxsim_tests::{load_text, queue_load};

fn prepared(messages: usize) -> Arc<Prepared> {
    let text = queue_load::world(messages);
    let path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("queue-{messages}.yaml"));
    std::fs::write(&path, &text).expect("the target tmp dir is writable");
    Arc::new(Prepared::new(load_text(&text)))
}

/// 100 and 1,000 messages over 5 days with outages: every recipient of every message is
/// delivered, and the trace grows with the messages, not faster (events per message within
/// 20% of each other), so a queue run is linear in its messages.
#[test]
fn a_queue_run_costs_linear_events_and_settles_everything() {
    let runner = Runner::new();
    let policy = registry::get::<SimWorld>("rfc5321").expect("registered");
    let mut per_message = Vec::new();
    for messages in [100, 1_000] {
        let prepared = prepared(messages);
        let run = runner.run(&prepared, policy.as_ref(), Choices::Seed(1));
        assert_eq!(run.fault, None);
        let recipients: usize = prepared.scenario.messages.iter().map(|m| m.to.len()).sum();
        assert_eq!(run.outcomes.len(), recipients);
        let undelivered: Vec<String> = run
            .outcomes
            .iter()
            .filter(|outcome| outcome.disposition.kind() != DispositionKind::Delivered)
            .map(|outcome| format!("{} {}", outcome.recipient, outcome.disposition))
            .take(5)
            .collect();
        assert!(undelivered.is_empty(), "{undelivered:?}");
        assert!(
            run.attempts.len() > messages,
            "outages make retries: {} attempts for {messages} messages",
            run.attempts.len()
        );
        per_message.push(run.trace.events.len() as f64 / messages as f64);
    }
    // Larger queues are written for `mxsim run` to time in a release build (README figures),
    // and loaded here: 10,000 messages fit the input budgets.
    for messages in [3_000, 10_000] {
        let _ = prepared(messages);
    }
    let ratio = per_message[1] / per_message[0];
    assert!(
        (0.8..=1.2).contains(&ratio),
        "events per message: {per_message:?}"
    );
}

/// The same queue world and seed give byte-identical traces, for every registered policy, and
/// every run holds the queue rules (checked by the judge, as `check` and `compare` do).
#[test]
fn queue_runs_are_deterministic_and_keep_the_queue_rules() {
    let prepared = prepared(60);
    let runner = Runner::new();
    for name in registry::names() {
        let policy = registry::get::<SimWorld>(name).expect("registered");
        let first = runner.run(&prepared, policy.as_ref(), Choices::Seed(7));
        let second = runner.run(&prepared, policy.as_ref(), Choices::Seed(7));
        assert_eq!(first.trace.to_string(), second.trace.to_string(), "{name}");
        let problems = mxsim_model::invariants::queue_rules(
            &first.trace,
            &policy.queue(),
            &prepared.scenario.messages,
        );
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }
}

/// One line each: a queue behaviour that shows in the trace of one policy on one shipped
/// scenario (the corpus snapshots pin `rfc5321` only).
#[test]
fn queue_behaviours_show_in_the_trace() {
    let runner = Runner::new();
    let check = |file: &str, policy: &str, needle: &str| {
        let scenario = mxsim_tests::load(&mxsim_tests::root().join("scenarios").join(file));
        let prepared = Arc::new(Prepared::new(scenario));
        let policy_object = registry::get::<SimWorld>(policy).expect("registered");
        let run = runner.run(&prepared, policy_object.as_ref(), Choices::Seed(0));
        let text = run.trace.to_string();
        assert!(
            text.contains(needle),
            "{file} {policy}: no `{needle}` in\n{text}"
        );
    };
    check(
        "queue/week-long-outage-bounces.yaml",
        "sendmail-8",
        "dsn   delay warning for message 0 to <sender@sender.example>",
    );
    check(
        "queue/week-long-outage-bounces.yaml",
        "exim-4",
        "dsn   delay warning for message 0",
    );
    check(
        "queue/week-long-outage-bounces.yaml",
        "mox",
        "expired: still undelivered 15h53m30s after submission",
    );
    check(
        "queue/null-sender-gets-no-dsn.yaml",
        "rfc5321",
        "dsn   no failure for message 0: its reverse-path is null",
    );
    check(
        "queue/null-sender-gets-no-dsn.yaml",
        "sendmail-8",
        "dsn   no delay warning for message 1: its reverse-path is null",
    );
    check(
        "queue/greylisting-both-primaries.yaml",
        "rfc5321",
        "451 4.7.1 greylisted: please try again in 5m",
    );
    check(
        "queue/greylisting-both-primaries.yaml",
        "postfix-3.10",
        "next attempt at 00:05:00.000",
    );
    check(
        "queue/lost-reply-duplicates.yaml",
        "rfc5321",
        "(its reply is lost)",
    );
    check(
        "seed/queued-wanted-keyword.yaml",
        "seed-literal",
        "requeued until it has been queued 4h",
    );
    check(
        "queue/seed-queued-required-keyword.yaml",
        "same-preference",
        "some host could not be asked, so the message is requeued",
    );
}

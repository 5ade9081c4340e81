//! Checkers for the queue rules judged across attempts and messages (RFC 5321 §4.5.4.1): mail
//! that cannot be sent now is retried, and a host that timed out for one message is remembered
//! for the next. Q2, Q3 and Q6 live with the queue invariants (`crate::invariants`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::time::{Duration, Instant};
use crate::trace::EventKind;

use super::{Subject, Violation};

/// Q1 (RFC 5321 §4.5.4.1): in a queue run, a message with recipients deferred is retried. Broken
/// when a scheduled retry never starts (no attempt, expiry or horizon after it), and when a
/// message expires after its first attempt without ever being retried: a schedule whose first
/// delay is past the lifetime queues the mail but never retries it.
pub fn q1_queued_and_retried(subject: &Subject<'_>) -> Vec<Violation> {
    if subject.queue.is_none() {
        return Vec::new();
    }
    let mut broken = Vec::new();
    // Message → attempts started so far.
    let mut attempts: BTreeMap<usize, u32> = BTreeMap::new();
    // Message → the index of its retry line still waiting for its attempt.
    let mut waiting: BTreeMap<usize, usize> = BTreeMap::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        match &event.kind {
            EventKind::AttemptStarted {
                message, attempt, ..
            } => {
                attempts.insert(*message, *attempt);
                waiting.remove(message);
            }
            EventKind::Retry { message, .. } => {
                waiting.insert(*message, index);
            }
            EventKind::Expired { message, lifetime } => {
                waiting.remove(message);
                if attempts.get(message).copied().unwrap_or(0) <= 1 {
                    broken.push(Violation::of(
                        "Q1",
                        format!(
                            "message {message} expired after its {lifetime} lifetime without a single retry"
                        ),
                        Some(index),
                    ));
                }
            }
            // Retries due after the horizon are not missing: the run stopped first.
            EventKind::Horizon { .. } => waiting.clear(),
            _ => {}
        }
    }
    for (message, index) in waiting {
        broken.push(Violation::of(
            "Q1",
            format!("message {message} was scheduled for a retry that never started"),
            Some(index),
        ));
    }
    broken
}

/// Q5 (RFC 5321 §4.5.4.1): a host address whose connection timed out for one message is not
/// waited out again, for the full timeout, by another message's attempt that begins connecting
/// within the policy's shortest retry delay of that failure. Skipping it (a retry record) or a
/// shorter wait both keep the rule; refused connections cost no wait and are not judged.
pub fn q5_unreachable_hosts_remembered(subject: &Subject<'_>) -> Vec<Violation> {
    let Some(settings) = subject.queue else {
        return Vec::new();
    };
    let window = settings.schedule.min_delay();
    let mut broken = Vec::new();
    // Address → when its last timeout ended, for which message, after how long a wait.
    let mut timed_out: BTreeMap<IpAddr, (Instant, usize, Duration)> = BTreeMap::new();
    for (index, event) in subject.trace.events.iter().enumerate() {
        let EventKind::ConnectGaveUp { address, waited } = &event.kind else {
            continue;
        };
        let message = event.attempt.map_or(0, |attempt| attempt.message as usize);
        let began = Instant::START.after(Duration(
            event
                .at
                .since_start()
                .as_millis()
                .saturating_sub(waited.as_millis()),
        ));
        if let Some(&(ended, earlier, before)) = timed_out.get(address)
            && earlier != message
            && began >= ended
            && began.since(ended) < window
            && *waited >= before
        {
            broken.push(Violation::of(
                "Q5",
                format!(
                    "message {message} waited {waited} to connect to {address}, which timed out for message {earlier} {} earlier",
                    began.since(ended)
                ),
                Some(index),
            ));
        }
        timed_out.insert(*address, (event.at, message, *waited));
    }
    broken
}

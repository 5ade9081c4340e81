//! One scenario file against one real MTA, inside the namespace: bring up the network, serve
//! DNS and SMTP, configure and start the MTA, inject the messages at their times, follow the
//! MTA's log to its verdict, and check the file's expectation with the MTA standing in for the
//! preset.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use mxsim_model::name::Mailbox;
use mxsim_model::outcome::{Disposition, DispositionKind, RecipientOutcome};
use mxsim_model::rules::Violation;
use mxsim_model::scenario::Scenario;
use mxsim_model::script::{Script, ServerState};
use mxsim_model::time::{Duration, Instant};
use mxsim_model::trace::{EventKind, Trace};

use crate::clock::Clock;
use crate::listen::{self, Shared};
use crate::mta::{Driver, Mta, Observation, Setup};
use crate::namespace::{self, Network};
use crate::record::{Recorder, host_at};

/// How often the MTA's log is read.
const POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// A single-pass file (`message:`) waits at most this long (scenario time) for the MTA's word
/// on every recipient after the first attempt: more than Postfix's slowest first attempt
/// (two silent hosts at 5 minutes each, then 10 minutes for a lost end-of-data reply).
pub const FIRST_ATTEMPT_LIMIT: Duration = Duration::hours(1);

/// A queue file (`messages:`) without `horizon:` is followed this long after its last
/// submission (the scenario's own default, a policy's lifetime plus a day, is days of real
/// time even scaled).
pub const QUEUE_LIMIT: Duration = Duration::hours(6);

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The MTA.
    pub mta: Mta,
    /// The policy whose `expect:` entry the MTA is held to.
    pub policy: String,
    /// Real seconds per scenario second.
    pub scale: f64,
    /// Scenario times at which the harness makes the MTA try its deferred mail at once
    /// (`--retry-at`), besides the MTA's own schedule.
    pub retry_at: Vec<Duration>,
}

/// What a live run saw.
pub struct LiveRun {
    /// Header lines: the MTA, the scale, the network.
    pub header: Vec<String>,
    /// The trace, in scenario time.
    pub trace: Trace,
    /// The MTA's verdict per recipient.
    pub outcomes: Vec<RecipientOutcome>,
    /// The file's expectation for the policy, broken (empty: it holds); `None`: the file has
    /// no expectation for it.
    pub violations: Option<Vec<Violation>>,
    /// Notes: what the run could not do exactly as the simulator does.
    pub notes: Vec<String>,
}

/// Runs `scenario` against `driver` inside the namespace. `Err` is a harness failure (a
/// command that failed, an MTA that would not start), with the MTA's log attached.
pub fn inside<D: Driver>(
    scenario: Arc<Scenario>,
    options: &Options,
    mut driver: D,
    root: &Path,
) -> Result<LiveRun, String> {
    if !namespace::inside() {
        return Err("live mode's inner run must be PID 1 of its own namespaces".to_owned());
    }
    let work = Path::new("/tmp");
    namespace::tmpfs(work, "mode=1777")?;
    let work = work.join("mxsim-live");
    std::fs::create_dir_all(&work)
        .map_err(|error| format!("cannot create {}: {error}", work.display()))?;
    let script = Arc::new(Script::new(scenario.clone()));
    let network = Network::of(&scenario, |address| script.server_at(address));
    network.bring_up()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(async move {
        let clock = Clock::start(options.scale);
        let recorder = Recorder::new(clock);
        let mut header = vec![format!(
            "live: {} {} standing in for {}, time scale {} (a scenario second lasts {} ms)",
            options.mta.key(),
            driver.version(),
            options.policy,
            options.scale,
            (options.scale * 1000.0).round()
        )];
        let mut notes = Vec::new();
        if !options.mta.scales() {
            notes.push(format!(
                "{} has no settings for its timeouts or retry intervals: it runs in real time (time scale 1), whatever --time-scale says",
                options.mta.key()
            ));
        }
        header.extend(describe(&scenario, &network));
        for &index in &network.varying {
            notes.push(format!(
                "server {}: its connect mode changes over time; a listener cannot refuse or drop a SYN it has accepted, so `refuse` is served as a reset and `timeout` as a silent greeting",
                scenario.servers[index].label()
            ));
        }
        let shared = Shared {
            script: script.clone(),
            state: Arc::new(Mutex::new(ServerState::default())),
            recorder: recorder.clone(),
        };
        let sockets = crate::dns::bind()
            .await
            .map_err(|error| format!("cannot serve DNS on {}: {error}", crate::dns::LISTEN))?;
        let dns = tokio::spawn(crate::dns::serve(sockets, scenario.clone(), recorder.clone()));
        let mut listeners = Vec::new();
        for &(address, server) in &network.listeners {
            let listener = listen::bind(address)
                .await
                .map_err(|error| format!("cannot listen on {address}:25: {error}"))?;
            let host = host_at(&scenario, address).unwrap_or_else(|| {
                mxsim_model::name::Name::parse("unnamed.invalid").expect("a valid name")
            });
            listeners.push(tokio::spawn(listen::serve(
                listener,
                address,
                server,
                host,
                shared.clone(),
            )));
        }
        let setup = Setup {
            scenario: &scenario,
            work: &work,
            root: root.to_path_buf(),
            scale: options.scale,
        };
        let started = async {
            driver.configure(&setup).await?;
            // After the driver's mounts: an overlay of /etc would hide an earlier bind mount.
            namespace::resolver(&work)?;
            driver.start().await
        }
        .await;
        if let Err(error) = started {
            return Err(format!("{error}\n--- the MTA's log ---\n{}", driver.log()));
        }
        // Scenario time zero: the MTA is up and nothing has been submitted.
        recorder.restart();
        let listening: Vec<IpAddr> = network.listeners.iter().map(|(at, _)| *at).collect();
        let verdict = follow(
            &scenario,
            &mut driver,
            &recorder,
            &options.retry_at,
            &listening,
        )
        .await;
        driver.stop().await;
        dns.abort();
        for listener in &listeners {
            listener.abort();
        }
        let (outcomes, more_notes) = verdict.map_err(|error| {
            format!("{error}\n--- the MTA's log ---\n{}", driver.log())
        })?;
        notes.extend(more_notes);
        recorder.outcomes(&outcomes);
        let trace = recorder.trace();
        let violations = scenario
            .expectations
            .iter()
            .find(|expectation| expectation.policy == options.policy)
            .map(|expectation| mxsim_model::expect::violations(expectation, &trace, &outcomes));
        Ok(LiveRun {
            header,
            trace,
            outcomes,
            violations,
            notes,
        })
    })
}

/// The header's lines on where each address is served.
fn describe(scenario: &Scenario, network: &Network) -> Vec<String> {
    let mut lines = Vec::new();
    let name = |address: IpAddr| {
        host_at(scenario, address)
            .map(|name| name.as_str().to_owned())
            .unwrap_or_else(|| "-".to_owned())
    };
    for &(address, server) in &network.listeners {
        lines.push(format!(
            "listen: {}:25 serves {} (script of server {})",
            address,
            name(address),
            scenario.servers[server].label()
        ));
    }
    for &address in &network.refusing {
        lines.push(format!(
            "listen: {address}:25 refuses connections ({})",
            name(address)
        ));
    }
    for &address in &network.dropping {
        lines.push(format!(
            "listen: {address}:25 drops SYNs, the connection times out ({})",
            name(address)
        ));
    }
    lines
}

/// The state of one recipient as the MTA reported it.
struct Seen {
    disposition: Disposition,
    at: Instant,
    attempts: u32,
}

/// Injects the messages at their times and reads the MTA's log until its verdict is in. A
/// failed connection the MTA reports to an address in `listening` is left out: the listener
/// saw that connection and recorded it (Exim words a connect timeout and a silent greeting
/// alike).
async fn follow<D: Driver>(
    scenario: &Scenario,
    driver: &mut D,
    recorder: &Recorder,
    retry_at: &[Duration],
    listening: &[IpAddr],
) -> Result<(Vec<RecipientOutcome>, Vec<String>), String> {
    let mut retries: Vec<Instant> = retry_at
        .iter()
        .map(|at| Instant::START.after(*at))
        .collect();
    retries.sort();
    retries.reverse();
    let clock = recorder.clock();
    let mut notes = Vec::new();
    let last = scenario
        .messages
        .iter()
        .map(|message| message.at)
        .max()
        .unwrap_or(Instant::START);
    let end = if scenario.queue {
        match scenario.horizon {
            Some(horizon) => Instant::START.after(horizon),
            None => {
                notes.push(format!(
                    "no `horizon:`: the MTA's queue was followed for {QUEUE_LIMIT} after the last submission"
                ));
                last.after(QUEUE_LIMIT)
            }
        }
    } else {
        last.after(FIRST_ATTEMPT_LIMIT)
    };
    let mut queue_ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen: BTreeMap<(usize, Mailbox), Seen> = BTreeMap::new();
    let mut next = 0;
    let mut polled = Instant::START;
    loop {
        // Submit what is due.
        while let Some(message) = scenario.messages.get(next)
            && clock.now() >= message.at
        {
            recorder.record(EventKind::Submitted {
                message: next,
                recipients: message.to.clone(),
            });
            driver
                .inject(next, &message.from, &message.to, &text(next, message))
                .await?;
            next += 1;
        }
        if let Some(&due) = retries.last()
            && clock.now() >= due
        {
            retries.pop();
            driver.force_retry().await?;
            notes.push(format!(
                "the harness made the MTA retry its deferred mail at {} (--retry-at {})",
                clock.now(),
                due.since_start()
            ));
        }
        let observations = driver.observations();
        let now = clock.now();
        for observation in observations {
            match observation {
                Observation::Queued { message, queue_id } => {
                    queue_ids.insert(queue_id, message);
                }
                Observation::ConnectFailed { address, .. } if listening.contains(&address) => {}
                Observation::ConnectFailed {
                    host,
                    address,
                    refused,
                } => {
                    let start = EventKind::Connecting { address, host };
                    if refused {
                        let end = EventKind::Refused { address };
                        recorder.record_reported(polled, now, None, start, end);
                    } else {
                        let waited = driver.connect_timeout();
                        let began = Instant(now.0.saturating_sub(waited.0));
                        let end = EventKind::ConnectGaveUp { address, waited };
                        recorder.record_reported(polled, now, Some(began), start, end);
                    }
                }
                Observation::Status {
                    queue_id,
                    recipient,
                    kind,
                    relay,
                    reply,
                    reason,
                } => {
                    let Some(&message) = queue_ids.get(&queue_id) else {
                        continue;
                    };
                    let disposition = match (kind, relay, reply) {
                        (DispositionKind::Delivered, Some((host, address)), Some(reply)) => {
                            Disposition::Delivered {
                                host,
                                address,
                                reply,
                            }
                        }
                        (DispositionKind::Delivered, ..) => {
                            return Err(format!(
                                "the MTA reports a delivery to {recipient} without a relay and reply: {reason}"
                            ));
                        }
                        (DispositionKind::Bounced, _, reply) => {
                            Disposition::Bounced { reason, reply }
                        }
                        (DispositionKind::Deferred, ..) => Disposition::Deferred { reason },
                    };
                    let entry = seen.entry((message, recipient)).or_insert(Seen {
                        disposition: disposition.clone(),
                        at: now,
                        attempts: 0,
                    });
                    entry.disposition = disposition;
                    entry.at = now;
                    entry.attempts += 1;
                }
                Observation::Expired { queue_id } => {
                    let Some(&message) = queue_ids.get(&queue_id) else {
                        continue;
                    };
                    for ((of, _), state) in seen.iter_mut() {
                        if *of == message && state.disposition.kind() == DispositionKind::Deferred {
                            state.disposition = Disposition::Bounced {
                                reason: "the MTA's queue lifetime ran out".to_owned(),
                                reply: None,
                            };
                            state.at = now;
                        }
                    }
                }
            }
        }
        let all_submitted = next == scenario.messages.len();
        let every = |final_only: bool| {
            scenario
                .messages
                .iter()
                .enumerate()
                .all(|(index, message)| {
                    message.to.iter().all(|recipient| {
                        seen.get(&(index, recipient.clone())).is_some_and(|state| {
                            !final_only || state.disposition.kind() != DispositionKind::Deferred
                        })
                    })
                })
        };
        if all_submitted && every(scenario.queue) {
            break;
        }
        if clock.now() >= end {
            if scenario.queue {
                let queued = scenario
                    .messages
                    .iter()
                    .enumerate()
                    .filter(|(index, message)| {
                        message.to.iter().any(|recipient| {
                            seen.get(&(*index, recipient.clone())).is_none_or(|state| {
                                state.disposition.kind() == DispositionKind::Deferred
                            })
                        })
                    })
                    .count();
                recorder.record(EventKind::Horizon {
                    horizon: end.since_start(),
                    queued,
                });
            } else {
                notes.push(format!(
                    "the MTA gave no verdict on every recipient within {FIRST_ATTEMPT_LIMIT} of the submission"
                ));
            }
            break;
        }
        polled = now;
        tokio::time::sleep(POLL).await;
    }
    let mut outcomes = Vec::new();
    for (index, message) in scenario.messages.iter().enumerate() {
        for recipient in message.to.iter() {
            let outcome = match seen.remove(&(index, recipient.clone())) {
                Some(state) => RecipientOutcome {
                    message: index,
                    recipient: recipient.clone(),
                    at: state.at,
                    disposition: state.disposition,
                },
                None => RecipientOutcome {
                    message: index,
                    recipient: recipient.clone(),
                    at: clock.now(),
                    disposition: Disposition::Deferred {
                        reason: "the MTA reported nothing before the run ended".to_owned(),
                    },
                },
            };
            outcomes.push(outcome);
        }
    }
    Ok((outcomes, notes))
}

/// The text handed to the MTA for message `index`: headers that name it (the listeners find
/// the index in the Message-ID), and a body of the scenario's `size:` when it has one.
pub fn text(index: usize, message: &mxsim_model::scenario::Message) -> String {
    let mut text = format!(
        "From: <{}>\nTo: {}\nSubject: mxsim live message {index}\nMessage-ID: <mxsim.{index}@mxsim.invalid>\n\n",
        message.from.as_str(),
        message
            .to
            .iter()
            .map(|to| format!("<{}>", to.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let body = "mxsim live mode\n";
    let size = message
        .size
        .and_then(|size| usize::try_from(size).ok())
        .unwrap_or(0)
        .min(16 << 20);
    text.push_str(body);
    while text.len() < size {
        let line = "x".repeat(75.min(size - text.len()).max(1));
        text.push_str(&line);
        text.push('\n');
    }
    text
}

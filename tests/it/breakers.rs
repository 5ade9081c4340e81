//! Proof that each checker can fire (issue #9, item 4): for every MUST rule with a checker and
//! for the claim P1, one row of [`PROOFS`]: a test-only policy file in `breakers/` that breaks the
//! rule with one setting and a scenario on which `mxsim run` reports `FAIL <id>` and exits 1, or,
//! where no setting of the policy-file format can break the rule, the reason, and (where any
//! client could break it) a test-only Rust client that does, judged through the lab's real judge
//! ([`judge::explore`]). A MUST rule with a checker and no row fails the test, and so does a
//! checker that stays silent.

use std::sync::Arc;

use mxsim_cli::{EXIT_FAILED, EXIT_OK, main_with};
use mxsim_lab::judge;
use mxsim_model::dns::{DnsAnswer, Mx, RecordType};
use mxsim_model::name::Name;
use mxsim_model::outcome::{Disposition, RecipientOutcome};
use mxsim_model::queue::Backoff;
use mxsim_model::rules::{Grade, Level, RULES};
use mxsim_model::smtp::{Reply, ReplyClass};
use mxsim_model::time::Duration;
use mxsim_model::world::{Connect, Handshake, Hint, HintKey, Job, LocalFuture, MailParameters};
use mxsim_model::world::{Policy, Response};
use mxsim_model::world::{Session, World};
use mxsim_policy::settings::Claim;
use mxsim_sim::{Prepared, Runner, SimWorld};
use mxsim_tests::{load, root};

/// How a rule is proven breakable, and broken.
enum Proof {
    /// A policy file of `breakers/` breaks it on a scenario of `breakers/`; the preset it extends
    /// does not.
    File {
        policy: &'static str,
        scenario: &'static str,
    },
    /// No setting of the policy-file format breaks it (the reason); a test-only Rust client
    /// does, on a scenario of `breakers/`.
    Rust {
        no_setting: &'static str,
        misdeed: Misdeed,
        scenario: &'static str,
    },
    /// No client can break it, whatever its code: the reason. The checker is proven on a trace
    /// built to break it (`each_queue_rule_fires_on_a_trace_that_breaks_it` in
    /// `crates/mxsim-model/src/invariants.rs`).
    NoClient(&'static str),
}

/// One rule and its proof.
struct Row {
    rule: &'static str,
    proof: Proof,
}

const fn row(rule: &'static str, proof: Proof) -> Row {
    Row { rule, proof }
}

/// Every MUST rule with a checker, and the claim P1: how each is broken.
const PROOFS: &[Row] = &[
    row(
        "D1",
        Proof::File {
            policy: "d1-nxdomain-falls-back.yaml",
            scenario: "nxdomain.yaml",
        },
    ),
    row(
        "D2",
        Proof::Rust {
            no_setting: "every policy file defers on SERVFAIL or a timeout of the MX query (engine.rs mx_records): no setting uses the domain's own address then",
            misdeed: Misdeed::OwnAddress,
            scenario: "servfail.yaml",
        },
    ),
    row(
        "D4",
        Proof::Rust {
            no_setting: "a policy file uses the implicit MX only after NODATA (or NXDOMAIN with `implicit_mx: nodata-or-nxdomain`), never beside MX records",
            misdeed: Misdeed::OwnAddress,
            scenario: "mx-and-address.yaml",
        },
    ),
    row(
        "D6",
        Proof::Rust {
            no_setting: "a lone null MX bounces, or defers with `null_mx_alone: defer`, both without a connection",
            misdeed: Misdeed::OwnAddress,
            scenario: "null-mx.yaml",
        },
    ),
    row(
        "D10",
        Proof::Rust {
            no_setting: "the engine sorts the candidate list by preference before any setting orders within a preference (`order.equal_preference`), and walks it forward",
            misdeed: Misdeed::Backwards,
            scenario: "three-preferences.yaml",
        },
    ),
    row(
        "D3",
        Proof::Rust {
            no_setting: "every policy file falls back to the implicit MX on NODATA (`implicit_mx` is nodata or nodata-or-nxdomain), looks up the domain's addresses and connects to them",
            misdeed: Misdeed::NoImplicitMx,
            scenario: "nodata.yaml",
        },
    ),
    row(
        "D5",
        Proof::File {
            policy: "d5-no-address-defers.yaml",
            scenario: "mx-targets-nxdomain.yaml",
        },
    ),
    row(
        "D8",
        Proof::Rust {
            no_setting: "every policy file follows a CNAME at the recipient domain to the target's MX records (at most 8, then it defers), and never connects to the alias",
            misdeed: Misdeed::CnameAsHost,
            scenario: "cname-domain.yaml",
        },
    ),
    row(
        "D12",
        Proof::Rust {
            no_setting: "the engine keeps each family's addresses in the answer's order; `order.address_family` only chooses which family comes first, and no setting shuffles or reverses them",
            misdeed: Misdeed::AddressesBackwards,
            scenario: "multihomed.yaml",
        },
    ),
    row(
        "D14",
        Proof::File {
            policy: "d14-self-mx-ignored.yaml",
            scenario: "self-middle.yaml",
        },
    ),
    row(
        "D15",
        Proof::File {
            policy: "d15-self-best-defers.yaml",
            scenario: "self-best.yaml",
        },
    ),
    row(
        "S3",
        Proof::Rust {
            no_setting: "every session of a policy file sends EHLO (or HELO after `helo_fallback`) before MAIL; a failed one ends the session",
            misdeed: Misdeed::NoHello,
            scenario: "two-mx-accept.yaml",
        },
    ),
    row(
        "S4",
        Proof::Rust {
            no_setting: "every policy file sends EHLO again after a TLS handshake; `starttls_refused: continue` goes on only when TLS did not come up",
            misdeed: Misdeed::NoEhloAfterTls,
            scenario: "starttls.yaml",
        },
    ),
    row(
        "R3",
        Proof::Rust {
            no_setting: "a recipient accepted after the end of data is settled and never sent again by the engine; a second copy needs a lost end-of-data reply, which R3 exempts (R8)",
            misdeed: Misdeed::EveryHost,
            scenario: "two-mx-accept-queued.yaml",
        },
    ),
    row(
        "X8",
        Proof::File {
            policy: "x8-smtputf8-ignored.yaml",
            scenario: "smtputf8-missing.yaml",
        },
    ),
    row(
        "X5",
        Proof::File {
            policy: "x5-requiretls-ignored.yaml",
            scenario: "requiretls-missing.yaml",
        },
    ),
    row(
        "Q1",
        Proof::File {
            policy: "q1-never-retried.yaml",
            scenario: "all-mx-refuse-queued.yaml",
        },
    ),
    row(
        "S8",
        Proof::Rust {
            no_setting: "every policy file reads a reply by its class (`ReplyClass`, the first digit); no setting names single codes",
            misdeed: Misdeed::ExactCodes,
            scenario: "rcpt-unlisted-4yz.yaml",
        },
    ),
    row(
        "R7",
        Proof::Rust {
            no_setting: "`memory.hosts` makes a record for a transient failure of MAIL only (a 4yz, for that message alone), never for a 5yz",
            misdeed: Misdeed::CacheMailRefusal,
            scenario: "mail-5yz-two-messages.yaml",
        },
    ),
    row(
        "Q2",
        Proof::NoClient(
            "the simulator's queue, not the client, schedules retries, from the client's own schedule (`queue.retry`): no client retries sooner than its own shortest delay",
        ),
    ),
    row(
        "Q6",
        Proof::NoClient(
            "the simulator's queue, not the client, sends DSNs, and never for a message with the null reverse-path",
        ),
    ),
    row(
        "P1",
        Proof::Rust {
            no_setting: "the loader refuses the claim without `after_ehlo: same-or-better` (and with `reuse: {by: domain}`), and the engine holds that setting",
            misdeed: Misdeed::EveryHost,
            scenario: "two-mx-accept.yaml",
        },
    ),
];

fn breakers() -> std::path::PathBuf {
    root().join("tests/it/breakers")
}

/// The rules a row must prove: every MUST with a checker, and every POLICY rule (the claims).
fn must_prove() -> Vec<&'static str> {
    RULES
        .iter()
        .filter(|rule| rule.judged() && matches!(rule.level, Level::Must | Level::Policy))
        .map(|rule| rule.id)
        .collect()
}

#[test]
fn every_must_rule_with_a_checker_has_a_row() {
    let rows: Vec<&str> = PROOFS.iter().map(|row| row.rule).collect();
    let wanted = must_prove();
    let missing: Vec<_> = wanted.iter().filter(|id| !rows.contains(id)).collect();
    assert!(missing.is_empty(), "no proof row for {missing:?}");
    let extra: Vec<_> = rows.iter().filter(|id| !wanted.contains(id)).collect();
    assert!(
        extra.is_empty(),
        "rows for rules that are not judged MUST or claims: {extra:?}"
    );
    let mut sorted = rows.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), rows.len(), "a rule has two rows");
    for row in PROOFS {
        let reason = match row.proof {
            Proof::File { .. } => continue,
            Proof::Rust { no_setting, .. } => no_setting,
            Proof::NoClient(reason) => reason,
        };
        assert!(
            reason.split_whitespace().count() >= 5,
            "{}: the reason no setting breaks it is missing or too short",
            row.rule
        );
    }
}

/// The words a verdict line of `rule` starts with when it fails.
fn fail_line(rule: &str) -> String {
    let level = RULES
        .iter()
        .find(|found| found.id == rule)
        .map_or(Level::Must, |found| found.level);
    format!("FAIL {rule} {level}")
}

#[test]
fn each_breaker_policy_file_fails_its_rule_through_mxsim_run() {
    let folder = breakers();
    for row in PROOFS {
        let Proof::File { policy, scenario } = row.proof else {
            continue;
        };
        let scenario = folder.join(scenario);
        let policy = folder.join(policy);
        let run = |policy: &std::path::Path| {
            main_with(
                [
                    "mxsim".as_ref(),
                    "run".as_ref(),
                    scenario.as_os_str(),
                    "--policy".as_ref(),
                    policy.as_os_str(),
                ]
                .map(Into::into),
            )
        };
        let output = run(&policy);
        let wanted = fail_line(row.rule);
        assert!(
            output.code == EXIT_FAILED && output.stdout.contains(&wanted),
            "{}: `mxsim run {} --policy {}` exited {} without `{wanted}`:\n{}{}",
            row.rule,
            scenario.display(),
            policy.display(),
            output.code,
            output.stdout,
            output.stderr
        );
        // The setting breaks it, not the scenario: the baseline passes there.
        let baseline = run(std::path::Path::new("rfc5321"));
        assert_eq!(
            baseline.code,
            EXIT_OK,
            "{}: the baseline fails {} too:\n{}",
            row.rule,
            scenario.display(),
            baseline.stdout
        );
    }
}

#[test]
fn each_rust_breaker_fails_its_rule_through_the_judge() {
    let runner = Runner::new();
    let folder = breakers();
    for row in PROOFS {
        let Proof::Rust {
            misdeed, scenario, ..
        } = row.proof
        else {
            continue;
        };
        let scenario = load(&folder.join(scenario));
        let prepared = Arc::new(Prepared::new(scenario));
        let claims: Vec<Claim> = RULES
            .iter()
            .filter(|rule| rule.id == row.rule && rule.level == Level::Policy)
            .map(|rule| Claim(rule.id))
            .collect();
        let policy = Rogue(misdeed);
        let verdict = judge::explore(&runner, &prepared, &policy, None, &claims, &[]);
        let fired = verdict.graded.contains_key(&(Grade::Fail, row.rule));
        assert!(
            fired && verdict.broken(),
            "{}: the checker stayed silent on {misdeed:?}; verdicts: {:?}",
            row.rule,
            verdict.graded.keys().collect::<Vec<_>>()
        );
        // The baseline keeps the rule on the same scenario.
        let baseline = mxsim_policy::registry::get::<SimWorld>("rfc5321").expect("registered");
        let verdict = judge::explore(&runner, &prepared, baseline.as_ref(), None, &claims, &[]);
        assert!(
            !verdict
                .graded
                .keys()
                .any(|(grade, rule)| *grade == Grade::Fail && *rule == row.rule),
            "{}: the baseline breaks it too",
            row.rule
        );
    }
}

/// What a test-only client does wrong.
#[derive(Clone, Copy, Debug)]
enum Misdeed {
    /// Connects to the recipient domain's own address, whatever the MX answer said.
    OwnAddress,
    /// Walks the MX list from the worst preference to the best.
    Backwards,
    /// Defers on an empty MX answer (NODATA) without a look at the domain's own address.
    NoImplicitMx,
    /// Takes a recipient domain that is a CNAME for a host: connects to the alias's own
    /// (CNAME-followed) address instead of the target's MX hosts.
    CnameAsHost,
    /// Tries a host's addresses from the last one the answer gives to the first.
    AddressesBackwards,
    /// Sends MAIL without EHLO or HELO.
    NoHello,
    /// Sends MAIL after STARTTLS without a new EHLO.
    NoEhloAfterTls,
    /// Sends the message to every MX host, best first, even after one took it.
    EveryHost,
    /// Takes only 250 and 251 at RCPT as success and bounces on any other code, whatever its
    /// first digit.
    ExactCodes,
    /// Remembers a host that refused MAIL with 5yz, and skips it for every later message.
    CacheMailRefusal,
}

/// A test-only client that breaks one rule on purpose; one recipient domain per message.
struct Rogue(Misdeed);

impl<W: World> Policy<W> for Rogue {
    fn name(&self) -> &str {
        "rogue"
    }

    fn deliver<'a>(&'a self, world: &'a W, job: Job<'a>) -> LocalFuture<'a, Vec<RecipientOutcome>> {
        Box::pin(async move {
            let domain = job.message.to[0].domain().clone();
            let answer = world.lookup(&domain, RecordType::Mx).await;
            let mut hosts: Vec<Name> = match answer {
                DnsAnswer::Mx(ref records) => {
                    let mut records: Vec<Mx> =
                        records.iter().filter(|mx| !mx.is_null()).cloned().collect();
                    records.sort_by_key(|mx| mx.preference);
                    records.into_iter().map(|mx| mx.exchange).collect()
                }
                _ => Vec::new(),
            };
            match self.0 {
                Misdeed::OwnAddress => hosts = vec![domain.clone()],
                Misdeed::Backwards => hosts.reverse(),
                Misdeed::CnameAsHost if matches!(answer, DnsAnswer::Cname(_)) => {
                    hosts = vec![domain.clone()];
                }
                // NODATA leaves no host: the recipients are deferred, nothing looked up.
                _ => {}
            }
            let mut delivered = None;
            for host in hosts {
                let mut asked = host.clone();
                let mut addresses = Vec::new();
                for _ in 0..8 {
                    match world.lookup(&asked, RecordType::A).await {
                        DnsAnswer::Cname(target) => asked = target,
                        DnsAnswer::Addresses(found) => {
                            addresses = found.to_vec();
                            break;
                        }
                        _ => break,
                    }
                }
                if matches!(self.0, Misdeed::AddressesBackwards) {
                    addresses.reverse();
                } else {
                    addresses.truncate(1);
                }
                if matches!(self.0, Misdeed::CacheMailRefusal) {
                    addresses.retain(|address| world.consult(&HintKey::Host(*address)).is_none());
                }
                let mut opened = None;
                for address in addresses {
                    if let Connect::Connected(session) = world.connect(address, &host).await {
                        opened = Some((address, session));
                        break;
                    }
                }
                let Some((address, mut session)) = opened else {
                    continue;
                };
                match self.transaction(&mut session, job).await {
                    Ok(reply) => {
                        delivered.get_or_insert(Disposition::Delivered {
                            host: host.clone(),
                            address,
                            reply,
                        });
                        if !matches!(self.0, Misdeed::EveryHost) {
                            break;
                        }
                    }
                    Err(Refusal::Rcpt(reply)) if matches!(self.0, Misdeed::ExactCodes) => {
                        delivered = Some(Disposition::Bounced {
                            reason: format!("RCPT answered {reply}"),
                            reply: Some(reply),
                        });
                        break;
                    }
                    Err(Refusal::Mail(reply)) if matches!(self.0, Misdeed::CacheMailRefusal) => {
                        world.set_hint(
                            HintKey::Host(address),
                            Some(Hint {
                                until: world.now().after(Duration::hours(1)),
                                backoff: Backoff::default(),
                                reason: Arc::from(format!("MAIL answered {reply}")),
                            }),
                        );
                        delivered = Some(Disposition::Bounced {
                            reason: format!("MAIL answered {reply}"),
                            reply: Some(reply),
                        });
                        break;
                    }
                    Err(_) => {}
                }
            }
            let disposition = delivered.unwrap_or(Disposition::Deferred {
                reason: "no host took it".to_owned(),
            });
            job.message
                .to
                .iter()
                .map(|recipient| RecipientOutcome {
                    message: job.message_index,
                    recipient: recipient.clone(),
                    at: world.now(),
                    disposition: disposition.clone(),
                })
                .collect()
        })
    }
}

/// Why a rogue transaction ended without a delivery.
enum Refusal {
    /// MAIL got this reply.
    Mail(Reply),
    /// A RCPT got this reply.
    Rcpt(Reply),
    /// Anything else.
    Other,
}

impl Rogue {
    /// One transaction on an open session; the end-of-data reply when it was 2yz.
    async fn transaction<S: Session>(
        &self,
        session: &mut S,
        job: Job<'_>,
    ) -> Result<Reply, Refusal> {
        let positive = |response: Response| match response {
            Response::Reply(reply)
                if matches!(
                    reply.class(),
                    ReplyClass::Positive | ReplyClass::Intermediate
                ) =>
            {
                Ok(reply)
            }
            _ => Err(Refusal::Other),
        };
        positive(session.greeting().await)?;
        let client = &job.client.name;
        if !matches!(self.0, Misdeed::NoHello) {
            let Response::Reply(ehlo) = session.ehlo(client).await else {
                return Err(Refusal::Other);
            };
            if ehlo.reply.class() != ReplyClass::Positive {
                return Err(Refusal::Other);
            }
        }
        if matches!(self.0, Misdeed::NoEhloAfterTls) {
            positive(session.starttls().await)?;
            if session.handshake().await != Handshake::Established {
                return Err(Refusal::Other);
            }
        }
        match session
            .mail(&job.message.from, &MailParameters::default())
            .await
        {
            Response::Reply(reply) if reply.class() == ReplyClass::Positive => {}
            Response::Reply(reply) => return Err(Refusal::Mail(reply)),
            _ => return Err(Refusal::Other),
        }
        for recipient in job.message.to.iter() {
            match session.rcpt(recipient).await {
                // The misdeed: exact codes, not the first digit.
                Response::Reply(reply)
                    if matches!(self.0, Misdeed::ExactCodes)
                        && !matches!(reply.code.get(), 250 | 251) =>
                {
                    return Err(Refusal::Rcpt(reply));
                }
                Response::Reply(reply) if reply.class() == ReplyClass::Positive => {}
                Response::Reply(reply) => return Err(Refusal::Rcpt(reply)),
                _ => return Err(Refusal::Other),
            }
        }
        positive(session.data().await)?;
        let reply = positive(session.end_of_data(job.message_index).await)?;
        let _ = session.quit().await;
        Ok(reply)
    }
}

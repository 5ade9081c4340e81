//! A policy written directly in Rust against the model's traits, registered by name beside the
//! preset files: proof that the engine is one way to write a client, not the only one.
//!
//! `first-mx-only` models the naive client of many scripts and application libraries: it takes
//! the best MX record in the order DNS gave, connects to its first address once, and never
//! falls back. It breaks RFC 5321 §5.1 (equal preferences not randomised, no second address)
//! on purpose, so comparisons show what the fallback rules buy.

use mxsim_model::time::Duration;
use std::net::IpAddr;

use mxsim_model::dns::{DnsAnswer, RecordType};
use mxsim_model::outcome::{Disposition, RecipientOutcome};
use mxsim_model::smtp::{Reply, ReplyClass};
use mxsim_model::time::Instant;
use mxsim_model::world::{
    Connect, Job, LocalFuture, MailParameters, Policy, Response, Session, World,
};

/// The naive client.
#[derive(Clone, Copy, Debug)]
pub struct FirstMxOnly;

impl FirstMxOnly {
    /// Its registry name.
    pub const NAME: &'static str = "first-mx-only";
}

/// Every wait of this client: five minutes, the RFC's common minimum.
const WAIT: Duration = Duration(300_000);

impl<W: World> Policy<W> for FirstMxOnly {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn deliver<'a>(&'a self, world: &'a W, job: Job<'a>) -> LocalFuture<'a, Vec<RecipientOutcome>> {
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(job.message.to.len());
            for recipient in job.message.to.iter() {
                let mut settled = None;
                let disposition = deliver_one(world, job, recipient, &mut settled).await;
                outcomes.push(RecipientOutcome {
                    message: job.message_index,
                    recipient: recipient.clone(),
                    at: settled.unwrap_or_else(|| world.now()),
                    disposition,
                });
            }
            outcomes
        })
    }
}

async fn deliver_one<W: World>(
    world: &W,
    job: Job<'_>,
    recipient: &mxsim_model::name::Mailbox,
    settled: &mut Option<Instant>,
) -> Disposition {
    let domain = recipient.domain();
    let deferred = |reason: &str| Disposition::Deferred {
        reason: reason.to_owned(),
    };
    let host = match world
        .timeout(WAIT, world.lookup(domain, RecordType::Mx))
        .await
    {
        Some(DnsAnswer::Mx(records)) => match records
            .iter()
            .filter(|record| !record.is_null())
            .min_by_key(|record| record.preference)
        {
            Some(record) => record.exchange.clone(),
            None => {
                return Disposition::Bounced {
                    reason: "null MX".to_owned(),
                    reply: None,
                };
            }
        },
        Some(DnsAnswer::NoData) => domain.clone(),
        Some(DnsAnswer::NxDomain) => {
            return Disposition::Bounced {
                reason: format!("{domain} does not exist"),
                reply: None,
            };
        }
        _ => return deferred("MX lookup failed"),
    };
    let address: IpAddr = match world
        .timeout(WAIT, world.lookup(&host, RecordType::A))
        .await
    {
        Some(DnsAnswer::Addresses(addresses)) if !addresses.is_empty() => addresses[0],
        _ => return deferred("no address for the first MX"),
    };
    let mut session = match world.timeout(WAIT, world.connect(address, &host)).await {
        Some(Connect::Connected(session)) => session,
        _ => return deferred("first MX unreachable"),
    };
    let steps: [(&str, ReplyClass); 6] = [
        ("greeting", ReplyClass::Positive),
        ("HELO", ReplyClass::Positive),
        ("MAIL", ReplyClass::Positive),
        ("RCPT", ReplyClass::Positive),
        ("DATA", ReplyClass::Intermediate),
        ("end of data", ReplyClass::Positive),
    ];
    let mut last: Option<Reply> = None;
    for (index, (what, expected)) in steps.into_iter().enumerate() {
        let response = match index {
            0 => world.timeout(WAIT, session.greeting()).await,
            1 => world.timeout(WAIT, session.helo(&job.client.name)).await,
            2 => {
                world
                    .timeout(
                        WAIT,
                        session.mail(&job.message.from, &MailParameters::default()),
                    )
                    .await
            }
            3 => world.timeout(WAIT, session.rcpt(recipient)).await,
            4 => world.timeout(WAIT, session.data()).await,
            _ => {
                world
                    .timeout(WAIT, session.end_of_data(job.message_index))
                    .await
            }
        };
        let reply = match response {
            Some(Response::Reply(reply)) => reply,
            _ => return deferred(&format!("no reply to {what}")),
        };
        match reply.class() {
            class if class == expected => last = Some(reply),
            ReplyClass::Permanent => {
                return Disposition::Bounced {
                    reason: format!("{what} refused"),
                    reply: Some(reply),
                };
            }
            _ => {
                return Disposition::Deferred {
                    reason: format!("{what} answered {reply}"),
                };
            }
        }
    }
    // The recipient is settled when the server takes the message, not after QUIT.
    *settled = Some(world.now());
    let _ = world.timeout(WAIT, session.quit()).await;
    let reply = last.expect("the last step succeeded");
    Disposition::Delivered {
        host,
        address,
        reply,
    }
}

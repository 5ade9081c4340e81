//! The checkers judged on outcomes and across messages (S2, S7, S8, R1, R6, R7, Q1, Q5, Q7, X5)
//! fire on a trace built to break their rule and stay quiet on the same trace done right.

use std::sync::Arc;

use super::*;
use crate::dns::{DnsAnswer, Mx, RecordType};
use crate::name::{Mailbox, Name};
use crate::outcome::Disposition;
use crate::queue::QueueSettings;
use crate::smtp::Reply;
use crate::time::{Duration, Instant};
use crate::trace::{AttemptId, Closer, Event, EventKind, Sent};
use crate::world::{HintKey, MailParameters};

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";

fn at(kind: EventKind) -> Event {
    Event {
        at: Instant::START,
        attempt: None,
        kind,
    }
}

/// The same event, in attempt `number` of `message`, at `minutes` past the start.
fn tagged(mut event: Event, message: u32, number: u32, minutes: u64) -> Event {
    event.attempt = Some(AttemptId { message, number });
    event.at = Instant::START.after(Duration::minutes(minutes));
    event
}

fn name(text: &str) -> Name {
    Name::parse(text).expect("valid")
}

fn mailbox(text: &str) -> Mailbox {
    Mailbox::parse(text).expect("valid")
}

fn connect(address: &str, host: &str) -> Event {
    at(EventKind::Connecting {
        address: address.parse().expect("valid"),
        host: name(host),
    })
}

fn sent(address: &str, command: Sent) -> Event {
    at(EventKind::Sent {
        address: address.parse().expect("valid"),
        command,
    })
}

fn replied(address: &str, reply: &str) -> Event {
    at(EventKind::Replied {
        address: address.parse().expect("valid"),
        reply: Reply::parse(reply).expect("valid"),
        keywords: None,
    })
}

fn ehlo_offering(address: &str, keywords: &[&str]) -> Event {
    at(EventKind::Replied {
        address: address.parse().expect("valid"),
        reply: Reply::parse("250").expect("valid"),
        keywords: Some(
            keywords
                .iter()
                .map(|text| crate::smtp::Keyword::parse(text).expect("valid"))
                .collect(),
        ),
    })
}

fn closed(address: &str, by: Closer) -> Event {
    at(EventKind::Closed {
        address: address.parse().expect("valid"),
        by,
    })
}

fn mail() -> Sent {
    Sent::Mail(
        mailbox("s@sender.example"),
        MailParameters {
            size: None,
            extensions: Vec::new(),
        },
    )
}

fn ehlo() -> Sent {
    Sent::Ehlo(name("client.example"))
}

fn rcpt(text: &str) -> Sent {
    Sent::Rcpt(mailbox(text))
}

const TO: &str = "u@foo.example";

fn outcome(disposition: Disposition) -> Event {
    at(EventKind::Outcome {
        message: 0,
        recipient: mailbox(TO),
        disposition,
    })
}

fn bounced(reply: Option<&str>) -> Event {
    outcome(Disposition::Bounced {
        reason: "given up".to_owned(),
        reply: reply.map(|text| Reply::parse(text).expect("valid")),
    })
}

fn deferred() -> Event {
    outcome(Disposition::Deferred {
        reason: "later".to_owned(),
    })
}

fn message(requires: &[&str], wants: &[&str]) -> Message {
    Message {
        at: Instant::START,
        from: mailbox("s@sender.example"),
        to: Arc::from(vec![mailbox(TO)]),
        size: None,
        requires: requires.iter().map(|k| Arc::from(*k)).collect(),
        wants: wants.iter().map(|k| Arc::from(*k)).collect(),
    }
}

/// What `rule`'s checker finds broken in `events`, for `messages`, in a queue run when `queue`.
fn fired_with(
    rule: &str,
    events: Vec<Event>,
    messages: &[Message],
    queue: Option<&QueueSettings>,
) -> Vec<&'static str> {
    let trace = Trace { events };
    let subject = Subject {
        trace: &trace,
        outcomes: &[],
        messages,
        queue,
        client: None,
        memo: &Default::default(),
    };
    find(rule)
        .expect("a rule of the table")
        .check(&subject)
        .iter()
        .map(|violation| violation.rule)
        .collect()
}

fn fired(rule: &str, events: Vec<Event>) -> Vec<&'static str> {
    fired_with(rule, events, &[message(&[], &[])], None)
}

/// A session at A up to an accepted MAIL.
fn session() -> Vec<Event> {
    vec![
        connect(A, "mx1.foo.example"),
        replied(A, "220"),
        sent(A, ehlo()),
        replied(A, "250"),
        sent(A, mail()),
        replied(A, "250"),
    ]
}

#[test]
fn s2_fires_when_a_refused_ehlo_is_not_followed_by_helo() {
    let refused = vec![
        connect(A, "mx1.foo.example"),
        replied(A, "220"),
        sent(A, ehlo()),
        replied(A, "502"),
    ];
    let mut quit = refused.clone();
    quit.push(sent(A, Sent::Quit));
    assert_eq!(fired("S2", quit.clone()), ["S2"]);
    let mut hung_up = refused.clone();
    hung_up.push(closed(A, Closer::Client));
    assert_eq!(fired("S2", hung_up), ["S2"]);
    let mut helo = refused.clone();
    helo.push(sent(A, Sent::Helo(name("client.example"))));
    assert!(fired("S2", helo).is_empty());
    let mut server_left = refused.clone();
    server_left.push(closed(A, Closer::Server));
    assert!(fired("S2", server_left).is_empty());
    // A message that needs an extension cannot be sent after HELO.
    assert!(fired_with("S2", quit, &[message(&["FOOBAR"], &[])], None).is_empty());
    let mut other = refused;
    other[3] = replied(A, "554");
    other.push(sent(A, Sent::Quit));
    assert!(fired("S2", other).is_empty());
}

#[test]
fn s7_fires_on_a_bounce_after_a_lost_transaction() {
    let mut lost = session();
    lost.push(sent(A, rcpt(TO)));
    lost.push(replied(A, "250"));
    lost.push(closed(A, Closer::Server));
    let mut bounce = lost.clone();
    bounce.push(bounced(None));
    assert_eq!(fired("S7", bounce), ["S7"]);
    let mut queued = lost.clone();
    queued.push(deferred());
    assert!(fired("S7", queued).is_empty());
    // A later host refuses the recipient for good: its bounce is that host's word.
    let mut refused_later = lost;
    refused_later.extend([
        connect(B, "mx2.foo.example"),
        sent(B, ehlo()),
        replied(B, "250"),
        sent(B, mail()),
        replied(B, "250"),
        sent(B, rcpt(TO)),
        replied(B, "550"),
        bounced(Some("550")),
    ]);
    assert!(fired("S7", refused_later).is_empty());
}

#[test]
fn s8_fires_when_an_unlisted_code_is_not_read_by_its_first_digit() {
    let mut transient = session();
    transient.push(sent(A, rcpt(TO)));
    transient.push(replied(A, "459 4.7.0 try later"));
    let mut bounce = transient.clone();
    bounce.push(bounced(Some("459 4.7.0 try later")));
    assert_eq!(fired("S8", bounce), ["S8"]);
    let mut queued = transient;
    queued.push(deferred());
    assert!(fired("S8", queued).is_empty());
    // An unlisted 5yz at RCPT, yet the recipient counted delivered by that host.
    let mut refused = session();
    refused.push(sent(A, rcpt(TO)));
    refused.push(replied(A, "559 5.1.1 no"));
    refused.push(outcome(Disposition::Delivered {
        host: name("mx1.foo.example"),
        address: A.parse().expect("valid"),
        reply: Reply::parse("250").expect("valid"),
    }));
    assert_eq!(fired("S8", refused), ["S8"]);
    // A listed 4yz bounce is R1's, not S8's.
    let mut listed = session();
    listed.push(sent(A, rcpt(TO)));
    listed.push(replied(A, "451"));
    listed.push(bounced(Some("451")));
    assert!(fired("S8", listed.clone()).is_empty());
    assert_eq!(fired("R1", listed), ["R1"]);
}

#[test]
fn r1_and_r6_fire_on_bounces_of_transient_replies() {
    let mut permanent = session();
    permanent.push(sent(A, rcpt(TO)));
    permanent.push(replied(A, "550"));
    permanent.push(bounced(Some("550")));
    assert!(fired("R1", permanent).is_empty());
    let mut too_many = session();
    too_many.push(sent(A, rcpt(TO)));
    too_many.push(replied(A, "452 4.5.3 too many recipients"));
    let mut bounce = too_many.clone();
    bounce.push(bounced(None));
    assert_eq!(fired("R6", bounce.clone()), ["R6"]);
    assert!(fired("R1", bounce).is_empty());
    let mut later = too_many;
    later.push(deferred());
    assert!(fired("R6", later).is_empty());
    // In a queue run, a 4yz bounce at the give-up time is the queue giving up.
    let settings = QueueSettings::rfc5321();
    let mut late = session();
    late.push(sent(A, rcpt(TO)));
    late.push(replied(A, "451"));
    let mut at_lifetime = bounced(Some("451"));
    at_lifetime.at = Instant::START.after(settings.lifetime);
    late.push(at_lifetime);
    assert!(fired_with("R1", late, &[message(&[], &[])], Some(&settings)).is_empty());
}

#[test]
fn r7_fires_when_a_mail_5yz_makes_another_message_skip_the_host() {
    let settings = QueueSettings::rfc5321();
    let messages = [message(&[], &[]), message(&[], &[])];
    let host = HintKey::Host(A.parse().expect("valid"));
    let record = |event: EventKind| at(event);
    let first: Vec<Event> = vec![
        connect(A, "mx1.foo.example"),
        replied(A, "220"),
        sent(A, ehlo()),
        replied(A, "250"),
        sent(A, mail()),
        replied(A, "550 5.7.1 sender refused"),
        record(EventKind::HintSet {
            key: host.clone(),
            until: Instant::START.after(Duration::hours(1)),
            reason: Arc::from("MAIL 550"),
        }),
    ]
    .into_iter()
    .map(|event| tagged(event, 0, 1, 0))
    .collect();
    let held = tagged(
        record(EventKind::HintHeld {
            key: host,
            until: Instant::START.after(Duration::hours(1)),
            reason: Arc::from("MAIL 550"),
        }),
        1,
        1,
        1,
    );
    let mut cached = first.clone();
    cached.push(held.clone());
    assert_eq!(fired_with("R7", cached, &messages, Some(&settings)), ["R7"]);
    // A record made after a 421 greeting is a host's state, not a MAIL reply.
    let mut busy = first;
    busy[5] = tagged(replied(A, "250"), 0, 1, 0);
    busy.insert(6, tagged(sent(A, Sent::Quit), 0, 1, 0));
    busy.insert(7, tagged(replied(A, "421"), 0, 1, 0));
    busy.push(held);
    assert!(fired_with("R7", busy, &messages, Some(&settings)).is_empty());
}

#[test]
fn q1_fires_when_queued_mail_is_never_retried() {
    let settings = QueueSettings::rfc5321();
    let messages = [message(&[], &[])];
    let started = |number| {
        at(EventKind::AttemptStarted {
            message: 0,
            attempt: number,
            recipients: Arc::from(vec![mailbox(TO)]),
        })
    };
    let retry = at(EventKind::Retry {
        message: 0,
        deferred: 1,
        next: Instant::START.after(Duration::minutes(30)),
        reason: Arc::from("refused"),
    });
    let expired = at(EventKind::Expired {
        message: 0,
        lifetime: settings.lifetime,
    });
    let horizon = at(EventKind::Horizon {
        horizon: Duration::hours(1),
        queued: 1,
    });
    let check = |events: Vec<Event>| fired_with("Q1", events, &messages, Some(&settings));
    assert_eq!(check(vec![started(1), expired.clone()]), ["Q1"]);
    assert_eq!(check(vec![started(1), retry.clone()]), ["Q1"]);
    assert!(check(vec![started(1), retry.clone(), started(2), expired]).is_empty());
    assert!(check(vec![started(1), retry, horizon]).is_empty());
}

#[test]
fn q5_fires_when_a_later_message_waits_out_a_dead_host_again() {
    let settings = QueueSettings::rfc5321();
    let messages = [message(&[], &[]), message(&[], &[])];
    let gave_up = |message, minutes| {
        tagged(
            at(EventKind::ConnectGaveUp {
                address: A.parse().expect("valid"),
                waited: Duration::minutes(5),
            }),
            message,
            1,
            minutes,
        )
    };
    let check = |events: Vec<Event>| fired_with("Q5", events, &messages, Some(&settings));
    // Message 1 starts waiting 5 minutes after message 0 gave up: within the 30m retry delay.
    assert_eq!(check(vec![gave_up(0, 5), gave_up(1, 15)]), ["Q5"]);
    assert!(check(vec![gave_up(0, 5), gave_up(1, 45)]).is_empty());
    // The same message's own next attempt is Q2's business.
    assert!(check(vec![gave_up(0, 5), gave_up(0, 15)]).is_empty());
    // Not a queue run: nothing to judge.
    assert!(fired_with("Q5", vec![gave_up(0, 5), gave_up(1, 15)], &messages, None).is_empty());
}

#[test]
fn q7_fires_when_a_message_expires_waiting_for_a_wanted_keyword() {
    let settings = QueueSettings::rfc5321();
    let messages = [message(&[], &["FOOBAR"])];
    let passed = vec![
        connect(A, "mx1.foo.example"),
        replied(A, "220"),
        sent(A, ehlo()),
        ehlo_offering(A, &["8BITMIME"]),
        sent(A, Sent::Quit),
        replied(A, "221"),
        closed(A, Closer::Client),
    ];
    let expired = at(EventKind::Expired {
        message: 0,
        lifetime: settings.lifetime,
    });
    let mut waited = passed.clone();
    waited.push(expired.clone());
    assert_eq!(fired_with("Q7", waited, &messages, Some(&settings)), ["Q7"]);
    let mut offered = passed.clone();
    offered[3] = ehlo_offering(A, &["FOOBAR"]);
    offered.push(expired.clone());
    assert!(fired_with("Q7", offered, &messages, Some(&settings)).is_empty());
    let mut tried = passed;
    tried[4] = sent(A, mail());
    tried[5] = replied(A, "451");
    tried.push(expired);
    assert!(fired_with("Q7", tried, &messages, Some(&settings)).is_empty());
}

#[test]
fn x5_fires_on_mail_without_requiretls_and_on_an_early_bounce() {
    let messages = [message(&["REQUIRETLS"], &[])];
    let check = |events: Vec<Event>| fired_with("X5", events, &messages, None);
    let greeted = vec![
        connect(A, "mx1.foo.example"),
        replied(A, "220"),
        sent(A, ehlo()),
        ehlo_offering(A, &["STARTTLS"]),
    ];
    let mut plain = greeted.clone();
    plain.push(sent(A, mail()));
    assert_eq!(check(plain), ["X5"]);
    let mut tls = greeted.clone();
    tls.extend([
        sent(A, Sent::Starttls),
        replied(A, "220"),
        at(EventKind::TlsEstablished {
            address: A.parse().expect("valid"),
        }),
        sent(A, ehlo()),
        ehlo_offering(A, &["REQUIRETLS"]),
        sent(A, mail()),
    ]);
    assert!(check(tls.clone()).is_empty());
    let mut lacking = tls;
    lacking[8] = ehlo_offering(A, &["8BITMIME"]);
    assert_eq!(check(lacking), ["X5"]);
    // A bounce after mx1 alone, with mx2 listed and reachable.
    let list: Arc<[Mx]> = ["10 mx1.foo.example", "20 mx2.foo.example"]
        .iter()
        .map(|text| Mx::parse(text).expect("valid"))
        .collect();
    let address_of = |host: &str, address: &str| {
        at(EventKind::Dns {
            name: name(host),
            record_type: RecordType::A,
            answer: DnsAnswer::Addresses(Arc::from(vec![address.parse().expect("valid")])),
        })
    };
    let mut early = vec![
        at(EventKind::Dns {
            name: name("foo.example"),
            record_type: RecordType::Mx,
            answer: DnsAnswer::Mx(list),
        }),
        address_of("mx1.foo.example", A),
        address_of("mx2.foo.example", B),
    ];
    early.extend(greeted);
    early.push(sent(A, Sent::Quit));
    let mut walked = early.clone();
    early.push(bounced(None));
    assert_eq!(check(early), ["X5"]);
    walked.extend([connect(B, "mx2.foo.example"), bounced(None)]);
    assert!(check(walked).is_empty());
}

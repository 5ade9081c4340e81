//! The server script interpreter, stepped by hand in paused time with tokio-test: what is
//! pending stays pending until virtual time reaches it, and dropped waits are recorded.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use mxsim_model::name::{Mailbox, Name};
use mxsim_model::scenario;
use mxsim_model::trace::{Closer, EventKind};
use mxsim_model::world::{Connect, MailParameters, Response, Session, World};
use tokio_test::{assert_pending, assert_ready, task};

use super::{Prepared, SimWorld};
use crate::choice::{Choices, Chooser};

fn world(servers: &str) -> SimWorld {
    let text = format!(
        "title: t\nmessage: {{to: [u@foo.example]}}\ndns: {{foo.example: {{mx: [10 mx.foo.example]}}}}\nservers:\n  mx.foo.example: {servers}\n"
    );
    let scenario = scenario::load(&text, &|_| true)
        .unwrap_or_else(|diagnostics| panic!("{}", diagnostics.render("t.yaml", &text)));
    let prepared = Arc::new(Prepared::new(Arc::new(scenario)));
    let budgets = prepared.budgets;
    SimWorld::new(prepared, Chooser::new(&Choices::Seed(0)), budgets)
}

async fn open(world: &SimWorld) -> super::SimSession {
    let host = Name::parse("mx.foo.example").unwrap();
    let address = "192.0.2.1".parse().unwrap();
    match world.connect(address, &host).await {
        Connect::Connected(session) => session,
        _ => panic!("the scripted server accepts"),
    }
}

fn kinds(world: &SimWorld) -> Vec<EventKind> {
    world
        .inner
        .state
        .borrow()
        .events
        .iter()
        .map(|event| event.kind.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_slow_greeting_arrives_exactly_at_its_delay() {
    let world = world("{greeting_delay: 4m59s}");
    let mut session = open(&world).await;
    let mut greeting = task::spawn(session.greeting());
    assert_pending!(greeting.poll());
    tokio::time::advance(StdDuration::from_millis(298_999)).await;
    assert_pending!(greeting.poll());
    tokio::time::advance(StdDuration::from_millis(1)).await;
    let response = assert_ready!(greeting.poll());
    assert!(matches!(response, Response::Reply(reply) if reply.code.get() == 220));
}

#[tokio::test(start_paused = true)]
async fn a_silent_greeting_ends_at_the_idle_timeout() {
    let world = world("{greeting: none, idle_timeout: 2m}");
    let mut session = open(&world).await;
    let mut greeting = task::spawn(session.greeting());
    assert_pending!(greeting.poll());
    tokio::time::advance(StdDuration::from_secs(119)).await;
    assert_pending!(greeting.poll());
    tokio::time::advance(StdDuration::from_secs(1)).await;
    assert_eq!(assert_ready!(greeting.poll()), Response::Closed);
    drop(greeting);
    assert!(kinds(&world).iter().any(|kind| matches!(
        kind,
        EventKind::Closed {
            by: Closer::ServerIdle,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_wait_is_recorded_as_the_client_giving_up() {
    let world = world("{delays: {ehlo: 1h}}");
    let mut session = open(&world).await;
    assert!(matches!(session.greeting().await, Response::Reply(_)));
    let name = Name::parse("client.example").unwrap();
    let waited = tokio::time::timeout(StdDuration::from_secs(300), session.ehlo(&name)).await;
    assert!(waited.is_err(), "the client's timeout fires first");
    let events = kinds(&world);
    assert!(events.iter().any(|kind| matches!(kind, EventKind::ReplyGaveUp { waited, .. } if waited.as_millis() == 300_000)), "{events:?}");
    assert_eq!(
        session.quit().await,
        Response::Closed,
        "a session the client gave up on is unusable"
    );
}

#[tokio::test(start_paused = true)]
async fn drop_after_closes_right_after_the_reply() {
    let world = world("{drop_after: mail}");
    let mut session = open(&world).await;
    let from = Mailbox::parse("a@b.example").unwrap();
    assert!(matches!(session.greeting().await, Response::Reply(_)));
    assert!(matches!(
        session.mail(&from, &MailParameters::default()).await,
        Response::Reply(_)
    ));
    assert_eq!(
        session
            .rcpt(&Mailbox::parse("u@foo.example").unwrap())
            .await,
        Response::Closed
    );
    assert!(kinds(&world).iter().any(|kind| matches!(
        kind,
        EventKind::Closed {
            by: Closer::Server,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn keywords_after_tls_default_to_the_plain_ones_without_starttls() {
    let world = world("{ehlo: [STARTTLS, SIZE 100, FOOBAR]}");
    let mut session = open(&world).await;
    let name = Name::parse("client.example").unwrap();
    assert!(matches!(session.greeting().await, Response::Reply(_)));
    assert!(matches!(session.ehlo(&name).await, Response::Reply(_)));
    assert!(matches!(session.starttls().await, Response::Reply(reply) if reply.code.get() == 220));
    assert_eq!(
        session.handshake().await,
        mxsim_model::world::Handshake::Established
    );
    let Response::Reply(after) = session.ehlo(&name).await else {
        panic!("EHLO after TLS is answered")
    };
    let names: Vec<&str> = after
        .keywords
        .iter()
        .map(|keyword| &*keyword.name)
        .collect();
    assert_eq!(names, ["SIZE", "FOOBAR"]);
}

#[tokio::test(start_paused = true)]
async fn an_ehlo_reply_keeps_its_keywords_when_the_server_closes_after_it() {
    let world = world("{ehlo: [STARTTLS], drop_after: ehlo}");
    let mut session = open(&world).await;
    let name = Name::parse("client.example").unwrap();
    assert!(matches!(session.greeting().await, Response::Reply(_)));
    assert!(matches!(session.ehlo(&name).await, Response::Reply(_)));
    let events = kinds(&world);
    let replied = events
        .iter()
        .rev()
        .find_map(|kind| match kind {
            EventKind::Replied { keywords, .. } => Some(keywords.clone()),
            _ => None,
        })
        .expect("the EHLO reply is recorded");
    let names: Vec<String> = replied
        .expect("an EHLO reply carries its keywords")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["STARTTLS"]);
    assert!(matches!(
        events.last(),
        Some(EventKind::Closed {
            by: Closer::Server,
            ..
        })
    ));
}

/// Caching on demand follows qmgr_entry.c `qmgr_entry_select`: attempts that start together
/// never turn it on; one that starts within 1 s of another's end while the domain's queue lives
/// (another attempt busy) turns it on, for the later ones too; the queue, and so caching, is
/// forgotten when the last busy attempt ends; each domain has its own.
#[test]
fn on_demand_caching_follows_back_to_back_attempts() {
    use mxsim_model::time::Instant;

    let mut state = super::State::empty();
    let domain = Name::parse("foo.example").unwrap();
    let other = Name::parse("bar.example").unwrap();
    // Two attempts together, then one after both ended: off.
    assert!(!state.dispatch(&domain, Instant(0)));
    assert!(!state.dispatch(&domain, Instant(0)));
    state.done(&domain, Instant(3_000));
    state.done(&domain, Instant(3_500));
    assert!(
        !state.dispatch(&domain, Instant(3_600)),
        "the queue was forgotten"
    );
    // Back-to-back while another is busy: on, and on for the next beside it.
    assert!(!state.dispatch(&domain, Instant(4_000)));
    state.done(&domain, Instant(5_000));
    assert!(!state.dispatch(&other, Instant(5_500)), "another domain");
    assert!(state.dispatch(&domain, Instant(6_000)), "1 s after an end");
    assert!(
        state.dispatch(&domain, Instant(9_000)),
        "sticky while the queue lives"
    );
    for at in [9_500, 9_600, 9_700] {
        state.done(&domain, Instant(at));
    }
    assert!(
        !state.dispatch(&domain, Instant(9_800)),
        "forgotten once idle"
    );
    // Just over 1 s after an end is not back-to-back.
    assert!(!state.dispatch(&domain, Instant(9_800)));
    state.done(&domain, Instant(10_000));
    assert!(!state.dispatch(&domain, Instant(11_001)));
}

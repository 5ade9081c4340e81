//! Each checker of the catalog fires on a trace built to break its rule, with the rule's id in
//! the violation, and stays quiet on the same trace done right; the table itself is whole.

use super::*;
use crate::dns::{DnsAnswer, Mx, RecordType};
use crate::name::{Mailbox, Name};
use crate::smtp::Reply;
use crate::time::Instant;
use crate::trace::{Event, EventKind, Sent};
use crate::world::MailParameters;

fn at(kind: EventKind) -> Event {
    Event {
        at: Instant::START,
        attempt: None,
        kind,
    }
}

fn name(text: &str) -> Name {
    Name::parse(text).expect("valid")
}

fn mx(domain: &str, answer: DnsAnswer) -> Event {
    at(EventKind::Dns {
        name: name(domain),
        record_type: RecordType::Mx,
        answer,
    })
}

fn records(list: &[&str]) -> DnsAnswer {
    DnsAnswer::Mx(
        list.iter()
            .map(|text| Mx::parse(text).expect("valid"))
            .collect(),
    )
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

fn mail() -> Sent {
    Sent::Mail(
        Mailbox::parse("s@sender.example").expect("valid"),
        MailParameters {
            size: None,
            extensions: Vec::new(),
        },
    )
}

fn ehlo() -> Sent {
    Sent::Ehlo(name("client.example"))
}

/// The ids of the rules `rule`'s checker finds broken in `events`.
fn fired(rule: &str, events: Vec<Event>) -> Vec<&'static str> {
    fired_for(rule, None, events)
}

/// As [`fired`], for a run whose client is `client`.
fn fired_for(
    rule: &str,
    client: Option<&crate::scenario::ClientIdentity>,
    events: Vec<Event>,
) -> Vec<&'static str> {
    let trace = Trace { events };
    let subject = Subject {
        trace: &trace,
        outcomes: &[],
        messages: &[],
        queue: None,
        client,
        memo: &Default::default(),
    };
    find(rule)
        .expect("a rule of the table")
        .check(&subject)
        .iter()
        .map(|violation| violation.rule)
        .collect()
}

const A: &str = "192.0.2.1";

#[test]
fn dns_checkers_fire_on_a_trace_that_breaks_them() {
    let nx = fired(
        "D1",
        vec![
            mx("foo.example", DnsAnswer::NxDomain),
            connect(A, "foo.example"),
        ],
    );
    assert_eq!(nx, ["D1"]);
    let servfail = vec![
        mx("foo.example", DnsAnswer::ServFail),
        connect(A, "foo.example"),
    ];
    assert_eq!(fired("D2", servfail), ["D2"]);
    let present = vec![
        mx("foo.example", records(&["10 mx.foo.example"])),
        connect(A, "foo.example"),
    ];
    assert_eq!(fired("D4", present), ["D4"]);
    assert!(
        fired(
            "D4",
            vec![
                mx("foo.example", records(&["10 mx.foo.example"])),
                connect(A, "mx.foo.example")
            ]
        )
        .is_empty()
    );
    let null = vec![
        mx("foo.example", records(&["0 ."])),
        connect(A, "foo.example"),
    ];
    assert_eq!(fired("D6", null), ["D6"]);
    let list = records(&["10 a.foo.example", "20 b.foo.example", "30 c.foo.example"]);
    let down = vec![
        mx("foo.example", list.clone()),
        connect(A, "c.foo.example"),
        connect(A, "b.foo.example"),
    ];
    assert_eq!(fired("D10", down), ["D10"]);
    let restart = vec![
        mx("foo.example", list),
        connect(A, "b.foo.example"),
        connect(A, "a.foo.example"),
    ];
    assert!(fired("D10", restart).is_empty());
}

#[test]
fn session_checkers_fire_on_a_trace_that_breaks_them() {
    let helo = vec![
        connect(A, "mx"),
        replied(A, "220"),
        sent(A, Sent::Helo(name("c.example"))),
    ];
    assert_eq!(fired("S1", helo), ["S1"]);
    let no_hello = vec![connect(A, "mx"), replied(A, "220"), sent(A, mail())];
    assert_eq!(fired("S3", no_hello), ["S3"]);
    let good = vec![
        connect(A, "mx"),
        replied(A, "220"),
        sent(A, ehlo()),
        replied(A, "250"),
        sent(A, mail()),
    ];
    assert!(fired("S1", good.clone()).is_empty());
    assert!(fired("S3", good.clone()).is_empty());
    let mut tls = good[..4].to_vec();
    tls.push(sent(A, Sent::Starttls));
    tls.push(replied(A, "220"));
    tls.push(at(EventKind::TlsEstablished {
        address: A.parse().expect("valid"),
    }));
    let mut stale = tls.clone();
    stale.push(sent(A, mail()));
    assert_eq!(fired("S4", stale), ["S4"]);
    tls.push(sent(A, ehlo()));
    tls.push(sent(A, mail()));
    assert!(fired("S4", tls).is_empty());
    let mut repeat = good.clone();
    repeat.push(replied(A, "550"));
    repeat.push(sent(A, mail()));
    assert_eq!(fired("R2", repeat), ["R2"]);
    let mut elsewhere = good;
    elsewhere.push(replied(A, "550"));
    elsewhere.push(connect(A, "mx"));
    elsewhere.push(sent(A, ehlo()));
    elsewhere.push(sent(A, mail()));
    assert!(fired("R2", elsewhere).is_empty());
}

fn rcpt(text: &str) -> Sent {
    Sent::Rcpt(Mailbox::parse(text).expect("valid"))
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

/// One transaction of message 0 for `to` on a new connection to `host`, its end of data
/// answered `end`.
fn transaction(host: &str, to: &str, end: &str) -> Vec<Event> {
    vec![
        connect(A, host),
        replied(A, "220"),
        sent(A, ehlo()),
        ehlo_offering(A, &["SMTPUTF8"]),
        sent(A, mail()),
        replied(A, "250"),
        sent(A, rcpt(to)),
        replied(A, "250"),
        sent(A, Sent::Data),
        replied(A, "354"),
        sent(A, Sent::EndOfData(0)),
        replied(A, end),
    ]
}

#[test]
fn r5_fires_on_a_resend_to_the_host_that_refused_the_data() {
    let mut again = transaction("mx1.foo.example", "u@foo.example", "554");
    again.extend(transaction("mx1.foo.example", "u@foo.example", "250"));
    assert_eq!(fired("R5", again), ["R5"]);
    let mut elsewhere = transaction("mx1.foo.example", "u@foo.example", "554");
    elsewhere.extend(transaction("mx2.foo.example", "u@foo.example", "250"));
    assert!(fired("R5", elsewhere).is_empty());
    let mut transient = transaction("mx1.foo.example", "u@foo.example", "451");
    transient.extend(transaction("mx1.foo.example", "u@foo.example", "250"));
    assert!(fired("R5", transient).is_empty());
}

#[test]
fn x8_fires_on_an_internationalized_address_to_a_host_without_smtputf8() {
    let done_right = transaction("mx1.foo.example", "δοκιμή@foo.example", "250");
    assert!(fired("X8", done_right.clone()).is_empty());
    let mut lacking = done_right;
    lacking[3] = ehlo_offering(A, &["8BITMIME"]);
    assert_eq!(fired("X8", lacking.clone()), ["X8"]);
    let mut helo = lacking;
    helo[2] = sent(A, Sent::Helo(name("client.example")));
    helo[3] = replied(A, "250");
    assert_eq!(fired("X8", helo), ["X8"]);
    let ascii = transaction("mx1.foo.example", "u@foo.example", "250");
    let mut ascii_lacking = ascii;
    ascii_lacking[3] = ehlo_offering(A, &["8BITMIME"]);
    assert!(fired("X8", ascii_lacking).is_empty());
}

#[test]
fn s6_fires_on_a_wait_below_the_minimum() {
    let gave_up = |command, secs| {
        at(EventKind::ReplyGaveUp {
            address: A.parse().expect("valid"),
            command,
            waited: crate::time::Duration::seconds(secs),
        })
    };
    use crate::smtp::Command;
    assert_eq!(fired("S6", vec![gave_up(Command::Greeting, 30)]), ["S6"]);
    assert_eq!(fired("S6", vec![gave_up(Command::EndOfData, 300)]), ["S6"]);
    assert!(fired("S6", vec![gave_up(Command::Greeting, 300)]).is_empty());
    assert!(fired("S6", vec![gave_up(Command::EndOfData, 600)]).is_empty());
    assert!(fired("S6", vec![gave_up(Command::Ehlo, 30)]).is_empty());
}

fn lookup(host: &str, record_type: RecordType, answer: DnsAnswer) -> Event {
    at(EventKind::Dns {
        name: name(host),
        record_type,
        answer,
    })
}

fn addresses(list: &[&str]) -> DnsAnswer {
    DnsAnswer::Addresses(
        list.iter()
            .map(|text| text.parse().expect("valid"))
            .collect(),
    )
}

fn submitted(recipients: &[&str]) -> Event {
    at(EventKind::Submitted {
        message: 0,
        recipients: recipients
            .iter()
            .map(|text| Mailbox::parse(text).expect("valid"))
            .collect(),
    })
}

fn ended(recipient: &str, bounced: bool) -> Event {
    let disposition = if bounced {
        crate::outcome::Disposition::Bounced {
            reason: "undeliverable".to_owned(),
            reply: None,
        }
    } else {
        crate::outcome::Disposition::Deferred {
            reason: "later".to_owned(),
        }
    };
    at(EventKind::Outcome {
        message: 0,
        recipient: Mailbox::parse(recipient).expect("valid"),
        disposition,
    })
}

fn client(host: &str, own: &[&str]) -> crate::scenario::ClientIdentity {
    crate::scenario::ClientIdentity {
        name: name(host),
        addresses: own
            .iter()
            .map(|text| text.parse().expect("valid"))
            .collect(),
    }
}

#[test]
fn d3_fires_when_nodata_is_not_followed_by_the_implicit_mx() {
    let looked = vec![
        mx("foo.example", DnsAnswer::NoData),
        lookup("foo.example", RecordType::A, addresses(&[A])),
        lookup("foo.example", RecordType::Aaaa, DnsAnswer::NoData),
    ];
    assert_eq!(fired("D3", looked.clone()), ["D3"]);
    assert_eq!(
        fired("D3", vec![mx("foo.example", DnsAnswer::NoData)]),
        ["D3"]
    );
    let mut connected = looked;
    connected.push(connect(A, "foo.example"));
    assert!(fired("D3", connected).is_empty());
    let nowhere = vec![
        mx("foo.example", DnsAnswer::NoData),
        lookup("foo.example", RecordType::A, DnsAnswer::NoData),
        lookup("foo.example", RecordType::Aaaa, DnsAnswer::ServFail),
    ];
    assert!(fired("D3", nowhere).is_empty());
}

#[test]
fn d5_fires_when_no_usable_mx_is_not_an_error() {
    let world = |b_answer: DnsAnswer, bounced: bool| {
        vec![
            submitted(&["u@foo.example"]),
            mx(
                "foo.example",
                records(&["10 a.foo.example", "20 b.foo.example"]),
            ),
            lookup("a.foo.example", RecordType::A, DnsAnswer::NxDomain),
            lookup("a.foo.example", RecordType::Aaaa, DnsAnswer::NxDomain),
            lookup("b.foo.example", RecordType::A, b_answer),
            lookup("b.foo.example", RecordType::Aaaa, DnsAnswer::NoData),
            ended("u@foo.example", bounced),
        ]
    };
    assert_eq!(fired("D5", world(DnsAnswer::NoData, false)), ["D5"]);
    assert!(fired("D5", world(DnsAnswer::NoData, true)).is_empty());
    // A temporary failure is O12's: deferring then is not judged.
    assert!(fired("D5", world(DnsAnswer::ServFail, false)).is_empty());
}

#[test]
fn d8_fires_on_a_connection_outside_the_cname_targets_list() {
    let alias = |host: &str| {
        vec![
            mx("alias.example", DnsAnswer::Cname(name("foo.example"))),
            mx("foo.example", records(&["10 mx.foo.example"])),
            lookup("mx.foo.example", RecordType::A, addresses(&[A])),
            connect(A, host),
        ]
    };
    assert_eq!(fired("D8", alias("alias.example")), ["D8"]);
    assert_eq!(fired("D8", alias("mx.alias.example")), ["D8"]);
    assert!(fired("D8", alias("mx.foo.example")).is_empty());
    let implicit = |host: &str| {
        vec![
            mx("alias.example", DnsAnswer::Cname(name("foo.example"))),
            mx("foo.example", DnsAnswer::NoData),
            connect(A, host),
        ]
    };
    assert_eq!(fired("D8", implicit("alias.example")), ["D8"]);
    assert!(fired("D8", implicit("foo.example")).is_empty());
}

#[test]
fn d12_fires_on_addresses_out_of_the_answers_order() {
    let (one, two, three) = ("192.0.2.1", "192.0.2.2", "192.0.2.3");
    let host = |order: &[&str]| {
        let mut events = vec![
            mx("foo.example", records(&["10 mx.foo.example"])),
            lookup(
                "mx.foo.example",
                RecordType::A,
                addresses(&[one, two, three]),
            ),
            lookup(
                "mx.foo.example",
                RecordType::Aaaa,
                addresses(&["2001:db8::1"]),
            ),
        ];
        events.extend(
            order
                .iter()
                .map(|address| connect(address, "mx.foo.example")),
        );
        events
    };
    assert_eq!(fired("D12", host(&[two, one])), ["D12"]);
    assert_eq!(fired("D12", host(&[one, three, two])), ["D12"]);
    assert!(fired("D12", host(&[one, two, three])).is_empty());
    // A restart at the first address, a skip forward, and families interleaved.
    assert!(fired("D12", host(&[one, two, one, three])).is_empty());
    assert!(fired("D12", host(&["2001:db8::1", one, three])).is_empty());
}

#[test]
fn d14_to_d16_fire_on_a_client_that_ignores_its_own_record() {
    let list = records(&[
        "10 mx1.foo.example",
        "20 mx2.foo.example",
        "30 mx3.foo.example",
    ]);
    let middle = client("mx2.foo.example", &[]);
    let to = |host: &str| {
        vec![
            submitted(&["u@foo.example"]),
            mx("foo.example", list.clone()),
            lookup("mx1.foo.example", RecordType::A, addresses(&["192.0.2.1"])),
            connect("192.0.2.1", host),
        ]
    };
    assert_eq!(
        fired_for("D14", Some(&middle), to("mx3.foo.example")),
        ["D14"]
    );
    assert_eq!(
        fired_for("D14", Some(&middle), to("mx2.foo.example")),
        ["D14"]
    );
    assert!(fired_for("D14", Some(&middle), to("mx1.foo.example")).is_empty());
    assert!(fired("D14", to("mx3.foo.example")).is_empty());
    // By address: relay's address is the client's.
    let by_address = client("out.sender.example", &["198.51.100.20"]);
    let relay = vec![
        mx("foo.example", list.clone()),
        lookup(
            "mx2.foo.example",
            RecordType::A,
            addresses(&["198.51.100.20"]),
        ),
        connect("192.0.2.3", "mx3.foo.example"),
    ];
    assert_eq!(fired_for("D14", Some(&by_address), relay), ["D14"]);
    // D16: the first connection goes to the best preference, and one is made.
    assert_eq!(
        fired_for("D16", Some(&middle), to("mx3.foo.example")),
        ["D16"]
    );
    assert!(fired_for("D16", Some(&middle), to("mx1.foo.example")).is_empty());
    let mut none = to("mx1.foo.example");
    none.pop();
    assert_eq!(fired_for("D16", Some(&middle), none), ["D16"]);
    // D15: the client is the best MX, and the recipients must bounce.
    let best = client("mx1.foo.example", &[]);
    let ends = |bounced: bool| {
        vec![
            submitted(&["u@foo.example"]),
            mx("foo.example", list.clone()),
            ended("u@foo.example", bounced),
        ]
    };
    assert_eq!(fired_for("D15", Some(&best), ends(false)), ["D15"]);
    assert!(fired_for("D15", Some(&best), ends(true)).is_empty());
    assert!(fired_for("D15", Some(&middle), ends(false)).is_empty());
}

/// The table holds every rule of the catalog once: D1–D17, S1–S9, R1–R8, Q1–Q7, X1–X15, P1.
#[test]
fn the_table_holds_the_whole_catalog_once() {
    let mut expected: Vec<String> = Vec::new();
    for (letter, count) in [("D", 17), ("S", 9), ("R", 8), ("Q", 7), ("X", 15), ("P", 1)] {
        expected.extend((1..=count).map(|number| format!("{letter}{number}")));
    }
    let mut ids: Vec<String> = RULES.iter().map(|rule| rule.id.to_owned()).collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
}

//! The scripted server stepped by hand: sequencing, greylisting, TLS, closing, and the parser.

use std::net::IpAddr;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::scenario;
use crate::time::Duration;

const ADDRESS: &str = "192.0.2.1";

/// A script for one server `mx.foo.example` (at 192.0.2.1) behaving as `behaviour`.
fn script(behaviour: &str) -> Script {
    let text = format!(
        "title: t\nmessage: {{to: [u@foo.example]}}\ndns: {{foo.example: {{mx: [10 mx.foo.example]}}}}\nservers:\n  mx.foo.example: {behaviour}\n"
    );
    let scenario = scenario::load(&text, &|_| true)
        .unwrap_or_else(|diagnostics| panic!("{}", diagnostics.render("t.yaml", &text)));
    Script::new(Arc::new(scenario))
}

fn client() -> Option<IpAddr> {
    Some("198.51.100.1".parse().unwrap())
}

fn open(script: &Script) -> Conversation {
    let server = script
        .server_at(ADDRESS.parse().unwrap())
        .expect("a server");
    Conversation::open(script, server, client(), Instant::START)
}

fn mailbox(text: &str) -> Mailbox {
    Mailbox::parse(text).unwrap()
}

fn mail(from: &str) -> Request {
    Request::Mail(mailbox(from), MailParameters::default())
}

fn rcpt(to: &str) -> Request {
    Request::Rcpt(mailbox(to))
}

fn ehlo() -> Request {
    Request::Ehlo(Name::parse("client.example").unwrap())
}

/// Steps `requests` at time zero; the code of each answer (0 for silence).
fn codes(script: &Script, conversation: &mut Conversation, requests: &[Request]) -> Vec<u16> {
    let mut state = ServerState::default();
    requests
        .iter()
        .map(|request| code(&conversation.step(script, &mut state, request, Instant::START)))
        .collect()
}

fn code(action: &Action) -> u16 {
    match &action.answer {
        Answer::Reply(reply) => reply.code.get(),
        Answer::Silent { .. } => 0,
    }
}

fn text(action: &Action) -> String {
    match &action.answer {
        Answer::Reply(reply) => reply.to_string(),
        Answer::Silent { .. } => String::new(),
    }
}

fn keyword_names(action: &Action) -> Vec<String> {
    action
        .keywords
        .as_deref()
        .expect("an EHLO reply carries keywords")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_well_behaved_server_takes_the_message() {
    let script = script("{}");
    let mut conversation = open(&script);
    let mut state = ServerState::default();
    let mut answers = Vec::new();
    for request in [
        Request::Greeting,
        ehlo(),
        mail("a@b.example"),
        rcpt("u@foo.example"),
        Request::Data,
        Request::EndOfData { message: 0 },
        Request::Quit,
    ] {
        answers.push(conversation.step(&script, &mut state, &request, Instant::START));
    }
    let texts: Vec<String> = answers.iter().map(text).collect();
    assert_eq!(
        texts,
        [
            "220 mx.foo.example ESMTP mxsim",
            "250 mx.foo.example",
            "250 2.1.0 sender ok",
            "250 2.1.5 recipient ok",
            "354 end data with <CR><LF>.<CR><LF>",
            "250 2.0.0 queued",
            "221 2.0.0 bye",
        ]
    );
    assert_eq!(
        answers[5].accepted,
        Some(Accepted {
            message: 0,
            recipients: Arc::from([mailbox("u@foo.example")]),
            reply_lost: false,
        })
    );
    assert_eq!(answers[1].keywords.as_deref(), Some(&[][..]));
    assert!(answers[..6].iter().all(|action| action.close.is_none()));
    assert_eq!(answers[6].close, Some(Closer::Client));
    assert!(!conversation.open_now());
}

#[test]
fn pipelined_commands_after_a_refused_mail_get_503() {
    let script = script("{mail: 550}");
    let mut conversation = open(&script);
    let requests = [
        Request::Greeting,
        ehlo(),
        mail("a@b.example"),
        rcpt("u@foo.example"),
        Request::Data,
    ];
    assert_eq!(
        codes(&script, &mut conversation, &requests),
        [220, 250, 550, 503, 503]
    );
    let mut state = ServerState::default();
    let action = conversation.step(&script, &mut state, &rcpt("u@foo.example"), Instant::START);
    assert_eq!(text(&action), "503 5.5.1 sender not yet given");
}

#[test]
fn rcpt_before_mail_gets_503() {
    let script = script("{}");
    let mut conversation = open(&script);
    let requests = [
        Request::Greeting,
        ehlo(),
        rcpt("u@foo.example"),
        Request::Data,
    ];
    assert_eq!(
        codes(&script, &mut conversation, &requests),
        [220, 250, 503, 503]
    );
}

#[test]
fn data_without_an_accepted_recipient_gets_554() {
    let script = script("{rcpt: 550}");
    let mut conversation = open(&script);
    let requests = [
        Request::Greeting,
        ehlo(),
        mail("a@b.example"),
        rcpt("u@foo.example"),
        Request::Data,
    ];
    assert_eq!(
        codes(&script, &mut conversation, &requests),
        [220, 250, 250, 550, 554]
    );
    let mut state = ServerState::default();
    let action = conversation.step(&script, &mut state, &Request::Data, Instant::START);
    assert_eq!(text(&action), "554 5.5.1 no valid recipients");
}

#[test]
fn rset_and_the_end_of_data_end_the_transaction() {
    let script = script("{}");
    let mut conversation = open(&script);
    let requests = [
        ehlo(),
        mail("a@b.example"),
        rcpt("u@foo.example"),
        Request::Rset,
        rcpt("u@foo.example"),
        mail("a@b.example"),
        rcpt("u@foo.example"),
        Request::Data,
        Request::EndOfData { message: 0 },
        rcpt("u@foo.example"),
    ];
    assert_eq!(
        codes(&script, &mut conversation, &requests),
        [250, 250, 250, 250, 503, 250, 250, 354, 250, 503]
    );
}

#[test]
fn noop_and_unknown_lines() {
    let script = script("{}");
    let mut conversation = open(&script);
    let requests = [
        Request::Noop,
        Request::Unknown("VRFY u".to_owned()),
        Request::parse("XYZZY"),
    ];
    assert_eq!(
        codes(&script, &mut conversation, &requests),
        [250, 500, 500]
    );
    let mut state = ServerState::default();
    let action = conversation.step(
        &script,
        &mut state,
        &Request::parse("XYZZY"),
        Instant::START,
    );
    assert_eq!(text(&action), "500 5.5.2 command not recognized");
    assert!(conversation.open_now());
}

#[test]
fn greylisting_is_kept_across_conversations() {
    let script = script("{greylist: {delay: 5m}}");
    let mut state = ServerState::default();
    let transaction = |conversation: &mut Conversation, state: &mut ServerState, at: Instant| {
        [ehlo(), mail("a@b.example"), rcpt("u@foo.example")]
            .iter()
            .map(|request| conversation.step(&script, state, request, at))
            .collect::<Vec<_>>()
            .pop()
            .expect("an answer to RCPT")
    };
    let mut first = open(&script);
    let refused = transaction(&mut first, &mut state, Instant::START);
    assert_eq!(
        text(&refused),
        "451 4.7.1 greylisted: please try again in 5m"
    );
    // Too early, on a new connection: the triplet's clock runs from the first RCPT.
    let four_minutes = Instant::START.after(Duration::minutes(4));
    let mut second = Conversation::open(&script, first.server(), client(), four_minutes);
    assert_eq!(
        code(&transaction(&mut second, &mut state, four_minutes)),
        451
    );
    let five_minutes = Instant::START.after(Duration::minutes(5));
    let mut third = Conversation::open(&script, first.server(), client(), five_minutes);
    assert_eq!(
        code(&transaction(&mut third, &mut state, five_minutes)),
        250
    );
    // Another sender is another triplet: its clock starts now.
    let mut fourth = Conversation::open(&script, first.server(), client(), five_minutes);
    let answers: Vec<u16> = [ehlo(), mail("other@b.example"), rcpt("u@foo.example")]
        .iter()
        .map(|request| code(&fourth.step(&script, &mut state, request, five_minutes)))
        .collect();
    assert_eq!(answers, [250, 250, 451]);
    // A fresh state is a server that remembers nothing.
    let mut fresh = ServerState::default();
    let mut fifth = Conversation::open(&script, first.server(), client(), five_minutes);
    assert_eq!(
        code(&transaction(&mut fifth, &mut fresh, five_minutes)),
        451
    );
}

#[test]
fn ehlo_keywords_before_and_after_tls() {
    let script = script("{ehlo: [SIZE 100, STARTTLS, PIPELINING]}");
    let mut conversation = open(&script);
    let mut state = ServerState::default();
    let mut step =
        |request: Request| conversation.step(&script, &mut state, &request, Instant::START);
    assert_eq!(
        keyword_names(&step(ehlo())),
        ["SIZE 100", "STARTTLS", "PIPELINING"]
    );
    assert_eq!(
        text(&step(Request::Starttls)),
        "220 2.0.0 ready to start TLS"
    );
    let handshake = step(Request::Handshake);
    assert_eq!(handshake.close, None);
    assert_eq!(handshake.answer, Answer::Silent { idle_timeout: None });
    assert_eq!(keyword_names(&step(ehlo())), ["SIZE 100", "PIPELINING"]);
    assert!(conversation.tls());

    let script = self::script("{ehlo: [STARTTLS], ehlo_after_tls: [REQUIRETLS]}");
    let mut conversation = open(&script);
    let mut state = ServerState::default();
    let mut step =
        |request: Request| conversation.step(&script, &mut state, &request, Instant::START);
    assert_eq!(keyword_names(&step(ehlo())), ["STARTTLS"]);
    step(Request::Starttls);
    step(Request::Handshake);
    assert_eq!(keyword_names(&step(ehlo())), ["REQUIRETLS"]);

    // A refused EHLO advertises nothing; HELO carries no keywords.
    let script = self::script("{ehlo: [STARTTLS], ehlo_reply: 502}");
    let mut conversation = open(&script);
    let mut state = ServerState::default();
    let refused = conversation.step(&script, &mut state, &ehlo(), Instant::START);
    assert_eq!(refused.keywords.as_deref(), Some(&[][..]));
    let helo = Request::Helo(Name::parse("client.example").unwrap());
    assert_eq!(
        conversation
            .step(&script, &mut state, &helo, Instant::START)
            .keywords,
        None
    );
}

#[test]
fn tls_discards_the_transaction() {
    let script = script("{ehlo: [STARTTLS]}");
    let mut conversation = open(&script);
    let requests = [
        ehlo(),
        mail("a@b.example"),
        rcpt("u@foo.example"),
        Request::Starttls,
        Request::Handshake,
        Request::Data,
    ];
    assert_eq!(
        codes(&script, &mut conversation, &requests),
        [250, 250, 250, 220, 0, 503]
    );
}

#[test]
fn a_failed_handshake_closes() {
    let script = script("{ehlo: [STARTTLS], starttls: handshake-fail, latency: 1s}");
    let mut conversation = open(&script);
    let mut state = ServerState::default();
    let mut step =
        |request: Request| conversation.step(&script, &mut state, &request, Instant::START);
    assert_eq!(code(&step(Request::Starttls)), 220);
    let handshake = step(Request::Handshake);
    assert_eq!(handshake.close, Some(Closer::Server));
    assert_eq!(handshake.delay, Duration::seconds(1));
    assert_eq!(step(ehlo()), Action::nothing());
    assert!(!conversation.open_now());
}

#[test]
fn starttls_without_the_keyword_is_not_implemented() {
    let script = script("{}");
    let mut conversation = open(&script);
    assert_eq!(
        codes(&script, &mut conversation, &[Request::Starttls]),
        [502]
    );
}

#[test]
fn drop_after_closes_after_the_reply() {
    let script = script("{drop_after: rcpt}");
    let mut conversation = open(&script);
    let mut state = ServerState::default();
    let mut step =
        |request: Request| conversation.step(&script, &mut state, &request, Instant::START);
    assert_eq!(step(mail("a@b.example")).close, None);
    let action = step(rcpt("u@foo.example"));
    assert_eq!(code(&action), 250);
    assert_eq!(action.close, Some(Closer::Server));
    // A command after the conversation closed gets nothing.
    assert_eq!(step(Request::Data), Action::nothing());
    assert!(!conversation.open_now());
}

#[test]
fn a_421_closes() {
    let script = script("{mail: \"421 4.3.2 busy\"}");
    let mut conversation = open(&script);
    let mut state = ServerState::default();
    let action = conversation.step(&script, &mut state, &mail("a@b.example"), Instant::START);
    assert_eq!(text(&action), "421 4.3.2 busy");
    assert_eq!(action.close, Some(Closer::Server));
    assert!(!conversation.open_now());
    let after = conversation.step(&script, &mut state, &Request::Noop, Instant::START);
    assert_eq!(after, Action::nothing());
}

#[test]
fn quit_closes() {
    let script = script("{}");
    let mut conversation = open(&script);
    let mut state = ServerState::default();
    let action = conversation.step(&script, &mut state, &Request::Quit, Instant::START);
    assert_eq!(text(&action), "221 2.0.0 bye");
    assert_eq!(action.close, Some(Closer::Client));
    // A server that drops the connection after QUIT closes it itself.
    let script = self::script("{drop_after: quit}");
    let mut conversation = open(&script);
    let action = conversation.step(&script, &mut state, &Request::Quit, Instant::START);
    assert_eq!(action.close, Some(Closer::Server));
    // A refused QUIT leaves the connection open.
    let script = self::script("{quit: 500}");
    let mut conversation = open(&script);
    let action = conversation.step(&script, &mut state, &Request::Quit, Instant::START);
    assert_eq!(action.close, None);
    assert!(conversation.open_now());
}

#[test]
fn delays_latency_and_silence() {
    let script = script(
        "{latency: 20ms, greeting: none, delays: {mail: 10s}, end_of_data: lost, idle_timeout: 5m}",
    );
    let mut conversation = open(&script);
    let mut state = ServerState::default();
    let mut step =
        |request: Request| conversation.step(&script, &mut state, &request, Instant::START);
    let greeting = step(Request::Greeting);
    assert_eq!(
        (greeting.delay, greeting.answer),
        (
            Duration(20),
            Answer::Silent {
                idle_timeout: Some(Duration::minutes(5))
            }
        )
    );
    assert_eq!(step(mail("a@b.example")).delay, Duration(10_020));
    assert_eq!(step(Request::Noop).delay, Duration(20));
    step(rcpt("u@foo.example"));
    step(Request::Data);
    let lost = step(Request::EndOfData { message: 3 });
    assert_eq!(
        lost.answer,
        Answer::Silent {
            idle_timeout: Some(Duration::minutes(5))
        }
    );
    assert_eq!(
        lost.accepted
            .map(|accepted| (accepted.message, accepted.reply_lost)),
        Some((3, true))
    );
}

#[test]
fn the_idle_timer_runs_from_the_last_answer() {
    let script = script("{idle_timeout: 1m, latency: 1s}");
    let mut conversation = open(&script);
    let mut state = ServerState::default();
    conversation.step(&script, &mut state, &ehlo(), Instant::START);
    // Answered at 1s: idle from then on.
    assert!(!conversation.idle_expired(&script, Instant(60_999)));
    assert!(conversation.open_now());
    assert!(conversation.idle_expired(&script, Instant(61_000)));
    assert!(!conversation.open_now());
}

#[test]
fn connect_and_addresses() {
    let script = script("{connect: refuse, latency: 3s}");
    let server = script.server_at(ADDRESS.parse().unwrap()).unwrap();
    assert_eq!(
        script.connect(server, Instant::START),
        ConnectAction {
            mode: ConnectMode::Refuse,
            latency: Duration::seconds(3)
        }
    );
    assert_eq!(script.server_at("192.0.2.99".parse().unwrap()), None);
    assert_eq!(script.scenario().servers.len(), 1);
}

#[test]
fn parse_table() {
    let name = |text: &str| Name::parse(text).unwrap();
    let parameters = |size: Option<u64>, extensions: &[&str]| MailParameters {
        size,
        extensions: extensions.iter().map(|e| Arc::from(*e)).collect(),
    };
    let unknown = |line: &str| Request::Unknown(line.to_owned());
    let table = [
        ("EHLO client.example", Request::Ehlo(name("client.example"))),
        ("ehlo Client.Example", Request::Ehlo(name("client.example"))),
        ("HELO client.example", Request::Helo(name("client.example"))),
        ("EHLO", unknown("EHLO")),
        ("EHLO [192.0.2.1]", unknown("EHLO [192.0.2.1]")),
        ("STARTTLS", Request::Starttls),
        ("starttls", Request::Starttls),
        ("STARTTLS now", unknown("STARTTLS now")),
        (
            "MAIL FROM:<a@b.example>",
            Request::Mail(mailbox("a@b.example"), parameters(None, &[])),
        ),
        (
            "MAIL FROM:<a@b.example> SIZE=12 BODY=8BITMIME",
            Request::Mail(
                mailbox("a@b.example"),
                parameters(Some(12), &["BODY=8BITMIME"]),
            ),
        ),
        (
            "mail from: <a@b.example> smtputf8",
            Request::Mail(mailbox("a@b.example"), parameters(None, &["smtputf8"])),
        ),
        (
            "MAIL FROM:<>",
            Request::Mail(Mailbox::null(), parameters(None, &[])),
        ),
        (
            "MAIL FROM:<@relay.example:a@b.example>",
            Request::Mail(mailbox("a@b.example"), parameters(None, &[])),
        ),
        (
            "MAIL FROM:<a@b.example> SIZE=x",
            unknown("MAIL FROM:<a@b.example> SIZE=x"),
        ),
        ("MAIL FROM:a@b.example", unknown("MAIL FROM:a@b.example")),
        ("MAIL TO:<a@b.example>", unknown("MAIL TO:<a@b.example>")),
        (
            "RCPT TO:<x@y.example>",
            Request::Rcpt(mailbox("x@y.example")),
        ),
        (
            "rcpt to:<x@y.example> NOTIFY=NEVER ORCPT=rfc822;x@y.example",
            Request::Rcpt(mailbox("x@y.example")),
        ),
        ("RCPT TO:<>", unknown("RCPT TO:<>")),
        ("RCPT TO:<postmaster>", unknown("RCPT TO:<postmaster>")),
        ("DATA", Request::Data),
        ("data", Request::Data),
        ("RSET", Request::Rset),
        ("QUIT", Request::Quit),
        ("QUIT\r\n", Request::Quit),
        ("NOOP", Request::Noop),
        ("NOOP anything", Request::Noop),
        ("VRFY u", unknown("VRFY u")),
        ("", unknown("")),
        ("MAIL", unknown("MAIL")),
        ("MAIL FRO", unknown("MAIL FRO")),
        (
            "MAIL FROMé:<a@b.example>",
            unknown("MAIL FROMé:<a@b.example>"),
        ),
    ];
    for (line, request) in table {
        assert_eq!(Request::parse(line), request, "parsing {line:?}");
    }
}

#[test]
fn wire_lines() {
    let reply = |text: &str| Reply::parse(text).unwrap();
    let keywords: Vec<Keyword> = ["SIZE 100", "PIPELINING"]
        .iter()
        .map(|k| Keyword::parse(k).unwrap())
        .collect();
    assert_eq!(
        wire(&reply("250 mx.example"), Some(&keywords)),
        "250-mx.example\r\n250-SIZE 100\r\n250 PIPELINING\r\n"
    );
    assert_eq!(
        wire(&reply("250 mx.example"), Some(&[])),
        "250 mx.example\r\n"
    );
    assert_eq!(wire(&reply("421 4.3.2 busy"), None), "421 4.3.2 busy\r\n");
    let empty = Reply::new(ReplyCode::new(250).unwrap(), "");
    assert_eq!(wire(&empty, None), "250\r\n");
    let broken = Reply::new(ReplyCode::new(550).unwrap(), "no\r\nway");
    assert_eq!(wire(&broken, None), "550 no  way\r\n");
}

proptest! {
    #[test]
    fn parse_never_panics(line in any::<String>()) {
        let _ = Request::parse(&line);
    }

    #[test]
    fn parse_never_panics_on_command_like_lines(
        verb in prop::sample::select(vec!["EHLO", "HELO", "MAIL", "RCPT", "mail", "DATA", "NOOP"]),
        rest in "[ -~\u{80}-\u{10ffff}]{0,40}",
    ) {
        let _ = Request::parse(&format!("{verb} {rest}"));
        let _ = Request::parse(&format!("{verb} FROM:{rest}"));
        let _ = Request::parse(&format!("{verb} TO:<{rest}"));
    }
}

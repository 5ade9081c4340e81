//! The JSON Schema of scenario files (`docs/schemas/scenario.schema.json`), generated from the
//! loader's key tables: every key of [`TOP_KEYS`], [`SERVER_KEYS`] and the others gets its type
//! here, and a key without one panics, so a new key cannot be left out of the schema (the tests
//! generate it). What a schema cannot see (unreachable servers, hosts `expect:` names that the
//! zone lacks, a window that ends before it starts) is left to the loader.

use super::{
    CLIENT_KEYS, DELAY_KEYS, EXPECT_KEYS, FAILURE_WORDS, MESSAGE_KEYS, NAME_KEYS, NAME_WINDOW_KEYS,
    OUTCOME_WORDS, QUEUED_MESSAGE_KEYS, SERVER_KEYS, TOP_KEYS,
};
use crate::json::{
    Json, any_of, array, closed, count, def, described, document, obj, s, strs, words,
};

/// Every key of a server, with an example and its meaning: the schema's descriptions and the
/// comments `mxsim new` writes. In [`SERVER_KEYS`] order (a test holds them equal).
pub const SERVER_KEY_DOCS: &[(&str, &str, &str)] = &[
    (
        "connect",
        "connect: refuse",
        "how the address answers a SYN: accept | refuse | timeout | reset",
    ),
    (
        "latency",
        "latency: 20ms",
        "added to the TCP handshake, every reply and the TLS handshake",
    ),
    (
        "greeting",
        "greeting: \"421 4.3.2 busy\"",
        "the first reply; `none`: the connection stays silent",
    ),
    (
        "greeting_delay",
        "greeting_delay: 4m59s",
        "the wait before the greeting",
    ),
    (
        "ehlo",
        "ehlo: [SIZE 10240000, STARTTLS]",
        "the keywords a 2yz EHLO reply advertises",
    ),
    (
        "ehlo_reply",
        "ehlo_reply: 502",
        "the reply to EHLO (500/502: the client may use HELO)",
    ),
    (
        "helo_reply",
        "helo_reply: \"550 5.7.1 no\"",
        "the reply to HELO",
    ),
    (
        "starttls",
        "starttls: 454",
        "ok | handshake-fail | a reply code",
    ),
    (
        "ehlo_after_tls",
        "ehlo_after_tls: [REQUIRETLS]",
        "the keywords advertised once TLS is up",
    ),
    (
        "mail",
        "mail: \"451 4.3.0 try later\"",
        "the reply to MAIL FROM",
    ),
    (
        "rcpt",
        "rcpt: {user@foo.example: 550, \"*\": 250}",
        "the reply to each RCPT TO, or per recipient",
    ),
    ("data", "data: 554", "the reply to DATA"),
    (
        "end_of_data",
        "end_of_data: lost",
        "the reply after the final dot; `none` never replies; `lost`: accepted, reply lost",
    ),
    ("quit", "quit: \"221 2.0.0 see you\"", "the reply to QUIT"),
    (
        "rset",
        "rset: \"421 4.4.2 closing\"",
        "the reply to RSET (before a cached session is reused)",
    ),
    (
        "delays",
        "delays: {mail: 10s, end_of_data: 11m}",
        "extra wait before replying to each command",
    ),
    (
        "drop_after",
        "drop_after: rcpt",
        "close the connection right after replying to this command",
    ),
    (
        "idle_timeout",
        "idle_timeout: 5m",
        "close a session idle this long",
    ),
    (
        "greylist",
        "greylist: {delay: 5m}",
        "451 4.7.1 to a new (address, sender, recipient) triplet until `delay` has passed",
    ),
    (
        "during",
        "during: [{from: 0s, until: 1h, connect: refuse}]",
        "behaviour that changes over virtual time; later windows win",
    ),
];

/// The meaning of a server key.
fn server_meaning(key: &str) -> &'static str {
    SERVER_KEY_DOCS
        .iter()
        .find(|(name, _, _)| *name == key)
        .map(|(_, _, meaning)| *meaning)
        .unwrap_or_else(|| panic!("server key `{key}` has no entry in SERVER_KEY_DOCS"))
}

/// The schema of scenario files; `policies` are the names `expect:` may use.
pub fn scenario_schema(policies: &[&str]) -> String {
    let top = TOP_KEYS
        .iter()
        .map(|key| ((*key).to_owned(), top_key(key)))
        .collect();
    let root = closed(top).with("required", strs(&["title", "dns"])).with(
        "oneOf",
        Json::Arr(vec![
            obj([("required", strs(&["message"]))]),
            obj([("required", strs(&["messages"]))]),
        ]),
    );
    let extra = vec![
        ("records".to_owned(), records(NAME_KEYS)),
        ("server".to_owned(), server(SERVER_KEYS, &[])),
        ("policy".to_owned(), words(policies)),
    ];
    document(
        "https://mxsim.example/schemas/scenario.schema.json",
        "mxsim scenario file",
        root,
        extra,
    )
    .pretty()
}

fn top_key(key: &str) -> Json {
    match key {
        "title" => described(
            obj([
                ("type", s("string")),
                ("minLength", Json::Int(1)),
                ("pattern", s("^[^\\n]+$")),
            ]),
            "one non-empty line",
        ),
        "refs" => described(
            array(obj([("type", s("string"))])),
            "the rules or questions this scenario exercises (`D1`, `O7`, `RFC 5321 §5.1`)",
        ),
        "description" => described(obj([("type", s("string"))]), "free text"),
        "seed" => described(
            any_of(vec![
                count(),
                obj([("type", s("string")), ("pattern", s("^[0-9]+$"))]),
            ]),
            "the seed `mxsim run` uses when `--seed` is not given",
        ),
        "horizon" => described(def("duration"), "queue scenarios: the queue run ends here"),
        "client" => described(
            closed(keys(CLIENT_KEYS, client_key)),
            "the sending MTA's identity",
        ),
        "message" => described(
            message(MESSAGE_KEYS),
            "one message, one pass over the MX list",
        ),
        "messages" => described(
            array(message(QUEUED_MESSAGE_KEYS)).with("minItems", Json::Int(1)),
            "a queue scenario: several messages, each submitted at its `at`",
        ),
        "dns" => described(
            obj([
                ("type", s("object")),
                ("propertyNames", def("host")),
                (
                    "additionalProperties",
                    any_of(vec![obj([("const", s("nxdomain"))]), def("records")]),
                ),
            ]),
            "the zone: owner name to records, or `nxdomain`",
        ),
        "servers" => described(
            obj([
                ("type", s("object")),
                (
                    "additionalProperties",
                    any_of(vec![obj([("type", s("null"))]), def("server")]),
                ),
            ]),
            "SMTP servers: host name or address to behaviour; `{}` is a well-behaved server",
        ),
        "expect" => described(
            obj([
                ("type", s("object")),
                ("propertyNames", def("policy")),
                (
                    "additionalProperties",
                    closed(keys(EXPECT_KEYS, expect_key)),
                ),
            ]),
            "policy name to what that policy must do, over every explored order",
        ),
        _ => panic!("top-level key `{key}` has no schema"),
    }
}

fn keys(table: &[&str], schema: fn(&str) -> Json) -> Vec<(String, Json)> {
    table
        .iter()
        .map(|key| ((*key).to_owned(), schema(key)))
        .collect()
}

fn client_key(key: &str) -> Json {
    match key {
        "name" => described(
            def("host"),
            "the EHLO name; an MX target with it is the client",
        ),
        "addresses" => described(array(def("address")), "the client's own addresses"),
        _ => panic!("client key `{key}` has no schema"),
    }
}

fn message(table: &[&str]) -> Json {
    closed(keys(table, message_key)).with("required", strs(&["to"]))
}

fn message_key(key: &str) -> Json {
    match key {
        "at" => described(def("duration"), "submission time"),
        "from" => described(
            any_of(vec![def("mailbox"), obj([("const", s("<>"))])]),
            "the reverse path; \"<>\" is the null reverse-path",
        ),
        "to" => described(
            array(def("mailbox")).with("minItems", Json::Int(1)),
            "the recipients, in order",
        ),
        "size" => described(count(), "the message size in bytes"),
        "requires" => described(
            array(def("keywordName")),
            "keywords without which the message must not be transmitted to a host",
        ),
        "wants" => described(
            array(def("keywordName")),
            "keywords used when offered; the message can go without them",
        ),
        _ => panic!("message key `{key}` has no schema"),
    }
}

fn records(table: &[&str]) -> Json {
    closed(keys(table, name_key))
}

fn failure_or(list: Json) -> Json {
    any_of(vec![list, words(FAILURE_WORDS)])
}

fn name_key(key: &str) -> Json {
    match key {
        "mx" => described(
            failure_or(array(obj([
                ("type", s("string")),
                (
                    "pattern",
                    s(
                        "^[0-9]+ (\\.|([A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\\.?)$",
                    ),
                ),
            ]))),
            "MX records \"<preference> <host>\" in zone order, or a failure word",
        ),
        "a" => described(
            failure_or(array(def("ipv4"))),
            "A records, or a failure word",
        ),
        "aaaa" => described(
            failure_or(array(def("ipv6"))),
            "AAAA records, or a failure word",
        ),
        "cname" => described(def("host"), "the alias target, or a failure word"),
        "latency" => described(def("duration"), "how long every answer for this name takes"),
        "during" => described(
            array(
                closed(keys(NAME_WINDOW_KEYS, name_window_key)).with("required", strs(&["from"])),
            ),
            "answers that change over virtual time; later windows win",
        ),
        _ => panic!("dns key `{key}` has no schema"),
    }
}

fn name_window_key(key: &str) -> Json {
    match key {
        "from" => described(def("duration"), "the window starts here, inclusive"),
        "until" => described(def("duration"), "the window ends here, exclusive"),
        other => name_key(other),
    }
}

fn server(table: &[&str], extra: &[&str]) -> Json {
    let mut properties: Vec<(String, Json)> = extra
        .iter()
        .map(|key| {
            let what = if *key == "from" {
                "the window starts here"
            } else {
                "the window ends here"
            };
            ((*key).to_owned(), described(def("duration"), what))
        })
        .collect();
    properties.extend(table.iter().map(|key| {
        (
            (*key).to_owned(),
            described(server_key(key), server_meaning(key)),
        )
    }));
    closed(properties)
}

fn reply_or(word: &[&str]) -> Json {
    any_of(vec![def("reply"), words(word)])
}

fn server_key(key: &str) -> Json {
    match key {
        "connect" => words(&["accept", "refuse", "timeout", "reset"]),
        "latency" | "greeting_delay" | "idle_timeout" => def("duration"),
        "greeting" => reply_or(&["none"]),
        "ehlo" | "ehlo_after_tls" => array(def("keyword")),
        "ehlo_reply" | "helo_reply" | "mail" | "data" | "quit" | "rset" => def("reply"),
        "starttls" => reply_or(&["ok", "handshake-fail"]),
        "end_of_data" => reply_or(&["none", "lost"]),
        "rcpt" => any_of(vec![
            def("reply"),
            obj([
                ("type", s("object")),
                ("additionalProperties", def("reply")),
            ]),
        ]),
        "delays" => closed(
            DELAY_KEYS
                .iter()
                .map(|key| ((*key).to_owned(), def("duration")))
                .collect(),
        ),
        "drop_after" => words(DELAY_KEYS),
        "greylist" => {
            closed(vec![("delay".to_owned(), def("duration"))]).with("required", strs(&["delay"]))
        }
        "during" => {
            let window: Vec<&str> = SERVER_KEYS
                .iter()
                .copied()
                .filter(|k| *k != "during")
                .collect();
            array(server(&window, &["from", "until"]).with("required", strs(&["from"])))
        }
        _ => panic!("server key `{key}` has no schema"),
    }
}

fn expect_key(key: &str) -> Json {
    match key {
        "outcome" => described(
            any_of(vec![
                words(OUTCOME_WORDS),
                obj([
                    ("type", s("object")),
                    ("minProperties", Json::Int(1)),
                    ("additionalProperties", words(OUTCOME_WORDS)),
                ]),
            ]),
            "delivered | bounced | deferred, for every recipient or per recipient",
        ),
        "via" => described(
            array(def("hostOrAddress")).with("minItems", Json::Int(1)),
            "delivered through one of these hosts (names or addresses)",
        ),
        "never" => described(
            array(def("hostOrAddress")),
            "hosts or addresses never connected to",
        ),
        "connections" => described(count(), "exact number of connection attempts"),
        "within" => described(
            def("duration"),
            "final outcome reached by this virtual time",
        ),
        "after" => described(
            def("duration"),
            "final outcome reached no earlier than this",
        ),
        "duplicates" => described(count(), "extra accepted copies of a message"),
        _ => panic!("expect key `{key}` has no schema"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_key_is_documented_in_table_order() {
        let documented: Vec<&str> = SERVER_KEY_DOCS.iter().map(|(key, _, _)| *key).collect();
        assert_eq!(documented, SERVER_KEYS);
    }

    #[test]
    fn every_key_of_every_table_has_a_schema() {
        // Panics on a key without a type.
        let schema = scenario_schema(&["rfc5321"]);
        for key in TOP_KEYS
            .iter()
            .chain(SERVER_KEYS)
            .chain(NAME_KEYS)
            .chain(EXPECT_KEYS)
        {
            assert!(schema.contains(&format!("\"{key}\"")), "{key}");
        }
    }
}

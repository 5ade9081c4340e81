//! The JSON Schema of policy files (`docs/schemas/policy.schema.json`), generated from the
//! loader's key tables in `file.rs` (and the stages, failures and timeouts of `settings.rs`):
//! a key without a type here panics, so a new key cannot be left out (the tests generate it).
//! What a schema cannot see (contradictions, `extends` of an unknown policy, a missing
//! `summary` without `extends`) is left to the loader.

use mxsim_model::json::{
    Json, any_of, array, closed, def, described, document, obj, s, strs, words,
};
use mxsim_model::rules;

use crate::file::{
    ACTIONS, KEYWORD_ACTIONS, KEYWORD_RULE_KEYS, LIMIT_KEYS, MEMORY_KEYS, ORDER_KEYS,
    PARALLEL_KEYS, QUEUE_KEYS, RETRY_KEYS, TOP_KEYS, WANTED_KEYS,
};
use crate::settings::{Stage, Timeouts};

/// The schema of policy files.
pub fn policy_schema() -> String {
    let properties = TOP_KEYS
        .iter()
        .map(|key| ((*key).to_owned(), top_key(key)))
        .collect();
    let root = closed(properties).with("required", strs(&["name"]));
    let schedule = closed(
        RETRY_KEYS
            .iter()
            .map(|key| ((*key).to_owned(), schedule_key(key)))
            .collect(),
    )
    .with("minProperties", Json::Int(1));
    document(
        "https://mxsim.example/schemas/policy.schema.json",
        "mxsim policy file",
        root,
        vec![("schedule".to_owned(), schedule)],
    )
    .pretty()
}

fn schedule_key(key: &str) -> Json {
    match key {
        "every" => described(def("duration"), "a fixed delay"),
        "first" => described(def("duration"), "exponential: the first delay"),
        "max" => described(def("duration"), "exponential: the longest delay"),
        "factor" => described(
            any_of(vec![
                obj([("type", s("number")), ("exclusiveMinimum", Json::Int(0))]),
                obj([("type", s("string"))]),
            ]),
            "exponential: the growth factor",
        ),
        "delays" => described(
            array(def("duration")).with("minItems", Json::Int(1)),
            "a list of delays, the last repeated",
        ),
        "rules" => described(
            obj([("type", s("string"))]),
            "Exim retry rules: \"F,2h,15m; G,16h,1h,1.5\"",
        ),
        _ => panic!("schedule key `{key}` has no schema"),
    }
}

fn fields(table: &[&str], schema: fn(&str) -> Json) -> Json {
    closed(
        table
            .iter()
            .map(|key| ((*key).to_owned(), schema(key)))
            .collect(),
    )
}

fn top_key(key: &str) -> Json {
    let text = obj([("type", s("string"))]);
    match key {
        "name" => described(
            obj([("type", s("string")), ("pattern", s("^[a-z0-9.-]+$"))]),
            "the policy's name: lowercase letters, digits, `-`, `.`",
        ),
        "summary" => described(text, "one line for `mxsim policies`"),
        "source" => described(text, "where the settings come from"),
        "extends" => described(text, "start from another preset and override keys"),
        "order" => described(fields(ORDER_KEYS, order_key), "the order of candidates"),
        "limits" => described(
            fields(LIMIT_KEYS, |_| {
                any_of(vec![
                    obj([("type", s("integer")), ("minimum", Json::Int(1))]),
                    words(&["none"]),
                ])
            }),
            "per delivery attempt; `none` = no limit",
        ),
        "timeouts" => described(
            fields(&Timeouts::KEYS, |_| def("duration")),
            "the wait for each step",
        ),
        "on" => {
            let action_words: Vec<&str> = ACTIONS.iter().map(|(word, _)| *word).collect();
            let stages = Stage::ALL
                .iter()
                .map(|stage| {
                    let failures = stage
                        .failures()
                        .iter()
                        .map(|failure| (failure.key().to_owned(), words(&action_words)))
                        .collect();
                    (stage.key().to_owned(), closed(failures))
                })
                .collect();
            described(closed(stages), "the action map: stage → failure → action")
        }
        "helo_fallback" => described(
            array(any_of(vec![
                obj([
                    ("type", s("integer")),
                    ("minimum", Json::Int(400)),
                    ("maximum", Json::Int(599)),
                ]),
                words(&["4yz", "5yz"]),
            ])),
            "EHLO replies answered with HELO on the same connection",
        ),
        "tls" => words(&["never", "when-required", "opportunistic"]),
        "tls_fallback" => words(&["plaintext", "next-address", "next-host"]),
        "starttls_refused" => words(&["fallback", "continue", "on-starttls"]),
        "starttls_not_offered" => words(&["keyword-missing", "send"]),
        "required_keywords" => {
            let rule = fields(KEYWORD_RULE_KEYS, |key| match key {
                "action" => words(KEYWORD_ACTIONS),
                "final" => words(&["bounce", "defer", "requeue"]),
                _ => panic!("keyword rule key `{key}` has no schema"),
            })
            .with("required", strs(&["action"]));
            described(
                obj([
                    ("type", s("object")),
                    (
                        "propertyNames",
                        any_of(vec![def("keywordName"), obj([("const", s("*"))])]),
                    ),
                    ("additionalProperties", rule),
                ]),
                "keyword name (or `*`) → what to do when a required keyword is missing",
            )
        }
        "size_exceeded" => words(&["bounce", "ignore"]),
        "rcpt_none_accepted" => words(&["per-recipient", "transient"]),
        "wanted_keywords" => described(
            fields(WANTED_KEYS, |key| match key {
                "action" => words(&["ignore", "same-preference", "whole-list"]),
                "search_limit" | "send_without_after" => def("duration"),
                _ => panic!("wanted_keywords key `{key}` has no schema"),
            }),
            "what to do when a wanted keyword is missing",
        ),
        "after_ehlo" => words(&["any-preference", "same-or-better"]),
        "self_mx" => words(&["truncate", "truncate-or-defer", "skip-self", "ignore"]),
        "implicit_mx" => words(&["nodata", "nodata-or-nxdomain"]),
        "null_mx_alone" => words(&["bounce", "defer"]),
        "null_mx_beside_others" => words(&["ignore", "bounce"]),
        "no_address" => words(&["bounce-if-permanent", "defer", "bounce-if-implicit"]),
        "queue" => described(
            fields(QUEUE_KEYS, |key| match key {
                "retry" => def("schedule"),
                "scan" => any_of(vec![def("duration"), words(&["none"])]),
                "lifetime" => def("duration"),
                "warn_after" => any_of(vec![def("duration"), words(&["never"])]),
                _ => panic!("queue key `{key}` has no schema"),
            }),
            "the client's queue: retry schedule, scans, lifetime, delay warnings",
        ),
        "memory" => described(
            fields(MEMORY_KEYS, |_| {
                any_of(vec![def("schedule"), words(&["none"])])
            }),
            "records kept across attempts and messages",
        ),
        "parallel" => described(
            any_of(vec![
                words(&["none"]),
                fields(PARALLEL_KEYS, |key| match key {
                    "delay" => def("duration"),
                    "max" => obj([("type", s("integer")), ("minimum", Json::Int(1))]),
                    _ => panic!("parallel key `{key}` has no schema"),
                })
                .with("required", strs(PARALLEL_KEYS)),
            ]),
            "parallel connection attempts: the next candidate of the same preference starts `delay` after the last, while none is usable",
        ),
        "reuse" => described(
            any_of(vec![
                words(&["none"]),
                fields(&["by", "keep", "on_demand"], |key| match key {
                    "by" => words(&["address", "domain"]),
                    "on_demand" => described(
                        obj([("type", s("boolean"))]),
                        "cache only for back-to-back attempts to the domain (Postfix's smtp_connection_cache_on_demand); default false: always cache",
                    ),
                    _ => def("duration"),
                })
                .with("required", strs(&["by", "keep"])),
            ]),
            "the connection cache",
        ),
        "join" => described(
            words(&["none", "domain"]),
            "`domain`: an attempt for a recipient domain with another in flight waits for it, then takes the session it parked, else goes on with its own (OpenSMTPD's shared relay)",
        ),
        "claims" => {
            let ids: Vec<&str> = rules::RULES
                .iter()
                .filter(|rule| rule.judged())
                .flat_map(|rule| std::iter::once(rule.id).chain(rule.alias))
                .collect();
            described(array(words(&ids)), "rule ids the policy claims to keep")
        }
        "departures" => {
            let ids: Vec<&str> = rules::RULES.iter().map(|rule| rule.id).collect();
            described(
                obj([
                    ("type", s("object")),
                    ("propertyNames", words(&ids)),
                    (
                        "additionalProperties",
                        obj([("type", s("string")), ("pattern", s("\\S"))]),
                    ),
                ]),
                "rule id → why the policy departs from it, with the source",
            )
        }
        _ => panic!("policy key `{key}` has no schema"),
    }
}

fn order_key(key: &str) -> Json {
    match key {
        "equal_preference" => words(&["random", "dns", "stable-hash", "fewest-connections"]),
        "address_family" => words(&["ipv4-first", "ipv6-first"]),
        _ => panic!("order key `{key}` has no schema"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_key_has_a_schema() {
        let schema = super::policy_schema();
        for key in super::TOP_KEYS {
            assert!(schema.contains(&format!("\"{key}\"")), "{key}");
        }
    }
}

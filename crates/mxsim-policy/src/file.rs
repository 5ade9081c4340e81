//! Policy files (docs/policy-format.md): YAML to [`Settings`], with every problem located.
//!
//! A file is read into a [`Patch`] (every setting optional), then resolved over the preset it
//! `extends`, or over nothing, in which case every setting must be present. Contradictions are
//! checked on the resolved settings, so an inherited setting can contradict a new one.

use mxsim_model::diag::Diagnostics;
use mxsim_model::queue::{QueueSettings, Schedule};
use mxsim_model::rules;
use mxsim_model::schema::{Fields, Reader};
use mxsim_model::smtp::{ReplyClass, ReplyCode};
use mxsim_model::time::Duration;
use mxsim_model::yaml::{self, Node, Position, Value};

use crate::settings::{
    Action, ActionMap, AddressOrder, Claim, EqualOrder, Failure, Final, Join, KeywordAction,
    KeywordPattern, Limits, Memory, NoAddress, Parallel, ReplyMatch, Reuse, ReuseBy, SelfMx,
    Settings, Stage, StarttlsRefused, Timeouts, TlsFallback, TlsUse, WantedAction,
};

pub(crate) const TOP_KEYS: &[&str] = &[
    "name",
    "summary",
    "source",
    "extends",
    "order",
    "limits",
    "parallel",
    "timeouts",
    "on",
    "helo_fallback",
    "tls",
    "tls_fallback",
    "starttls_refused",
    "starttls_not_offered",
    "required_keywords",
    "size_exceeded",
    "rcpt_none_accepted",
    "wanted_keywords",
    "after_ehlo",
    "self_mx",
    "implicit_mx",
    "null_mx_alone",
    "null_mx_beside_others",
    "no_address",
    "queue",
    "memory",
    "reuse",
    "join",
    "claims",
    "departures",
];
pub(crate) const ORDER_KEYS: &[&str] = &["equal_preference", "address_family"];
pub(crate) const LIMIT_KEYS: &[&str] = &["addresses", "sessions", "hosts", "addresses_per_host"];
pub(crate) const PARALLEL_KEYS: &[&str] = &["delay", "max"];
pub(crate) const ACTIONS: &[(&str, Action)] = &[
    ("next-address", Action::NextAddress),
    ("next-host", Action::NextHost),
    ("next-or-bounce", Action::NextOrBounce),
    ("next-host-or-bounce", Action::NextHostOrBounce),
    ("defer", Action::Defer),
    ("bounce", Action::Bounce),
];
pub(crate) const KEYWORD_ACTIONS: &[&str] = &[
    "ignore",
    "downgrade",
    "bounce",
    "defer",
    "same-preference",
    "whole-list",
];
pub(crate) const KEYWORD_RULE_KEYS: &[&str] = &["action", "final"];
pub(crate) const WANTED_KEYS: &[&str] = &["action", "search_limit", "send_without_after"];
pub(crate) const QUEUE_KEYS: &[&str] = &["retry", "scan", "lifetime", "warn_after"];
pub(crate) const MEMORY_KEYS: &[&str] = &["hosts", "recipients", "destinations"];
pub(crate) const RETRY_KEYS: &[&str] = &["every", "first", "max", "factor", "delays", "rules"];

/// A policy file as written: every setting optional.
#[derive(Clone, Debug, Default)]
struct Patch {
    name: Option<(String, Position)>,
    summary: Option<String>,
    source: Option<String>,
    extends: Option<(String, Position)>,
    equal_order: Option<EqualOrder>,
    address_order: Option<AddressOrder>,
    limits: [Option<Option<u32>>; 4],
    /// `parallel:` as written: `Some(None)` is `none`.
    parallel: Option<Option<Parallel>>,
    timeouts: [Option<Duration>; 12],
    actions: Vec<(Stage, Failure, Action)>,
    helo_fallback: Option<Vec<ReplyMatch>>,
    tls: Option<TlsUse>,
    tls_fallback: Option<(TlsFallback, Position)>,
    starttls_refused: Option<(StarttlsRefused, Position)>,
    starttls_not_offered: Option<(bool, Position)>,
    required: Vec<(KeywordPattern, KeywordAction, Position)>,
    size_exceeded_bounces: Option<bool>,
    rcpt_none_accepted_transient: Option<bool>,
    wanted: Option<(WantedAction, Position)>,
    search_limit: Option<(Duration, Position)>,
    wanted_send_without_after: Option<(Duration, Position)>,
    queue: QueuePatch,
    /// `memory:` keys as written, in [`MEMORY_KEYS`] order: `Some(None)` is `none`.
    memory: [Option<Option<Schedule>>; 3],
    /// `reuse:` as written: `Some(None)` is `none`.
    reuse: Option<Option<Reuse>>,
    join: Option<Join>,
    same_or_better_after_ehlo: Option<bool>,
    self_mx: Option<SelfMx>,
    implicit_mx_on_nxdomain: Option<bool>,
    null_mx_alone_defers: Option<bool>,
    null_mx_beside_others_ignored: Option<bool>,
    no_address: Option<NoAddress>,
    claims: Option<(Vec<Claim>, Position)>,
    /// `departures:` as written; never inherited.
    departures: Vec<rules::Departure>,
    /// Where each top-level key of the file is, so a contradiction points at a key it names.
    keys: std::collections::BTreeMap<String, Position>,
}

/// The `queue:` section as written: every key optional, each inherited when left out.
#[derive(Clone, Debug, Default)]
struct QueuePatch {
    schedule: Option<Schedule>,
    scan: Option<Option<Duration>>,
    lifetime: Option<(Duration, Position)>,
    warn_after: Option<Option<Duration>>,
}

/// Loads a policy file. `preset` resolves the name given to `extends`, or says why it cannot
/// (an unknown name, or a policy with no settings to start from).
/// `reserved` says which names the file may not take (the presets, for a user's file).
pub fn load(
    source: &str,
    preset: &dyn Fn(&str) -> Result<Settings, Extends>,
    reserved: &dyn Fn(&str) -> bool,
) -> Result<Settings, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let root = match yaml::parse(source) {
        Ok(root) => root,
        Err(errors) => {
            diagnostics.syntax(errors);
            return Err(diagnostics);
        }
    };
    let mut reader = Reader {
        diagnostics: &mut diagnostics,
    };
    let settings = read(&mut reader, &root).and_then(|patch| {
        if let Some((name, position)) = &patch.name
            && reserved(name)
        {
            reader.error_with_help(
                *position,
                format!("the name `{name}` belongs to a registered policy"),
                "give your policy a name of its own; `extends` can still start from the preset",
            );
        }
        resolve(&mut reader, patch, root.at, preset)
    });
    diagnostics.finish();
    match settings {
        Some(settings) if diagnostics.is_empty() => Ok(settings),
        _ => {
            if diagnostics.is_empty() {
                diagnostics.error(root.at, "policy could not be read");
            }
            Err(diagnostics)
        }
    }
}

fn read(reader: &mut Reader<'_>, root: &Node) -> Option<Patch> {
    if matches!(root.value, Value::Null) {
        reader.error(
            root.at,
            "empty policy file: it needs at least `name`, `summary` and `source`",
        );
        return None;
    }
    let fields = reader.fields(root, "the policy", TOP_KEYS)?;
    let mut patch = Patch::default();
    for key in TOP_KEYS {
        if let Some((key_node, _)) = fields.entry(key) {
            patch.keys.insert((*key).to_owned(), key_node.at);
        }
    }
    // Free text reaches `mxsim policies` and report headers: no control characters (a line
    // break or an ESC could forge or hide output), as for a scenario's title.
    let text = |reader: &mut Reader<'_>, key: &str| {
        let node = fields.get(key)?;
        let text = reader.string(node, key)?.to_owned();
        match mxsim_model::schema::printable(&text, key) {
            Ok(()) => Some(text),
            Err(message) => {
                reader.error(node.at, message);
                None
            }
        }
    };
    patch.name = fields.get("name").and_then(|node| {
        reader
            .string(node, "name")
            .map(|name| (name.to_owned(), node.at))
    });
    if let Some((name, position)) = &patch.name
        && (!name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            || name.is_empty())
    {
        reader.error(
            *position,
            format!("policy name `{name}` must be lowercase letters, digits, `-` and `.`"),
        );
    }
    patch.summary = text(reader, "summary");
    patch.source = text(reader, "source");
    patch.extends = fields.get("extends").and_then(|node| {
        reader
            .string(node, "extends")
            .map(|name| (name.to_owned(), node.at))
    });
    if let Some(order) = fields
        .get("order")
        .and_then(|node| reader.fields(node, "order", ORDER_KEYS))
    {
        read_order(reader, &order, &mut patch);
    }
    if let Some(limits) = fields
        .get("limits")
        .and_then(|node| reader.fields(node, "limits", LIMIT_KEYS))
    {
        for (index, key) in LIMIT_KEYS.iter().enumerate() {
            patch.limits[index] = limits.get(key).and_then(|node| limit(reader, node, key));
        }
    }
    if let Some(timeouts) = fields
        .get("timeouts")
        .and_then(|node| reader.fields(node, "timeouts", &Timeouts::KEYS))
    {
        for (index, key) in Timeouts::KEYS.iter().enumerate() {
            patch.timeouts[index] = timeouts
                .get(key)
                .and_then(|node| reader.duration(node, &format!("timeouts.{key}")));
        }
    }
    if let Some(on) = fields.get("on") {
        read_actions(reader, on, &mut patch);
    }
    if let Some(node) = fields.get("helo_fallback") {
        patch.helo_fallback = helo_fallback(reader, node);
    }
    read_words(reader, &fields, &mut patch);
    if let Some(node) = fields.get("required_keywords") {
        read_required(reader, node, &mut patch);
    }
    if let Some(node) = fields.get("wanted_keywords") {
        read_wanted(reader, node, &mut patch);
    }
    if let Some(node) = fields.get("queue") {
        read_queue(reader, node, &mut patch);
    }
    if let Some(node) = fields.get("memory") {
        read_memory(reader, node, &mut patch);
    }
    if let Some(node) = fields.get("reuse") {
        patch.reuse = read_reuse(reader, node);
    }
    if let Some(node) = fields.get("parallel") {
        patch.parallel = read_parallel(reader, node);
    }
    if let Some(node) = fields.get("join") {
        let choices = [("none", Join::None), ("domain", Join::Domain)];
        patch.join = reader.choice_of(node, "join", &choices);
    }
    if let Some(node) = fields.get("claims") {
        // A claim is a rule id of the rules table, or a rule's alias.
        let choices: Vec<&'static str> = rules::RULES
            .iter()
            .filter(|rule| rule.judged())
            .flat_map(|rule| std::iter::once(rule.id).chain(rule.alias))
            .collect();
        let claims = reader.list(node, "claims").map(|items| {
            items
                .iter()
                .filter_map(|item| reader.choice(item, "claims", &choices))
                .filter_map(rules::find)
                .map(|rule| Claim(rule.id))
                .collect()
        });
        patch.claims = claims.map(|claims| (claims, node.at));
    }
    if let Some(node) = fields.get("departures") {
        patch.departures = read_departures(reader, node);
    }
    Some(patch)
}

/// `departures:` a mapping of rule id → why the policy departs from it, with the source.
fn read_departures(reader: &mut Reader<'_>, node: &Node) -> Vec<rules::Departure> {
    let Some(entries) = reader.mapping(node, "departures") else {
        return Vec::new();
    };
    let ids: Vec<&'static str> = rules::RULES.iter().map(|rule| rule.id).collect();
    let mut departures: Vec<rules::Departure> = Vec::new();
    for (key, value) in entries {
        let Some(rule) = rules::RULES.iter().find(|rule| rule.id == key.text) else {
            let message = format!(
                "departures: `{}` is not a rule id of the rules table (`mxsim rules`)",
                key.text
            );
            match ids
                .iter()
                .find(|id| id.eq_ignore_ascii_case(&key.text))
                .or_else(|| rules::find(&key.text).map(|rule| &rule.id))
            {
                Some(id) => {
                    reader.error_with_help(key.at, message, format!("did you mean `{id}`?"))
                }
                None => reader.error_with_help(
                    key.at,
                    message,
                    format!("known ids: {}", ids.join(", ")),
                ),
            }
            continue;
        };
        let what = format!("departures.{}", rule.id);
        let Some(reason) = reader.string(value, &what) else {
            continue;
        };
        if reason.trim().is_empty() {
            reader.error(value.at, format!("{what} needs a reason, with its source"));
            continue;
        }
        departures.push(rules::Departure {
            rule: rule.id,
            reason: reason.trim().to_owned(),
        });
    }
    departures
}

fn read_order(reader: &mut Reader<'_>, order: &Fields<'_>, patch: &mut Patch) {
    if let Some(node) = order.get("equal_preference") {
        patch.equal_order = reader.choice_of(
            node,
            "order.equal_preference",
            &[
                ("random", EqualOrder::Random),
                ("dns", EqualOrder::Dns),
                ("stable-hash", EqualOrder::StableHash),
                ("fewest-connections", EqualOrder::FewestConnections),
            ],
        );
    }
    if let Some(node) = order.get("address_family") {
        patch.address_order = reader.choice_of(
            node,
            "order.address_family",
            &[
                ("ipv4-first", AddressOrder::Ipv4First),
                ("ipv6-first", AddressOrder::Ipv6First),
            ],
        );
    }
}

fn read_words(reader: &mut Reader<'_>, fields: &Fields<'_>, patch: &mut Patch) {
    let mut word = |key: &str, choices: &[(&str, bool)]| {
        fields
            .get(key)
            .and_then(|node| reader.choice_of(node, key, choices))
    };
    patch.size_exceeded_bounces = word("size_exceeded", &[("bounce", true), ("ignore", false)]);
    patch.rcpt_none_accepted_transient = word(
        "rcpt_none_accepted",
        &[("per-recipient", false), ("transient", true)],
    );
    patch.same_or_better_after_ehlo = word(
        "after_ehlo",
        &[("any-preference", false), ("same-or-better", true)],
    );
    patch.implicit_mx_on_nxdomain = word(
        "implicit_mx",
        &[("nodata", false), ("nodata-or-nxdomain", true)],
    );
    patch.null_mx_alone_defers = word("null_mx_alone", &[("bounce", false), ("defer", true)]);
    patch.null_mx_beside_others_ignored = word(
        "null_mx_beside_others",
        &[("ignore", true), ("bounce", false)],
    );
    if let Some(node) = fields.get("no_address") {
        let choices = [
            ("bounce-if-permanent", NoAddress::BounceIfPermanent),
            ("defer", NoAddress::Defer),
            ("bounce-if-implicit", NoAddress::BounceIfImplicit),
        ];
        patch.no_address = reader.choice_of(node, "no_address", &choices);
    }
    if let Some(node) = fields.get("self_mx") {
        let choices = [
            ("truncate", SelfMx::Truncate),
            ("truncate-or-defer", SelfMx::TruncateOrDefer),
            ("skip-self", SelfMx::SkipSelf),
            ("ignore", SelfMx::Ignore),
        ];
        patch.self_mx = reader.choice_of(node, "self_mx", &choices);
    }
    if let Some(node) = fields.get("tls") {
        patch.tls = reader.choice_of(
            node,
            "tls",
            &[
                ("never", TlsUse::Never),
                ("when-required", TlsUse::WhenRequired),
                ("opportunistic", TlsUse::Opportunistic),
            ],
        );
    }
    if let Some(node) = fields.get("starttls_refused") {
        let choices = [
            ("fallback", StarttlsRefused::Fallback),
            ("continue", StarttlsRefused::Continue),
            ("on-starttls", StarttlsRefused::OnStarttls),
        ];
        patch.starttls_refused = reader
            .choice_of(node, "starttls_refused", &choices)
            .map(|refused| (refused, node.at));
    }
    if let Some(node) = fields.get("starttls_not_offered") {
        let choices = [("keyword-missing", false), ("send", true)];
        patch.starttls_not_offered = reader
            .choice_of(node, "starttls_not_offered", &choices)
            .map(|send| (send, node.at));
    }
    if let Some(node) = fields.get("tls_fallback") {
        let choices = [
            ("plaintext", TlsFallback::Plaintext),
            ("next-address", TlsFallback::NextAddress),
            ("next-host", TlsFallback::NextHost),
        ];
        patch.tls_fallback = reader
            .choice_of(node, "tls_fallback", &choices)
            .map(|fallback| (fallback, node.at));
    }
}

fn limit(reader: &mut Reader<'_>, node: &Node, key: &str) -> Option<Option<u32>> {
    if matches!(&node.value, Value::String(word) if word == "none") {
        return Some(None);
    }
    let value = reader.unsigned(node, &format!("limits.{key}"))?;
    if value == 0 || value > u64::from(u32::MAX) {
        reader.error_with_help(
            node.at,
            format!("limits.{key} must be a whole number from 1 to {}", u32::MAX),
            "write `none` for no limit",
        );
        return None;
    }
    Some(Some(value as u32))
}

fn read_actions(reader: &mut Reader<'_>, node: &Node, patch: &mut Patch) {
    let stage_keys: Vec<&str> = Stage::ALL.iter().map(|stage| stage.key()).collect();
    let Some(stages) = reader.fields(node, "on", &stage_keys) else {
        return;
    };
    for stage in Stage::ALL {
        let Some(stage_node) = stages.get(stage.key()) else {
            continue;
        };
        let keys: Vec<&str> = stage
            .failures()
            .iter()
            .map(|failure| failure.key())
            .collect();
        let what = format!("on.{}", stage.key());
        let Some(failures) = reader.fields(stage_node, &what, &keys) else {
            continue;
        };
        for failure in stage.failures() {
            let Some(value) = failures.get(failure.key()) else {
                continue;
            };
            if let Some(action) =
                reader.choice_of(value, &format!("{what}.{}", failure.key()), ACTIONS)
            {
                patch.actions.push((stage, *failure, action));
            }
        }
    }
}

fn helo_fallback(reader: &mut Reader<'_>, node: &Node) -> Option<Vec<ReplyMatch>> {
    let items = reader.list(node, "helo_fallback")?;
    let mut matches = Vec::with_capacity(items.len());
    for item in items {
        let text = reader.scalar_text(item, "helo_fallback")?;
        let found = match text.as_str() {
            "4yz" => Some(ReplyMatch::Class(ReplyClass::Transient)),
            "5yz" => Some(ReplyMatch::Class(ReplyClass::Permanent)),
            _ => text
                .parse::<u16>()
                .ok()
                .and_then(ReplyCode::new)
                .filter(|code| code.get() >= 400)
                .map(ReplyMatch::Code),
        };
        match found {
            Some(found) => matches.push(found),
            None => reader.error_with_help(
                item.at,
                format!("helo_fallback: `{text}` is not a 4yz/5yz reply"),
                "write a code such as 502, or `4yz`, `5yz`",
            ),
        }
    }
    Some(matches)
}

fn read_required(reader: &mut Reader<'_>, node: &Node, patch: &mut Patch) {
    let Some(entries) = reader.mapping(node, "required_keywords") else {
        return;
    };
    for (key, value) in entries {
        let pattern = if key.text == "*" {
            KeywordPattern::Any
        } else {
            match mxsim_model::smtp::Keyword::parse(&key.text) {
                Ok(keyword) if keyword.parameter.is_none() => KeywordPattern::Named(keyword.name),
                _ => {
                    reader.error(
                        key.at,
                        format!(
                            "required_keywords: `{}` is not a keyword name (or `*`)",
                            key.text
                        ),
                    );
                    continue;
                }
            }
        };
        let what = format!("required_keywords.{}", key.text);
        let Some(rule) = reader.fields(value, &what, KEYWORD_RULE_KEYS) else {
            continue;
        };
        let Some(action_node) = rule.get("action") else {
            reader.error(value.at, format!("{what} needs `action`"));
            continue;
        };
        let Some(word) = reader.choice(action_node, &format!("{what}.action"), KEYWORD_ACTIONS)
        else {
            continue;
        };
        let finals = [
            ("bounce", Final::Bounce),
            ("defer", Final::Defer),
            ("requeue", Final::Requeue),
        ];
        let final_ = rule
            .get("final")
            .and_then(|node| reader.choice_of(node, &format!("{what}.final"), &finals));
        let searches = matches!(word, "same-preference" | "whole-list");
        let action = match (word, final_) {
            ("same-preference", Some(final_)) => KeywordAction::SamePreference(final_),
            ("whole-list", Some(final_)) => KeywordAction::WholeList(final_),
            (_, None) if searches => {
                reader.error_with_help(
                    action_node.at,
                    format!("{what}: `{word}` needs `final`"),
                    "add `final: bounce` or `final: defer`: what happens when no host has it",
                );
                continue;
            }
            (_, Some(_)) => {
                reader.error(
                    rule.get("final").map_or(value.at, |node| node.at),
                    format!("{what}: `final` goes only with same-preference or whole-list"),
                );
                continue;
            }
            ("ignore", None) => KeywordAction::Ignore,
            ("downgrade", None) => KeywordAction::Downgrade,
            ("bounce", None) => KeywordAction::Bounce,
            _ => KeywordAction::Defer,
        };
        patch.required.push((pattern, action, key.at));
    }
}

fn read_wanted(reader: &mut Reader<'_>, node: &Node, patch: &mut Patch) {
    let Some(fields) = reader.fields(node, "wanted_keywords", WANTED_KEYS) else {
        return;
    };
    if let Some(action) = fields.get("action") {
        let choices = [
            ("ignore", WantedAction::Ignore),
            ("same-preference", WantedAction::SamePreference),
            ("whole-list", WantedAction::WholeList),
        ];
        patch.wanted = reader
            .choice_of(action, "wanted_keywords.action", &choices)
            .map(|action| (action, fields.at));
    }
    if let Some(limit) = fields.get("search_limit") {
        patch.search_limit = reader
            .duration(limit, "wanted_keywords.search_limit")
            .map(|duration| (duration, limit.at));
    }
    if let Some(after) = fields.get("send_without_after") {
        patch.wanted_send_without_after = reader
            .duration(after, "wanted_keywords.send_without_after")
            .map(|duration| (duration, after.at));
    }
}

/// `queue:`: see docs/policy-format.md.
fn read_queue(reader: &mut Reader<'_>, node: &Node, patch: &mut Patch) {
    let Some(fields) = reader.fields(node, "queue", QUEUE_KEYS) else {
        return;
    };
    if let Some(retry) = fields.get("retry") {
        patch.queue.schedule = read_schedule(reader, retry, "queue.retry");
    }
    let optional = |reader: &mut Reader<'_>, key: &str, none: &str| -> Option<Option<Duration>> {
        let node = fields.get(key)?;
        if matches!(&node.value, Value::String(text) if text == none) {
            return Some(None);
        }
        reader.duration(node, &format!("queue.{key}")).map(Some)
    };
    patch.queue.scan = optional(reader, "scan", "none");
    patch.queue.warn_after = optional(reader, "warn_after", "never");
    if let Some(lifetime) = fields.get("lifetime") {
        patch.queue.lifetime = reader
            .duration(lifetime, "queue.lifetime")
            .map(|duration| (duration, lifetime.at));
    }
}

/// `reuse:`: `{by: address|domain, keep: DURATION, on_demand: BOOL}`, or `none`.
fn read_reuse(reader: &mut Reader<'_>, node: &Node) -> Option<Option<Reuse>> {
    if matches!(&node.value, Value::String(text) if text == "none") {
        return Some(None);
    }
    let fields = reader.fields(node, "reuse", &["by", "keep", "on_demand"])?;
    let (Some(by), Some(keep)) = (fields.get("by"), fields.get("keep")) else {
        reader.error_with_help(
            node.at,
            "reuse needs `by` and `keep`",
            "write `reuse: {by: address, keep: 300s}`, or `reuse: none`",
        );
        return None;
    };
    let by = reader.choice_of(
        by,
        "reuse.by",
        &[("address", ReuseBy::Address), ("domain", ReuseBy::Domain)],
    );
    let keep = reader.duration(keep, "reuse.keep");
    let on_demand = match fields.get("on_demand") {
        Some(node) => reader.boolean(node, "reuse.on_demand"),
        None => Some(false),
    };
    Some(Some(Reuse {
        by: by?,
        keep: keep?,
        on_demand: on_demand?,
    }))
}

/// `parallel:`: `{delay: DURATION, max: N}`, or `none`.
fn read_parallel(reader: &mut Reader<'_>, node: &Node) -> Option<Option<Parallel>> {
    if matches!(&node.value, Value::String(text) if text == "none") {
        return Some(None);
    }
    let fields = reader.fields(node, "parallel", PARALLEL_KEYS)?;
    let (Some(delay), Some(max)) = (fields.get("delay"), fields.get("max")) else {
        reader.error_with_help(
            node.at,
            "parallel needs `delay` and `max`",
            "write `parallel: {delay: 2s, max: 3}`, or `parallel: none`",
        );
        return None;
    };
    let delay = reader.duration(delay, "parallel.delay");
    let max = match reader.unsigned(max, "parallel.max") {
        Some(value) if (1..=u64::from(u32::MAX)).contains(&value) => Some(value as u32),
        Some(_) => {
            reader.error_with_help(
                max.at,
                format!("parallel.max must be a whole number from 1 to {}", u32::MAX),
                "write `parallel: none` for one connection at a time",
            );
            None
        }
        None => None,
    };
    Some(Some(Parallel {
        delay: delay?,
        max: max?,
    }))
}

/// `memory:`: each record kind is a schedule, or `none`.
fn read_memory(reader: &mut Reader<'_>, node: &Node, patch: &mut Patch) {
    let Some(memory) = reader.fields(node, "memory", MEMORY_KEYS) else {
        return;
    };
    for (index, key) in MEMORY_KEYS.iter().enumerate() {
        let Some(value) = memory.get(key) else {
            continue;
        };
        patch.memory[index] = if matches!(&value.value, Value::String(text) if text == "none") {
            Some(None)
        } else {
            read_schedule(reader, value, &format!("memory.{key}")).map(Some)
        };
    }
}

/// A schedule (`queue.retry`, `memory.*`): one of `{every}`, `{first, max, factor}`,
/// `{delays}` or `{rules}`.
fn read_schedule(reader: &mut Reader<'_>, node: &Node, what: &str) -> Option<Schedule> {
    let fields = reader.fields(node, what, RETRY_KEYS)?;
    let shapes = [
        fields.has("every"),
        fields.has("first") || fields.has("max") || fields.has("factor"),
        fields.has("delays"),
        fields.has("rules"),
    ];
    if shapes.iter().filter(|shape| **shape).count() != 1 {
        reader.error_with_help(
            node.at,
            format!("{what} needs exactly one schedule"),
            "write `{every: 30m}`, `{first: 5m, max: 4000s, factor: 2}`, `{delays: [5m, 30m, 1h]}` or `{rules: \"F,2h,15m; G,16h,1h,1.5; F,4d,6h\"}`",
        );
        return None;
    }
    let positive = |reader: &mut Reader<'_>, node: &Node, what: &str| {
        let duration = reader.duration(node, what)?;
        if duration == Duration::ZERO {
            reader.error(node.at, format!("{what} must be more than 0s"));
            return None;
        }
        Some(duration)
    };
    if let Some(every) = fields.get("every") {
        return positive(reader, every, &format!("{what}.every")).map(Schedule::Fixed);
    }
    if let Some(delays) = fields.get("delays") {
        let items = reader.list(delays, &format!("{what}.delays"))?;
        if items.is_empty() {
            reader.error(
                delays.at,
                format!("{what}.delays must list at least one delay"),
            );
            return None;
        }
        let read: Vec<Option<Duration>> = items
            .iter()
            .map(|item| positive(reader, item, &format!("{what}.delays[]")))
            .collect();
        return read
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(Schedule::Delays);
    }
    if let Some(rules) = fields.get("rules") {
        let text = reader.string(rules, &format!("{what}.rules"))?.to_owned();
        return reader
            .convert(
                rules.at,
                &format!("{what}.rules"),
                mxsim_model::queue::parse_rules(&text),
            )
            .map(Schedule::Rules);
    }
    let (Some(first), Some(max), Some(factor)) =
        (fields.get("first"), fields.get("max"), fields.get("factor"))
    else {
        reader.error(
            node.at,
            format!("an exponential {what} needs `first`, `max` and `factor`"),
        );
        return None;
    };
    let first = positive(reader, first, &format!("{what}.first"));
    let max_duration = positive(reader, max, &format!("{what}.max"));
    // `factor: 1.5` is a YAML float, `factor: 2` an integer: read either as written.
    let factor_text = match &factor.value {
        Value::Float(value) => value.to_string(),
        _ => reader.scalar_text(factor, &format!("{what}.factor"))?,
    };
    let factor = reader.convert(
        factor.at,
        &format!("{what}.factor"),
        mxsim_model::queue::parse_factor(&factor_text),
    );
    if let (Some(first), Some(max_duration)) = (first, max_duration)
        && max_duration < first
    {
        reader.error(max.at, format!("{what}.max must be at least `first`"));
        return None;
    }
    let (first, max_duration, factor_permille) = (first?, max_duration?, factor?);
    Some(Schedule::Exponential {
        first,
        max: max_duration,
        factor_permille,
    })
}

/// Why `extends` cannot start from a name: the message and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extends {
    /// What is wrong, lowercase.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

/// Combines a patch with the preset it extends, or requires it to be complete.
fn resolve(
    reader: &mut Reader<'_>,
    patch: Patch,
    at: Position,
    preset: &dyn Fn(&str) -> Result<Settings, Extends>,
) -> Option<Settings> {
    let base = match &patch.extends {
        Some((name, position)) => match preset(name) {
            Ok(base) => Some(base),
            Err(Extends { message, help }) => {
                reader.error_with_help(*position, message, help);
                return None;
            }
        },
        None => None,
    };
    let mut missing: Vec<String> = Vec::new();
    macro_rules! take {
        ($value:expr, $field:ident, $key:expr) => {
            match ($value, &base) {
                (Some(value), _) => Some(value),
                (None, Some(base)) => Some(base.$field.clone()),
                (None, None) => {
                    missing.push($key.to_owned());
                    None
                }
            }
        };
    }
    // The name is never inherited: a file that ran under its preset's name would be judged
    // against that preset's expectations.
    let name = patch.name.as_ref().map(|(name, _)| name.clone());
    if name.is_none() {
        missing.push("name".to_owned());
    }
    let summary = take!(patch.summary.clone(), summary, "summary");
    let source = take!(patch.source.clone(), source, "source");
    let equal_order = take!(patch.equal_order, equal_order, "order.equal_preference");
    let address_order = take!(patch.address_order, address_order, "order.address_family");
    let helo_fallback = take!(patch.helo_fallback.clone(), helo_fallback, "helo_fallback");
    let tls = take!(patch.tls, tls, "tls");
    let size_exceeded_bounces = take!(
        patch.size_exceeded_bounces,
        size_exceeded_bounces,
        "size_exceeded"
    );
    let wanted = take!(
        patch.wanted.map(|(action, _)| action),
        wanted,
        "wanted_keywords.action"
    );
    let same_or_better_after_ehlo = take!(
        patch.same_or_better_after_ehlo,
        same_or_better_after_ehlo,
        "after_ehlo"
    );
    let self_mx = take!(patch.self_mx, self_mx, "self_mx");
    let implicit_mx_on_nxdomain = take!(
        patch.implicit_mx_on_nxdomain,
        implicit_mx_on_nxdomain,
        "implicit_mx"
    );
    let null_mx_beside_others_ignored = take!(
        patch.null_mx_beside_others_ignored,
        null_mx_beside_others_ignored,
        "null_mx_beside_others"
    );
    let no_address = take!(patch.no_address, no_address, "no_address");
    let timeouts = timeouts(&patch, base.as_ref(), &mut missing);
    let actions = actions(&patch, base.as_ref(), &mut missing);
    let required = required(&patch, base.as_ref(), &mut missing);
    if !missing.is_empty() {
        reader.error_with_help(
            at,
            format!(
                "missing {}",
                missing
                    .iter()
                    .map(|key| format!("`{key}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "give every setting, or `extends: rfc5321` to start from the baseline",
        );
        return None;
    }
    let limits = limits(&patch, base.as_ref());
    let settings = Settings {
        name: name?,
        summary: summary?,
        source: source?,
        equal_order: equal_order?,
        cname_chain_max: base.as_ref().map_or(8, |base| base.cname_chain_max),
        address_order: address_order?,
        limits,
        timeouts: timeouts?,
        actions: actions?,
        helo_fallback: helo_fallback?,
        tls: tls?,
        tls_fallback: patch
            .tls_fallback
            .map(|(fallback, _)| fallback)
            .or(base.as_ref().and_then(|base| base.tls_fallback)),
        // Optional: `fallback` unless the file or its base says otherwise.
        starttls_refused: patch
            .starttls_refused
            .map(|(refused, _)| refused)
            .or(base.as_ref().map(|base| base.starttls_refused))
            .unwrap_or(StarttlsRefused::Fallback),
        // Optional: `keyword-missing` unless the file or its base says otherwise.
        starttls_unadvertised_sent: patch
            .starttls_not_offered
            .map(|(send, _)| send)
            .or(base.as_ref().map(|base| base.starttls_unadvertised_sent))
            .unwrap_or(false),
        // Optional: `per-recipient` unless the file or its base says otherwise.
        rcpt_none_accepted_transient: patch
            .rcpt_none_accepted_transient
            .or(base.as_ref().map(|base| base.rcpt_none_accepted_transient))
            .unwrap_or(false),
        required: required?,
        size_exceeded_bounces: size_exceeded_bounces?,
        wanted: wanted?,
        search_limit: patch
            .search_limit
            .map(|(limit, _)| limit)
            .or(base.as_ref().and_then(|base| base.search_limit)),
        wanted_send_without_after: patch
            .wanted_send_without_after
            .map(|(after, _)| after)
            .or(base
                .as_ref()
                .and_then(|base| base.wanted_send_without_after)),
        queue: queue(&patch.queue, base.as_ref()),
        memory: memory(&patch.memory, base.as_ref()),
        reuse: patch
            .reuse
            .unwrap_or_else(|| base.as_ref().and_then(|base| base.reuse)),
        parallel: patch
            .parallel
            .unwrap_or_else(|| base.as_ref().and_then(|base| base.parallel)),
        // Optional: `none` unless the file or its base says otherwise.
        join: patch
            .join
            .or(base.as_ref().map(|base| base.join))
            .unwrap_or_default(),
        same_or_better_after_ehlo: same_or_better_after_ehlo?,
        self_mx: self_mx?,
        implicit_mx_on_nxdomain: implicit_mx_on_nxdomain?,
        // Optional: RFC 7505's bounce unless the file or its base says otherwise.
        null_mx_alone_defers: patch
            .null_mx_alone_defers
            .or(base.as_ref().map(|base| base.null_mx_alone_defers))
            .unwrap_or(false),
        null_mx_beside_others_ignored: null_mx_beside_others_ignored?,
        no_address: no_address?,
        claims: patch
            .claims
            .as_ref()
            .map(|(claims, _)| claims.clone())
            .or(base.as_ref().map(|base| base.claims.clone()))
            .unwrap_or_default(),
        // Never inherited: a file documents its own departures.
        departures: patch.departures.clone(),
    };
    contradictions(reader, &patch, &settings, at);
    Some(settings)
}

fn timeouts(patch: &Patch, base: Option<&Settings>, missing: &mut Vec<String>) -> Option<Timeouts> {
    let inherited = base.map(|base| base.timeouts.to_array());
    let mut values = [Duration::ZERO; 12];
    for (index, key) in Timeouts::KEYS.iter().enumerate() {
        match patch.timeouts[index].or(inherited.map(|array| array[index])) {
            Some(value) => values[index] = value,
            None => missing.push(format!("timeouts.{key}")),
        }
    }
    Some(Timeouts::from_array(values))
}

/// The memory settings: each record kind from the file, else from the base, else none.
fn memory(patch: &[Option<Option<Schedule>>; 3], base: Option<&Settings>) -> Memory {
    let inherited = base.map(|base| base.memory.clone()).unwrap_or_default();
    let pick =
        |index: usize, inherited: Option<Schedule>| patch[index].clone().unwrap_or(inherited);
    Memory {
        hosts: pick(0, inherited.hosts),
        recipients: pick(1, inherited.recipients),
        destinations: pick(2, inherited.destinations),
    }
}

/// The queue settings: each key from the file, else from the base, else the RFC 5321
/// baseline's (a new policy axis does not mean editing every preset).
fn queue(patch: &QueuePatch, base: Option<&Settings>) -> QueueSettings {
    let inherited = base.map_or_else(QueueSettings::rfc5321, |base| base.queue.clone());
    QueueSettings {
        schedule: patch.schedule.clone().unwrap_or(inherited.schedule),
        scan: patch.scan.unwrap_or(inherited.scan),
        lifetime: patch
            .lifetime
            .map_or(inherited.lifetime, |(lifetime, _)| lifetime),
        warn_after: patch.warn_after.unwrap_or(inherited.warn_after),
    }
}

fn limits(patch: &Patch, base: Option<&Settings>) -> Limits {
    let inherited = base.map(|base| base.limits).unwrap_or_default();
    let pick = |index: usize, inherited: Option<u32>| patch.limits[index].unwrap_or(inherited);
    Limits {
        addresses: pick(0, inherited.addresses),
        sessions: pick(1, inherited.sessions),
        hosts: pick(2, inherited.hosts),
        addresses_per_host: pick(3, inherited.addresses_per_host),
    }
}

fn actions(patch: &Patch, base: Option<&Settings>, missing: &mut Vec<String>) -> Option<ActionMap> {
    let mut entries = Vec::new();
    let mut complete = true;
    for stage in Stage::ALL {
        for failure in stage.failures() {
            let own = patch
                .actions
                .iter()
                .find(|(s, f, _)| *s == stage && f == failure)
                .map(|(_, _, action)| *action);
            // `closed` is optional: only an entry given here or in the base is kept, so that
            // without one it follows this policy's own `dropped`.
            let inherited = base.and_then(|base| {
                base.actions
                    .entries
                    .iter()
                    .find(|(s, f, _)| *s == stage && f == failure)
                    .map(|(_, _, action)| *action)
            });
            match own.or(inherited) {
                Some(action) => entries.push((stage, *failure, action)),
                None if *failure == Failure::Closed => {}
                None => complete = false,
            }
        }
    }
    if !complete {
        missing.push("on (every stage with every failure)".to_owned());
        return None;
    }
    Some(ActionMap { entries })
}

fn required(
    patch: &Patch,
    base: Option<&Settings>,
    missing: &mut Vec<String>,
) -> Option<Vec<(KeywordPattern, KeywordAction)>> {
    let mut rules: Vec<(KeywordPattern, KeywordAction)> =
        base.map(|base| base.required.clone()).unwrap_or_default();
    for (pattern, action, _) in &patch.required {
        match rules.iter_mut().find(|(existing, _)| existing == pattern) {
            Some(rule) => rule.1 = *action,
            None => rules.push((pattern.clone(), *action)),
        }
    }
    if !rules
        .iter()
        .any(|(pattern, _)| *pattern == KeywordPattern::Any)
    {
        missing.push("required_keywords.\"*\"".to_owned());
        return None;
    }
    Some(rules)
}

fn contradictions(reader: &mut Reader<'_>, patch: &Patch, settings: &Settings, root: Position) {
    // A contradiction points at the first of the keys it names that the file writes (an
    // inherited setting has no line of its own), else at `extends`, else at the top.
    let key_at = |keys: &[&str]| {
        keys.iter()
            .chain(["extends"].iter())
            .find_map(|key| patch.keys.get(*key).copied())
            .unwrap_or(root)
    };
    // RFC 5321 §2.2.3 (rule Q7): the time before sending without a wanted extension must be
    // shorter than the time before the message bounces.
    if let Some(after) = settings.wanted_send_without_after
        && after >= settings.queue.lifetime
    {
        let at = patch.wanted_send_without_after.map_or_else(
            || key_at(&["wanted_keywords", "queue"]),
            |(_, position)| position,
        );
        reader.error(
            at,
            format!(
                "wanted_keywords.send_without_after ({after}) must be shorter than queue.lifetime ({}): RFC 5321 §2.2.3 sends without the extension before the message would bounce",
                settings.queue.lifetime
            ),
        );
    }
    if let Some(warn) = settings.queue.warn_after
        && (warn == Duration::ZERO || warn >= settings.queue.lifetime)
    {
        reader.error(
            key_at(&["queue"]),
            format!(
                "queue.warn_after ({warn}) must be more than 0s and shorter than queue.lifetime ({}): a delay warning at or after the expiry says nothing the failure notice does not",
                settings.queue.lifetime
            ),
        );
    }
    if settings.same_or_better_after_ehlo
        && settings
            .reuse
            .is_some_and(|reuse| reuse.by == ReuseBy::Domain)
    {
        reader.error(
            key_at(&["reuse", "after_ehlo"]),
            "`reuse: {by: domain}` takes a cached session before any MX lookup, so its preference is unknown, and `after_ehlo: same-or-better` cannot hold it to one: key the cache by address",
        );
    }
    if settings.queue.lifetime == Duration::ZERO {
        let at = patch
            .queue
            .lifetime
            .map_or_else(|| key_at(&["queue"]), |(_, position)| position);
        reader.error(at, "queue.lifetime must be more than 0s");
    }
    if settings.same_or_better_after_ehlo {
        for (pattern, action) in &settings.required {
            if matches!(action, KeywordAction::WholeList(_)) {
                match patch.required.iter().find(|(p, _, _)| p == pattern) {
                    Some((_, _, at)) => reader.error(*at, "a `whole-list` keyword action walks to worse preferences after a good EHLO, which `after_ehlo: same-or-better` forbids"),
                    // Inherited: say which rule, and how to override it.
                    None => {
                        let pattern = match pattern {
                            KeywordPattern::Named(name) => name.to_string(),
                            KeywordPattern::Any => "\"*\"".to_owned(),
                        };
                        reader.error(key_at(&["after_ehlo"]), format!("the `{pattern}` keyword rule inherited from `extends` is `whole-list`, which walks to worse preferences after a good EHLO and `after_ehlo: same-or-better` forbids: override it, e.g. `required_keywords: {{{pattern}: {{action: bounce}}}}`"));
                    }
                }
            }
        }
        if settings.wanted == WantedAction::WholeList {
            reader.error(
                patch
                    .wanted
                    .map_or_else(|| key_at(&["after_ehlo"]), |(_, at)| at),
                "`wanted_keywords: whole-list` contradicts `after_ehlo: same-or-better`",
            );
        }
    }
    if settings.tls == TlsUse::Never
        && let Some((_, position)) = patch.tls_fallback
    {
        reader.error(position, "`tls_fallback` has no effect with `tls: never`");
    }
    // Only opportunistic TLS has a refusal to go on from: when TLS is required, a refused
    // STARTTLS is a failure of the `starttls` stage.
    if settings.tls != TlsUse::Opportunistic
        && let Some((_, position)) = patch.starttls_refused
    {
        reader.error(
            position,
            "`starttls_refused` has no effect without `tls: opportunistic`",
        );
    }
    if settings.tls == TlsUse::Never
        && let Some((_, position)) = patch.starttls_not_offered
    {
        reader.error(
            position,
            "`starttls_not_offered` has no effect with `tls: never`",
        );
    }
    if settings.tls == TlsUse::Opportunistic && settings.tls_fallback.is_none() {
        reader.error(
            key_at(&["tls"]),
            "`tls: opportunistic` needs `tls_fallback`: what happens when STARTTLS fails",
        );
    }
    match (settings.wanted, settings.search_limit) {
        (WantedAction::Ignore, Some(_)) => {
            if let Some((_, position)) = patch.search_limit {
                reader.error(
                    position,
                    "`search_limit` has no effect with `wanted_keywords.action: ignore`",
                );
            }
        }
        (WantedAction::SamePreference | WantedAction::WholeList, None) => {
            reader.error(
                patch
                    .wanted
                    .map_or_else(|| key_at(&["wanted_keywords"]), |(_, at)| at),
                "a wanted-keyword search needs `search_limit`",
            );
        }
        _ => {}
    }
    // Checked on the resolved settings: a claim inherited from `extends` counts too.
    if settings
        .claims
        .contains(&Claim::NEVER_WORSE_PREFERENCE_AFTER_EHLO)
        && !settings.same_or_better_after_ehlo
    {
        let position = patch
            .claims
            .as_ref()
            .map_or_else(|| key_at(&["after_ehlo"]), |(_, position)| *position);
        reader.error(
            position,
            "the claim never-worse-preference-after-ehlo needs `after_ehlo: same-or-better`",
        );
    }
}

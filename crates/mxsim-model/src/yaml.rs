//! The one facade over the YAML library.
//!
//! serde_yaml is archived, so mxsim parses YAML with serde-saphyr (docs/architecture.md,
//! "Dependencies"). Nothing else in the workspace names serde-saphyr: switching libraries is a
//! change to this file only.
//!
//! The facade parses a document into a [`Node`] tree in which every key and value carries its
//! line and column. Schema readers (`schema.rs`) then walk that tree and report *every* problem
//! in a file, which serde's first-error-wins deserialization cannot do.
//!
//! Every parse runs under a tight budget, so a hostile file (alias bomb, 20,000-deep nesting,
//! megabytes of garbage) is rejected in milliseconds instead of exhausting memory.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A position in a source file: 1-based line and column, counted in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// 1-based line; 0 when unknown.
    pub line: u32,
    /// 1-based column in characters; 0 when unknown.
    pub column: u32,
}

/// A YAML value with the position of its first character.
#[derive(Clone, Debug)]
pub struct Node {
    /// Where the value starts.
    pub at: Position,
    /// The value itself.
    pub value: Value,
}

/// A map key with its position.
#[derive(Clone, Debug)]
pub struct Key {
    /// Where the key starts.
    pub at: Position,
    /// The key text.
    pub text: String,
}

/// The shapes a YAML value can take once scalars are resolved. serde-saphyr resolves like
/// YAML 1.2's core schema, and also reads `yes`/`no`/`on`/`off`/`y`/`n` as booleans.
#[derive(Clone, Debug)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Integer(i64),
    /// A floating point number.
    Float(f64),
    /// Any other scalar.
    String(String),
    /// A sequence.
    Sequence(Vec<Node>),
    /// A mapping, in file order.
    Mapping(Vec<(Key, Node)>),
}

impl Value {
    /// A short noun for error messages: "a mapping", "a string", ...
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }
}

/// A document the YAML layer itself rejected: bad syntax, a duplicate key, a budget breach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub at: Position,
    /// What went wrong, in mxsim's words where the library's would confuse.
    pub message: String,
}

/// Limits on a single document. A scenario or policy file is a few kilobytes; these bounds are
/// two orders of magnitude above any honest file and far below anything that costs real time.
const NODES_MAX: usize = 50_000;
const DEPTH_MAX: usize = 48;
const ALIASES_MAX: usize = 200;
const REPLAYED_EVENTS_MAX: usize = 20_000;
/// Files above this size are rejected before parsing.
pub const BYTES_MAX: usize = 1 << 20;

/// Parses one YAML document into a located [`Node`] tree.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    if source.len() > BYTES_MAX {
        return Err(SyntaxError {
            at: Position { line: 1, column: 1 },
            message: format!(
                "file is {} bytes; scenario and policy files are limited to {BYTES_MAX} bytes",
                source.len()
            ),
        });
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: NODES_MAX,
            max_depth: DEPTH_MAX,
            max_aliases: ALIASES_MAX,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: REPLAYED_EVENTS_MAX,
        },
    };
    match serde_saphyr::from_str_with_options::<Option<Spanned<RawNode>>>(source, options) {
        Ok(Some(root)) => Ok(convert(root)),
        Ok(None) => Ok(Node {
            at: Position { line: 1, column: 1 },
            value: Value::Null,
        }),
        Err(error) => Err(syntax_error(&error)),
    }
}

fn syntax_error(error: &serde_saphyr::Error) -> SyntaxError {
    let at = error
        .location()
        .map(|location| Position {
            line: location.line() as u32,
            column: location.column() as u32,
        })
        .unwrap_or(Position { line: 1, column: 1 });
    // The library's Display repeats the position and renders its own snippet; mxsim renders
    // snippets itself, so keep only the first line and drop the "line N column M: " prefix.
    let text = error.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let message = match first.find(": ") {
        Some(index) if first.starts_with("line ") => &first[index + 2..],
        _ => first,
    };
    let message = match message.split_once(", set DuplicateKeyPolicy") {
        Some((head, _)) => head.to_owned(),
        None => message.to_owned(),
    };
    let message = if message.contains("budget") || message.contains("limit exceeded") {
        format!("document too large or too deeply nested ({message})")
    } else {
        message
    };
    SyntaxError { at, message }
}

fn position(location: &serde_saphyr::Location) -> Position {
    Position {
        line: location.line() as u32,
        column: location.column() as u32,
    }
}

fn convert(raw: Spanned<RawNode>) -> Node {
    let at = position(&raw.referenced);
    let value = match raw.value {
        RawNode::Null => Value::Null,
        RawNode::Bool(value) => Value::Bool(value),
        RawNode::Integer(value) => Value::Integer(value),
        RawNode::Float(value) => Value::Float(value),
        RawNode::String(value) => Value::String(value),
        RawNode::Sequence(items) => Value::Sequence(items.into_iter().map(convert).collect()),
        RawNode::Mapping(entries) => Value::Mapping(
            entries
                .into_iter()
                .map(|(key, value)| {
                    (
                        Key {
                            at: position(&key.referenced),
                            text: key.value,
                        },
                        convert(value),
                    )
                })
                .collect(),
        ),
    };
    Node { at, value }
}

/// The serde-facing twin of [`Value`]; `Spanned` wraps every child so positions survive.
enum RawNode {
    Null,
    Bool(bool),
    Integer(i64),
    Float(f64),
    String(String),
    Sequence(Vec<Spanned<RawNode>>),
    Mapping(Vec<(Spanned<String>, Spanned<RawNode>)>),
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawNode, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
    fn visit_bool<E>(self, value: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(value))
    }
    fn visit_i64<E>(self, value: i64) -> Result<RawNode, E> {
        Ok(RawNode::Integer(value))
    }
    fn visit_u64<E>(self, value: u64) -> Result<RawNode, E> {
        Ok(match i64::try_from(value) {
            Ok(value) => RawNode::Integer(value),
            Err(_) => RawNode::String(value.to_string()),
        })
    }
    fn visit_i128<E>(self, value: i128) -> Result<RawNode, E> {
        Ok(RawNode::String(value.to_string()))
    }
    fn visit_u128<E>(self, value: u128) -> Result<RawNode, E> {
        Ok(RawNode::String(value.to_string()))
    }
    fn visit_f64<E>(self, value: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(value))
    }
    fn visit_str<E>(self, value: &str) -> Result<RawNode, E> {
        Ok(RawNode::String(value.to_owned()))
    }
    fn visit_string<E>(self, value: String) -> Result<RawNode, E> {
        Ok(RawNode::String(value))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = access.next_key::<Spanned<String>>()? {
            let value = access.next_value()?;
            entries.push((key, value));
        }
        Ok(RawNode::Mapping(entries))
    }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

#[cfg(test)]
mod tests;

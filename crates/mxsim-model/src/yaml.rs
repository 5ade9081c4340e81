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
use serde_saphyr::granit_parser::{Event, Parser};

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
    /// How a number was written in the file (`10.0`, `18446744073709551616`), so messages
    /// quote it as written rather than as the library read it; `None` for other values.
    pub spelling: Option<String>,
}

impl Node {
    /// The value as the file wrote it, for messages: a number's spelling, a string's text,
    /// else what kind of value it is.
    pub fn describe(&self) -> String {
        match (&self.value, &self.spelling) {
            (Value::Integer(_) | Value::Float(_), Some(spelling)) => format!("`{spelling}`"),
            (Value::String(text), _) => format!("`{text}`"),
            (Value::Integer(number), None) => format!("`{number}`"),
            (Value::Float(number), None) => format!("`{number}`"),
            (other, _) => other.kind().to_owned(),
        }
    }
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

/// A document the YAML layer itself rejected: bad syntax, a duplicate key, a budget breach, a
/// tag or a number spelling mxsim does not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser stopped, or where the value is.
    pub at: Position,
    /// What went wrong, in mxsim's words where the library's would confuse.
    pub message: String,
    /// How to fix it, when there is more to say.
    pub help: Option<String>,
}

/// Limits on a single document. A scenario or policy file is a few kilobytes; these bounds are
/// two orders of magnitude above any honest file and far below anything that costs real time.
/// A queue of 10,000 messages is about 60,000 values; 200,000 leaves room and still bounds memory
/// (a few tens of megabytes) below the 1 MiB file limit.
const NODES_MAX: usize = 200_000;
const DEPTH_MAX: usize = 48;
const ALIASES_MAX: usize = 200;
const REPLAYED_EVENTS_MAX: usize = 20_000;
/// Files above this size are rejected before parsing.
pub const BYTES_MAX: usize = 1 << 20;

/// Parses one YAML document into a located [`Node`] tree. A syntax error or a budget breach is
/// the one error returned; otherwise every explicit tag and number spelling mxsim does not read
/// is returned, located, so the author sees them all at once.
pub fn parse(source: &str) -> Result<Node, Vec<SyntaxError>> {
    if source.len() > BYTES_MAX {
        return Err(vec![SyntaxError {
            at: Position { line: 1, column: 1 },
            message: format!(
                "file is {} bytes; scenario and policy files are limited to {BYTES_MAX} bytes",
                source.len()
            ),
            help: None,
        }]);
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
        Ok(Some(root)) => {
            let mut problems = Vec::new();
            let root = convert(root, source, &mut problems);
            check_tags(source, &mut problems);
            problems.sort_by_key(|problem| problem.at);
            if problems.is_empty() {
                Ok(root)
            } else {
                Err(problems)
            }
        }
        Ok(None) => Ok(Node {
            at: Position { line: 1, column: 1 },
            value: Value::Null,
            spelling: None,
        }),
        Err(error) => Err(vec![syntax_error(&error)]),
    }
}

/// The core-schema tags, which only restate a value's type (`!!str 10` is the text `10`, as
/// `"10"` is). Every other tag changes how a value is read (`!!binary` decodes base64,
/// `!!set` and `!!omap` build other collections) or means something to another program, and
/// mxsim would silently read something other than what the author sees, so it is an error.
const CORE_TAGS: &[&str] = &["str", "int", "float", "bool", "null", "seq", "map"];
const CORE_PREFIX: &str = "tag:yaml.org,2002:";

/// Reports every explicit tag but the core ones. serde hands values over with their tags
/// resolved away (`!!binary` arrives decoded), so the tags are read from the parser's events,
/// in a second pass over a document the first pass has already accepted under the budget.
fn check_tags(source: &str, problems: &mut Vec<SyntaxError>) {
    for item in Parser::new_from_str(source) {
        let Ok((event, span)) = item else {
            return;
        };
        let tag = match &event {
            Event::Scalar(_, _, _, tag)
            | Event::SequenceStart(_, _, tag)
            | Event::MappingStart(_, _, tag) => tag,
            _ => continue,
        };
        let Some(tag) = tag else {
            continue;
        };
        let at = Position {
            line: span.start.line() as u32,
            column: span.start.col() as u32 + 1,
        };
        check_tag(tag.handle(), tag.suffix(), at, problems);
    }
}

fn check_tag(handle: &str, suffix: &str, at: Position, problems: &mut Vec<SyntaxError>) {
    if handle == CORE_PREFIX && CORE_TAGS.contains(&suffix) {
        return;
    }
    let shown = match handle {
        CORE_PREFIX => format!("!!{suffix}"),
        _ => format!("{handle}{suffix}"),
    };
    problems.push(SyntaxError {
        at,
        message: format!("tag `{shown}` is not read by mxsim"),
        help: Some(
            "write the value itself; the only tags allowed are the core ones that restate a type: !!str, !!int, !!float, !!bool, !!null, !!seq, !!map".to_owned(),
        ),
    });
}

/// True for `0`, `-12`, `10.5`, `1e3`: decimal, no sign but `-`, no leading zero. YAML also
/// reads `+10`, `010`, `0x19`, `0o17` and `1_000` as numbers, which in a scenario is almost
/// always a slip (an octal-looking port, a hex code), so they are refused with the number
/// YAML would have read.
fn plain_decimal(text: &str) -> bool {
    let text = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(index) => (&text[..index], Some(&text[index + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    digits(whole)
        && (whole == "0" || !whole.starts_with('0'))
        && fraction.is_none_or(digits)
        && exponent
            .is_none_or(|exponent| digits(exponent.strip_prefix(['-', '+']).unwrap_or(exponent)))
}

/// The source text of a scalar at `location`, when the library knows its byte range.
fn source_text<'s>(source: &'s str, location: &serde_saphyr::Location) -> Option<&'s str> {
    let span = location.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let length = usize::try_from(span.byte_len()?).ok()?;
    source.get(start..start.checked_add(length)?)
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
    let message = budget_message(&message).unwrap_or(message);
    SyntaxError {
        at,
        message,
        help: None,
    }
}

/// The library's budget messages, said in mxsim's words with the bound that was hit.
fn budget_message(message: &str) -> Option<String> {
    let nested = "document too large or too deeply nested";
    Some(if message.contains("alias replay limit") {
        format!(
            "document too large: aliases (`*name`) replay more than {REPLAYED_EVENTS_MAX} values in all"
        )
    } else if message.contains("alias expansion limit") || message.contains("Aliases") {
        format!("document too large: more than {ALIASES_MAX} aliases (`*name`)")
    } else if message.contains("recursion limit") || message.contains("Depth") {
        format!("{nested}: more than {DEPTH_MAX} levels of nesting")
    } else if message.contains("Nodes") {
        format!("{nested}: more than {NODES_MAX} values")
    } else if message.contains("budget") || message.contains("limit exceeded") {
        format!("{nested}: a parser limit was hit ({message})")
    } else {
        return None;
    })
}

fn position(location: &serde_saphyr::Location) -> Position {
    Position {
        line: location.line() as u32,
        column: location.column() as u32,
    }
}

fn convert(raw: Spanned<RawNode>, source: &str, problems: &mut Vec<SyntaxError>) -> Node {
    let at = position(&raw.referenced);
    // A value reached through an alias reports its spelling where the anchor defines it, once,
    // not at every alias.
    let through_alias = raw.referenced != raw.defined;
    let raw_value = raw.value;
    let mut spelling = None;
    if let RawNode::Integer(_) | RawNode::Float(_) = raw_value
        && let Some(text) = source_text(source, &raw.defined)
    {
        if !through_alias && !plain_decimal(text) {
            let read_as = match raw_value {
                RawNode::Integer(number) => number.to_string(),
                RawNode::Float(number) => number.to_string(),
                _ => String::new(),
            };
            problems.push(SyntaxError {
                at,
                message: format!(
                    "`{text}` is not a plain decimal number (YAML reads it as {read_as})"
                ),
                help: Some(format!(
                    "write `{read_as}`, or quote it (`\"{text}\"`) if it is text"
                )),
            });
        }
        spelling = Some(text.to_owned());
    }
    let value = match raw_value {
        RawNode::Null => Value::Null,
        RawNode::Bool(value) => Value::Bool(value),
        RawNode::Integer(value) => Value::Integer(value),
        RawNode::Float(value) => Value::Float(value),
        RawNode::String(value) => Value::String(value),
        RawNode::Sequence(items) => Value::Sequence(
            items
                .into_iter()
                .map(|item| convert(item, source, problems))
                .collect(),
        ),
        RawNode::Mapping(entries) => Value::Mapping(
            entries
                .into_iter()
                .map(|(key, value)| {
                    (
                        Key {
                            at: position(&key.referenced),
                            text: key.value,
                        },
                        convert(value, source, problems),
                    )
                })
                .collect(),
        ),
    };
    Node {
        at,
        value,
        spelling,
    }
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

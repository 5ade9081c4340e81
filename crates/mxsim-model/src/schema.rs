//! Small readers over located YAML nodes that record every problem instead of stopping.
//!
//! A reader returns `None` after recording a diagnostic, so the caller goes on reading the
//! rest of the file. Scenario and policy files share these readers, and so the same error style.

use std::net::IpAddr;

use crate::diag::{Diagnostic, Diagnostics, nearest};
use crate::name::{Mailbox, Name};
use crate::smtp::{Keyword, Reply};
use crate::time::Duration;
use crate::yaml::{Key, Node, Position, Value};

/// A mapping whose keys have been checked against a list of known keys.
pub struct Fields<'n> {
    entries: &'n [(Key, Node)],
    /// Where the mapping starts.
    pub at: Position,
}

impl<'n> Fields<'n> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.text == key)
            .map(|(_, value)| value)
    }

    /// The key and value of `key`, if present.
    pub fn entry(&self, key: &str) -> Option<(&'n Key, &'n Node)> {
        self.entries
            .iter()
            .find(|(k, _)| k.text == key)
            .map(|(k, value)| (k, value))
    }

    /// True when `key` is present.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// True when some key other than `ignored` is present.
    pub fn has_other_than(&self, ignored: &[&str]) -> bool {
        self.entries
            .iter()
            .any(|(key, _)| !ignored.contains(&key.text.as_str()))
    }
}

/// The diagnostics sink plus the readers.
pub struct Reader<'d> {
    /// Where problems go.
    pub diagnostics: &'d mut Diagnostics,
}

impl Reader<'_> {
    /// Records a problem.
    pub fn error(&mut self, at: Position, message: impl Into<String>) {
        self.diagnostics.error(at, message);
    }

    /// Records a problem with a hint.
    pub fn error_with_help(
        &mut self,
        at: Position,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diagnostics
            .push(Diagnostic::new(at, message).with_help(help));
    }

    /// Reads a mapping whose keys must all be in `known`; unknown keys are reported with the
    /// nearest known key.
    pub fn fields<'n>(&mut self, node: &'n Node, what: &str, known: &[&str]) -> Option<Fields<'n>> {
        let entries = self.mapping(node, what)?;
        for (key, _) in entries {
            if !known.contains(&key.text.as_str()) {
                self.unknown_key(key, what, known);
            }
        }
        Some(Fields {
            entries,
            at: node.at,
        })
    }

    /// Reports `key` as unknown in `what`.
    pub fn unknown_key(&mut self, key: &Key, what: &str, known: &[&str]) {
        let message = format!("unknown key `{}` in {what}", key.text);
        match nearest(&key.text, known) {
            Some(suggestion) => {
                self.error_with_help(key.at, message, format!("did you mean `{suggestion}`?"))
            }
            None => {
                self.error_with_help(key.at, message, format!("known keys: {}", known.join(", ")))
            }
        }
    }

    /// Reads any mapping, for maps keyed by names or policies.
    pub fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Key, Node)]> {
        match &node.value {
            Value::Mapping(entries) => Some(entries),
            other => {
                self.error(
                    node.at,
                    format!("{what} must be a mapping, found {}", other.kind()),
                );
                None
            }
        }
    }

    /// Reads a list; a single scalar is *not* promoted, so typos like `to: a@b` are caught.
    pub fn list<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Sequence(items) => Some(items),
            other => {
                self.error_with_help(
                    node.at,
                    format!("{what} must be a list, found {}", other.kind()),
                    "write a list: `[a, b]`",
                );
                None
            }
        }
    }

    /// Reads a string; numbers and booleans are refused so the author sees the YAML typing.
    pub fn string<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match &node.value {
            Value::String(text) => Some(text),
            other => {
                self.error(
                    node.at,
                    format!("{what} must be a string, found {}", other.kind()),
                );
                None
            }
        }
    }

    /// Reads a scalar's text, whatever YAML typed it as (for reply codes, which authors write
    /// both as `250` and as `"421 4.3.2 busy"`).
    pub fn scalar_text(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::String(text) => Some(text.clone()),
            Value::Integer(number) => Some(number.to_string()),
            other => {
                self.error(
                    node.at,
                    format!("{what} must be a scalar, found {}", other.kind()),
                );
                None
            }
        }
    }

    /// Reads a non-negative integer.
    pub fn unsigned(&mut self, node: &Node, what: &str) -> Option<u64> {
        match &node.value {
            Value::Integer(number) if *number >= 0 => Some(*number as u64),
            Value::String(text) if text.parse::<u64>().is_ok() => text.parse().ok(),
            _ => {
                self.error(
                    node.at,
                    format!(
                        "{what} must be a non-negative integer, found {}",
                        node.describe()
                    ),
                );
                None
            }
        }
    }

    /// Reads a boolean.
    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(value) => Some(*value),
            _ => {
                self.error(
                    node.at,
                    format!("{what} must be true or false, found {}", node.describe()),
                );
                None
            }
        }
    }

    /// Reads a duration such as `30s` or `4m59s`.
    pub fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = match &node.value {
            Value::String(text) => text.clone(),
            Value::Integer(0) => return Some(Duration::ZERO),
            _ => {
                self.error_with_help(
                    node.at,
                    format!("{what} must be a duration, found {}", node.describe()),
                    "write a number with a unit: 250ms, 30s, 5m, 2h, 4d",
                );
                return None;
            }
        };
        match Duration::parse(&text) {
            Ok(duration) => Some(duration),
            Err(message) => {
                let help = match Duration::suggest(&text) {
                    Some(fixed) => format!(
                        "did you mean `{fixed}`? a duration is a number and a unit, without a space: 250ms, 30s, 5m, 2h, 4d"
                    ),
                    None => "write a number with a unit: 250ms, 30s, 5m, 2h, 4d".to_owned(),
                };
                self.error_with_help(node.at, format!("{what}: {message}"), help);
                None
            }
        }
    }

    /// Reads a host name.
    pub fn name(&mut self, node: &Node, what: &str) -> Option<Name> {
        let text = self.string(node, what)?;
        self.convert(node.at, what, Name::parse(text))
    }

    /// Reads a mailbox.
    pub fn mailbox(&mut self, node: &Node, what: &str) -> Option<Mailbox> {
        let text = self.string(node, what)?;
        self.convert(node.at, what, Mailbox::parse(text))
    }

    /// Reads an IP address.
    pub fn address(&mut self, node: &Node, what: &str) -> Option<IpAddr> {
        let text = self.string(node, what)?;
        let parsed = text
            .parse::<IpAddr>()
            .map_err(|_| format!("`{text}` is not an IPv4 or IPv6 address"));
        self.convert(node.at, what, parsed)
    }

    /// Reads a reply: `250` or `"421 4.3.2 busy"`, code in 200–599, printable text only.
    pub fn reply(&mut self, node: &Node, what: &str) -> Option<Reply> {
        let text = self.scalar_text(node, what)?;
        self.convert(node.at, what, printable(&text, "a reply line"))?;
        self.convert(node.at, what, Reply::parse(&text))
    }

    /// Reads a list of EHLO keywords.
    pub fn keywords(&mut self, node: &Node, what: &str) -> Option<Vec<Keyword>> {
        let items = self.list(node, what)?;
        let mut keywords = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match self
                .scalar_text(item, what)
                .map(|text| Keyword::parse(&text))
            {
                Some(Ok(keyword)) => keywords.push(keyword),
                Some(Err(message)) => {
                    self.error(item.at, format!("{what}: {message}"));
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(keywords)
    }

    /// Reads a list of keyword names (for `requires`/`wants`), uppercased; a name listed twice
    /// (in any case) is an error, since the second copy says nothing and hides a typo.
    pub fn keyword_names(&mut self, node: &Node, what: &str) -> Option<Vec<std::sync::Arc<str>>> {
        let keywords = self.keywords(node, what)?;
        let mut names = Vec::with_capacity(keywords.len());
        let mut seen = std::collections::BTreeSet::new();
        for (keyword, item) in keywords.into_iter().zip(self.list_nodes(node)) {
            if keyword.parameter.is_some() {
                self.error(
                    item.at,
                    format!("{what} lists keyword names only, without parameters"),
                );
                continue;
            }
            if !seen.insert(keyword.name.clone()) {
                self.error(
                    item.at,
                    format!(
                        "{what} lists {} twice (keywords are case-insensitive)",
                        keyword.name
                    ),
                );
                continue;
            }
            names.push(keyword.name);
        }
        Some(names)
    }

    fn list_nodes<'n>(&self, node: &'n Node) -> &'n [Node] {
        match &node.value {
            Value::Sequence(items) => items,
            _ => &[],
        }
    }

    /// Records a conversion error, if any.
    pub fn convert<T>(&mut self, at: Position, what: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(at, format!("{what}: {message}"));
                None
            }
        }
    }

    /// Reads one word out of `choices` and returns the value paired with it.
    pub fn choice_of<T: Copy>(
        &mut self,
        node: &Node,
        what: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
        let word = self.choice(node, what, &words)?;
        choices
            .iter()
            .find(|(candidate, _)| *candidate == word)
            .map(|(_, value)| *value)
    }

    /// Reads one word out of `choices`.
    pub fn choice<'c>(&mut self, node: &Node, what: &str, choices: &[&'c str]) -> Option<&'c str> {
        let text = self.scalar_text(node, what)?;
        if let Some(choice) = choices.iter().find(|choice| **choice == text) {
            return Some(choice);
        }
        let message = format!("{what}: `{text}` is not one of {}", choices.join(", "));
        match nearest(&text, choices) {
            Some(suggestion) => {
                self.error_with_help(node.at, message, format!("did you mean `{suggestion}`?"))
            }
            None => self.error(node.at, message),
        }
        None
    }
}

/// `Ok` when `text` has no control character but TAB. Text from a scenario reaches the trace
/// and the terminal: a line break in a reply would forge a trace line, an ESC would drive the
/// terminal. RFC 5321 §4.2 allows HT and printable ASCII in a reply's text, so TAB stays.
pub fn printable(text: &str, what: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control() && *c != '\t') {
        Some(c) => Err(format!(
            "{what} cannot contain the control character `\\u{{{:x}}}`",
            c as u32
        )),
        None => Ok(()),
    }
}

//! A small JSON value with ordered keys and a pretty printer, for the JSON Schemas of the file
//! formats (`docs/schemas/`): keys stay in the order the loaders' key tables give them, so a
//! schema reads like the format's reference.

use std::fmt::Write as _;

/// A JSON value whose objects keep their keys in insertion order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, keys in order.
    Obj(Vec<(String, Json)>),
}

/// A string value.
pub fn s(text: &str) -> Json {
    Json::Str(text.to_owned())
}

/// An object from `(key, value)` pairs.
pub fn obj<const N: usize>(entries: [(&str, Json); N]) -> Json {
    Json::Obj(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

/// An array of strings.
pub fn strs(items: &[&str]) -> Json {
    Json::Arr(items.iter().map(|item| s(item)).collect())
}

impl Json {
    /// This object with `key` set to `value` (added at the end, or replaced in place).
    pub fn with(mut self, key: &str, value: Json) -> Json {
        if let Json::Obj(entries) = &mut self {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some((_, slot)) => *slot = value,
                None => entries.push((key.to_owned(), value)),
            }
        }
        self
    }

    /// Pretty-printed, two spaces per level, with a final newline.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, indent: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Json::Int(value) => {
                let _ = write!(out, "{value}");
            }
            Json::Str(text) => quote(out, text),
            Json::Arr(items) if items.is_empty() => out.push_str("[]"),
            Json::Arr(items) => {
                let short = items
                    .iter()
                    .all(|item| matches!(item, Json::Str(_) | Json::Int(_) | Json::Bool(_)));
                if short {
                    out.push('[');
                    for (index, item) in items.iter().enumerate() {
                        if index > 0 {
                            out.push_str(", ");
                        }
                        item.write(out, indent);
                    }
                    out.push(']');
                    return;
                }
                out.push_str("[\n");
                for (index, item) in items.iter().enumerate() {
                    pad(out, indent + 1);
                    item.write(out, indent + 1);
                    out.push_str(if index + 1 < items.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push(']');
            }
            Json::Obj(entries) if entries.is_empty() => out.push_str("{}"),
            Json::Obj(entries) => {
                out.push_str("{\n");
                for (index, (key, value)) in entries.iter().enumerate() {
                    pad(out, indent + 1);
                    quote(out, key);
                    out.push_str(": ");
                    value.write(out, indent + 1);
                    out.push_str(if index + 1 < entries.len() {
                        ",\n"
                    } else {
                        "\n"
                    });
                }
                pad(out, indent);
                out.push('}');
            }
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push_str("  ");
    }
}

fn quote(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Shared definitions of the value types both file formats use, as JSON Schema `$defs`.
pub fn value_defs() -> Vec<(String, Json)> {
    let defs = [
        (
            "duration",
            obj([
                (
                    "description",
                    s("250ms, 30s, 5m, 2h, 4d, or a sum such as 4m59s; 0 alone is zero"),
                ),
                (
                    "anyOf",
                    Json::Arr(vec![
                        obj([
                            ("type", s("string")),
                            ("pattern", s("^(0|([0-9]+(ms|s|m|h|d))+)$")),
                        ]),
                        obj([("const", Json::Int(0))]),
                    ]),
                ),
            ]),
        ),
        (
            "host",
            obj([
                (
                    "description",
                    s("a host name (ASCII; IDNs as xn-- A-labels), case-insensitive"),
                ),
                ("type", s("string")),
                (
                    "pattern",
                    s(
                        "^(\\.|([A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\\.?)$",
                    ),
                ),
            ]),
        ),
        (
            "mailbox",
            obj([
                ("description", s("local@domain, split at the last @")),
                ("type", s("string")),
                ("pattern", s("^[^@<> ]+@[A-Za-z0-9_.-]+$")),
            ]),
        ),
        (
            "ipv4",
            obj([
                ("description", s("an IPv4 address")),
                ("type", s("string")),
                (
                    "pattern",
                    s(
                        "^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$",
                    ),
                ),
            ]),
        ),
        (
            "ipv6",
            obj([
                ("description", s("an IPv6 address")),
                ("type", s("string")),
                ("pattern", s("^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$")),
            ]),
        ),
        (
            "address",
            obj([
                ("description", s("an IPv4 or IPv6 address")),
                ("anyOf", Json::Arr(vec![def("ipv4"), def("ipv6")])),
            ]),
        ),
        (
            "hostOrAddress",
            obj([
                ("description", s("a host name or an address")),
                ("anyOf", Json::Arr(vec![def("host"), def("address")])),
            ]),
        ),
        (
            "reply",
            obj([
                (
                    "description",
                    s("a reply code in 200-599, optionally with text: 250, \"421 4.3.2 busy\""),
                ),
                (
                    "anyOf",
                    Json::Arr(vec![
                        obj([
                            ("type", s("integer")),
                            ("minimum", Json::Int(200)),
                            ("maximum", Json::Int(599)),
                        ]),
                        obj([
                            ("type", s("string")),
                            ("pattern", s("^[2-5][0-9][0-9]( .*)?$")),
                        ]),
                    ]),
                ),
            ]),
        ),
        (
            "keyword",
            obj([
                (
                    "description",
                    s(
                        "an EHLO line: keyword (letters, digits, -), optionally a space and parameters",
                    ),
                ),
                ("type", s("string")),
                ("pattern", s("^[A-Za-z0-9][A-Za-z0-9-]*( .*)?$")),
            ]),
        ),
        (
            "keywordName",
            obj([
                ("description", s("an EHLO keyword name, without parameters")),
                ("type", s("string")),
                ("pattern", s("^[A-Za-z0-9][A-Za-z0-9-]*$")),
            ]),
        ),
    ];
    defs.into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// A reference to a shared definition.
pub fn def(name: &str) -> Json {
    obj([("$ref", s(&format!("#/$defs/{name}")))])
}

/// An array of `items`.
pub fn array(items: Json) -> Json {
    obj([("type", s("array")), ("items", items)])
}

/// One of `words`.
pub fn words(items: &[&str]) -> Json {
    obj([("enum", strs(items))])
}

/// Any of `schemas`.
pub fn any_of(schemas: Vec<Json>) -> Json {
    obj([("anyOf", Json::Arr(schemas))])
}

/// A non-negative integer.
pub fn count() -> Json {
    obj([("type", s("integer")), ("minimum", Json::Int(0))])
}

/// A closed object: `properties` in order, nothing else allowed.
pub fn closed(properties: Vec<(String, Json)>) -> Json {
    obj([
        ("type", s("object")),
        ("properties", Json::Obj(properties)),
        ("additionalProperties", Json::Bool(false)),
    ])
}

/// `schema` with a description.
pub fn described(schema: Json, description: &str) -> Json {
    schema.with("description", s(description))
}

/// A whole schema document: draft 2020-12, with the shared value definitions and `extra`.
pub fn document(id: &str, title: &str, root: Json, extra: Vec<(String, Json)>) -> Json {
    let mut defs = value_defs();
    defs.extend(extra);
    let mut entries = vec![
        (
            "$schema".to_owned(),
            s("https://json-schema.org/draft/2020-12/schema"),
        ),
        ("$id".to_owned(), s(id)),
        ("title".to_owned(), s(title)),
    ];
    if let Json::Obj(root) = root {
        entries.extend(root);
    }
    entries.push(("$defs".to_owned(), Json::Obj(defs)));
    Json::Obj(entries)
}

//! Escaping text from input files for the places it is shown: a terminal, Markdown, HTML.
//!
//! Scenario and policy files are written by people and by fuzzers. A reply text with a newline
//! would print a forged trace line, an ESC sequence can hide the rest of a terminal, and a
//! bidirectional override can reorder what a reader sees. The loader rejects control characters
//! where a value has no use for them; these functions are the second wall, at every output.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for characters that must never reach a terminal raw: C0 and C1 controls but TAB (CR
/// and LF included, since every shown value is one line), DEL, the Unicode line and paragraph
/// separators, and the Unicode bidirectional controls (Bidi_Control). TAB stays: reply texts may carry it (RFC 5321 §4.2) and it cannot forge a line.
pub fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Pushes `c`, or its Rust-style escape (`\u{1b}`) when it is unsafe.
pub fn push(out: &mut String, c: char) {
    if is_unsafe(c) {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    } else {
        out.push(c);
    }
}

/// `text` with every unsafe character escaped; clean text is borrowed as it is.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push(&mut out, c);
    }
    Cow::Owned(out)
}

/// `text` for a cell or a line of Markdown: terminal-safe, with the characters that would open
/// a link, an image, an HTML tag or a new table column (`[`, `]`, `<`, `>`, `|`, `\`)
/// backslash-escaped and `&` written as an entity. Emphasis and code marks (`*`, `_`, `` ` ``)
/// stay: they can only change how a title looks, and titles use them for code names.
pub fn markdown(text: &str) -> String {
    let safe = terminal(text);
    let mut out = String::with_capacity(safe.len() + 8);
    for c in safe.chars() {
        match c {
            '|' | '[' | ']' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` for HTML element content or a quoted attribute value.
pub fn html(text: &str) -> String {
    let safe = terminal(text);
    let mut out = String::with_capacity(safe.len() + 8);
    for c in safe.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_untouched() {
        assert!(matches!(terminal("250 2.0.0 ok é\tx"), Cow::Borrowed(_)));
        assert_eq!(terminal(r"a\b"), r"a\b");
    }

    #[test]
    fn controls_cannot_forge_a_line_or_hide_output() {
        assert_eq!(terminal("ok\n  done"), "ok\\u{a}  done");
        assert_eq!(terminal("\u{1b}[8mhidden"), "\\u{1b}[8mhidden");
        assert_eq!(terminal("a\0b\r\u{7f}"), "a\\u{0}b\\u{d}\\u{7f}");
        assert_eq!(terminal("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(terminal("a\u{2028}b\u{61c}"), "a\\u{2028}b\\u{61c}");
    }

    #[test]
    fn markdown_and_html_neutralise_markup() {
        assert_eq!(markdown("a|b <i>[x](y)"), "a\\|b \\<i\\>\\[x\\](y)");
        assert_eq!(markdown("line\nbreak"), "line\\\\u{a}break");
        assert_eq!(html("<b a=\"1\">&'"), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
    }
}

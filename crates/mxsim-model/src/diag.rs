//! Located problems in input files, and their rendering with a source snippet.
//!
//! Loading a file returns either a value or *all* the problems found in it (the rust-analyzer
//! habit of `(T, Vec<Error>)`): an author fixes a file in one round trip, not one error at a time.

use std::cell::Cell;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::yaml::Position;

/// One problem in an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is.
    pub at: Position,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// How to fix it, when there is something better to say than the message.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem at a position.
    pub fn new(at: Position, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            at,
            message: message.into(),
            help: None,
        }
    }

    /// The same problem with a hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
}

/// Every problem found in one file, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// The problems, sorted by position once loading ends.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records a problem.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Records a problem from its parts.
    pub fn error(&mut self, at: Position, message: impl Into<String>) {
        self.items.push(Diagnostic::new(at, message));
    }

    /// Records the problems of the YAML layer, in file order.
    pub fn syntax(&mut self, errors: Vec<crate::yaml::SyntaxError>) {
        for error in errors {
            self.items.push(Diagnostic {
                at: error.at,
                message: error.message,
                help: error.help,
            });
        }
        self.finish();
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sorts by position and drops exact repeats, so output is stable and readable.
    pub fn finish(&mut self) {
        self.items
            .sort_by(|a, b| (a.at, &a.message).cmp(&(b.at, &b.message)));
        self.items.dedup();
    }

    /// Renders the first [`SHOWN_MAX`] problems as `file:line:column: error: message` with a
    /// snippet and caret, then how many more there were, then the count.
    pub fn render(&self, file: &str, source: &str) -> String {
        self.render_as(file, source, "error")
    }

    /// Renders the items as warnings (`file:line:column: warning: message`), like
    /// [`Diagnostics::render`]; nothing when there are none.
    pub fn render_warnings(&self, file: &str, source: &str) -> String {
        if self.items.is_empty() {
            return String::new();
        }
        self.render_as(file, source, "warning")
    }

    fn render_as(&self, file: &str, source: &str, kind: &str) -> String {
        let lines = LineIndex::new(source);
        let mut out = String::new();
        for diagnostic in self.items.iter().take(SHOWN_MAX) {
            render_one(&mut out, file, &lines, diagnostic, kind);
        }
        let count = self.items.len();
        let noun = |n: usize| {
            if n == 1 {
                kind.to_owned()
            } else {
                format!("{kind}s")
            }
        };
        if count > SHOWN_MAX {
            let more = count - SHOWN_MAX;
            let _ = writeln!(out, "{file}: and {more} more {}", noun(more));
        }
        let _ = writeln!(out, "{file}: {count} {}", noun(count));
        out
    }
}

/// At most this many problems are rendered per file. An author fixes the first few and runs
/// again; ten thousand snippets help nobody and cost time and terminal space.
pub const SHOWN_MAX: usize = 50;

/// A snippet line longer than this many characters is shown as a window around the column.
const SNIPPET_WIDTH: usize = 120;

/// The start of every line, computed once, so rendering many problems reads the file once
/// instead of rescanning it for each one.
struct LineIndex<'s> {
    source: &'s str,
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    fn new(source: &'s str) -> LineIndex<'s> {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(index, _)| index + 1));
        LineIndex { source, starts }
    }

    /// Line `line` (1-based) without its line break, or `None` past the end.
    fn line(&self, line: u32) -> Option<&'s str> {
        let index = (line as usize).checked_sub(1)?;
        let start = *self.starts.get(index)?;
        if self.source.is_empty() || (start >= self.source.len() && index > 0) {
            return None;
        }
        let end = self
            .starts
            .get(index + 1)
            .map_or(self.source.len(), |next| next - 1);
        let text = &self.source[start..end];
        Some(text.strip_suffix('\r').unwrap_or(text))
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.items {
            writeln!(
                formatter,
                "{}:{}: {}",
                diagnostic.at.line, diagnostic.at.column, diagnostic.message
            )?;
        }
        Ok(())
    }
}

fn render_one(
    out: &mut String,
    file: &str,
    lines: &LineIndex<'_>,
    diagnostic: &Diagnostic,
    kind: &str,
) {
    let Position { line, column } = diagnostic.at;
    // The first line is the GNU form editors and CI problem matchers read; the snippet, caret
    // and help under it are rustc's, drawn by annotate-snippets.
    let _ = writeln!(
        out,
        "{file}:{line}:{column}: {kind}: {}",
        escape_controls(&diagnostic.message)
    );
    let level = match kind {
        "warning" => Level::WARNING,
        _ => Level::ERROR,
    };
    let mut group = Group::with_level(level);
    if line >= 1
        && let Some(text) = lines.line(line)
    {
        let (shown, pad) = snippet(text, column.max(1) as usize - 1);
        // The caret goes under the character after the padding (or just past the end).
        let start = shown
            .char_indices()
            .nth(pad.chars().count())
            .map_or(shown.len(), |(index, _)| index);
        let end = shown[start..]
            .chars()
            .next()
            .map_or(start, |c| start + c.len_utf8());
        group = group.element(
            Snippet::source(shown)
                .line_start(line as usize)
                .annotation(AnnotationKind::Primary.span(start..end)),
        );
    }
    if let Some(help) = &diagnostic.help {
        group = group.element(Level::HELP.message(escape_controls(help)));
    }
    if group.is_empty() {
        return;
    }
    // Lines are already cut to a window around the caret; the renderer must not cut again.
    let rendered = Renderer::plain().term_width(10_000).render(&[group]);
    for rendered_line in rendered.lines() {
        let _ = writeln!(out, "{}", rendered_line.trim_end());
    }
}

/// The part of `text` to show and the padding that puts a caret under character `caret`.
/// A long line is cut to a window around the caret, marked with `…` at each cut, so the caret
/// always sits under the problem. Unsafe characters are escaped (see [`crate::escape`]).
fn snippet(text: &str, caret: usize) -> (String, String) {
    let chars: Vec<char> = text.chars().collect();
    let caret = caret.min(chars.len());
    let (start, end) = if chars.len() <= SNIPPET_WIDTH {
        (0, chars.len())
    } else {
        let start = caret
            .saturating_sub(SNIPPET_WIDTH / 2)
            .min(chars.len() - SNIPPET_WIDTH);
        (start, start + SNIPPET_WIDTH)
    };
    let mut shown = String::new();
    let mut pad = String::new();
    if start > 0 {
        shown.push('…');
        pad.push(' ');
    }
    for (index, c) in chars[start..end].iter().enumerate() {
        let before = shown.chars().count();
        crate::escape::push(&mut shown, *c);
        if start + index < caret {
            if *c == '\t' {
                pad.push('\t');
            } else {
                let width = shown.chars().count() - before;
                pad.extend(std::iter::repeat_n(' ', width));
            }
        }
    }
    if end < chars.len() {
        shown.push('…');
    }
    (shown, pad)
}

/// `text` with every unsafe character escaped (see [`crate::escape`]), for messages that quote
/// the file.
pub fn escape_controls(text: &str) -> String {
    crate::escape::terminal(text).into_owned()
}

/// The known word closest to `word`, if it is close enough to be a plausible typo.
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in known {
        if let Some(distance) = close(&word, candidate)
            && best.is_none_or(|(d, _)| distance < d)
        {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// "Did you mean" over a large set of names (hosts in a zone), with bounded work: candidates
/// are bucketed by length and only buckets within the distance limit are scanned, at most
/// [`HINT_CANDIDATES_MAX`] candidates per word and at most [`HINTS_MAX`] words per file. A file
/// with thousands of unknown names still gets hints for the first ones, which are the ones
/// rendered, in time linear in the file.
pub struct Suggester {
    by_length: BTreeMap<usize, Vec<Box<str>>>,
    left: Cell<usize>,
}

/// At most this many words per file get a "did you mean" from a [`Suggester`].
pub const HINTS_MAX: usize = 50;
/// At most this many candidates are compared with one word.
pub const HINT_CANDIDATES_MAX: usize = 2_000;

impl Suggester {
    /// Indexes `known` (lowercase words) by length.
    pub fn new<'a>(known: impl IntoIterator<Item = &'a str>) -> Suggester {
        let mut by_length: BTreeMap<usize, Vec<Box<str>>> = BTreeMap::new();
        for word in known {
            by_length
                .entry(word.chars().count())
                .or_default()
                .push(Box::from(word));
        }
        Suggester {
            by_length,
            left: Cell::new(HINTS_MAX),
        }
    }

    /// The known word closest to `word`, as [`nearest`] decides, within the budgets.
    pub fn suggest(&self, word: &str) -> Option<&str> {
        if self.left.get() == 0 {
            return None;
        }
        self.left.set(self.left.get() - 1);
        let word = word.to_ascii_lowercase();
        let length = word.chars().count();
        // Edit distance is at least the difference in length, and the limit grows with the
        // longer word's length, so no candidate shorter than `low` or longer than `high` can
        // be within it.
        let low = length.saturating_sub(length / 3 + 2);
        let high = length + length / 2 + 3;
        let candidates = self
            .by_length
            .range(low..=high)
            .flat_map(|(_, words)| words.iter().map(|word| &**word))
            .take(HINT_CANDIDATES_MAX);
        let mut best: Option<(usize, &str)> = None;
        for candidate in candidates {
            if let Some(distance) = close(&word, candidate)
                && best.is_none_or(|(d, _)| distance < d)
            {
                best = Some((distance, candidate));
            }
        }
        best.map(|(_, candidate)| candidate)
    }
}

/// The edit distance between `word` and `candidate` when it is within the typo limit.
fn close(word: &str, candidate: &str) -> Option<usize> {
    let distance = edit_distance(word, candidate);
    let limit = (candidate.len().max(word.len()) / 3).max(1) + 1;
    (distance <= limit).then_some(distance)
}

/// Levenshtein distance over characters (strsim); inputs are short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(word: &str, known: &[&str], expected: Option<&str>) {
        assert_eq!(nearest(word, known), expected, "nearest({word:?})");
    }

    #[test]
    fn suggestions() {
        check("behavoir", &["behaviour", "greeting"], Some("behaviour"));
        check("ehol", &["ehlo", "helo", "mail"], Some("ehlo"));
        check("mxx", &["mx", "a", "aaaa"], Some("mx"));
        check("zzzzzzz", &["mx", "a", "aaaa"], None);
        check("Title", &["title"], Some("title"));
    }

    #[test]
    fn render_points_at_the_column() {
        let mut diagnostics = Diagnostics::default();
        diagnostics.push(
            Diagnostic::new(Position { line: 2, column: 3 }, "unknown key `mxx`")
                .with_help("did you mean `mx`?"),
        );
        let text = diagnostics.render("a.yaml", "dns:\n  mxx: []\n");
        assert_eq!(
            text,
            "a.yaml:2:3: error: unknown key `mxx`\n  |\n2 |   mxx: []\n  |   ^\n  |\n  = help: did you mean `mx`?\na.yaml: 1 error\n"
        );
    }

    #[test]
    fn long_lines_show_a_window_with_the_caret_under_the_column() {
        let line = format!("{}BAD{}", "a".repeat(500), "b".repeat(500));
        let (shown, pad) = snippet(&line, 500);
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        let caret = pad.chars().count();
        assert_eq!(shown.chars().nth(caret), Some('B'), "{shown}");
        let (shown, pad) = snippet("short", 2);
        assert_eq!((shown.as_str(), pad.as_str()), ("short", "  "));
    }

    #[test]
    fn control_characters_are_escaped_and_the_caret_follows() {
        let (shown, pad) = snippet("a\u{1b}[2J\0x\tX", 6);
        assert_eq!(shown, "a\\u{1b}[2J\\u{0}x\tX");
        assert_eq!(pad, " ".repeat(15));
        assert_eq!(escape_controls("a\nb\rc\u{7f}"), "a\\u{a}b\\u{d}c\\u{7f}");
    }

    #[test]
    fn rendering_stops_after_the_cap() {
        let mut diagnostics = Diagnostics::default();
        for line in 1..=SHOWN_MAX as u32 + 7 {
            diagnostics.error(Position { line, column: 1 }, "bad");
        }
        let source = "x\n".repeat(SHOWN_MAX + 7);
        let text = diagnostics.render("a.yaml", &source);
        assert_eq!(text.matches(": error: bad").count(), SHOWN_MAX);
        assert!(
            text.ends_with("a.yaml: and 7 more errors\na.yaml: 57 errors\n"),
            "{text}"
        );
    }

    #[test]
    fn suggester_is_bounded_and_agrees_with_nearest() {
        let names: Vec<String> = (0..5_000)
            .map(|n| format!("mx{n:05}.foo.example"))
            .collect();
        let hints = Suggester::new(names.iter().map(String::as_str));
        assert_eq!(
            hints.suggest("mx00007.foo.exampel"),
            Some("mx00007.foo.example")
        );
        assert_eq!(
            hints.suggest("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
            None
        );
        for _ in 2..HINTS_MAX {
            hints.suggest("x");
        }
        assert_eq!(hints.suggest("mx00007.foo.exampel"), None, "budget spent");
    }
}

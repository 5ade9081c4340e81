//! Located problems in input files, and their rendering with a source snippet.
//!
//! Loading a file returns either a value or *all* the problems found in it (the rust-analyzer
//! habit of `(T, Vec<Error>)`): an author fixes a file in one round trip, not one error at a time.

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

    /// Renders every problem as `file:line:column: error: message` with a snippet and caret.
    pub fn render(&self, file: &str, source: &str) -> String {
        let mut out = String::new();
        for diagnostic in &self.items {
            render_one(&mut out, file, source, diagnostic);
        }
        let count = self.items.len();
        let noun = if count == 1 { "error" } else { "errors" };
        let _ = writeln!(out, "{file}: {count} {noun}");
        out
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

fn render_one(out: &mut String, file: &str, source: &str, diagnostic: &Diagnostic) {
    let Position { line, column } = diagnostic.at;
    let _ = writeln!(out, "{file}:{line}:{column}: error: {}", diagnostic.message);
    if line >= 1
        && let Some(text) = source.lines().nth(line as usize - 1)
    {
        let gutter = line.to_string().len();
        let shown: String = text.chars().take(120).collect();
        let _ = writeln!(out, "{:gutter$} |", "");
        let _ = writeln!(out, "{line} | {shown}");
        let caret_at = (column.max(1) as usize - 1).min(shown.chars().count());
        let pad: String = shown
            .chars()
            .take(caret_at)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(out, "{:gutter$} | {pad}^", "");
    }
    if let Some(help) = &diagnostic.help {
        let _ = writeln!(out, "  = help: {help}");
    }
}

/// The known word closest to `word`, if it is close enough to be a plausible typo.
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in known {
        let distance = edit_distance(&word, candidate);
        let limit = (candidate.len().max(word.len()) / 3).max(1) + 1;
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters; inputs are short keys, so O(n·m) is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
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
            "a.yaml:2:3: error: unknown key `mxx`\n  |\n2 |   mxx: []\n  |   ^\n  = help: did you mean `mx`?\na.yaml: 1 error\n"
        );
    }
}

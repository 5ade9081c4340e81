//! Coverage of the rules and open questions by a corpus (`mxsim rules --coverage`): which rules
//! the scenarios exercise, which open questions of the standards they meet, and on which
//! scenarios the policies differ.
//!
//! A scenario exercises a rule when some policy's run breaks it there (a checker fired, at any
//! verdict) or the scenario names it in `refs:`; it meets an open question when a detector found
//! it (an INFO verdict) or the scenario names it in `refs:` (as a word: `standards.md O7`).
//! The policies differ on a scenario when their cells do not all have the same results
//! (outcome, hosts delivered through, the mix of outcomes) and connection counts.

use std::fmt::Write as _;
use std::sync::Arc;

use mxsim_model::rules::{QUESTIONS, RULES};
use mxsim_model::scenario::Scenario;

use crate::compare::Report;

/// One rule or open question, and the scenarios that touch it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Item {
    /// The rule's or question's id.
    pub id: &'static str,
    /// Scenarios where a checker or detector fired for some policy.
    pub met: Vec<String>,
    /// Scenarios that name it in `refs:`.
    pub named: Vec<String>,
    /// Of those two, the scenarios on which the policies differ.
    pub differing: Vec<String>,
}

impl Item {
    /// True when a scenario on which the policies differ meets it or names it.
    pub fn covered(&self) -> bool {
        !self.differing.is_empty()
    }
}

/// The coverage of a corpus.
#[derive(Clone, Debug, Default)]
pub struct Coverage {
    /// Scenario files.
    pub scenarios: usize,
    /// Policies run on each.
    pub policies: usize,
    /// Scenarios on which the policies differ.
    pub differing: usize,
    /// Every rule that has a checker, in table order.
    pub rules: Vec<Item>,
    /// Every open question, in order.
    pub questions: Vec<Item>,
}

/// True when a `refs:` entry names `id` as a word of its own: `O7` and `standards.md O7` name
/// O7, `O17` does not.
fn names(reference: &str, id: &str) -> bool {
    reference
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| word == id)
}

pub use crate::compare::policies_differ;

/// The coverage of `report`, made from `scenarios` (the same files, in the same order).
pub fn coverage(report: &Report, scenarios: &[Arc<Scenario>]) -> Coverage {
    let differ: Vec<bool> = report.scenarios.iter().map(policies_differ).collect();
    let item = |id: &'static str| {
        let mut item = Item {
            id,
            ..Item::default()
        };
        for ((row, scenario), differs) in report.scenarios.iter().zip(scenarios).zip(&differ) {
            let met = row
                .cells
                .iter()
                .any(|cell| cell.verdicts.iter().any(|verdict| verdict.rule == id));
            let named = scenario.refs.iter().any(|reference| names(reference, id));
            if met {
                item.met.push(row.label.clone());
            }
            if named {
                item.named.push(row.label.clone());
            }
            if (met || named) && *differs {
                item.differing.push(row.label.clone());
            }
        }
        item
    };
    Coverage {
        scenarios: report.scenarios.len(),
        policies: report.policies.len(),
        differing: differ.iter().filter(|differs| **differs).count(),
        rules: RULES
            .iter()
            .filter(|rule| rule.judged())
            .map(|rule| item(rule.id))
            .collect(),
        questions: QUESTIONS.iter().map(|question| item(question.id)).collect(),
    }
}

/// At most this many scenarios are named on a line; the rest are counted.
const NAMED_MAX: usize = 4;

fn some(labels: &[String]) -> String {
    let mut text = labels
        .iter()
        .take(NAMED_MAX)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if labels.len() > NAMED_MAX {
        let _ = write!(text, " and {} more", labels.len() - NAMED_MAX);
    }
    text
}

/// The coverage as text, ending with the counts of covered rules and questions.
pub fn render(coverage: &Coverage) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Coverage of {} scenario files by {} policies; the policies differ on {} of them.",
        coverage.scenarios, coverage.policies, coverage.differing
    );
    for (title, items, verb) in [
        (
            "Rules with a checker: broken by some policy, or named in `refs:`",
            &coverage.rules,
            "broken",
        ),
        (
            "Open questions (standards notes §3): met (INFO), or named in `refs:`",
            &coverage.questions,
            "met",
        ),
    ] {
        let _ = writeln!(out, "\n{title}; where the policies differ:");
        for item in items {
            let level = RULES
                .iter()
                .find(|rule| rule.id == item.id)
                .map_or("", |rule| rule.level.word());
            let _ = write!(
                out,
                "  {:<4} {:<7} {verb} on {}, named by {}, policies differ on {}",
                item.id,
                level,
                item.met.len(),
                item.named.len(),
                item.differing.len()
            );
            if item.differing.is_empty() {
                out.push_str(": not covered\n");
            } else {
                let _ = writeln!(out, ": {}", some(&item.differing));
            }
        }
    }
    let covered = |items: &[Item]| {
        let ids: Vec<&str> = items
            .iter()
            .filter(|item| !item.covered())
            .map(|item| item.id)
            .collect();
        (items.len() - ids.len(), items.len(), ids.join(", "))
    };
    let (rules, rules_total, rules_missing) = covered(&coverage.rules);
    let (questions, questions_total, questions_missing) = covered(&coverage.questions);
    let _ = writeln!(
        out,
        "\n{rules} of {rules_total} rules with a checker are exercised on a scenario where the policies differ{}",
        if rules_missing.is_empty() {
            ".".to_owned()
        } else {
            format!("; not: {rules_missing}.")
        }
    );
    let _ = writeln!(
        out,
        "{questions} of {questions_total} open questions are met on a scenario where the policies differ{}",
        if questions_missing.is_empty() {
            ".".to_owned()
        } else {
            format!("; not: {questions_missing}.")
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn a_reference_names_an_id_as_a_word_of_its_own() {
        assert!(names("O7", "O7"));
        assert!(names("standards.md O7", "O7"));
        assert!(!names("O17", "O7"));
        assert!(!names("RFC 5321 §5.1", "D1"));
        assert!(names("R3", "R3"));
    }
}

//! `mxsim report`: the scenarios × policies matrix of `compare` as one self-contained HTML page
//! (no script or style from elsewhere, nothing fetched), with, for every cell, the trace of one
//! representative run, its timeline picture ([`timeline`]), its verdict lines and the command
//! that reproduces it. docs/report.md describes the page.
//!
//! The cells are the compare report's, built by the same machinery in the same pass: while a
//! cell's orders are explored and judged, the choices of its representative run are kept (the
//! first run with the cell's worst standing: a policy error, then a broken expectation, MUST or
//! claim, then the worst verdict, else the first run), and that run is made once more at the end
//! to keep its trace: runs are pure functions of their choices, so it is the same run.
//!
//! The page is a pure function of the report: no clock, no map iterated in hash order, so the
//! same inputs give the same bytes. Every text from a scenario or a policy file goes through
//! [`escape::html`]. Like the rest of the lab this module writes no file.

pub mod timeline;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use mxsim_model::escape;
use mxsim_model::rules::Grade;
use mxsim_model::scenario::Scenario;
use mxsim_model::trace::Trace;
use mxsim_sim::{Choices, Exploration, Observer, Prepared, Run, Runner};

use crate::compare::{self, Cell, Column, Report, Row};
use crate::judge::{self, Judge, order_argument};
use crate::spec::PolicySpec;

/// A trace longer than this many lines is cut in the page (the reproduce command prints it
/// whole); no shipped scenario comes near it.
pub const TRACE_LINES_MAX: usize = 3_000;

/// The report: the compare report, and for each of its cells the run the page shows.
#[derive(Clone, Debug)]
pub struct Page {
    /// The scenarios × policies report, as `compare` makes it.
    pub compare: Report,
    /// One entry per row of `compare`, one per column in each.
    pub shown: Vec<Vec<Shown>>,
}

/// The run a cell shows.
#[derive(Clone, Debug)]
pub struct Shown {
    /// How its orders were chosen: `seed 3`, `order [1,0]`, `the only order`.
    pub label: String,
    /// The `mxsim run` flags that make it again: `--seed 3`, `--order '[1,0]'`, or nothing.
    pub flags: String,
    /// Why this run: `the first run`, `the first run graded DEPARTS`, …
    pub why: String,
    /// Its trace.
    pub trace: Trace,
}

/// Runs every policy on every scenario, as `compare` does, keeping a representative run per
/// cell.
pub fn build(files: &[(PathBuf, Arc<Scenario>)], policies: &[PolicySpec]) -> Page {
    let names = policies.iter().map(|spec| spec.name().to_owned()).collect();
    build_with(files, names, &|| {
        policies
            .iter()
            .map(|spec| Column {
                name: spec.name().to_owned(),
                claims: spec.claims(),
                departures: spec.departures(),
                policy: spec.build(),
            })
            .collect()
    })
}

/// [`build`] with the columns `make_columns` builds (once per thread).
pub fn build_with(
    files: &[(PathBuf, Arc<Scenario>)],
    names: Vec<String>,
    make_columns: &(dyn Fn() -> Vec<Column> + Sync),
) -> Page {
    let n_columns = names.len();
    let done = compare::run_cells(files, n_columns, make_columns, &run_cell);
    let (cells, shown): (Vec<Cell>, Vec<Shown>) = done.into_iter().unzip();
    let mut shown = shown.into_iter();
    let shown = files
        .iter()
        .map(|_| shown.by_ref().take(n_columns).collect())
        .collect();
    Page {
        compare: compare::report(files, names, cells),
        shown,
    }
}

/// How bad a run was, for picking a cell's representative: a fault, then a failure, then the
/// worst grade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Standing {
    fault: bool,
    failing: bool,
    grade: Grade,
}

/// Judges every run and keeps the choices of the first run of the worst standing.
struct Keeper<'a> {
    judge: Judge<'a>,
    kept: Option<(Standing, Choices)>,
}

/// The counts a run can raise: faults, failing runs, and runs per grade.
fn counts(judge: &Judge) -> (usize, usize, [usize; 5]) {
    let verdict = &judge.verdict;
    let mut grades = [0; 5];
    for ((grade, _), tally) in &verdict.graded {
        grades[*grade as usize] += tally.runs;
    }
    (verdict.faulted, verdict.failing, grades)
}

impl Observer for Keeper<'_> {
    fn observe(&mut self, run: Run) {
        let choices = match &run.choices {
            Choices::Seed(seed) => Choices::Seed(*seed),
            Choices::Forced(_) => Choices::Forced(run.taken.clone()),
        };
        let before = counts(&self.judge);
        self.judge.observe(run);
        let after = counts(&self.judge);
        let grade = Grade::ALL
            .iter()
            .rev()
            .find(|grade| after.2[**grade as usize] > before.2[**grade as usize])
            .copied()
            .unwrap_or(Grade::Pass);
        let standing = Standing {
            fault: after.0 > before.0,
            failing: after.1 > before.1,
            grade,
        };
        if self.kept.as_ref().is_none_or(|(kept, _)| standing > *kept) {
            self.kept = Some((standing, choices));
        }
    }

    fn restart(&mut self) {
        self.judge.restart();
        self.kept = None;
    }
}

fn run_cell(runner: &Runner, prepared: &Arc<Prepared>, column: &Column) -> (Cell, Shown) {
    let scenario = &prepared.scenario;
    let expectation = scenario
        .expectations
        .iter()
        .find(|expectation| expectation.policy == column.name);
    let mut keeper = Keeper {
        judge: judge::judge_for(
            scenario,
            column.policy.as_ref(),
            expectation,
            &column.claims,
            &column.departures,
        ),
        kept: None,
    };
    let Exploration {
        exhaustive, cut, ..
    } = runner.explore(prepared, column.policy.as_ref(), &mut keeper);
    let mut verdict = keeper.judge.verdict;
    verdict.exhaustive = exhaustive;
    verdict.cut = cut;
    let cell = compare::cell(
        &column.name,
        &verdict,
        expectation.is_some() || !column.claims.is_empty(),
    );
    // An exploration makes at least one run.
    let (standing, choices) = keeper
        .kept
        .unwrap_or((Standing::default(), Choices::Forced(Vec::new())));
    let (label, flags) = match &choices {
        Choices::Seed(seed) => (format!("seed {seed}"), format!("--seed {seed}")),
        Choices::Forced(taken) if taken.is_empty() => ("the only order".to_owned(), String::new()),
        Choices::Forced(taken) => {
            let order = order_argument(taken);
            (
                format!("order {order}"),
                format!("--order {}", compare::shell_word(&order)),
            )
        }
    };
    let why = if standing.fault {
        "the first run that ended in a policy error".to_owned()
    } else if standing.failing {
        "the first run that broke an expectation, a MUST or a claim".to_owned()
    } else if standing.grade > Grade::Pass {
        format!("the first run graded {}", standing.grade.word())
    } else {
        "the first run".to_owned()
    };
    let run = runner.run(prepared, column.policy.as_ref(), choices);
    (
        cell,
        Shown {
            label,
            flags,
            why,
            trace: run.trace,
        },
    )
}

impl Default for Standing {
    fn default() -> Standing {
        Standing {
            fault: false,
            failing: false,
            grade: Grade::Pass,
        }
    }
}

/// The CSS class of a cell's verdict colour.
pub fn verdict_class(cell: &Cell) -> &'static str {
    match (cell.expect, cell.verdict) {
        ("error", _) => "v-error",
        ("broken", _) | (_, "FAIL") => "v-fail",
        (_, "NON-STRICT") => "v-nonstrict",
        (_, "DEPARTS") => "v-departs",
        (_, "INFO") => "v-info",
        _ => "v-pass",
    }
}

/// The colours and the words of the verdict classes, worst first, for the legend.
const VERDICTS: [(&str, &str, &str); 6] = [
    (
        "v-error",
        "error",
        "the policy panicked or broke its contract in some run",
    ),
    (
        "v-fail",
        "FAIL",
        "a MUST, a claimed rule or the scenario's expect: broken (✗)",
    ),
    ("v-nonstrict", "NON-STRICT", "a SHOULD broken"),
    (
        "v-departs",
        "DEPARTS",
        "a rule broken that the policy documents departing from",
    ),
    ("v-info", "INFO", "an open question of the standards met"),
    ("v-pass", "PASS", "no rule broken"),
];

const STYLE: &str = "\
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 16px 48px;color:#1d1d1f}
h1{font-size:22px;margin:16px 0 4px}
h2{font-size:17px;margin:24px 0 8px}
h3{font-size:14px;margin:16px 0 6px}
code,pre{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.meta{color:#555}
.chips span{display:inline-block;padding:1px 8px;margin:2px 4px 2px 0;border-radius:3px;border:1px solid #bbb}
.v-pass{background:#d9f2d9}
.v-info{background:#d8e8fb}
.v-departs{background:#eadcf8}
.v-nonstrict{background:#fde3bf}
.v-fail{background:#f7c6c6;font-weight:600}
.v-error{background:#3b3b3b;color:#fff}
.v-error a{color:#fff}
.wrap{overflow-x:auto;max-width:100%}
table.matrix{table-layout:fixed;width:100%;border-collapse:separate;border-spacing:1px;font-size:11px;line-height:1.25}
table.matrix th{background:#fff;font-weight:600;text-align:left}
table.matrix thead th{position:sticky;top:0;z-index:2;vertical-align:bottom}
table.matrix th.p{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;padding:4px 2px;max-height:150px}
table.matrix tbody th{position:sticky;left:0;z-index:1;padding:2px 6px 2px 2px;overflow-wrap:anywhere;font-weight:normal;border-left:4px solid transparent}
table.matrix tbody th a{color:#1d1d1f;text-decoration:none}
table.matrix tbody th small{color:#666}
table.matrix tr.differs th{border-left-color:#e0a100;background:#fff8e1}
table.matrix tr.differs th a::before{content:'\\2260  ';color:#b07800;font-weight:bold}
table.matrix td{padding:0;vertical-align:top;overflow-wrap:anywhere}
table.matrix td a{display:block;padding:2px 3px;color:inherit;text-decoration:none;min-height:100%}
table.matrix td a:hover{outline:2px solid #1a4f8b}
table.matrix td small{display:block;font-weight:normal;opacity:.8}
table.matrix td.odd{box-shadow:inset 0 0 0 2px #1d1d1f}
#onlydiff:checked~.wrap tr.same{display:none}
details.scn{border-top:1px solid #ddd;padding:4px 0}
details.scn>summary{cursor:pointer;font-weight:600;padding:4px 0}
details.scn>summary small{font-weight:normal;color:#555}
.grp{margin:8px 0 16px 12px;padding-left:10px;border-left:3px solid #ddd}
.cell{margin:6px 0;padding:6px 8px;border-radius:4px}
.cell p{margin:2px 0}
.cell ul{margin:2px 0;padding-left:20px}
.cell:target,.grp:target{outline:3px solid #1a4f8b}
code.cmd{display:inline-block;user-select:all;background:#fff;border:1px solid #bbb;padding:1px 6px;color:#1d1d1f;font-weight:normal}
pre.trace{background:#fafafa;border:1px solid #e3e3e3;padding:6px 8px;overflow-x:auto;max-height:480px}
.tlwrap{overflow-x:auto;border:1px solid #e3e3e3;margin:6px 0}
";

/// Opens the `<details>` around the cell a link or the address names (browsers that reveal
/// fragments in closed `<details>` do it themselves); the page works without it.
const SCRIPT: &str = "function reveal(){var e=document.getElementById(location.hash.slice(1));\
for(var p=e;p;p=p.parentElement){if(p.tagName==='DETAILS'){p.open=true;}}if(e){e.scrollIntoView();}}\
addEventListener('hashchange',reveal);reveal();";

/// Results (outcome, hosts, detail) and the span of connections.
type DifferenceKey = (Vec<judge::ResultKey>, (u64, u64));

/// The key by which cells of a row are compared: results and connections, as
/// [`compare::policies_differ`] compares them.
fn difference_key(cell: &Cell) -> DifferenceKey {
    (
        cell.results
            .iter()
            .map(|share| {
                (
                    share.outcome.clone(),
                    share.via.clone(),
                    share.detail.clone(),
                )
            })
            .collect(),
        (cell.connections.min, cell.connections.max),
    )
}

/// For a row where policies differ: which cells differ from the most common result (ties go to
/// the earliest column).
fn odd_cells(row: &Row) -> Vec<bool> {
    if !compare::policies_differ(row) {
        return vec![false; row.cells.len()];
    }
    let keys: Vec<_> = row.cells.iter().map(difference_key).collect();
    let mut counts: BTreeMap<&_, (usize, usize)> = BTreeMap::new();
    for (index, key) in keys.iter().enumerate() {
        counts.entry(key).or_insert((0, index)).0 += 1;
    }
    let common = counts
        .iter()
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
        .map(|(key, _)| (*key).clone());
    keys.iter()
        .map(|key| Some(key) != common.as_ref())
        .collect()
}

/// The cell's words in the matrix: results, then connections (attempts) and time, then the
/// verdict; each line escaped.
fn matrix_lines(cell: &Cell, queue: bool) -> (String, String, String) {
    if cell.expect == "error" {
        return ("error".to_owned(), String::new(), "policy error".to_owned());
    }
    let mut first = String::new();
    if cell.expect == "broken" {
        first.push_str("✗ ");
    }
    first.push_str(&compare::results_text(cell));
    let mut second = format!(
        "{}c",
        compare::span_text(cell.connections, |n| n.to_string())
    );
    if queue {
        let _ = write!(
            second,
            " · {}a",
            compare::span_text(cell.attempts, |n| n.to_string())
        );
    }
    let _ = write!(
        second,
        " · {}",
        compare::span_text(cell.time_ms, compare::duration)
    );
    (
        escape::html(&first),
        escape::html(&second),
        escape::html(&compare::verdict_text(cell)),
    )
}

/// How many runs a cell made, and how: `2 orders`, `256 sampled seeds`, or cut.
fn runs_words(cell: &Cell) -> String {
    let noun = match (cell.exhaustive, cell.runs) {
        (true, 1) => "order",
        (true, _) => "orders",
        (false, 1) => "sampled seed",
        (false, _) => "sampled seeds",
    };
    match &cell.cut {
        Some(cut) => format!("{} runs, {cut}", cell.runs),
        None => format!("{} {noun}", cell.runs),
    }
}

/// The page: a self-contained HTML document.
pub fn html(page: &Page) -> String {
    let report = &page.compare;
    let mut out = String::with_capacity(1 << 20);
    let n_cells: usize = report.scenarios.iter().map(|row| row.cells.len()).sum();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"mxsim {} (commit {})\">\n\
         <title>mxsim report: {} scenarios × {} policies</title>\n<style>\n{STYLE}{}</style>\n</head>\n<body>\n",
        escape::html(&report.mxsim.version),
        escape::html(&report.mxsim.commit),
        report.scenarios.len(),
        report.policies.len(),
        timeline::CSS,
    );
    // Header: what, how many, by which build; the policy files with their digests.
    let _ = writeln!(out, "<h1 id=\"top\">mxsim report</h1>");
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} scenarios × {} policies, {} cells, each explored over every \
         equal-preference order (or 256 sampled seeds). Made by mxsim {} (commit {}).</p>",
        report.scenarios.len(),
        report.policies.len(),
        n_cells,
        escape::html(&report.mxsim.version),
        escape::html(&report.mxsim.commit),
    );
    if !report.policy_files.is_empty() {
        out.push_str("<p class=\"meta\">Policy files:</p><ul class=\"meta\">");
        for file in &report.policy_files {
            let _ = write!(
                out,
                "<li><b>{}</b> from <code>{}</code>, <code>{}</code></li>",
                escape::html(&file.name),
                escape::html(&file.path),
                escape::html(&file.digest)
            );
        }
        out.push_str("</ul>\n");
    }
    // Summary: cells per verdict, scenarios where policies differ.
    let mut per_class: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &report.scenarios {
        for cell in &row.cells {
            *per_class.entry(verdict_class(cell)).or_default() += 1;
        }
    }
    let differing = report
        .scenarios
        .iter()
        .filter(|row| compare::policies_differ(row))
        .count();
    out.push_str("<h2>Verdicts</h2>\n<p class=\"chips\">");
    for (class, word, meaning) in VERDICTS {
        let _ = write!(
            out,
            "<span class=\"{class}\" title=\"{meaning}\">{word} {}</span>",
            per_class.get(class).copied().unwrap_or(0)
        );
    }
    out.push_str("</p>\n<ul class=\"meta\">");
    for (class, word, meaning) in VERDICTS {
        let _ = write!(
            out,
            "<li><span class=\"{class}\">&nbsp;{word}&nbsp;</span> {meaning}</li>"
        );
    }
    let _ = writeln!(
        out,
        "</ul>\n<p>The policies differ (in results or connections) on {differing} of {} \
         scenarios: their rows are marked <b>≠</b>, and in them the cells that differ from the \
         most common result are framed. A cell reads: results (hosts delivered through, share of \
         the orders), then connections (c), attempts (a, queue scenarios) and virtual time, then \
         the rules behind a verdict other than PASS. Click a cell for its trace, its timeline and \
         the command that reproduces it.</p>",
        report.scenarios.len()
    );

    // The matrix.
    out.push_str("<h2>Matrix</h2>\n");
    // A fixed layout: the scenario column 150 pixels wide, the policies sharing the rest, at
    // least 56 pixels each (16 policies fit in a 1,200-pixel window); the page scrolls beyond.
    let _ = write!(
        out,
        "<input type=\"checkbox\" id=\"onlydiff\"> <label for=\"onlydiff\">only the scenarios \
         where the policies differ</label>\n<div class=\"wrap\">\n<table class=\"matrix\" \
         style=\"min-width:{}px\">\n<colgroup><col style=\"width:150px\"></colgroup>\n\
         <thead><tr><th>scenario</th>",
        150 + 56 * report.policies.len()
    );
    for name in &report.policies {
        let _ = write!(out, "<th class=\"p\">{}</th>", escape::html(name));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (index, row) in report.scenarios.iter().enumerate() {
        let differs = compare::policies_differ(row);
        let odd = odd_cells(row);
        let _ = write!(
            out,
            "<tr id=\"m{index}\" class=\"{}\"><th><a href=\"#s{index}\" title=\"{}\">{}</a></th>",
            if differs { "differs" } else { "same" },
            escape::html(&row.title),
            escape::html(&row.label)
        );
        for (column, cell) in row.cells.iter().enumerate() {
            let (first, second, third) = matrix_lines(cell, row.queue);
            let _ = write!(
                out,
                "<td class=\"{}{}\"><a href=\"#c{index}-{column}\" title=\"{}: {}\">{first}<small>{second}</small>",
                verdict_class(cell),
                if odd[column] { " odd" } else { "" },
                escape::html(&cell.policy),
                escape::html(&compare::cell_text(cell, false, row.queue)),
            );
            if !third.is_empty() {
                let _ = write!(out, "<small>{third}</small>");
            }
            out.push_str("</a></td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");

    // The timeline legend, then a section per scenario.
    out.push_str("<h2>Runs</h2>\n<p>Each scenario below shows, for each cell, one run: the first run with the \
        cell's worst standing (a policy error, then a broken expectation, MUST or claim, then the worst verdict), \
        else the first run. Policies whose runs have the same trace share one timeline. The timeline has a lane \
        per address and one for the client; time runs left to right, a step per event, with a gap where virtual \
        time passes (labelled with how much, and the axis with the time reached).</p>\n<div class=\"tlwrap\">");
    out.push_str(&timeline::legend());
    out.push_str("</div>\n");
    for (index, (row, shown)) in report.scenarios.iter().zip(&page.shown).enumerate() {
        scenario_section(&mut out, report, index, row, shown);
    }
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}

/// One scenario's `<details>`: a group per distinct trace, with the cells that share it.
fn scenario_section(out: &mut String, report: &Report, index: usize, row: &Row, shown: &[Shown]) {
    let _ = writeln!(
        out,
        "<details class=\"scn\" id=\"s{index}\"><summary>{}{} <small>{}</small></summary>",
        if compare::policies_differ(row) {
            "≠ "
        } else {
            ""
        },
        escape::html(&row.label),
        escape::html(&row.title)
    );
    let _ = writeln!(
        out,
        "<p class=\"meta\"><code>{}</code>{} · <a href=\"#m{index}\">back to the matrix</a></p>",
        escape::html(&row.file),
        if row.queue {
            " · a queue scenario"
        } else {
            ""
        }
    );
    // Cells grouped by the text of their trace, groups in the order of their first column.
    let texts: Vec<String> = shown.iter().map(|shown| shown.trace.to_string()).collect();
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for column in 0..row.cells.len() {
        match groups
            .iter_mut()
            .find(|(first, _)| texts[*first] == texts[column])
        {
            Some((_, members)) => members.push(column),
            None => groups.push((column, vec![column])),
        }
    }
    for (group, (first, members)) in groups.iter().enumerate() {
        let names: Vec<String> = members
            .iter()
            .map(|column| escape::html(&row.cells[*column].policy))
            .collect();
        let _ = writeln!(
            out,
            "<div class=\"grp\" id=\"g{index}-{group}\"><h3>{}</h3>",
            names.join(", ")
        );
        for &column in members {
            cell_block(out, report, index, column, row, &shown[column]);
        }
        let trace = &shown[*first].trace;
        let _ = writeln!(
            out,
            "<div class=\"tlwrap\">{}</div>",
            timeline::svg(trace).trim_end()
        );
        let lines: Vec<&str> = texts[*first].lines().collect();
        let _ = write!(
            out,
            "<pre class=\"trace\" aria-label=\"trace, {} lines\">",
            lines.len()
        );
        for line in lines.iter().take(TRACE_LINES_MAX) {
            out.push_str(&escape::html(line));
            out.push('\n');
        }
        if lines.len() > TRACE_LINES_MAX {
            let _ = writeln!(
                out,
                "… {} more lines: the command above prints them all",
                lines.len() - TRACE_LINES_MAX
            );
        }
        out.push_str("</pre>\n</div>\n");
    }
    out.push_str("</details>\n");
}

/// One cell: its result, runs, verdict lines, problems, and the commands that reproduce it.
fn cell_block(
    out: &mut String,
    report: &Report,
    index: usize,
    column: usize,
    row: &Row,
    shown: &Shown,
) {
    let cell = &row.cells[column];
    let policy_argument = report
        .policy_files
        .iter()
        .find(|file| file.name == cell.policy)
        .map_or(cell.policy.as_str(), |file| file.path.as_str());
    let command = format!(
        "mxsim run {} --policy {}",
        compare::shell_word(&row.file),
        compare::shell_word(policy_argument)
    );
    let _ = write!(
        out,
        "<div class=\"cell {}\" id=\"c{index}-{column}\"><p><b>{}</b>: {} · {} · expect: {}</p>",
        verdict_class(cell),
        escape::html(&cell.policy),
        escape::html(&compare::cell_text(cell, false, row.queue)),
        escape::html(&runs_words(cell)),
        cell.expect,
    );
    let mut items = Vec::new();
    if let Some(error) = &cell.error {
        items.push(format!("ERROR {error}"));
    }
    items.extend(cell.problems.iter().cloned());
    for rule in &cell.verdicts {
        // FAIL lines are among the problems already.
        if rule.verdict != "FAIL" || !cell.problems.iter().any(|line| line == &rule.first) {
            items.push(format!("{} (in {} of the runs)", rule.first, rule.runs));
        }
    }
    if !items.is_empty() {
        out.push_str("<ul>");
        for item in items {
            let _ = write!(out, "<li>{}</li>", escape::html(&item));
        }
        out.push_str("</ul>");
    }
    let flags = if shown.flags.is_empty() {
        String::new()
    } else {
        format!(" {}", shown.flags)
    };
    let _ = writeln!(
        out,
        "<p>Shown: {} ({}). Reproduce: <code class=\"cmd\">{}{}</code> · every order: \
         <code class=\"cmd\">{} --all-orders</code></p></div>",
        escape::html(&shown.why),
        escape::html(&shown.label),
        escape::html(&command),
        escape::html(&flags),
        escape::html(&command),
    );
}

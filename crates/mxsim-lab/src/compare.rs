//! `mxsim compare`: scenarios × policies, every cell explored over every equal-preference order,
//! rendered as text for a terminal, Markdown for a mailing list, or JSON for tools
//! (docs/compare-json.md).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxsim_model::escape;
use mxsim_model::rules::{self, Departure, Grade};
use mxsim_model::scenario::Scenario;
use mxsim_model::world::Policy;
use mxsim_policy::settings::Claim;
use mxsim_sim::{Prepared, Runner, SimWorld};
use serde::Serialize;

pub use crate::judge::Span;
use crate::judge::{self, ResultKey, Verdict};
use crate::spec::PolicySpec;

/// Output formats of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A block per scenario for a terminal, every line within `width` terminal columns.
    Text {
        /// The terminal's width in columns (at least [`TEXT_WIDTH_MIN`] is used).
        width: usize,
    },
    /// A Markdown table for an issue or a mailing-list post.
    Markdown,
    /// A stable JSON document for tools (docs/compare-json.md).
    Json,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Schema name and version of this JSON document.
    pub schema: &'static str,
    /// The build of mxsim that made the report.
    pub mxsim: Build,
    /// Policy names, in column order.
    pub policies: Vec<String>,
    /// The policies given as files, in column order: what a reader needs to know which
    /// settings made a column.
    pub policy_files: Vec<PolicyFile>,
    /// Scenarios left out because every policy agreed on them (`--only-differences`).
    pub omitted_agreeing: usize,
    /// One row per scenario file.
    pub scenarios: Vec<Row>,
}

/// Which build of mxsim made a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Build {
    /// The version of the `mxsim` package.
    pub version: String,
    /// The commit it was built from (`git rev-parse --short HEAD`, with `-dirty` when the work
    /// tree had changes), or `unknown` when built without git.
    pub commit: String,
}

impl Default for Build {
    fn default() -> Build {
        Build {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            commit: "unknown".to_owned(),
        }
    }
}

/// A policy given by the path of its file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyFile {
    /// Its name (the column's).
    pub name: String,
    /// The path it was read from, as given.
    pub path: String,
    /// `sha256:` and the hex SHA-256 of its resolved settings in their canonical form (what
    /// `mxsim policies FILE` prints): the same settings give the same digest, whatever the
    /// file's comments, key order or `extends`, within one version of mxsim.
    pub digest: String,
}

/// One scenario file.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The file, as given or found.
    pub file: String,
    /// A short label: the path below `scenarios/`, without `.yaml`.
    pub label: String,
    /// True for a queue scenario (`messages:`): cells then show attempts.
    pub queue: bool,
    /// The scenario's title.
    pub title: String,
    /// One cell per policy, in column order.
    pub cells: Vec<Cell>,
}

/// One policy on one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    /// The policy.
    pub policy: String,
    /// Runs made.
    pub runs: usize,
    /// True when every equal-preference order was enumerated; false when seeds were sampled.
    pub exhaustive: bool,
    /// Why the exploration stopped early, when its work budget did.
    pub cut: Option<String>,
    /// Distinct results with their share of the runs, most frequent first.
    pub results: Vec<Share>,
    /// Connection attempts per run.
    pub connections: Span,
    /// Virtual time of the last outcome, in milliseconds.
    pub time_ms: Span,
    /// Delivery attempts per run: one per message in a single pass; in a queue scenario, every
    /// retry counts.
    pub attempts: Span,
    /// The attempts of the first run that ended well, in the order they began.
    pub attempt_detail: Vec<AttemptDetail>,
    /// DSNs sent to senders per run: failure notices and delay warnings.
    pub dsns: Span,
    /// `holds`, `broken`, `error` (the policy panicked or broke its contract in some run), or
    /// `none` (the scenario has no `expect:` for this policy and the policy claims no invariant).
    pub expect: &'static str,
    /// Runs that broke the expectation or a claim.
    pub failing_runs: usize,
    /// What broke in the first failing run, each line prefixed by that run's order.
    pub problems: Vec<String>,
    /// For `error`: the policy's fault, prefixed by the order of the first run that showed it.
    pub error: Option<String>,
    /// The worst verdict over the runs: `PASS`, `INFO`, `DEPARTS`, `NON-STRICT` or `FAIL`.
    pub verdict: &'static str,
    /// Every rule behind a verdict other than PASS, worst first.
    pub verdicts: Vec<RuleVerdict>,
}

/// One rule broken (or one open question met) in some run of a cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleVerdict {
    /// `FAIL`, `NON-STRICT`, `DEPARTS` or `INFO`.
    pub verdict: &'static str,
    /// The rule's id (`mxsim rules`).
    pub rule: &'static str,
    /// Its level: `MUST`, `SHOULD`, `MAY`, `POLICY`.
    pub level: &'static str,
    /// Runs that broke it.
    pub runs: usize,
    /// The verdict line of the first such run, prefixed by its order.
    pub first: String,
}

/// One delivery attempt of the first run of a cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptDetail {
    /// Message index.
    pub message: u32,
    /// Attempt number, 1 for the first.
    pub attempt: u32,
    /// When it began, in milliseconds of virtual time.
    pub started_ms: u64,
    /// When it ended.
    pub ended_ms: u64,
    /// Recipients it delivered.
    pub delivered: u32,
    /// Recipients it bounced.
    pub bounced: u32,
    /// Recipients it deferred.
    pub deferred: u32,
}

/// One distinct result.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Share {
    /// `delivered`, `bounced`, `deferred`, or `mixed` when recipients differ.
    pub outcome: String,
    /// Host names the message was delivered through (empty unless something was delivered).
    pub via: Vec<String>,
    /// For `mixed`: how many recipients had each outcome, e.g. `1 delivered, 1 bounced`.
    pub detail: Option<String>,
    /// Runs with this result.
    pub runs: usize,
    /// Share of the runs, in whole percent.
    pub percent: u32,
}

/// One column of a comparison: a policy ready to run, with the name `expect:` uses and the
/// claims it is judged by.
pub struct Column {
    /// The policy's name.
    pub name: String,
    /// The invariants it claims.
    pub claims: Vec<Claim>,
    /// The rules it documents that it departs from.
    pub departures: Vec<Departure>,
    /// The policy.
    pub policy: Box<dyn Policy<SimWorld>>,
}

/// Runs every policy on every scenario, scenarios spread over the machine's cores.
pub fn build(files: &[(PathBuf, Arc<Scenario>)], policies: &[PolicySpec]) -> Report {
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

/// Runs the columns `make_columns` builds (once per thread: policies are not `Send`) on every
/// scenario. A policy that panics or breaks its contract gets an `error` cell; the other cells
/// and scenarios go on.
pub fn build_with(
    files: &[(PathBuf, Arc<Scenario>)],
    names: Vec<String>,
    make_columns: &(dyn Fn() -> Vec<Column> + Sync),
) -> Report {
    let cells = run_cells(files, names.len(), make_columns, &run_cell);
    report(files, names, cells)
}

/// Calls `each` on every cell (one scenario × one column), spread over the machine's cores, and
/// returns what it made in order: row by row, column by column.
pub(crate) fn run_cells<T: Send>(
    files: &[(PathBuf, Arc<Scenario>)],
    n_columns: usize,
    make_columns: &(dyn Fn() -> Vec<Column> + Sync),
    each: &(dyn Fn(&Runner, &Arc<Prepared>, &Column) -> T + Sync),
) -> Vec<T> {
    // The work is split by cell, not by scenario: one scenario can hold most of the runs. Each
    // thread takes the next cell from a shared counter; a cell is a pure function of its
    // scenario and policy, so which thread ran it changes nothing, and cells are put back in
    // order: the output is the same on one core or many.
    //
    // The cells are taken costliest first (longest processing time first), so that one heavy
    // cell does not start last and run alone on one core while the others idle. The cost is
    // estimated from each cell's first run (its events, times the runs its exploration will
    // make), made on every core before the cells themselves.
    let n_cells = files.len() * n_columns;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(n_cells.max(1));
    let prepared: Vec<Arc<Prepared>> = files
        .iter()
        .map(|(_, scenario)| Arc::new(Prepared::new(scenario.clone())))
        .collect();
    let in_order: Vec<usize> = (0..n_cells).collect();
    let estimates = on_cores(
        threads,
        &in_order,
        n_columns,
        &prepared,
        make_columns,
        &estimate,
    );
    let mut costliest_first = in_order;
    costliest_first.sort_by_key(|&index| (std::cmp::Reverse(estimates[index]), index));
    on_cores(
        threads,
        &costliest_first,
        n_columns,
        &prepared,
        make_columns,
        each,
    )
}

/// Runs `work` on every cell of `schedule` (indices into files × columns), taken in that order
/// by `threads` threads from a shared counter, each with its own runner and columns; returns the
/// results by cell index.
fn on_cores<T: Send>(
    threads: usize,
    schedule: &[usize],
    n_columns: usize,
    prepared: &[Arc<Prepared>],
    make_columns: &(dyn Fn() -> Vec<Column> + Sync),
    work: &(dyn Fn(&Runner, &Arc<Prepared>, &Column) -> T + Sync),
) -> Vec<T> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<T>> = std::iter::repeat_with(|| None)
        .take(schedule.len())
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let next = &next;
                scope.spawn(move || {
                    let runner = Runner::new();
                    let columns = make_columns();
                    let mut done = Vec::new();
                    // Bounded by the number of cells: each position is taken once.
                    loop {
                        let position = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&index) = schedule.get(position) else {
                            break;
                        };
                        let (file, column) = (index / n_columns, index % n_columns);
                        done.push((index, work(&runner, &prepared[file], &columns[column])));
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            for (index, result) in handle
                .join()
                .expect("a compare thread panicked: a bug in mxsim")
            {
                results[index] = Some(result);
            }
        }
    });
    results
        .into_iter()
        .map(|result| result.expect("every cell is computed"))
        .collect()
}

/// What a cell is expected to cost, for scheduling only: the events of its first run times the
/// runs its exploration makes (every order up to the enumeration bound, else the sampled seeds).
fn estimate(runner: &Runner, prepared: &Arc<Prepared>, column: &Column) -> u64 {
    let first = runner.run(
        prepared,
        column.policy.as_ref(),
        mxsim_sim::Choices::Forced(Vec::new()),
    );
    let orders = first
        .arities
        .iter()
        .try_fold(1u64, |product, &arity| product.checked_mul(arity))
        .filter(|&orders| orders <= mxsim_sim::runner::ORDERS_EXHAUSTIVE_MAX as u64)
        .unwrap_or(mxsim_sim::runner::ORDERS_SAMPLED);
    orders.saturating_mul(first.trace.events.len() as u64 + 1)
}

/// The report of `cells`, row by row, column by column.
pub(crate) fn report(
    files: &[(PathBuf, Arc<Scenario>)],
    names: Vec<String>,
    cells: Vec<Cell>,
) -> Report {
    let n_columns = names.len();
    let mut cells = cells.into_iter();
    Report {
        schema: "mxsim-compare/1",
        mxsim: Build::default(),
        policies: names,
        policy_files: Vec::new(),
        omitted_agreeing: 0,
        scenarios: files
            .iter()
            .map(|(path, scenario)| Row {
                file: path.display().to_string(),
                label: label(path),
                queue: scenario.queue,
                title: scenario.title.clone(),
                cells: cells.by_ref().take(n_columns).collect(),
            })
            .collect(),
    }
}

fn run_cell(runner: &Runner, prepared: &Arc<Prepared>, column: &Column) -> Cell {
    let scenario = &prepared.scenario;
    let expectation = scenario
        .expectations
        .iter()
        .find(|expectation| expectation.policy == column.name);
    let verdict = judge::explore(
        runner,
        prepared,
        column.policy.as_ref(),
        expectation,
        &column.claims,
        &column.departures,
    );
    cell(
        &column.name,
        &verdict,
        expectation.is_some() || !column.claims.is_empty(),
    )
}

/// The path below the last `scenarios` folder, without `.yaml`; the whole path otherwise.
fn label(path: &Path) -> String {
    let without = path.with_extension("");
    let components: Vec<_> = without.components().collect();
    match components
        .iter()
        .rposition(|component| component.as_os_str() == "scenarios")
    {
        Some(index) if index + 1 < components.len() => components[index + 1..]
            .iter()
            .collect::<PathBuf>()
            .display()
            .to_string(),
        _ => without.display().to_string(),
    }
}

/// A cell from a verdict; `judged` says whether there was anything to hold.
pub(crate) fn cell(policy: &str, verdict: &Verdict, judged: bool) -> Cell {
    let expect = if verdict.first_fault.is_some() {
        "error"
    } else if !judged {
        "none"
    } else if verdict.broken() {
        "broken"
    } else {
        "holds"
    };
    let problems = verdict
        .first_failure
        .iter()
        .flat_map(|(label, problems)| {
            problems
                .iter()
                .map(move |problem| format!("{label}: {problem}"))
        })
        .collect();
    Cell {
        policy: policy.to_owned(),
        runs: verdict.runs,
        exhaustive: verdict.exhaustive,
        cut: verdict.cut.map(|cut| cut.to_string()),
        results: shares(&verdict.results, verdict.runs - verdict.faulted),
        connections: verdict.connections.unwrap_or_default(),
        time_ms: verdict.time_ms.unwrap_or_default(),
        attempts: verdict.attempts.unwrap_or_default(),
        dsns: verdict.dsns.unwrap_or_default(),
        attempt_detail: verdict
            .first_attempts
            .iter()
            .map(|attempt| AttemptDetail {
                message: attempt.id.message,
                attempt: attempt.id.number,
                started_ms: attempt.started.0,
                ended_ms: attempt.ended.0,
                delivered: attempt.delivered,
                bounced: attempt.bounced,
                deferred: attempt.deferred,
            })
            .collect(),
        expect,
        failing_runs: verdict.failing,
        problems,
        error: verdict
            .first_fault
            .as_ref()
            .map(|(label, fault)| format!("{label}: {fault}")),
        verdict: verdict.grade().word(),
        verdicts: verdict
            .graded
            .iter()
            .rev()
            .map(|((grade, rule), tally)| RuleVerdict {
                verdict: grade.word(),
                rule,
                level: tally.level.word(),
                runs: tally.runs,
                first: format!("{}: {}", tally.first.0, tally.first.1),
            })
            .collect(),
    }
}

/// A cell's verdict in a few words: empty for PASS, else the worst verdict and the rules behind
/// every verdict other than PASS, worst first: `FAIL D1 · DEPARTS S1`.
pub fn verdict_text(cell: &Cell) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for rule in &cell.verdicts {
        match groups.iter_mut().find(|(word, _)| *word == rule.verdict) {
            Some((_, rules)) => rules.push(rule.rule),
            None => groups.push((rule.verdict, vec![rule.rule])),
        }
    }
    groups
        .iter()
        .map(|(word, rules)| format!("{word} {}", rules.join(",")))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn shares(counts: &BTreeMap<ResultKey, usize>, total: usize) -> Vec<Share> {
    let total = total.max(1);
    let mut shares: Vec<Share> = counts
        .iter()
        .map(|((outcome, via, detail), &count)| Share {
            outcome: outcome.clone(),
            via: via.clone(),
            detail: detail.clone(),
            runs: count,
            percent: (count * 100 / total) as u32,
        })
        .collect();
    shares.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.cmp(b)));
    // Largest remainder: hand the points lost to rounding down to the shares that lost the most,
    // so the percentages of a cell add up to exactly 100.
    if !shares.is_empty() {
        let missing = 100 - shares.iter().map(|share| share.percent).sum::<u32>();
        let mut by_remainder: Vec<usize> = (0..shares.len()).collect();
        by_remainder.sort_by_key(|&index| std::cmp::Reverse(shares[index].runs * 100 % total));
        for &index in by_remainder.iter().take(missing as usize) {
            shares[index].percent += 1;
        }
    }
    shares
}

/// The first label of a host name: `smtp1` for `smtp1.foo.example`.
/// `host` as a cell shows it: its first label when no other host of the cell shares it.
fn shown<'h>(host: &'h str, cell_hosts: &[&str]) -> &'h str {
    let first = short(host);
    let clash = cell_hosts
        .iter()
        .any(|other| *other != host && short(other) == first);
    if clash { host } else { first }
}

fn short(host: &str) -> &str {
    match host.parse::<std::net::IpAddr>() {
        Ok(_) => host,
        Err(_) => host.split('.').next().unwrap_or(host),
    }
}

pub(crate) fn duration(milliseconds: u64) -> String {
    mxsim_model::time::Duration(milliseconds).to_string()
}

pub(crate) fn span_text(span: Span, render: impl Fn(u64) -> String) -> String {
    if span.min == span.max {
        render(span.min)
    } else {
        format!("{}–{}", render(span.min), render(span.max))
    }
}

/// A cell as words: `delivered smtp1 50% smtp2 50% · 1 conn · 0s`; `compact` shortens for
/// Markdown (`1c`, no zero time). A queue scenario's cell also counts attempts (`· 3 att`, `3a`).
pub fn cell_text(cell: &Cell, compact: bool, queue: bool) -> String {
    let mut text = String::new();
    if cell.expect == "error" {
        return "error (see below)".to_owned();
    }
    if cell.expect == "broken" {
        text.push_str("✗ ");
    }
    text.push_str(&results_text(cell));
    let connections = span_text(cell.connections, |n| n.to_string());
    let attempts = span_text(cell.attempts, |n| n.to_string());
    if compact {
        let _ = write!(text, " · {connections}c");
        if queue {
            let _ = write!(text, " · {attempts}a");
        }
        if cell.time_ms.max > 0 {
            let _ = write!(text, " · {}", span_text(cell.time_ms, duration));
        }
    } else {
        let _ = write!(text, " · {connections} conn");
        if queue {
            let _ = write!(text, " · {attempts} att");
        }
        let _ = write!(text, " · {}", span_text(cell.time_ms, duration));
    }
    let verdict = verdict_text(cell);
    if !verdict.is_empty() {
        let _ = write!(text, " · {verdict}");
    }
    text
}

/// The results of a cell: `delivered: smtp1 50%, smtp2 50%`, or `bounced`.
pub(crate) fn results_text(cell: &Cell) -> String {
    let mut text = String::new();
    // Host names are shortened to their first label only when that stays unambiguous in the cell.
    let names: Vec<&str> = cell
        .results
        .iter()
        .flat_map(|share| share.via.iter().map(String::as_str))
        .collect();
    // Group the results by outcome: `delivered: smtp1 50%, smtp2 50%; bounced 25%`.
    let mut groups: Vec<(String, Vec<(String, u32)>)> = Vec::new();
    for share in &cell.results {
        let head = match &share.detail {
            Some(detail) => format!("{} ({detail})", share.outcome),
            None => share.outcome.clone(),
        };
        let via = share
            .via
            .iter()
            .map(|host| shown(host, &names))
            .collect::<Vec<_>>()
            .join("+");
        match groups.iter_mut().find(|(existing, _)| *existing == head) {
            Some((_, items)) => items.push((via, share.percent)),
            None => groups.push((head, vec![(via, share.percent)])),
        }
    }
    let single = groups.len() == 1 && groups[0].1.len() == 1;
    for (index, (head, items)) in groups.iter().enumerate() {
        if index > 0 {
            text.push_str("; ");
        }
        text.push_str(head);
        if single {
            if !items[0].0.is_empty() {
                let _ = write!(text, " {}", items[0].0);
            }
            continue;
        }
        let parts: Vec<String> = items
            .iter()
            .map(|(via, percent)| {
                // A result that happened but rounds to 0% still shows.
                let percent = if *percent == 0 {
                    "<1".to_owned()
                } else {
                    percent.to_string()
                };
                if via.is_empty() {
                    format!("{percent}%")
                } else {
                    format!("{via} {percent}%")
                }
            })
            .collect();
        let separator = if items.iter().any(|(via, _)| !via.is_empty()) {
            ": "
        } else {
            " "
        };
        let _ = write!(text, "{separator}{}", parts.join(", "));
    }
    text
}

/// Renders the report.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(report).expect("the report is plain data");
            text.push('\n');
            text
        }
        Format::Text { width } => render_text(report, width),
        Format::Markdown => render_markdown(report),
    }
}

/// The narrowest text layout: below it, a terminal is treated as this wide.
pub const TEXT_WIDTH_MIN: usize = 40;

/// True when the cells of `row` do not all have the same results (outcome, hosts delivered
/// through, the mix of outcomes) and connection counts.
pub fn policies_differ(row: &Row) -> bool {
    let key = |cell: &Cell| {
        let results: Vec<_> = cell
            .results
            .iter()
            .map(|share| {
                (
                    share.outcome.clone(),
                    share.via.clone(),
                    share.detail.clone(),
                )
            })
            .collect();
        (results, cell.connections)
    };
    let mut keys = row.cells.iter().map(key);
    let Some(first) = keys.next() else {
        return false;
    };
    keys.any(|other| other != first)
}

/// True when some cell of `row` breaks its expectation or ends in a policy error.
fn has_problem(row: &Row) -> bool {
    row.cells
        .iter()
        .any(|cell| matches!(cell.expect, "broken" | "error"))
}

/// `--only-differences`: keeps the scenarios where the policies differ ([`policies_differ`])
/// and those with a broken or error cell, and counts the others in `omitted_agreeing`.
pub fn only_differences(report: &mut Report) {
    let before = report.scenarios.len();
    report
        .scenarios
        .retain(|row| policies_differ(row) || has_problem(row));
    report.omitted_agreeing += before - report.scenarios.len();
}

/// The width of `text` in terminal columns (a CJK character takes two).
pub fn columns(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// `text` cut into lines of at most `width` terminal columns at spaces, the first line
/// starting with `first`, the others with `rest`; a word longer than a line is cut where the
/// line ends. Text is shown as given: callers escape it first.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = first.to_owned();
    let mut fresh = true;
    for word in text.split(' ').filter(|word| !word.is_empty()) {
        let needed = columns(word) + usize::from(!fresh);
        if !fresh && columns(&line) + needed > width {
            lines.push(std::mem::replace(&mut line, rest.to_owned()));
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        // A word too long for any line is cut at the line's end, character by character.
        for c in word.chars() {
            let c_width = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if columns(&line) + c_width > width && columns(&line) > columns(rest) {
                lines.push(std::mem::replace(&mut line, rest.to_owned()));
            }
            line.push(c);
        }
        fresh = false;
    }
    lines.push(line);
    lines
}

/// Every line of `text` wrapped to `width`: a line indented by n spaces goes on indented by
/// n + 2, so items of a list stay apart.
fn wrap_lines(text: &str, width: usize) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let first = " ".repeat(indent);
        let rest = if indent == 0 {
            String::new()
        } else {
            " ".repeat(indent + 2)
        };
        for piece in wrap(line.trim_start_matches(' '), width, &first, &rest) {
            out.push_str(piece.trim_end());
            out.push('\n');
        }
    }
    out
}

/// Text: a block per scenario, its label and title, then each distinct cell once, after the
/// policies that share it (`every policy:` when all agree), every line within `width`
/// terminal columns; then the legend and the next useful command. The layout does not depend
/// on how many policies there are, nor on the words of a cell.
fn render_text(report: &Report, width: usize) -> String {
    let width = width.max(TEXT_WIDTH_MIN);
    let mut out = String::new();
    for row in &report.scenarios {
        let heading = format!("{}: {}", terminal(&row.label), terminal(&row.title));
        for line in wrap(&heading, width, "", "    ") {
            let _ = writeln!(out, "{}", line.trim_end());
        }
        // Distinct cells, in the order of their first policy.
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for cell in &row.cells {
            let text = terminal(&cell_text(cell, false, row.queue));
            let name = terminal(&cell.policy);
            match groups.iter_mut().find(|(existing, _)| *existing == text) {
                Some((_, names)) => names.push(name),
                None => groups.push((text, vec![name])),
            }
        }
        for (text, names) in &groups {
            let head = if groups.len() == 1 && names.len() > 1 {
                "every policy:".to_owned()
            } else {
                format!("{}:", names.join(", "))
            };
            let mut lines = wrap(&head, width, "  ", "  ");
            let last = lines.last_mut().expect("wrap gives a line");
            if columns(last) + 1 + columns(text) <= width {
                last.push(' ');
                last.push_str(text);
            } else {
                lines.extend(wrap(text, width, "      ", "        "));
            }
            for line in lines {
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
    }
    if report.scenarios.is_empty() {
        let _ = match report.omitted_agreeing {
            1 => writeln!(out, "Every policy agrees on the one scenario."),
            n => writeln!(out, "Every policy agrees on all {n} scenarios."),
        };
    } else if report.omitted_agreeing > 0 {
        let _ = writeln!(
            out,
            "\n{} scenario{} where every policy agrees {} left out.",
            report.omitted_agreeing,
            if report.omitted_agreeing == 1 {
                ""
            } else {
                "s"
            },
            if report.omitted_agreeing == 1 {
                "is"
            } else {
                "are"
            }
        );
    }
    out.push('\n');
    out.push_str(&wrap_lines(&legend(report, Layout::Text), width));
    out.push('\n');
    out.push_str(&wrap_lines(&next_steps(report), width));
    out
}

/// A path or name for a shell command line: quoted when it holds anything but plain
/// characters.
pub(crate) fn shell_word(text: &str) -> String {
    let text = terminal(text);
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@=,".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// What to run next: the trace behind the first problem, or behind the first difference, and
/// the flags that narrow or share the report.
fn next_steps(report: &Report) -> String {
    let mut out = String::from("Next:\n");
    let problem = report.scenarios.iter().find_map(|row| {
        let cell = row
            .cells
            .iter()
            .find(|cell| matches!(cell.expect, "broken" | "error"))?;
        Some((row, cell))
    });
    if let Some((row, cell)) = problem {
        let _ = writeln!(
            out,
            "  Every order of the first broken cell:\n    mxsim run {} --policy {} --all-orders",
            shell_word(&row.file),
            shell_word(&cell.policy)
        );
    } else if let Some(row) = report.scenarios.iter().find(|row| policies_differ(row)) {
        // The first policy whose cell differs from the first column's.
        let first = cell_text(&row.cells[0], false, row.queue);
        let other = row
            .cells
            .iter()
            .find(|cell| cell_text(cell, false, row.queue) != first)
            .unwrap_or(&row.cells[0]);
        let _ = writeln!(
            out,
            "  The trace behind the first difference ({}):\n    mxsim run {} --policy {}",
            terminal(&row.label),
            shell_word(&row.file),
            shell_word(&other.policy)
        );
    }
    if report.omitted_agreeing == 0
        && report.scenarios.iter().any(|row| !policies_differ(row))
        && report.policies.len() > 1
    {
        let _ = writeln!(
            out,
            "  Only the scenarios where the policies differ: add --only-differences"
        );
    }
    let _ = writeln!(
        out,
        "  A report to post (72 columns): add --format markdown; for tools: --format json"
    );
    out
}

/// Width a Markdown post should fit in (plain-text mail).
const MARKDOWN_WIDTH: usize = 72;

/// Markdown: the scenarios × policies matrix when it fits in 72 columns, else one small table
/// per scenario with the policies as rows. Columns are padded so the raw text reads as a table.
fn render_markdown(report: &Report) -> String {
    let mut header = vec!["scenario".to_owned()];
    header.extend(report.policies.iter().map(|name| escape::markdown(name)));
    let mut rows = vec![header];
    for row in &report.scenarios {
        let mut cells = vec![escape::markdown(&row.label)];
        cells.extend(
            row.cells
                .iter()
                .map(|cell| escape::markdown(&cell_text(cell, true, row.queue))),
        );
        rows.push(cells);
    }
    let mut out = String::new();
    let fits = table_width(&rows) <= MARKDOWN_WIDTH;
    if fits {
        push_table(&mut out, &rows);
        out.push('\n');
        for row in &report.scenarios {
            let item = format!(
                "{}: {}",
                escape::markdown(&row.label),
                escape::markdown(&row.title)
            );
            for line in wrap(&item, MARKDOWN_WIDTH, "- ", "  ") {
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
    } else {
        for row in &report.scenarios {
            let heading = format!(
                "**{}**: {}",
                escape::markdown(&row.label),
                escape::markdown(&row.title)
            );
            for line in wrap(&heading, MARKDOWN_WIDTH, "", "") {
                let _ = writeln!(out, "{}", line.trim_end());
            }
            out.push('\n');
            let mut header = vec![
                "policy".to_owned(),
                "result".to_owned(),
                "conn".to_owned(),
                "time".to_owned(),
            ];
            if row.queue {
                header.insert(3, "att".to_owned());
            }
            // A verdict goes after the result, or on a row of its own when that is too wide.
            let block = |split: bool| {
                let mut table = vec![header.clone()];
                for cell in &row.cells {
                    let mut result = match cell.expect {
                        "broken" => "✗ ".to_owned(),
                        "error" => "error (see below)".to_owned(),
                        _ => String::new(),
                    };
                    let mut verdict = String::new();
                    if cell.expect != "error" {
                        result.push_str(&results_text(cell));
                        verdict = verdict_text(cell);
                        if !verdict.is_empty() && !split {
                            let _ = write!(result, " · {verdict}");
                            verdict.clear();
                        }
                    }
                    let mut line = vec![
                        escape::markdown(&cell.policy),
                        escape::markdown(&result),
                        span_text(cell.connections, |n| n.to_string()),
                        span_text(cell.time_ms, duration),
                    ];
                    if row.queue {
                        line.insert(3, span_text(cell.attempts, |n| n.to_string()));
                    }
                    let columns = line.len();
                    table.push(line);
                    if !verdict.is_empty() {
                        let mut below = vec![String::new(); columns];
                        below[1] = escape::markdown(&format!("· {verdict}"));
                        table.push(below);
                    }
                }
                table
            };
            let mut table = block(false);
            if table_width(&table) > MARKDOWN_WIDTH {
                table = block(true);
            }
            if table_width(&table) > MARKDOWN_WIDTH {
                table = wrap_result_column(&table);
            }
            push_table(&mut out, &table);
            out.push('\n');
        }
    }
    if fits {
        out.push('\n');
    }
    let legend = legend(report, if fits { Layout::Matrix } else { Layout::Blocks });
    out.push_str(&wrap_lines(&legend, MARKDOWN_WIDTH));
    out.push('\n');
    out.push_str(&wrap_lines(&identity(report), MARKDOWN_WIDTH));
    out
}

/// Which build and which policy files made the report, for a reader of a post.
fn identity(report: &Report) -> String {
    let mut out = format!(
        "Made by mxsim {} (commit {}).\n",
        escape::markdown(&report.mxsim.version),
        escape::markdown(&report.mxsim.commit)
    );
    if report.omitted_agreeing > 0 {
        let _ = writeln!(
            out,
            "Left out (--only-differences): {} scenario{} where every policy agrees.",
            report.omitted_agreeing,
            if report.omitted_agreeing == 1 {
                ""
            } else {
                "s"
            }
        );
    }
    if !report.policy_files.is_empty() {
        out.push_str("Policies given as files, with the SHA-256 of their resolved settings:\n");
        for file in &report.policy_files {
            // The bare hex fits a 72-column line of its own.
            let _ = writeln!(
                out,
                "  {} from {}: {}",
                escape::markdown(&file.name),
                escape::markdown(&file.path),
                file.digest.trim_start_matches("sha256:")
            );
        }
    }
    out
}

/// A block table whose result column (the second) is cut at spaces into rows of their own, so
/// the table fits [`MARKDOWN_WIDTH`] whatever a result says; the other cells of a continuation
/// row are empty.
fn wrap_result_column(table: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut widths = column_widths(table);
    widths[1] = 0;
    let others = widths.iter().map(|width| width + 3).sum::<usize>() + 1;
    let budget = MARKDOWN_WIDTH.saturating_sub(others).max(16);
    let mut wrapped = Vec::with_capacity(table.len());
    for (index, row) in table.iter().enumerate() {
        if index == 0 {
            wrapped.push(row.clone());
            continue;
        }
        for (piece, text) in wrap(&row[1], budget, "", "").into_iter().enumerate() {
            let mut line = if piece == 0 {
                row.clone()
            } else {
                vec![String::new(); row.len()]
            };
            line[1] = text.trim_end().to_owned();
            wrapped.push(line);
        }
    }
    wrapped
}

/// The width of each column: its longest cell, in characters.
fn column_widths(rows: &[Vec<String>]) -> Vec<usize> {
    let columns = rows.first().map_or(0, Vec::len);
    (0..columns)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// The cells of a row, each padded to its column's width.
fn padded(row: &[String], widths: &[usize]) -> Vec<String> {
    row.iter()
        .zip(widths)
        .map(|(cell, width)| format!("{cell:<width$}"))
        .collect()
}

/// The width of a Markdown table: `| a | b |`.
fn table_width(rows: &[Vec<String>]) -> usize {
    column_widths(rows)
        .iter()
        .map(|width| width + 3)
        .sum::<usize>()
        + 1
}

fn push_table(out: &mut String, rows: &[Vec<String>]) {
    let widths = column_widths(rows);
    for (index, row) in rows.iter().enumerate() {
        let _ = writeln!(out, "| {} |", padded(row, &widths).join(" | "));
        if index == 0 {
            let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
            let _ = writeln!(out, "|-{}-|", rule.join("-|-"));
        }
    }
}

/// Which layout a legend explains.
#[derive(Clone, Copy)]
enum Layout {
    Text,
    Matrix,
    Blocks,
}

/// Text from input files for a terminal.
fn terminal(text: &str) -> String {
    escape::terminal(text).into_owned()
}

/// One legend line, `scenario × policy: text`, for each cell `text` picks.
fn cell_lines(
    report: &Report,
    shown: fn(&str) -> String,
    text: impl Fn(&Cell) -> Option<String>,
) -> Vec<String> {
    report
        .scenarios
        .iter()
        .flat_map(|row| row.cells.iter().map(move |cell| (row, cell)))
        .filter_map(|(row, cell)| {
            let text = text(cell)?;
            Some(format!(
                "{} × {}: {text}",
                shown(&row.label),
                shown(&cell.policy)
            ))
        })
        .collect()
}

fn legend(report: &Report, layout: Layout) -> String {
    let shown: fn(&str) -> String = match layout {
        Layout::Text => terminal,
        Layout::Matrix | Layout::Blocks => escape::markdown,
    };
    let errors = cell_lines(report, shown, |cell| cell.error.as_deref().map(shown));
    let cut = cell_lines(report, shown, |cell| {
        let cut = cell.cut.as_ref()?;
        let noun = if cell.runs == 1 { "run" } else { "runs" };
        Some(format!("{} {noun}, {cut}", cell.runs))
    });
    let broken = cell_lines(report, shown, |cell| {
        (cell.expect == "broken").then(|| shown(cell.problems.first().map_or("", String::as_str)))
    });
    // A cell the work budget cut is listed below, not counted as sampling 256 seeds.
    let sampled = report.scenarios.iter().any(|row| {
        row.cells
            .iter()
            .any(|cell| !cell.exhaustive && cell.cut.is_none())
    });
    let mut out = String::from(match layout {
        Layout::Text => {
            "Each scenario: its label and title, then the policies that share a result, and the result: outcome, the host it went through (with the share of equal-preference orders when they differ), connection attempts, virtual time of the last outcome, and every verdict but PASS with its rules.\n"
        }
        Layout::Matrix => {
            "Each cell: outcome, the host it went through (with the share of\nequal-preference orders when they differ), connection attempts (c),\nvirtual time of the last outcome (left out when 0s).\n"
        }
        Layout::Blocks => {
            "result: outcome and the host it went through, with the share of\nequal-preference orders when they differ; conn: connection attempts;\ntime: virtual time of the last outcome.\n"
        }
    });
    if report.scenarios.iter().any(|row| row.queue) {
        out.push_str(match layout {
            Layout::Matrix => "Queue scenarios also count delivery attempts per run (a).\n",
            Layout::Text | Layout::Blocks => {
                "Queue scenarios also count delivery attempts per run (att).\n"
            }
        });
    }
    if sampled {
        out.push_str("Some cells sampled 256 seeds instead of enumerating every order.\n");
    }
    if !cut.is_empty() {
        let _ = writeln!(
            out,
            "The exploration's work budget cut {} cell{} short:",
            cut.len(),
            if cut.len() == 1 { "" } else { "s" }
        );
        for line in cut {
            let _ = writeln!(out, "  {line}");
        }
    }
    let errors_seen = errors.len();
    if !errors.is_empty() {
        let _ = writeln!(
            out,
            "error marks a cell whose policy panicked or broke its contract ({}):",
            errors.len()
        );
        for line in errors {
            let _ = writeln!(out, "  {line}");
        }
    }
    out.push_str(&verdicts_legend(report, shown));
    if broken.is_empty() && errors_seen == 0 {
        out.push_str("Every expectation and claim holds.\n");
    } else {
        let _ = writeln!(
            out,
            "✗ marks a cell that breaks its scenario's expect:, a MUST, or the policy's claims ({}):",
            broken.len()
        );
        for line in broken {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// The verdicts of a report: how many cells got each, the departures behind DEPARTS once per
/// policy and rule, and every NON-STRICT with its first line (FAIL cells are listed as broken).
fn verdicts_legend(report: &Report, shown: fn(&str) -> String) -> String {
    let mut out = String::new();
    let cells = report
        .scenarios
        .iter()
        .flat_map(|row| row.cells.iter().map(move |cell| (row, cell)));
    let counts: Vec<String> = Grade::ALL
        .iter()
        .map(|grade| {
            let count = cells
                .clone()
                .filter(|(_, cell)| cell.verdict == grade.word())
                .count();
            format!("{count} {grade}")
        })
        .collect();
    let _ = writeln!(
        out,
        "Verdicts (the worst of each cell, every rule with a checker):\n{}.",
        counts.join(", ")
    );
    // Departures, once per policy and rule, with the cells they cover.
    let mut departs: Vec<(&str, &str, usize)> = Vec::new();
    for (_, cell) in cells.clone() {
        for rule in cell
            .verdicts
            .iter()
            .filter(|rule| rule.verdict == "DEPARTS")
        {
            match departs
                .iter_mut()
                .find(|(policy, id, _)| *policy == cell.policy && *id == rule.rule)
            {
                Some((_, _, count)) => *count += 1,
                None => departs.push((&cell.policy, rule.rule, 1)),
            }
        }
    }
    if !departs.is_empty() {
        let _ = writeln!(
            out,
            "DEPARTS marks a rule the policy documents that it departs from:"
        );
        for (policy, id, count) in departs {
            let level = rules::find(id).map_or("", |rule| rule.level.word());
            let _ = writeln!(
                out,
                "  {} departs from {id} {level} ({count} cell{})",
                shown(policy),
                if count == 1 { "" } else { "s" }
            );
        }
    }
    // Open questions met, once per question with the cells that met it: a cell's own line is
    // in the JSON and in `mxsim run`.
    let mut questions: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, cell) in cells.clone() {
        for rule in cell.verdicts.iter().filter(|rule| rule.verdict == "INFO") {
            *questions.entry(rule.rule).or_insert(0) += 1;
        }
    }
    if !questions.is_empty() {
        let mut ids: Vec<(&str, usize)> = questions.into_iter().collect();
        // O2 before O10.
        ids.sort_by_key(|(id, _)| (id.len(), *id));
        let list: Vec<String> = ids
            .iter()
            .map(|(id, count)| {
                format!("{id} in {count} cell{}", if *count == 1 { "" } else { "s" })
            })
            .collect();
        let _ = writeln!(
            out,
            "INFO marks an open question of the standards met (mxsim rules): {}.",
            list.join(", ")
        );
    }
    let non_strict: Vec<String> = cells
        .flat_map(|(row, cell)| {
            cell.verdicts
                .iter()
                .filter(|rule| rule.verdict == "NON-STRICT")
                .map(move |rule| {
                    format!(
                        "{} × {}: {}",
                        shown(&row.label),
                        shown(&cell.policy),
                        shown(&rule.first)
                    )
                })
        })
        .collect();
    if !non_strict.is_empty() {
        let _ = writeln!(
            out,
            "NON-STRICT marks a SHOULD broken ({}):",
            non_strict.len()
        );
        for line in non_strict {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

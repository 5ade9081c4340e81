//! `explore` and `diff`: the lab's search over generated worlds, from the command line. Found
//! worlds are written as scenario files; a progress line shows on a terminal only.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::Path;

use mxsim_lab::search::{self, Cases};
use mxsim_lab::spec::PolicySpec;
use mxsim_model::escape::terminal;
use mxsim_model::rules::Grade;
use mxsim_policy::registry;
use mxsim_sim::Runner;

use crate::commands::parse_policy;
use crate::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, Output};

/// Parses `--shard I/N` (0-based `I`, below `N`).
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--shard `{text}`: write I/N with 0 <= I < N, like 0/4");
    let (index, count) = text.split_once('/').ok_or_else(bad)?;
    let index: u64 = index.trim().parse().map_err(|_| bad())?;
    let count: u64 = count.trim().parse().map_err(|_| bad())?;
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok((index, count))
}

/// A progress line on standard error when it is a terminal; nothing otherwise.
fn progress_bar(what: &str) -> impl FnMut(u64, u64) + '_ {
    let shown = std::io::stderr().is_terminal();
    move |done, total| {
        if !shown || !(done == total || done.is_multiple_of(250)) {
            return;
        }
        let width = 30u64;
        let filled = (done * width).checked_div(total).unwrap_or(width);
        let bar: String = (0..width)
            .map(|step| if step < filled { '#' } else { '.' })
            .collect();
        let mut stderr = std::io::stderr();
        let _ = write!(stderr, "\r{what} [{bar}] {done}/{total} cases");
        if done == total {
            let _ = writeln!(stderr);
        }
        let _ = stderr.flush();
    }
}

fn bad(message: String) -> Output {
    Output {
        stdout: String::new(),
        stderr: message,
        code: EXIT_BAD_INPUT,
    }
}

/// The name a policy has in file names: its name, with anything but letters, digits, `-`, `.`
/// and `_` made `_`.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `text` to `dir/name`, creating `dir`.
fn write_file(dir: &Path, name: &str, text: &str) -> Result<String, String> {
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("cannot create {}: {error}\n", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, text)
        .map_err(|error| format!("cannot write {}: {error}\n", path.display()))?;
    Ok(path.display().to_string())
}

/// For a policy given as a file, `expect:` cannot name it (a scenario's `expect:` names
/// registered policies): the expectations are left out and the header says so.
fn keep_expectations(spec: &PolicySpec, scenario: &mut mxsim_model::scenario::Scenario) -> bool {
    let registered = registry::is_known(spec.name()) && matches!(spec, PolicySpec::Named(_));
    if !registered {
        scenario.expectations.clear();
    }
    registered
}

/// `mxsim explore`.
pub fn explore(policy: &str, count: u64, seed: u64, out: &Path, shard: Option<&str>) -> Output {
    let spec = match parse_policy(policy) {
        Ok(spec) => spec,
        Err(message) => return bad(message),
    };
    let (index, shards) = match shard.map(parse_shard).transpose() {
        Ok(found) => found.unwrap_or((0, 1)),
        Err(message) => return bad(format!("{message}\n")),
    };
    let cases = Cases {
        count,
        seed,
        shard: index,
        shards,
    };
    let runner = Runner::new();
    let name = spec.name().to_owned();
    let seen = search::explore(&runner, &spec, &cases, &mut progress_bar(&name));
    let mut stdout = String::new();
    let _ = writeln!(
        stdout,
        "explore {}: {} cases of {count} (seed {seed}, shard {index}/{shards}), {} runs with shrinking, {} faults",
        terminal(&name),
        seen.cases,
        seen.runs,
        seen.faults
    );
    let mut counted = 0;
    for grade in [Grade::Fail, Grade::NonStrict, Grade::Departs, Grade::Info] {
        let rules: Vec<String> = seen
            .graded
            .iter()
            .filter(|((found, _), _)| *found == grade)
            .map(|((_, rule), cases)| format!("{rule} ({cases})"))
            .collect();
        if !rules.is_empty() {
            counted += 1;
            let _ = writeln!(stdout, "  {:<10} {}", grade.word(), rules.join(", "));
        }
    }
    if counted == 0 {
        stdout.push_str("  every case passed every rule\n");
    }
    let mut stderr = String::new();
    for finding in &seen.findings {
        let file = format!(
            "{}-{}-case-{}.yaml",
            file_stem(&name),
            finding.rule,
            finding.case
        );
        let shown = out.join(&file).display().to_string();
        let mut scenario = finding.scenario.clone();
        scenario.title = format!(
            "{} FAILs {} on a generated world (case {})",
            name, finding.rule, finding.case
        );
        let pinned = keep_expectations(&spec, &mut scenario);
        let mut header = vec![
            format!(
                "Found by `mxsim explore --policy {policy} --cases {count} --seed {seed}`: case {}, seed {}.",
                finding.case, finding.seed
            ),
            format!("Policy: {name}. Broken: {}", finding.line),
            format!(
                "Shrunk in {} steps to {} host(s). Reproduce: mxsim run {shown} --policy {policy}",
                finding.steps, finding.hosts
            ),
        ];
        header.push(if pinned {
            "The expect: entry pins what the policy does today; the run still FAILs the rule above."
                .to_owned()
        } else {
            "No expect: entry: the policy is a file, and expect: names registered policies."
                .to_owned()
        });
        let text = search::finding_file(&header, &scenario);
        match write_file(out, &file, &text) {
            Ok(path) => {
                let _ = writeln!(
                    stdout,
                    "FAIL {} {}: {} (shrunk in {} steps to {} host(s))",
                    finding.rule,
                    finding.level,
                    terminal(&path),
                    finding.steps,
                    finding.hosts
                );
            }
            Err(message) => stderr.push_str(&message),
        }
    }
    if !stderr.is_empty() {
        return Output {
            stdout,
            stderr,
            code: EXIT_BAD_INPUT,
        };
    }
    let code = if seen.findings.is_empty() {
        stdout.push_str("no FAIL found: nothing written\n");
        EXIT_OK
    } else {
        let _ = writeln!(
            stdout,
            "{} world(s) written; next: mxsim run FILE --policy {policy}, then keep it under scenarios/regressions/",
            seen.findings.len()
        );
        EXIT_FAILED
    };
    Output {
        stdout,
        stderr,
        code,
    }
}

/// `mxsim diff`.
pub fn diff(policies: &[String], count: u64, seed: u64, out: &Path) -> Output {
    let [a, b] = policies else {
        return bad(format!(
            "diff takes exactly two --policy arguments, got {}\n",
            policies.len()
        ));
    };
    let (left, right) = match (parse_policy(a), parse_policy(b)) {
        (Ok(left), Ok(right)) => (left, right),
        (Err(message), _) | (_, Err(message)) => return bad(message),
    };
    let cases = Cases {
        count,
        seed,
        shard: 0,
        shards: 1,
    };
    let runner = Runner::new();
    let label = format!("{} vs {}", left.name(), right.name());
    let (found, runs) = search::diff(&runner, &left, &right, &cases, &mut progress_bar(&label));
    let mut stdout = String::new();
    let Some(difference) = found else {
        let _ = writeln!(
            stdout,
            "diff {}: no difference in {count} cases (seed {seed}), {runs} runs",
            terminal(&label)
        );
        return Output {
            stdout,
            stderr: String::new(),
            code: EXIT_OK,
        };
    };
    let file = format!(
        "diff-{}-{}-case-{}.yaml",
        file_stem(left.name()),
        file_stem(right.name()),
        difference.case
    );
    let shown = out.join(&file).display().to_string();
    let mut scenario = difference.scenario.clone();
    scenario.title = format!(
        "{} and {} part on a generated world (case {})",
        left.name(),
        right.name(),
        difference.case
    );
    let pinned =
        keep_expectations(&left, &mut scenario) && keep_expectations(&right, &mut scenario);
    if !pinned {
        scenario.expectations.clear();
    }
    let header = vec![
        format!(
            "Found by `mxsim diff --policy {a} --policy {b} --seed {seed}`: case {} of {} tried, seed {}.",
            difference.case, difference.cases, difference.seed
        ),
        format!(
            "Shrunk in {} steps to {} host(s). Reproduce: mxsim run {shown} --policy {a}; mxsim run {shown} --policy {b}",
            difference.steps, difference.hosts
        ),
        if pinned {
            "The expect: entries pin both policies' outcomes.".to_owned()
        } else {
            "No expect: entries: a policy is a file, and expect: names registered policies."
                .to_owned()
        },
    ];
    let text = search::finding_file(&header, &scenario);
    let path = match write_file(out, &file, &text) {
        Ok(path) => path,
        Err(message) => return bad(message),
    };
    let _ = writeln!(
        stdout,
        "diff {}: they part on case {} ({} cases tried, {runs} runs with shrinking); shrunk in {} steps to {} host(s): {}",
        terminal(&label),
        difference.case,
        difference.cases,
        difference.steps,
        difference.hosts,
        terminal(&path)
    );
    if let Some((index, left_line, right_line)) = &difference.parting {
        let _ = writeln!(stdout, "first event where the traces part (event {index}):");
        let _ = writeln!(
            stdout,
            "  {:<16} {}",
            terminal(left.name()),
            left_line.trim()
        );
        let _ = writeln!(
            stdout,
            "  {:<16} {}",
            terminal(right.name()),
            right_line.trim()
        );
    }
    Output {
        stdout,
        stderr: String::new(),
        code: EXIT_FAILED,
    }
}

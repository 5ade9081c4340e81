//! Policies: every preset file loads and is registered, and `compare` output for the seed's
//! scenarios is pinned in all three formats.

use mxsim_cli::{EXIT_BAD_INPUT, main_with};
use mxsim_policy::registry;
use mxsim_tests::root;

/// Every file under `policies/` is a registered preset named like its file, and loads.
#[test]
fn every_preset_file_is_registered_and_loads() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("policies"))
        .expect("policies/ exists")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .map(|path| {
            path.file_stem()
                .and_then(|stem| stem.to_str())
                .expect("file names are UTF-8")
                .to_owned()
        })
        .collect();
    files.sort();
    let mut registered: Vec<String> = registry::presets()
        .iter()
        .map(|preset| preset.settings.name.clone())
        .collect();
    registered.sort();
    assert_eq!(
        files, registered,
        "policies/ and the registry must list the same presets"
    );
    for preset in registry::presets() {
        let on_disk = std::fs::read_to_string(
            root()
                .join("policies")
                .join(format!("{}.yaml", preset.settings.name)),
        )
        .expect("readable");
        assert_eq!(
            on_disk, preset.text,
            "the compiled-in text of {} is stale",
            preset.settings.name
        );
        assert!(
            preset.text.starts_with('#'),
            "{} must open with a comment saying what it models",
            preset.settings.name
        );
    }
}

fn compare(format: &str) -> String {
    // Text is pinned at 80 columns, given: the test runner's terminal must not matter.
    let arguments = [
        "mxsim",
        "compare",
        "../scenarios/seed",
        "--format",
        format,
        "--width",
        "80",
    ];
    let output = main_with(arguments.iter().map(Into::into));
    assert!(output.code != EXIT_BAD_INPUT, "{}", output.stderr);
    without_commit(&output.stdout)
}

/// Report text with the build's commit replaced by `[commit]`, so snapshots outlive a commit.
pub fn without_commit(text: &str) -> String {
    text.replace(
        &format!("\"commit\": \"{}\"", mxsim_cli::COMMIT),
        "\"commit\": \"[commit]\"",
    )
    .replace(
        &format!("(commit {})", mxsim_cli::COMMIT),
        "(commit [commit])",
    )
}

#[test]
fn compare_seed_text() {
    insta::assert_snapshot!(compare("text"));
}

#[test]
fn compare_seed_markdown() {
    insta::assert_snapshot!(compare("markdown"));
}

#[test]
fn compare_seed_json() {
    let text = compare("json");
    let _: serde_json::Value =
        serde_json::from_str(&text).expect("compare --format json prints JSON");
    insta::assert_snapshot!(text);
}

/// `mxsim policies` lists every policy with its source; `mxsim policies NAME` prints the file.
#[test]
fn policies_command() {
    let output = main_with(["mxsim", "policies"].iter().map(Into::into));
    for name in registry::names() {
        assert!(
            output.stdout.contains(name),
            "{name} missing from:\n{}",
            output.stdout
        );
    }
    assert!(output.stdout.contains("source: "));
    let one = main_with(["mxsim", "policies", "rfc5321"].iter().map(Into::into));
    assert_eq!(
        one.stdout,
        registry::preset("rfc5321").expect("registered").text
    );
    let unknown = main_with(["mxsim", "policies", "rfc5322"].iter().map(Into::into));
    assert_eq!(unknown.code, EXIT_BAD_INPUT);
}

/// With a few policies, every table line of the Markdown fits a 72-column mail.
#[test]
fn compare_markdown_fits_72_columns_with_few_policies() {
    for policies in [
        &["rfc5321", "klensin-strict"][..],
        &["rfc5321", "klensin-strict", "same-preference", "whole-list"][..],
        &["postfix-3.11", "exim-4", "stalwart"][..],
    ] {
        let mut arguments: Vec<String> = [
            "mxsim",
            "compare",
            "../scenarios/seed",
            "--format",
            "markdown",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for policy in policies {
            arguments.push("--policy".to_owned());
            arguments.push((*policy).to_owned());
        }
        let output = main_with(arguments.iter().map(Into::into));
        assert_eq!(output.code, 0, "{policies:?}: {}", output.stderr);
        assert!(
            output
                .stdout
                .lines()
                .filter(|line| line.starts_with('|'))
                .count()
                > 10,
            "{policies:?}: no table:\n{}",
            output.stdout
        );
        for line in output.stdout.lines().filter(|line| line.starts_with('|')) {
            assert!(
                line.chars().count() <= 72,
                "{policies:?}: {} columns:\n{line}",
                line.chars().count()
            );
        }
    }
}

/// Compare cells: shares of a cell add up to 100 (largest remainder), host names are shortened
/// only when that stays unambiguous, and a policy named twice gets one column.
#[test]
fn compare_cells_are_exact_and_unambiguous() {
    let folder = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare-cells");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).expect("writable");
    let three = "title: three\nmessage: {to: [u@foo.example]}\ndns: {foo.example: {mx: [10 a.foo.example, 10 b.foo.example, 10 c.foo.example]}}\nservers: {a.foo.example: {}, b.foo.example: {}, c.foo.example: {}}\n";
    let same = "title: same label\nmessage: {to: [u@foo.example]}\ndns: {foo.example: {mx: [10 mx.east.example, 10 mx.west.example]}}\nservers: {mx.east.example: {}, mx.west.example: {}}\n";
    std::fs::write(folder.join("three.yaml"), three).expect("writable");
    std::fs::write(folder.join("same.yaml"), same).expect("writable");
    let folder = folder.to_str().expect("UTF-8 path").to_owned();
    let json = main_with(
        [
            "mxsim", "compare", &folder, "--policy", "rfc5321", "--policy", "rfc5321", "--format",
            "json",
        ]
        .iter()
        .map(Into::into),
    );
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        report["policies"].as_array().map(Vec::len),
        Some(1),
        "a repeated policy gets one column"
    );
    for row in report["scenarios"].as_array().expect("rows") {
        let sum: u64 = row["cells"][0]["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|share| share["percent"].as_u64().expect("percent"))
            .sum();
        assert_eq!(sum, 100, "{}", row["label"]);
    }
    let text = main_with(
        ["mxsim", "compare", &folder, "--policy", "rfc5321"]
            .iter()
            .map(Into::into),
    )
    .stdout;
    assert!(text.contains("delivered: a 34%, b 33%, c 33%"), "{text}");
    assert!(
        text.contains("mx.east.example 50%, mx.west.example 50%"),
        "{text}"
    );
}

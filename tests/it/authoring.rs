//! Authoring: the JSON Schemas of scenario and policy files (fresh, every shipped file valid,
//! every schema-level bad fixture invalid), `mxsim new` skeletons that load, `mxsim pin`
//! pinning what `check` then accepts, and docs/findings.md kept fresh.

use std::path::{Path, PathBuf};

use mxsim_cli::{EXIT_BAD_INPUT, EXIT_OK, Output, main_with};
use mxsim_model::yaml::{self, Node, Value};
use mxsim_tests::root;
use serde_json::json;

fn mxsim(arguments: &[&str]) -> Output {
    main_with(
        std::iter::once("mxsim")
            .chain(arguments.iter().copied())
            .map(std::ffi::OsString::from),
    )
}

/// A YAML tree as JSON, through the project's YAML facade.
fn to_json(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(value) => json!(value),
        Value::Integer(value) => json!(value),
        Value::Float(value) => json!(value),
        Value::String(text) => json!(text),
        Value::Sequence(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Mapping(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(key, value)| (key.text.clone(), to_json(value)))
                .collect(),
        ),
    }
}

fn validator(file: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("docs/schemas").join(file)).expect("schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft202012::new(&schema).expect("the schema is a valid draft 2020-12 schema")
}

/// The schema's errors on `path`, or `None` when the YAML layer already refuses the file.
fn schema_errors(validator: &jsonschema::Validator, path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let node = yaml::parse(&text).ok()?;
    let instance = to_json(&node);
    Some(
        validator
            .iter_errors(&instance)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect(),
    )
}

fn yaml_files(folder: &str) -> Vec<PathBuf> {
    mxsim_cli::files::collect(&[root().join(folder)])
        .expect("folder exists")
        .files
}

#[test]
fn schemas_on_disk_are_what_mxsim_schema_prints() {
    for (kind, file) in [
        ("scenario", "scenario.schema.json"),
        ("policy", "policy.schema.json"),
    ] {
        let on_disk =
            std::fs::read_to_string(root().join("docs/schemas").join(file)).unwrap_or_default();
        let printed = mxsim(&["schema", kind]);
        assert_eq!(printed.code, EXIT_OK);
        assert!(
            printed.stdout == on_disk,
            "docs/schemas/{file} is stale: run `cargo run -p mxsim-cli -- schema {kind} > docs/schemas/{file}`"
        );
    }
}

#[test]
fn every_shipped_scenario_and_policy_validates() {
    for (schema, folder) in [
        ("scenario.schema.json", "scenarios"),
        ("policy.schema.json", "policies"),
    ] {
        let validator = validator(schema);
        let files = yaml_files(folder);
        assert!(files.len() > 10, "{folder}");
        for path in files {
            let errors = schema_errors(&validator, &path).expect("shipped files parse");
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        }
    }
}

/// Bad fixtures a schema cannot reject, with the reason: the YAML layer refuses them before
/// any schema is consulted, or the error is semantic (it relates values to each other or to
/// the registry, which a per-key schema does not see).
const NOT_SCHEMA_ERRORS: &[(&str, &str)] = &[
    (
        "bad/duplicate-key.yaml",
        "YAML layer: a duplicate key (JSON would keep the last)",
    ),
    ("bad/syntax-error.yaml", "YAML layer: not YAML"),
    ("bad/tag-binary.yaml", "YAML layer: a tag"),
    ("bad/number-spellings.yaml", "YAML layer: 0x19 and friends"),
    (
        "bad/raw-control-in-source.yaml",
        "YAML layer: a raw control character",
    ),
    (
        "bad/after-later-than-within.yaml",
        "semantic: `after` compared with `within`",
    ),
    (
        "bad/client-name-root.yaml",
        "semantic: `.` is a name but not an EHLO name",
    ),
    (
        "bad/cname-with-records.yaml",
        "semantic: a CNAME beside records, possibly in a window",
    ),
    (
        "bad/duplicate-name-case.yaml",
        "semantic: names equal once lowercased",
    ),
    (
        "bad/horizon-before-a-message.yaml",
        "semantic: horizon compared with every `at`",
    ),
    (
        "bad/horizon-without-queue.yaml",
        "semantic: horizon only with `messages`",
    ),
    (
        "bad/mx-target-ip.yaml",
        "semantic: an address where a host name is due (both are dotted words)",
    ),
    (
        "bad/rcpt-for-stranger.yaml",
        "semantic: a RCPT key for someone who is no recipient",
    ),
    (
        "bad/requires-twice.yaml",
        "semantic: a keyword listed twice, case-insensitively",
    ),
    (
        "bad/unreachable-server.yaml",
        "semantic: nothing leads to the server",
    ),
    (
        "bad/window-past-run-limit.yaml",
        "semantic: a window past the 30-day run limit",
    ),
    (
        "bad/long-line-caret.yaml",
        "semantic: an unreachable server on a long line",
    ),
    (
        "bad/numbers-quoted-as-written.yaml",
        "YAML layer: numbers out of range are refused as written",
    ),
    (
        "bad_policies/queue-factor.yaml",
        "semantic: `max` compared with `first`, and the factor's range",
    ),
    (
        "bad_policies/queue-settings.yaml",
        "semantic: two schedule shapes at once, `send_without_after` compared with `lifetime`",
    ),
    (
        "bad_policies/contradictory.yaml",
        "semantic: settings that contradict each other",
    ),
    (
        "bad_policies/extends-rust-policy.yaml",
        "semantic: `extends` names a Rust policy",
    ),
    (
        "bad_policies/extends-typo.yaml",
        "semantic: `extends` names an unknown policy",
    ),
    (
        "bad_policies/incomplete.yaml",
        "semantic: `summary` and `source` are required only without `extends`",
    ),
    (
        "bad_policies/opportunistic-without-fallback.yaml",
        "semantic: a setting required by another",
    ),
    (
        "bad_policies/queue-warning-after-lifetime.yaml",
        "semantic: `warn_after` compared with `lifetime`",
    ),
    (
        "bad_policies/control-in-summary.yaml",
        "semantic: a control character in free text",
    ),
];

#[test]
fn every_schema_level_bad_fixture_fails_validation() {
    let mut report = Vec::new();
    for (schema, folder) in [
        ("scenario.schema.json", "tests/it/bad"),
        ("policy.schema.json", "tests/it/bad_policies"),
    ] {
        let validator = validator(schema);
        for path in yaml_files(folder) {
            let name = path
                .strip_prefix(root().join("tests/it"))
                .expect("under tests/it")
                .to_string_lossy()
                .replace('\\', "/");
            let rejected = match schema_errors(&validator, &path) {
                None => true,
                Some(errors) => !errors.is_empty(),
            };
            let listed = NOT_SCHEMA_ERRORS.iter().any(|(file, _)| *file == name);
            if !rejected && !listed {
                report.push(format!(
                    "{name}: valid under the schema, and not listed as semantic"
                ));
            }
            if rejected && listed && schema_errors(&validator, &path).is_some() {
                report.push(format!("{name}: listed as beyond the schema, but the schema rejects it: take it off the list"));
            }
        }
    }
    assert!(report.is_empty(), "{report:#?}");
}

#[test]
fn new_writes_skeletons_that_load() {
    for (description, domain) in [
        ("10 smtp1, 10 smtp2, 20 backup", "foo.example"),
        ("0 mx", "bar.example"),
        ("5 a, 5 b, 5 c, 10 d.elsewhere.example", "foo.example"),
    ] {
        let output = mxsim(&["new", description, "--domain", domain]);
        assert_eq!(output.code, EXIT_OK, "{}", output.stderr);
        let scenario = mxsim_tests::load_text(&output.stdout);
        assert!(scenario.expectations.is_empty());
        assert!(output.stdout.contains("#   connect: refuse"));
        assert!(output.stdout.contains("# expect:"));
    }
    let base = mxsim(&["new", "10 smtp1, 10 smtp2, 20 backup"]);
    assert!(
        base.stdout
            .contains("mx: [10 smtp1.foo.example, 10 smtp2.foo.example, 20 backup.foo.example]")
    );
    for server in ["smtp1", "smtp2", "backup"] {
        assert!(
            base.stdout
                .contains(&format!("  {server}.foo.example: {{}}\n"))
        );
    }
}

#[test]
fn new_refuses_bad_descriptions_with_exit_2() {
    for (description, message) in [
        ("", "empty"),
        ("10 smtp1, smtp2", "is not `<preference> <host>`"),
        ("ten smtp1", "is not a number in 0–65535"),
        ("70000 smtp1", "is not a number in 0–65535"),
        ("10 smtp1, 20 smtp1", "listed twice"),
        ("10 bad_name!", "MX record 1"),
        ("0 .", "null MX"),
    ] {
        let output = mxsim(&["new", description]);
        assert_eq!(output.code, EXIT_BAD_INPUT, "{description}");
        assert!(
            output.stderr.contains(message),
            "{description}: {}",
            output.stderr
        );
    }
}

/// A copy of a shipped scenario in a fresh folder.
fn copy(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mxsim-pin-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("write copy");
    path
}

#[test]
fn pin_fills_expect_and_check_accepts_it() {
    for shipped in [
        "scenarios/seed/base-case.yaml",
        "scenarios/seed/backup-after-ehlo-mail-4yz.yaml",
    ] {
        let text = std::fs::read_to_string(root().join(shipped)).expect("shipped");
        let cut = text
            .find("\nexpect:")
            .expect("the shipped file has expect:");
        let name = Path::new(shipped)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let path = copy(&name, &text[..=cut]);
        let file = path.to_string_lossy().into_owned();
        let pinned = mxsim(&["pin", &file]);
        assert_eq!(pinned.code, EXIT_OK, "{}", pinned.stderr);
        let after = std::fs::read_to_string(&path).expect("pinned");
        assert!(
            after.starts_with(&text[..=cut]),
            "everything above expect: is kept"
        );
        let scenario = mxsim_tests::load(&path);
        assert_eq!(
            scenario.expectations.len(),
            mxsim_policy::registry::names().len()
        );
        let checked = mxsim(&["check", &file]);
        assert_eq!(checked.code, EXIT_OK, "{}\n{after}", checked.stdout);
        // Pinning again changes nothing.
        let again = mxsim(&["pin", &file]);
        assert!(again.stdout.contains("unchanged"), "{}", again.stdout);
    }
}

#[test]
fn pin_replaces_only_the_expect_block_and_keeps_what_follows() {
    let text = "# a comment kept\ntitle: t\nmessage: {to: [u@foo.example]}\nexpect:\n  rfc5321: {outcome: bounced, within: 10m}\n\n# kept too\ndns:\n  foo.example: {mx: [10 mx.foo.example]}\nservers:\n  mx.foo.example: {}\n";
    let path = copy("order", text);
    let file = path.to_string_lossy().into_owned();
    let pinned = mxsim(&["pin", &file]);
    assert_eq!(pinned.code, EXIT_OK, "{}", pinned.stderr);
    let after = std::fs::read_to_string(&path).expect("pinned");
    assert_eq!(
        after,
        "# a comment kept\ntitle: t\nmessage: {to: [u@foo.example]}\nexpect:\n  rfc5321: {outcome: delivered, via: [mx.foo.example], connections: 1, within: 10m}\n\n# kept too\ndns:\n  foo.example: {mx: [10 mx.foo.example]}\nservers:\n  mx.foo.example: {}\n"
    );
    let unknown = mxsim(&["pin", &file, "--policy", "rfc5322"]);
    assert_eq!(unknown.code, EXIT_BAD_INPUT);
}

#[test]
fn docs_findings_md_is_what_mxsim_findings_prints() {
    let seed = root().join("scenarios/seed");
    let queue = root().join("scenarios/queue/seed-queued-required-keyword.yaml");
    let printed = mxsim(&[
        "findings",
        &seed.to_string_lossy(),
        &queue.to_string_lossy(),
    ]);
    assert_eq!(printed.code, EXIT_OK, "{}", printed.stderr);
    let on_disk = std::fs::read_to_string(root().join("docs/findings.md")).unwrap_or_default();
    assert!(
        printed.stdout == on_disk,
        "docs/findings.md is stale: run `cargo run -p mxsim-cli -- findings > docs/findings.md`"
    );
    for question in 1..=6 {
        assert!(on_disk.contains(&format!("## Question {question}: ")));
    }
}

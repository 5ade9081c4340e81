//! Bad input never panics, is never skipped, and is reported with file, line and column.
//!
//! Data-driven: each file in `bad/` is a bad scenario whose first line says what is wrong; its
//! rendered errors are pinned with insta. Hostile documents are generated here and must be
//! rejected with exit code 2 by one of the loader's counted bounds (bytes, nodes, depth, alias
//! replays). No test here reads a clock: on a loaded 2-core machine a wall-time assertion flakes,
//! so the bound is asserted by *which limit* stopped the parse; time figures live in benchmarks.

use std::path::{Path, PathBuf};

use mxsim_cli::{EXIT_BAD_INPUT, main_with};
use mxsim_model::diag::SHOWN_MAX;

fn check_file(path: &Path) -> mxsim_cli::Output {
    main_with(["mxsim".into(), "check".into(), path.as_os_str().to_owned()])
}

/// Every fixture is rejected with exit 2, a located error, and the rendering reviewed in a snapshot.
#[test]
fn fixtures() {
    insta::glob!("bad/*.yaml", |path| {
        let relative = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .expect("fixtures live in the test crate");
        let output = check_file(relative);
        assert_eq!(output.code, EXIT_BAD_INPUT, "{}", output.stderr);
        let shown = relative.display().to_string();
        assert!(
            located(&output.stderr, &shown),
            "no file:line:column in:\n{}",
            output.stderr
        );
        assert!(
            output.stdout.contains("error "),
            "the file is listed, not skipped:\n{}",
            output.stdout
        );
        insta::assert_snapshot!(output.stderr);
    });
}

/// True when some line reads `FILE:LINE:COLUMN: error: …` with numbers.
fn located(stderr: &str, file: &str) -> bool {
    stderr.lines().any(|line| {
        let Some(rest) = line
            .strip_prefix(file)
            .and_then(|rest| rest.strip_prefix(':'))
        else {
            return false;
        };
        let mut parts = rest.splitn(3, ':');
        let numbers = [parts.next(), parts.next()].iter().all(|part| {
            part.is_some_and(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        });
        numbers
            && parts
                .next()
                .is_some_and(|tail| tail.starts_with(" error: "))
    })
}

fn hostile(name: &str, bytes: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).expect("the target tmp dir is writable");
    path
}

/// An alias bomb, 20,000-deep nesting of each kind, binary garbage and an oversized file are
/// each rejected with exit code 2, located, and stopped by the counted bound named in `stopped_by`.
/// The bound is what keeps the work small; the test checks that the bound fired, never how long
/// it took.
#[test]
fn hostile_documents_are_rejected_by_a_counted_bound() {
    let mut bomb = String::from("title: bomb\na: &a [x,x,x,x,x,x,x,x,x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(",");
        bomb.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    let mut garbage = Vec::with_capacity(64 * 1024);
    let mut state: u32 = 0x2545_f491;
    for _ in 0..64 * 1024 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        garbage.push((state >> 24) as u8);
    }
    let nested = "too large or too deeply nested";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("alias-bomb.yaml", bomb.into_bytes(), "alias"),
        (
            "deep-flow-lists.yaml",
            format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes(),
            nested,
        ),
        (
            "deep-flow-maps.yaml",
            format!("{}{}", "{a: ".repeat(20_000), "}".repeat(20_000)).into_bytes(),
            nested,
        ),
        (
            "deep-block-lists.yaml",
            "- ".repeat(20_000).into_bytes(),
            nested,
        ),
        ("garbage.yaml", garbage, "UTF-8"),
        (
            "oversized.yaml",
            format!("title: big\n# {}\n", "x".repeat(2 << 20)).into_bytes(),
            "larger than",
        ),
    ];
    for (name, bytes, stopped_by) in cases {
        let path = hostile(name, &bytes);
        let output = check_file(&path);
        assert_eq!(output.code, EXIT_BAD_INPUT, "{name}: {}", output.stderr);
        assert!(
            located(&output.stderr, &path.display().to_string()),
            "{name}: {}",
            output.stderr
        );
        assert!(
            output.stderr.contains(stopped_by),
            "{name} was not stopped by the `{stopped_by}` bound:\n{}",
            output.stderr
        );
    }
}

/// Documents of legal size that once cost the loader quadratic time are loaded or rejected with
/// the right exit code and bounded output: at most [`SHOWN_MAX`] rendered errors, then how many
/// more. They stay under the target dir as `hostile-<name>.yaml` for timing the release binary;
/// this test never reads a clock.
#[test]
fn hostile_documents_of_legal_size_give_bounded_output() {
    let documents = mxsim_tests::hostile::documents();
    // Written first, all of them, so the files exist for timing even if a check fails.
    let paths: Vec<PathBuf> = documents
        .iter()
        .map(|document| {
            assert!(
                document.text.len() <= mxsim_model::yaml::BYTES_MAX,
                "{} is {} bytes",
                document.name,
                document.text.len()
            );
            hostile(
                &format!("hostile-{}.yaml", document.name),
                document.text.as_bytes(),
            )
        })
        .collect();
    for (document, path) in documents.iter().zip(&paths) {
        let output = check_file(path);
        let name = document.name;
        if document.loads {
            assert_eq!(output.code, 0, "{name}: {}", output.stderr);
            assert!(
                output.stdout.contains(document.says),
                "{name}: {}",
                output.stdout
            );
            continue;
        }
        assert_eq!(output.code, EXIT_BAD_INPUT, "{name}: {}", output.stderr);
        assert!(
            output.stderr.contains(document.says),
            "{name}: {}",
            output.stderr
        );
        let shown = output.stderr.matches(": error: ").count();
        assert!(shown <= SHOWN_MAX, "{name}: {shown} errors rendered");
        assert!(
            shown < SHOWN_MAX || output.stderr.contains(" more errors\n"),
            "{name}: no `and N more errors` line:\n{}",
            output.stderr
        );
        assert!(
            output.stderr.lines().count() <= SHOWN_MAX * 6 + 2,
            "{name}: {} lines",
            output.stderr.lines().count()
        );
    }
}

/// Every bad policy file is rejected with exit 2 and located errors, through `--policy FILE`.
#[test]
fn policy_fixtures() {
    insta::glob!("bad_policies/*.yaml", |path| {
        let relative = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .expect("fixtures live in the test crate");
        let scenario =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/seed/base-case.yaml");
        let output = main_with([
            "mxsim".into(),
            "compare".into(),
            scenario.into_os_string(),
            "--policy".into(),
            relative.as_os_str().to_owned(),
        ]);
        assert_eq!(output.code, EXIT_BAD_INPUT, "{}", output.stderr);
        assert!(
            located(&output.stderr, &relative.display().to_string()),
            "no file:line:column in:\n{}",
            output.stderr
        );
        insta::assert_snapshot!(output.stderr);
    });
}

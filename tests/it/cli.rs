//! The command line, called in-process: exit codes, nothing skipped, output shapes.

use std::path::{Path, PathBuf};

use mxsim_cli::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, Output, main_with};

fn mxsim(arguments: &[&str]) -> Output {
    main_with(
        std::iter::once("mxsim")
            .chain(arguments.iter().copied())
            .map(Into::into),
    )
}

fn folder(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).expect("the target tmp dir is writable");
    for (file, text) in files {
        std::fs::write(folder.join(file), text).expect("the target tmp dir is writable");
    }
    folder
}

const GOOD: &str = "title: good\nmessage: {to: [u@foo.example]}\ndns: {foo.example: {mx: [10 mx.foo.example]}}\nservers: {mx.foo.example: {}}\nexpect: {rfc5321: {outcome: delivered}}\n";
const WRONG: &str = "title: wrong\nmessage: {to: [u@foo.example]}\ndns: {foo.example: {mx: [10 mx.foo.example]}}\nservers: {mx.foo.example: {}}\nexpect: {rfc5321: {outcome: bounced}}\n";
const BROKEN: &str = "title: broken\nmesage: {to: [u@foo.example]}\n";

fn check(expected_code: u8, arguments: &[&str], stdout_has: &[&str], stderr_has: &[&str]) {
    let output = mxsim(arguments);
    assert_eq!(
        output.code, expected_code,
        "mxsim {arguments:?}\nstdout:\n{}\nstderr:\n{}",
        output.stdout, output.stderr
    );
    for fragment in stdout_has {
        assert!(
            output.stdout.contains(fragment),
            "stdout of {arguments:?} lacks {fragment:?}:\n{}",
            output.stdout
        );
    }
    for fragment in stderr_has {
        assert!(
            output.stderr.contains(fragment),
            "stderr of {arguments:?} lacks {fragment:?}:\n{}",
            output.stderr
        );
    }
}

/// `mxsim run world.yaml --policy policy.yaml` on two files written to a fresh folder.
fn run_policy_file(name: &str, policy: &str, world: &str) -> Output {
    let folder = folder(name, &[("policy.yaml", policy), ("world.yaml", world)]);
    let arguments = [
        "mxsim".into(),
        "run".into(),
        folder.join("world.yaml").into_os_string(),
        "--policy".into(),
        folder.join("policy.yaml").into_os_string(),
    ];
    main_with(arguments)
}

#[test]
fn exit_codes() {
    let good = folder("cli-good", &[("a.yaml", GOOD)]);
    let wrong = folder("cli-wrong", &[("a.yaml", GOOD), ("b.yaml", WRONG)]);
    let mixed = folder(
        "cli-mixed",
        &[
            ("a.yaml", GOOD),
            ("b.yaml", WRONG),
            ("c.yaml", BROKEN),
            ("notes.txt", "not a scenario"),
        ],
    );
    let good = good.to_str().unwrap();
    let wrong = wrong.to_str().unwrap();
    let mixed = mixed.to_str().unwrap();
    check(
        EXIT_OK,
        &["check", good],
        &["ok ", "1 expectation holds, 0 broken"],
        &[],
    );
    check(
        EXIT_FAILED,
        &["check", wrong],
        &["FAIL", "expected bounced", "reproduce: mxsim run"],
        &[],
    );
    // A bad file is reported and the others are still checked: nothing is skipped.
    check(
        EXIT_BAD_INPUT,
        &["check", mixed],
        &["ok ", "FAIL", "error ", "3 files"],
        &["unknown key `mesage`", "did you mean `message`?"],
    );
    check(
        EXIT_BAD_INPUT,
        &["check", "/nonexistent/mxsim"],
        &[],
        &["no such file or folder"],
    );
    check(
        EXIT_BAD_INPUT,
        &["frobnicate"],
        &[],
        &["unrecognized subcommand"],
    );
    check(EXIT_OK, &["--help"], &["Usage: mxsim"], &[]);
}

#[test]
fn run_prints_trace_and_verdict() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-run.yaml");
    std::fs::write(&path, GOOD).unwrap();
    let path = path.to_str().unwrap();
    check(
        EXIT_OK,
        &["run", path],
        &[
            "## seed 0",
            "connect to port 25 (mx.foo.example)",
            "delivered via mx.foo.example",
            "expect rfc5321: holds",
        ],
        &[],
    );
    check(
        EXIT_OK,
        &["run", path, "--all-orders"],
        &["## the only order"],
        &[],
    );
    check(
        EXIT_BAD_INPUT,
        &["run", path, "--policy", "nonsense"],
        &[],
        &["unknown policy `nonsense`"],
    );
    check(
        EXIT_BAD_INPUT,
        &["run", path, "--policy", "postfx-3.11"],
        &[],
        &["did you mean `postfix-3.11`?"],
    );
    check(
        EXIT_BAD_INPUT,
        &["run", path, "--seed", "1", "--all-orders"],
        &[],
        &["cannot be used with"],
    );
}

#[test]
fn bench_reports_cpu_time_wall_time_and_allocations_per_run() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-bench.yaml");
    std::fs::write(&path, GOOD).unwrap();
    check(
        EXIT_OK,
        &[
            "bench",
            path.to_str().unwrap(),
            "--runs",
            "50",
            "--repeat",
            "3",
        ],
        &[
            "50 runs × 3 repeats on one thread",
            "thread CPU:",
            "runs/s (median of 3;",
            "allocations: ",
            "/run (counted)",
        ],
        &[],
    );
    check(
        EXIT_OK,
        &["bench", "--floor", "15", "--runs", "10", "--repeat", "1"],
        &["tokio floor · 15 timeout wraps per run", "thread CPU:"],
        &[],
    );
    check(
        EXIT_BAD_INPUT,
        &["bench", path.to_str().unwrap(), "--runs", "0"],
        &[],
        &["at least 1"],
    );
}

/// A claim is a rule id of the rules table: `claims: [P1]` is the same claim as its alias, and
/// an id the table does not hold is an error that lists the ids.
#[test]
fn claims_are_rule_ids() {
    let folder = folder(
        "cli-claims",
        &[
            (
                "by-id.yaml",
                "# P1 by its id.\nname: my-p1\nsummary: test\nsource: test\nextends: rfc5321\nafter_ehlo: same-or-better\nrequired_keywords: {REQUIRETLS: {action: bounce}}\nclaims: [P1]\n",
            ),
            (
                "unknown.yaml",
                "# No such rule.\nname: my-p9\nsummary: test\nsource: test\nextends: rfc5321\nclaims: [P9]\n",
            ),
            (
                "world.yaml",
                "title: backup after 451\nmessage: {to: [u@foo.example]}\ndns: {foo.example: {mx: [10 a.foo.example, 20 b.foo.example]}}\nservers: {a.foo.example: {mail: 451}, b.foo.example: {}}\n",
            ),
        ],
    );
    let world = folder.join("world.yaml");
    let world = world.to_str().unwrap();
    let by_id = folder.join("by-id.yaml");
    check(
        EXIT_OK,
        &["run", world, "--policy", by_id.to_str().unwrap()],
        &["deferred", "verdict my-p1: PASS"],
        &[],
    );
    let unknown = folder.join("unknown.yaml");
    check(
        EXIT_BAD_INPUT,
        &["run", world, "--policy", unknown.to_str().unwrap()],
        &[],
        &[
            "claims: `P9` is not one of",
            "P1, never-worse-preference-after-ehlo",
        ],
    );
}

/// A policy file the user wrote runs by path wherever a policy name goes.
#[test]
fn policy_files_run_by_path() {
    let folder = folder(
        "cli-policy",
        &[
            (
                "strict.yaml",
                "# A user's policy: the baseline that never goes to a worse preference after EHLO.\nname: my-strict\nsummary: test\nsource: test\nextends: rfc5321\nafter_ehlo: same-or-better\nrequired_keywords: {REQUIRETLS: {action: bounce}}\nclaims: [never-worse-preference-after-ehlo]\n",
            ),
            (
                "world.yaml",
                "title: backup after 451\nmessage: {to: [u@foo.example]}\ndns: {foo.example: {mx: [10 a.foo.example, 20 b.foo.example]}}\nservers: {a.foo.example: {mail: 451}, b.foo.example: {}}\n",
            ),
        ],
    );
    let policy = folder.join("strict.yaml");
    let world = folder.join("world.yaml");
    let (policy, world) = (policy.to_str().unwrap(), world.to_str().unwrap());
    check(
        EXIT_OK,
        &["run", world, "--policy", policy],
        &["policy my-strict", "deferred", "verdict my-strict: PASS"],
        &[],
    );
    check(
        EXIT_OK,
        &["compare", world, "--policy", "rfc5321", "--policy", policy],
        &["my-strict", "delivered b", "deferred"],
        &[],
    );
    // Reports name the policy file and the digest of its resolved settings, which
    // `mxsim policies FILE` prints with the settings; comments and key order do not change it.
    let resolved = mxsim(&["policies", policy]);
    assert_eq!(resolved.code, EXIT_OK, "{}", resolved.stderr);
    assert!(resolved.stdout.contains("resolved after `extends`"));
    assert!(
        resolved.stdout.contains("name: \"my-strict\""),
        "{}",
        resolved.stdout
    );
    let digest = resolved
        .stdout
        .split_whitespace()
        .find(|word| word.starts_with("sha256:"))
        .expect("a digest")
        .to_owned();
    assert_eq!(digest.len(), "sha256:".len() + 64);
    let reordered = folder.join("reordered.yaml");
    std::fs::write(
        &reordered,
        "# The same policy, keys in another order.\nclaims: [never-worse-preference-after-ehlo]\nrequired_keywords: {REQUIRETLS: {action: bounce}}\nafter_ehlo: same-or-better\nextends: rfc5321\nsource: test\nsummary: test\nname: my-strict\n",
    )
    .unwrap();
    let reordered = reordered.to_str().unwrap();
    let json = mxsim(&["compare", world, "--policy", reordered, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(report["policy_files"][0]["name"], "my-strict");
    assert_eq!(report["policy_files"][0]["path"], reordered);
    assert_eq!(report["policy_files"][0]["digest"], digest.as_str());
    assert_eq!(report["mxsim"]["commit"], mxsim_cli::COMMIT);
    let markdown = mxsim(&["compare", world, "--policy", policy, "--format", "markdown"]);
    let hex = digest.trim_start_matches("sha256:");
    assert!(markdown.stdout.contains(hex), "{}", markdown.stdout);
    assert!(
        markdown.stdout.contains(mxsim_cli::COMMIT),
        "{}",
        markdown.stdout
    );
}

/// Regression: a client that never negotiates TLS must not count an advertised STARTTLS as
/// the TLS session a message requires (RFC 3207 §4.2); it once delivered such mail in clear.
#[test]
fn advertised_starttls_does_not_satisfy_a_tls_requirement() {
    let output = run_policy_file(
        "cli-no-tls",
        "# A client without TLS.\nname: plain-client\nsummary: test\nsource: test\nextends: rfc5321\ntls: never\n",
        "title: TLS required\nmessage: {to: [u@foo.example], requires: [STARTTLS]}\ndns: {foo.example: {mx: [10 a.foo.example]}}\nservers: {a.foo.example: {ehlo: [STARTTLS]}}\n",
    );
    assert!(
        output.stdout.contains("does not offer required STARTTLS"),
        "{}",
        output.stdout
    );
    assert!(
        !output.stdout.contains("> DATA"),
        "the message must not be sent:\n{}",
        output.stdout
    );
}

/// Regression: when a host lacks several required keywords, the strictest rule decides whatever
/// the order `requires` lists them in. With `downgrade` for every keyword, a non-ASCII recipient
/// makes SMTPUTF8 impossible to downgrade, so the message bounces in both orders (it was once
/// delivered when FOOBAR came first).
#[test]
fn missing_keywords_decide_the_same_in_any_order() {
    let policy = "# Downgrade everything.\nname: downgrader\nsummary: test\nsource: test\nextends: rfc5321\nrequired_keywords:\n  \"*\": {action: downgrade}\n";
    for requires in ["[FOOBAR, SMTPUTF8]", "[SMTPUTF8, FOOBAR]"] {
        let world = format!(
            "title: order\nmessage: {{to: [\"δοκιμή@foo.example\"], requires: {requires}}}\ndns: {{foo.example: {{mx: [10 a.foo.example]}}}}\nservers: {{a.foo.example: {{}}}}\n"
        );
        let output = run_policy_file("cli-keyword-order", policy, &world);
        assert!(
            output
                .stdout
                .contains("bounced: a.foo.example [192.0.2.1] does not offer required SMTPUTF8"),
            "requires {requires}:\n{}",
            output.stdout
        );
    }
}

/// Regression: a failed handshake does not count as a session, so `limits.sessions` cannot make
/// it the final one. With two sessions allowed, MAIL 451 at a (session 1) and a 554 greeting at
/// b (no session) leave c as the second session, which delivers; the 554 once bounced the
/// message as if b were final.
#[test]
fn handshake_failures_are_not_final_under_a_session_limit() {
    let policy = "# Exim with a session limit.\nname: exim-limited\nsummary: test\nsource: test\nextends: exim-4\nlimits: {sessions: 2}\n";
    let world = "title: limit\nmessage: {to: [u@foo.example]}\ndns: {foo.example: {mx: [10 a.foo.example, 20 b.foo.example, 30 c.foo.example]}}\nservers: {a.foo.example: {mail: 451}, b.foo.example: {greeting: 554}, c.foo.example: {}}\n";
    let output = run_policy_file("cli-session-limit", policy, world);
    assert!(
        output.stdout.contains("delivered via c.foo.example"),
        "{}",
        output.stdout
    );
}

/// Regressions from a review, each with a small policy of its own: the input, and what the
/// output must (and must not) contain.
#[test]
fn engine_regressions_with_custom_policies() {
    struct Case {
        name: &'static str,
        policy: &'static str,
        world: &'static str,
        must: &'static [&'static str],
        must_not: &'static [&'static str],
    }
    let cases = [
        // After the wanted-keyword search moved the transaction to hostb, a `next-host` must
        // skip hostb, not hosta.
        Case {
            name: "next-host-after-search",
            policy: "# test\nname: nh-test\nsummary: t\nsource: t\nextends: rfc5321\norder: {equal_preference: dns}\non: {mail: {4yz: next-host}}\nwanted_keywords: {action: same-preference, search_limit: 2m}\n",
            world: "title: t\nmessage: {to: [a@foo.example], wants: [FOOBAR]}\ndns:\n  foo.example: {mx: [10 hosta.foo.example, 10 hostb.foo.example]}\n  hosta.foo.example: {a: [192.0.2.1, 192.0.2.11]}\n  hostb.foo.example: {a: [192.0.2.2, 192.0.2.12]}\nservers:\n  hosta.foo.example: {}\n  hostb.foo.example: {ehlo: [FOOBAR], mail: 451}\n",
            must: &["delivered via hosta.foo.example [192.0.2.11]"],
            must_not: &["192.0.2.12      > connect"],
        },
        // An EHLO reply that lowers the after-EHLO ceiling makes this host the last candidate:
        // next-or-bounce must bounce.
        Case {
            name: "ceiling-decides-last",
            policy: "# test\nname: ceil-test\nsummary: t\nsource: t\nextends: klensin-strict\non: {ehlo: {5yz: next-or-bounce}}\n",
            world: "title: t\nmessage: {to: [a@foo.example]}\ndns: {foo.example: {mx: [10 one.foo.example, 20 two.foo.example]}}\nservers: {one.foo.example: {ehlo_reply: \"554 5.7.1 no\"}, two.foo.example: {}}\n",
            must: &["bounced"],
            must_not: &["two.foo.example)"],
        },
        // A client that stops waiting for the TLS handshake says so in the trace.
        Case {
            name: "tls-give-up",
            policy: "# test\nname: tls-test\nsummary: t\nsource: t\nextends: rfc5321\ntimeouts: {tls: 1s}\n",
            world: "title: t\nmessage: {to: [a@foo.example], requires: [STARTTLS]}\ndns: {foo.example: {mx: [10 slow.foo.example, 20 good.foo.example]}}\nservers: {slow.foo.example: {ehlo: [STARTTLS], latency: 2s}, good.foo.example: {ehlo: [STARTTLS]}}\n",
            must: &[
                "TLS handshake unfinished; client gave up after 1s",
                "delivered via good.foo.example",
            ],
            must_not: &[],
        },
        // The address limit cuts the candidate list (Postfix's smtp_mx_address_limit); the
        // reason counts the addresses actually tried.
        Case {
            name: "address-limit-counts",
            policy: "# test\nname: addr-test\nsummary: t\nsource: t\nextends: rfc5321\nlimits: {addresses: 2}\non: {connect: {dropped: next-host}}\n",
            world: "title: t\nmessage: {to: [a@foo.example]}\ndns:\n  foo.example: {mx: [10 hosta.foo.example, 20 hostb.foo.example]}\n  hosta.foo.example: {a: [192.0.2.1, 192.0.2.11]}\nservers: {hosta.foo.example: {connect: refuse}, hostb.foo.example: {}}\n",
            must: &["deferred: tried 1 of 2 addresses"],
            must_not: &["hostb.foo.example)"],
        },
        // The client recognises itself by any of its addresses before `addresses_per_host` cuts
        // a host's list: here its own address is me's second, and it is the best MX.
        Case {
            name: "self-before-limits",
            policy: "# test\nname: aph-one\nsummary: t\nsource: t\nextends: rfc5321\nlimits: {addresses_per_host: 1}\n",
            world: "title: t\nclient: {name: mta.sender.example, addresses: [192.0.2.20]}\nmessage: {to: [u@foo.example]}\ndns:\n  foo.example: {mx: [10 me.foo.example, 20 other.foo.example]}\n  me.foo.example: {a: [192.0.2.50, 192.0.2.20]}\nservers: {me.foo.example: {}, other.foo.example: {}}\n",
            must: &["bounced: mta.sender.example is itself the best MX"],
            must_not: &["> connect"],
        },
    ];
    for case in cases {
        let output = run_policy_file(case.name, case.policy, case.world);
        for fragment in case.must {
            assert!(
                output.stdout.contains(fragment),
                "{}: lacks {fragment:?}:\n{}{}",
                case.name,
                output.stdout,
                output.stderr
            );
        }
        for fragment in case.must_not {
            assert!(
                !output.stdout.contains(fragment),
                "{}: has {fragment:?}:\n{}",
                case.name,
                output.stdout
            );
        }
    }
}

/// Every rule with a checker is judged whatever `expect:` asks: a MUST broken without a
/// documented departure is a FAIL and exit 1; the same break documented under `departures:` is
/// DEPARTS and exit 0; departures are not inherited through `extends`.
#[test]
fn verdicts_fail_on_an_undocumented_must_and_show_departures() {
    let folder = folder(
        "cli-verdicts",
        &[
            (
                "nxdomain-to-a.yaml",
                "# Breaks D1 without saying so.\nname: my-nx\nsummary: test\nsource: test\nextends: rfc5321\nimplicit_mx: nodata-or-nxdomain\n",
            ),
            (
                "nxdomain-to-a-documented.yaml",
                "# Breaks D1 and says so.\nname: my-nx-doc\nsummary: test\nsource: test\nextends: rfc5321\nimplicit_mx: nodata-or-nxdomain\ndepartures:\n  D1: \"a test of departures\"\n",
            ),
            (
                "world.yaml",
                "title: MX NXDOMAIN, A present\nmessage: {to: [u@nx.example]}\ndns: {nx.example: {mx: nxdomain, a: [192.0.2.9]}}\nservers: {192.0.2.9: {}}\n",
            ),
        ],
    );
    let world = folder.join("world.yaml");
    let world = world.to_str().unwrap();
    let plain = folder.join("nxdomain-to-a.yaml");
    check(
        EXIT_FAILED,
        &["run", world, "--policy", plain.to_str().unwrap()],
        &["verdict my-nx: FAIL D1 MUST: connected to nx.example"],
        &[],
    );
    let documented = folder.join("nxdomain-to-a-documented.yaml");
    check(
        EXIT_OK,
        &["run", world, "--policy", documented.to_str().unwrap()],
        &[
            "verdict my-nx-doc: DEPARTS D1 MUST: connected to nx.example",
            "(departs: a test of departures)",
        ],
        &[],
    );
    check(
        EXIT_OK,
        &[
            "compare",
            world,
            "--policy",
            documented.to_str().unwrap(),
            "--policy",
            "postfix-3.11",
        ],
        &["DEPARTS D1", "my-nx-doc departs from D1 MUST (1 cell)"],
        &[],
    );
    // postfix-3.11 departs from D1; a file extending it without listing the departure fails.
    let heir = folder.join("heir.yaml");
    std::fs::write(
        &heir,
        "name: my-postfix\nsummary: test\nsource: test\nextends: postfix-3.11\n",
    )
    .unwrap();
    check(
        EXIT_FAILED,
        &["run", world, "--policy", heir.to_str().unwrap()],
        &["FAIL D1 MUST"],
        &[],
    );
}

/// `check` for CI: each format over a small fixture folder (a file that holds, one broken, one
/// that cannot be loaded, one without `expect:`), pinned; JSON parses, XML is escaped, TAP has
/// its version and plan, and located errors come before the summary.
#[test]
fn check_formats_for_ci() {
    for format in ["text", "json", "junit", "tap"] {
        let output = mxsim(&["check", "it/check_fixture", "--format", format]);
        assert_eq!(output.code, EXIT_BAD_INPUT, "{format}: {output:?}");
        let stdout = crate::policies::without_commit(&output.stdout);
        insta::assert_snapshot!(format!("check_{format}"), stdout);
        match format {
            "json" => {
                let _: serde_json::Value = serde_json::from_str(&output.stdout).expect("JSON");
            }
            "junit" => {
                assert!(stdout.starts_with("<?xml version=\"1.0\""), "{stdout}");
                assert!(stdout.contains("title: bad &lt;file&gt;"), "{stdout}");
                assert!(!stdout.contains("<file>"), "{stdout}");
            }
            "tap" => assert!(stdout.starts_with("TAP version 14\n1..5\n"), "{stdout}"),
            _ => {
                // Located errors on standard error, which the binary prints first.
                assert!(
                    output.stderr.contains("c-bad.yaml:3:1: error"),
                    "{output:?}"
                );
                assert!(stdout.contains("errors are above"), "{stdout}");
            }
        }
    }
    let quiet = mxsim(&["check", "it/check_fixture", "--quiet"]);
    assert!(!quiet.stdout.contains("ok    "), "{}", quiet.stdout);
    assert!(quiet.stdout.contains("FAIL  "), "{}", quiet.stdout);
    assert!(
        quiet.stdout.contains("1 file with errors"),
        "{}",
        quiet.stdout
    );
}

/// `mxsim --version` names the commit; completions come from clap's generator.
#[test]
fn version_and_completions() {
    let version = mxsim(&["--version"]);
    assert_eq!(
        version.stdout,
        format!(
            "mxsim {} (commit {})\n",
            env!("CARGO_PKG_VERSION"),
            mxsim_cli::COMMIT
        )
    );
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef mxsim"),
        ("fish", "complete -c mxsim"),
        ("elvish", "edit:completion"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let output = mxsim(&["completions", shell]);
        assert_eq!(output.code, EXIT_OK, "{shell}: {}", output.stderr);
        assert!(
            output.stdout.contains(marker),
            "{shell}:\n{}",
            output.stdout
        );
        assert!(output.stdout.contains("only-differences"), "{shell}");
    }
}

/// Text output fits the width it is given, with every preset on every shipped scenario, and
/// Markdown fits 72 columns; `--only-differences` leaves out the scenarios where all agree, and
/// the text ends with the next command.
#[test]
fn compare_fits_the_width() {
    let widest = |text: &str| {
        text.lines()
            .map(|line| line.chars().count())
            .max()
            .unwrap_or(0)
    };
    for width in ["80", "100"] {
        let output = mxsim(&["compare", "../scenarios", "--width", width]);
        assert_eq!(output.code, EXIT_OK, "{}", output.stderr);
        assert!(widest(&output.stdout) <= width.parse().unwrap(), "{width}");
        assert!(output.stdout.contains("\nNext:\n"), "{}", output.stdout);
        assert!(
            output.stdout.contains("INFO O10"),
            "verdict tags stay visible"
        );
    }
    let markdown = mxsim(&["compare", "../scenarios", "--format", "markdown"]);
    assert!(widest(&markdown.stdout) <= 72, "markdown");
    let all = mxsim(&["compare", "../scenarios/seed", "--width", "80"]);
    let only = mxsim(&[
        "compare",
        "../scenarios/seed",
        "--width",
        "80",
        "--only-differences",
    ]);
    assert!(only.stdout.len() <= all.stdout.len());
    let same = mxsim(&[
        "compare",
        "../scenarios/seed/base-case.yaml",
        "--policy",
        "rfc5321",
        "--policy",
        "klensin-strict",
        "--only-differences",
        "--width",
        "80",
    ]);
    assert!(
        same.stdout
            .starts_with("Every policy agrees on the one scenario."),
        "{}",
        same.stdout
    );
    check(
        EXIT_BAD_INPUT,
        &["compare", "../scenarios/seed", "--width", "10"],
        &[],
        &["10 is not in 40.."],
    );
}

/// Warnings, not errors: an MX target that nothing answers for (a did-you-mean when a name is
/// close) and a file without `expect:` are reported on standard error, and the run goes on;
/// `run` on a folder says it is one.
#[test]
fn warnings_do_not_stop_a_run() {
    let folder = folder(
        "cli-warnings",
        &[(
            "typo.yaml",
            "title: typo\nmessage: {to: [u@foo.example]}\ndns: {foo.example: {mx: [10 smtp1.foo.example, 20 backup.foo.exmaple]}, backup.foo.example: {a: [192.0.2.9]}}\nservers: {smtp1.foo.example: {}}\n",
        )],
    );
    let file = folder.join("typo.yaml");
    check(
        EXIT_OK,
        &["run", file.to_str().unwrap()],
        &["delivered via smtp1.foo.example"],
        &[
            "typo.yaml:3:25: warning: MX target backup.foo.exmaple has no records",
            "did you mean `backup.foo.example`?",
            "typo.yaml:1:1: warning: no `expect:`",
            "typo.yaml: 2 warnings",
        ],
    );
    check(
        EXIT_BAD_INPUT,
        &["run", folder.to_str().unwrap()],
        &[],
        &["is a folder: `run` takes one scenario file"],
    );
}

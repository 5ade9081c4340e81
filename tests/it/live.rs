//! `mxsim live`: real MTAs graded on the scenarios of `scenarios/live/`.
//!
//! The argument checks run everywhere, in-process. The runs themselves need root, namespaces
//! and the MTAs unpacked by `crates/mxsim-live/mta/install.sh`, and take real minutes: they run
//! only when `MXSIM_LIVE_TESTS=1` (`.ci/run` unpacks Postfix, Exim and OpenSMTPD and sets it). With the variable
//! set, a missing root or MTA fails the test with the reason; it never passes silently.

use std::path::{Path, PathBuf};
use std::process::Command;

use mxsim_cli::{EXIT_BAD_INPUT, Output, main_with};
use mxsim_tests::root;

fn mxsim(arguments: &[&str]) -> Output {
    main_with(
        std::iter::once("mxsim")
            .chain(arguments.iter().copied())
            .map(Into::into),
    )
}

#[test]
fn bad_arguments_exit_2_before_anything_runs() {
    let file = root().join("scenarios/live/connection-refused.yaml");
    let file = file.to_str().expect("a UTF-8 path");
    let cases: [(&[&str], &str); 4] = [
        (
            &["live", file, "--mta", "postfix", "--time-scale", "0"],
            "--time-scale 0 is outside",
        ),
        (
            &["live", file, "--mta", "postfix", "--time-scale", "2"],
            "--time-scale 2 is outside",
        ),
        (
            &["live", file, "--mta", "postfix", "--policy", "no-such"],
            "--policy no-such: no such preset",
        ),
        (
            &["live", "no/such/file.yaml", "--mta", "postfix"],
            "no/such/file.yaml",
        ),
    ];
    for (arguments, reason) in cases {
        let output = mxsim(arguments);
        assert_eq!(
            output.code, EXIT_BAD_INPUT,
            "{arguments:?}: {}",
            output.stderr
        );
        assert!(
            output.stderr.contains(reason),
            "{arguments:?}: {}",
            output.stderr
        );
        assert!(output.stdout.is_empty());
    }
    // A file with an error is reported with its line and column, and nothing runs.
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-bad");
    std::fs::create_dir_all(&folder).expect("the target tmp dir is writable");
    let bad = folder.join("bad.yaml");
    std::fs::write(
        &bad,
        "title: t\nmessage:\n  to: [user@foo.example]\nservers:\n  smtp1.foo.example: {rcpt: 999}\n",
    )
    .expect("writable");
    let output = mxsim(&["live", bad.to_str().expect("UTF-8"), "--mta", "postfix"]);
    assert_eq!(output.code, EXIT_BAD_INPUT);
    assert!(output.stderr.contains("bad.yaml:5:"), "{}", output.stderr);
}

/// Live tests run one at a time: the teardown test compares the host before and after, which
/// another live run in parallel would disturb, and two MTAs' timers on 2 cores make no sense.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The opt-in switch; `None` when live tests are off (the test then says so and returns).
/// With it on, the binary to run and the lock that keeps live tests one at a time.
fn live_tests(name: &str) -> Option<(PathBuf, std::sync::MutexGuard<'static, ()>)> {
    if std::env::var("MXSIM_LIVE_TESTS").as_deref() != Ok("1") {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "{name}: skipped; set MXSIM_LIVE_TESTS=1 (as root, after crates/mxsim-live/mta/install.sh) to run it, as .ci/run does"
            );
        }
        return None;
    }
    let guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Some((binary(), guard))
}

/// The `mxsim` binary, built for this test: live mode re-executes the binary it runs from,
/// which must be `mxsim`, not this test binary.
fn binary() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the tmp dir sits in the target dir")
        .to_path_buf();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--locked", "-p", "mxsim-cli", "--bin", "mxsim"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build of mxsim failed");
    target.join("debug/mxsim")
}

/// Every file of `scenarios/live/`, sorted.
fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios/live"))
        .expect("scenarios/live exists")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    files.sort();
    files
}

/// Files of the live corpus an MTA does not run, each with the words of the reason the run
/// must give. OpenSMTPD 6.8 cannot shorten its 300 s I/O timeout, so the cases that wait it out
/// would take minutes of real time (docs/live.md, "OpenSMTPD runs in real time").
const SKIPPED: &[(&str, &str, &str)] = &[
    (
        "opensmtpd",
        "lost-end-of-data-reply.yaml",
        "opensmtpd cannot shorten its timeouts",
    ),
    (
        "opensmtpd",
        "silent-greeting.yaml",
        "opensmtpd cannot shorten its timeouts",
    ),
];

/// Cases where a real MTA and its preset part on outcome, hosts or connection count, each with
/// its explanation (docs/live-agreement.md). Empty: on this corpus every run agrees.
const DISAGREES: &[(&str, &str, &str)] = &[];

/// One MTA on every file of the live corpus: each file's expectation for the MTA's preset must
/// hold (or the file is skipped for a listed reason), and the real run must agree with the
/// preset's prediction on outcome, hosts and connection count unless the disagreement is listed
/// in [`DISAGREES`].
fn holds_the_live_corpus(mta: &str, binary: &Path) {
    let files = corpus();
    assert!(files.len() >= 13, "the live corpus has at least 13 cases");
    let output = Command::new(binary)
        .arg("live")
        .args(&files)
        .args(["--mta", mta, "--format", "json"])
        .current_dir(root())
        .output()
        .expect("mxsim runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("a JSON report from the {mta} run: {stderr}"));
    let reports = reports.as_array().expect("one report per file");
    assert_eq!(reports.len(), files.len(), "{stderr}");
    for (file, report) in files.iter().zip(reports) {
        let name = file.file_name().expect("a file name").to_string_lossy();
        assert_eq!(report["mta"], mta, "{report:#}");
        let skip = SKIPPED
            .iter()
            .find(|(which, skipped, _)| *which == mta && *skipped == name);
        if let Some((_, _, reason)) = skip {
            assert_eq!(report["expectation"], "skipped", "{name}: {report:#}");
            assert!(
                report["problems"].to_string().contains(reason),
                "{name}: {report:#}"
            );
            continue;
        }
        assert_eq!(
            report["expectation"], "holds",
            "{name} against {mta}: {report:#}"
        );
        // The header states where every server listens, and the trace is in scenario time.
        assert!(
            report["header"].to_string().contains("listen: "),
            "{report:#}"
        );
        assert!(
            report["trace"]
                .as_str()
                .is_some_and(|trace| trace.contains("queue message 0 submitted")),
            "{report:#}"
        );
        let agrees = report["agreement"]["agrees"]
            .as_array()
            .is_some_and(|agrees| agrees.iter().all(|same| same == true));
        let listed = DISAGREES
            .iter()
            .any(|(which, disagreeing, _)| *which == mta && *disagreeing == name);
        assert_eq!(
            agrees,
            !listed,
            "{name} against {mta}: agreement with the preset {}: {report:#}",
            if listed {
                "was listed as broken"
            } else {
                "broke"
            }
        );
    }
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}

/// Real Postfix, on every file of the live corpus, held to `postfix-3.10`'s expectations; and
/// one file in the text format, headed by the file as given.
#[test]
fn postfix_holds_the_live_corpus() {
    let Some((binary, _one_at_a_time)) = live_tests("postfix_holds_the_live_corpus") else {
        return;
    };
    holds_the_live_corpus("postfix", &binary);
    let file = root().join("scenarios/live/connection-refused.yaml");
    let output = Command::new(&binary)
        .arg("live")
        .arg(&file)
        .args(["--mta", "postfix"])
        .output()
        .expect("mxsim runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "== {} (postfix)\n# live: postfix ",
            file.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("expect postfix-3.10: holds"), "{stdout}");
    assert!(stdout.contains("agreement with postfix-3.10"), "{stdout}");
}

/// Real Exim 4, on every file of the live corpus, held to `exim-4`'s expectations.
#[test]
fn exim_holds_the_live_corpus() {
    let Some((binary, _one_at_a_time)) = live_tests("exim_holds_the_live_corpus") else {
        return;
    };
    holds_the_live_corpus("exim", &binary);
}

/// Real OpenSMTPD, in real time, on every file of the live corpus it can run within the budget,
/// held to `opensmtpd-7`'s expectations.
#[test]
fn opensmtpd_holds_the_live_corpus() {
    let Some((binary, _one_at_a_time)) = live_tests("opensmtpd_holds_the_live_corpus") else {
        return;
    };
    holds_the_live_corpus("opensmtpd", &binary);
}

/// `--retry-at` makes the MTA retry its deferred mail when the harness says: without it, the
/// MTA's own first retry would come after the fixture's horizon and the message would stay
/// queued. Both runs are made, so the test shows the retry is the harness's doing. Postfix and
/// Exim run the scaled fixture (`postqueue -f`, `exim4 -qff`); OpenSMTPD, in real time, a short
/// one (`smtpctl schedule all`).
#[test]
fn retry_at_forces_the_mta_to_retry() {
    let Some((binary, _one_at_a_time)) = live_tests("retry_at_forces_the_mta_to_retry") else {
        return;
    };
    let cases = [
        ("postfix", "tests/it/live/retry-at.yaml", "2m"),
        ("exim", "tests/it/live/retry-at.yaml", "2m"),
        ("opensmtpd", "tests/it/live/retry-at-real-time.yaml", "20s"),
    ];
    for (mta, file, at) in cases {
        let file = root().join(file);
        let report = |extra: &[&str]| -> serde_json::Value {
            let output = Command::new(&binary)
                .args(["live", "--mta", mta, "--format", "json"])
                .args(extra)
                .arg(&file)
                .output()
                .expect("mxsim runs");
            let mut reports: serde_json::Value = serde_json::from_slice(&output.stdout)
                .unwrap_or_else(|_| panic!("{mta}: {}", String::from_utf8_lossy(&output.stderr)));
            reports[0].take()
        };
        let forced = report(&["--retry-at", at]);
        let verdict = forced["verdict"].to_string();
        assert!(
            verdict.contains("delivered via smtp1.foo.example"),
            "{mta}: {forced:#}"
        );
        assert!(
            forced["notes"]
                .to_string()
                .contains(&format!("--retry-at {at}")),
            "{mta}: {forced:#}"
        );
        let natural = report(&[]);
        assert!(
            natural["verdict"].to_string().contains("deferred"),
            "{mta}: {natural:#}"
        );
    }
}

/// What a live run could leave on the host, read from the host's side. Other live runs on
/// the same machine (another engineer's, another checkout's) live in their own namespaces and
/// do not show here; processes are counted only when they belong to the run under test.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    /// Listening TCP and UDP sockets on ports 25 and 53.
    listeners: Vec<String>,
    /// Every mount point.
    mounts: Vec<String>,
    /// Network interfaces.
    links: Vec<String>,
    /// The resolver's configuration.
    resolv_conf: String,
}

fn host_state() -> HostState {
    let mut listeners = Vec::new();
    for (file, kind) in [
        ("/proc/net/tcp", "tcp"),
        ("/proc/net/tcp6", "tcp6"),
        ("/proc/net/udp", "udp"),
        ("/proc/net/udp6", "udp6"),
    ] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let port = local
                .rsplit(':')
                .next()
                .and_then(|port| u16::from_str_radix(port, 16).ok());
            // 0A is LISTEN for TCP; 07 is an unconnected UDP socket.
            let listening = (kind.starts_with("tcp") && *state == "0A")
                || (kind.starts_with("udp") && *state == "07");
            if listening && matches!(port, Some(25 | 53)) {
                listeners.push(format!("{kind} {local}"));
            }
        }
    }
    listeners.sort();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo is readable")
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4).map(str::to_owned))
        .collect();
    mounts.sort();
    let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net is readable")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    links.sort();
    HostState {
        listeners,
        mounts,
        links,
        resolv_conf: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    }
}

/// Every process (pid and command line) whose command line names `marker` or that lives in
/// the PID namespace `namespace` (its `/proc/PID/ns/pid` link).
fn processes_of(marker: &str, namespace: Option<&str>) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let command = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let command = String::from_utf8_lossy(&command).replace('\0', " ");
        let in_namespace = namespace.is_some_and(|namespace| {
            std::fs::read_link(entry.path().join("ns/pid"))
                .is_ok_and(|link| link.to_string_lossy() == namespace)
        });
        if command.contains(marker) || in_namespace {
            found.push(format!("{pid} {command}"));
        }
    }
    found.sort();
    found
}

/// The PID namespace of the run's inner process (named by `marker` in its command line), once
/// it exists: polled, counted.
fn inner_namespace(marker: &str) -> Option<String> {
    for _ in 0..400 {
        for line in processes_of(marker, None) {
            if !line.contains("live --inside") || line.contains("unshare") {
                continue;
            }
            let pid = line.split(' ').next().expect("a pid");
            if let Ok(link) = std::fs::read_link(format!("/proc/{pid}/ns/pid")) {
                return Some(link.to_string_lossy().into_owned());
            }
        }
        pause(50);
    }
    None
}

/// Nothing is left behind: not after a run that ends, and not after one killed halfway (the
/// PID namespace ends the MTA). Compares listeners on ports 25 and 53, mount points, network
/// interfaces and /etc/resolv.conf before and after, and finds no process left of the run:
/// none naming its file, none in its PID namespace (the MTA's daemons).
#[test]
fn live_runs_leave_nothing_behind() {
    let Some((binary, _one_at_a_time)) = live_tests("live_runs_leave_nothing_behind") else {
        return;
    };
    // A copy under a name no other run uses marks this test's processes.
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-teardown");
    std::fs::create_dir_all(&folder).expect("the target tmp dir is writable");
    let file = folder.join(format!("teardown-{}.yaml", std::process::id()));
    std::fs::copy(root().join("scenarios/live/silent-greeting.yaml"), &file)
        .expect("the corpus file copies");
    let marker = file.display().to_string();
    let before = host_state();
    for kill in [false, true] {
        let mut child = Command::new(&binary)
            .args(["live", "--mta", "postfix"])
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mxsim runs");
        let namespace = inner_namespace(&marker).expect("the run started its inner process");
        // Postfix's master daemon comes up inside the run's namespace: polled, counted.
        let master = |lines: &[String]| {
            lines
                .iter()
                .any(|line| line.contains("/postfix/sbin/master"))
        };
        let mut during = processes_of(&marker, Some(&namespace));
        for _ in 0..200 {
            if master(&during) {
                break;
            }
            pause(50);
            during = processes_of(&marker, Some(&namespace));
        }
        assert!(
            master(&during),
            "Postfix runs inside the run's namespace: {during:?}"
        );
        if kill {
            // Killed while Postfix waits for the silent greeting: mxsim alone, as a crash
            // would; pdeathsig, --kill-child and the PID namespace take the rest down.
            pause(1000);
            child.kill().expect("the run can be killed");
            let _ = child.wait();
        } else {
            let status = child.wait().expect("the run ends");
            assert_eq!(status.code(), Some(0), "the whole run holds");
        }
        // The kernel tears the namespaces down asynchronously: poll, counted.
        let mut left = processes_of(&marker, Some(&namespace));
        let mut after = host_state();
        for _ in 0..100 {
            if left.is_empty() && after == before {
                break;
            }
            pause(100);
            left = processes_of(&marker, Some(&namespace));
            after = host_state();
        }
        let case = if kill {
            "a run killed halfway"
        } else {
            "a whole run"
        };
        assert!(
            left.is_empty(),
            "after {case}, processes are left: {left:?}"
        );
        assert_eq!(after, before, "after {case}");
    }
}

/// Real waiting, for the real processes of a live run (never a time the test asserts on).
#[allow(
    clippy::disallowed_methods,
    reason = "live runs are real processes in real time; the waits are counted polls, no assertion reads a clock"
)]
fn pause(millis: u64) {
    std::thread::sleep(std::time::Duration::from_millis(millis));
}

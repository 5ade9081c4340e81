//! `mxsim live`: real MTAs graded on the scenarios of `scenarios/live/`.
//!
//! The argument checks run everywhere, in-process. The runs themselves need root, namespaces
//! and the MTAs unpacked by `crates/mxsim-live/mta/install.sh`, and take real minutes: they run
//! only when `MXSIM_LIVE_TESTS=1` (`.ci/run` installs Postfix and sets it). With the variable
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
                "{name}: skipped; set MXSIM_LIVE_TESTS=1 (as root, after crates/mxsim-live/mta/install.sh postfix) to run it, as .ci/run does"
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

/// Real Postfix, on every file of the live corpus, held to `postfix-3.10`'s expectations:
/// each file must hold, or the run says where it broke.
#[test]
fn postfix_holds_the_live_corpus() {
    let Some((binary, _one_at_a_time)) = live_tests("postfix_holds_the_live_corpus") else {
        return;
    };
    let files = corpus();
    assert!(files.len() >= 13, "the live corpus has at least 13 cases");
    let output = Command::new(&binary)
        .arg("live")
        .args(&files)
        .args(["--mta", "postfix"])
        .current_dir(root())
        .output()
        .expect("mxsim runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "live corpus against Postfix:\n{stdout}\n{stderr}"
    );
    for file in &files {
        let name = file.strip_prefix(root()).expect("under the root");
        let section = stdout
            .split("== ")
            .find(|section| section.starts_with(&name.display().to_string()))
            .unwrap_or_else(|| panic!("no output for {}:\n{stdout}", name.display()));
        assert!(
            section.contains("expect postfix-3.10: holds"),
            "{}:\n{section}",
            name.display()
        );
        // The header states where every server listens, and the trace is in scenario time.
        assert!(section.contains("# listen: "), "{section}");
        assert!(section.contains("queue message 0 submitted"), "{section}");
    }
}

/// `--retry-at` makes the MTA retry its deferred mail when the harness says: without it,
/// Postfix's own first retry would come after the fixture's horizon and the message would stay
/// queued. Both runs are made, so the test shows the retry is the harness's doing.
#[test]
fn retry_at_forces_the_mta_to_retry() {
    let Some((binary, _one_at_a_time)) = live_tests("retry_at_forces_the_mta_to_retry") else {
        return;
    };
    let file = root().join("tests/it/live/retry-at.yaml");
    let report = |extra: &[&str]| -> serde_json::Value {
        let output = Command::new(&binary)
            .args(["live", "--mta", "postfix", "--format", "json"])
            .args(extra)
            .arg(&file)
            .output()
            .expect("mxsim runs");
        let mut reports: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("a JSON report");
        reports[0].take()
    };
    let forced = report(&["--retry-at", "2m"]);
    let verdict = forced["verdict"].to_string();
    assert!(
        verdict.contains("delivered via smtp1.foo.example"),
        "{forced:#}"
    );
    assert!(
        forced["notes"].to_string().contains("--retry-at 2m"),
        "{forced:#}"
    );
    let natural = report(&[]);
    assert!(
        natural["verdict"].to_string().contains("deferred"),
        "{natural:#}"
    );
}

/// What a live run could leave on the host, read from the host's side.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    /// Listening TCP and UDP sockets on ports 25 and 53.
    listeners: Vec<String>,
    /// Every mount point.
    mounts: Vec<String>,
    /// Processes of an MTA or of a live run.
    processes: Vec<String>,
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
    let mut processes = Vec::new();
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
        let mta = [
            "postfix",
            "/usr/lib/postfix",
            "master -w",
            "qmgr",
            "pickup",
            "postlogd",
        ]
        .iter()
        .any(|word| command.contains(word));
        if mta || command.contains("live --inside") || command.contains("unshare --net") {
            processes.push(format!("{pid} {command}"));
        }
    }
    processes.sort();
    let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net is readable")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    links.sort();
    HostState {
        listeners,
        mounts,
        processes,
        links,
        resolv_conf: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    }
}

/// Nothing is left behind: not after a run that ends, and not after one killed halfway (the
/// PID namespace ends the MTA). Compares listeners on ports 25 and 53, mount points, MTA and
/// live-mode processes, network interfaces and /etc/resolv.conf before and after.
#[test]
fn live_runs_leave_nothing_behind() {
    let Some((binary, _one_at_a_time)) = live_tests("live_runs_leave_nothing_behind") else {
        return;
    };
    let before = host_state();
    assert!(
        before.processes.is_empty(),
        "an MTA or live run is already running on the host: {:?}",
        before.processes
    );
    let file = root().join("scenarios/live/silent-greeting.yaml");
    // A whole run.
    let output = Command::new(&binary)
        .args(["live", "--mta", "postfix"])
        .arg(&file)
        .output()
        .expect("mxsim runs");
    assert!(
        output.status.code() == Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(host_state(), before, "after a whole run");
    // A run killed while Postfix waits for the silent greeting: mxsim alone is killed, as a
    // crash would; pdeathsig and the PID namespace take the rest down.
    let mut child = Command::new(&binary)
        .args(["live", "--mta", "postfix"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mxsim runs");
    // Wait, by counted polls of what the host can see, until the run is inside (its inner
    // process exists); then kill the outer process.
    let mut inside = false;
    for _ in 0..400 {
        if host_state()
            .processes
            .iter()
            .any(|line| line.contains("live --inside"))
        {
            inside = true;
            break;
        }
        pause(50);
    }
    assert!(inside, "the live run never started its inner process");
    pause(2000);
    child.kill().expect("the run can be killed");
    let _ = child.wait();
    // The kernel tears the namespaces down asynchronously: poll, counted.
    let mut after = host_state();
    for _ in 0..100 {
        if after == before {
            break;
        }
        pause(100);
        after = host_state();
    }
    assert_eq!(after, before, "after a run killed halfway");
}

/// Real waiting, for the real processes of a live run (never a time the test asserts on).
#[allow(
    clippy::disallowed_methods,
    reason = "live runs are real processes in real time; the waits are counted polls, no assertion reads a clock"
)]
fn pause(millis: u64) {
    std::thread::sleep(std::time::Duration::from_millis(millis));
}

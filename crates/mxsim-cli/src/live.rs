//! `mxsim live`: check the arguments and the machine, load every file, then run each file in
//! its own namespaces (the same binary re-executed under `unshare`) and pass its output on as
//! it finishes. A live run of a file takes real seconds to minutes, so each file's text is
//! written as soon as it is in, not at the end.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use mxsim_live::{Mta, Options, clock::SCALE_RANGE, mta, namespace};
use mxsim_policy::registry;

use crate::files::{self, BadInput, shown};
use crate::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, Output};

/// Runs `mxsim live`.
pub fn live(
    files: &[PathBuf],
    mta: Mta,
    policy: Option<String>,
    scale: f64,
    inside: bool,
) -> Output {
    let policy = policy.unwrap_or_else(|| mta.preset().to_owned());
    if let Err(text) = check_arguments(&policy, scale) {
        return bad(text);
    }
    let options = Options { mta, policy, scale };
    if inside {
        return run_inside(files, &options);
    }
    // Every file loads before any runs: bad input costs no MTA time.
    let mut stderr = String::new();
    for file in files {
        match files::load(file, &|name| registry::is_known(name)) {
            Ok((_, warnings)) => stderr.push_str(&warnings),
            Err(BadInput { text }) => return bad(text),
        }
    }
    if let Err(text) = namespace::preflight().and_then(|()| mta::installed(mta).map(drop)) {
        return bad(format!("mxsim live: {text}\n"));
    }
    write_now(&stderr, true);
    let mut code = EXIT_OK;
    let mut counts = [0usize; 3];
    for file in files {
        let output = match mxsim_live::command(file, &options).output() {
            Ok(output) => output,
            Err(error) => return bad(format!("mxsim live: cannot run unshare: {error}\n")),
        };
        let file_code = match output.status.code() {
            Some(0) => EXIT_OK,
            Some(1) => EXIT_FAILED,
            _ => EXIT_BAD_INPUT,
        };
        counts[usize::from(file_code)] += 1;
        code = code.max(file_code);
        write_now(&String::from_utf8_lossy(&output.stdout), false);
        let mut errors = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.code().is_none_or(|code| code > 2) {
            errors.push_str(&format!(
                "{}: the run inside the namespace ended with {}\n",
                shown(file),
                output.status
            ));
        }
        write_now(&errors, true);
    }
    Output {
        stdout: String::new(),
        stderr: format!(
            "mxsim live: {} files against {}: {} held, {} broke, {} could not run\n",
            files.len(),
            options.mta.key(),
            counts[0],
            counts[1],
            counts[2]
        ),
        code,
    }
}

/// Writes `text` at once: a live corpus takes minutes, and each file's result is shown as it
/// comes in rather than all at the end.
fn write_now(text: &str, to_stderr: bool) {
    if to_stderr {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    } else {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
}

/// The inner run: one file, in this process's namespaces.
fn run_inside(files: &[PathBuf], options: &Options) -> Output {
    let [file] = files else {
        return bad("mxsim live --inside takes one file\n".to_owned());
    };
    let (scenario, warnings) = match files::load(file, &|name| registry::is_known(name)) {
        Ok(loaded) => loaded,
        Err(BadInput { text }) => return bad(text),
    };
    let _ = warnings;
    let (stdout, stderr, code) = mxsim_live::inside(Arc::clone(&scenario), &shown(file), options);
    Output {
        stdout,
        stderr,
        code,
    }
}

fn check_arguments(policy: &str, scale: f64) -> Result<(), String> {
    let (low, high) = SCALE_RANGE;
    if !(low..=high).contains(&scale) {
        return Err(format!(
            "mxsim live: --time-scale {scale} is outside {low}..={high} (real seconds per scenario second)\n"
        ));
    }
    if !registry::is_known(policy) {
        return Err(format!(
            "mxsim live: --policy {policy}: no such preset (`mxsim policies` lists them); live runs are held to a preset's `expect:` entries\n"
        ));
    }
    Ok(())
}

fn bad(text: String) -> Output {
    Output {
        stdout: String::new(),
        stderr: text,
        code: EXIT_BAD_INPUT,
    }
}

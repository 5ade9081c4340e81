//! The `mxsim` binary: parse, run, print, exit. Everything else is in the library.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let output = mxsim_cli::main_with(std::env::args_os());
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    // A closed pipe (`mxsim run … | head`) is not an error worth reporting.
    let _ = stdout.write_all(output.stdout.as_bytes());
    let _ = stderr.write_all(output.stderr.as_bytes());
    ExitCode::from(output.code)
}

//! The `mxsim` binary: parse, run, print, exit. Everything else is in the library.

use std::io::Write;
use std::process::ExitCode;

/// Counts allocations per thread for `mxsim bench`; every call goes to the system allocator.
#[global_allocator]
static ALLOCATOR: mxsim_meter::Counting = mxsim_meter::Counting;

fn main() -> ExitCode {
    let output = mxsim_cli::main_with(std::env::args_os());
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    // A closed pipe (`mxsim run … | head`) is not an error worth reporting.
    let _ = stdout.write_all(output.stdout.as_bytes());
    let _ = stderr.write_all(output.stderr.as_bytes());
    ExitCode::from(output.code)
}

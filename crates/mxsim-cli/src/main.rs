//! The `mxsim` binary: parse, run, print, exit. Everything else is in the library.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Counts allocations per thread for `mxsim bench`; every call goes to the system allocator.
#[global_allocator]
static ALLOCATOR: mxsim_meter::Counting = mxsim_meter::Counting;

fn main() -> ExitCode {
    // Text fits the terminal when standard output is one (`compare`'s layout).
    let environment = mxsim_cli::Environment {
        terminal_width: std::io::stdout()
            .is_terminal()
            .then(|| {
                // A terminal that reports no size (0 rows, some serial consoles) may still
                // have COLUMNS set by the shell.
                terminal_size::terminal_size()
                    .map(|(width, _)| usize::from(width.0))
                    .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
            })
            .flatten(),
    };
    let output = mxsim_cli::main_in(std::env::args_os(), environment);
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    // Standard error first: located errors and notes come before the listing and summary
    // that refer to them, also when both streams go to one terminal or log.
    // A closed pipe (`mxsim run … | head`) is not an error worth reporting.
    let _ = stderr.write_all(output.stderr.as_bytes());
    let _ = stderr.flush();
    let _ = stdout.write_all(output.stdout.as_bytes());
    ExitCode::from(output.code)
}

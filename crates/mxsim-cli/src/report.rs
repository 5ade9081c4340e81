//! `mxsim report`: the scenarios × policies matrix as a self-contained static HTML page,
//! `DIR/index.html`, each cell with a run's trace, its timeline picture and the command that
//! reproduces it (docs/report.md). The lab builds the page as a string; this module resolves the
//! arguments as `compare` does, and writes the file.

use std::path::{Path, PathBuf};

use mxsim_lab::report;

use crate::commands::{bad, load_all, notes, resolve_policies};
use crate::{EXIT_FAILED, EXIT_OK, Output};

/// The page's file name in `--out`.
pub const INDEX: &str = "index.html";

/// Runs `policies` (every registered one when empty) on the scenarios under `paths` (default
/// `scenarios`) and writes the page to `out/index.html`. Exit codes as `compare`'s: 1 when a
/// cell breaks its expectation or ends in a policy error, 2 for bad input or a file that cannot
/// be written.
pub fn report_command(paths: &[PathBuf], arguments: &[String], out: &Path) -> Output {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        paths.to_vec()
    };
    let (specs, policy_files) = match resolve_policies(arguments) {
        Ok(resolved) => resolved,
        Err(output) => return output,
    };
    let (loaded, found_notes) = match load_all(&paths) {
        Ok(loaded) => loaded,
        Err(output) => return output,
    };
    let mut page = report::build(&loaded, &specs);
    page.compare.mxsim = crate::build();
    page.compare.policy_files = policy_files;
    let html = report::html(&page);
    let index = out.join(INDEX);
    if let Err(error) = std::fs::create_dir_all(out).and_then(|()| std::fs::write(&index, &html)) {
        return bad(format!(
            "error: cannot write {}: {error}\n",
            crate::files::shown(&index)
        ));
    }
    let rows = &page.compare.scenarios;
    let cells: usize = rows.iter().map(|row| row.cells.len()).sum();
    let broken = rows.iter().any(|row| {
        row.cells
            .iter()
            .any(|cell| matches!(cell.expect, "broken" | "error"))
    });
    Output {
        stdout: format!(
            "wrote {}: {} scenarios × {} policies, {cells} cells, {} bytes\n",
            crate::files::shown(&index),
            rows.len(),
            page.compare.policies.len(),
            html.len()
        ),
        stderr: notes(&found_notes),
        code: if broken { EXIT_FAILED } else { EXIT_OK },
    }
}

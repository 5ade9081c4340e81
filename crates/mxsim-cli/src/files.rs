//! Finding scenario files and loading them, with every problem located and nothing skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxsim_model::diag::Diagnostics;
use mxsim_model::scenario::{self, Scenario};
use mxsim_model::yaml::Position;

/// A file that could not be used, already rendered for the terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadInput {
    /// The rendered problems.
    pub text: String,
}

/// Every `.yaml`/`.yml` file under `paths` (files as given, folders recursively), sorted within
/// each folder; a path that does not exist is an error.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, BadInput> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files).map_err(|error| BadInput {
                text: format!("{}: {error}\n", path.display()),
            })?;
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(BadInput {
                text: format!("{}: no such file or folder\n", path.display()),
            });
        }
    }
    Ok(files)
}

fn walk(folder: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            walk(&entry, files)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(entry);
        }
    }
    Ok(())
}

/// Reads and loads one scenario; `is_policy` says which `expect:` names are known.
pub fn load(path: &Path, is_policy: &dyn Fn(&str) -> bool) -> Result<Arc<Scenario>, BadInput> {
    let shown = path.display().to_string();
    // Read at most one byte past the limit: a huge file (or /dev/zero) is refused by the YAML
    // layer's size check without being read whole.
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|file| {
        use std::io::Read;
        file.take(mxsim_model::yaml::BYTES_MAX as u64 + 1)
            .read_to_end(&mut bytes)
    });
    read.map_err(|error| BadInput {
        text: format!("{shown}: cannot read: {error}\n"),
    })?;
    if bytes.len() > mxsim_model::yaml::BYTES_MAX {
        return Err(BadInput {
            text: format!(
                "{shown}:1:1: error: file is larger than {} bytes, the limit for scenario and policy files\n{shown}: 1 error\n",
                mxsim_model::yaml::BYTES_MAX
            ),
        });
    }
    let source = match String::from_utf8(bytes) {
        Ok(source) => source,
        Err(error) => {
            let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
            let text = String::from_utf8_lossy(valid);
            let line = text.matches('\n').count() as u32 + 1;
            let column = text
                .rsplit('\n')
                .next()
                .map_or(0, |last| last.chars().count()) as u32
                + 1;
            let mut diagnostics = Diagnostics::default();
            diagnostics.error(
                Position { line, column },
                format!("not UTF-8 text (invalid byte at offset {})", valid.len()),
            );
            return Err(BadInput {
                text: diagnostics.render(&shown, &text),
            });
        }
    };
    scenario::load(&source, is_policy)
        .map(Arc::new)
        .map_err(|diagnostics| BadInput {
            text: diagnostics.render(&shown, &source),
        })
}

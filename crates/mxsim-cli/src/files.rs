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

/// What [`collect`] found.
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// The files, in order.
    pub files: Vec<PathBuf>,
    /// Things passed over that a reader should know about (a folder reached again through a
    /// link), one line each.
    pub notes: Vec<String>,
}

/// Every `.yaml`/`.yml` file under `paths` (files as given, folders recursively), sorted within
/// each folder; a path that does not exist is an error. Each folder is read once, by its
/// canonical path, so a link loop cannot make the walk read a folder again (or forever). A
/// non-regular file (a FIFO, a socket, a device) is listed like any other and refused when read.
pub fn collect(paths: &[PathBuf]) -> Result<Found, BadInput> {
    let mut found = Found::default();
    let mut walked = std::collections::BTreeSet::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut found, &mut walked).map_err(|error| BadInput {
                text: format!("{}: {error}\n", shown(path)),
            })?;
        } else if path.exists() || path.symlink_metadata().is_ok() {
            found.files.push(path.clone());
        } else {
            return Err(BadInput {
                text: format!("{}: no such file or folder\n", shown(path)),
            });
        }
    }
    Ok(found)
}

fn walk(
    folder: &Path,
    found: &mut Found,
    walked: &mut std::collections::BTreeSet<PathBuf>,
) -> std::io::Result<()> {
    let canonical = std::fs::canonicalize(folder)?;
    if !walked.insert(canonical.clone()) {
        found.notes.push(format!(
            "note: {} was not read again: it is {}, already read (a link loop, or two links to one folder)",
            shown(folder),
            shown(&canonical)
        ));
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            walk(&entry, found, walked)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            found.files.push(entry);
        }
    }
    Ok(())
}

/// A path for the terminal: control characters in a file name are escaped.
pub fn shown(path: &Path) -> String {
    mxsim_model::escape::terminal(&path.display().to_string()).into_owned()
}

/// Reads a scenario or policy file as text, refusing what is not a regular file, what is larger
/// than the input budget ([`mxsim_model::yaml::BYTES_MAX`]; at most one byte more is read) and
/// what is not UTF-8, each with a located error.
pub fn read_text(path: &Path) -> Result<String, BadInput> {
    let name = shown(path);
    // Opening a FIFO blocks until a writer comes, so the type is checked first.
    let metadata = std::fs::metadata(path).map_err(|error| BadInput {
        text: format!("{name}: cannot read: {error}\n"),
    })?;
    if !metadata.is_file() {
        let kind = if metadata.is_dir() {
            "a folder"
        } else {
            file_kind(&metadata)
        };
        return Err(BadInput {
            text: format!(
                "{name}:1:1: error: not a regular file ({kind}); scenario and policy files must be regular files\n{name}: 1 error\n"
            ),
        });
    }
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|file| {
        use std::io::Read;
        file.take(mxsim_model::yaml::BYTES_MAX as u64 + 1)
            .read_to_end(&mut bytes)
    });
    read.map_err(|error| BadInput {
        text: format!("{name}: cannot read: {error}\n"),
    })?;
    if bytes.len() > mxsim_model::yaml::BYTES_MAX {
        return Err(BadInput {
            text: format!(
                "{name}:1:1: error: file is larger than {} bytes, the limit for scenario and policy files\n{name}: 1 error\n",
                mxsim_model::yaml::BYTES_MAX
            ),
        });
    }
    String::from_utf8(bytes).map_err(|error| {
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
        BadInput {
            text: diagnostics.render(&name, &text),
        }
    })
}

#[cfg(unix)]
fn file_kind(metadata: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn file_kind(_: &std::fs::Metadata) -> &'static str {
    "not a file"
}

/// A scenario that loaded, with its warnings rendered (empty when there are none).
pub type Loaded = (Arc<Scenario>, String);

/// Reads and loads one scenario; `is_policy` says which `expect:` names are known. Its
/// warnings come back rendered as `file:line:column: warning: …`, for standard error.
pub fn load(path: &Path, is_policy: &dyn Fn(&str) -> bool) -> Result<Loaded, BadInput> {
    let source = read_text(path)?;
    scenario::load_named(&source, is_policy, &mxsim_policy::registry::names())
        .map(|scenario| {
            let warnings = scenario.warnings.render_warnings(&shown(path), &source);
            (Arc::new(scenario), warnings)
        })
        .map_err(|diagnostics| BadInput {
            text: diagnostics.render(&shown(path), &source),
        })
}

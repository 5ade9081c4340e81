//! Build script: the commit `mxsim --version` and every report name, from git when the build
//! has it (`git rev-parse --short HEAD`, `-dirty` when tracked files changed), else `unknown`
//! (a tarball, or a machine without git): a build never fails for want of git.

use std::path::Path;
use std::process::Command;

fn git(arguments: &[&str]) -> Option<String> {
    let output = Command::new("git").args(arguments).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MXSIM_COMMIT");
    // A packager without git can name the commit itself.
    let commit = std::env::var("MXSIM_COMMIT").ok().or_else(|| {
        let hash = git(&["rev-parse", "--short", "HEAD"])?;
        // Only tracked files count: build outputs and editor files are not the source.
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|status| !status.is_empty());
        // Build again when HEAD moves, a commit lands on its branch, or the index changes.
        if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
            for file in ["HEAD", "index"] {
                let path = Path::new(&git_dir).join(file);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
            if let (Some(common), Some(branch)) = (
                git(&["rev-parse", "--git-common-dir"]),
                git(&["symbolic-ref", "-q", "HEAD"]),
            ) {
                for path in [
                    Path::new(&common).join(&branch),
                    Path::new(&common).join("packed-refs"),
                ] {
                    if path.exists() {
                        println!("cargo:rerun-if-changed={}", path.display());
                    }
                }
            }
        }
        Some(if dirty { format!("{hash}-dirty") } else { hash })
    });
    println!(
        "cargo:rustc-env=MXSIM_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}

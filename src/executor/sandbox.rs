//! `--job-sandbox bwrap`: each job shell runs under Debian's bubblewrap in a mount namespace
//! where the whole file system is read-only, the data dir is an empty tmpfs (no key, database,
//! mirrors, logs or other workspaces), only the job's own workspace and private folder are
//! mounted writable, and `/tmp` is private. Works without root (user namespaces). It does not
//! isolate the network or hide other processes, and the rest of the host stays readable.

use std::path::Path;
use std::process::{Command, Stdio};

/// Refuses to start when `bwrap` cannot run a command here.
pub fn check_available() -> Result<(), String> {
    let ok = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--dev", "/dev", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err("--job-sandbox bwrap: bubblewrap cannot run here (install the bubblewrap package; unprivileged use needs user namespaces)".into())
    }
}

/// The `bwrap` arguments that wrap a shell for a job whose folders are `project_dir` and
/// `private_dir`, hiding `data_dir`; the shell's own command line follows them.
pub fn arguments(data_dir: &Path, project_dir: &Path, private_dir: &Path) -> Vec<String> {
    let path = |p: &Path| p.to_string_lossy().to_string();
    vec![
        "--ro-bind".into(),
        "/".into(),
        "/".into(),
        "--dev".into(),
        "/dev".into(),
        "--proc".into(),
        "/proc".into(),
        "--tmpfs".into(),
        "/tmp".into(),
        "--tmpfs".into(),
        path(data_dir),
        "--bind".into(),
        path(project_dir),
        path(project_dir),
        "--bind".into(),
        path(private_dir),
        path(private_dir),
        "--chdir".into(),
        path(project_dir),
        "--die-with-parent".into(),
        "--".into(),
    ]
}

//! The OCI engine (`--job-engine`) that runs the built-in executor's jobs with `image:` in
//! containers: podman or a reachable docker daemon, driven through its command line. Found
//! once at start; without one, such jobs run on the host with a warning, as gitlab-runner's
//! shell executor does.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Which engine `--job-engine` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// podman, else docker, else none.
    Auto,
    /// podman only (spur refuses to start without it).
    Podman,
    /// docker only (spur refuses to start without a reachable daemon).
    Docker,
    /// No containers: jobs with `image:` run on the host.
    None,
}

impl Choice {
    /// Reads `auto`, `podman`, `docker` or `none`.
    pub fn parse(text: &str) -> Option<Choice> {
        match text {
            "auto" => Some(Choice::Auto),
            "podman" => Some(Choice::Podman),
            "docker" => Some(Choice::Docker),
            "none" => Some(Choice::None),
            _ => None,
        }
    }
}

/// A container engine that answered at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// `podman` or `docker`: the program run, and the name shown.
    pub program: &'static str,
    /// The version it reported.
    pub version: String,
}

/// How long the engine may take to say its version.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

impl Engine {
    /// Finds the engine `choice` asks for: `Ok(None)` for `none`, or for `auto` when neither
    /// answers; an error when the one asked for by name does not.
    pub fn find(choice: Choice) -> Result<Option<Engine>, String> {
        match choice {
            Choice::None => Ok(None),
            Choice::Podman => probe("podman").map(Some),
            Choice::Docker => probe("docker").map(Some),
            Choice::Auto => Ok(probe("podman").or_else(|_| probe("docker")).ok()),
        }
    }

    /// Whether this is podman (pods, `isolate` networks, JSON entrypoints).
    pub fn is_podman(&self) -> bool {
        self.program == "podman"
    }

    /// A command of the engine's, with no stdin, killed when dropped.
    pub fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(self.program);
        c.stdin(Stdio::null()).kill_on_drop(true);
        c
    }

    /// Removes, blocking, every container and network spur made with `label` (those a crash
    /// left behind).
    pub fn remove_labelled(&self, label: &str) {
        let filter = format!("label={label}");
        let listed = Command::new(self.program)
            .args(["ps", "-a", "-q", "--filter", &filter])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        if let Ok(out) = listed {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new(self.program)
                    .args(if self.is_podman() {
                        &["rm", "-f", "-v", "-t", "0"][..]
                    } else {
                        &["rm", "-f", "-v"][..]
                    })
                    .args(&ids)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let listed = Command::new(self.program)
            .args(["network", "ls", "-q", "--filter", &filter])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        if let Ok(out) = listed {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new(self.program)
                    .args(["network", "rm", id])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// Asks `program` for its version (docker's server version: its daemon must answer).
fn probe(program: &'static str) -> Result<Engine, String> {
    let format = if program == "podman" {
        "{{.Client.Version}}"
    } else {
        "{{.Server.Version}}"
    };
    let mut child = Command::new(program)
        .args(["version", "--format", format])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < PROBE_TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program} did not answer within {PROBE_TIMEOUT:?}"));
            }
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || version.is_empty() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{program} version failed: {}", why.trim()));
    }
    Ok(Engine { program, version })
}

/// A label value naming one spur's containers: a digest of its data dir, so that two spurs on
/// one host never remove each other's.
pub fn instance_label(data_dir: &Path) -> String {
    let digest = blake3::hash(data_dir.as_os_str().as_encoded_bytes());
    format!("spur.instance={}", &digest.to_hex()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices() {
        assert_eq!(Choice::parse("auto"), Some(Choice::Auto));
        assert_eq!(Choice::parse("none"), Some(Choice::None));
        assert_eq!(Choice::parse("lxc"), None);
        assert_eq!(Engine::find(Choice::None), Ok(None));
    }

    #[test]
    fn instances_differ_by_data_dir() {
        assert_ne!(instance_label(Path::new("/a")), instance_label(Path::new("/b")));
        assert!(instance_label(Path::new("/a")).starts_with("spur.instance="));
    }
}

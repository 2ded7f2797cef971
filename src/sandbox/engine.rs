//! The OCI engine (`--job-engine`) that runs the built-in executor's jobs with `image:` in
//! containers: podman or a reachable docker daemon, driven through its command line. Found
//! once: at start when one is named, in the background for `auto` (asking podman takes longer
//! than spur needs to start); without one, such jobs run on the host with a warning, as
//! gitlab-runner's shell executor does.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
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

/// The engine spur settled on: known at start, or still to be looked for (`auto`).
#[derive(Debug, Default)]
pub struct Detected {
    found: OnceLock<Option<Engine>>,
}

impl Detected {
    /// For `--job-engine podman|docker|none`: probes the one named now (an error when it does
    /// not answer); for `auto`, leaves the looking to [`Detected::detect`].
    pub fn start(choice: Choice) -> Result<Detected, String> {
        let detected = Detected::default();
        let known = match choice {
            Choice::Auto => return Ok(detected),
            Choice::None => None,
            Choice::Podman => Some(probe("podman")?),
            Choice::Docker => Some(probe("docker")?),
        };
        let _ = detected.found.set(known);
        Ok(detected)
    }

    /// Looks for podman, else docker, unless the engine is known already. Blocks for as long as
    /// the engine takes to answer: run it off the async threads, before jobs are taken.
    pub fn detect(&self) -> Option<&Engine> {
        self.found
            .get_or_init(|| probe("podman").or_else(|_| probe("docker")).ok())
            .as_ref()
    }

    /// The engine, once known; `None` when there is none or `auto` is still looking.
    pub fn get(&self) -> Option<&Engine> {
        self.found.get().and_then(Option::as_ref)
    }

    /// What is known, read once: `None` while `auto` is still looking, else the engine or none.
    pub fn state(&self) -> Option<Option<&Engine>> {
        self.found.get().map(Option::as_ref)
    }

    /// Settles on no engine if the looking ended without an answer (it failed outright).
    pub fn settle_none(&self) {
        let _ = self.found.set(None);
    }
}

/// How long the engine may take to say its version.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

impl Engine {
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
        let none = Detected::start(Choice::None).unwrap();
        assert!(matches!(none.state(), Some(None)), "none is known at once");
        let auto = Detected::start(Choice::Auto).unwrap();
        assert!(auto.state().is_none(), "auto looks later, off the start-up path");
        auto.settle_none();
        assert!(matches!(auto.state(), Some(None)));
    }

    #[test]
    fn instances_differ_by_data_dir() {
        assert_ne!(instance_label(Path::new("/a")), instance_label(Path::new("/b")));
        assert!(instance_label(Path::new("/a")).starts_with("spur.instance="));
    }
}

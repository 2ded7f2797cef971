//! The processes of a job's scripts: one shell (or container engine client, its script on
//! stdin) with its output
//! streamed into the log through the masker, until it exits, times out or is canceled; then its
//! process group is killed, so nothing it started outlives it.

use super::{Log, ShellEnd};
use crate::executor::mask::Masker;
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::watch;

/// Job shells alive now (shutdown waits for them to be killed and reaped).
pub static LIVE_SHELLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs a prepared job shell with exactly `env` (a container engine: with spur's own), its output (stdout and stderr in one pipe)
/// streamed into the log, until it exits, times out or is canceled; then kills its process
/// group so nothing it started outlives it.
pub(super) async fn run_bash(
    mut cmd: tokio::process::Command,
    env: Option<&[(String, String)]>,
    input: Option<Vec<u8>>,
    timeout: Duration,
    cancel: Option<&mut watch::Receiver<bool>>,
    log: Log,
) -> (io::Result<ShellEnd>, Log) {
    let (reader, writer) = match io::pipe() {
        Ok(p) => p,
        Err(e) => return (Err(e), log),
    };
    let stderr = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return (Err(e), log),
    };
    if let Some(env) = env {
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    }
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(writer)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true);
    let spawned = cmd.spawn();
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return (Err(e), log),
    };
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(&input).await;
        });
    }
    let pid = child.id();
    LIVE_SHELLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let masker_for_loss = Masker::new(&[]);
    let pump = tokio::task::spawn_blocking(move || pump(reader, log));
    let ended = tokio::select! {
        status = child.wait() => match status {
            Ok(s) => Ok(ShellEnd::Exited(s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)))),
            Err(e) => Err(e),
        },
        _ = tokio::time::sleep(timeout) => Ok(ShellEnd::TimedOut),
        _ = canceled(cancel) => Ok(ShellEnd::Canceled),
    };
    if let Some(pid) = pid {
        kill_process_group(pid);
    }
    let _ = child.wait().await;
    LIVE_SHELLS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    match pump.await {
        Ok(log) => (ended, log),
        Err(e) => {
            tracing::error!(error = %e, "the log pump stopped; the rest of this job's log is lost");
            let lost = Log {
                writer: None,
                masker: masker_for_loss,
                failed: None,
            };
            (ended, lost)
        }
    }
}

/// Resolves when the cancel switch turns on; never without one.
async fn canceled(cancel: Option<&mut watch::Receiver<bool>>) {
    let Some(rx) = cancel else {
        return std::future::pending().await;
    };
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Copies the pipe into the log until every writer closed it.
fn pump(mut reader: io::PipeReader, mut log: Log) -> Log {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => log.output(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log.failed.get_or_insert(e);
                break;
            }
        }
    }
    log.end_output();
    log
}

/// Sends SIGKILL to a process group.
pub(super) fn kill_process_group(pgid: u32) {
    let Ok(pgid) = i32::try_from(pgid) else { return };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a negative pid
    // addresses the process group the job's shell leads (spawned with process_group(0)).
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

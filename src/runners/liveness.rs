//! Jobs running on GitLab runners report through trace patches and state updates. A runner that
//! disappears mid-job (host lost, process killed) reports nothing more; this sweep fails such
//! jobs with `runner_system_failure` once they have been silent for `--runner-job-timeout`, so
//! no job stays running forever. Contact times live in memory: after a restart every remote job
//! gets a fresh full timeout.

use crate::clock;
use crate::context::Spur;
use crate::domain::{JobStatus, Millis};
use crate::scheduler::JobEnd;

/// Fails silent remote jobs, checking every quarter of the timeout (at most every minute).
pub async fn run(spur: std::sync::Arc<Spur>) {
    let timeout_ms = (spur.runner_job_timeout_secs * 1000) as Millis;
    let every = std::time::Duration::from_millis((timeout_ms as u64 / 4).clamp(200, 60_000));
    let started = clock::now();
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = sweep(&spur, started, timeout_ms) {
            tracing::warn!(error = %e, "could not look for silent runner jobs");
        }
    }
}

/// One pass: every running remote job silent for `timeout_ms` (counting from the later of its
/// start and this server's start) is failed.
fn sweep(spur: &Spur, server_started: Millis, timeout_ms: Millis) -> Result<(), String> {
    let now = clock::now();
    let mut jobs = Vec::new();
    spur.store
        .for_each_active_job(|job| {
            if job.status == JobStatus::Running && job.runner_id.is_some() {
                jobs.push(job);
            }
        })
        .map_err(|e| e.to_string())?;
    for job in jobs {
        let since = job.started_at.unwrap_or(0).max(server_started);
        let last = spur.runner_contacts.last(job.id).unwrap_or(since).max(since);
        if now - last < timeout_ms {
            continue;
        }
        tracing::warn!(job_id = job.id, runner_id = ?job.runner_id, "the job's runner stopped reporting; failing the job");
        spur.traces.append_notice(
            job.id,
            &format!(
                "ERROR: Job failed: the runner has not reported for {} seconds (runner_system_failure)",
                timeout_ms / 1000
            ),
        );
        spur.runner_contacts.forget(job.id);
        spur.scheduler.finish(
            job.id,
            JobEnd::Failed {
                reason: "runner_system_failure".into(),
                exit_code: None,
            },
        );
    }
    Ok(())
}

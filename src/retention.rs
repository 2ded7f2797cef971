//! Retention: a background task that, every `--retention-interval`, deletes finished pipelines
//! older than `--keep-pipelines` (with their jobs, variables and logs) and job logs older than
//! `--keep-logs`, in small batches so that triggers never wait behind it. Off by default.

use crate::clock;
use crate::context::Spur;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use crate::config::RetentionPolicy as Policy;

/// Pipelines deleted per write; the writer commits them with whatever else arrives.
const BATCH: usize = 100;

/// Deletes browser sessions that have ended, every hour (they are otherwise only removed when
/// presented again).
pub async fn sweep_sessions(spur: Arc<Spur>) {
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        crate::accounts::remove_stale_root_credentials(&spur.data_dir);
        match spur.store.delete_expired_sessions(clock::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "deleted ended browser sessions"),
            Err(e) => tracing::warn!(error = %e, "could not delete ended sessions"),
        }
        match crate::idempotency::sweep(&spur).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(keys = n, "forgot idempotency keys older than a day"),
            Err(e) => tracing::warn!(error = %e, "could not forget old idempotency keys"),
        }
    }
}

/// Runs retention forever (returns at once when nothing is to be deleted).
pub async fn run(spur: Arc<Spur>) {
    let policy = spur.retention;
    if policy.keep_pipelines_secs == 0 && policy.keep_logs_secs == 0 {
        return;
    }
    loop {
        tokio::time::sleep(Duration::from_secs(policy.interval_secs.max(1))).await;
        match sweep(&spur, policy).await {
            Ok((pipelines, logs)) if pipelines + logs > 0 => {
                tracing::info!(pipelines, logs, "retention deleted old pipelines and logs");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention failed; it runs again later"),
        }
    }
}

/// One pass: old pipelines first, then old logs. Answers how many of each went.
pub async fn sweep(spur: &Spur, policy: Policy) -> Result<(usize, usize), String> {
    let mut pipelines = 0;
    if policy.keep_pipelines_secs > 0 {
        let cutoff = clock::now() - policy.keep_pipelines_secs as i64 * 1000;
        loop {
            let ids = spur
                .store
                .pipelines_finished_before(cutoff, BATCH)
                .map_err(|e| e.to_string())?;
            if ids.is_empty() {
                break;
            }
            for id in ids {
                let jobs = spur.store.pipeline_jobs(id).map_err(|e| e.to_string())?;
                if spur.store.delete_pipeline(id).await.map_err(|e| e.to_string())?.is_ok() {
                    for job in jobs {
                        crate::artifacts::remove_job_files(spur, job.id);
                    }
                    pipelines += 1;
                }
            }
            tokio::task::yield_now().await;
        }
    }
    let mut logs = 0;
    if policy.keep_logs_secs > 0 {
        let cutoff = SystemTime::now() - Duration::from_secs(policy.keep_logs_secs);
        for (job_id, modified) in spur.traces.all().map_err(|e| e.to_string())? {
            if modified >= cutoff {
                continue;
            }
            let active = spur
                .store
                .job(job_id)
                .map_err(|e| e.to_string())?
                .is_some_and(|j| j.status.is_active());
            if !active {
                spur.traces.remove(job_id);
                logs += 1;
            }
        }
    }
    Ok((pipelines, logs))
}

/// Deletes one pipeline on request (`DELETE /pipelines/:id`): its unfinished jobs are canceled
/// first (their processes stop), then the pipeline, its jobs and their logs and artifacts go.
/// Answers `Ok(false)` when it was already gone.
pub async fn delete_pipeline(spur: &Spur, pipeline_id: u64) -> Result<bool, String> {
    spur.scheduler
        .cancel(crate::scheduler::Target::Pipeline(pipeline_id))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let jobs = spur.store.pipeline_jobs(pipeline_id).map_err(|e| e.to_string())?;
    match spur
        .store
        .delete_pipeline(pipeline_id)
        .await
        .map_err(|e| e.to_string())?
    {
        Ok(()) => {
            for job in jobs {
                crate::artifacts::remove_job_files(spur, job.id);
            }
            Ok(true)
        }
        Err(_) => Ok(false),
    }
}

//! The built-in shell executor: `--concurrent` workers take untagged jobs from the scheduler's
//! queue, ask the scheduler to start them, run them (`shell`) in a fresh workspace
//! (`workspace`) with their output masked (`mask`) into the job log, and report how they ended.
//! It never changes job state itself.

pub mod artifacts;
pub mod job_files;
pub mod mask;
pub mod shell;
pub mod workspace;

use crate::context::Spur;
use std::sync::Arc;

/// The name jobs run by this executor show as their runner.
pub const RUNNER_NAME: &str = "spur-shell";

/// Starts `concurrent` workers (none for 0). Settles the container engine and removes
/// workspaces, containers and networks a previous run left behind, before any worker starts.
pub fn start(spur: Arc<Spur>, concurrent: usize) {
    workspace::clean_builds_dir(&spur.isolation.builds_dir, spur.isolation.other_uid());
    tokio::spawn(async move {
        // The engine is looked for here, off the start-up path: the server answers meanwhile,
        // and no worker takes a job before it is known.
        let cleanup = spur.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || {
            if let Some(engine) = cleanup.engine.detect() {
                engine.remove_labelled(&cleanup.engine_label);
            }
        })
        .await
        {
            tracing::error!(error = %e, "looking for a container engine failed; jobs with image: run on the host");
        }
        spur.engine.settle_none();
        tracing::info!(engine = %spur.describe_engine(), "job containers");
        for _ in 0..concurrent {
            let spur = spur.clone();
            tokio::spawn(async move { worker(spur).await });
        }
    });
}

async fn worker(spur: Arc<Spur>) {
    loop {
        let queued = tokio::select! {
            queued = spur.scheduler.queue.next(|j| j.tags.is_empty() && crate::scheduler::may_take(&spur.scheduler, &spur.store, j)) => queued,
            () = spur.shutdown.started() => return,
        };
        if spur.shutdown.is_started() {
            // Shutting down: the job stays pending and runs after the next start.
            spur.scheduler.queue.push(queued);
            return;
        }
        let Some(started) = spur.scheduler.start(queued.job_id, RUNNER_NAME).await else {
            continue;
        };
        let job_id = started.job.id;
        let grouped = queued.resource_group.is_some();
        if grouped {
            spur.scheduler.groups.executing(job_id);
        }
        if let Some(end) = shell::run(spur.clone(), started).await {
            spur.scheduler.finish(job_id, end);
        }
        if grouped {
            // The group is free once the job's last script (a canceled job's after_script
            // too) has ended.
            spur.scheduler.groups.executed(job_id);
            spur.scheduler.queue.wake();
        }
    }
}

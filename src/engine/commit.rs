//! The engine's commit of a batch (deciding, storing, then answering, queueing, signalling and
//! announcing) and its recovery after a restart.

use super::{Batch, Reply, State, Working, finish};
use crate::context::Spur;
use crate::domain::{Job, JobStatus, Millis, Pipeline, PipelineStatus};
use crate::scheduler::queue::{JobClass, QueuedJob};
use crate::scheduler::{JobEnd, Refusal, decide};
use crate::storage::{AddedJob, PipelineChange};
use std::collections::HashMap;
use std::sync::Arc;

/// Lets `decide` move each touched pipeline on, stores everything in one commit, then answers,
/// queues and signals.
pub(super) async fn commit(mut batch: Batch<'_>, state: &mut State) {
    let now = batch.now;
    let mut order = Vec::new();
    let mut changes = Vec::new();
    let mut mirrors = Vec::new();
    for (pid, w) in batch.pipelines.iter_mut() {
        for i in decide::advance(&mut w.jobs, now) {
            w.changed.insert(i);
        }
        if w.changed.is_empty() && w.tokens.is_empty() && w.sealed.is_empty() {
            continue;
        }
        let was_final = is_final(w.pipeline.status);
        update_pipeline(&mut w.pipeline, &w.jobs, now);
        if !was_final
            && let Some(up) = w.pipeline.upstream.as_ref().filter(|u| u.mirrored)
            && let Some(end) = crate::bridge::mirrored_end(w.pipeline.status)
        {
            mirrors.push((up.job_id, end));
        }
        let updated = w
            .changed
            .iter()
            .filter(|&&i| w.jobs[i].id != 0)
            .map(|&i| w.jobs[i].clone())
            .collect();
        let added_idx: Vec<usize> = (0..w.jobs.len()).filter(|&i| w.jobs[i].id == 0).collect();
        let added = added_idx
            .iter()
            .map(|&i| AddedJob {
                job: w.jobs[i].clone(),
                variables_from: w.added_from.get(&i).copied().unwrap_or_default(),
            })
            .collect();
        // While anything listens, the events go into this very commit (added jobs' events are
        // written by the store, once they have ids).
        let events = batch.spur.events.listened().then(|| events_of(w));
        changes.push(PipelineChange {
            pipeline: w.pipeline.clone(),
            updated,
            added,
            tokens: std::mem::take(&mut w.tokens),
            sealed: std::mem::take(&mut w.sealed),
            events,
        });
        order.push((*pid, added_idx));
    }
    // Starts are answered before the commit so that the executor prepares the workspace while
    // the commit is in flight; it waits for `durable` before running anything.
    let mut replies = Vec::with_capacity(batch.replies.len());
    let mut durability = Vec::new();
    for reply in batch.replies {
        match reply {
            Reply::Start(tx, started, made_durable) => {
                let id = started.job.id;
                if tx.send(Some(*started)).is_err() {
                    state.running.remove(&id);
                }
                durability.push((id, made_durable));
            }
            done => replies.push(done),
        }
    }
    let result = if changes.is_empty() {
        Ok(Vec::new())
    } else {
        batch.spur.store.apply_changes(changes).await
    };
    for (id, made_durable) in durability {
        if made_durable.send(result.is_ok()).is_err() || result.is_err() {
            state.running.remove(&id);
        }
    }
    let added = match result {
        Ok(added) => added,
        Err(e) => {
            tracing::error!(error = %e, "the scheduler could not store a batch; its requests were refused");
            for reply in replies {
                if let Reply::Done(tx, _) = reply {
                    let _ = tx.send(Err(Refusal::Storage(e.to_string())));
                }
            }
            // Jobs whose start was not stored are still pending: queue them again.
            for w in batch.pipelines.values() {
                for &i in &w.changed {
                    if w.jobs[i].status == JobStatus::Running && w.jobs[i].external.is_none() {
                        batch.spur.scheduler.queue.push(QueuedJob::new(
                            w.jobs[i].id,
                            JobClass {
                                tags: w.jobs[i].tags.clone(),
                                protected_ref: protected_ref(batch.spur, &w.pipeline),
                                resource_group: crate::scheduler::queued_group(&w.jobs[i]),
                            },
                        ));
                    }
                }
            }
            return;
        }
    };
    for ((pid, idx), jobs) in order.iter().zip(added) {
        for (i, job) in idx.iter().zip(jobs) {
            if let Some(w) = batch.pipelines.get_mut(pid) {
                w.jobs[*i] = job;
                w.changed.insert(*i);
            }
        }
    }
    for reply in replies {
        if let Reply::Done(tx, job) = reply {
            let id = job.and_then(|(pid, i)| batch.pipelines.get(&pid).map(|w| w.jobs[i].id));
            let _ = tx.send(Ok(id));
        }
    }
    announce(batch.spur, &batch.pipelines);
    // A job of a resource group that ended lets the group's next job be taken.
    let released = batch.pipelines.values().any(|w| {
        w.changed
            .iter()
            .any(|&i| w.jobs[i].status.is_complete() && w.jobs[i].settings.resource_group.is_some())
    });
    if released {
        batch.spur.scheduler.queue.wake();
    }
    for w in batch.pipelines.values() {
        let mut protected = None;
        for &i in &w.changed {
            let job = &w.jobs[i];
            match job.status {
                // An external status waits for its system, not for an executor.
                _ if job.external.is_some() => {}
                JobStatus::Pending => batch.spur.scheduler.queue.push(QueuedJob::new(
                    job.id,
                    JobClass {
                        tags: job.tags.clone(),
                        protected_ref: *protected.get_or_insert_with(|| protected_ref(batch.spur, &w.pipeline)),
                        resource_group: crate::scheduler::queued_group(job),
                    },
                )),
                JobStatus::Scheduled => {
                    state.timers.insert((job.scheduled_at.unwrap_or(now), job.id));
                }
                _ => {}
            }
        }
    }
    for id in batch.cancel_signals {
        if let Some(switch) = state.running.get(&id) {
            let _ = switch.send(true);
        }
    }
    for (job, pipeline) in batch.bridges {
        tokio::spawn(crate::bridge::run(batch.spur.clone(), job, pipeline));
    }
    for (bridge_job, end) in mirrors {
        batch.spur.scheduler.finish(bridge_job, end);
    }
}

/// The events a pipeline's changes announce: each stored job whose status changed, and the
/// pipeline's own status when it changed.
fn events_of(w: &Working) -> Vec<crate::events::Event> {
    let mut out = Vec::new();
    for &i in &w.changed {
        let job = &w.jobs[i];
        if job.id != 0 && w.loaded.1.get(i) != Some(&job.status) {
            out.push(crate::events::Event::Job(job.id, job.project_id, job.status));
        }
    }
    if w.pipeline.status != w.loaded.0 {
        out.push(crate::events::Event::Pipeline(
            w.pipeline.id,
            w.pipeline.project_id,
            w.pipeline.status,
        ));
    }
    out
}

/// Tells listeners (webhooks, commit statuses) which jobs and pipelines of a stored batch
/// changed status.
fn announce(spur: &Spur, pipelines: &HashMap<u64, Working>) {
    for w in pipelines.values() {
        for &i in &w.changed {
            let job = &w.jobs[i];
            if w.loaded.1.get(i) != Some(&job.status) && job.id != 0 {
                spur.events
                    .send(crate::events::Event::Job(job.id, job.project_id, job.status));
            }
        }
        if w.pipeline.status != w.loaded.0 {
            spur.events.send(crate::events::Event::Pipeline(
                w.pipeline.id,
                w.pipeline.project_id,
                w.pipeline.status,
            ));
        }
    }
}

/// Whether a pipeline's ref is protected (read once per pipeline and batch that queues jobs).
pub(super) fn protected_ref(spur: &Spur, p: &Pipeline) -> bool {
    crate::protected_refs::is_protected(spur, p.project_id, &p.ref_name, p.tag).unwrap_or(false)
}

pub(super) fn is_final(status: PipelineStatus) -> bool {
    matches!(
        status,
        PipelineStatus::Success | PipelineStatus::Failed | PipelineStatus::Canceled | PipelineStatus::Skipped
    )
}

/// Sets a pipeline's status and times from its jobs.
pub(super) fn update_pipeline(p: &mut Pipeline, jobs: &[Job], now: Millis) {
    let status = decide::pipeline_status(jobs);
    p.updated_at = now;
    if p.started_at.is_none() && jobs.iter().any(|j| j.started_at.is_some()) {
        p.started_at = jobs.iter().filter_map(|j| j.started_at).min();
    }
    p.finished_at = if is_final(status) { Some(now) } else { None };
    p.status = status;
}

/// Unfinished jobs recovered per commit after a restart.
const RECOVERY_SLICE: usize = 100;

/// After a restart: jobs that were running failed (their process died with the old server),
/// pending ones are queued again, delayed ones get their timers back, and every touched
/// pipeline is moved on.
pub(super) async fn recover(spur: &Arc<Spur>, state: &mut State) -> Result<(), String> {
    let ids = spur.store.active_job_ids().map_err(|e| e.to_string())?;
    if ids.is_empty() {
        return Ok(());
    }
    let mut interrupted = 0;
    let mut requeue = Vec::new();
    // In slices, each its own commit: a long queue left behind is never all in memory at once.
    for slice in ids.chunks(RECOVERY_SLICE) {
        let mut batch = Batch::new(spur);
        for &id in slice {
            let Some((pid, i)) = batch.job(id)? else { continue };
            let Some(job) = batch.pipelines.get(&pid).map(|w| &w.jobs[i]) else {
                continue;
            };
            match job.status {
                _ if job.external.is_some() => {}
                JobStatus::Running if job.runner_id.is_some() => {
                    // A GitLab runner still runs it; `runners::liveness` fails it if it went silent.
                }
                JobStatus::Running => {
                    interrupted += 1;
                    spur.traces.append_notice(
                        id,
                        "ERROR: Job failed: spur stopped while the job was running (runner_system_failure)",
                    );
                    let end = JobEnd::Failed {
                        reason: "runner_system_failure".into(),
                        exit_code: None,
                    };
                    finish(&mut batch, pid, i, &end);
                }
                // Pending jobs go back on the queue and delayed ones get their timers, without
                // writing them again; created ones move on in the commit if their turn came.
                JobStatus::Pending => {
                    if let Some(w) = batch.pipelines.get(&pid) {
                        requeue.push(QueuedJob::new(
                            id,
                            JobClass {
                                tags: job.tags.clone(),
                                protected_ref: protected_ref(spur, &w.pipeline),
                                resource_group: crate::scheduler::queued_group(job),
                            },
                        ));
                    }
                }
                JobStatus::Scheduled => {
                    state
                        .timers
                        .insert((job.scheduled_at.unwrap_or_else(crate::clock::now), id));
                }
                _ => {}
            }
        }
        commit(batch, state).await;
        for queued in requeue.drain(..) {
            spur.scheduler.queue.push(queued);
        }
    }
    tracing::info!(
        unfinished = ids.len(),
        interrupted,
        "recovered the jobs a previous run left unfinished"
    );
    // Give what recovery read back now rather than at the next periodic trim, so that a
    // restarted spur idles small.
    crate::memory::trim();
    Ok(())
}

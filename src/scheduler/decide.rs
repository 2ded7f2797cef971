//! GitLab's processing rules as pure functions over a pipeline's jobs: which `created` jobs
//! become pending, manual, scheduled or skipped once what they wait for is complete, and the
//! pipeline status that the jobs add up to (GitLab's `Ci::Status::Composite`). No IO.

use crate::domain::{Job, JobStatus, JobWhen, Millis, PipelineStatus};

/// Moves every `created` job whose prerequisites are complete to its next status, repeating until
/// nothing changes (a skipped job can release the next). Returns the indices of changed jobs.
/// Retried jobs are ignored: only each job's latest attempt counts.
pub fn advance(jobs: &mut [Job], now: Millis) -> Vec<usize> {
    let mut changed = Vec::new();
    loop {
        let mut progress = false;
        for i in 0..jobs.len() {
            if jobs[i].retried || jobs[i].status != JobStatus::Created {
                continue;
            }
            let Some(outcome) = prerequisites(jobs, i) else {
                continue;
            };
            let job = &mut jobs[i];
            job.status = next_status(job.when, outcome);
            match job.status {
                JobStatus::Pending => job.queued_at = Some(now),
                JobStatus::Scheduled => {
                    job.scheduled_at = Some(now + job.settings.start_in_secs.unwrap_or(0) as i64 * 1000)
                }
                _ => {}
            }
            if !changed.contains(&i) {
                changed.push(i);
            }
            progress = true;
        }
        if !progress {
            return changed;
        }
    }
}

/// What a job's prerequisites added up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All succeeded, were skipped or were allowed to fail.
    Success,
    /// One failed without being allowed to.
    Failed,
    /// One was canceled.
    Canceled,
}

/// The outcome of job `i`'s prerequisites, or `None` while one of them is unfinished: jobs of
/// earlier stages, or only the needed jobs with `needs`. A manual job that may fail does not
/// hold anything up; one that may not (`allow_failure: false`) blocks.
fn prerequisites(jobs: &[Job], i: usize) -> Option<Outcome> {
    let job = &jobs[i];
    let mut outcome = Outcome::Success;
    for (j, other) in jobs.iter().enumerate() {
        if j == i || other.retried {
            continue;
        }
        let relevant = match &job.needs {
            Some(needs) => needs.contains(&other.name),
            None => other.stage_index < job.stage_index,
        };
        if !relevant {
            continue;
        }
        match other.status {
            JobStatus::Success | JobStatus::Skipped => {}
            JobStatus::Manual if other.allow_failure => {}
            JobStatus::Failed if other.allow_failure => {}
            JobStatus::Failed => outcome = Outcome::Failed,
            JobStatus::Canceled => {
                if outcome == Outcome::Success {
                    outcome = Outcome::Canceled
                }
            }
            _ => return None,
        }
    }
    Some(outcome)
}

/// GitLab's `when` against the prerequisites' outcome.
fn next_status(when: JobWhen, outcome: Outcome) -> JobStatus {
    match (when, outcome) {
        (JobWhen::Always, _) => JobStatus::Pending,
        (JobWhen::OnFailure, Outcome::Failed) => JobStatus::Pending,
        (JobWhen::OnFailure, _) => JobStatus::Skipped,
        (_, Outcome::Failed | Outcome::Canceled) => JobStatus::Skipped,
        (JobWhen::Manual, Outcome::Success) => JobStatus::Manual,
        (JobWhen::Delayed, Outcome::Success) => JobStatus::Scheduled,
        _ => JobStatus::Pending,
    }
}

/// The status a pipeline's latest jobs add up to (`Ci::Status::Composite` with allowed failures:
/// a failed job that may fail counts as a success with warnings, a manual one that may as
/// nothing).
pub fn pipeline_status(jobs: &[Job]) -> PipelineStatus {
    use JobStatus as J;
    let mut set: Vec<&str> = Vec::new();
    for job in jobs.iter().filter(|j| !j.retried) {
        let key = match job.status {
            J::Failed if job.allow_failure => "warning",
            J::Manual if job.allow_failure => "ignored",
            other => other.as_str(),
        };
        if !set.contains(&key) {
            set.push(key);
        }
    }
    let only = |allowed: &[&str]| set.iter().all(|s| allowed.contains(s));
    let any = |wanted: &[&str]| set.iter().any(|s| wanted.contains(s));
    if set.is_empty() || only(&["skipped", "ignored"]) {
        PipelineStatus::Skipped
    } else if only(&["success", "skipped", "warning", "ignored"]) {
        PipelineStatus::Success
    } else if only(&["created", "warning", "ignored"]) {
        PipelineStatus::Created
    } else if only(&["canceled", "success", "skipped", "warning", "ignored"]) {
        PipelineStatus::Canceled
    } else if only(&["pending", "created", "skipped", "warning", "ignored"]) {
        PipelineStatus::Pending
    } else if any(&["running", "pending"]) {
        PipelineStatus::Running
    } else if any(&["manual"]) {
        PipelineStatus::Manual
    } else if any(&["scheduled"]) {
        PipelineStatus::Scheduled
    } else if any(&["created"]) {
        PipelineStatus::Running
    } else {
        PipelineStatus::Failed
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;

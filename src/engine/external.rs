//! Commit statuses posted by external systems (GitLab's generic commit statuses): a job in the
//! `external` stage that no executor runs, moved through GitLab's state machine by the API.

use super::{Batch, Reply};
use crate::domain::{ExternalStatus, Job, JobSettings, JobStatus, JobWhen};
use crate::scheduler::{Answer, PostedStatus, Refusal, StatusState};

/// The stage position of external statuses (GitLab's `EXTERNAL_STAGE_IDX`): after every stage.
pub const EXTERNAL_STAGE_INDEX: usize = 1_000_000;

/// Most jobs a pipeline may hold before an external status is refused (GitLab's
/// `ci_pipeline_size` plan limit on GitLab.com).
pub const MAX_PIPELINE_JOBS: usize = 2000;

/// Updates the poster's pending or running status of that name in pipeline `pid`, or adds a new
/// one (older ones of the name become retried), then applies the state asked for.
pub(super) fn post(batch: &mut Batch, pid: u64, status: PostedStatus, reply: Answer) -> Result<(), String> {
    let now = batch.now;
    let Some(w) = batch.pipeline(pid)? else {
        let _ = reply.send(Err(Refusal::NotFound));
        return Ok(());
    };
    let open = w.jobs.iter().position(|j| {
        !j.retried
            && j.external.is_some()
            && j.name == status.name
            && j.user_id == status.user_id
            && matches!(j.status, JobStatus::Pending | JobStatus::Running)
    });
    let (i, added) = match open {
        Some(i) => (i, false),
        None => {
            if w.jobs.len() >= MAX_PIPELINE_JOBS {
                let _ = reply.send(Err(Refusal::TooManyJobs));
                return Ok(());
            }
            let (id, project) = (w.pipeline.id, w.pipeline.project_id);
            w.jobs.push(new_status_job(id, project, &status, now));
            (w.jobs.len() - 1, true)
        }
    };
    let job = &mut w.jobs[i];
    if let Err(message) = transition(job, status.state, now) {
        if added {
            w.jobs.pop();
        }
        let _ = reply.send(Err(Refusal::Transition(message)));
        return Ok(());
    }
    let external = job.external.get_or_insert_with(ExternalStatus::default);
    if status.target_url.is_some() {
        external.target_url = status.target_url;
    }
    if status.description.is_some() {
        external.description = status.description;
    }
    if status.coverage.is_some() {
        external.coverage = status.coverage;
    }
    w.changed.insert(i);
    if added {
        // GitLab's `update_older_statuses_retried!`: only the newest job of a name counts.
        for (k, older) in w.jobs.iter_mut().enumerate() {
            if k != i && !older.retried && older.name == status.name {
                older.retried = true;
                w.changed.insert(k);
            }
        }
    }
    batch.replies.push(Reply::Done(reply, Some((pid, i))));
    Ok(())
}

/// A fresh external job (status `created`) in a pipeline.
fn new_status_job(pipeline_id: u64, project_id: u64, status: &PostedStatus, now: i64) -> Job {
    Job {
        id: 0,
        pipeline_id,
        project_id,
        name: status.name.clone(),
        stage: "external".into(),
        stage_index: EXTERNAL_STAGE_INDEX,
        status: JobStatus::Created,
        when: JobWhen::OnSuccess,
        allow_failure: false,
        allow_failure_exit_codes: Vec::new(),
        needs: None,
        before_script: Vec::new(),
        script: Vec::new(),
        after_script: Vec::new(),
        trigger: None,
        tags: Vec::new(),
        user_id: status.user_id,
        created_at: now,
        started_at: None,
        finished_at: None,
        settings: JobSettings::default(),
        queued_at: None,
        scheduled_at: None,
        failure_reason: None,
        exit_code: None,
        retried: false,
        attempt: 0,
        runner: None,
        bridge: None,
        runner_id: None,
        external: Some(ExternalStatus::default()),
        erased_at: None,
        played_variables: Vec::new(),
    }
}

/// GitLab's commit-status state machine: the event a state asks for, from the states it allows.
fn transition(job: &mut Job, state: StatusState, now: i64) -> Result<(), String> {
    use JobStatus as J;
    let from = job.status;
    let (event, allowed, to): (&str, &[JobStatus], JobStatus) = match state {
        StatusState::Pending => ("enqueue", &[J::Created], J::Pending),
        StatusState::Running => ("run", &[J::Created, J::Pending], J::Running),
        StatusState::Success => ("success", &[J::Created, J::Pending, J::Running], J::Success),
        StatusState::Failed => ("drop", &[J::Created, J::Pending, J::Running], J::Failed),
        StatusState::Canceled => ("cancel", &[J::Created, J::Pending, J::Running], J::Canceled),
        StatusState::Skipped => ("skip", &[J::Created], J::Skipped),
    };
    if !allowed.contains(&from) {
        return Err(format!(
            "Cannot transition status via :{event} from :{} (Reason(s): Status cannot transition via \"{event}\")",
            from.as_str()
        ));
    }
    job.status = to;
    match to {
        J::Pending => job.queued_at = Some(now),
        J::Running => {
            job.queued_at.get_or_insert(now);
            job.started_at = Some(now);
        }
        _ => job.finished_at = Some(now),
    }
    if to == J::Failed {
        job.failure_reason = Some("api_failure".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> Job {
        let status = PostedStatus {
            name: "default".into(),
            state: StatusState::Pending,
            user_id: 1,
            target_url: None,
            description: None,
            coverage: None,
        };
        new_status_job(1, 1, &status, 0)
    }

    #[test]
    fn follows_gitlabs_state_machine() {
        let mut j = created();
        assert!(transition(&mut j, StatusState::Running, 5).is_ok());
        assert_eq!((j.status, j.started_at), (JobStatus::Running, Some(5)));
        let err = transition(&mut j, StatusState::Running, 6).unwrap_err();
        assert_eq!(
            err,
            "Cannot transition status via :run from :running (Reason(s): Status cannot transition via \"run\")"
        );
        assert!(transition(&mut j, StatusState::Pending, 6).is_err());
        assert!(transition(&mut j, StatusState::Failed, 7).is_ok());
        assert_eq!(j.failure_reason.as_deref(), Some("api_failure"));
        assert!(transition(&mut j, StatusState::Success, 8).is_err());
        let mut k = created();
        assert!(transition(&mut k, StatusState::Skipped, 1).is_ok());
    }
}

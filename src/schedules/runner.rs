//! The one task that runs pipeline schedules: it sleeps until the earliest due run (at most a
//! minute, or until a schedule changes), then makes each due run's pipeline as the schedule's
//! owner. The pipeline's own commit moves the schedule on, so a run is made once: a restart
//! neither loses nor doubles one, and runs missed while spur was down start once at start-up.

use super::cron::CronSpec;
use crate::auth::ProjectAccess;
use crate::clock;
use crate::context::Spur;
use crate::domain::{Millis, PipelineSchedule, PipelineSource, Project, ScheduleRun, User};
use crate::pipeline_create::{CreateRefusal, CreateRequest};
use std::sync::Arc;
use std::time::Duration;

/// Longest sleep between looks at the schedules.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Runs schedules until shutdown.
pub async fn spawn(spur: Arc<Spur>) {
    loop {
        let now = clock::now();
        let earliest = match run_due(&spur, now).await {
            Ok(earliest) => earliest,
            Err(e) => {
                tracing::warn!(error = %e, "pipeline schedules could not be run; trying again");
                Some(now + 5_000)
            }
        };
        let wait = earliest.map_or(MAX_SLEEP, |at| {
            Duration::from_millis(u64::try_from(at - clock::now()).unwrap_or(0)).min(MAX_SLEEP)
        });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = spur.schedules_changed.notified() => {}
        }
    }
}

/// Makes the pipeline of every active schedule due at `now`; answers the earliest next run.
async fn run_due(spur: &Arc<Spur>, now: Millis) -> Result<Option<Millis>, String> {
    let all = spur.store.all_schedules().map_err(|e| e.to_string())?;
    let mut earliest: Option<Millis> = None;
    for schedule in all.into_iter().filter(|s| s.active) {
        let next = if schedule.next_run_at <= now {
            run_scheduled(spur, &schedule, now).await
        } else {
            schedule.next_run_at
        };
        earliest = Some(earliest.map_or(next, |e| e.min(next)));
    }
    Ok(earliest)
}

/// One due run, as the owner; answers the schedule's next run.
async fn run_scheduled(spur: &Arc<Spur>, schedule: &PipelineSchedule, now: Millis) -> Millis {
    let next = match CronSpec::parse(&schedule.cron, &schedule.cron_timezone) {
        Ok(spec) => super::next_run(spur, &spec, now, Some(schedule.next_run_at)),
        Err(_) => Millis::MAX,
    };
    let run = ScheduleRun {
        schedule_id: schedule.id,
        due: Some(schedule.next_run_at),
        next,
    };
    let who = owner(spur, schedule);
    let outcome = match who {
        Ok(Some((project, user, access))) => run_as(spur, project, schedule, user, access, run).await,
        Ok(None) => {
            refused(
                spur,
                run,
                "The schedule's owner or project no longer exists".into(),
                now,
            )
            .await;
            Ok(())
        }
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        tracing::warn!(schedule_id = schedule.id, error = %e, "a scheduled pipeline could not be created");
        return now + 5_000;
    }
    next
}

/// The schedule's project, its owner and the owner's access now.
fn owner(spur: &Spur, schedule: &PipelineSchedule) -> Result<Option<(Project, User, ProjectAccess)>, String> {
    let Some(project) = spur.store.project(schedule.project_id).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let Some(user) = spur.store.user(schedule.owner_id).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let access =
        crate::auth::project_access(&spur.store, Some(&user), &project, clock::now()).map_err(|e| e.to_string())?;
    Ok(Some((project, user, access)))
}

/// Creates the schedule's pipeline as `user`, with its variables. A refusal (the user may no
/// longer run pipelines on the ref, the ref is gone) makes no pipeline: the schedule moves on
/// and keeps GitLab's reason. A broken `.gitlab-ci.yml` makes a failed pipeline, as on GitLab.
pub(super) async fn run_as(
    spur: &Arc<Spur>,
    project: Project,
    schedule: &PipelineSchedule,
    user: User,
    access: ProjectAccess,
    run: ScheduleRun,
) -> Result<(), String> {
    let variables = super::variables(spur, schedule.id)?;
    let count = variables.len();
    let mut request = CreateRequest::new(
        PipelineSource::Schedule,
        user,
        access,
        schedule.ref_name.clone(),
        variables,
        count,
    );
    request.schedule_run = Some(run);
    match crate::pipeline_create::create_recording_errors(spur.clone(), project, request).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(CreateRefusal::Unprocessable(_))) => Ok(()),
        // The commit refused a run made already (another pass, or before a restart).
        Ok(Err(CreateRefusal::NotFound)) => Ok(()),
        Ok(Err(CreateRefusal::Invalid(reason) | CreateRefusal::Unauthorized(reason))) => {
            refused(spur, run, reason, clock::now()).await;
            Ok(())
        }
        Err(e) => Err(format!("{e:?}")),
    }
}

async fn refused(spur: &Spur, run: ScheduleRun, reason: String, now: Millis) {
    tracing::warn!(schedule_id = run.schedule_id, %reason, "a schedule's pipeline was refused");
    let moved = match run.due {
        Some(_) => spur.store.schedule_missed(run, reason, now).await,
        None => spur.store.schedule_note(run.schedule_id, reason).await.map(|_| true),
    };
    if let Err(e) = moved {
        tracing::warn!(schedule_id = run.schedule_id, error = %e, "the schedule could not be moved on");
    }
}

//! Environments and deployments (`/projects/:id/environments`, `/deployments`, Operate >
//! Environments): the one owner of their changes. An environment's state and last deployment
//! are read from its jobs when asked: a successful `start` deployment makes it available, a
//! successful `action: stop` job (or a stop without one) makes it stopped, and stopping runs
//! the last deployment's `on_stop` job.

use crate::auth::ProjectAccess;
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, Deployment, Environment, Job, JobStatus, Millis, Project, User};

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 400 `{"message": {field: [text]}}`.
    Invalid(&'static str, String),
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
}

/// An environment as read now: its state and last successful deployment (with its job).
#[derive(Debug, Clone)]
pub struct Shown {
    /// The record.
    pub env: Environment,
    /// `available`, `stopping` or `stopped`.
    pub state: &'static str,
    /// The newest successful `start` deployment and its job.
    pub last: Option<(Deployment, Job)>,
    /// When it stops by itself (`auto_stop_in` after the last deployment).
    pub auto_stop_at: Option<Millis>,
}

/// Reporters and up see environments; anyone who sees a public project's jobs, too.
pub fn may_read(project: &Project, access: &ProjectAccess) -> bool {
    access.at_least(AccessLevel::Reporter)
        || (project.visibility != crate::domain::Visibility::Private && access.can_read)
}

/// Every deployment of a project with its job (jobs deleted since are left out).
pub fn deployments(spur: &Spur, project_id: u64) -> Result<Vec<(Deployment, Job)>, String> {
    let mut out = Vec::new();
    for d in spur.store.deployments(project_id).map_err(|e| e.to_string())? {
        if let Some(job) = spur.store.job(d.job_id).map_err(|e| e.to_string())? {
            out.push((d, job));
        }
    }
    Ok(out)
}

/// Reads an environment's state from its deployments' jobs.
pub fn show(env: Environment, all: &[(Deployment, Job)]) -> Shown {
    let mine = || all.iter().filter(|(d, _)| d.environment_id == env.id);
    let last = mine()
        .filter(|(d, j)| d.action == "start" && j.status == JobStatus::Success && !j.retried)
        .max_by_key(|(d, _)| d.id)
        .cloned();
    let last_start = mine()
        .filter(|(d, j)| d.action == "start" && matches!(j.status, JobStatus::Running | JobStatus::Success))
        .filter_map(|(_, j)| j.started_at)
        .max();
    let last_stop_job = mine()
        .filter(|(d, j)| d.action == "stop" && j.status == JobStatus::Success)
        .filter_map(|(_, j)| j.finished_at)
        .max();
    let mut state = "available";
    let mut stopped_at = last_stop_job.max(if env.state == "stopped" { env.stopped_at } else { None });
    if env.state == "stopping" {
        let stop_job = env.stop_job_id.and_then(|id| all.iter().find(|(_, j)| j.id == id));
        match stop_job.map(|(_, j)| j.status) {
            Some(JobStatus::Success) => stopped_at = stopped_at.max(stop_job.and_then(|(_, j)| j.finished_at)),
            Some(JobStatus::Failed | JobStatus::Canceled) => {}
            _ => state = "stopping",
        }
    }
    if state == "available" && stopped_at.is_some_and(|s| last_start.is_none_or(|l| s >= l)) {
        state = "stopped";
    }
    let auto_stop_at = last.as_ref().and_then(|(_, j)| {
        let after = j
            .settings
            .environment
            .as_ref()?
            .auto_stop_in
            .as_deref()
            .and_then(crate::ci_config::job_settings::parse_duration)?;
        Some(j.finished_at? + i64::try_from(after).ok()?.saturating_mul(1000))
    });
    Shown {
        env,
        state,
        last,
        auto_stop_at: if state == "available" { auto_stop_at } else { None },
    }
}

/// An environment of `project`, read now.
pub fn find(spur: &Spur, project: &Project, id: u64) -> Result<Result<Shown, Refusal>, String> {
    match spur.store.environment(id).map_err(|e| e.to_string())? {
        Some(env) if env.project_id == project.id => Ok(Ok(show(env, &deployments(spur, project.id)?))),
        _ => Ok(Err(Refusal::NotFound)),
    }
}

fn check_url(url: &Option<String>) -> Result<(), Refusal> {
    match url {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() > 255 => Err(Refusal::Invalid(
            "external_url",
            "is blocked: Only allowed schemes are http, https".into(),
        )),
        _ => Ok(()),
    }
}

fn check_tier(tier: &Option<String>) -> Result<(), Refusal> {
    match tier.as_deref() {
        None | Some("production" | "staging" | "testing" | "development" | "other") => Ok(()),
        Some(_) => Err(Refusal::Invalid("tier", "is not included in the list".into())),
    }
}

/// `POST /environments` (Developer+): `name`, `external_url`, `tier`.
pub async fn create(
    spur: &Spur,
    project: &Project,
    access: &ProjectAccess,
    name: String,
    external_url: Option<String>,
    tier: Option<String>,
) -> Result<Result<Environment, Refusal>, String> {
    if !access.at_least(AccessLevel::Developer) {
        return Ok(Err(Refusal::Forbidden));
    }
    let name = name.trim().to_string();
    if !crate::domain::valid_environment_name(&name) {
        return Ok(Err(Refusal::Invalid(
            "name",
            "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'".into(),
        )));
    }
    if let Err(r) = check_url(&external_url).and(check_tier(&tier)) {
        return Ok(Err(r));
    }
    let tier = tier.unwrap_or_else(|| crate::domain::guess_tier(&name).to_string());
    let env = crate::storage::new_environment(project.id, &name, external_url, &tier, clock::now());
    match spur.store.create_environment(env).await.map_err(|e| e.to_string())? {
        Some(env) => Ok(Ok(env)),
        None => Ok(Err(Refusal::Invalid("name", "has already been taken".into()))),
    }
}

/// `PUT /environments/:id` (Developer+): `external_url`, `tier`.
pub async fn update(
    spur: &Spur,
    project: &Project,
    access: &ProjectAccess,
    id: u64,
    external_url: Option<String>,
    tier: Option<String>,
) -> Result<Result<Shown, Refusal>, String> {
    if !access.at_least(AccessLevel::Developer) {
        return Ok(Err(Refusal::Forbidden));
    }
    let mut shown = match find(spur, project, id)? {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    if let Err(r) = check_url(&external_url).and(check_tier(&tier)) {
        return Ok(Err(r));
    }
    if external_url.is_some() {
        shown.env.external_url = external_url;
    }
    if let Some(t) = tier {
        shown.env.tier = t;
    }
    shown.env.updated_at = clock::now();
    spur.store
        .save_environment(shown.env.clone())
        .await
        .map_err(|e| e.to_string())?;
    Ok(Ok(shown))
}

/// `DELETE /environments/:id` (Developer+): only a stopped environment, as GitLab.
pub async fn delete(
    spur: &Spur,
    project: &Project,
    access: &ProjectAccess,
    id: u64,
) -> Result<Result<(), Refusal>, String> {
    let shown = match find(spur, project, id)? {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    if !access.at_least(AccessLevel::Developer) || shown.state != "stopped" {
        return Ok(Err(Refusal::Forbidden));
    }
    spur.store
        .delete_environment(shown.env)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Ok(()))
}

/// `POST /environments/:id/stop` (Developer+): plays the last deployment's `on_stop` job (the
/// environment is `stopping` until it succeeds); without one, or with `force`, it is stopped
/// at once.
pub async fn stop(
    spur: &Spur,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    id: u64,
    force: bool,
) -> Result<Result<Shown, Refusal>, String> {
    if !access.at_least(AccessLevel::Developer) {
        return Ok(Err(Refusal::Forbidden));
    }
    // Playing the on_stop job needs the right to run pipelines on its ref (protected refs).
    if !force
        && let Ok(shown) = find(spur, project, id)?
        && let Some(job) = stop_job_of(spur, &shown)?
        && let Some(pipeline) = spur.store.pipeline(job.pipeline_id).map_err(|e| e.to_string())?
        && !crate::protected_refs::may_update_pipeline(spur, &pipeline, access)?
    {
        return Ok(Err(Refusal::Forbidden));
    }
    stop_as(spur, project, user, id, force).await
}

/// Stops an environment for `user` without checking their role (the caller did, or spur stops
/// it itself when `auto_stop_in` passed).
async fn stop_as(
    spur: &Spur,
    project: &Project,
    user: &User,
    id: u64,
    force: bool,
) -> Result<Result<Shown, Refusal>, String> {
    let shown = match find(spur, project, id)? {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    let mut env = shown.env.clone();
    let stop_job = if force { None } else { stop_job_of(spur, &shown)? };
    let now = clock::now();
    match stop_job {
        Some(job) => {
            // Another stop played it a moment ago: the environment is stopping already.
            if spur.scheduler.play(job.id, user.id, Vec::new()).await.is_err() {
                return find(spur, project, id);
            }
            env.state = "stopping".into();
            env.stop_job_id = Some(job.id);
        }
        None => {
            env.state = "stopped".into();
            env.stopped_at = Some(now);
            env.stop_job_id = None;
        }
    }
    env.updated_at = now;
    spur.store.save_environment(env).await.map_err(|e| e.to_string())?;
    find(spur, project, id)
}

/// The manual `on_stop` job of the last deployment's pipeline, if it can be played.
fn stop_job_of(spur: &Spur, shown: &Shown) -> Result<Option<Job>, String> {
    let Some((d, _)) = &shown.last else { return Ok(None) };
    let Some(name) = &d.on_stop else { return Ok(None) };
    let jobs = spur.store.pipeline_jobs(d.pipeline_id).map_err(|e| e.to_string())?;
    Ok(jobs
        .into_iter()
        .filter(|j| &j.name == name && !j.retried && j.status == JobStatus::Manual)
        .max_by_key(|j| j.id))
}

/// `POST /environments/stop_stale` (Maintainer+): stops every available environment whose last
/// deployment finished before `before`.
pub async fn stop_stale(
    spur: &Spur,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    before: Millis,
) -> Result<Result<(), Refusal>, String> {
    if !access.at_least(AccessLevel::Maintainer) {
        return Ok(Err(Refusal::Forbidden));
    }
    let all = deployments(spur, project.id)?;
    for env in spur.store.environments(project.id).map_err(|e| e.to_string())? {
        let shown = show(env, &all);
        let stale = shown.state == "available"
            && shown
                .last
                .as_ref()
                .and_then(|(_, j)| j.finished_at)
                .is_some_and(|f| f < before);
        if stale {
            stop(spur, project, user, access, shown.env.id, false).await?.ok();
        }
    }
    Ok(Ok(()))
}

/// Stops, once a minute, every environment whose `auto_stop_in` has passed since its last
/// deployment, as the user who deployed it (the `on_stop` job runs if there is one).
pub async fn auto_stop(spur: std::sync::Arc<Spur>) {
    loop {
        if let Err(e) = auto_stop_once(&spur, clock::now()).await {
            tracing::warn!(error = %e, "environments could not be stopped automatically");
        }
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}

/// One pass of `auto_stop`; answers how many environments it stopped.
pub async fn auto_stop_once(spur: &Spur, now: Millis) -> Result<usize, String> {
    let mut stopped = 0;
    for project in spur.store.projects().map_err(|e| e.to_string())? {
        let envs = spur.store.environments(project.id).map_err(|e| e.to_string())?;
        if envs.is_empty() {
            continue;
        }
        let all = deployments(spur, project.id)?;
        for env in envs {
            let shown = show(env, &all);
            if shown.auto_stop_at.is_none_or(|at| at > now) {
                continue;
            }
            let Some((_, job)) = &shown.last else { continue };
            let Some(user) = spur.store.user(job.user_id).map_err(|e| e.to_string())? else {
                continue;
            };
            let access =
                crate::auth::project_access(&spur.store, Some(&user), &project, now).map_err(|e| e.to_string())?;
            // The deployer plays the on_stop job while they still may; else it is stopped as is.
            let force = !access.at_least(AccessLevel::Developer);
            if stop_as(spur, &project, &user, shown.env.id, force).await?.is_ok() {
                stopped += 1;
            }
        }
    }
    Ok(stopped)
}

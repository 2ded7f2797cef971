//! Commit statuses from external systems (`POST /projects/:id/statuses/:sha`), as GitLab's
//! `CreateCommitStatusService`: the status joins the newest pipeline of the commit (and ref, and
//! pipeline id, when given) or a new `external` pipeline, as a job of the `external` stage that
//! the engine moves through GitLab's state machine. Knows nothing of HTTP.

use crate::auth::ProjectAccess;
use crate::context::Spur;
use crate::domain::{AccessLevel, Job, Pipeline, PipelineSource, PipelineStatus, Project};
use crate::git::Origin;
use crate::scheduler::{PostedStatus, Refusal};
use crate::storage::{NewPipeline, PipelineFilter, PipelineOrder};

/// A status to post, as the API read it.
#[derive(Debug, Clone)]
pub struct StatusRequest {
    /// The commit, as given (a SHA or a ref name).
    pub sha: String,
    /// `ref`.
    pub ref_name: Option<String>,
    /// `pipeline_id`.
    pub pipeline_id: Option<u64>,
    /// The rest: name, state, user and what the system said.
    pub status: PostedStatus,
}

/// Why a status was refused (GitLab's texts; the API picks the status code).
#[derive(Debug)]
pub enum StatusRefusal {
    /// 404 `<what> Not Found`.
    NotFound(&'static str),
    /// 403.
    Forbidden,
    /// The engine's refusal (a transition, too many jobs, storage).
    Engine(Refusal),
    /// Something failed.
    Internal(String),
}

/// One post at a time per project and commit: two must not both create a pipeline (GitLab
/// holds a lease per project and commit).
static POSTING: std::sync::LazyLock<crate::keyed_lock::KeyedLocks<(u64, String)>> =
    std::sync::LazyLock::new(crate::keyed_lock::KeyedLocks::new);

/// Posts a status; answers the job that carries it.
pub async fn post(
    spur: &std::sync::Arc<Spur>,
    project: &Project,
    access: &ProjectAccess,
    request: StatusRequest,
) -> Result<Job, StatusRefusal> {
    if !access.at_least(AccessLevel::Developer) {
        return Err(StatusRefusal::Forbidden);
    }
    let path = spur.repos.path_of(&project.repo_name, &Origin::of(project));
    let s = spur.clone();
    let (p, given) = (path.clone(), request.sha.clone());
    let resolved = tokio::task::spawn_blocking(move || s.repos.resolve_any(&p, &given).ok())
        .await
        .map_err(|e| StatusRefusal::Internal(e.to_string()))?;
    let Some(commit) = resolved else {
        return Err(StatusRefusal::NotFound("Commit"));
    };
    let sha = commit.sha;
    let _one = POSTING.lock((project.id, sha.clone())).await;
    let filter = PipelineFilter {
        sha: Some(sha.clone()),
        ref_name: request.ref_name.clone(),
        ..PipelineFilter::default()
    };
    let store = |e: crate::storage::Error| StatusRefusal::Internal(e.to_string());
    let (matching, _) = spur
        .store
        .project_pipelines(project.id, &filter, PipelineOrder::Id, true, 0, 100_000)
        .map_err(store)?;
    let first = matching
        .into_iter()
        .find(|p| request.pipeline_id.is_none_or(|id| p.id == id));
    let ref_name = match (&request.ref_name, &first) {
        (Some(r), _) => r.clone(),
        (None, Some(p)) => p.ref_name.clone(),
        (None, None) => {
            let s = spur.clone();
            let (p, c) = (path.clone(), sha.clone());
            let _permit = crate::git::GIT_WORK
                .acquire()
                .await
                .map_err(|e| StatusRefusal::Internal(e.to_string()))?;
            let containing = tokio::task::spawn_blocking(move || s.repos.branches_containing(&p, &c))
                .await
                .map_err(|e| StatusRefusal::Internal(e.to_string()))?
                .map_err(StatusRefusal::Internal)?;
            match containing.into_iter().next() {
                Some(branch) => branch,
                None => return Err(StatusRefusal::NotFound("References for commit")),
            }
        }
    };
    if request.pipeline_id.is_some() && first.is_none() {
        return Err(StatusRefusal::NotFound("Pipeline for pipeline_id, sha and ref"));
    }
    let pipeline = match first {
        Some(p) => p,
        None => create_external(spur, project, &path, &sha, &ref_name, request.status.user_id).await?,
    };
    let may = crate::protected_refs::may_update_pipeline(spur, &pipeline, access).map_err(StatusRefusal::Internal)?;
    if !may {
        return Err(StatusRefusal::Forbidden);
    }
    let job_id = spur
        .scheduler
        .post_status(pipeline.id, request.status)
        .await
        .map_err(StatusRefusal::Engine)?;
    spur.store
        .job(job_id)
        .map_err(store)?
        .ok_or_else(|| StatusRefusal::Internal("the posted status was not stored".into()))
}

/// A new pipeline of source `external` for the commit, with no jobs yet.
async fn create_external(
    spur: &Spur,
    project: &Project,
    path: &std::path::Path,
    sha: &str,
    ref_name: &str,
    user_id: u64,
) -> Result<Pipeline, StatusRefusal> {
    let is_tag = spur.repos.resolve(path, ref_name).is_ok_and(|r| r.tag);
    let none: Vec<crate::domain::Variable> = Vec::new();
    let plain = serde_json::to_vec(&none).map_err(|e| StatusRefusal::Internal(e.to_string()))?;
    let sealed = spur
        .secrets
        .seal(&plain)
        .map_err(|e| StatusRefusal::Internal(e.to_string()))?;
    let new = NewPipeline {
        schedule_run: None,
        project_id: project.id,
        sha: sha.to_string(),
        ref_name: ref_name.to_string(),
        tag: is_tag,
        source: PipelineSource::External,
        user_id,
        trigger_id: None,
        variables_sealed: sealed,
        status: PipelineStatus::Created,
        yaml_errors: None,
        jobs: Vec::new(),
        now: crate::clock::now(),
        upstream: None,
        before_sha: "0".repeat(40),
        name: None,
        idempotency: None,
        client: None,
        trigger_version: None,
        announce: spur.events.listened(),
    };
    let (pipeline, _) = spur
        .store
        .create_pipeline(new)
        .await
        .map_err(|e| StatusRefusal::Internal(e.to_string()))?
        .map_err(|_| StatusRefusal::Internal("the external pipeline was refused".into()))?;
    spur.metrics.pipeline_created(pipeline.source.as_str());
    spur.events.send(crate::events::Event::Pipeline(
        pipeline.id,
        pipeline.project_id,
        pipeline.status,
    ));
    Ok(pipeline)
}

/// What `GET .../commits/:sha/statuses` filters by.
#[derive(Debug, Clone, Default)]
pub struct StatusFilter {
    /// `ref`.
    pub ref_name: Option<String>,
    /// `stage`.
    pub stage: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `all`: retried ones too.
    pub all: bool,
}

/// Every job (builds, bridges and external statuses) of the commit's pipelines, oldest first,
/// with its pipeline; `None` when the commit does not exist.
pub fn list(
    spur: &Spur,
    project: &Project,
    sha: &str,
    filter: &StatusFilter,
) -> Result<Option<Vec<(Job, Pipeline)>>, String> {
    let path = spur.repos.path_of(&project.repo_name, &Origin::of(project));
    let Ok(commit) = spur.repos.resolve_any(&path, sha) else {
        return Ok(None);
    };
    let by_sha = PipelineFilter {
        sha: Some(commit.sha),
        ref_name: filter.ref_name.clone(),
        ..PipelineFilter::default()
    };
    let (pipelines, _) = spur
        .store
        .project_pipelines(project.id, &by_sha, PipelineOrder::Id, false, 0, 100_000)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for p in pipelines {
        for job in spur.store.pipeline_jobs(p.id).map_err(|e| e.to_string())? {
            let keep = (filter.all || !job.retried)
                && filter.stage.as_ref().is_none_or(|s| *s == job.stage)
                && filter.name.as_ref().is_none_or(|n| *n == job.name);
            if keep {
                out.push((job, p.clone()));
            }
        }
    }
    out.sort_by_key(|(j, _)| j.id);
    Ok(Some(out))
}

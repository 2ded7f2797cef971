//! Jobs: `GET /projects/:id/pipelines/:pipeline_id/jobs`, `GET /projects/:id/jobs`,
//! `GET /projects/:id/jobs/:job_id`, its `trace`, `POST .../jobs/:job_id/cancel|retry|play`, and
//! `GET /job` for a running job's `CI_JOB_TOKEN`.

use super::{id_segment, segment};
use crate::context::Spur;
use crate::domain::{AccessLevel, Job, JobStatus, Project};
use crate::http::error::ApiError;
use crate::http::pagination::{PageRequest, page_response, paginated};
use crate::http::{State, caller, json_response, project_with_role, views, visible_project};
use crate::scheduler::{Refusal, Target};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

fn job_view(spur: &Spur, project: &Project, job: &Job) -> Result<Value, ApiError> {
    let pipeline = spur
        .store
        .pipeline(job.pipeline_id)?
        .ok_or_else(ApiError::record_not_found)?;
    let user = spur.store.user(job.user_id)?;
    Ok(views::job(spur, project, &pipeline, job, user.as_ref()))
}

/// `GET /projects/:id/pipelines/:pipeline_id/jobs`.
pub async fn for_pipeline(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let pipeline_id = id_segment(&req, "pipeline_id")?;
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let pipeline = match spur.store.pipeline(pipeline_id)? {
        Some(p) if p.project_id == project.id => p,
        _ => return Err(ApiError::not_found("Pipeline")),
    };
    let scope = scope_filter(&req)?;
    let include_retried = query_pairs(&req)
        .iter()
        .any(|(k, v)| k == "include_retried" && crate::http::params::truthy(v) == Some(true));
    let s = spur.clone();
    let mut jobs = web::block(move || s.store.pipeline_jobs(pipeline_id)).await??;
    // Bridges (`trigger:` jobs) are listed by `/bridges`, as in GitLab; external statuses by
    // the commit's `statuses`.
    jobs.retain(|j| {
        j.bridge.is_none()
            && j.external.is_none()
            && (include_retried || !j.retried)
            && scope.as_ref().is_none_or(|sc| sc.contains(&j.status))
    });
    let user_cache = jobs.first().map(|j| spur.store.user(j.user_id)).transpose()?.flatten();
    let items = jobs
        .iter()
        .map(|j| views::job(&spur, &project, &pipeline, j, user_cache.as_ref()))
        .collect();
    paginated(&req, items)
}

/// `GET /projects/:id/pipelines/:pipeline_id/bridges`: the pipeline's `trigger:` jobs, each with
/// its `downstream_pipeline`.
pub async fn bridges(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let pipeline_id = id_segment(&req, "pipeline_id")?;
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let pipeline = match spur.store.pipeline(pipeline_id)? {
        Some(p) if p.project_id == project.id => p,
        _ => return Err(ApiError::not_found("Pipeline")),
    };
    let scope = scope_filter(&req)?;
    let user = spur.store.user(pipeline.user_id)?;
    let mut items = Vec::new();
    for job in spur.store.pipeline_jobs(pipeline_id)? {
        if job.bridge.is_none() || job.retried || !scope.as_ref().is_none_or(|sc| sc.contains(&job.status)) {
            continue;
        }
        let mut view = views::job(&spur, &project, &pipeline, &job, user.as_ref());
        let downstream = match spur.store.downstream_of(job.id)? {
            Some(id) => spur.store.pipeline(id)?,
            None => None,
        };
        let downstream = match downstream {
            Some(d) => match spur.store.project(d.project_id)? {
                Some(dp) => views::pipeline_basic(&spur, &dp, &d),
                None => Value::Null,
            },
            None => Value::Null,
        };
        if let Some(obj) = view.as_object_mut() {
            obj.insert("downstream_pipeline".into(), downstream);
        }
        items.push(view);
    }
    paginated(&req, items)
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    serde_urlencoded::from_str(req.query_string()).unwrap_or_default()
}

/// `scope` / `scope[]`: the statuses to list, or `None` for all. Unknown ones are GitLab's 400.
fn scope_filter(req: &HttpRequest) -> Result<Option<Vec<JobStatus>>, ApiError> {
    let wanted: Vec<String> = query_pairs(req)
        .into_iter()
        .filter(|(k, _)| k == "scope" || k == "scope[]")
        .map(|(_, v)| v)
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    wanted
        .iter()
        .map(|w| JobStatus::parse(w).ok_or_else(|| ApiError::bad_request_plain("Scope contains invalid value(s)")))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `GET /projects/:id/jobs`: newest first, optionally only some statuses (`scope[]`).
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let page = PageRequest::from_request(&req)?;
    let scope = scope_filter(&req)?;
    let s = spur.clone();
    let pid = project.id;
    let (jobs, total) = web::block(move || match scope {
        None => s.store.project_jobs(pid, page.offset(), page.per_page),
        Some(scope) => s
            .store
            .project_jobs_matching(pid, &|j| scope.contains(&j.status), page.offset(), page.per_page),
    })
    .await??;
    // External commit statuses are listed by the commit's statuses, not here (GitLab lists
    // builds); a page with one may be a job short.
    let items = jobs
        .iter()
        .filter(|j| j.external.is_none())
        .map(|j| job_view(&spur, &project, j))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page_response(&req, page, items, total))
}

/// A job of the project; external commit statuses are not jobs (GitLab's 404).
fn find_job(spur: &Spur, project: &Project, job_id: u64) -> Result<Job, ApiError> {
    match spur.store.job(job_id)? {
        Some(job) if job.project_id == project.id && job.external.is_none() => Ok(job),
        _ => Err(ApiError::not_found("")),
    }
}

/// `GET /projects/:id/jobs/:job_id`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let job_id = id_segment(&req, "job_id")?;
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let job = find_job(&spur, &project, job_id)?;
    Ok(json_response(StatusCode::OK, &job_view(&spur, &project, &job)?))
}

/// `GET /projects/:id/jobs/:job_id/trace`: the log so far, as plain text, streamed from its file
/// (also while the job runs).
pub async fn trace(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let job_id = id_segment(&req, "job_id")?;
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let job = find_job(&spur, &project, job_id)?;
    let file = match tokio::fs::File::open(spur.traces.path(job.id)).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(HttpResponse::Ok().content_type("text/plain").body(""));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    Ok(HttpResponse::Ok()
        .content_type("text/plain")
        .insert_header(("Content-Disposition", format!("inline; filename=\"{}.log\"", job.id)))
        .body(crate::http::file_body(file, len)))
}

/// `GET /projects/:id/jobs/:job_id/artifacts`: the job's artifacts archive (zip), for whoever
/// may read the job; 404 when it has none (never uploaded, or expired).
pub async fn artifacts(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let job_id = id_segment(&req, "job_id")?;
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let job = find_job(&spur, &project, job_id)?;
    super::runner_jobs::artifacts_download(&spur, job.id).await
}

pub(crate) fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::NotErasable => ApiError::forbidden_because("Job is not erasable!"),
        Refusal::Transition(m) => ApiError::Message(StatusCode::BAD_REQUEST, m),
        Refusal::TooManyJobs => ApiError::Message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The number of jobs has exceeded the limit".into(),
        ),
        Refusal::NotFound => ApiError::not_found(""),
        Refusal::NotRetryable => ApiError::forbidden_because("Job is not retryable"),
        Refusal::NotPlayable => ApiError::bad_request("Unplayable Job"),
        Refusal::Storage(e) => ApiError::internal(e),
    }
}

/// 403 unless the caller may change pipeline `pipeline_id` (protected refs included).
pub(crate) fn may_update(spur: &State, pipeline_id: u64, access: &crate::auth::ProjectAccess) -> Result<(), ApiError> {
    let pipeline = spur
        .store
        .pipeline(pipeline_id)?
        .ok_or_else(|| ApiError::not_found("Pipeline"))?;
    match crate::protected_refs::may_update_pipeline(spur, &pipeline, access) {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::forbidden()),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// `POST /projects/:id/jobs/:job_id/cancel` (Developer+): 201 with the job; a finished job is
/// answered unchanged.
pub async fn cancel(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let job_id = id_segment(&req, "job_id")?;
    let (_, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let job = find_job(&spur, &project, job_id)?;
    may_update(&spur, job.pipeline_id, &access)?;
    spur.scheduler.cancel(Target::Job(job.id)).await.map_err(refusal)?;
    let job = find_job(&spur, &project, job_id)?;
    Ok(json_response(StatusCode::CREATED, &job_view(&spur, &project, &job)?))
}

/// `POST /projects/:id/jobs/:job_id/retry` (Developer+): 201 with the new job.
pub async fn retry(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let job_id = id_segment(&req, "job_id")?;
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let job = find_job(&spur, &project, job_id)?;
    may_update(&spur, job.pipeline_id, &access)?;
    let new_id = spur
        .scheduler
        .retry(Target::Job(job.id), actor.user.id)
        .await
        .map_err(refusal)?
        .ok_or_else(|| ApiError::internal("retry created no job"))?;
    let job = find_job(&spur, &project, new_id)?;
    Ok(json_response(StatusCode::CREATED, &job_view(&spur, &project, &job)?))
}

/// `POST /projects/:id/jobs/:job_id/play` (Developer+): starts a manual (or delayed) job, with
/// the `job_variables_attributes` (`[{key, value}]`) the caller sets; 200.
pub async fn play(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let job_id = id_segment(&req, "job_id")?;
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let params = crate::http::params::Params::read(&req, payload, spur.max_body_bytes).await?;
    let job = find_job(&spur, &project, job_id)?;
    may_update(&spur, job.pipeline_id, &access)?;
    let rows = match params.get("job_variables_attributes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let text = |field: &str| match item.get(field) {
                    None | Some(Value::Null) => Some(String::new()),
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => None,
                };
                text("key").zip(text("value"))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::bad_request("job_variables_attributes is invalid"))?,
        Some(_) => return Err(ApiError::bad_request("job_variables_attributes is invalid")),
    };
    let variables = crate::scheduler::play_variables(&project, access.level, rows).map_err(|e| match e {
        crate::scheduler::PlayVariablesRefusal::Forbidden => ApiError::forbidden(),
        crate::scheduler::PlayVariablesRefusal::Invalid(field, text, _) => ApiError::invalid(field, &text),
    })?;
    spur.scheduler
        .play(job.id, actor.user.id, variables)
        .await
        .map_err(refusal)?;
    let job = find_job(&spur, &project, job_id)?;
    Ok(json_response(StatusCode::OK, &job_view(&spur, &project, &job)?))
}

/// `POST /projects/:id/jobs/:job_id/erase`: a finished job's log and artifacts go; 201 with the
/// job. Developers may erase their own jobs, Maintainers any (rights on the ref included).
pub async fn erase(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let job_id = id_segment(&req, "job_id")?;
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let job = find_job(&spur, &project, job_id)?;
    may_update(&spur, job.pipeline_id, &access)?;
    if job.user_id != actor.user.id && !access.at_least(AccessLevel::Maintainer) {
        return Err(ApiError::forbidden());
    }
    crate::artifacts::erase(&spur, &job).await.map_err(refusal)?;
    let job = find_job(&spur, &project, job_id)?;
    Ok(json_response(StatusCode::CREATED, &job_view(&spur, &project, &job)?))
}

/// `GET /job` with a job's token (`JOB-TOKEN` header or `job_token` parameter): the running job.
/// A token of a finished job gets GitLab's 401 `Job is not running`.
pub async fn current(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let token = req
        .headers()
        .get("job-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            query_pairs(&req)
                .into_iter()
                .find(|(k, _)| k == "job_token")
                .map(|(_, v)| v)
        });
    let Some(token) = token.filter(|t| t.starts_with("glcbt-")) else {
        return Err(ApiError::unauthorized());
    };
    let digest = spur.secrets.digest(&token);
    let Some(job) = spur.store.job_by_token_digest(&digest)? else {
        return Err(ApiError::unauthorized());
    };
    if job.status != JobStatus::Running {
        return Err(ApiError::Message(StatusCode::UNAUTHORIZED, "Job is not running".into()));
    }
    let project = spur
        .store
        .project(job.project_id)?
        .ok_or_else(|| ApiError::not_found("Job"))?;
    Ok(json_response(StatusCode::OK, &job_view(&spur, &project, &job)?))
}

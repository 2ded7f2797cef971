//! Jobs: `GET /projects/:id/pipelines/:pipeline_id/jobs`, `GET /projects/:id/jobs`,
//! `GET /projects/:id/jobs/:job_id`.

use super::{id_segment, segment};
use crate::app::Spur;
use crate::domain::{Job, Project};
use crate::http::error::ApiError;
use crate::http::pagination::{PageRequest, page_response, paginated};
use crate::http::{State, caller, json_response, views, visible_project};
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
    let s = spur.clone();
    let jobs = web::block(move || s.store.pipeline_jobs(pipeline_id)).await??;
    let user_cache = jobs.first().map(|j| spur.store.user(j.user_id)).transpose()?.flatten();
    let items = jobs
        .iter()
        .map(|j| views::job(&spur, &project, &pipeline, j, user_cache.as_ref()))
        .collect();
    paginated(&req, items)
}

/// `GET /projects/:id/jobs`: newest first.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let page = PageRequest::from_request(&req)?;
    let s = spur.clone();
    let pid = project.id;
    let (jobs, total) = web::block(move || s.store.project_jobs(pid, page.offset(), page.per_page)).await??;
    let items = jobs
        .iter()
        .map(|j| job_view(&spur, &project, j))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page_response(&req, page, items, total))
}

/// `GET /projects/:id/jobs/:job_id`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let job_id = id_segment(&req, "job_id")?;
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    match spur.store.job(job_id)? {
        Some(job) if job.project_id == project.id => {
            Ok(json_response(StatusCode::OK, &job_view(&spur, &project, &job)?))
        }
        _ => Err(ApiError::not_found("")),
    }
}

//! Artifacts by path and by ref: `GET /projects/:id/jobs/:job_id/artifacts/*path` (one file
//! of a job's archive), `GET /projects/:id/jobs/artifacts/:ref/download?job=` (the archive of
//! the ref's latest successful job of that name) and `.../artifacts/:ref/raw/*path?job=`.

use super::segment;
use crate::http::error::ApiError;
use crate::http::{State, caller, visible_project};
use actix_web::{HttpRequest, HttpResponse, web};

fn job_param(req: &HttpRequest) -> Result<String, ApiError> {
    super::Query::of(req)
        .get("job")
        .ok_or_else(|| ApiError::Params("job is missing".into()))
}

/// One file out of job `job_id`'s archive, or GitLab's 404.
async fn entry_response(spur: &State, job_id: u64, entry: String) -> Result<HttpResponse, ApiError> {
    let s = spur.clone();
    let name = entry
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .replace(['"', '\\', '\r', '\n'], "_");
    let data = web::block(move || crate::artifacts::archive_entry(&s, job_id, &entry))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::Params)?
        .ok_or_else(|| ApiError::not_found(""))?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{name}\"")))
        .body(data))
}

/// `GET /projects/:id/jobs/:job_id/artifacts/*artifact_path`.
pub async fn file(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let job_id = super::id_segment(&req, "job_id")?;
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    match spur.store.job(job_id)? {
        Some(j) if j.project_id == project.id => entry_response(&spur, j.id, segment(&req, "path")).await,
        _ => Err(ApiError::not_found("Job")),
    }
}

/// The ref's latest successful job named by `?job=`, or GitLab's 404.
async fn job_for_ref(req: &HttpRequest, spur: &State) -> Result<crate::domain::Job, ApiError> {
    let actor = caller(req, spur).await?;
    let (project, _) = visible_project(spur, &segment(req, "id"), actor.as_ref())?;
    let name = job_param(req)?;
    let ref_name = segment(req, "ref_name");
    let s = spur.clone();
    web::block(move || crate::artifacts::latest_successful_job(&s, project.id, &ref_name, &name))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(""))
}

/// `GET /projects/:id/jobs/artifacts/:ref_name/download?job=`.
pub async fn download_for_ref(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let job = job_for_ref(&req, &spur).await?;
    super::runner_jobs::artifacts_download(&spur, job.id).await
}

/// `GET /projects/:id/jobs/artifacts/:ref_name/raw/*artifact_path?job=`.
pub async fn raw_for_ref(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let job = job_for_ref(&req, &spur).await?;
    entry_response(&spur, job.id, segment(&req, "path")).await
}

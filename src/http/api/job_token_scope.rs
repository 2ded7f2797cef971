//! A project's CI/CD job token inbound allowlist (Maintainer+): which other projects' jobs may
//! use their `CI_JOB_TOKEN` on it. `GET /projects/:id/job_token_scope`,
//! `GET/POST /projects/:id/job_token_scope/allowlist`,
//! `DELETE /projects/:id/job_token_scope/allowlist/:target_project_id`.

use super::id_segment;
use crate::domain::AccessLevel;
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation};
use crate::http::{State, json_response, lookup_project, project_with_role, views};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// `GET /projects/:id/job_token_scope`: whether the inbound allowlist is enforced.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let enabled = spur.store.job_token_scope_enabled(project.id)?;
    Ok(json_response(StatusCode::OK, &views::job_token_scope(enabled)))
}

/// `PATCH /projects/:id/job_token_scope` with `enabled` (required): turns the inbound allowlist
/// on or off; 204.
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let mut v = Validation::default();
    let enabled = v.optional_bool(&params, "enabled");
    if params.get("enabled").is_none() {
        v.fail("enabled", "is missing");
    }
    v.finish()?;
    crate::projects::set_job_token_scope(&spur, project.id, enabled.unwrap_or(true)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /projects/:id/job_token_scope/allowlist`: the project itself, then the allowed ones.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let mut items = vec![views::basic_project(&spur, &project)];
    for id in spur.store.job_token_allowlist(project.id)? {
        if let Some(p) = spur.store.project(id)? {
            items.push(views::basic_project(&spur, &p));
        }
    }
    paginated(&req, items)
}

/// `POST /projects/:id/job_token_scope/allowlist` with `target_project_id`: admits that
/// project's jobs. 201 `{source_project_id, target_project_id}`.
pub async fn add(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let mut v = Validation::default();
    let target = v.required_string(&params, "target_project_id");
    v.finish()?;
    let target = target.unwrap_or_default();
    let other = lookup_project(&spur, &target)?.ok_or_else(|| ApiError::not_found("Project"))?;
    let access = crate::auth::project_access(&spur.store, Some(&actor.user), &other, crate::clock::now())?;
    if !access.can_read {
        return Err(ApiError::not_found("Project"));
    }
    match crate::projects::allow_job_token(&spur, project.id, other.id).await? {
        Ok(()) => Ok(json_response(
            StatusCode::CREATED,
            &views::job_token_link(project.id, other.id),
        )),
        Err(_) => Err(ApiError::invalid(
            "target_project_id",
            "Target project is already in the job token scope",
        )),
    }
}

/// `DELETE /projects/:id/job_token_scope/allowlist/:target_project_id`.
pub async fn remove(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let target = id_segment(&req, "target_project_id")?;
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    match crate::projects::disallow_job_token(&spur, project.id, target).await? {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(_) => Err(ApiError::not_found("")),
    }
}

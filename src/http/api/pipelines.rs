//! Pipelines: `GET /projects/:id/pipelines`, `GET/DELETE .../pipelines/:pipeline_id`,
//! `GET .../pipelines/:pipeline_id/variables`, `POST .../pipelines/:pipeline_id/cancel|retry`.

use super::{id_segment, segment};
use crate::context::Spur;
use crate::domain::{AccessLevel, Pipeline, PipelineSource, PipelineStatus, Project};
use crate::http::error::ApiError;
use crate::http::pagination::{PageRequest, page_response};
use crate::http::{State, caller, json_response, project_with_role, views, visible_project};
use crate::pipeline_trigger::pipeline_variables_of;
use crate::scheduler::Target;
use crate::storage::{PipelineFilter, PipelineOrder, PipelineScope};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

/// `GET /projects/:id/pipelines`: filters `ref`, `status`, `source`, `sha`, `scope`,
/// `username`, `created_after/before`, `updated_after/before`, `yaml_errors`; `order_by`
/// (`id`, `status`, `ref`, `updated_at`, `user_id`) and `sort` (`asc`, `desc`, default desc).
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let query = super::Query::of(&req);
    let get = |k: &str| query.get(k);
    let invalid = |k: &str| ApiError::Params(format!("{k} does not have a valid value"));
    let time = |k: &str| {
        get(k)
            .map(|v| crate::clock::parse_datetime(&v).ok_or_else(|| ApiError::Params(format!("{k} is invalid"))))
            .transpose()
    };
    let user_id = match get("username") {
        // An unknown user has no pipelines (GitLab answers an empty list).
        Some(name) => Some(spur.store.user_by_username(&name)?.map_or(0, |u| u.id)),
        None => None,
    };
    let filter = PipelineFilter {
        sha: get("sha"),
        scope: get("scope")
            .map(|s| match s.as_str() {
                "running" => Ok(PipelineScope::Running),
                "pending" => Ok(PipelineScope::Pending),
                "finished" => Ok(PipelineScope::Finished),
                "branches" => Ok(PipelineScope::Branches),
                "tags" => Ok(PipelineScope::Tags),
                _ => Err(invalid("scope")),
            })
            .transpose()?,
        user_id,
        created: (time("created_after")?, time("created_before")?),
        updated: (time("updated_after")?, time("updated_before")?),
        yaml_errors: get("yaml_errors")
            .map(|v| crate::http::params::truthy(&v).ok_or_else(|| ApiError::Params("yaml_errors is invalid".into())))
            .transpose()?,
        name: get("name"),
        ref_name: get("ref"),
        status: get("status")
            .map(|s| PipelineStatus::parse(&s).ok_or_else(|| invalid("status")))
            .transpose()?,
        source: get("source")
            .map(|s| PipelineSource::parse(&s).ok_or_else(|| invalid("source")))
            .transpose()?,
    };
    let order = match get("order_by").as_deref() {
        None | Some("id") => PipelineOrder::Id,
        Some("status") => PipelineOrder::Status,
        Some("ref") => PipelineOrder::Ref,
        Some("updated_at") => PipelineOrder::UpdatedAt,
        Some("user_id") => PipelineOrder::UserId,
        Some(_) => return Err(invalid("order_by")),
    };
    let ascending = match get("sort").as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(invalid("sort")),
    };
    let page = PageRequest::from_request(&req)?;
    let s = spur.clone();
    let pid = project.id;
    let (pipelines, total) = web::block(move || {
        s.store
            .project_pipelines(pid, &filter, order, !ascending, page.offset(), page.per_page)
    })
    .await??;
    let items: Vec<Value> = pipelines
        .iter()
        .map(|p| views::pipeline_basic(&spur, &project, p))
        .collect();
    Ok(page_response(&req, page, items, total))
}

/// `GET /projects/:id/pipelines/latest`: the newest pipeline of `ref` (the default branch
/// when absent), in full; 404 when it has none.
pub async fn latest(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let wanted = super::Query::of(&req)
        .get("ref")
        .or_else(|| project.default_branch.clone())
        .unwrap_or_else(|| "main".into());
    let Some(p) = spur.store.latest_pipeline_for_ref(project.id, &wanted)? else {
        return Err(ApiError::not_found(""));
    };
    let user = spur.store.user(p.user_id)?;
    Ok(json_response(
        StatusCode::OK,
        &views::pipeline(&spur, &project, &p, user.as_ref()),
    ))
}

fn find_pipeline(spur: &Spur, project: &Project, pipeline_id: u64) -> Result<Pipeline, ApiError> {
    match spur.store.pipeline(pipeline_id)? {
        Some(p) if p.project_id == project.id => Ok(p),
        _ => Err(ApiError::record_not_found()),
    }
}

/// `GET /projects/:id/pipelines/:pipeline_id`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let pipeline_id = id_segment(&req, "pipeline_id")?;
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let p = find_pipeline(&spur, &project, pipeline_id)?;
    let user = spur.store.user(p.user_id)?;
    Ok(json_response(
        StatusCode::OK,
        &views::pipeline(&spur, &project, &p, user.as_ref()),
    ))
}

/// `GET /projects/:id/pipelines/:pipeline_id/variables`, `TRIGGER_PAYLOAD` included:
/// Maintainers, or the pipeline's creator while they may update it.
pub async fn variables(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let pipeline_id = id_segment(&req, "pipeline_id")?;
    let actor = caller(&req, &spur).await?;
    let (project, access) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    if actor.is_none() {
        return Err(ApiError::unauthorized());
    }
    if !access.at_least(AccessLevel::Developer) {
        return Err(ApiError::forbidden());
    }
    let p = find_pipeline(&spur, &project, pipeline_id)?;
    let user_id = actor.as_ref().map_or(0, |a| a.user.id);
    if !crate::protected_refs::may_read_pipeline_variables(&spur, &p, user_id, &access).map_err(ApiError::internal)? {
        return Err(ApiError::forbidden());
    }
    let vars = pipeline_variables_of(&spur, p.id).map_err(|e| ApiError::internal(format!("{e:?}")))?;
    let body = Value::Array(vars.iter().map(views::variable).collect());
    Ok(json_response(StatusCode::OK, &body))
}

/// `DELETE /projects/:id/pipelines/:pipeline_id` (Owner).
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let pipeline_id = id_segment(&req, "pipeline_id")?;
    let actor = caller(&req, &spur).await?.ok_or_else(ApiError::unauthorized)?;
    let (project, access) = visible_project(&spur, &segment(&req, "id"), Some(&actor))?;
    if !access.at_least(AccessLevel::Owner) {
        return Err(ApiError::forbidden());
    }
    let p = find_pipeline(&spur, &project, pipeline_id)?;
    match crate::retention::delete_pipeline(&spur, p.id)
        .await
        .map_err(ApiError::internal)?
    {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(ApiError::record_not_found()),
    }
}

/// `POST /projects/:id/pipelines/:pipeline_id/cancel` (Developer+): cancels every unfinished
/// job; 201 with the pipeline.
pub async fn cancel(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let pipeline_id = id_segment(&req, "pipeline_id")?;
    let (_, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let p = find_pipeline(&spur, &project, pipeline_id)?;
    crate::http::api::jobs::may_update(&spur, p.id, &access)?;
    spur.scheduler
        .cancel(Target::Pipeline(p.id))
        .await
        .map_err(|e| ApiError::internal(format!("{e:?}")))?;
    present(&spur, &project, pipeline_id)
}

/// `POST /projects/:id/pipelines/:pipeline_id/retry` (Developer+): retries the failed and
/// canceled jobs; 201 with the pipeline.
pub async fn retry(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let pipeline_id = id_segment(&req, "pipeline_id")?;
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let p = find_pipeline(&spur, &project, pipeline_id)?;
    crate::http::api::jobs::may_update(&spur, p.id, &access)?;
    spur.scheduler
        .retry(Target::Pipeline(p.id), actor.user.id)
        .await
        .map_err(|e| ApiError::internal(format!("{e:?}")))?;
    present(&spur, &project, pipeline_id)
}

fn present(spur: &Spur, project: &Project, pipeline_id: u64) -> Result<HttpResponse, ApiError> {
    let p = find_pipeline(spur, project, pipeline_id)?;
    let user = spur.store.user(p.user_id)?;
    Ok(json_response(
        StatusCode::CREATED,
        &views::pipeline(spur, project, &p, user.as_ref()),
    ))
}

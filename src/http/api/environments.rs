//! Environments and deployments: `GET/POST /projects/:id/environments`, `GET/PUT/DELETE
//! .../environments/:environment_id`, `POST .../:environment_id/stop`, `POST
//! .../environments/stop_stale`, `GET /projects/:id/deployments[/:deployment_id]`, with
//! GitLab's entities.

use super::{Query, id_segment, segment};
use crate::domain::{AccessLevel, Deployment, Environment, Job, Project, deployment_status};
use crate::environments::{Refusal, Shown};
use crate::http::error::ApiError;
use crate::http::pagination::{PageRequest, page_response, paginated};
use crate::http::params::{Params, Validation};
use crate::http::{State, caller, json_response, project_with_role, views, visible_project};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::Invalid(field, text) => ApiError::invalid(field, &text),
        Refusal::Forbidden => ApiError::forbidden(),
        Refusal::NotFound => ApiError::not_found(""),
    }
}

fn iso(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(crate::clock::iso8601(t)))
}

fn basic(env: &Environment) -> Value {
    json!({
        "id": env.id,
        "name": env.name,
        "slug": env.slug,
        "external_url": env.external_url,
        "created_at": crate::clock::iso8601(env.created_at),
        "updated_at": crate::clock::iso8601(env.updated_at),
    })
}

/// GitLab's `Environment` entity; `detailed` adds `last_deployment`.
fn env_view(spur: &State, project: &Project, s: &Shown, detailed: bool) -> Value {
    let mut v = basic(&s.env);
    v["state"] = json!(s.state);
    v["tier"] = json!(s.env.tier);
    v["auto_stop_at"] = iso(s.auto_stop_at);
    v["enable_advanced_logs_querying"] = json!(false);
    if detailed {
        v["last_deployment"] = s
            .last
            .as_ref()
            .map_or(Value::Null, |(d, j)| deployment_view(spur, project, d, j, Some(&s.env)));
    }
    v
}

/// GitLab's `Deployment` entity: the job as `deployable`.
fn deployment_view(spur: &State, project: &Project, d: &Deployment, j: &Job, env: Option<&Environment>) -> Value {
    let user = spur.store.user(j.user_id).ok().flatten();
    let pipeline = spur.store.pipeline(j.pipeline_id).ok().flatten();
    let env = env
        .cloned()
        .or_else(|| spur.store.environment(d.environment_id).ok().flatten());
    json!({
        "id": d.id,
        "iid": d.iid,
        "ref": pipeline.as_ref().map(|p| p.ref_name.clone()),
        "sha": pipeline.as_ref().map(|p| p.sha.clone()),
        "created_at": crate::clock::iso8601(d.created_at),
        "updated_at": crate::clock::iso8601(j.finished_at.or(j.started_at).unwrap_or(d.created_at)),
        "finished_at": iso(j.finished_at.filter(|_| j.status.is_complete())),
        "status": deployment_status(j.status),
        "user": user.as_ref().map(|u| views::user_basic(spur, u)),
        "environment": env.as_ref().map(basic),
        "deployable": pipeline.as_ref().map(|p| views::job(spur, project, p, j, user.as_ref())),
    })
}

async fn reader(req: &HttpRequest, spur: &State) -> Result<Project, ApiError> {
    let actor = caller(req, spur).await?;
    let (project, access) = visible_project(spur, &segment(req, "id"), actor.as_ref())?;
    if !crate::environments::may_read(&project, &access) {
        return Err(ApiError::forbidden());
    }
    Ok(project)
}

/// `GET /projects/:id/environments` (`name`, `search`, `states`).
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let project = reader(&req, &spur).await?;
    let q = Query::of(&req);
    let name = q.get("name");
    let search = q.get("search");
    let states = q.get("states");
    if let Some(s) = states.as_deref()
        && !["available", "stopping", "stopped"].contains(&s)
    {
        return Err(ApiError::Params("states does not have a valid value".into()));
    }
    let (s, project_id) = (spur.clone(), project.id);
    let all = web::block(move || crate::environments::deployments(&s, project_id))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let items = spur
        .store
        .environments(project.id)?
        .into_iter()
        .map(|e| crate::environments::show(e, &all))
        .filter(|s| name.as_deref().is_none_or(|n| s.env.name == n))
        .filter(|s| search.as_deref().is_none_or(|n| s.env.name.contains(n)))
        .filter(|s| states.as_deref().is_none_or(|st| s.state == st))
        .map(|s| env_view(&spur, &project, &s, false))
        .collect();
    paginated(&req, items)
}

fn env_id(req: &HttpRequest) -> Result<u64, ApiError> {
    id_segment(req, "environment_id")
}

/// `GET /projects/:id/environments/:environment_id`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let project = reader(&req, &spur).await?;
    let shown = crate::environments::find(&spur, &project, env_id(&req)?)
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(json_response(StatusCode::OK, &env_view(&spur, &project, &shown, true)))
}

/// `POST /projects/:id/environments` (Developer+): `name`, `external_url`, `tier`.
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (_, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let mut v = Validation::default();
    let name = v.required_string(&params, "name");
    let url = v.optional_string(&params, "external_url");
    let tier = v.optional_string(&params, "tier");
    v.finish()?;
    let env = crate::environments::create(&spur, &project, &access, name.unwrap_or_default(), url, tier)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    let shown = crate::environments::show(env, &[]);
    Ok(json_response(
        StatusCode::CREATED,
        &env_view(&spur, &project, &shown, true),
    ))
}

/// `PUT /projects/:id/environments/:environment_id` (Developer+): `external_url`, `tier`.
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (_, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let mut v = Validation::default();
    let url = v.optional_string(&params, "external_url");
    let tier = v.optional_string(&params, "tier");
    v.finish()?;
    let shown = crate::environments::update(&spur, &project, &access, env_id(&req)?, url, tier)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(json_response(StatusCode::OK, &env_view(&spur, &project, &shown, true)))
}

/// `DELETE /projects/:id/environments/:environment_id` (Developer+, stopped ones): 204.
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    crate::environments::delete(&spur, &project, &access, env_id(&req)?)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /projects/:id/environments/:environment_id/stop` (`force`).
pub async fn stop(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let mut v = Validation::default();
    let force = v.optional_bool(&params, "force").unwrap_or(false);
    v.finish()?;
    let shown = crate::environments::stop(&spur, &project, &actor.user, &access, env_id(&req)?, force)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(json_response(StatusCode::OK, &env_view(&spur, &project, &shown, true)))
}

/// `POST /projects/:id/environments/stop_stale` (Maintainer+): `before` (required).
pub async fn stop_stale(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let mut v = Validation::default();
    let before = v.optional_datetime(&params, "before");
    v.finish()?;
    let Some(before) = before else {
        return Err(ApiError::Params("before is missing".into()));
    };
    crate::environments::stop_stale(&spur, &project, &actor.user, &access, before)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"message": "Successfully requested stop for all stale environments"}),
    ))
}

/// `GET /projects/:id/deployments` (`environment`, `status`, `order_by` id|iid|created_at|
/// updated_at|finished_at|ref, `sort`).
pub async fn deployments(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let project = reader(&req, &spur).await?;
    let q = Query::of(&req);
    let env_name = q.get("environment");
    let status = q.get("status");
    if let Some(s) = status.as_deref()
        && ![
            "created", "running", "success", "failed", "canceled", "skipped", "blocked",
        ]
        .contains(&s)
    {
        return Err(ApiError::Params("status does not have a valid value".into()));
    }
    let envs = spur.store.environments(project.id)?;
    let (s, project_id) = (spur.clone(), project.id);
    let loaded = web::block(move || crate::environments::deployments(&s, project_id))
        .await
        .map_err(ApiError::internal)?;
    let mut all: Vec<(Deployment, Job)> = loaded
        .map_err(ApiError::internal)?
        .into_iter()
        .filter(|(d, _)| d.action == "start")
        .filter(|(d, _)| {
            env_name
                .as_deref()
                .is_none_or(|n| envs.iter().any(|e| e.id == d.environment_id && e.name == n))
        })
        .filter(|(_, j)| status.as_deref().is_none_or(|s| deployment_status(j.status) == s))
        .collect();
    match q.get("order_by").as_deref() {
        None | Some("id" | "iid" | "created_at") => {}
        Some("updated_at" | "finished_at") => all.sort_by_key(|(d, j)| (j.finished_at.or(j.started_at), d.id)),
        Some("ref") => all.sort_by_key(|(d, j)| (j.name.clone(), d.id)),
        Some(_) => return Err(ApiError::Params("order_by does not have a valid value".into())),
    }
    if q.get("sort").as_deref() == Some("desc") {
        all.reverse();
    }
    // Only the page asked for is turned into JSON.
    let page = PageRequest::from_request(&req)?;
    let on_page = all
        .iter()
        .skip(page.offset())
        .take(page.per_page)
        .map(|(d, j)| deployment_view(&spur, &project, d, j, None))
        .collect();
    Ok(page_response(&req, page, on_page, all.len()))
}

/// `GET /projects/:id/deployments/:deployment_id`.
pub async fn deployment(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let project = reader(&req, &spur).await?;
    let id = id_segment(&req, "deployment_id")?;
    let found = spur.store.deployment(id)?.filter(|d| d.project_id == project.id);
    let Some(d) = found else {
        return Err(ApiError::not_found(""));
    };
    let Some(job) = spur.store.job(d.job_id)? else {
        return Err(ApiError::not_found(""));
    };
    Ok(json_response(
        StatusCode::OK,
        &deployment_view(&spur, &project, &d, &job, None),
    ))
}

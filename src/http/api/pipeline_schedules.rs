//! Pipeline schedules: `GET/POST /projects/:id/pipeline_schedules`, `GET/PUT/DELETE
//! .../:pipeline_schedule_id`, `POST .../take_ownership|play`, `GET .../pipelines` and the
//! schedule's variables (`POST .../variables`, `PUT/DELETE .../variables/:key`), with GitLab's
//! entities (`PipelineSchedule`, `PipelineScheduleDetails`) and errors.

use super::{Query, id_segment, segment};
use crate::auth::ProjectAccess;
use crate::domain::{AccessLevel, PipelineSchedule, Project, User, Variable, VariableType};
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation};
use crate::http::{State, caller, json_response, project_with_role, views, visible_project};
use crate::schedules::{Input, Refusal, VariableChange};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::Invalid(field, text) => ApiError::invalid(field, &text),
        Refusal::Forbidden => ApiError::forbidden(),
        Refusal::NotFound(what) => ApiError::not_found(what),
        Refusal::TooMany => ApiError::Message(
            StatusCode::TOO_MANY_REQUESTS,
            "This endpoint has been requested too many times. Try again later.".into(),
        ),
    }
}

/// GitLab's `PipelineSchedule` entity; `details` adds `last_pipeline` and, for whoever
/// administers the schedule, its `variables` (`PipelineScheduleDetails`).
fn view(spur: &State, project: &Project, s: &PipelineSchedule, details: Option<bool>) -> Value {
    let owner = spur
        .store
        .user(s.owner_id)
        .ok()
        .flatten()
        .map(|u| views::user_basic(spur, &u));
    let mut body = json!({
        "id": s.id,
        "description": s.description,
        "ref": s.ref_name,
        "cron": s.cron,
        "cron_timezone": s.cron_timezone,
        "next_run_at": if s.next_run_at == i64::MAX { Value::Null } else { json!(crate::clock::iso8601(s.next_run_at)) },
        "active": s.active,
        "created_at": crate::clock::iso8601(s.created_at),
        "updated_at": crate::clock::iso8601(s.updated_at),
        "owner": owner,
    });
    if let Some(with_variables) = details {
        let last = s
            .last_pipeline_id
            .and_then(|id| spur.store.pipeline(id).ok().flatten())
            .map(|p| views::pipeline_basic(spur, project, &p));
        body["last_pipeline"] = last.unwrap_or(Value::Null);
        if with_variables {
            let vars = crate::schedules::variables(spur, s.id).unwrap_or_default();
            body["variables"] = Value::Array(vars.iter().map(views::variable).collect());
        }
    }
    body
}

/// The caller, the project and their access, for Reporters and up (`read_pipeline_schedule`).
async fn reader(req: &HttpRequest, spur: &State) -> Result<(Option<User>, Project, ProjectAccess), ApiError> {
    let actor = caller(req, spur).await?;
    let (project, access) = visible_project(spur, &segment(req, "id"), actor.as_ref())?;
    if !crate::schedules::may_read(&access) {
        return Err(if actor.is_none() {
            ApiError::unauthorized()
        } else {
            ApiError::forbidden()
        });
    }
    Ok((actor.map(|a| a.user), project, access))
}

fn schedule_id(req: &HttpRequest) -> Result<u64, ApiError> {
    id_segment(req, "pipeline_schedule_id")
}

fn found(spur: &State, project: &Project, id: u64) -> Result<PipelineSchedule, ApiError> {
    crate::schedules::find(spur, project, id)
        .map_err(ApiError::internal)?
        .map_err(refused)
}

/// `GET /projects/:id/pipeline_schedules` (`scope`: `active` or `inactive`).
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = reader(&req, &spur).await?;
    let scope = Query::of(&req).get("scope");
    let keep = match scope.as_deref() {
        None | Some("") => None,
        Some("active") => Some(true),
        Some("inactive") => Some(false),
        Some(_) => return Err(ApiError::Params("scope does not have a valid value".into())),
    };
    let schedules = spur.store.project_schedules(project.id)?;
    let items = schedules
        .iter()
        .filter(|s| keep.is_none_or(|a| s.active == a))
        .map(|s| view(&spur, &project, s, None))
        .collect();
    paginated(&req, items)
}

/// `GET /projects/:id/pipeline_schedules/:pipeline_schedule_id`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (user, project, access) = reader(&req, &spur).await?;
    let s = found(&spur, &project, schedule_id(&req)?)?;
    let with_variables = user
        .as_ref()
        .is_some_and(|u| crate::schedules::may_admin(&s, u, &access));
    Ok(json_response(
        StatusCode::OK,
        &view(&spur, &project, &s, Some(with_variables)),
    ))
}

/// `GET /projects/:id/pipeline_schedules/:pipeline_schedule_id/pipelines` (`sort`: `asc`
/// (default) or `desc`).
pub async fn pipelines(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = reader(&req, &spur).await?;
    let s = found(&spur, &project, schedule_id(&req)?)?;
    let mut list = crate::schedules::pipelines(&spur, s.id).map_err(ApiError::internal)?;
    match Query::of(&req).get("sort").as_deref() {
        None | Some("asc") => {}
        Some("desc") => list.reverse(),
        Some(_) => return Err(ApiError::Params("sort does not have a valid value".into())),
    }
    paginated(
        &req,
        list.iter().map(|p| views::pipeline_basic(&spur, &project, p)).collect(),
    )
}

fn input(params: &Params, v: &mut Validation, creating: bool) -> Input {
    let text = |v: &mut Validation, k: &str| {
        if creating {
            v.required_string(params, k)
        } else {
            v.optional_string(params, k)
        }
    };
    Input {
        description: text(v, "description"),
        ref_name: text(v, "ref"),
        cron: text(v, "cron"),
        cron_timezone: v.optional_string(params, "cron_timezone"),
        active: v.optional_bool(params, "active"),
    }
}

/// `POST /projects/:id/pipeline_schedules` (Developer+): `description`, `ref`, `cron`
/// required; `cron_timezone`, `active`.
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let mut v = Validation::default();
    let input = input(&params, &mut v, true);
    v.finish()?;
    let s = crate::schedules::create(&spur, &project, &actor.user, &access, input, Vec::new())
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(json_response(
        StatusCode::CREATED,
        &view(&spur, &project, &s, Some(true)),
    ))
}

/// `PUT /projects/:id/pipeline_schedules/:pipeline_schedule_id` (the owner).
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Reporter)).await?;
    let mut v = Validation::default();
    let input = input(&params, &mut v, false);
    v.finish()?;
    let s = crate::schedules::update(&spur, &project, &actor.user, &access, schedule_id(&req)?, input)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(json_response(StatusCode::OK, &view(&spur, &project, &s, Some(true))))
}

/// `POST .../take_ownership` (Maintainers, or the owner).
pub async fn take_ownership(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Reporter)).await?;
    let s = crate::schedules::take_ownership(&spur, &project, &actor.user, &access, schedule_id(&req)?)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(json_response(
        StatusCode::CREATED,
        &view(&spur, &project, &s, Some(true)),
    ))
}

/// `DELETE /projects/:id/pipeline_schedules/:pipeline_schedule_id` (Maintainers, or the owner):
/// 204.
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Reporter)).await?;
    crate::schedules::delete(&spur, &project, &actor.user, &access, schedule_id(&req)?)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST .../play`: runs the schedule now as the caller; 201 `{"message": "201 Created"}`.
pub async fn play(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Reporter)).await?;
    let spur_arc = spur.clone().into_inner();
    crate::schedules::play(&spur_arc, &project, &actor.user, &access, schedule_id(&req)?)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(json_response(StatusCode::CREATED, &json!({"message": "201 Created"})))
}

fn variable_type(v: &mut Validation, params: &Params) -> Result<Option<VariableType>, ApiError> {
    match v.optional_string(params, "variable_type").as_deref() {
        None => Ok(None),
        Some("env_var") => Ok(Some(VariableType::EnvVar)),
        Some("file") => Ok(Some(VariableType::File)),
        Some(_) => Err(ApiError::Params("variable_type does not have a valid value".into())),
    }
}

fn variable_view(var: &Variable) -> Value {
    json!({"variable_type": var.variable_type.as_str(), "key": var.key, "value": var.value, "raw": var.raw})
}

async fn change_variable(
    req: &HttpRequest,
    spur: &State,
    change: VariableChange,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let (actor, project, access) = project_with_role(req, spur, Some(AccessLevel::Reporter)).await?;
    let var = crate::schedules::change_variable(spur, &project, &actor.user, &access, schedule_id(req)?, change)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(json_response(status, &variable_view(&var)))
}

/// `POST .../variables`: `key`, `value` required, `variable_type`.
pub async fn create_variable(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let mut v = Validation::default();
    let key = v.required_string(&params, "key");
    let value = v.required_string(&params, "value");
    let kind = variable_type(&mut v, &params)?;
    v.finish()?;
    let var = Variable {
        key: key.unwrap_or_default(),
        value: value.unwrap_or_default(),
        variable_type: kind.unwrap_or(VariableType::EnvVar),
        raw: false,
    };
    change_variable(&req, &spur, VariableChange::Create(var), StatusCode::CREATED).await
}

/// `PUT .../variables/:key`: `value`, `variable_type`.
pub async fn update_variable(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let mut v = Validation::default();
    let value = v.optional_string(&params, "value");
    let kind = variable_type(&mut v, &params)?;
    v.finish()?;
    let change = VariableChange::Update(segment(&req, "key"), value, kind);
    change_variable(&req, &spur, change, StatusCode::OK).await
}

/// `DELETE .../variables/:key`: 202 with the variable, as GitLab answers.
pub async fn delete_variable(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let change = VariableChange::Delete(segment(&req, "key"));
    change_variable(&req, &spur, change, StatusCode::ACCEPTED).await
}

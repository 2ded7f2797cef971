//! CI/CD variables of a project (`/projects/:id/variables[/:key]`, Maintainer+) or a group
//! (`/groups/:id/variables[/:key]`, the group's Maintainers and Owners, inherited by its
//! projects), with GitLab's validation.

use super::segment;
use crate::domain::{AccessLevel, Project, ProjectVariable, VariableType};
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation};
use crate::http::views;
use crate::http::{State, json_response, project_with_role};
use crate::project_variables;
use crate::storage::Refusal;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// Whose variables a route names.
#[derive(Clone, Copy)]
enum Owner {
    Project(u64),
    Group(u64),
}

/// The project or group, for a Maintainer+ caller (401, 404, 403 otherwise).
async fn owner_for(req: &HttpRequest, spur: &State) -> Result<Owner, ApiError> {
    if req.match_info().get("group_id").is_none() {
        let project: Project = project_with_role(req, spur, Some(AccessLevel::Maintainer)).await?.1;
        return Ok(Owner::Project(project.id));
    }
    let actor = crate::http::signed_in(req, spur).await?;
    let key = segment(req, "group_id");
    let ns = match key.parse::<u64>() {
        Ok(id) => spur.store.namespace(id)?,
        Err(_) => spur.store.namespace_by_path(&key)?,
    };
    let Some(ns) = ns.filter(|n| n.kind == crate::domain::NamespaceKind::Group) else {
        return Err(ApiError::not_found("Group"));
    };
    let level =
        crate::auth::live_group_member(&spur.store, ns.id, actor.user.id, crate::clock::now())?.map(|m| m.access_level);
    if !actor.user.admin && level.is_none() && !super::groups::can_see(spur, &ns, Some(&actor))? {
        return Err(ApiError::not_found("Group"));
    }
    if !actor.user.admin && level.is_none_or(|l| l < AccessLevel::Maintainer) {
        return Err(ApiError::forbidden());
    }
    if !actor.can_write() && req.method() != actix_web::http::Method::GET {
        return Err(ApiError::forbidden());
    }
    Ok(Owner::Group(ns.id))
}

fn list_of(spur: &State, owner: Owner) -> Result<Vec<ProjectVariable>, ApiError> {
    match owner {
        Owner::Project(id) => project_variables::list(spur, id),
        Owner::Group(id) => project_variables::list_group(spur, id),
    }
    .map_err(ApiError::internal)
}

fn get_of(spur: &State, owner: Owner, key: &str) -> Result<Option<ProjectVariable>, ApiError> {
    Ok(list_of(spur, owner)?.into_iter().find(|v| v.key == key))
}

async fn store_of(
    spur: &State,
    owner: Owner,
    variable: &ProjectVariable,
    create_only: bool,
) -> Result<Result<(), Refusal>, ApiError> {
    match owner {
        Owner::Project(id) => project_variables::store(spur, id, variable, create_only).await,
        Owner::Group(id) => project_variables::store_group(spur, id, variable, create_only).await,
    }
    .map_err(ApiError::internal)
}

/// `GET /projects/:id/variables`.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let owner = owner_for(&req, &spur).await?;
    let all = list_of(&spur, owner)?;
    paginated(&req, all.iter().map(views::project_variable).collect())
}

/// `GET /projects/:id/variables/:key`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let owner = owner_for(&req, &spur).await?;
    let key = segment(&req, "key");
    match get_of(&spur, owner, &key)? {
        Some(v) => Ok(json_response(StatusCode::OK, &views::project_variable(&v))),
        None => Err(ApiError::not_found("Variable")),
    }
}

/// `POST /projects/:id/variables`: `key`, `value` required; `variable_type`, `protected`,
/// `masked`, `raw`, `description` optional.
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let owner = owner_for(&req, &spur).await?;
    let mut v = Validation::default();
    let key = v.required_string(&params, "key");
    let value = v.required_string(&params, "value");
    let variable = read_variable(
        &params,
        &mut v,
        key.unwrap_or_default(),
        value.unwrap_or_default(),
        None,
    );
    v.finish()?;
    let variable = validate(variable?)?;
    match store_of(&spur, owner, &variable, true).await? {
        Ok(()) => Ok(json_response(StatusCode::CREATED, &views::project_variable(&variable))),
        Err(_) => Err(ApiError::invalid(
            "key",
            &format!("({}) has already been taken", variable.key),
        )),
    }
}

/// `PUT /projects/:id/variables/:key`: changes the given attributes.
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let owner = owner_for(&req, &spur).await?;
    let key = segment(&req, "key");
    let existing = get_of(&spur, owner, &key)?.ok_or_else(|| ApiError::not_found("Variable"))?;
    let mut v = Validation::default();
    let value = v
        .optional_string(&params, "value")
        .unwrap_or_else(|| existing.value.clone());
    let variable = read_variable(&params, &mut v, key, value, Some(&existing));
    v.finish()?;
    let variable = validate(variable?)?;
    match store_of(&spur, owner, &variable, false).await? {
        Ok(()) => Ok(json_response(StatusCode::OK, &views::project_variable(&variable))),
        Err(_) => Err(ApiError::not_found("Variable")),
    }
}

/// `DELETE /projects/:id/variables/:key`.
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let owner = owner_for(&req, &spur).await?;
    let key = segment(&req, "key");
    let deleted = match owner {
        Owner::Project(id) => project_variables::delete_project_variable(&spur, id, key).await?,
        Owner::Group(id) => project_variables::delete_group_variable(&spur, id, key).await?,
    };
    match deleted {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(Refusal::NotFound | Refusal::Taken(_)) => Err(ApiError::not_found("Variable")),
    }
}

/// The variable the parameters describe, defaults from `existing` (an update) or GitLab's.
fn read_variable(
    params: &Params,
    v: &mut Validation,
    key: String,
    value: String,
    existing: Option<&ProjectVariable>,
) -> Result<ProjectVariable, ApiError> {
    let variable_type = match v.optional_string(params, "variable_type").as_deref() {
        None => existing.map_or(VariableType::EnvVar, |e| e.variable_type),
        Some("env_var") => VariableType::EnvVar,
        Some("file") => VariableType::File,
        Some(_) => return Err(ApiError::Params("variable_type does not have a valid value".into())),
    };
    Ok(ProjectVariable {
        key,
        value,
        variable_type,
        protected: v
            .optional_bool(params, "protected")
            .unwrap_or(existing.is_some_and(|e| e.protected)),
        masked: v
            .optional_bool(params, "masked")
            .unwrap_or(existing.is_some_and(|e| e.masked)),
        raw: v
            .optional_bool(params, "raw")
            .unwrap_or(existing.is_some_and(|e| e.raw)),
        description: v
            .optional_string(params, "description")
            .or_else(|| existing.and_then(|e| e.description.clone())),
    })
}

/// GitLab's model validation: key format and, for masked variables, the value's shape.
fn validate(variable: ProjectVariable) -> Result<ProjectVariable, ApiError> {
    project_variables::validate(&variable).map_err(|(attr, text)| ApiError::invalid(attr, text))?;
    Ok(variable)
}

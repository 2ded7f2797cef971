//! Projects: `GET/POST /projects`, `GET/PUT/DELETE /projects/:id`.

use super::segment;
use crate::auth::{self, Actor};
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, Project, VariablesOverrideRole, Visibility};
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation};
use crate::http::{State, caller, json_response, signed_in, views, visible_project};
use crate::project_create::{self, ProjectRefusal, ProjectRequest};
use crate::storage::ProjectChange;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

pub(super) fn project_view(spur: &Spur, project: &Project, actor: Option<&Actor>) -> Result<Value, ApiError> {
    let ns = spur.store.namespace(project.namespace_id)?;
    let permissions = match actor {
        None => views::Permissions {
            project: None,
            group: None,
        },
        Some(a) => views::Permissions {
            project: spur
                .store
                .project_member(project.id, a.user.id)?
                .map(|m| m.access_level),
            group: crate::auth::live_group_member(&spur.store, project.namespace_id, a.user.id, crate::clock::now())?
                .map(|m| m.access_level),
        },
    };
    Ok(views::project(spur, project, ns.as_ref(), &permissions))
}

/// `GET /projects`: what the caller may see; `search`, `membership`, `owned` filter;
/// `order_by` (`id`, `name`, `path`, `created_at`, `updated_at`, `last_activity_at`), `sort`.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let flag = |k: &str| {
        query
            .iter()
            .any(|(key, v)| key == k && crate::http::params::truthy(v) == Some(true))
    };
    let search = query.iter().find(|(k, _)| k == "search").map(|(_, v)| v.to_lowercase());
    let get = |k: &str| {
        query
            .iter()
            .rev()
            .find(|(key, v)| key == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let invalid = |k: &str| ApiError::Params(format!("{k} does not have a valid value"));
    let now = clock::now();
    let mut items = Vec::new();
    let mut projects = spur.store.projects()?;
    // GitLab's `order_by` (default `created_at`) and `sort` (default `desc`).
    match get("order_by").unwrap_or("created_at") {
        "id" => projects.sort_by_key(|p| p.id),
        "name" => projects.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.id.cmp(&b.id))),
        "path" => projects.sort_by(|a, b| a.full_path.cmp(&b.full_path).then(a.id.cmp(&b.id))),
        "created_at" => projects.sort_by_key(|p| (p.created_at, p.id)),
        "updated_at" | "last_activity_at" => projects.sort_by_key(|p| (p.updated_at, p.id)),
        _ => return Err(invalid("order_by")),
    }
    let descending = match get("sort").unwrap_or("desc") {
        "desc" => {
            projects.reverse();
            true
        }
        "asc" => false,
        _ => return Err(invalid("sort")),
    };
    let keyset = match get("pagination") {
        None | Some("offset") => false,
        Some("keyset") if matches!(get("order_by").unwrap_or("created_at"), "id" | "created_at") => true,
        Some("keyset") => {
            return Err(ApiError::Token(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "Keyset pagination is not yet available for this type of request"}),
            ));
        }
        Some(_) => return Err(invalid("pagination")),
    };
    if keyset {
        // Ids grow with creation time, so `created_at` and `id` order alike.
        let cursor = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
        match (descending, cursor("id_before"), cursor("id_after")) {
            (true, Some(before), _) => projects.retain(|p| p.id < before),
            (false, _, Some(after)) => projects.retain(|p| p.id > after),
            _ => {}
        }
    }
    let per_page = crate::http::pagination::PageRequest::from_request(&req)?.per_page;
    for p in projects {
        if keyset && items.len() > per_page {
            break;
        }
        let access = auth::project_access(&spur.store, actor.as_ref().map(|a| &a.user), &p, now)?;
        let wanted = access.can_read
            && (!flag("membership") || access.level.is_some())
            && (!flag("owned") || actor.as_ref().is_some_and(|a| a.user.namespace_id == p.namespace_id))
            && search
                .as_ref()
                .is_none_or(|s| p.name.to_lowercase().contains(s) || p.full_path.to_lowercase().contains(s));
        if wanted {
            items.push(project_view(&spur, &p, actor.as_ref())?);
        }
    }
    if keyset {
        let more = items.len() > per_page;
        items.truncate(per_page);
        let last = items.last().and_then(|v| v["id"].as_u64());
        let cursor = last
            .filter(|_| more)
            .map(|id| (if descending { "id_before" } else { "id_after" }, id));
        return Ok(crate::http::pagination::keyset_response(&req, per_page, items, cursor));
    }
    paginated(&req, items)
}

/// `GET /projects/:id`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    Ok(json_response(
        StatusCode::OK,
        &project_view(&spur, &project, actor.as_ref())?,
    ))
}

/// `POST /projects`: `name` and/or `path`, `namespace_id`, `visibility`, `description`,
/// `import_url` (a local path or `file://` URL, admins only; or a remote URL to mirror).
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let mut v = Validation::default();
    let name = v.optional_string(&params, "name").filter(|s| !s.trim().is_empty());
    let path = v.optional_string(&params, "path").filter(|s| !s.trim().is_empty());
    let namespace = v
        .optional_string(&params, "namespace_id")
        .or_else(|| params.string("namespace").ok().flatten());
    let visibility = v.optional_string(&params, "visibility");
    let description = v.optional_string(&params, "description").unwrap_or_default();
    let import_url = v
        .optional_string(&params, "import_url")
        .filter(|s| !s.trim().is_empty());
    if name.is_none() && path.is_none() {
        v.fail("name, path", "are missing, at least one parameter must be provided");
    }
    v.finish()?;
    let visibility = match visibility {
        None => Visibility::Private,
        Some(s) => {
            Visibility::parse(&s).ok_or_else(|| ApiError::Params("visibility does not have a valid value".into()))?
        }
    };
    let request = ProjectRequest {
        name,
        path,
        namespace,
        visibility,
        description,
        import_url,
    };
    match project_create::create(&spur, &actor.user, request).await? {
        Ok(project) => Ok(json_response(
            StatusCode::CREATED,
            &project_view(&spur, &project, Some(&actor))?,
        )),
        Err(ProjectRefusal::Invalid(attr, text)) => Err(ApiError::invalid(attr, &text)),
        Err(ProjectRefusal::Taken) => Err(taken()),
        Err(ProjectRefusal::NamespaceNotFound) => Err(ApiError::not_found("Namespace")),
        Err(ProjectRefusal::Forbidden) => Err(ApiError::forbidden()),
    }
}

fn taken() -> ApiError {
    ApiError::Validation(
        StatusCode::BAD_REQUEST,
        json!({"name": ["has already been taken"], "path": ["has already been taken"]}),
    )
}

/// `PUT /projects/:id` (Maintainer+; `visibility` Owner+): `name`, `description`, `visibility`,
/// `ci_pipeline_variables_minimum_override_role`, and spur's `mirror_interval` (how often a
/// mirror is fetched: a duration, `0` for the server's default).
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (project, access) = visible_project(&spur, &segment(&req, "id"), Some(&actor))?;
    if !access.at_least(AccessLevel::Maintainer) {
        return Err(ApiError::forbidden());
    }
    let mut v = Validation::default();
    let name = v.optional_string(&params, "name");
    let description = v.optional_string(&params, "description");
    let visibility = v.optional_string(&params, "visibility");
    let role = v.optional_string(&params, "ci_pipeline_variables_minimum_override_role");
    let interval = v.optional_string(&params, "mirror_interval");
    v.finish()?;
    // GitLab's change_visibility_level: Owners (and administrators) only, checked whenever
    // the parameter is present; the whole update is refused.
    let visibility_given = params.get("visibility").is_some() || params.get("visibility_level").is_some();
    if visibility_given && !access.at_least(AccessLevel::Owner) {
        return Err(ApiError::forbidden());
    }
    let mirror_interval_secs = interval
        .map(|text| {
            crate::ci_config::job_settings::parse_duration(&text)
                .filter(|secs| *secs == 0 || *secs >= 10)
                .ok_or_else(|| {
                    ApiError::Params("mirror_interval must be a duration of at least 10 seconds, or 0".into())
                })
        })
        .transpose()?;
    let change = ProjectChange {
        name: name.filter(|n| !n.trim().is_empty()),
        description,
        visibility: visibility
            .map(|s| {
                Visibility::parse(&s).ok_or_else(|| ApiError::Params("visibility does not have a valid value".into()))
            })
            .transpose()?,
        variables_override_role: role
            .map(|s| {
                VariablesOverrideRole::parse(&s).ok_or_else(|| {
                    ApiError::Params("ci_pipeline_variables_minimum_override_role does not have a valid value".into())
                })
            })
            .transpose()?,
        mirror_interval_secs,
    };
    if let Some(v) = change.visibility
        && let Some(ns) = spur.store.namespace(project.namespace_id)?
        && ns.kind == crate::domain::NamespaceKind::Group
        && let Some(why) = v.refused_in_group(ns.visibility)
    {
        return Err(ApiError::invalid("visibility_level", &why));
    }
    match crate::projects::update_project(&spur, project.id, change, clock::now()).await? {
        Ok(p) => Ok(json_response(StatusCode::OK, &project_view(&spur, &p, Some(&actor))?)),
        Err(_) => Err(ApiError::not_found("Project")),
    }
}

/// `DELETE /projects/:id` (Owner): removes the project with its triggers and pipelines.
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let (project, access) = visible_project(&spur, &segment(&req, "id"), Some(&actor))?;
    if !access.at_least(AccessLevel::Owner) {
        return Err(ApiError::forbidden());
    }
    match crate::projects::delete_project(&spur, project.id).await? {
        Ok(_) => Ok(json_response(StatusCode::ACCEPTED, &json!({"message": "202 Accepted"}))),
        Err(_) => Err(ApiError::not_found("Project")),
    }
}

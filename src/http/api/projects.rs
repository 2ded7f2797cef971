//! Projects: `GET/POST /projects`, `GET/PUT/DELETE /projects/:id`.

use super::segment;
use crate::app::Spur;
use crate::auth::{self, Actor};
use crate::clock;
use crate::domain::{AccessLevel, NamespaceKind, Project, VariablesOverrideRole, Visibility, is_valid_path};
use crate::git::Origin;
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation};
use crate::http::{State, caller, json_response, signed_in, views, visible_project};
use crate::storage::{NewProject, ProjectChange};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

fn project_view(spur: &Spur, project: &Project, actor: Option<&Actor>) -> Result<Value, ApiError> {
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
            group: spur
                .store
                .group_member(project.namespace_id, a.user.id)?
                .map(|m| m.access_level),
        },
    };
    Ok(views::project(spur, project, ns.as_ref(), &permissions))
}

/// `GET /projects`: what the caller may see; `search`, `membership`, `owned` filter.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let flag = |k: &str| query.iter().any(|(key, v)| key == k && (v == "true" || v == "1"));
    let search = query.iter().find(|(k, _)| k == "search").map(|(_, v)| v.to_lowercase());
    let now = clock::now();
    let mut items = Vec::new();
    let mut projects = spur.store.projects()?;
    projects.reverse();
    for p in projects {
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
    let path = path.unwrap_or_else(|| slug(name.as_deref().unwrap_or_default()));
    let name = name.unwrap_or_else(|| path.clone());
    if !is_valid_path(&path) {
        return Err(ApiError::invalid(
            "path",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or end in '.', '.git' or '.atom'.",
        ));
    }
    let ns = match namespace {
        None => spur.store.namespace(actor.user.namespace_id)?,
        Some(n) => match n.parse::<u64>() {
            Ok(id) => spur.store.namespace(id)?,
            Err(_) => spur.store.namespace_by_path(&n)?,
        },
    }
    .ok_or_else(|| ApiError::not_found("Namespace"))?;
    let may_create = actor.user.admin
        || ns.id == actor.user.namespace_id
        || (ns.kind == NamespaceKind::Group
            && spur
                .store
                .group_member(ns.id, actor.user.id)?
                .is_some_and(|m| m.access_level >= AccessLevel::Maintainer));
    if !may_create {
        if ns.kind == NamespaceKind::Group
            && spur.store.group_member(ns.id, actor.user.id)?.is_none()
            && ns.visibility == Visibility::Private
        {
            return Err(ApiError::not_found("Namespace"));
        }
        return Err(ApiError::forbidden());
    }
    let origin = Origin::classify(import_url.as_deref())
        .map_err(|e| ApiError::invalid("import_url", &format!("is blocked: {e}")))?;
    if matches!(origin, Origin::Local(_)) && !actor.user.admin {
        return Err(ApiError::invalid(
            "import_url",
            "is blocked: only administrators may import a path on the server",
        ));
    }
    if spur.store.project_by_path(&format!("{}/{}", ns.path, path))?.is_some() {
        return Err(taken());
    }
    let repo_name = uuid::Uuid::now_v7().simple().to_string();
    let default_branch = spur
        .repos
        .prepare(&repo_name, &origin)
        .await
        .map_err(|e| ApiError::invalid("import_url", &e))?;
    let new = NewProject {
        name,
        path,
        namespace_id: ns.id,
        namespace_path: ns.path.clone(),
        description,
        visibility,
        import_url: import_url.map(|u| match &origin {
            Origin::Local(p) => p.display().to_string(),
            _ => u,
        }),
        repo_name: repo_name.clone(),
        default_branch,
        creator_id: actor.user.id,
        now: clock::now(),
    };
    match spur.store.create_project(new).await? {
        Ok(project) => {
            tracing::info!(project_id = project.id, path = %project.full_path, "project created");
            Ok(json_response(
                StatusCode::CREATED,
                &project_view(&spur, &project, Some(&actor))?,
            ))
        }
        Err(_) => {
            spur.repos.forget(&repo_name, &origin).await;
            Err(taken())
        }
    }
}

fn taken() -> ApiError {
    ApiError::Validation(
        StatusCode::BAD_REQUEST,
        json!({"name": ["has already been taken"], "path": ["has already been taken"]}),
    )
}

/// A path from a name: lower case, runs of other characters become `-`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// `PUT /projects/:id` (Maintainer+): `name`, `description`, `visibility`,
/// `ci_pipeline_variables_minimum_override_role`.
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
    v.finish()?;
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
    };
    match spur.store.update_project(project.id, change, clock::now()).await? {
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
    match spur.store.delete_project(project.id).await? {
        Ok(p) => {
            let origin = Origin::classify(p.import_url.as_deref()).unwrap_or(Origin::Hosted);
            spur.repos.forget(&p.repo_name, &origin).await;
            tracing::info!(project_id = p.id, "project deleted");
            Ok(json_response(StatusCode::ACCEPTED, &json!({"message": "202 Accepted"})))
        }
        Err(_) => Err(ApiError::not_found("Project")),
    }
}

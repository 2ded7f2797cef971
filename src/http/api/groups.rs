//! Groups: shared namespaces. `GET/POST /groups`, `GET /groups/:id`.

use super::segment;
use crate::auth::Actor;
use crate::clock;
use crate::context::Spur;
use crate::domain::{Namespace, NamespaceKind, Visibility, is_valid_path};
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation};
use crate::http::{State, caller, json_response, signed_in, views};
use crate::storage::NewGroup;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// Whether `actor` may see group `ns`.
pub(super) fn can_see(spur: &Spur, ns: &Namespace, actor: Option<&Actor>) -> Result<bool, ApiError> {
    Ok(match (ns.visibility, actor) {
        (Visibility::Public, _) => true,
        (_, Some(a)) if a.user.admin => true,
        (Visibility::Internal, Some(_)) => true,
        (_, Some(a)) => crate::auth::live_group_member(&spur.store, ns.id, a.user.id, crate::clock::now())?.is_some(),
        (_, None) => false,
    })
}

/// `GET /groups`: the groups the caller may see.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let mut items = Vec::new();
    for ns in spur.store.groups()? {
        if can_see(&spur, &ns, actor.as_ref())? {
            items.push(views::group(&spur, &ns));
        }
    }
    paginated(&req, items)
}

/// `GET /namespaces`: the caller's own namespace and the groups they may see (`search`).
pub async fn namespaces(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let search = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
        .into_iter()
        .find(|(k, v)| k == "search" && !v.is_empty())
        .map(|(_, v)| v.to_lowercase());
    let mut items = Vec::new();
    let mut candidates: Vec<_> = spur.store.namespace(actor.user.namespace_id)?.into_iter().collect();
    candidates.extend(spur.store.groups()?);
    for ns in candidates {
        let wanted = search
            .as_ref()
            .is_none_or(|s| ns.path.to_lowercase().contains(s) || ns.name.to_lowercase().contains(s));
        let visible = ns.kind != NamespaceKind::Group || can_see(&spur, &ns, Some(&actor))?;
        if wanted && visible {
            items.push(views::namespace(&spur, &ns));
        }
    }
    paginated(&req, items)
}

/// `GET /groups/:id/projects`: the group's projects the caller may see.
pub async fn projects(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let key = segment(&req, "group_id");
    let ns = match key.parse::<u64>() {
        Ok(id) => spur.store.namespace(id)?,
        Err(_) => spur.store.namespace_by_path(&key)?,
    };
    let Some(ns) = ns.filter(|n| n.kind == NamespaceKind::Group) else {
        return Err(ApiError::not_found("Group"));
    };
    if !can_see(&spur, &ns, actor.as_ref())? {
        return Err(ApiError::not_found("Group"));
    }
    let now = crate::clock::now();
    let mut items = Vec::new();
    for p in spur
        .store
        .projects()?
        .into_iter()
        .rev()
        .filter(|p| p.namespace_id == ns.id)
    {
        let access = crate::auth::project_access(&spur.store, actor.as_ref().map(|a| &a.user), &p, now)?;
        if access.can_read {
            items.push(super::projects::project_view(&spur, &p, actor.as_ref())?);
        }
    }
    paginated(&req, items)
}

/// `GET /groups/:id` (numeric id or path).
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let key = segment(&req, "group_id");
    let ns = match key.parse::<u64>() {
        Ok(id) => spur.store.namespace(id)?,
        Err(_) => spur.store.namespace_by_path(&key)?,
    };
    match ns {
        Some(ns) if ns.kind == NamespaceKind::Group && can_see(&spur, &ns, actor.as_ref())? => {
            Ok(json_response(StatusCode::OK, &views::group(&spur, &ns)))
        }
        _ => Err(ApiError::not_found("Group")),
    }
}

/// `POST /groups`: `name`, `path`, optional `visibility` (default private), `description`.
/// The creator becomes its Owner.
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let mut v = Validation::default();
    let name = v.required_string(&params, "name");
    let path = v.required_string(&params, "path");
    let visibility = v.optional_string(&params, "visibility");
    let description = v.optional_string(&params, "description").unwrap_or_default();
    v.finish()?;
    let (Some(name), Some(path)) = (name, path) else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    let visibility = match visibility {
        None => Visibility::Private,
        Some(s) => {
            Visibility::parse(&s).ok_or_else(|| ApiError::Params("visibility does not have a valid value".into()))?
        }
    };
    if name.trim().is_empty() {
        return Err(ApiError::invalid("name", "can't be blank"));
    }
    if !is_valid_path(&path) {
        return Err(ApiError::invalid(
            "path",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or end in '.', '.git' or '.atom'.",
        ));
    }
    if crate::domain::is_reserved_namespace_path(&path) {
        return Err(ApiError::invalid("path", &format!("{path} is a reserved name")));
    }
    let new = NewGroup {
        name,
        path,
        visibility,
        description,
        creator_id: actor.user.id,
        now: clock::now(),
    };
    match crate::accounts::create_group(&spur, new).await? {
        Ok(ns) => Ok(json_response(StatusCode::CREATED, &views::group(&spur, &ns))),
        Err(_) => Err(ApiError::invalid("path", "has already been taken")),
    }
}

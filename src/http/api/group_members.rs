//! Group members: `GET/POST /groups/:id/members`, `GET/PUT/DELETE .../members/:user_id`. The
//! group's projects inherit these roles. Anyone who can see the group lists them; its Owners
//! (and administrators) change them, and a group keeps at least one Owner.

use super::{id_segment, segment};
use crate::auth::Actor;
use crate::clock;
use crate::domain::{AccessLevel, Namespace, NamespaceKind};
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation};
use crate::http::{State, caller, json_response, signed_in, views};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// The group the path names, if the caller may see it.
fn group(req: &HttpRequest, spur: &State, actor: Option<&Actor>) -> Result<Namespace, ApiError> {
    let key = segment(req, "group_id");
    let ns = match key.parse::<u64>() {
        Ok(id) => spur.store.namespace(id)?,
        Err(_) => spur.store.namespace_by_path(&key)?,
    };
    match ns {
        Some(ns) if ns.kind == NamespaceKind::Group && super::groups::can_see(spur, &ns, actor)? => Ok(ns),
        _ => Err(ApiError::not_found("Group")),
    }
}

/// 403 unless the caller owns the group or is an administrator.
fn may_manage(spur: &State, ns: &Namespace, actor: &Actor) -> Result<(), ApiError> {
    let owner = crate::auth::live_group_member(&spur.store, ns.id, actor.user.id, crate::clock::now())?
        .is_some_and(|m| m.access_level == AccessLevel::Owner);
    if owner || actor.user.admin {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// GitLab's refusals of a membership change.
fn refusal(r: crate::storage::Refusal) -> ApiError {
    match r {
        crate::storage::Refusal::Taken("owner") => ApiError::bad_request("A group must have at least one owner"),
        crate::storage::Refusal::Taken(_) => ApiError::conflict("Member already exists"),
        crate::storage::Refusal::NotFound => ApiError::not_found("Member"),
    }
}

/// `expires_at` must not be in the past (GitLab's member validation).
pub(super) fn check_expiry(expires_at: Option<i64>) -> Result<(), ApiError> {
    let today = clock::now() / clock::DAY * clock::DAY;
    if expires_at.is_some_and(|t| t < today) {
        return Err(ApiError::invalid("expires_at", "cannot be a date in the past"));
    }
    Ok(())
}

/// `GET /groups/:id/members`.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let ns = group(&req, &spur, actor.as_ref())?;
    let mut items = Vec::new();
    for (user_id, m) in spur.store.group_members(ns.id)? {
        if let Some(user) = spur.store.user(user_id)? {
            items.push(views::member(&spur, &user, &m));
        }
    }
    paginated(&req, items)
}

/// `GET /groups/:id/members/:user_id`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let ns = group(&req, &spur, actor.as_ref())?;
    let user_id = id_segment(&req, "user_id")?;
    let m = crate::auth::live_group_member(&spur.store, ns.id, user_id, crate::clock::now())?
        .ok_or_else(|| ApiError::not_found("Member"))?;
    let user = spur.store.user(user_id)?.ok_or_else(|| ApiError::not_found("Member"))?;
    Ok(json_response(StatusCode::OK, &views::member(&spur, &user, &m)))
}

/// `POST /groups/:id/members`: `user_id` or `username`, `access_level`, optional `expires_at`.
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let ns = group(&req, &spur, Some(&actor))?;
    let mut v = Validation::default();
    let id = params.string("user_id").ok().flatten().filter(|s| !s.trim().is_empty());
    let name = params
        .string("username")
        .ok()
        .flatten()
        .filter(|s| !s.trim().is_empty());
    if id.is_none() && name.is_none() {
        v.fail(
            "user_id, username",
            "are missing, exactly one parameter must be provided",
        );
    }
    let level = super::members::access_level(&params, &mut v);
    let expires_at = v.optional_datetime(&params, "expires_at");
    v.finish()?;
    let Some(level) = level else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    may_manage(&spur, &ns, &actor)?;
    check_expiry(expires_at)?;
    let user = match (id, name) {
        (Some(id), _) => spur.store.user(
            id.trim()
                .parse()
                .map_err(|_| ApiError::invalid("user_id", "is invalid"))?,
        )?,
        (None, Some(name)) => spur.store.user_by_username(name.trim())?,
        (None, None) => None,
    }
    .ok_or_else(|| ApiError::not_found("User"))?;
    match crate::members::put_group_member(&spur, ns.id, user.id, level, expires_at, true, clock::now()).await? {
        Ok(m) => Ok(json_response(StatusCode::CREATED, &views::member(&spur, &user, &m))),
        Err(r) => Err(refusal(r)),
    }
}

/// `PUT /groups/:id/members/:user_id`: `access_level`, optional `expires_at`.
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let ns = group(&req, &spur, Some(&actor))?;
    let user_id = id_segment(&req, "user_id")?;
    let mut v = Validation::default();
    let level = super::members::access_level(&params, &mut v);
    let expires_at = v.optional_datetime(&params, "expires_at");
    v.finish()?;
    let Some(level) = level else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    may_manage(&spur, &ns, &actor)?;
    check_expiry(expires_at)?;
    let user = spur.store.user(user_id)?.ok_or_else(|| ApiError::not_found("Member"))?;
    match crate::members::put_group_member(&spur, ns.id, user_id, level, expires_at, false, clock::now()).await? {
        Ok(m) => Ok(json_response(StatusCode::OK, &views::member(&spur, &user, &m))),
        Err(r) => Err(refusal(r)),
    }
}

/// `DELETE /groups/:id/members/:user_id`.
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let ns = group(&req, &spur, Some(&actor))?;
    let user_id = id_segment(&req, "user_id")?;
    // Members may leave; Owners remove anyone.
    if user_id != actor.user.id {
        may_manage(&spur, &ns, &actor)?;
    }
    match crate::members::remove_group_member(&spur, ns.id, user_id).await? {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(r) => Err(refusal(r)),
    }
}

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
    let owner = spur
        .store
        .group_member(ns.id, actor.user.id)?
        .is_some_and(|m| m.access_level == AccessLevel::Owner);
    if owner || actor.user.admin {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// 400 when `user_id` is the group's last Owner and would stop being one.
fn keeps_an_owner(spur: &State, ns: &Namespace, user_id: u64, new_level: Option<AccessLevel>) -> Result<(), ApiError> {
    let owners: Vec<u64> = spur
        .store
        .group_members(ns.id)?
        .into_iter()
        .filter(|(_, m)| m.access_level == AccessLevel::Owner)
        .map(|(id, _)| id)
        .collect();
    if owners == [user_id] && new_level != Some(AccessLevel::Owner) {
        return Err(ApiError::bad_request("A group must have at least one owner"));
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
    let m = spur
        .store
        .group_member(ns.id, user_id)?
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
        Err(_) => Err(ApiError::conflict("Member already exists")),
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
    keeps_an_owner(&spur, &ns, user_id, Some(level))?;
    let user = spur.store.user(user_id)?.ok_or_else(|| ApiError::not_found("Member"))?;
    match crate::members::put_group_member(&spur, ns.id, user_id, level, expires_at, false, clock::now()).await? {
        Ok(m) => Ok(json_response(StatusCode::OK, &views::member(&spur, &user, &m))),
        Err(_) => Err(ApiError::not_found("Member")),
    }
}

/// `DELETE /groups/:id/members/:user_id`.
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let ns = group(&req, &spur, Some(&actor))?;
    let user_id = id_segment(&req, "user_id")?;
    may_manage(&spur, &ns, &actor)?;
    keeps_an_owner(&spur, &ns, user_id, None)?;
    match crate::members::remove_group_member(&spur, ns.id, user_id).await? {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(_) => Err(ApiError::not_found("Member")),
    }
}

//! Project members: `GET/POST /projects/:id/members`, `GET/PUT/DELETE .../members/:user_id`.

use super::{id_segment, segment};
use crate::clock;
use crate::domain::AccessLevel;
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Invalid, Params, Validation};
use crate::http::{State, caller, json_response, signed_in, views, visible_project};
use crate::storage::Refusal;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// `GET /projects/:id/members`: direct members.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let mut items = Vec::new();
    for (user_id, m) in spur.store.project_members(project.id)? {
        if let Some(user) = spur.store.user(user_id)? {
            items.push(views::member(&spur, &user, &m));
        }
    }
    paginated(&req, items)
}

/// `GET /projects/:id/members/all`: direct members and those inherited from the project's
/// group, each with their highest role.
pub async fn all(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let mut best: Vec<(u64, crate::domain::Membership)> = spur.store.project_members(project.id)?;
    for user in spur.store.users()? {
        if let Some(m) =
            crate::auth::live_group_member(&spur.store, project.namespace_id, user.id, crate::clock::now())?
        {
            match best.iter_mut().find(|(id, _)| *id == user.id) {
                Some((_, direct)) if direct.access_level < m.access_level => *direct = m,
                Some(_) => {}
                None => best.push((user.id, m)),
            }
        }
    }
    let mut items = Vec::new();
    for (user_id, m) in best {
        if let Some(user) = spur.store.user(user_id)? {
            items.push(views::member(&spur, &user, &m));
        }
    }
    paginated(&req, items)
}

/// `GET /projects/:id/users`: the users who are members, directly or through the group.
pub async fn users(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let mut items = Vec::new();
    for user in spur.store.users()? {
        let member = spur.store.project_member(project.id, user.id)?.is_some()
            || crate::auth::live_group_member(&spur.store, project.namespace_id, user.id, crate::clock::now())?
                .is_some();
        if member && !user.blocked {
            items.push(views::user_basic(&spur, &user));
        }
    }
    paginated(&req, items)
}

/// `GET /projects/:id/members/:user_id`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let user_id = id_segment(&req, "user_id")?;
    let m = spur
        .store
        .project_member(project.id, user_id)?
        .ok_or_else(|| ApiError::not_found("Member"))?;
    let user = spur.store.user(user_id)?.ok_or_else(|| ApiError::not_found("Member"))?;
    Ok(json_response(StatusCode::OK, &views::member(&spur, &user, &m)))
}

/// `access_level` as a role, or a validation failure.
pub(super) fn access_level(params: &Params, v: &mut Validation) -> Option<AccessLevel> {
    match params.integer("access_level") {
        Ok(Some(n)) => AccessLevel::from_number(n).or_else(|| {
            v.fail("access_level", "does not have a valid value");
            None
        }),
        Ok(None) => {
            v.fail("access_level", "is missing");
            None
        }
        Err(Invalid) => {
            v.fail("access_level", "is invalid");
            None
        }
    }
}

/// `POST /projects/:id/members` (Maintainer+; only Owners grant Owner): `user_id` or
/// `username` (one, or several separated by commas), `access_level`.
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (project, access) = visible_project(&spur, &segment(&req, "id"), Some(&actor))?;
    let mut v = Validation::default();
    let ids = params.string("user_id").ok().flatten().filter(|s| !s.trim().is_empty());
    let names = params
        .string("username")
        .ok()
        .flatten()
        .filter(|s| !s.trim().is_empty());
    let wanted: Option<Vec<String>> = match (&ids, &names) {
        (Some(_), Some(_)) => {
            v.fail("user_id, username", "are mutually exclusive");
            None
        }
        (Some(list), None) | (None, Some(list)) => Some(list.split(',').map(|p| p.trim().to_string()).collect()),
        (None, None) => {
            v.fail(
                "user_id, username",
                "are missing, exactly one parameter must be provided",
            );
            None
        }
    };
    let level = access_level(&params, &mut v);
    let expires_at = v.optional_datetime(&params, "expires_at");
    v.finish()?;
    let (Some(wanted), Some(level)) = (wanted, level) else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    check_may_manage(&access, level)?;
    super::group_members::check_expiry(expires_at)?;
    let mut users = Vec::new();
    for w in wanted.iter().take(100) {
        let user = if ids.is_some() {
            match w.parse::<u64>() {
                Ok(id) if id > 0 => spur.store.user(id)?,
                _ => return Err(ApiError::invalid("user_id", "is invalid")),
            }
        } else {
            spur.store.user_by_username(w)?
        };
        users.push(user.ok_or_else(|| ApiError::not_found("User"))?);
    }
    let single = users.len() == 1;
    let mut created = None;
    for user in &users {
        match crate::members::put_project_member(&spur, project.id, user.id, level, expires_at, true, clock::now())
            .await?
        {
            Ok(m) => created = Some(views::member(&spur, user, &m)),
            Err(_) if single => return Err(ApiError::conflict("Member already exists")),
            Err(_) => {}
        }
    }
    match created {
        Some(member) if single => Ok(json_response(StatusCode::CREATED, &member)),
        _ => Ok(json_response(
            StatusCode::CREATED,
            &serde_json::json!({"status": "success"}),
        )),
    }
}

/// `PUT /projects/:id/members/:user_id` (Maintainer+): `access_level`.
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (project, access) = visible_project(&spur, &segment(&req, "id"), Some(&actor))?;
    let user_id = id_segment(&req, "user_id")?;
    let mut v = Validation::default();
    let level = access_level(&params, &mut v);
    let expires_at = v.optional_datetime(&params, "expires_at");
    v.finish()?;
    let Some(level) = level else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    let existing = spur
        .store
        .project_member(project.id, user_id)?
        .ok_or_else(|| ApiError::not_found("Member"))?;
    check_may_manage(&access, level.max(existing.access_level))?;
    super::group_members::check_expiry(expires_at)?;
    let user = spur.store.user(user_id)?.ok_or_else(|| ApiError::not_found("Member"))?;
    match crate::members::put_project_member(&spur, project.id, user_id, level, expires_at, false, clock::now()).await?
    {
        Ok(m) => Ok(json_response(StatusCode::OK, &views::member(&spur, &user, &m))),
        Err(Refusal::NotFound) | Err(_) => Err(ApiError::not_found("Member")),
    }
}

/// `DELETE /projects/:id/members/:user_id` (Maintainer+, or the member leaving).
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let (project, access) = visible_project(&spur, &segment(&req, "id"), Some(&actor))?;
    let user_id = id_segment(&req, "user_id")?;
    let existing = spur
        .store
        .project_member(project.id, user_id)?
        .ok_or_else(|| ApiError::not_found("Member"))?;
    if user_id != actor.user.id {
        check_may_manage(&access, existing.access_level)?;
    }
    match crate::members::remove_project_member(&spur, project.id, user_id).await? {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(_) => Err(ApiError::not_found("Member")),
    }
}

/// Maintainers manage members up to Maintainer; only Owners (and admins) touch Owners.
fn check_may_manage(access: &crate::auth::ProjectAccess, level: AccessLevel) -> Result<(), ApiError> {
    if !access.may_manage_member(level) {
        return Err(ApiError::forbidden());
    }
    Ok(())
}

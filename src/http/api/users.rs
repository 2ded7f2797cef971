//! Users and personal access tokens: `/user`, `/users`, `/users/:id/personal_access_tokens`,
//! `/personal_access_tokens/:id`.

use super::{id_segment, segment};
use crate::accounts::{self, AccountRefusal, NewAccount};
use crate::clock;
use crate::domain::TokenScope;
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Invalid, Params, Validation};
use crate::http::{State, json_response, signed_in, views};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

/// `GET /user`: the caller.
pub async fn current(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    Ok(json_response(StatusCode::OK, &views::user_full(&spur, &actor.user)))
}

/// `GET /users`: admins see everything, others the basic fields; `?username=` and `?search=`
/// (username or name, and an exact email for admins) filter.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let username = query
        .iter()
        .find(|(k, _)| k == "username")
        .map(|(_, v)| v.to_lowercase());
    let search = query
        .iter()
        .find(|(k, _)| k == "search")
        .map(|(_, v)| v.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let users = spur.store.users()?;
    let admin = actor.user.admin;
    let items = users
        .iter()
        .filter(|u| username.as_ref().is_none_or(|name| u.username.to_lowercase() == *name))
        .filter(|u| {
            search.as_ref().is_none_or(|s| {
                u.username.to_lowercase().contains(s)
                    || u.name.to_lowercase().contains(s)
                    || (admin && u.email.to_lowercase() == *s)
            })
        })
        .map(|u| {
            if actor.user.admin {
                views::user_full(&spur, u)
            } else {
                views::user_basic(&spur, u)
            }
        })
        .collect();
    paginated(&req, items)
}

/// `GET /users/:id`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let id = id_segment(&req, "user_id")?;
    let user = spur.store.user(id)?.ok_or_else(|| ApiError::not_found("User"))?;
    let body = if actor.user.admin || actor.user.id == id {
        views::user_full(&spur, &user)
    } else {
        views::user_basic(&spur, &user)
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /users` (admin): `email`, `name`, `username`, optional `password`, `admin`.
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    if !actor.user.admin {
        return Err(ApiError::forbidden());
    }
    let mut v = Validation::default();
    let email = v.required_string(&params, "email");
    let name = v.required_string(&params, "name");
    let username = v.required_string(&params, "username");
    let password = v.optional_string(&params, "password");
    let admin = v.optional_bool(&params, "admin").unwrap_or(false);
    v.finish()?;
    let (Some(email), Some(name), Some(username)) = (email, name, username) else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    let new = NewAccount {
        username,
        name,
        email,
        password,
        admin,
    };
    match accounts::create_user(&spur, new).await.map_err(ApiError::internal)? {
        Ok(user) => Ok(json_response(StatusCode::CREATED, &views::user_full(&spur, &user))),
        Err(AccountRefusal::Invalid(attr, text)) => Err(ApiError::invalid(attr, &text)),
        Err(AccountRefusal::Taken(text)) => Err(ApiError::conflict(text)),
    }
}

/// `POST /users/:id/block` (admin).
pub async fn block(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    set_blocked(req, spur, true).await
}

/// `POST /users/:id/unblock` (admin).
pub async fn unblock(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    set_blocked(req, spur, false).await
}

async fn set_blocked(req: HttpRequest, spur: State, blocked: bool) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    if !actor.user.admin {
        return Err(ApiError::forbidden());
    }
    let id = id_segment(&req, "user_id")?;
    if id == actor.user.id && blocked {
        return Err(ApiError::forbidden_because("You cannot block yourself"));
    }
    match crate::accounts::set_user_flags(&spur, id, Some(blocked), None).await? {
        Ok(_) => Ok(json_response(StatusCode::CREATED, &json!(true))),
        Err(_) => Err(ApiError::not_found("User")),
    }
}

/// `PUT /users/:id` (admin): `name`, `email`, `password`, `admin`. Usernames are fixed in
/// spur (they name namespaces and projects): a different one is refused.
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    if !actor.user.admin {
        return Err(ApiError::forbidden());
    }
    let id = id_segment(&req, "user_id")?;
    let user = spur.store.user(id)?.ok_or_else(|| ApiError::not_found("User"))?;
    let mut v = Validation::default();
    let change = accounts::UserChange {
        name: v.optional_string(&params, "name"),
        email: v.optional_string(&params, "email"),
        password: v.optional_string(&params, "password"),
        admin: v.optional_bool(&params, "admin"),
    };
    let username = v.optional_string(&params, "username");
    v.finish()?;
    if username.is_some_and(|u| !u.eq_ignore_ascii_case(&user.username)) {
        return Err(ApiError::invalid("username", "cannot be changed in spur"));
    }
    match accounts::update_user(&spur, id, change)
        .await
        .map_err(ApiError::internal)?
    {
        Ok(u) => Ok(json_response(StatusCode::OK, &views::user_full(&spur, &u))),
        Err(AccountRefusal::Invalid(attr, text)) => Err(ApiError::invalid(attr, &text)),
        Err(AccountRefusal::Taken(text)) => Err(ApiError::conflict(text)),
    }
}

/// `POST /users/:id/personal_access_tokens` (admin): `name`, `scopes`, optional `expires_at`.
/// The token is in this response only.
pub async fn create_token(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    if !actor.user.admin {
        return Err(ApiError::forbidden());
    }
    let user_id = id_segment(&req, "user_id")?;
    let mut v = Validation::default();
    let name = v.required_string(&params, "name");
    let scopes = match params.string_list("scopes") {
        Ok(Some(s)) if !s.is_empty() => Some(s),
        Ok(_) => {
            v.fail("scopes", "is missing");
            None
        }
        Err(Invalid) => {
            v.fail("scopes", "is invalid");
            None
        }
    };
    let expires_at = v.optional_datetime(&params, "expires_at");
    v.finish()?;
    let (Some(name), Some(scopes)) = (name, scopes) else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    let scopes = scopes
        .iter()
        .map(|s| TokenScope::parse(s))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::Params("scopes does not have a valid value".into()))?;
    if spur.store.user(user_id)?.is_none() {
        return Err(ApiError::not_found("User"));
    }
    match accounts::create_token(&spur, user_id, name, scopes, expires_at)
        .await
        .map_err(ApiError::internal)?
    {
        Ok((pat, token)) => Ok(json_response(
            StatusCode::CREATED,
            &views::personal_access_token(&pat, Some(&token), clock::now()),
        )),
        Err(AccountRefusal::Invalid(attr, text)) => Err(ApiError::invalid(attr, &text)),
        Err(AccountRefusal::Taken(text)) => Err(ApiError::conflict(text)),
    }
}

/// `DELETE /personal_access_tokens/:id`: its owner or an admin revokes it.
pub async fn revoke_token(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let raw = segment(&req, "token_id");
    let id = raw
        .parse::<u64>()
        .map_err(|_| ApiError::Params("token_id is invalid".into()))?;
    let pat = spur
        .store
        .personal_access_token_by_id(id)?
        .ok_or_else(|| ApiError::not_found(""))?;
    if pat.user_id != actor.user.id && !actor.user.admin {
        return Err(ApiError::not_found(""));
    }
    match crate::accounts::revoke_personal_access_token(&spur, id).await? {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(_) => Err(ApiError::not_found("")),
    }
}

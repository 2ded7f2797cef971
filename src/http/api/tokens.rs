//! Personal access tokens seen by their owners: `GET /personal_access_tokens` (own; admins
//! all, `user_id`), `GET /personal_access_tokens/self` and `/:id`, `DELETE .../self`, and
//! rotation `POST .../:id/rotate` and `.../self/rotate` (the old token stops working, the new
//! one is in the answer only).

use super::segment;
use crate::accounts::{self, AccountRefusal};
use crate::auth::Actor;
use crate::clock;
use crate::domain::PersonalAccessToken;
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation, truthy};
use crate::http::{State, json_response, signed_in, views};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// The token a request names (`self` is the credential in use), if the caller may see it.
fn named_token(req: &HttpRequest, spur: &State, actor: &Actor) -> Result<PersonalAccessToken, ApiError> {
    let raw = segment(req, "token_id");
    let id = if raw == "self" {
        actor.token_id.ok_or_else(ApiError::unauthorized)?
    } else {
        raw.parse::<u64>()
            .map_err(|_| ApiError::Params("token_id is invalid".into()))?
    };
    match spur.store.personal_access_token_by_id(id)? {
        Some(pat) if pat.user_id == actor.user.id || actor.user.admin => Ok(pat),
        _ => Err(ApiError::not_found("")),
    }
}

/// `GET /personal_access_tokens`: `user_id` (admins), `state` (`active`/`inactive`),
/// `revoked`, `search` (in the name).
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let query = super::Query::of(&req);
    let get = |k: &str| query.get(k);
    let user_id = match get("user_id") {
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::Params("user_id is invalid".into()))?,
        ),
        None => None,
    };
    let owner = match (actor.user.admin, user_id) {
        (true, wanted) => wanted,
        (false, Some(id)) if id != actor.user.id => return Err(ApiError::forbidden()),
        (false, _) => Some(actor.user.id),
    };
    let now = clock::now();
    let active = |p: &PersonalAccessToken| !p.revoked && p.expires_at.is_none_or(|t| t > now);
    let state = match get("state").as_deref() {
        None => None,
        Some("active") => Some(true),
        Some("inactive") => Some(false),
        Some(_) => return Err(ApiError::Params("state does not have a valid value".into())),
    };
    let revoked = get("revoked")
        .map(|v| truthy(&v).ok_or_else(|| ApiError::Params("revoked is invalid".into())))
        .transpose()?;
    let search = get("search").map(|s| s.to_lowercase());
    let tokens = match owner {
        Some(id) => spur.store.user_personal_access_tokens(id)?,
        None => spur.store.all_personal_access_tokens()?,
    };
    let items = tokens
        .iter()
        .filter(|p| state.is_none_or(|s| active(p) == s))
        .filter(|p| revoked.is_none_or(|r| p.revoked == r))
        .filter(|p| search.as_ref().is_none_or(|s| p.name.to_lowercase().contains(s)))
        .map(|p| views::personal_access_token(p, None, now))
        .collect();
    paginated(&req, items)
}

/// `GET /personal_access_tokens/:id` and `/self`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let pat = named_token(&req, &spur, &actor)?;
    Ok(json_response(
        StatusCode::OK,
        &views::personal_access_token(&pat, None, clock::now()),
    ))
}

/// `DELETE /personal_access_tokens/self`: revokes the token in use.
pub async fn revoke_self(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let id = actor.token_id.ok_or_else(ApiError::unauthorized)?;
    match accounts::revoke_personal_access_token(&spur, id).await? {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(_) => Err(ApiError::not_found("")),
    }
}

/// `POST /personal_access_tokens/:id/rotate` and `/self/rotate`: optional `expires_at`.
pub async fn rotate(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    if !actor.can_write() {
        return Err(ApiError::forbidden());
    }
    let pat = named_token(&req, &spur, &actor)?;
    let mut v = Validation::default();
    let expires_at = v.optional_datetime(&params, "expires_at");
    v.finish()?;
    match accounts::rotate_token(&spur, pat.id, expires_at)
        .await
        .map_err(ApiError::internal)?
    {
        Ok((new, token)) => Ok(json_response(
            StatusCode::OK,
            &views::personal_access_token(&new, Some(&token), clock::now()),
        )),
        Err(AccountRefusal::Invalid(attr, text)) => Err(ApiError::invalid(attr, &text)),
        Err(AccountRefusal::Taken(text)) => Err(ApiError::conflict(text)),
    }
}

//! Trigger tokens: `GET/POST /projects/:id/triggers`, `GET/PUT/DELETE .../triggers/:trigger_id`,
//! with GitLab's roles: Maintainer+ lists, creates and revokes any token; only its owner, while
//! still Maintainer+, updates it or sees it in full; everyone else sees the 4-character short token.

use super::id_segment;
use crate::auth::{Actor, ProjectAccess};
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, Project, Trigger};
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation};
use crate::http::{State, json_response, project_with_role, views};
use crate::storage::Refusal;
use crate::trigger_tokens;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

/// The JSON of a trigger as `actor` may see it.
fn trigger_view(
    spur: &Spur,
    t: &Trigger,
    last_used: Option<i64>,
    actor: &Actor,
    access: &ProjectAccess,
) -> Result<Value, ApiError> {
    let owner = spur.store.user(t.owner_id)?;
    let full = trigger_tokens::full_token(spur, t, &actor.user, access).map_err(ApiError::internal)?;
    Ok(views::trigger(spur, t, last_used, owner.as_ref(), full.as_deref()))
}

/// The project for a trigger endpoint: signed in (401), visible (404), Maintainer+ unless
/// `any_role` (403).
async fn project_for(
    req: &HttpRequest,
    spur: &State,
    any_role: bool,
) -> Result<(Actor, Project, ProjectAccess), ApiError> {
    let level = if any_role { None } else { Some(AccessLevel::Maintainer) };
    project_with_role(req, spur, level).await
}

/// The project's trigger `trigger_id`, if it exists and has not expired.
fn find_trigger(spur: &Spur, project_id: u64, trigger_id: u64) -> Result<(Trigger, Option<i64>), ApiError> {
    match spur.store.trigger(trigger_id)? {
        Some((t, last)) if t.project_id == project_id && !t.is_expired(clock::now()) => Ok((t, last)),
        _ => Err(ApiError::record_not_found()),
    }
}

/// `GET /projects/:id/triggers` (Maintainer+).
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (actor, project, access) = project_for(&req, &spur, false).await?;
    let now = clock::now();
    let mut items = Vec::new();
    for (t, last) in spur.store.project_triggers(project.id)? {
        if !t.is_expired(now) {
            items.push(trigger_view(&spur, &t, last, &actor, &access)?);
        }
    }
    paginated(&req, items)
}

/// `GET /projects/:id/triggers/:trigger_id` (Maintainer+).
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let trigger_id = id_segment(&req, "trigger_id")?;
    let (actor, project, access) = project_for(&req, &spur, false).await?;
    let (t, last) = find_trigger(&spur, project.id, trigger_id)?;
    Ok(json_response(
        StatusCode::OK,
        &trigger_view(&spur, &t, last, &actor, &access)?,
    ))
}

/// The token limits a create or update names: `ref_patterns` (a list; empty: any ref) and
/// `allowed_variables` (a list of keys; `*` alone: any key). `None` where not given.
type ScopeParams = (Option<Vec<String>>, Option<Option<Vec<String>>>);

fn scope_params(params: &Params, v: &mut Validation) -> ScopeParams {
    let mut list = |key: &str| {
        params.string_list(key).unwrap_or_else(|_| {
            v.fail(key, "is invalid");
            None
        })
    };
    let refs = list("ref_patterns");
    let keys = list("allowed_variables").map(|k| if k == ["*"] { None } else { Some(k) });
    (refs, keys)
}

fn create_error(e: trigger_tokens::CreateError) -> ApiError {
    match e {
        trigger_tokens::CreateError::ExpiresTooLate(text) => {
            let errors = json!({"expires_at": [text]});
            ApiError::bad_request(&errors.to_string())
        }
        trigger_tokens::CreateError::InvalidScope(field, text) => ApiError::invalid(field, &text),
        trigger_tokens::CreateError::Internal(e) => ApiError::internal(e),
    }
}

/// `POST /projects/:id/triggers` (Maintainer+): `description` (required, may be empty),
/// `expires_at` (optional, less than a year ahead), and spur's limits `ref_patterns` and
/// `allowed_variables`. The creator owns the token.
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, access) = project_for(&req, &spur, false).await?;
    let mut v = Validation::default();
    let description = v.required_string(&params, "description");
    let expires_at = v.optional_datetime(&params, "expires_at");
    let (refs, keys) = scope_params(&params, &mut v);
    v.finish()?;
    let scope = trigger_tokens::Scope {
        ref_patterns: refs.unwrap_or_default(),
        allowed_variables: keys.flatten(),
    };
    let (t, _) = trigger_tokens::create(&spur, &project, &actor.user, description, expires_at, scope)
        .await
        .map_err(create_error)?;
    Ok(json_response(
        StatusCode::CREATED,
        &trigger_view(&spur, &t, None, &actor, &access)?,
    ))
}

/// `PUT /projects/:id/triggers/:trigger_id`: only its owner, while Maintainer+, may change
/// the description and the limits.
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let trigger_id = id_segment(&req, "trigger_id")?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, access) = project_for(&req, &spur, true).await?;
    let mut v = Validation::default();
    let description = v.optional_string(&params, "description");
    let (refs, keys) = scope_params(&params, &mut v);
    v.finish()?;
    let (t, last) = find_trigger(&spur, project.id, trigger_id)?;
    if t.owner_id != actor.user.id || !access.at_least(AccessLevel::Maintainer) {
        return Err(ApiError::forbidden_because(
            "The current user is not authorized to update the pipeline trigger token",
        ));
    }
    let t = if refs.is_some() || keys.is_some() {
        match trigger_tokens::update_trigger_scope(&spur, &t, refs, keys)
            .await
            .map_err(create_error)?
        {
            Ok(t) => t,
            Err(_) => return Err(ApiError::record_not_found()),
        }
    } else {
        t
    };
    if params.get("description").is_none() {
        return Ok(json_response(
            StatusCode::OK,
            &trigger_view(&spur, &t, last, &actor, &access)?,
        ));
    }
    match crate::trigger_tokens::update_trigger_description(&spur, t.id, description, clock::now()).await? {
        Ok(updated) => Ok(json_response(
            StatusCode::OK,
            &trigger_view(&spur, &updated, last, &actor, &access)?,
        )),
        Err(_) => Err(ApiError::record_not_found()),
    }
}

/// `DELETE /projects/:id/triggers/:trigger_id` (Maintainer+, any token): revokes it for good.
/// Honours `If-Unmodified-Since` (412 when the token changed after it).
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let trigger_id = id_segment(&req, "trigger_id")?;
    let (_, project, _) = project_for(&req, &spur, false).await?;
    let (t, _) = find_trigger(&spur, project.id, trigger_id)?;
    let since = req
        .headers()
        .get("if-unmodified-since")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    match crate::trigger_tokens::delete_trigger(&spur, t.id, since).await? {
        Ok(()) => {
            tracing::info!(project_id = project.id, trigger_id = t.id, "trigger token revoked");
            Ok(HttpResponse::NoContent().finish())
        }
        Err(Refusal::Taken(_)) => Err(ApiError::Message(
            StatusCode::PRECONDITION_FAILED,
            "412 Precondition Failed".into(),
        )),
        Err(Refusal::NotFound) => Err(ApiError::record_not_found()),
    }
}

/// `POST /projects/:id/triggers/:trigger_id/rotate` (its owner, while Maintainer+): a new token
/// replaces the old one in one step, the old one working on for `grace_period` seconds when
/// given (at most a week); the answer shows the new token once.
pub async fn rotate(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let trigger_id = id_segment(&req, "trigger_id")?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, _) = project_for(&req, &spur, false).await?;
    let grace = match params.integer("grace_period") {
        Ok(None) => 0,
        Ok(Some(n)) if (0..=trigger_tokens::MAX_GRACE_SECS as i64).contains(&n) => n as u64,
        _ => {
            return Err(ApiError::Params(format!(
                "grace_period must be from 0 to {} seconds",
                trigger_tokens::MAX_GRACE_SECS
            )));
        }
    };
    let (t, last) = find_trigger(&spur, project.id, trigger_id)?;
    if t.owner_id != actor.user.id {
        return Err(ApiError::forbidden_because(
            "Only the owner of a pipeline trigger token may rotate it",
        ));
    }
    let Some((t, token)) = trigger_tokens::rotate(&spur, &t, grace).await.map_err(create_error)? else {
        return Err(ApiError::record_not_found());
    };
    let owner = spur.store.user(t.owner_id)?;
    Ok(json_response(
        StatusCode::OK,
        &views::trigger(&spur, &t, last, owner.as_ref(), Some(&token)),
    ))
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) or an ISO-8601 time, in milliseconds.
fn parse_http_date(s: &str) -> Option<i64> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s.trim(), &format)
        .ok()
        .map(|t| (t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
        .or_else(|| clock::parse_datetime(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Thu, 07 Jan 2016 09:53:58 GMT"),
            Some(1_452_160_438_000)
        );
        assert_eq!(parse_http_date("junk"), None);
    }
}

//! `GET/PUT /application/settings` (administrators): the settings spur keeps, under GitLab's
//! names.

use crate::application_settings::Change;
use crate::http::error::ApiError;
use crate::http::params::{Params, Validation};
use crate::http::{State, signed_in};
use actix_web::{HttpRequest, HttpResponse, web};

async fn admin(req: &HttpRequest, spur: &State) -> Result<(), ApiError> {
    let actor = signed_in(req, spur).await?;
    if actor.user.admin {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// `GET /application/settings`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    admin(&req, &spur).await?;
    let settings = spur.store.application_settings()?;
    Ok(HttpResponse::Ok().json(crate::http::views::application_settings(&settings, &spur)))
}

/// `PUT /application/settings`.
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    admin(&req, &spur).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let mut v = Validation::default();
    let web_hooks = v
        .optional_bool(&params, "allow_local_requests_from_web_hooks_and_services")
        .or(v.optional_bool(&params, "allow_local_requests_from_hooks_and_services"));
    let system_hooks = v.optional_bool(&params, "allow_local_requests_from_system_hooks");
    let raw = v.optional_string(&params, "outbound_local_requests_allowlist_raw");
    let list = match params.string_list("outbound_local_requests_whitelist") {
        Ok(list) => list.map(|l| l.join(",")),
        Err(_) => {
            v.fail("outbound_local_requests_whitelist", "is invalid");
            None
        }
    };
    v.finish()?;
    let change = Change {
        allow_local_requests_from_web_hooks_and_services: web_hooks,
        allow_local_requests_from_system_hooks: system_hooks,
        outbound_allowlist: raw.or(list),
    };
    match crate::application_settings::update(&spur, change)
        .await
        .map_err(ApiError::internal)?
    {
        Ok(settings) => Ok(HttpResponse::Ok().json(crate::http::views::application_settings(&settings, &spur))),
        Err((field, why)) => Err(ApiError::invalid(field, &why)),
    }
}

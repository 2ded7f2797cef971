//! `GET /api/v4/version` and `GET /api/v4/metadata`: the GitLab version whose API spur follows,
//! and spur's own.

use crate::http::views::GITLAB_API_VERSION;
use crate::http::{State, caller, error::ApiError, json_response};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

/// spur's commit, set at build time by `build.rs` from git (or `unknown`).
const REVISION: &str = env!("SPUR_REVISION");

/// Shows the version; any signed-in caller may, as in GitLab.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    caller(&req, &spur).await?.ok_or_else(ApiError::unauthorized)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "version": GITLAB_API_VERSION,
            "revision": REVISION,
            "kas": {"enabled": false, "externalUrl": null, "version": null},
            "enterprise": false,
            "spur": {"version": env!("CARGO_PKG_VERSION"), "revision": REVISION},
        }),
    ))
}

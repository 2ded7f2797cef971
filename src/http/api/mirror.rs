//! Following a mirrored repository: `POST /projects/:id/mirror/pull` (GitLab's endpoint,
//! Maintainer+) and `POST /projects/:id/mirror/hook`, the push webhook a forge (GitLab, GitHub,
//! Gitea) calls with the project's secret. Both answer at once and fetch in the background;
//! push pipelines follow for every moved ref.

use super::segment;
use crate::domain::AccessLevel;
use crate::http::error::ApiError;
use crate::http::params::read_body;
use crate::http::{State, json_response, lookup_project, project_with_role};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

/// Largest webhook body read (GitHub sends up to 25 MB; pushes of many commits are large).
const MAX_HOOK_BYTES: usize = 25 << 20;

fn start_update(spur: &State, project_id: u64) {
    let spur = spur.clone().into_inner();
    tokio::spawn(async move {
        match crate::push::update_mirror(spur, project_id).await {
            Ok(n) => tracing::info!(project_id, pipelines = n, "mirror updated"),
            Err(e) => tracing::warn!(project_id, error = %e, "mirror update failed"),
        }
    });
}

/// `POST /projects/:id/mirror/pull`: 200; the fetch runs in the background.
pub async fn pull(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    if project.import_url.is_none() {
        return Err(ApiError::bad_request_plain("The project is not mirrored"));
    }
    start_update(&spur, project.id);
    Ok(json_response(StatusCode::OK, &json!({})))
}

/// `POST /projects/:id/mirror/hook`: a forge's push event. 401 without the project's secret
/// (also for a project that does not exist, which then stays unknown); events other than pushes
/// are acknowledged and ignored.
pub async fn hook(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, MAX_HOOK_BYTES).await?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let project = lookup_project(&spur, &segment(&req, "id"))?.filter(|p| p.import_url.is_some());
    let authentic = project.as_ref().is_some_and(|p| {
        let secret = crate::push::hook_secret(&spur, p.id);
        let signature = header("x-hub-signature-256").or_else(|| header("x-gitea-signature"));
        crate::push::hook_authentic(&secret, header("x-gitlab-token"), signature, &body)
    });
    let Some(project) = project.filter(|_| authentic) else {
        return Err(ApiError::unauthorized());
    };
    let event = header("x-gitlab-event")
        .or_else(|| header("x-gitea-event"))
        .or_else(|| header("x-github-event"))
        .unwrap_or_default();
    if !matches!(event, "Push Hook" | "Tag Push Hook" | "push" | "create") {
        return Ok(json_response(StatusCode::OK, &json!({"message": "ignored"})));
    }
    start_update(&spur, project.id);
    Ok(json_response(StatusCode::ACCEPTED, &json!({"message": "202 Accepted"})))
}

//! Project webhooks (`GET/POST /projects/:id/hooks`, `GET/PUT/DELETE /projects/:id/hooks/:hook_id`,
//! `POST .../hooks/:hook_id/test/:trigger`)
//! and the commit-status integration (`GET/PUT/DELETE /projects/:id/integrations/github`),
//! Maintainer+, with GitLab's entities. Secrets (the hook token, the forge token) are sealed and
//! never shown back.

use super::id_segment;
use crate::clock;
use crate::domain::{AccessLevel, ProjectHook, StatusIntegration};
use crate::http::error::ApiError;
use crate::http::params::Params;
use crate::http::views;
use crate::http::{State, json_response, project_with_role};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

fn invalid(key: &str) -> ApiError {
    ApiError::Params(format!("{key} is invalid"))
}

/// Whether a URL may receive webhooks: http or https only.
fn valid_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && url.len() > 8 && !url.contains(char::is_whitespace)
}

/// Refuses a URL whose host resolves to an address the outbound policy blocks, as GitLab
/// does: 422 `{"error":"Invalid url given"}` (a host that does not resolve yet is accepted, and
/// checked again at every delivery).
async fn refuse_blocked(spur: &State, url: &str) -> Result<(), ApiError> {
    match spur.outbound_policy().check_url(url).await {
        Err(why) if !why.starts_with("Host cannot be resolved") => Err(ApiError::Token(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({ "error": "Invalid url given" }),
        )),
        _ => Ok(()),
    }
}

/// Applies the parameters of a create or update to `hook`.
fn apply(spur: &State, params: &Params, hook: &mut ProjectHook) -> Result<(), ApiError> {
    if let Some(url) = params.string("url").map_err(|_| invalid("url"))? {
        if !valid_url(&url) {
            return Err(ApiError::invalid(
                "url",
                "is blocked: Only allowed schemes are http, https",
            ));
        }
        hook.url = url;
    }
    if let Some(token) = params.string("token").map_err(|_| invalid("token"))? {
        hook.token_sealed = if token.is_empty() {
            None
        } else {
            Some(spur.secrets.seal(token.as_bytes()).map_err(ApiError::internal)?)
        };
    }
    let flag = |key: &str| params.boolean(key).map_err(|_| invalid(key));
    if let Some(v) = flag("pipeline_events")? {
        hook.pipeline_events = v;
    }
    if let Some(v) = flag("job_events")? {
        hook.job_events = v;
    }
    if let Some(v) = flag("push_events")? {
        hook.push_events = v;
    }
    if let Some(v) = flag("enable_ssl_verification")? {
        hook.enable_ssl_verification = v;
    }
    Ok(())
}

/// `GET /projects/:id/hooks`.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let hooks: Vec<Value> = spur
        .store
        .project_hooks(project.id)?
        .iter()
        .map(views::project_hook)
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(hooks)))
}

/// `POST /projects/:id/hooks`: 201.
pub async fn create(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    if params.string("url").ok().flatten().is_none() {
        return Err(ApiError::Params("url is missing".into()));
    }
    let mut hook = ProjectHook {
        id: 0,
        project_id: project.id,
        url: String::new(),
        token_sealed: None,
        pipeline_events: false,
        job_events: false,
        push_events: true,
        enable_ssl_verification: true,
        created_at: clock::now(),
    };
    apply(&spur, &params, &mut hook)?;
    refuse_blocked(&spur, &hook.url).await?;
    let hook = crate::hooks::create_project_hook(&spur, hook).await?;
    spur.events.listen();
    Ok(json_response(StatusCode::CREATED, &views::project_hook(&hook)))
}

fn find(spur: &State, project_id: u64, req: &HttpRequest) -> Result<ProjectHook, ApiError> {
    let id = id_segment(req, "hook_id")?;
    spur.store
        .project_hooks(project_id)?
        .into_iter()
        .find(|h| h.id == id)
        .ok_or_else(|| ApiError::not_found(""))
}

/// `GET /projects/:id/hooks/:hook_id`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    Ok(json_response(
        StatusCode::OK,
        &views::project_hook(&find(&spur, project.id, &req)?),
    ))
}

/// `PUT /projects/:id/hooks/:hook_id`.
pub async fn update(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let mut hook = find(&spur, project.id, &req)?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    apply(&spur, &params, &mut hook)?;
    refuse_blocked(&spur, &hook.url).await?;
    if !crate::hooks::update_project_hook(&spur, hook.clone()).await? {
        return Err(ApiError::not_found(""));
    }
    Ok(json_response(StatusCode::OK, &views::project_hook(&hook)))
}

/// `DELETE /projects/:id/hooks/:hook_id`: 204.
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let hook = find(&spur, project.id, &req)?;
    crate::hooks::delete_project_hook(&spur, project.id, hook.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /projects/:id/hooks/:hook_id/test/:trigger` (Maintainer+): posts GitLab's sample
/// event now; 201 `{"message":"201 Created"}` when the receiver answered 2xx, else 422 with
/// what went wrong.
pub async fn test(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (actor, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let hook = find(&spur, project.id, &req)?;
    let trigger = super::segment(&req, "trigger");
    if !crate::hooks::TRIGGERS.contains(&trigger.as_str()) {
        return Err(ApiError::Params("trigger does not have a valid value".into()));
    }
    if spur.hook_test_quota.take(actor.user.id).is_err() {
        return Err(too_many());
    }
    match crate::hooks::test_hook(&spur, &project, &hook, &actor.user, &trigger).await {
        Ok(_) => Ok(json_response(
            StatusCode::CREATED,
            &serde_json::json!({"message": "201 Created"}),
        )),
        Err(message) => Err(ApiError::Message(StatusCode::UNPROCESSABLE_ENTITY, message)),
    }
}

/// GitLab's web hook log entity.
fn log_view(log: &crate::domain::HookLog) -> Value {
    let headers: serde_json::Map<String, Value> = log
        .request_headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    serde_json::json!({
        "id": log.id,
        "url": log.url,
        "trigger": log.trigger,
        "request_headers": headers,
        "request_data": serde_json::from_str::<Value>(&log.request_data).unwrap_or(Value::String(log.request_data.clone())),
        "response_headers": {},
        "response_body": log.response_body,
        "execution_duration": log.execution_duration,
        "response_status": log.response_status.map_or_else(|| "internal error".to_string(), |s| s.to_string()),
        "internal_error_message": log.internal_error_message,
        "created_at": crate::clock::iso8601(log.created_at),
    })
}

/// `GET /projects/:id/hooks/:hook_id/events` (Maintainer+): the hook's deliveries, newest
/// first, delivered or given up; `status` filters by code or by `successful`,
/// `client_failure`, `server_failure`.
pub async fn events(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let hook = find(&spur, project.id, &req)?;
    let wanted: Vec<String> = super::Query::of(&req)
        .get("status")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_default();
    for w in &wanted {
        let known = matches!(w.as_str(), "successful" | "client_failure" | "server_failure")
            || w.parse::<u16>().is_ok_and(|n| (100..600).contains(&n));
        if !known {
            return Err(ApiError::Params("status does not have a valid value".into()));
        }
    }
    let keep = |log: &crate::domain::HookLog| {
        wanted.is_empty()
            || wanted.iter().any(|w| match (w.as_str(), log.response_status) {
                ("successful", Some(s)) => (200..300).contains(&s),
                ("client_failure", Some(s)) => (400..500).contains(&s),
                ("server_failure", Some(s)) => s >= 500,
                ("server_failure", None) => true,
                (code, Some(s)) => code.parse::<u16>() == Ok(s),
                _ => false,
            })
    };
    let items = spur
        .store
        .hook_logs(hook.id)?
        .iter()
        .filter(|l| keep(l))
        .map(log_view)
        .collect();
    crate::http::pagination::paginated(&req, items)
}

/// GitLab's 429 for an action used too often.
fn too_many() -> ApiError {
    ApiError::Token(
        StatusCode::TOO_MANY_REQUESTS,
        serde_json::json!({"message": {"error": "This endpoint has been requested too many times. Try again later."}}),
    )
}

/// `POST /projects/:id/hooks/:hook_id/events/:hook_log_id/resend` (Maintainer+): posts the
/// logged event again now; 201 `{"response_status": ...}`.
pub async fn resend(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (actor, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let hook = find(&spur, project.id, &req)?;
    let log_id = id_segment(&req, "hook_log_id")?;
    let log = spur
        .store
        .hook_logs(hook.id)?
        .into_iter()
        .find(|l| l.id == log_id)
        .ok_or_else(|| ApiError::not_found("Hook log"))?;
    if spur.hook_resend_quota.take(actor.user.id).is_err() {
        return Err(too_many());
    }
    let sent = crate::hooks::resend(&spur, &hook, &log)
        .await
        .map_err(|e| ApiError::Message(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let status = sent
        .response_status
        .map_or_else(|| "internal error".to_string(), |s| s.to_string());
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::json!({"response_status": status}),
    ))
}

/// `GET /projects/:id/integrations/github`.
pub async fn show_integration(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let i = spur.store.status_integration(project.id)?;
    Ok(json_response(StatusCode::OK, &views::status_integration(i.as_ref())))
}

/// `PUT /projects/:id/integrations/github`: `token`, `repository_url` (GitHub or Gitea),
/// optional `static_context` and `api_url`. Pipelines then post commit statuses there.
pub async fn set_integration(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let text = |key: &str| params.string(key).map_err(|_| invalid(key));
    let (Some(token), Some(repository_url)) = (text("token")?, text("repository_url")?) else {
        return Err(ApiError::Params(
            "token, repository_url are missing, at least one parameter must be provided".into(),
        ));
    };
    let api_url = text("api_url")?.filter(|u| !u.is_empty());
    if !valid_url(&repository_url) || api_url.as_deref().is_some_and(|u| !valid_url(u)) {
        return Err(ApiError::invalid(
            "repository_url",
            "is blocked: Only allowed schemes are http, https",
        ));
    }
    let integration = StatusIntegration {
        repository_url,
        api_url,
        token_sealed: spur.secrets.seal(token.as_bytes()).map_err(ApiError::internal)?,
        static_context: params
            .boolean("static_context")
            .map_err(|_| invalid("static_context"))?
            .unwrap_or(false),
    };
    let Some(target) = crate::hooks::statuses_url(&integration, "0") else {
        return Err(ApiError::invalid(
            "repository_url",
            "must name a repository (https://host/owner/repo)",
        ));
    };
    refuse_blocked(&spur, &target).await?;
    crate::hooks::set_status_integration(&spur, project.id, Some(integration.clone())).await?;
    spur.events.listen();
    Ok(json_response(
        StatusCode::OK,
        &views::status_integration(Some(&integration)),
    ))
}

/// `DELETE /projects/:id/integrations/github`: 204.
pub async fn delete_integration(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    crate::hooks::set_status_integration(&spur, project.id, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

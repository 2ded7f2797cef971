//! The HTTP server: one visible route table, the shared state, and the extractors every
//! handler uses (the authenticated caller, the project named by `:id`).

pub mod api;
pub mod error;
pub mod git_http;
pub mod health;
pub mod pagination;
pub mod params;
pub mod ui;
pub mod views;

use crate::auth::{self, Actor, AuthFailure, ProjectAccess};
use crate::clock;
use crate::context::Spur;
use crate::domain::Project;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use error::ApiError;
use serde_json::json;

/// Logs one line per request: method, the matched route's pattern (never the path itself,
/// which may hold a token in its query), status and duration.
pub fn log_request<S>(
    req: actix_web::dev::ServiceRequest,
    service: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse, actix_web::Error>> + use<S>
where
    S: actix_web::dev::Service<
            actix_web::dev::ServiceRequest,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let call = service.call(req);
    async move {
        let response = call.await?;
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "(unmatched)".into());
        tracing::info!(
            target: "spur::request",
            method = %method,
            route = %route,
            status = response.status().as_u16(),
            duration_us = started.elapsed().as_micros() as u64,
            "request"
        );
        Ok(response)
    }
}

/// The body of an open file of `len` bytes, streamed in chunks (job logs, backups): memory stays
/// flat whatever the size.
pub fn file_body(
    file: tokio::fs::File,
    len: u64,
) -> actix_web::body::SizedStream<impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>>> {
    let stream = futures_util::stream::unfold((file, len), |(mut file, left)| async move {
        use tokio::io::AsyncReadExt;
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; (256 * 1024).min(left as usize)];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(web::Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    actix_web::body::SizedStream::new(len, stream)
}

/// Rack::Attack's answer to a throttled client: 429 `Retry later` with `Retry-After`.
pub fn retry_later(retry_after: std::time::Duration) -> HttpResponse {
    HttpResponse::TooManyRequests()
        .content_type("text/plain")
        .insert_header(("Retry-After", retry_after.as_secs().max(1).to_string()))
        .body("Retry later\n")
}

/// The client's address (the peer; spur does not trust forwarding headers).
pub fn client_ip(req: &HttpRequest) -> std::net::IpAddr {
    req.peer_addr().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}

/// Shared state of every handler.
pub type State = web::Data<Spur>;

/// The route table of the whole server.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use api::*;
    cfg.service(
        web::scope("/api/v4")
            // The trigger routes come first: actix tries routes in order, and these are hot.
            .route("/projects/{id}/trigger/pipeline", web::post().to(trigger::by_params))
            .route(
                "/projects/{id}/ref/{ref:.+}/trigger/pipeline",
                web::post().to(trigger::by_webhook),
            )
            // Runners poll this constantly.
            .route("/jobs/request", web::post().to(runner_jobs::request))
            .route("/jobs/{job_id}", web::put().to(runner_jobs::update))
            .route("/jobs/{job_id}/trace", web::patch().to(runner_jobs::patch_trace))
            .route(
                "/jobs/{job_id}/artifacts",
                web::post().to(runner_jobs::upload_artifacts),
            )
            .route(
                "/jobs/{job_id}/artifacts",
                web::get().to(runner_jobs::download_artifacts),
            )
            .route("/runners", web::post().to(runners::register))
            .route("/runners/", web::post().to(runners::register))
            .route("/runners", web::delete().to(runners::unregister))
            .route("/runners/", web::delete().to(runners::unregister))
            .route("/runners/verify", web::post().to(runners::verify))
            .route(
                "/runners/router/discovery",
                web::get().to(runner_jobs::router_discovery),
            )
            .route("/runners/managers", web::delete().to(runners::unregister_manager))
            .route("/runners/all", web::get().to(runners::list))
            .route("/runners/{runner_id}", web::get().to(runners::show))
            .route("/runners/{runner_id}/jobs", web::get().to(runners::jobs))
            .route("/runners/{runner_id}", web::put().to(runners::update))
            .route("/runners/{runner_id}", web::delete().to(runners::delete))
            .route("/user/runners", web::post().to(runners::create))
            .route("/version", web::get().to(version::show))
            .route("/admin/backup", web::post().to(admin::backup))
            .route("/application/settings", web::get().to(application_settings::show))
            .route("/application/settings", web::put().to(application_settings::update))
            .route("/user", web::get().to(users::current))
            .route("/users", web::get().to(users::list))
            .route("/users", web::post().to(users::create))
            .route("/users/{user_id}", web::get().to(users::show))
            .route("/users/{user_id}", web::put().to(users::update))
            .route("/users/{user_id}/block", web::post().to(users::block))
            .route("/users/{user_id}/unblock", web::post().to(users::unblock))
            .route(
                "/users/{user_id}/personal_access_tokens",
                web::post().to(users::create_token),
            )
            .route("/personal_access_tokens", web::get().to(tokens::list))
            .route("/personal_access_tokens/self", web::delete().to(tokens::revoke_self))
            .route("/personal_access_tokens/{token_id}", web::get().to(tokens::show))
            .route(
                "/personal_access_tokens/{token_id}",
                web::delete().to(users::revoke_token),
            )
            .route(
                "/personal_access_tokens/{token_id}/rotate",
                web::post().to(tokens::rotate),
            )
            .route("/groups", web::get().to(groups::list))
            .route("/groups", web::post().to(groups::create))
            .route("/groups/{group_id}", web::get().to(groups::show))
            .route("/groups/{group_id}/projects", web::get().to(groups::projects))
            .route("/groups/{group_id}/variables", web::get().to(variables::list))
            .route("/groups/{group_id}/variables", web::post().to(variables::create))
            .route("/groups/{group_id}/variables/{key}", web::get().to(variables::show))
            .route("/groups/{group_id}/variables/{key}", web::put().to(variables::update))
            .route(
                "/groups/{group_id}/variables/{key}",
                web::delete().to(variables::delete),
            )
            .route("/groups/{group_id}/members", web::get().to(group_members::list))
            .route("/groups/{group_id}/members", web::post().to(group_members::create))
            .route(
                "/groups/{group_id}/members/{user_id}",
                web::get().to(group_members::show),
            )
            .route(
                "/groups/{group_id}/members/{user_id}",
                web::put().to(group_members::update),
            )
            .route(
                "/groups/{group_id}/members/{user_id}",
                web::delete().to(group_members::delete),
            )
            .route("/namespaces", web::get().to(groups::namespaces))
            .route("/metadata", web::get().to(version::show))
            .route("/projects", web::get().to(projects::list))
            .route("/projects", web::post().to(projects::create))
            .route("/projects/{id}", web::get().to(projects::show))
            .route("/projects/{id}", web::put().to(projects::update))
            .route("/projects/{id}", web::delete().to(projects::delete))
            .route("/projects/{id}/members", web::get().to(members::list))
            .route("/projects/{id}/members", web::post().to(members::create))
            .route("/projects/{id}/members/all", web::get().to(members::all))
            .route("/projects/{id}/users", web::get().to(members::users))
            .route("/projects/{id}/members/{user_id}", web::get().to(members::show))
            .route("/projects/{id}/members/{user_id}", web::put().to(members::update))
            .route("/projects/{id}/members/{user_id}", web::delete().to(members::delete))
            .route("/projects/{id}/triggers", web::get().to(triggers::list))
            .route("/projects/{id}/triggers", web::post().to(triggers::create))
            .route("/projects/{id}/triggers/{trigger_id}", web::get().to(triggers::show))
            .route("/projects/{id}/triggers/{trigger_id}", web::put().to(triggers::update))
            .route(
                "/projects/{id}/triggers/{trigger_id}",
                web::delete().to(triggers::delete),
            )
            .route("/projects/{id}/ci/lint", web::post().to(lint::lint))
            .route("/projects/{id}/ci/lint", web::get().to(lint::lint))
            .route("/projects/{id}/hooks", web::get().to(hooks::list))
            .route("/projects/{id}/hooks", web::post().to(hooks::create))
            .route("/projects/{id}/hooks/{hook_id}", web::get().to(hooks::show))
            .route("/projects/{id}/hooks/{hook_id}", web::put().to(hooks::update))
            .route("/projects/{id}/hooks/{hook_id}", web::delete().to(hooks::delete))
            .route(
                "/projects/{id}/hooks/{hook_id}/test/{trigger}",
                web::post().to(hooks::test),
            )
            .route(
                "/projects/{id}/integrations/github",
                web::get().to(hooks::show_integration),
            )
            .route(
                "/projects/{id}/integrations/github",
                web::put().to(hooks::set_integration),
            )
            .route(
                "/projects/{id}/integrations/github",
                web::delete().to(hooks::delete_integration),
            )
            .route("/projects/{id}/mirror/pull", web::post().to(mirror::pull))
            .route("/projects/{id}/mirror/hook", web::post().to(mirror::hook))
            .route("/projects/{id}/protected_branches", web::get().to(protected_refs::list))
            .route(
                "/projects/{id}/protected_branches",
                web::post().to(protected_refs::create),
            )
            .route(
                "/projects/{id}/protected_branches/{name}",
                web::get().to(protected_refs::show),
            )
            .route(
                "/projects/{id}/protected_branches/{name}",
                web::delete().to(protected_refs::delete),
            )
            .route(
                "/projects/{id}/protected_branches/{name}",
                web::patch().to(protected_refs::update),
            )
            .route("/projects/{id}/protected_tags", web::get().to(protected_refs::list))
            .route("/projects/{id}/protected_tags", web::post().to(protected_refs::create))
            .route(
                "/projects/{id}/protected_tags/{name}",
                web::get().to(protected_refs::show),
            )
            .route(
                "/projects/{id}/protected_tags/{name}",
                web::delete().to(protected_refs::delete),
            )
            .route("/projects/{id}/variables", web::get().to(variables::list))
            .route("/projects/{id}/variables", web::post().to(variables::create))
            .route("/projects/{id}/variables/{key}", web::get().to(variables::show))
            .route("/projects/{id}/variables/{key}", web::put().to(variables::update))
            .route("/projects/{id}/variables/{key}", web::delete().to(variables::delete))
            .route(
                "/projects/{id}/pipeline",
                web::post().to(create_pipeline::create_api_pipeline),
            )
            .route("/projects/{id}/pipelines", web::get().to(pipelines::list))
            .route("/projects/{id}/pipelines/latest", web::get().to(pipelines::latest))
            .route(
                "/projects/{id}/repository/branches",
                web::get().to(repository::branches),
            )
            .route(
                "/projects/{id}/repository/branches/{name}",
                web::get().to(repository::branch),
            )
            .route(
                "/projects/{id}/repository/branches",
                web::post().to(repository::create_branch),
            )
            .route(
                "/projects/{id}/repository/branches/{name}",
                web::delete().to(repository::delete_branch),
            )
            .route("/projects/{id}/repository/tags", web::get().to(repository::tags))
            .route("/projects/{id}/repository/tags", web::post().to(repository::create_tag))
            .route("/projects/{id}/repository/tags/{name}", web::get().to(repository::tag))
            .route(
                "/projects/{id}/repository/tags/{name}",
                web::delete().to(repository::delete_tag),
            )
            .route(
                "/projects/{id}/repository/files/{file_path}",
                web::get().to(repository::file),
            )
            .route(
                "/projects/{id}/repository/files/{file_path}/raw",
                web::get().to(repository::raw_file),
            )
            .route("/projects/{id}/repository/tree", web::get().to(repository::tree))
            .route("/projects/{id}/repository/commits", web::get().to(repository::commits))
            .route(
                "/projects/{id}/repository/commits/{sha}",
                web::get().to(repository::commit),
            )
            .route(
                "/projects/{id}/repository/commits/{sha}/statuses",
                web::get().to(commit_statuses::list),
            )
            .route("/projects/{id}/statuses/{sha}", web::post().to(commit_statuses::create))
            .route(
                "/projects/{id}/repository/commits/{sha}/refs",
                web::get().to(compare::commit_refs),
            )
            .route("/projects/{id}/repository/compare", web::get().to(compare::compare))
            .route("/projects/{id}/repository/archive", web::get().to(compare::archive))
            .route(
                "/projects/{id}/repository/archive.{format}",
                web::get().to(compare::archive),
            )
            .route("/projects/{id}/pipelines/{pipeline_id}", web::get().to(pipelines::show))
            .route(
                "/projects/{id}/pipelines/{pipeline_id}",
                web::delete().to(pipelines::delete),
            )
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/variables",
                web::get().to(pipelines::variables),
            )
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/jobs",
                web::get().to(jobs::for_pipeline),
            )
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/bridges",
                web::get().to(jobs::bridges),
            )
            .route("/projects/{id}/jobs", web::get().to(jobs::list))
            .route("/projects/{id}/jobs/{job_id}", web::get().to(jobs::show))
            .route("/projects/{id}/jobs/{job_id}/trace", web::get().to(jobs::trace))
            .route("/projects/{id}/jobs/{job_id}/artifacts", web::get().to(jobs::artifacts))
            .route(
                "/projects/{id}/jobs/artifacts/{ref_name}/download",
                web::get().to(artifacts::download_for_ref),
            )
            .route(
                "/projects/{id}/jobs/artifacts/{ref_name}/raw/{path:.*}",
                web::get().to(artifacts::raw_for_ref),
            )
            .route(
                "/projects/{id}/jobs/{job_id}/artifacts/{path:.*}",
                web::get().to(artifacts::file),
            )
            .route("/projects/{id}/jobs/{job_id}/cancel", web::post().to(jobs::cancel))
            .route("/projects/{id}/jobs/{job_id}/retry", web::post().to(jobs::retry))
            .route("/projects/{id}/jobs/{job_id}/play", web::post().to(jobs::play))
            .route("/projects/{id}/jobs/{job_id}/erase", web::post().to(jobs::erase))
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/cancel",
                web::post().to(pipelines::cancel),
            )
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/retry",
                web::post().to(pipelines::retry),
            )
            .route("/job", web::get().to(jobs::current))
            .route("/projects/{id}/job_token_scope", web::get().to(job_token_scope::show))
            .route(
                "/projects/{id}/job_token_scope",
                web::patch().to(job_token_scope::update),
            )
            .route(
                "/projects/{id}/job_token_scope/allowlist",
                web::get().to(job_token_scope::list),
            )
            .route(
                "/projects/{id}/job_token_scope/allowlist",
                web::post().to(job_token_scope::add),
            )
            .route(
                "/projects/{id}/job_token_scope/allowlist/{target_project_id}",
                web::delete().to(job_token_scope::remove),
            )
            .default_service(web::to(api_not_found)),
    );
    cfg.route("/-/health", web::get().to(health::health))
        .route("/-/liveness", web::get().to(health::liveness))
        .route("/-/readiness", web::get().to(health::readiness))
        .route("/-/metrics", web::get().to(health::metrics));
    cfg.route("/{ns}/{repo:[^/]+\\.git}/info/refs", web::get().to(git_http::info_refs))
        .route(
            "/{ns}/{repo:[^/]+\\.git}/git-upload-pack",
            web::post().to(git_http::upload_pack),
        )
        .route(
            "/{ns}/{repo:[^/]+\\.git}/git-receive-pack",
            web::post().to(git_http::receive_pack),
        );
    ui::routes(cfg);
}

async fn api_not_found() -> HttpResponse {
    HttpResponse::build(StatusCode::NOT_FOUND)
        .insert_header(("Content-Type", "application/json"))
        .body(json!({"error": "404 Not Found"}).to_string())
}

/// A JSON response with exactly `Content-Type: application/json`.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Content-Type", "application/json"))
        .body(body.to_string())
}

/// The token a request presents: `PRIVATE-TOKEN`, `Authorization: Bearer`, or the
/// `private_token`/`access_token` query parameter.
fn presented_token(req: &HttpRequest) -> Option<String> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(t) = header("private-token").filter(|t| !t.is_empty()) {
        return Some(t.to_string());
    }
    if let Some(auth) = header("authorization") {
        let mut parts = auth.splitn(2, ' ');
        if parts.next().is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
            && let Some(t) = parts.next().map(str::trim).filter(|t| !t.is_empty())
        {
            return Some(t.to_string());
        }
    }
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .ok()?
        .into_iter()
        .find(|(k, v)| (k == "private_token" || k == "access_token") && !v.is_empty())
        .map(|(_, v)| v)
}

/// The authenticated caller, or `None` for an anonymous request. A presented but unusable token
/// is a 401, as in GitLab; a `read_api` token on a write is a 403 `insufficient_scope`.
pub async fn caller(req: &HttpRequest, spur: &State) -> Result<Option<Actor>, ApiError> {
    let Some(token) = presented_token(req) else {
        return match presented_job_token(req) {
            Some(job_token) => job_token_caller(req, spur, &job_token).map(Some),
            None => Ok(None),
        };
    };
    let s = spur.clone();
    let outcome = web::block(move || auth::authenticate(&s.store, &s.secrets, &token, clock::now())).await??;
    let actor = match outcome {
        Ok(actor) => actor,
        Err(failure) => {
            tracing::debug!(reason = ?failure, "token refused");
            return Err(match failure {
                AuthFailure::Expired => ApiError::Token(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": "invalid_token", "error_description": "Token has expired."}),
                ),
                AuthFailure::Revoked => ApiError::Token(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": "invalid_token", "error_description": "Token was revoked. You have to re-authorize from the user."}),
                ),
                AuthFailure::Invalid | AuthFailure::Blocked => ApiError::unauthorized(),
            });
        }
    };
    let writes = !matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    );
    if writes && !actor.can_write() {
        return Err(ApiError::Token(
            StatusCode::FORBIDDEN,
            json!({
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided by the access token.",
                "scope": "api",
            }),
        ));
    }
    Ok(Some(actor))
}

/// A `CI_JOB_TOKEN` sent as the `JOB-TOKEN` header or the `job_token` parameter.
fn presented_job_token(req: &HttpRequest) -> Option<String> {
    if let Some(t) = req.headers().get("job-token").and_then(|v| v.to_str().ok()) {
        return Some(t.trim().to_string());
    }
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .ok()?
        .into_iter()
        .find(|(k, v)| k == "job_token" && !v.is_empty())
        .map(|(_, v)| v)
}

/// The reads a job token may make: its own (or an allowlisting) project's pipelines and jobs.
fn job_token_route(req: &HttpRequest) -> bool {
    let read = matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    );
    let mut parts = req.path().trim_start_matches("/api/v4/").split('/');
    read && parts.next() == Some("projects")
        && parts.next().is_some()
        && matches!(parts.next(), Some("pipelines" | "jobs"))
}

/// The job's user, limited to reads, for a running job's token; GitLab's 401s otherwise.
fn job_token_caller(req: &HttpRequest, spur: &State, token: &str) -> Result<Actor, ApiError> {
    let digest = spur.secrets.digest(token);
    let job = match spur.store.job_by_token_digest(&digest)? {
        Some(job) if token.starts_with(crate::pipeline_trigger::JOB_TOKEN_PREFIX) => job,
        _ => return Err(ApiError::unauthorized()),
    };
    if job.status != crate::domain::JobStatus::Running {
        return Err(ApiError::Message(StatusCode::UNAUTHORIZED, "Job is not running".into()));
    }
    if !job_token_route(req) {
        return Err(ApiError::unauthorized());
    }
    let Some(user) = spur.store.user(job.user_id)?.filter(|u| !u.blocked) else {
        return Err(ApiError::unauthorized());
    };
    Ok(Actor {
        user,
        scopes: vec![crate::domain::TokenScope::ReadApi],
        job_project: Some(job.project_id),
        token_id: None,
    })
}

/// The authenticated caller; 401 for anonymous requests.
pub async fn signed_in(req: &HttpRequest, spur: &State) -> Result<Actor, ApiError> {
    caller(req, spur).await?.ok_or_else(ApiError::unauthorized)
}

/// Finds the project named by a `:id` segment (numeric id or URL-encoded full path) without
/// any permission check. A bare name is not found, as in GitLab.
pub fn lookup_project(spur: &Spur, id: &str) -> Result<Option<Project>, ApiError> {
    let decoded = percent_decode(id);
    if !decoded.is_empty() && decoded.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(decoded
            .parse::<u64>()
            .ok()
            .map(|n| spur.store.project(n))
            .transpose()?
            .flatten());
    }
    if decoded.contains('/') {
        return Ok(spur.store.project_by_path(&decoded)?);
    }
    Ok(None)
}

/// The project named by `:id` if `actor` may see it (else 404 `Project Not Found`), with the
/// actor's access.
pub fn visible_project(spur: &Spur, id: &str, actor: Option<&Actor>) -> Result<(Project, ProjectAccess), ApiError> {
    let Some(project) = lookup_project(spur, id)? else {
        return Err(ApiError::not_found("Project"));
    };
    let access = auth::project_access(&spur.store, actor.map(|a| &a.user), &project, clock::now())?;
    if !access.can_read {
        return Err(ApiError::not_found("Project"));
    }
    if let Some(source) = actor.and_then(|a| a.job_project)
        && !spur.store.job_token_allowed(project.id, source)?
    {
        return Err(ApiError::not_found("Project"));
    }
    Ok((project, access))
}

/// The project named by `:id` for a signed-in caller holding at least `level` (any role that
/// sees the project when `None`): 401 anonymous, 404 `Project Not Found` when invisible, 403
/// below `level`.
pub async fn project_with_role(
    req: &HttpRequest,
    spur: &State,
    level: Option<crate::domain::AccessLevel>,
) -> Result<(Actor, Project, ProjectAccess), ApiError> {
    let actor = signed_in(req, spur).await?;
    let (project, access) = visible_project(spur, &api::segment(req, "id"), Some(&actor))?;
    if level.is_some_and(|l| !access.at_least(l)) {
        return Err(ApiError::forbidden());
    }
    Ok((actor, project, access))
}

/// Decodes `%XX` escapes (for `grp%2Fproj` in a path segment); invalid escapes stay as they are.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The headers every answer carries: no framing by other sites, no content sniffing, and a
/// content security policy that lets pages load scripts and styles from spur only.
pub fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "strict-origin-when-cross-origin"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        ))
}

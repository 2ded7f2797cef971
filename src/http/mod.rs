//! The HTTP server: one visible route table, the shared state, and the extractors every
//! handler uses (the authenticated caller, the project named by `:id`).

pub mod api;
pub mod error;
pub mod git_http;
pub mod health;
pub mod pagination;
pub mod params;
mod routes;
pub mod ui;
pub mod views;

pub use routes::routes;

use crate::auth::{self, Actor, AuthFailure, ProjectAccess};
use crate::clock;
use crate::context::Spur;
use crate::domain::Project;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use error::ApiError;
use serde_json::json;

/// Marks answers that are compressed already or binary (archives, git packs, backups) so that
/// the `Compress` middleware around everything leaves them as they are; pages, JSON and logs
/// are gzipped for clients that accept it.
pub fn keep_compressed_as_is<S>(
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
    let call = service.call(req);
    async move {
        let mut response = call.await?;
        let binary = response
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                [
                    "application/zip",
                    "application/gzip",
                    "application/x-gzip",
                    "application/x-git-",
                    "application/octet-stream",
                    "application/x-tar",
                ]
                .iter()
                .any(|kind| t.starts_with(kind))
            });
        if binary
            && !response
                .headers()
                .contains_key(actix_web::http::header::CONTENT_ENCODING)
        {
            response.headers_mut().insert(
                actix_web::http::header::CONTENT_ENCODING,
                actix_web::http::header::HeaderValue::from_static("identity"),
            );
        }
        Ok(response)
    }
}

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

async fn api_not_found() -> HttpResponse {
    HttpResponse::build(StatusCode::NOT_FOUND)
        .insert_header(("Content-Type", "application/json"))
        .body(json!({"error": "404 Not Found"}).to_string())
}

/// A JSON response with exactly `Content-Type: application/json`.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Content-Type", "application/json"))
        .body(serde_json::to_vec(body).unwrap_or_default())
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

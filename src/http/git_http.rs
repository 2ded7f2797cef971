//! Read-only git smart HTTP for every project at `/<namespace>/<project>.git`: clone and fetch
//! through git's own `git http-backend` (run as a CGI, `Git-Protocol` passed on so protocol v2
//! and fetch-by-sha work), for runners with `gitlab-ci-token:<CI_JOB_TOKEN>`, users with a
//! personal access token (`api` scope) and Reporter+ (or any reader of a non-private project),
//! and anyone for public projects. Others get a `401` Basic challenge first, as git expects.
//! Pushing is refused.

use crate::auth;
use crate::clock;
use crate::domain::{AccessLevel, JobStatus, Project, TokenScope, Visibility};
use crate::git::Origin;
use crate::http::State;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use futures_util::StreamExt;
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest CGI header block accepted from `git http-backend`.
const MAX_CGI_HEADER: usize = 64 * 1024;

/// Who is asking for a repository.
enum Credentials {
    None,
    Basic(String, String),
}

fn credentials(req: &HttpRequest) -> Credentials {
    let Some(value) = req.headers().get("authorization").and_then(|v| v.to_str().ok()) else {
        return Credentials::None;
    };
    let Some(encoded) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) else {
        return Credentials::None;
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    match decoded.as_deref().and_then(|d| d.split_once(':')) {
        Some((user, password)) => Credentials::Basic(user.to_string(), password.to_string()),
        None => Credentials::None,
    }
}

fn challenge() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Basic realm=\"spur\""))
        .content_type("text/plain")
        .body("HTTP Basic: Access denied\n")
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain")
        .body("The project you were looking for could not be found or you don't have permission to view it.\n")
}

/// Why a request may not read a repository.
enum Denied {
    /// Ask for (other) credentials: 401 with a Basic challenge.
    Challenge,
    /// The caller is known but may not see the project: 404.
    NotFound,
}

impl Denied {
    fn answer(self) -> HttpResponse {
        match self {
            Denied::Challenge => challenge(),
            Denied::NotFound => not_found(),
        }
    }
}

/// Whether the request may read the project it names.
fn authorize(spur: &State, req: &HttpRequest, project: Option<&Project>) -> Result<(), Denied> {
    let creds = credentials(req);
    let Credentials::Basic(user, password) = creds else {
        // Anonymous: public projects only; everything else asks for credentials first, so that
        // nobody learns which private projects exist.
        return match project {
            Some(p) if p.visibility == Visibility::Public => Ok(()),
            _ => Err(Denied::Challenge),
        };
    };
    if user == "gitlab-ci-token" {
        let job = spur
            .store
            .job_by_token_digest(&spur.secrets.digest(&password))
            .ok()
            .flatten();
        let Some(job) = job.filter(|j| j.status == JobStatus::Running) else {
            return Err(Denied::Challenge);
        };
        let Some(project) = project else {
            return Err(Denied::NotFound);
        };
        let allowed = job.project_id == project.id
            || spur
                .store
                .job_token_allowed(project.id, job.project_id)
                .unwrap_or(false);
        return if allowed { Ok(()) } else { Err(Denied::NotFound) };
    }
    let outcome = auth::authenticate(&spur.store, &spur.secrets, &password, clock::now());
    let Ok(Ok(actor)) = outcome else {
        return Err(Denied::Challenge);
    };
    let name_matches = actor.user.username == user || user == "oauth2";
    if !name_matches || !actor.scopes.contains(&TokenScope::Api) {
        return Err(Denied::Challenge);
    }
    let Some(project) = project else {
        return Err(Denied::NotFound);
    };
    let access = auth::project_access(&spur.store, Some(&actor.user), project, clock::now());
    let Ok(access) = access else {
        return Err(Denied::NotFound);
    };
    let may_download =
        access.at_least(AccessLevel::Reporter) || (access.can_read && project.visibility != Visibility::Private);
    if may_download { Ok(()) } else { Err(Denied::NotFound) }
}

/// The project a `/{ns}/{repo}.git/...` path names.
fn project(spur: &State, req: &HttpRequest) -> Option<Project> {
    let ns = req.match_info().get("ns")?;
    let repo = req.match_info().get("repo")?.strip_suffix(".git")?;
    let path = crate::http::percent_decode(&format!("{ns}/{repo}"));
    spur.store.project_by_path(&path).ok().flatten()
}

/// `GET /{ns}/{repo}.git/info/refs?service=git-upload-pack`: the ref advertisement.
pub async fn info_refs(req: HttpRequest, spur: State) -> HttpResponse {
    let service = crate::http::params::form_pairs(req.query_string().as_bytes())
        .into_iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v);
    if service.as_deref() == Some("git-receive-pack") {
        return push_refused();
    }
    if service.as_deref() != Some("git-upload-pack") {
        // Dumb HTTP cannot do shallow fetches; spur serves smart HTTP only.
        return HttpResponse::Forbidden()
            .content_type("text/plain")
            .body("spur serves git's smart HTTP protocol only\n");
    }
    let project = project(&spur, &req);
    if let Err(denied) = authorize(&spur, &req, project.as_ref()) {
        return denied.answer();
    }
    let Some(project) = project else { return not_found() };
    backend(&spur, &req, &project, "info/refs", None).await
}

/// `POST /{ns}/{repo}.git/git-upload-pack`: a fetch.
pub async fn upload_pack(req: HttpRequest, payload: web::Payload, spur: State) -> HttpResponse {
    let project = project(&spur, &req);
    if let Err(denied) = authorize(&spur, &req, project.as_ref()) {
        return denied.answer();
    }
    let Some(project) = project else { return not_found() };
    backend(&spur, &req, &project, "git-upload-pack", Some(payload)).await
}

/// `POST /{ns}/{repo}.git/git-receive-pack`: refused.
pub async fn receive_pack() -> HttpResponse {
    push_refused()
}

fn push_refused() -> HttpResponse {
    HttpResponse::Forbidden()
        .content_type("text/plain")
        .body("spur's git over HTTP is read-only: push to the project's own repository\n")
}

/// Runs `git http-backend` for one request: the body is streamed to it, its answer streamed
/// back.
async fn backend(
    spur: &State,
    req: &HttpRequest,
    project: &Project,
    tail: &str,
    payload: Option<web::Payload>,
) -> HttpResponse {
    let origin = Origin::classify(project.import_url.as_deref()).unwrap_or(Origin::Hosted);
    let repository = spur.repos.path_of(&project.repo_name, &origin);
    let (Some(root), Some(name)) = (repository.parent(), repository.file_name()) else {
        return not_found();
    };
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", &spur.data_dir)
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{}/{tail}", name.to_string_lossy()))
        .env("REQUEST_METHOD", req.method().as_str())
        .env("QUERY_STRING", req.query_string())
        .env("CONTENT_TYPE", header("content-type"))
        .env("REMOTE_ADDR", crate::http::client_ip(req).to_string())
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if !header("content-length").is_empty() {
        command.env("CONTENT_LENGTH", header("content-length"));
    }
    if !header("content-encoding").is_empty() {
        command.env("HTTP_CONTENT_ENCODING", header("content-encoding"));
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::error!(error = %e, "cannot run git http-backend");
            return HttpResponse::InternalServerError().finish();
        }
    };
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return HttpResponse::InternalServerError().finish();
    };
    let feed = async move {
        if let Some(mut payload) = payload {
            while let Some(Ok(chunk)) = payload.next().await {
                if stdin.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        }
        drop(stdin);
    };
    let ((), head) = futures_util::future::join(feed, read_cgi_head(&mut stdout)).await;
    let Some((status, headers, rest)) = head else {
        tracing::warn!(project_id = project.id, "git http-backend answered no CGI header");
        return HttpResponse::InternalServerError().finish();
    };
    let mut response = HttpResponse::build(status);
    for (name, value) in headers {
        response.insert_header((name, value));
    }
    let first = futures_util::stream::once(async move { Ok::<_, std::io::Error>(web::Bytes::from(rest)) });
    let remaining = futures_util::stream::unfold((stdout, Some(child)), |(mut out, mut child)| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match out.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if let Some(mut c) = child.take() {
                    let _ = c.wait().await;
                }
                None
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(web::Bytes::from(buf)), (out, child)))
            }
        }
    });
    response.streaming(first.chain(remaining))
}

/// Reads the CGI header block: the status, the headers to pass on, and body bytes read past it.
async fn read_cgi_head(out: &mut tokio::process::ChildStdout) -> Option<(StatusCode, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = find_blank_line(&buf) {
            break i;
        }
        if buf.len() > MAX_CGI_HEADER {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = out.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let (head, body) = (
        String::from_utf8_lossy(&buf[..end.0]).into_owned(),
        buf[end.1..].to_vec(),
    );
    let mut status = StatusCode::OK;
    let mut headers = Vec::new();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse::<u16>().ok());
            status = code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::OK);
        } else {
            headers.push((name.trim().to_string(), value));
        }
    }
    Some((status, headers, body))
}

/// Where the header block ends: (end of headers, start of body).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((i, i + 4));
    }
    buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2))
}

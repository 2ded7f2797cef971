//! git smart HTTP for every project at `/<namespace>/<project>.git`, through git's own
//! `git http-backend` (run as a CGI, `Git-Protocol` passed on so protocol v2 and fetch-by-sha
//! work). Clone and fetch: runners with `gitlab-ci-token:<CI_JOB_TOKEN>`, users with a personal
//! access token (`api` scope) and Reporter+ (or any reader of a non-private project), anyone for
//! public projects; others get a `401` Basic challenge first, as git expects. Push: Developer+
//! with a personal access token, to projects spur hosts (mirrors follow their origin), each
//! updated ref checked against the protected branches and tags before git sees the push; when
//! it is done, push pipelines start (`push::sync`).

use crate::auth;
use crate::auth::ProjectAccess;
use crate::clock;
use crate::domain::{AccessLevel, JobStatus, Project, TokenScope, User, Visibility};
use crate::git::Origin;
use crate::http::State;
use crate::protected_refs::RefUpdate;
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
    /// The caller sees the project but may not do this: 403 with GitLab's message.
    Forbidden(&'static str),
}

impl Denied {
    fn answer(self) -> HttpResponse {
        match self {
            Denied::Challenge => challenge(),
            Denied::NotFound => not_found(),
            Denied::Forbidden(message) => HttpResponse::Forbidden()
                .content_type("text/plain")
                .body(format!("{message}\n")),
        }
    }
}

/// The user a push comes from and their access, if they may push to the project at all.
fn authorize_push(spur: &State, req: &HttpRequest, project: Option<&Project>) -> Result<(User, ProjectAccess), Denied> {
    let Credentials::Basic(user, password) = credentials(req) else {
        return Err(Denied::Challenge);
    };
    if user == "gitlab-ci-token" {
        return Err(Denied::Forbidden("You are not allowed to push code to this project."));
    }
    let outcome = auth::authenticate(&spur.store, &spur.secrets, &password, clock::now());
    let Ok(Ok(actor)) = outcome else {
        return Err(Denied::Challenge);
    };
    if !(actor.user.username == user || user == "oauth2") || !actor.scopes.contains(&TokenScope::Api) {
        return Err(Denied::Challenge);
    }
    let Some(project) = project else {
        return Err(Denied::NotFound);
    };
    let access =
        auth::project_access(&spur.store, Some(&actor.user), project, clock::now()).map_err(|_| Denied::NotFound)?;
    if !access.can_read {
        return Err(Denied::NotFound);
    }
    if !access.at_least(AccessLevel::Developer) {
        return Err(Denied::Forbidden("You are not allowed to push code to this project."));
    }
    if project.import_url.is_some() {
        return Err(Denied::Forbidden(
            "This project mirrors another repository: push there, and spur follows it.",
        ));
    }
    Ok((actor.user, access))
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
        // The job's user's own rights bound the token, whatever the allowlist says.
        let allowed = auth::job_token_reads_code(&spur.store, &job, project, clock::now()).unwrap_or(false);
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
    let project = project(&spur, &req);
    if service.as_deref() == Some("git-receive-pack") {
        let (user, _) = match authorize_push(&spur, &req, project.as_ref()) {
            Ok(allowed) => allowed,
            Err(denied) => return denied.answer(),
        };
        let Some(project) = project else { return not_found() };
        return backend(&spur, &req, &project, "info/refs", Some(&user), None, None).await;
    }
    if service.as_deref() != Some("git-upload-pack") {
        // Dumb HTTP cannot do shallow fetches; spur serves smart HTTP only.
        return HttpResponse::Forbidden()
            .content_type("text/plain")
            .body("spur serves git's smart HTTP protocol only\n");
    }
    if let Err(denied) = authorize(&spur, &req, project.as_ref()) {
        return denied.answer();
    }
    let Some(project) = project else { return not_found() };
    backend(&spur, &req, &project, "info/refs", None, None, None).await
}

/// `POST /{ns}/{repo}.git/git-upload-pack`: a fetch.
pub async fn upload_pack(req: HttpRequest, payload: web::Payload, spur: State) -> HttpResponse {
    let project = project(&spur, &req);
    if let Err(denied) = authorize(&spur, &req, project.as_ref()) {
        return denied.answer();
    }
    let Some(project) = project else { return not_found() };
    backend(
        &spur,
        &req,
        &project,
        "git-upload-pack",
        None,
        Some((Vec::new(), payload)),
        None,
    )
    .await
}

/// Largest command list accepted at the start of a push.
const MAX_PUSH_COMMANDS: usize = 1 << 20;

/// `POST /{ns}/{repo}.git/git-receive-pack`: a push. Its commands are read and checked against
/// the protected refs first; then git applies it, and push pipelines follow.
pub async fn receive_pack(req: HttpRequest, mut payload: web::Payload, spur: State) -> HttpResponse {
    let project = project(&spur, &req);
    let (user, access) = match authorize_push(&spur, &req, project.as_ref()) {
        Ok(allowed) => allowed,
        Err(denied) => return denied.answer(),
    };
    let Some(project) = project else { return not_found() };
    if req.headers().contains_key("content-encoding") {
        return HttpResponse::UnsupportedMediaType()
            .content_type("text/plain")
            .body("spur does not accept compressed pushes\n");
    }
    let mut prefix = Vec::new();
    let commands = loop {
        match push_commands(&prefix) {
            Ok(Some(commands)) => break commands,
            Ok(None) if prefix.len() <= MAX_PUSH_COMMANDS => match payload.next().await {
                Some(Ok(chunk)) => prefix.extend_from_slice(&chunk),
                _ => {
                    return HttpResponse::BadRequest()
                        .content_type("text/plain")
                        .body("incomplete push\n");
                }
            },
            _ => {
                return HttpResponse::BadRequest()
                    .content_type("text/plain")
                    .body("malformed push\n");
            }
        }
    };
    for command in &commands {
        if let Err(message) = check_command(&spur, &project, &access, command) {
            tracing::info!(project_id = project.id, r#ref = %command.name, "push refused by a protected ref");
            return Denied::Forbidden(message).answer();
        }
    }
    let after = after_push(spur.clone(), project.id, user.id);
    backend(
        &spur,
        &req,
        &project,
        "git-receive-pack",
        Some(&user),
        Some((prefix, payload)),
        Some(after),
    )
    .await
}

/// One ref update of a push: `old new name` (40 zeros for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushCommand {
    /// The ref's commit before (zeros: create).
    pub old: String,
    /// The ref's commit after (zeros: delete).
    pub new: String,
    /// The full ref name.
    pub name: String,
}

/// A push whose command list is not git's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedPush;

/// Parses the command list that starts a `git-receive-pack` request body (pkt-lines up to a
/// flush packet, `shallow` lines skipped): `Ok(None)` while more bytes are needed.
pub fn push_commands(buf: &[u8]) -> Result<Option<Vec<PushCommand>>, MalformedPush> {
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        let Some(head) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        let len = std::str::from_utf8(head)
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .ok_or(MalformedPush)?;
        if len == 0 {
            // An empty list is git's probe before a push larger than `http.postBuffer`.
            return Ok(Some(out));
        }
        if len < 4 {
            return Err(MalformedPush);
        }
        let Some(line) = buf.get(at + 4..at + len) else {
            return Ok(None);
        };
        at += len;
        let line = line.split(|b| *b == 0).next().unwrap_or_default();
        let line = std::str::from_utf8(line)
            .map_err(|_| MalformedPush)?
            .trim_end_matches('\n');
        if line.starts_with("shallow ") {
            continue;
        }
        let mut parts = line.splitn(3, ' ');
        let (Some(old), Some(new), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(MalformedPush);
        };
        let hex = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(old) || !hex(new) || !name.starts_with("refs/") {
            return Err(MalformedPush);
        }
        out.push(PushCommand {
            old: old.to_string(),
            new: new.to_string(),
            name: name.to_string(),
        });
    }
}

fn is_zero(sha: &str) -> bool {
    sha.bytes().all(|b| b == b'0')
}

/// Whether the pusher may make this ref change (protected branches and tags).
fn check_command(spur: &State, project: &Project, access: &ProjectAccess, c: &PushCommand) -> Result<(), &'static str> {
    let (short, tag) = match (c.name.strip_prefix("refs/heads/"), c.name.strip_prefix("refs/tags/")) {
        (Some(b), _) => (b, false),
        (_, Some(t)) => (t, true),
        _ => return Err("spur accepts pushes to branches and tags only."),
    };
    let update = match (is_zero(&c.old), is_zero(&c.new)) {
        (true, _) => RefUpdate::Create,
        (_, true) => RefUpdate::Delete,
        _ => RefUpdate::Update,
    };
    match crate::protected_refs::may_push(spur, project.id, short, tag, update, access) {
        Ok(true) => Ok(()),
        Ok(false) if tag => Err("You are not allowed to create or change this protected tag."),
        Ok(false) => Err("You are not allowed to push code to protected branches on this project."),
        Err(_) => Err("The protected refs could not be read."),
    }
}

/// What runs once git has applied a push: push pipelines (`push::sync`, which also gives a new
/// repository its default branch).
fn after_push(spur: State, project_id: u64, user_id: u64) -> Box<dyn FnOnce() + Send> {
    Box::new(move || {
        let spur = spur.into_inner();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime (shutting down): the next start catches up on this push.
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = crate::push::sync(spur, project_id, Some(user_id)).await {
                tracing::warn!(project_id, error = %e, "push pipelines failed");
            }
        });
    })
}

/// Runs `git http-backend` for one request: the body is streamed to it, its answer streamed
/// back.
async fn backend(
    spur: &State,
    req: &HttpRequest,
    project: &Project,
    tail: &str,
    pusher: Option<&User>,
    body: Option<(Vec<u8>, web::Payload)>,
    after: Option<Box<dyn FnOnce() + Send>>,
) -> HttpResponse {
    let origin = Origin::of(project);
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
    if let Some(user) = pusher {
        // http-backend serves receive-pack only to an authenticated REMOTE_USER.
        command.env("REMOTE_USER", &user.username);
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
        if let Some((prefix, mut payload)) = body {
            if stdin.write_all(&prefix).await.is_err() {
                return;
            }
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
    let after = after.map(|f| OnDone(Some(f)));
    let remaining = futures_util::stream::unfold(
        (stdout, Some(child), after),
        |(mut out, mut child, mut after)| async move {
            let mut buf = vec![0u8; 64 * 1024];
            match out.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if let Some(mut c) = child.take() {
                        let _ = c.wait().await;
                    }
                    // Runs the follow-up now that git is done (or when the stream is dropped early).
                    drop(after.take());
                    None
                }
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(web::Bytes::from(buf)), (out, child, after)))
                }
            }
        },
    );
    response.streaming(first.chain(remaining))
}

/// Runs its function when dropped: after a push has been answered, or when the client went away.
struct OnDone(Option<Box<dyn FnOnce() + Send>>);

impl Drop for OnDone {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(line: &str) -> String {
        format!("{:04x}{line}", line.len() + 4)
    }

    #[test]
    fn push_command_lists_are_read_up_to_the_flush_packet() {
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        let zero = "0".repeat(40);
        let body = format!(
            "{}{}{}0000PACK...",
            pkt(&format!("shallow {a}\n")),
            pkt(&format!("{a} {b} refs/heads/main\0report-status side-band-64k\n")),
            pkt(&format!("{zero} {b} refs/tags/v1\n")),
        );
        let commands = push_commands(body.as_bytes()).unwrap().unwrap();
        assert_eq!(commands.len(), 2);
        assert_eq!(
            (commands[0].name.as_str(), commands[0].old.as_str()),
            ("refs/heads/main", a.as_str())
        );
        assert_eq!(commands[1].name, "refs/tags/v1");
        // Incomplete: more bytes needed; garbage: malformed.
        assert_eq!(push_commands(&body.as_bytes()[..50]), Ok(None));
        assert_eq!(push_commands(b"zzzz"), Err(MalformedPush));
        assert_eq!(push_commands(b"0000"), Ok(Some(Vec::new())), "git's probe");
        assert_eq!(push_commands(b"0003"), Err(MalformedPush));
        assert_eq!(push_commands(pkt("not a command\n").as_bytes()), Err(MalformedPush));
    }
}

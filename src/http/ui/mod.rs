//! The browser UI: server-rendered pages (askama templates in `templates/`) at GitLab's URLs,
//! signed-in through a session cookie, every form carrying a CSRF token. The pages call the same
//! services as the API (`pipeline_create`, `trigger_tokens`, `project_variables`, the
//! scheduler); this module only reads requests and renders.

mod account;
mod admin_settings;
mod assets;
mod environments;
mod jobs;
mod live;
pub mod log_html;
mod overview;
mod pipelines;
mod projects;
mod releases;
mod runners;
mod schedules;
mod session;
mod settings;
mod test_reports;
mod webhooks;

pub use overview::{finish_pages, unknown};

use crate::auth::ProjectAccess;
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, Millis, Project};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
pub use session::Visitor;

/// The UI's routes (registered after the API's).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/assets/{name}", web::get().to(assets::serve))
        .route("/users/sign_in", web::get().to(session::sign_in_form))
        .route("/users/sign_in", web::post().to(session::sign_in))
        .route("/users/sign_out", web::post().to(session::sign_out))
        .route("/", web::get().to(projects::home))
        .route("/projects", web::post().to(projects::create))
        .route("/projects", web::get().to(to_home))
        .route(
            "/-/user_settings/personal_access_tokens",
            web::get().to(account::tokens),
        )
        .route(
            "/-/user_settings/personal_access_tokens",
            web::post().to(account::create_token),
        )
        .route(
            "/-/user_settings/personal_access_tokens/{id}/revoke",
            web::post().to(account::revoke_token),
        )
        .route("/admin", web::get().to(overview::admin_home))
        .route("/admin/users", web::get().to(account::users))
        .route("/admin/users", web::post().to(account::create_user))
        .route("/admin/users/{id}/{action}", web::post().to(account::change_user))
        .route(
            "/admin/application_settings/network",
            web::get().to(admin_settings::show),
        )
        .route(
            "/admin/application_settings/network",
            web::post().to(admin_settings::update),
        )
        .route("/admin/runners", web::get().to(runners::list))
        .route("/admin/runners", web::post().to(runners::create))
        .route(
            "/admin/runners/reset_registration_token",
            web::post().to(runners::reset_registration_token),
        )
        .route("/admin/runners/{id}/{action}", web::post().to(runners::change))
        .route("/{ns}/{project}/badges/{tail:.*}", web::get().to(projects::badge))
        .route("/{ns}/{project}/-/project_members", web::get().to(projects::members))
        .route(
            "/{ns}/{project}/-/project_members",
            web::post().to(projects::add_member),
        )
        .route(
            "/{ns}/{project}/-/project_members/{user_id}",
            web::post().to(projects::change_member),
        )
        .route("/{ns}/{project}/-/pipelines", web::get().to(pipelines::list))
        .route("/{ns}/{project}/-/pipelines", web::post().to(pipelines::run))
        .route("/{ns}/{project}/-/pipelines/{id}", web::get().to(pipelines::show))
        .route(
            "/{ns}/{project}/-/pipelines/{id}/test_report",
            web::get().to(test_reports::show),
        )
        .route(
            "/{ns}/{project}/-/pipelines/{id}/{action}",
            web::post().to(pipelines::act),
        )
        .route("/{ns}/{project}/-/jobs", web::get().to(jobs::list))
        .route("/{ns}/{project}/-/environments", web::get().to(environments::list))
        .route("/{ns}/{project}/-/environments/{id}", web::get().to(environments::show))
        .route(
            "/{ns}/{project}/-/environments/{id}/stop",
            web::post().to(environments::stop),
        )
        .route("/{ns}/{project}/-/pipeline_schedules", web::get().to(schedules::list))
        .route("/{ns}/{project}/-/pipeline_schedules", web::post().to(schedules::save))
        .route(
            "/{ns}/{project}/-/pipeline_schedules/new",
            web::get().to(schedules::new),
        )
        .route(
            "/{ns}/{project}/-/pipeline_schedules/{id}",
            web::post().to(schedules::save),
        )
        .route(
            "/{ns}/{project}/-/pipeline_schedules/{id}/edit",
            web::get().to(schedules::edit),
        )
        .route(
            "/{ns}/{project}/-/pipeline_schedules/{id}/{action}",
            web::post().to(schedules::act),
        )
        .route("/{ns}/{project}/-/releases", web::get().to(releases::list))
        .route("/{ns}/{project}/-/releases/{rest:.*}", web::get().to(releases::show))
        .route("/{ns}/{project}/-/jobs/{id}", web::get().to(jobs::show))
        .route("/{ns}/{project}/-/jobs/{id}/trace.json", web::get().to(jobs::trace))
        .route("/{ns}/{project}/-/jobs/{id}/raw", web::get().to(jobs::raw))
        .route(
            "/{ns}/{project}/-/jobs/{id}/artifacts/download",
            web::get().to(jobs::download_artifacts),
        )
        .route("/{ns}/{project}/-/jobs/{id}/play", web::get().to(jobs::to_job))
        .route("/{ns}/{project}/-/jobs/{id}/{action}", web::post().to(jobs::act))
        .route("/{ns}/{project}/-/settings/ci_cd", web::get().to(settings::show))
        .route("/{ns}/{project}/-/hooks", web::get().to(webhooks::show))
        .route(
            "/{ns}/{project}/-/hooks/{id}/hook_logs/{log_id}/retry",
            web::post().to(webhooks::resend),
        )
        .route(
            "/{ns}/{project}/-/settings/ci_cd/pipeline_variables",
            web::post().to(settings::pipeline_variables),
        )
        .route(
            "/{ns}/{project}/-/settings/ci_cd/job_token_scope",
            web::post().to(settings::allow_project),
        )
        .route(
            "/{ns}/{project}/-/settings/ci_cd/job_token_scope/{id}",
            web::post().to(settings::disallow_project),
        )
        .route(
            "/{ns}/{project}/-/settings/ci_cd/protected_refs",
            web::post().to(settings::protect_ref),
        )
        .route(
            "/{ns}/{project}/-/settings/ci_cd/protected_refs/{kind}/{name}",
            web::post().to(settings::unprotect_ref),
        )
        .route("/{ns}/{project}/-/triggers", web::post().to(settings::create_trigger))
        .route(
            "/{ns}/{project}/-/triggers/{id}",
            web::post().to(settings::change_trigger),
        )
        .route("/{ns}/{project}/-/variables", web::post().to(settings::create_variable))
        .route("/{ns}/{project}/-/variables", web::get().to(settings::to_settings))
        .route(
            "/{ns}/{project}/-/variables/{key}",
            web::post().to(settings::change_variable),
        )
        .route("/{ns}/{project}", web::get().to(overview::project_home))
        .route("/{ns}", web::get().to(overview::namespace));
}

/// `path` when it is a safe place to send a browser back to: a path on this site (not `//host`
/// or `/\host`), without control characters or dot segments, and not the sign-in page itself.
pub fn safe_redirect(path: &str) -> Option<&str> {
    let route = path.split(['?', '#']).next().unwrap_or_default();
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !route.split('/').any(|segment| segment == ".." || segment == ".")
        && !route.contains("//")
        && !path.starts_with("/users/sign_in")
        && path.len() <= 2048
        && !path.chars().any(|c| c.is_control());
    ok.then_some(path)
}

/// `GET /projects`: the address a refused New project form was shown at; the projects page.
async fn to_home(req: HttpRequest) -> HttpResponse {
    redirect(&req, "/", None)
}

/// What every page's frame shows.
pub struct Layout {
    /// The page title.
    pub title: String,
    /// The signed-in user.
    pub user: Option<UserNav>,
    /// The session's CSRF token for the page's forms.
    pub csrf: String,
    /// Cache-busting version of the assets.
    pub asset_version: &'static str,
    /// The project the page belongs to.
    pub project: Option<ProjectNav>,
    /// Which project tab is current.
    pub current: &'static str,
    /// A message from the previous request.
    pub flash: Option<Flash>,
    /// Without scripts, reload the page after this many seconds (unfinished pipelines).
    pub refresh: Option<u32>,
    /// The page's ETag, for the script that keeps its live regions current (`live`).
    pub etag: Option<String>,
}

/// The signed-in user in the header.
pub struct UserNav {
    /// Username.
    pub username: String,
    /// Whether an administrator.
    pub admin: bool,
}

/// The project tabs.
pub struct ProjectNav {
    /// `namespace/project`.
    pub full_path: String,
    /// Whether the Settings tab shows (Maintainer+).
    pub can_admin: bool,
}

/// A one-time message shown at the top of the next page.
pub struct Flash {
    /// `notice` or `alert`.
    pub kind: &'static str,
    /// The text.
    pub text: String,
}

impl Layout {
    /// The frame for `visitor` on a page titled `title`.
    pub fn new(req: &HttpRequest, visitor: &Visitor, title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            user: visitor.user.as_ref().map(|u| UserNav {
                username: u.username.clone(),
                admin: u.admin,
            }),
            csrf: match visitor.csrf() {
                "" => String::new(),
                token => crate::secrets::mask_token(token),
            },
            asset_version: assets::version(),
            project: None,
            current: "",
            flash: session::take_flash(req),
            refresh: None,
            etag: None,
        }
    }

    /// The same frame inside `project`'s tabs, with `current` highlighted.
    pub fn in_project(mut self, project: &Project, access: &ProjectAccess, current: &'static str) -> Layout {
        self.project = Some(ProjectNav {
            full_path: project.full_path.clone(),
            can_admin: access.at_least(AccessLevel::Maintainer),
        });
        self.current = current;
        self
    }
}

/// Why a page was not shown; rendered as a readable page (or a redirect to sign in).
#[derive(Debug)]
pub enum UiError {
    /// 404: no such page, or not for this user (no existence leak).
    NotFound,
    /// Not signed in: go to the sign-in form.
    SignIn,
    /// 422: the form's CSRF token did not match.
    Csrf,
    /// 400 with a message.
    BadRequest(String),
    /// 403 with a message: the page exists for this user, the action is not theirs.
    Forbidden(String),
    /// 500; the detail is logged, not shown.
    Internal(String),
    /// 503 with a message: the disk takes no writes now; nothing changed.
    Unavailable(String),
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    l: Layout,
    heading: String,
    message: String,
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::NotFound => StatusCode::NOT_FOUND,
            UiError::SignIn => StatusCode::FOUND,
            UiError::Csrf => StatusCode::UNPROCESSABLE_ENTITY,
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::Forbidden(_) => StatusCode::FORBIDDEN,
            UiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            UiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (heading, message) = match self {
            UiError::SignIn => {
                return HttpResponse::Found()
                    .insert_header((header::LOCATION, "/users/sign_in"))
                    .insert_header((overview::FINISH, "sign-in"))
                    .finish();
            }
            UiError::NotFound => (
                "Page not found",
                "The page could not be found or you don't have permission to view it.".to_string(),
            ),
            UiError::Csrf => (
                "The change you requested was rejected",
                "Your session may have ended. Reload the page and try again.".to_string(),
            ),
            UiError::BadRequest(text) => ("That did not work", text.clone()),
            UiError::Forbidden(text) => ("You are not allowed to do that", text.clone()),
            UiError::Unavailable(text) => ("spur cannot save changes right now", text.clone()),
            UiError::Internal(detail) => {
                tracing::error!(error = %detail, "page failed inside spur");
                (
                    "Something went wrong",
                    "spur could not show this page. The error is in its log.".to_string(),
                )
            }
        };
        let page = ErrorPage {
            l: Layout {
                title: heading.to_string(),
                user: None,
                csrf: String::new(),
                asset_version: assets::version(),
                project: None,
                current: "",
                flash: None,
                refresh: None,
                etag: None,
            },
            heading: heading.to_string(),
            message,
        };
        let body = page.render().unwrap_or_else(|_| heading.to_string());
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("text/html; charset=utf-8");
        if matches!(self, UiError::NotFound) {
            // Rendered again with the visitor's header by `finish_pages`.
            response.insert_header((overview::FINISH, "not-found"));
        }
        response.body(body)
    }
}

impl From<crate::storage::Error> for UiError {
    fn from(e: crate::storage::Error) -> UiError {
        if e.is_unavailable() {
            return UiError::Unavailable(e.to_string());
        }
        UiError::Internal(e.to_string())
    }
}

impl From<askama::Error> for UiError {
    fn from(e: askama::Error) -> UiError {
        UiError::Internal(e.to_string())
    }
}

/// A rendered page (never cached: pages show live state and CSRF tokens). A flash message the
/// request carried is cleared.
pub fn html(req: &HttpRequest, page: &impl Template) -> Result<HttpResponse, UiError> {
    let body = page.render()?;
    let mut response = HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if session::has_flash(req) {
        let _ = response.add_cookie(&session::clear_flash());
    }
    Ok(response)
}

/// 302 to `location`, with an optional flash message for the next page.
pub fn redirect(req: &HttpRequest, location: &str, flash: Option<(&'static str, &str)>) -> HttpResponse {
    let mut response = HttpResponse::Found();
    response.insert_header((header::LOCATION, location.to_string()));
    if let Some((kind, text)) = flash {
        response.cookie(session::flash_cookie(req, kind, text));
    }
    response.finish()
}

/// The project of a `/{ns}/{project}/...` page if the visitor may see it; with `min` the visitor
/// must hold that role too. Anyone who may not gets 404 (signed-out visitors go to sign in).
pub async fn project_page(
    req: &HttpRequest,
    spur: &Spur,
    min: Option<AccessLevel>,
) -> Result<(Visitor, Project, ProjectAccess), UiError> {
    let visitor = session::visitor(req, spur).await?;
    let full_path = format!(
        "{}/{}",
        req.match_info().get("ns").unwrap_or_default(),
        req.match_info().get("project").unwrap_or_default()
    );
    let project = spur.store.project_by_path(&full_path)?;
    let access = match &project {
        Some(p) => crate::auth::project_access(&spur.store, visitor.user.as_ref(), p, clock::now())?,
        None => ProjectAccess {
            level: None,
            can_read: false,
        },
    };
    let Some(project) = project.filter(|_| access.can_read) else {
        return Err(if visitor.user.is_none() {
            UiError::SignIn
        } else {
            UiError::NotFound
        });
    };
    if min.is_some_and(|level| !access.at_least(level)) {
        return Err(UiError::NotFound);
    }
    Ok((visitor, project, access))
}

/// A form posted by a signed-in user, its CSRF token checked.
pub struct Posted {
    /// The form.
    pub form: Form,
    /// Who posted it.
    pub user: crate::domain::User,
}

/// Reads a posted form and checks its sender and CSRF token.
pub async fn posted(req: &HttpRequest, spur: &Spur, payload: web::Payload) -> Result<Posted, UiError> {
    let form = Form::read(spur, payload).await?;
    let visitor = session::visitor(req, spur).await?;
    visitor.check_csrf(&form)?;
    let user = visitor.signed_in()?.clone();
    Ok(Posted { form, user })
}

/// A form posted to a project's page by a user holding at least `min`, CSRF checked.
pub struct ProjectPost {
    /// The form.
    pub form: Form,
    /// Who posted it.
    pub user: crate::domain::User,
    /// The project.
    pub project: Project,
    /// The user's access to it.
    pub access: ProjectAccess,
}

/// Reads a form posted to a project page: 404 without `min`, 422 with a wrong CSRF token.
pub async fn project_post(
    req: &HttpRequest,
    spur: &Spur,
    payload: web::Payload,
    min: AccessLevel,
) -> Result<ProjectPost, UiError> {
    let form = Form::read(spur, payload).await?;
    let (visitor, project, access) = project_page(req, spur, Some(min)).await?;
    visitor.check_csrf(&form)?;
    let user = visitor.signed_in()?.clone();
    Ok(ProjectPost {
        form,
        user,
        project,
        access,
    })
}

/// A numeric path segment, or 404.
pub fn id_in_path(req: &HttpRequest, name: &str) -> Result<u64, UiError> {
    req.match_info()
        .get(name)
        .and_then(|s| s.parse().ok())
        .ok_or(UiError::NotFound)
}

/// The `page` query parameter (1-based).
pub fn page_number(req: &HttpRequest) -> usize {
    query(req, "page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1)
}

/// One query parameter.
pub fn query(req: &HttpRequest, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A submitted form: its fields as sent, in order.
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Reads an urlencoded body of at most `spur.max_body_bytes`.
    pub async fn read(spur: &Spur, mut payload: web::Payload) -> Result<Form, UiError> {
        use futures_util::StreamExt;
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| UiError::BadRequest(e.to_string()))?;
            if body.len() + chunk.len() > spur.max_body_bytes {
                return Err(UiError::BadRequest("The form is too large.".into()));
            }
            body.extend_from_slice(&chunk);
        }
        serde_urlencoded::from_bytes(&body)
            .map(Form)
            .map_err(|_| UiError::BadRequest("The form could not be read.".into()))
    }

    /// The last value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a field, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The fields named `prefix[NAME]`, as (NAME, value), last value per name.
    pub fn bracketed(&self, prefix: &str) -> Vec<(String, &str)> {
        let mut out: Vec<(String, &str)> = Vec::new();
        for (k, v) in &self.0 {
            if let Some(name) = k
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('['))
                .and_then(|r| r.strip_suffix(']'))
            {
                out.retain(|(n, _)| n != name);
                out.push((name.to_string(), v.as_str()));
            }
        }
        out
    }

    /// Whether a checkbox was ticked.
    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1" | "on"))
    }
}

/// "3 minutes ago", for times shown with their exact value on hover.
pub fn ago(then: Millis, now: Millis) -> String {
    let secs = (now - then).max(0) / 1000;
    let (n, unit) = match secs {
        0..=9 => return "just now".into(),
        10..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// A duration as CI tools show it: `42s`, `3m 05s`, `1h 02m`.
pub fn duration(from: Option<Millis>, to: Option<Millis>, now: Millis) -> String {
    let Some(from) = from else { return String::new() };
    let secs = (to.unwrap_or(now) - from).max(0) / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_and_durations() {
        let now = 10_000_000;
        assert_eq!(ago(now - 3_000, now), "just now");
        assert_eq!(ago(now - 60_000, now), "1 minute ago");
        assert_eq!(ago(now - 3 * 3_600_000, now), "3 hours ago");
        assert_eq!(duration(Some(0), Some(42_000), now), "42s");
        assert_eq!(duration(Some(0), Some(185_000), now), "3m 05s");
        assert_eq!(duration(None, None, now), "");
    }
}

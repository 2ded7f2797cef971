//! The pages that tie the others together: a project's home (`/{ns}/{project}`, every
//! `web_url` the API hands out), a namespace's projects (`/{ns}`), the Admin area's home
//! (`/admin`), and one styled "Page not found" for every unknown page that keeps the signed-in
//! header (trailing slashes are redirected away). `finish_pages` also sends a signed-out visitor
//! to the sign-in form with the page asked for, to come back to.

use super::session::{self, Visitor};
use super::{ErrorPage, Layout, UiError, html, project_page};
use crate::clock;
use crate::context::Spur;
use crate::storage::{PipelineFilter, PipelineOrder};
use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

/// Set on a response `finish_pages` completes: `sign-in` or `not-found`.
pub(super) const FINISH: &str = "x-spur-finish";

/// A pipeline in a short list.
struct Recent {
    id: u64,
    status: &'static str,
    ref_name: String,
    short_sha: String,
    created_ago: String,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectHome {
    l: Layout,
    full_path: String,
    name: String,
    description: String,
    visibility: &'static str,
    default_branch: Option<String>,
    last_on_default: Option<Recent>,
    recent: Vec<Recent>,
    clone_url: String,
    hosted: bool,
    can_admin: bool,
}

/// `GET /{ns}/{project}`: the project's home.
pub async fn project_home(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, None).await?;
    let now = clock::now();
    let recent_of = |filter: &PipelineFilter, n: usize| -> Result<Vec<Recent>, UiError> {
        let (list, _) = spur
            .store
            .project_pipelines(project.id, filter, PipelineOrder::Id, true, 0, n * 4)?;
        // Child pipelines show under their parents, not as pipelines of their own.
        Ok(list
            .iter()
            .filter(|p| p.source != crate::domain::PipelineSource::ParentPipeline)
            .take(n)
            .map(|p| Recent {
                id: p.id,
                status: p.status.as_str(),
                ref_name: p.ref_name.clone(),
                short_sha: p.sha.chars().take(8).collect(),
                created_ago: super::ago(p.created_at, now),
            })
            .collect())
    };
    let last_on_default = match &project.default_branch {
        Some(branch) => recent_of(
            &PipelineFilter {
                ref_name: Some(branch.clone()),
                ..PipelineFilter::default()
            },
            1,
        )?
        .pop(),
        None => None,
    };
    let recent = recent_of(&PipelineFilter::default(), 5)?;
    let l = Layout::new(&req, &visitor, project.name.clone()).in_project(&project, &access, "home");
    let page = ProjectHome {
        l,
        full_path: project.full_path.clone(),
        name: project.name.clone(),
        description: project.description.clone(),
        visibility: project.visibility.as_str(),
        default_branch: project.default_branch.clone(),
        last_on_default,
        recent,
        clone_url: format!("{}/{}.git", spur.external_url, project.full_path),
        hosted: project.import_url.is_none(),
        can_admin: access.at_least(crate::domain::AccessLevel::Maintainer),
    };
    html(&req, &page)
}

struct Listed {
    full_path: String,
    name: String,
    description: String,
}

#[derive(Template)]
#[template(path = "namespace.html")]
struct NamespacePage {
    l: Layout,
    name: String,
    path: String,
    description: String,
    projects: Vec<Listed>,
}

/// `GET /{ns}`: a user's or group's projects that the visitor may see.
pub async fn namespace(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let visitor = session::visitor(&req, &spur).await?;
    let path = req.match_info().get("ns").unwrap_or_default().to_string();
    let Some(ns) = spur.store.namespace_by_path(&path)? else {
        return Err(not_found_for(&visitor));
    };
    let now = clock::now();
    let mut projects = Vec::new();
    for p in spur.store.projects()? {
        if p.namespace_id != ns.id {
            continue;
        }
        if crate::auth::project_access(&spur.store, visitor.user.as_ref(), &p, now)?.can_read {
            projects.push(Listed {
                full_path: p.full_path.clone(),
                name: p.name.clone(),
                description: p.description.clone(),
            });
        }
    }
    // A namespace with nothing the visitor may see does not show that it exists.
    if projects.is_empty() && visitor.user.as_ref().is_none_or(|u| !u.admin && u.id != ns.owner_id) {
        return Err(not_found_for(&visitor));
    }
    let l = Layout::new(&req, &visitor, ns.name.clone());
    let page = NamespacePage {
        l,
        name: ns.name,
        path: ns.path,
        description: ns.description,
        projects,
    };
    html(&req, &page)
}

fn not_found_for(visitor: &Visitor) -> UiError {
    if visitor.user.is_none() {
        UiError::SignIn
    } else {
        UiError::NotFound
    }
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminHome {
    l: Layout,
    users: usize,
    admins: usize,
    blocked: usize,
    runners: usize,
    online_runners: usize,
    projects: usize,
    isolation: String,
    engine: String,
    local_requests: bool,
    version: &'static str,
    revision: &'static str,
}

/// `GET /admin`: the Admin area's home (administrators): the instance at a glance.
pub async fn admin_home(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let visitor = session::visitor(&req, &spur).await?;
    let user = visitor.signed_in()?;
    if !user.admin {
        return Err(UiError::NotFound);
    }
    let users = spur.store.users()?;
    let runners = spur.store.runners()?;
    let now = clock::now();
    let page = AdminHome {
        l: Layout::new(&req, &visitor, "Admin area"),
        users: users.len(),
        admins: users.iter().filter(|u| u.admin).count(),
        blocked: users.iter().filter(|u| u.blocked).count(),
        runners: runners.len(),
        online_runners: runners
            .iter()
            .filter(|r| r.contacted_at.is_some_and(|at| now - at < 2 * 3600 * 1000))
            .count(),
        projects: spur.store.projects()?.len(),
        isolation: spur.isolation.describe(),
        engine: spur.describe_engine(),
        local_requests: spur.outbound_policy().allow_local,
        version: env!("CARGO_PKG_VERSION"),
        revision: env!("SPUR_REVISION"),
    };
    html(&req, &page)
}

/// Every page nothing else answers: a trailing slash goes to the page without it; anything
/// else is the styled 404 (finished by `finish_pages`).
pub async fn unknown(req: HttpRequest) -> HttpResponse {
    let path = req.path();
    if path.len() > 1 && path.ends_with('/') && req.method() == Method::GET {
        let trimmed = path.trim_end_matches('/');
        let target = match req.query_string() {
            "" => trimmed.to_string(),
            q => format!("{trimmed}?{q}"),
        };
        if super::safe_redirect(&target).is_some() {
            return HttpResponse::MovedPermanently()
                .insert_header((header::LOCATION, target))
                .finish();
        }
    }
    HttpResponse::NotFound().insert_header((FINISH, "not-found")).finish()
}

/// Completes pages marked by `FINISH`: a sign-in redirect learns the page to come back to;
/// a "Page not found" gets the visitor's header.
pub fn finish_pages<S>(
    req: ServiceRequest,
    service: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse, actix_web::Error>> + use<S>
where
    S: actix_web::dev::Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
{
    let call = service.call(req);
    async move {
        let response = call.await?;
        let Some(mark) = response.headers().get(FINISH).cloned() else {
            return Ok(response);
        };
        let (req, mut res) = response.into_parts();
        res.headers_mut().remove(FINISH);
        let res = match mark.as_bytes() {
            b"sign-in" if req.method() == Method::GET => sign_in_redirect(&req),
            b"not-found" => not_found_page(&req).await.unwrap_or(res),
            _ => res,
        };
        Ok(ServiceResponse::new(req, res))
    }
}

/// To the sign-in form, with the page asked for to come back to.
fn sign_in_redirect(req: &HttpRequest) -> HttpResponse<BoxBody> {
    let back = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = match super::safe_redirect(back) {
        Some(back) if back != "/" => format!(
            "/users/sign_in?{}",
            serde_urlencoded::to_string([("redirect_to", back)]).unwrap_or_default()
        ),
        _ => "/users/sign_in".to_string(),
    };
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The styled 404 in the visitor's frame; a signed-out visitor is sent to sign in first (as
/// GitLab does), to come back here.
async fn not_found_page(req: &HttpRequest) -> Option<HttpResponse<BoxBody>> {
    let spur = req.app_data::<web::Data<Spur>>()?;
    let visitor = session::visitor(req, spur).await.ok()?;
    if visitor.user.is_none() && req.method() == Method::GET {
        return Some(sign_in_redirect(req));
    }
    let heading = "Page not found";
    let page = ErrorPage {
        l: Layout::new(req, &visitor, heading),
        heading: heading.to_string(),
        message: "The page could not be found or you don't have permission to view it.".to_string(),
    };
    let body = page.render().ok()?;
    Some(
        HttpResponse::build(StatusCode::NOT_FOUND)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
    )
}

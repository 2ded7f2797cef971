//! The project list (`/`), a project's members, and its pipeline status badge.

use super::{Layout, UiError, html, project_page};
use crate::app::Spur;
use crate::clock;
use crate::storage::{PipelineFilter, PipelineOrder};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

struct ProjectRow {
    full_path: String,
    description: String,
    last_status: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    l: Layout,
    projects: Vec<ProjectRow>,
}

/// `GET /`: the projects the signed-in user can see, with their last pipeline's status.
pub async fn home(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let visitor = super::session::visitor(&req, &spur).await?;
    let user = visitor.signed_in()?;
    let now = clock::now();
    let mut projects = Vec::new();
    for p in spur.store.projects()? {
        let access = crate::auth::project_access(&spur.store, Some(user), &p, now)?;
        if !access.can_read {
            continue;
        }
        let (last, _) =
            spur.store
                .project_pipelines(p.id, &PipelineFilter::default(), PipelineOrder::Id, true, 0, 1)?;
        projects.push(ProjectRow {
            full_path: p.full_path.clone(),
            description: p.description.clone(),
            last_status: last.first().map(|l| l.status.as_str()),
        });
    }
    let l = Layout::new(&req, &visitor, "Projects");
    html(&req, &Home { l, projects })
}

struct MemberRow {
    name: String,
    username: String,
    role: &'static str,
    expires: String,
}

#[derive(Template)]
#[template(path = "members.html")]
struct Members {
    l: Layout,
    project_id: u64,
    members: Vec<MemberRow>,
}

/// `GET /{ns}/{project}/-/project_members`: who has which role (read-only here).
pub async fn members(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, None).await?;
    let mut members = Vec::new();
    for (user_id, m) in spur.store.project_members(project.id)? {
        let Some(u) = spur.store.user(user_id)? else { continue };
        members.push(MemberRow {
            name: u.name,
            username: u.username,
            role: m.access_level.name(),
            expires: m.expires_at.map(clock::date).unwrap_or_else(|| "Never".into()),
        });
    }
    let l = Layout::new(&req, &visitor, "Members").in_project(&project, &access, "members");
    html(
        &req,
        &Members {
            l,
            project_id: project.id,
            members,
        },
    )
}

/// `GET /{ns}/{project}/badges/{ref}/pipeline.svg`: the status of the ref's latest pipeline.
pub async fn badge(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (_, project, _) = project_page(&req, &spur, None).await?;
    let tail = req.match_info().get("tail").unwrap_or_default();
    let Some(ref_name) = tail.strip_suffix("/pipeline.svg") else {
        return Err(UiError::NotFound);
    };
    let latest = spur.store.latest_pipeline_for_ref(project.id, ref_name)?;
    let status = latest.as_ref().map_or("unknown", |p| p.status.as_str());
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-cache, no-store"))
        .body(badge_svg(status)))
}

/// A shields-style badge: "pipeline | <status>".
fn badge_svg(status: &str) -> String {
    let colour = match status {
        "success" => "#4c1",
        "failed" => "#e05d44",
        "running" => "#1f75cb",
        "pending" | "created" => "#dfb317",
        "canceled" | "skipped" => "#9f9f9f",
        "manual" | "scheduled" => "#555",
        _ => "#9f9f9f",
    };
    let right = 8 + status.len() as u32 * 7;
    let total = 62 + right;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="pipeline: {status}"><title>pipeline: {status}</title><rect width="62" height="20" fill="#555"/><rect x="62" width="{right}" height="20" fill="{colour}"/><g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="31" y="14">pipeline</text><text x="{mid}" y="14">{status}</text></g></svg>"##,
        mid = 62 + right / 2
    )
}

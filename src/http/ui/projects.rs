//! The project list (`/`) with "New project" for admins, a project's members (managed by
//! Maintainers), and its pipeline status badge.

use super::{
    Form, Layout, Posted, ProjectPost, UiError, html, id_in_path, posted, project_page, project_post, redirect,
};
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, Visibility};
use crate::project_create::{ProjectRefusal, ProjectRequest};
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
    admin: bool,
    /// The New project form as sent, when it was refused.
    new_project: NewProjectForm,
}

/// The New project form's values and why it was refused.
struct NewProjectForm {
    name: String,
    namespace: String,
    import_url: String,
    visibility: &'static str,
    /// The field at fault (`name`, `namespace`, `import_url`) and why.
    error: Option<(String, String)>,
}

impl Default for NewProjectForm {
    fn default() -> Self {
        NewProjectForm {
            name: String::new(),
            namespace: String::new(),
            import_url: String::new(),
            visibility: "private",
            error: None,
        }
    }
}

/// `GET /`: the projects the signed-in user can see, with their last pipeline's status.
pub async fn home(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    home_page(&req, &spur, NewProjectForm::default()).await
}

async fn home_page(req: &HttpRequest, spur: &Spur, new_project: NewProjectForm) -> Result<HttpResponse, UiError> {
    let visitor = super::session::visitor(req, spur).await?;
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
    let admin = user.admin;
    let l = Layout::new(req, &visitor, "Projects");
    html(
        req,
        &Home {
            l,
            projects,
            admin,
            new_project,
        },
    )
}

/// `POST /projects`: "New project" (administrators).
pub async fn create(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let Posted { form, user } = posted(&req, &spur, payload).await?;
    if !user.admin {
        return Err(UiError::NotFound);
    }
    let text = |name: &str| {
        form.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let request = ProjectRequest {
        name: text("project[name]"),
        path: None,
        namespace: text("project[namespace]"),
        visibility: text("project[visibility]")
            .and_then(|v| Visibility::parse(&v))
            .unwrap_or(Visibility::Private),
        description: String::new(),
        import_url: text("project[import_url]"),
    };
    let mut kept = NewProjectForm {
        name: request.name.clone().unwrap_or_default(),
        namespace: request.namespace.clone().unwrap_or_default(),
        // Credentials typed into the URL are not sent back.
        import_url: request
            .import_url
            .as_deref()
            .map(|u| crate::git::split_credentials(u).0)
            .unwrap_or_default(),
        visibility: request.visibility.as_str(),
        error: None,
    };
    let at = |field: &str, text: String| Some((field.to_string(), text));
    kept.error = match crate::project_create::create(&spur, &user, request).await? {
        Ok(project) => return Ok(redirect(&req, &format!("/{}", project.full_path), None)),
        Err(ProjectRefusal::Invalid(attr, text)) => {
            let field = if attr == "import_url" { "import_url" } else { "name" };
            at(field, format!("Project {attr} {text}"))
        }
        Err(ProjectRefusal::Taken) => at("name", "Project name has already been taken".into()),
        Err(ProjectRefusal::NamespaceNotFound) => at("namespace", "Namespace not found".into()),
        Err(ProjectRefusal::Forbidden) => at("namespace", "You may not create projects in that namespace".into()),
    };
    let mut page = home_page(&req, &spur, kept).await?;
    *page.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(page)
}

struct MemberRow {
    user_id: u64,
    name: String,
    username: String,
    role: &'static str,
    expires: String,
    manageable: bool,
}

#[derive(Template)]
#[template(path = "members.html")]
struct Members {
    l: Layout,
    full_path: String,
    members: Vec<MemberRow>,
    can_manage: bool,
    roles: Vec<(u8, &'static str)>,
}

const ROLES: [AccessLevel; 5] = [
    AccessLevel::Guest,
    AccessLevel::Reporter,
    AccessLevel::Developer,
    AccessLevel::Maintainer,
    AccessLevel::Owner,
];

/// `GET /{ns}/{project}/-/project_members`: who has which role; Maintainers manage them.
pub async fn members(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, None).await?;
    let can_manage = visitor.user.is_some() && access.at_least(AccessLevel::Maintainer);
    let mut members = Vec::new();
    for (user_id, m) in spur.store.project_members(project.id)? {
        let Some(u) = spur.store.user(user_id)? else { continue };
        members.push(MemberRow {
            user_id,
            name: u.name,
            username: u.username,
            role: m.access_level.name(),
            expires: m.expires_at.map(clock::date).unwrap_or_else(|| "Never".into()),
            manageable: access.may_manage_member(m.access_level),
        });
    }
    let roles = ROLES
        .iter()
        .filter(|r| access.may_manage_member(**r))
        .map(|r| (r.as_number(), r.name()))
        .collect();
    let l = Layout::new(&req, &visitor, "Members").in_project(&project, &access, "members");
    html(
        &req,
        &Members {
            l,
            full_path: project.full_path.clone(),
            members,
            can_manage,
            roles,
        },
    )
}

fn level_from(form: &Form) -> Result<AccessLevel, UiError> {
    form.get("access_level")
        .and_then(|l| l.parse::<i64>().ok())
        .and_then(AccessLevel::from_number)
        .ok_or_else(|| UiError::BadRequest("Unknown role.".into()))
}

/// `POST /{ns}/{project}/-/project_members`: invite a user by username (Maintainer+).
pub async fn add_member(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let ProjectPost {
        form, project, access, ..
    } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let back = format!("/{}/-/project_members", project.full_path);
    let level = level_from(&form)?;
    if !access.may_manage_member(level) {
        return Err(UiError::NotFound);
    }
    let username = form.get("username").unwrap_or_default().trim();
    let Some(user) = spur.store.user_by_username(username)? else {
        return Ok(redirect(&req, &back, Some(("alert", "User not found."))));
    };
    let added = crate::members::put_project_member(&spur, project.id, user.id, level, None, true, clock::now()).await?;
    let flash = match added {
        Ok(_) => ("notice", "Member was added."),
        Err(_) => ("alert", "Member already exists."),
    };
    Ok(redirect(&req, &back, Some(flash)))
}

/// `POST /{ns}/{project}/-/project_members/{user_id}`: change the role, or remove with
/// `_method=delete` (Maintainer+; only Owners touch Owners).
pub async fn change_member(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let ProjectPost {
        form, project, access, ..
    } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let back = format!("/{}/-/project_members", project.full_path);
    let user_id = id_in_path(&req, "user_id")?;
    let existing = spur
        .store
        .project_member(project.id, user_id)?
        .ok_or(UiError::NotFound)?;
    if !access.may_manage_member(existing.access_level) {
        return Err(UiError::NotFound);
    }
    if form.get("_method") == Some("delete") {
        crate::members::remove_project_member(&spur, project.id, user_id)
            .await?
            .map_err(|_| UiError::NotFound)?;
        return Ok(redirect(&req, &back, Some(("notice", "Member was removed."))));
    }
    let level = level_from(&form)?;
    if !access.may_manage_member(level) {
        return Err(UiError::NotFound);
    }
    crate::members::put_project_member(
        &spur,
        project.id,
        user_id,
        level,
        existing.expires_at,
        false,
        clock::now(),
    )
    .await?
    .map_err(|_| UiError::NotFound)?;
    Ok(redirect(&req, &back, Some(("notice", "Role was changed."))))
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

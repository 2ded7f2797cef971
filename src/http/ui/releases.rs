//! Deploy > Releases (`/{ns}/{project}/-/releases`): each release, newest first, with its
//! tag, commit, author, notes (as text) and asset links.

use super::{Layout, UiError, html, project_page, redirect};
use crate::clock;
use crate::context::Spur;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

/// One release as the page shows it.
struct ReleaseRow {
    name: String,
    tag_name: String,
    short_sha: String,
    sha: String,
    author: String,
    released_iso: String,
    upcoming: bool,
    description: String,
    links: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "releases.html")]
struct ReleasesPage {
    l: Layout,
    rows: Vec<ReleaseRow>,
}

/// `GET /{ns}/{project}/-/releases`: anyone who sees the project.
pub async fn list(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, None).await?;
    let mut releases = spur.store.releases(project.id)?;
    releases.sort_by_key(|r| std::cmp::Reverse(r.released_at));
    let now = clock::now();
    let rows = releases
        .into_iter()
        .map(|r| ReleaseRow {
            author: spur
                .store
                .user(r.author_id)
                .ok()
                .flatten()
                .map(|u| u.username)
                .unwrap_or_default(),
            short_sha: r.sha.get(..8).unwrap_or(&r.sha).to_string(),
            released_iso: clock::iso8601(r.released_at),
            upcoming: r.released_at > now,
            links: r
                .links
                .iter()
                .map(|l| (l.name.clone(), l.url.clone(), l.link_type.clone()))
                .collect(),
            name: r.name,
            tag_name: r.tag_name,
            sha: r.sha,
            description: r.description,
        })
        .collect();
    let l = Layout::new(&req, &visitor, "Releases").in_project(&project, &access, "releases");
    html(&req, &ReleasesPage { l, rows })
}

/// `GET /{ns}/{project}/-/releases/{tag}`: the release on the list; and
/// `.../-/releases/{tag}/downloads/{path}`: 302 to the link whose `direct_asset_path` it is.
pub async fn show(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (_, project, _) = project_page(&req, &spur, None).await?;
    let rest = req.match_info().get("rest").unwrap_or_default().to_string();
    let (tag, download) = match rest.split_once("/downloads/") {
        Some((tag, path)) => (tag.to_string(), Some(format!("/{path}"))),
        None => (rest.trim_end_matches('/').to_string(), None),
    };
    let release = spur.store.release(project.id, &tag)?.ok_or(UiError::NotFound)?;
    let location = match download {
        Some(path) => release
            .links
            .iter()
            .find(|l| {
                l.direct_asset_path
                    .as_deref()
                    .is_some_and(|p| format!("/{}", p.trim_start_matches('/')) == path)
            })
            .map(|l| l.url.clone())
            .ok_or(UiError::NotFound)?,
        None => format!("/{}/-/releases#release-{}", project.full_path, release.tag_name),
    };
    Ok(redirect(&req, &location, None))
}

//! Releases: `GET/POST /projects/:id/releases`, `GET/PUT/DELETE /projects/:id/releases/:tag_name`
//! and their links (`.../assets/links[/:link_id]`), with GitLab's entities. Anyone who sees the
//! project reads them; Developers and up change them.

use super::{Query, id_segment, segment};
use crate::domain::{AccessLevel, Project, Release, ReleaseLink};
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation};
use crate::http::{State, caller, json_response, project_with_role, views, visible_project};
use crate::releases::{NewRelease, Refusal};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::Invalid(m) => ApiError::bad_request_plain(&m),
        Refusal::Forbidden(m) => ApiError::forbidden_because(&m),
        Refusal::NotFound(what) => ApiError::not_found(what),
        Refusal::Conflict(m) => ApiError::conflict(&m),
        Refusal::Unprocessable(m) => ApiError::Message(StatusCode::UNPROCESSABLE_ENTITY, m),
    }
}

/// A link as GitLab shows it: `direct_asset_url` is the release's permanent link when it has a
/// `direct_asset_path`.
fn link_view(spur: &State, project: &Project, tag: &str, l: &ReleaseLink) -> Value {
    let direct = match &l.direct_asset_path {
        Some(path) => spur.url(&format!(
            "{}/-/releases/{tag}/downloads/{}",
            project.full_path,
            path.trim_start_matches('/')
        )),
        None => l.url.clone(),
    };
    json!({
        "id": l.id,
        "name": l.name,
        "url": l.url,
        "direct_asset_url": direct,
        "link_type": l.link_type,
    })
}

/// GitLab's `Releases::Release` entity.
pub fn view(spur: &State, project: &Project, r: &Release) -> Value {
    let author = spur
        .store
        .user(r.author_id)
        .ok()
        .flatten()
        .map(|u| views::user_basic(spur, &u));
    let base = spur.url(&project.full_path);
    // spur serves archives through the repository API.
    let archive = |format: &str| {
        json!({
            "format": format,
            "url": spur.url(&format!(
                "api/v4/projects/{}/repository/archive.{format}?{}",
                project.id,
                serde_urlencoded::to_string([("sha", &r.tag_name)]).unwrap_or_default()
            )),
        })
    };
    let links: Vec<Value> = r
        .links
        .iter()
        .map(|l| link_view(spur, project, &r.tag_name, l))
        .collect();
    let formats = ["zip", "tar.gz", "tar.bz2", "tar"];
    json!({
        "tag_name": r.tag_name,
        "description": r.description,
        "name": r.name,
        "created_at": crate::clock::iso8601(r.created_at),
        "released_at": crate::clock::iso8601(r.released_at),
        "upcoming_release": r.released_at > crate::clock::now(),
        "author": author,
        "commit": views::commit(spur, project, &r.sha),
        "milestones": [],
        "commit_path": format!("/{}/-/commit/{}", project.full_path, r.sha),
        "tag_path": format!("/{}/-/tags/{}", project.full_path, r.tag_name),
        "assets": {
            "count": formats.len() + links.len(),
            "sources": formats.iter().map(|f| archive(f)).collect::<Vec<_>>(),
            "links": links,
        },
        "evidences": [],
        "_links": {
            "self": format!("{base}/-/releases/{}", r.tag_name),
            "edit_url": format!("{base}/-/releases/{}/edit", r.tag_name),
        },
    })
}

async fn readable(req: &HttpRequest, spur: &State) -> Result<Project, ApiError> {
    let actor = caller(req, spur).await?;
    Ok(visible_project(spur, &segment(req, "id"), actor.as_ref())?.0)
}

fn find(spur: &State, project: &Project, req: &HttpRequest) -> Result<Release, ApiError> {
    spur.store
        .release(project.id, &segment(req, "tag_name"))?
        .ok_or_else(|| ApiError::not_found(""))
}

/// `GET /projects/:id/releases` (`order_by` `released_at`|`created_at`, `sort` `desc`|`asc`).
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let project = readable(&req, &spur).await?;
    let q = Query::of(&req);
    let mut releases = spur.store.releases(project.id)?;
    let by_created = q.get("order_by").as_deref() == Some("created_at");
    releases.sort_by_key(|r| if by_created { r.created_at } else { r.released_at });
    if q.get("sort").as_deref() != Some("asc") {
        releases.reverse();
    }
    paginated(&req, releases.iter().map(|r| view(&spur, &project, r)).collect())
}

/// `GET /projects/:id/releases/:tag_name`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let project = readable(&req, &spur).await?;
    let release = find(&spur, &project, &req)?;
    Ok(json_response(StatusCode::OK, &view(&spur, &project, &release)))
}

/// `assets[links]` of a request: `name`, `url`, `direct_asset_path` (or the older `filepath`),
/// `link_type`.
fn links_param(params: &Params) -> Result<Vec<ReleaseLink>, ApiError> {
    let Some(assets) = params.get("assets") else {
        return Ok(Vec::new());
    };
    let items = match assets.get("links") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Object(map)) => map.values().cloned().collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(ApiError::Params("assets[links] is invalid".into())),
    };
    items.iter().map(link_from).collect()
}

fn link_from(v: &Value) -> Result<ReleaseLink, ApiError> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(name), Some(url)) = (text("name"), text("url")) else {
        return Err(ApiError::Params(
            "assets[links][name], assets[links][url] are missing".into(),
        ));
    };
    Ok(ReleaseLink {
        id: 0,
        name,
        url,
        direct_asset_path: text("direct_asset_path").or_else(|| text("filepath")),
        link_type: text("link_type").unwrap_or_else(|| "other".into()),
    })
}

/// `POST /projects/:id/releases` (Developer+): `tag_name`, `name`, `description`, `ref`,
/// `tag_message`, `released_at`, `assets[links]`.
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let mut v = Validation::default();
    let tag_name = v.required_string(&params, "tag_name");
    let name = v.optional_string(&params, "name");
    let description = v.optional_string(&params, "description");
    let reference = v.optional_string(&params, "ref");
    let tag_message = v.optional_string(&params, "tag_message");
    let released_at = v.optional_datetime(&params, "released_at");
    v.finish()?;
    let new = NewRelease {
        tag_name: tag_name.unwrap_or_default(),
        name,
        description,
        reference,
        tag_message,
        released_at,
        links: links_param(&params)?,
    };
    let release = crate::releases::create(spur.clone().into_inner(), &project, &actor.user, &access, new)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(json_response(StatusCode::CREATED, &view(&spur, &project, &release)))
}

/// `PUT /projects/:id/releases/:tag_name` (Developer+): `name`, `description`, `released_at`.
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let mut v = Validation::default();
    let name = v.optional_string(&params, "name");
    let description = v.optional_string(&params, "description");
    let released_at = v.optional_datetime(&params, "released_at");
    v.finish()?;
    let release = crate::releases::change(&spur, project.id, &segment(&req, "tag_name"), |r| {
        r.name = name.unwrap_or(std::mem::take(&mut r.name));
        r.description = description.unwrap_or(std::mem::take(&mut r.description));
        r.released_at = released_at.unwrap_or(r.released_at);
        Ok(())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(refused)?;
    Ok(json_response(StatusCode::OK, &view(&spur, &project, &release)))
}

/// `DELETE /projects/:id/releases/:tag_name` (Developer+): the release, its tag kept.
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let release = crate::releases::delete(&spur, project.id, &segment(&req, "tag_name"))
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    Ok(json_response(StatusCode::OK, &view(&spur, &project, &release)))
}

/// `GET /projects/:id/releases/:tag_name/assets/links`.
pub async fn links(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let project = readable(&req, &spur).await?;
    let release = find(&spur, &project, &req)?;
    let items = release
        .links
        .iter()
        .map(|l| link_view(&spur, &project, &release.tag_name, l))
        .collect();
    paginated(&req, items)
}

/// `GET /projects/:id/releases/:tag_name/assets/links/:link_id`.
pub async fn link(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let project = readable(&req, &spur).await?;
    let release = find(&spur, &project, &req)?;
    let id = id_segment(&req, "link_id")?;
    let link = release
        .links
        .iter()
        .find(|l| l.id == id)
        .ok_or_else(|| ApiError::not_found(""))?;
    Ok(json_response(
        StatusCode::OK,
        &link_view(&spur, &project, &release.tag_name, link),
    ))
}

/// `POST .../assets/links` (Developer+): `name`, `url`, `direct_asset_path`, `link_type`.
pub async fn create_link(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let link = link_from(&Value::Object(params.0.clone()))?;
    let tag = segment(&req, "tag_name");
    let release = crate::releases::change(&spur, project.id, &tag, |r| {
        crate::releases::check_link(&link, &r.links)?;
        r.links.push(link);
        Ok(())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(refused)?;
    let Some(added) = release.links.last() else {
        return Err(ApiError::internal("the new link is missing"));
    };
    Ok(json_response(
        StatusCode::CREATED,
        &link_view(&spur, &project, &tag, added),
    ))
}

/// `PUT .../assets/links/:link_id` (Developer+).
pub async fn update_link(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let id = id_segment(&req, "link_id")?;
    let mut v = Validation::default();
    let name = v.optional_string(&params, "name");
    let url = v.optional_string(&params, "url");
    let path = v
        .optional_string(&params, "direct_asset_path")
        .or_else(|| v.optional_string(&params, "filepath"));
    let link_type = v.optional_string(&params, "link_type");
    v.finish()?;
    let tag = segment(&req, "tag_name");
    let release = crate::releases::change(&spur, project.id, &tag, |r| {
        let others = r.links.clone();
        let link = r
            .links
            .iter_mut()
            .find(|l| l.id == id)
            .ok_or(Refusal::NotFound("Link"))?;
        let mut changed = link.clone();
        changed.name = name.unwrap_or(changed.name);
        changed.url = url.unwrap_or(changed.url);
        changed.direct_asset_path = path.or(changed.direct_asset_path);
        changed.link_type = link_type.unwrap_or(changed.link_type);
        crate::releases::check_link(&changed, &others)?;
        *link = changed;
        Ok(())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(refused)?;
    let link = release
        .links
        .iter()
        .find(|l| l.id == id)
        .ok_or_else(|| ApiError::not_found(""))?;
    Ok(json_response(StatusCode::OK, &link_view(&spur, &project, &tag, link)))
}

/// `DELETE .../assets/links/:link_id` (Developer+): the link removed.
pub async fn delete_link(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let id = id_segment(&req, "link_id")?;
    let tag = segment(&req, "tag_name");
    let mut removed = None;
    crate::releases::change(&spur, project.id, &tag, |r| {
        let at = r
            .links
            .iter()
            .position(|l| l.id == id)
            .ok_or(Refusal::NotFound("Link"))?;
        removed = Some(r.links.remove(at));
        Ok(())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(refused)?;
    let Some(link) = removed else {
        return Err(ApiError::not_found(""));
    };
    Ok(json_response(StatusCode::OK, &link_view(&spur, &project, &tag, &link)))
}

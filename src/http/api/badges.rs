//! Project badges: `GET/POST /projects/:id/badges`, `GET/PUT/DELETE /projects/:id/badges/:badge_id`
//! and `GET /projects/:id/badges/render`, with GitLab's entity (placeholders rendered).

use super::{Query, id_segment, segment};
use crate::badges::{BadgeRefusal, Placeholders};
use crate::domain::{AccessLevel, Badge, Project};
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation};
use crate::http::{State, caller, json_response, project_with_role, visible_project};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

fn view(b: &Badge, p: &Placeholders) -> Value {
    json!({
        "name": b.name,
        "id": b.id,
        "link_url": b.link_url,
        "image_url": b.image_url,
        "rendered_link_url": p.render(&b.link_url),
        "rendered_image_url": p.render(&b.image_url),
        "kind": "project",
    })
}

fn refused(r: BadgeRefusal) -> ApiError {
    ApiError::invalid(r.0, &r.1)
}

async fn placeholders(spur: &State, project: &Project) -> Result<Placeholders, ApiError> {
    let (s, p) = (spur.clone(), project.clone());
    web::block(move || Placeholders::of(&s, &p))
        .await
        .map_err(ApiError::internal)
}

fn find(spur: &State, project_id: u64, req: &HttpRequest) -> Result<Badge, ApiError> {
    let id = id_segment(req, "badge_id")?;
    spur.store
        .badges(project_id)?
        .into_iter()
        .find(|b| b.id == id)
        .ok_or_else(|| ApiError::not_found("Badge"))
}

/// `GET /projects/:id/badges` (`name` filter): anyone who sees the project.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let name = Query::of(&req).get("name");
    let badges = spur.store.badges(project.id)?;
    let p = placeholders(&spur, &project).await?;
    let items = badges
        .iter()
        .filter(|b| name.is_none() || b.name == name)
        .map(|b| view(b, &p))
        .collect();
    paginated(&req, items)
}

/// `GET /projects/:id/badges/:badge_id`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req, &spur).await?;
    let (project, _) = visible_project(&spur, &segment(&req, "id"), actor.as_ref())?;
    let badge = find(&spur, project.id, &req)?;
    let p = placeholders(&spur, &project).await?;
    Ok(json_response(StatusCode::OK, &view(&badge, &p)))
}

/// `POST /projects/:id/badges` (Maintainer+): `link_url`, `image_url`, `name`.
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let mut v = Validation::default();
    let link_url = v.required_string(&params, "link_url");
    let image_url = v.required_string(&params, "image_url");
    let name = v.optional_string(&params, "name");
    v.finish()?;
    let badge = Badge {
        id: 0,
        project_id: project.id,
        name,
        link_url: link_url.unwrap_or_default(),
        image_url: image_url.unwrap_or_default(),
    };
    let badge = crate::badges::create(&spur, badge).await?.map_err(refused)?;
    let p = placeholders(&spur, &project).await?;
    Ok(json_response(StatusCode::CREATED, &view(&badge, &p)))
}

/// `PUT /projects/:id/badges/:badge_id` (Maintainer+).
pub async fn update(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let mut badge = find(&spur, project.id, &req)?;
    let mut v = Validation::default();
    let link_url = v.optional_string(&params, "link_url");
    let image_url = v.optional_string(&params, "image_url");
    let name = v.optional_string(&params, "name");
    v.finish()?;
    badge.link_url = link_url.unwrap_or(badge.link_url);
    badge.image_url = image_url.unwrap_or(badge.image_url);
    if name.is_some() {
        badge.name = name;
    }
    if !crate::badges::update(&spur, badge.clone()).await?.map_err(refused)? {
        return Err(ApiError::not_found("Badge"));
    }
    let p = placeholders(&spur, &project).await?;
    Ok(json_response(StatusCode::OK, &view(&badge, &p)))
}

/// `DELETE /projects/:id/badges/:badge_id` (Maintainer+).
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let badge = find(&spur, project.id, &req)?;
    crate::badges::delete(&spur, project.id, badge.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /projects/:id/badges/render?link_url=&image_url=` (Maintainer+): a preview.
pub async fn render(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let q = Query::of(&req);
    let (link_url, image_url) = (q.get("link_url"), q.get("image_url"));
    let (Some(link_url), Some(image_url)) = (link_url, image_url) else {
        let missing: Vec<String> = [("link_url", q.get("link_url")), ("image_url", q.get("image_url"))]
            .into_iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| format!("{k} is missing"))
            .collect();
        return Err(ApiError::Params(missing.join(", ")));
    };
    let p = placeholders(&spur, &project).await?;
    let body = json!({
        "link_url": link_url,
        "image_url": image_url,
        "rendered_link_url": p.render(&link_url),
        "rendered_image_url": p.render(&image_url),
    });
    Ok(json_response(StatusCode::OK, &body))
}

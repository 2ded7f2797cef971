//! `GET/POST /projects/:id/protected_branches`, `GET/DELETE /projects/:id/protected_branches/:name`
//! and the same for `protected_tags` (Maintainer+), with GitLab's entities and messages.

use super::segment;
use crate::domain::{AccessLevel, ProtectedRef, RefKind};
use crate::http::error::ApiError;
use crate::http::params::Params;
use crate::http::views;
use crate::http::{State, json_response, project_with_role};
use crate::protected_refs::LEVELS;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

fn kind_of(req: &HttpRequest) -> RefKind {
    if req.path().contains("/protected_tags") {
        RefKind::Tag
    } else {
        RefKind::Branch
    }
}

fn what(kind: RefKind) -> &'static str {
    match kind {
        RefKind::Branch => "Protected branch",
        RefKind::Tag => "Protected tag",
    }
}

/// `GET .../protected_branches|protected_tags`.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let kind = kind_of(&req);
    let rules: Vec<Value> = spur
        .store
        .protected_refs(project.id)?
        .iter()
        .filter(|r| r.kind == kind)
        .map(views::protected_ref)
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(rules)))
}

fn find(spur: &State, project_id: u64, kind: RefKind, name: &str) -> Result<ProtectedRef, ApiError> {
    spur.store
        .protected_refs(project_id)?
        .into_iter()
        .find(|r| r.kind == kind && r.name == name)
        .ok_or_else(|| ApiError::not_found(what(kind)))
}

/// `GET .../protected_branches/:name`.
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let kind = kind_of(&req);
    let rule = find(&spur, project.id, kind, &segment(&req, "name"))?;
    Ok(json_response(StatusCode::OK, &views::protected_ref(&rule)))
}

fn access_level(params: &Params, key: &str, default: u8) -> Result<u8, ApiError> {
    match params.integer(key) {
        Ok(None) => Ok(default),
        Ok(Some(n)) if LEVELS.contains(&(n as u8)) && (0..=255).contains(&n) => Ok(n as u8),
        _ => Err(ApiError::Params(format!("{key} does not have a valid value"))),
    }
}

/// `POST .../protected_branches|protected_tags`: 201 with the rule; 409 if the name is taken.
pub async fn create(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let kind = kind_of(&req);
    let name = params
        .string("name")
        .map_err(|_| ApiError::Params("name is invalid".into()))?;
    let Some(name) = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) else {
        return Err(ApiError::Params("name is missing".into()));
    };
    let rule = ProtectedRef {
        id: 0,
        project_id: project.id,
        kind,
        name: name.clone(),
        push_access_level: access_level(&params, "push_access_level", 40)?,
        merge_access_level: access_level(&params, "merge_access_level", 40)?,
        create_access_level: access_level(&params, "create_access_level", 40)?,
        allow_force_push: params
            .boolean("allow_force_push")
            .map_err(|_| ApiError::Params("allow_force_push is invalid".into()))?
            .unwrap_or(false),
    };
    match crate::protected_refs::create_protected_ref(&spur, rule).await? {
        Some(rule) => Ok(json_response(StatusCode::CREATED, &views::protected_ref(&rule))),
        None => Err(ApiError::conflict(&format!("{} '{name}' already exists", what(kind)))),
    }
}

/// `PATCH .../protected_branches/:name`: `allow_force_push`, and `allowed_to_push` /
/// `allowed_to_merge` as GitLab's lists of `{access_level}` (the lowest level listed wins,
/// as any entry admits; per-user entries are not kept by spur).
pub async fn update(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let kind = kind_of(&req);
    let name = segment(&req, "name");
    let Some(mut rule) = spur
        .store
        .protected_refs(project.id)?
        .into_iter()
        .find(|r| r.kind == kind && r.name == name)
    else {
        return Err(ApiError::not_found(what(kind)));
    };
    if let Some(force) = params
        .boolean("allow_force_push")
        .map_err(|_| ApiError::Params("allow_force_push is invalid".into()))?
    {
        rule.allow_force_push = force;
    }
    let lowest = |key: &str| -> Result<Option<u8>, ApiError> {
        let Some(serde_json::Value::Array(items)) = params.get(key) else {
            return Ok(None);
        };
        let mut levels = Vec::new();
        for item in items {
            if item.get("_destroy").and_then(|d| d.as_bool()) == Some(true) {
                continue;
            }
            let level = item
                .get("access_level")
                .and_then(|l| l.as_u64().or_else(|| l.as_str().and_then(|s| s.parse().ok())))
                .filter(|l| LEVELS.contains(&(*l as u8)) && *l <= 255)
                .ok_or_else(|| ApiError::Params(format!("{key} does not have a valid value")))?;
            levels.push(level as u8);
        }
        Ok(levels.into_iter().min())
    };
    if let Some(level) = lowest("allowed_to_push")? {
        rule.push_access_level = level;
    }
    if let Some(level) = lowest("allowed_to_merge")? {
        rule.merge_access_level = level;
    }
    match crate::protected_refs::update_protected_ref(&spur, rule).await? {
        Some(rule) => Ok(json_response(StatusCode::OK, &views::protected_ref(&rule))),
        None => Err(ApiError::not_found(what(kind))),
    }
}

/// `DELETE .../protected_branches|protected_tags/:name`: 204.
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let kind = kind_of(&req);
    let name = segment(&req, "name");
    if !crate::protected_refs::delete_protected_ref(&spur, project.id, kind, name).await? {
        return Err(ApiError::not_found(what(kind)));
    }
    Ok(HttpResponse::NoContent().finish())
}

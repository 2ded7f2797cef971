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

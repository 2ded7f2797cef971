//! Commit statuses: `POST /projects/:id/statuses/:sha` (Developer+) and
//! `GET /projects/:id/repository/commits/:sha/statuses`.

use super::{Query, segment};
use crate::commit_statuses::{StatusFilter, StatusRefusal, StatusRequest};
use crate::domain::{AccessLevel, Visibility};
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::params::{Params, Validation};
use crate::http::{State, json_response, signed_in, views, visible_project};
use crate::scheduler::{PostedStatus, StatusState};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// `POST /projects/:id/statuses/:sha`: `state` (required), `ref`, `name` or `context`,
/// `target_url`, `description`, `coverage`, `pipeline_id`.
pub async fn create(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, access) = crate::http::project_with_role(&req, &spur, None).await?;
    let mut v = Validation::default();
    let state = v.required_string(&params, "state");
    let state = match state.as_deref().map(StatusState::parse) {
        Some(Some(s)) => Some(s),
        Some(None) => {
            v.fail("state", "does not have a valid value");
            None
        }
        None => None,
    };
    let ref_name = v.optional_string(&params, "ref");
    let name = v.optional_string(&params, "name");
    let context = v.optional_string(&params, "context");
    let target_url = v.optional_string(&params, "target_url");
    let description = v.optional_string(&params, "description");
    let coverage = match params.string("coverage") {
        Ok(None) => None,
        Ok(Some(c)) => match c.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Some(f),
            _ => {
                v.fail("coverage", "is invalid");
                None
            }
        },
        Err(_) => {
            v.fail("coverage", "is invalid");
            None
        }
    };
    let pipeline_id = match params.integer("pipeline_id") {
        Ok(p) => p,
        Err(_) => {
            v.fail("pipeline_id", "is invalid");
            None
        }
    };
    if description.as_ref().is_some_and(|d| d.chars().count() > 10_000) {
        v.fail("description", "is too long");
    }
    v.finish()?;
    // The model's checks, GitLab's `{"message": {field: [...]}}` bodies.
    let fields = [
        ("name", &name),
        ("context", &context),
        ("ref", &ref_name),
        ("target_url", &target_url),
    ];
    for (key, value) in fields {
        if value.as_ref().is_some_and(|s| s.chars().count() > 255) {
            return Err(ApiError::invalid(key, "is too long (maximum is 255 characters)"));
        }
    }
    if name.as_ref().or(context.as_ref()).is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::invalid("name", "can't be blank"));
    }
    if let Some(url) = &target_url {
        let lower = url.to_ascii_lowercase();
        let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
        let valid = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err(ApiError::invalid("target_url", "must be a valid URL"));
        }
    }
    let Some(state) = state else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    if !access.at_least(AccessLevel::Developer) {
        return Err(ApiError::forbidden());
    }
    let request = StatusRequest {
        sha: segment(&req, "sha"),
        ref_name,
        pipeline_id: pipeline_id.map(|p| p.max(0) as u64),
        status: PostedStatus {
            name: name.or(context).unwrap_or_else(|| "default".into()),
            state,
            user_id: actor.user.id,
            target_url,
            description,
            coverage,
        },
    };
    let spur_arc = spur.clone().into_inner();
    let job = crate::commit_statuses::post(&spur_arc, &project, &access, request)
        .await
        .map_err(|r| match r {
            StatusRefusal::NotFound(what) => ApiError::not_found(what),
            StatusRefusal::Forbidden => ApiError::forbidden(),
            StatusRefusal::Engine(e) => super::jobs::refusal(e),
            StatusRefusal::Internal(e) => ApiError::internal(e),
        })?;
    let pipeline = spur
        .store
        .pipeline(job.pipeline_id)?
        .ok_or_else(|| ApiError::internal("status without pipeline"))?;
    let author = spur.store.user(job.user_id)?;
    Ok(json_response(
        StatusCode::CREATED,
        &views::commit_status(&spur, &pipeline, &job, author.as_ref()),
    ))
}

/// `GET /projects/:id/repository/commits/:sha/statuses` (`ref`, `stage`, `name`, `all`).
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    let (project, access) = visible_project(&spur, &segment(&req, "id"), Some(&actor))?;
    if !access.at_least(AccessLevel::Reporter) && project.visibility == Visibility::Private {
        return Err(ApiError::forbidden());
    }
    let q = Query::of(&req);
    let filter = StatusFilter {
        ref_name: q.get("ref"),
        stage: q.get("stage"),
        name: q.get("name"),
        all: match q.get("all") {
            None => false,
            Some(a) => crate::http::params::truthy(&a).ok_or_else(|| ApiError::Params("all is invalid".into()))?,
        },
    };
    let sha = segment(&req, "sha");
    let s = spur.clone();
    let found = web::block(move || crate::commit_statuses::list(&s, &project, &sha, &filter))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("Commit"))?;
    let mut authors = std::collections::HashMap::new();
    let mut items = Vec::with_capacity(found.len());
    for (job, pipeline) in &found {
        if let std::collections::hash_map::Entry::Vacant(e) = authors.entry(job.user_id) {
            e.insert(spur.store.user(job.user_id)?);
        }
        let author = authors.get(&job.user_id).and_then(|a| a.as_ref());
        items.push(views::commit_status(&spur, pipeline, job, author));
    }
    paginated(&req, items)
}

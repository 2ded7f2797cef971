//! The repository, read-only: `GET /projects/:id/repository/branches[/:branch]`,
//! `.../tags[/:tag]`, `.../files/:file_path[/raw]`, `.../tree` and `.../commits[/:sha]`, for
//! callers who may read the project's code (Reporter+, or anyone who can see a public or
//! internal project), as GitLab's `read_code`.

use super::segment;
use crate::domain::{AccessLevel, Project, Visibility};
use crate::http::error::ApiError;
use crate::http::pagination::{PageRequest, paginated};
use crate::http::{State, caller, json_response, views, visible_project};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The project and its repository's path, for a caller who may read its code.
async fn readable(req: &HttpRequest, spur: &State) -> Result<(Project, PathBuf), ApiError> {
    let actor = caller(req, spur).await?;
    let (project, access) = visible_project(spur, &segment(req, "id"), actor.as_ref())?;
    let read_code = access.at_least(AccessLevel::Reporter) || project.visibility != Visibility::Private;
    if !read_code {
        return Err(ApiError::forbidden());
    }
    let path = spur
        .repos
        .path_of(&project.repo_name, &crate::git::Origin::of(&project));
    Ok((project, path))
}

/// A relative path inside the repository, or GitLab's 400.
fn clean_path(path: &str, what: &str) -> Result<String, ApiError> {
    let trimmed = path.trim_matches('/');
    if trimmed.split('/').any(|p| p == ".." || p == ".") || trimmed.contains('\0') {
        return Err(ApiError::Params(format!("{what} should be a valid file path")));
    }
    Ok(trimmed.to_string())
}

/// Runs blocking repository reads on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    web::block(f).await.map_err(ApiError::internal)?
}

/// A commit `sha` resolved from `name` (a branch, a tag or a full SHA), or GitLab's 404.
fn commit_of(spur: &State, path: &std::path::Path, name: &str, what: &str) -> Result<String, ApiError> {
    spur.repos
        .resolve_any(path, name)
        .map(|r| r.sha)
        .map_err(|_| ApiError::not_found(what))
}

/// GitLab's `search` for branches and tags: a substring, `^prefix` or `suffix$`.
fn search_matches(name: &str, search: Option<&str>) -> bool {
    let Some(s) = search else { return true };
    let name = name.to_lowercase();
    let s = s.to_lowercase();
    match (s.strip_prefix('^'), s.strip_suffix('$')) {
        (Some(prefix), _) => name.starts_with(prefix.trim_end_matches('$')),
        (None, Some(suffix)) => name.ends_with(suffix),
        (None, None) => name.contains(&s),
    }
}

fn branch_view(spur: &State, project: &Project, entry: &crate::git::RefEntry) -> Value {
    let protected = crate::protected_refs::is_protected(spur, project.id, &entry.name, false).unwrap_or(false);
    json!({
        "name": entry.name,
        "commit": views::commit(spur, project, &entry.sha),
        "merged": false,
        "protected": protected,
        "developers_can_push": !protected,
        "developers_can_merge": !protected,
        "can_push": !protected,
        "default": project.default_branch.as_deref() == Some(entry.name.as_str()),
        "web_url": spur.url(&format!("{}/-/tree/{}", project.full_path, entry.name)),
    })
}

fn tag_view(spur: &State, project: &Project, entry: &crate::git::RefEntry) -> Value {
    json!({
        "name": entry.name,
        "message": entry.message.clone().unwrap_or_default(),
        "target": entry.target.clone().unwrap_or_else(|| entry.sha.clone()),
        "commit": views::commit(spur, project, &entry.sha),
        "release": spur
            .store
            .release(project.id, &entry.name)
            .ok()
            .flatten()
            .map(|r| json!({"tag_name": r.tag_name, "description": r.description})),
        "protected": crate::protected_refs::is_protected(spur, project.id, &entry.name, true).unwrap_or(false),
        "created_at": null,
    })
}

/// `GET .../repository/branches` (`search`) and `.../tags` (`search`, `order_by=name`).
async fn list_refs(req: HttpRequest, spur: State, tags: bool) -> Result<HttpResponse, ApiError> {
    let (project, path) = readable(&req, &spur).await?;
    let search = super::Query::of(&req).get("search");
    let s = spur.clone();
    let entries = blocking(move || s.repos.list_refs(&path, tags).map_err(ApiError::internal)).await?;
    let matching: Vec<&crate::git::RefEntry> = entries
        .iter()
        .filter(|e| search_matches(&e.name, search.as_deref()))
        .collect();
    // Views (commits, protection) only for the requested page.
    let page = PageRequest::from_request(&req)?;
    let total = matching.len();
    let on_page = matching
        .into_iter()
        .skip(page.offset())
        .take(page.per_page)
        .map(|e| {
            if tags {
                tag_view(&spur, &project, e)
            } else {
                branch_view(&spur, &project, e)
            }
        })
        .collect();
    Ok(crate::http::pagination::page_response(&req, page, on_page, total))
}

/// `GET /projects/:id/repository/branches`.
pub async fn branches(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    list_refs(req, spur, false).await
}

/// `GET /projects/:id/repository/tags`.
pub async fn tags(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    list_refs(req, spur, true).await
}

/// `GET .../repository/branches/:branch` and `.../tags/:tag`.
async fn one_ref(req: HttpRequest, spur: State, tags: bool) -> Result<HttpResponse, ApiError> {
    let (project, path) = readable(&req, &spur).await?;
    let name = segment(&req, "name");
    let s = spur.clone();
    let entries = blocking(move || s.repos.list_refs(&path, tags).map_err(ApiError::internal)).await?;
    match entries.iter().find(|e| e.name == name) {
        Some(e) if tags => Ok(json_response(StatusCode::OK, &tag_view(&spur, &project, e))),
        Some(e) => Ok(json_response(StatusCode::OK, &branch_view(&spur, &project, e))),
        None => Err(ApiError::not_found(if tags { "Tag" } else { "Branch" })),
    }
}

/// The caller's project with write rights (the `api` scope) for a ref change.
async fn writable(
    req: &HttpRequest,
    spur: &State,
) -> Result<(crate::auth::Actor, Project, crate::auth::ProjectAccess), ApiError> {
    crate::http::project_with_role(req, spur, Some(AccessLevel::Developer)).await
}

fn refusal(r: crate::refs::RefRefusal) -> ApiError {
    use crate::refs::RefRefusal;
    match r {
        RefRefusal::Invalid(m) => ApiError::Message(StatusCode::BAD_REQUEST, m),
        RefRefusal::Forbidden(m) => ApiError::forbidden_because(&m),
        RefRefusal::NotFound => ApiError::not_found(""),
        RefRefusal::NotAllowed(m) => ApiError::Message(StatusCode::METHOD_NOT_ALLOWED, m),
    }
}

/// `POST /projects/:id/repository/branches` (`branch`, `ref`) and `.../tags` (`tag_name`,
/// `ref`, optional `message` for an annotated tag): Developer+ with push rights to the name.
async fn create_ref(
    req: HttpRequest,
    spur: State,
    payload: web::Payload,
    tags: bool,
) -> Result<HttpResponse, ApiError> {
    let params = crate::http::params::Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, access) = writable(&req, &spur).await?;
    let mut v = crate::http::params::Validation::default();
    let name = v.required_string(&params, if tags { "tag_name" } else { "branch" });
    let target = v.required_string(&params, "ref");
    let message = v.optional_string(&params, "message");
    v.finish()?;
    let (Some(name), Some(target)) = (name, target) else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    let tag = tags.then_some(message);
    crate::refs::create(
        spur.clone().into_inner(),
        &project,
        &actor.user,
        &access,
        &name,
        &target,
        tag,
    )
    .await
    .map_err(ApiError::internal)?
    .map_err(refusal)?;
    let path = spur
        .repos
        .path_of(&project.repo_name, &crate::git::Origin::of(&project));
    let s = spur.clone();
    let entries = blocking(move || s.repos.list_refs(&path, tags).map_err(ApiError::internal)).await?;
    let entry = entries
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ApiError::not_found(""))?;
    let view = if tags {
        tag_view(&spur, &project, entry)
    } else {
        branch_view(&spur, &project, entry)
    };
    Ok(json_response(StatusCode::CREATED, &view))
}

/// `POST /projects/:id/repository/branches`.
pub async fn create_branch(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    create_ref(req, spur, payload, false).await
}

/// `POST /projects/:id/repository/tags`.
pub async fn create_tag(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    create_ref(req, spur, payload, true).await
}

/// `DELETE .../repository/branches/:branch` and `.../tags/:tag`.
async fn delete_ref(req: HttpRequest, spur: State, tags: bool) -> Result<HttpResponse, ApiError> {
    let (actor, project, access) = writable(&req, &spur).await?;
    let name = segment(&req, "name");
    crate::refs::delete(spur.clone().into_inner(), &project, &actor.user, &access, &name, tags)
        .await
        .map_err(ApiError::internal)?
        .map_err(refusal)?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /projects/:id/repository/branches/:branch`.
pub async fn delete_branch(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    delete_ref(req, spur, false).await
}

/// `DELETE /projects/:id/repository/tags/:tag`.
pub async fn delete_tag(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    delete_ref(req, spur, true).await
}

/// `GET /projects/:id/repository/branches/:branch`.
pub async fn branch(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    one_ref(req, spur, false).await
}

/// `GET /projects/:id/repository/tags/:tag`.
pub async fn tag(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    one_ref(req, spur, true).await
}

/// The file of a files request: its path, the ref (required) and the blob.
async fn file_request(req: &HttpRequest, spur: &State) -> Result<(String, String, crate::git::Blob), ApiError> {
    let (_, path) = readable(req, spur).await?;
    let file = clean_path(&segment(req, "file_path"), "file_path")?;
    let Some(reference) = super::Query::of(req).get("ref") else {
        return Err(ApiError::Params("ref is missing".into()));
    };
    let s = spur.clone();
    let (f, r) = (file.clone(), reference.clone());
    let blob = blocking(move || {
        let sha = commit_of(&s, &path, &r, "Commit")?;
        s.repos
            .blob_at(&path, &sha, &f)
            .map_err(|e| ApiError::Params(e.to_string()))?
            .ok_or_else(|| ApiError::not_found("File"))
    })
    .await?;
    Ok((file, reference, blob))
}

/// `GET /projects/:id/repository/files/:file_path?ref=`: the file, base64-encoded.
pub async fn file(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    use base64::Engine;
    use sha2::Digest;
    let (file, reference, blob) = file_request(&req, &spur).await?;
    let name = file.rsplit('/').next().unwrap_or(&file).to_string();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "file_name": name,
            "file_path": file,
            "size": blob.data.len(),
            "encoding": "base64",
            "content_sha256": sha2::Sha256::digest(&blob.data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ref": reference,
            "blob_id": blob.id,
            "commit_id": blob.commit,
            "last_commit_id": blob.commit,
            "execute_filemode": blob.executable,
            "content": base64::engine::general_purpose::STANDARD.encode(&blob.data),
        }),
    ))
}

/// `GET /projects/:id/repository/files/:file_path/raw?ref=`: the bytes.
pub async fn raw_file(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, _, blob) = file_request(&req, &spur).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Type", "text/plain; charset=utf-8"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("X-Gitlab-Blob-Id", blob.id.clone()))
        .insert_header(("X-Gitlab-Commit-Id", blob.commit.clone()))
        .body(blob.data))
}

/// `GET /projects/:id/repository/tree` (`path`, `ref`, `recursive`).
pub async fn tree(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (project, path) = readable(&req, &spur).await?;
    let q = super::Query::of(&req);
    let dir = clean_path(&q.get("path").unwrap_or_default(), "path")?;
    let reference = q
        .get("ref")
        .or_else(|| project.default_branch.clone())
        .unwrap_or_else(|| "main".into());
    let recursive = q.get("recursive").and_then(|v| crate::http::params::truthy(&v)) == Some(true);
    let s = spur.clone();
    let entries = blocking(move || {
        let sha = commit_of(&s, &path, &reference, "Tree")?;
        s.repos
            .tree_at(&path, &sha, &dir, recursive)
            .map_err(ApiError::Params)?
            .ok_or_else(|| ApiError::not_found("Tree"))
    })
    .await?;
    let items = entries
        .into_iter()
        .map(|e| json!({"id": e.id, "name": e.name, "type": e.kind, "path": e.path, "mode": e.mode}))
        .collect();
    paginated(&req, items)
}

/// `GET /projects/:id/repository/commits` (`ref_name`, `path`, `since`, `until`): newest first,
/// with page links but no total (as GitLab for large histories).
pub async fn commits(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (project, path) = readable(&req, &spur).await?;
    let q = super::Query::of(&req);
    let reference = q
        .get("ref_name")
        .or_else(|| project.default_branch.clone())
        .unwrap_or_else(|| "main".into());
    let file = q.get("path").map(|p| clean_path(&p, "path")).transpose()?;
    let time = |k: &str| {
        q.get(k)
            .map(|v| crate::clock::parse_datetime(&v).ok_or_else(|| ApiError::Params(format!("{k} is invalid"))))
            .transpose()
    };
    let window = (time("since")?, time("until")?);
    let page = PageRequest::from_request(&req)?;
    let s = spur.clone();
    let (shas, more) = blocking(move || {
        let Ok(tip) = s.repos.resolve_any(&path, &reference) else {
            return Ok((Vec::new(), false));
        };
        s.repos
            .history(&path, &tip.sha, file.as_deref(), window, page.offset(), page.per_page)
            .map_err(ApiError::internal)
    })
    .await?;
    let items: Vec<Value> = shas.iter().map(|sha| views::commit(&spur, &project, sha)).collect();
    // The total is not counted: a page past the end is empty, and `more` says if one follows.
    let total = page.offset() + items.len() + usize::from(more);
    Ok(crate::http::pagination::page_response(&req, page, items, total))
}

/// `GET /projects/:id/repository/commits/:sha` (a SHA, branch or tag).
pub async fn commit(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (project, path) = readable(&req, &spur).await?;
    let name = segment(&req, "sha");
    let with_stats = super::Query::of(&req)
        .get("stats")
        .is_none_or(|v| crate::http::params::truthy(&v) != Some(false));
    let _permit = crate::git::GIT_WORK.acquire().await.map_err(ApiError::internal)?;
    let s = spur.clone();
    let (sha, stats) = blocking(move || {
        let sha = commit_of(&s, &path, &name, "Commit")?;
        let stats = if with_stats {
            Some(s.repos.commit_stats(&path, &sha).map_err(ApiError::internal)?)
        } else {
            None
        };
        Ok((sha, stats))
    })
    .await?;
    let mut body = views::commit(&spur, &project, &sha);
    // GitLab's `CommitDetail`: the stats, and the newest pipeline of the commit.
    let filter = crate::storage::PipelineFilter {
        sha: Some(sha.clone()),
        ..Default::default()
    };
    let order = crate::storage::PipelineOrder::Id;
    let (last, _) = spur.store.project_pipelines(project.id, &filter, order, true, 0, 1)?;
    if let Some(obj) = body.as_object_mut() {
        if let Some((added, deleted)) = stats {
            obj.insert(
                "stats".into(),
                serde_json::json!({"additions": added, "deletions": deleted, "total": added + deleted}),
            );
        }
        let last = last.first();
        obj.insert("status".into(), serde_json::json!(last.map(|p| p.status.as_str())));
        obj.insert("project_id".into(), serde_json::json!(project.id));
        obj.insert(
            "last_pipeline".into(),
            serde_json::json!(last.map(|p| views::pipeline_basic(&spur, &project, p))),
        );
    }
    Ok(json_response(StatusCode::OK, &body))
}

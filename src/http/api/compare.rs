//! What lies between commits: `GET /projects/:id/repository/compare`, a commit's `refs`, and
//! `GET /projects/:id/repository/archive[.format]` streamed from `git archive`.

use super::{Query, segment};
use crate::domain::{AccessLevel, Project, Visibility};
use crate::git::{Comparison, FileDiff};
use crate::http::error::ApiError;
use crate::http::pagination::paginated;
use crate::http::{State, caller, json_response, views, visible_project};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::path::PathBuf;
use tokio::io::AsyncReadExt;

/// The project and its repository, if the caller may read its code.
async fn readable(req: &HttpRequest, spur: &State) -> Result<(Project, PathBuf), ApiError> {
    let actor = caller(req, spur).await?;
    let (project, access) = visible_project(spur, &segment(req, "id"), actor.as_ref())?;
    if !access.at_least(AccessLevel::Reporter) && project.visibility == Visibility::Private {
        return Err(ApiError::forbidden());
    }
    let path = spur
        .repos
        .path_of(&project.repo_name, &crate::git::Origin::of(&project));
    Ok((project, path))
}

fn diff_view(d: &FileDiff) -> Value {
    json!({
        "old_path": d.old_path,
        "new_path": d.new_path,
        "a_mode": d.a_mode,
        "b_mode": d.b_mode,
        "diff": d.diff,
        "new_file": d.new_file,
        "renamed_file": d.renamed_file,
        "deleted_file": d.deleted_file,
        "generated_file": false,
    })
}

/// `GET /projects/:id/repository/compare?from=&to=&straight=`: GitLab's `Compare` entity, or
/// `404 Ref Not Found`.
pub async fn compare(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (project, path) = readable(&req, &spur).await?;
    let q = Query::of(&req);
    let (from, to) = (q.get("from"), q.get("to"));
    let missing: Vec<&str> = [("from", &from), ("to", &to)]
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    if !missing.is_empty() {
        let text = missing.iter().map(|k| format!("{k} is missing")).collect::<Vec<_>>();
        return Err(ApiError::Params(text.join(", ")));
    }
    let (from, to) = (from.unwrap_or_default(), to.unwrap_or_default());
    let straight = match q.get("straight") {
        None => false,
        Some(s) => crate::http::params::truthy(&s).ok_or_else(|| ApiError::Params("straight is invalid".into()))?,
    };
    let _permit = crate::git::GIT_WORK.acquire().await.map_err(ApiError::internal)?;
    let s = spur.clone();
    let (f, t) = (from.clone(), to.clone());
    let found: Option<Comparison> = web::block(move || {
        let a = s.repos.resolve_any(&path, &f).ok()?;
        let b = s.repos.resolve_any(&path, &t).ok()?;
        s.repos.compare(&path, &a.sha, &b.sha, straight).ok()
    })
    .await
    .map_err(ApiError::internal)?;
    let Some(cmp) = found else {
        return Err(ApiError::not_found("Ref"));
    };
    let commits: Vec<Value> = cmp.commits.iter().map(|c| views::commit(&spur, &project, c)).collect();
    let body = json!({
        "commit": commits.last(),
        "commits": commits,
        "diffs": cmp.diffs.iter().map(diff_view).collect::<Vec<_>>(),
        "compare_timeout": cmp.overflow,
        "compare_same_ref": cmp.same,
        "web_url": spur.url(&format!("{}/-/compare/{from}...{to}", project.full_path)),
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /projects/:id/repository/commits/:sha/refs?type=branch|tag|all`.
pub async fn commit_refs(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (_, path) = readable(&req, &spur).await?;
    let kind = Query::of(&req).get("type").unwrap_or_else(|| "all".into());
    if !matches!(kind.as_str(), "branch" | "tag" | "all") {
        return Err(ApiError::Params("type does not have a valid value".into()));
    }
    let name = segment(&req, "sha");
    let _permit = crate::git::GIT_WORK.acquire().await.map_err(ApiError::internal)?;
    let s = spur.clone();
    let found = web::block(move || {
        let commit = s.repos.resolve_any(&path, &name).ok()?;
        Some(s.repos.refs_containing(&path, &commit.sha))
    })
    .await
    .map_err(ApiError::internal)?;
    let (branches, tags) = found
        .ok_or_else(|| ApiError::not_found("Commit"))?
        .map_err(ApiError::internal)?;
    let mut items = Vec::new();
    if kind != "tag" {
        items.extend(branches.iter().map(|b| json!({"type": "branch", "name": b})));
    }
    if kind != "branch" {
        items.extend(tags.iter().map(|t| json!({"type": "tag", "name": t})));
    }
    paginated(&req, items)
}

/// GitLab's archive formats, by the name asked for (unknown ones get `tar.gz`, as GitLab does).
fn archive_format(asked: &str) -> &'static str {
    match asked {
        "tar" => "tar",
        "zip" => "zip",
        "tar.bz2" | "tbz" | "tbz2" | "tb2" | "bz2" => "tar.bz2",
        _ => "tar.gz",
    }
}

/// `GET /projects/:id/repository/archive[.format]?sha=&path=`: the tree of a ref, a commit or
/// the default branch, as `<project>-<ref>-<sha>.<format>`, streamed.
pub async fn archive(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let (project, path) = readable(&req, &spur).await?;
    let format = archive_format(req.match_info().get("format").unwrap_or("tar.gz"));
    let q = Query::of(&req);
    let asked = q
        .get("sha")
        .or_else(|| project.default_branch.clone())
        .unwrap_or_else(|| "HEAD".into());
    let s = spur.clone();
    let p = path.clone();
    let a = asked.clone();
    let commit = web::block(move || s.repos.resolve_any(&p, &a).ok())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("Ref"))?;
    let file_name: String = project
        .full_path
        .rsplit('/')
        .next()
        .unwrap_or("archive")
        .chars()
        .chain("-".chars())
        .chain(asked.replace('/', "-").chars())
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    // `path`: only that folder or file, named in the prefix as GitLab does.
    let only = match q.get("path") {
        None => None,
        Some(p) => {
            let p = p.trim_matches('/').to_string();
            let parts_ok = !p.split('/').any(|c| c.is_empty() || c == "." || c == "..");
            let clean = !p.is_empty() && parts_ok && !p.contains('\0');
            if !clean || !spur.repos.path_exists(&path, &commit.sha, &p) {
                return Err(ApiError::not_found("File"));
            }
            Some(p)
        }
    };
    let mut prefix = format!("{file_name}-{}", commit.sha);
    if let Some(p) = &only {
        let part: String = p
            .replace('/', "-")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        prefix = format!("{prefix}-{part}");
    }
    let archive = spur
        .repos
        .archive_command(&path, &commit.sha, format, &prefix, only.as_deref());
    let Some(mut command) = archive else {
        return Err(ApiError::internal("archive format"));
    };
    // The permit travels with the stream: it is given back when the archive ends or the
    // client goes away.
    let permit = crate::git::GIT_WORK.acquire().await.map_err(ApiError::internal)?;
    let mut child = command.spawn().map_err(ApiError::internal)?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| ApiError::internal("git archive: no output"))?;
    let state = (stdout, Some(child), Some(permit));
    let body = futures_util::stream::unfold(state, |(mut out, mut child, mut permit)| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match out.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if let Some(mut c) = child.take() {
                    let _ = c.wait().await;
                }
                drop(permit.take());
                None
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(web::Bytes::from(buf)), (out, child, permit)))
            }
        }
    });
    let content_type = match format {
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        "tar.bz2" => "application/x-bzip2",
        _ => "application/gzip",
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{prefix}.{format}\""),
        ))
        .streaming(body))
}

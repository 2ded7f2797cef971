//! Creating and deleting branches and tags of a hosted project through the API, as a push
//! would: the same protected-ref rights, then `push::sync`, so a new branch or tag gets its
//! push pipeline. Ref names are checked with git's rules and passed after `--`-free positions
//! as full `refs/...` names; mirrors follow their origin and refuse. Knows nothing of HTTP.

use crate::auth::ProjectAccess;
use crate::context::Spur;
use crate::domain::{Project, User};
use crate::git::{Origin, valid_ref_name};
use crate::protected_refs::RefUpdate;
use std::sync::Arc;

/// Why a ref change was refused (GitLab's texts; the API picks the status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefRefusal {
    /// 400: a bad name or target, an existing ref, a mirror.
    Invalid(String),
    /// 403: protected, or not allowed to push.
    Forbidden(String),
    /// 404: no such ref.
    NotFound,
    /// 405: the default branch.
    NotAllowed(String),
}

fn repository(spur: &Spur, project: &Project) -> std::path::PathBuf {
    spur.repos.path_of(&project.repo_name, &Origin::of(project))
}

async fn git(repo: &std::path::Path, args: &[&str]) -> Result<(), String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .await
        .map_err(|e| format!("git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Checks what every change needs: a hosted project, a valid name, push rights.
fn check(
    spur: &Spur,
    project: &Project,
    access: &ProjectAccess,
    name: &str,
    tag: bool,
    update: RefUpdate,
) -> Result<(), RefRefusal> {
    if project.import_url.is_some() {
        return Err(RefRefusal::Invalid(
            "This project is a mirror: its branches and tags follow its origin".into(),
        ));
    }
    let full = format!("refs/{}/{name}", if tag { "tags" } else { "heads" });
    // GitLab's `GitRefValidator`: no `HEAD`, no names that spell another ref.
    let reserved = name == "HEAD"
        || name == "@"
        || ["refs/heads/", "refs/tags/", "refs/remotes/"]
            .iter()
            .any(|p| name.starts_with(p));
    if reserved || name.starts_with('-') || !valid_ref_name(&full) {
        return Err(RefRefusal::Invalid(format!(
            "{} name is invalid",
            if tag { "Tag" } else { "Branch" }
        )));
    }
    match crate::protected_refs::may_push(spur, project.id, name, tag, update, access) {
        Ok(true) => Ok(()),
        Ok(false) if tag => Err(RefRefusal::Forbidden(
            "You are not allowed to create or delete this protected tag".into(),
        )),
        Ok(false) => Err(RefRefusal::Forbidden(
            "You are not allowed to push into this branch".into(),
        )),
        Err(e) => Err(RefRefusal::Invalid(e)),
    }
}

/// Creates branch `name` (or an annotated tag when `tag` and `message` is given, else a
/// lightweight one) at `target` (a ref or SHA), then runs push pipelines as `user`.
pub async fn create(
    spur: Arc<Spur>,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    name: &str,
    target: &str,
    tag: Option<Option<String>>,
) -> Result<Result<(), RefRefusal>, String> {
    let is_tag = tag.is_some();
    if let Err(r) = check(&spur, project, access, name, is_tag, RefUpdate::Create) {
        return Ok(Err(r));
    }
    let repo = repository(&spur, project);
    let Ok(resolved) = spur.repos.resolve_any(&repo, target) else {
        return Ok(Err(RefRefusal::Invalid(if is_tag {
            "Target ref is invalid".into()
        } else {
            "Invalid reference name".into()
        })));
    };
    let full = format!("refs/{}/{name}", if is_tag { "tags" } else { "heads" });
    let other = format!("refs/{}/{name}", if is_tag { "heads" } else { "tags" });
    if spur.repos.resolve(&repo, &other).is_ok() {
        // A branch and a tag of one name make every use of it ambiguous.
        return Ok(Err(RefRefusal::Invalid(format!(
            "A {} named {name} already exists",
            if is_tag { "branch" } else { "tag" }
        ))));
    }
    let exists = spur.repos.resolve(&repo, &full).is_ok();
    if exists {
        return Ok(Err(RefRefusal::Invalid(if is_tag {
            format!("Tag {name} already exists")
        } else {
            "Branch already exists".into()
        })));
    }
    let done = match tag {
        Some(Some(message)) if !message.is_empty() => {
            let identity = format!("user.name={}", user.name);
            let email = format!("user.email={}", user.email);
            git(
                &repo,
                &[
                    "-c",
                    &identity,
                    "-c",
                    &email,
                    "tag",
                    "-a",
                    "-m",
                    &message,
                    name,
                    &resolved.sha,
                ],
            )
            .await
        }
        // An empty old value: git refuses if the ref appeared meanwhile.
        _ => git(&repo, &["update-ref", &full, &resolved.sha, ""]).await,
    };
    if let Err(e) = done {
        return Ok(Err(RefRefusal::Invalid(e)));
    }
    crate::push::sync(spur, project.id, Some(user.id)).await?;
    Ok(Ok(()))
}

/// Deletes branch or tag `name` (never the default branch), as `user`.
pub async fn delete(
    spur: Arc<Spur>,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    name: &str,
    tag: bool,
) -> Result<Result<(), RefRefusal>, String> {
    if let Err(r) = check(&spur, project, access, name, tag, RefUpdate::Delete) {
        return Ok(Err(r));
    }
    if !tag && project.default_branch.as_deref() == Some(name) {
        return Ok(Err(RefRefusal::NotAllowed(
            "The default branch of a project cannot be deleted.".into(),
        )));
    }
    let repo = repository(&spur, project);
    let full = format!("refs/{}/{name}", if tag { "tags" } else { "heads" });
    if spur.repos.resolve(&repo, &full).is_err() {
        return Ok(Err(RefRefusal::NotFound));
    }
    if let Err(e) = git(&repo, &["update-ref", "-d", &full]).await {
        return Ok(Err(RefRefusal::Invalid(e)));
    }
    crate::push::sync(spur, project.id, Some(user.id)).await?;
    Ok(Ok(()))
}

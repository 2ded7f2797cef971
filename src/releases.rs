//! Releases (`/projects/:id/releases` and the `release:` keyword): one a tag, made from an
//! existing tag or a new one cut from `ref` (with the tag's protection rules), with asset links.
//! The one owner of release changes; knows nothing of HTTP.

use crate::auth::ProjectAccess;
use crate::context::Spur;
use crate::domain::{Millis, Project, Release, ReleaseLink, User};
use std::sync::Arc;

/// Most asset links a release keeps.
pub const MAX_LINKS: usize = 100;
/// Most bytes of a release's description.
const MAX_DESCRIPTION: usize = 1_000_000;

/// Why a change was refused, with GitLab's status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 400: a field is wrong.
    Invalid(String),
    /// 403: the caller may not change this tag.
    Forbidden(String),
    /// 404: no such release or link.
    NotFound(&'static str),
    /// 409: the tag has a release already.
    Conflict(String),
    /// 422: the request cannot be done as asked (`Ref is not specified`).
    Unprocessable(String),
}

/// A release asked for.
#[derive(Debug, Clone, Default)]
pub struct NewRelease {
    /// `tag_name`.
    pub tag_name: String,
    /// `name` (the tag's name when absent).
    pub name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `ref`: where a missing tag is cut from.
    pub reference: Option<String>,
    /// `tag_message`: makes a new tag an annotated one.
    pub tag_message: Option<String>,
    /// `released_at` (now when absent).
    pub released_at: Option<Millis>,
    /// `assets:links`.
    pub links: Vec<ReleaseLink>,
}

/// Checks a link (`id` aside) against the release's others.
pub fn check_link(link: &ReleaseLink, others: &[ReleaseLink]) -> Result<(), Refusal> {
    let lower = link.url.to_ascii_lowercase();
    let scheme_ok = ["http://", "https://", "ftp://"]
        .iter()
        .any(|s| lower.starts_with(s) && lower.len() > s.len());
    if !scheme_ok || link.url.len() > 2048 || link.url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Refusal::Invalid(
            "url is blocked: Only allowed schemes are http, https, ftp".into(),
        ));
    }
    if link.name.trim().is_empty() || link.name.len() > 255 {
        return Err(Refusal::Invalid("name can't be blank".into()));
    }
    if !["other", "runbook", "image", "package"].contains(&link.link_type.as_str()) {
        return Err(Refusal::Invalid("link_type does not have a valid value".into()));
    }
    if let Some(path) = &link.direct_asset_path
        && (path.len() > 1024 || path.contains("..") || path.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(Refusal::Invalid("direct_asset_path is invalid".into()));
    }
    for other in others.iter().filter(|o| o.id != link.id || link.id == 0) {
        if other.name == link.name {
            return Err(Refusal::Invalid("name has already been taken".into()));
        }
        if other.url == link.url {
            return Err(Refusal::Invalid("url has already been taken".into()));
        }
    }
    Ok(())
}

fn check_text(name: Option<&String>, description: Option<&String>) -> Result<(), Refusal> {
    if name.is_some_and(|n| n.len() > 255) {
        return Err(Refusal::Invalid("name is too long (maximum is 255 characters)".into()));
    }
    if description.is_some_and(|d| d.len() > MAX_DESCRIPTION) {
        return Err(Refusal::Invalid(format!(
            "description is too long (maximum is {MAX_DESCRIPTION} characters)"
        )));
    }
    Ok(())
}

/// Creates a release by `user`: of the tag if it exists, else of a new tag cut from
/// `reference` (refused as the tag API would refuse it).
pub async fn create(
    spur: Arc<Spur>,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    new: NewRelease,
) -> Result<Result<Release, Refusal>, String> {
    if new.tag_name.trim().is_empty() {
        return Ok(Err(Refusal::Invalid("tag_name is missing".into())));
    }
    if let Err(r) = check_text(new.name.as_ref(), new.description.as_ref()) {
        return Ok(Err(r));
    }
    if new.links.len() > MAX_LINKS {
        return Ok(Err(Refusal::Invalid(format!(
            "a release keeps at most {MAX_LINKS} links"
        ))));
    }
    for (i, link) in new.links.iter().enumerate() {
        if let Err(r) = check_link(link, &new.links[..i]) {
            return Ok(Err(r));
        }
    }
    if spur
        .store
        .release(project.id, &new.tag_name)
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(Err(Refusal::Conflict("Release already exists".into())));
    }
    let repo = spur.repos.path_of(&project.repo_name, &crate::git::Origin::of(project));
    let full = format!("refs/tags/{}", new.tag_name);
    if spur.repos.resolve(&repo, &full).is_err() {
        let Some(reference) = new.reference.clone().filter(|r| !r.is_empty()) else {
            return Ok(Err(Refusal::Unprocessable("Ref is not specified".into())));
        };
        let made = crate::refs::create(
            spur.clone(),
            project,
            user,
            access,
            &new.tag_name,
            &reference,
            Some(new.tag_message.clone()),
        )
        .await?;
        if let Err(r) = made {
            use crate::refs::RefRefusal;
            return Ok(Err(match r {
                RefRefusal::Forbidden(m) => Refusal::Forbidden(m),
                RefRefusal::NotFound => Refusal::NotFound("Ref"),
                RefRefusal::Invalid(m) | RefRefusal::NotAllowed(m) => Refusal::Invalid(m),
            }));
        }
    }
    let sha = match spur.repos.resolve(&repo, &full) {
        Ok(r) => r.sha,
        Err(_) => return Ok(Err(Refusal::NotFound("Tag"))),
    };
    let now = crate::clock::now();
    let release = Release {
        project_id: project.id,
        name: new
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| new.tag_name.clone()),
        tag_name: new.tag_name,
        description: new.description.unwrap_or_default(),
        sha,
        author_id: user.id,
        created_at: now,
        released_at: new.released_at.unwrap_or(now),
        links: new.links,
    };
    match spur.store.create_release(release).await.map_err(|e| e.to_string())? {
        Some(r) => {
            tracing::info!(project_id = project.id, tag = %r.tag_name, "release created");
            Ok(Ok(r))
        }
        None => Ok(Err(Refusal::Conflict("Release already exists".into()))),
    }
}

/// Applies `change` to the release of `tag` and stores it; refused changes change nothing.
pub async fn change(
    spur: &Spur,
    project_id: u64,
    tag: &str,
    change: impl FnOnce(&mut Release) -> Result<(), Refusal>,
) -> Result<Result<Release, Refusal>, String> {
    let Some(mut release) = spur.store.release(project_id, tag).map_err(|e| e.to_string())? else {
        return Ok(Err(Refusal::NotFound("Release")));
    };
    if let Err(r) = change(&mut release) {
        return Ok(Err(r));
    }
    if let Err(r) = check_text(Some(&release.name), Some(&release.description)) {
        return Ok(Err(r));
    }
    if release.links.len() > MAX_LINKS {
        return Ok(Err(Refusal::Invalid(format!(
            "a release keeps at most {MAX_LINKS} links"
        ))));
    }
    Ok(spur
        .store
        .save_release(release)
        .await
        .map_err(|e| e.to_string())?
        .ok_or(Refusal::NotFound("Release")))
}

/// Deletes the release of `tag` (its tag stays); the release, or `NotFound`.
pub async fn delete(spur: &Spur, project_id: u64, tag: &str) -> Result<Result<Release, Refusal>, String> {
    Ok(spur
        .store
        .delete_release(project_id, tag.to_string())
        .await
        .map_err(|e| e.to_string())?
        .ok_or(Refusal::NotFound("Release")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, url: &str) -> ReleaseLink {
        ReleaseLink {
            id: 0,
            name: name.into(),
            url: url.into(),
            direct_asset_path: None,
            link_type: "other".into(),
        }
    }

    #[test]
    fn links_follow_gitlabs_rules() {
        assert!(check_link(&link("bin", "https://example.com/bin"), &[]).is_ok());
        assert!(check_link(&link("bin", "ftp://example.com/bin"), &[]).is_ok());
        assert!(check_link(&link("bin", "javascript:alert(1)"), &[]).is_err());
        assert!(check_link(&link("bin", "https://"), &[]).is_err());
        assert!(check_link(&link(" ", "https://example.com"), &[]).is_err());
        let taken = [link("bin", "https://example.com/a")];
        assert!(check_link(&link("bin", "https://example.com/b"), &taken).is_err());
        assert!(check_link(&link("other", "https://example.com/a"), &taken).is_err());
        let mut odd = link("x", "https://example.com/x");
        odd.link_type = "virus".into();
        assert!(check_link(&odd, &[]).is_err());
        odd.link_type = "package".into();
        odd.direct_asset_path = Some("/../../etc".into());
        assert!(check_link(&odd, &[]).is_err());
    }
}

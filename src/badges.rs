//! Project badges (`/projects/:id/badges`): a link and an image whose URLs may hold GitLab's
//! `%{...}` placeholders, rendered for the project. The one owner of badge changes; knows
//! nothing of HTTP.

use crate::context::Spur;
use crate::domain::{Badge, Project};
use crate::git::Origin;

/// Why a badge was refused: the field and GitLab's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeRefusal(pub &'static str, pub String);

/// The placeholders GitLab renders in badge URLs.
const PLACEHOLDERS: [&str; 11] = [
    "project_path",
    "project_title",
    "project_name",
    "project_id",
    "project_namespace",
    "group_name",
    "gitlab_server",
    "gitlab_pages_domain",
    "default_branch",
    "commit_sha",
    "latest_tag",
];

/// Whether `url` is an http(s) URL with a host, once its placeholders are set aside.
fn valid_url(url: &str) -> bool {
    let plain = PLACEHOLDERS
        .iter()
        .fold(url.to_string(), |u, p| u.replace(&format!("%{{{p}}}"), "x"));
    let lower = plain.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/'))
        && url.len() <= 2048
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
}

/// Checks a badge's fields.
pub fn check(badge: &Badge) -> Result<(), BadgeRefusal> {
    for (field, url) in [("link_url", &badge.link_url), ("image_url", &badge.image_url)] {
        if !valid_url(url) {
            return Err(BadgeRefusal(field, "must be a valid URL".into()));
        }
    }
    if badge.name.as_ref().is_some_and(|n| n.len() > 255) {
        return Err(BadgeRefusal("name", "is too long (maximum is 255 characters)".into()));
    }
    Ok(())
}

/// Stores a new badge.
pub async fn create(spur: &Spur, badge: Badge) -> Result<Result<Badge, BadgeRefusal>, crate::storage::Error> {
    if let Err(r) = check(&badge) {
        return Ok(Err(r));
    }
    Ok(spur
        .store
        .create_badge(badge)
        .await?
        .ok_or_else(|| BadgeRefusal("base", "The project has as many badges as it may keep".into())))
}

/// Replaces a badge; `Ok(false)` when it is gone.
pub async fn update(spur: &Spur, badge: Badge) -> Result<Result<bool, BadgeRefusal>, crate::storage::Error> {
    if let Err(r) = check(&badge) {
        return Ok(Err(r));
    }
    Ok(Ok(spur.store.update_badge(badge).await?))
}

/// Deletes a badge; false when there was none.
pub async fn delete(spur: &Spur, project_id: u64, badge_id: u64) -> Result<bool, crate::storage::Error> {
    spur.store.delete_badge(project_id, badge_id).await
}

/// What each placeholder stands for in `project` (read once per rendering).
pub struct Placeholders(Vec<(&'static str, String)>);

impl Placeholders {
    /// The values for `project`; the commit and tag are read from its repository (blocking).
    pub fn of(spur: &Spur, project: &Project) -> Placeholders {
        let path = spur.repos.path_of(&project.repo_name, &Origin::of(project));
        let branch = project.default_branch.clone().unwrap_or_default();
        let sha = spur.repos.resolve(&path, &branch).map(|r| r.sha).unwrap_or_default();
        let latest_tag = spur
            .repos
            .list_refs(&path, true)
            .unwrap_or_default()
            .into_iter()
            .max_by_key(|t| {
                spur.repos
                    .commit_info(&path, &t.sha)
                    .map(|c| c.committed_at)
                    .unwrap_or(0)
            })
            .map(|t| t.name)
            .unwrap_or_default();
        let namespace = project.full_path.rsplit_once('/').map_or("", |(ns, _)| ns).to_string();
        let group = spur
            .store
            .namespace(project.namespace_id)
            .ok()
            .flatten()
            .filter(|ns| ns.kind == crate::domain::NamespaceKind::Group)
            .map(|ns| ns.path)
            .unwrap_or_default();
        let server = spur
            .external_url
            .split("://")
            .nth(1)
            .unwrap_or("")
            .split(['/', ':'])
            .next()
            .unwrap_or("")
            .to_string();
        Placeholders(vec![
            ("project_path", project.full_path.clone()),
            ("project_title", project.name.clone()),
            ("project_name", project.path.clone()),
            ("project_id", project.id.to_string()),
            ("project_namespace", namespace),
            ("group_name", group),
            ("gitlab_server", server),
            ("gitlab_pages_domain", String::new()),
            ("default_branch", branch),
            ("commit_sha", sha),
            ("latest_tag", latest_tag),
        ])
    }

    /// `url` with every placeholder replaced.
    pub fn render(&self, url: &str) -> String {
        self.0
            .iter()
            .fold(url.to_string(), |u, (k, v)| u.replace(&format!("%{{{k}}}"), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(valid_url("https://img.shields.io/%{project_path}/badge.svg"));
        assert!(valid_url("http://%{gitlab_server}/x"));
        assert!(valid_url("HTTPS://Example.com/x.svg"));
        assert!(!valid_url("https://x/\"><script>"));
        for bad in [
            "javascript:alert(1)",
            "ftp://x/y",
            "https://",
            "https:///x",
            "https://a b",
        ] {
            assert!(!valid_url(bad), "{bad}");
        }
    }

    #[test]
    fn placeholders_render() {
        let p = Placeholders(vec![("project_path", "g/p".into()), ("commit_sha", "abc".into())]);
        assert_eq!(
            p.render("https://x/%{project_path}/-/%{commit_sha}/%{nope}"),
            "https://x/g/p/-/abc/%{nope}"
        );
    }
}

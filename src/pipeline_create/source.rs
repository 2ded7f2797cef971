//! The repository a pipeline is planned from, as its user may read it: the commit's files,
//! other projects for `include:project` and components, the push's diff and `compare_to`.

use crate::ci_config::compose::{self, FileSource};
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, Project, User, Visibility};
use crate::git::{CommitFiles, Origin};
use std::sync::Arc;

/// Configuration files as a pipeline's user may read them: its own repository at the commit,
/// and for `include:project` other projects the user may download code from (Reporter+, or
/// any signed-in user for public and internal projects).
pub struct RepoSource<'a> {
    /// The server.
    pub spur: &'a Spur,
    /// The user the pipeline runs as.
    pub user: Option<&'a User>,
    /// The repository's files at the commit.
    pub files: Arc<CommitFiles>,
    /// Text that stands in for `.gitlab-ci.yml` (a child pipeline's includes).
    pub main_config: Option<String>,
    /// The repository on disk (for `changes:compare_to`).
    pub repository: Option<std::path::PathBuf>,
    /// The paths a push changed (push pipelines of existing branches only).
    pub pushed: Option<Vec<String>>,
}

/// A child pipeline's configuration: its `trigger:include` files, included locally with their
/// inputs (each entry written as JSON, which YAML reads as it is).
pub(super) fn child_config(files: &[(String, serde_json::Value)]) -> String {
    let mut text = String::from("include:\n");
    for (path, inputs) in files {
        let mut entry = serde_json::Map::new();
        entry.insert("local".into(), serde_json::Value::String(path.clone()));
        if !inputs.is_null() {
            entry.insert("inputs".into(), inputs.clone());
        }
        text.push_str(&format!("  - {}\n", serde_json::Value::Object(entry)));
    }
    text
}

impl FileSource for RepoSource<'_> {
    fn read(&self, path: &str) -> Option<String> {
        match (&self.main_config, path) {
            (Some(text), ".gitlab-ci.yml") => Some(text.clone()),
            _ => self.files.read(path),
        }
    }

    fn files(&self) -> Vec<String> {
        self.files.paths().to_vec()
    }

    fn pushed_changes(&self) -> Option<Vec<String>> {
        self.pushed.clone()
    }

    fn changed_since(&self, reference: &str) -> Result<Option<Vec<String>>, compose::UnknownRef> {
        let Some(repository) = &self.repository else {
            return Ok(None);
        };
        let resolved = self
            .spur
            .repos
            .resolve(repository, reference)
            .map_err(|_| compose::UnknownRef)?;
        let theirs = self
            .spur
            .repos
            .commit_files(repository, &resolved.sha)
            .map_err(|_| compose::UnknownRef)?;
        Ok(Some(self.files.changed_against(&theirs)))
    }

    fn remote(&self, url: &str) -> Result<String, String> {
        if let Some(text) = self.spur.remote_includes.get(url) {
            return Ok(text.to_string());
        }
        // Planning runs on the blocking pool: wait there for the async fetch.
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| format!("Remote file `{url}` could not be fetched: no runtime"))?;
        let text = handle.block_on(crate::outbound::fetch_text(
            self.spur.outbound.clone(),
            url,
            crate::ci_config::yaml::MAX_YAML_BYTES,
            std::time::Duration::from_secs(10),
        ))?;
        self.spur.remote_includes.put(url, Arc::from(text.as_str()));
        Ok(text)
    }

    fn project_tags(&self, path: &str) -> Vec<String> {
        self.readable_repository(path)
            .ok()
            .and_then(|(_, repository)| self.spur.repos.tags(&repository).ok())
            .unwrap_or_default()
    }

    fn project(&self, path: &str, ref_name: Option<&str>) -> Result<Box<dyn FileSource + '_>, String> {
        let (project, repository) = self.readable_repository(path)?;
        let wanted = ref_name
            .map(str::to_string)
            .or_else(|| project.default_branch.clone())
            .unwrap_or_else(|| "HEAD".into());
        let resolved = self
            .spur
            .repos
            .resolve(&repository, &wanted)
            .ok()
            .or_else(|| self.spur.repos.resolve_sha(&repository, &wanted))
            .ok_or_else(|| {
                format!(
                    "Project `{path}` reference `{}` does not exist!",
                    ref_name.unwrap_or("HEAD")
                )
            })?;
        let files = self.spur.repos.commit_files(&repository, &resolved.sha)?;
        Ok(Box::new(RepoSource {
            spur: self.spur,
            user: self.user,
            files,
            main_config: None,
            repository: Some(repository),
            pushed: None,
        }))
    }
}

impl RepoSource<'_> {
    /// Project `path` and its repository, when the pipeline's user may download its code
    /// (Reporter+, or any signed-in user for public and internal projects); GitLab's
    /// indistinguishable not-found otherwise.
    fn readable_repository(&self, path: &str) -> Result<(Project, std::path::PathBuf), String> {
        let not_found = || compose::project_not_found(path);
        let project = self
            .spur
            .store
            .project_by_path(path)
            .map_err(|e| e.to_string())?
            .ok_or_else(not_found)?;
        let access = crate::auth::project_access(&self.spur.store, self.user, &project, clock::now())
            .map_err(|e| e.to_string())?;
        let may_download =
            access.at_least(AccessLevel::Reporter) || (access.can_read && project.visibility != Visibility::Private);
        if !may_download {
            return Err(not_found());
        }
        let repository = self.spur.repos.path_of(&project.repo_name, &Origin::of(&project));
        Ok((project, repository))
    }
}

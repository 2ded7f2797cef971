//! A job's working folders under `<data-dir>/builds/`: the checkout of the pipeline's commit
//! (with `.git`, a `--shared` clone of the project's repository), a private folder for file
//! variables and `HOME`, and the per-project cache under `<data-dir>/cache/`. Removed when the
//! job ends; leftovers of a crash are removed on start.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use super::job_user::JobUser;

/// The folders of one running job.
pub struct Workspace {
    /// The checkout (`CI_PROJECT_DIR`).
    pub project_dir: PathBuf,
    /// Private files: file variables, `HOME`, the generated scripts.
    pub private_dir: PathBuf,
    /// The user the job runs as, when not spur's own: its files are handed over.
    pub owner: Option<JobUser>,
    /// Whether the checkout needs objects of its own (the job cannot see spur's mirrors:
    /// another user, or a sandbox that hides the data dir).
    pub own_objects: bool,
}

/// The folder holding every job's workspace (`CI_BUILDS_DIR`).
pub fn builds_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("builds")
}

/// Removes workspaces left by a previous run.
pub fn clean_builds_dir(data_dir: &Path) {
    let dir = builds_dir(data_dir);
    let _ = fs::remove_dir_all(&dir);
    if let Err(e) = fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot create the builds folder");
    }
}

impl Workspace {
    /// Creates the folders of job `job_id` (the private one readable by its owner only).
    pub fn create(data_dir: &Path, job_id: u64, owner: Option<JobUser>, sandboxed: bool) -> io::Result<Workspace> {
        let builds = builds_dir(data_dir);
        let ws = Workspace {
            project_dir: builds.join(job_id.to_string()),
            private_dir: builds.join(format!("{job_id}.tmp")),
            own_objects: owner.is_some() || sandboxed,
            owner,
        };
        let _ = fs::remove_dir_all(&ws.project_dir);
        let _ = fs::remove_dir_all(&ws.private_dir);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&ws.private_dir)?;
        fs::create_dir_all(ws.private_dir.join("home"))?;
        if let Some(user) = &ws.owner {
            user.give(&ws.private_dir)?;
        }
        Ok(ws)
    }

    /// Checks out `sha` of `repository` into the project folder, `.git` included. The `.git` is
    /// what `git clone --shared` makes (objects borrowed through `objects/info/alternates`, an
    /// `origin` remote), written directly, so that one `git checkout` process does the rest.
    pub fn checkout(&self, repository: &Path, sha: &str) -> Result<(), String> {
        if self.own_objects {
            // The job cannot read spur's mirrors (another user, or a sandbox): its checkout
            // gets its own objects (hard links where the file system allows).
            let target = self.project_dir.to_string_lossy().to_string();
            let source = repository.to_string_lossy().to_string();
            git(
                None,
                &["clone", "--quiet", "--local", "--no-checkout", &source, &target],
            )?;
            git(
                Some(&self.project_dir),
                &[
                    "-c",
                    "advice.detachedHead=false",
                    "checkout",
                    "--quiet",
                    "--force",
                    "--detach",
                    sha,
                ],
            )?;
            return match &self.owner {
                Some(user) => user.give(&self.project_dir).map_err(|e| e.to_string()),
                None => Ok(()),
            };
        }
        let objects = objects_dir(repository)?;
        let dot_git = self.project_dir.join(".git");
        let write = |path: &str, text: &str| -> Result<(), String> {
            let file = dot_git.join(path);
            if let Some(parent) = file.parent() {
                fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))
        };
        write("objects/info/alternates", &format!("{}\n", objects.display()))?;
        write("HEAD", &format!("{sha}\n"))?;
        write(
            "config",
            &format!(
                "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n[remote \"origin\"]\n\turl = {}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n",
                repository.display()
            ),
        )?;
        for dir in ["refs/heads", "refs/tags", "objects/pack"] {
            fs::create_dir_all(dot_git.join(dir)).map_err(|e| e.to_string())?;
        }
        git(
            Some(&self.project_dir),
            &[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "--quiet",
                "--force",
                "--detach",
                sha,
            ],
        )
    }

    /// Writes a private file (a file variable or a script) and returns its path.
    pub fn private_file(&self, name: &str, contents: &[u8]) -> io::Result<PathBuf> {
        let path = self.private_dir.join(name);
        fs::write(&path, contents)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        if let Some(user) = &self.owner {
            user.give(&path)?;
        }
        Ok(path)
    }

    /// Removes both folders.
    pub fn remove(&self) {
        let _ = fs::remove_dir_all(&self.project_dir);
        let _ = fs::remove_dir_all(&self.private_dir);
    }
}

/// The object store of a repository: `<repo>/.git/objects` for a working copy, `<repo>/objects`
/// for a bare one.
fn objects_dir(repository: &Path) -> Result<PathBuf, String> {
    let candidates = [repository.join(".git").join("objects"), repository.join("objects")];
    candidates
        .into_iter()
        .find(|p| p.is_dir())
        .and_then(|p| p.canonicalize().ok())
        .ok_or_else(|| format!("{} is not a git repository spur can read", repository.display()))
}

fn git(dir: Option<&Path>, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// A project's cache folder for `key`.
pub fn cache_dir(data_dir: &Path, project_id: u64, key: &str) -> PathBuf {
    data_dir.join("cache").join(project_id.to_string()).join(key)
}

/// A cache path that stays inside the project folder (no absolute paths, no `..`).
fn safe_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path.trim_end_matches('/'));
    let ok = !p.as_os_str().is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    ok.then(|| p.to_path_buf())
}

/// Copies the cache for `key` into the project folder; answers whether there was one.
pub fn restore_cache(data_dir: &Path, project_id: u64, key: &str, project_dir: &Path) -> io::Result<bool> {
    let dir = cache_dir(data_dir, project_id, key);
    if !dir.is_dir() {
        return Ok(false);
    }
    copy_tree(&dir, project_dir)?;
    Ok(true)
}

/// Saves `paths` of the project folder as the cache for `key`, replacing the old one whole;
/// answers how many of the paths existed.
pub fn save_cache(
    data_dir: &Path,
    project_id: u64,
    key: &str,
    project_dir: &Path,
    paths: &[String],
) -> io::Result<usize> {
    let dir = cache_dir(data_dir, project_id, key);
    let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    fs::create_dir_all(&parent)?;
    let staging = parent.join(format!(".{key}.{}", uuid::Uuid::new_v4()));
    fs::create_dir_all(&staging)?;
    let mut found = 0;
    for path in paths {
        let Some(rel) = safe_relative(path) else { continue };
        let from = project_dir.join(&rel);
        if !from.exists() {
            continue;
        }
        found += 1;
        let to = staging.join(&rel);
        if from.is_dir() {
            copy_tree(&from, &to)?;
        } else {
            if let Some(p) = to.parent() {
                fs::create_dir_all(p)?;
            }
            fs::copy(&from, &to)?;
        }
    }
    let old = parent.join(format!(".{key}.old.{}", uuid::Uuid::new_v4()));
    let had_old = fs::rename(&dir, &old).is_ok();
    fs::rename(&staging, &dir)?;
    if had_old {
        let _ = fs::remove_dir_all(&old);
    }
    Ok(found)
}

/// Copies a folder tree (files, folders and symlinks as links).
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            let link = fs::read_link(entry.path())?;
            let _ = fs::remove_file(&target);
            std::os::unix::fs::symlink(link, &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_paths_stay_inside_the_project() {
        assert!(safe_relative("vendor/").is_some());
        assert!(safe_relative("./node_modules").is_some());
        assert!(safe_relative("../etc").is_none());
        assert!(safe_relative("/etc").is_none());
        assert!(safe_relative("a/../../b").is_none());
        assert!(safe_relative("").is_none());
    }
}

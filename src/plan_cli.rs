//! `spur ci plan`: plans a `.gitlab-ci.yml` from a folder on disk (the repository root is the
//! file's folder) and renders the outcome as JSON, without a server. Other projects that
//! `include:project` names are mapped to local checkouts (`--project-dir group/p=../p`), read
//! at the ref the include names when the checkout is a git repository.

use crate::ci_config::compose::{FileSource, project_not_found};
use crate::ci_config::plan::{Context, MergeRequest, PlanError, plan};
use crate::ci_config::yaml::{Mapping, Yaml};
use serde_json::{Map, Value, json};
use std::path::{Component, Path, PathBuf};

/// What to plan for.
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    /// `CI_PIPELINE_SOURCE`.
    pub source: String,
    /// The ref.
    pub ref_name: String,
    /// Whether the ref is a tag.
    pub tag: bool,
    /// Pipeline variables.
    pub variables: Vec<(String, String)>,
    /// Project CI/CD variables.
    pub project_variables: Vec<(String, String)>,
    /// Values for `spec:inputs`, as text (read as each input's type).
    pub inputs: Vec<(String, String)>,
    /// The project's path (`group/project`); `local/<folder>` when absent.
    pub project_path: Option<String>,
    /// The project's default branch.
    pub default_branch: String,
    /// Whether the ref is protected.
    pub protected: bool,
    /// The server's URL (`CI_SERVER_*`).
    pub server_url: String,
    /// Local checkouts of other projects, by path, for `include:project`.
    pub project_dirs: Vec<(String, PathBuf)>,
    /// Local folders standing in for URL prefixes, for `include:remote`.
    pub remote_dirs: Vec<(String, PathBuf)>,
    /// For `merge_request_event`: the merge request (IID, branches, title).
    pub merge_request: Option<MergeRequest>,
}

/// Plans `config` (a `.gitlab-ci.yml` path) and returns the JSON report; `Err` for a usage error.
pub fn plan_file(config: &Path, request: &PlanRequest) -> Result<Value, String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    let root = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for (path, dir) in &request.project_dirs {
        if !dir.is_dir() {
            return Err(format!("--project-dir {path}={}: not a folder", dir.display()));
        }
    }
    let source = DirSource {
        root: root.to_path_buf(),
        main: Some(text),
        at: None,
        projects: &request.project_dirs,
        remotes: &request.remote_dirs,
    };
    let files = source.files();
    let project = root
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()));
    let merge_request = (request.source == "merge_request_event").then(|| {
        request.merge_request.clone().unwrap_or_else(|| MergeRequest {
            iid: 1,
            source_branch: request.ref_name.clone(),
            target_branch: request.default_branch.clone(),
            ..MergeRequest::default()
        })
    });
    let ctx = Context {
        source: request.source.clone(),
        ref_name: request.ref_name.clone(),
        ref_is_tag: request.tag,
        default_branch: request.default_branch.clone(),
        project_path: request
            .project_path
            .clone()
            .unwrap_or_else(|| format!("local/{}", project.unwrap_or_else(|| "project".into()))),
        project_id: 1,
        sha: "0".repeat(40),
        commit_message: String::new(),
        before_sha: "0".repeat(40),
        pipeline_variables: request.variables.clone(),
        project_variables: request.project_variables.clone(),
        inputs: text_inputs(&request.inputs),
        server_url: request.server_url.clone(),
        ref_protected: request.protected,
        merge_request,
        masked_variables: Vec::new(),
        raw_variables: Vec::new(),
    };
    Ok(match plan(&source, &files, &ctx) {
        Ok(plan) => {
            let jobs: Vec<Value> = plan
                .jobs
                .iter()
                .map(|j| {
                    let variables: Map<String, Value> = j
                        .variables
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    json!({
                        "name": j.name,
                        "stage": j.stage,
                        "when": j.when,
                        "allow_failure": j.allow_failure,
                        "needs": j.needs,
                        "variables": variables,
                    })
                })
                .collect();
            json!({"created": true, "error": null, "stages": plan.stages, "jobs": jobs})
        }
        Err(PlanError::Config(e) | PlanError::Filtered(e) | PlanError::Inputs(e)) => {
            json!({"created": false, "error": e, "stages": [], "jobs": []})
        }
    })
}

/// A folder on disk as a repository: its working tree, or (for another project included at a
/// ref) that ref of its git repository.
struct DirSource<'a> {
    root: PathBuf,
    /// The text standing in for `.gitlab-ci.yml` (the file given on the command line).
    main: Option<String>,
    /// The ref to read with `git`, for an `include:project` with `ref:`.
    at: Option<String>,
    projects: &'a [(String, PathBuf)],
    remotes: &'a [(String, PathBuf)],
}

impl FileSource for DirSource<'_> {
    fn read(&self, path: &str) -> Option<String> {
        if path == ".gitlab-ci.yml"
            && let Some(text) = &self.main
        {
            return Some(text.clone());
        }
        let relative = Path::new(path.trim_start_matches('/'));
        // Only plain relative paths inside the root: never `..` or absolute paths.
        if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            return None;
        }
        match &self.at {
            Some(reference) => git(&self.root, &["show", &format!("{reference}:{}", relative.display())]),
            None => std::fs::read_to_string(self.root.join(relative)).ok(),
        }
    }

    fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.at {
            Some(reference) => {
                if let Some(listing) = git(&self.root, &["ls-tree", "-r", "--name-only", reference]) {
                    out.extend(listing.lines().map(String::from));
                }
            }
            None => list_files(&self.root, &self.root, &mut out),
        }
        out
    }

    fn remote(&self, url: &str) -> Result<String, String> {
        if let Some((prefix, dir)) = self.remotes.iter().find(|(p, _)| url.starts_with(p.as_str())) {
            let relative = Path::new(url[prefix.len()..].trim_start_matches('/'));
            if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(format!("Remote file `{url}` is outside --remote-dir {prefix}"));
            }
            return std::fs::read_to_string(dir.join(relative))
                .map_err(|_| format!("Remote file `{url}` could not be fetched because of HTTP code `404` error!"));
        }
        // From the network, under the same rules as the server's (no local addresses).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("Remote file `{url}` could not be fetched: {e}"))?;
        let policy = std::sync::Arc::new(std::sync::RwLock::new(crate::outbound::Policy::default()));
        runtime.block_on(crate::outbound::fetch_text(
            policy,
            url,
            crate::ci_config::yaml::MAX_YAML_BYTES,
            std::time::Duration::from_secs(10),
        ))
    }

    fn project_tags(&self, path: &str) -> Vec<String> {
        self.projects
            .iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, dir)| git(dir, &["tag", "--list"]))
            .map(|tags| tags.lines().map(String::from).collect())
            .unwrap_or_default()
    }

    fn project(&self, path: &str, ref_name: Option<&str>) -> Result<Box<dyn FileSource + '_>, String> {
        let Some((_, dir)) = self.projects.iter().find(|(p, _)| p == path) else {
            return Err(format!(
                "{} (map it to a local checkout with --project-dir {path}=DIR)",
                project_not_found(path)
            ));
        };
        let at = match ref_name {
            Some(reference) if dir.join(".git").exists() => {
                if git(
                    dir,
                    &["rev-parse", "--verify", "--quiet", &format!("{reference}^{{commit}}")],
                )
                .is_none()
                {
                    return Err(format!("Project `{path}` reference `{reference}` does not exist!"));
                }
                Some(reference.to_string())
            }
            _ => None,
        };
        Ok(Box::new(DirSource {
            root: dir.clone(),
            main: None,
            at,
            projects: self.projects,
            remotes: self.remotes,
        }))
    }
}

/// The output of `git -C dir args...`, or `None` when it fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `NAME=VALUE` pairs as an inputs mapping of text values.
fn text_inputs(pairs: &[(String, String)]) -> Mapping {
    let mut out = Mapping::default();
    for (k, v) in pairs {
        out.insert(k.clone(), Yaml::Str(v.clone()));
    }
    out
}

/// Every file under `dir`, relative to `root`, skipping `.git`.
fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == ".git" {
            continue;
        }
        if path.is_dir() {
            list_files(root, &path, out);
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_string_lossy().to_string());
        }
    }
}

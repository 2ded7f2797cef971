//! `spur ci plan`: plans a `.gitlab-ci.yml` from a folder on disk (the repository root is the
//! file's folder) and renders the outcome as JSON, without a server.

use crate::ci_config::plan::{Context, PlanError, plan};
use crate::ci_config::yaml::{Mapping, Yaml};
use serde_json::{Map, Value, json};
use std::path::{Component, Path};

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
}

/// Plans `config` (a `.gitlab-ci.yml` path) and returns the JSON report; `Err` for a usage error.
pub fn plan_file(config: &Path, request: &PlanRequest) -> Result<Value, String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    let root = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut files = Vec::new();
    list_files(root, root, &mut files);
    let read = |path: &str| -> Option<String> {
        if path == ".gitlab-ci.yml" {
            return Some(text.clone());
        }
        let relative = Path::new(path.trim_start_matches('/'));
        // Only plain relative paths inside the root: never `..` or absolute paths.
        if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            return None;
        }
        std::fs::read_to_string(root.join(relative)).ok()
    };
    let project = root
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()));
    let ctx = Context {
        source: request.source.clone(),
        ref_name: request.ref_name.clone(),
        ref_is_tag: request.tag,
        default_branch: "main".into(),
        project_path: format!("local/{}", project.unwrap_or_else(|| "project".into())),
        project_id: 1,
        sha: "0".repeat(40),
        commit_message: String::new(),
        before_sha: "0".repeat(40),
        pipeline_variables: request.variables.clone(),
        project_variables: request.project_variables.clone(),
        inputs: text_inputs(&request.inputs),
    };
    Ok(match plan(&read, &files, &ctx) {
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

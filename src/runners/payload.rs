//! The job a runner receives from `POST /jobs/request` (GitLab's
//! `Entities::Ci::JobRequest::Response`): steps, variables with their masked and file flags,
//! git info for cloning from spur, artifacts to upload, dependencies to download, timeout.

use crate::context::Spur;
use crate::domain::{Job, JobVariables, Pipeline, Project, Runner};
use serde_json::{Value, json};

/// Failure reasons spur understands in `PUT /jobs/:id`; the runner maps others onto these.
pub const FAILURE_REASONS: &[&str] = &[
    "unknown_failure",
    "script_failure",
    "api_failure",
    "stuck_or_timeout_failure",
    "runner_system_failure",
    "missing_dependency_failure",
    "runner_unsupported",
    "job_execution_timeout",
    "archived_failure",
    "unmet_prerequisites",
    "data_integrity_failure",
    "runner_configuration_error",
    "runner_external_dependency_failure",
    "image_pull_failure",
    "runner_interrupted",
];

/// Default `GIT_DEPTH` (GitLab's for new projects).
const DEFAULT_GIT_DEPTH: u64 = 20;

/// A started job and what surrounds it.
pub struct Assignment<'a> {
    /// The runner taking it.
    pub runner: &'a Runner,
    /// The job's project.
    pub project: &'a Project,
    /// Its pipeline.
    pub pipeline: &'a Pipeline,
    /// The job, now running.
    pub job: &'a Job,
    /// Its `CI_JOB_TOKEN`.
    pub token: &'a str,
    /// Its planned variables.
    pub vars: &'a JobVariables,
}

/// The 201 body of `POST /jobs/request`.
pub fn build(spur: &Spur, a: &Assignment) -> Result<Value, String> {
    let job = a.job;
    let timeout = job
        .settings
        .timeout_secs
        .unwrap_or(spur.job_timeout_secs)
        .min(a.runner.maximum_timeout.unwrap_or(u64::MAX));
    let repo_url = repo_url(spur, a.project, a.token);
    let variables = variables(spur, a, &repo_url);
    let depth = variables
        .iter()
        .find(|v| v["key"] == "GIT_DEPTH")
        .and_then(|v| v["value"].as_str()?.parse::<u64>().ok())
        .unwrap_or(DEFAULT_GIT_DEPTH);
    let script: Vec<&String> = job.before_script.iter().chain(&job.script).collect();
    let mut steps = vec![json!({
        "name": "script", "script": script, "timeout": timeout,
        "when": "on_success", "allow_failure": false,
    })];
    if !job.after_script.is_empty() {
        steps.push(json!({
            "name": "after_script", "script": job.after_script, "timeout": timeout,
            "when": "always", "allow_failure": true,
        }));
    }
    Ok(json!({
        "id": job.id,
        "token": a.token,
        "allow_git_fetch": true,
        "job_info": {
            "id": job.id,
            "name": job.name,
            "stage": job.stage,
            "project_id": a.project.id,
            "project_name": a.project.name,
            "project_full_path": a.project.full_path,
            "pipeline_id": a.pipeline.id,
        },
        "git_info": {
            "repo_url": repo_url,
            "ref": a.pipeline.ref_name,
            "sha": a.pipeline.sha,
            "before_sha": a.pipeline.before_sha,
            "ref_type": if a.pipeline.tag { "tag" } else { "branch" },
            "refspecs": refspecs(a.pipeline, depth),
            "depth": depth,
            "repo_object_format": "sha1",
            "protected": protected(spur, a),
        },
        "runner_info": {"timeout": timeout, "runner_session_url": null},
        "variables": variables,
        "steps": steps,
        "hooks": [],
        "image": job.settings.image.as_ref().map(image),
        "services": job.settings.services.iter().map(image).collect::<Vec<_>>(),
        "artifacts": artifacts(job),
        "cache": [],
        "credentials": [],
        "dependencies": dependencies(spur, job, a.token)?,
        "features": {
            "trace_sections": true,
            "failure_reasons": FAILURE_REASONS,
            "token_mask_prefixes": ["glcbt-", "glpat-", "glrt-", "glptt-"],
        },
    }))
}

/// An `image` or `services` entry as the runner reads it (`Spec::Image`).
fn image(image: &crate::domain::Image) -> Value {
    let mut v = json!({"name": image.name});
    if let Some(entrypoint) = &image.entrypoint {
        v["entrypoint"] = json!(entrypoint);
    }
    if let Some(command) = &image.command {
        v["command"] = json!(command);
    }
    if let Some(alias) = &image.alias {
        v["alias"] = json!(alias);
    }
    if !image.pull_policy.is_empty() {
        v["pull_policy"] = json!(image.pull_policy);
    }
    if !image.variables.is_empty() {
        v["variables"] = image
            .variables
            .iter()
            .map(|(k, value)| json!({"key": k, "value": value}))
            .collect();
    }
    if let Some(user) = &image.user {
        v["executor_opts"] = json!({"docker": {"user": user}});
    }
    v
}

/// Whether the pipeline's branch or tag is protected.
fn protected(spur: &Spur, a: &Assignment) -> bool {
    crate::protected_refs::is_protected(spur, a.project.id, &a.pipeline.ref_name, a.pipeline.tag).unwrap_or(false)
}

/// The clone URL with `gitlab-ci-token:<token>@` after the scheme.
pub fn repo_url(spur: &Spur, project: &Project, token: &str) -> String {
    let url = spur.url(&format!("{}.git", project.full_path));
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://gitlab-ci-token:{token}@{rest}"),
        None => url,
    }
}

/// GitLab's refspecs: the pipeline's commit first, then the branch or tag (all of them for a
/// full clone).
fn refspecs(pipeline: &Pipeline, depth: u64) -> Vec<String> {
    let mut specs = vec![format!("+{}:refs/pipelines/{}", pipeline.sha, pipeline.id)];
    if depth == 0 {
        specs.push("+refs/heads/*:refs/remotes/origin/*".into());
        specs.push("+refs/tags/*:refs/tags/*".into());
    } else if pipeline.tag {
        specs.push(format!("+refs/tags/{0}:refs/tags/{0}", pipeline.ref_name));
    } else {
        specs.push(format!("+refs/heads/{0}:refs/remotes/origin/{0}", pipeline.ref_name));
    }
    specs
}

/// Predefined and planned variables, later wins, each with GitLab's flags.
fn variables(spur: &Spur, a: &Assignment, repo_url: &str) -> Vec<Value> {
    let mut all = crate::job_env::runtime_variables(spur, a.project, a.pipeline, a.job, a.token);
    all.push(("CI_REPOSITORY_URL".into(), repo_url.to_string()));
    all.push(("CI_RUNNER_ID".into(), a.runner.id.to_string()));
    all.push(("CI_RUNNER_DESCRIPTION".into(), a.runner.description.clone()));
    all.extend(a.vars.vars.iter().cloned());
    let mut out: Vec<(String, String)> = Vec::with_capacity(all.len());
    for (key, value) in all {
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key, value)),
        }
    }
    out.into_iter()
        .map(|(key, value)| {
            let secret = key == "CI_JOB_TOKEN" || key == "CI_REPOSITORY_URL";
            let masked = key == "CI_JOB_TOKEN" || a.vars.masked.contains(&value);
            let file = a.vars.file_keys.contains(&key);
            json!({"key": key, "value": value, "public": !secret && !masked, "masked": masked, "file": file, "raw": false})
        })
        .collect()
}

/// The archive, then each report: GitLab sends reports with `when: always`, gzip, named
/// after their type.
fn artifacts(job: &Job) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(spec) = &job.settings.artifacts {
        out.push(json!({
            "name": spec.name.clone().unwrap_or_else(|| "artifacts".into()),
            "untracked": spec.untracked,
            "paths": spec.paths,
            "exclude": spec.exclude,
            "when": spec.when,
            "expire_in": spec.expire_in,
            "artifact_type": "archive",
            "artifact_format": "zip",
        }));
    }
    if !job.settings.junit.is_empty() {
        out.push(json!({
            "name": "junit.xml",
            "untracked": false,
            "paths": job.settings.junit,
            "when": "always",
            "expire_in": job.settings.reports_expire_in,
            "artifact_type": "junit",
            "artifact_format": "gzip",
        }));
    }
    out
}

/// The jobs whose artifacts this job downloads; `token` (the running job's) authorizes it.
fn dependencies(spur: &Spur, job: &Job, token: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for dep in crate::artifacts::dependencies(spur, job)? {
        let file = spur.store.artifacts(dep.id).map_err(|e| e.to_string())?;
        let mut entry = json!({"id": dep.id, "name": dep.name, "token": token});
        if let (Some(file), Some(obj)) = (file, entry.as_object_mut()) {
            obj.insert(
                "artifacts_file".into(),
                json!({"filename": file.filename, "size": file.size}),
            );
        }
        out.push(entry);
    }
    Ok(out)
}

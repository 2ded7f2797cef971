//! The bodies GitLab posts to webhooks (`Pipeline Hook`, `Job Hook`) and the commit statuses
//! GitHub and Gitea take, built from spur's records.

use crate::context::Spur;
use crate::domain::{Job, JobStatus, Pipeline, PipelineStatus, Project, User, Visibility};
use serde_json::{Value, json};

/// GitLab's webhook time format: `2016-08-12 15:23:28 UTC`.
fn hook_time(at: Option<i64>) -> Value {
    match at {
        Some(ms) => {
            let iso = crate::clock::iso8601(ms);
            let text = iso.get(..19).unwrap_or(&iso).replace('T', " ");
            json!(format!("{text} UTC"))
        }
        None => Value::Null,
    }
}

fn seconds(from: Option<i64>, to: Option<i64>) -> Value {
    match (from, to) {
        (Some(a), Some(b)) => json!((b - a) as f64 / 1000.0),
        _ => Value::Null,
    }
}

fn visibility_level(v: Visibility) -> u8 {
    match v {
        Visibility::Private => 0,
        Visibility::Internal => 10,
        Visibility::Public => 20,
    }
}

fn user(spur: &Spur, u: Option<&User>) -> Value {
    match u {
        Some(u) => json!({
            "id": u.id, "name": u.name, "username": u.username, "avatar_url": null,
            "email": u.email,
        }),
        None => {
            let _ = spur;
            Value::Null
        }
    }
}

fn project_json(spur: &Spur, p: &Project) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "web_url": spur.url(&p.full_path),
        "avatar_url": null,
        "git_ssh_url": null,
        "git_http_url": spur.url(&format!("{}.git", p.full_path)),
        "namespace": p.full_path.rsplit_once('/').map_or("", |(ns, _)| ns),
        "visibility_level": visibility_level(p.visibility),
        "path_with_namespace": p.full_path,
        "default_branch": p.default_branch,
        "ci_config_path": null,
    })
}

/// The commit's message, read from the repository (empty when it cannot be read).
fn commit_message(spur: &Spur, project: &Project, sha: &str) -> String {
    let origin = crate::git::Origin::of(project);
    let path = spur.repos.path_of(&project.repo_name, &origin);
    spur.repos
        .commit_files(&path, sha)
        .map(|f| f.message.clone())
        .unwrap_or_default()
}

/// GitLab's detailed status name of a pipeline (`passed` for success).
fn detailed(status: PipelineStatus) -> &'static str {
    match status {
        PipelineStatus::Success => "passed",
        other => other.as_str(),
    }
}

/// The `Pipeline Hook` body.
pub fn pipeline_hook(spur: &Spur, project: &Project, p: &Pipeline, jobs: &[Job]) -> Value {
    let owner = spur.store.user(p.user_id).ok().flatten();
    let message = commit_message(spur, project, &p.sha);
    let mut stages: Vec<&str> = Vec::new();
    for j in jobs {
        if !stages.contains(&j.stage.as_str()) {
            stages.push(&j.stage);
        }
    }
    let builds: Vec<Value> = jobs
        .iter()
        .filter(|j| !j.retried)
        .map(|j| {
            let job_user = spur.store.user(j.user_id).ok().flatten();
            json!({
                "id": j.id, "stage": j.stage, "name": j.name, "status": j.status.as_str(),
                "created_at": hook_time(Some(j.created_at)), "started_at": hook_time(j.started_at),
                "finished_at": hook_time(j.finished_at), "duration": seconds(j.started_at, j.finished_at),
                "queued_duration": seconds(j.queued_at, j.started_at),
                "failure_reason": j.failure_reason, "when": j.when.as_str(), "manual": j.when == crate::domain::JobWhen::Manual,
                "allow_failure": j.allow_failure, "user": user(spur, job_user.as_ref()),
                "runner": j.runner.as_ref().map(|r| json!({"id": j.runner_id.unwrap_or(0), "description": r, "active": true, "runner_type": "instance_type", "is_shared": true, "tags": j.tags})),
                "artifacts_file": {"filename": null, "size": null}, "environment": null,
            })
        })
        .collect();
    json!({
        "object_kind": "pipeline",
        "object_attributes": {
            "id": p.id, "iid": p.iid, "name": null, "ref": p.ref_name, "tag": p.tag, "sha": p.sha,
            "before_sha": p.before_sha, "source": p.source.as_str(), "status": p.status.as_str(),
            "detailed_status": detailed(p.status), "stages": stages,
            "created_at": hook_time(Some(p.created_at)), "finished_at": hook_time(p.finished_at),
            "duration": seconds(p.started_at, p.finished_at), "queued_duration": null,
            "variables": [], "url": spur.url(&format!("{}/-/pipelines/{}", project.full_path, p.id)),
        },
        "merge_request": null,
        "user": user(spur, owner.as_ref()),
        "project": project_json(spur, project),
        "commit": {
            "id": p.sha, "message": message, "title": message.lines().next().unwrap_or_default(),
            "timestamp": null, "url": spur.url(&format!("{}/-/commit/{}", project.full_path, p.sha)),
            "author": {"name": null, "email": null},
        },
        "source_pipeline": p.upstream.as_ref().map(|u| json!({"project": {"id": u.project_id}, "job_id": u.job_id, "pipeline_id": u.pipeline_id})),
        "builds": builds,
    })
}

/// The `Job Hook` body.
pub fn job_hook(spur: &Spur, project: &Project, p: &Pipeline, j: &Job) -> Value {
    let job_user = spur.store.user(j.user_id).ok().flatten();
    let message = commit_message(spur, project, &p.sha);
    json!({
        "object_kind": "build",
        "ref": p.ref_name, "tag": p.tag, "before_sha": p.before_sha, "sha": p.sha,
        "retries_count": j.attempt,
        "build_id": j.id, "build_name": j.name, "build_stage": j.stage, "build_status": j.status.as_str(),
        "build_created_at": hook_time(Some(j.created_at)), "build_started_at": hook_time(j.started_at),
        "build_finished_at": hook_time(j.finished_at), "build_duration": seconds(j.started_at, j.finished_at),
        "build_queued_duration": seconds(j.queued_at, j.started_at),
        "build_allow_failure": j.allow_failure,
        "build_failure_reason": if j.status == JobStatus::Failed { j.failure_reason.clone().unwrap_or_else(|| "unknown_failure".into()) } else { "unknown_failure".into() },
        "pipeline_id": p.id,
        "runner": j.runner.as_ref().map(|r| json!({"id": j.runner_id.unwrap_or(0), "description": r, "active": true, "is_shared": true, "runner_type": "instance_type", "tags": j.tags})),
        "project_id": project.id,
        "project_name": project.full_path.replace('/', " / "),
        "user": user(spur, job_user.as_ref()),
        "commit": {
            "id": p.id, "name": null, "sha": p.sha, "message": message, "author_name": null,
            "author_email": null, "author_url": null, "status": p.status.as_str(),
            "duration": seconds(p.started_at, p.finished_at), "started_at": hook_time(p.started_at),
            "finished_at": hook_time(p.finished_at),
        },
        "repository": {
            "name": project.name, "url": spur.url(&format!("{}.git", project.full_path)),
            "description": project.description, "homepage": spur.url(&project.full_path),
            "git_http_url": spur.url(&format!("{}.git", project.full_path)), "git_ssh_url": null,
            "visibility_level": visibility_level(project.visibility),
        },
        "project": project_json(spur, project),
        "environment": null,
    })
}

/// A forge's commit state for a pipeline status: GitHub and Gitea know pending, success,
/// failure and error (running is pending there).
pub fn commit_state(status: PipelineStatus) -> &'static str {
    match status {
        PipelineStatus::Success => "success",
        PipelineStatus::Failed => "failure",
        PipelineStatus::Canceled | PipelineStatus::Skipped => "error",
        _ => "pending",
    }
}

/// The body of a commit status.
pub fn commit_status(spur: &Spur, project: &Project, p: &Pipeline, context: &str) -> Value {
    json!({
        "state": commit_state(p.status),
        "target_url": spur.url(&format!("{}/-/pipelines/{}", project.full_path, p.id)),
        "description": format!("Pipeline #{} {}", p.id, detailed(p.status)),
        "context": context,
    })
}

/// A `Push Hook` body for the head of `ref_name` (GitLab's sample push a hook test posts):
/// the user who tests, the head commit, `before` all zeros.
pub fn sample_push(spur: &Spur, project: &Project, tester: &User, ref_name: &str, tag: bool, sha: &str) -> Value {
    let origin = crate::git::Origin::of(project);
    let path = spur.repos.path_of(&project.repo_name, &origin);
    let info = spur.repos.commit_info(&path, sha).ok();
    let commit = info.as_ref().map(|c| {
        json!({
            "id": sha,
            "message": c.message,
            "title": c.title,
            "timestamp": crate::clock::iso8601(c.committed_at),
            "url": spur.url(&format!("{}/-/commit/{sha}", project.full_path)),
            "author": {"name": c.author_name, "email": c.author_email},
            "added": [], "modified": [], "removed": [],
        })
    });
    let full_ref = format!("refs/{}/{ref_name}", if tag { "tags" } else { "heads" });
    json!({
        "object_kind": if tag { "tag_push" } else { "push" },
        "event_name": if tag { "tag_push" } else { "push" },
        "before": "0000000000000000000000000000000000000000",
        "after": sha,
        "ref": full_ref,
        "ref_protected": crate::protected_refs::is_protected(spur, project.id, ref_name, tag).unwrap_or(false),
        "checkout_sha": sha,
        "message": null,
        "user_id": tester.id,
        "user_name": tester.name,
        "user_username": tester.username,
        "user_email": "",
        "user_avatar": null,
        "project_id": project.id,
        "project": project_json(spur, project),
        "commits": commit.into_iter().collect::<Vec<_>>(),
        "total_commits_count": 1,
        "push_options": {},
        "repository": {
            "name": project.name,
            "url": spur.url(&format!("{}.git", project.full_path)),
            "description": project.description,
            "homepage": spur.url(&project.full_path),
            "git_http_url": spur.url(&format!("{}.git", project.full_path)),
            "git_ssh_url": null,
            "visibility_level": visibility_level(project.visibility),
        },
    })
}

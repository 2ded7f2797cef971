//! GitLab's JSON entities, built from domain records at the edge. The only place that knows
//! GitLab's field names.

use crate::clock::{self, date, iso8601};
use crate::context::Spur;
use crate::domain::{
    AccessLevel, Job, Membership, Namespace, NamespaceKind, PersonalAccessToken, Pipeline, PipelineStatus, Project,
    Trigger, User, Variable,
};
use serde_json::{Value, json};

/// The GitLab version whose API spur follows; clients that check versions see this.
pub const GITLAB_API_VERSION: &str = "17.11.0";

fn opt_time(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(iso8601(t)))
}

/// `UserBasic`.
pub fn user_basic(spur: &Spur, user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": if user.blocked { "blocked" } else { "active" },
        "locked": false,
        "avatar_url": null,
        "web_url": spur.url(&user.username),
    })
}

/// `User` as its owner or an admin sees it.
pub fn user_full(spur: &Spur, user: &User) -> Value {
    let mut v = user_basic(spur, user);
    if let Value::Object(m) = &mut v {
        m.insert("created_at".into(), json!(iso8601(user.created_at)));
        m.insert("email".into(), json!(user.email));
        m.insert("public_email".into(), Value::Null);
        m.insert("is_admin".into(), json!(user.admin));
        m.insert("bio".into(), json!(""));
        m.insert("can_create_group".into(), json!(true));
        m.insert("can_create_project".into(), json!(true));
        m.insert("two_factor_enabled".into(), json!(false));
        m.insert("external".into(), json!(false));
        m.insert("namespace_id".into(), json!(user.namespace_id));
    }
    v
}

/// `PersonalAccessToken`, with the secret only at creation.
pub fn personal_access_token(pat: &PersonalAccessToken, token: Option<&str>, now: i64) -> Value {
    let mut v = json!({
        "id": pat.id,
        "name": pat.name,
        "revoked": pat.revoked,
        "created_at": iso8601(pat.created_at),
        "scopes": pat.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "user_id": pat.user_id,
        "active": !pat.revoked && pat.expires_at.is_none_or(|t| t > now),
        "expires_at": pat.expires_at.map(date),
        "last_used_at": null,
    });
    if let (Some(t), Value::Object(m)) = (token, &mut v) {
        m.insert("token".into(), json!(t));
    }
    v
}

/// The `namespace` object inside a project.
pub fn namespace(spur: &Spur, ns: &Namespace) -> Value {
    json!({
        "id": ns.id,
        "name": ns.name,
        "path": ns.path,
        "kind": if ns.kind == NamespaceKind::Group { "group" } else { "user" },
        "full_path": ns.path,
        "parent_id": null,
        "avatar_url": null,
        "web_url": spur.url(&ns.path),
    })
}

/// `Group`.
pub fn group(spur: &Spur, ns: &Namespace) -> Value {
    json!({
        "id": ns.id,
        "name": ns.name,
        "path": ns.path,
        "description": ns.description,
        "visibility": ns.visibility.as_str(),
        "full_name": ns.name,
        "full_path": ns.path,
        "parent_id": null,
        "created_at": iso8601(ns.created_at),
        "avatar_url": null,
        "web_url": spur.url(&format!("groups/{}", ns.path)),
    })
}

/// The caller's direct memberships, for a project's `permissions` field.
pub struct Permissions {
    /// Direct project membership.
    pub project: Option<AccessLevel>,
    /// Membership of the project's group.
    pub group: Option<AccessLevel>,
}

/// `Project`, with the caller's permissions.
pub fn project(spur: &Spur, p: &Project, ns: Option<&Namespace>, permissions: &Permissions) -> Value {
    let level = |l: Option<AccessLevel>| l.map(|l| json!({"access_level": l.as_number(), "notification_level": 3}));
    let ns_name = ns.map_or_else(|| p.full_path.clone(), |n| n.name.clone());
    json!({
        "id": p.id,
        "description": p.description,
        "name": p.name,
        "name_with_namespace": format!("{ns_name} / {}", p.name),
        "path": p.path,
        "path_with_namespace": p.full_path,
        "created_at": iso8601(p.created_at),
        "updated_at": iso8601(p.updated_at),
        "last_activity_at": iso8601(p.updated_at),
        "default_branch": p.default_branch,
        "visibility": p.visibility.as_str(),
        "web_url": spur.url(&p.full_path),
        "http_url_to_repo": spur.url(&format!("{}.git", p.full_path)),
        "ssh_url_to_repo": null,
        "readme_url": null,
        "avatar_url": null,
        "namespace": ns.map(|n| namespace(spur, n)),
        "import_status": if p.import_url.is_some() { "finished" } else { "none" },
        "mirror": p.import_url.is_some(),
        "mirror_trigger_builds": p.import_url.is_some(),
        "mirror_interval": p.import_url.as_ref().map(|_| p.mirror_interval_secs.unwrap_or(spur.mirror_interval.as_secs())),
        "creator_id": p.creator_id,
        "jobs_enabled": true,
        "builds_access_level": "enabled",
        "public_jobs": true,
        "archived": false,
        "empty_repo": p.default_branch.is_none(),
        "ci_config_path": null,
        "ci_pipeline_variables_minimum_override_role": p.variables_override_role.as_str(),
        "permissions": {
            "project_access": level(permissions.project),
            "group_access": level(permissions.group),
        },
        "_links": {
            "self": spur.url(&format!("api/v4/projects/{}", p.id)),
            "members": spur.url(&format!("api/v4/projects/{}/members", p.id)),
        },
    })
}

/// A project member: `UserBasic` plus the membership.
pub fn member(spur: &Spur, user: &User, m: &Membership) -> Value {
    let mut v = user_basic(spur, user);
    if let Value::Object(map) = &mut v {
        map.insert("access_level".into(), json!(m.access_level.as_number()));
        map.insert("created_at".into(), json!(iso8601(m.created_at)));
        map.insert("expires_at".into(), json!(m.expires_at.map(date)));
    }
    v
}

/// `Trigger`: the full token only when `token` is given (its owner with Maintainer+), else the
/// 4-character short token.
pub fn trigger(spur: &Spur, t: &Trigger, last_used: Option<i64>, owner: Option<&User>, token: Option<&str>) -> Value {
    json!({
        "id": t.id,
        "token": token.unwrap_or(&t.short_token),
        "description": t.description,
        "created_at": iso8601(t.created_at),
        "updated_at": iso8601(t.updated_at),
        "last_used": opt_time(last_used),
        "expires_at": opt_time(t.expires_at),
        "owner": owner.map(|u| user_basic(spur, u)),
        "ref_patterns": t.ref_patterns,
        "allowed_variables": t.allowed_variables,
    })
}

/// `PipelineBasic`, used in lists.
pub fn pipeline_basic(spur: &Spur, project: &Project, p: &Pipeline) -> Value {
    json!({
        "id": p.id,
        "iid": p.iid,
        "project_id": p.project_id,
        "sha": p.sha,
        "ref": p.ref_name,
        "status": p.status.as_str(),
        "source": p.source.as_str(),
        "created_at": iso8601(p.created_at),
        "updated_at": iso8601(p.updated_at),
        "web_url": spur.url(&format!("{}/-/pipelines/{}", project.full_path, p.id)),
        "name": p.name,
    })
}

/// The repository's record of commit `sha`, when it can be read.
fn commit_info(spur: &Spur, project: &Project, sha: &str) -> Option<std::sync::Arc<crate::git::CommitInfo>> {
    let path = spur.repos.path_of(&project.repo_name, &crate::git::Origin::of(project));
    spur.repos.commit_info(&path, sha).ok()
}

/// GitLab's `Commit` entity (what a job's `commit` holds); just the ids when the commit
/// cannot be read.
pub fn commit(spur: &Spur, project: &Project, sha: &str) -> Value {
    let short: String = sha.chars().take(8).collect();
    let Some(c) = commit_info(spur, project, sha) else {
        return json!({"id": sha, "short_id": short});
    };
    json!({
        "id": sha,
        "short_id": short,
        "created_at": iso8601(c.committed_at),
        "title": c.title,
        "message": c.message,
        "author_name": c.author_name,
        "author_email": c.author_email,
        "authored_date": iso8601(c.authored_at),
        "committer_name": c.committer_name,
        "committer_email": c.committer_email,
        "committed_date": iso8601(c.committed_at),
        "parent_ids": c.parent_ids,
        "trailers": {},
        "extended_trailers": {},
        "web_url": spur.url(&format!("{}/-/commit/{sha}", project.full_path)),
    })
}

/// `Pipeline`, the full entity.
pub fn pipeline(spur: &Spur, project: &Project, p: &Pipeline, user: Option<&User>) -> Value {
    let mut v = pipeline_basic(spur, project, p);
    let duration = match (p.started_at, p.finished_at) {
        (Some(s), Some(f)) => json!((f - s) / 1000),
        _ => Value::Null,
    };
    if let Value::Object(m) = &mut v {
        m.insert("before_sha".into(), json!(p.before_sha));
        m.insert("tag".into(), json!(p.tag));
        m.insert("yaml_errors".into(), json!(p.yaml_errors));
        m.insert("user".into(), user.map_or(Value::Null, |u| user_basic(spur, u)));
        m.insert("started_at".into(), opt_time(p.started_at));
        m.insert("finished_at".into(), opt_time(p.finished_at));
        m.insert(
            "committed_at".into(),
            commit_info(spur, project, &p.sha).map_or(Value::Null, |c| json!(iso8601(c.committed_at))),
        );
        m.insert("duration".into(), duration);
        m.insert("queued_duration".into(), Value::Null);
        m.insert("coverage".into(), Value::Null);
        m.insert("detailed_status".into(), detailed_status(project, p));
        m.insert("archived".into(), json!(false));
    }
    v
}

fn detailed_status(project: &Project, p: &Pipeline) -> Value {
    let label = p.status.as_str();
    let text = match p.status {
        PipelineStatus::Created => "Created",
        PipelineStatus::WaitingForResource => "Waiting",
        PipelineStatus::Preparing => "Preparing",
        PipelineStatus::Pending => "Pending",
        PipelineStatus::Running => "Running",
        PipelineStatus::Success => "Passed",
        PipelineStatus::Failed => "Failed",
        PipelineStatus::Canceled => "Canceled",
        PipelineStatus::Skipped => "Skipped",
        PipelineStatus::Manual => "Blocked",
        PipelineStatus::Scheduled => "Scheduled",
    };
    let group = match p.status {
        PipelineStatus::Success => "success",
        PipelineStatus::Manual => "manual",
        other => other.as_str(),
    };
    json!({
        "icon": format!("status_{group}"),
        "text": text,
        "label": if p.status == PipelineStatus::Success { "passed" } else { label },
        "group": group,
        "tooltip": if p.status == PipelineStatus::Success { "passed" } else { label },
        "has_details": true,
        "details_path": format!("/{}/-/pipelines/{}", project.full_path, p.id),
        "illustration": null,
        "favicon": format!("/assets/ci_favicons/favicon_status_{group}.png"),
    })
}

/// A pipeline variable.
pub fn variable(v: &Variable) -> Value {
    json!({ "key": v.key, "value": v.value, "variable_type": v.variable_type.as_str(), "raw": v.raw })
}

/// `Job`: a pipeline's job with its pipeline, commit and user.
pub fn job(spur: &Spur, project: &Project, pipeline: &Pipeline, j: &Job, user: Option<&User>) -> Value {
    let seconds = |from: Option<i64>, to: Option<i64>| match (from, to) {
        (Some(a), Some(b)) => json!((b - a) as f64 / 1000.0),
        (Some(a), None) => json!((crate::clock::now() - a) as f64 / 1000.0),
        _ => Value::Null,
    };
    let artifacts = spur.store.artifacts(j.id).ok().flatten();
    let mut body = json!({
        "id": j.id,
        "status": j.status.as_str(),
        "stage": j.stage,
        "name": j.name,
        "ref": pipeline.ref_name,
        "tag": pipeline.tag,
        "coverage": j.external.as_ref().and_then(|e| e.coverage),
        "allow_failure": j.allow_failure,
        "created_at": iso8601(j.created_at),
        "started_at": opt_time(j.started_at),
        "finished_at": opt_time(j.finished_at),
        "erased_at": opt_time(j.erased_at),
        "duration": seconds(j.started_at, j.finished_at),
        "queued_duration": seconds(j.queued_at, j.started_at),
        "user": user.map(|u| user_basic(spur, u)),
        "commit": commit(spur, project, &pipeline.sha),
        "pipeline": pipeline_basic(spur, project, pipeline),
        "web_url": spur.url(&format!("{}/-/jobs/{}", project.full_path, j.id)),
        "project": {"ci_job_token_scope_enabled": false},
        "artifacts": artifacts.as_ref().map_or_else(Vec::new, |a| vec![json!({
            "file_type": "archive", "size": a.size, "filename": a.filename, "file_format": "zip",
        })]),
        "artifacts_expire_at": artifacts.as_ref().and_then(|a| a.expire_at).map(iso8601),
        "runner": j.runner.as_ref().map(|r| json!({
            "id": j.runner_id.unwrap_or(0), "description": r, "active": true, "paused": false, "is_shared": true,
            "runner_type": "instance_type", "name": r, "online": true, "status": "online",
        })),
        "runner_manager": null,
        "tag_list": j.tags,
        "when": j.when.as_str(),
        "archived": false,
    });
    if let (Some(a), Some(obj)) = (&artifacts, body.as_object_mut()) {
        obj.insert("artifacts_file".into(), json!({"filename": a.filename, "size": a.size}));
    }
    if j.status == crate::domain::JobStatus::Failed
        && let Some(obj) = body.as_object_mut()
    {
        obj.insert(
            "failure_reason".into(),
            json!(j.failure_reason.as_deref().unwrap_or("unknown_failure")),
        );
    }
    body
}

/// GitLab's `CommitStatus` entity: any job of a commit's pipelines, as `statuses` lists them.
pub fn commit_status(spur: &Spur, pipeline: &Pipeline, j: &Job, author: Option<&User>) -> Value {
    let external = j.external.clone().unwrap_or_default();
    json!({
        "id": j.id,
        "sha": pipeline.sha,
        "ref": pipeline.ref_name,
        "status": j.status.as_str(),
        "name": j.name,
        "stage": j.stage,
        "target_url": external.target_url,
        "description": external.description,
        "created_at": iso8601(j.created_at),
        "started_at": opt_time(j.started_at),
        "finished_at": opt_time(j.finished_at),
        "allow_failure": j.allow_failure,
        "coverage": external.coverage,
        "pipeline_id": pipeline.id,
        "author": author.map(|u| user_basic(spur, u)),
    })
}

/// GitLab's application settings entity, with the settings spur keeps (and says what
/// isolation its jobs run in, under a key of spur's own).
pub fn application_settings(s: &crate::domain::ApplicationSettings, spur: &Spur) -> Value {
    json!({
        "id": 1,
        "allow_local_requests_from_web_hooks_and_services": s.allow_local_requests_from_web_hooks_and_services,
        "allow_local_requests_from_hooks_and_services": s.allow_local_requests_from_web_hooks_and_services,
        "allow_local_requests_from_system_hooks": s.allow_local_requests_from_system_hooks,
        "outbound_local_requests_whitelist": s.outbound_local_requests_whitelist,
        "outbound_local_requests_allowlist_raw": s.outbound_local_requests_whitelist.join("\n"),
        "dns_rebinding_protection_enabled": true,
        "spur_job_isolation": spur.isolation.describe(),
        "spur_job_engine": spur.describe_engine(),
    })
}

/// GitLab's `ProjectHook` entity (no token).
pub fn project_hook(h: &crate::domain::ProjectHook) -> Value {
    json!({
        "id": h.id, "url": h.url, "project_id": h.project_id, "name": null, "description": null,
        "push_events": h.push_events, "tag_push_events": false, "merge_requests_events": false,
        "issues_events": false, "note_events": false, "wiki_page_events": false,
        "pipeline_events": h.pipeline_events, "job_events": h.job_events,
        "enable_ssl_verification": h.enable_ssl_verification,
        "created_at": clock::iso8601(h.created_at), "alert_status": "executable",
    })
}

/// GitLab's integration entity for the GitHub-style commit-status integration.
pub fn status_integration(i: Option<&crate::domain::StatusIntegration>) -> Value {
    json!({
        "id": null, "title": "GitHub", "slug": "github", "active": i.is_some(),
        "pipeline_events": i.is_some(), "properties": {
            "repository_url": i.map(|i| i.repository_url.clone()),
            "static_context": i.map(|i| i.static_context),
            "api_url": i.and_then(|i| i.api_url.clone()),
        },
    })
}

/// One access level of a protected ref rule.
fn protected_ref_level(id: u64, level: u8) -> Value {
    json!({
        "id": id, "access_level": level, "access_level_description": crate::protected_refs::level_description(level),
        "user_id": null, "group_id": null, "deploy_key_id": null,
    })
}

/// GitLab's `ProtectedBranch` or `ProtectedTag` entity.
pub fn protected_ref(r: &crate::domain::ProtectedRef) -> Value {
    match r.kind {
        crate::domain::RefKind::Branch => json!({
            "id": r.id,
            "name": r.name,
            "push_access_levels": [protected_ref_level(r.id * 3, r.push_access_level)],
            "merge_access_levels": [protected_ref_level(r.id * 3 + 1, r.merge_access_level)],
            "unprotect_access_levels": [],
            "allow_force_push": r.allow_force_push,
            "code_owner_approval_required": false,
        }),
        crate::domain::RefKind::Tag => json!({
            "name": r.name,
            "create_access_levels": [protected_ref_level(r.id * 3 + 2, r.create_access_level)],
        }),
    }
}

/// GitLab's `Runner` entity.
pub fn runner(r: &crate::domain::Runner) -> Value {
    let now = clock::now();
    json!({
        "id": r.id,
        "description": r.description,
        "ip_address": null,
        "active": !r.paused,
        "paused": r.paused,
        "is_shared": true,
        "runner_type": "instance_type",
        "name": r.info.name,
        "online": crate::runners::is_online(r, now),
        "status": crate::runners::status(r, now),
    })
}

/// GitLab's `RunnerDetails` entity.
pub fn runner_details(r: &crate::domain::Runner) -> Value {
    let mut body = runner(r);
    if let Some(obj) = body.as_object_mut() {
        let extra = json!({
            "tag_list": r.tags,
            "run_untagged": r.run_untagged,
            "locked": false,
            "maximum_timeout": r.maximum_timeout,
            "access_level": r.access_level,
            "version": r.info.version,
            "revision": null,
            "platform": r.info.platform,
            "architecture": r.info.architecture,
            "contacted_at": r.contacted_at.map(clock::iso8601),
            "created_at": clock::iso8601(r.created_at),
            "maintenance_note": null,
            "projects": [],
            "groups": [],
        });
        if let Value::Object(extra) = extra {
            obj.extend(extra);
        }
    }
    body
}

/// GitLab's project CI/CD variable entity.
pub fn project_variable(v: &crate::domain::ProjectVariable) -> Value {
    json!({
        "key": v.key,
        "value": v.value,
        "variable_type": v.variable_type.as_str(),
        "protected": v.protected,
        "masked": v.masked,
        "hidden": false,
        "raw": v.raw,
        "environment_scope": "*",
        "description": v.description,
    })
}

/// GitLab's `BasicProjectDetails` entity (the job token allowlist lists these).
pub fn basic_project(spur: &Spur, p: &Project) -> Value {
    let ns = spur.store.namespace(p.namespace_id).ok().flatten();
    json!({
        "id": p.id,
        "name": p.name,
        "name_with_namespace": format!("{} / {}", ns.as_ref().map_or("", |n| n.name.as_str()), p.name),
        "path": p.path,
        "path_with_namespace": p.full_path,
        "created_at": crate::clock::iso8601(p.created_at),
        "default_branch": p.default_branch,
        "web_url": spur.url(&p.full_path),
        "namespace": ns.as_ref().map(|n| namespace(spur, n)),
    })
}

/// GitLab's CI lint answer for a planned (or refused) configuration.
pub fn lint(
    planned: &Result<crate::ci_config::plan::Plan, crate::ci_config::plan::PlanError>,
    merged: Option<String>,
) -> Value {
    use crate::ci_config::plan::PlanError;
    match planned {
        Ok(plan) => {
            let jobs: Vec<Value> = plan
                .jobs
                .iter()
                .map(|j| {
                    json!({
                        "name": j.name, "stage": j.stage, "when": j.when, "allow_failure": j.allow_failure,
                        "needs": j.needs, "before_script": j.before_script, "script": j.script,
                        "after_script": j.after_script,
                    })
                })
                .collect();
            json!({"valid": true, "errors": [], "warnings": [], "merged_yaml": merged, "includes": [], "stages": plan.stages, "jobs": jobs})
        }
        Err(PlanError::Filtered(message)) => {
            json!({"valid": true, "errors": [], "warnings": [message], "merged_yaml": merged, "includes": [], "stages": [], "jobs": []})
        }
        Err(PlanError::Config(message) | PlanError::Inputs(message)) => {
            json!({"valid": false, "errors": [message], "warnings": [], "merged_yaml": null, "includes": [], "stages": [], "jobs": []})
        }
    }
}

/// The answer to a runner registration: its id and authentication token (shown once).
pub fn runner_registration(runner: &crate::domain::Runner, token: &str) -> Value {
    json!({"id": runner.id, "token": token, "token_expires_at": null})
}

/// GitLab's job token scope settings.
pub fn job_token_scope(inbound_enabled: bool) -> Value {
    json!({"inbound_enabled": inbound_enabled, "outbound_enabled": false})
}

/// An allowlist entry: `source` admits job tokens of `target`.
pub fn job_token_link(source_project_id: u64, target_project_id: u64) -> Value {
    json!({"source_project_id": source_project_id, "target_project_id": target_project_id})
}

//! The variables GitLab predefines for planning (`CI_PIPELINE_SOURCE`, `CI_COMMIT_*`,
//! `CI_PROJECT_*`, ...) and the caller's variables as a list, shared by the planner and
//! `include` evaluation.

use super::plan::Context;
use super::variables::VarList;

/// Predefined variables of the pipeline (no `CI_JOB_*`).
pub(super) fn predefined(ctx: &Context) -> VarList {
    let mut v = VarList::default();
    let title = ctx.commit_message.lines().next().unwrap_or_default().to_string();
    let slug: String = ctx
        .ref_name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    let pairs = [
        ("CI", "true".to_string()),
        ("GITLAB_CI", "true".to_string()),
        ("CI_PIPELINE_SOURCE", ctx.source.clone()),
        ("CI_COMMIT_REF_NAME", ctx.ref_name.clone()),
        ("CI_COMMIT_REF_SLUG", slug.trim_matches('-').to_string()),
        ("CI_DEFAULT_BRANCH", ctx.default_branch.clone()),
        ("CI_COMMIT_SHA", ctx.sha.clone()),
        ("CI_COMMIT_SHORT_SHA", ctx.sha.chars().take(8).collect()),
        ("CI_COMMIT_BEFORE_SHA", ctx.before_sha.clone()),
        ("CI_COMMIT_MESSAGE", ctx.commit_message.clone()),
        ("CI_COMMIT_TITLE", title),
        ("CI_PROJECT_PATH", ctx.project_path.clone()),
        ("CI_PROJECT_ID", ctx.project_id.to_string()),
        (
            "CI_PROJECT_NAME",
            ctx.project_path.rsplit('/').next().unwrap_or_default().to_string(),
        ),
        (
            "CI_PROJECT_NAMESPACE",
            ctx.project_path
                .rsplit_once('/')
                .map_or(String::new(), |(ns, _)| ns.to_string()),
        ),
    ];
    for (k, val) in pairs.into_iter().chain(server_variables(ctx)) {
        v.set(k, &val, false);
    }
    v.set(
        "CI_COMMIT_REF_PROTECTED",
        if ctx.ref_protected { "true" } else { "false" },
        false,
    );
    match &ctx.merge_request {
        // A merge-request pipeline runs for the MR, not a branch: no CI_COMMIT_BRANCH.
        Some(mr) => {
            let project_url = format!("{}/{}", server_url(ctx), ctx.project_path);
            let pairs = [
                ("CI_MERGE_REQUEST_IID", mr.iid.to_string()),
                ("CI_MERGE_REQUEST_ID", mr.iid.to_string()),
                ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", mr.source_branch.clone()),
                ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", mr.target_branch.clone()),
                ("CI_MERGE_REQUEST_TITLE", mr.title.clone()),
                ("CI_MERGE_REQUEST_LABELS", mr.labels.join(",")),
                ("CI_MERGE_REQUEST_PROJECT_ID", ctx.project_id.to_string()),
                ("CI_MERGE_REQUEST_PROJECT_PATH", ctx.project_path.clone()),
                ("CI_MERGE_REQUEST_PROJECT_URL", project_url.clone()),
                ("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", ctx.project_id.to_string()),
                ("CI_MERGE_REQUEST_SOURCE_PROJECT_PATH", ctx.project_path.clone()),
                ("CI_MERGE_REQUEST_SOURCE_PROJECT_URL", project_url),
                (
                    "CI_MERGE_REQUEST_REF_PATH",
                    format!("refs/merge-requests/{}/head", mr.iid),
                ),
                ("CI_MERGE_REQUEST_EVENT_TYPE", "detached".to_string()),
                ("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", String::new()),
                ("CI_OPEN_MERGE_REQUESTS", format!("{}!{}", ctx.project_path, mr.iid)),
            ];
            for (k, val) in pairs {
                v.set(k, &val, false);
            }
        }
        None if ctx.ref_is_tag => v.set("CI_COMMIT_TAG", &ctx.ref_name, false),
        None => v.set("CI_COMMIT_BRANCH", &ctx.ref_name, false),
    }
    if ctx.source == "trigger" {
        v.set("CI_PIPELINE_TRIGGERED", "true", false);
    }
    v
}

fn server_url(ctx: &Context) -> String {
    if ctx.server_url.is_empty() {
        "http://localhost".into()
    } else {
        ctx.server_url.trim_end_matches('/').to_string()
    }
}

/// `CI_SERVER_*`, `CI_API_V4_URL`, `CI_PROJECT_URL` and the project path's forms, from the
/// server's external URL (the values jobs see at run time).
pub(super) fn server_variables(ctx: &Context) -> Vec<(&'static str, String)> {
    let server = server_url(ctx);
    let (protocol, host_port) = server.split_once("://").unwrap_or(("http", server.as_str()));
    let host_port = host_port.split('/').next().unwrap_or_default();
    let default_port = if protocol == "https" { "443" } else { "80" };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (host_port.to_string(), default_port.to_string()),
    };
    let fqdn = if port == default_port {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let slug: String = ctx
        .project_path
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    vec![
        ("CI_SERVER", "yes".to_string()),
        ("CI_SERVER_URL", server.clone()),
        ("CI_SERVER_HOST", host),
        ("CI_SERVER_PORT", port),
        ("CI_SERVER_PROTOCOL", protocol.to_string()),
        ("CI_SERVER_FQDN", fqdn),
        ("CI_SERVER_NAME", "spur".to_string()),
        ("CI_SERVER_VERSION", env!("CARGO_PKG_VERSION").to_string()),
        ("CI_API_V4_URL", format!("{server}/api/v4")),
        ("CI_PROJECT_URL", format!("{server}/{}", ctx.project_path)),
        ("CI_PROJECT_PATH_SLUG", slug),
        (
            "CI_PROJECT_ROOT_NAMESPACE",
            ctx.project_path.split('/').next().unwrap_or_default().to_string(),
        ),
        ("CI_CONFIG_PATH", ".gitlab-ci.yml".to_string()),
    ]
}

/// Project or pipeline variables as a list; those named in `raw` are never expanded.
pub(super) fn user_vars(pairs: &[(String, String)], raw: &[String]) -> VarList {
    let mut v = VarList::default();
    for (k, val) in pairs {
        v.set(k, val, raw.contains(k));
    }
    v
}

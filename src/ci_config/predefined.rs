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
    for (k, val) in pairs {
        v.set(k, &val, false);
    }
    if ctx.ref_is_tag {
        v.set("CI_COMMIT_TAG", &ctx.ref_name, false);
    } else {
        v.set("CI_COMMIT_BRANCH", &ctx.ref_name, false);
    }
    if ctx.source == "trigger" {
        v.set("CI_PIPELINE_TRIGGERED", "true", false);
    }
    v
}

pub(super) fn user_vars(pairs: &[(String, String)]) -> VarList {
    let mut v = VarList::default();
    for (k, val) in pairs {
        v.set(k, val, false);
    }
    v
}

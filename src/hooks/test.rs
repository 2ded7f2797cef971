//! Testing a project webhook (`POST /projects/:id/hooks/:hook_id/test/:trigger`): GitLab's
//! sample of the event, built from the project's newest records, posted once and at once
//! (through the same outbound policy as every delivery), with the receiver's answer reported.

use super::payload;
use crate::context::Spur;
use crate::domain::{Project, ProjectHook, User};
use crate::storage::{PipelineFilter, PipelineOrder};

/// The triggers GitLab's hook test takes.
pub const TRIGGERS: [&str; 12] = [
    "push_events",
    "tag_push_events",
    "issues_events",
    "confidential_issues_events",
    "note_events",
    "merge_requests_events",
    "job_events",
    "pipeline_events",
    "wiki_page_events",
    "releases_events",
    "emoji_events",
    "resource_access_token_events",
];

/// Posts the sample event for `trigger`; answers the receiver's status code, or GitLab's
/// message when there is nothing to sample or the post failed.
pub async fn test_hook(
    spur: &Spur,
    project: &Project,
    hook: &ProjectHook,
    tester: &User,
    trigger: &str,
) -> Result<u16, String> {
    let (event, body) = sample(spur, project, tester, trigger)?;
    let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    let log = super::log::post_and_record(spur, hook, event, body).await?;
    match (log.response_status, log.internal_error_message) {
        (Some(status), _) if (200..300).contains(&status) => Ok(status),
        (_, Some(error)) => Err(error),
        _ => Err(log.response_body.chars().take(1000).collect()),
    }
}

/// The event name and body for `trigger`, or GitLab's `Ensure the project has ...`.
fn sample(
    spur: &Spur,
    project: &Project,
    tester: &User,
    trigger: &str,
) -> Result<(&'static str, serde_json::Value), String> {
    let newest = |filter: PipelineFilter| {
        spur.store
            .project_pipelines(project.id, &filter, PipelineOrder::Id, true, 0, 1)
            .map(|(p, _)| p.into_iter().next())
            .map_err(|e| e.to_string())
    };
    let path = spur.repos.path_of(&project.repo_name, &crate::git::Origin::of(project));
    match trigger {
        "push_events" => {
            let branch = project.default_branch.clone().unwrap_or_else(|| "main".into());
            let head = spur
                .repos
                .resolve(&path, &branch)
                .map_err(|_| "Ensure the project has at least one commit.".to_string())?;
            Ok((
                "Push Hook",
                payload::sample_push(spur, project, tester, &branch, false, &head.sha),
            ))
        }
        "tag_push_events" => {
            let mut tags = spur.repos.tags(&path).unwrap_or_default();
            tags.sort();
            let tag = tags.pop().ok_or("Ensure the project has tags.")?;
            let head = spur
                .repos
                .resolve(&path, &tag)
                .map_err(|_| "Ensure the project has tags.")?;
            Ok((
                "Tag Push Hook",
                payload::sample_push(spur, project, tester, &tag, true, &head.sha),
            ))
        }
        "pipeline_events" => {
            let p = newest(PipelineFilter::default())?.ok_or("Ensure the project has CI pipelines.")?;
            let jobs = spur.store.pipeline_jobs(p.id).map_err(|e| e.to_string())?;
            Ok(("Pipeline Hook", payload::pipeline_hook(spur, project, &p, &jobs)))
        }
        "job_events" => {
            let builds = |j: &crate::domain::Job| j.external.is_none();
            let (jobs, _) = spur
                .store
                .project_jobs_matching(project.id, &builds, 0, 1)
                .map_err(|e| e.to_string())?;
            let job = jobs.into_iter().next().ok_or("Ensure the project has CI jobs.")?;
            let p = spur
                .store
                .pipeline(job.pipeline_id)
                .map_err(|e| e.to_string())?
                .ok_or("Ensure the project has CI jobs.")?;
            Ok(("Job Hook", payload::job_hook(spur, project, &p, &job)))
        }
        "issues_events" | "confidential_issues_events" => Err("Ensure the project has issues.".into()),
        "note_events" | "emoji_events" => Err("Ensure the project has notes.".into()),
        "merge_requests_events" => Err("Ensure the project has merge requests.".into()),
        "wiki_page_events" => Err("Ensure the wiki is enabled and has pages.".into()),
        "releases_events" => Err("Ensure the project has releases.".into()),
        _ => Err("Ensure the project has resource access tokens.".into()),
    }
}

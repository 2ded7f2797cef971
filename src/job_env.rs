//! What a started job's environment holds besides its planned variables: the predefined
//! variables only known when it starts (`CI_JOB_*`, `CI_PIPELINE_ID`, `CI_SERVER_URL`,
//! `CI_JOB_TOKEN`, ...), and its unsealed variables with the keys that are files and the values
//! to mask. Shared by every kind of executor.

use crate::context::Spur;
use crate::domain::{Job, JobVariables, Pipeline, Project};

/// The predefined variables of a job that starts now, lowest precedence first.
pub fn runtime_variables(
    spur: &Spur,
    project: &Project,
    pipeline: &Pipeline,
    job: &Job,
    token: &str,
) -> Vec<(String, String)> {
    let server = spur.external_url.clone();
    let (protocol, host_port) = server.split_once("://").unwrap_or(("http", server.as_str()));
    let (host, port) = match host_port.split_once(':') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (
            host_port.to_string(),
            if protocol == "https" { "443" } else { "80" }.to_string(),
        ),
    };
    let project_url = spur.url(&project.full_path);
    let mut vars = vec![
        ("CI_SERVER", "yes".to_string()),
        ("CI_SERVER_URL", server.clone()),
        ("CI_SERVER_HOST", host),
        ("CI_SERVER_PORT", port),
        ("CI_SERVER_PROTOCOL", protocol.to_string()),
        ("CI_SERVER_NAME", "spur".to_string()),
        ("CI_SERVER_VERSION", env!("CARGO_PKG_VERSION").to_string()),
        ("CI_API_V4_URL", format!("{server}/api/v4")),
        ("CI_PROJECT_URL", project_url.clone()),
        ("CI_CONFIG_PATH", ".gitlab-ci.yml".to_string()),
        (
            "CI_COMMIT_REF_PROTECTED",
            crate::protected_refs::is_protected(spur, project.id, &pipeline.ref_name, pipeline.tag)
                .unwrap_or(false)
                .to_string(),
        ),
        ("CI_PROJECT_VISIBILITY", project.visibility.as_str().to_string()),
        ("CI_PIPELINE_ID", pipeline.id.to_string()),
        ("CI_PIPELINE_IID", pipeline.iid.to_string()),
        ("CI_PIPELINE_URL", format!("{project_url}/-/pipelines/{}", pipeline.id)),
        ("CI_PIPELINE_CREATED_AT", crate::clock::iso8601(pipeline.created_at)),
        ("CI_JOB_ID", job.id.to_string()),
        ("CI_JOB_URL", format!("{project_url}/-/jobs/{}", job.id)),
        (
            "CI_JOB_STARTED_AT",
            crate::clock::iso8601(job.started_at.unwrap_or(job.created_at)),
        ),
        ("CI_JOB_TOKEN", token.to_string()),
        (
            "CI_JOB_MANUAL",
            if job.when == crate::domain::JobWhen::Manual {
                "true"
            } else {
                ""
            }
            .to_string(),
        ),
        ("CI_RUNNER_DESCRIPTION", job.runner.clone().unwrap_or_default()),
        ("CI_RUNNER_TAGS", format!("{:?}", job.tags)),
        ("GITLAB_USER_ID", job.user_id.to_string()),
    ];
    if let Ok(Some(user)) = spur.store.user(job.user_id) {
        vars.push(("GITLAB_USER_LOGIN", user.username.clone()));
        vars.push(("GITLAB_USER_NAME", user.name.clone()));
        vars.push(("GITLAB_USER_EMAIL", user.email.clone()));
    }
    if let Some(up) = &pipeline.upstream {
        vars.push(("CI_UPSTREAM_PIPELINE_ID", up.pipeline_id.to_string()));
        vars.push(("CI_UPSTREAM_JOB_ID", up.job_id.to_string()));
        vars.push(("CI_UPSTREAM_PROJECT_ID", up.project_id.to_string()));
    }
    if let Some(trigger_id) = pipeline.trigger_id
        && let Ok(Some((trigger, _))) = spur.store.trigger(trigger_id)
    {
        vars.push(("CI_TRIGGER_SHORT_TOKEN", trigger.short_token.clone()));
    }
    if job.when != crate::domain::JobWhen::Manual {
        vars.retain(|(k, _)| *k != "CI_JOB_MANUAL");
    }
    if let Some(image) = &job.settings.image {
        vars.push(("CI_JOB_IMAGE", image.name.clone()));
    }
    if let Some(env) = &job.settings.environment {
        vars.push(("CI_ENVIRONMENT_NAME", env.name.clone()));
        let slug = spur
            .store
            .environments(job.project_id)
            .ok()
            .and_then(|all| all.into_iter().find(|e| e.name == env.name))
            .map(|e| e.slug);
        if let Some(slug) = slug {
            vars.push(("CI_ENVIRONMENT_SLUG", slug));
        }
        if let Some(url) = &env.url {
            vars.push(("CI_ENVIRONMENT_URL", url.clone()));
        }
        vars.push(("CI_ENVIRONMENT_ACTION", env.action.clone()));
        vars.push(("CI_ENVIRONMENT_TIER", env.tier.clone()));
    }
    vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A job's sealed variables, unsealed. Records written before file keys and masks were kept
/// hold a bare list of pairs.
pub fn job_variables(spur: &Spur, job_id: u64) -> Result<JobVariables, String> {
    let Some(sealed) = spur.store.job_variables_sealed(job_id).map_err(|e| e.to_string())? else {
        return Ok(JobVariables::default());
    };
    let plain = spur.secrets.unseal(&sealed).map_err(|e| e.to_string())?;
    if let Ok(vars) = serde_json::from_slice::<JobVariables>(&plain) {
        return Ok(vars);
    }
    let vars: Vec<(String, String)> = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
    Ok(JobVariables {
        vars,
        ..JobVariables::default()
    })
}

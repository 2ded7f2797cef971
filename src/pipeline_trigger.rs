//! Creating a pipeline from a trigger token, in GitLab's order of checks (after the HTTP layer
//! has validated parameters and found the project): the token, its owner's rights, the
//! variables, the ref, then the pipeline's plan from `.gitlab-ci.yml` at the commit. Answers only
//! after the pipeline, its jobs and their variables are durably committed.
//! Knows nothing of HTTP; `http::api::trigger` maps the outcomes to GitLab's statuses and bodies.

use crate::app::Spur;
use crate::auth;
use crate::ci_config::plan::{Context, Plan, PlanError, plan};
use crate::clock;
use crate::domain::{
    AccessLevel, Job, JobStatus, Pipeline, PipelineSource, PipelineStatus, Project, Variable, VariableType,
    is_valid_variable_key,
};
use crate::git::Origin;
use crate::storage::{self, NewJob, NewPipeline};
use std::sync::Arc;

/// The name of the variable that carries the request's parameters to jobs.
pub const TRIGGER_PAYLOAD: &str = "TRIGGER_PAYLOAD";

/// A validated trigger request.
#[derive(Debug, Clone)]
pub struct TriggerRequest {
    /// The token as sent.
    pub token: String,
    /// The ref as sent (short or full).
    pub ref_name: String,
    /// `variables[KEY]=value`, in the order sent, last value per key.
    pub variables: Vec<(String, String)>,
    /// The JSON text stored as `TRIGGER_PAYLOAD`: every parameter but the token.
    pub payload: String,
}

/// Why no pipeline was created. Nothing was written in any of these cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerRefusal {
    /// Unknown, revoked, expired or foreign token, or an owner who cannot see the project:
    /// indistinguishable on purpose (404).
    NotFound,
    /// The pipeline could not be created (400, `{"message":{"base":[...]}}`).
    Invalid(String),
    /// The pipeline was refused after it was built (422, `{"message":{"base":[...]}}`).
    Unprocessable(String),
}

/// Why a trigger failed inside spur.
#[derive(Debug)]
pub enum TriggerError {
    /// The database failed.
    Storage(storage::Error),
    /// A blocking task was lost.
    Internal(String),
}

impl From<storage::Error> for TriggerError {
    fn from(e: storage::Error) -> Self {
        TriggerError::Storage(e)
    }
}

/// Runs the checks and records the pipeline.
pub async fn trigger_pipeline(
    spur: Arc<Spur>,
    project: Project,
    request: TriggerRequest,
) -> Result<Result<Pipeline, TriggerRefusal>, TriggerError> {
    let origin = Origin::classify(project.import_url.as_deref()).unwrap_or(Origin::Hosted);
    if matches!(origin, Origin::Remote(_)) {
        // Only fetch for a token that exists, so that anonymous junk cannot drive fetches.
        let s = spur.clone();
        let token = request.token.clone();
        let known = blocking(move || Ok(s.store.trigger_by_digest(&s.secrets.digest(&token))?.is_some())).await?;
        if known && let Err(e) = spur.repos.refresh(&project.repo_name, &origin).await {
            tracing::warn!(project_id = project.id, error = %e, "mirror fetch failed; resolving against the last fetched state");
        }
    }
    let s = spur.clone();
    let checked = blocking(move || check(&s, &project, &origin, &request)).await?;
    let (new, config_error) = match checked {
        Ok(checked) => checked,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let pipeline = spur.store.create_pipeline(new).await?;
    match config_error {
        // GitLab stores a failed pipeline for a configuration error, then answers 422.
        Some(message) => Ok(Err(TriggerRefusal::Unprocessable(message))),
        None => Ok(Ok(pipeline)),
    }
}

/// The pipeline to write, and the configuration error that makes it a failed one.
type Checked = (NewPipeline, Option<String>);

/// Everything that reads: token, owner, rights, variables, ref, and the pipeline's plan.
fn check(
    spur: &Spur,
    project: &Project,
    origin: &Origin,
    request: &TriggerRequest,
) -> Result<Result<Checked, TriggerRefusal>, TriggerError> {
    let now = clock::now();
    let digest = spur.secrets.digest(&request.token);
    let Some(trigger) = spur.store.trigger_by_digest(&digest)? else {
        return Ok(Err(TriggerRefusal::NotFound));
    };
    if trigger.project_id != project.id || trigger.is_expired(now) {
        return Ok(Err(TriggerRefusal::NotFound));
    }
    let Some(owner) = spur.store.user(trigger.owner_id)?.filter(|u| !u.blocked) else {
        return Ok(Err(TriggerRefusal::NotFound));
    };
    let access = auth::project_access(&spur.store, Some(&owner), project, now)?;
    if !access.can_read {
        return Ok(Err(TriggerRefusal::NotFound));
    }
    let variables = match pipeline_variables(request) {
        Ok(v) => v,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if !access.at_least(AccessLevel::Developer) {
        return Ok(Err(TriggerRefusal::Invalid(
            "Insufficient permissions to create a new pipeline".into(),
        )));
    }
    if !request.variables.is_empty() && !project.variables_override_role.allows(access.level) {
        return Ok(Err(TriggerRefusal::Invalid(
            "Insufficient permissions to set pipeline variables".into(),
        )));
    }
    let path = spur.repos.path_of(&project.repo_name, origin);
    let resolved = match spur.repos.resolve(&path, &request.ref_name) {
        Ok(r) => r,
        Err(e) => {
            if let crate::git::RefError::Repository(detail) = &e {
                tracing::warn!(project_id = project.id, error = %detail, "repository could not be read");
            }
            return Ok(Err(TriggerRefusal::Invalid(e.message().to_string())));
        }
    };
    let files = spur
        .repos
        .commit_files(&path, &resolved.sha)
        .map_err(TriggerError::Internal)?;
    let ctx = Context {
        source: PipelineSource::Trigger.as_str().into(),
        ref_name: resolved.short.clone(),
        ref_is_tag: resolved.tag,
        default_branch: project.default_branch.clone().unwrap_or_else(|| "main".into()),
        project_path: project.full_path.clone(),
        project_id: project.id,
        sha: resolved.sha.clone(),
        commit_message: files.message.clone(),
        pipeline_variables: request.variables.clone(),
        project_variables: Vec::new(),
    };
    let (status, yaml_errors, jobs) = match plan(&|p| files.read(p), files.paths(), &ctx) {
        Ok(plan) => (PipelineStatus::Created, None, planned_jobs(spur, plan, owner.id, now)?),
        Err(PlanError::Filtered(message)) => return Ok(Err(TriggerRefusal::Invalid(message))),
        Err(PlanError::Config(message)) => (PipelineStatus::Failed, Some(message), Vec::new()),
    };
    let new = NewPipeline {
        project_id: project.id,
        sha: resolved.sha,
        ref_name: resolved.short,
        tag: resolved.tag,
        source: PipelineSource::Trigger,
        user_id: owner.id,
        trigger_id: Some(trigger.id),
        variables_sealed: seal_json(spur, &variables)?,
        status,
        yaml_errors: yaml_errors.clone(),
        jobs,
        now,
    };
    Ok(Ok((new, yaml_errors)))
}

/// Serialises `value` to JSON and seals it with the data dir's key.
fn seal_json<T: serde::Serialize>(spur: &Spur, value: &T) -> Result<Vec<u8>, TriggerError> {
    let bytes = serde_json::to_vec(value).map_err(|e| TriggerError::Internal(e.to_string()))?;
    spur.secrets
        .seal(&bytes)
        .map_err(|e| TriggerError::Internal(e.to_string()))
}

/// The job records of a plan, each with its sealed variables.
fn planned_jobs(spur: &Spur, plan: Plan, user_id: u64, now: i64) -> Result<Vec<NewJob>, TriggerError> {
    let mut out = Vec::with_capacity(plan.jobs.len());
    for planned in plan.jobs {
        let stage_index = plan.stages.iter().position(|s| *s == planned.stage).unwrap_or(0);
        let tags = match planned.config.get("tags") {
            Some(crate::ci_config::yaml::Yaml::Seq(items)) => items
                .iter()
                .filter_map(crate::ci_config::variables::scalar_text)
                .collect(),
            _ => Vec::new(),
        };
        let trigger = planned.trigger.as_ref().map(|t| format!("{t:?}"));
        let variables_sealed = seal_json(spur, &planned.variables)?;
        let job = Job {
            id: 0,
            pipeline_id: 0,
            project_id: 0,
            name: planned.name,
            stage: planned.stage,
            stage_index,
            status: JobStatus::Created,
            when: planned.when,
            allow_failure: planned.allow_failure,
            allow_failure_exit_codes: planned.allow_failure_exit_codes,
            needs: planned.needs,
            before_script: planned.before_script,
            script: planned.script,
            after_script: planned.after_script,
            trigger,
            tags,
            user_id,
            created_at: now,
            started_at: None,
            finished_at: None,
        };
        out.push(NewJob { job, variables_sealed });
    }
    Ok(out)
}

/// The pipeline's variables: the caller's, then `TRIGGER_PAYLOAD` (a raw file variable).
fn pipeline_variables(request: &TriggerRequest) -> Result<Vec<Variable>, TriggerRefusal> {
    let mut out = Vec::with_capacity(request.variables.len() + 1);
    for (key, value) in &request.variables {
        let key = key.trim();
        if key == TRIGGER_PAYLOAD {
            return Err(TriggerRefusal::Unprocessable(format!(
                "Duplicate variable name: {TRIGGER_PAYLOAD}"
            )));
        }
        if !is_valid_variable_key(key) {
            return Err(TriggerRefusal::Invalid(format!(
                "Variables key '{}' is invalid: it can contain only letters, digits and '_', at most 255 characters",
                key.chars().take(64).collect::<String>()
            )));
        }
        out.push(Variable {
            key: key.to_string(),
            value: value.clone(),
            variable_type: VariableType::EnvVar,
            raw: false,
        });
    }
    out.push(Variable {
        key: TRIGGER_PAYLOAD.into(),
        value: request.payload.clone(),
        variable_type: VariableType::File,
        raw: true,
    });
    Ok(out)
}

/// Reads a pipeline's variables back (decrypting them).
pub fn pipeline_variables_of(spur: &Spur, pipeline_id: u64) -> Result<Vec<Variable>, TriggerError> {
    let Some(sealed) = spur.store.pipeline_variables_sealed(pipeline_id)? else {
        return Ok(Vec::new());
    };
    let plain = spur
        .secrets
        .unseal(&sealed)
        .map_err(|e| TriggerError::Internal(e.to_string()))?;
    serde_json::from_slice(&plain).map_err(|e| TriggerError::Internal(e.to_string()))
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, TriggerError> + Send + 'static,
) -> Result<R, TriggerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TriggerError::Internal(e.to_string()))?
}

//! Creating a pipeline from a trigger token, in GitLab's order of checks (after the HTTP layer
//! has validated parameters and found the project): the token, its owner's rights, the
//! variables, the ref, then the pipeline's plan from `.gitlab-ci.yml` at the commit. Answers only
//! after the pipeline, its jobs and their variables are durably committed.
//! Knows nothing of HTTP; `http::api::trigger` maps the outcomes to GitLab's statuses and bodies.

use crate::auth;
use crate::clock;
use crate::context::Spur;
use crate::domain::{
    JobStatus, Pipeline, PipelineSource, Project, Upstream, Variable, VariableType, is_valid_variable_key,
};
use crate::git::Origin;
use crate::pipeline_create::{self, CreateRequest, Prepared, blocking};
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
    /// Values for `.gitlab-ci.yml`'s `spec:inputs` (`inputs[name]=value` or a JSON object).
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// The request's idempotency key, stored with the pipeline it creates.
    pub idempotency: Option<crate::storage::IdempotencyTag>,
    /// The client's address, kept as the token's last use.
    pub client: Option<String>,
}

pub use crate::pipeline_create::{CreateError as TriggerError, CreateRefusal as TriggerRefusal};

/// Runs the checks and records the pipeline.
pub async fn trigger_pipeline(
    spur: Arc<Spur>,
    project: Project,
    request: TriggerRequest,
) -> Result<Result<Pipeline, TriggerRefusal>, TriggerError> {
    let origin = Origin::of(&project);
    if matches!(origin, Origin::Remote(_)) {
        // Only fetch for a token that exists, so that anonymous junk cannot drive fetches.
        let s = spur.clone();
        let token = request.token.clone();
        let known = blocking(move || Ok(s.store.trigger_by_digest(&s.secrets.digest(&token))?.is_some())).await?;
        if known && let Err(e) = crate::mirror::fetch_origin(&spur, &project).await {
            tracing::warn!(project_id = project.id, error = %e, "mirror fetch failed; resolving against the last fetched state");
        }
    }
    // A small configuration already checked plans in well under a millisecond, less than the
    // hop to the blocking pool costs in wake-ups; anything else (includes to fetch, a config
    // never seen, inputs) is planned there, off the HTTP worker.
    // The ref is resolved once for the request: the plan reads the commit this check saw.
    let (resolved, quick) = resolve_and_gauge(&spur, &project, &origin, &request.ref_name);
    let quick = quick && request.inputs.is_empty();
    let checked = if quick {
        check(&spur, &project, &origin, &request, resolved)?
    } else {
        let s = spur.clone();
        blocking(move || check(&s, &project, &origin, &request, resolved)).await?
    };
    match checked {
        // The trigger API stores a failed pipeline for a configuration error, then answers 422.
        Ok(prepared) => pipeline_create::record(&spur, prepared, true).await,
        Err(refusal) => Ok(Err(refusal)),
    }
}

/// `ref_name` resolved (`None` when it cannot be: the full path reports why), and whether the
/// `.gitlab-ci.yml` there is one `ci_config::plans_quickly` says plans without composing.
fn resolve_and_gauge(
    spur: &Spur,
    project: &Project,
    origin: &Origin,
    ref_name: &str,
) -> (Option<crate::git::ResolvedRef>, bool) {
    let path = spur.repos.path_of(&project.repo_name, origin);
    let Ok(resolved) = spur.repos.resolve(&path, ref_name) else {
        return (None, false);
    };
    let quick = spur.repos.commit_files(&path, &resolved.sha).is_ok_and(|files| {
        files
            .read(".gitlab-ci.yml")
            .is_some_and(|text| crate::ci_config::plans_quickly(&text))
    });
    (Some(resolved), quick)
}

/// Whether `token` may still start pipelines on `project` at all: a live trigger token of the
/// project whose owner sees it, or a running job's token its allowlist admits. A stored
/// idempotency key is replayed only for such a credential.
pub fn credential_live(spur: &Spur, project: &Project, token: &str) -> Result<bool, crate::storage::Error> {
    let now = clock::now();
    let digest = spur.secrets.digest(token);
    if let Some(t) = spur.store.trigger_by_digest(&digest)? {
        if t.project_id != project.id || t.is_expired(now) || !t.accepts(&digest, now) {
            return Ok(false);
        }
        let Some(owner) = spur.store.user(t.owner_id)?.filter(|u| !u.blocked) else {
            return Ok(false);
        };
        return Ok(auth::project_access(&spur.store, Some(&owner), project, now)?.can_read);
    }
    if !token.starts_with(JOB_TOKEN_PREFIX) {
        return Ok(false);
    }
    let Some(job) = spur
        .store
        .job_by_token_digest(&digest)?
        .filter(|j| j.status == JobStatus::Running)
    else {
        return Ok(false);
    };
    let Some(user) = spur.store.user(job.user_id)?.filter(|u| !u.blocked) else {
        return Ok(false);
    };
    let access = auth::project_access(&spur.store, Some(&user), project, now)?;
    Ok(access.can_read && spur.store.job_token_allowed(project.id, job.project_id)?)
}

/// Everything that reads: token, owner, rights, variables, ref, and the pipeline's plan.
fn check(
    spur: &Spur,
    project: &Project,
    origin: &Origin,
    request: &TriggerRequest,
    resolved: Option<crate::git::ResolvedRef>,
) -> Result<Result<Prepared, TriggerRefusal>, TriggerError> {
    let now = clock::now();
    let digest = spur.secrets.digest(&request.token);
    let Some(trigger) = spur.store.trigger_by_digest(&digest)? else {
        return job_token_trigger(spur, project, origin, request, &digest);
    };
    if trigger.project_id != project.id || trigger.is_expired(now) || !trigger.accepts(&digest, now) {
        return Ok(Err(TriggerRefusal::NotFound));
    }
    let Some(owner) = spur.store.user(trigger.owner_id)?.filter(|u| !u.blocked) else {
        return Ok(Err(TriggerRefusal::NotFound));
    };
    let access = auth::project_access(&spur.store, Some(&owner), project, now)?;
    if !access.can_read {
        return Ok(Err(TriggerRefusal::NotFound));
    }
    // The token's own limits: its refs, and the keys a caller may name (TRIGGER_PAYLOAD is
    // spur's, not the caller's).
    let keys: Vec<&str> = request
        .variables
        .iter()
        .map(|(k, _)| k.as_str())
        .chain(request.inputs.keys().map(String::as_str))
        .collect();
    if let Some(why) = crate::trigger_tokens::scope_refusal(&trigger, &request.ref_name, &keys) {
        return Ok(Err(TriggerRefusal::Invalid(why)));
    }
    let variables = match pipeline_variables(request) {
        Ok(v) => v,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let request = CreateRequest {
        trigger_id: Some(trigger.id),
        inputs: request.inputs.clone(),
        idempotency: request.idempotency,
        client: request.client.clone(),
        trigger_version: Some((trigger.id, trigger.updated_at)),
        commit: resolved,
        ..CreateRequest::new(
            PipelineSource::Trigger,
            owner,
            access,
            request.ref_name.clone(),
            variables,
            request.variables.len(),
        )
    };
    pipeline_create::prepare(spur, project, origin, &request)
}

/// The `CI_JOB_TOKEN` form: a running job's token starts a multi-project pipeline (source
/// `pipeline`) as the job's user, if the target project's allowlist admits the job's project.
fn job_token_trigger(
    spur: &Spur,
    project: &Project,
    origin: &Origin,
    request: &TriggerRequest,
    digest: &[u8],
) -> Result<Result<Prepared, TriggerRefusal>, TriggerError> {
    if !request.token.starts_with(JOB_TOKEN_PREFIX) {
        return Ok(Err(TriggerRefusal::NotFound));
    }
    let Some(job) = spur.store.job_by_token_digest(digest)? else {
        return Ok(Err(TriggerRefusal::NotFound));
    };
    if job.status != JobStatus::Running {
        return Ok(Err(TriggerRefusal::Unauthorized("Job is not running".into())));
    }
    let (Some(source), Some(upstream)) = (
        spur.store.project(job.project_id)?,
        spur.store.pipeline(job.pipeline_id)?,
    ) else {
        return Ok(Err(TriggerRefusal::Unauthorized("Project has been deleted!".into())));
    };
    let Some(user) = spur.store.user(job.user_id)?.filter(|u| !u.blocked) else {
        return Ok(Err(TriggerRefusal::NotFound));
    };
    let access = auth::project_access(&spur.store, Some(&user), project, clock::now())?;
    if !access.can_read || !spur.store.job_token_allowed(project.id, source.id)? {
        return Ok(Err(TriggerRefusal::NotFound));
    }
    let link = match downstream_link(spur, &upstream, job.id, false, false) {
        Ok(link) => link,
        Err(message) => return Ok(Err(TriggerRefusal::Invalid(message))),
    };
    let variables = match pipeline_variables(request) {
        Ok(v) => v,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let create = CreateRequest {
        upstream: Some(link),
        inputs: request.inputs.clone(),
        idempotency: request.idempotency,
        ..CreateRequest::new(
            PipelineSource::Pipeline,
            user,
            access,
            request.ref_name.clone(),
            variables,
            request.variables.len(),
        )
    };
    pipeline_create::prepare(spur, project, origin, &create)
}

/// The link of a new downstream pipeline to `upstream`'s job `job_id`: a child sits one level
/// deeper (at most two), a multi-project pipeline one hop further (at most
/// `--max-downstream-depth`). Refused with a message when a limit is reached.
pub fn downstream_link(
    spur: &Spur,
    upstream: &Pipeline,
    job_id: u64,
    child: bool,
    mirrored: bool,
) -> Result<Upstream, String> {
    let (root_id, depth, child_depth) = match &upstream.upstream {
        Some(up) => (up.root_id, up.depth, up.child_depth),
        None => (upstream.id, 0, 0),
    };
    let (depth, child_depth) = if child {
        (depth, child_depth + 1)
    } else {
        (depth + 1, 0)
    };
    if child && child_depth > MAX_CHILD_DEPTH {
        return Err(format!(
            "Maximum number of nested child pipelines reached: child pipelines nest at most {MAX_CHILD_DEPTH} levels"
        ));
    }
    if !child && depth > spur.max_downstream_depth {
        return Err(format!(
            "Pipeline chain is too deep: multi-project pipelines chain at most {} levels",
            spur.max_downstream_depth
        ));
    }
    Ok(Upstream {
        job_id,
        pipeline_id: upstream.id,
        project_id: upstream.project_id,
        root_id,
        depth,
        child_depth,
        mirrored,
    })
}

/// Child pipelines nest at most this deep below their parent (GitLab's limit).
pub const MAX_CHILD_DEPTH: u32 = 2;

/// The prefix of `CI_JOB_TOKEN` values.
pub const JOB_TOKEN_PREFIX: &str = "glcbt-";

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

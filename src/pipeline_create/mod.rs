//! Creating a pipeline for a user allowed to see the project, whatever started it (a trigger
//! token, the API): the user's rights, the project's minimum role for variables, the ref, the
//! plan from `.gitlab-ci.yml` at the commit, and the durable record of the pipeline and its jobs.
//! Knows nothing of HTTP; refusals are values that the API maps to GitLab's statuses.

use crate::auth::ProjectAccess;
use crate::ci_config::job_settings;
use crate::ci_config::plan::{Context, Plan, PlanError, plan};
use crate::ci_config::yaml::{self, Yaml};
use crate::clock;
use crate::context::Spur;
use crate::domain::{
    AccessLevel, Job, JobStatus, JobVariables, Pipeline, PipelineSource, PipelineStatus, Project, ProjectVariable,
    Upstream, User, Variable, VariableType,
};
use crate::git::{CommitFiles, Origin, ResolvedRef};
use crate::scheduler::decide;
use crate::storage::{self, NewJob, NewPipeline};
use std::sync::Arc;

mod source;
pub use source::RepoSource;
use source::child_config;

/// Why no pipeline was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateRefusal {
    /// The credential or project is not usable; indistinguishable on purpose (404).
    NotFound,
    /// The pipeline could not be created; nothing stored (400, `{"message":{"base":[...]}}`).
    Invalid(String),
    /// Refused after it was built; for configuration errors the failed pipeline is stored (422).
    Unprocessable(String),
    /// A job token that is known but not usable (401 `{"message":"..."}`).
    Unauthorized(String),
}

/// Why creation failed inside spur.
#[derive(Debug)]
pub enum CreateError {
    /// The database failed.
    Storage(storage::Error),
    /// Something else failed (a blocking task, the key, a repository).
    Internal(String),
}

impl From<storage::Error> for CreateError {
    fn from(e: storage::Error) -> Self {
        CreateError::Storage(e)
    }
}

/// Who creates which pipeline.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// What starts it.
    pub source: PipelineSource,
    /// The user it runs as.
    pub user: User,
    /// That user's access to the project.
    pub access: ProjectAccess,
    /// The ref as sent (short or full).
    pub ref_name: String,
    /// Every pipeline variable, including ones spur adds (`TRIGGER_PAYLOAD`).
    pub variables: Vec<Variable>,
    /// How many of them the caller sent (only those need the minimum role).
    pub user_variable_count: usize,
    /// The trigger token that starts it, if any.
    pub trigger_id: Option<u64>,
    /// The upstream job of a multi-project or child pipeline.
    pub upstream: Option<Upstream>,
    /// A child pipeline's configuration: these files of the commit instead of `.gitlab-ci.yml`.
    pub child_include: Option<Vec<(String, serde_json::Value)>>,
    /// A child pipeline's commit (the parent's), instead of resolving `ref_name`.
    pub commit: Option<ResolvedRef>,
    /// For a push pipeline: the commit the ref pointed at before the push.
    pub before_sha: Option<String>,
    /// Values for the configuration's `spec:inputs`.
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// The request's idempotency key: stored with the pipeline, never with a refusal.
    pub idempotency: Option<crate::storage::IdempotencyTag>,
    /// The client's address, kept as the trigger token's last use.
    pub client: Option<String>,
    /// The trigger token's id and `updated_at` as checked (the commit refuses if it changed).
    pub trigger_version: Option<(u64, crate::domain::Millis)>,
    /// The schedule run that makes it (the commit refuses a run made already).
    pub schedule_run: Option<crate::domain::ScheduleRun>,
}

impl CreateRequest {
    /// A request with no upstream, started by `source` as `user`.
    pub fn new(
        source: PipelineSource,
        user: User,
        access: ProjectAccess,
        ref_name: String,
        variables: Vec<Variable>,
        user_variable_count: usize,
    ) -> CreateRequest {
        CreateRequest {
            source,
            user,
            access,
            ref_name,
            variables,
            user_variable_count,
            trigger_id: None,
            upstream: None,
            child_include: None,
            commit: None,
            before_sha: None,
            inputs: serde_json::Map::new(),
            idempotency: None,
            client: None,
            trigger_version: None,
            schedule_run: None,
        }
    }
}

/// At most this many pipelines in one hierarchy (GitLab's limit).
pub const MAX_HIERARCHY_SIZE: u64 = 1000;

/// The pipeline to record, the configuration error that makes it a failed one, and whether its
/// ref is protected (runners limited to protected refs may take its jobs).
pub struct Prepared {
    /// The pipeline and its jobs.
    pub pipeline: NewPipeline,
    /// A configuration error: the pipeline is stored failed.
    pub config_error: Option<String>,
    /// Whether the pipeline's branch or tag is protected.
    pub protected_ref: bool,
}

/// Checks rights, the ref and the plan; returns what to record. Synchronous (reads redb and git).
pub fn prepare(
    spur: &Spur,
    project: &Project,
    origin: &Origin,
    request: &CreateRequest,
) -> Result<Result<Prepared, CreateRefusal>, CreateError> {
    let now = clock::now();
    if !request.access.at_least(AccessLevel::Developer) {
        return Ok(Err(CreateRefusal::Invalid(
            "Insufficient permissions to create a new pipeline".into(),
        )));
    }
    if request.user_variable_count > 0 && !project.variables_override_role.allows(request.access.level) {
        return Ok(Err(CreateRefusal::Invalid(
            "Insufficient permissions to set pipeline variables".into(),
        )));
    }
    if let Some(up) = &request.upstream
        && spur.store.hierarchy_size(up.root_id)? >= MAX_HIERARCHY_SIZE
    {
        return Ok(Err(CreateRefusal::Invalid(format!(
            "Pipeline hierarchy is too large: a hierarchy holds at most {MAX_HIERARCHY_SIZE} pipelines"
        ))));
    }
    let path = spur.repos.path_of(&project.repo_name, origin);
    let resolved = match request
        .commit
        .clone()
        .map_or_else(|| spur.repos.resolve(&path, &request.ref_name), Ok)
    {
        Ok(r) => r,
        Err(e) => {
            if let crate::git::RefError::Repository(detail) = &e {
                tracing::warn!(project_id = project.id, error = %detail, "repository could not be read");
            }
            return Ok(Err(CreateRefusal::Invalid(e.message().to_string())));
        }
    };
    let rights =
        crate::protected_refs::pipeline_rights(spur, project.id, &resolved.short, resolved.tag, &request.access)
            .map_err(CreateError::Internal)?;
    if !rights.may_run {
        return Ok(Err(CreateRefusal::Invalid(format!(
            "You do not have sufficient permission to run a pipeline on '{}'. Please select a different branch or contact your administrator for assistance.",
            resolved.short
        ))));
    }
    let files = spur
        .repos
        .commit_files(&path, &resolved.sha)
        .map_err(CreateError::Internal)?;
    let project_variables = crate::project_variables::records_for_pipeline(spur, project.id, rights.protected)
        .map_err(CreateError::Internal)?;
    let extras = VariableExtras::of(&project_variables, &request.variables);
    let masked_variables = project_variables
        .iter()
        .filter(|v| v.masked)
        .map(|v| v.key.clone())
        .collect();
    let raw_variables = project_variables
        .iter()
        .filter(|v| v.raw)
        .map(|v| v.key.clone())
        .chain(request.variables.iter().filter(|v| v.raw).map(|v| v.key.clone()))
        .collect();
    let project_variables = project_variables.into_iter().map(|v| (v.key, v.value)).collect();
    let ctx = Context {
        source: request.source.as_str().into(),
        ref_name: resolved.short.clone(),
        ref_is_tag: resolved.tag,
        default_branch: project.default_branch.clone().unwrap_or_else(|| "main".into()),
        project_path: project.full_path.clone(),
        project_id: project.id,
        sha: resolved.sha.clone(),
        commit_message: files.message.clone(),
        before_sha: request.before_sha.clone().unwrap_or_else(|| "0".repeat(40)),
        pipeline_variables: request
            .variables
            .iter()
            .map(|v| (v.key.clone(), v.value.clone()))
            .collect(),
        project_variables,
        inputs: match yaml::from_json(&serde_json::Value::Object(request.inputs.clone())) {
            Yaml::Map(m) => m,
            _ => Default::default(),
        },
        server_url: spur.external_url.clone(),
        ref_protected: rights.protected,
        merge_request: None,
        masked_variables,
        raw_variables,
    };
    let source = RepoSource {
        spur,
        user: Some(&request.user),
        files: files.clone(),
        main_config: request.child_include.as_deref().map(child_config),
        pushed: pushed_paths(spur, &path, request, &resolved, &files),
        repository: Some(path.clone()),
    };
    let skipped = request.source == PipelineSource::Push && asks_to_skip_ci(&files.message);
    let planned = if skipped {
        Ok(Plan::default())
    } else {
        plan(&source, files.paths(), &ctx)
    };
    let name = planned.as_ref().ok().and_then(|p| p.name.clone());
    let (status, yaml_errors, jobs) = match planned {
        Ok(_) if skipped => (PipelineStatus::Skipped, None, Vec::new()),
        Ok(plan) => {
            let mut jobs = planned_jobs(spur, plan, request.user.id, &extras, now)?;
            let mut records: Vec<Job> = jobs.iter().map(|j| j.job.clone()).collect();
            decide::advance(&mut records, now);
            for (new, decided) in jobs.iter_mut().zip(records.iter()) {
                new.job = decided.clone();
            }
            (decide::pipeline_status(&records), None, jobs)
        }
        Err(PlanError::Filtered(message)) => return Ok(Err(CreateRefusal::Invalid(message))),
        // Wrong inputs from a caller are refused; a push or a parent pipeline records them as
        // the configuration error they are.
        Err(PlanError::Inputs(message)) if request.source.carries_inputs() => {
            return Ok(Err(CreateRefusal::Invalid(message)));
        }
        Err(PlanError::Inputs(message)) => (PipelineStatus::Failed, Some(message), Vec::new()),
        Err(PlanError::Config(message)) => (PipelineStatus::Failed, Some(message), Vec::new()),
    };
    let new = NewPipeline {
        project_id: project.id,
        sha: resolved.sha,
        ref_name: resolved.short,
        tag: resolved.tag,
        source: request.source,
        user_id: request.user.id,
        trigger_id: request.trigger_id,
        variables_sealed: seal_json(spur, &request.variables)?,
        status,
        yaml_errors: yaml_errors.clone(),
        jobs,
        now,
        upstream: request.upstream.clone(),
        before_sha: ctx.before_sha.clone(),
        name,
        idempotency: request.idempotency,
        client: request.client.clone(),
        trigger_version: request.trigger_version,
        announce: spur.events.listened(),
        schedule_run: request.schedule_run,
    };
    Ok(Ok(Prepared {
        pipeline: new,
        config_error: yaml_errors,
        protected_ref: rights.protected,
    }))
}

/// The paths a push to an existing branch changed (`rules:changes`); `None` for other
/// sources, new branches and tags, where GitLab has no diff.
fn pushed_paths(
    spur: &Spur,
    repository: &std::path::Path,
    request: &CreateRequest,
    resolved: &ResolvedRef,
    files: &CommitFiles,
) -> Option<Vec<String>> {
    let before = request.before_sha.as_deref()?;
    if request.source != PipelineSource::Push || resolved.tag || before.bytes().all(|b| b == b'0') {
        return None;
    }
    match spur.repos.commit_files(repository, before) {
        Ok(previous) => Some(files.changed_against(&previous)),
        Err(e) => {
            tracing::warn!(error = %e, "the push's previous commit cannot be read; rules:changes hold");
            None
        }
    }
}

/// Whether a commit message asks push pipelines to skip CI: `[ci skip]` or `[skip ci]`, any
/// case, with a space, `-` or `_` (GitLab's `SKIP_PATTERN`).
pub fn asks_to_skip_ci(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["ci", "skip"].iter().any(|first| {
        let second = if *first == "ci" { "skip" } else { "ci" };
        [" ", "-", "_"]
            .iter()
            .any(|sep| lower.contains(&format!("[{first}{sep}{second}]")))
    })
}

/// Records a prepared pipeline. A configuration error is stored as a failed pipeline and then
/// refused with 422 when `store_config_errors` (trigger API, current GitLab); otherwise it is
/// refused with 400 and nothing is stored (`POST /projects/:id/pipeline`).
pub async fn record(
    spur: &Spur,
    prepared: Prepared,
    store_config_errors: bool,
) -> Result<Result<Pipeline, CreateRefusal>, CreateError> {
    let Prepared {
        pipeline: new,
        config_error,
        protected_ref,
    } = prepared;
    match config_error {
        Some(message) if !store_config_errors => Ok(Err(CreateRefusal::Invalid(message))),
        Some(message) => {
            // The answer is a refusal (422): a corrected retry with the key is judged afresh.
            let new = NewPipeline {
                idempotency: None,
                ..new
            };
            let Ok((pipeline, _)) = spur.store.create_pipeline(new).await? else {
                return Ok(Err(CreateRefusal::NotFound));
            };
            spur.events.send(crate::events::Event::Pipeline(
                pipeline.id,
                pipeline.project_id,
                pipeline.status,
            ));
            Ok(Err(CreateRefusal::Unprocessable(message)))
        }
        None => {
            // A trigger token changed (rotated, revoked, limited) while this request ran.
            let Ok((pipeline, jobs)) = spur.store.create_pipeline(new).await? else {
                return Ok(Err(CreateRefusal::NotFound));
            };
            spur.metrics.pipeline_created(pipeline.source.as_str());
            spur.events.send(crate::events::Event::Pipeline(
                pipeline.id,
                pipeline.project_id,
                pipeline.status,
            ));
            spur.scheduler.pipeline_created(&jobs, protected_ref);
            Ok(Ok(pipeline))
        }
    }
}

/// Prepares on the blocking pool (after fetching a remote mirror) and records: the whole path
/// for a caller already known to be allowed to see the project.
pub async fn create(
    spur: Arc<Spur>,
    project: Project,
    request: CreateRequest,
) -> Result<Result<Pipeline, CreateRefusal>, CreateError> {
    create_with(spur, project, request, false).await
}

async fn create_with(
    spur: Arc<Spur>,
    project: Project,
    request: CreateRequest,
    store_config_errors: bool,
) -> Result<Result<Pipeline, CreateRefusal>, CreateError> {
    let origin = Origin::of(&project);
    if let Err(e) = crate::mirror::fetch_origin(&spur, &project).await {
        tracing::warn!(project_id = project.id, error = %e, "mirror fetch failed; resolving against the last fetched state");
    }
    let s = spur.clone();
    let prepared = blocking(move || prepare(&s, &project, &origin, &request)).await?;
    match prepared {
        Ok(prepared) => record(&spur, prepared, store_config_errors).await,
        Err(refusal) => Ok(Err(refusal)),
    }
}

/// As `create`, but a configuration error is recorded as a failed pipeline (and answered as
/// `Unprocessable`), as GitLab does for pipelines nobody is waiting on (schedules).
pub async fn create_recording_errors(
    spur: Arc<Spur>,
    project: Project,
    request: CreateRequest,
) -> Result<Result<Pipeline, CreateRefusal>, CreateError> {
    create_with(spur, project, request, true).await
}

/// The inputs `.gitlab-ci.yml` declares at `ref_name` (for the Run pipeline form): none when
/// the ref or the file is missing, the header's error when it is wrong. Synchronous (reads git).
pub fn declared_inputs(
    spur: &Spur,
    project: &Project,
    ref_name: &str,
) -> Result<Vec<crate::ci_config::inputs::InputSpec>, String> {
    let path = spur.repos.path_of(&project.repo_name, &Origin::of(project));
    let Ok(resolved) = spur.repos.resolve(&path, ref_name) else {
        return Ok(Vec::new());
    };
    let files = spur.repos.commit_files(&path, &resolved.sha)?;
    match files.read(".gitlab-ci.yml") {
        Some(text) => crate::ci_config::inputs::declared(&text),
        None => Ok(Vec::new()),
    }
}

/// Serialises `value` to JSON and seals it with the data dir's key.
fn seal_json<T: serde::Serialize>(spur: &Spur, value: &T) -> Result<Vec<u8>, CreateError> {
    let bytes = serde_json::to_vec(value).map_err(|e| CreateError::Internal(e.to_string()))?;
    spur.secrets
        .seal(&bytes)
        .map_err(|e| CreateError::Internal(e.to_string()))
}

/// What a job's environment needs beyond `(key, value)` pairs: which keys are files, which
/// values are masked.
struct VariableExtras {
    file_keys: Vec<String>,
    masked: Vec<String>,
}

impl VariableExtras {
    /// From the project's variables and the pipeline's (which win for the same key).
    fn of(project: &[ProjectVariable], pipeline: &[Variable]) -> VariableExtras {
        let mut file: Vec<(String, bool)> = Vec::new();
        let types = project
            .iter()
            .map(|v| (&v.key, v.variable_type))
            .chain(pipeline.iter().map(|v| (&v.key, v.variable_type)));
        for (key, kind) in types {
            file.retain(|(k, _)| k != key);
            file.push((key.clone(), kind == VariableType::File));
        }
        VariableExtras {
            file_keys: file.into_iter().filter(|(_, f)| *f).map(|(k, _)| k).collect(),
            masked: project
                .iter()
                .filter(|v| v.masked && !v.value.is_empty())
                .map(|v| v.value.clone())
                .collect(),
        }
    }
}

/// The job records of a plan, each with its sealed variables.
fn planned_jobs(
    spur: &Spur,
    plan: Plan,
    user_id: u64,
    extras: &VariableExtras,
    now: i64,
) -> Result<Vec<NewJob>, CreateError> {
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
        let settings = job_settings::read(&planned.config, &planned.variables);
        let bridge = planned
            .trigger
            .as_ref()
            .map(|t| crate::ci_config::bridge::read(t, &planned.variables, planned.yaml_variables.clone()));
        let variables = JobVariables {
            vars: planned.variables,
            file_keys: extras.file_keys.clone(),
            masked: extras.masked.clone(),
        };
        let variables_sealed = seal_json(spur, &variables)?;
        let job = Job {
            id: 0,
            pipeline_id: 0,
            project_id: 0,
            name: planned.name,
            stage: planned.stage,
            stage_index,
            status: JobStatus::Created,
            when: crate::domain::JobWhen::parse(&planned.when).unwrap_or_default(),
            allow_failure: planned.allow_failure,
            allow_failure_exit_codes: planned.allow_failure_exit_codes,
            needs: planned.needs,
            before_script: planned.before_script,
            script: planned.script,
            after_script: planned.after_script,
            trigger: planned
                .trigger
                .as_ref()
                .map(|t| crate::ci_config::yaml::to_json(t).to_string()),
            tags,
            user_id,
            created_at: now,
            started_at: None,
            finished_at: None,
            settings,
            queued_at: None,
            scheduled_at: None,
            failure_reason: None,
            exit_code: None,
            retried: false,
            attempt: 0,
            runner: None,
            runner_id: None,
            bridge,
            external: None,
            erased_at: None,
            played_variables: Vec::new(),
        };
        out.push(NewJob { job, variables_sealed });
    }
    Ok(out)
}

/// Runs `f` on the blocking pool.
pub async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, CreateError> + Send + 'static,
) -> Result<R, CreateError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CreateError::Internal(e.to_string()))?
}

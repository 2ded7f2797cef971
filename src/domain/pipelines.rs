//! Trigger tokens, pipelines, jobs (with their settings, artifacts and variables) and bridges.

use super::*;
use serde::{Deserialize, Serialize};

/// A pipeline trigger token's record. The secret is kept only encrypted and as a digest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trigger {
    /// Numeric id.
    pub id: u64,
    /// The project the token may trigger.
    pub project_id: u64,
    /// The user pipelines run as.
    pub owner_id: u64,
    /// Free text, may be empty or absent.
    pub description: Option<String>,
    /// The token, encrypted with the data dir's key (nonce and ciphertext).
    pub token_sealed: Vec<u8>,
    /// The keyed digest under which the token is looked up.
    pub token_digest: Vec<u8>,
    /// The first four characters after the `glptt-` prefix, safe to show anyone allowed to list.
    pub short_token: String,
    /// Creation time.
    pub created_at: Millis,
    /// Last change to the record.
    pub updated_at: Millis,
    /// The token stops working at this time, if set.
    pub expires_at: Option<Millis>,
    /// The refs the token may run (`*` matches any run of characters, as in protected branch
    /// names); empty: any ref. spur's own, beyond GitLab.
    #[serde(default)]
    pub ref_patterns: Vec<String>,
    /// The variable and input keys callers may send with the token; `None`: any.
    #[serde(default)]
    pub allowed_variables: Option<Vec<String>>,
    /// After a rotation with a grace period: the old token's digest, and until when it still
    /// works.
    #[serde(default)]
    pub previous: Option<(Vec<u8>, Millis)>,
}

impl Trigger {
    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: Millis) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Whether a token with `digest` is this trigger's at `now`: its current token, or the one
    /// it replaced while that one's grace period lasts.
    pub fn accepts(&self, digest: &[u8], now: Millis) -> bool {
        self.token_digest == digest
            || self
                .previous
                .as_ref()
                .is_some_and(|(old, until)| old.as_slice() == digest && now < *until)
    }
}

/// What started a pipeline; GitLab's `source` and `CI_PIPELINE_SOURCE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PipelineSource {
    /// A trigger token (`trigger`).
    Trigger,
    /// A running job's token or a `trigger:` job in another project (`pipeline`).
    Pipeline,
    /// A child pipeline of the same project (`parent_pipeline`).
    ParentPipeline,
    /// A push to the repository (`push`).
    Push,
    /// The "Run pipeline" form (`web`).
    Web,
    /// `POST /projects/:id/pipeline` (`api`).
    Api,
    /// A commit status posted for a commit that had no pipeline (`external`).
    External,
    /// A pipeline schedule (`schedule`).
    Schedule,
}

impl PipelineSource {
    /// GitLab's name for the source.
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineSource::Trigger => "trigger",
            PipelineSource::Pipeline => "pipeline",
            PipelineSource::ParentPipeline => "parent_pipeline",
            PipelineSource::Push => "push",
            PipelineSource::Web => "web",
            PipelineSource::Api => "api",
            PipelineSource::External => "external",
            PipelineSource::Schedule => "schedule",
        }
    }

    /// Whether a caller chooses the pipeline's `inputs` (API, trigger, form, job token), so
    /// that wrong ones are refused rather than recorded as a failed pipeline.
    pub fn carries_inputs(self) -> bool {
        matches!(
            self,
            PipelineSource::Trigger | PipelineSource::Pipeline | PipelineSource::Web | PipelineSource::Api
        )
    }

    /// Parses GitLab's name for a source.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "trigger" => PipelineSource::Trigger,
            "pipeline" => PipelineSource::Pipeline,
            "parent_pipeline" => PipelineSource::ParentPipeline,
            "push" => PipelineSource::Push,
            "web" => PipelineSource::Web,
            "api" => PipelineSource::Api,
            "external" => PipelineSource::External,
            "schedule" => PipelineSource::Schedule,
            _ => return None,
        })
    }
}

/// A pipeline's status, GitLab's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PipelineStatus {
    /// Recorded, jobs not yet planned or queued.
    Created,
    /// Waiting for a resource.
    WaitingForResource,
    /// Being prepared.
    Preparing,
    /// Jobs queued.
    Pending,
    /// At least one job running.
    Running,
    /// Finished successfully.
    Success,
    /// Finished with a failed job.
    Failed,
    /// Canceled by a user.
    Canceled,
    /// Nothing to run.
    Skipped,
    /// Waiting for a manual action.
    Manual,
    /// Waiting for a delayed job.
    Scheduled,
}

impl PipelineStatus {
    /// GitLab's name for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineStatus::Created => "created",
            PipelineStatus::WaitingForResource => "waiting_for_resource",
            PipelineStatus::Preparing => "preparing",
            PipelineStatus::Pending => "pending",
            PipelineStatus::Running => "running",
            PipelineStatus::Success => "success",
            PipelineStatus::Failed => "failed",
            PipelineStatus::Canceled => "canceled",
            PipelineStatus::Skipped => "skipped",
            PipelineStatus::Manual => "manual",
            PipelineStatus::Scheduled => "scheduled",
        }
    }

    /// Parses GitLab's name for a status.
    pub fn parse(s: &str) -> Option<Self> {
        [
            PipelineStatus::Created,
            PipelineStatus::WaitingForResource,
            PipelineStatus::Preparing,
            PipelineStatus::Pending,
            PipelineStatus::Running,
            PipelineStatus::Success,
            PipelineStatus::Failed,
            PipelineStatus::Canceled,
            PipelineStatus::Skipped,
            PipelineStatus::Manual,
            PipelineStatus::Scheduled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// A pipeline record. Its variables are stored apart, encrypted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pipeline {
    /// Instance-wide id.
    pub id: u64,
    /// Per-project sequence number.
    pub iid: u64,
    /// The project.
    pub project_id: u64,
    /// The commit the pipeline runs for.
    pub sha: String,
    /// Short ref name (`main`, `v1.0`).
    pub ref_name: String,
    /// Whether `ref_name` is a tag.
    pub tag: bool,
    /// The previous commit of the ref, or forty zeros.
    pub before_sha: String,
    /// Current status.
    pub status: PipelineStatus,
    /// What started the pipeline.
    pub source: PipelineSource,
    /// The user the pipeline runs as.
    pub user_id: u64,
    /// The trigger token that started it, for `trigger` pipelines.
    pub trigger_id: Option<u64>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// When the first job started.
    pub started_at: Option<Millis>,
    /// When the pipeline finished.
    pub finished_at: Option<Millis>,
    /// Configuration errors, when the pipeline could not be planned.
    pub yaml_errors: Option<String>,
    /// The job that started it, for multi-project and child pipelines.
    #[serde(default)]
    pub upstream: Option<Upstream>,
    /// `workflow:name`, expanded.
    #[serde(default)]
    pub name: Option<String>,
}

/// Where a downstream pipeline comes from, and how deep it sits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// The upstream job (a bridge, or the job whose `CI_JOB_TOKEN` triggered).
    pub job_id: u64,
    /// Its pipeline.
    pub pipeline_id: u64,
    /// Its project.
    pub project_id: u64,
    /// The first pipeline of the hierarchy.
    pub root_id: u64,
    /// Multi-project hops from the root.
    pub depth: u32,
    /// Child levels below the nearest multi-project pipeline (at most 2, as GitLab).
    pub child_depth: u32,
    /// Whether the upstream job waits for this pipeline and takes its status (`strategy: depend`).
    pub mirrored: bool,
}

/// A job's status, GitLab's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    /// Planned; not yet queued by the engine.
    Created,
    /// Queued for an executor.
    Pending,
    /// Running.
    Running,
    /// Finished successfully.
    Success,
    /// Finished with a failure.
    Failed,
    /// Canceled.
    Canceled,
    /// Not run (an earlier stage failed, or its `when` did not apply).
    Skipped,
    /// Waiting for a user to start it.
    Manual,
    /// Waiting for its delay.
    Scheduled,
}

impl JobStatus {
    /// Parses GitLab's name for a status.
    pub fn parse(s: &str) -> Option<Self> {
        [
            JobStatus::Created,
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::Success,
            JobStatus::Failed,
            JobStatus::Canceled,
            JobStatus::Skipped,
            JobStatus::Manual,
            JobStatus::Scheduled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// GitLab's name for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "created",
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Success => "success",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
            JobStatus::Skipped => "skipped",
            JobStatus::Manual => "manual",
            JobStatus::Scheduled => "scheduled",
        }
    }
}

/// A job of a pipeline. Its variables are stored apart, sealed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    /// Instance-wide id.
    pub id: u64,
    /// The pipeline.
    pub pipeline_id: u64,
    /// The project.
    pub project_id: u64,
    /// Name (`rspec 1/3` for parallel instances).
    pub name: String,
    /// Stage name.
    pub stage: String,
    /// Position of the stage in the pipeline.
    pub stage_index: usize,
    /// Current status.
    pub status: JobStatus,
    /// When it runs: `when:` as planned.
    pub when: JobWhen,
    /// Whether a failure is tolerated.
    pub allow_failure: bool,
    /// Exit codes that count as allowed failures.
    pub allow_failure_exit_codes: Vec<i64>,
    /// Needed jobs, when the job uses `needs`.
    pub needs: Option<Vec<String>>,
    /// `before_script` lines.
    pub before_script: Vec<String>,
    /// `script` lines.
    pub script: Vec<String>,
    /// `after_script` lines.
    pub after_script: Vec<String>,
    /// The raw `trigger:` of a bridge job, as JSON text.
    pub trigger: Option<String>,
    /// `tags`, for runners.
    pub tags: Vec<String>,
    /// The user the job runs as.
    pub user_id: u64,
    /// Creation time.
    pub created_at: Millis,
    /// Start time.
    pub started_at: Option<Millis>,
    /// End time.
    pub finished_at: Option<Millis>,
    /// Runtime settings read from the job's configuration.
    #[serde(default)]
    pub settings: JobSettings,
    /// When the job was queued for an executor.
    #[serde(default)]
    pub queued_at: Option<Millis>,
    /// When a `delayed` job becomes pending.
    #[serde(default)]
    pub scheduled_at: Option<Millis>,
    /// Why it failed (GitLab's `failure_reason`: `script_failure`, `job_execution_timeout`, ...).
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// The exit code of the script, when it ran to an end.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Replaced by a newer attempt (GitLab hides retried jobs by default).
    #[serde(default)]
    pub retried: bool,
    /// Which attempt this is, counting from 0.
    #[serde(default)]
    pub attempt: u32,
    /// What ran the job (`spur-shell`, or a runner's description).
    #[serde(default)]
    pub runner: Option<String>,
    /// For a `trigger:` job: the downstream pipeline it creates.
    #[serde(default)]
    pub bridge: Option<Bridge>,
    /// The GitLab runner running (or that ran) the job; `None` for the built-in executor.
    #[serde(default)]
    pub runner_id: Option<u64>,
    /// For a commit status posted through the API (GitLab's generic commit status): what the
    /// external system said. No executor runs such a job; the API moves it on.
    #[serde(default)]
    pub external: Option<ExternalStatus>,
    /// When its log and artifacts were erased (`POST .../jobs/:id/erase`).
    #[serde(default)]
    pub erased_at: Option<Millis>,
    /// The keys of the variables set when it was last played (GitLab's job variables): their
    /// values are sealed with its other variables, after them. A retry keeps them; the next
    /// play replaces them.
    #[serde(default)]
    pub played_variables: Vec<String>,
}

/// What an external system posted with a commit status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalStatus {
    /// `target_url`: where the external system shows the run.
    pub target_url: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `coverage`, a percentage.
    pub coverage: Option<f64>,
}

/// What a `trigger:` job (a bridge) starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridge {
    /// A multi-project pipeline in this project (`trigger: group/project`).
    pub project: Option<String>,
    /// Its branch (the target's default branch when absent).
    pub branch: Option<String>,
    /// A child pipeline from these files of the same commit (`trigger: include`).
    pub include: Vec<String>,
    /// `strategy: depend` (or `mirror`): the bridge takes the downstream pipeline's status.
    pub mirror: bool,
    /// The bridge's YAML variables, passed as downstream pipeline variables
    /// (`forward:yaml_variables`, on by default).
    pub yaml_variables: Vec<(String, String)>,
    /// `forward:pipeline_variables`: pass this pipeline's own variables too (off by default).
    pub forward_pipeline_variables: bool,
    /// Why the `trigger:` cannot work, found when the pipeline was planned.
    pub invalid: Option<String>,
    /// `trigger:inputs`: the downstream configuration's `spec:inputs` (for a child pipeline,
    /// every `include` file that gives none of its own).
    #[serde(default)]
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// `trigger:include` files' own `inputs`, by position (`null` where a file gives none).
    #[serde(default)]
    pub include_inputs: Vec<serde_json::Value>,
}

impl JobStatus {
    /// Whether the status is final (nothing more happens without a retry).
    pub fn is_complete(self) -> bool {
        matches!(
            self,
            JobStatus::Success | JobStatus::Failed | JobStatus::Canceled | JobStatus::Skipped
        )
    }

    /// Whether the job is queued or running (cancelable).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobStatus::Created | JobStatus::Pending | JobStatus::Running | JobStatus::Scheduled
        )
    }
}

/// Runtime settings of a job, read from its configuration when the pipeline is created.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSettings {
    /// `timeout` in seconds; the server's default when absent.
    pub timeout_secs: Option<u64>,
    /// `retry:max` (0..=2).
    pub retry_max: u32,
    /// `retry:when` failure reasons; empty means any failure (`always`).
    pub retry_when: Vec<String>,
    /// `retry:exit_codes`; empty means any exit code.
    pub retry_exit_codes: Vec<i64>,
    /// `start_in` of a delayed job, in seconds.
    pub start_in_secs: Option<u64>,
    /// `interruptible`.
    pub interruptible: bool,
    /// `image:`: the container the job's scripts run in (on a runner, or the built-in executor
    /// with a container engine).
    pub image: Option<Image>,
    /// `services:`: containers started beside the job's, reachable by their host names.
    pub services: Vec<Image>,
    /// `cache:key` (after expansion), when the job has a cache.
    pub cache_key: Option<String>,
    /// `cache:paths`.
    pub cache_paths: Vec<String>,
    /// `cache:policy`: `pull-push` (the default), `pull` (never saved) or `push` (never restored).
    #[serde(default)]
    pub cache_policy: CachePolicy,
    /// `artifacts:`, when the job keeps any.
    #[serde(default)]
    pub artifacts: Option<ArtifactsSpec>,
    /// `dependencies:`: the jobs whose artifacts it receives; `None` means every job of an
    /// earlier stage, or the `needs` with artifacts.
    #[serde(default)]
    pub dependencies: Option<Vec<String>>,
    /// `needs` entries with `artifacts: false`: needed, but their artifacts are not fetched.
    #[serde(default)]
    pub needs_without_artifacts: Vec<String>,
    /// `needs:project` and `needs:pipeline:job` entries whose artifacts the job receives.
    #[serde(default)]
    pub artifact_needs: Vec<ArtifactNeed>,
    /// `release:`: the release the job makes when its script succeeds.
    #[serde(default)]
    pub release: Option<ReleaseSpec>,
    /// `artifacts:reports:junit`: the JUnit files (globs) read after the job, whatever its end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub junit: Vec<String>,
    /// `artifacts:expire_in` as written, for the reports' upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reports_expire_in: Option<String>,
    /// `environment:`, expanded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<super::EnvironmentSpec>,
    /// `resource_group:`, expanded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
}

/// What a job's environment holds besides plain values: sealed with the job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobVariables {
    /// Every variable, in precedence order (later wins).
    pub vars: Vec<(String, String)>,
    /// Keys whose value the job receives as a path to a file holding it.
    pub file_keys: Vec<String>,
    /// Values that must never reach the log.
    pub masked: Vec<String>,
}

/// A job's `when:`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobWhen {
    /// When every job of earlier stages (or its `needs`) succeeded.
    #[default]
    OnSuccess,
    /// When a job of an earlier stage failed.
    OnFailure,
    /// Whatever happened before.
    Always,
    /// When someone plays it.
    Manual,
    /// After `start_in`.
    Delayed,
}

impl JobWhen {
    /// GitLab's name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobWhen::OnSuccess => "on_success",
            JobWhen::OnFailure => "on_failure",
            JobWhen::Always => "always",
            JobWhen::Manual => "manual",
            JobWhen::Delayed => "delayed",
        }
    }

    /// Reads GitLab's name.
    pub fn parse(text: &str) -> Option<JobWhen> {
        [
            JobWhen::OnSuccess,
            JobWhen::OnFailure,
            JobWhen::Always,
            JobWhen::Manual,
            JobWhen::Delayed,
        ]
        .into_iter()
        .find(|w| w.as_str() == text)
    }
}

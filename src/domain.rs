//! The nouns of spur and their invariants: users, namespaces, projects, members, trigger tokens,
//! pipelines and their variables. No IO, no HTTP, no wire shapes: storage encodes these records,
//! and `http::api` turns them into GitLab's JSON at the edge.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC; every timestamp spur stores.
pub type Millis = i64;

/// A GitLab access level on a project or group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccessLevel {
    /// 10: may see a private project, not its code.
    Guest,
    /// 20: may read code and pipelines.
    Reporter,
    /// 30: may run pipelines and push.
    Developer,
    /// 40: may manage CI/CD settings and trigger tokens.
    Maintainer,
    /// 50: may delete the project and manage owners.
    Owner,
}

impl AccessLevel {
    /// The level's number as GitLab's API spells it.
    pub fn as_number(self) -> u8 {
        match self {
            AccessLevel::Guest => 10,
            AccessLevel::Reporter => 20,
            AccessLevel::Developer => 30,
            AccessLevel::Maintainer => 40,
            AccessLevel::Owner => 50,
        }
    }

    /// The role's name as GitLab's UI shows it.
    pub fn name(self) -> &'static str {
        match self {
            AccessLevel::Guest => "Guest",
            AccessLevel::Reporter => "Reporter",
            AccessLevel::Developer => "Developer",
            AccessLevel::Maintainer => "Maintainer",
            AccessLevel::Owner => "Owner",
        }
    }

    /// The level for one of GitLab's numbers, if it is one a member may hold.
    pub fn from_number(n: i64) -> Option<AccessLevel> {
        Some(match n {
            10 => AccessLevel::Guest,
            20 => AccessLevel::Reporter,
            30 => AccessLevel::Developer,
            40 => AccessLevel::Maintainer,
            50 => AccessLevel::Owner,
            _ => return None,
        })
    }
}

/// Who may see a project or group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    /// Members and admins only.
    Private,
    /// Any signed-in user.
    Internal,
    /// Anyone, signed in or not.
    Public,
}

impl Visibility {
    /// GitLab's lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Internal => "internal",
            Visibility::Public => "public",
        }
    }

    /// Parses GitLab's lower-case name.
    pub fn parse(s: &str) -> Option<Visibility> {
        Some(match s {
            "private" => Visibility::Private,
            "internal" => Visibility::Internal,
            "public" => Visibility::Public,
            _ => return None,
        })
    }
}

/// A user account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    /// Numeric id, never reused.
    pub id: u64,
    /// Unique login name; also the path of the user's own namespace.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Unique e-mail address.
    pub email: String,
    /// Argon2id PHC string; never the password itself.
    pub password_hash: String,
    /// Instance administrators may do everything.
    pub admin: bool,
    /// Blocked users cannot authenticate and their trigger tokens stop working.
    pub blocked: bool,
    /// The id of the user's personal namespace.
    pub namespace_id: u64,
    /// When the account was created.
    pub created_at: Millis,
}

/// Scope of a personal access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenScope {
    /// Full read and write access to the API.
    Api,
    /// Read-only access to the API.
    ReadApi,
}

impl TokenScope {
    /// GitLab's name for the scope.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Api => "api",
            TokenScope::ReadApi => "read_api",
        }
    }

    /// Parses GitLab's name for a scope spur supports.
    pub fn parse(s: &str) -> Option<TokenScope> {
        match s {
            "api" => Some(TokenScope::Api),
            "read_api" => Some(TokenScope::ReadApi),
            _ => None,
        }
    }
}

/// A personal access token's metadata; the secret itself is never stored, only its digest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PersonalAccessToken {
    /// Numeric id.
    pub id: u64,
    /// The user the token acts as.
    pub user_id: u64,
    /// A name to recognise the token by.
    pub name: String,
    /// What the token may do.
    pub scopes: Vec<TokenScope>,
    /// Revoked tokens never work again.
    pub revoked: bool,
    /// Creation time.
    pub created_at: Millis,
    /// The token stops working at the start of this day (UTC), if set.
    pub expires_at: Option<Millis>,
}

/// Whether a namespace belongs to one user or is a shared group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceKind {
    /// A user's personal namespace.
    User,
    /// A group that several members share.
    Group,
}

/// A namespace: the first part of a project's path.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Namespace {
    /// Numeric id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// URL path, unique among namespaces.
    pub path: String,
    /// User or group.
    pub kind: NamespaceKind,
    /// For user namespaces, the user; for groups, the creator.
    pub owner_id: u64,
    /// Who may see the group.
    pub visibility: Visibility,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at: Millis,
}

/// The lowest role allowed to set pipeline variables (GitLab's
/// `ci_pipeline_variables_minimum_override_role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VariablesOverrideRole {
    /// Nobody may set variables.
    NoOneAllowed,
    /// Owners only.
    Owner,
    /// Maintainers and owners.
    Maintainer,
    /// Developers and above (spur's default, so GitLab's documented examples work).
    Developer,
}

impl VariablesOverrideRole {
    /// GitLab's name for the setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            VariablesOverrideRole::NoOneAllowed => "no_one_allowed",
            VariablesOverrideRole::Owner => "owner",
            VariablesOverrideRole::Maintainer => "maintainer",
            VariablesOverrideRole::Developer => "developer",
        }
    }

    /// Parses GitLab's name for the setting's value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "no_one_allowed" => VariablesOverrideRole::NoOneAllowed,
            "owner" => VariablesOverrideRole::Owner,
            "maintainer" => VariablesOverrideRole::Maintainer,
            "developer" => VariablesOverrideRole::Developer,
            _ => return None,
        })
    }

    /// Whether a caller with `level` may set pipeline variables.
    pub fn allows(self, level: Option<AccessLevel>) -> bool {
        let needed = match self {
            VariablesOverrideRole::NoOneAllowed => return false,
            VariablesOverrideRole::Owner => AccessLevel::Owner,
            VariablesOverrideRole::Maintainer => AccessLevel::Maintainer,
            VariablesOverrideRole::Developer => AccessLevel::Developer,
        };
        level.is_some_and(|l| l >= needed)
    }
}

/// A project: a git repository and its CI settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Project {
    /// Numeric id, never reused.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// URL path inside the namespace.
    pub path: String,
    /// The namespace the project lives in.
    pub namespace_id: u64,
    /// `namespace/path`, kept with the record so lookups need one read.
    pub full_path: String,
    /// Free text.
    pub description: String,
    /// Who may see the project.
    pub visibility: Visibility,
    /// Where the repository comes from; `None` for a repository hosted by spur.
    pub import_url: Option<String>,
    /// Name of the project's folder under `<data-dir>/repositories` (mirrors, hosted repos).
    pub repo_name: String,
    /// The branch HEAD points at, when the repository has one.
    pub default_branch: Option<String>,
    /// Lowest role allowed to set pipeline variables.
    pub variables_override_role: VariablesOverrideRole,
    /// The user who created the project.
    pub creator_id: u64,
    /// Creation time.
    pub created_at: Millis,
    /// Last change to the record.
    pub updated_at: Millis,
    /// The credentials of `import_url` (`user:token`), sealed with the data dir's key; the URL
    /// itself is stored without them.
    #[serde(default)]
    pub import_credentials: Option<Vec<u8>>,
    /// How often spur fetches this mirror, in seconds; `None` uses `--mirror-interval`.
    #[serde(default)]
    pub mirror_interval_secs: Option<u64>,
    /// The SSH key spur fetches an `ssh://` (or `user@host:path`) origin with.
    #[serde(default)]
    pub deploy_key: Option<DeployKey>,
}

/// A project's SSH deploy key for its mirror.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployKey {
    /// The public key line (`ssh-ed25519 AAAA… comment`), shown to Maintainers.
    pub public: String,
    /// The private key, sealed with the data dir's key; never shown.
    pub private_sealed: Vec<u8>,
}

/// One user's membership of a project or group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Membership {
    /// The member's role.
    pub access_level: AccessLevel,
    /// When the membership was created.
    pub created_at: Millis,
    /// The membership ends at the start of this day, if set.
    pub expires_at: Option<Millis>,
}

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
}

impl Trigger {
    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: Millis) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
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
        }
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
    /// `on_success`, `on_failure`, `always`, `manual` or `delayed`.
    pub when: String,
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
}

/// A job's uploaded artifacts archive (a zip under `<data-dir>/artifacts/`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactsFile {
    /// The file name users download it as (`artifacts.zip`).
    pub filename: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it is deleted; `None` keeps it.
    pub expire_at: Option<Millis>,
}

/// A GitLab runner attached to spur (an instance runner: it may take any project's jobs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Runner {
    /// Instance-wide id.
    pub id: u64,
    /// Free text shown in lists.
    pub description: String,
    /// The tags of jobs it takes.
    pub tags: Vec<String>,
    /// Whether it also takes jobs without tags.
    pub run_untagged: bool,
    /// A paused runner gets no jobs.
    pub paused: bool,
    /// `not_protected` or `ref_protected`.
    pub access_level: String,
    /// The longest timeout it accepts, in seconds.
    pub maximum_timeout: Option<u64>,
    /// `glrt-` (created by an admin) or a legacy registration.
    pub created_by_admin: bool,
    /// Creation time.
    pub created_at: Millis,
    /// When it last asked for a job (coarse: stored at most once a minute).
    pub contacted_at: Option<Millis>,
    /// What the runner said of itself (`info`: name, version, platform, architecture, executor).
    #[serde(default)]
    pub info: RunnerInfo,
    /// The hosts (`system_id`) that use its token.
    #[serde(default)]
    pub managers: Vec<String>,
    /// The keyed digest of its authentication token (the token itself is never stored).
    pub token_digest: Vec<u8>,
}

/// A runner's `info` as it sends it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunnerInfo {
    /// `gitlab-runner`, ...
    pub name: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// `linux`, ...
    pub platform: Option<String>,
    /// `amd64`, ...
    pub architecture: Option<String>,
    /// `shell`, `docker`, ...
    pub executor: Option<String>,
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
    /// `image:name`, kept for runners; the shell executor ignores it with a warning.
    pub image: Option<String>,
    /// `services` names, kept for runners.
    pub services: Vec<String>,
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
}

/// `cache:policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CachePolicy {
    /// Restored before the job and saved after it.
    #[default]
    PullPush,
    /// Restored only.
    Pull,
    /// Saved only.
    Push,
}

/// A job's `artifacts:` keyword.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactsSpec {
    /// `name` (after expansion) of the archive users download.
    pub name: Option<String>,
    /// `paths`: files, folders and globs under the project dir.
    pub paths: Vec<String>,
    /// `exclude` globs.
    pub exclude: Vec<String>,
    /// `untracked`: also every file git does not track.
    pub untracked: bool,
    /// `when`: `on_success` (default), `on_failure` or `always`.
    pub when: String,
    /// `expire_in` as written (`1 week`, `never`); the instance default when absent.
    pub expire_in: Option<String>,
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

/// A signed-in browser session. Stored under a digest of its id; the id lives only in the
/// browser's cookie.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    /// Who signed in.
    pub user_id: u64,
    /// The CSRF token every form of this session carries (`authenticity_token`).
    pub csrf_token: String,
    /// When the session began.
    pub created_at: Millis,
    /// When it ends.
    pub expires_at: Millis,
}

/// How a variable reaches a job: as its value, or as a path to a file holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VariableType {
    /// `env_var`: the value itself.
    EnvVar,
    /// `file`: a path to a temporary file with the value.
    File,
}

impl VariableType {
    /// GitLab's name for the type.
    pub fn as_str(self) -> &'static str {
        match self {
            VariableType::EnvVar => "env_var",
            VariableType::File => "file",
        }
    }
}

/// A pipeline variable (from a trigger, the API or the web form).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    /// Name: letters, digits and `_`, at most 255 characters.
    pub key: String,
    /// Value, any text.
    pub value: String,
    /// Environment value or file.
    pub variable_type: VariableType,
    /// `raw` variables are not `$`-expanded.
    pub raw: bool,
}

/// A project CI/CD variable (Settings > CI/CD > Variables). Stored sealed: values are secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectVariable {
    /// Name.
    pub key: String,
    /// Value.
    pub value: String,
    /// Environment value or file.
    pub variable_type: VariableType,
    /// Only for pipelines on protected refs (spur: the default branch).
    pub protected: bool,
    /// Hidden in job logs.
    pub masked: bool,
    /// Not `$`-expanded.
    pub raw: bool,
    /// Free text.
    pub description: Option<String>,
}

/// Whether `value` may be masked (GitLab's rules): one line, at least 8 characters, from the
/// Base64 alphabet plus `@ : . ~ - _`.
pub fn is_maskable(value: &str) -> bool {
    value.chars().count() >= 8
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '@' | ':' | '.' | '~' | '-' | '_'))
}

/// Whether `key` is a valid variable name: `[A-Za-z0-9_]{1,255}`.
pub fn is_valid_variable_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `path` is a valid project, group or user path (GitLab's rules, simplified): starts
/// with a letter, digit or `_`, then letters, digits, `_`, `-`, `.`; not ending in `.git` or
/// `.atom`, at most 255 characters.
pub fn is_valid_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    let Some(first) = bytes.first() else {
        return false;
    };
    path.len() <= 255
        && (first.is_ascii_alphanumeric() || *first == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !path.ends_with('.')
        && !path.ends_with(".git")
        && !path.ends_with(".atom")
}

/// The instance's application settings (`/api/v4/application/settings`) spur keeps: those
/// that govern requests to the local network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationSettings {
    /// GitLab's `allow_local_requests_from_web_hooks_and_services`.
    #[serde(default)]
    pub allow_local_requests_from_web_hooks_and_services: bool,
    /// GitLab's `allow_local_requests_from_system_hooks` (kept for the API; spur has no
    /// system hooks).
    #[serde(default = "yes")]
    pub allow_local_requests_from_system_hooks: bool,
    /// GitLab's `outbound_local_requests_whitelist`: IPs, networks, hosts, `host:port`.
    #[serde(default)]
    pub outbound_local_requests_whitelist: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Default for ApplicationSettings {
    fn default() -> Self {
        ApplicationSettings {
            allow_local_requests_from_web_hooks_and_services: false,
            allow_local_requests_from_system_hooks: true,
            outbound_local_requests_whitelist: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_keys() {
        assert!(is_valid_variable_key("DEPLOY_ENV_2"));
        assert!(!is_valid_variable_key("BAD-KEY"));
        assert!(!is_valid_variable_key(""));
        assert!(!is_valid_variable_key(&"A".repeat(256)));
    }

    #[test]
    fn paths() {
        assert!(is_valid_path("my-project.rs"));
        assert!(!is_valid_path("-x"));
        assert!(!is_valid_path("a/b"));
        assert!(!is_valid_path("repo.git"));
    }

    #[test]
    fn override_role() {
        assert!(VariablesOverrideRole::Developer.allows(Some(AccessLevel::Developer)));
        assert!(!VariablesOverrideRole::Maintainer.allows(Some(AccessLevel::Developer)));
        assert!(!VariablesOverrideRole::NoOneAllowed.allows(Some(AccessLevel::Owner)));
    }
}

/// Whether a protection rule covers branches or tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// `refs/heads/*`.
    Branch,
    /// `refs/tags/*`.
    Tag,
}

impl RefKind {
    /// The kind's name in storage keys and forms.
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Branch => "branch",
            RefKind::Tag => "tag",
        }
    }

    /// Parses a kind's name.
    pub fn parse(s: &str) -> Option<RefKind> {
        match s {
            "branch" => Some(RefKind::Branch),
            "tag" => Some(RefKind::Tag),
            _ => None,
        }
    }
}

/// A protected branch or tag rule: a name or a `*` wildcard pattern, and who may push, merge or
/// create. Levels are GitLab's numbers: 0 no one, 30 Developers + Maintainers, 40 Maintainers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedRef {
    /// Instance-wide id.
    pub id: u64,
    /// The project.
    pub project_id: u64,
    /// Branches or tags.
    pub kind: RefKind,
    /// A name, or a pattern where `*` matches anything.
    pub name: String,
    /// Who may push (branches).
    pub push_access_level: u8,
    /// Who may merge, and so run pipelines (branches).
    pub merge_access_level: u8,
    /// Who may create matching tags.
    pub create_access_level: u8,
    /// Whether force pushes are allowed (branches).
    pub allow_force_push: bool,
}

/// A project webhook: where pipeline and job events are posted, in GitLab's payload format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectHook {
    /// Instance-wide id.
    pub id: u64,
    /// The project.
    pub project_id: u64,
    /// Where events are posted.
    pub url: String,
    /// The secret sent as `X-Gitlab-Token`, sealed with the data dir's key.
    pub token_sealed: Option<Vec<u8>>,
    /// Post `Pipeline Hook` events.
    pub pipeline_events: bool,
    /// Post `Job Hook` events.
    pub job_events: bool,
    /// Post push events (kept for GitLab's API; spur posts none yet).
    pub push_events: bool,
    /// Kept for GitLab's API.
    pub enable_ssl_verification: bool,
    /// Creation time.
    pub created_at: Millis,
}

/// Where a mirrored project's commit statuses go: GitHub or Gitea (GitLab's GitHub
/// integration: `PUT /projects/:id/integrations/github`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusIntegration {
    /// The repository on the forge (`https://github.com/owner/repo`).
    pub repository_url: String,
    /// The forge's API root for statuses; derived from the URL when absent.
    pub api_url: Option<String>,
    /// The forge token, sealed with the data dir's key.
    pub token_sealed: Vec<u8>,
    /// Use the fixed context `ci/spur` rather than one per pipeline source.
    pub static_context: bool,
}

//! Every table in `spur.redb`, with its key, value and invariants. Backups and migrations must
//! know every table, so none is defined anywhere else. Values are JSON-encoded domain records
//! (see `codec`) unless said otherwise.

use redb::TableDefinition;

/// Bytes of a JSON-encoded record.
pub type Json = &'static [u8];

/// Named counters and settings: `schema_version`, `next_<kind>_id`. Ids start at 1, never reused.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// User id → `domain::User`.
pub const USERS: TableDefinition<u64, Json> = TableDefinition::new("users");
/// Lower-cased username → user id. One entry per user; usernames are unique case-insensitively.
pub const USERNAMES: TableDefinition<&str, u64> = TableDefinition::new("usernames");
/// Lower-cased e-mail → user id. One entry per user.
pub const EMAILS: TableDefinition<&str, u64> = TableDefinition::new("emails");

/// Keyed blake3 digest of a personal access token → `domain::PersonalAccessToken`.
/// The token itself is never stored.
pub const PATS: TableDefinition<&[u8], Json> = TableDefinition::new("personal_access_tokens");
/// Personal access token id → its digest (the key in `PATS`).
pub const PAT_IDS: TableDefinition<u64, &[u8]> = TableDefinition::new("personal_access_token_ids");

/// Namespace id → `domain::Namespace` (users' own namespaces and groups).
pub const NAMESPACES: TableDefinition<u64, Json> = TableDefinition::new("namespaces");
/// Lower-cased namespace path → namespace id; user and group paths share this space.
pub const NAMESPACE_PATHS: TableDefinition<&str, u64> = TableDefinition::new("namespace_paths");
/// (group namespace id, user id) → `domain::Membership`.
pub const GROUP_MEMBERS: TableDefinition<(u64, u64), Json> = TableDefinition::new("group_members");

/// Project id → `domain::Project`.
pub const PROJECTS: TableDefinition<u64, Json> = TableDefinition::new("projects");
/// Lower-cased `namespace/path` → project id.
pub const PROJECT_PATHS: TableDefinition<&str, u64> = TableDefinition::new("project_paths");
/// (project id, user id) → `domain::Membership`.
pub const PROJECT_MEMBERS: TableDefinition<(u64, u64), Json> = TableDefinition::new("project_members");

/// Trigger id → `domain::Trigger` (token sealed with the data dir's key).
pub const TRIGGERS: TableDefinition<u64, Json> = TableDefinition::new("triggers");
/// Keyed blake3 digest of a trigger token → trigger id.
pub const TRIGGER_DIGESTS: TableDefinition<&[u8], u64> = TableDefinition::new("trigger_digests");
/// (project id, trigger id) → (); lists a project's triggers in id order.
pub const PROJECT_TRIGGERS: TableDefinition<(u64, u64), ()> = TableDefinition::new("project_triggers");
/// Trigger id → creation time (ms) of the newest pipeline it created (`last_used`), to the
/// second: a later pipeline within a second of it does not rewrite it.
pub const TRIGGER_LAST_USED: TableDefinition<u64, i64> = TableDefinition::new("trigger_last_used");
/// Trigger id → the client address of its last use.
pub const TRIGGER_LAST_ADDRESS: TableDefinition<u64, &str> = TableDefinition::new("trigger_last_address");

/// Pipeline id → `domain::Pipeline`.
pub const PIPELINES: TableDefinition<u64, Json> = TableDefinition::new("pipelines");
/// (project id, pipeline id) → (); lists a project's pipelines in id order.
pub const PROJECT_PIPELINES: TableDefinition<(u64, u64), ()> = TableDefinition::new("project_pipelines");
/// Project id → the last pipeline iid handed out in it.
pub const PIPELINE_IIDS: TableDefinition<u64, u64> = TableDefinition::new("pipeline_iids");
/// Pipeline id → its variables (`Vec<domain::Variable>` as JSON), sealed with the data dir's key.
pub const PIPELINE_VARIABLES: TableDefinition<u64, &[u8]> = TableDefinition::new("pipeline_variables");

/// Job id → `domain::Job`.
pub const JOBS: TableDefinition<u64, Json> = TableDefinition::new("jobs");
/// (pipeline id, job id) → (); a pipeline's jobs in creation (stage, file) order.
pub const PIPELINE_JOBS: TableDefinition<(u64, u64), ()> = TableDefinition::new("pipeline_jobs");
/// (project id, job id) → (); a project's jobs in id order.
pub const PROJECT_JOBS: TableDefinition<(u64, u64), ()> = TableDefinition::new("project_jobs");
/// Job id → its variables (`Vec<(String, String)>` as JSON), sealed with the data dir's key.
pub const JOB_VARIABLES: TableDefinition<u64, &[u8]> = TableDefinition::new("job_variables");

/// Job id → (); every job not yet in a final status (created, pending, running, scheduled,
/// manual). The scheduler rebuilds its queue from it on start.
pub const ACTIVE_JOBS: TableDefinition<u64, ()> = TableDefinition::new("active_jobs");
/// Keyed blake3 digest of a job's `CI_JOB_TOKEN` → job id. Kept after the job ends so that a
/// stale token is recognised (401 `Job is not running`), never stored in the clear.
pub const JOB_TOKENS: TableDefinition<&[u8], u64> = TableDefinition::new("job_tokens");

/// (target project id, source project id) → (): the target's CI/CD job token inbound
/// allowlist. A project's own job tokens are always allowed; nothing else is by default.
pub const JOB_TOKEN_ALLOWLIST: TableDefinition<(u64, u64), ()> = TableDefinition::new("job_token_allowlist");
/// Project id → (): projects whose inbound allowlist is turned off (any project's job token
/// may reach them, within its user's rights; GitLab's `inbound_enabled: false`).
pub const JOB_TOKEN_SCOPE_OFF: TableDefinition<u64, ()> = TableDefinition::new("job_token_scope_off");
/// Upstream job id → the downstream pipeline it created.
pub const DOWNSTREAM: TableDefinition<u64, u64> = TableDefinition::new("downstream");
/// Root pipeline id → how many pipelines its hierarchy holds (GitLab caps it at 1,000).
pub const HIERARCHY_SIZES: TableDefinition<u64, u64> = TableDefinition::new("hierarchy_sizes");

/// Keyed blake3 digest of a browser session id (the cookie) → `domain::Session`. The id itself
/// is never stored.
pub const SESSIONS: TableDefinition<&[u8], Json> = TableDefinition::new("sessions");
/// (created at, pipeline id) → what an idempotency key made: the request's fingerprint, the
/// pipeline as created and when (JSON). Appended in time order, in the pipeline's own commit;
/// swept after 24 h. Found by key through an index in memory (`storage::idempotency`).
pub const IDEMPOTENCY_RECORDS: TableDefinition<(u64, u64), Json> = TableDefinition::new("idempotency_records");
/// (created at, pipeline id) → the key's id (blake3 of project, credential and key): what the
/// index in memory is rebuilt from when the store opens.
pub const IDEMPOTENCY_TAGS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("idempotency_tags");

/// (project id, key) → a `domain::ProjectVariable` as JSON, sealed with the data dir's key.
pub const PROJECT_VARIABLES: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("project_variables");

/// (group id, key) → a group's CI/CD variable, as `PROJECT_VARIABLES` holds a project's.
pub const GROUP_VARIABLES: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("group_variables");

/// Runner id → `domain::Runner`.
pub const RUNNERS: TableDefinition<u64, Json> = TableDefinition::new("runners");
/// Keyed blake3 digest of a runner's authentication token → runner id.
pub const RUNNER_TOKENS: TableDefinition<&[u8], u64> = TableDefinition::new("runner_tokens");

/// Job id → `domain::ArtifactsFile`: jobs whose artifacts archive is stored.
pub const ARTIFACTS: TableDefinition<u64, Json> = TableDefinition::new("artifacts");

/// Job id → `domain::JobTestReport`: the test cases of a job's `artifacts:reports:junit`.
pub const TEST_REPORTS: TableDefinition<u64, Json> = TableDefinition::new("test_reports");
/// Job id → `domain::TestCounts` of that report, read by lists and summaries without the cases.
pub const TEST_SUMMARIES: TableDefinition<u64, Json> = TableDefinition::new("test_summaries");

/// Environment id → `domain::Environment`.
pub const ENVIRONMENTS: TableDefinition<u64, Json> = TableDefinition::new("environments");
/// (project id, environment name) → environment id.
pub const PROJECT_ENVIRONMENTS: TableDefinition<(u64, &str), u64> = TableDefinition::new("project_environments");
/// Deployment id → `domain::Deployment` (one per job naming an environment).
pub const DEPLOYMENTS: TableDefinition<u64, Json> = TableDefinition::new("deployments");
/// (project id, deployment id) → (); a project's deployments in id order.
pub const PROJECT_DEPLOYMENTS: TableDefinition<(u64, u64), ()> = TableDefinition::new("project_deployments");
/// Job id → its deployment's id.
pub const JOB_DEPLOYMENTS: TableDefinition<u64, u64> = TableDefinition::new("job_deployments");
/// Project id → the last deployment iid handed out in it.
pub const DEPLOYMENT_IIDS: TableDefinition<u64, u64> = TableDefinition::new("deployment_iids");

/// Schedule id → `domain::PipelineSchedule`.
pub const SCHEDULES: TableDefinition<u64, Json> = TableDefinition::new("pipeline_schedules");
/// (project id, schedule id) → (); a project's schedules in id order.
pub const PROJECT_SCHEDULES: TableDefinition<(u64, u64), ()> = TableDefinition::new("project_schedules");
/// Schedule id → its variables (`Vec<domain::Variable>` as JSON), sealed with the data dir's key.
pub const SCHEDULE_VARIABLES: TableDefinition<u64, &[u8]> = TableDefinition::new("schedule_variables");
/// (schedule id, pipeline id) → (): the pipelines a schedule made (written in their commit).
pub const SCHEDULE_PIPELINES: TableDefinition<(u64, u64), ()> = TableDefinition::new("schedule_pipelines");

/// (project id, `branch:<name>` or `tag:<name>`) → `domain::ProtectedRef`.
pub const PROTECTED_REFS: TableDefinition<(u64, &str), Json> = TableDefinition::new("protected_refs");
/// (project id, full ref name) → commit (or tag object) id: the refs spur last saw in a
/// project's repository, to tell which moved (push pipelines). The key `(id, "")` marks a
/// project whose refs were recorded at least once.
pub const PROJECT_REFS: TableDefinition<(u64, &str), &str> = TableDefinition::new("project_refs");

/// (project id, hook id) → `domain::ProjectHook`.
pub const PROJECT_HOOKS: TableDefinition<(u64, u64), Json> = TableDefinition::new("project_hooks");
/// Sequence → an event (JSON) written in the commit of the change it announces, until `hooks`
/// has turned it into deliveries (in the commit that stores them in the outbox).
pub const PENDING_EVENTS: TableDefinition<u64, Json> = TableDefinition::new("pending_events");
/// (hook id, log id) → a delivery's log, JSON; the newest 100 per hook are kept.
pub const HOOK_LOGS: TableDefinition<(u64, u64), Json> = TableDefinition::new("hook_logs");
/// (project id, badge id) → the badge, JSON.
pub const PROJECT_BADGES: TableDefinition<(u64, u64), Json> = TableDefinition::new("project_badges");
/// Releases by (project id, tag name).
pub const RELEASES: TableDefinition<(u64, &str), Json> = TableDefinition::new("releases");
/// Project id → `domain::StatusIntegration` (commit statuses to GitHub or Gitea).
pub const STATUS_INTEGRATIONS: TableDefinition<u64, Json> = TableDefinition::new("status_integrations");

/// Delivery id → a webhook or commit-status delivery not yet made (`hooks::Delivery` as JSON,
/// sealed: it carries the hook's secret). Removed once delivered or given up.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

/// `"application"` → `domain::ApplicationSettings`.
pub const SETTINGS: TableDefinition<&str, Json> = TableDefinition::new("settings");

/// Runs `$each!(TABLE)` for every table above, in this order. Schema creation and backups use
/// it, so a new table is created and backed up once it is listed here.
macro_rules! for_every_table {
    ($each:ident) => {
        $each!(META);
        $each!(USERS);
        $each!(USERNAMES);
        $each!(EMAILS);
        $each!(PATS);
        $each!(PAT_IDS);
        $each!(NAMESPACES);
        $each!(NAMESPACE_PATHS);
        $each!(GROUP_MEMBERS);
        $each!(PROJECTS);
        $each!(PROJECT_PATHS);
        $each!(PROJECT_MEMBERS);
        $each!(TRIGGERS);
        $each!(TRIGGER_DIGESTS);
        $each!(PROJECT_TRIGGERS);
        $each!(TRIGGER_LAST_USED);
        $each!(TRIGGER_LAST_ADDRESS);
        $each!(PIPELINES);
        $each!(PROJECT_PIPELINES);
        $each!(PIPELINE_IIDS);
        $each!(PIPELINE_VARIABLES);
        $each!(JOBS);
        $each!(PIPELINE_JOBS);
        $each!(PROJECT_JOBS);
        $each!(JOB_VARIABLES);
        $each!(ACTIVE_JOBS);
        $each!(JOB_TOKENS);
        $each!(JOB_TOKEN_ALLOWLIST);
        $each!(JOB_TOKEN_SCOPE_OFF);
        $each!(DOWNSTREAM);
        $each!(HIERARCHY_SIZES);
        $each!(SESSIONS);
        $each!(IDEMPOTENCY_RECORDS);
        $each!(IDEMPOTENCY_TAGS);
        $each!(PROJECT_VARIABLES);
        $each!(GROUP_VARIABLES);
        $each!(RUNNERS);
        $each!(RUNNER_TOKENS);
        $each!(ARTIFACTS);
        $each!(TEST_REPORTS);
        $each!(TEST_SUMMARIES);
        $each!(ENVIRONMENTS);
        $each!(PROJECT_ENVIRONMENTS);
        $each!(DEPLOYMENTS);
        $each!(PROJECT_DEPLOYMENTS);
        $each!(JOB_DEPLOYMENTS);
        $each!(DEPLOYMENT_IIDS);
        $each!(SCHEDULES);
        $each!(PROJECT_SCHEDULES);
        $each!(SCHEDULE_VARIABLES);
        $each!(SCHEDULE_PIPELINES);
        $each!(PROTECTED_REFS);
        $each!(PROJECT_REFS);
        $each!(PROJECT_HOOKS);
        $each!(HOOK_LOGS);
        $each!(PENDING_EVENTS);
        $each!(PROJECT_BADGES);
        $each!(RELEASES);
        $each!(STATUS_INTEGRATIONS);
        $each!(OUTBOX);
        $each!(SETTINGS);
    };
}
pub(super) use for_every_table;

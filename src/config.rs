//! spur's configuration: defaults in code, then an optional TOML file, then `SPUR_*` environment
//! variables and command-line flags (clap merges the last two). A leaf module.

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The data dir's layout: where each kind of data lives under `--data-dir`.
pub mod layout {
    /// The database.
    pub const DATABASE: &str = "spur.redb";
    /// The secret key that seals tokens and digests them.
    pub const SECRET_KEY: &str = "secret.key";
    /// Job logs, `<job id>.log`.
    pub const TRACES: &str = "traces";
    /// Artifacts archives, `<job id>.zip`.
    pub const ARTIFACTS: &str = "artifacts";
    /// Hosted repositories and mirrors, `<repo name>.git`, and SSH's known hosts in `.ssh`.
    pub const REPOSITORIES: &str = "repositories";
}

/// Everything `spur serve` needs to start.
#[derive(Clone)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Folder holding `spur.redb`, the secret key and working folders.
    pub data_dir: PathBuf,
    /// Base URL for `web_url` fields and links spur hands out, without a trailing slash.
    pub external_url: String,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Password for `root` on first start (else random).
    pub root_password: Option<String>,
    /// Personal access token for `root` on first start (else random).
    pub root_token: Option<String>,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Jobs the built-in shell executor runs at once (`None`: one per core; 0: off).
    pub concurrent: Option<usize>,
    /// A job's timeout when its configuration names none, in seconds.
    pub job_timeout_secs: u64,
    /// Largest job log kept, in bytes; output past it is dropped with a notice.
    pub max_trace_bytes: u64,
    /// Writes are refused (503) while the data dir's disk has less than this free (0: never).
    pub min_free_bytes: u64,
    /// How many multi-project hops a chain of downstream pipelines may make.
    pub max_downstream_depth: u32,
    /// Finished pipelines older than this many seconds are deleted (0: kept forever).
    pub keep_pipelines_secs: u64,
    /// Job logs older than this many seconds are deleted (0: kept forever).
    pub keep_logs_secs: u64,
    /// How often retention runs, in seconds.
    pub retention_interval_secs: u64,
    /// On SIGTERM, how long running jobs may go on before they are failed, in seconds.
    pub shutdown_grace_secs: u64,
    /// Failed sign-ins per client per minute before 429 (0: no limit).
    pub sign_in_rate_limit: u32,
    /// Failed trigger requests per client per minute before 429 (0: no limit, GitLab's default).
    pub trigger_rate_limit: u32,
    /// The unprivileged user jobs of the built-in executor run as (spur must run as root);
    /// without it, a root spur gives each job a uid of its own from `job_uids`.
    pub job_user: Option<String>,
    /// The fence around jobs: `landlock` (the default), `bwrap` (with Landlock inside) or `none`.
    pub job_sandbox: String,
    /// The first and last uid jobs run as when spur runs as root.
    pub job_uids: (u32, u32),
    /// Folders jobs may read besides the system ones.
    pub job_read_paths: Vec<PathBuf>,
    /// The container engine for jobs with `image:`: `auto`, `podman`, `docker` or `none`.
    pub job_engine: String,
    /// Whether webhooks, integrations and mirrors may reach the local network from the start
    /// (the application setting can allow it too).
    pub allow_local_requests: bool,
    /// Folders administrators may import local repositories from (empty: anywhere).
    pub import_path_dirs: Vec<PathBuf>,
    /// How long a runner's job request is held while nothing is queued, in seconds.
    pub runner_poll_timeout_secs: u64,
    /// How long a runner may be silent about a running job before it is failed, in seconds.
    pub runner_job_timeout_secs: u64,
    /// Largest artifacts archive accepted, in bytes.
    pub max_artifacts_bytes: u64,
    /// Most bytes of one job's JUnit reports, unpacked.
    pub max_test_report_bytes: u64,
    /// How often mirrored projects are fetched for push pipelines, in seconds.
    pub mirror_interval_secs: u64,
    /// Shortest time between two runs of one pipeline schedule, in seconds.
    pub min_schedule_interval_secs: u64,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("external_url", &self.external_url)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("root_password", &self.root_password.as_ref().map(|_| "<redacted>"))
            .field("root_token", &self.root_token.as_ref().map(|_| "<redacted>"))
            .field("workers", &self.workers)
            .field("concurrent", &self.concurrent)
            .field("job_timeout_secs", &self.job_timeout_secs)
            .field("max_trace_bytes", &self.max_trace_bytes)
            .field("min_free_bytes", &self.min_free_bytes)
            .field("max_downstream_depth", &self.max_downstream_depth)
            .field("keep_pipelines_secs", &self.keep_pipelines_secs)
            .field("keep_logs_secs", &self.keep_logs_secs)
            .field("retention_interval_secs", &self.retention_interval_secs)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("sign_in_rate_limit", &self.sign_in_rate_limit)
            .field("trigger_rate_limit", &self.trigger_rate_limit)
            .field("job_user", &self.job_user)
            .field("job_sandbox", &self.job_sandbox)
            .field("job_uids", &self.job_uids)
            .field("job_read_paths", &self.job_read_paths)
            .field("job_engine", &self.job_engine)
            .field("allow_local_requests", &self.allow_local_requests)
            .field("import_path_dirs", &self.import_path_dirs)
            .finish()
    }
}

/// Default body limit: 1 MiB, like GitLab's default for API payloads of this kind.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Largest artifacts archive by default: GitLab's default maximum artifacts size, 100 MiB.
pub const DEFAULT_MAX_ARTIFACTS_BYTES: u64 = 100 << 20;

/// Default depth of multi-project chains: deep enough for real fan-outs, short enough that a
/// project triggering itself stops quickly.
pub const DEFAULT_MAX_DOWNSTREAM_DEPTH: u32 = 10;

/// Default job timeout: one hour, GitLab's project default.
pub const DEFAULT_JOB_TIMEOUT_SECS: u64 = 3600;

/// Default log cap: 16 MiB. GitLab's runners stop at 4 MiB, which cuts off verbose builds; the
/// log is a file on the server's own disk, so four times that costs little and still bounds a
/// runaway job.
pub const DEFAULT_MAX_TRACE_BYTES: u64 = 16 << 20;
/// The free space writes need by default: a batch never comes near it, so a commit that starts
/// finds room for every page it writes.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 32 << 20;

/// What retention keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetentionPolicy {
    /// Finished pipelines older than this are deleted (0: never).
    pub keep_pipelines_secs: u64,
    /// Job logs older than this are deleted (0: never).
    pub keep_logs_secs: u64,
    /// How often retention runs.
    pub interval_secs: u64,
}

/// The uids jobs run as when spur is root: above the ranges systemd and container tools use.
pub const DEFAULT_JOB_UIDS: (u32, u32) = (2_000_000_000, 2_000_000_999);

impl Config {
    /// A configuration for `data_dir` with every other setting at its default.
    pub fn new(data_dir: PathBuf) -> Config {
        let listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        Config {
            listen,
            data_dir,
            external_url: format!("http://{listen}"),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            root_password: None,
            root_token: None,
            workers: 0,
            concurrent: None,
            job_timeout_secs: DEFAULT_JOB_TIMEOUT_SECS,
            max_trace_bytes: DEFAULT_MAX_TRACE_BYTES,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            max_downstream_depth: DEFAULT_MAX_DOWNSTREAM_DEPTH,
            keep_pipelines_secs: 0,
            keep_logs_secs: 0,
            retention_interval_secs: 3600,
            shutdown_grace_secs: 30,
            sign_in_rate_limit: 10,
            trigger_rate_limit: 0,
            job_user: None,
            job_sandbox: "landlock".into(),
            job_uids: DEFAULT_JOB_UIDS,
            job_read_paths: Vec::new(),
            job_engine: "auto".into(),
            allow_local_requests: false,
            import_path_dirs: Vec::new(),
            runner_poll_timeout_secs: 50,
            runner_job_timeout_secs: 3600,
            max_artifacts_bytes: DEFAULT_MAX_ARTIFACTS_BYTES,
            max_test_report_bytes: 10 << 20,
            mirror_interval_secs: 300,
            min_schedule_interval_secs: 60,
        }
    }
}

/// The keys a `--config` TOML file may set; each is overridden by its flag or env var.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See [`Config::listen`].
    pub listen: Option<SocketAddr>,
    /// See [`Config::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`Config::external_url`].
    pub external_url: Option<String>,
    /// See [`Config::max_body_bytes`].
    pub max_body_bytes: Option<usize>,
    /// See [`Config::workers`].
    pub workers: Option<usize>,
    /// See [`Config::concurrent`].
    pub concurrent: Option<usize>,
    /// See [`Config::job_timeout_secs`].
    pub job_timeout_secs: Option<u64>,
    /// See [`Config::max_trace_bytes`].
    pub max_trace_bytes: Option<u64>,
    /// See [`Config::min_free_bytes`].
    pub min_free_bytes: Option<u64>,
    /// See [`Config::max_downstream_depth`].
    pub max_downstream_depth: Option<u32>,
    /// See [`Config::keep_pipelines_secs`] (a duration: `90d`, `12h`, seconds).
    pub keep_pipelines: Option<String>,
    /// See [`Config::keep_logs_secs`] (a duration).
    pub keep_logs: Option<String>,
    /// See [`Config::retention_interval_secs`] (a duration).
    pub retention_interval: Option<String>,
    /// See [`Config::shutdown_grace_secs`] (a duration).
    pub shutdown_grace: Option<String>,
    /// See [`Config::sign_in_rate_limit`].
    pub sign_in_rate_limit: Option<u32>,
    /// See [`Config::trigger_rate_limit`].
    pub trigger_rate_limit: Option<u32>,
    /// See [`Config::job_user`].
    pub job_user: Option<String>,
    /// `landlock`, `bwrap` or `none`; see [`Config::job_sandbox`].
    pub job_sandbox: Option<String>,
    /// `FIRST-LAST`; see [`Config::job_uids`].
    pub job_uids: Option<String>,
    /// See [`Config::job_read_paths`].
    pub job_read_paths: Option<Vec<PathBuf>>,
    /// See [`Config::job_engine`].
    pub job_engine: Option<String>,
    /// See [`Config::allow_local_requests`].
    pub allow_local_requests: Option<bool>,
    /// See [`Config::import_path_dirs`].
    pub import_path_dirs: Option<Vec<PathBuf>>,
    /// See [`Config::runner_poll_timeout_secs`] (a duration).
    pub runner_poll_timeout: Option<String>,
    /// See [`Config::runner_job_timeout_secs`] (a duration).
    pub runner_job_timeout: Option<String>,
    /// See [`Config::max_artifacts_bytes`].
    pub max_artifacts_bytes: Option<u64>,
    /// See [`Config::max_test_report_bytes`].
    pub max_test_report_bytes: Option<u64>,
    /// See [`Config::mirror_interval_secs`] (a duration).
    pub mirror_interval: Option<String>,
    /// See [`Config::min_schedule_interval_secs`] (a duration).
    pub min_schedule_interval: Option<String>,
}

impl FileConfig {
    /// Reads and parses a TOML config file.
    pub fn load(path: &std::path::Path) -> Result<FileConfig, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("invalid config file {}: {e}", path.display()))
    }
}

/// Normalises an external URL: no trailing slash, must be http or https.
pub fn normalize_external_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
        return Err(format!("external URL must start with http:// or https://, got {url:?}"));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let mut c = Config::new("/tmp/x".into());
        c.root_token = Some("glpat-secret".into());
        assert!(!format!("{c:?}").contains("glpat-secret"));
    }

    #[test]
    fn external_url_is_normalised() {
        assert_eq!(
            normalize_external_url("https://ci.example/").as_deref(),
            Ok("https://ci.example")
        );
        assert!(normalize_external_url("ci.example").is_err());
    }
}

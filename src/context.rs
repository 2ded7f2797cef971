//! The context every service, the engine and the HTTP layer share: storage, secrets,
//! repositories, logs, the scheduler's handle, the job fence and the settings they need. It
//! holds only what lives below the services (no field names anything above it); `app` fills it.

use crate::clock;
use crate::domain::Millis;
use crate::git::Repos;
use crate::scheduler::{Inbox, Scheduler};
use crate::secrets::Secrets;
use crate::storage::Store;
use crate::trace::Traces;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Shared state of a running spur.
pub struct Spur {
    /// The database.
    pub store: Store,
    /// Keys derived from the data dir's secret.
    pub secrets: Secrets,
    /// Project repositories.
    pub repos: Repos,
    /// Base URL for links, without a trailing slash.
    pub external_url: String,
    /// The data dir.
    pub data_dir: PathBuf,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Set while root's first password is being hashed: sign-in waits for the hash only then.
    pub root_password_pending: Arc<std::sync::atomic::AtomicBool>,
    /// The owner of job state; every job change goes through it.
    pub scheduler: Scheduler,
    /// The scheduler's inbox until `start_engine` takes it.
    pub inbox: Mutex<Option<Inbox>>,
    /// Job logs.
    pub traces: Traces,
    /// Timeout of jobs whose configuration sets none, in seconds.
    pub job_timeout_secs: u64,
    /// Jobs the built-in executor runs at once (0: none).
    pub concurrent: usize,
    /// How many multi-project hops a downstream chain may make.
    pub max_downstream_depth: u32,
    /// Counters for `/-/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// What retention deletes, and how often it runs.
    pub retention: crate::config::RetentionPolicy,
    /// The shutdown signal: executors start no more jobs, background tasks and held runner
    /// requests end.
    pub shutdown: Shutdown,
    /// Failed sign-ins per client.
    pub sign_in_limiter: crate::rate_limit::Limiter,
    /// Failed trigger requests per client.
    pub trigger_limiter: crate::rate_limit::Limiter,
    /// Hook tests per user (GitLab's `web_hook_test`: 5 a minute).
    pub hook_test_quota: crate::rate_limit::Quota,
    /// Hook event resends per user (GitLab's `web_hook_event_resend`: 5 a minute).
    pub hook_resend_quota: crate::rate_limit::Quota,
    /// Who jobs run as and the fence around them.
    pub isolation: Arc<crate::sandbox::Isolation>,
    /// The container engine jobs with `image:` run in (none: on the host), known before the
    /// executor takes a job.
    pub engine: crate::sandbox::engine::Detected,
    /// The label on every container and network this spur makes.
    pub engine_label: String,
    /// Folders administrators may import local repositories from (empty: anywhere).
    pub import_path_dirs: Vec<PathBuf>,
    /// Whether the `--allow-local-requests` flag allows outbound requests to the local network.
    pub allow_local_requests: bool,
    /// What webhooks, integrations and mirror fetches may reach (from the application settings).
    pub outbound: Arc<std::sync::RwLock<crate::outbound::Policy>>,
    /// `include:remote` files fetched in the last minute.
    pub remote_includes: crate::outbound::TextCache,
    /// When GitLab runners last reported on each job they run.
    pub runner_contacts: RunnerContacts,
    /// How long a job request with `last_update` is held while no job is queued.
    pub runner_poll_timeout: std::time::Duration,
    /// How long a runner may stay silent about a running job before it is failed, in seconds.
    pub runner_job_timeout_secs: u64,
    /// Largest artifacts archive accepted, in bytes.
    pub max_artifacts_bytes: u64,
    /// Most bytes of one job's JUnit reports, unpacked.
    pub max_test_report_bytes: u64,
    /// One lock per project for comparing its refs (push pipelines).
    pub push_locks: ProjectLocks,
    /// How often mirrors are fetched for push pipelines.
    pub mirror_interval: std::time::Duration,
    /// Shortest time between two runs of one pipeline schedule, in milliseconds.
    pub min_schedule_interval_ms: i64,
    /// Wakes the schedule runner when a schedule changes.
    pub schedules_changed: tokio::sync::Notify,
    /// Schedule plays per user and schedule (GitLab's `play_pipeline_schedule`: 1 a minute).
    pub schedule_play_quota: crate::rate_limit::Quota,
    /// Pipeline and job changes, for webhooks and commit statuses.
    pub events: crate::events::Events,
}

impl Spur {
    /// What outbound requests may reach now.
    pub fn outbound_policy(&self) -> crate::outbound::Policy {
        self.outbound.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// Where jobs with `image:` run, in words for the log and the Admin area.
    pub fn describe_engine(&self) -> String {
        match self.engine.state() {
            Some(Some(e)) => format!("{} {}: jobs with image: run in containers", e.program, e.version),
            None => "auto: still looking for podman or docker".into(),
            Some(None) => "none: jobs with image: run on the host, with a warning in their log".into(),
        }
    }
}

/// One lock per project, so that two updates of one repository are compared one after the
/// other.
#[derive(Default)]
pub struct ProjectLocks {
    locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

impl ProjectLocks {
    /// The lock of one project.
    pub fn of(&self, project_id: u64) -> Arc<tokio::sync::Mutex<()>> {
        match self.locks.lock() {
            Ok(mut locks) => locks.entry(project_id).or_default().clone(),
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

/// When each job running on a runner was last heard of, and which runners cancel gracefully.
#[derive(Default)]
pub struct RunnerContacts {
    jobs: Mutex<HashMap<u64, Millis>>,
    graceful: Mutex<std::collections::HashSet<u64>>,
}

impl RunnerContacts {
    /// Records that the runner of `job_id` reported just now.
    pub fn heard(&self, job_id: u64) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(job_id, clock::now());
        }
    }

    /// When the runner of `job_id` last reported, if it did since this server started.
    pub fn last(&self, job_id: u64) -> Option<Millis> {
        self.jobs.lock().ok()?.get(&job_id).copied()
    }

    /// Forgets a job that ended.
    pub fn forget(&self, job_id: u64) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.remove(&job_id);
        }
    }

    /// Notes that the runner of `job_id` cancels gracefully (`features.cancel_gracefully`: it
    /// runs `after_script` when told `Job-Status: canceling`).
    pub fn set_graceful(&self, job_id: u64) {
        if let Ok(mut graceful) = self.graceful.lock() {
            graceful.insert(job_id);
        }
    }

    /// Whether the runner of `job_id` is still finishing a graceful cancel.
    pub fn is_graceful(&self, job_id: u64) -> bool {
        self.graceful.lock().is_ok_and(|g| g.contains(&job_id))
    }

    /// The runner reported the end of a graceful cancel.
    pub fn end_graceful(&self, job_id: u64) {
        if let Ok(mut graceful) = self.graceful.lock() {
            graceful.remove(&job_id);
        }
    }
}

/// The server's shutdown signal: set once, seen by every background task, executor worker and
/// held runner request, which stop when it is set (a future to await, not a flag to poll).
pub struct Shutdown(tokio::sync::watch::Sender<bool>);

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown(tokio::sync::watch::channel(false).0)
    }
}

impl Shutdown {
    /// Starts the shutdown: everything waiting on [`Shutdown::started`] wakes.
    pub fn begin(&self) {
        self.0.send_replace(true);
    }

    /// Whether the shutdown has started.
    pub fn is_started(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the shutdown has started.
    pub async fn started(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}

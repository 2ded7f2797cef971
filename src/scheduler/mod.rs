//! The scheduler's handle: how every part of spur asks for a job change (start, finish, cancel,
//! retry, play) and what it answers, the queue of pending jobs executors take ids from, and
//! `decide`, GitLab's processing rules as pure functions. The task that owns job state and
//! applies the commands is `engine`, above the services it calls. Knows nothing of HTTP.

pub mod decide;
pub mod queue;
pub mod resource_groups;

use crate::domain::{Job, JobStatus, Millis, Pipeline};
use queue::{JobClass, JobQueue, QueuedJob};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// How a job ended, as its executor reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// The script exited 0.
    Success,
    /// It failed; GitLab's failure reason and the exit code when the script ran to an end.
    Failed {
        /// `script_failure`, `job_execution_timeout`, `runner_system_failure`, ...
        reason: String,
        /// The script's exit code.
        exit_code: Option<i32>,
    },
    /// It stopped because it was canceled.
    Canceled,
}

/// What an executor gets when the scheduler lets it start a job.
pub struct Started {
    /// The job, now running.
    pub job: Job,
    /// Its pipeline.
    pub pipeline: Pipeline,
    /// Its `CI_JOB_TOKEN`, valid while it runs.
    pub token: String,
    /// Turns `true` when the job is canceled.
    pub cancel: watch::Receiver<bool>,
    /// Answers whether the `running` state (and the token's digest) is durable. The executor
    /// may prepare the workspace meanwhile but must not run the job's script before `true`.
    pub durable: oneshot::Receiver<bool>,
}

/// What a request targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A whole pipeline.
    Pipeline(u64),
    /// One job.
    Job(u64),
}

/// Why the scheduler refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The job or pipeline does not exist.
    NotFound,
    /// GitLab's 403: `Job is not retryable`.
    NotRetryable,
    /// GitLab's 400: `Unplayable Job`.
    NotPlayable,
    /// The change could not be stored.
    Storage(String),
    /// GitLab's 400 for a status change its state machine refuses
    /// (`Cannot transition status via :run from :running ...`).
    Transition(String),
    /// GitLab's 422: the pipeline holds as many jobs as it may.
    TooManyJobs,
    /// GitLab's 403 `Job is not erasable!`: unfinished, or nothing left to erase.
    NotErasable,
}

pub(crate) type Answer = oneshot::Sender<Result<Option<u64>, Refusal>>;

/// A request to the engine.
pub(crate) enum Command {
    Start {
        job_id: u64,
        runner: String,
        runner_id: Option<u64>,
        reply: oneshot::Sender<Option<Started>>,
    },
    Finish {
        job_id: u64,
        end: JobEnd,
        reply: Option<Answer>,
    },
    Cancel {
        target: Target,
        reply: Answer,
    },
    Retry {
        target: Target,
        user_id: u64,
        reply: Answer,
    },
    Play {
        job_id: u64,
        user_id: u64,
        /// Variables the user set for this run (they win over every other variable).
        variables: Vec<(String, String)>,
        reply: Answer,
    },
    Scheduled {
        job_id: u64,
        at: Millis,
    },
    Abort {
        message: String,
        reply: Answer,
    },
    Status {
        pipeline_id: u64,
        status: PostedStatus,
        reply: Answer,
    },
    Erase {
        job_id: u64,
        reply: Answer,
    },
}

/// A commit status an external system posts (`POST /projects/:id/statuses/:sha`).
#[derive(Debug, Clone)]
pub struct PostedStatus {
    /// `name` (or `context`); `default` when absent.
    pub name: String,
    /// The state asked for.
    pub state: StatusState,
    /// The user posting it: a pending or running status of theirs with this name is updated.
    pub user_id: u64,
    /// `target_url`, `description` and `coverage`, where given.
    pub target_url: Option<String>,
    /// See `target_url`.
    pub description: Option<String>,
    /// See `target_url`.
    pub coverage: Option<f64>,
}

/// The states a commit status may be posted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    /// `pending`.
    Pending,
    /// `running`.
    Running,
    /// `success`.
    Success,
    /// `failed`.
    Failed,
    /// `canceled`.
    Canceled,
    /// `skipped`.
    Skipped,
}

impl StatusState {
    /// Parses GitLab's name.
    pub fn parse(s: &str) -> Option<StatusState> {
        Some(match s {
            "pending" => StatusState::Pending,
            "running" => StatusState::Running,
            "success" => StatusState::Success,
            "failed" => StatusState::Failed,
            "canceled" => StatusState::Canceled,
            "skipped" => StatusState::Skipped,
            _ => return None,
        })
    }
}

/// The handle every part of spur uses to talk to the scheduler.
pub struct Scheduler {
    commands: mpsc::UnboundedSender<Command>,
    /// Pending jobs, for executors.
    pub queue: Arc<JobQueue>,
    /// Which job holds each resource group.
    pub groups: resource_groups::ResourceGroups,
}

/// The receiving end, handed to the engine once.
pub struct Inbox(pub(crate) mpsc::UnboundedReceiver<Command>);

/// A scheduler handle and the inbox its task will read.
pub fn channel() -> (Scheduler, Inbox) {
    let (commands, inbox) = mpsc::unbounded_channel();
    let scheduler = Scheduler {
        commands,
        queue: Arc::new(JobQueue::default()),
        groups: resource_groups::ResourceGroups::default(),
    };
    (scheduler, Inbox(inbox))
}

/// Whether a queued job may be taken now: its resource group (if any) is free, and it holds
/// the group from now on.
pub fn may_take(scheduler: &Scheduler, store: &crate::storage::Store, job: &QueuedJob) -> bool {
    scheduler.groups.try_claim(job, |holder| {
        store.job(holder).ok().flatten().is_some_and(|j| j.status.is_active())
    })
}

/// A job's (project, `resource_group`), as the queue keeps it.
pub fn queued_group(job: &Job) -> Option<(u64, String)> {
    job.settings.resource_group.clone().map(|g| (job.project_id, g))
}

impl Scheduler {
    /// Queues the pending jobs of a pipeline just recorded (on a protected ref or not) and arms
    /// the timers of delayed ones.
    pub fn pipeline_created(&self, jobs: &[Job], protected_ref: bool) {
        for job in jobs {
            match job.status {
                JobStatus::Pending => self.queue.push(QueuedJob::new(
                    job.id,
                    JobClass {
                        tags: job.tags.clone(),
                        protected_ref,
                        resource_group: queued_group(job),
                    },
                )),
                JobStatus::Scheduled => {
                    let at = job.scheduled_at.unwrap_or_default();
                    let _ = self.commands.send(Command::Scheduled { job_id: job.id, at });
                }
                _ => {}
            }
        }
    }

    /// Whether the scheduler task still runs (its inbox is open).
    pub fn is_running(&self) -> bool {
        !self.commands.is_closed()
    }

    /// Asks to start a queued job on the built-in executor; `None` if it may no longer run
    /// (canceled meanwhile).
    pub async fn start(&self, job_id: u64, runner: &str) -> Option<Started> {
        self.start_on(job_id, runner, None).await
    }

    /// Asks to start a queued job on the GitLab runner `runner_id` (named `runner`).
    pub async fn start_on(&self, job_id: u64, runner: &str, runner_id: Option<u64>) -> Option<Started> {
        let (reply, answer) = oneshot::channel();
        let runner = runner.to_string();
        let command = Command::Start {
            job_id,
            runner,
            runner_id,
            reply,
        };
        self.commands.send(command).ok()?;
        answer.await.ok().flatten()
    }

    /// Reports how a running job ended.
    pub fn finish(&self, job_id: u64, end: JobEnd) {
        let _ = self.commands.send(Command::Finish {
            job_id,
            end,
            reply: None,
        });
    }

    /// Reports how a running job ended and answers once that is stored.
    pub async fn finish_durably(&self, job_id: u64, end: JobEnd) -> Result<(), Refusal> {
        self.ask(|reply| Command::Finish {
            job_id,
            end,
            reply: Some(reply),
        })
        .await
        .map(|_| ())
    }

    /// Cancels a job or every unfinished job of a pipeline; answers after the commit.
    pub async fn cancel(&self, target: Target) -> Result<(), Refusal> {
        self.ask(|reply| Command::Cancel { target, reply }).await.map(|_| ())
    }

    /// Retries a finished job (answers the new job's id) or a pipeline's failed and canceled
    /// jobs.
    pub async fn retry(&self, target: Target, user_id: u64) -> Result<Option<u64>, Refusal> {
        self.ask(|reply| Command::Retry { target, user_id, reply }).await
    }

    /// Fails every running job with `runner_system_failure` and `message` in its log, and stops
    /// their processes (server shutdown after the grace period). Answers how many.
    pub async fn abort_running(&self, message: &str) -> Result<usize, Refusal> {
        let message = message.to_string();
        self.ask(|reply| Command::Abort { message, reply })
            .await
            .map(|n| n.unwrap_or(0) as usize)
    }

    /// Starts a manual job, or a delayed one at once.
    pub async fn play(&self, job_id: u64, user_id: u64, variables: Vec<(String, String)>) -> Result<(), Refusal> {
        self.ask(|reply| Command::Play {
            job_id,
            user_id,
            variables,
            reply,
        })
        .await
        .map(|_| ())
    }

    /// Adds or moves on an external commit status in a pipeline; answers the job's id.
    pub async fn post_status(&self, pipeline_id: u64, status: PostedStatus) -> Result<u64, Refusal> {
        self.ask(|reply| Command::Status {
            pipeline_id,
            status,
            reply,
        })
        .await?
        .ok_or(Refusal::NotFound)
    }

    /// Marks a finished job erased (its files are deleted by the caller once this is stored).
    pub async fn erase(&self, job_id: u64) -> Result<(), Refusal> {
        self.ask(|reply| Command::Erase { job_id, reply }).await.map(|_| ())
    }

    async fn ask(&self, command: impl FnOnce(Answer) -> Command) -> Result<Option<u64>, Refusal> {
        let (reply, answer) = oneshot::channel();
        let closed = || Refusal::Storage("the scheduler has stopped".into());
        self.commands.send(command(reply)).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// Most variables one run of a manual job takes, and the longest value.
const MAX_PLAY_VARIABLES: usize = 100;
const MAX_PLAY_VALUE: usize = 10_000;

/// Why variables for a manual job were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PlayVariablesRefusal {
    /// The project's minimum role for setting variables is above the caller's (GitLab: 403).
    Forbidden,
    /// A key or value GitLab would refuse: the field, the reason and the row at fault.
    Invalid(&'static str, String, Option<usize>),
}

/// Checks the variables a caller sets when running a manual job, as GitLab's
/// `Ci::PlayBuildService` and `Ci::JobVariable` do; rows with neither key nor value are dropped.
pub fn play_variables(
    project: &crate::domain::Project,
    level: Option<crate::domain::AccessLevel>,
    rows: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, PlayVariablesRefusal> {
    let rows: Vec<(String, String)> = rows
        .into_iter()
        .map(|(k, v)| (k.trim().to_string(), v))
        .filter(|(k, v)| !k.is_empty() || !v.is_empty())
        .collect();
    if rows.is_empty() {
        return Ok(rows);
    }
    if !project.variables_override_role.allows(level) {
        return Err(PlayVariablesRefusal::Forbidden);
    }
    if rows.len() > MAX_PLAY_VARIABLES {
        return Err(PlayVariablesRefusal::Invalid(
            "job_variables",
            format!("are more than {MAX_PLAY_VARIABLES}"),
            None,
        ));
    }
    for (i, (key, value)) in rows.iter().enumerate() {
        if key.is_empty() {
            return Err(PlayVariablesRefusal::Invalid(
                "job_variables.key",
                "can't be blank".into(),
                Some(i),
            ));
        }
        if key.chars().count() > 255 {
            return Err(PlayVariablesRefusal::Invalid(
                "job_variables.key",
                "is too long (maximum is 255 characters)".into(),
                Some(i),
            ));
        }
        if !crate::domain::is_valid_variable_key(key) {
            return Err(PlayVariablesRefusal::Invalid(
                "job_variables.key",
                "can contain only letters, digits and '_'.".into(),
                Some(i),
            ));
        }
        if rows[..i].iter().any(|(k, _)| k == key) {
            return Err(PlayVariablesRefusal::Invalid(
                "job_variables.key",
                "has already been taken".into(),
                Some(i),
            ));
        }
        if value.chars().count() > MAX_PLAY_VALUE {
            return Err(PlayVariablesRefusal::Invalid(
                "job_variables.value",
                format!("is too long (maximum is {MAX_PLAY_VALUE} characters)"),
                Some(i),
            ));
        }
    }
    Ok(rows)
}

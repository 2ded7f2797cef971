//! The scheduler: the single owner of job state. One task receives every request that changes a
//! job (start, finish, cancel, retry, play, a delayed job's time) as a command, applies a whole
//! batch of them to the pipelines they touch, lets `decide` move the pipelines on, commits
//! everything in one durable write, and only then answers callers, queues pending jobs for
//! executors and signals running jobs to stop. Executors (the built-in shell, and GitLab runners
//! through `http::api::runner_jobs`) only take ids from the queue and ask to start them. Knows
//! nothing of HTTP.

pub mod decide;
pub mod queue;

use crate::app::Spur;
use crate::clock;
use crate::domain::{Job, JobStatus, Millis, Pipeline, PipelineStatus};
use crate::storage::{AddedJob, PipelineChange};
use queue::{JobQueue, QueuedJob};
use std::collections::{BTreeSet, HashMap};
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
}

type Answer = oneshot::Sender<Result<Option<u64>, Refusal>>;

enum Command {
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
}

/// The handle every part of spur uses to talk to the scheduler.
pub struct Scheduler {
    commands: mpsc::UnboundedSender<Command>,
    /// Pending jobs, for executors.
    pub queue: Arc<JobQueue>,
}

/// The receiving end, handed to [`run`] once.
pub struct Inbox(mpsc::UnboundedReceiver<Command>);

/// A scheduler handle and the inbox its task will read.
pub fn channel() -> (Scheduler, Inbox) {
    let (commands, inbox) = mpsc::unbounded_channel();
    let scheduler = Scheduler {
        commands,
        queue: Arc::new(JobQueue::default()),
    };
    (scheduler, Inbox(inbox))
}

impl Scheduler {
    /// Queues the pending jobs of a pipeline just recorded (on a protected ref or not) and arms
    /// the timers of delayed ones.
    pub fn pipeline_created(&self, jobs: &[Job], protected_ref: bool) {
        for job in jobs {
            match job.status {
                JobStatus::Pending => self.queue.push(QueuedJob {
                    job_id: job.id,
                    tags: job.tags.clone(),
                    protected_ref,
                }),
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
    pub async fn play(&self, job_id: u64, user_id: u64) -> Result<(), Refusal> {
        self.ask(|reply| Command::Play { job_id, user_id, reply })
            .await
            .map(|_| ())
    }

    async fn ask(&self, command: impl FnOnce(Answer) -> Command) -> Result<Option<u64>, Refusal> {
        let (reply, answer) = oneshot::channel();
        let closed = || Refusal::Storage("the scheduler has stopped".into());
        self.commands.send(command(reply)).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// Runs the scheduler until every handle is gone: recovers what a previous run left unfinished,
/// then serves commands in batches.
pub async fn run(spur: Arc<Spur>, inbox: Inbox) {
    let mut inbox = inbox.0;
    let mut state = State::default();
    if let Err(e) = recover(&spur, &mut state).await {
        tracing::error!(error = %e, "could not recover unfinished jobs");
    }
    loop {
        let next_timer = state.timers.first().map(|(at, _)| *at);
        let first = match next_timer {
            Some(at) => {
                let wait = std::time::Duration::from_millis((at - clock::now()).max(0) as u64);
                tokio::select! {
                    c = inbox.recv() => match c { Some(c) => Some(c), None => return },
                    _ = tokio::time::sleep(wait) => None,
                }
            }
            None => match inbox.recv().await {
                Some(c) => Some(c),
                None => return,
            },
        };
        let mut commands: Vec<Command> = first.into_iter().collect();
        while commands.len() < 512 {
            match inbox.try_recv() {
                Ok(c) => commands.push(c),
                Err(_) => break,
            }
        }
        let now = clock::now();
        while let Some(&(at, job_id)) = state.timers.first() {
            if at > now {
                break;
            }
            state.timers.remove(&(at, job_id));
            commands.push(Command::Play {
                job_id,
                user_id: 0,
                reply: oneshot::channel().0,
            });
        }
        process(&spur, &mut state, commands).await;
    }
}

/// What the scheduler remembers between batches: cancel switches of running jobs and timers of
/// delayed ones. Everything else is read from storage.
#[derive(Default)]
struct State {
    running: HashMap<u64, watch::Sender<bool>>,
    timers: BTreeSet<(Millis, u64)>,
}

/// One pipeline being changed in a batch.
struct Working {
    pipeline: Pipeline,
    jobs: Vec<Job>,
    changed: BTreeSet<usize>,
    /// Index of an added job → the job whose variables it shares.
    added_from: HashMap<usize, u64>,
    /// The pipeline's and its jobs' statuses when loaded (to tell listeners what changed).
    loaded: (PipelineStatus, Vec<JobStatus>),
    tokens: Vec<(Vec<u8>, u64)>,
}

/// Replies held until the batch is durable (a start is answered at once, its durability later).
enum Reply {
    Start(oneshot::Sender<Option<Started>>, Box<Started>, oneshot::Sender<bool>),
    Done(Answer, Option<(u64, usize)>),
}

struct Batch<'a> {
    spur: &'a Arc<Spur>,
    now: Millis,
    pipelines: HashMap<u64, Working>,
    replies: Vec<Reply>,
    cancel_signals: Vec<u64>,
    /// Bridges started in this batch, run once it is stored.
    bridges: Vec<(Job, Pipeline)>,
}

impl Batch<'_> {
    /// The working copy of a job's pipeline and the job's index in it.
    fn job(&mut self, job_id: u64) -> Result<Option<(u64, usize)>, String> {
        let Some(job) = self.spur.store.job(job_id).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let Some(w) = self.pipeline(job.pipeline_id)? else {
            return Ok(None);
        };
        Ok(w.jobs.iter().position(|j| j.id == job_id).map(|i| (job.pipeline_id, i)))
    }

    fn pipeline(&mut self, pipeline_id: u64) -> Result<Option<&mut Working>, String> {
        if !self.pipelines.contains_key(&pipeline_id) {
            let store = &self.spur.store;
            let Some(pipeline) = store.pipeline(pipeline_id).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let jobs = store.pipeline_jobs(pipeline_id).map_err(|e| e.to_string())?;
            let loaded = (pipeline.status, jobs.iter().map(|j| j.status).collect());
            let working = Working {
                loaded,
                pipeline,
                jobs,
                changed: BTreeSet::new(),
                added_from: HashMap::new(),
                tokens: Vec::new(),
            };
            self.pipelines.insert(pipeline_id, working);
        }
        Ok(self.pipelines.get_mut(&pipeline_id))
    }
}

async fn process(spur: &Arc<Spur>, state: &mut State, commands: Vec<Command>) {
    let mut batch = Batch {
        spur,
        now: clock::now(),
        pipelines: HashMap::new(),
        replies: Vec::new(),
        cancel_signals: Vec::new(),
        bridges: Vec::new(),
    };
    for command in commands {
        if let Err(e) = apply(&mut batch, state, command) {
            tracing::error!(error = %e, "scheduler could not read a job");
        }
    }
    commit(batch, state).await;
}

fn apply(batch: &mut Batch, state: &mut State, command: Command) -> Result<(), String> {
    match command {
        Command::Start {
            job_id,
            runner,
            runner_id,
            reply,
        } => start(batch, state, job_id, (runner, runner_id), reply),
        Command::Finish { job_id, end, reply } => {
            state.running.remove(&job_id);
            match batch.job(job_id)? {
                Some((pid, i)) => {
                    finish(batch, pid, i, &end);
                    if let Some(reply) = reply {
                        batch.replies.push(Reply::Done(reply, None));
                    }
                }
                None => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(Refusal::NotFound));
                    }
                }
            }
            Ok(())
        }
        Command::Cancel { target, reply } => {
            let ids = batch.target_jobs(target)?;
            match ids {
                None => {
                    let _ = reply.send(Err(Refusal::NotFound));
                }
                Some((pid, indices)) => {
                    cancel(batch, pid, &indices);
                    if matches!(target, Target::Pipeline(_)) {
                        cancel_children(batch, pid)?;
                    }
                    batch.replies.push(Reply::Done(reply, None));
                }
            }
            Ok(())
        }
        Command::Retry { target, user_id, reply } => retry(batch, target, user_id, reply),
        Command::Play { job_id, user_id, reply } => {
            let Some((pid, i)) = batch.job(job_id)? else {
                let _ = reply.send(Err(Refusal::NotFound));
                return Ok(());
            };
            let now = batch.now;
            let Some(w) = batch.pipeline(pid)? else { return Ok(()) };
            let job = &mut w.jobs[i];
            if job.retried || !matches!(job.status, JobStatus::Manual | JobStatus::Scheduled) {
                let _ = reply.send(Err(Refusal::NotPlayable));
                return Ok(());
            }
            job.status = JobStatus::Pending;
            job.queued_at = Some(now);
            if user_id != 0 {
                job.user_id = user_id;
            }
            w.changed.insert(i);
            batch.replies.push(Reply::Done(reply, None));
            Ok(())
        }
        Command::Scheduled { job_id, at } => {
            state.timers.insert((at, job_id));
            Ok(())
        }
        Command::Abort { message, reply } => {
            let ids: Vec<u64> = state.running.keys().copied().collect();
            let mut aborted = 0;
            for id in ids {
                let Some((pid, i)) = batch.job(id)? else { continue };
                let remote = batch.pipelines.get(&pid).is_some_and(|w| w.jobs[i].runner_id.is_some());
                if remote {
                    // A GitLab runner goes on running it and reports when it ends.
                    continue;
                }
                let notice = format!("ERROR: Job failed: {message} (runner_system_failure)");
                batch.spur.traces.append_notice(id, &notice);
                let end = JobEnd::Failed {
                    reason: "runner_system_failure".into(),
                    exit_code: None,
                };
                finish(batch, pid, i, &end);
                batch.cancel_signals.push(id);
                aborted += 1;
            }
            let _ = reply.send(Ok(Some(aborted)));
            Ok(())
        }
    }
}

impl Batch<'_> {
    /// The pipeline and job indices a target covers (latest attempts only for a pipeline).
    fn target_jobs(&mut self, target: Target) -> Result<Option<(u64, Vec<usize>)>, String> {
        match target {
            Target::Job(id) => Ok(self.job(id)?.map(|(pid, i)| (pid, vec![i]))),
            Target::Pipeline(pid) => Ok(self.pipeline(pid)?.map(|w| {
                let all = w.jobs.iter().enumerate().filter(|(_, j)| !j.retried).map(|(i, _)| i);
                (pid, all.collect())
            })),
        }
    }
}

fn start(
    batch: &mut Batch,
    state: &mut State,
    job_id: u64,
    (runner, runner_id): (String, Option<u64>),
    reply: oneshot::Sender<Option<Started>>,
) -> Result<(), String> {
    let Some((pid, i)) = batch.job(job_id)? else {
        let _ = reply.send(None);
        return Ok(());
    };
    let token = crate::secrets::new_token("glcbt-").map_err(|e| e.to_string())?;
    let digest = batch.spur.secrets.digest(&token).to_vec();
    let now = batch.now;
    let spur = batch.spur.clone();
    let Some(w) = batch.pipeline(pid)? else { return Ok(()) };
    let job = &mut w.jobs[i];
    if job.status != JobStatus::Pending || job.retried {
        let _ = reply.send(None);
        return Ok(());
    }
    if job.bridge.is_some() {
        // A `trigger:` job starts a downstream pipeline (after this batch is stored); no
        // executor runs it.
        job.status = JobStatus::Running;
        job.started_at = Some(now);
        job.runner = Some("bridge".into());
        w.changed.insert(i);
        let started = (w.jobs[i].clone(), w.pipeline.clone());
        batch.bridges.push(started);
        let _ = reply.send(None);
        return Ok(());
    }
    if job.trigger.is_some() {
        // A bridge recorded before bridges ran: it cannot start a downstream pipeline.
        job.status = JobStatus::Failed;
        job.failure_reason = Some("downstream_pipeline_creation_failed".into());
        job.finished_at = Some(now);
        w.changed.insert(i);
        batch.spur.traces.append_notice(
            job_id,
            "ERROR: downstream pipeline can not be created, multi-project and child pipelines are not supported by spur yet",
        );
        let _ = reply.send(None);
        return Ok(());
    }
    job.status = JobStatus::Running;
    job.started_at = Some(now);
    job.runner = Some(runner);
    job.runner_id = runner_id;
    if let Some(queued) = job.queued_at {
        spur.metrics
            .job_wait_seconds
            .observe((now - queued).max(0) as f64 / 1000.0);
    }
    w.changed.insert(i);
    w.tokens.push((digest, job_id));
    let (switch, cancel) = watch::channel(false);
    state.running.insert(job_id, switch);
    let (made_durable, durable) = oneshot::channel();
    let started = Started {
        job: w.jobs[i].clone(),
        pipeline: w.pipeline.clone(),
        token,
        cancel,
        durable,
    };
    batch.replies.push(Reply::Start(reply, Box::new(started), made_durable));
    Ok(())
}

fn finish(batch: &mut Batch, pid: u64, i: usize, end: &JobEnd) {
    let now = batch.now;
    let Some(w) = batch.pipelines.get_mut(&pid) else { return };
    let job = &mut w.jobs[i];
    if job.status != JobStatus::Running {
        return;
    }
    job.finished_at = Some(now);
    w.changed.insert(i);
    batch.spur.metrics.job_finished(match end {
        JobEnd::Success => "success",
        JobEnd::Failed { .. } => "failed",
        JobEnd::Canceled => "canceled",
    });
    match end {
        JobEnd::Success => job.status = JobStatus::Success,
        JobEnd::Canceled => job.status = JobStatus::Canceled,
        JobEnd::Failed { reason, exit_code } => {
            job.status = JobStatus::Failed;
            job.failure_reason = Some(reason.clone());
            job.exit_code = *exit_code;
            if exit_code.is_some_and(|c| job.allow_failure_exit_codes.contains(&(c as i64))) {
                job.allow_failure = true;
            }
            if retries_automatically(job, reason, *exit_code) {
                let again = fresh_attempt(job, job.user_id, now);
                job.retried = true;
                let from = job.id;
                w.jobs.push(again);
                w.added_from.insert(w.jobs.len() - 1, from);
            }
        }
    }
}

/// Whether `retry:` asks for another attempt after this failure.
fn retries_automatically(job: &Job, reason: &str, exit_code: Option<i32>) -> bool {
    let s = &job.settings;
    job.attempt < s.retry_max
        && (s.retry_when.is_empty() || s.retry_when.iter().any(|w| w == reason || w == "unknown_failure"))
        && (s.retry_exit_codes.is_empty() || exit_code.is_some_and(|c| s.retry_exit_codes.contains(&(c as i64))))
}

/// A new attempt of a finished job, queued at once.
fn fresh_attempt(job: &Job, user_id: u64, now: Millis) -> Job {
    Job {
        id: 0,
        status: JobStatus::Pending,
        user_id,
        created_at: now,
        queued_at: Some(now),
        started_at: None,
        finished_at: None,
        scheduled_at: None,
        failure_reason: None,
        exit_code: None,
        retried: false,
        attempt: job.attempt + 1,
        runner: None,
        runner_id: None,
        allow_failure: job.allow_failure && job.allow_failure_exit_codes.is_empty(),
        ..job.clone()
    }
}

fn cancel(batch: &mut Batch, pid: u64, indices: &[usize]) {
    let now = batch.now;
    let Some(w) = batch.pipelines.get_mut(&pid) else { return };
    for &i in indices {
        let job = &mut w.jobs[i];
        if job.retried || !job.status.is_active() {
            continue;
        }
        if job.status == JobStatus::Running {
            batch.cancel_signals.push(job.id);
        }
        job.status = JobStatus::Canceled;
        job.finished_at = Some(now);
        w.changed.insert(i);
    }
}

/// Cancels the child pipelines (`trigger: include`) below pipeline `pid`, all the way down, as
/// GitLab cascades a cancel to children. Multi-project downstream pipelines are left alone.
fn cancel_children(batch: &mut Batch, pid: u64) -> Result<(), String> {
    let mut pending = vec![pid];
    let mut seen = 0;
    while let Some(parent) = pending.pop() {
        seen += 1;
        if seen > crate::pipeline_create::MAX_HIERARCHY_SIZE {
            break;
        }
        let bridges: Vec<u64> = match batch.pipelines.get(&parent) {
            Some(w) => w.jobs.iter().filter(|j| j.bridge.is_some()).map(|j| j.id).collect(),
            None => continue,
        };
        for bridge in bridges {
            let Some(child) = batch.spur.store.downstream_of(bridge).map_err(|e| e.to_string())? else {
                continue;
            };
            let Some((cid, indices)) = batch.target_jobs(Target::Pipeline(child))? else {
                continue;
            };
            let is_child = batch
                .pipelines
                .get(&cid)
                .is_some_and(|w| w.pipeline.source == crate::domain::PipelineSource::ParentPipeline);
            if is_child {
                cancel(batch, cid, &indices);
                pending.push(cid);
            }
        }
    }
    Ok(())
}

fn retry(batch: &mut Batch, target: Target, user_id: u64, reply: Answer) -> Result<(), String> {
    let now = batch.now;
    let Some((pid, indices)) = batch.target_jobs(target)? else {
        let _ = reply.send(Err(Refusal::NotFound));
        return Ok(());
    };
    let Some(w) = batch.pipeline(pid)? else { return Ok(()) };
    let retryable = |j: &Job| match target {
        Target::Job(_) => {
            !j.retried && matches!(j.status, JobStatus::Success | JobStatus::Failed | JobStatus::Canceled)
        }
        Target::Pipeline(_) => !j.retried && matches!(j.status, JobStatus::Failed | JobStatus::Canceled),
    };
    let chosen: Vec<usize> = indices.into_iter().filter(|&i| retryable(&w.jobs[i])).collect();
    if chosen.is_empty() && matches!(target, Target::Job(_)) {
        let _ = reply.send(Err(Refusal::NotRetryable));
        return Ok(());
    }
    let mut first_added = None;
    for &i in &chosen {
        let mut again = fresh_attempt(&w.jobs[i], user_id, now);
        again.status = JobStatus::Created;
        again.queued_at = None;
        let from = w.jobs[i].id;
        w.jobs[i].retried = true;
        w.changed.insert(i);
        w.jobs.push(again);
        w.added_from.insert(w.jobs.len() - 1, from);
        first_added.get_or_insert(w.jobs.len() - 1);
    }
    reset_skipped(w, &chosen);
    batch.replies.push(Reply::Done(reply, first_added.map(|i| (pid, i))));
    Ok(())
}

/// Skipped jobs after (or needing) a retried job are processed again, as GitLab's
/// `ResetSkippedJobsService` does.
fn reset_skipped(w: &mut Working, retried: &[usize]) {
    let Some(min_stage) = retried.iter().map(|&i| w.jobs[i].stage_index).min() else {
        return;
    };
    let names: Vec<String> = retried.iter().map(|&i| w.jobs[i].name.clone()).collect();
    for (i, job) in w.jobs.iter_mut().enumerate() {
        let after =
            job.stage_index > min_stage || job.needs.as_ref().is_some_and(|n| n.iter().any(|x| names.contains(x)));
        if !job.retried && job.status == JobStatus::Skipped && after {
            job.status = JobStatus::Created;
            w.changed.insert(i);
        }
    }
}

/// Lets `decide` move each touched pipeline on, stores everything in one commit, then answers,
/// queues and signals.
async fn commit(mut batch: Batch<'_>, state: &mut State) {
    let now = batch.now;
    let mut order = Vec::new();
    let mut changes = Vec::new();
    let mut mirrors = Vec::new();
    for (pid, w) in batch.pipelines.iter_mut() {
        for i in decide::advance(&mut w.jobs, now) {
            w.changed.insert(i);
        }
        if w.changed.is_empty() && w.tokens.is_empty() {
            continue;
        }
        let was_final = is_final(w.pipeline.status);
        update_pipeline(&mut w.pipeline, &w.jobs, now);
        if !was_final
            && let Some(up) = w.pipeline.upstream.as_ref().filter(|u| u.mirrored)
            && let Some(end) = crate::bridge::mirrored_end(w.pipeline.status)
        {
            mirrors.push((up.job_id, end));
        }
        let updated = w
            .changed
            .iter()
            .filter(|&&i| w.jobs[i].id != 0)
            .map(|&i| w.jobs[i].clone())
            .collect();
        let added_idx: Vec<usize> = (0..w.jobs.len()).filter(|&i| w.jobs[i].id == 0).collect();
        let added = added_idx
            .iter()
            .map(|&i| AddedJob {
                job: w.jobs[i].clone(),
                variables_from: w.added_from.get(&i).copied().unwrap_or_default(),
            })
            .collect();
        changes.push(PipelineChange {
            pipeline: w.pipeline.clone(),
            updated,
            added,
            tokens: std::mem::take(&mut w.tokens),
        });
        order.push((*pid, added_idx));
    }
    // Starts are answered before the commit so that the executor prepares the workspace while
    // the commit is in flight; it waits for `durable` before running anything.
    let mut replies = Vec::with_capacity(batch.replies.len());
    let mut durability = Vec::new();
    for reply in batch.replies {
        match reply {
            Reply::Start(tx, started, made_durable) => {
                let id = started.job.id;
                if tx.send(Some(*started)).is_err() {
                    state.running.remove(&id);
                }
                durability.push((id, made_durable));
            }
            done => replies.push(done),
        }
    }
    let result = if changes.is_empty() {
        Ok(Vec::new())
    } else {
        batch.spur.store.apply_changes(changes).await
    };
    for (id, made_durable) in durability {
        if made_durable.send(result.is_ok()).is_err() || result.is_err() {
            state.running.remove(&id);
        }
    }
    let added = match result {
        Ok(added) => added,
        Err(e) => {
            tracing::error!(error = %e, "the scheduler could not store a batch; its requests were refused");
            for reply in replies {
                if let Reply::Done(tx, _) = reply {
                    let _ = tx.send(Err(Refusal::Storage(e.to_string())));
                }
            }
            // Jobs whose start was not stored are still pending: queue them again.
            for w in batch.pipelines.values() {
                for &i in &w.changed {
                    if w.jobs[i].status == JobStatus::Running {
                        batch.spur.scheduler.queue.push(QueuedJob {
                            job_id: w.jobs[i].id,
                            tags: w.jobs[i].tags.clone(),
                            protected_ref: protected_ref(batch.spur, &w.pipeline),
                        });
                    }
                }
            }
            return;
        }
    };
    let mut new_ids: HashMap<(u64, usize), u64> = HashMap::new();
    for ((pid, idx), jobs) in order.iter().zip(added) {
        for (i, job) in idx.iter().zip(jobs) {
            new_ids.insert((*pid, *i), job.id);
            if let Some(w) = batch.pipelines.get_mut(pid) {
                w.jobs[*i] = job;
                w.changed.insert(*i);
            }
        }
    }
    for reply in replies {
        if let Reply::Done(tx, added) = reply {
            let _ = tx.send(Ok(added.and_then(|k| new_ids.get(&k).copied())));
        }
    }
    announce(batch.spur, &batch.pipelines);
    for w in batch.pipelines.values() {
        let mut protected = None;
        for &i in &w.changed {
            let job = &w.jobs[i];
            match job.status {
                JobStatus::Pending => batch.spur.scheduler.queue.push(QueuedJob {
                    job_id: job.id,
                    tags: job.tags.clone(),
                    protected_ref: *protected.get_or_insert_with(|| protected_ref(batch.spur, &w.pipeline)),
                }),
                JobStatus::Scheduled => {
                    state.timers.insert((job.scheduled_at.unwrap_or(now), job.id));
                }
                _ => {}
            }
        }
    }
    for id in batch.cancel_signals {
        if let Some(switch) = state.running.get(&id) {
            let _ = switch.send(true);
        }
    }
    for (job, pipeline) in batch.bridges {
        tokio::spawn(crate::bridge::run(batch.spur.clone(), job, pipeline));
    }
    for (bridge_job, end) in mirrors {
        batch.spur.scheduler.finish(bridge_job, end);
    }
}

/// Tells listeners (webhooks, commit statuses) which jobs and pipelines of a stored batch
/// changed status.
fn announce(spur: &Spur, pipelines: &HashMap<u64, Working>) {
    for w in pipelines.values() {
        for &i in &w.changed {
            let job = &w.jobs[i];
            if w.loaded.1.get(i) != Some(&job.status) && job.id != 0 {
                spur.events
                    .send(crate::events::Event::Job(job.id, job.project_id, job.status));
            }
        }
        if w.pipeline.status != w.loaded.0 {
            spur.events.send(crate::events::Event::Pipeline(
                w.pipeline.id,
                w.pipeline.project_id,
                w.pipeline.status,
            ));
        }
    }
}

/// Whether a pipeline's ref is protected (read once per pipeline and batch that queues jobs).
fn protected_ref(spur: &Spur, p: &Pipeline) -> bool {
    crate::protected_refs::is_protected(spur, p.project_id, &p.ref_name, p.tag).unwrap_or(false)
}

fn is_final(status: PipelineStatus) -> bool {
    matches!(
        status,
        PipelineStatus::Success | PipelineStatus::Failed | PipelineStatus::Canceled | PipelineStatus::Skipped
    )
}

/// Sets a pipeline's status and times from its jobs.
fn update_pipeline(p: &mut Pipeline, jobs: &[Job], now: Millis) {
    let status = decide::pipeline_status(jobs);
    p.updated_at = now;
    if p.started_at.is_none() && jobs.iter().any(|j| j.started_at.is_some()) {
        p.started_at = jobs.iter().filter_map(|j| j.started_at).min();
    }
    p.finished_at = if is_final(status) { Some(now) } else { None };
    p.status = status;
}

/// After a restart: jobs that were running failed (their process died with the old server),
/// pending ones are queued again, delayed ones get their timers back, and every touched
/// pipeline is moved on.
async fn recover(spur: &Arc<Spur>, state: &mut State) -> Result<(), String> {
    let jobs = spur.store.active_jobs().map_err(|e| e.to_string())?;
    if jobs.is_empty() {
        return Ok(());
    }
    let mut batch = Batch {
        spur,
        now: clock::now(),
        pipelines: HashMap::new(),
        replies: Vec::new(),
        cancel_signals: Vec::new(),
        bridges: Vec::new(),
    };
    let mut interrupted = 0;
    for job in &jobs {
        let Some((pid, i)) = batch.job(job.id)? else { continue };
        match job.status {
            JobStatus::Running if job.runner_id.is_some() => {
                // A GitLab runner still runs it; `runners::liveness` fails it if it went silent.
            }
            JobStatus::Running => {
                interrupted += 1;
                spur.traces.append_notice(
                    job.id,
                    "ERROR: Job failed: spur stopped while the job was running (runner_system_failure)",
                );
                let end = JobEnd::Failed {
                    reason: "runner_system_failure".into(),
                    exit_code: None,
                };
                finish(&mut batch, pid, i, &end);
            }
            JobStatus::Pending | JobStatus::Scheduled | JobStatus::Created => {
                if let Some(w) = batch.pipelines.get_mut(&pid) {
                    w.changed.insert(i);
                }
            }
            _ => {}
        }
    }
    tracing::info!(
        unfinished = jobs.len(),
        interrupted,
        "recovered the jobs a previous run left unfinished"
    );
    commit(batch, state).await;
    Ok(())
}

//! The engine: the single owner of job state. One task receives every request that changes a
//! job (start, finish, cancel, retry, play, a delayed job's time) as a command, applies a whole
//! batch of them to the pipelines they touch, lets `scheduler::decide` move the pipelines on,
//! commits everything in one durable write, and only then answers callers, queues pending jobs
//! for executors and signals running jobs to stop; bridges it starts and downstream pipelines it
//! mirrors go through `bridge` and `pipeline_create`, below it. Executors (the built-in shell,
//! and GitLab runners through `http::api::runner_jobs`) only take ids from the queue and ask to
//! start them. Knows nothing of HTTP.

mod commit;
mod external;

use commit::{commit, recover};

use crate::clock;
use crate::context::Spur;
use crate::domain::{Job, JobStatus, Millis, Pipeline, PipelineStatus};
use crate::scheduler::{Answer, Command, Inbox, JobEnd, Refusal, Started, Target};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::{oneshot, watch};

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
                variables: Vec::new(),
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
    /// Jobs whose sealed variables are replaced (a manual job played with variables).
    sealed: Vec<(u64, Vec<u8>)>,
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

impl<'a> Batch<'a> {
    /// An empty batch, stamped now.
    fn new(spur: &'a Arc<Spur>) -> Batch<'a> {
        Batch {
            spur,
            now: clock::now(),
            pipelines: HashMap::new(),
            replies: Vec::new(),
            cancel_signals: Vec::new(),
            bridges: Vec::new(),
        }
    }

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
                sealed: Vec::new(),
                tokens: Vec::new(),
            };
            self.pipelines.insert(pipeline_id, working);
        }
        Ok(self.pipelines.get_mut(&pipeline_id))
    }
}

async fn process(spur: &Arc<Spur>, state: &mut State, commands: Vec<Command>) {
    let mut batch = Batch::new(spur);
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
        Command::Play {
            job_id,
            user_id,
            variables,
            reply,
        } => {
            let Some((pid, i)) = batch.job(job_id)? else {
                let _ = reply.send(Err(Refusal::NotFound));
                return Ok(());
            };
            let (now, spur) = (batch.now, batch.spur);
            let Some(w) = batch.pipeline(pid)? else { return Ok(()) };
            let job = &w.jobs[i];
            if job.retried || !matches!(job.status, JobStatus::Manual | JobStatus::Scheduled) {
                let _ = reply.send(Err(Refusal::NotPlayable));
                return Ok(());
            }
            if !variables.is_empty() || !job.played_variables.is_empty() {
                // GitLab's manual job variables come after every other variable: they win. A
                // new play replaces those of the last one (which a retry carried over).
                let mut sealed = crate::job_env::job_variables(spur, job_id)?;
                for key in job.played_variables.iter().rev() {
                    if let Some(at) = sealed.vars.iter().rposition(|(k, _)| k == key) {
                        sealed.vars.remove(at);
                    }
                }
                let keys: Vec<String> = variables.iter().map(|(k, _)| k.clone()).collect();
                sealed.vars.extend(variables);
                let plain = serde_json::to_vec(&sealed).map_err(|e| e.to_string())?;
                w.sealed
                    .push((job_id, spur.secrets.seal(&plain).map_err(|e| e.to_string())?));
                w.jobs[i].played_variables = keys;
            }
            let job = &mut w.jobs[i];
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
        Command::Status {
            pipeline_id,
            status,
            reply,
        } => external::post(batch, pipeline_id, status, reply),
        Command::Erase { job_id, reply } => {
            let now = batch.now;
            let Some((pid, i)) = batch.job(job_id)? else {
                let _ = reply.send(Err(Refusal::NotFound));
                return Ok(());
            };
            let Some(w) = batch.pipeline(pid)? else { return Ok(()) };
            let job = &mut w.jobs[i];
            if !job.status.is_complete() || job.erased_at.is_some() {
                let _ = reply.send(Err(Refusal::NotErasable));
                return Ok(());
            }
            job.erased_at = Some(now);
            w.changed.insert(i);
            batch.replies.push(Reply::Done(reply, None));
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
        erased_at: None,
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
    // External statuses are moved on by their system, never retried (GitLab's
    // `GenericCommitStatus` is not retryable).
    let retryable = |j: &Job| {
        j.external.is_none()
            && match target {
                Target::Job(_) => {
                    !j.retried && matches!(j.status, JobStatus::Success | JobStatus::Failed | JobStatus::Canceled)
                }
                Target::Pipeline(_) => !j.retried && matches!(j.status, JobStatus::Failed | JobStatus::Canceled),
            }
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

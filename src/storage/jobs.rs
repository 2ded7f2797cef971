//! Job state changes as the scheduler writes them: a pipeline and its changed and added jobs in
//! one transaction, the active-jobs index, and `CI_JOB_TOKEN` digests.

use super::codec::{encode, get_json};
use super::tables::{ACTIVE_JOBS, JOB_TOKENS, JOB_VARIABLES, JOBS, PIPELINE_JOBS, PIPELINES, PROJECT_JOBS};
use super::{Error, Store, next_id};
use crate::domain::{Job, JobStatus, Millis, Pipeline};
use redb::{ReadableTable, WriteTransaction};

/// A job to add to a pipeline (a retry): the record (`id` set at commit) and the job whose sealed
/// variables it shares.
#[derive(Debug, Clone)]
pub struct AddedJob {
    /// The new job.
    pub job: Job,
    /// The job whose variables it copies.
    pub variables_from: u64,
}

/// The fields of an unfinished job that sweeps (shutdown, silent runners, metrics) read.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ActiveJob {
    /// The job's id.
    pub id: u64,
    /// Its status.
    pub status: JobStatus,
    /// When it started.
    pub started_at: Option<Millis>,
    /// The GitLab runner running it, if any.
    #[serde(default)]
    pub runner_id: Option<u64>,
}

/// One pipeline's new state as the scheduler decided it.
#[derive(Debug, Clone)]
pub struct PipelineChange {
    /// The pipeline record to store.
    pub pipeline: Pipeline,
    /// Jobs whose record changed.
    pub updated: Vec<Job>,
    /// Jobs to add.
    pub added: Vec<AddedJob>,
    /// `(token digest, job id)` of job tokens handed out.
    pub tokens: Vec<(Vec<u8>, u64)>,
    /// `(job id, sealed variables)` replacing a job's variables.
    pub sealed: Vec<(u64, Vec<u8>)>,
    /// Events to record in the same commit (`None`: nobody listens); added jobs announce
    /// their status once they have ids.
    pub events: Option<Vec<crate::events::Event>>,
}

impl Store {
    /// Stores every change in one durable commit and answers, per change, the added jobs with
    /// their ids. A pipeline deleted meanwhile is left deleted (its change is dropped).
    pub async fn apply_changes(&self, changes: Vec<PipelineChange>) -> Result<Vec<Vec<Job>>, Error> {
        self.write(move |tx| {
            let mut out = Vec::with_capacity(changes.len());
            for change in changes {
                out.push(apply_change(tx, change)?);
            }
            Ok(out)
        })
        .await
    }

    /// A job's sealed variables.
    pub fn job_variables_sealed(&self, job_id: u64) -> Result<Option<Vec<u8>>, Error> {
        self.read(|tx| Ok(tx.open_table(JOB_VARIABLES)?.get(job_id)?.map(|g| g.value().to_vec())))
    }

    /// The ids of every job not in a final status.
    pub fn active_job_ids(&self) -> Result<Vec<u64>, Error> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.open_table(ACTIVE_JOBS)?.iter()? {
                out.push(entry?.0.value());
            }
            Ok(out)
        })
    }

    /// Hands what sweeps need of every job not in a final status to `each`, one at a time: a
    /// long queue is never all in memory at once, and the rest of each record (scripts,
    /// settings) is skipped rather than built.
    pub fn for_each_active_job(&self, mut each: impl FnMut(ActiveJob)) -> Result<(), Error> {
        self.read(|tx| {
            let index = tx.open_table(ACTIVE_JOBS)?;
            let jobs = tx.open_table(JOBS)?;
            for entry in index.iter()? {
                if let Some(job) = get_json(&jobs, entry?.0.value())? {
                    each(job);
                }
            }
            Ok(())
        })
    }

    /// One page of the jobs GitLab runner `runner_id` took that pass `keep`, newest first (or
    /// oldest first), and how many pass. A scan: runners' job lists are an administrator's tool.
    pub fn runner_jobs(
        &self,
        runner_id: u64,
        keep: &dyn Fn(&Job) -> bool,
        newest_first: bool,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Job>, usize), Error> {
        self.read(|tx| {
            let jobs = tx.open_table(JOBS)?;
            let (mut out, mut total) = (Vec::new(), 0);
            let mut visit = |bytes: &[u8]| -> Result<(), Error> {
                let job: Job = super::codec::decode(bytes)?;
                if job.runner_id == Some(runner_id) && keep(&job) {
                    if total >= offset && out.len() < limit {
                        out.push(job);
                    }
                    total += 1;
                }
                Ok(())
            };
            if newest_first {
                for entry in jobs.iter()?.rev() {
                    visit(entry?.1.value())?;
                }
            } else {
                for entry in jobs.iter()? {
                    visit(entry?.1.value())?;
                }
            }
            Ok((out, total))
        })
    }

    /// The job whose `CI_JOB_TOKEN` has this digest.
    pub fn job_by_token_digest(&self, digest: &[u8]) -> Result<Option<Job>, Error> {
        self.read(|tx| {
            let Some(id) = tx.open_table(JOB_TOKENS)?.get(digest)?.map(|g| g.value()) else {
                return Ok(None);
            };
            get_json(&tx.open_table(JOBS)?, id)
        })
    }
}

fn apply_change(tx: &WriteTransaction, change: PipelineChange) -> Result<Vec<Job>, Error> {
    let pipeline = change.pipeline;
    let mut pipelines = tx.open_table(PIPELINES)?;
    if pipelines.get(pipeline.id)?.is_none() {
        return Ok(Vec::new());
    }
    pipelines.insert(pipeline.id, encode(&pipeline)?.as_slice())?;
    let mut jobs = tx.open_table(JOBS)?;
    let mut active = tx.open_table(ACTIVE_JOBS)?;
    for job in &change.updated {
        jobs.insert(job.id, encode(job)?.as_slice())?;
        if job.status.is_complete() {
            active.remove(job.id)?;
        } else {
            active.insert(job.id, ())?;
        }
    }
    let mut added = Vec::with_capacity(change.added.len());
    let mut variables = tx.open_table(JOB_VARIABLES)?;
    for (job_id, sealed) in &change.sealed {
        variables.insert(job_id, sealed.as_slice())?;
    }
    for new in change.added {
        let job = Job {
            id: next_id(tx, "next_job_id")?,
            ..new.job
        };
        let sealed = variables.get(new.variables_from)?.map(|g| g.value().to_vec());
        if let Some(sealed) = sealed {
            variables.insert(job.id, sealed.as_slice())?;
        }
        jobs.insert(job.id, encode(&job)?.as_slice())?;
        tx.open_table(PIPELINE_JOBS)?.insert((pipeline.id, job.id), ())?;
        tx.open_table(PROJECT_JOBS)?.insert((pipeline.project_id, job.id), ())?;
        if !job.status.is_complete() {
            active.insert(job.id, ())?;
        }
        added.push(job);
    }
    let mut tokens = tx.open_table(JOB_TOKENS)?;
    for (digest, job_id) in &change.tokens {
        tokens.insert(digest.as_slice(), *job_id)?;
    }
    if let Some(mut events) = change.events {
        events.extend(
            added
                .iter()
                .map(|j| crate::events::Event::Job(j.id, j.project_id, j.status)),
        );
        super::hooks::record_events(tx, &events)?;
    }
    Ok(added)
}

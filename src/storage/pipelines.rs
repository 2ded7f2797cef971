//! Pipelines, their per-project numbering, their jobs, and their sealed variables.

use super::codec::{decode, encode, get_json};
use super::tables::{
    ACTIVE_JOBS, DOWNSTREAM, HIERARCHY_SIZES, JOB_VARIABLES, JOBS, PIPELINE_IIDS, PIPELINE_JOBS, PIPELINE_VARIABLES,
    PIPELINES, PROJECT_JOBS, PROJECT_PIPELINES, TRIGGER_LAST_USED,
};
use super::{Error, Refusal, Store};
use crate::domain::{Job, Millis, Pipeline, PipelineSource, PipelineStatus};
use redb::ReadableTable;

/// What is needed to create a pipeline; ids are handed out inside the commit.
#[derive(Debug, Clone)]
pub struct NewPipeline {
    /// The project.
    pub project_id: u64,
    /// The commit.
    pub sha: String,
    /// Short ref name.
    pub ref_name: String,
    /// Whether the ref is a tag.
    pub tag: bool,
    /// What started it.
    pub source: PipelineSource,
    /// The user it runs as.
    pub user_id: u64,
    /// The trigger token that started it.
    pub trigger_id: Option<u64>,
    /// Its variables, sealed with the data dir's key.
    pub variables_sealed: Vec<u8>,
    /// Its status at creation: `created` with jobs, `failed` for a configuration error.
    pub status: PipelineStatus,
    /// The configuration error, for a failed pipeline.
    pub yaml_errors: Option<String>,
    /// Its jobs; ids are handed out inside the commit.
    pub jobs: Vec<NewJob>,
    /// Creation time.
    pub now: Millis,
    /// The upstream job, for multi-project and child pipelines.
    pub upstream: Option<crate::domain::Upstream>,
    /// The commit before a push; 40 zeros otherwise.
    pub before_sha: String,
    /// `workflow:name`.
    pub name: Option<String>,
    /// The request's idempotency key, stored with the pipeline in its commit.
    pub idempotency: Option<super::IdempotencyTag>,
    /// The client address the request came from (kept as a trigger's last use).
    pub client: Option<String>,
    /// The trigger token's id and `updated_at` as checked; the commit refuses if it changed.
    pub trigger_version: Option<(u64, Millis)>,
    /// Record the pipeline's creation as an event in this commit (something listens).
    pub announce: bool,
    /// The schedule run that makes it: the commit moves the schedule on, or refuses when the
    /// run was done already.
    pub schedule_run: Option<crate::domain::ScheduleRun>,
}

/// A job to record with its pipeline: the record (ids filled in at commit) and its sealed
/// variables.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The job; `id`, `pipeline_id` are set when committed.
    pub job: Job,
    /// Its variables, sealed with the data dir's key.
    pub variables_sealed: Vec<u8>,
}

/// Filters of the pipelines list.
#[derive(Debug, Clone, Default)]
pub struct PipelineFilter {
    /// Only this ref.
    pub ref_name: Option<String>,
    /// Only this status.
    pub status: Option<PipelineStatus>,
    /// Only this source.
    pub source: Option<PipelineSource>,
    /// Only this commit.
    pub sha: Option<String>,
    /// GitLab's `scope`.
    pub scope: Option<PipelineScope>,
    /// Only pipelines of this user.
    pub user_id: Option<u64>,
    /// Only pipelines created in this window (inclusive bounds, milliseconds).
    pub created: (Option<i64>, Option<i64>),
    /// Only pipelines updated in this window.
    pub updated: (Option<i64>, Option<i64>),
    /// Only pipelines with (`true`) or without (`false`) configuration errors.
    pub yaml_errors: Option<bool>,
    /// Only pipelines of this `workflow:name`.
    pub name: Option<String>,
}

/// `scope` of the pipelines list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineScope {
    /// Running now.
    Running,
    /// Pending.
    Pending,
    /// Final (success, failed, canceled, skipped).
    Finished,
    /// The newest pipeline of each branch.
    Branches,
    /// The newest pipeline of each tag.
    Tags,
}

impl PipelineFilter {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.ref_name.is_none()
            && self.status.is_none()
            && self.source.is_none()
            && self.sha.is_none()
            && self.scope.is_none()
            && self.user_id.is_none()
            && self.created == (None, None)
            && self.updated == (None, None)
            && self.yaml_errors.is_none()
            && self.name.is_none()
    }

    /// Whether `p` passes every filter (`Branches`/`Tags` also keep one pipeline per ref,
    /// which the list applies).
    pub fn matches(&self, p: &Pipeline) -> bool {
        let within =
            |(from, to): (Option<i64>, Option<i64>), t: i64| from.is_none_or(|f| t >= f) && to.is_none_or(|u| t <= u);
        self.ref_name.as_ref().is_none_or(|r| *r == p.ref_name)
            && self.status.is_none_or(|s| s == p.status)
            && self.source.is_none_or(|s| s == p.source)
            && self.sha.as_ref().is_none_or(|s| *s == p.sha)
            && self.user_id.is_none_or(|u| u == p.user_id)
            && within(self.created, p.created_at)
            && within(self.updated, p.updated_at)
            && self.yaml_errors.is_none_or(|e| e == p.yaml_errors.is_some())
            && self.name.as_ref().is_none_or(|n| p.name.as_ref() == Some(n))
            && match self.scope {
                None => true,
                Some(PipelineScope::Running) => p.status == PipelineStatus::Running,
                Some(PipelineScope::Pending) => p.status == PipelineStatus::Pending,
                Some(PipelineScope::Finished) => matches!(
                    p.status,
                    PipelineStatus::Success
                        | PipelineStatus::Failed
                        | PipelineStatus::Canceled
                        | PipelineStatus::Skipped
                ),
                Some(PipelineScope::Branches) => !p.tag,
                Some(PipelineScope::Tags) => p.tag,
            }
    }
}

/// Sort orders of the pipelines list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineOrder {
    /// By id (GitLab's default).
    Id,
    /// By status name.
    Status,
    /// By ref name.
    Ref,
    /// By last update.
    UpdatedAt,
    /// By user id.
    UserId,
}

impl Store {
    /// Records a pipeline, its jobs and their variables durably; answers after the commit with
    /// the records as stored (ids filled in).
    pub async fn create_pipeline(
        &self,
        new: NewPipeline,
    ) -> Result<Result<(Pipeline, Vec<Job>), super::Refusal>, Error> {
        self.write(move |tx| {
            // The trigger token checked before planning must be unchanged now: a rotation,
            // a revocation or new limits committed meanwhile refuse the request.
            if let Some((trigger_id, version)) = new.trigger_version {
                let current = get_json::<_, Versioned>(&tx.open_table(super::tables::TRIGGERS)?, trigger_id)?;
                if current.is_none_or(|t| t.updated_at != version) {
                    return Ok(Err(super::Refusal::NotFound));
                }
            }
            // A schedule's run is made once: refused when the schedule has moved on.
            if let Some(run) = new.schedule_run
                && !super::schedules::is_due(tx, run)?
            {
                return Ok(Err(super::Refusal::NotFound));
            }
            // The pipeline's id and its jobs' ids, reserved in one update of the counters.
            let (id, first_job_id) = {
                let mut meta = tx.open_table(super::tables::META)?;
                let id = meta.get("next_pipeline_id")?.map_or(1, |g| g.value());
                meta.insert("next_pipeline_id", id.saturating_add(1))?;
                let first_job_id = meta.get("next_job_id")?.map_or(1, |g| g.value());
                if !new.jobs.is_empty() {
                    meta.insert("next_job_id", first_job_id.saturating_add(new.jobs.len() as u64))?;
                }
                (id, first_job_id)
            };
            let mut indexed = None;
            let iid = {
                let mut iids = tx.open_table(PIPELINE_IIDS)?;
                let iid = iids.get(new.project_id)?.map_or(0, |g| g.value()) + 1;
                iids.insert(new.project_id, iid)?;
                iid
            };
            let pipeline = Pipeline {
                id,
                iid,
                project_id: new.project_id,
                sha: new.sha,
                ref_name: new.ref_name,
                tag: new.tag,
                before_sha: new.before_sha,
                status: new.status,
                source: new.source,
                user_id: new.user_id,
                trigger_id: new.trigger_id,
                created_at: new.now,
                updated_at: new.now,
                started_at: None,
                finished_at: if matches!(new.status, PipelineStatus::Failed | PipelineStatus::Skipped) {
                    Some(new.now)
                } else {
                    None
                },
                yaml_errors: new.yaml_errors,
                upstream: new.upstream,
                name: new.name,
            };
            if let Some(run) = new.schedule_run {
                super::schedules::record_run(tx, run, id, new.now)?;
            }
            tx.open_table(PIPELINES)?.insert(id, encode(&pipeline)?.as_slice())?;
            if new.announce {
                let event = crate::events::Event::Pipeline(id, pipeline.project_id, pipeline.status);
                super::hooks::record_events(tx, &[event])?;
            }
            if let Some(tag) = new.idempotency {
                let record = super::IdempotencyRecord {
                    fingerprint: tag.fingerprint.iter().map(|b| format!("{b:02x}")).collect(),
                    pipeline: pipeline.clone(),
                    created_at: new.now,
                };
                indexed = Some((tag.id, super::idempotency::put(tx, &tag, &record)?));
            }
            if let Some(up) = &pipeline.upstream {
                tx.open_table(DOWNSTREAM)?.insert(up.job_id, id)?;
                let mut sizes = tx.open_table(HIERARCHY_SIZES)?;
                let size = sizes.get(up.root_id)?.map_or(1, |g| g.value());
                sizes.insert(up.root_id, size + 1)?;
            }
            tx.open_table(PROJECT_PIPELINES)?.insert((new.project_id, id), ())?;
            tx.open_table(PIPELINE_VARIABLES)?
                .insert(id, new.variables_sealed.as_slice())?;
            if let Some(trigger_id) = new.trigger_id {
                record_trigger_use(tx, trigger_id, new.now, new.client.as_deref())?;
            }
            let mut created = Vec::with_capacity(new.jobs.len());
            if !new.jobs.is_empty() {
                let mut active = tx.open_table(ACTIVE_JOBS)?;
                let mut jobs = tx.open_table(JOBS)?;
                let mut by_pipeline = tx.open_table(PIPELINE_JOBS)?;
                let mut by_project = tx.open_table(PROJECT_JOBS)?;
                let mut sealed = tx.open_table(JOB_VARIABLES)?;
                for (new_job, job_id) in new.jobs.into_iter().zip(first_job_id..) {
                    let job = Job {
                        id: job_id,
                        pipeline_id: id,
                        project_id: new.project_id,
                        ..new_job.job
                    };
                    jobs.insert(job.id, encode(&job)?.as_slice())?;
                    by_pipeline.insert((id, job.id), ())?;
                    by_project.insert((new.project_id, job.id), ())?;
                    sealed.insert(job.id, new_job.variables_sealed.as_slice())?;
                    if !job.status.is_complete() {
                        active.insert(job.id, ())?;
                    }
                    created.push(job);
                }
            }
            for job in &created {
                super::environments::record_job(tx, job, new.now)?;
            }
            Ok(Ok((pipeline, created, indexed)))
        })
        .await
        .map(|made| {
            made.map(|(pipeline, created, indexed)| {
                // Durable now: a repeat of the key (which waits for this request) finds it.
                if let Some((id, at)) = indexed {
                    self.idempotency.insert(id, at);
                }
                (pipeline, created)
            })
        })
    }

    /// The pipeline with `id`.
    pub fn pipeline(&self, id: u64) -> Result<Option<Pipeline>, Error> {
        self.read(|tx| get_json(&tx.open_table(PIPELINES)?, id))
    }

    /// A pipeline's sealed variables.
    pub fn pipeline_variables_sealed(&self, id: u64) -> Result<Option<Vec<u8>>, Error> {
        self.read(|tx| Ok(tx.open_table(PIPELINE_VARIABLES)?.get(id)?.map(|g| g.value().to_vec())))
    }

    /// One page of a project's pipelines matching `filter`, sorted by `order`, and how many match
    /// in all. Without filters in id order only the page's records are read.
    pub fn project_pipelines(
        &self,
        project_id: u64,
        filter: &PipelineFilter,
        order: PipelineOrder,
        descending: bool,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Pipeline>, usize), Error> {
        self.read(|tx| {
            let index = tx.open_table(PROJECT_PIPELINES)?;
            let pipelines = tx.open_table(PIPELINES)?;
            let range = (project_id, 0)..=(project_id, u64::MAX);
            if filter.is_empty() && order == PipelineOrder::Id {
                let total = index.range(range.clone())?.count();
                let ids: Vec<u64> = if descending {
                    index
                        .range(range)?
                        .rev()
                        .skip(offset)
                        .take(limit)
                        .map(|e| e.map(|(k, _)| k.value().1))
                        .collect::<Result<_, _>>()?
                } else {
                    index
                        .range(range)?
                        .skip(offset)
                        .take(limit)
                        .map(|e| e.map(|(k, _)| k.value().1))
                        .collect::<Result<_, _>>()?
                };
                let mut page = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(g) = pipelines.get(id)? {
                        page.push(decode(g.value())?);
                    }
                }
                return Ok((page, total));
            }
            let mut out = Vec::new();
            // Newest first, so that `branches`/`tags` keep each ref's newest pipeline.
            let one_per_ref = matches!(filter.scope, Some(PipelineScope::Branches | PipelineScope::Tags));
            let mut refs_seen = std::collections::HashSet::new();
            for entry in index.range(range)?.rev() {
                let id = entry?.0.value().1;
                let Some(g) = pipelines.get(id)? else { continue };
                let p: Pipeline = decode(g.value())?;
                if filter.matches(&p) && (!one_per_ref || refs_seen.insert(p.ref_name.clone())) {
                    out.push(p);
                }
            }
            out.reverse();
            match order {
                PipelineOrder::Id => {}
                PipelineOrder::Status => {
                    out.sort_by(|a, b| a.status.as_str().cmp(b.status.as_str()).then(a.id.cmp(&b.id)))
                }
                PipelineOrder::Ref => out.sort_by(|a, b| a.ref_name.cmp(&b.ref_name).then(a.id.cmp(&b.id))),
                PipelineOrder::UpdatedAt => out.sort_by_key(|p| (p.updated_at, p.id)),
                PipelineOrder::UserId => out.sort_by_key(|p| (p.user_id, p.id)),
            }
            if descending {
                out.reverse();
            }
            let total = out.len();
            Ok((out.into_iter().skip(offset).take(limit).collect(), total))
        })
    }

    /// The newest pipeline of a project on `ref_name`: walks the project's pipelines newest
    /// first and stops at the first match (the badge's question).
    pub fn latest_pipeline_for_ref(&self, project_id: u64, ref_name: &str) -> Result<Option<Pipeline>, Error> {
        self.read(|tx| {
            let index = tx.open_table(PROJECT_PIPELINES)?;
            let pipelines = tx.open_table(PIPELINES)?;
            for entry in index.range((project_id, 0)..=(project_id, u64::MAX))?.rev() {
                let Some(p): Option<Pipeline> = get_json(&pipelines, entry?.0.value().1)? else {
                    continue;
                };
                if p.ref_name == ref_name {
                    return Ok(Some(p));
                }
            }
            Ok(None)
        })
    }

    /// A pipeline's jobs in creation order.
    pub fn pipeline_jobs(&self, pipeline_id: u64) -> Result<Vec<Job>, Error> {
        self.read(|tx| {
            let index = tx.open_table(PIPELINE_JOBS)?;
            let jobs = tx.open_table(JOBS)?;
            let mut out = Vec::new();
            for entry in index.range((pipeline_id, 0)..=(pipeline_id, u64::MAX))? {
                if let Some(job) = get_json(&jobs, entry?.0.value().1)? {
                    out.push(job);
                }
            }
            Ok(out)
        })
    }

    /// The job with `id`.
    pub fn job(&self, id: u64) -> Result<Option<Job>, Error> {
        self.read(|tx| get_json(&tx.open_table(JOBS)?, id))
    }

    /// One page of a project's jobs, newest first, and how many there are.
    pub fn project_jobs(&self, project_id: u64, offset: usize, limit: usize) -> Result<(Vec<Job>, usize), Error> {
        self.read(|tx| {
            let index = tx.open_table(PROJECT_JOBS)?;
            let jobs = tx.open_table(JOBS)?;
            let range = (project_id, 0)..=(project_id, u64::MAX);
            let total = index.range(range.clone())?.count();
            let mut out = Vec::new();
            for entry in index.range(range)?.rev().skip(offset).take(limit) {
                if let Some(job) = get_json(&jobs, entry?.0.value().1)? {
                    out.push(job);
                }
            }
            Ok((out, total))
        })
    }

    /// One page of a project's jobs that pass `keep`, newest first, and how many pass.
    pub fn project_jobs_matching(
        &self,
        project_id: u64,
        keep: &dyn Fn(&Job) -> bool,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Job>, usize), Error> {
        self.read(|tx| {
            let index = tx.open_table(PROJECT_JOBS)?;
            let jobs = tx.open_table(JOBS)?;
            let mut out = Vec::new();
            let mut total = 0;
            for entry in index.range((project_id, 0)..=(project_id, u64::MAX))?.rev() {
                let Some(job): Option<Job> = get_json(&jobs, entry?.0.value().1)? else {
                    continue;
                };
                if keep(&job) {
                    if total >= offset && out.len() < limit {
                        out.push(job);
                    }
                    total += 1;
                }
            }
            Ok((out, total))
        })
    }

    /// Up to `limit` pipelines that finished before `cutoff` (retention's candidates).
    pub fn pipelines_finished_before(&self, cutoff: Millis, limit: usize) -> Result<Vec<u64>, Error> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.open_table(PIPELINES)?.iter()? {
                let (id, bytes) = entry?;
                let p: Pipeline = decode(bytes.value())?;
                if p.finished_at.is_some_and(|f| f < cutoff) {
                    out.push(id.value());
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
    }

    /// Deletes a pipeline and its variables.
    pub async fn delete_pipeline(&self, id: u64) -> Result<Result<(), Refusal>, Error> {
        self.write(move |tx| {
            let Some(p) = tx
                .open_table(PIPELINES)?
                .remove(id)?
                .map(|g| decode::<Pipeline>(g.value()))
                .transpose()?
            else {
                return Ok(Err(Refusal::NotFound));
            };
            tx.open_table(PROJECT_PIPELINES)?.remove((p.project_id, id))?;
            tx.open_table(PIPELINE_VARIABLES)?.remove(id)?;
            remove_jobs(tx, p.project_id, id)?;
            Ok(Ok(()))
        })
        .await
    }
}

/// Just the version of a stored record: the trigger check reads no more than it compares.
#[derive(serde::Deserialize)]
struct Versioned {
    updated_at: Millis,
}

/// Keeps a trigger token's last use (to the second: a burst of triggers from one client writes
/// it once a second, not once a request) and the address it came from when that changed.
fn record_trigger_use(
    tx: &redb::WriteTransaction,
    trigger_id: u64,
    now: Millis,
    client: Option<&str>,
) -> Result<(), Error> {
    let mut last_used = tx.open_table(TRIGGER_LAST_USED)?;
    let before = last_used.get(trigger_id)?.map(|g| g.value());
    if before.is_none_or(|at| now.saturating_sub(at) >= LAST_USE_RESOLUTION_MS || now < at) {
        last_used.insert(trigger_id, now)?;
    }
    if let Some(client) = client {
        let mut addresses = tx.open_table(super::tables::TRIGGER_LAST_ADDRESS)?;
        if addresses.get(trigger_id)?.is_none_or(|g| g.value() != client) {
            addresses.insert(trigger_id, client)?;
        }
    }
    Ok(())
}

/// How finely a trigger token's last use is kept, in milliseconds.
const LAST_USE_RESOLUTION_MS: Millis = 1000;

/// Removes a pipeline's jobs and their variables.
pub(super) fn remove_jobs(tx: &redb::WriteTransaction, project_id: u64, pipeline_id: u64) -> Result<(), Error> {
    let ids = super::ids_under(&tx.open_table(PIPELINE_JOBS)?, pipeline_id)?;
    let mut jobs = tx.open_table(JOBS)?;
    let mut by_project = tx.open_table(PROJECT_JOBS)?;
    let mut sealed = tx.open_table(JOB_VARIABLES)?;
    let mut active = tx.open_table(ACTIVE_JOBS)?;
    let mut artifacts = tx.open_table(super::tables::ARTIFACTS)?;
    let mut reports = tx.open_table(super::tables::TEST_REPORTS)?;
    let mut summaries = tx.open_table(super::tables::TEST_SUMMARIES)?;
    for id in ids {
        artifacts.remove(id)?;
        reports.remove(id)?;
        summaries.remove(id)?;
        super::environments::remove_job(tx, id)?;
        active.remove(id)?;
        jobs.remove(id)?;
        by_project.remove((project_id, id))?;
        sealed.remove(id)?;
    }
    tx.open_table(PIPELINE_JOBS)?
        .retain_in((pipeline_id, 0)..=(pipeline_id, u64::MAX), |_, _| false)?;
    Ok(())
}

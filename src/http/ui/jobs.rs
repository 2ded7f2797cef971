//! Jobs pages: the paginated list (jobs of trigger-token pipelines carry a `triggered` badge),
//! one job with its log (ANSI colours, collapsible sections, followed live by polling
//! `trace.json`), the Trigger block, and cancel, retry and play.

use super::{
    Layout, ProjectPost, UiError, ago, duration, html, id_in_path, page_number, project_page, project_post, redirect,
};
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, Job, JobStatus, Pipeline, PipelineSource, Project};
use crate::scheduler::Target;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::json;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

/// Rows per page.
const PER_PAGE: usize = 30;
/// The most of a log a page shows (its end); the API has the whole log.
const MAX_LOG_BYTES: u64 = 1 << 20;

/// A job as the pages show it.
pub struct JobRow {
    id: u64,
    name: String,
    status: &'static str,
    warning: bool,
    stage: String,
    pipeline_id: u64,
    ref_name: String,
    triggered: bool,
    allow_failure: bool,
    duration: String,
    created_iso: String,
    created_ago: String,
}

fn row(j: &Job, pipeline: Option<&Pipeline>, now: i64) -> JobRow {
    JobRow {
        id: j.id,
        name: j.name.clone(),
        status: j.status.as_str(),
        warning: j.status == JobStatus::Failed && j.allow_failure,
        stage: j.stage.clone(),
        pipeline_id: j.pipeline_id,
        ref_name: pipeline.map(|p| p.ref_name.clone()).unwrap_or_default(),
        triggered: pipeline.is_some_and(|p| p.source == PipelineSource::Trigger),
        allow_failure: j.allow_failure,
        duration: duration(j.started_at, j.finished_at, now),
        created_iso: clock::iso8601(j.created_at),
        created_ago: ago(j.created_at, now),
    }
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct ListPage {
    l: Layout,
    full_path: String,
    rows: Vec<JobRow>,
    page: usize,
    total: usize,
    prev_page: Option<usize>,
    next_page: Option<usize>,
}

/// `GET /{ns}/{project}/-/jobs?page=N`: newest first.
pub async fn list(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, None).await?;
    let page = page_number(&req);
    let (jobs, total) = spur.store.project_jobs(project.id, (page - 1) * PER_PAGE, PER_PAGE)?;
    let now = clock::now();
    let mut pipelines: HashMap<u64, Option<Pipeline>> = HashMap::new();
    let mut rows = Vec::with_capacity(jobs.len());
    for j in &jobs {
        if let std::collections::hash_map::Entry::Vacant(slot) = pipelines.entry(j.pipeline_id) {
            slot.insert(spur.store.pipeline(j.pipeline_id)?);
        }
        rows.push(row(j, pipelines.get(&j.pipeline_id).and_then(Option::as_ref), now));
    }
    let l = Layout::new(&req, &visitor, "Jobs").in_project(&project, &access, "jobs");
    html(
        &req,
        &ListPage {
            l,
            full_path: project.full_path.clone(),
            rows,
            page,
            total,
            prev_page: (page > 1).then(|| page - 1),
            next_page: (page * PER_PAGE < total).then_some(page + 1),
        },
    )
}

/// A trigger variable: its key always, its value only for Maintainers and Owners.
pub struct TriggerVariable {
    key: String,
    value: Option<String>,
}

/// The Trigger block of a job of a trigger-token pipeline.
pub struct TriggerBlock {
    short_token: String,
    variables: Vec<TriggerVariable>,
    values_visible: bool,
}

#[derive(Template)]
#[template(path = "job.html")]
struct ShowPage {
    l: Layout,
    full_path: String,
    j: JobRow,
    source: &'static str,
    log_html: String,
    /// Where the live script resumes: `<offset>.<style>.<line>`.
    cursor: String,
    /// A running job's start (ms), for the sidebar's ticking duration.
    running_since: Option<i64>,
    /// Whether the job has logged anything.
    has_log: bool,
    truncated: bool,
    live: bool,
    failure_reason: Option<String>,
    runner: Option<String>,
    artifacts: Option<ArtifactsBlock>,
    trigger: Option<TriggerBlock>,
    can_act: bool,
    cancelable: bool,
    retryable: bool,
    playable: bool,
    /// A manual or delayed job's Run form: variable rows, and why it was refused.
    play: PlayForm,
    /// For a bridge: the downstream pipeline (`path`, id, status).
    downstream: Option<(String, u64, &'static str)>,
}

/// The variables form of a manual job (kept as sent when refused).
#[derive(Default)]
struct PlayForm {
    rows: Vec<(String, String)>,
    error: Option<String>,
    /// The row at fault, marked invalid.
    bad_row: Option<usize>,
}

fn find_job(spur: &Spur, project: &Project, id: u64) -> Result<(Job, Pipeline), UiError> {
    let job = spur
        .store
        .job(id)?
        .filter(|j| j.project_id == project.id)
        .ok_or(UiError::NotFound)?;
    let pipeline = spur.store.pipeline(job.pipeline_id)?.ok_or(UiError::NotFound)?;
    Ok((job, pipeline))
}

/// The most of a log's start counted for the first shown line's number.
const MAX_COUNTED_BYTES: u64 = 16 << 20;

/// How many lines a job's log has before byte `start` (`None` past `MAX_COUNTED_BYTES`:
/// the page then shows no line numbers).
fn lines_before(spur: &Spur, job_id: u64, start: u64) -> Option<u64> {
    if start == 0 {
        return Some(0);
    }
    if start > MAX_COUNTED_BYTES {
        return None;
    }
    let file = std::fs::File::open(spur.traces.path(job_id)).ok()?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file.take(start));
    let mut lines = 0u64;
    loop {
        let buf = std::io::BufRead::fill_buf(&mut reader).ok()?;
        if buf.is_empty() {
            return Some(lines);
        }
        lines += buf.iter().filter(|b| **b == b'\n').count() as u64;
        let n = buf.len();
        std::io::BufRead::consume(&mut reader, n);
    }
}

/// A job's log as the page reads it.
struct LogEnd {
    /// The log's last `MAX_LOG_BYTES` at most, from the start of a line.
    bytes: Vec<u8>,
    /// Where `bytes` start in the log.
    start: u64,
    /// The log's size.
    size: u64,
}

/// The end of a job's log: at most `max` bytes from `offset` on (`None`: the last
/// `MAX_LOG_BYTES`, from the first line that starts in them).
fn read_log(spur: &Spur, job_id: u64, offset: Option<u64>, max: u64) -> Result<LogEnd, UiError> {
    let internal = |e: std::io::Error| UiError::Internal(e.to_string());
    let mut file = match std::fs::File::open(spur.traces.path(job_id)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LogEnd {
                bytes: Vec::new(),
                start: 0,
                size: 0,
            });
        }
        Err(e) => return Err(internal(e)),
    };
    let size = file.metadata().map_err(internal)?.len();
    let mut start = offset.unwrap_or_else(|| size.saturating_sub(MAX_LOG_BYTES)).min(size);
    file.seek(SeekFrom::Start(start)).map_err(internal)?;
    let len = (size - start).min(max);
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut bytes).map_err(internal)?;
    if offset.is_none()
        && start > 0
        && let Some(i) = bytes.iter().position(|b| *b == b'\n')
    {
        bytes.drain(..=i);
        start += i as u64 + 1;
    }
    Ok(LogEnd { bytes, start, size })
}

fn trigger_block(spur: &Spur, pipeline: &Pipeline, values_visible: bool) -> Result<Option<TriggerBlock>, UiError> {
    if pipeline.source != PipelineSource::Trigger {
        return Ok(None);
    }
    let short_token = match pipeline.trigger_id.map(|id| spur.store.trigger(id)).transpose()? {
        Some(Some((t, _))) => t.short_token,
        _ => "(revoked)".into(),
    };
    let variables = crate::pipeline_trigger::pipeline_variables_of(spur, pipeline.id)
        .map_err(|e| UiError::Internal(format!("{e:?}")))?
        .into_iter()
        .map(|v| TriggerVariable {
            key: v.key,
            value: values_visible.then_some(v.value),
        })
        .collect();
    Ok(Some(TriggerBlock {
        short_token,
        variables,
        values_visible,
    }))
}

/// The job's artifacts archive on its page.
struct ArtifactsBlock {
    filename: String,
    size: u64,
    expires: Option<String>,
}

/// `GET /{ns}/{project}/-/jobs/{id}/artifacts/download`: the job's archive, for whoever may
/// see the job.
pub async fn download_artifacts(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (_, project, _) = project_page(&req, &spur, None).await?;
    let (job, _) = find_job(&spur, &project, id_in_path(&req, "id")?)?;
    crate::http::api::runner_jobs::artifacts_download(&spur, job.id)
        .await
        .map_err(|_| UiError::NotFound)
}

/// `GET /{ns}/{project}/-/jobs/{id}`.
pub async fn show(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    render(&req, &spur, PlayForm::default()).await
}

/// The job page, its Run form as `play` holds it.
async fn render(req: &HttpRequest, spur: &Spur, mut play: PlayForm) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(req, spur, None).await?;
    let (job, pipeline) = find_job(spur, &project, id_in_path(req, "id")?)?;
    // A retried manual job shows the variables of its last run, to keep, change or drop.
    let may_play = visitor.user.is_some() && access.at_least(AccessLevel::Developer);
    if play.rows.is_empty() && may_play && !job.played_variables.is_empty() {
        let sealed = crate::job_env::job_variables(spur, job.id).map_err(UiError::Internal)?;
        play.rows = job
            .played_variables
            .iter()
            .filter_map(|key| sealed.vars.iter().rev().find(|(k, _)| k == key).cloned())
            .collect();
    }
    // One empty row past what was sent, at least three.
    let wanted = (play.rows.len() + 1).max(3);
    play.rows.resize(wanted, (String::new(), String::new()));
    let log = read_log(spur, job.id, None, MAX_LOG_BYTES)?;
    let live = job.status.is_active();
    let first = super::log_html::State::at_line(lines_before(spur, job.id, log.start));
    let (log_html, state, consumed) = super::log_html::render(&log.bytes, live, first);
    let now = clock::now();
    // Buttons only for those the action would accept: protected refs included.
    let can_act = may_play && super::pipelines::may_update(spur, pipeline.id, &access).is_ok();
    let mut l =
        Layout::new(req, &visitor, format!("{} · job #{}", job.name, job.id)).in_project(&project, &access, "jobs");
    if live {
        l.refresh = Some(10);
    }
    let page = ShowPage {
        l,
        full_path: project.full_path.clone(),
        j: row(&job, Some(&pipeline), now),
        source: pipeline.source.as_str(),
        log_html,
        cursor: format!("{}.{}", log.start + consumed as u64, state.encode()),
        running_since: job.started_at.filter(|_| job.status == JobStatus::Running),
        has_log: log.size > 0,
        truncated: log.start > 0,
        live,
        failure_reason: job
            .failure_reason
            .as_deref()
            .filter(|_| job.status == JobStatus::Failed)
            .map(failure_message),
        runner: job.runner.clone(),
        artifacts: spur.store.artifacts(job.id)?.map(|a| ArtifactsBlock {
            filename: a.filename,
            size: a.size,
            expires: a.expire_at.map(clock::iso8601),
        }),
        trigger: trigger_block(spur, &pipeline, access.at_least(AccessLevel::Maintainer))?,
        can_act,
        cancelable: !job.retried && job.status.is_active(),
        retryable: !job.retried && matches!(job.status, JobStatus::Success | JobStatus::Failed | JobStatus::Canceled),
        playable: !job.retried && matches!(job.status, JobStatus::Manual | JobStatus::Scheduled),
        play,
        downstream: job
            .bridge
            .is_some()
            .then(|| super::pipelines::downstream_of(spur, job.id))
            .flatten(),
    };
    let mut response = html(req, &page)?;
    if page.play.error.is_some() {
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

/// What a failure reason means, in GitLab's words (its `failure_reason` values).
fn failure_message(reason: &str) -> String {
    let text = match reason {
        "unknown_failure" => "There is an unknown failure, please try again",
        "script_failure" => "There has been a script failure. Check the job log for more information",
        "api_failure" => "There has been an API failure, please try again",
        "stuck_or_timeout_failure" => {
            "There has been a timeout failure or the job got stuck. Check your timeout limits or try again"
        }
        "runner_system_failure" => "There has been a runner system failure, please try again",
        "missing_dependency_failure" => {
            "There has been a missing dependency failure, check the job log for more information"
        }
        "runner_unsupported" => "Your runner is outdated, please upgrade your runner",
        "stale_schedule" => "Delayed job could not be executed by some reason, please try again",
        "job_execution_timeout" => "The script exceeded the maximum execution time set for the job",
        "archived_failure" => "The job is archived and cannot be run",
        "unmet_prerequisites" => "The job failed to complete prerequisite tasks",
        "scheduler_failure" => {
            "The scheduler failed to assign job to the runner, please try again or contact system administrator"
        }
        "data_integrity_failure" => {
            "There has been a structural integrity problem detected, please contact system administrator"
        }
        "pipeline_loop_detected" => {
            "This job could not be executed because it would create infinitely looping pipelines"
        }
        "invalid_bridge_trigger" => {
            "This job could not be executed because downstream pipeline trigger definition is invalid"
        }
        "downstream_bridge_project_not_found" => {
            "This job could not be executed because downstream bridge project could not be found"
        }
        "insufficient_bridge_permissions" => {
            "This job could not be executed because of insufficient permissions to create a downstream pipeline"
        }
        "bridge_pipeline_is_child_pipeline" => {
            "This job belongs to a child pipeline and cannot create further child pipelines"
        }
        "downstream_pipeline_creation_failed" => "The downstream pipeline could not be created",
        "reached_max_descendant_pipelines_depth" => "You reached the maximum depth of child pipelines",
        "reached_max_pipeline_hierarchy_size" => "The downstream pipeline tree is too large",
        "project_deleted" => "The job belongs to a deleted project",
        "user_blocked" => "The user who created this job is blocked",
        "no_matching_runner" => "No matching runner available",
        "trace_size_exceeded" => "The job log size limit was reached",
        "builds_disabled" => "The CI/CD is disabled for this project",
        other => return other.replace('_', " "),
    };
    format!("{text} ({reason})")
}

/// The most of a log one `trace.json` answer carries; the script asks again at once for more.
const CHUNK_BYTES: u64 = 256 << 10;

/// `GET /{ns}/{project}/-/jobs/{id}/trace.json?cursor=<offset>.<style>`: what the log gained
/// since the cursor, as operations for the page's script (see `log_html::render_chunk`), the
/// unfinished last line apart, the next cursor, whether more is waiting, the job's status and
/// whether it is complete. A log shorter than the cursor (erased) answers `reset`.
pub async fn trace(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (_, project, _) = project_page(&req, &spur, None).await?;
    let (job, _) = find_job(&spur, &project, id_in_path(&req, "id")?)?;
    let cursor = super::query(&req, "cursor").unwrap_or_default();
    let (offset, style) = cursor.split_once('.').unwrap_or((&cursor, ""));
    let offset: u64 = offset.parse().unwrap_or(0);
    let mut state = super::log_html::State::decode(style);
    let complete = !job.status.is_active();
    // Read as much as the page shows at most, so that a long line is sent whole.
    let log = read_log(&spur, job.id, Some(offset), MAX_LOG_BYTES)?;
    let no_store = ("Cache-Control", "no-store");
    if offset > log.size {
        return Ok(HttpResponse::Ok()
            .insert_header(no_store)
            .json(json!({ "reset": true, "status": job.status.as_str(), "complete": complete })));
    }
    let at_end = log.start + log.bytes.len() as u64 == log.size;
    // A chunk cut short of the end stops at a line's end: the last within `CHUNK_BYTES`, else
    // the first after (a line longer than `MAX_LOG_BYTES` is cut, as the page cuts it).
    let mut chunk: &[u8] = &log.bytes;
    let short = (chunk.len() as u64).min(CHUNK_BYTES) as usize;
    let cut = chunk[..short]
        .iter()
        .rposition(|b| *b == b'\n')
        .or_else(|| chunk.iter().position(|b| *b == b'\n'));
    if let Some(i) = cut.filter(|_| !at_end || chunk.len() as u64 > CHUNK_BYTES) {
        chunk = &chunk[..=i];
    }
    let whole = chunk.len() == log.bytes.len();
    let (ops, tail, consumed) = super::log_html::render_chunk(chunk, &mut state, at_end && whole && !complete);
    let next = offset + consumed as u64;
    Ok(HttpResponse::Ok().insert_header(no_store).json(json!({
        "ops": ops,
        "tail": tail,
        "cursor": format!("{next}.{}", state.encode()),
        "more": !(at_end && whole),
        "status": job.status.as_str(),
        "complete": complete,
    })))
}

/// `GET /{ns}/{project}/-/jobs/{id}/raw`: the whole log as plain text, for the visitor's
/// session (`?download=1`: as a file).
pub async fn raw(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (_, project, _) = project_page(&req, &spur, None).await?;
    let (job, _) = find_job(&spur, &project, id_in_path(&req, "id")?)?;
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"));
    if super::query(&req, "download").is_some_and(|v| v == "1" || v == "true") {
        response.insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"job-{}.log\"", job.id),
        ));
    }
    match tokio::fs::File::open(spur.traces.path(job.id)).await {
        Ok(file) => {
            let len = file
                .metadata()
                .await
                .map_err(|e| UiError::Internal(e.to_string()))?
                .len();
            Ok(response.body(crate::http::file_body(file, len)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(response.body("")),
        Err(e) => Err(UiError::Internal(e.to_string())),
    }
}

/// `GET /{ns}/{project}/-/jobs/{id}/play`: where a refused Run form was shown (reloaded or
/// bookmarked); the job's page.
pub async fn to_job(req: HttpRequest) -> HttpResponse {
    let job = req.path().strip_suffix("/play").unwrap_or("/");
    redirect(&req, job, None)
}

/// `POST /{ns}/{project}/-/jobs/{id}/cancel|retry|play` (Developer+).
pub async fn act(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let ProjectPost {
        user,
        project,
        access,
        form,
    } = project_post(&req, &spur, payload, AccessLevel::Developer).await?;
    let (job, _) = find_job(&spur, &project, id_in_path(&req, "id")?)?;
    super::pipelines::may_update(&spur, job.pipeline_id, &access)?;
    let back = |id: u64| format!("/{}/-/jobs/{id}", project.full_path);
    let refused = |e: crate::scheduler::Refusal| match e {
        crate::scheduler::Refusal::NotRetryable => UiError::BadRequest("Job is not retryable".into()),
        crate::scheduler::Refusal::NotPlayable => UiError::BadRequest("Unplayable Job".into()),
        crate::scheduler::Refusal::NotFound => UiError::NotFound,
        crate::scheduler::Refusal::Transition(m) => UiError::BadRequest(m),
        crate::scheduler::Refusal::NotErasable => UiError::BadRequest("Job is not erasable!".into()),
        crate::scheduler::Refusal::TooManyJobs => {
            UiError::BadRequest("The number of jobs has exceeded the limit".into())
        }
        crate::scheduler::Refusal::Storage(e) => UiError::Internal(e),
    };
    let target = match req.match_info().get("action") {
        Some("cancel") => {
            spur.scheduler.cancel(Target::Job(job.id)).await.map_err(refused)?;
            job.id
        }
        Some("retry") => spur
            .scheduler
            .retry(Target::Job(job.id), user.id)
            .await
            .map_err(refused)?
            .unwrap_or(job.id),
        Some("play") => {
            let rows: Vec<(String, String)> = form
                .all("job_variables_attributes[][key]")
                .into_iter()
                .zip(form.all("job_variables_attributes[][value]"))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let variables = match crate::scheduler::play_variables(&project, access.level, rows.clone()) {
                Ok(variables) => variables,
                Err(e) => {
                    // The refusal counts the rows sent with a key or a value; the form shows all.
                    let filled: Vec<usize> = (0..rows.len())
                        .filter(|&i| !rows[i].0.trim().is_empty() || !rows[i].1.is_empty())
                        .collect();
                    let (error, bad_row) = match e {
                        crate::scheduler::PlayVariablesRefusal::Forbidden => (
                            "You are not allowed to set variables in this project.".to_string(),
                            None,
                        ),
                        crate::scheduler::PlayVariablesRefusal::Invalid(field, text, row) => {
                            let bad_row = row.and_then(|i| filled.get(i).copied());
                            let key = bad_row.map(|i| rows[i].0.trim().to_string()).unwrap_or_default();
                            let what = match (field, key.is_empty()) {
                                ("job_variables", _) => "Variables".to_string(),
                                (f, false) if f.ends_with("value") => format!("The value of {key}"),
                                (_, false) => format!("Key {key}"),
                                _ => "Key".to_string(),
                            };
                            (format!("{what} {text}"), bad_row)
                        }
                    };
                    // What comes back is bounded like what is accepted (plus the row at fault).
                    let mut rows = rows;
                    rows.truncate(101);
                    let form = PlayForm {
                        rows,
                        error: Some(error),
                        bad_row,
                    };
                    return render(&req, &spur, form).await;
                }
            };
            spur.scheduler.play(job.id, user.id, variables).await.map_err(refused)?;
            job.id
        }
        _ => return Err(UiError::NotFound),
    };
    Ok(redirect(&req, &back(target), None))
}

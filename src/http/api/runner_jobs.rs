//! The calls a GitLab runner makes about jobs: `POST /jobs/request` (hand one queued job to one
//! runner, long-polling while idle), `PUT /jobs/:id` (state), `PATCH /jobs/:id/trace` (the live
//! log at exact offsets) and `POST|GET /jobs/:id/artifacts`. Every job call answers
//! `Job-Status`; a job that is no longer running gets 403, which stops the runner (hard cancel).

use super::runners::info;
use crate::domain::{Job, JobStatus, Runner};
use crate::http::error::ApiError;
use crate::http::params::{Params, read_body};
use crate::http::{State, json_response};
use crate::runners::{self, payload};
use crate::scheduler::JobEnd;
use crate::trace::Patch;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::json;
use std::time::Duration;

/// Seconds between a runner's trace patches and keep-alives that spur asks for.
const UPDATE_INTERVAL_SECS: u64 = 3;

/// Largest trace patch accepted (runners send at most 1 MiB).
const MAX_PATCH_BYTES: usize = 8 << 20;

/// `POST /jobs/request`: 201 with a job this runner may run, or 204 with
/// `X-GitLab-Last-Update`. A request carrying `last_update` is held while nothing is queued
/// (long polling); a valid token never gets 403.
pub async fn request(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let token = params.string("token").ok().flatten().unwrap_or_default();
    let Some(runner) = runners::authenticate(&spur, &token).map_err(ApiError::internal)? else {
        return Err(ApiError::forbidden());
    };
    let system_id = params.string("system_id").ok().flatten();
    runners::touch(&spur, &runner, system_id.as_deref(), Some(info(&params))).await;
    if runner.paused {
        return Ok(no_job(&spur, false));
    }
    let long_poll = params.get("last_update").is_some();
    let deadline = tokio::time::Instant::now()
        + if long_poll {
            spur.runner_poll_timeout
        } else {
            Duration::ZERO
        };
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let accept = |q: &crate::scheduler::queue::QueuedJob| {
            runners::accepts(&runner, q) && crate::scheduler::may_take(&spur.scheduler, &spur.store, q)
        };
        // A shutting-down server lets go of held requests at once.
        let taken = tokio::select! {
            taken = spur.scheduler.queue.take_within(accept, left) => taken,
            () = spur.shutdown.started() => None,
        };
        match taken {
            Some(queued) => {
                if let Some(response) = assign(&spur, &runner, queued.job_id, cancels_gracefully(&params)).await? {
                    return Ok(response);
                }
            }
            None if left.is_zero() || spur.shutdown.is_started() => {
                return Ok(no_job(&spur, long_poll));
            }
            None => {}
        }
    }
}

/// 204 with the queue version the runner sends back as `last_update`.
fn no_job(spur: &State, long_poll: bool) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    response.insert_header(("X-GitLab-Last-Update", spur.scheduler.queue.version().to_string()));
    if long_poll {
        response.insert_header(("Gitlab-Ci-Builds-Polling", "yes"));
    }
    response.finish()
}

/// Starts a queued job on `runner` and answers its payload once the start is durable; `None`
/// when the job may no longer run (canceled meanwhile) or could not be stored.
/// Whether the requesting runner advertises `info.features.cancel_gracefully`.
fn cancels_gracefully(params: &Params) -> bool {
    params
        .get("info")
        .and_then(|i| i.get("features"))
        .and_then(|f| f.get("cancel_gracefully"))
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
}

async fn assign(spur: &State, runner: &Runner, job_id: u64, graceful: bool) -> Result<Option<HttpResponse>, ApiError> {
    let name = if runner.description.is_empty() {
        format!("runner #{}", runner.id)
    } else {
        runner.description.clone()
    };
    let Some(started) = spur.scheduler.start_on(job_id, &name, Some(runner.id)).await else {
        return Ok(None);
    };
    if !started.durable.await.unwrap_or(false) {
        return Ok(None);
    }
    spur.runner_contacts.heard(job_id);
    if graceful {
        spur.runner_contacts.set_graceful(job_id);
    }
    let project = spur.store.project(started.job.project_id)?;
    let body = project
        .ok_or_else(|| "the job's project is gone".to_string())
        .and_then(|project| {
            let vars = crate::job_env::job_variables(spur, job_id)?;
            let a = payload::Assignment {
                runner,
                project: &project,
                pipeline: &started.pipeline,
                job: &started.job,
                token: &started.token,
                vars: &vars,
            };
            payload::build(spur, &a)
        });
    match body {
        Ok(body) => {
            tracing::info!(job_id, runner_id = runner.id, "job handed to a runner");
            Ok(Some(json_response(StatusCode::CREATED, &body)))
        }
        Err(e) => {
            tracing::error!(job_id, error = %e, "cannot build the job's payload");
            spur.traces.append_notice(
                job_id,
                &format!("ERROR: Job failed: spur could not prepare the job: {e}"),
            );
            spur.scheduler.finish(
                job_id,
                JobEnd::Failed {
                    reason: "runner_system_failure".into(),
                    exit_code: None,
                },
            );
            Ok(None)
        }
    }
}

/// `GET /runners/router/discovery`: the job router (KAS, gRPC) that gitlab-runner looks for
/// only under `FF_USE_JOB_ROUTER`; spur has none.
pub async fn router_discovery() -> HttpResponse {
    json_response(StatusCode::NOT_IMPLEMENTED, &json!({"message": "501 Not Implemented"}))
}

/// A job call's answer with the job's status and the update interval spur wants.
fn job_answer(status: StatusCode, job_status: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    response
        .insert_header(("Job-Status", job_status.to_string()))
        .insert_header(("X-GitLab-Trace-Update-Interval", UPDATE_INTERVAL_SECS.to_string()));
    response
}

/// How long a runner may take to finish a graceful cancel (run `after_script`, report).
const CANCELING_GRACE_MS: i64 = 10 * 60 * 1000;

/// Whether `job` was canceled while a runner that cancels gracefully ran it, recently enough
/// that the runner is still running its `after_script`: its calls get `Job-Status: canceling`
/// (GitLab's graceful cancel) instead of the 403 that kills the job at once.
fn canceling(spur: &State, job: &Job) -> bool {
    job.status == JobStatus::Canceled
        && spur.runner_contacts.is_graceful(job.id)
        && job
            .finished_at
            .is_some_and(|at| crate::clock::now() - at < CANCELING_GRACE_MS)
}

/// 403 for a job that is no longer running: the runner stops it.
fn not_running(job: &Job) -> HttpResponse {
    job_answer(StatusCode::FORBIDDEN, job.status.as_str())
        .insert_header(("Content-Type", "application/json"))
        .body(json!({"message": "403 Forbidden - Job is not processing on runner"}).to_string())
}

/// The `:job_id` of a runner's job call (404 when it is not a number).
fn job_id(req: &HttpRequest) -> Result<u64, ApiError> {
    req.match_info()
        .get("job_id")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::not_found(""))
}

/// The job token of a runner's call: the `JOB-TOKEN` header, else `fallback` (a body or query
/// parameter).
fn job_token(req: &HttpRequest, fallback: Option<String>) -> String {
    req.headers()
        .get("job-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(fallback)
        .unwrap_or_default()
}

/// The job `:job_id` if `token` is its job token and a runner runs it; else GitLab's 403.
fn runner_job(spur: &State, req: &HttpRequest, token: Option<String>) -> Result<Job, ApiError> {
    let job_id = job_id(req)?;
    let token = job_token(req, token);
    if token.is_empty() {
        return Err(ApiError::unauthorized());
    }
    let job = spur.store.job_by_token_digest(&spur.secrets.digest(&token))?;
    match job {
        Some(job) if job.id == job_id && job.runner_id.is_some() => Ok(job),
        _ => Err(ApiError::forbidden()),
    }
}

/// `PUT /jobs/:id`: `running` is an acknowledgement or keep-alive; `success`, `failed` and
/// `canceled` end the job (answered once stored). A legacy `trace` field replaces the log.
pub async fn update(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes.max(MAX_PATCH_BYTES)).await?;
    let job = runner_job(&spur, &req, params.string("token").ok().flatten())?;
    let state = params.string("state").ok().flatten().unwrap_or_default();
    if canceling(&spur, &job) {
        // The runner is finishing a graceful cancel: its final state ends it; the job stays
        // canceled whatever it reports.
        if matches!(state.as_str(), "running" | "pending" | "") {
            return Ok(job_answer(StatusCode::OK, "canceling")
                .content_type("text/plain")
                .body("200"));
        }
        spur.runner_contacts.end_graceful(job.id);
        return Ok(job_answer(StatusCode::OK, "canceled")
            .content_type("text/plain")
            .body("200"));
    }
    if job.status != JobStatus::Running {
        return Ok(not_running(&job));
    }
    spur.runner_contacts.heard(job.id);
    let end = match state.as_str() {
        "running" | "pending" | "" => None,
        "success" => Some(JobEnd::Success),
        "canceled" => Some(JobEnd::Canceled),
        "failed" => {
            let reason = params.string("failure_reason").ok().flatten().unwrap_or_default();
            let reason = if payload::FAILURE_REASONS.contains(&reason.as_str()) {
                reason
            } else {
                "unknown_failure".to_string()
            };
            let exit_code = params.integer("exit_code").ok().flatten().map(|c| c as i32);
            Some(JobEnd::Failed { reason, exit_code })
        }
        _ => return Err(ApiError::Params("state does not have a valid value".into())),
    };
    if let Ok(Some(trace)) = params.string("trace") {
        let s = spur.clone();
        let id = job.id;
        web::block(move || s.traces.replace(id, trace.as_bytes()))
            .await?
            .map_err(ApiError::internal)?;
    }
    let Some(end) = end else {
        return Ok(job_answer(StatusCode::OK, "running")
            .content_type("text/plain")
            .body("200"));
    };
    let status = match &end {
        JobEnd::Success => "success",
        JobEnd::Failed { .. } => "failed",
        JobEnd::Canceled => "canceled",
    };
    spur.scheduler
        .finish_durably(job.id, end)
        .await
        .map_err(|e| ApiError::internal(format!("{e:?}")))?;
    spur.runner_contacts.forget(job.id);
    Ok(job_answer(StatusCode::OK, status)
        .content_type("text/plain")
        .body("200"))
}

/// `PATCH /jobs/:id/trace`: appends the body at `Content-Range`'s start if that is where the
/// log ends (202 with `Range: 0-<length>`), else 416 with the length to resume from.
pub async fn patch_trace(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let job = runner_job(&spur, &req, None)?;
    let canceling = canceling(&spur, &job);
    if job.status != JobStatus::Running && !canceling {
        return Ok(not_running(&job));
    }
    spur.runner_contacts.heard(job.id);
    let job_status = if canceling { "canceling" } else { "running" };
    let Some(range) = req.headers().get("content-range").and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::bad_request_plain("400 Missing header Content-Range"));
    };
    let Some(start) = crate::trace::content_range_start(range) else {
        return Err(ApiError::bad_request_plain("400 Invalid header Content-Range"));
    };
    let body = read_body(&req, payload, MAX_PATCH_BYTES).await?;
    let s = spur.clone();
    let id = job.id;
    let patched = web::block(move || s.traces.append_at(id, start, &body))
        .await?
        .map_err(ApiError::internal)?;
    match patched {
        Patch::Appended(len) => Ok(job_answer(StatusCode::ACCEPTED, job_status)
            .insert_header(("Range", format!("0-{len}")))
            .finish()),
        Patch::WrongOffset(len) => Ok(job_answer(StatusCode::RANGE_NOT_SATISFIABLE, job_status)
            .insert_header(("Range", format!("0-{len}")))
            .finish()),
        Patch::TooLarge => {
            spur.traces.append_notice(
                job.id,
                "ERROR: Job failed: the job log exceeded spur's --max-trace-bytes (trace_size_exceeded)",
            );
            let end = JobEnd::Failed {
                reason: "trace_size_exceeded".into(),
                exit_code: None,
            };
            spur.scheduler
                .finish_durably(job.id, end)
                .await
                .map_err(|e| ApiError::internal(format!("{e:?}")))?;
            spur.runner_contacts.forget(job.id);
            Ok(job_answer(StatusCode::FORBIDDEN, "failed")
                .insert_header(("Content-Type", "application/json"))
                .body(json!({"message": "403 Forbidden - The trace is too large"}).to_string()))
        }
    }
}

/// `POST /jobs/:id/artifacts`: a multipart `file` (streamed, possibly chunked) becomes the
/// job's archive, or a gzip `junit` report its test report. `artifact_type`/`artifact_format`
/// come as query or form fields; other reports and metadata are accepted and not kept.
pub async fn upload_artifacts(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let job = runner_job(&spur, &req, None)?;
    if job.status != JobStatus::Running {
        return Ok(not_running(&job));
    }
    spur.runner_contacts.heard(job.id);
    let query: Vec<(String, String)> = crate::http::params::form_pairs(req.query_string().as_bytes());
    let mut fields: std::collections::HashMap<String, String> = query.into_iter().collect();
    let mut multipart = actix_multipart::Multipart::new(req.headers(), payload);
    let upload = crate::artifacts::upload_path(&spur, job.id);
    let mut size = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|_| ApiError::bad_request("the multipart body is malformed"))?;
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            size = Some(save_part(&spur, &mut field, &upload).await?);
            continue;
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|_| ApiError::bad_request("the multipart body is malformed"))?;
            if value.len() + chunk.len() > 4096 {
                return Err(ApiError::bad_request("a form field is too long"));
            }
            value.extend_from_slice(&chunk);
        }
        fields.insert(name, String::from_utf8_lossy(&value).into_owned());
    }
    let Some(size) = size else {
        return Err(ApiError::Params("file is missing".into()));
    };
    let kind = fields.get("artifact_type").map_or("archive", String::as_str);
    let format = fields.get("artifact_format").map_or("zip", String::as_str);
    if kind == "junit" && format == "gzip" {
        return match crate::test_reports::store_upload(&spur, job.id, upload).await {
            Ok(()) => Ok(json_response(StatusCode::CREATED, &json!({}))),
            Err(crate::test_reports::UploadError::TooLarge) => Err(ApiError::too_large()),
            Err(crate::test_reports::UploadError::Internal(e)) => Err(ApiError::internal(e)),
        };
    }
    if kind != "archive" || format != "zip" {
        let _ = tokio::fs::remove_file(&upload).await;
        return Ok(json_response(StatusCode::CREATED, &json!({})));
    }
    let expire_in = fields.get("expire_in").map(String::as_str).filter(|e| !e.is_empty());
    let stored = crate::artifacts::store(&spur, &job, upload.clone(), size, expire_in).await;
    if let Err(e) = stored {
        let _ = tokio::fs::remove_file(&upload).await;
        return Err(ApiError::internal(e));
    }
    Ok(json_response(StatusCode::CREATED, &json!({})))
}

/// Streams one multipart part to `path`, at most `--max-artifacts-bytes` (else 413).
async fn save_part(spur: &State, field: &mut actix_multipart::Field, path: &std::path::Path) -> Result<u64, ApiError> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await.map_err(ApiError::internal)?;
    let mut size = 0u64;
    while let Some(chunk) = field.next().await {
        let Ok(chunk) = chunk else {
            let _ = tokio::fs::remove_file(path).await;
            return Err(ApiError::bad_request("the multipart body is malformed"));
        };
        size += chunk.len() as u64;
        if size > spur.max_artifacts_bytes {
            let _ = tokio::fs::remove_file(path).await;
            return Err(ApiError::too_large());
        }
        if let Err(e) = file.write_all(&chunk).await {
            let _ = tokio::fs::remove_file(path).await;
            return Err(ApiError::internal(e));
        }
    }
    file.sync_all().await.map_err(ApiError::internal)?;
    Ok(size)
}

/// `GET /jobs/:id/artifacts`: a dependency's archive, for a running job of the same project
/// (or of a project the target's job token allowlist admits), authenticated by `JOB-TOKEN`.
pub async fn download_artifacts(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let target_id = job_id(&req)?;
    let query_token = crate::http::params::form_pairs(req.query_string().as_bytes())
        .into_iter()
        .find(|(k, _)| k == "token" || k == "job_token")
        .map(|(_, v)| v);
    let token = job_token(&req, query_token);
    let Some(caller) = spur.store.job_by_token_digest(&spur.secrets.digest(&token))? else {
        return Err(ApiError::unauthorized());
    };
    if caller.status != JobStatus::Running {
        return Err(ApiError::Message(StatusCode::UNAUTHORIZED, "Job is not running".into()));
    }
    let Some(target) = spur.store.job(target_id)? else {
        return Err(ApiError::not_found(""));
    };
    let Some(project) = spur.store.project(target.project_id)? else {
        return Err(ApiError::not_found(""));
    };
    // Never more than the job's user may read, and only where the allowlist admits the job.
    if !crate::auth::job_token_reads_code(&spur.store, &caller, &project, crate::clock::now())? {
        return Err(ApiError::forbidden());
    }
    artifacts_download(&spur, target.id).await
}

/// The archive of `job_id` as a download, or 404.
pub async fn artifacts_download(spur: &State, job_id: u64) -> Result<HttpResponse, ApiError> {
    let Some(meta) = spur.store.artifacts(job_id)? else {
        return Err(ApiError::not_found(""));
    };
    let Ok(file) = tokio::fs::File::open(crate::artifacts::path(spur, job_id)).await else {
        return Err(ApiError::not_found(""));
    };
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let name = meta.filename.replace(['"', '\\', '\r', '\n'], "_");
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{name}\"")))
        .body(crate::http::file_body(file, len)))
}

//! `GET /projects/:id/pipelines/:pipeline_id/test_report` and `.../test_report_summary`: a
//! pipeline's unit test reports in GitLab's entities (`TestReportEntity`,
//! `TestReportSummaryEntity`), for whoever may read the project's jobs (`read_build`).

use super::{id_segment, segment};
use crate::domain::{Pipeline, TestCase, TestCounts};
use crate::http::error::ApiError;
use crate::http::{State, caller, json_response, visible_project};
use crate::test_reports::{PipelineReport, Suite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

async fn pipeline_of(req: &HttpRequest, spur: &State) -> Result<Pipeline, ApiError> {
    let pipeline_id = id_segment(req, "pipeline_id")?;
    let actor = caller(req, spur).await?;
    let (project, access) = visible_project(spur, &segment(req, "id"), actor.as_ref())?;
    // GitLab's `read_build`: Guests of a private project see no job's output.
    if project.visibility == crate::domain::Visibility::Private
        && !access.at_least(crate::domain::AccessLevel::Reporter)
    {
        return Err(ApiError::forbidden());
    }
    match spur.store.pipeline(pipeline_id)? {
        Some(p) if p.project_id == project.id => Ok(p),
        _ => Err(ApiError::not_found("")),
    }
}

/// `GET /projects/:id/pipelines/:pipeline_id/test_report`: every suite with its cases.
pub async fn report(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let pipeline = pipeline_of(&req, &spur).await?;
    let s = spur.clone();
    let report = actix_web::web::block(move || crate::test_reports::pipeline_report(&s, pipeline.id))
        .await
        .map_err(ApiError::internal)??;
    Ok(json_response(StatusCode::OK, &report_json(&report)))
}

/// `GET /projects/:id/pipelines/:pipeline_id/test_report_summary`: counts only.
pub async fn summary(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let pipeline = pipeline_of(&req, &spur).await?;
    let summary = crate::test_reports::pipeline_summary(&spur, pipeline.id)?;
    let c = &summary.counts;
    let body = json!({
        "total": {
            "time": c.time,
            "count": c.total,
            "success": c.success,
            "failed": c.failed,
            "skipped": c.skipped,
            "error": c.error,
            "suite_error": c.suite_error,
        },
        "test_suites": summary.suites.iter().map(|s| {
            let mut v = suite_counts(s);
            v["build_ids"] = json!(s.build_ids);
            v
        }).collect::<Vec<_>>(),
    });
    Ok(json_response(StatusCode::OK, &body))
}

fn report_json(report: &PipelineReport) -> Value {
    let c: &TestCounts = &report.counts;
    json!({
        "total_time": c.time,
        "total_count": c.total,
        "success_count": c.success,
        "failed_count": c.failed,
        "skipped_count": c.skipped,
        "error_count": c.error,
        "test_suites": report.suites.iter().map(|s| {
            let mut v = suite_counts(s);
            v["test_cases"] = if s.counts.suite_error.is_some() {
                json!([])
            } else {
                Value::Array(s.cases.iter().map(case_json).collect())
            };
            v
        }).collect::<Vec<_>>(),
    })
}

fn suite_counts(s: &Suite) -> Value {
    json!({
        "name": s.name,
        "total_time": s.counts.time,
        "total_count": s.counts.total,
        "success_count": s.counts.success,
        "failed_count": s.counts.failed,
        "skipped_count": s.counts.skipped,
        "error_count": s.counts.error,
        "suite_error": s.counts.suite_error,
    })
}

fn case_json(c: &TestCase) -> Value {
    json!({
        "status": c.status.as_str(),
        "name": c.name,
        "classname": c.classname,
        "file": c.file,
        "execution_time": c.execution_time,
        "system_output": c.system_output,
        "stack_trace": null,
        "recent_failures": null,
    })
}

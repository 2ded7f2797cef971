//! The pipeline's Tests tab (`/{ns}/{project}/-/pipelines/{id}/test_report`): the summary, then
//! each suite with its failed and errored tests first and their output.

use super::{Layout, UiError, html, id_in_path, project_page};
use crate::context::Spur;
use crate::test_reports::Suite;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

#[derive(Template)]
#[template(path = "test_report.html")]
struct TestReportPage {
    l: Layout,
    full_path: String,
    pipeline_id: u64,
    total: crate::domain::TestCounts,
    suites: Vec<Suite>,
}

/// `GET /{ns}/{project}/-/pipelines/{id}/test_report`: anyone who sees the project.
pub async fn show(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, None).await?;
    if project.visibility == crate::domain::Visibility::Private
        && !access.at_least(crate::domain::AccessLevel::Reporter)
    {
        return Err(UiError::NotFound);
    }
    let id = id_in_path(&req, "id")?;
    spur.store
        .pipeline(id)?
        .filter(|p| p.project_id == project.id)
        .ok_or(UiError::NotFound)?;
    let s = spur.clone();
    let report = web::block(move || crate::test_reports::pipeline_report(&s, id))
        .await
        .map_err(|e| UiError::Internal(e.to_string()))??;
    let l = Layout::new(&req, &visitor, format!("Pipeline #{id} · Tests")).in_project(&project, &access, "pipelines");
    html(
        &req,
        &TestReportPage {
            l,
            full_path: project.full_path.clone(),
            pipeline_id: id,
            total: report.counts,
            suites: report.suites,
        },
    )
}

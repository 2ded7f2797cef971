//! The admin Runners page (`/admin/runners`): every GitLab runner with its status (online when
//! it asked for work in the last two hours), creating a runner (its `glrt-` token is shown
//! once), pausing, resuming and deleting, and the instance registration token with its reset.

use super::{Layout, Posted, UiError, html, id_in_path, posted, redirect};
use crate::clock;
use crate::context::Spur;
use crate::runners::{self, NewRunner};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

struct RunnerRow {
    id: u64,
    description: String,
    status: &'static str,
    paused: bool,
    tags: Vec<String>,
    run_untagged: bool,
    version: Option<String>,
    contacted: String,
}

#[derive(Template)]
#[template(path = "admin_runners.html")]
struct RunnersPage {
    l: Layout,
    runners: Vec<RunnerRow>,
    registration_token: String,
    external_url: String,
    new_token: Option<String>,
}

async fn page(req: &HttpRequest, spur: &Spur, new_token: Option<String>) -> Result<HttpResponse, UiError> {
    let visitor = super::session::visitor(req, spur).await?;
    if !visitor.signed_in()?.admin {
        return Err(UiError::NotFound);
    }
    let now = clock::now();
    let rows = spur
        .store
        .runners()?
        .into_iter()
        .map(|r| RunnerRow {
            id: r.id,
            status: runners::status(&r, now),
            paused: r.paused,
            run_untagged: r.run_untagged,
            version: r.info.version.clone(),
            contacted: r.contacted_at.map_or_else(|| "never".into(), clock::iso8601),
            tags: r.tags,
            description: r.description,
        })
        .collect();
    let l = Layout::new(req, &visitor, "Runners");
    let page = RunnersPage {
        l,
        runners: rows,
        registration_token: runners::registration_token(spur).map_err(UiError::Internal)?,
        external_url: spur.external_url.clone(),
        new_token,
    };
    html(req, &page)
}

/// `GET /admin/runners` (administrators; others get 404).
pub async fn list(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    page(&req, &spur, None).await
}

/// `POST /admin/runners`: create a runner and show its token once.
pub async fn create(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let Posted { form, user } = posted(&req, &spur, payload).await?;
    if !user.admin {
        return Err(UiError::NotFound);
    }
    let new = NewRunner {
        description: form.get("runner[description]").unwrap_or_default().trim().to_string(),
        tags: vec![form.get("runner[tag_list]").unwrap_or_default().to_string()],
        run_untagged: form.checked("runner[run_untagged]"),
        created_by_admin: true,
        ..NewRunner::default()
    };
    let mut new = new;
    new.tags = runners::normalize_tags(new.tags);
    if new.tags.is_empty() && !new.run_untagged {
        return Ok(redirect(
            &req,
            "/admin/runners",
            Some(("alert", "A runner without tags must run untagged jobs.")),
        ));
    }
    let (_, token) = runners::create(&spur, new).await.map_err(UiError::Internal)?;
    page(&req, &spur, Some(token)).await
}

/// `POST /admin/runners/{id}/pause|resume|delete`.
pub async fn change(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let Posted { user, .. } = posted(&req, &spur, payload).await?;
    if !user.admin {
        return Err(UiError::NotFound);
    }
    let id = id_in_path(&req, "id")?;
    let Some(mut runner) = spur.store.runner(id)? else {
        return Err(UiError::NotFound);
    };
    let notice = match req.match_info().get("action") {
        Some("pause") => {
            runner.paused = true;
            crate::runners::update_runner(&spur, runner).await?;
            "Runner was paused."
        }
        Some("resume") => {
            runner.paused = false;
            crate::runners::update_runner(&spur, runner).await?;
            "Runner was resumed."
        }
        Some("delete") => {
            crate::runners::delete_runner(&spur, id).await?;
            "Runner was deleted."
        }
        _ => return Err(UiError::NotFound),
    };
    Ok(redirect(&req, "/admin/runners", Some(("notice", notice))))
}

/// `POST /admin/runners/reset_registration_token`: the old token stops working.
pub async fn reset_registration_token(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let Posted { user, .. } = posted(&req, &spur, payload).await?;
    if !user.admin {
        return Err(UiError::NotFound);
    }
    crate::runners::bump_runner_registration_generation(&spur).await?;
    Ok(redirect(
        &req,
        "/admin/runners",
        Some(("notice", "The registration token was reset.")),
    ))
}

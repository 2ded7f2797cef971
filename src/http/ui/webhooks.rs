//! Settings › Webhooks: each project webhook with its recent events (status, trigger, when,
//! how long) and a Resend button, as GitLab's hook page shows them. Maintainers only; the hooks
//! themselves are managed through the API.

use super::{Layout, ProjectPost, UiError, html, id_in_path, project_page, project_post, redirect};
use crate::clock;
use crate::context::Spur;
use crate::domain::AccessLevel;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

/// Events shown per hook.
const SHOWN: usize = 20;

struct EventRow {
    id: u64,
    status: String,
    ok: bool,
    trigger: String,
    elapsed: String,
    when: String,
}

struct HookRow {
    id: u64,
    url: String,
    events: String,
    recent: Vec<EventRow>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    l: Layout,
    full_path: String,
    hooks: Vec<HookRow>,
}

/// `GET /{ns}/{project}/-/hooks`.
pub async fn show(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, Some(AccessLevel::Maintainer)).await?;
    let now = clock::now();
    let mut hooks = Vec::new();
    for h in spur.store.project_hooks(project.id)? {
        let mut kinds = Vec::new();
        for (on, name) in [
            (h.push_events, "push"),
            (h.pipeline_events, "pipeline"),
            (h.job_events, "job"),
        ] {
            if on {
                kinds.push(name);
            }
        }
        let recent = spur
            .store
            .hook_logs(h.id)?
            .into_iter()
            .take(SHOWN)
            .map(|log| EventRow {
                id: log.id,
                ok: log.response_status.is_some_and(|s| (200..300).contains(&s)),
                status: log
                    .response_status
                    .map_or_else(|| "internal error".to_string(), |s| s.to_string()),
                trigger: log.trigger.replace('_', " "),
                elapsed: format!("{:.2} s", log.execution_duration),
                when: super::ago(log.created_at, now),
            })
            .collect();
        hooks.push(HookRow {
            id: h.id,
            url: h.url,
            events: kinds.join(", "),
            recent,
        });
    }
    let l = Layout::new(&req, &visitor, "Webhooks").in_project(&project, &access, "webhooks");
    html(
        &req,
        &WebhooksPage {
            l,
            full_path: project.full_path.clone(),
            hooks,
        },
    )
}

/// `POST /{ns}/{project}/-/hooks/{id}/hook_logs/{log_id}/retry`: sends a logged event again.
pub async fn resend(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let ProjectPost { project, user, .. } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let back = format!("/{}/-/hooks", project.full_path);
    if spur.hook_resend_quota.take(user.id).is_err() {
        let alert = "Events were sent again too often: try again in a minute.";
        return Ok(redirect(&req, &back, Some(("alert", alert))));
    }
    let hook_id = id_in_path(&req, "id")?;
    let log_id = id_in_path(&req, "log_id")?;
    let hook = spur
        .store
        .project_hooks(project.id)?
        .into_iter()
        .find(|h| h.id == hook_id)
        .ok_or(UiError::NotFound)?;
    let log = spur
        .store
        .hook_logs(hook.id)?
        .into_iter()
        .find(|l| l.id == log_id)
        .ok_or(UiError::NotFound)?;
    let notice = match crate::hooks::resend(&spur, &hook, &log).await {
        Ok(sent) => match sent.response_status {
            Some(code) => (
                "notice",
                format!("The event was sent again: the receiver answered {code}."),
            ),
            None => (
                "alert",
                format!(
                    "The event could not be sent: {}",
                    sent.internal_error_message.unwrap_or_default()
                ),
            ),
        },
        Err(e) => ("alert", e),
    };
    Ok(redirect(&req, &back, Some((notice.0, &notice.1))))
}

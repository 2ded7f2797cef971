//! Admin > Settings > Network (`/admin/application_settings/network`): which isolation the
//! built-in executor's jobs run in, and whether webhooks, integrations and mirrors may reach
//! the local network (GitLab's "Outbound requests" section), changed through the same service
//! as `PUT /api/v4/application/settings`.

use super::{Layout, Posted, UiError, html, posted, redirect};
use crate::application_settings::Change;
use crate::context::Spur;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

#[derive(Template)]
#[template(path = "admin_settings.html")]
struct NetworkPage {
    l: Layout,
    isolation: String,
    engine: String,
    allow_local: bool,
    forced_by_flag: bool,
    allowlist: String,
}

/// `GET /admin/application_settings/network` (administrators; others get 404).
pub async fn show(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let visitor = super::session::visitor(&req, &spur).await?;
    if !visitor.signed_in()?.admin {
        return Err(UiError::NotFound);
    }
    let settings = spur.store.application_settings()?;
    let page = NetworkPage {
        l: Layout::new(&req, &visitor, "Settings"),
        isolation: spur.isolation.describe(),
        engine: spur.describe_engine(),
        allow_local: settings.allow_local_requests_from_web_hooks_and_services,
        forced_by_flag: spur.allow_local_requests,
        allowlist: settings.outbound_local_requests_whitelist.join("\n"),
    };
    html(&req, &page)
}

/// `POST /admin/application_settings/network`.
pub async fn update(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let Posted { form, user } = posted(&req, &spur, payload).await?;
    if !user.admin {
        return Err(UiError::NotFound);
    }
    let change = Change {
        allow_local_requests_from_web_hooks_and_services: Some(
            form.checked("application_setting[allow_local_requests_from_web_hooks_and_services]"),
        ),
        allow_local_requests_from_system_hooks: None,
        outbound_allowlist: Some(
            form.get("application_setting[outbound_local_requests_allowlist_raw]")
                .unwrap_or_default()
                .to_string(),
        ),
    };
    let back = "/admin/application_settings/network";
    match crate::application_settings::update(&spur, change)
        .await
        .map_err(UiError::Internal)?
    {
        Ok(_) => Ok(redirect(
            &req,
            back,
            Some(("notice", "Application settings saved successfully")),
        )),
        Err((_, why)) => Ok(redirect(
            &req,
            back,
            Some((
                "alert",
                &format!("Local IP addresses and domain names that hooks and integrations can access: {why}"),
            )),
        )),
    }
}

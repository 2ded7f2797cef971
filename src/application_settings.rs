//! The instance's application settings: reading them, and the one function that changes them
//! (the API and the Admin page both call it), which also updates the outbound policy in force.

use crate::context::Spur;
use crate::domain::ApplicationSettings;

/// A change to the settings; `None` keeps a value.
#[derive(Debug, Default)]
pub struct Change {
    /// `allow_local_requests_from_web_hooks_and_services`.
    pub allow_local_requests_from_web_hooks_and_services: Option<bool>,
    /// `allow_local_requests_from_system_hooks`.
    pub allow_local_requests_from_system_hooks: Option<bool>,
    /// The allow-list as text (entries split on commas, semicolons and white space).
    pub outbound_allowlist: Option<String>,
}

/// Applies `change` after checking every part of it; answers the new settings, or the name
/// of the bad field and why.
pub async fn update(
    spur: &Spur,
    change: Change,
) -> Result<Result<ApplicationSettings, (&'static str, String)>, String> {
    let mut settings = spur.store.application_settings().map_err(|e| e.to_string())?;
    if let Some(text) = &change.outbound_allowlist {
        match crate::outbound::parse_allowlist(text) {
            Ok(entries) => settings.outbound_local_requests_whitelist = entries,
            Err(why) => return Ok(Err(("outbound_local_requests_allowlist_raw", why))),
        }
    }
    if let Some(v) = change.allow_local_requests_from_web_hooks_and_services {
        settings.allow_local_requests_from_web_hooks_and_services = v;
    }
    if let Some(v) = change.allow_local_requests_from_system_hooks {
        settings.allow_local_requests_from_system_hooks = v;
    }
    spur.store
        .set_application_settings(settings.clone())
        .await
        .map_err(|e| e.to_string())?;
    if let Ok(mut policy) = spur.outbound.write() {
        *policy = crate::outbound::Policy::new(&settings, spur.allow_local_requests);
    }
    Ok(Ok(settings))
}

//! What became of each webhook delivery (GitLab's web hook logs): one post's outcome, the log
//! kept per hook (newest 100), and sending a logged event again. Secrets never reach a log.

use super::{Delivery, hook_headers, new_client};
use crate::context::Spur;
use crate::domain::{HookLog, ProjectHook};
use std::time::Instant;

/// The most of a request body a log keeps.
const MAX_LOGGED_REQUEST: usize = 64 << 10;
/// The most of a response body a log keeps.
const MAX_LOGGED_RESPONSE: usize = 8 << 10;

/// How one post ended.
#[derive(Debug, Clone, Default)]
pub(super) struct Attempt {
    pub status: Option<u16>,
    pub body: String,
    pub error: Option<String>,
    pub seconds: f64,
}

impl Attempt {
    /// Whether the receiver took it (2xx).
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// Whether trying again may help: no answer, 429 or 5xx.
    pub fn retryable(&self) -> bool {
        match self.status {
            None => true,
            Some(s) => s == 429 || s >= 500,
        }
    }
}

/// Posts `d` once.
pub(super) async fn post_once(client: &reqwest::Client, d: &Delivery) -> Attempt {
    let started = Instant::now();
    let mut request = client
        .post(&d.url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("spur/", env!("CARGO_PKG_VERSION")))
        .body(d.body.clone());
    for (k, v) in &d.headers {
        request = request.header(k, v);
    }
    match request.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap_or_default();
            let cut = &bytes[..bytes.len().min(MAX_LOGGED_RESPONSE)];
            Attempt {
                status: Some(status),
                body: String::from_utf8_lossy(cut).into_owned(),
                error: None,
                seconds: started.elapsed().as_secs_f64(),
            }
        }
        Err(e) => Attempt {
            error: Some(format!("Hook execution failed: {e}")),
            seconds: started.elapsed().as_secs_f64(),
            ..Attempt::default()
        },
    }
}

/// GitLab's trigger name for an event header.
fn trigger_of(d: &Delivery) -> String {
    let event = d
        .headers
        .iter()
        .find(|(k, _)| k == "X-Gitlab-Event")
        .map_or("", |(_, v)| v.as_str());
    match event {
        "Pipeline Hook" => "pipeline_hooks",
        "Job Hook" => "job_hooks",
        "Push Hook" => "push_hooks",
        "Tag Push Hook" => "tag_push_hooks",
        _ => "unknown",
    }
    .into()
}

/// Keeps the log of a webhook delivery that ended (`hook-N` targets; others keep none).
pub(super) async fn record(spur: &Spur, d: &Delivery, attempt: &Attempt, attempts: u32) -> Option<HookLog> {
    let hook_id: u64 = d.target.strip_prefix("hook-")?.parse().ok()?;
    let body = &d.body[..d.body.len().min(MAX_LOGGED_REQUEST)];
    let log = HookLog {
        id: 0,
        hook_id,
        trigger: trigger_of(d),
        url: d.url.clone(),
        request_headers: d
            .headers
            .iter()
            .map(|(k, v)| {
                let secret = k.eq_ignore_ascii_case("X-Gitlab-Token");
                (k.clone(), if secret { "[REDACTED]".into() } else { v.clone() })
            })
            .collect(),
        request_data: String::from_utf8_lossy(body).into_owned(),
        response_status: attempt.status,
        response_body: attempt.body.clone(),
        execution_duration: attempt.seconds,
        internal_error_message: attempt.error.clone(),
        attempts,
        created_at: crate::clock::now(),
    };
    match spur.store.add_hook_log(log).await {
        Ok(log) => Some(log),
        Err(e) => {
            tracing::warn!(error = %e, "could not keep a webhook delivery's log");
            None
        }
    }
}

/// Posts `body` as event `event` to `hook` once, now, through the outbound policy, and keeps
/// its log (hook tests and resends).
pub(super) async fn post_and_record(
    spur: &Spur,
    hook: &ProjectHook,
    event: &str,
    body: Vec<u8>,
) -> Result<HookLog, String> {
    let d = Delivery {
        id: 0,
        target: format!("hook-{}", hook.id),
        url: hook.url.clone(),
        headers: hook_headers(spur, hook, event),
        body,
    };
    let attempt = match spur.outbound_policy().check_url(&hook.url).await {
        Ok(_) => post_once(&new_client(spur), &d).await,
        Err(why) => Attempt {
            error: Some(format!("Hook execution failed: {why}")),
            ..Attempt::default()
        },
    };
    record(spur, &d, &attempt, 1)
        .await
        .ok_or_else(|| "the delivery's log could not be kept".to_string())
}

/// Sends a logged event again (its body, the hook's current URL and secret).
pub async fn resend(spur: &Spur, hook: &ProjectHook, log: &HookLog) -> Result<HookLog, String> {
    let event = log
        .request_headers
        .iter()
        .find(|(k, _)| k == "X-Gitlab-Event")
        .map_or("Pipeline Hook", |(_, v)| v.as_str())
        .to_string();
    post_and_record(spur, hook, &event, log.request_data.clone().into_bytes()).await
}

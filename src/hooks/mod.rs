//! Telling the outside world: project webhooks (`Pipeline Hook`, `Job Hook` in GitLab's payload
//! format, with the hook's secret as `X-Gitlab-Token`) and commit statuses on GitHub or Gitea
//! for mirrored projects. Events come from `events`; each target (a webhook, a project's status
//! integration) has its own queue, delivered in order with retries and backoff, so a slow or
//! dead receiver delays only itself. Events are recorded in the commit of the change they
//! announce (`PENDING_EVENTS`) and become deliveries in the commit that stores them in the
//! `OUTBOX` (sealed: they carry secrets), where they wait until made or given up: a crash at any
//! point loses no event and doubles none. Knows nothing of actix.

mod log;
pub mod payload;
mod test;

pub use log::resend;
pub use test::{TRIGGERS, test_hook};

use crate::context::Spur;
use crate::domain::{Job, Pipeline};
use crate::events::Event;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Waits before each retry of a failed delivery (5 attempts in all).
const BACKOFF: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
];

/// One HTTP POST to make.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    /// Its id in the outbox (0 until stored).
    #[serde(default)]
    pub id: u64,
    /// The queue it belongs to (one per webhook or integration).
    pub target: String,
    /// Where.
    pub url: String,
    /// Extra headers (event name, secret, authorization).
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// Receives events until the server stops and hands each delivery to its target's queue.
pub async fn run(spur: Arc<Spur>, mut events: mpsc::UnboundedReceiver<Event>) {
    // Built at the first delivery: loading the system's CA roots costs memory an idle server
    // without webhooks does not need.
    let mut client: Option<reqwest::Client> = None;
    let mut queues: HashMap<String, mpsc::UnboundedSender<Delivery>> = HashMap::new();
    let mut enqueue = |d: Delivery| {
        let queue = queues.entry(d.target.clone()).or_insert_with(|| {
            let client = client.get_or_insert_with(|| new_client(&spur)).clone();
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(deliver_in_order(spur.clone(), client, rx));
            tx
        });
        let _ = queue.send(d);
    };
    for d in waiting(&spur) {
        enqueue(d);
    }
    // Events a previous run recorded but did not turn into deliveries, then each wake-up.
    loop {
        match drain(&spur).await {
            Ok(deliveries) => deliveries.into_iter().for_each(&mut enqueue),
            Err(e) => tracing::warn!(error = %e, "could not prepare webhooks"),
        }
        if events.recv().await.is_none() {
            return;
        }
        while events.try_recv().is_ok() {}
    }
}

/// Turns every pending event into deliveries: each round stores the deliveries in the outbox
/// and removes their events in one commit, so that an event is neither lost nor doubled.
async fn drain(spur: &Spur) -> Result<Vec<Delivery>, String> {
    let mut out = Vec::new();
    loop {
        let pending = spur.store.pending_events(256).map_err(|e| e.to_string())?;
        if pending.is_empty() {
            return Ok(out);
        }
        let mut made = Vec::new();
        for (_, event) in &pending {
            made.extend(deliveries(spur, *event)?);
        }
        let mut sealed = Vec::with_capacity(made.len());
        for d in &made {
            let json = serde_json::to_vec(d).map_err(|e| e.to_string())?;
            sealed.push(spur.secrets.seal(&json).map_err(|e| e.to_string())?);
        }
        let seqs = pending.iter().map(|(seq, _)| *seq).collect();
        let ids = spur
            .store
            .events_to_deliveries(seqs, sealed)
            .await
            .map_err(|e| e.to_string())?;
        out.extend(made.into_iter().zip(ids).map(|(d, id)| Delivery { id, ..d }));
    }
}

/// The deliveries a previous run left in the outbox.
fn waiting(spur: &Spur) -> Vec<Delivery> {
    let stored = spur.store.waiting_deliveries().unwrap_or_default();
    stored
        .into_iter()
        .filter_map(|(id, sealed)| {
            let plain = spur.secrets.unseal(&sealed).ok()?;
            let d: Delivery = serde_json::from_slice(&plain).ok()?;
            Some(Delivery { id, ..d })
        })
        .collect()
}

/// The client for deliveries: names resolve only to addresses the outbound policy admits, and
/// redirects are never followed.
fn new_client(spur: &Spur) -> reqwest::Client {
    crate::outbound::install_tls_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(crate::outbound::GuardedResolver(spur.outbound.clone())))
        .build()
        .unwrap_or_default()
}

async fn deliver_in_order(spur: Arc<Spur>, client: reqwest::Client, mut queue: mpsc::UnboundedReceiver<Delivery>) {
    while let Some(d) = queue.recv().await {
        // Checked at each delivery (an address in the URL never reaches the resolver).
        let (attempt, attempts) = match spur.outbound_policy().check_url(&d.url).await {
            Ok(_) => deliver(&client, &d).await,
            Err(why) => {
                tracing::warn!(target = %d.target, reason = %why, "a webhook delivery was blocked");
                let blocked = log::Attempt {
                    error: Some(format!("Hook execution failed: {why}")),
                    ..log::Attempt::default()
                };
                (blocked, 0)
            }
        };
        // Delivered or given up, it stays visible in the hook's log.
        log::record(&spur, &d, &attempt, attempts).await;
        if let Err(e) = spur.store.remove_delivery(d.id).await {
            tracing::warn!(error = %e, "could not clear a delivery from the outbox");
        }
    }
}

/// Posts one delivery, retrying transport errors, 429 and 5xx with backoff; other answers
/// are final. Answers the last attempt and how many were made.
async fn deliver(client: &reqwest::Client, d: &Delivery) -> (log::Attempt, u32) {
    let mut tries = 0;
    loop {
        let outcome = log::post_once(client, d).await;
        tries += 1;
        if outcome.succeeded() {
            return (outcome, tries);
        }
        let wait = BACKOFF.get(tries as usize - 1).filter(|_| outcome.retryable());
        let Some(wait) = wait else {
            tracing::warn!(target = %d.target, attempts = tries, "a webhook delivery failed");
            return (outcome, tries);
        };
        tokio::time::sleep(*wait).await;
    }
}

/// What one event asks to post.
fn deliveries(spur: &Spur, event: Event) -> Result<Vec<Delivery>, String> {
    // Most projects have neither: two index reads, and nothing else is read.
    let project_id = event.project_id();
    let hooks = spur.store.project_hooks(project_id).map_err(|e| e.to_string())?;
    let integration = match event {
        Event::Pipeline(..) => spur.store.status_integration(project_id).map_err(|e| e.to_string())?,
        Event::Job(..) => None,
    };
    if hooks.is_empty() && integration.is_none() {
        return Ok(Vec::new());
    }
    let (pipeline, job) = match event {
        // Records are read now, but show the status the event announced: a quick job may
        // already have finished when its `running` event is delivered.
        Event::Pipeline(id, _, status) => {
            let pipeline = spur.store.pipeline(id).map_err(|e| e.to_string())?;
            (pipeline.map(|p| Pipeline { status, ..p }), None)
        }
        Event::Job(id, _, status) => {
            let Some(job) = spur.store.job(id).map_err(|e| e.to_string())? else {
                return Ok(Vec::new());
            };
            let job = Job { status, ..job };
            (
                spur.store.pipeline(job.pipeline_id).map_err(|e| e.to_string())?,
                Some(job),
            )
        }
    };
    let Some(pipeline) = pipeline else {
        return Ok(Vec::new());
    };
    let wanted = hooks
        .iter()
        .any(|h| if job.is_some() { h.job_events } else { h.pipeline_events });
    if !wanted && integration.is_none() {
        return Ok(Vec::new());
    }
    let Some(project) = spur.store.project(pipeline.project_id).map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if wanted {
        let (event_name, body) = match &job {
            Some(j) => ("Job Hook", payload::job_hook(spur, &project, &pipeline, j)),
            None => {
                let jobs = spur.store.pipeline_jobs(pipeline.id).map_err(|e| e.to_string())?;
                (
                    "Pipeline Hook",
                    payload::pipeline_hook(spur, &project, &pipeline, &jobs),
                )
            }
        };
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        for hook in hooks
            .iter()
            .filter(|h| if job.is_some() { h.job_events } else { h.pipeline_events })
        {
            out.push(Delivery {
                id: 0,
                target: format!("hook-{}", hook.id),
                url: hook.url.clone(),
                headers: hook_headers(spur, hook, event_name),
                body: body.clone(),
            });
        }
    }
    if let Some(i) = integration
        && let Some(url) = statuses_url(&i, &pipeline.sha)
    {
        let token = spur.secrets.unseal(&i.token_sealed).map_err(|e| e.to_string())?;
        let context = if i.static_context {
            "ci/spur".to_string()
        } else {
            format!("ci/spur/{}", pipeline.source.as_str())
        };
        let body = payload::commit_status(spur, &project, &pipeline, &context);
        out.push(Delivery {
            id: 0,
            target: format!("statuses-{}", project.id),
            url,
            headers: vec![
                (
                    "Authorization".into(),
                    format!("token {}", String::from_utf8_lossy(&token)),
                ),
                ("Accept".into(), "application/vnd.github+json".into()),
            ],
            body: serde_json::to_vec(&body).map_err(|e| e.to_string())?,
        });
    }
    Ok(out)
}

/// GitLab's headers for a webhook post: the event's name, the instance, a fresh event id and
/// the hook's secret token.
fn hook_headers(spur: &Spur, hook: &crate::domain::ProjectHook, event_name: &str) -> Vec<(String, String)> {
    let mut headers = vec![
        ("X-Gitlab-Event".to_string(), event_name.to_string()),
        ("X-Gitlab-Instance".to_string(), spur.external_url.clone()),
        ("X-Gitlab-Event-UUID".to_string(), uuid::Uuid::new_v4().to_string()),
    ];
    if let Some(token) = hook.token_sealed.as_ref().and_then(|s| spur.secrets.unseal(s).ok()) {
        headers.push(("X-Gitlab-Token".into(), String::from_utf8_lossy(&token).into_owned()));
    }
    headers
}

/// The statuses endpoint for a commit: GitHub's `https://api.github.com/repos/o/r/statuses/sha`
/// for github.com, Gitea's `<host>/api/v1/repos/o/r/statuses/sha` otherwise, or under an
/// explicit `api_url`.
pub fn statuses_url(i: &crate::domain::StatusIntegration, sha: &str) -> Option<String> {
    let url = i.repository_url.trim_end_matches('/').trim_end_matches(".git");
    let (scheme, rest) = url.split_once("://")?;
    let (host, path) = rest.split_once('/')?;
    let mut parts = path.split('/');
    let (owner, repo) = (parts.next()?, parts.next()?);
    let api = match &i.api_url {
        Some(api) => api.trim_end_matches('/').to_string(),
        None if host == "github.com" => "https://api.github.com".to_string(),
        None => format!("{scheme}://{host}/api/v1"),
    };
    Some(format!("{api}/repos/{owner}/{repo}/statuses/{sha}"))
}

/// Stores a new webhook (its id assigned here).
pub async fn create_project_hook(
    spur: &Spur,
    hook: crate::domain::ProjectHook,
) -> Result<crate::domain::ProjectHook, crate::storage::Error> {
    spur.store.create_project_hook(hook).await
}

/// Replaces a webhook; false if it is gone.
pub async fn update_project_hook(spur: &Spur, hook: crate::domain::ProjectHook) -> Result<bool, crate::storage::Error> {
    spur.store.update_project_hook(hook).await
}

/// Deletes a webhook; false if there was none.
pub async fn delete_project_hook(spur: &Spur, project_id: u64, hook_id: u64) -> Result<bool, crate::storage::Error> {
    spur.store.delete_project_hook(project_id, hook_id).await
}

/// Sets (or with `None` removes) a project's commit-status integration.
pub async fn set_status_integration(
    spur: &Spur,
    project_id: u64,
    integration: Option<crate::domain::StatusIntegration>,
) -> Result<(), crate::storage::Error> {
    spur.store.set_status_integration(project_id, integration).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(url: &str, api: Option<&str>) -> crate::domain::StatusIntegration {
        crate::domain::StatusIntegration {
            repository_url: url.into(),
            api_url: api.map(str::to_string),
            token_sealed: Vec::new(),
            static_context: true,
        }
    }

    #[test]
    fn statuses_go_to_github_or_gitea() {
        assert_eq!(
            statuses_url(&integration("https://github.com/o/r.git", None), "abc").as_deref(),
            Some("https://api.github.com/repos/o/r/statuses/abc")
        );
        assert_eq!(
            statuses_url(&integration("http://gitea.local:3000/o/r", None), "abc").as_deref(),
            Some("http://gitea.local:3000/api/v1/repos/o/r/statuses/abc")
        );
        assert_eq!(
            statuses_url(
                &integration("https://ghe.corp/o/r", Some("https://ghe.corp/api/v3/")),
                "abc"
            )
            .as_deref(),
            Some("https://ghe.corp/api/v3/repos/o/r/statuses/abc")
        );
        assert_eq!(statuses_url(&integration("not a url", None), "abc"), None);
    }
}

//! GitLab runners attached to spur: creating and registering them, recognising their tokens,
//! which queued jobs each may take, and noticing runners that vanish mid-job (`liveness`). The
//! job payload a runner receives is built in `payload`. Knows nothing of HTTP.

pub mod liveness;
pub mod payload;

use crate::clock;
use crate::context::Spur;
use crate::domain::{Millis, Runner, RunnerInfo};
use crate::scheduler::queue::QueuedJob;

/// The prefix of authentication tokens of runners an admin created; it switches
/// `gitlab-runner register` to the verify-only flow.
pub const TOKEN_PREFIX: &str = "glrt-";

/// GitLab's prefix of instance registration tokens.
pub const REGISTRATION_TOKEN_PREFIX: &str = "GR1348941";

/// A runner counts as online when it asked for work within this long (GitLab: 2 hours).
pub const ONLINE_WITHIN_MS: Millis = 2 * 3600 * 1000;

/// Contact times are written to storage at most this often per runner.
const CONTACT_WRITE_EVERY_MS: Millis = 60 * 1000;

/// The settings a new runner starts with.
#[derive(Debug, Clone, Default)]
pub struct NewRunner {
    /// Free text.
    pub description: String,
    /// Job tags it takes.
    pub tags: Vec<String>,
    /// Whether it takes untagged jobs.
    pub run_untagged: bool,
    /// Whether it starts paused.
    pub paused: bool,
    /// `not_protected` (default) or `ref_protected`.
    pub access_level: Option<String>,
    /// Longest job timeout, in seconds.
    pub maximum_timeout: Option<u64>,
    /// Created by an admin (a `glrt-` token) rather than registered with the instance token.
    pub created_by_admin: bool,
    /// What the runner said of itself.
    pub info: RunnerInfo,
}

/// Stores a new runner and answers it with its authentication token (shown once; only its
/// digest is kept).
pub async fn create(spur: &Spur, new: NewRunner) -> Result<(Runner, String), String> {
    let prefix = if new.created_by_admin { TOKEN_PREFIX } else { "" };
    let token = crate::secrets::new_token(prefix).map_err(|e| e.to_string())?;
    let runner = Runner {
        id: 0,
        description: new.description,
        tags: normalize_tags(new.tags),
        run_untagged: new.run_untagged,
        paused: new.paused,
        access_level: new.access_level.unwrap_or_else(|| "not_protected".into()),
        maximum_timeout: new.maximum_timeout,
        created_by_admin: new.created_by_admin,
        created_at: clock::now(),
        contacted_at: None,
        info: new.info,
        managers: Vec::new(),
        token_digest: spur.secrets.digest(&token).to_vec(),
    };
    let runner = spur.store.create_runner(runner).await.map_err(|e| e.to_string())?;
    Ok((runner, token))
}

/// Tags as GitLab keeps them: trimmed, without empties or repeats.
pub fn normalize_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags.iter().flat_map(|t| t.split(',')) {
        let tag = tag.trim();
        if !tag.is_empty() && !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    out
}

/// The runner an authentication token belongs to.
pub fn authenticate(spur: &Spur, token: &str) -> Result<Option<Runner>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    let digest = spur.secrets.digest(token);
    spur.store.runner_by_digest(&digest).map_err(|e| e.to_string())
}

/// The current instance registration token. It is derived from the data dir's secret key and
/// a generation counter, so it is never stored, and a reset (a new generation) revokes it.
pub fn registration_token(spur: &Spur) -> Result<String, String> {
    let generation = spur.store.runner_registration_generation().map_err(|e| e.to_string())?;
    let digest = spur.secrets.digest(&format!("runner registration token {generation}"));
    let hex = crate::secrets::hex(&digest);
    Ok(format!("{REGISTRATION_TOKEN_PREFIX}{}", &hex[..20]))
}

/// Whether `presented` is the current instance registration token (compared in constant time).
pub fn is_registration_token(spur: &Spur, presented: &str) -> Result<bool, String> {
    let expected = registration_token(spur)?;
    Ok(crate::secrets::constant_time_eq(
        expected.as_bytes(),
        presented.as_bytes(),
    ))
}

/// Whether `runner` may take `job`: every tag of the job is one of the runner's, an untagged
/// job needs `run_untagged`, and a `ref_protected` runner takes jobs of protected refs only.
pub fn accepts(runner: &Runner, job: &QueuedJob) -> bool {
    if runner.access_level == "ref_protected" && !job.protected_ref {
        return false;
    }
    if job.tags.is_empty() {
        return runner.run_untagged;
    }
    job.tags.iter().all(|t| runner.tags.contains(t))
}

/// Whether the runner asked for work recently (GitLab's `online`).
pub fn is_online(runner: &Runner, now: Millis) -> bool {
    runner.contacted_at.is_some_and(|at| now - at < ONLINE_WITHIN_MS)
}

/// GitLab's runner `status`: `online`, `offline`, `never_contacted` (and `paused` is a flag).
pub fn status(runner: &Runner, now: Millis) -> &'static str {
    match runner.contacted_at {
        None => "never_contacted",
        Some(_) if is_online(runner, now) => "online",
        Some(_) => "offline",
    }
}

/// Notes that a runner called (and, from `system_id`, which host): stored when the recorded
/// time is over a minute old or the host is new, so polling does not write on every request.
pub async fn touch(spur: &Spur, runner: &Runner, system_id: Option<&str>, info: Option<RunnerInfo>) {
    let now = clock::now();
    let stale = runner.contacted_at.is_none_or(|at| now - at >= CONTACT_WRITE_EVERY_MS);
    let new_host = system_id.is_some_and(|s| !s.is_empty() && !runner.managers.iter().any(|m| m == s));
    if !stale && !new_host {
        return;
    }
    let mut updated = runner.clone();
    updated.contacted_at = Some(now);
    if let Some(s) = system_id.filter(|_| new_host) {
        updated.managers.push(s.to_string());
    }
    if let Some(info) = info {
        updated.info = info;
    }
    if let Err(e) = spur.store.update_runner(updated).await {
        tracing::warn!(runner_id = runner.id, error = %e, "could not record a runner's contact");
    }
}

/// Deletes a runner and its token; false if it did not exist.
pub async fn delete_runner(spur: &Spur, id: u64) -> Result<bool, crate::storage::Error> {
    spur.store.delete_runner(id).await
}

/// Replaces a runner's record (settings, contact time, managers); false if it is gone.
pub async fn update_runner(spur: &Spur, runner: crate::domain::Runner) -> Result<bool, crate::storage::Error> {
    spur.store.update_runner(runner).await
}

/// Moves to a new instance registration token; the old one stops working.
pub async fn bump_runner_registration_generation(spur: &Spur) -> Result<u64, crate::storage::Error> {
    spur.store.bump_runner_registration_generation().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(tags: &[&str], run_untagged: bool) -> Runner {
        Runner {
            id: 1,
            description: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            run_untagged,
            paused: false,
            access_level: "not_protected".into(),
            maximum_timeout: None,
            created_by_admin: true,
            created_at: 0,
            contacted_at: None,
            info: RunnerInfo::default(),
            managers: Vec::new(),
            token_digest: Vec::new(),
        }
    }

    fn job(tags: &[&str]) -> QueuedJob {
        QueuedJob::new(
            1,
            crate::scheduler::queue::JobClass {
                tags: tags.iter().map(|t| t.to_string()).collect(),
                protected_ref: false,
                resource_group: None,
            },
        )
    }

    #[test]
    fn runners_take_jobs_whose_tags_they_all_have() {
        let r = runner(&["docker", "linux"], false);
        assert!(accepts(&r, &job(&["docker"])));
        assert!(accepts(&r, &job(&["linux", "docker"])));
        assert!(!accepts(&r, &job(&["docker", "gpu"])));
        assert!(!accepts(&r, &job(&[])));
        assert!(accepts(&runner(&[], true), &job(&[])));
        assert!(!accepts(&runner(&[], true), &job(&["docker"])));
        let mut protected_only = runner(&[], true);
        protected_only.access_level = "ref_protected".into();
        assert!(!accepts(&protected_only, &job(&[])));
        assert!(accepts(
            &protected_only,
            &QueuedJob::new(
                1,
                crate::scheduler::queue::JobClass {
                    tags: Vec::new(),
                    protected_ref: true,
                    resource_group: None,
                },
            )
        ));
    }

    #[test]
    fn tags_are_split_trimmed_and_deduplicated() {
        let tags = normalize_tags(vec!["a, b".into(), "b".into(), " ".into(), "c".into()]);
        assert_eq!(tags, ["a", "b", "c"]);
    }

    #[test]
    fn online_means_contacted_within_two_hours() {
        let mut r = runner(&[], true);
        assert_eq!(status(&r, 10), "never_contacted");
        r.contacted_at = Some(0);
        assert_eq!(status(&r, ONLINE_WITHIN_MS - 1), "online");
        assert_eq!(status(&r, ONLINE_WITHIN_MS), "offline");
    }
}

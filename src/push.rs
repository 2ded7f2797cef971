//! Push pipelines: when a project's repository changes (a push to spur, a mirror update, a
//! forge's webhook), every branch that moved and every new tag gets one `push` pipeline for its
//! new commit, with `CI_COMMIT_BEFORE_SHA`; deleted refs get none; `[ci skip]` gives a
//! `skipped` pipeline. Which refs moved is found by comparing the repository's refs with the
//! ones recorded last time (`PROJECT_REFS`), one project at a time. Pipelines are created before
//! the new refs are recorded, so a crash in between repeats a pipeline rather than losing one.
//! Older pipelines on a moved branch whose started jobs are all `interruptible` are canceled
//! (GitLab's auto-cancel of redundant pipelines). Knows nothing of HTTP.

use crate::clock;
use crate::context::Spur;
use crate::domain::{JobStatus, PipelineSource, Project};
use crate::git::{Origin, ResolvedRef};
use crate::pipeline_create::{self, CreateRefusal, CreateRequest};
use crate::scheduler::Target;
use crate::storage::{PipelineFilter, PipelineOrder, RefSnapshot};
use std::collections::HashMap;
use std::sync::Arc;

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// A ref that moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// Full name (`refs/heads/main`).
    pub name: String,
    /// Its commit before (`None`: new).
    pub before: Option<String>,
    /// Its commit now.
    pub after: String,
}

/// The branches and tags that are new or point elsewhere in `now` than in `before`; deleted ones
/// are left out. Branches first, then tags, each by name.
pub fn moved(before: &RefSnapshot, now: &RefSnapshot) -> Vec<Moved> {
    let mut out: Vec<Moved> = now
        .iter()
        .filter(|(name, sha)| before.get(*name) != Some(*sha))
        .map(|(name, sha)| Moved {
            name: name.clone(),
            before: before.get(name).cloned(),
            after: sha.clone(),
        })
        .collect();
    out.sort_by_key(|m| (m.name.starts_with("refs/tags/"), m.name.clone()));
    out
}

fn repository(spur: &Spur, project: &Project) -> std::path::PathBuf {
    let origin = Origin::of(project);
    spur.repos.path_of(&project.repo_name, &origin)
}

/// Records a new project's refs, so that its first push starts from them.
pub async fn record_refs(spur: &Spur, project: &Project) -> Result<(), String> {
    let lock = spur.push_locks.of(project.id);
    let _held = lock.lock().await;
    let refs = crate::git::list_refs(&repository(spur, project)).await?;
    spur.store
        .set_project_refs(project.id, refs)
        .await
        .map_err(|e| e.to_string())
}

/// Fetches a mirror (nothing for local and hosted repositories), then `sync`s it.
pub async fn update_mirror(spur: Arc<Spur>, project_id: u64) -> Result<usize, String> {
    let Some(project) = spur.store.project(project_id).map_err(|e| e.to_string())? else {
        return Ok(0);
    };
    let origin = Origin::of(&project);
    crate::mirror::fetch_origin(&spur, &project).await?;
    if project.default_branch.is_none()
        && matches!(origin, Origin::Remote(_))
        && adopt_default_branch(&spur, &project).await?
    {
        // A mirror that could not be cloned at creation (its deploy key was not yet known to
        // the forge): its first fetch is the import, as GitLab's, and starts no pipelines.
        record_refs(&spur, &project).await?;
        return Ok(0);
    }
    sync(spur, project_id, None).await
}

/// Gives a project whose repository was empty its first default branch (`main`, else
/// `master`, else the first branch), protected as GitLab protects it, with HEAD on it. Answers
/// whether there was a branch to adopt.
async fn adopt_default_branch(spur: &Spur, project: &Project) -> Result<bool, String> {
    let Some(branch) = spur.repos.adopt_default_branch(&repository(spur, project)).await else {
        return Ok(false);
    };
    spur.store
        .set_first_default_branch(project.id, branch)
        .await
        .map_err(|e| e.to_string())?;
    Ok(true)
}

/// Compares the repository's refs with the recorded ones and creates a push pipeline for each
/// moved branch and new tag, as `pusher` (the project's creator for mirror updates). Answers
/// how many pipelines it created. A project seen for the first time is only recorded.
pub async fn sync(spur: Arc<Spur>, project_id: u64, pusher: Option<u64>) -> Result<usize, String> {
    let lock = spur.push_locks.of(project_id);
    let _held = lock.lock().await;
    let Some(project) = spur.store.project(project_id).map_err(|e| e.to_string())? else {
        return Ok(0);
    };
    if project.default_branch.is_none() && project.import_url.is_none() {
        // A hosted project's first push sets its default branch before its pipelines run.
        adopt_default_branch(&spur, &project).await?;
    }
    let now = crate::git::list_refs(&repository(&spur, &project)).await?;
    let Some(before) = spur.store.project_refs(project_id).map_err(|e| e.to_string())? else {
        return spur
            .store
            .set_project_refs(project_id, now)
            .await
            .map(|_| 0)
            .map_err(|e| e.to_string());
    };
    let mut created = 0;
    for change in moved(&before, &now) {
        match push_pipeline(&spur, &project, pusher.unwrap_or(project.creator_id), &change).await {
            Ok(true) => created += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(project_id, r#ref = %change.name, error = %e, "could not create a push pipeline"),
        }
    }
    spur.store
        .set_project_refs(project_id, now)
        .await
        .map_err(|e| e.to_string())?;
    Ok(created)
}

/// Creates the push pipeline of one moved ref; false when none was due (rules filtered every
/// job, or the user may not run pipelines there).
async fn push_pipeline(spur: &Arc<Spur>, project: &Project, user_id: u64, change: &Moved) -> Result<bool, String> {
    let (short, tag) = match (
        change.name.strip_prefix("refs/heads/"),
        change.name.strip_prefix("refs/tags/"),
    ) {
        (Some(branch), _) => (branch.to_string(), false),
        (_, Some(tag)) => (tag.to_string(), true),
        _ => return Ok(false),
    };
    let Some(user) = spur
        .store
        .user(user_id)
        .map_err(|e| e.to_string())?
        .filter(|u| !u.blocked)
    else {
        return Ok(false);
    };
    let access =
        crate::auth::project_access(&spur.store, Some(&user), project, clock::now()).map_err(|e| e.to_string())?;
    let mut request = CreateRequest::new(PipelineSource::Push, user, access, short.clone(), Vec::new(), 0);
    request.commit = Some(ResolvedRef {
        short,
        tag,
        sha: change.after.clone(),
    });
    request.before_sha = Some(if tag {
        ZERO_SHA.to_string()
    } else {
        change.before.clone().unwrap_or_else(|| ZERO_SHA.to_string())
    });
    let origin = Origin::of(project);
    let (s, p) = (spur.clone(), project.clone());
    let prepared = tokio::task::spawn_blocking(move || pipeline_create::prepare(&s, &p, &origin, &request))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(CreateRefusal::Invalid(message)) => {
            tracing::info!(project_id = project.id, r#ref = %change.name, reason = %message, "no push pipeline");
            return Ok(false);
        }
        Err(other) => return Err(format!("{other:?}")),
    };
    let recorded = pipeline_create::record(spur, prepared, true)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let pipeline = match recorded {
        Ok(p) => p,
        // A configuration error is stored as a failed pipeline.
        Err(CreateRefusal::Unprocessable(_)) => return Ok(true),
        Err(other) => return Err(format!("{other:?}")),
    };
    if !pipeline.tag {
        cancel_redundant(spur, project.id, &pipeline.ref_name, pipeline.id).await;
    }
    Ok(true)
}

/// Cancels older unfinished pipelines on `branch` whose started jobs are all interruptible
/// (GitLab's "auto-cancel redundant pipelines", conservative mode).
async fn cancel_redundant(spur: &Spur, project_id: u64, branch: &str, newest: u64) {
    let filter = PipelineFilter {
        ref_name: Some(branch.to_string()),
        ..PipelineFilter::default()
    };
    let Ok((pipelines, _)) = spur
        .store
        .project_pipelines(project_id, &filter, PipelineOrder::Id, true, 0, 50)
    else {
        return;
    };
    for p in pipelines.iter().filter(|p| p.id < newest && p.finished_at.is_none()) {
        let Ok(jobs) = spur.store.pipeline_jobs(p.id) else {
            continue;
        };
        let started_are_interruptible = jobs
            .iter()
            .filter(|j| j.started_at.is_some() || j.status == JobStatus::Running)
            .all(|j| j.settings.interruptible);
        let any_interruptible = jobs.iter().any(|j| j.settings.interruptible);
        if started_are_interruptible && any_interruptible {
            tracing::info!(
                pipeline_id = p.id,
                newer = newest,
                "auto-canceling a redundant pipeline"
            );
            let _ = spur.scheduler.cancel(Target::Pipeline(p.id)).await;
        }
    }
}

/// The secret a forge's push webhook for `project_id` must present (`X-Gitlab-Token`) or sign
/// with (GitHub's `X-Hub-Signature-256`, Gitea's `X-Gitea-Signature`). Derived from the data
/// dir's key, so it is never stored; shown to Maintainers on the settings page.
pub fn hook_secret(spur: &Spur, project_id: u64) -> String {
    crate::secrets::hex(&spur.secrets.digest(&format!("mirror webhook secret {project_id}")))[..40].to_string()
}

/// Whether a forge's push webhook request carries `secret`: GitLab's token header, or a valid
/// HMAC-SHA256 of the body (GitHub's `sha256=<hex>`, Gitea's bare hex). Compared in constant
/// time.
pub fn hook_authentic(secret: &str, gitlab_token: Option<&str>, signature: Option<&str>, body: &[u8]) -> bool {
    use hmac::Mac;
    if let Some(token) = gitlab_token {
        return crate::secrets::constant_time_eq(token.as_bytes(), secret.as_bytes());
    }
    let Some(signature) = signature else { return false };
    let hex = signature.trim().strip_prefix("sha256=").unwrap_or(signature.trim());
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    let expected = crate::secrets::hex(&mac.finalize().into_bytes());
    crate::secrets::constant_time_eq(expected.as_bytes(), hex.to_ascii_lowercase().as_bytes())
}

/// Follows every project's repository: at start (catching up on pushes that arrived while spur
/// was down), then each mirror (remote and local `import_url`s) every `interval`, or its own
/// `mirror_interval`.
pub async fn follow(spur: Arc<Spur>, interval: std::time::Duration) {
    let tick = interval.min(std::time::Duration::from_secs(10));
    let mut last: HashMap<u64, std::time::Instant> = HashMap::new();
    let mut first = true;
    loop {
        let projects = spur.store.projects().unwrap_or_default();
        for project in projects {
            let every = project
                .mirror_interval_secs
                .map_or(interval, std::time::Duration::from_secs);
            let due = last.get(&project.id).is_none_or(|at| at.elapsed() >= every);
            if !(first || (project.import_url.is_some() && due)) {
                continue;
            }
            last.insert(project.id, std::time::Instant::now());
            if let Err(e) = update_mirror(spur.clone(), project.id).await {
                tracing::warn!(project_id = project.id, error = %e, "could not update the repository");
            }
        }
        first = false;
        tokio::time::sleep(tick).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(pairs: &[(&str, &str)]) -> RefSnapshot {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn webhook_secrets_are_checked_as_each_forge_sends_them() {
        // HMAC-SHA256("It's a Secret to Everybody", "Hello, World!") from GitHub's documentation.
        let github = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let secret = "It's a Secret to Everybody";
        assert!(hook_authentic(secret, None, Some(github), b"Hello, World!"));
        assert!(
            hook_authentic(secret, None, Some(&github[7..]), b"Hello, World!"),
            "Gitea: bare hex"
        );
        assert!(!hook_authentic(secret, None, Some(github), b"Hello, World?"));
        assert!(!hook_authentic(secret, None, None, b"Hello, World!"));
        assert!(hook_authentic(secret, Some(secret), None, b""));
        assert!(!hook_authentic(secret, Some("guess"), Some(github), b"Hello, World!"));
    }

    #[test]
    fn moved_and_new_refs_count_deleted_ones_do_not() {
        let before = refs(&[("refs/heads/main", "a"), ("refs/heads/old", "b"), ("refs/tags/v1", "a")]);
        let now = refs(&[
            ("refs/heads/main", "c"),
            ("refs/heads/new", "d"),
            ("refs/tags/v1", "a"),
            ("refs/tags/v2", "c"),
        ]);
        let names: Vec<(String, Option<String>)> =
            moved(&before, &now).into_iter().map(|m| (m.name, m.before)).collect();
        assert_eq!(
            names,
            [
                ("refs/heads/main".to_string(), Some("a".to_string())),
                ("refs/heads/new".to_string(), None),
                ("refs/tags/v2".to_string(), None),
            ]
        );
        assert!(moved(&now, &now).is_empty());
    }
}

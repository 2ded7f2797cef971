//! Job artifacts: the zip archive a job leaves behind (`artifacts:`), stored as
//! `<data-dir>/artifacts/<job id>.zip` with its size and expiry in redb, handed to later jobs
//! of the pipeline (`dependencies`, `needs`), downloadable by users, and deleted when it
//! expires or its pipeline goes. Knows nothing of HTTP; the built-in executor's zipping lives
//! in `executor::artifacts`.

use crate::clock;
use crate::context::Spur;
use crate::domain::{ArtifactsFile, ArtifactsSpec, Job, Millis};
use std::path::PathBuf;

/// How long artifacts are kept when `expire_in` is absent (GitLab's instance default).
pub const DEFAULT_EXPIRE_SECS: u64 = 30 * 24 * 3600;

/// The folder of every archive.
pub fn dir(spur: &Spur) -> PathBuf {
    spur.data_dir.join(crate::config::layout::ARTIFACTS)
}

/// Where a job's archive lives.
pub fn path(spur: &Spur, job_id: u64) -> PathBuf {
    dir(spur).join(format!("{job_id}.zip"))
}

/// A fresh private file name for an upload in progress (renamed into place when complete).
pub fn upload_path(spur: &Spur, job_id: u64) -> PathBuf {
    dir(spur).join(format!(".upload-{job_id}-{}", uuid::Uuid::new_v4().simple()))
}

/// When artifacts kept with this `expire_in` expire; `None` for `never`. Unreadable values
/// fall back to the default, as GitLab's parser is lenient too.
pub fn expire_at(expire_in: Option<&str>, now: Millis) -> Option<Millis> {
    let secs = match expire_in.map(str::trim) {
        Some(text) if text.eq_ignore_ascii_case("never") => return None,
        Some(text) => crate::ci_config::job_settings::parse_duration(text).unwrap_or(DEFAULT_EXPIRE_SECS),
        None => DEFAULT_EXPIRE_SECS,
    };
    Some(now + secs as Millis * 1000)
}

/// Moves a complete upload into place and records it; the job's earlier archive is replaced.
pub async fn store(
    spur: &Spur,
    job: &Job,
    upload: PathBuf,
    size: u64,
    expire_in: Option<&str>,
) -> Result<ArtifactsFile, String> {
    let spec: Option<&ArtifactsSpec> = job.settings.artifacts.as_ref();
    let filename = match spec.and_then(|s| s.name.as_deref()).filter(|n| !n.trim().is_empty()) {
        Some(name) => format!("{}.zip", name.replace(['/', '\\'], "_")),
        None => "artifacts.zip".to_string(),
    };
    let expire_in = expire_in.or(spec.and_then(|s| s.expire_in.as_deref()));
    let file = ArtifactsFile {
        filename,
        size,
        expire_at: expire_at(expire_in, clock::now()),
    };
    let target = path(spur, job.id);
    tokio::fs::rename(&upload, &target).await.map_err(|e| e.to_string())?;
    spur.store
        .put_artifacts(job.id, file.clone())
        .await
        .map_err(|e| e.to_string())?;
    Ok(file)
}

/// Deletes what a job left on disk: its log and its artifacts archive.
pub fn remove_job_files(spur: &Spur, job_id: u64) {
    spur.traces.remove(job_id);
    let _ = std::fs::remove_file(path(spur, job_id));
}

/// Erases a finished job's log and artifacts (`POST .../jobs/:id/erase`): the job is marked
/// erased durably first, then its files go. `NotErasable` when it is unfinished, already
/// erased, or has neither a log nor artifacts.
pub async fn erase(spur: &Spur, job: &Job) -> Result<(), crate::scheduler::Refusal> {
    let has_log = spur.traces.path(job.id).exists();
    let has_artifacts = spur.store.artifacts(job.id).ok().flatten().is_some();
    let has_report = spur.store.test_report(job.id).ok().flatten().is_some();
    if !has_log && !has_artifacts && !has_report {
        return Err(crate::scheduler::Refusal::NotErasable);
    }
    spur.scheduler.erase(job.id).await?;
    spur.store
        .delete_artifacts(job.id)
        .await
        .map_err(|e| crate::scheduler::Refusal::Storage(e.to_string()))?;
    spur.store
        .delete_test_report(job.id)
        .await
        .map_err(|e| crate::scheduler::Refusal::Storage(e.to_string()))?;
    remove_job_files(spur, job.id);
    tracing::info!(job_id = job.id, "job erased");
    Ok(())
}

/// The jobs whose artifacts `job` receives, in pipeline order: its `dependencies:` when given,
/// else its `needs` (those without `artifacts: false`), else every job of an earlier stage.
/// Only the latest attempt of each job counts.
pub fn dependencies(spur: &Spur, job: &Job) -> Result<Vec<Job>, String> {
    let jobs = spur.store.pipeline_jobs(job.pipeline_id).map_err(|e| e.to_string())?;
    let latest = jobs.into_iter().filter(|j| !j.retried && j.id != job.id);
    let s = &job.settings;
    let chosen: Vec<Job> = match (&s.dependencies, &job.needs) {
        (Some(names), _) => latest.filter(|j| names.contains(&j.name)).collect(),
        (None, Some(needs)) => latest
            .filter(|j| needs.contains(&j.name) && !s.needs_without_artifacts.contains(&j.name))
            .collect(),
        (None, None) => latest.filter(|j| j.stage_index < job.stage_index).collect(),
    };
    let mut chosen = chosen;
    for need in &s.artifact_needs {
        if let Some(found) = outside_dependency(spur, job, need)? {
            chosen.push(found);
        }
    }
    Ok(chosen)
}

/// How many of a ref's newest pipelines are searched for a `needs:project` job.
const MAX_PIPELINES_SEARCHED: usize = 50;

/// The job a `needs:project` or `needs:pipeline:job` entry names: the parent pipeline's
/// latest attempt of it, or the newest successful one with artifacts on the other project's
/// ref, if the job's user may read that project's code (Reporter+, or any signed-in user
/// of a public or internal project) and its job token allowlist admits the job's project;
/// `None` when there is none.
fn outside_dependency(spur: &Spur, job: &Job, need: &crate::domain::ArtifactNeed) -> Result<Option<Job>, String> {
    let store = &spur.store;
    let Some(path) = &need.project else {
        let pipeline = store.pipeline(job.pipeline_id).map_err(|e| e.to_string())?;
        let Some(parent) = pipeline.and_then(|p| p.upstream).filter(|u| u.child_depth > 0) else {
            return Ok(None);
        };
        let jobs = store.pipeline_jobs(parent.pipeline_id).map_err(|e| e.to_string())?;
        return Ok(jobs.into_iter().rev().find(|j| !j.retried && j.name == need.job));
    };
    let Some(project) = store.project_by_path(path).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let user = store.user(job.user_id).map_err(|e| e.to_string())?;
    let access =
        crate::auth::project_access(store, user.as_ref(), &project, clock::now()).map_err(|e| e.to_string())?;
    let may_download = access.at_least(crate::domain::AccessLevel::Reporter)
        || (access.can_read && project.visibility != crate::domain::Visibility::Private);
    // The other project's job token allowlist must admit this one, as for a runner's download.
    let admitted = project.id == job.project_id
        || store
            .job_token_allowed(project.id, job.project_id)
            .map_err(|e| e.to_string())?;
    if !may_download || !admitted {
        return Ok(None);
    }
    let ref_name = need
        .ref_name
        .clone()
        .or(project.default_branch.clone())
        .unwrap_or_default();
    latest_successful_job(spur, project.id, &ref_name, &need.job)
}

/// The job named `name` with artifacts in the newest successful pipeline of `ref_name` that
/// has one (GitLab's `latest_successful_build_for_ref`); the newest 50 pipelines are searched.
pub fn latest_successful_job(spur: &Spur, project_id: u64, ref_name: &str, name: &str) -> Result<Option<Job>, String> {
    let store = &spur.store;
    let filter = crate::storage::PipelineFilter {
        ref_name: Some(ref_name.to_string()),
        status: Some(crate::domain::PipelineStatus::Success),
        ..Default::default()
    };
    let (pipelines, _) = store
        .project_pipelines(
            project_id,
            &filter,
            crate::storage::PipelineOrder::Id,
            true,
            0,
            MAX_PIPELINES_SEARCHED,
        )
        .map_err(|e| e.to_string())?;
    for pipeline in pipelines {
        let jobs = store.pipeline_jobs(pipeline.id).map_err(|e| e.to_string())?;
        let found = jobs.into_iter().find(|j| {
            !j.retried
                && j.name == name
                && j.status == crate::domain::JobStatus::Success
                && matches!(store.artifacts(j.id), Ok(Some(_)))
        });
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// The largest single file served out of an archive.
pub const MAX_ENTRY_BYTES: u64 = 64 << 20;

/// One file of job `job_id`'s archive, by its path inside the archive; `Ok(None)` when the
/// archive or the file is not there (directories are not files).
pub fn archive_entry(spur: &Spur, job_id: u64, entry: &str) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    let Ok(file) = std::fs::File::open(path(spur, job_id)) else {
        return Ok(None);
    };
    let mut archive = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let Ok(found) = archive.by_name(entry.trim_start_matches('/')) else {
        return Ok(None);
    };
    if found.is_dir() {
        return Ok(None);
    }
    if found.size() > MAX_ENTRY_BYTES {
        return Err(format!("the file is larger than {MAX_ENTRY_BYTES} bytes"));
    }
    let mut data = Vec::new();
    found
        .take(MAX_ENTRY_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| e.to_string())?;
    Ok(Some(data))
}

/// Deletes expired archives, every `interval`.
pub async fn expire(spur: std::sync::Arc<Spur>, interval: std::time::Duration) {
    loop {
        tokio::time::sleep(interval).await;
        match sweep_expired(&spur).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(archives = n, "deleted expired artifacts"),
            Err(e) => tracing::warn!(error = %e, "could not delete expired artifacts"),
        }
    }
}

/// One pass: deletes every expired archive; answers how many.
pub async fn sweep_expired(spur: &Spur) -> Result<usize, String> {
    let expired = spur.store.expired_artifacts(clock::now()).map_err(|e| e.to_string())?;
    for &job_id in &expired {
        spur.store.delete_artifacts(job_id).await.map_err(|e| e.to_string())?;
        let _ = tokio::fs::remove_file(path(spur, job_id)).await;
    }
    Ok(expired.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_expire_in_with_a_thirty_day_default() {
        assert_eq!(expire_at(Some("never"), 0), None);
        assert_eq!(expire_at(Some("1 hour"), 0), Some(3_600_000));
        assert_eq!(expire_at(Some("2 days"), 5), Some(5 + 2 * 86_400_000));
        assert_eq!(expire_at(None, 0), Some(DEFAULT_EXPIRE_SECS as i64 * 1000));
        assert_eq!(expire_at(Some("soon-ish"), 0), Some(DEFAULT_EXPIRE_SECS as i64 * 1000));
    }
}

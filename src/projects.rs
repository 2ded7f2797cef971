//! Changing and deleting projects, and their job token allowlists: the one place API and UI
//! change them through.

use crate::context::Spur;

/// Changes a project's editable settings.
pub async fn update_project(
    spur: &Spur,
    id: u64,
    change: crate::storage::ProjectChange,
    now: crate::domain::Millis,
) -> Result<Result<crate::domain::Project, crate::storage::Refusal>, crate::storage::Error> {
    spur.store.update_project(id, change, now).await
}

/// Adds `source` to `target`'s allowlist; `Taken` when it is there already.
pub async fn allow_job_token(
    spur: &Spur,
    target: u64,
    source: u64,
) -> Result<Result<(), crate::storage::Refusal>, crate::storage::Error> {
    spur.store.allow_job_token(target, source).await
}

/// Turns `target`'s job token inbound allowlist on or off.
pub async fn set_job_token_scope(spur: &Spur, target: u64, enabled: bool) -> Result<(), crate::storage::Error> {
    spur.store.set_job_token_scope(target, enabled).await?;
    tracing::info!(project_id = target, enabled, "job token inbound allowlist changed");
    Ok(())
}

/// Removes `source` from `target`'s allowlist.
pub async fn disallow_job_token(
    spur: &Spur,
    target: u64,
    source: u64,
) -> Result<Result<(), crate::storage::Refusal>, crate::storage::Error> {
    spur.store.disallow_job_token(target, source).await
}

/// Deletes a project with its triggers and pipelines, and forgets its repository (a mirror or
/// hosted copy is removed); answers the project deleted.
pub async fn delete_project(
    spur: &Spur,
    project_id: u64,
) -> Result<Result<crate::domain::Project, crate::storage::Refusal>, crate::storage::Error> {
    let deleted = spur.store.delete_project(project_id).await?;
    if let Ok(p) = &deleted {
        spur.repos.forget(&p.repo_name, &crate::git::Origin::of(p)).await;
        tracing::info!(project_id = p.id, "project deleted");
    }
    Ok(deleted)
}

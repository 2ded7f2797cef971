//! Project and group CI/CD variables as the rest of spur sees them: sealed here before storage,
//! unsealed on read, and merged and filtered for a pipeline (a project's variables override its
//! group's; protected ones only reach pipelines on protected branches and tags).

use crate::context::Spur;
use crate::domain::ProjectVariable;
use crate::storage::Refusal;

/// Checks a variable as GitLab does; the refusal names the attribute and says why.
pub fn validate(variable: &ProjectVariable) -> Result<(), (&'static str, &'static str)> {
    if !crate::domain::is_valid_variable_key(&variable.key) {
        return Err(("key", "can contain only letters, digits and '_'."));
    }
    if variable.masked && !crate::domain::is_maskable(&variable.value) {
        return Err(("value", "is invalid"));
    }
    if variable.description.as_ref().is_some_and(|d| d.chars().count() > 255) {
        return Err(("description", "is too long (maximum is 255 characters)"));
    }
    Ok(())
}

/// Every variable of a project, unsealed, by key.
pub fn list(spur: &Spur, project_id: u64) -> Result<Vec<ProjectVariable>, String> {
    let sealed = spur
        .store
        .project_variables_sealed(project_id)
        .map_err(|e| e.to_string())?;
    unseal_all(spur, sealed)
}

/// Every variable of a group, unsealed, by key.
pub fn list_group(spur: &Spur, group_id: u64) -> Result<Vec<ProjectVariable>, String> {
    let sealed = spur.store.group_variables_sealed(group_id).map_err(|e| e.to_string())?;
    unseal_all(spur, sealed)
}

/// Seals and stores a group variable (as `store`).
pub async fn store_group(
    spur: &Spur,
    group_id: u64,
    variable: &ProjectVariable,
    create_only: bool,
) -> Result<Result<(), Refusal>, String> {
    let sealed = seal(spur, variable)?;
    spur.store
        .put_group_variable(group_id, variable.key.clone(), sealed, create_only)
        .await
        .map_err(|e| e.to_string())
}

/// Deletes a group variable.
pub async fn delete_group_variable(
    spur: &Spur,
    group_id: u64,
    key: String,
) -> Result<Result<(), crate::storage::Refusal>, crate::storage::Error> {
    spur.store.delete_group_variable(group_id, key).await
}

/// A variable as JSON, sealed with the data dir's key (what storage keeps).
fn seal(spur: &Spur, variable: &ProjectVariable) -> Result<Vec<u8>, String> {
    let bytes = serde_json::to_vec(variable).map_err(|e| e.to_string())?;
    spur.secrets.seal(&bytes).map_err(|e| e.to_string())
}

fn unseal_all(spur: &Spur, sealed: Vec<(String, Vec<u8>)>) -> Result<Vec<ProjectVariable>, String> {
    sealed
        .into_iter()
        .map(|(_, bytes)| {
            let plain = spur.secrets.unseal(&bytes).map_err(|e| e.to_string())?;
            serde_json::from_slice(&plain).map_err(|e| e.to_string())
        })
        .collect()
}

/// The variable `key` of a project.
pub fn get(spur: &Spur, project_id: u64, key: &str) -> Result<Option<ProjectVariable>, String> {
    Ok(list(spur, project_id)?.into_iter().find(|v| v.key == key))
}

/// Seals and stores a variable: `create_only` refuses an existing key (`Taken`), otherwise the
/// key must exist (`NotFound`).
pub async fn store(
    spur: &Spur,
    project_id: u64,
    variable: &ProjectVariable,
    create_only: bool,
) -> Result<Result<(), Refusal>, String> {
    let sealed = seal(spur, variable)?;
    spur.store
        .put_project_variable(project_id, variable.key.clone(), sealed, create_only)
        .await
        .map_err(|e| e.to_string())
}

/// The `(key, value)` pairs a pipeline on `ref_name` receives.
pub fn for_pipeline(
    spur: &Spur,
    project_id: u64,
    ref_name: &str,
    is_tag: bool,
) -> Result<Vec<(String, String)>, String> {
    let protected_ref = crate::protected_refs::is_protected(spur, project_id, ref_name, is_tag)?;
    Ok(records_for_pipeline(spur, project_id, protected_ref)?
        .into_iter()
        .map(|v| (v.key, v.value))
        .collect())
}

/// The variables a pipeline receives, whole (type and masking included): protected ones only
/// when its ref is protected.
pub fn records_for_pipeline(spur: &Spur, project_id: u64, protected_ref: bool) -> Result<Vec<ProjectVariable>, String> {
    // The group's first: a project variable of the same key comes later and wins.
    let project = spur.store.project(project_id).map_err(|e| e.to_string())?;
    let mut all = match project {
        Some(p) => list_group(spur, p.namespace_id)?,
        None => Vec::new(),
    };
    let own = list(spur, project_id)?;
    all.retain(|g| !own.iter().any(|p| p.key == g.key));
    all.extend(own);
    Ok(all.into_iter().filter(|v| !v.protected || protected_ref).collect())
}

/// Deletes a variable.
pub async fn delete_project_variable(
    spur: &Spur,
    project_id: u64,
    key: String,
) -> Result<Result<(), crate::storage::Refusal>, crate::storage::Error> {
    spur.store.delete_project_variable(project_id, key).await
}

//! Protected branches and tags: which refs a project protects (a name or a `*` pattern), who may
//! push to them, and who may run pipelines on them. GitLab's rule: when several rules match, the
//! most permissive wins. Knows nothing of HTTP.

use crate::auth::ProjectAccess;
use crate::context::Spur;
use crate::domain::{AccessLevel, ProtectedRef, RefKind};

/// The access levels a rule may name: no one, Developers + Maintainers, Maintainers.
pub const LEVELS: [u8; 3] = [0, 30, 40];

/// GitLab's description of an access level in a rule.
pub fn level_description(level: u8) -> &'static str {
    match level {
        0 => "No one",
        30 => "Developers + Maintainers",
        40 => "Maintainers",
        _ => "Administrators",
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters (`/` included).
pub fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The rules of `project_id` that cover the branch or tag `name`.
pub fn rules_for(spur: &Spur, project_id: u64, kind: RefKind, name: &str) -> Result<Vec<ProtectedRef>, String> {
    let all = spur.store.protected_refs(project_id).map_err(|e| e.to_string())?;
    Ok(all
        .into_iter()
        .filter(|r| r.kind == kind && matches(&r.name, name))
        .collect())
}

/// Whether the branch or tag is protected.
pub fn is_protected(spur: &Spur, project_id: u64, name: &str, tag: bool) -> Result<bool, String> {
    Ok(!rules_for(spur, project_id, kind(tag), name)?.is_empty())
}

fn kind(tag: bool) -> RefKind {
    if tag { RefKind::Tag } else { RefKind::Branch }
}

/// Whether a level admits the caller (0: no one; administrators count as Owner).
fn admits(level: u8, access: &ProjectAccess) -> bool {
    level != 0 && access.level.is_some_and(|l| l.as_number() >= level)
}

/// What a pipeline on a ref may do, from one read of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineRights {
    /// The ref is protected (protected variables reach it).
    pub protected: bool,
    /// The caller may run a pipeline there: on a protected branch, push or merge rights under
    /// some matching rule; on a protected tag, the right to create it.
    pub may_run: bool,
}

/// The caller's rights for a pipeline on the branch or tag `name`.
pub fn pipeline_rights(
    spur: &Spur,
    project_id: u64,
    name: &str,
    tag: bool,
    access: &ProjectAccess,
) -> Result<PipelineRights, String> {
    let rules = rules_for(spur, project_id, kind(tag), name)?;
    let may_run = rules.is_empty()
        || rules.iter().any(|r| {
            if tag {
                admits(r.create_access_level, access)
            } else {
                admits(r.push_access_level, access) || admits(r.merge_access_level, access)
            }
        });
    Ok(PipelineRights {
        protected: !rules.is_empty(),
        may_run,
    })
}

/// Whether the caller may change a pipeline (play, retry or cancel its jobs, retry or cancel
/// it; GitLab's `update_pipeline`, `update_build`, `cancel_pipeline`): Developer+, and on a
/// protected branch or tag the rights to run a pipeline there.
pub fn may_update_pipeline(
    spur: &Spur,
    pipeline: &crate::domain::Pipeline,
    access: &ProjectAccess,
) -> Result<bool, String> {
    if !access.at_least(AccessLevel::Developer) {
        return Ok(false);
    }
    Ok(pipeline_rights(spur, pipeline.project_id, &pipeline.ref_name, pipeline.tag, access)?.may_run)
}

/// Whether the caller may read a pipeline's variables (GitLab's `read_pipeline_variable`):
/// Maintainers, or the user who created it while they may still update it.
pub fn may_read_pipeline_variables(
    spur: &Spur,
    pipeline: &crate::domain::Pipeline,
    user_id: u64,
    access: &ProjectAccess,
) -> Result<bool, String> {
    if access.at_least(AccessLevel::Maintainer) {
        return Ok(true);
    }
    Ok(pipeline.user_id == user_id && may_update_pipeline(spur, pipeline, access)?)
}

/// What a push may do to one ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefUpdate {
    /// A new branch or tag.
    Create,
    /// A branch moving (fast-forward or not).
    Update,
    /// Removing a branch or tag.
    Delete,
}

/// Whether the caller may make this change to a ref: Developer+ anywhere unprotected; on a
/// protected branch, push rights under some rule (deleting needs Maintainer); protected tags may
/// be created by those the rule names, deleted by Maintainers, and never moved.
pub fn may_push(
    spur: &Spur,
    project_id: u64,
    name: &str,
    tag: bool,
    update: RefUpdate,
    access: &ProjectAccess,
) -> Result<bool, String> {
    if !access.at_least(AccessLevel::Developer) {
        return Ok(false);
    }
    let rules = rules_for(spur, project_id, kind(tag), name)?;
    if rules.is_empty() {
        return Ok(true);
    }
    Ok(match (tag, update) {
        (true, RefUpdate::Create) => rules.iter().any(|r| admits(r.create_access_level, access)),
        // GitLab: only a project Maintainer or Owner can delete a protected tag; none moves one.
        (true, RefUpdate::Delete) => access.at_least(AccessLevel::Maintainer),
        (true, RefUpdate::Update) => false,
        (false, RefUpdate::Delete) => access.at_least(AccessLevel::Maintainer),
        (false, _) => rules.iter().any(|r| admits(r.push_access_level, access)),
    })
}

/// Adds a rule; `None` if one with that kind and name exists.
pub async fn create_protected_ref(
    spur: &Spur,
    rule: crate::domain::ProtectedRef,
) -> Result<Option<crate::domain::ProtectedRef>, crate::storage::Error> {
    spur.store.create_protected_ref(rule).await
}

/// Changes a rule's levels and force-push flag; `None` if there is no such rule.
pub async fn update_protected_ref(
    spur: &Spur,
    rule: crate::domain::ProtectedRef,
) -> Result<Option<crate::domain::ProtectedRef>, crate::storage::Error> {
    spur.store.update_protected_ref(rule).await
}

/// Removes a rule; false if there was none.
pub async fn delete_protected_ref(
    spur: &Spur,
    project_id: u64,
    kind: crate::domain::RefKind,
    name: String,
) -> Result<bool, crate::storage::Error> {
    spur.store.delete_protected_ref(project_id, kind, name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_any_run_of_characters() {
        for (pattern, name, want) in [
            ("main", "main", true),
            ("main", "main2", false),
            ("release/*", "release/1.0", true),
            ("release/*", "release/", true),
            ("release/*", "releases/1", false),
            ("*-stable", "13-stable", true),
            ("*-stable", "stable", false),
            ("v*.*", "v1.2", true),
            ("v*.*", "v12", false),
            ("*", "anything/at/all", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
        ] {
            assert_eq!(matches(pattern, name), want, "{pattern} ~ {name}");
        }
    }
}

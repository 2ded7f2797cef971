//! Trigger tokens as the API and the UI manage them: creating one (a fresh `glptt-` token, sealed
//! and digested), GitLab's visibility rule (only the owner who is Maintainer+ sees the full
//! token), and the short form everyone else sees. Knows nothing of HTTP.

use crate::auth::ProjectAccess;
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, Millis, Project, Trigger, User};
use crate::secrets;
use crate::storage::NewTrigger;

/// GitLab's prefix of trigger tokens.
pub const TOKEN_PREFIX: &str = "glptt-";

/// Why a trigger token was not created.
#[derive(Debug)]
pub enum CreateError {
    /// `expires_at` is not before a year from now (GitLab's rule; the text is GitLab's).
    ExpiresTooLate(String),
    /// A ref pattern or an allowed key is unusable (the field and why).
    InvalidScope(&'static str, String),
    /// Something inside spur failed.
    Internal(String),
}

/// Most ref patterns, and most allowed keys, one token keeps.
pub const MAX_SCOPE_ENTRIES: usize = 100;

/// What a token may run: ref patterns (empty: any ref) and allowed variable and input keys
/// (`None`: any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Ref patterns (`main`, `release/*`, `v*`).
    pub ref_patterns: Vec<String>,
    /// Variable and input keys.
    pub allowed_variables: Option<Vec<String>>,
}

/// Checks a scope: patterns are ref names where `*` may stand for any run of characters; keys
/// are variable keys.
pub fn check_scope(scope: &Scope) -> Result<(), CreateError> {
    if scope.ref_patterns.len() > MAX_SCOPE_ENTRIES {
        return Err(CreateError::InvalidScope(
            "ref_patterns",
            format!("has more than {MAX_SCOPE_ENTRIES} entries"),
        ));
    }
    for p in &scope.ref_patterns {
        let sample = p.replace('*', "x");
        // No commas: the settings form lists patterns comma-separated.
        if p.len() > 255 || p.contains(',') || !crate::git::valid_ref_name(&format!("refs/heads/{sample}")) {
            return Err(CreateError::InvalidScope(
                "ref_patterns",
                format!("'{p}' is not a ref name or pattern"),
            ));
        }
    }
    if let Some(keys) = &scope.allowed_variables {
        if keys.len() > MAX_SCOPE_ENTRIES {
            return Err(CreateError::InvalidScope(
                "allowed_variables",
                format!("has more than {MAX_SCOPE_ENTRIES} entries"),
            ));
        }
        if let Some(bad) = keys.iter().find(|k| !crate::domain::is_valid_variable_key(k)) {
            return Err(CreateError::InvalidScope(
                "allowed_variables",
                format!("'{bad}' is not a variable key"),
            ));
        }
    }
    Ok(())
}

/// Why a token may not run this request (a 400 naming the ref or key), if it may not.
pub fn scope_refusal(trigger: &Trigger, ref_name: &str, keys: &[&str]) -> Option<String> {
    let short = ref_name
        .strip_prefix("refs/heads/")
        .or_else(|| ref_name.strip_prefix("refs/tags/"))
        .unwrap_or(ref_name);
    if !trigger.ref_patterns.is_empty()
        && !trigger
            .ref_patterns
            .iter()
            .any(|p| crate::protected_refs::matches(p, short))
    {
        return Some(format!("Ref '{short}' is not allowed for this trigger token"));
    }
    let allowed = trigger.allowed_variables.as_ref()?;
    keys.iter()
        .find(|k| !allowed.iter().any(|a| a == *k))
        .map(|k| format!("Variable '{k}' is not allowed for this trigger token"))
}

/// Creates a trigger token owned by `owner`; returns the record and the token (shown once to
/// the API caller, and later only to its owner).
pub async fn create(
    spur: &Spur,
    project: &Project,
    owner: &User,
    description: Option<String>,
    expires_at: Option<Millis>,
    scope: Scope,
) -> Result<(Trigger, String), CreateError> {
    check_scope(&scope)?;
    let now = clock::now();
    let limit = now + 365 * clock::DAY;
    if expires_at.is_some_and(|t| t >= limit) {
        return Err(CreateError::ExpiresTooLate(format!(
            "must be before {}",
            clock::date(limit)
        )));
    }
    let internal = |e: String| CreateError::Internal(e);
    let token = secrets::new_token(TOKEN_PREFIX).map_err(|e| internal(e.to_string()))?;
    let new = NewTrigger {
        project_id: project.id,
        owner_id: owner.id,
        description,
        token_sealed: spur
            .secrets
            .seal(token.as_bytes())
            .map_err(|e| internal(e.to_string()))?,
        token_digest: spur.secrets.digest(&token),
        short_token: short_token(&token),
        expires_at,
        ref_patterns: scope.ref_patterns,
        allowed_variables: scope.allowed_variables,
        now,
    };
    let trigger = spur
        .store
        .create_trigger(new)
        .await
        .map_err(|e| internal(e.to_string()))?;
    tracing::info!(
        project_id = project.id,
        trigger_id = trigger.id,
        "trigger token created"
    );
    Ok((trigger, token))
}

/// Whether `viewer` (with `access` to the project) may see `trigger`'s full token: its owner,
/// while a Maintainer or Owner (GitLab's `admin_trigger`).
pub fn may_see_full(trigger: &Trigger, viewer: &User, access: &ProjectAccess) -> bool {
    trigger.owner_id == viewer.id && access.at_least(AccessLevel::Maintainer)
}

/// The full token, unsealed, if `viewer` may see it.
pub fn full_token(
    spur: &Spur,
    trigger: &Trigger,
    viewer: &User,
    access: &ProjectAccess,
) -> Result<Option<String>, String> {
    if !may_see_full(trigger, viewer, access) {
        return Ok(None);
    }
    let plain = spur.secrets.unseal(&trigger.token_sealed).map_err(|e| e.to_string())?;
    String::from_utf8(plain).map(Some).map_err(|e| e.to_string())
}

/// The four characters after the prefix, which anyone allowed to list tokens may see.
pub fn short_token(token: &str) -> String {
    token
        .strip_prefix(TOKEN_PREFIX)
        .unwrap_or(token)
        .chars()
        .take(4)
        .collect()
}

/// Whether the owner can still run pipelines (else GitLab shows the token as `invalid`).
pub fn owner_can_run(spur: &Spur, trigger: &Trigger, project: &Project) -> bool {
    let Ok(Some(owner)) = spur.store.user(trigger.owner_id) else {
        return false;
    };
    crate::auth::project_access(&spur.store, Some(&owner), project, clock::now())
        .is_ok_and(|a| !owner.blocked && a.at_least(AccessLevel::Developer))
}

/// Deletes a trigger for good; its token never works again. With `unmodified_since`, refuses
/// (`Refusal::Taken("updated_at")`) if the trigger changed after that time.
pub async fn delete_trigger(
    spur: &Spur,
    id: u64,
    unmodified_since: Option<crate::domain::Millis>,
) -> Result<Result<(), crate::storage::Refusal>, crate::storage::Error> {
    spur.store.delete_trigger(id, unmodified_since).await
}

/// Sets what a trigger may run (`None`: unchanged).
pub async fn update_trigger_scope(
    spur: &Spur,
    trigger: &Trigger,
    ref_patterns: Option<Vec<String>>,
    allowed_variables: Option<Option<Vec<String>>>,
) -> Result<Result<Trigger, crate::storage::Refusal>, CreateError> {
    let scope = Scope {
        ref_patterns: ref_patterns.clone().unwrap_or_else(|| trigger.ref_patterns.clone()),
        allowed_variables: allowed_variables
            .clone()
            .unwrap_or_else(|| trigger.allowed_variables.clone()),
    };
    check_scope(&scope)?;
    let updated = spur
        .store
        .update_trigger_scope(trigger.id, ref_patterns, allowed_variables, clock::now())
        .await
        .map_err(|e| CreateError::Internal(e.to_string()))?;
    tracing::info!(
        project_id = trigger.project_id,
        trigger_id = trigger.id,
        "trigger token scope changed"
    );
    Ok(updated)
}

/// The longest grace period a rotated token may keep working (a week).
pub const MAX_GRACE_SECS: u64 = 7 * 24 * 3600;

/// Gives a trigger a fresh token and retires the old one in the same commit, at once or after
/// `grace_secs` (at most [`MAX_GRACE_SECS`]); answers the record and the new token (shown once).
pub async fn rotate(spur: &Spur, trigger: &Trigger, grace_secs: u64) -> Result<Option<(Trigger, String)>, CreateError> {
    let internal = |e: String| CreateError::Internal(e);
    let token = secrets::new_token(TOKEN_PREFIX).map_err(|e| internal(e.to_string()))?;
    let sealed = spur
        .secrets
        .seal(token.as_bytes())
        .map_err(|e| internal(e.to_string()))?;
    let rotated = spur
        .store
        .rotate_trigger(
            trigger.id,
            sealed,
            spur.secrets.digest(&token),
            short_token(&token),
            clock::now(),
            (grace_secs > 0).then(|| clock::now() + grace_secs.min(MAX_GRACE_SECS) as i64 * 1000),
        )
        .await
        .map_err(|e| internal(e.to_string()))?;
    match rotated {
        Ok(t) => {
            tracing::info!(project_id = t.project_id, trigger_id = t.id, "trigger token rotated");
            Ok(Some((t, token)))
        }
        Err(_) => Ok(None),
    }
}

/// Sets a trigger's description.
pub async fn update_trigger_description(
    spur: &Spur,
    id: u64,
    description: Option<String>,
    now: crate::domain::Millis,
) -> Result<Result<crate::domain::Trigger, crate::storage::Refusal>, crate::storage::Error> {
    spur.store.update_trigger_description(id, description, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tokens() {
        assert_eq!(short_token("glptt-1234567890abcdef"), "1234");
        assert_eq!(short_token("abcd5678"), "abcd");
    }
}

//! Credentials and policy: password hashing, personal access token authentication, and the
//! access level a user holds on a project. Knows nothing of HTTP: the `http` layer turns headers
//! into a token string and asks here.

use crate::domain::{AccessLevel, Project, TokenScope, User, Visibility};
use crate::secrets::Secrets;
use crate::storage::{Error, Store};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// An authenticated caller of the API.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user the credential belongs to.
    pub user: User,
    /// What the credential may do.
    pub scopes: Vec<TokenScope>,
    /// For a `CI_JOB_TOKEN`: the job's project, whose allowlists decide what it may read.
    pub job_project: Option<u64>,
    /// The personal access token used, if that is the credential.
    pub token_id: Option<u64>,
}

impl Actor {
    /// Whether the credential may change things (the `api` scope).
    pub fn can_write(&self) -> bool {
        self.scopes.contains(&TokenScope::Api)
    }
}

/// Why a presented token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token has this value.
    Invalid,
    /// The token has expired.
    Expired,
    /// The token was revoked.
    Revoked,
    /// The token's user is blocked or gone.
    Blocked,
}

/// Finds the user a personal access token belongs to. The lookup is by keyed digest, so its
/// timing says nothing about the token's value.
pub fn authenticate(
    store: &Store,
    secrets: &Secrets,
    token: &str,
    now: i64,
) -> Result<Result<Actor, AuthFailure>, Error> {
    let digest = secrets.digest(token);
    let Some(pat) = store.personal_access_token(&digest)? else {
        return Ok(Err(AuthFailure::Invalid));
    };
    if pat.revoked {
        return Ok(Err(AuthFailure::Revoked));
    }
    if pat.expires_at.is_some_and(|t| t <= now) {
        return Ok(Err(AuthFailure::Expired));
    }
    match store.user(pat.user_id)? {
        Some(user) if !user.blocked => Ok(Ok(Actor {
            user,
            scopes: pat.scopes,
            job_project: None,
            token_id: Some(pat.id),
        })),
        _ => Ok(Err(AuthFailure::Blocked)),
    }
}

/// Hashes a password with Argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash password: {e}"))
}

/// The stored hash of a password being hashed: root's on a first start, until its hash (argon2,
/// tens of milliseconds) is written, which happens while spur already answers. No password
/// matches it; sign-in waits for the real one (`session`).
pub const PASSWORD_BEING_SET: &str = "!being-set";

/// Checks a password against its stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// Checks a sign-in: `user`'s password, and for an unknown user a stand-in hash with the same
/// cost, so that the answer takes as long whether or not the user exists. Blocked users fail.
pub fn verify_sign_in(password: &str, user: Option<&User>) -> bool {
    static STAND_IN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    match user {
        Some(u) => verify_password(password, &u.password_hash) && !u.blocked,
        None => {
            let hash = STAND_IN.get_or_init(|| hash_password("spur: no such user").unwrap_or_default());
            let _ = verify_password(password, hash);
            false
        }
    }
}

/// What a user (or an anonymous caller) may do on one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectAccess {
    /// The caller's role: membership, group membership, namespace ownership; admins count as Owner.
    pub level: Option<AccessLevel>,
    /// Whether the caller may see the project at all.
    pub can_read: bool,
}

impl ProjectAccess {
    /// Whether the caller holds at least `level`.
    pub fn at_least(&self, level: AccessLevel) -> bool {
        self.level.is_some_and(|l| l >= level)
    }

    /// Whether the caller may grant, change or remove a membership at `level`: Maintainers
    /// manage members up to Maintainer; only Owners (and admins) touch Owners.
    pub fn may_manage_member(&self, level: AccessLevel) -> bool {
        self.at_least(AccessLevel::Maintainer) && (level != AccessLevel::Owner || self.at_least(AccessLevel::Owner))
    }
}

/// A user's membership of a group, unless it has expired (expired members have no access).
pub fn live_group_member(
    store: &Store,
    group_id: u64,
    user_id: u64,
    now: i64,
) -> Result<Option<crate::domain::Membership>, Error> {
    Ok(store
        .group_member(group_id, user_id)?
        .filter(|m| m.expires_at.is_none_or(|t| t > now)))
}

/// Whether a running job's `CI_JOB_TOKEN` may read `project`'s code and artifacts: never more
/// than the job's user may (Reporter+, or any user who sees a public or internal project), and
/// only from the project itself or a project its allowlist admits (GitLab's job token rules).
pub fn job_token_reads_code(
    store: &Store,
    job: &crate::domain::Job,
    project: &Project,
    now: i64,
) -> Result<bool, Error> {
    let user = store.user(job.user_id)?;
    let access = project_access(store, user.as_ref(), project, now)?;
    let reads_code =
        access.can_read && (access.at_least(AccessLevel::Reporter) || project.visibility != Visibility::Private);
    Ok(reads_code && (job.project_id == project.id || store.job_token_allowed(project.id, job.project_id)?))
}

/// The access `user` has on `project`.
pub fn project_access(store: &Store, user: Option<&User>, project: &Project, now: i64) -> Result<ProjectAccess, Error> {
    let level = match user {
        None => None,
        Some(u) if u.blocked => None,
        Some(u) if u.admin => Some(AccessLevel::Owner),
        Some(u) => member_level(store, u, project, now)?,
    };
    let can_read = level.is_some()
        || project.visibility == Visibility::Public
        || (project.visibility == Visibility::Internal && user.is_some_and(|u| !u.blocked));
    Ok(ProjectAccess { level, can_read })
}

fn member_level(store: &Store, user: &User, project: &Project, now: i64) -> Result<Option<AccessLevel>, Error> {
    if user.namespace_id == project.namespace_id {
        return Ok(Some(AccessLevel::Owner));
    }
    let live = |m: Option<crate::domain::Membership>| {
        m.filter(|m| m.expires_at.is_none_or(|t| t > now))
            .map(|m| m.access_level)
    };
    let direct = live(store.project_member(project.id, user.id)?);
    let group = live(store.group_member(project.namespace_id, user.id)?);
    Ok(direct.max(group))
}

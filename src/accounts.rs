//! User accounts and personal access tokens as the API and the UI create them: GitLab's
//! validation, Argon2id hashing off the async threads, `glpat-` tokens stored only as keyed
//! digests. Knows nothing of HTTP; refusals are values.

use crate::auth;
use crate::clock;
use crate::context::Spur;
use crate::domain::{Millis, PersonalAccessToken, TokenScope, User, is_valid_path};
use crate::secrets;
use crate::storage::{NewUser, Refusal};

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Login name (a path).
    pub username: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Password (at least 8 characters); random when absent.
    pub password: Option<String>,
    /// Whether an administrator.
    pub admin: bool,
}

/// Why an account or token was not created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountRefusal {
    /// An attribute is invalid (the attribute, GitLab's text).
    Invalid(&'static str, String),
    /// The username or e-mail is taken (GitLab's text).
    Taken(&'static str),
}

/// GitLab's e-mail check: an `@`, no surrounding spaces.
fn check_email(email: &str) -> Result<(), AccountRefusal> {
    if email.contains('@') && email.trim() == email {
        Ok(())
    } else {
        Err(AccountRefusal::Invalid("email", "is invalid".into()))
    }
}

/// GitLab's minimum password length.
fn check_password(password: &str) -> Result<(), AccountRefusal> {
    if password.chars().count() >= 8 {
        Ok(())
    } else {
        Err(AccountRefusal::Invalid(
            "password",
            "is too short (minimum is 8 characters)".into(),
        ))
    }
}

/// Creates a user.
pub async fn create_user(spur: &Spur, new: NewAccount) -> Result<Result<User, AccountRefusal>, String> {
    if !is_valid_path(&new.username) {
        let rule = "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or end in '.', '.git' or '.atom'.";
        return Ok(Err(AccountRefusal::Invalid("username", rule.into())));
    }
    if crate::domain::is_reserved_namespace_path(&new.username) {
        return Ok(Err(AccountRefusal::Invalid(
            "username",
            format!("{} is a reserved name", new.username),
        )));
    }
    if let Err(r) = check_email(&new.email).and(new.password.as_deref().map_or(Ok(()), check_password)) {
        return Ok(Err(r));
    }
    let password = match new.password {
        Some(p) => p,
        None => secrets::hex(&secrets::random_array::<16>().map_err(|e| e.to_string())?),
    };
    let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| e.to_string())??;
    let record = NewUser {
        username: new.username,
        name: new.name,
        email: new.email,
        password_hash,
        admin: new.admin,
        now: clock::now(),
    };
    Ok(match spur.store.create_user(record).await.map_err(|e| e.to_string())? {
        Ok(user) => Ok(user),
        Err(Refusal::Taken("email")) => Err(AccountRefusal::Taken("Email has already been taken")),
        Err(_) => Err(AccountRefusal::Taken("Username has already been taken")),
    })
}

/// Creates a personal access token for `user_id`; the token is returned once, never stored.
pub async fn create_token(
    spur: &Spur,
    user_id: u64,
    name: String,
    scopes: Vec<TokenScope>,
    expires_at: Option<Millis>,
) -> Result<Result<(PersonalAccessToken, String), AccountRefusal>, String> {
    let now = clock::now();
    if expires_at.is_some_and(|t| t < now - clock::DAY) {
        return Ok(Err(AccountRefusal::Invalid(
            "expires_at",
            "must not be in the past".into(),
        )));
    }
    if scopes.is_empty() {
        return Ok(Err(AccountRefusal::Invalid("scopes", "can't be blank".into())));
    }
    let token = secrets::new_token("glpat-").map_err(|e| e.to_string())?;
    let digest = spur.secrets.digest(&token);
    let pat = spur
        .store
        .create_personal_access_token(digest, user_id, name, scopes, expires_at, now)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Ok((pat, token)))
}

/// The file holding root's generated first credentials.
pub const ROOT_CREDENTIALS: &str = "initial_root_credentials";
/// How long that file is kept (GitLab's rule for `initial_root_password`).
const ROOT_CREDENTIALS_SECS: u64 = 24 * 3600;

/// Deletes root's first credentials once they are 24 hours old; called at start and hourly.
pub fn remove_stale_root_credentials(data_dir: &std::path::Path) {
    let path = data_dir.join(ROOT_CREDENTIALS);
    let age = std::fs::symlink_metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    if age.is_some_and(|a| a.as_secs() >= ROOT_CREDENTIALS_SECS) {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(path = %path.display(), "deleted root's first credentials (24 hours old)"),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot delete root's first credentials"),
        }
    }
}

/// Creates a group whose creator is its Owner.
pub async fn create_group(
    spur: &Spur,
    new: crate::storage::NewGroup,
) -> Result<Result<crate::domain::Namespace, crate::storage::Refusal>, crate::storage::Error> {
    spur.store.create_group(new).await
}

/// What an administrator may change of a user (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// The display name.
    pub name: Option<String>,
    /// The e-mail address.
    pub email: Option<String>,
    /// A new password (8 characters or more).
    pub password: Option<String>,
    /// The administrator flag.
    pub admin: Option<bool>,
}

/// Changes a user, with `create_user`'s checks.
pub async fn update_user(spur: &Spur, id: u64, change: UserChange) -> Result<Result<User, AccountRefusal>, String> {
    let checked = change.email.as_deref().map_or(Ok(()), check_email);
    if let Err(r) = checked.and(change.password.as_deref().map_or(Ok(()), check_password)) {
        return Ok(Err(r));
    }
    let password_hash = match change.password {
        Some(p) => Some(
            tokio::task::spawn_blocking(move || auth::hash_password(&p))
                .await
                .map_err(|e| e.to_string())??,
        ),
        None => None,
    };
    let updated = spur
        .store
        .update_user(id, change.name, change.email, password_hash)
        .await
        .map_err(|e| e.to_string())?;
    let user = match updated {
        Ok(user) => user,
        Err(Refusal::Taken(_)) => return Ok(Err(AccountRefusal::Taken("Email has already been taken"))),
        Err(_) => return Ok(Err(AccountRefusal::Invalid("user", "not found".into()))),
    };
    if change.admin.is_some() {
        return Ok(
            match set_user_flags(spur, id, None, change.admin)
                .await
                .map_err(|e| e.to_string())?
            {
                Ok(u) => Ok(u),
                Err(_) => Err(AccountRefusal::Invalid("user", "not found".into())),
            },
        );
    }
    Ok(Ok(user))
}

/// Rotates a personal access token: the old one stops working and a new one with its name
/// and scopes, expiring at `expires_at` (a week from now by default, as GitLab), is returned
/// once.
pub async fn rotate_token(
    spur: &Spur,
    id: u64,
    expires_at: Option<Millis>,
) -> Result<Result<(PersonalAccessToken, String), AccountRefusal>, String> {
    let now = clock::now();
    if expires_at.is_some_and(|t| t < now - clock::DAY) {
        return Ok(Err(AccountRefusal::Invalid(
            "expires_at",
            "must not be in the past".into(),
        )));
    }
    if expires_at.is_some_and(|t| t > now + 366 * clock::DAY) {
        return Ok(Err(AccountRefusal::Invalid(
            "expires_at",
            "must be within a year".into(),
        )));
    }
    let expires_at = expires_at.unwrap_or(now + 7 * clock::DAY);
    let token = secrets::new_token("glpat-").map_err(|e| e.to_string())?;
    let digest = spur.secrets.digest(&token);
    match spur
        .store
        .rotate_personal_access_token(id, digest, Some(expires_at), now)
        .await
        .map_err(|e| e.to_string())?
    {
        Ok(pat) => Ok(Ok((pat, token))),
        Err(_) => Ok(Err(AccountRefusal::Invalid("token", "is not active".into()))),
    }
}

/// Revokes a personal access token for good.
pub async fn revoke_personal_access_token(
    spur: &Spur,
    id: u64,
) -> Result<Result<(), crate::storage::Refusal>, crate::storage::Error> {
    spur.store.revoke_personal_access_token(id).await
}

/// Sets a user's blocked and admin flags; blocking ends the user's browser sessions.
pub async fn set_user_flags(
    spur: &Spur,
    id: u64,
    blocked: Option<bool>,
    admin: Option<bool>,
) -> Result<Result<crate::domain::User, crate::storage::Refusal>, crate::storage::Error> {
    spur.store.set_user_flags(id, blocked, admin).await
}

/// Records a session.
pub async fn create_session(
    spur: &Spur,
    digest: Vec<u8>,
    session: crate::domain::Session,
) -> Result<(), crate::storage::Error> {
    spur.store.create_session(digest, session).await
}

/// Ends a session (sign-out, or found expired).
pub async fn delete_session(spur: &Spur, digest: Vec<u8>) -> Result<(), crate::storage::Error> {
    spur.store.delete_session(digest).await
}

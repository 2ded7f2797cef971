//! Users, roles, personal access tokens and browser sessions.

use super::*;
use serde::{Deserialize, Serialize};

/// A GitLab access level on a project or group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccessLevel {
    /// 10: may see a private project, not its code.
    Guest,
    /// 20: may read code and pipelines.
    Reporter,
    /// 30: may run pipelines and push.
    Developer,
    /// 40: may manage CI/CD settings and trigger tokens.
    Maintainer,
    /// 50: may delete the project and manage owners.
    Owner,
}

impl AccessLevel {
    /// The level's number as GitLab's API spells it.
    pub fn as_number(self) -> u8 {
        match self {
            AccessLevel::Guest => 10,
            AccessLevel::Reporter => 20,
            AccessLevel::Developer => 30,
            AccessLevel::Maintainer => 40,
            AccessLevel::Owner => 50,
        }
    }

    /// The role's name as GitLab's UI shows it.
    pub fn name(self) -> &'static str {
        match self {
            AccessLevel::Guest => "Guest",
            AccessLevel::Reporter => "Reporter",
            AccessLevel::Developer => "Developer",
            AccessLevel::Maintainer => "Maintainer",
            AccessLevel::Owner => "Owner",
        }
    }

    /// The level for one of GitLab's numbers, if it is one a member may hold.
    pub fn from_number(n: i64) -> Option<AccessLevel> {
        Some(match n {
            10 => AccessLevel::Guest,
            20 => AccessLevel::Reporter,
            30 => AccessLevel::Developer,
            40 => AccessLevel::Maintainer,
            50 => AccessLevel::Owner,
            _ => return None,
        })
    }
}

/// A user account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    /// Numeric id, never reused.
    pub id: u64,
    /// Unique login name; also the path of the user's own namespace.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Unique e-mail address.
    pub email: String,
    /// Argon2id PHC string; never the password itself.
    pub password_hash: String,
    /// Instance administrators may do everything.
    pub admin: bool,
    /// Blocked users cannot authenticate and their trigger tokens stop working.
    pub blocked: bool,
    /// The id of the user's personal namespace.
    pub namespace_id: u64,
    /// When the account was created.
    pub created_at: Millis,
}

/// Scope of a personal access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenScope {
    /// Full read and write access to the API.
    Api,
    /// Read-only access to the API.
    ReadApi,
}

impl TokenScope {
    /// GitLab's name for the scope.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Api => "api",
            TokenScope::ReadApi => "read_api",
        }
    }

    /// Parses GitLab's name for a scope spur supports.
    pub fn parse(s: &str) -> Option<TokenScope> {
        match s {
            "api" => Some(TokenScope::Api),
            "read_api" => Some(TokenScope::ReadApi),
            _ => None,
        }
    }
}

/// A personal access token's metadata; the secret itself is never stored, only its digest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PersonalAccessToken {
    /// Numeric id.
    pub id: u64,
    /// The user the token acts as.
    pub user_id: u64,
    /// A name to recognise the token by.
    pub name: String,
    /// What the token may do.
    pub scopes: Vec<TokenScope>,
    /// Revoked tokens never work again.
    pub revoked: bool,
    /// Creation time.
    pub created_at: Millis,
    /// The token stops working at the start of this day (UTC), if set.
    pub expires_at: Option<Millis>,
}

/// A signed-in browser session. Stored under a digest of its id; the id lives only in the
/// browser's cookie.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    /// Who signed in.
    pub user_id: u64,
    /// The CSRF token every form of this session carries (`authenticity_token`).
    pub csrf_token: String,
    /// When the session began.
    pub created_at: Millis,
    /// When it ends.
    pub expires_at: Millis,
}

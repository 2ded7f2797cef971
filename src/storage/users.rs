//! Users, their personal access tokens, and namespaces (users' own and groups).

use super::codec::{all_json, encode, get_json};
use super::tables::{EMAILS, GROUP_MEMBERS, NAMESPACE_PATHS, NAMESPACES, PAT_IDS, PATS, USERNAMES, USERS};
use super::{Error, Refusal, Store, next_id};
use crate::domain::{
    AccessLevel, Membership, Millis, Namespace, NamespaceKind, PersonalAccessToken, TokenScope, User, Visibility,
};
use redb::{ReadableTable, WriteTransaction};

/// What is needed to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Unique login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Unique e-mail.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Administrator flag.
    pub admin: bool,
    /// Creation time.
    pub now: Millis,
}

/// What is needed to create a group.
#[derive(Debug, Clone)]
pub struct NewGroup {
    /// Display name.
    pub name: String,
    /// Unique path.
    pub path: String,
    /// Who may see it.
    pub visibility: Visibility,
    /// Free text.
    pub description: String,
    /// The creator, who becomes its Owner.
    pub creator_id: u64,
    /// Creation time.
    pub now: Millis,
}

impl Store {
    /// Creates a user and the user's own namespace.
    pub async fn create_user(&self, new: NewUser) -> Result<Result<User, Refusal>, Error> {
        self.write(move |tx| create_user_in(tx, new)).await
    }

    /// The user with `id`.
    pub fn user(&self, id: u64) -> Result<Option<User>, Error> {
        self.read(|tx| get_json(&tx.open_table(USERS)?, id))
    }

    /// The user with `username` (case-insensitive).
    pub fn user_by_username(&self, username: &str) -> Result<Option<User>, Error> {
        let key = username.to_lowercase();
        self.read(|tx| {
            let Some(id) = tx.open_table(USERNAMES)?.get(key.as_str())?.map(|g| g.value()) else {
                return Ok(None);
            };
            get_json(&tx.open_table(USERS)?, id)
        })
    }

    /// Every user, by id.
    pub fn users(&self) -> Result<Vec<User>, Error> {
        self.read(|tx| all_json(&tx.open_table(USERS)?))
    }

    /// Sets a user's blocked and admin flags; blocking ends the user's browser sessions.
    pub async fn set_user_flags(
        &self,
        id: u64,
        blocked: Option<bool>,
        admin: Option<bool>,
    ) -> Result<Result<User, Refusal>, Error> {
        self.write(move |tx| {
            let mut users = tx.open_table(USERS)?;
            let Some(mut user) = get_json::<_, User>(&users, id)? else {
                return Ok(Err(Refusal::NotFound));
            };
            if let Some(b) = blocked {
                user.blocked = b;
            }
            if blocked == Some(true) {
                // Blocking ends every browser session: an unblocked user signs in again.
                let mut sessions = tx.open_table(super::tables::SESSIONS)?;
                let mut ended = Vec::new();
                for entry in sessions.iter()? {
                    let (digest, bytes) = entry?;
                    let session: crate::domain::Session = super::codec::decode(bytes.value())?;
                    if session.user_id == id {
                        ended.push(digest.value().to_vec());
                    }
                }
                for digest in &ended {
                    sessions.remove(digest.as_slice())?;
                }
            }
            if let Some(a) = admin {
                user.admin = a;
            }
            users.insert(id, encode(&user)?.as_slice())?;
            Ok(Ok(user))
        })
        .await
    }

    /// Stores a new personal access token under `digest`.
    pub async fn create_personal_access_token(
        &self,
        digest: [u8; 32],
        user_id: u64,
        name: String,
        scopes: Vec<TokenScope>,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Result<PersonalAccessToken, Error> {
        self.write(move |tx| {
            let pat = PersonalAccessToken {
                id: next_id(tx, "next_pat_id")?,
                user_id,
                name,
                scopes,
                revoked: false,
                created_at: now,
                expires_at,
            };
            tx.open_table(PATS)?
                .insert(digest.as_slice(), encode(&pat)?.as_slice())?;
            tx.open_table(PAT_IDS)?.insert(pat.id, digest.as_slice())?;
            Ok(pat)
        })
        .await
    }

    /// Sets user `id`'s password hash to `hash` only if it is still `expected`, in one
    /// transaction; answers whether it did.
    pub async fn replace_password_hash(&self, id: u64, expected: &'static str, hash: String) -> Result<bool, Error> {
        self.write(move |tx| {
            let mut users = tx.open_table(USERS)?;
            let Some(mut user) = get_json::<_, User>(&users, id)? else {
                return Ok(false);
            };
            if user.password_hash != expected {
                return Ok(false);
            }
            user.password_hash = hash;
            users.insert(id, encode(&user)?.as_slice())?;
            Ok(true)
        })
        .await
    }

    /// Changes a user's name, e-mail (unique, case-insensitive) and password hash; `None`
    /// leaves a field as it is.
    pub async fn update_user(
        &self,
        id: u64,
        name: Option<String>,
        email: Option<String>,
        password_hash: Option<String>,
    ) -> Result<Result<User, Refusal>, Error> {
        self.write(move |tx| {
            let mut users = tx.open_table(USERS)?;
            let Some(mut user) = get_json::<_, User>(&users, id)? else {
                return Ok(Err(Refusal::NotFound));
            };
            if let Some(email) = email {
                let (old_key, new_key) = (user.email.to_lowercase(), email.to_lowercase());
                if new_key != old_key {
                    let mut emails = tx.open_table(EMAILS)?;
                    if emails.get(new_key.as_str())?.is_some() {
                        return Ok(Err(Refusal::Taken("email")));
                    }
                    emails.remove(old_key.as_str())?;
                    emails.insert(new_key.as_str(), id)?;
                }
                user.email = email;
            }
            if let Some(name) = name {
                user.name = name;
            }
            if let Some(hash) = password_hash {
                user.password_hash = hash;
            }
            users.insert(id, encode(&user)?.as_slice())?;
            Ok(Ok(user))
        })
        .await
    }

    /// Rotates token `id` in one transaction: it is revoked and a new one with its name and
    /// scopes is stored under `digest`; `Refusal::NotFound` unless it exists and is usable.
    pub async fn rotate_personal_access_token(
        &self,
        id: u64,
        digest: [u8; 32],
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Result<Result<PersonalAccessToken, Refusal>, Error> {
        self.write(move |tx| {
            let Some(old_digest) = tx.open_table(PAT_IDS)?.get(id)?.map(|g| g.value().to_vec()) else {
                return Ok(Err(Refusal::NotFound));
            };
            let mut pats = tx.open_table(PATS)?;
            let Some(mut old) = get_json::<_, PersonalAccessToken>(&pats, old_digest.as_slice())? else {
                return Ok(Err(Refusal::NotFound));
            };
            if old.revoked || old.expires_at.is_some_and(|t| t < now) {
                return Ok(Err(Refusal::NotFound));
            }
            old.revoked = true;
            pats.insert(old_digest.as_slice(), encode(&old)?.as_slice())?;
            let new = PersonalAccessToken {
                id: next_id(tx, "next_pat_id")?,
                user_id: old.user_id,
                name: old.name.clone(),
                scopes: old.scopes.clone(),
                revoked: false,
                created_at: now,
                expires_at,
            };
            pats.insert(digest.as_slice(), encode(&new)?.as_slice())?;
            drop(pats);
            tx.open_table(PAT_IDS)?.insert(new.id, digest.as_slice())?;
            Ok(Ok(new))
        })
        .await
    }

    /// Every personal access token, oldest first (for administrators).
    pub fn all_personal_access_tokens(&self) -> Result<Vec<PersonalAccessToken>, Error> {
        self.read(|tx| {
            let pats = tx.open_table(PATS)?;
            let mut out = Vec::new();
            for entry in tx.open_table(PAT_IDS)?.iter()? {
                let (_, digest) = entry?;
                if let Some(pat) = get_json::<_, PersonalAccessToken>(&pats, digest.value())? {
                    out.push(pat);
                }
            }
            Ok(out)
        })
    }

    /// The personal access token whose digest is `digest`.
    pub fn personal_access_token(&self, digest: &[u8; 32]) -> Result<Option<PersonalAccessToken>, Error> {
        self.read(|tx| get_json(&tx.open_table(PATS)?, digest.as_slice()))
    }

    /// The personal access token with `id`.
    pub fn personal_access_token_by_id(&self, id: u64) -> Result<Option<PersonalAccessToken>, Error> {
        self.read(|tx| {
            let Some(digest) = tx.open_table(PAT_IDS)?.get(id)?.map(|g| g.value().to_vec()) else {
                return Ok(None);
            };
            get_json(&tx.open_table(PATS)?, digest.as_slice())
        })
    }

    /// A user's personal access tokens, oldest first.
    pub fn user_personal_access_tokens(&self, user_id: u64) -> Result<Vec<PersonalAccessToken>, Error> {
        self.read(|tx| {
            let pats = tx.open_table(PATS)?;
            let mut out = Vec::new();
            for entry in tx.open_table(PAT_IDS)?.iter()? {
                let (_, digest) = entry?;
                if let Some(pat) = get_json::<_, PersonalAccessToken>(&pats, digest.value())?
                    && pat.user_id == user_id
                {
                    out.push(pat);
                }
            }
            Ok(out)
        })
    }

    /// Revokes a personal access token for good.
    pub async fn revoke_personal_access_token(&self, id: u64) -> Result<Result<(), Refusal>, Error> {
        self.write(move |tx| {
            let Some(digest) = tx.open_table(PAT_IDS)?.get(id)?.map(|g| g.value().to_vec()) else {
                return Ok(Err(Refusal::NotFound));
            };
            let mut pats = tx.open_table(PATS)?;
            let Some(mut pat) = get_json::<_, PersonalAccessToken>(&pats, digest.as_slice())? else {
                return Ok(Err(Refusal::NotFound));
            };
            pat.revoked = true;
            pats.insert(digest.as_slice(), encode(&pat)?.as_slice())?;
            Ok(Ok(()))
        })
        .await
    }

    /// The namespace with `id`.
    pub fn namespace(&self, id: u64) -> Result<Option<Namespace>, Error> {
        self.read(|tx| get_json(&tx.open_table(NAMESPACES)?, id))
    }

    /// The namespace at `path` (case-insensitive).
    pub fn namespace_by_path(&self, path: &str) -> Result<Option<Namespace>, Error> {
        let key = path.to_lowercase();
        self.read(|tx| {
            let Some(id) = tx.open_table(NAMESPACE_PATHS)?.get(key.as_str())?.map(|g| g.value()) else {
                return Ok(None);
            };
            get_json(&tx.open_table(NAMESPACES)?, id)
        })
    }

    /// Every group namespace, by id.
    pub fn groups(&self) -> Result<Vec<Namespace>, Error> {
        let all: Vec<Namespace> = self.read(|tx| all_json(&tx.open_table(NAMESPACES)?))?;
        Ok(all.into_iter().filter(|ns| ns.kind == NamespaceKind::Group).collect())
    }

    /// Creates a group whose creator is its Owner.
    pub async fn create_group(&self, new: NewGroup) -> Result<Result<Namespace, Refusal>, Error> {
        self.write(move |tx| {
            let key = new.path.to_lowercase();
            if tx.open_table(NAMESPACE_PATHS)?.get(key.as_str())?.is_some() {
                return Ok(Err(Refusal::Taken("path")));
            }
            let ns = Namespace {
                id: next_id(tx, "next_namespace_id")?,
                name: new.name,
                path: new.path,
                kind: NamespaceKind::Group,
                owner_id: new.creator_id,
                visibility: new.visibility,
                description: new.description,
                created_at: new.now,
            };
            insert_namespace(tx, &ns)?;
            let member = Membership {
                access_level: AccessLevel::Owner,
                created_at: new.now,
                expires_at: None,
            };
            tx.open_table(GROUP_MEMBERS)?
                .insert((ns.id, new.creator_id), encode(&member)?.as_slice())?;
            Ok(Ok(ns))
        })
        .await
    }

    /// A user's membership of a group, if any.
    pub fn group_member(&self, group_id: u64, user_id: u64) -> Result<Option<Membership>, Error> {
        self.read(|tx| get_json(&tx.open_table(GROUP_MEMBERS)?, (group_id, user_id)))
    }
}

fn insert_namespace(tx: &WriteTransaction, ns: &Namespace) -> Result<(), Error> {
    tx.open_table(NAMESPACES)?.insert(ns.id, encode(ns)?.as_slice())?;
    tx.open_table(NAMESPACE_PATHS)?
        .insert(ns.path.to_lowercase().as_str(), ns.id)?;
    Ok(())
}

fn create_user_in(tx: &WriteTransaction, new: NewUser) -> Result<Result<User, Refusal>, Error> {
    let username_key = new.username.to_lowercase();
    let email_key = new.email.to_lowercase();
    if tx.open_table(USERNAMES)?.get(username_key.as_str())?.is_some()
        || tx.open_table(NAMESPACE_PATHS)?.get(username_key.as_str())?.is_some()
    {
        return Ok(Err(Refusal::Taken("username")));
    }
    if tx.open_table(EMAILS)?.get(email_key.as_str())?.is_some() {
        return Ok(Err(Refusal::Taken("email")));
    }
    let id = next_id(tx, "next_user_id")?;
    let ns = Namespace {
        id: next_id(tx, "next_namespace_id")?,
        name: new.name.clone(),
        path: new.username.clone(),
        kind: NamespaceKind::User,
        owner_id: id,
        visibility: Visibility::Public,
        description: String::new(),
        created_at: new.now,
    };
    insert_namespace(tx, &ns)?;
    let user = User {
        id,
        username: new.username,
        name: new.name,
        email: new.email,
        password_hash: new.password_hash,
        admin: new.admin,
        blocked: false,
        namespace_id: ns.id,
        created_at: new.now,
    };
    tx.open_table(USERS)?.insert(id, encode(&user)?.as_slice())?;
    tx.open_table(USERNAMES)?.insert(username_key.as_str(), id)?;
    tx.open_table(EMAILS)?.insert(email_key.as_str(), id)?;
    Ok(Ok(user))
}

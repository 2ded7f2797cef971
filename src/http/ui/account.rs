//! The signed-in user's personal access tokens (create with scopes and expiry, shown once,
//! revoke) and the administrators' user list (create, block, make admin).

use super::{Layout, Posted, UiError, html, id_in_path, posted, redirect};
use crate::accounts::{self, AccountRefusal, NewAccount};
use crate::clock;
use crate::context::Spur;
use crate::domain::TokenScope;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

struct TokenRow {
    id: u64,
    name: String,
    scopes: String,
    created: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "personal_access_tokens.html")]
struct TokensPage {
    l: Layout,
    tokens: Vec<TokenRow>,
    new_token: Option<String>,
}

async fn tokens_page(
    req: &HttpRequest,
    spur: &Spur,
    visitor: &super::Visitor,
    new_token: Option<String>,
) -> Result<HttpResponse, UiError> {
    let user = visitor.signed_in()?;
    let now = clock::now();
    let tokens = spur
        .store
        .user_personal_access_tokens(user.id)?
        .into_iter()
        .filter(|t| !t.revoked && t.expires_at.is_none_or(|e| e > now))
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            scopes: t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            created: clock::date(t.created_at),
            expires: t.expires_at.map_or_else(|| "Never".into(), clock::date),
        })
        .collect();
    let l = Layout::new(req, visitor, "Personal access tokens");
    html(req, &TokensPage { l, tokens, new_token })
}

/// `GET /-/user_settings/personal_access_tokens`.
pub async fn tokens(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let visitor = super::session::visitor(&req, &spur).await?;
    tokens_page(&req, &spur, &visitor, None).await
}

/// `POST /-/user_settings/personal_access_tokens`: the new token is shown in this answer only.
pub async fn create_token(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let Posted { form, user } = posted(&req, &spur, payload).await?;
    let back = "/-/user_settings/personal_access_tokens";
    let name = form
        .get("personal_access_token[name]")
        .unwrap_or_default()
        .trim()
        .to_string();
    let scopes: Option<Vec<TokenScope>> = form
        .all("personal_access_token[scopes][]")
        .into_iter()
        .map(TokenScope::parse)
        .collect();
    let Some(scopes) = scopes else {
        return Err(UiError::BadRequest("Unknown scope.".into()));
    };
    let expires_at = match form.get("personal_access_token[expires_at]").filter(|d| !d.is_empty()) {
        None => None,
        Some(date) => {
            Some(clock::parse_datetime(date).ok_or_else(|| UiError::BadRequest("Expiration date is invalid.".into()))?)
        }
    };
    if name.is_empty() {
        return Ok(redirect(&req, back, Some(("alert", "Token name can't be blank"))));
    }
    match accounts::create_token(&spur, user.id, name, scopes, expires_at)
        .await
        .map_err(UiError::Internal)?
    {
        Ok((_, token)) => {
            let visitor = super::session::visitor(&req, &spur).await?;
            tokens_page(&req, &spur, &visitor, Some(token)).await
        }
        Err(AccountRefusal::Invalid(attr, text)) => {
            Ok(redirect(&req, back, Some(("alert", &format!("Token {attr} {text}")))))
        }
        Err(AccountRefusal::Taken(text)) => Ok(redirect(&req, back, Some(("alert", text)))),
    }
}

/// `POST /-/user_settings/personal_access_tokens/{id}/revoke`: the user's own tokens only.
pub async fn revoke_token(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let Posted { user, .. } = posted(&req, &spur, payload).await?;
    let id = id_in_path(&req, "id")?;
    let token = spur
        .store
        .personal_access_token_by_id(id)?
        .filter(|t| t.user_id == user.id)
        .ok_or(UiError::NotFound)?;
    crate::accounts::revoke_personal_access_token(&spur, token.id)
        .await?
        .map_err(|_| UiError::NotFound)?;
    let back = "/-/user_settings/personal_access_tokens";
    Ok(redirect(&req, back, Some(("notice", "Revoked personal access token."))))
}

struct UserRow {
    id: u64,
    name: String,
    username: String,
    email: String,
    admin: bool,
    blocked: bool,
    is_self: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    l: Layout,
    users: Vec<UserRow>,
    /// The New user form as sent, when it was refused (never the password).
    new_user: NewUserForm,
}

/// The New user form's values and the reason it was refused.
#[derive(Default)]
struct NewUserForm {
    name: String,
    username: String,
    email: String,
    admin: bool,
    /// The field at fault (`name`, `username`, `email`, `password`) and why.
    error: Option<(String, String)>,
}

/// `GET /admin/users` (administrators; others get 404).
pub async fn users(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    users_page(&req, &spur, NewUserForm::default()).await
}

async fn users_page(req: &HttpRequest, spur: &Spur, new_user: NewUserForm) -> Result<HttpResponse, UiError> {
    let visitor = super::session::visitor(req, spur).await?;
    let me = visitor.signed_in()?;
    if !me.admin {
        return Err(UiError::NotFound);
    }
    let users = spur
        .store
        .users()?
        .into_iter()
        .map(|u| UserRow {
            is_self: u.id == me.id,
            id: u.id,
            name: u.name,
            username: u.username,
            email: u.email,
            admin: u.admin,
            blocked: u.blocked,
        })
        .collect();
    let l = Layout::new(req, &visitor, "Users");
    html(req, &UsersPage { l, users, new_user })
}

/// `POST /admin/users`: create a user.
pub async fn create_user(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let Posted { form, user } = posted(&req, &spur, payload).await?;
    if !user.admin {
        return Err(UiError::NotFound);
    }
    let field = |name: &str| form.get(name).unwrap_or_default().trim().to_string();
    let new = NewAccount {
        username: field("user[username]"),
        name: field("user[name]"),
        email: field("user[email]"),
        password: Some(form.get("user[password]").unwrap_or_default().to_string()),
        admin: form.checked("user[admin]"),
    };
    let mut kept = NewUserForm {
        name: new.name.clone(),
        username: new.username.clone(),
        email: new.email.clone(),
        admin: new.admin,
        error: None,
    };
    kept.error = match accounts::create_user(&spur, new).await.map_err(UiError::Internal)? {
        Ok(_) => return Ok(redirect(&req, "/admin/users", Some(("notice", "User was created.")))),
        Err(AccountRefusal::Invalid(attr, text)) => Some((attr.to_string(), format!("{} {text}", capitalized(attr)))),
        Err(AccountRefusal::Taken(text)) => {
            let field = if text.to_lowercase().contains("email") {
                "email"
            } else {
                "username"
            };
            Some((field.to_string(), text.to_string()))
        }
    };
    // Shown again beside the field at fault, with what was entered (the password excepted).
    let mut page = users_page(&req, &spur, kept).await?;
    *page.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(page)
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `POST /admin/users/{id}/block|unblock|admin|unadmin`.
pub async fn change_user(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let Posted { user: me, .. } = posted(&req, &spur, payload).await?;
    if !me.admin {
        return Err(UiError::NotFound);
    }
    let id = id_in_path(&req, "id")?;
    if id == me.id {
        return Ok(redirect(
            &req,
            "/admin/users",
            Some(("alert", "You cannot change yourself here.")),
        ));
    }
    let (blocked, admin) = match req.match_info().get("action") {
        Some("block") => (Some(true), None),
        Some("unblock") => (Some(false), None),
        Some("admin") => (None, Some(true)),
        Some("unadmin") => (None, Some(false)),
        _ => return Err(UiError::NotFound),
    };
    crate::accounts::set_user_flags(&spur, id, blocked, admin)
        .await?
        .map_err(|_| UiError::NotFound)?;
    Ok(redirect(&req, "/admin/users", Some(("notice", "User was updated."))))
}

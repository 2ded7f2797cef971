//! Browser sessions: sign-in with GitLab's form fields, an opaque session cookie whose keyed
//! digest is stored (`HttpOnly`, `SameSite=Lax`, `Secure` behind https), a CSRF token per
//! session checked on every form, and one-time flash messages.

use super::{Form, Layout, UiError, html, redirect};
use crate::clock;
use crate::context::Spur;
use crate::domain::{Session, User};
use crate::secrets;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

/// The session cookie.
const SESSION_COOKIE: &str = "_spur_session";
/// The CSRF cookie of the sign-in form (before there is a session).
const SIGN_IN_CSRF_COOKIE: &str = "_spur_csrf";
/// The flash message cookie.
const FLASH_COOKIE: &str = "_spur_flash";
/// How long a session lasts: a week, GitLab's default.
const SESSION_DAYS: i64 = 7;

/// Who is looking at a page.
pub struct Visitor {
    /// The signed-in user, if any.
    pub user: Option<User>,
    /// The session and the digest it is stored under.
    session: Option<(Vec<u8>, Session)>,
}

impl Visitor {
    /// The CSRF token the page's forms carry (empty when signed out).
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |(_, s)| s.csrf_token.as_str())
    }

    /// Checks a form's `authenticity_token` against the session's, in constant time.
    pub fn check_csrf(&self, form: &Form) -> Result<(), UiError> {
        let sent = form.get("authenticity_token").unwrap_or_default();
        match &self.session {
            Some((_, s)) if secrets::token_matches(sent, &s.csrf_token) => Ok(()),
            Some(_) => Err(UiError::Csrf),
            None => Err(UiError::SignIn),
        }
    }

    /// The signed-in user, or a redirect to sign in.
    pub fn signed_in(&self) -> Result<&User, UiError> {
        self.user.as_ref().ok_or(UiError::SignIn)
    }
}

/// The visitor of a request: the session cookie's user, unless the session ended or the user
/// was blocked.
pub async fn visitor(req: &HttpRequest, spur: &Spur) -> Result<Visitor, UiError> {
    let anonymous = Visitor {
        user: None,
        session: None,
    };
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(anonymous);
    };
    let digest = spur.secrets.digest(cookie.value()).to_vec();
    let Some(session) = spur.store.session(&digest)? else {
        return Ok(anonymous);
    };
    if session.expires_at <= clock::now() {
        crate::accounts::delete_session(spur, digest).await?;
        return Ok(anonymous);
    }
    match spur.store.user(session.user_id)? {
        Some(user) if !user.blocked => Ok(Visitor {
            user: Some(user),
            session: Some((digest, session)),
        }),
        _ => Ok(anonymous),
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    l: Layout,
    login: String,
    /// The page to go back to after signing in (a safe path on this site, or empty).
    redirect_to: String,
}

/// Where to go after signing in: the safe `redirect_to` given, else the projects.
fn back_to(asked: Option<&str>) -> &str {
    asked.and_then(super::safe_redirect).unwrap_or("/")
}

fn secure(spur: &Spur) -> bool {
    spur.external_url.starts_with("https://")
}

fn cookie(spur: &Spur, name: &'static str, value: String, max_age: Option<CookieDuration>) -> Cookie<'static> {
    let mut c = Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(spur))
        .finish();
    if let Some(age) = max_age {
        c.set_max_age(age);
    }
    c
}

fn removal(spur: &Spur, name: &'static str) -> Cookie<'static> {
    let mut c = cookie(spur, name, String::new(), None);
    c.make_removal();
    c
}

/// `GET /users/sign_in`.
pub async fn sign_in_form(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let v = visitor(&req, &spur).await?;
    let asked = super::query(&req, "redirect_to");
    if v.user.is_some() {
        return Ok(redirect(&req, back_to(asked.as_deref()), None));
    }
    let back = back_to(asked.as_deref()).to_string();
    render_sign_in(&req, &spur, String::new(), &back, None)
}

fn render_sign_in(
    req: &HttpRequest,
    spur: &Spur,
    login: String,
    back: &str,
    alert: Option<&str>,
) -> Result<HttpResponse, UiError> {
    let csrf = match req.cookie(SIGN_IN_CSRF_COOKIE) {
        Some(c) if c.value().len() == 64 => c.value().to_string(),
        _ => secrets::hex(&secrets::random_array::<32>().map_err(|e| UiError::Internal(e.to_string()))?),
    };
    let visitor = Visitor {
        user: None,
        session: None,
    };
    let mut l = Layout::new(req, &visitor, "Sign in");
    l.csrf = secrets::mask_token(&csrf);
    if let Some(text) = alert {
        l.flash = Some(super::Flash {
            kind: "alert",
            text: text.to_string(),
        });
    }
    let redirect_to = if back == "/" { String::new() } else { back.to_string() };
    let mut response = html(req, &SignInPage { l, login, redirect_to })?;
    let _ = response.add_cookie(&cookie(spur, SIGN_IN_CSRF_COOKIE, csrf, None));
    Ok(response)
}

/// `POST /users/sign_in` with `user[login]`, `user[password]` and `authenticity_token`.
pub async fn sign_in(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let ip = crate::http::client_ip(&req);
    if let Err(retry) = spur.sign_in_limiter.check(ip) {
        return Ok(crate::http::retry_later(retry));
    }
    let form = Form::read(&spur, payload).await?;
    let expected = req
        .cookie(SIGN_IN_CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let sent = form.get("authenticity_token").unwrap_or_default();
    if expected.is_empty() || !secrets::token_matches(sent, &expected) {
        return Err(UiError::Csrf);
    }
    let login = form.get("user[login]").unwrap_or_default().trim().to_string();
    let password = form.get("user[password]").unwrap_or_default().to_string();
    let back = back_to(form.get("redirect_to")).to_string();
    let s = spur.clone();
    let who = login.clone();
    let user = web::block(move || -> Result<Option<User>, UiError> {
        let find = || -> Result<Option<User>, UiError> {
            Ok(s.store.user_by_username(&who)?.or_else(|| {
                s.store
                    .users()
                    .ok()
                    .and_then(|all| all.into_iter().find(|u| u.email.eq_ignore_ascii_case(&who)))
            }))
        };
        let mut user = find()?;
        // Root's first password is hashed while spur already answers: wait for it (briefly),
        // only while this process is hashing it (a marker left by a crash fails at once).
        let waited = std::time::Instant::now();
        while user
            .as_ref()
            .is_some_and(|u| u.password_hash == crate::auth::PASSWORD_BEING_SET)
            && s.root_password_pending.load(std::sync::atomic::Ordering::SeqCst)
            && waited.elapsed() < std::time::Duration::from_secs(3)
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
            user = find()?;
        }
        let ok = crate::auth::verify_sign_in(&password, user.as_ref());
        Ok(user.filter(|_| ok))
    })
    .await
    .map_err(|e| UiError::Internal(e.to_string()))??;
    let Some(user) = user else {
        spur.sign_in_limiter.failed(ip);
        return render_sign_in(&req, &spur, login, &back, Some("Invalid login or password."));
    };
    spur.sign_in_limiter.succeeded(ip);
    let id = secrets::hex(&secrets::random_array::<32>().map_err(|e| UiError::Internal(e.to_string()))?);
    let csrf = secrets::hex(&secrets::random_array::<32>().map_err(|e| UiError::Internal(e.to_string()))?);
    let now = clock::now();
    let session = Session {
        user_id: user.id,
        csrf_token: csrf,
        created_at: now,
        expires_at: now + SESSION_DAYS * clock::DAY,
    };
    crate::accounts::create_session(&spur, spur.secrets.digest(&id).to_vec(), session).await?;
    tracing::info!(user_id = user.id, "signed in");
    let mut response = redirect(&req, &back, None);
    let _ = response.add_cookie(&cookie(
        &spur,
        SESSION_COOKIE,
        id,
        Some(CookieDuration::days(SESSION_DAYS)),
    ));
    let _ = response.add_cookie(&removal(&spur, SIGN_IN_CSRF_COOKIE));
    Ok(response)
}

/// `POST /users/sign_out`: ends the session.
pub async fn sign_out(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let form = Form::read(&spur, payload).await?;
    let v = visitor(&req, &spur).await?;
    if let Some((digest, _)) = &v.session {
        v.check_csrf(&form)?;
        crate::accounts::delete_session(&spur, digest.clone()).await?;
    }
    let mut response = redirect(&req, "/users/sign_in", None);
    let _ = response.add_cookie(&removal(&spur, SESSION_COOKIE));
    Ok(response)
}

/// A cookie carrying a flash message to the next page.
pub fn flash_cookie(req: &HttpRequest, kind: &'static str, text: &str) -> Cookie<'static> {
    let value = serde_urlencoded::to_string([("k", kind), ("t", text)]).unwrap_or_default();
    let secure = req.connection_info().scheme() == "https";
    Cookie::build(FLASH_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish()
}

/// The flash message the request carries.
pub fn take_flash(req: &HttpRequest) -> Option<super::Flash> {
    let cookie = req.cookie(FLASH_COOKIE)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(cookie.value()).ok()?;
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let kind = if get("k").as_deref() == Some("alert") {
        "alert"
    } else {
        "notice"
    };
    Some(super::Flash { kind, text: get("t")? })
}

/// Whether the request carries a flash message (which the response must then clear).
pub fn has_flash(req: &HttpRequest) -> bool {
    req.cookie(FLASH_COOKIE).is_some()
}

/// A cookie that clears the flash message.
pub fn clear_flash() -> Cookie<'static> {
    let mut c = Cookie::build(FLASH_COOKIE, "").path("/").finish();
    c.make_removal();
    c
}

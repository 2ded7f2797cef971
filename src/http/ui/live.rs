//! Live pages: a page that changes while it is open (a running pipeline, the pipelines list)
//! carries an ETag made from what it shows, never from its per-response CSRF mask; the page's
//! script asks again with `If-None-Match` and gets 304 until something shown has changed.

use super::UiError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The ETag of a page showing `shown` (everything on it that can change, the viewer included).
pub fn etag_of(shown: &impl Hash) -> String {
    let mut hasher = DefaultHasher::new();
    shown.hash(&mut hasher);
    format!("W/\"{:016x}\"", hasher.finish())
}

/// 304 when the request already holds the page tagged `etag`.
pub fn not_modified(req: &HttpRequest, etag: &str) -> Option<HttpResponse> {
    let asked = req.headers().get(header::IF_NONE_MATCH)?.to_str().ok()?;
    asked.split(',').any(|tag| tag.trim() == etag).then(|| {
        HttpResponse::NotModified()
            .insert_header((header::ETAG, etag.to_string()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()
    })
}

/// The page as `super::html` renders it, tagged `etag`.
pub fn tagged_html(req: &HttpRequest, page: &impl Template, etag: &str) -> Result<HttpResponse, UiError> {
    let mut response = super::html(req, page)?;
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

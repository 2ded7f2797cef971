//! The stylesheet and script, embedded in the binary and served with a year's caching; pages
//! link them with a version query (a digest of their content), so a new build is fetched anew.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use std::sync::LazyLock;

const CSS: &str = include_str!("../../../static/spur.css");
const JS: &str = include_str!("../../../static/spur.js");

static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = blake3::Hasher::new();
    hasher.update(CSS.as_bytes());
    hasher.update(JS.as_bytes());
    hasher.finalize().to_hex()[..12].to_string()
});

/// The assets' version, for cache-busting links.
pub fn version() -> &'static str {
    VERSION.as_str()
}

/// `GET /assets/{name}`.
pub async fn serve(req: HttpRequest) -> HttpResponse {
    let (body, kind) = match req.match_info().get("name") {
        Some("spur.css") => (CSS, "text/css; charset=utf-8"),
        Some("spur.js") => (JS, "text/javascript; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(body)
}

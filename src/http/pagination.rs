//! GitLab's offset pagination: `page`/`per_page` (default 20, at most 100), the `X-*` headers and
//! a `Link` header whose URLs are absolute, built from the request's own scheme and host.

use super::error::ApiError;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

/// Default page size.
const DEFAULT_PER_PAGE: usize = 20;
/// Largest page size.
const MAX_PER_PAGE: usize = 100;

/// Answers 200 with one page of `items` and GitLab's pagination headers.
pub fn paginated(req: &HttpRequest, items: Vec<Value>) -> Result<HttpResponse, ApiError> {
    let query = query_pairs(req);
    let number = |key: &str, default: usize| -> Result<usize, ApiError> {
        match query.iter().rev().find(|(k, _)| k == key) {
            None => Ok(default),
            Some((_, v)) if v.is_empty() => Ok(default),
            Some((_, v)) => v
                .trim()
                .parse::<i64>()
                .map(|n| n.max(0) as usize)
                .map_err(|_| ApiError::Params(format!("{key} is invalid"))),
        }
    };
    let page = number("page", 1)?.max(1);
    let per_page = match number("per_page", DEFAULT_PER_PAGE)? {
        0 => DEFAULT_PER_PAGE,
        n => n.min(MAX_PER_PAGE),
    };
    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let page_items: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let next = if page < total_pages { page + 1 } else { 0 };
    let prev = page.saturating_sub(1);
    let show = |n: usize| if n == 0 { String::new() } else { n.to_string() };
    let link_to = |n: usize| page_url(req, &query, n, per_page);
    let mut links = Vec::new();
    if prev > 0 {
        links.push(format!("<{}>; rel=\"prev\"", link_to(prev)));
    }
    if next > 0 {
        links.push(format!("<{}>; rel=\"next\"", link_to(next)));
    }
    links.push(format!("<{}>; rel=\"first\"", link_to(1)));
    links.push(format!("<{}>; rel=\"last\"", link_to(total_pages)));
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("X-Page", page.to_string()))
        .insert_header(("X-Per-Page", per_page.to_string()))
        .insert_header(("X-Total", total.to_string()))
        .insert_header(("X-Total-Pages", total_pages.to_string()))
        .insert_header(("X-Next-Page", show(next)))
        .insert_header(("X-Prev-Page", show(prev)))
        .insert_header(("Link", links.join(", ")))
        .body(Value::Array(page_items).to_string()))
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string()).unwrap_or_default()
}

fn page_url(req: &HttpRequest, query: &[(String, String)], page: usize, per_page: usize) -> String {
    let info = req.connection_info();
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "page" && k != "per_page" && k != "private_token" && k != "access_token")
        .cloned()
        .collect();
    pairs.push(("page".into(), page.to_string()));
    pairs.push(("per_page".into(), per_page.to_string()));
    let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{}://{}{}?{}", info.scheme(), info.host(), req.path(), qs)
}

//! GitLab's offset pagination: `page`/`per_page` (default 20, at most 100), the `X-*` headers and
//! a `Link` header whose URLs are absolute, built from the request's own scheme and host.

use super::error::ApiError;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

/// Default page size.
const DEFAULT_PER_PAGE: usize = 20;
/// Largest page size.
const MAX_PER_PAGE: usize = 100;

/// The page a request asks for.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: usize,
    /// Items per page, 1 to 100.
    pub per_page: usize,
}

impl PageRequest {
    /// Reads `page` and `per_page` from the query (Grape's `is invalid` for non-numbers).
    pub fn from_request(req: &HttpRequest) -> Result<PageRequest, ApiError> {
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
        Ok(PageRequest { page, per_page })
    }

    /// How many items come before this page.
    pub fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.per_page)
    }
}

/// Answers 200 with one page of `items` (all of them, paged here) and GitLab's headers.
pub fn paginated(req: &HttpRequest, items: Vec<Value>) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::from_request(req)?;
    let total = items.len();
    let on_page = items.into_iter().skip(page.offset()).take(page.per_page).collect();
    Ok(page_response(req, page, on_page, total))
}

/// Answers 200 with the items of one page, already selected, out of `total`.
pub fn page_response(req: &HttpRequest, page: PageRequest, on_page: Vec<Value>, total: usize) -> HttpResponse {
    let PageRequest { page, per_page } = page;
    let query = query_pairs(req);
    let total_pages = total.div_ceil(per_page).max(1);
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
    HttpResponse::Ok()
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("X-Page", page.to_string()))
        .insert_header(("X-Per-Page", per_page.to_string()))
        .insert_header(("X-Total", total.to_string()))
        .insert_header(("X-Total-Pages", total_pages.to_string()))
        .insert_header(("X-Next-Page", show(next)))
        .insert_header(("X-Prev-Page", show(prev)))
        .insert_header(("Link", links.join(", ")))
        .body(Value::Array(on_page).to_string())
}

/// Answers 200 with one keyset page: GitLab sends only `X-Per-Page` and, when more follow, a
/// `Link` to the next page with `cursor` (`id_after=42`) in place of the previous one.
pub fn keyset_response(
    req: &HttpRequest,
    per_page: usize,
    on_page: Vec<Value>,
    cursor: Option<(&str, u64)>,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("X-Per-Page", per_page.to_string()));
    if let Some((key, value)) = cursor {
        let mut pairs: Vec<(String, String)> = query_pairs(req)
            .into_iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "id_after" | "id_before" | "private_token" | "access_token" | "page"
                )
            })
            .collect();
        pairs.push((key.to_string(), value.to_string()));
        let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let url = format!("{}?{}", own_url(req), qs);
        response.insert_header(("Link", format!("<{url}>; rel=\"next\"")));
    }
    response.body(Value::Array(on_page).to_string())
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string()).unwrap_or_default()
}

fn page_url(req: &HttpRequest, query: &[(String, String)], page: usize, per_page: usize) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "page" && k != "per_page" && k != "private_token" && k != "access_token")
        .cloned()
        .collect();
    pairs.push(("page".into(), page.to_string()));
    pairs.push(("per_page".into(), per_page.to_string()));
    let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{}?{}", own_url(req), qs)
}

/// The request's path under spur's external URL (never the client's `Host` or forwarded
/// headers, which a client chooses).
fn own_url(req: &HttpRequest) -> String {
    match req.app_data::<actix_web::web::Data<crate::context::Spur>>() {
        Some(spur) => spur.url(req.path().trim_start_matches('/')),
        None => req.path().to_string(),
    }
}

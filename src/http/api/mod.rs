//! The GitLab-compatible `/api/v4` endpoints, one file per resource.

pub mod admin;
pub mod application_settings;
pub mod artifacts;
pub mod badges;
pub mod commit_statuses;
pub mod compare;
pub mod create_pipeline;
pub mod environments;
pub mod group_members;
pub mod groups;
pub mod hooks;
pub(crate) mod idempotent;
pub mod job_token_scope;
pub mod jobs;
pub mod lint;
pub mod members;
pub mod mirror;
pub mod pipeline_schedules;
pub mod pipelines;
pub mod projects;
pub mod protected_refs;
pub mod releases;
pub mod repository;
pub mod runner_jobs;
pub mod runners;
pub mod test_reports;
pub mod tokens;
pub mod trigger;
pub mod triggers;
pub mod users;
pub mod variables;
pub mod version;

use actix_web::HttpRequest;

/// A request's query string as pairs, in order (unreadable: none).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// The query of `req`.
    pub(crate) fn of(req: &HttpRequest) -> Query {
        Query(
            actix_web::web::Query::<Vec<(String, String)>>::from_query(req.query_string())
                .map(|q| q.into_inner())
                .unwrap_or_default(),
        )
    }

    /// The last non-empty value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
    }
}

/// A path segment of the matched route, percent-decoded.
pub(crate) fn segment(req: &HttpRequest, name: &str) -> String {
    super::percent_decode(req.match_info().get(name).unwrap_or_default())
}

/// A path segment that must be a positive integer; else Grape's `<name> is invalid`.
pub(crate) fn id_segment(req: &HttpRequest, name: &str) -> Result<u64, super::error::ApiError> {
    let raw = segment(req, name);
    match raw.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n as u64),
        // GitLab looks negative or zero ids up and finds nothing.
        Ok(_) => Ok(0),
        Err(_) => Err(super::error::ApiError::Params(format!("{name} is invalid"))),
    }
}

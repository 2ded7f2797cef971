//! `ApiError`: every failure of the `/api/v4` API, mapped once to GitLab's status and one of its
//! three body shapes (`{"error": ...}`, `{"message": "..."}`, `{"message": {"attr": [...]}}`).
//! Unexpected failures become a bare 500; their detail goes to the log only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};

/// A failure of an API request, as GitLab would answer it.
#[derive(Debug)]
pub enum ApiError {
    /// Parameter validation failed (Grape): 400 `{"error": "<param> <reason>, ..."}`.
    Params(String),
    /// A helper error: `{"message": "<text>"}` with the given status.
    Message(StatusCode, String),
    /// Model validation failed: `{"message": {"<attr>": ["..."]}}` with the given status.
    Validation(StatusCode, Value),
    /// An OAuth-style token error: 401/403 `{"error": ..., "error_description": ...}`.
    Token(StatusCode, Value),
    /// A plain-text body with the given status.
    Text(StatusCode, String),
    /// Something inside spur failed; logged, answered as 500.
    Internal(String),
}

impl ApiError {
    /// 401 `{"message":"401 Unauthorized"}`.
    pub fn unauthorized() -> ApiError {
        ApiError::Message(StatusCode::UNAUTHORIZED, "401 Unauthorized".into())
    }

    /// 403 `{"message":"403 Forbidden"}`.
    pub fn forbidden() -> ApiError {
        ApiError::Message(StatusCode::FORBIDDEN, "403 Forbidden".into())
    }

    /// 403 `{"message":"403 Forbidden - <reason>"}`.
    pub fn forbidden_because(reason: &str) -> ApiError {
        ApiError::Message(StatusCode::FORBIDDEN, format!("403 Forbidden - {reason}"))
    }

    /// 404 `{"message":"404 <what> Not Found"}` (`what` may be empty: `404 Not Found`).
    pub fn not_found(what: &str) -> ApiError {
        let text = if what.is_empty() {
            "404 Not Found".to_string()
        } else {
            format!("404 {what} Not Found")
        };
        ApiError::Message(StatusCode::NOT_FOUND, text)
    }

    /// GitLab's `RecordNotFound` answer, lower-case f: `{"message":"404 Not found"}`.
    pub fn record_not_found() -> ApiError {
        ApiError::Message(StatusCode::NOT_FOUND, "404 Not found".into())
    }

    /// 400 `{"message":"400 Bad request - <reason>"}`.
    pub fn bad_request(reason: &str) -> ApiError {
        ApiError::Message(StatusCode::BAD_REQUEST, format!("400 Bad request - {reason}"))
    }

    /// A plain-text answer (what GitLab's Rack middlewares send).
    pub fn text(status: StatusCode, text: &str) -> ApiError {
        ApiError::Text(status, text.into())
    }

    /// 400 `{"message":"<text>"}` without the `400 Bad request - ` prefix.
    pub fn bad_request_plain(text: &str) -> ApiError {
        ApiError::Message(StatusCode::BAD_REQUEST, text.into())
    }

    /// 400 `{"message":{"<attr>":["<text>"]}}`.
    pub fn invalid(attr: &str, text: &str) -> ApiError {
        ApiError::Validation(StatusCode::BAD_REQUEST, json!({ attr: [text] }))
    }

    /// 409 `{"message":"<text>"}`.
    pub fn conflict(text: &str) -> ApiError {
        ApiError::Message(StatusCode::CONFLICT, text.into())
    }

    /// 413 for a body over the configured limit.
    pub fn too_large() -> ApiError {
        ApiError::Message(StatusCode::PAYLOAD_TOO_LARGE, "413 Request Entity Too Large".into())
    }

    /// A failure inside spur.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(detail.to_string())
    }

    fn body(&self) -> Value {
        match self {
            ApiError::Text(_, text) => Value::String(text.clone()),
            ApiError::Params(text) => json!({ "error": text }),
            ApiError::Message(_, text) => json!({ "message": text }),
            ApiError::Validation(_, errors) => json!({ "message": errors }),
            ApiError::Token(_, body) => body.clone(),
            ApiError::Internal(_) => json!({ "message": "500 Internal Server Error" }),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status_code(), self.body())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Params(_) => StatusCode::BAD_REQUEST,
            ApiError::Text(s, _) => *s,
            ApiError::Message(s, _) | ApiError::Validation(s, _) | ApiError::Token(s, _) => *s,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(error = %detail, "request failed inside spur");
        }
        if let ApiError::Text(status, text) = self {
            return HttpResponse::build(*status)
                .insert_header(("Content-Type", "text/plain"))
                .body(text.clone());
        }
        HttpResponse::build(self.status_code())
            .insert_header(("Content-Type", "application/json"))
            .body(self.body().to_string())
    }
}

impl From<crate::storage::Error> for ApiError {
    fn from(e: crate::storage::Error) -> ApiError {
        if e.is_unavailable() {
            // The disk, not the request: nothing changed, and the same request may succeed later.
            tracing::warn!(error = %e, "a request was refused: the disk takes no writes");
            return ApiError::Message(StatusCode::SERVICE_UNAVAILABLE, format!("503 Service Unavailable: {e}"));
        }
        ApiError::internal(e)
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> ApiError {
        ApiError::internal(e)
    }
}

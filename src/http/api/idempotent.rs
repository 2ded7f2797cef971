//! The `Idempotency-Key` header of the endpoints that create pipelines: a replayed answer, a
//! refused reuse, or the go-ahead with the key to store (`crate::idempotency` holds the rules).

use crate::domain::Project;
use crate::http::error::ApiError;
use crate::http::{State, json_response, views};
use crate::idempotency::{InFlight, Prior};
use crate::storage::IdempotencyTag;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

/// What to do with a request.
pub(crate) enum Gate {
    /// Create, storing the key (if any) with the pipeline; hold the lock until answered.
    Go(Option<(InFlight, IdempotencyTag)>),
    /// Answer this now (a replay).
    Answer(HttpResponse),
}

/// Reads the key, and if there is one, waits for a request with it still in flight, then
/// replays what the same request made, refuses a different request (422), or lets it go. A key
/// used before is honoured only while `still_valid` says the credential works (asked only
/// then: a fresh key costs no extra reads); otherwise the request goes on without its key and
/// meets the usual refusal.
pub(crate) async fn gate(
    req: &HttpRequest,
    spur: &State,
    project: &Project,
    credential: &str,
    request: &Value,
    still_valid: impl FnOnce() -> Result<bool, ApiError>,
) -> Result<Gate, ApiError> {
    let mut headers = req.headers().get_all("idempotency-key");
    let Some(header) = headers.next() else {
        return Ok(Gate::Go(None));
    };
    if headers.next().is_some() {
        return Err(ApiError::bad_request_plain("Idempotency-Key may be sent once"));
    }
    let key = header.to_str().ok().filter(|k| crate::idempotency::valid_key(k));
    let Some(key) = key else {
        return Err(ApiError::bad_request_plain(
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    };
    let tag = crate::idempotency::tag(spur, project.id, credential, key, request);
    let (held, prior) = crate::idempotency::begin(spur, tag).await?;
    if !matches!(prior, Prior::Fresh) && !still_valid()? {
        return Ok(Gate::Go(None));
    }
    match prior {
        Prior::Fresh => Ok(Gate::Go(Some((held, tag)))),
        Prior::Conflict => Err(ApiError::Message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Idempotency-Key was already used for a different request".into(),
        )),
        Prior::Replay(pipeline) => {
            let user = spur.store.user(pipeline.user_id)?;
            let mut response = json_response(
                StatusCode::CREATED,
                &views::pipeline(spur, project, &pipeline, user.as_ref()),
            );
            response.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
                actix_web::http::header::HeaderValue::from_static("true"),
            );
            Ok(Gate::Answer(response))
        }
    }
}

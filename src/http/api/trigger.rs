//! The trigger endpoints: `POST /projects/:id/trigger/pipeline` and the webhook form
//! `POST /projects/:id/ref/:ref/trigger/pipeline`. Unauthenticated: the `token` parameter is the
//! credential. Checks run in GitLab's order: parameters, the `Pipeline Hook` loop guard, variable
//! types, the project, then the token, rights and ref in `pipeline_trigger`.

use super::idempotent::{Gate, gate};
use super::segment;
use crate::http::error::ApiError;
use crate::http::params::{Params, Validation};
use crate::http::{State, json_response, lookup_project, views};
use crate::pipeline_trigger::{TriggerError, TriggerRefusal, TriggerRequest, trigger_pipeline};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

/// `POST /projects/:id/trigger/pipeline`.
pub async fn by_params(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let ip = crate::http::client_ip(&req);
    if let Err(retry) = spur.trigger_limiter.check(ip) {
        return Ok(crate::http::retry_later(retry));
    }
    let s = spur.clone();
    let answer = async {
        let params = Params::read(&req, payload, spur.max_body_bytes).await?;
        handle(req, spur, params, None).await
    }
    .await;
    counted(&s, answer, started, ip)
}

/// Counts a trigger request's outcome and latency for `/-/metrics`.
fn counted(
    spur: &State,
    answer: Result<HttpResponse, ApiError>,
    started: std::time::Instant,
    ip: std::net::IpAddr,
) -> Result<HttpResponse, ApiError> {
    use actix_web::ResponseError;
    let status = match &answer {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.status_code().as_u16(),
    };
    spur.metrics.trigger(status, started.elapsed().as_secs_f64());
    // Wrong or stale tokens count against the client; anything it got right clears them.
    match status {
        401 | 404 => spur.trigger_limiter.failed(ip),
        201 => spur.trigger_limiter.succeeded(ip),
        _ => {}
    }
    answer
}

/// `POST /projects/:id/ref/:ref/trigger/pipeline?token=...`: the path's ref wins, and the JSON
/// body (a forge's webhook payload) becomes part of `TRIGGER_PAYLOAD`.
pub async fn by_webhook(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let ip = crate::http::client_ip(&req);
    if let Err(retry) = spur.trigger_limiter.check(ip) {
        return Ok(crate::http::retry_later(retry));
    }
    let s = spur.clone();
    let answer = async {
        let params = Params::read(&req, payload, spur.max_body_bytes).await?;
        let path_ref = segment(&req, "ref");
        handle(req, spur, params, Some(path_ref)).await
    }
    .await;
    counted(&s, answer, started, ip)
}

async fn handle(
    req: HttpRequest,
    spur: State,
    mut params: Params,
    path_ref: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let project_id = segment(&req, "id");
    if let Some(r) = &path_ref {
        params.0.insert("ref".into(), Value::String(r.clone()));
    }
    let request = validate(&params, &project_id)?;
    let hook = req.headers().get("x-gitlab-event").and_then(|v| v.to_str().ok());
    if hook.is_some_and(|h| h.trim() == "Pipeline Hook") {
        return Err(ApiError::forbidden());
    }
    let variables = string_variables(&params)?;
    let Some(project) = lookup_project(&spur, &project_id)? else {
        return Err(ApiError::not_found(""));
    };
    // Everything the caller sent but the token, as parsed, and which form it used.
    let form = if path_ref.is_some() { "webhook" } else { "trigger" };
    let sent = json!({"form": form, "payload": serde_json::from_str::<Value>(&request.payload).unwrap_or_default()});
    // A key is honoured only for a credential that still works: a revoked or rotated token
    // gets its 404 however many keys it sends.
    let credential = format!("trigger-token {}", request.token);
    let live = || {
        Ok(crate::pipeline_trigger::credential_live(
            &spur,
            &project,
            &request.token,
        )?)
    };
    let (_in_flight, idempotency) = match gate(&req, &spur, &project, &credential, &sent, live).await? {
        Gate::Answer(replay) => return Ok(replay),
        Gate::Go(Some((held, tag))) => (Some(held), Some(tag)),
        Gate::Go(None) => (None, None),
    };
    let request = TriggerRequest {
        variables,
        idempotency,
        client: Some(crate::http::client_ip(&req).to_string()),
        ..request
    };
    let spur_arc = spur.clone().into_inner();
    match trigger_pipeline(spur_arc, project.clone(), request).await {
        Ok(Ok(pipeline)) => {
            let user = spur.store.user(pipeline.user_id)?;
            tracing::debug!(project_id = project.id, pipeline_id = pipeline.id, "pipeline triggered");
            Ok(json_response(
                StatusCode::CREATED,
                &views::pipeline(&spur, &project, &pipeline, user.as_ref()),
            ))
        }
        Ok(Err(TriggerRefusal::NotFound)) => Err(ApiError::not_found("")),
        Ok(Err(TriggerRefusal::Unauthorized(msg))) => Err(ApiError::Message(StatusCode::UNAUTHORIZED, msg)),
        Ok(Err(TriggerRefusal::Invalid(msg))) => Err(ApiError::invalid("base", &msg)),
        Ok(Err(TriggerRefusal::Unprocessable(msg))) => Err(ApiError::Validation(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"base": [msg]}),
        )),
        Err(TriggerError::Storage(e)) => Err(e.into()),
        Err(TriggerError::Internal(e)) => Err(ApiError::internal(e)),
    }
}

/// Grape's parameter checks, in declaration order: `ref`, `token`, `variables`, `inputs`.
/// Builds the request with `TRIGGER_PAYLOAD`: every parameter but `token`, plus the path's `id`
/// (as a string) and `variables` (`{}` when none were sent).
fn validate(params: &Params, project_id: &str) -> Result<TriggerRequest, ApiError> {
    let mut v = Validation::default();
    let ref_name = match params.string("ref") {
        Ok(Some(r)) if r.trim().is_empty() => {
            v.fail("ref", "is empty");
            None
        }
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            v.fail("ref", "is missing");
            None
        }
        Err(_) => {
            v.fail("ref", "is invalid");
            None
        }
    };
    let token = v.required_string(params, "token");
    if params.get("variables").is_some_and(|x| !x.is_object()) {
        v.fail("variables", "is invalid");
    }
    if params.get("inputs").is_some_and(|x| !x.is_object()) {
        v.fail("inputs", "is invalid");
    }
    v.finish()?;
    let (Some(ref_name), Some(token)) = (ref_name, token) else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    let mut payload: Map<String, Value> = params.0.clone();
    payload.shift_remove("token");
    payload.insert("id".into(), Value::String(project_id.to_string()));
    if !matches!(payload.get("variables"), Some(Value::Object(_))) {
        payload.insert("variables".into(), Value::Object(Map::new()));
    }
    Ok(TriggerRequest {
        token,
        ref_name,
        variables: Vec::new(),
        payload: Value::Object(payload).to_string(),
        inputs: match params.get("inputs") {
            Some(Value::Object(inputs)) => inputs.clone(),
            _ => Map::new(),
        },
        idempotency: None,
        client: None,
    })
}

/// Every variable key and value must be a string.
fn string_variables(params: &Params) -> Result<Vec<(String, String)>, ApiError> {
    let Some(Value::Object(vars)) = params.get("variables") else {
        return Ok(Vec::new());
    };
    vars.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(ApiError::bad_request_plain(
                "variables needs to be a map of key-valued strings",
            )),
        })
        .collect()
}

//! GitLab's health endpoints: `/-/health` (the process answers), `/-/liveness` (the same, as
//! JSON), `/-/readiness` (storage takes a durable write and the pipeline engine runs; 503
//! otherwise). Unauthenticated, like GitLab's (restrict them at the proxy if needed).

use crate::http::State;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

/// `GET /-/health`: plain `GitLab OK`, as GitLab answers.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("GitLab OK")
}

/// `GET /-/liveness`.
pub async fn liveness() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /-/readiness`: each check as GitLab reports them; 503 when one fails.
pub async fn readiness(spur: State) -> HttpResponse {
    let storage = match spur.store.touch().await {
        Ok(()) => json!({"status": "ok"}),
        Err(e) => json!({"status": "failed", "message": e.to_string()}),
    };
    let engine = if spur.scheduler.is_running() {
        json!({"status": "ok"})
    } else {
        json!({"status": "failed", "message": "the pipeline engine has stopped"})
    };
    let ok = storage["status"] == "ok" && engine["status"] == "ok";
    let body = json!({
        "status": if ok { "ok" } else { "failed" },
        "storage_check": [storage],
        "engine_check": [engine],
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status).json(body)
}

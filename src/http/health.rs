//! GitLab's health endpoints: `/-/health` (the process answers), `/-/liveness` (the same, as
//! JSON), `/-/readiness` (storage takes a durable write and the pipeline engine runs; 503
//! otherwise), unauthenticated like GitLab's; and `/-/metrics` (Prometheus text, for an
//! administrator's token).

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
    let storage = match crate::app::probe_storage(&spur).await {
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

/// `GET /-/metrics` (an administrator's token): counters, histograms and gauges read now.
pub async fn metrics(req: actix_web::HttpRequest, spur: State) -> Result<HttpResponse, crate::http::error::ApiError> {
    let actor = crate::http::signed_in(&req, &spur).await?;
    if !actor.user.admin {
        return Err(crate::http::error::ApiError::forbidden());
    }
    let s = spur.clone();
    const COUNTED: [&str; 5] = ["created", "pending", "running", "manual", "scheduled"];
    let counts = actix_web::web::block(move || {
        let mut counts = [0usize; COUNTED.len()];
        s.store
            .for_each_active_job(|j| {
                if let Some(i) = COUNTED.iter().position(|c| *c == j.status.as_str()) {
                    counts[i] += 1;
                }
            })
            .map(|_| counts)
    })
    .await??;
    let mut gauges: Vec<(&str, &str, String, f64)> = Vec::new();
    for (status, n) in COUNTED.iter().zip(counts) {
        gauges.push((
            "spur_jobs",
            "Unfinished jobs, by status.",
            format!("{{status=\"{status}\"}}"),
            n as f64,
        ));
    }
    let stats = spur.store.writer_stats();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
    gauges.push((
        "spur_queue_depth",
        "Pending jobs waiting for an executor.",
        String::new(),
        spur.scheduler.queue.len() as f64,
    ));
    gauges.push((
        "spur_db_commits_total",
        "Durable commits of the single writer.",
        String::new(),
        load(&stats.commits),
    ));
    gauges.push((
        "spur_db_operations_total",
        "Operations committed (operations / commits is the mean batch size).",
        String::new(),
        load(&stats.operations),
    ));
    gauges.push((
        "spur_job_log_bytes_total",
        "Bytes written to job logs.",
        String::new(),
        load(&crate::trace::BYTES_WRITTEN),
    ));
    gauges.push((
        "process_resident_memory_bytes",
        "Resident memory.",
        String::new(),
        resident_bytes() as f64,
    ));
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(spur.metrics.render(&gauges)))
}

/// This process's resident memory, from `/proc/self/status`.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}
